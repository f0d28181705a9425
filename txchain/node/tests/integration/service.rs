//! The transfer-chain service on a real RocksDB: restart, persistence, import, pruning, events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_crypto::KeyPair;
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_telemetry::Metrics;
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, Tx, TxBody, TxPayload};
use doin_tx_node::store::{PruneConfig, COLUMNS};
use doin_tx_node::{ChainError, TxChain, TxChainConfig, TxStatus};
use doin_types::{Amount, Network, Timestamp};
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Keys {
    pub(crate) validator: KeyPair,
    pub(crate) users: Vec<KeyPair>,
}

pub(crate) fn keys() -> Keys {
    Keys {
        validator: KeyPair::generate(),
        users: (0..4).map(|_| KeyPair::generate()).collect(),
    }
}

pub(crate) fn spec(k: &Keys) -> GenesisSpec {
    GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "service-test".into(),
        genesis_time: Timestamp(1_000_000),
        params: ConsensusParams::public_defaults(),
        validators: vec![k.validator.public()],
        allocations: k
            .users
            .iter()
            .map(|u| Allocation {
                key: u.public(),
                amount: Amount::from_base_units(1_000_000_000_000),
            })
            .collect(),
    }
}

fn open(dir: &Path, spec: GenesisSpec, keep: u64) -> Arc<TxChain> {
    open_with(dir, spec, keep, &Metrics::new())
}

fn open_with(dir: &Path, spec: GenesisSpec, keep: u64, metrics: &Metrics) -> Arc<TxChain> {
    let prune = PruneConfig {
        keep_versions: keep,
        ..PruneConfig::default()
    };
    open_pruning(dir, spec, prune, metrics).unwrap()
}

/// The chain in a RocksDB at `dir`, pruning as `prune` says.
pub(crate) fn open_pruning(
    dir: &Path,
    spec: GenesisSpec,
    prune: PruneConfig,
    metrics: &Metrics,
) -> Result<Arc<TxChain>, ChainError> {
    let kv: Arc<dyn KvStore> =
        Arc::new(RocksStore::open(dir, COLUMNS, &RocksConfig::default()).unwrap());
    TxChain::open(
        kv,
        spec,
        TxChainConfig {
            prune,
            event_buffer: 100,
            ..TxChainConfig::default()
        },
        metrics,
    )
}

pub(crate) fn transfer(chain: &TxChain, from: &KeyPair, to: &KeyPair, amount: u64) -> Tx {
    let payload = TxPayload::Transfer {
        to: to.public(),
        amount: Amount::from_base_units(amount),
    };
    signed(chain, from, payload, 1)
}

/// `payload` from `from` with its next nonce (counting pending ones), a fee cap of 100 and a
/// tip of `tip` per weight unit.
pub(crate) fn signed(chain: &TxChain, from: &KeyPair, payload: TxPayload, tip: u64) -> Tx {
    let (nonce, _) = chain.next_nonce(&from.public()).unwrap();
    let body = TxBody {
        chain_id: chain.params().chain_id,
        sender: from.public(),
        nonce,
        max_fee_per_weight: Amount::from_base_units(100),
        max_priority_fee_per_weight: Amount::from_base_units(tip),
        payload,
    };
    Tx::from_signed(body.sign(from).unwrap()).unwrap()
}

/// `GET path` on `chain`'s REST router: the status and the JSON body.
pub(crate) fn rest_get(chain: &Arc<TxChain>, path: &str) -> (u16, serde_json::Value) {
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    rest_call(chain, req)
}

/// `POST path` with a JSON `body` on `chain`'s REST router: status and JSON answer.
pub(crate) fn rest_post(
    chain: &Arc<TxChain>,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let req = axum::http::Request::post(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    rest_call(chain, req)
}

fn rest_call(
    chain: &Arc<TxChain>,
    req: axum::http::Request<axum::body::Body>,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let router = doin_tx_node::api::router(chain.clone())
        .merge(doin_tx_node::account_api::router(chain.clone()))
        .merge(doin_tx_node::simulate_api::router(chain.clone()));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, serde_json::from_slice(&body).unwrap())
        })
}

pub(crate) fn time(h: u64) -> Timestamp {
    Timestamp(1_000_000 + h * 1000)
}

#[test]
fn restart_resumes_at_the_same_root_and_keeps_pending_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), spec(&k), 16);
    for h in 1..=5 {
        let tx = transfer(&chain, &k.users[0], &k.users[1], 1000 + h);
        chain.submit(tx.bytes()).unwrap();
        chain.produce_block(&k.validator, time(h)).unwrap();
    }
    let pending = transfer(&chain, &k.users[2], &k.users[3], 77);
    assert!(chain.submit(pending.bytes()).unwrap().new);
    let tip = chain.tip();
    let balance = chain.account(&k.users[1].public()).unwrap();
    drop(chain);

    let chain = open(dir.path(), spec(&k), 16);
    assert_eq!(chain.tip().hash, tip.hash);
    assert_eq!(chain.tip().header.state_root, tip.header.state_root);
    assert_eq!(chain.account(&k.users[1].public()).unwrap(), balance);
    // The pending transaction survived the restart and goes into the next block.
    let l = chain.lookup_tx(&pending.id()).unwrap().unwrap();
    assert_eq!(l.status, TxStatus::Pending);
    let b = chain.produce_block(&k.validator, time(6)).unwrap();
    assert_eq!(b.txs.len(), 1);
    let l = chain.lookup_tx(&pending.id()).unwrap().unwrap();
    assert_eq!(l.status, TxStatus::Final);
    assert_eq!(l.confirmations, 1);
    // Resubmitting an included transaction answers its status instead of an error.
    let again = chain.submit(pending.bytes()).unwrap();
    assert!(!again.new);
    assert_eq!(again.status, TxStatus::Final);
}

#[test]
fn a_different_genesis_is_refused_on_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    drop(open(dir.path(), spec(&k), 16));
    let mut other = spec(&k);
    other.chain_name = "another".into();
    let kv: Arc<dyn KvStore> =
        Arc::new(RocksStore::open(dir.path(), COLUMNS, &RocksConfig::default()).unwrap());
    let err = TxChain::open(kv, other, TxChainConfig::default(), &Metrics::new())
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("genesis file"), "{err}");
}

#[test]
fn a_second_node_imports_every_block_with_the_same_roots() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let k = keys();
    let producer = open(d1.path(), spec(&k), 16);
    let follower = open(d2.path(), spec(&k), 16);
    assert_eq!(producer.tip().hash, follower.tip().hash);
    for h in 1..=6 {
        for i in 0..3 {
            let tx = transfer(&producer, &k.users[i], &k.users[(i + 1) % 4], 10 * h);
            producer.submit(tx.bytes()).unwrap();
        }
        let b = producer.produce_block(&k.validator, time(h)).unwrap();
        follower.import_block(&b, time(h + 1)).unwrap();
        assert_eq!(follower.tip().hash, producer.tip().hash);
    }
    // A tampered block is refused by the follower and changes nothing.
    let tx = transfer(&producer, &k.users[0], &k.users[1], 5);
    producer.submit(tx.bytes()).unwrap();
    let mut b = producer.produce_block(&k.validator, time(7)).unwrap();
    b.header.state_root.0[0] ^= 1;
    let before = follower.tip().hash;
    assert!(follower.import_block(&b, time(8)).is_err());
    assert_eq!(follower.tip().hash, before);
}

#[test]
fn old_state_versions_are_pruned_and_the_chain_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), spec(&k), 3);
    for h in 1..=30 {
        let tx = transfer(&chain, &k.users[0], &k.users[1], h);
        chain.submit(tx.bytes()).unwrap();
        chain.produce_block(&k.validator, time(h)).unwrap();
    }
    let kv = chain.store().kv().clone();
    let count = |cf| {
        kv.iter_from(cf, &[], doin_store::Direction::Forward)
            .unwrap()
            .count()
    };
    let nodes = count(doin_tx_node::tree::CF_JMT_NODES);
    let stale = count(doin_tx_node::tree::CF_JMT_STALE);
    let stale_values = count(doin_tx_node::tree::CF_JMT_STALE_VALUES);
    // Without pruning 30 blocks would leave well over a hundred nodes; with 3 versions kept
    // only the live tree plus a few recent versions remain, and staleness records (one per
    // version) only for the versions not yet prunable (28, 29, 30).
    assert!(nodes < 80, "{nodes} tree nodes left");
    assert!(stale <= 3, "{stale} stale-node records left");
    assert!(stale_values <= 3, "{stale_values} stale-value records left");
    // The current root still verifies on reopen (TxChain::open checks it).
    let tip = chain.tip();
    drop(kv);
    drop(chain);
    let chain = open(dir.path(), spec(&k), 3);
    assert_eq!(chain.tip().hash, tip.hash);
    let tx = transfer(&chain, &k.users[0], &k.users[1], 1);
    chain.submit(tx.bytes()).unwrap();
    chain.produce_block(&k.validator, time(31)).unwrap();
}

#[test]
fn a_data_directory_of_another_storage_layout_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), spec(&k), 16);
    let kv = chain.store().kv().clone();
    drop(chain);
    let mut b = doin_store::WriteBatch::new();
    b.put(
        doin_tx_node::store::CF_META,
        b"schema".to_vec(),
        doin_codec::encode(&1u32).unwrap(),
    );
    kv.write(b, doin_store::Durability::Sync).unwrap();
    let err = TxChain::open(kv, spec(&k), TxChainConfig::default(), &Metrics::new())
        .err()
        .expect("layout 1 must be refused");
    assert!(
        matches!(
            err,
            doin_tx_node::ChainError::SchemaMismatch {
                stored: 1,
                supported: doin_tx_node::store::SCHEMA_VERSION
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("empty data directory"), "{err}");
}

#[test]
fn events_resume_from_an_id_and_rebuild_blocks_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), spec(&k), 16);
    for h in 1..=3 {
        chain.produce_block(&k.validator, time(h)).unwrap();
    }
    let replay = chain
        .events()
        .replay_after(doin_tx_node::events::EventId { height: 1, seq: 0 });
    let ids: Vec<String> = replay.buffered.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, vec!["2-0", "3-0"]);
    drop(chain);
    // After a restart the buffer is empty: blocks 2..=3 must be rebuilt from the store.
    let chain = open(dir.path(), spec(&k), 16);
    let replay = chain
        .events()
        .replay_after(doin_tx_node::events::EventId { height: 1, seq: 0 });
    assert_eq!(replay.missing_blocks, Some((2, 3)));
}

/// A produced block is final at once (a single validator's precommit is a quorum) and its
/// certificate is stored with it; a node that imports it learns the certificate from the next
/// header. Every stored certificate proves its block under the chain's validator set.
#[test]
fn every_block_keeps_the_certificate_that_made_it_final() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let k = keys();
    let a = open(dir_a.path(), spec(&k), 16);
    let b_metrics = Metrics::new();
    let b = open_with(dir_b.path(), spec(&k), 16, &b_metrics);
    let blocks = produce_and_import(&a, &b, &k, 3);
    let set = a.validator_set_at(3).expect("the tip's set");
    let chain_id = a.params().chain_id;
    for (i, blk) in blocks.iter().enumerate() {
        let h = blk.header.height;
        let hash = blk.hash().unwrap();
        let own = a
            .store()
            .commit_certificate(h)
            .unwrap()
            .expect("producer's certificate");
        assert_eq!(own.verify(&chain_id, h, &hash, &set), Ok(()));
        let learned = b.store().commit_certificate(h).unwrap();
        if i + 1 < blocks.len() {
            assert_eq!(learned.as_ref(), blocks[i + 1].header.last_commit.as_ref());
            assert_eq!(learned.unwrap().verify(&chain_id, h, &hash, &set), Ok(()));
        } else {
            assert_eq!(
                learned, None,
                "the tip's certificate comes with the next block"
            );
        }
    }
    assert_eq!(a.store().commit_certificate(0).unwrap(), None);
    // The follower's finality lag is one block until the next header brings the certificate.
    let gauge = |name: &str| {
        b_metrics
            .registry()
            .gather()
            .iter()
            .find(|f| f.name() == name)
            .map(|f| f.get_metric()[0].get_gauge().get_value())
    };
    assert_eq!(gauge("doin_tx_certified_height_blocks"), Some(2.0));
    assert_eq!(gauge("doin_tx_commit_signers"), Some(1.0));
}

/// A validator's block sync may commit final blocks before its consensus engine decides them:
/// the engine's late decision of a committed block is taken as already committed, and a
/// proposal for a committed height is told apart by whether it is the committed block.
#[test]
fn a_decision_below_the_tip_of_the_block_already_committed_is_accepted() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let k = keys();
    let a = open(dir_a.path(), spec(&k), 16);
    let b = open(dir_b.path(), spec(&k), 16);
    let blocks = produce_and_import(&a, &b, &k, 3);
    let second = &blocks[1];
    let hash = second.hash().unwrap();
    assert_eq!(b.committed_as(2, &hash).unwrap(), Some(true));
    assert_eq!(
        b.committed_as(2, &blocks[0].hash().unwrap()).unwrap(),
        Some(false)
    );
    assert_eq!(
        b.committed_as(3, &blocks[2].hash().unwrap()).unwrap(),
        Some(true)
    );
    assert_eq!(b.committed_as(4, &hash).unwrap(), None);
    let cert = a
        .store()
        .commit_certificate(2)
        .unwrap()
        .expect("certificate of 2");
    assert_eq!(
        b.commit_decided(second, &cert, Timestamp(u64::MAX / 2))
            .unwrap(),
        doin_tx_node::chain::DecidedOutcome::AlreadyCommitted
    );
    assert_eq!(b.tip().header.height, 3, "the tip stays where it was");
}

/// `a` produces `n` blocks of one transfer each; `b` imports them as its block sync would.
fn produce_and_import(a: &TxChain, b: &TxChain, k: &Keys, n: u64) -> Vec<doin_tx_core::Block> {
    let blocks: Vec<doin_tx_core::Block> = (1..=n)
        .map(|h| {
            let tx = transfer(a, &k.users[0], &k.users[1], h);
            a.submit(tx.bytes()).unwrap();
            a.produce_block(&k.validator, time(h)).unwrap()
        })
        .collect();
    for blk in &blocks {
        b.import_block(blk, Timestamp(u64::MAX / 2)).unwrap();
    }
    blocks
}
