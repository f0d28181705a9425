//! Latency and reordering on a host's links, in user space: the host's `iptables` sends the
//! packets it receives from other hosts to an `NFQUEUE`, and this loop lets each through after
//! the delay plus a random share of the jitter (so later packets overtake earlier ones). This
//! kernel has no `netem`; this is its stand-in for delay and reordering.
//!
//! Runs inside the host's network namespace (`doin-testnet shape`, started by the runner with
//! `ip netns exec`), one per host; the queue is opened fail-open, so a full queue or a dead
//! shaper lets packets pass instead of cutting the host off.

use nfq::{Queue, Verdict};
use rand::Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// Packets the kernel holds for the shaper at most.
const QUEUE_MAX_LEN: u32 = 8192;
/// Longest sleep while packets are held (packets arriving meanwhile wait at most this long
/// beyond their delay).
const TICK: Duration = Duration::from_millis(1);

/// Delays every packet of queue `queue_num` by `delay` plus up to `jitter`; runs until killed.
pub fn run(queue_num: u16, delay: Duration, jitter: Duration) -> Result<(), String> {
    let e = |what: &str| {
        let what = what.to_string();
        move |err: std::io::Error| format!("NFQUEUE {queue_num}: {what}: {err}")
    };
    let mut queue = Queue::open().map_err(e("open"))?;
    queue.bind(queue_num).map_err(e("bind"))?;
    queue
        .set_fail_open(queue_num, true)
        .map_err(e("fail open"))?;
    queue
        .set_queue_max_len(queue_num, QUEUE_MAX_LEN)
        .map_err(e("queue length"))?;
    // Only the verdict is needed, not the payload.
    queue
        .set_copy_range(queue_num, 0)
        .map_err(e("copy range"))?;
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut held = HashMap::new();
    let mut seq = 0u64;
    let mut rng = rand::thread_rng();
    let jitter_us = u64::try_from(jitter.as_micros()).unwrap_or(u64::MAX);
    loop {
        // Block while nothing is held; otherwise poll, so held packets leave on time.
        queue.set_nonblocking(!held.is_empty());
        match queue.recv() {
            Ok(msg) => {
                let extra = Duration::from_micros(rng.gen_range(0..=jitter_us));
                due.push(Reverse((Instant::now() + delay + extra, seq)));
                held.insert(seq, msg);
                seq = seq.wrapping_add(1);
                continue;
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(format!("NFQUEUE {queue_num}: receive: {err}")),
        }
        let now = Instant::now();
        while let Some(Reverse((at, id))) = due.peek().copied() {
            if at > now {
                std::thread::sleep((at - now).min(TICK));
                break;
            }
            due.pop();
            if let Some(mut msg) = held.remove(&id) {
                msg.set_verdict(Verdict::Accept);
                queue
                    .verdict(msg)
                    .map_err(|err| format!("NFQUEUE {queue_num}: verdict: {err}"))?;
            }
        }
    }
}
