//! Where the two chains meet: the transfer chain's view of the main chain (its `MainView`
//! port) and the main chain's view of the transfer chain (its `TxChainView` port), each
//! implemented over the other chain running in this process, and the main chain's
//! reorganisations forwarded to the transfer chain's event stream. Neither chain crate knows
//! the other.

use doin_main_core::MainBlock;
use doin_main_core::TxChainView;
use doin_main_node::store::OptimaeStatus;
use doin_main_node::MainChain;
use doin_tx_core::state::{decode_stake, decode_stakers, stake_key, stakers_key};
use doin_tx_core::{jmt, StakeRole};
use doin_tx_core::{AnchorHold, MainView};
use doin_tx_node::TxChain;
use doin_types::{
    Credit, Hash256, Height, MainAnchor, MainEffects, PortError, Slash, SlashReason,
    StakedEvaluator, StakedSet, TxCheckpoint,
};
use std::sync::{Arc, Weak};

/// What another chain holds that does not make sense.
fn corrupt(e: impl std::fmt::Display) -> PortError {
    PortError::Corrupt(e.to_string())
}

/// How deep a main block must be before the transfer chain anchors it: with depth 1 the main
/// tip itself is never anchored, so replacing the tip touches nothing already credited.
pub const ANCHOR_DEPTH: u64 = 1;

/// Holds the main chain weakly: each chain holds the other's view, and strong references
/// both ways would keep both (and the database) alive forever after shutdown.
pub struct MainChainAnchors {
    main: Weak<MainChain>,
}

impl MainChainAnchors {
    pub fn new(main: &Arc<MainChain>) -> MainChainAnchors {
        MainChainAnchors {
            main: Arc::downgrade(main),
        }
    }

    fn main(&self) -> Result<Arc<MainChain>, PortError> {
        self.main
            .upgrade()
            .ok_or_else(|| PortError::Unavailable("the main chain is shut down".into()))
    }
}

impl MainChainAnchors {
    /// The slashes a main block decided: the optimizer of every optimae it rejected, and every
    /// evaluator whose vote in the deciding round went against the majority (accepted or
    /// rejected optimae only: an inconclusive round proves no one wrong). Derived from the
    /// verdicts the block carries and their recorded outcome at this height, both of which
    /// every node with this main chain has.
    fn slashes_of(&self, block: &MainBlock, height: Height) -> Result<Vec<Slash>, PortError> {
        let main = self.main()?;
        let mut out = Vec::new();
        for v in &block.body.verdicts {
            let Some(rec) = main.store().optimae(&v.optimae_id)? else {
                continue;
            };
            if rec.decided_at != Some(height) {
                continue;
            }
            let decided = match rec.status {
                OptimaeStatus::Rejected => {
                    out.push(Slash {
                        key: rec.optimizer,
                        reason: SlashReason::RejectedOptimae,
                    });
                    true
                }
                OptimaeStatus::Accepted => true,
                _ => false,
            };
            if decided {
                for vote in rec
                    .votes
                    .iter()
                    .filter(|x| x.round == rec.round && !x.agreed)
                {
                    out.push(Slash {
                        key: vote.evaluator,
                        reason: SlashReason::WrongVote,
                    });
                }
            }
        }
        Ok(out)
    }
}

impl MainView for MainChainAnchors {
    fn effects(&self, height: Height) -> Result<Option<MainEffects>, PortError> {
        let Some(block) = self.main()?.block(height)? else {
            return Ok(None);
        };
        let hash = block.hash().map_err(corrupt)?;
        let slashes = self.slashes_of(&block, height)?;
        Ok(Some(MainEffects {
            slashes,
            height,
            hash,
            parent: block.header.parent,
            credits: block
                .body
                .coinbase
                .iter()
                .filter(|p| !p.amount.is_zero())
                .map(|p| Credit {
                    key: p.key,
                    amount: p.amount,
                })
                .collect(),
        }))
    }

    fn anchor_candidate(&self) -> Result<Option<MainAnchor>, PortError> {
        let head = self.main()?.head();
        let Some(height) = head
            .header
            .height
            .checked_sub(ANCHOR_DEPTH)
            .filter(|h| *h > 0)
        else {
            return Ok(None);
        };
        Ok(self.effects(height)?.map(|e| MainAnchor {
            height,
            hash: e.hash,
        }))
    }

    fn checkpointing_block(&self, tx_height: Height) -> Result<Option<MainAnchor>, PortError> {
        let checkpoint_at = |h: u64| -> Result<(u64, Hash256), PortError> {
            let block = self
                .main()?
                .block(h)?
                .ok_or_else(|| corrupt(format!("main block {h} missing")))?;
            let hash = block.hash().map_err(corrupt)?;
            Ok((block.header.tx_checkpoint.height, hash))
        };
        let tip = self.main()?.head().header.height;
        let Some(lo) = first_covering(tip, tx_height, |h| Ok(checkpoint_at(h)?.0))? else {
            return Ok(None);
        };
        let (_, hash) = checkpoint_at(lo)?;
        Ok(Some(MainAnchor { height: lo, hash }))
    }

    fn checkpointed_hash(&self, tx_height: Height) -> Result<Option<Hash256>, PortError> {
        let Some(by) = self.checkpointing_block(tx_height)? else {
            return Ok(None);
        };
        let Some(block) = self.main()?.block(by.height)? else {
            return Ok(None);
        };
        let cp = block.header.tx_checkpoint;
        Ok((cp.height == tx_height).then_some(cp.hash))
    }

    fn hold(&self) -> Result<AnchorHold, PortError> {
        Ok(Box::new(self.main()?.hold_best_chain()))
    }
}

/// The main chain's view of the transfer chain: only final blocks can be checkpointed.
/// Holds the transfer chain weakly, for the same reason as [`MainChainAnchors`].
pub struct TxChainCheckpoints {
    tx: Weak<TxChain>,
}

impl TxChainCheckpoints {
    pub fn new(tx: &Arc<TxChain>) -> TxChainCheckpoints {
        TxChainCheckpoints {
            tx: Arc::downgrade(tx),
        }
    }

    fn tx(&self) -> Result<Arc<TxChain>, PortError> {
        self.tx
            .upgrade()
            .ok_or_else(|| PortError::Unavailable("the transfer chain is shut down".into()))
    }
}

impl TxChainView for TxChainCheckpoints {
    fn final_block_hash(&self, height: u64) -> Result<Option<Hash256>, PortError> {
        if height > self.tx()?.tip().final_height {
            return Ok(None);
        }
        match self.tx()?.store().header(height)? {
            None => Ok(None),
            Some(stored) => stored.header.hash().map(Some).map_err(corrupt),
        }
    }

    fn checkpoint_candidate(&self) -> Result<Option<TxCheckpoint>, PortError> {
        let height = self.tx()?.tip().final_height;
        if height == 0 {
            return Ok(None);
        }
        Ok(self
            .final_block_hash(height)?
            .map(|hash| TxCheckpoint { height, hash }))
    }

    fn stakes_at(&self, height: u64) -> Result<Option<StakedSet>, PortError> {
        if height > self.tx()?.tip().final_height {
            return Ok(None);
        }
        let Some(stored) = self.tx()?.store().header(height)? else {
            return Ok(None);
        };
        let root = jmt::RootHash(stored.header.state_root.0);
        let tx = self.tx()?;
        let tree = tx.store().tree();
        let jmt = jmt::Sha256Jmt::new(&tree);
        // Every value is read with its proof and checked against the block's state root:
        // what the main chain adopts is what that header commits to.
        let proven = |key: jmt::KeyHash| -> Result<Option<Vec<u8>>, PortError> {
            let (value, proof) = jmt
                .get_with_proof(key, height)
                .map_err(|e| corrupt(format!("transfer state at {height}: {e}")))?;
            proof
                .verify(root, key, value.as_ref())
                .map_err(|e| corrupt(format!("transfer state at {height} fails its root: {e}")))?;
            Ok(value)
        };
        let stakers = match proven(stakers_key())? {
            None => Vec::new(),
            Some(b) => decode_stakers(&b).map_err(corrupt)?,
        };
        let mut set = StakedSet::default();
        for (owner, role) in stakers {
            if role == StakeRole::Validator {
                continue;
            }
            let Some(bytes) = proven(stake_key(&owner, role))? else {
                return Err(corrupt(format!(
                    "registered {} stake of {owner} is missing",
                    role.as_str()
                )));
            };
            let st = decode_stake(&bytes).map_err(corrupt)?;
            match role {
                StakeRole::Evaluator => set.evaluators.push(StakedEvaluator {
                    key: owner,
                    bonded: st.bonded,
                    domains: st.domains,
                }),
                StakeRole::Optimizer => set.optimizers.push((owner, st.bonded)),
                StakeRole::Validator => {}
            }
        }
        Ok(Some(set))
    }

    fn anchored_main_height(&self) -> Result<u64, PortError> {
        Ok(self.tx()?.tip().header.main_anchor.height)
    }

    fn anchoring_block(&self, main_height: u64) -> Result<Option<(u64, Hash256)>, PortError> {
        let anchor_at = |h: u64| -> Result<(u64, Hash256), PortError> {
            let stored = self
                .tx()?
                .store()
                .header(h)?
                .ok_or_else(|| corrupt(format!("transfer header {h} missing")))?;
            let hash = stored.header.hash().map_err(corrupt)?;
            Ok((stored.header.main_anchor.height, hash))
        };
        let top = self.tx()?.tip().final_height;
        let Some(lo) = first_covering(top, main_height, |h| Ok(anchor_at(h)?.0))? else {
            return Ok(None);
        };
        Ok(Some((lo, anchor_at(lo)?.1)))
    }
}

/// The first height in `1..=top` whose `position` (a value that never decreases with the
/// height, like a checkpoint or an anchor) reaches `target`, by binary search; `None` if even
/// `top` does not.
fn first_covering(
    top: u64,
    target: u64,
    position: impl Fn(u64) -> Result<u64, PortError>,
) -> Result<Option<u64>, PortError> {
    if top == 0 || position(top)? < target {
        return Ok(None);
    }
    let (mut lo, mut hi) = (1u64, top);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if position(mid)? >= target {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(Some(lo))
}

/// Forwards the main chain's reorganisations to the transfer chain's event stream as
/// `main_reorg` events, until shutdown or until the main chain goes away.
pub async fn forward_main_reorgs(
    tx: Arc<TxChain>,
    mut announcements: tokio::sync::broadcast::Receiver<doin_main_node::MainAnnouncement>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let announcement = tokio::select! {
            a = announcements.recv() => a,
            _ = stop.changed() => return Ok(()),
        };
        match announcement {
            Ok(doin_main_node::MainAnnouncement::Reorg(r)) => {
                let chain = tx.clone();
                let data = reorg_event(&r);
                let kept = tokio::task::spawn_blocking(move || chain.record_main_reorg(data))
                    .await
                    .map_err(|e| e.to_string())?;
                if let Err(e) = kept {
                    tracing::error!(error = %e, fork = r.fork, "could not keep a main_reorg event; it is not announced");
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "main-chain announcements went by faster than the event stream took them"
                );
            }
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}

/// The `main_reorg` event of a reorganisation.
fn reorg_event(r: &doin_main_node::MainReorg) -> String {
    let blocks = |list: &[(u64, Hash256)]| {
        list.iter()
            .map(|(height, hash)| doin_api::tx::MainAnchorView {
                height: *height,
                hash: hash.to_hex(),
            })
            .collect()
    };
    let ev = doin_api::tx::MainReorgEvent {
        fork_height: r.fork,
        disconnected: blocks(&r.disconnected),
        connected: blocks(&r.connected),
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::first_covering;

    #[test]
    fn first_covering_finds_the_first_height_that_reaches_the_target() {
        // Positions of heights 1..=6.
        let pos = [0u64, 0, 2, 2, 5, 7];
        let at = |h: u64| Ok(pos[(h - 1) as usize]);
        assert_eq!(first_covering(6, 1, at), Ok(Some(3)));
        assert_eq!(first_covering(6, 2, at), Ok(Some(3)));
        assert_eq!(first_covering(6, 3, at), Ok(Some(5)));
        assert_eq!(first_covering(6, 7, at), Ok(Some(6)));
        assert_eq!(first_covering(6, 8, at), Ok(None));
        assert_eq!(first_covering(0, 1, at), Ok(None));
        assert_eq!(first_covering(6, 0, at), Ok(Some(1)));
    }
}
