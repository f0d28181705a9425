//! The webhooks' persisted outbox: subscriptions made and removed, events turned into one
//! delivery per subscribed webhook, the deliveries due, the outcome of each attempt and
//! redelivery. Every change is written (fsync) before it counts, so a delivery made is never
//! lost to a crash and a delivery done is not sent again, except the one in flight at the
//! crash (receivers deduplicate on `Doin-Webhook-Id`). It reads nothing of the hub but its
//! store and sends nothing; its writes are its own (synced), apart from the hub's group commit. Reading the ledger and POSTing are [`crate::webhooks`]'s.

use crate::webhook_records::{
    Delivery, DeliveryState, Webhook, WebhookConfig, CURSORS, CURSOR_EVENTS, CURSOR_LEDGER,
    DELIVERIES, DUE, NEXT_DELIVERY, WEBHOOKS,
};
use doin_api::hub::WebhookEventType;
use doin_store::{Direction, Durability, KvStore, StoreError, WriteBatch};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::Notify;

/// Most webhooks an operator may have.
pub const MAX_WEBHOOKS: usize = 32;

/// An event read from the ledger or the hub's events, ready to deliver.
pub struct OutboxEvent {
    pub event_id: String,
    pub event_type: WebhookEventType,
    pub at_ms: u64,
    pub body: String,
}

/// Where the outbox has read to: the last ledger entry and the last event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursors {
    pub ledger: u64,
    pub events: u64,
}

/// What one attempt came to.
pub enum Attempt {
    /// The receiver answered with this status (2xx: delivered).
    Answered(u16),
    /// No answer (connection refused, timeout, …).
    NoAnswer(String),
}

/// The outbox, in the hub's database.
pub struct Outbox {
    kv: Arc<dyn KvStore>,
    cfg: WebhookConfig,
    /// Changes are read, decided and written one at a time.
    write: Mutex<()>,
    /// Wakes the sender: a delivery became due now.
    pub(crate) due_now: Notify,
}

impl Outbox {
    pub fn new(kv: Arc<dyn KvStore>, cfg: WebhookConfig) -> Outbox {
        Outbox {
            kv,
            cfg,
            write: Mutex::new(()),
            due_now: Notify::new(),
        }
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.cfg
    }

    /// Keeps a new webhook under a fresh id; `None` when the operator has
    /// [`MAX_WEBHOOKS`] already. An outbox that has never read starts reading at `tips` (the
    /// last ledger entry and event now): what happened before is nobody's to deliver.
    pub fn create(&self, hook: &Webhook, tips: Cursors) -> Result<Option<u64>, StoreError> {
        let _w = self.write.lock();
        let kv = self.kv.as_ref();
        if WEBHOOKS.entries(kv)?.len() >= MAX_WEBHOOKS {
            return Ok(None);
        }
        let mut id = 0;
        while id == 0 || WEBHOOKS.get(kv, &id)?.is_some() {
            id = rand::random::<u64>();
        }
        let mut b = WriteBatch::new();
        if self.cursors()?.is_none() {
            CURSORS.put(&mut b, &CURSOR_LEDGER.to_vec(), &tips.ledger)?;
            CURSORS.put(&mut b, &CURSOR_EVENTS.to_vec(), &tips.events)?;
        }
        WEBHOOKS.put(&mut b, &id, hook)?;
        self.kv.write(b, Durability::Sync)?;
        Ok(Some(id))
    }

    pub fn webhooks(&self) -> Result<Vec<(u64, Webhook)>, StoreError> {
        WEBHOOKS.entries(self.kv.as_ref())
    }

    pub fn webhook(&self, id: u64) -> Result<Option<Webhook>, StoreError> {
        WEBHOOKS.get(self.kv.as_ref(), &id)
    }

    /// Removes webhook `id` with its deliveries; whether there was one.
    pub fn delete(&self, id: u64) -> Result<bool, StoreError> {
        let _w = self.write.lock();
        let kv = self.kv.as_ref();
        if WEBHOOKS.get(kv, &id)?.is_none() {
            return Ok(false);
        }
        let mut b = WriteBatch::new();
        WEBHOOKS.delete(&mut b, &id);
        for item in DELIVERIES.with_prefix(kv, &id)? {
            let ((hook, seq), d) = item?;
            if d.state == DeliveryState::Pending {
                DUE.delete(&mut b, &(d.next_attempt_at_ms, hook, seq));
            }
            DELIVERIES.delete(&mut b, &(hook, seq));
        }
        self.kv.write(b, Durability::Sync)?;
        Ok(true)
    }

    /// Where the outbox has read to; `None` before its first webhook.
    pub fn cursors(&self) -> Result<Option<Cursors>, StoreError> {
        let kv = self.kv.as_ref();
        let ledger = CURSORS.get(kv, &CURSOR_LEDGER.to_vec())?;
        let events = CURSORS.get(kv, &CURSOR_EVENTS.to_vec())?;
        Ok(ledger
            .zip(events)
            .map(|(ledger, events)| Cursors { ledger, events }))
    }

    /// Makes a delivery of each event to each webhook subscribed to its type that existed
    /// when it happened, and moves the cursors to `to`, in one durable write. Returns how many
    /// deliveries it made.
    pub fn feed(
        &self,
        events: &[OutboxEvent],
        to: Cursors,
        now_ms: u64,
    ) -> Result<usize, StoreError> {
        let _w = self.write.lock();
        let kv = self.kv.as_ref();
        let hooks = WEBHOOKS.entries(kv)?;
        let mut next = CURSORS.get(kv, &NEXT_DELIVERY.to_vec())?.unwrap_or(1);
        let mut b = WriteBatch::new();
        let mut made = 0;
        for e in events {
            for (id, hook) in &hooks {
                if !hook.events.contains(&e.event_type) || e.at_ms < hook.created_at_ms {
                    continue;
                }
                let d = Delivery {
                    event_id: e.event_id.clone(),
                    event_type: e.event_type,
                    body: e.body.clone(),
                    created_at_ms: now_ms,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_at_ms: now_ms,
                    last_attempt_at_ms: None,
                    last_status: None,
                    last_error: None,
                };
                DELIVERIES.put(&mut b, &(*id, next), &d)?;
                DUE.put(&mut b, &(now_ms, *id, next), &Vec::new())?;
                next = next
                    .checked_add(1)
                    .ok_or_else(|| StoreError::Corrupt("delivery numbers ran out".into()))?;
                made += 1;
            }
        }
        CURSORS.put(&mut b, &NEXT_DELIVERY.to_vec(), &next)?;
        CURSORS.put(&mut b, &CURSOR_LEDGER.to_vec(), &to.ledger)?;
        CURSORS.put(&mut b, &CURSOR_EVENTS.to_vec(), &to.events)?;
        self.kv.write(b, Durability::Sync)?;
        if made > 0 {
            self.due_now.notify_one();
        }
        Ok(made)
    }

    /// Up to `limit` pending deliveries due at `now_ms`, oldest due first, with their webhook.
    #[allow(clippy::type_complexity)]
    pub fn due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<((u64, u64), Webhook, Delivery)>, StoreError> {
        let kv = self.kv.as_ref();
        let mut out = Vec::new();
        let mut stale = WriteBatch::new();
        let mut any_stale = false;
        for item in DUE.iter(kv, None, Direction::Forward)? {
            let ((at, hook, seq), _) = item?;
            if at > now_ms || out.len() >= limit {
                break;
            }
            match (WEBHOOKS.get(kv, &hook)?, DELIVERIES.get(kv, &(hook, seq))?) {
                (Some(w), Some(d)) if d.state == DeliveryState::Pending => {
                    out.push(((hook, seq), w, d))
                }
                // Nothing left to send under this entry: it goes, so it is not due forever.
                _ => {
                    DUE.delete(&mut stale, &(at, hook, seq));
                    any_stale = true;
                }
            }
        }
        if any_stale {
            let _w = self.write.lock();
            self.kv.write(stale, Durability::Sync)?;
        }
        Ok(out)
    }

    /// When the first pending delivery is due, if any.
    pub fn next_due_ms(&self) -> Result<Option<u64>, StoreError> {
        let kv = self.kv.as_ref();
        Ok(DUE
            .iter(kv, None, Direction::Forward)?
            .next()
            .transpose()?
            .map(|((at, _, _), _)| at))
    }

    /// Records attempt `attempt` of delivery `key`, made at `now_ms`: delivered on a 2xx,
    /// else due again after the backoff, or failed once every attempt is spent.
    pub fn record(&self, key: (u64, u64), attempt: Attempt, now_ms: u64) -> Result<(), StoreError> {
        let _w = self.write.lock();
        let kv = self.kv.as_ref();
        // Removed (with its webhook) while it was in flight: nothing to record.
        let Some(mut d) = DELIVERIES.get(kv, &key)? else {
            return Ok(());
        };
        let mut b = WriteBatch::new();
        if d.state == DeliveryState::Pending {
            DUE.delete(&mut b, &(d.next_attempt_at_ms, key.0, key.1));
        }
        d.attempts = d.attempts.saturating_add(1);
        d.last_attempt_at_ms = Some(now_ms);
        let delivered = match attempt {
            Attempt::Answered(status) => {
                d.last_status = Some(status);
                d.last_error = None;
                (200..300).contains(&status)
            }
            Attempt::NoAnswer(why) => {
                d.last_status = None;
                d.last_error = Some(why);
                false
            }
        };
        match (delivered, self.cfg.retry_after_ms(d.attempts)) {
            (true, _) => d.state = DeliveryState::Delivered,
            (false, Some(wait)) => {
                d.state = DeliveryState::Pending;
                d.next_attempt_at_ms = now_ms.saturating_add(wait);
                DUE.put(&mut b, &(d.next_attempt_at_ms, key.0, key.1), &Vec::new())?;
            }
            (false, None) => d.state = DeliveryState::Failed,
        }
        DELIVERIES.put(&mut b, &key, &d)?;
        self.kv.write(b, Durability::Sync)
    }

    /// Webhook `hook`'s deliveries numbered above `after`, at most `limit`, oldest first.
    pub fn deliveries(
        &self,
        hook: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Delivery)>, StoreError> {
        let kv = self.kv.as_ref();
        let mut out = Vec::new();
        let start = (hook, after.saturating_add(1));
        for item in DELIVERIES.iter(kv, Some(&start), Direction::Forward)? {
            let ((h, seq), d) = item?;
            if h != hook || out.len() >= limit {
                break;
            }
            out.push((seq, d));
        }
        Ok(out)
    }

    /// Deletes the deliveries done (delivered or failed) whose last attempt was before
    /// `before_ms`, at most `limit` of them; returns how many. Pending ones stay.
    pub fn prune(&self, before_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let _w = self.write.lock();
        let kv = self.kv.as_ref();
        let mut b = WriteBatch::new();
        let mut n = 0;
        for item in DELIVERIES.iter(kv, None, Direction::Forward)? {
            if n >= limit {
                break;
            }
            let (key, d) = item?;
            let done_at = d.last_attempt_at_ms.unwrap_or(d.created_at_ms);
            if d.state != DeliveryState::Pending && done_at < before_ms {
                DELIVERIES.delete(&mut b, &key);
                n += 1;
            }
        }
        if n > 0 {
            self.kv.write(b, Durability::Sync)?;
        }
        Ok(n)
    }

    /// Makes delivery `key` due now again, whatever became of it (the attempts already made
    /// count on); the delivery as it now is, or `None` if there is none.
    pub fn redeliver(&self, key: (u64, u64), now_ms: u64) -> Result<Option<Delivery>, StoreError> {
        let _w = self.write.lock();
        let kv = self.kv.as_ref();
        let Some(mut d) = DELIVERIES.get(kv, &key)? else {
            return Ok(None);
        };
        let mut b = WriteBatch::new();
        if d.state == DeliveryState::Pending {
            DUE.delete(&mut b, &(d.next_attempt_at_ms, key.0, key.1));
        }
        d.state = DeliveryState::Pending;
        d.next_attempt_at_ms = now_ms;
        // A failed delivery gets one more attempt (and its backoff) before it fails again.
        d.attempts = d.attempts.min(self.cfg.max_attempts.saturating_sub(1));
        DUE.put(&mut b, &(now_ms, key.0, key.1), &Vec::new())?;
        DELIVERIES.put(&mut b, &key, &d)?;
        self.kv.write(b, Durability::Sync)?;
        self.due_now.notify_one();
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doin_store::MemStore;

    fn outbox(max_attempts: u32) -> Outbox {
        let kv: Arc<dyn KvStore> = Arc::new(MemStore::new(crate::store::COLUMNS));
        Outbox::new(
            kv,
            WebhookConfig {
                first_retry_ms: 100,
                max_retry_ms: 1_000,
                max_attempts,
                timeout_ms: 1_000,
                keep_secs: 60,
            },
        )
    }

    fn hook(events: Vec<WebhookEventType>, created_at_ms: u64) -> Webhook {
        Webhook {
            url: "http://127.0.0.1:9/".into(),
            events,
            secret: [1; 32],
            created_at_ms,
        }
    }

    fn event(id: &str, t: WebhookEventType, at_ms: u64) -> OutboxEvent {
        OutboxEvent {
            event_id: id.into(),
            event_type: t,
            at_ms,
            body: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    const TIPS: Cursors = Cursors {
        ledger: 7,
        events: 3,
    };

    #[test]
    fn events_go_to_the_webhooks_subscribed_that_existed_when_they_happened() {
        let o = outbox(3);
        assert_eq!(o.cursors().unwrap(), None);
        let payouts = o
            .create(&hook(vec![WebhookEventType::PayoutSent], 1_000), TIPS)
            .unwrap()
            .unwrap();
        assert_eq!(o.cursors().unwrap(), Some(TIPS), "starts at the tips");
        let later = o
            .create(
                &hook(
                    vec![
                        WebhookEventType::PayoutSent,
                        WebhookEventType::ChannelClosed,
                    ],
                    2_000,
                ),
                TIPS,
            )
            .unwrap()
            .unwrap();
        let made = o
            .feed(
                &[
                    event("p8", WebhookEventType::PayoutSent, 1_500),
                    event("e4", WebhookEventType::ChannelClosed, 2_500),
                    event("p9", WebhookEventType::PayoutSent, 2_500),
                    event("p10", WebhookEventType::PaymentReceived, 2_600),
                ],
                Cursors {
                    ledger: 10,
                    events: 4,
                },
                3_000,
            )
            .unwrap();
        // p8 → the first only (the second came later); e4 → the second; p9 → both.
        assert_eq!(made, 4);
        let ids = |h| -> Vec<String> {
            o.deliveries(h, 0, 10)
                .unwrap()
                .into_iter()
                .map(|(_, d)| d.event_id)
                .collect()
        };
        assert_eq!(ids(payouts), ["p8", "p9"]);
        assert_eq!(ids(later), ["e4", "p9"]);
        assert_eq!(
            o.cursors().unwrap(),
            Some(Cursors {
                ledger: 10,
                events: 4
            })
        );
        assert_eq!(o.due(3_000, 100).unwrap().len(), 4);
        assert!(o.due(2_999, 100).unwrap().is_empty());
    }

    #[test]
    fn a_refused_delivery_backs_off_then_fails_and_a_redelivery_tries_once_more() {
        let o = outbox(3);
        let h = o
            .create(&hook(vec![WebhookEventType::FundSettled], 0), TIPS)
            .unwrap()
            .unwrap();
        o.feed(
            &[event("e4", WebhookEventType::FundSettled, 1)],
            TIPS,
            1_000,
        )
        .unwrap();
        let key = (h, 1);
        o.record(key, Attempt::Answered(503), 1_000).unwrap();
        assert_eq!(o.next_due_ms().unwrap(), Some(1_100));
        o.record(key, Attempt::NoAnswer("connection refused".into()), 1_100)
            .unwrap();
        assert_eq!(o.next_due_ms().unwrap(), Some(1_400), "three times longer");
        o.record(key, Attempt::Answered(500), 1_400).unwrap();
        let d = &o.deliveries(h, 0, 10).unwrap()[0].1;
        assert_eq!((d.state, d.attempts), (DeliveryState::Failed, 3));
        assert_eq!(o.next_due_ms().unwrap(), None, "given up: nothing due");

        let again = o.redeliver(key, 5_000).unwrap().unwrap();
        assert_eq!(again.state, DeliveryState::Pending);
        assert_eq!(o.due(5_000, 10).unwrap().len(), 1);
        o.record(key, Attempt::Answered(500), 5_000).unwrap();
        assert_eq!(
            o.deliveries(h, 0, 10).unwrap()[0].1.state,
            DeliveryState::Failed,
            "one more attempt, then failed again"
        );
        o.redeliver(key, 6_000).unwrap();
        o.record(key, Attempt::Answered(200), 6_000).unwrap();
        assert_eq!(
            o.deliveries(h, 0, 10).unwrap()[0].1.state,
            DeliveryState::Delivered
        );
        assert!(o.redeliver((h, 99), 6_000).unwrap().is_none());
        // Done deliveries go once old enough; pending ones never.
        o.feed(
            &[event("e5", WebhookEventType::FundSettled, 2)],
            TIPS,
            6_500,
        )
        .unwrap();
        assert_eq!(o.prune(6_000, 100).unwrap(), 0, "attempted at 6 000");
        assert_eq!(o.prune(7_000, 100).unwrap(), 1);
        let left: Vec<String> = o
            .deliveries(h, 0, 10)
            .unwrap()
            .into_iter()
            .map(|(_, d)| d.event_id)
            .collect();
        assert_eq!(left, ["e5"], "the pending one stays");
        assert_eq!(o.prune(u64::MAX, 100).unwrap(), 0);
        // Removing the webhook removes its deliveries and what was due.
        assert!(o.delete(h).unwrap());
        assert!(o.deliveries(h, 0, 10).unwrap().is_empty());
        assert_eq!(o.next_due_ms().unwrap(), None);
        assert!(!o.delete(h).unwrap());
    }
}
