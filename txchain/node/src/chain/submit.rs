//! The way in for transactions: decode, stateless checks, stake rules against the tip, the
//! mempool, then the write-ahead entry — a transaction is accepted only once it is durable.
//! Only this module admits transactions; it never builds or commits blocks.

use super::*;

impl TxChain {
    /// Validates and admits a transaction given as canonical bytes. Persists it before
    /// returning, so an accepted transaction survives a crash; a new one is then announced to
    /// peers.
    pub fn submit(&self, bytes: &[u8]) -> Result<SubmitOutcome, SubmitError> {
        let result = self.submit_relayed(bytes);
        if let Ok(o) = &result {
            if o.new {
                let _ = self
                    .announcements
                    .send(Announcement::Tx(Arc::new(bytes.to_vec())));
            }
        }
        result
    }

    /// `submit` for a transaction that came from a peer: admitted the same way, not announced
    /// (gossip relays it once it is judged valid).
    pub fn submit_relayed(&self, bytes: &[u8]) -> Result<SubmitOutcome, SubmitError> {
        let result = self.submit_inner(bytes);
        let outcome = match &result {
            Ok(o) if o.new => "accepted",
            Ok(_) => "known",
            Err(SubmitError::Rejected(e)) => e.kind(),
            Err(SubmitError::Store(_)) => "internal",
        };
        self.metrics.submissions.with_label_values(&[outcome]).inc();
        result
    }

    fn submit_inner(&self, bytes: &[u8]) -> Result<SubmitOutcome, SubmitError> {
        let max = self.params.consensus.max_tx_weight;
        let tx = Tx::decode(bytes, max)?;
        let id = tx.id();
        if let Some(known) = self.known_status(&id)? {
            return Ok(SubmitOutcome {
                id,
                status: known,
                new: false,
                replaced: None,
            });
        }
        tx.check_stateless(&self.params.chain_id, max, true)?;
        self.check_stake_rules(&tx)?;
        let event = views::pending_tx_event(&tx, self.params.network);
        let inserted = {
            let mut pool = self.mempool.lock();
            // Read state under the pool lock so the check and the insert see one tip.
            let acct = self.account(&tx.body().sender)?;
            let base_fee = self.next_base_fee();
            let inserted = pool.insert(tx, acct, base_fee, now_ms())?;
            if let Err(e) = self.store.mempool_put(&id, bytes) {
                // Not durable, so not accepted: take it back out (with any later nonces, which
                // would otherwise leave a gap) and report a node error.
                pool.remove_with_followers(&id);
                return Err(e.into());
            }
            inserted
        };
        let mut gone: Vec<(TxId, DropReason)> = inserted
            .evicted
            .iter()
            .map(|old| (*old, DropReason::Evicted))
            .collect();
        let replaced = match inserted.admission {
            Admission::Replaced(old) => {
                gone.push((old, DropReason::Replaced { by: id }));
                Some(old)
            }
            Admission::Added => None,
        };
        // Admitted again after a drop: no longer dropped.
        let forgotten = self.dropped.lock().forget(&[id]);
        crate::dropped::write(self.store.kv().as_ref(), &forgotten)?;
        self.drop_pending(&[], gone)?;
        self.events.push_tx(event);
        self.refresh_gauges();
        Ok(SubmitOutcome {
            id,
            status: TxStatus::Pending,
            new: true,
            replaced,
        })
    }

    /// A staking transaction that is next in line for its sender is tried against the tip
    /// state, so a stake below the minimum or a withdrawal before the end of the unbonding
    /// period is refused with its reason instead of waiting in the pool to be dropped. (With
    /// earlier transactions of the sender still pending, the state it will meet is not known
    /// yet; the block builder checks it then.)
    pub(super) fn check_stake_rules(&self, tx: &Tx) -> Result<(), SubmitError> {
        let body = tx.body();
        if !body.payload.recipients().is_empty() {
            return Ok(());
        }
        let account = self.account(&body.sender)?;
        if body.nonce != account.nonce {
            return Ok(());
        }
        let height = self.tip.read().header.height.saturating_add(1);
        let base_fee = self.next_base_fee();
        let mut overlay = Overlay::new(&self.store);
        let proposer = self
            .params
            .expected_proposer(height)
            .unwrap_or(PublicKeyBytes::zero());
        match apply_tx(
            &self.params,
            &mut overlay,
            tx,
            height,
            body.max_fee_per_weight.max(base_fee),
            &proposer,
            false,
        ) {
            Ok(_) => Ok(()),
            Err(TxError::State(e)) => Err(SubmitError::Store(crate::store::state_error(e))),
            // Fee and balance rules are the mempool's to report, with its own wording.
            Err(TxError::FeeBelowBaseFee { .. } | TxError::InsufficientBalance { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn known_status(&self, id: &TxId) -> Result<Option<TxStatus>, StoreError> {
        if self.mempool.lock().contains(id) {
            return Ok(Some(TxStatus::Pending));
        }
        Ok(self
            .store
            .tx_location(id)?
            .map(|loc| self.status_of(loc.height).0))
    }
}
