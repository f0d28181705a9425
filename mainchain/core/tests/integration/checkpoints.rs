//! Main → transfer checkpoints: a main block names a final transfer block, never goes back,
//! never changes its mind at one height, and names only blocks the importing node has final.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::chain;
use doin_main_core::*;
use doin_types::{Amount, Hash256, PortError, StakedEvaluator, StakedSet, Timestamp, TxCheckpoint};
use std::collections::BTreeMap;

/// The transfer chain as the main chain sees it: final block hashes and a candidate. (The
/// node's adapter reads the same from the real transfer chain.)
#[derive(Default)]
struct TxChainStub {
    final_blocks: BTreeMap<u64, Hash256>,
    candidate: Option<TxCheckpoint>,
    /// The staked sets at every final height (one set is enough for these tests).
    staked: StakedSet,
}

impl TxChainStub {
    fn with_final(n: u64) -> TxChainStub {
        TxChainStub {
            final_blocks: (1..=n).map(|h| (h, Hash256([h as u8; 32]))).collect(),
            candidate: None,
            staked: StakedSet::default(),
        }
    }

    fn checkpoint(&self, height: u64) -> TxCheckpoint {
        TxCheckpoint {
            height,
            hash: self.final_blocks[&height],
        }
    }
}

impl TxChainView for TxChainStub {
    fn final_block_hash(&self, height: u64) -> Result<Option<Hash256>, PortError> {
        Ok(self.final_blocks.get(&height).copied())
    }

    fn checkpoint_candidate(&self) -> Result<Option<TxCheckpoint>, PortError> {
        Ok(self.candidate)
    }

    fn stakes_at(&self, height: u64) -> Result<Option<StakedSet>, PortError> {
        Ok(self
            .final_blocks
            .contains_key(&height)
            .then(|| self.staked.clone()))
    }
}

#[test]
fn checkpoint_rules() {
    let tx = TxChainStub::with_final(10);
    let at = |h| tx.checkpoint(h);
    // Forward to a final block, or staying put, is fine.
    assert_eq!(check_checkpoint(&tx, &at(3), &at(7)), Ok(()));
    assert_eq!(check_checkpoint(&tx, &at(3), &at(3)), Ok(()));
    assert_eq!(check_checkpoint(&tx, &TxCheckpoint::NONE, &at(1)), Ok(()));
    // Back.
    assert_eq!(
        check_checkpoint(&tx, &at(7), &at(3)),
        Err(MainBlockError::CheckpointBackwards { parent: 7, got: 3 })
    );
    // Another block at the same height.
    let other = TxCheckpoint {
        height: 3,
        hash: Hash256([99; 32]),
    };
    assert_eq!(
        check_checkpoint(&tx, &at(3), &other),
        Err(MainBlockError::CheckpointChanged { height: 3 })
    );
    // A forged block at a new height.
    let forged = TxCheckpoint {
        height: 5,
        hash: Hash256([99; 32]),
    };
    assert_eq!(
        check_checkpoint(&tx, &at(3), &forged),
        Err(MainBlockError::CheckpointMismatch { height: 5 })
    );
    // A block this node does not have final (yet): retryable.
    let ahead = TxCheckpoint {
        height: 11,
        hash: Hash256([11; 32]),
    };
    let e = check_checkpoint(&tx, &at(3), &ahead).unwrap_err();
    assert_eq!(e, MainBlockError::UnknownTxBlock { height: 11 });
    assert!(e.is_retryable());
    assert!(!MainBlockError::CheckpointMismatch { height: 5 }.is_retryable());
}

#[test]
fn a_producer_checkpoints_the_candidate_and_importers_check_it_against_their_chain() {
    let mut c = chain();
    let mut tx = TxChainStub::with_final(4);
    tx.candidate = Some(tx.checkpoint(4));
    tx.staked = staked_as_genesis(&c);
    let claim = c.claim("sphere-a", 1);
    let commit = c.commit(&c.optimizers[0], &claim);
    let body = MainBody {
        commits: vec![commit],
        ..Default::default()
    };
    let time = c.carrier_time();
    let built = build_block(
        &c.params,
        &c.state,
        &c.tip,
        MainContext {
            now: time,
            tx_chain: &tx,
        },
        &c.producer,
        &body,
    )
    .unwrap();
    assert_eq!(built.block.header.tx_checkpoint, tx.checkpoint(4));

    let import = |view: &dyn TxChainView| {
        apply_block(
            &c.params,
            &c.state,
            &c.tip,
            &built.block,
            MainContext {
                now: Timestamp(time.0 + 1),
                tx_chain: view,
            },
        )
        .map(|_| ())
    };
    // A node with the same final transfer chain accepts it.
    assert_eq!(import(&tx), Ok(()));
    // A node whose transfer chain has another block 4 refuses it.
    let mut forked = TxChainStub::with_final(4);
    forked.final_blocks.insert(4, Hash256([44; 32]));
    assert_eq!(
        import(&forked),
        Err(MainBlockError::CheckpointMismatch { height: 4 })
    );
    // A node whose transfer chain is behind (or absent) cannot check it yet.
    assert_eq!(
        import(&TxChainStub::with_final(2)),
        Err(MainBlockError::UnknownTxBlock { height: 4 })
    );
    assert_eq!(
        import(&NoTxChain),
        Err(MainBlockError::UnknownTxBlock { height: 4 })
    );

    // A candidate behind the parent's checkpoint is not taken: the checkpoint stays.
    c.state = import_state(&c, &built.block, &tx);
    c.tip = built.block.header.clone();
    tx.candidate = Some(tx.checkpoint(2));
    let claim = c.claim("sphere-a", 2);
    let commit = c.commit(&c.optimizers[1], &claim);
    let next = build_block(
        &c.params,
        &c.state,
        &c.tip,
        MainContext {
            now: c.carrier_time(),
            tx_chain: &tx,
        },
        &c.producer,
        &MainBody {
            commits: vec![commit],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(next.block.header.tx_checkpoint, tx.checkpoint(4));
}

/// The chain's genesis evaluators (for every domain) and optimizers, as transfer-chain stakes.
fn staked_as_genesis(c: &common::Chain) -> StakedSet {
    StakedSet {
        evaluators: c
            .evaluators
            .iter()
            .map(|k| StakedEvaluator {
                key: k.public(),
                bonded: Amount::from_base_units(1_000),
                domains: vec!["*".into()],
            })
            .collect(),
        optimizers: c
            .optimizers
            .iter()
            .map(|k| (k.public(), Amount::from_base_units(100)))
            .collect(),
    }
}

#[test]
fn after_a_checkpoint_only_staked_optimizers_commit_and_only_staked_evaluators_are_selected() {
    let mut c = chain();
    let mut tx = TxChainStub::with_final(3);
    tx.candidate = Some(tx.checkpoint(3));
    let mut staked = staked_as_genesis(&c);
    // Optimizer 1 and the first evaluator have no stake on the transfer chain; one evaluator
    // verifies only another domain.
    staked
        .optimizers
        .retain(|(k, _)| *k != c.optimizers[1].public());
    staked.evaluators.remove(0);
    staked.evaluators[0].domains = vec!["rosenbrock-x".into()];
    tx.staked = staked;

    let claim = c.claim("sphere-a", 1);
    let unstaked = c.commit(&c.optimizers[1], &claim);
    let staked_commit = c.commit(&c.optimizers[0], &claim);
    let built = build_block(
        &c.params,
        &c.state,
        &c.tip,
        MainContext {
            now: c.carrier_time(),
            tx_chain: &tx,
        },
        &c.producer,
        &MainBody {
            commits: vec![unstaked.clone(), staked_commit],
            ..Default::default()
        },
    )
    .unwrap();
    // The builder leaves the unstaked optimizer's commit out, with the reason.
    assert_eq!(built.block.body.commits.len(), 1);
    assert!(matches!(
        built.skipped[0].error,
        ItemError::OptimizerNotStaked(_)
    ));
    // A block that carries it anyway is refused by importers.
    let mut forced = built.block.clone();
    forced.body.commits.push(unstaked);
    let forced = c.resign(forced.header.clone(), forced.body.clone());
    let e = apply_block(
        &c.params,
        &c.state,
        &c.tip,
        &forced,
        MainContext {
            now: Timestamp(forced.header.time.0),
            tx_chain: &tx,
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            MainBlockError::InvalidCommit {
                error: ItemError::OptimizerNotStaked(_),
                ..
            }
        ),
        "{e:?}"
    );
    // Eligible evaluators for sphere-a: the staked ones that verify it.
    let state = import_state(&c, &built.block, &tx);
    let eligible = state.eligible(&DomainId::new("sphere-a").unwrap());
    assert_eq!(eligible.len(), c.evaluators.len() - 2);
    assert!(!eligible.contains(&c.evaluators[0].public()));
    assert!(!eligible.contains(&c.evaluators[1].public()));
    c.tip = built.block.header.clone();
    c.state = state;
}

fn import_state(c: &common::Chain, block: &MainBlock, tx: &TxChainStub) -> MainState {
    apply_block(
        &c.params,
        &c.state,
        &c.tip,
        block,
        MainContext {
            now: Timestamp(block.header.time.0),
            tx_chain: tx,
        },
    )
    .unwrap()
    .state
}
