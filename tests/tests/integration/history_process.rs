//! Black-box: real `doin node` processes with history pruning and snapshot files.
//!
//! - a `pruned` follower drops old blocks (REST `410 pruned`, `/v1/tx/info` says what it keeps)
//!   while the archive producer still serves them;
//! - a fresh `full` node whose only peer pruned past it does not sync from it, and says why;
//! - `doin snapshot export` from the stopped follower and from the running producer, `doin
//!   snapshot inspect` verifies the files from the genesis file, a copy with one flipped byte is
//!   refused;
//! - `doin node --snapshot FILE` bootstraps a new node that then follows the producer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, get, wait_until, NodeProc};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Net {
    dir: tempfile::TempDir,
    doin: PathBuf,
    genesis: PathBuf,
    validator_key: PathBuf,
    password: PathBuf,
}

impl Net {
    /// A node's config: `storage` is its `[storage]` section's body.
    fn node(&self, name: &str, produce: bool, bootstrap: &[String], storage: &str) -> NodeProc {
        let mut extra = format!("[storage]\n{storage}\n");
        if produce {
            extra.push_str(&NodeProc::producer_toml(
                &self.validator_key,
                &self.password,
            ));
        }
        NodeProc::tx_node(
            self.dir.path(),
            name,
            &self.genesis,
            "127.0.0.1",
            bootstrap,
            300,
            &extra,
        )
    }

    /// `doin snapshot export --config CONFIG --out OUT`.
    fn export(&self, config: &Path, out: &Path) -> Output {
        let mut c = Command::new(&self.doin);
        c.args(["snapshot", "export", "--config"]).arg(config);
        c.arg("--out").arg(out).output().unwrap()
    }

    /// `doin snapshot inspect FILE --genesis GENESIS`.
    fn inspect(&self, file: &Path) -> Output {
        let mut c = Command::new(&self.doin);
        c.args(["snapshot", "inspect"]).arg(file);
        c.arg("--genesis").arg(&self.genesis).output().unwrap()
    }
}

const PRUNED: &str = "prune = \"pruned\"\nkeep_blocks = 64";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_pruned_node_stays_small_exports_a_snapshot_and_a_new_node_boots_from_it() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "history test\n").unwrap();
    let mut net = Net {
        doin: doin(),
        genesis: dir.path().join("genesis.json"),
        validator_key: PathBuf::new(),
        password,
        dir,
    };
    let (validator_key, validator) =
        common::new_testnet_key(&net.doin, &net.password, net.dir.path(), "validator");
    net.validator_key = validator_key;
    common::testnet_genesis(
        &net.doin,
        "history",
        &validator,
        &[(&validator, 1000)],
        100,
        &net.genesis,
    );

    let mut n0 = net.node("n0", true, &[], "prune = \"archive\"");
    n0.start(&net.doin);
    let boot = n0.listen_address();
    let mut n1 = net.node("n1", false, std::slice::from_ref(&boot), PRUNED);
    n1.start(&net.doin);
    wait_until("n1 follows past its window", 90, || {
        (n1.height() >= 100).then_some(())
    });
    let (status, body) = get(&format!("{}/v1/tx/blocks/5", n1.rest)).unwrap();
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["type"], "urn:doin:problem:pruned");
    let history = &n1.info().unwrap()["history"];
    assert_eq!(history["mode"], "pruned", "{history}");
    assert!(history["bodies_from"].as_u64().unwrap() > 5, "{history}");
    assert_eq!(get(&format!("{}/v1/tx/blocks/5", n0.rest)).unwrap().0, 200);

    // A fresh node that only knows the pruned one cannot sync from it, and says so. (The
    // producer is stopped meanwhile, so the newcomer cannot find it through the pruned one.)
    n0.kill9();
    let n1_addr = n1.listen_address();
    let mut n2 = net.node("n2", false, std::slice::from_ref(&n1_addr), "");
    n2.start(&net.doin);
    let sync = wait_until("n2 sees a peer pruned past it", 60, || {
        let (_, sync) = get(&format!("{}/v1/node/sync", n2.rest))?;
        (sync["tx"]["peers_pruned_past_us"] == 1).then_some(sync)
    });
    assert_eq!(n2.height(), 0, "{sync}");
    drop(n2);
    n0.start(&net.doin);

    // A snapshot from the stopped follower, checked from the genesis file alone.
    n1.kill9();
    let snap = net.dir.path().join("state.snap");
    let out = net.export(&n1.config, &snap);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = net.inspect(&snap);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("verified     finality"), "{report}");
    let height: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("height"))
        .and_then(|h| h.trim().parse().ok())
        .expect("the report names the height");
    // And from the running producer, its database read beside it.
    let live = net.dir.path().join("live.snap");
    let out = net.export(&n0.config, &live);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("a node is running"));
    let out = net.inspect(&live);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(n0.height() > 0, "the producer kept running");
    let mut bytes = std::fs::read(&snap).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    let flipped = net.dir.path().join("flipped.snap");
    std::fs::write(&flipped, &bytes).unwrap();
    let out = net.inspect(&flipped);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );

    // A new node boots from the file and follows the producer from there.
    let mut n3 = net.node("n3", false, std::slice::from_ref(&boot), PRUNED);
    let config = n3.config.clone();
    let with_snapshot: [&std::ffi::OsStr; 5] = [
        "node".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--snapshot".as_ref(),
        snap.as_os_str(),
    ];
    n3.start_with(&net.doin, &with_snapshot);
    let history = &n3.info().unwrap()["history"];
    assert_eq!(history["headers_from"], height, "{history}");
    let target = n0.height();
    wait_until("n3 follows the producer", 60, || {
        (n3.height() >= target).then_some(())
    });
    assert_eq!(n3.block_hash(target), n0.block_hash(target));
    // Restarted with the flag still given, it keeps its chain.
    n3.kill9();
    n3.start_with(&net.doin, &with_snapshot);
    assert!(n3.height() >= target);
}
