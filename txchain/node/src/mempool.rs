//! The pool of pending transactions (docs/architecture.md#the-transfer-chain-on-one-node), as
//! a plain data structure: no I/O, no clock, no locking. The service persists what it admits
//! and passes the time in.
//!
//! Rules:
//! - one queue per sender, ordered by nonce and always contiguous from the account's nonce, so
//!   every queued transaction can be included in order;
//! - a transaction with the nonce of a queued one replaces it only with ≥ +10% on both fee caps;
//! - the sender must afford every queued transaction at its maximum fee;
//! - caps on transactions per sender and on total bytes; when full, the cheapest queue tail is
//!   evicted for a better-paying newcomer, never a queue head or middle;
//! - entries expire after a while, taking later nonces of the same sender with them;
//! - block candidates come out by tip (ties by sender key), a pure function of the content, so
//!   two pools with the same transactions propose the same block.

use doin_tx_core::{Account, Tx, TxError, TxId};
use doin_types::{Amount, PublicKeyBytes};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// Limits of the pool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolConfig {
    /// Total encoded bytes held.
    pub max_bytes: usize,
    /// Transactions queued per sender.
    pub max_per_sender: usize,
    /// Transactions queued per sender when the newcomer offers a tip of at least
    /// `paying_tip_per_weight` (an exchange's withdrawals): paying senders may queue more.
    pub max_per_paying_sender: usize,
    pub paying_tip_per_weight: Amount,
    /// Milliseconds a transaction may wait before it is dropped.
    pub expiry_ms: u64,
    /// Minimum fee-cap increase, in percent, for a replacement.
    pub replacement_bump_percent: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_bytes: 64 * 1024 * 1024,
            max_per_sender: 64,
            max_per_paying_sender: 1_024,
            paying_tip_per_weight: Amount::from_base_units(2),
            expiry_ms: 3 * 60 * 60 * 1000,
            replacement_bump_percent: 10,
        }
    }
}

/// Why the pool refused a transaction that is valid on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error("replacement must raise max_fee_per_weight to ≥ {min_max_fee} and max_priority_fee_per_weight to ≥ {min_priority}")]
    ReplacementUnderpriced {
        min_max_fee: Amount,
        min_priority: Amount,
    },
    #[error("this sender already has {max} pending transactions")]
    SenderQueueFull { max: usize },
    #[error("the pool is full and this transaction's tip is too low to displace another")]
    Full,
}

impl MempoolError {
    pub fn kind(&self) -> &'static str {
        match self {
            MempoolError::Tx(e) => e.kind(),
            MempoolError::ReplacementUnderpriced { .. } => "replacement-underpriced",
            MempoolError::SenderQueueFull { .. } => "sender-queue-full",
            MempoolError::Full => "mempool-full",
        }
    }
}

/// What happened to an admitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Added,
    Replaced(TxId),
}

/// What admitting a transaction would do ([`Mempool::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The pending transaction of the same sender and nonce it would replace.
    pub replacing: Option<TxId>,
    /// Cheaper transactions of other senders it would push out to make room.
    pub evicted: Vec<TxId>,
}

/// Result of a successful insert: how it was admitted and what was evicted to make room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    pub admission: Admission,
    pub evicted: Vec<TxId>,
}

struct Entry {
    tx: Tx,
    added_ms: u64,
    seq: u64,
}

#[derive(Default)]
pub struct Mempool {
    cfg: MempoolConfig,
    entries: HashMap<TxId, Entry>,
    senders: BTreeMap<PublicKeyBytes, BTreeMap<u64, TxId>>,
    bytes: usize,
    seq: u64,
}

fn bump(v: Amount, percent: u64) -> Amount {
    let x = u128::from(v.base_units()) * u128::from(100 + percent);
    let up = x.div_ceil(100);
    Amount::from_base_units(u64::try_from(up).unwrap_or(u64::MAX))
}

impl Mempool {
    pub fn new(cfg: MempoolConfig) -> Mempool {
        Mempool {
            cfg,
            ..Mempool::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many pending transactions a sender may have when its newcomer offers `tip` per
    /// weight unit.
    fn sender_limit(&self, tip: Amount) -> usize {
        if tip >= self.cfg.paying_tip_per_weight {
            self.cfg.max_per_paying_sender.max(self.cfg.max_per_sender)
        } else {
            self.cfg.max_per_sender
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, id: &TxId) -> bool {
        self.entries.contains_key(id)
    }

    /// Every pending transaction, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Tx> {
        self.entries.values().map(|e| &e.tx)
    }

    pub fn get(&self, id: &TxId) -> Option<&Tx> {
        self.entries.get(id).map(|e| &e.tx)
    }

    /// The next nonce a new transaction of `sender` should use.
    pub fn next_nonce(&self, sender: &PublicKeyBytes, account_nonce: u64) -> u64 {
        let queued = self.senders.get(sender).map_or(0, |q| q.len()) as u64;
        account_nonce.saturating_add(queued)
    }

    /// Pending transactions of `sender`, in nonce order.
    pub fn pending_of(&self, sender: &PublicKeyBytes) -> Vec<&Tx> {
        self.senders
            .get(sender)
            .map(|q| q.values().filter_map(|id| self.get(id)).collect())
            .unwrap_or_default()
    }

    /// Admits `tx` (already checked statelessly, signature included) given its sender's account
    /// at the tip and the base fee of the next block.
    pub fn insert(
        &mut self,
        tx: Tx,
        account: Account,
        base_fee: Amount,
        now_ms: u64,
    ) -> Result<Inserted, MempoolError> {
        let plan = self.check(&tx, account, base_fee)?;
        for id in &plan.evicted {
            self.remove(id);
        }
        if let Some(old) = plan.replacing {
            self.remove(&old);
        }
        let body = tx.body().clone();
        self.seq += 1;
        let id = tx.id();
        self.bytes += tx.bytes().len();
        self.senders
            .entry(body.sender)
            .or_default()
            .insert(body.nonce, id);
        self.entries.insert(
            id,
            Entry {
                tx,
                added_ms: now_ms,
                seq: self.seq,
            },
        );
        Ok(Inserted {
            admission: match plan.replacing {
                Some(old) => Admission::Replaced(old),
                None => Admission::Added,
            },
            evicted: plan.evicted,
        })
    }

    /// What [`Mempool::insert`] would do with `tx`, changing nothing: the pending transaction
    /// it would replace and those it would evict, or why it would be refused.
    pub fn check(&self, tx: &Tx, account: Account, base_fee: Amount) -> Result<Plan, MempoolError> {
        let body = tx.body().clone();
        if body.max_fee_per_weight < base_fee {
            return Err(TxError::FeeBelowBaseFee {
                max_fee: body.max_fee_per_weight,
                base_fee,
            }
            .into());
        }
        if body.nonce < account.nonce {
            return Err(TxError::NonceTooLow {
                expected: account.nonce,
                got: body.nonce,
            }
            .into());
        }
        let empty = BTreeMap::new();
        let queue = self.senders.get(&body.sender).unwrap_or(&empty);
        let next = account.nonce.saturating_add(queue.len() as u64);
        if body.nonce > next {
            return Err(TxError::NonceTooHigh {
                expected: next,
                got: body.nonce,
            }
            .into());
        }
        let replacing = queue.get(&body.nonce).copied();
        if let Some(old_id) = replacing {
            if let Some(old) = self.entries.get(&old_id) {
                let ob = old.tx.body();
                let min_max_fee = bump(ob.max_fee_per_weight, self.cfg.replacement_bump_percent);
                let min_priority = bump(
                    ob.max_priority_fee_per_weight,
                    self.cfg.replacement_bump_percent,
                );
                if body.max_fee_per_weight < min_max_fee
                    || body.max_priority_fee_per_weight < min_priority
                {
                    return Err(MempoolError::ReplacementUnderpriced {
                        min_max_fee,
                        min_priority,
                    });
                }
            }
        } else if queue.len() >= self.sender_limit(body.max_priority_fee_per_weight) {
            return Err(MempoolError::SenderQueueFull {
                max: self.sender_limit(body.max_priority_fee_per_weight),
            });
        }
        // The sender must afford the whole queue at maximum fees.
        let mut needed = tx.max_cost()?;
        for (nonce, id) in queue {
            if *nonce == body.nonce {
                continue;
            }
            if let Some(e) = self.entries.get(id) {
                needed = needed
                    .checked_add(e.tx.max_cost()?)
                    .map_err(|_| TxError::AmountOverflow)?;
            }
        }
        if needed > account.balance {
            return Err(TxError::InsufficientBalance {
                needed,
                available: account.balance,
            }
            .into());
        }
        // Room by bytes, evicting cheaper queue tails of other senders if needed.
        let freed = replacing
            .and_then(|id| self.entries.get(&id))
            .map_or(0, |e| e.tx.bytes().len());
        let incoming = tx.bytes().len();
        let mut victims_planned: Vec<TxId> = Vec::new();
        let mut projected = self.bytes.saturating_sub(freed) + incoming;
        while projected > self.cfg.max_bytes {
            let victim = self.cheapest_tail(&body.sender, &victims_planned);
            match victim {
                Some((id, priority, size)) if priority < body.max_priority_fee_per_weight => {
                    victims_planned.push(id);
                    projected = projected.saturating_sub(size);
                }
                _ => return Err(MempoolError::Full),
            }
        }
        Ok(Plan {
            replacing,
            evicted: victims_planned,
        })
    }

    /// The cheapest (lowest priority fee, then newest) last transaction of a queue other than
    /// `except`'s, skipping already planned victims. Only tails: removing one keeps the queue
    /// contiguous. A planned victim's predecessor becomes the new tail.
    fn cheapest_tail(
        &self,
        except: &PublicKeyBytes,
        planned: &[TxId],
    ) -> Option<(TxId, Amount, usize)> {
        let mut best: Option<(Amount, Reverse<u64>, TxId, usize)> = None;
        for (sender, q) in &self.senders {
            if sender == except {
                continue;
            }
            let Some(id) = q.values().rev().find(|id| !planned.contains(id)) else {
                continue;
            };
            let Some(e) = self.entries.get(id) else {
                continue;
            };
            let key = (
                e.tx.body().max_priority_fee_per_weight,
                Reverse(e.seq),
                *id,
                e.tx.bytes().len(),
            );
            if best.as_ref().is_none_or(|b| (key.0, key.1) < (b.0, b.1)) {
                best = Some(key);
            }
        }
        best.map(|(p, _, id, size)| (id, p, size))
    }

    /// Removes one entry (no contiguity repair; callers remove tails or revalidate).
    fn remove(&mut self, id: &TxId) -> Option<Tx> {
        let e = self.entries.remove(id)?;
        self.bytes = self.bytes.saturating_sub(e.tx.bytes().len());
        let body = e.tx.body();
        if let Some(q) = self.senders.get_mut(&body.sender) {
            q.remove(&body.nonce);
            if q.is_empty() {
                self.senders.remove(&body.sender);
            }
        }
        Some(e.tx)
    }

    /// Removes `id` and every later nonce of the same sender (keeping queues contiguous).
    pub fn remove_with_followers(&mut self, id: &TxId) -> Vec<TxId> {
        let Some((sender, nonce)) = self.get(id).map(|t| (t.body().sender, t.body().nonce)) else {
            return Vec::new();
        };
        let ids: Vec<TxId> = self
            .senders
            .get(&sender)
            .map(|q| q.range(nonce..).map(|(_, id)| *id).collect())
            .unwrap_or_default();
        for i in &ids {
            self.remove(i);
        }
        ids
    }

    /// After a block: drops the included transactions and re-checks the queues of `senders`
    /// (every sender that appears in the block) against their new accounts. Returns the ids
    /// dropped without inclusion (conflicting nonce, now unaffordable).
    pub fn on_block(
        &mut self,
        included: &[TxId],
        senders: &[PublicKeyBytes],
        account_of: impl Fn(&PublicKeyBytes) -> Account,
    ) -> Vec<TxId> {
        for id in included {
            self.remove(id);
        }
        let mut dropped = Vec::new();
        for s in senders {
            dropped.extend(self.revalidate_sender(s, account_of(s)));
        }
        dropped
    }

    /// Keeps the longest valid prefix of `sender`'s queue: contiguous from the account nonce
    /// and affordable at maximum fees.
    pub fn revalidate_sender(&mut self, sender: &PublicKeyBytes, account: Account) -> Vec<TxId> {
        let Some(q) = self.senders.get(sender) else {
            return Vec::new();
        };
        let mut expected = account.nonce;
        let mut spent = Amount::ZERO;
        let mut drop = Vec::new();
        let mut broken = false;
        for (nonce, id) in q {
            if *nonce < account.nonce {
                drop.push(*id);
                continue;
            }
            let cost = self.entries.get(id).and_then(|e| e.tx.max_cost().ok());
            let total = cost.and_then(|c| spent.checked_add(c).ok());
            match total {
                Some(t) if !broken && *nonce == expected && t <= account.balance => {
                    spent = t;
                    expected += 1;
                }
                _ => {
                    broken = true;
                    drop.push(*id);
                }
            }
        }
        for id in &drop {
            self.remove(id);
        }
        drop
    }

    /// Up to `max` transactions admitted at or before `added_by_ms`, oldest first: what the
    /// node offers its peers again (a transaction admitted while gossip had nobody to send it
    /// to would otherwise wait here until it expires).
    pub fn waiting(&self, added_by_ms: u64, max: usize) -> Vec<Tx> {
        let mut old: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| e.added_ms <= added_by_ms)
            .collect();
        old.sort_by_key(|e| e.seq);
        old.into_iter().take(max).map(|e| e.tx.clone()).collect()
    }

    /// Pending transactions in the order they were admitted, each with its place in that
    /// order: the first `max` after place `after` (a place this returned earlier; places are
    /// counted afresh when the node restarts).
    pub fn admitted_after(&self, after: Option<u64>, max: usize) -> Vec<(u64, Tx)> {
        let mut later: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| after.is_none_or(|a| e.seq > a))
            .collect();
        later.sort_by_key(|e| e.seq);
        later
            .into_iter()
            .take(max)
            .map(|e| (e.seq, e.tx.clone()))
            .collect()
    }

    /// Drops transactions older than the expiry, with every later nonce of the same sender.
    pub fn expire(&mut self, now_ms: u64) -> Vec<TxId> {
        let mut cut: BTreeMap<PublicKeyBytes, u64> = BTreeMap::new();
        for e in self.entries.values() {
            if e.added_ms.saturating_add(self.cfg.expiry_ms) <= now_ms {
                let b = e.tx.body();
                let n = cut.entry(b.sender).or_insert(b.nonce);
                *n = (*n).min(b.nonce);
            }
        }
        let mut dropped = Vec::new();
        for (sender, from) in cut {
            let ids: Vec<TxId> = self
                .senders
                .get(&sender)
                .map(|q| q.range(from..).map(|(_, id)| *id).collect())
                .unwrap_or_default();
            for id in ids {
                self.remove(&id);
                dropped.push(id);
            }
        }
        dropped
    }

    /// Block candidates at `base_fee`, best tip first, each sender's in nonce order, within
    /// `max_weight`. Deterministic for a given content.
    pub fn candidates(&self, base_fee: Amount, max_weight: u64) -> Vec<Tx> {
        // Heap item: (tip at base fee, Reverse(sender)) → pop highest tip, lowest key first.
        let mut heap = BinaryHeap::new();
        let mut cursors: BTreeMap<
            PublicKeyBytes,
            std::collections::btree_map::Values<'_, u64, TxId>,
        > = BTreeMap::new();
        for (sender, q) in &self.senders {
            let mut it = q.values();
            if let Some(id) = it.next() {
                if let Some(e) = self.entries.get(id) {
                    if let Some(tip) = tip_at(&e.tx, base_fee) {
                        heap.push((tip, Reverse(*sender), *id));
                        cursors.insert(*sender, it);
                    }
                }
            }
        }
        let mut out = Vec::new();
        let mut weight: u64 = 0;
        while let Some((_, Reverse(sender), id)) = heap.pop() {
            let Some(e) = self.entries.get(&id) else {
                continue;
            };
            let w = e.tx.weight();
            if weight.saturating_add(w) > max_weight {
                continue; // this sender's later nonces cannot go either
            }
            weight += w;
            out.push(e.tx.clone());
            if let Some(it) = cursors.get_mut(&sender) {
                if let Some(next_id) = it.next() {
                    if let Some(n) = self.entries.get(next_id) {
                        if let Some(tip) = tip_at(&n.tx, base_fee) {
                            heap.push((tip, Reverse(sender), *next_id));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Effective tip per weight at `base_fee`, or `None` if the transaction cannot pay the base fee.
fn tip_at(tx: &Tx, base_fee: Amount) -> Option<Amount> {
    let b = tx.body();
    if b.max_fee_per_weight < base_fee {
        return None;
    }
    Some(doin_tx_core::fees::effective_tip_per_weight(
        b.max_fee_per_weight,
        b.max_priority_fee_per_weight,
        base_fee,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use doin_crypto::KeyPair;
    use doin_tx_core::{TxBody, TxPayload};
    use doin_types::{ChainId, Hash256};

    fn tx(key: &KeyPair, nonce: u64, max_fee: u64, tip: u64, amount: u64) -> Tx {
        let body = TxBody {
            chain_id: ChainId(Hash256([1; 32])),
            sender: key.public(),
            nonce,
            max_fee_per_weight: Amount::from_base_units(max_fee),
            max_priority_fee_per_weight: Amount::from_base_units(tip),
            payload: TxPayload::Transfer {
                to: KeyPair::generate().public(),
                amount: Amount::from_base_units(amount),
            },
        };
        Tx::from_signed(body.sign(key).unwrap()).unwrap()
    }

    fn rich() -> Account {
        Account {
            balance: Amount::from_base_units(1_000_000_000),
            nonce: 0,
        }
    }

    const BASE: Amount = Amount::from_base_units(10);

    #[test]
    fn nonces_must_be_contiguous() {
        let k = KeyPair::generate();
        let mut m = Mempool::new(MempoolConfig::default());
        assert!(m.insert(tx(&k, 0, 20, 1, 1), rich(), BASE, 0).is_ok());
        assert!(matches!(
            m.insert(tx(&k, 2, 20, 1, 1), rich(), BASE, 0),
            Err(MempoolError::Tx(TxError::NonceTooHigh {
                expected: 1,
                got: 2
            }))
        ));
        assert!(m.insert(tx(&k, 1, 20, 1, 1), rich(), BASE, 0).is_ok());
        let acct = Account { nonce: 5, ..rich() };
        assert!(matches!(
            m.insert(tx(&k, 4, 20, 1, 1), acct, BASE, 0),
            Err(MempoolError::Tx(TxError::NonceTooLow { .. }))
        ));
        assert_eq!(m.next_nonce(&k.public(), 0), 2);
    }

    #[test]
    fn pages_follow_admission_order_and_skip_what_left() {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let mut m = Mempool::new(MempoolConfig::default());
        let txs = [
            tx(&a, 0, 20, 1, 1),
            tx(&b, 0, 20, 1, 1),
            tx(&a, 1, 20, 1, 1),
        ];
        for t in &txs {
            m.insert(t.clone(), rich(), BASE, 0).unwrap();
        }
        let first = m.admitted_after(None, 2);
        let ids: Vec<TxId> = first.iter().map(|(_, t)| t.id()).collect();
        assert_eq!(ids, vec![txs[0].id(), txs[1].id()]);
        // The next page starts after the last place returned, even if that one has left.
        let last = first[1].0;
        m.remove_with_followers(&txs[1].id());
        let next = m.admitted_after(Some(last), 2);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].1.id(), txs[2].id());
        assert!(m.admitted_after(Some(next[0].0), 2).is_empty());
    }

    #[test]
    fn replacement_needs_ten_percent_on_both_caps() {
        let k = KeyPair::generate();
        let mut m = Mempool::new(MempoolConfig::default());
        let first = tx(&k, 0, 100, 10, 1);
        m.insert(first.clone(), rich(), BASE, 0).unwrap();
        assert!(matches!(
            m.insert(tx(&k, 0, 109, 20, 1), rich(), BASE, 0),
            Err(MempoolError::ReplacementUnderpriced { .. })
        ));
        assert!(matches!(
            m.insert(tx(&k, 0, 200, 10, 1), rich(), BASE, 0),
            Err(MempoolError::ReplacementUnderpriced { .. })
        ));
        let better = tx(&k, 0, 110, 11, 1);
        let r = m.insert(better.clone(), rich(), BASE, 0).unwrap();
        assert_eq!(r.admission, Admission::Replaced(first.id()));
        assert!(!m.contains(&first.id()));
        assert!(m.contains(&better.id()));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn the_whole_queue_must_be_affordable() {
        let k = KeyPair::generate();
        let mut m = Mempool::new(MempoolConfig::default());
        let one = tx(&k, 0, 20, 1, 1000);
        let cost = one.max_cost().unwrap().base_units();
        let acct = Account {
            balance: Amount::from_base_units(cost * 2 - 1),
            nonce: 0,
        };
        m.insert(one, acct, BASE, 0).unwrap();
        assert!(matches!(
            m.insert(tx(&k, 1, 20, 1, 1000), acct, BASE, 0),
            Err(MempoolError::Tx(TxError::InsufficientBalance { .. }))
        ));
    }

    #[test]
    fn senders_that_pay_enough_may_queue_more() {
        let cfg = MempoolConfig {
            max_per_sender: 2,
            max_per_paying_sender: 3,
            paying_tip_per_weight: Amount::from_base_units(4),
            ..MempoolConfig::default()
        };
        let mut m = Mempool::new(cfg);
        let a = KeyPair::generate();
        m.insert(tx(&a, 0, 50, 1, 1), rich(), BASE, 0).unwrap();
        m.insert(tx(&a, 1, 50, 1, 1), rich(), BASE, 0).unwrap();
        // Two pending: a third needs the paying tip …
        assert_eq!(
            m.insert(tx(&a, 2, 50, 3, 1), rich(), BASE, 0),
            Err(MempoolError::SenderQueueFull { max: 2 })
        );
        m.insert(tx(&a, 2, 50, 4, 1), rich(), BASE, 0).unwrap();
        // … and even paying, the higher limit holds.
        assert_eq!(
            m.insert(tx(&a, 3, 50, 9, 1), rich(), BASE, 0),
            Err(MempoolError::SenderQueueFull { max: 3 })
        );
    }

    #[test]
    fn caps_and_eviction_of_cheapest_tail() {
        let cfg = MempoolConfig {
            max_bytes: 196 * 3,
            max_per_sender: 2,
            max_per_paying_sender: 2,
            ..MempoolConfig::default()
        };
        let mut m = Mempool::new(cfg);
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        let c = KeyPair::generate();
        m.insert(tx(&a, 0, 50, 5, 1), rich(), BASE, 0).unwrap();
        m.insert(tx(&a, 1, 50, 1, 1), rich(), BASE, 0).unwrap();
        assert!(matches!(
            m.insert(tx(&a, 2, 50, 5, 1), rich(), BASE, 0),
            Err(MempoolError::SenderQueueFull { max: 2 })
        ));
        m.insert(tx(&b, 0, 50, 3, 1), rich(), BASE, 0).unwrap();
        // Full: a low payer cannot get in …
        assert_eq!(
            m.insert(tx(&c, 0, 50, 1, 1), rich(), BASE, 0),
            Err(MempoolError::Full)
        );
        // … a better one evicts the cheapest tail (a's nonce 1, tip 1).
        let r = m.insert(tx(&c, 0, 50, 4, 1), rich(), BASE, 0).unwrap();
        assert_eq!(r.evicted.len(), 1);
        assert_eq!(m.len(), 3);
        assert_eq!(m.next_nonce(&a.public(), 0), 1);
        assert!(m.bytes() <= 196 * 3);
    }

    #[test]
    fn expiry_takes_later_nonces_along() {
        let cfg = MempoolConfig {
            expiry_ms: 100,
            ..MempoolConfig::default()
        };
        let mut m = Mempool::new(cfg);
        let k = KeyPair::generate();
        m.insert(tx(&k, 0, 50, 1, 1), rich(), BASE, 0).unwrap();
        m.insert(tx(&k, 1, 50, 1, 1), rich(), BASE, 50).unwrap();
        assert!(m.expire(99).is_empty());
        assert_eq!(m.expire(100).len(), 2);
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
    }

    #[test]
    fn waiting_lists_the_old_ones_oldest_first_within_the_bound() {
        let mut m = Mempool::new(MempoolConfig::default());
        let k = KeyPair::generate();
        let j = KeyPair::generate();
        let (k0, k1, j0) = (
            tx(&k, 0, 50, 1, 1),
            tx(&k, 1, 50, 1, 1),
            tx(&j, 0, 50, 1, 1),
        );
        m.insert(k0.clone(), rich(), BASE, 10).unwrap();
        m.insert(j0.clone(), rich(), BASE, 20).unwrap();
        m.insert(k1.clone(), rich(), BASE, 30).unwrap();
        let ids = |v: Vec<Tx>| v.iter().map(Tx::id).collect::<Vec<_>>();
        assert!(m.waiting(9, 10).is_empty());
        assert_eq!(ids(m.waiting(20, 10)), vec![k0.id(), j0.id()]);
        assert_eq!(ids(m.waiting(30, 2)), vec![k0.id(), j0.id()]);
        assert_eq!(ids(m.waiting(30, 10)), vec![k0.id(), j0.id(), k1.id()]);
    }

    #[test]
    fn candidates_by_tip_then_sender_in_nonce_order() {
        let mut m = Mempool::new(MempoolConfig::default());
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        let a0 = tx(&a, 0, 50, 1, 1);
        let a1 = tx(&a, 1, 50, 9, 1);
        let b0 = tx(&b, 0, 50, 5, 1);
        for t in [&a0, &a1, &b0] {
            m.insert(t.clone(), rich(), BASE, 0).unwrap();
        }
        let ids: Vec<TxId> = m
            .candidates(BASE, u64::MAX)
            .iter()
            .map(|t| t.id())
            .collect();
        // b0 (tip 5) beats a0 (tip 1); a1 (tip 9) only after a0.
        assert_eq!(ids, vec![b0.id(), a0.id(), a1.id()]);
        // A base fee above a's cap leaves a out entirely.
        let high = Amount::from_base_units(51);
        assert!(m.candidates(high, u64::MAX).is_empty());
        // Weight budget.
        assert_eq!(m.candidates(BASE, 196 * 2).len(), 2);
    }

    #[test]
    fn on_block_drops_included_and_conflicting() {
        let mut m = Mempool::new(MempoolConfig::default());
        let k = KeyPair::generate();
        let t0 = tx(&k, 0, 50, 1, 1);
        let t1 = tx(&k, 1, 50, 1, 1);
        m.insert(t0.clone(), rich(), BASE, 0).unwrap();
        m.insert(t1.clone(), rich(), BASE, 0).unwrap();
        // A block included a different tx with nonce 0 and one with nonce 1 (not ours):
        // the account is at nonce 2 now.
        let dropped = m.on_block(&[], &[k.public()], |_| Account { nonce: 2, ..rich() });
        assert_eq!(dropped.len(), 2);
        assert!(m.is_empty());
    }
}
