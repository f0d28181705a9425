//! Latency, reordering and duplication on a host's links, in user space: the host's `iptables`
//! sends the packets it receives from other hosts to an `NFQUEUE`, and this loop lets each
//! through after the delay plus a random share of the jitter (so later packets overtake
//! earlier ones), and delivers a share of them a second time. This kernel has no `netem` (and
//! no `TEE` target); this is its stand-in.
//!
//! A queue verdict cannot copy a packet, so a copy is written back whole through a raw IP
//! socket (the packet keeps its source: the node receives it as if the peer sent it twice),
//! marked with [`COPY_MARK`] so that the host's rules let it pass instead of queueing it again.
//!
//! Runs inside the host's network namespace (`doin-testnet shape`, started by the runner with
//! `ip netns exec`), one per host; the queue is opened fail-open, so a full queue or a dead
//! shaper lets packets pass instead of cutting the host off.

use nfq::{Queue, Verdict};
use rand::Rng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Packets the kernel holds for the shaper at most.
const QUEUE_MAX_LEN: u32 = 8192;
/// Longest sleep while packets are held (packets arriving meanwhile wait at most this long
/// beyond their delay).
const TICK: Duration = Duration::from_millis(1);
/// The firewall mark of the shaper's copies ("DT").
pub const COPY_MARK: u32 = 0x4454;
/// Bytes of each packet the kernel hands over when copies are made (a whole packet).
const COPY_RANGE: u16 = 65_535;

/// What the shaper does to every packet of its queue.
#[derive(Clone, Copy, Debug)]
pub struct Effects {
    pub delay: Duration,
    pub jitter: Duration,
    /// Percent of the packets delivered twice.
    pub duplicate_percent: u32,
}

/// Writes copies of packets back into the host's stack.
struct Copier {
    socket: Socket,
}

impl Copier {
    fn open() -> Result<Copier, String> {
        // IPPROTO_RAW: the packet is sent as given, its own IP header included.
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))
            .map_err(|e| format!("raw socket: {e}"))?;
        socket
            .set_mark(COPY_MARK)
            .map_err(|e| format!("raw socket mark: {e}"))?;
        Ok(Copier { socket })
    }

    /// Sends `packet` (an IPv4 packet) again to its own destination.
    fn send(&self, packet: &[u8]) {
        if packet.len() < 20 || packet[0] >> 4 != 4 {
            return;
        }
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        // A copy that cannot be sent is a packet not duplicated, nothing more.
        let _ = self
            .socket
            .send_to(packet, &SockAddr::from(SocketAddrV4::new(dst, 0)));
    }
}

/// Shapes every packet of queue `queue_num` by `effects`; runs until killed.
pub fn run(queue_num: u16, effects: Effects) -> Result<(), String> {
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
    let copier = if effects.duplicate_percent > 0 {
        queue
            .set_copy_range(queue_num, COPY_RANGE)
            .map_err(e("copy range"))?;
        Some(Copier::open()?)
    } else {
        // Only the verdict is needed, not the payload.
        queue
            .set_copy_range(queue_num, 0)
            .map_err(e("copy range"))?;
        None
    };
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut held = HashMap::new();
    let mut seq = 0u64;
    let mut rng = rand::thread_rng();
    let jitter_us = u64::try_from(effects.jitter.as_micros()).unwrap_or(u64::MAX);
    loop {
        // Block while nothing is held; otherwise poll, so held packets leave on time.
        queue.set_nonblocking(!held.is_empty());
        match queue.recv() {
            Ok(msg) => {
                let extra = Duration::from_micros(rng.gen_range(0..=jitter_us));
                due.push(Reverse((Instant::now() + effects.delay + extra, seq)));
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
                let copy = match &copier {
                    Some(c) if rng.gen_range(0..100) < effects.duplicate_percent => {
                        Some((c, msg.get_payload().to_vec()))
                    }
                    _ => None,
                };
                msg.set_verdict(Verdict::Accept);
                queue
                    .verdict(msg)
                    .map_err(|err| format!("NFQUEUE {queue_num}: verdict: {err}"))?;
                if let Some((c, packet)) = copy {
                    c.send(&packet);
                }
            }
        }
    }
}
