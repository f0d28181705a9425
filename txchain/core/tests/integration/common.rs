//! Shared fixtures for the transfer-chain core tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use doin_crypto::tagged_hash;
use doin_crypto::KeyPair;
use doin_tx_core::memtree::MemoryState;
use doin_tx_core::MainView;
use doin_tx_core::{
    genesis, tx_root, Allocation, Block, BlockHeader, ChainParams, ConsensusParams, GenesisSpec,
    SignedTx, StakingParams, Tx, TxBody, TxPayload,
};
use doin_types::{
    Amount, ChainId, Credit, Hash256, Height, MainAnchor, MainEffects, Network, PortError,
    PublicKeyBytes, Timestamp,
};
use std::collections::BTreeMap;

pub(crate) struct Fixture {
    pub spec: GenesisSpec,
    pub params: ChainParams,
    pub validator: KeyPair,
    pub users: Vec<KeyPair>,
    pub genesis: Block,
    pub state: MemoryState,
    /// The operations of the last block `build_and_import` imported.
    pub last_operations: Vec<doin_tx_core::SettledOperation>,
}

pub(crate) const START_BALANCE: u64 = 1_000_000_000;

pub(crate) fn fixture(users: usize) -> Fixture {
    let validator = KeyPair::generate();
    let users: Vec<KeyPair> = (0..users).map(|_| KeyPair::generate()).collect();
    let spec = GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "core-test".into(),
        genesis_time: Timestamp(1_700_000_000_000),
        params: ConsensusParams {
            block_weight_limit: 4_000,
            max_tx_weight: 1_000,
            staking: StakingParams {
                min_validator_stake: Amount::from_base_units(1_000),
                min_evaluator_stake: Amount::from_base_units(500),
                min_optimizer_stake: Amount::from_base_units(100),
                unbonding_blocks: 3,
                slash_rejected_optimae_ppm: 100_000,
                slash_wrong_vote_ppm: 20_000,
            },
            ..ConsensusParams::public_defaults()
        },
        validators: vec![validator.public()],
        allocations: users
            .iter()
            .map(|u| Allocation {
                key: u.public(),
                amount: Amount::from_base_units(START_BALANCE),
            })
            .collect(),
    };
    let params = ChainParams::from_genesis(&spec).unwrap();
    let mut state = MemoryState::new();
    let (genesis, applied) = genesis(&spec, &state).unwrap();
    state.commit(&applied);
    Fixture {
        spec,
        params,
        validator,
        users,
        genesis,
        state,
        last_operations: Vec::new(),
    }
}

/// Rebuilds the fixture's parameters, genesis block and state from its (edited) `spec`.
pub(crate) fn regenesis(f: &mut Fixture) {
    f.params = ChainParams::from_genesis(&f.spec).unwrap();
    f.state = MemoryState::new();
    let (genesis, applied) = genesis(&f.spec, &f.state).unwrap();
    f.state.commit(&applied);
    f.genesis = genesis;
}

pub(crate) fn transfer(
    f: &Fixture,
    from: &KeyPair,
    to: &KeyPair,
    nonce: u64,
    amount: u64,
    max_fee: u64,
    tip: u64,
) -> SignedTx {
    let payload = TxPayload::Transfer {
        to: to.public(),
        amount: Amount::from_base_units(amount),
    };
    signed(f, from, nonce, payload, max_fee, tip)
}

/// Any payload, signed by `from`.
pub(crate) fn signed(
    f: &Fixture,
    from: &KeyPair,
    nonce: u64,
    payload: TxPayload,
    max_fee: u64,
    tip: u64,
) -> SignedTx {
    TxBody {
        chain_id: f.params.chain_id,
        sender: from.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(max_fee),
        max_priority_fee_per_weight: Amount::from_base_units(tip),
        payload,
    }
    .sign(from)
    .unwrap()
}

/// Builds the next block on `parent` from `txs` with `main` as the main chain, imports it as a
/// second node would (same root, or the test fails), commits it to the fixture's state and
/// returns it with the builder's skip reasons.
pub(crate) fn build_and_import(
    f: &mut Fixture,
    main: &dyn doin_tx_core::MainView,
    parent: &doin_tx_core::BlockHeader,
    txs: Vec<doin_tx_core::Tx>,
) -> (Block, Vec<doin_tx_core::TxError>) {
    let time = Timestamp(parent.time.0 + 1_000);
    let built = doin_tx_core::build_block(
        &f.params,
        &f.state,
        &f.state,
        main,
        parent,
        time,
        &f.validator,
        txs,
        true,
    )
    .unwrap();
    let imported = doin_tx_core::apply_block(
        &f.params,
        &f.state,
        &f.state,
        main,
        parent,
        &built.block,
        doin_tx_core::ApplyContext {
            now: time,
            verify_tx_signatures: true,
        },
    )
    .unwrap();
    assert_eq!(imported.state_root, built.block.header.state_root);
    assert_eq!(imported.operations, built.applied.operations);
    f.state.commit(&imported);
    f.last_operations = imported.operations;
    let skipped = built.skipped.into_iter().map(|(_, e)| e).collect();
    (built.block, skipped)
}

/// A signed block of `n` transfers from fresh keys, outside any chain state (for tests of
/// encodings and proofs).
pub(crate) struct LooseBlock {
    pub chain_id: ChainId,
    pub validator: KeyPair,
    pub block: Block,
    pub txs: Vec<Tx>,
}

pub(crate) fn loose_block(n: usize) -> LooseBlock {
    let chain_id = ChainId(Hash256([7; 32]));
    let validator = KeyPair::generate();
    let txs: Vec<Tx> = (0..n)
        .map(|i| {
            let sender = KeyPair::generate();
            let body = TxBody {
                chain_id,
                sender: sender.public(),
                nonce: i as u64,
                max_fee_per_weight: Amount::from_base_units(10),
                max_priority_fee_per_weight: Amount::from_base_units(1),
                payload: TxPayload::Transfer {
                    to: KeyPair::generate().public(),
                    amount: Amount::from_base_units(100 + i as u64),
                },
            };
            Tx::from_signed(body.sign(&sender).unwrap()).unwrap()
        })
        .collect();
    let header = BlockHeader {
        chain_id,
        height: 42,
        parent: Hash256([1; 32]),
        time: Timestamp(1_000),
        proposer: validator.public(),
        state_root: Hash256([2; 32]),
        tx_root: tx_root(&txs),
        base_fee: Amount::from_base_units(1),
        weight_used: 0,
        tx_count: n as u32,
        main_anchor: doin_types::MainAnchor::NONE,
        // As a single validator's block carries it: its precommit for the parent.
        last_commit: Some(
            doin_tx_core::bft::CommitCertificate::sign(
                &chain_id,
                41,
                0,
                Hash256([1; 32]),
                &[&validator],
            )
            .unwrap(),
        ),
    };
    let block = Block::sign(
        header,
        txs.iter().map(|t| t.signed().clone()).collect(),
        &validator,
    )
    .unwrap();
    LooseBlock {
        chain_id,
        validator,
        block,
        txs,
    }
}

/// A main chain as the transfer chain sees it: effects per height and a proposer candidate.
/// (The node's adapter reads the same from the real main chain; here the rules are under
/// test, so the main chain is a plain list.)
#[derive(Default)]
pub(crate) struct MainChainStub {
    pub(crate) blocks: BTreeMap<Height, MainEffects>,
    pub(crate) candidate: Option<MainAnchor>,
    /// Transfer blocks the main chain has checkpointed, by height.
    pub(crate) checkpoints: BTreeMap<Height, Hash256>,
}

impl MainChainStub {
    /// A main chain of `n` blocks above genesis, block h paying `h` units to each of `payees`.
    pub(crate) fn with_blocks(n: u64, payees: &[PublicKeyBytes]) -> MainChainStub {
        let mut m = MainChainStub::default();
        let mut parent = tagged_hash("test/main-genesis", b"");
        for height in 1..=n {
            let hash = tagged_hash("test/main-block", &height.to_be_bytes());
            m.blocks.insert(
                height,
                MainEffects {
                    height,
                    hash,
                    parent,
                    credits: payees
                        .iter()
                        .map(|k| Credit {
                            key: *k,
                            amount: Amount::from_base_units(height),
                        })
                        .collect(),
                    slashes: Vec::new(),
                },
            );
            parent = hash;
        }
        m
    }

    pub(crate) fn anchor(&self, height: Height) -> MainAnchor {
        MainAnchor {
            height,
            hash: self.blocks[&height].hash,
        }
    }
}

impl MainView for MainChainStub {
    fn effects(&self, height: Height) -> Result<Option<MainEffects>, PortError> {
        Ok(self.blocks.get(&height).cloned())
    }

    fn anchor_candidate(&self) -> Result<Option<MainAnchor>, PortError> {
        Ok(self.candidate)
    }

    fn checkpointing_block(&self, _tx_height: Height) -> Result<Option<MainAnchor>, PortError> {
        Ok(None)
    }

    fn checkpointed_hash(&self, tx_height: Height) -> Result<Option<Hash256>, PortError> {
        Ok(self.checkpoints.get(&tx_height).copied())
    }
}
