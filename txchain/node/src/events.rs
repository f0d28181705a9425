//! The chain's event stream for SSE clients, resumable by event id.
//!
//! Ids are `"<height>-<seq>"`: the block event of height `h` is `h-0`; pending-transaction
//! events that follow it are `h-1`, `h-2`, …. Ids therefore only grow, and a block event can be
//! rebuilt from the store for any height, so a client that resumes after a gap (or after a node
//! restart) still receives every block. Pending-transaction events are best effort: they live
//! in a bounded in-memory buffer; what they announce shows up in later block events anyway.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub height: u64,
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.height, self.seq)
    }
}

impl std::str::FromStr for EventId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (h, q) = s
            .split_once('-')
            .ok_or_else(|| format!("event id {s:?} is not <height>-<seq>"))?;
        Ok(EventId {
            height: h
                .parse()
                .map_err(|_| format!("bad height in event id {s:?}"))?,
            seq: q
                .parse()
                .map_err(|_| format!("bad sequence in event id {s:?}"))?,
        })
    }
}

/// One event, rendered once.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: EventId,
    /// SSE event name: `block` or `tx`.
    pub kind: &'static str,
    /// JSON payload.
    pub data: String,
}

struct Inner {
    ring: VecDeque<Arc<Event>>,
    last: EventId,
}

/// Bounded buffer of recent events plus a live broadcast.
pub struct EventLog {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Arc<Event>>,
    capacity: usize,
}

/// What a resuming client must be sent before live events.
pub struct Replay {
    /// Heights whose block events are no longer buffered and must be rebuilt from the store.
    pub missing_blocks: Option<(u64, u64)>,
    /// Buffered events after the client's id.
    pub buffered: Vec<Arc<Event>>,
}

impl EventLog {
    pub fn new(tip_height: u64, capacity: usize) -> EventLog {
        let (live, _) = broadcast::channel(capacity.max(16));
        EventLog {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity),
                last: EventId {
                    height: tip_height,
                    seq: 0,
                },
            }),
            live,
            capacity: capacity.max(1),
        }
    }

    pub fn last_id(&self) -> EventId {
        self.inner.lock().last
    }

    fn push(&self, inner: &mut Inner, ev: Event) {
        let ev = Arc::new(ev);
        inner.last = ev.id;
        if inner.ring.len() >= self.capacity {
            inner.ring.pop_front();
        }
        inner.ring.push_back(ev.clone());
        // No receivers is fine: nobody is listening.
        let _ = self.live.send(ev);
    }

    /// Records a committed block and the main blocks it anchored (`main_block` events with
    /// sequence numbers 1, 2, …: a replay rebuilds them from the store with the same ids).
    pub fn push_block(&self, height: u64, data: String, main_blocks: Vec<String>) {
        let mut inner = self.inner.lock();
        let id = EventId { height, seq: 0 };
        self.push(
            &mut inner,
            Event {
                id,
                kind: "block",
                data,
            },
        );
        for (seq, data) in (1..).zip(main_blocks) {
            let id = EventId { height, seq };
            self.push(
                &mut inner,
                Event {
                    id,
                    kind: "main_block",
                    data,
                },
            );
        }
    }

    /// Records a newly pending transaction.
    pub fn push_tx(&self, data: String) {
        self.push_next("tx", data);
    }

    /// Records a reorganisation of the main chain: `persist` keeps it under its id before it
    /// is published (nothing is published when it fails).
    pub fn push_main_reorg<E>(
        &self,
        data: String,
        persist: impl FnOnce(EventId, &str) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut inner = self.inner.lock();
        let id = EventId {
            height: inner.last.height,
            seq: inner.last.seq + 1,
        };
        persist(id, &data)?;
        self.push(
            &mut inner,
            Event {
                id,
                kind: "main_reorg",
                data,
            },
        );
        Ok(())
    }

    /// Continues the sequence after `seq` at the current height (events kept from before a
    /// restart keep their ids).
    pub fn continue_after(&self, seq: u64) {
        let mut inner = self.inner.lock();
        inner.last.seq = inner.last.seq.max(seq);
    }

    /// Records an event that follows the last one at the same height.
    fn push_next(&self, kind: &'static str, data: String) {
        let mut inner = self.inner.lock();
        let id = EventId {
            height: inner.last.height,
            seq: inner.last.seq + 1,
        };
        self.push(&mut inner, Event { id, kind, data });
    }

    /// Live events from now on. Subscribe before calling `replay_after` so nothing falls
    /// between the two; duplicates are filtered by id.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    /// Events after `after` that are buffered, and the block heights that are not.
    pub fn replay_after(&self, after: EventId) -> Replay {
        let inner = self.inner.lock();
        let buffered: Vec<Arc<Event>> = inner
            .ring
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect();
        // Blocks after `after.height` that precede the oldest buffered block event.
        let first_buffered_block = inner
            .ring
            .iter()
            .find(|e| e.kind == "block")
            .map(|e| e.id.height)
            .unwrap_or(inner.last.height + 1);
        let from = after.height + 1;
        let to = first_buffered_block.min(inner.last.height + 1);
        let missing_blocks = if from < to {
            Some((from, to - 1))
        } else {
            None
        };
        Replay {
            missing_blocks,
            buffered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_and_parse() {
        let a: EventId = "12-3".parse().unwrap();
        assert_eq!(a, EventId { height: 12, seq: 3 });
        assert!(a < EventId { height: 13, seq: 0 });
        assert!("12".parse::<EventId>().is_err());
        assert_eq!(a.to_string(), "12-3");
    }

    #[test]
    fn replay_reports_blocks_that_fell_out_of_the_buffer() {
        let log = EventLog::new(0, 3);
        for h in 1..=5 {
            log.push_block(h, format!("{h}"), Vec::new());
        }
        log.push_tx("t".into());
        // Buffer now holds 4-0, 5-0, 5-1.
        let r = log.replay_after(EventId { height: 1, seq: 0 });
        assert_eq!(r.missing_blocks, Some((2, 3)));
        let ids: Vec<String> = r.buffered.iter().map(|e| e.id.to_string()).collect();
        assert_eq!(ids, vec!["4-0", "5-0", "5-1"]);
        let r = log.replay_after(EventId { height: 5, seq: 0 });
        assert_eq!(r.missing_blocks, None);
        assert_eq!(r.buffered.len(), 1);
    }

    #[test]
    fn main_blocks_follow_their_transfer_block_and_pending_events_follow_them() {
        let log = EventLog::new(0, 10);
        log.push_block(1, "b1".into(), vec!["m1".into(), "m2".into()]);
        log.push_tx("t".into());
        log.push_main_reorg("r".into(), |_, _| Ok::<(), ()>(()))
            .unwrap();
        log.push_block(2, "b2".into(), Vec::new());
        let r = log.replay_after(EventId { height: 0, seq: 0 });
        let got: Vec<(String, &str)> = r
            .buffered
            .iter()
            .map(|e| (e.id.to_string(), e.kind))
            .collect();
        let expected = [
            ("1-0", "block"),
            ("1-1", "main_block"),
            ("1-2", "main_block"),
            ("1-3", "tx"),
            ("1-4", "main_reorg"),
            ("2-0", "block"),
        ];
        // A failing store publishes nothing.
        assert_eq!(
            log.push_main_reorg("x".into(), |_, _| Err("disk")),
            Err("disk")
        );
        assert_eq!(log.last_id(), EventId { height: 2, seq: 0 });
        let expected: Vec<(String, &str)> =
            expected.iter().map(|(i, k)| (i.to_string(), *k)).collect();
        assert_eq!(got, expected);
    }
}
