//! History pruning on a real RocksDB: a pruned node keeps a window and what proves finality,
//! its database stays flat as the chain grows, REST says `410 pruned` for what it dropped, and
//! an archive node switches to pruned in place (and is refused the way back).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::service::{keys, open_pruning, rest_get, spec, time, transfer, Keys};
use doin_store::{Direction, KvStore};
use doin_telemetry::Metrics;
use doin_tx_core::{ChainParams, GenesisSpec, TxId};
use doin_tx_node::chain::TxProofLookup;
use doin_tx_node::history::{HistoryMode, HistoryPolicy, Kept};
use doin_tx_node::store::{PruneConfig, COLUMNS};
use doin_tx_node::{ChainError, TxChain};
use std::path::Path;
use std::sync::Arc;

const EPOCH: u64 = 100;
const WINDOW: u64 = 64;

fn short_epochs(k: &Keys) -> GenesisSpec {
    let mut s = spec(k);
    s.params.epoch_blocks = EPOCH;
    s
}

fn open(dir: &Path, k: &Keys, mode: HistoryMode) -> Result<Arc<TxChain>, ChainError> {
    let prune = PruneConfig {
        keep_versions: 16,
        history: HistoryPolicy {
            mode,
            keep_blocks: WINDOW,
        },
        ..PruneConfig::default()
    };
    open_pruning(dir, short_epochs(k), prune, &Metrics::new())
}

/// Produces blocks up to `to`, each with two transfers; returns their ids by height.
fn grow(chain: &TxChain, k: &Keys, to: u64) -> Vec<(u64, TxId)> {
    let mut ids = Vec::new();
    for h in chain.tip().header.height + 1..=to {
        for (from, into) in [(0, 1), (2, 3)] {
            let tx = transfer(chain, &k.users[from], &k.users[into], 1 + h);
            ids.push((h, tx.id()));
            chain.submit(tx.bytes()).unwrap();
        }
        let block = chain.produce_block(&k.validator, time(h)).unwrap();
        assert_eq!(block.txs.len(), 2);
    }
    ids
}

/// Entries and their bytes (keys and values) in each of the chain's column families.
fn footprint(chain: &TxChain) -> Vec<(&'static str, usize, usize)> {
    let kv: &dyn KvStore = chain.store().kv().as_ref();
    COLUMNS
        .iter()
        .map(|cf| {
            let (mut n, mut bytes) = (0, 0);
            for item in kv.iter_from(cf, &[], Direction::Forward).unwrap() {
                let (key, value) = item.unwrap();
                n += 1;
                bytes += key.len() + value.len();
            }
            (*cf, n, bytes)
        })
        .collect()
}

fn entries(f: &[(&str, usize, usize)], cf: &str) -> usize {
    f.iter().find(|e| e.0 == cf).map_or(0, |e| e.1)
}

fn total_bytes(f: &[(&str, usize, usize)]) -> usize {
    f.iter().map(|e| e.2).sum()
}

#[test]
fn a_pruned_node_keeps_a_window_and_what_proves_finality_and_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), &k, HistoryMode::Pruned).unwrap();
    let first = grow(&chain, &k, 400);
    let at_400 = footprint(&chain);
    let later = grow(&chain, &k, 800);
    let at_800 = footprint(&chain);
    let tip = chain.tip().header.height;
    assert_eq!(tip, 800);

    let floor = tip + 1 - WINDOW;
    assert_eq!(
        chain.store().kept(),
        Kept {
            bodies_from: floor,
            headers_from: floor
        }
    );
    // The window's bodies and indexes, exactly: two transactions per block, each in the
    // transaction index once and the address index twice.
    for at in [&at_400, &at_800] {
        assert_eq!(entries(at, "tx_bodies"), 2 * WINDOW as usize);
        assert_eq!(entries(at, "tx_index"), 2 * WINDOW as usize);
        assert_eq!(entries(at, "tx_addr_index"), 4 * WINDOW as usize);
        // Operations: one entry per account and block (the four users and the proposer's
        // tips), and one per block listing them.
        assert_eq!(entries(at, "tx_account_ops"), 5 * WINDOW as usize);
        assert_eq!(entries(at, "tx_ops_by_height"), WINDOW as usize);
    }
    // Headers: the window, genesis and each epoch's last; nothing else grows with the chain.
    let boundaries = |tip: u64| (tip + 1 - WINDOW) / EPOCH + 1;
    assert_eq!(
        entries(&at_800, "tx_headers") as u64,
        WINDOW + boundaries(800)
    );
    assert_eq!(
        entries(&at_800, "tx_block_hashes"),
        entries(&at_800, "tx_headers")
    );
    // Twice the chain, not twice the database: only the epoch headers and proofs grow
    // (a generous bound on the bytes of every column family together).
    let (small, large) = (total_bytes(&at_400), total_bytes(&at_800));
    assert!(
        large * 100 <= small * 115,
        "the database grew from {small} to {large} bytes as the chain doubled"
    );

    let store = chain.store();
    assert!(store.block(floor - 1).unwrap().is_none());
    assert!(store.block(floor).unwrap().is_some());
    assert!(store.header(0).unwrap().is_some(), "genesis stays");
    assert!(
        store.header(EPOCH * 3).unwrap().is_some(),
        "epoch blocks stay"
    );
    assert!(store.commit_certificate(EPOCH * 3).unwrap().is_some());
    assert!(store.validators_proof(EPOCH * 3).unwrap().is_some());
    assert!(store.header(EPOCH * 3 + 1).unwrap().is_none());
    // A dropped transaction is unknown here; a kept one still proves its inclusion and
    // finality from the genesis alone, across every epoch hop.
    let (_, old) = first[0];
    assert!(chain.lookup_tx(&old).unwrap().is_none());
    let (height, kept) = later[later.len() - 3];
    assert!(height >= floor && height < tip);
    let TxProofLookup::Proof { proof, .. } = chain.tx_proof(&kept).unwrap() else {
        panic!("a kept final transaction has a proof");
    };
    let params = ChainParams::from_genesis(&short_epochs(&k)).unwrap();
    let proven = proof.verify(&params).unwrap();
    assert_eq!((proven.tx_id, proven.height), (kept, height));
    // An account's history lists what is kept, and says from where.
    let history = store
        .account_history(&k.users[1].public(), None, 1_000)
        .unwrap();
    assert_eq!(history.len() as u64, WINDOW);
    assert!(history.iter().all(|r| r.location.height >= floor));

    // REST: a dropped block is `410 pruned`, a kept one 200, the chain says what it keeps.
    let get = |path: String| rest_get(&chain, &path);
    let (status, body) = get(format!("/v1/tx/blocks/{}", floor - 1));
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["type"], "urn:doin:problem:pruned");
    assert_eq!(body["kept_from"], floor);
    let (status, _) = get(format!("/v1/tx/blocks/{}/transactions", floor - 1));
    assert_eq!(status, 410);
    assert_eq!(get(format!("/v1/tx/blocks/{floor}")).0, 200);
    assert_eq!(get(format!("/v1/tx/blocks/{}", tip + 1)).0, 404);
    let (status, body) = get(format!("/v1/tx/transactions/{old}"));
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("keeps"), "{body}");
    let (_, info) = get("/v1/tx/info".into());
    assert_eq!(info["history"]["mode"], "pruned");
    assert_eq!(info["history"]["bodies_from"], floor);
    // Operations cover the kept blocks: an account after the block below them is the last
    // state they start from; further back is `410 pruned`.
    let alice = doin_types::Address::new(params.network, k.users[0].public()).to_string();
    let (status, page) = get(format!("/v1/tx/accounts/{alice}/operations?order=oldest"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["kept_from"], floor);
    assert_eq!(page["items"][0]["height"], floor);
    let (status, body) = get(format!("/v1/tx/accounts/{alice}?height={}", floor - 1));
    assert_eq!(status, 200, "{body}");
    let first = &page["items"][0];
    let n = |v: &serde_json::Value| v.as_str().unwrap().parse::<u128>().unwrap();
    assert_eq!(
        n(&body["balance"]),
        n(&first["balance_after"]) + n(&first["debit"]) - n(&first["credit"])
    );
    let (status, body) = get(format!("/v1/tx/accounts/{alice}?height={}", floor - 2));
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["kept_from"], floor);
}

#[test]
fn an_archive_node_switches_to_pruned_in_place_and_cannot_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys();
    let chain = open(dir.path(), &k, HistoryMode::Archive).unwrap();
    grow(&chain, &k, 200);
    assert_eq!(chain.store().kept(), Kept::default());
    assert!(chain.store().block(1).unwrap().is_some());
    let tip = chain.tip();
    drop(chain);

    // `full` drops old bodies, keeps every header.
    let chain = open(dir.path(), &k, HistoryMode::Full).unwrap();
    let floor = 200 + 1 - WINDOW;
    assert_eq!(
        chain.store().kept(),
        Kept {
            bodies_from: floor,
            headers_from: 0
        }
    );
    assert!(chain.store().block(floor - 1).unwrap().is_none());
    assert!(chain.store().header(floor - 1).unwrap().is_some());
    drop(chain);

    let chain = open(dir.path(), &k, HistoryMode::Pruned).unwrap();
    assert_eq!(chain.tip().hash, tip.hash);
    assert_eq!(chain.store().kept().headers_from, floor);
    assert!(chain.store().header(floor - 1).unwrap().is_none());
    assert!(footprint(&chain)
        .iter()
        .all(|(cf, n, _)| *cf != "tx_bodies" || *n == 2 * WINDOW as usize));
    // It keeps working: the next block prunes one more height.
    grow(&chain, &k, 201);
    assert_eq!(chain.store().kept().bodies_from, floor + 1);
    drop(chain);

    for mode in [HistoryMode::Archive, HistoryMode::Full] {
        let refused = open(dir.path(), &k, mode).err().expect("refused");
        let message = refused.to_string();
        assert!(
            message.contains("dropped headers below height") && message.contains(mode.as_str()),
            "{message}"
        );
    }
    // Still opens as what it is.
    assert!(open(dir.path(), &k, HistoryMode::Pruned).is_ok());
}
