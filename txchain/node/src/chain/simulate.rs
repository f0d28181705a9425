//! A dry run of a submission: what submitting a transaction now would do — refused and why,
//! or admitted (replacing what), with the fee it would pay and the balances it would change in
//! the next block — computed by the same checks and the same state transition as the real
//! thing, on a copy-on-write overlay. Must not admit, persist or announce anything.

use super::*;
use doin_tx_core::TxReceipt;

/// Accounts whose balance a transaction changes: key, balance before, balance after.
pub type BalanceChanges = Vec<(PublicKeyBytes, Amount, Amount)>;

/// What submitting a transaction now would do ([`TxChain::simulate`]).
#[derive(Debug)]
pub struct Simulation {
    pub id: TxId,
    pub sender: PublicKeyBytes,
    /// Already pending or in a block: its status (nothing else is checked then).
    pub known: Option<TxStatus>,
    /// Why a submission now would be refused.
    pub refused: Option<MempoolError>,
    /// The pending transaction of the same sender and nonce it would replace.
    pub replaces: Option<TxId>,
    /// The next block's base fee, at which the effects are computed.
    pub base_fee: Amount,
    /// Applied in the next block after the sender's earlier pending transactions: its receipt
    /// and every account whose balance it changes, with the balance before and after. `None`
    /// when it is refused or known.
    pub applied: Option<(TxReceipt, BalanceChanges)>,
}

impl TxChain {
    /// Checks `bytes` as [`TxChain::submit`] would and works out their effects, changing
    /// nothing. Bytes that do not decode are an error (there is no transaction to simulate).
    pub fn simulate(&self, bytes: &[u8]) -> Result<Simulation, SubmitError> {
        let max = self.params.consensus.max_tx_weight;
        let tx = Tx::decode(bytes, max)?;
        let body = tx.body().clone();
        let mut sim = Simulation {
            id: tx.id(),
            sender: body.sender,
            known: None,
            refused: None,
            replaces: None,
            base_fee: self.next_base_fee(),
            applied: None,
        };
        if let Some(status) = self.known_status(&sim.id)? {
            sim.known = Some(status);
            return Ok(sim);
        }
        let checked = tx
            .check_stateless(&self.params.chain_id, max, true)
            .map_err(SubmitError::from)
            .and_then(|()| self.check_stake_rules(&tx));
        match checked {
            Ok(()) => {}
            Err(SubmitError::Rejected(e)) => {
                sim.refused = Some(e);
                return Ok(sim);
            }
            Err(e) => return Err(e),
        }
        let earlier: Vec<Tx> = {
            let pool = self.mempool.lock();
            let account = self.account(&body.sender)?;
            match pool.check(&tx, account, sim.base_fee) {
                Ok(plan) => sim.replaces = plan.replacing,
                Err(e) => {
                    sim.refused = Some(e);
                    return Ok(sim);
                }
            }
            let mut earlier: Vec<Tx> = pool
                .pending_of(&body.sender)
                .into_iter()
                .filter(|t| t.body().nonce < body.nonce)
                .cloned()
                .collect();
            earlier.sort_by_key(|t| t.body().nonce);
            earlier
        };
        sim.applied = self.preview(&earlier, &tx, sim.base_fee)?;
        Ok(sim)
    }

    /// `tx` applied after `earlier` on an overlay of the tip state, as the next block would.
    /// `None` if any of them fails there (the block builder would leave it out).
    fn preview(
        &self,
        earlier: &[Tx],
        tx: &Tx,
        base_fee: Amount,
    ) -> Result<Option<(TxReceipt, BalanceChanges)>, SubmitError> {
        let height = self.tip.read().header.height.saturating_add(1);
        let proposer = self
            .params
            .expected_proposer(height)
            .unwrap_or(PublicKeyBytes::zero());
        let apply = |overlay: &mut Overlay<'_, ChainStore>, t: &Tx| {
            apply_tx(&self.params, overlay, t, height, base_fee, &proposer, false)
        };
        let store_error = |e| SubmitError::Store(crate::store::state_error(e));
        // The state the transaction meets, and that state with it applied.
        let mut before = Overlay::new(&self.store);
        let mut after = Overlay::new(&self.store);
        for t in earlier {
            match (apply(&mut before, t), apply(&mut after, t)) {
                (Ok(_), Ok(_)) => {}
                (Err(TxError::State(e)), _) | (_, Err(TxError::State(e))) => {
                    return Err(store_error(e))
                }
                _ => return Ok(None),
            }
        }
        let receipt = match apply(&mut after, tx) {
            Ok(receipt) => receipt,
            Err(TxError::State(e)) => return Err(store_error(e)),
            Err(_) => return Ok(None),
        };
        let mut balances = Vec::new();
        for (key, account) in after.into_changes().0 {
            let was = before.account(&key).map_err(store_error)?.balance;
            if was != account.balance {
                balances.push((key, was, account.balance));
            }
        }
        Ok(Some((receipt, balances)))
    }
}
