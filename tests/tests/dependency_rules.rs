//! DESIGN §2 dependency directions, enforced from `cargo metadata`: each workspace crate may only
//! depend on the crates of ours listed for it, `*-core` crates do no I/O (no tokio, RocksDB,
//! libp2p or axum), and a new crate must be added to this table before it can build green.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const SHARED: &[&str] = &[
    "doin-types",
    "doin-api",
    "doin-codec",
    "doin-crypto",
    "doin-store",
    "doin-telemetry",
    "doin-http",
    "doin-net",
    "doin-sync",
];

fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut m = BTreeMap::new();
    m.insert("doin-types", vec![]);
    m.insert("doin-api", vec!["doin-types"]);
    m.insert("doin-codec", vec!["doin-types"]);
    m.insert("doin-crypto", vec!["doin-types", "doin-codec"]);
    m.insert("doin-store", vec!["doin-types", "doin-codec"]);
    m.insert("doin-telemetry", vec![]);
    m.insert("doin-http", vec![]);
    m.insert("doin-net", vec!["doin-types", "doin-codec", "doin-crypto"]);
    m.insert("doin-sync", vec!["doin-net", "doin-api"]);
    m.insert(
        "doin-tx-core",
        vec!["doin-types", "doin-codec", "doin-crypto"],
    );
    m.insert(
        "doin-channels",
        vec!["doin-types", "doin-codec", "doin-crypto", "doin-tx-core"],
    );
    let mut tx_node = SHARED.to_vec();
    tx_node.push("doin-tx-core");
    m.insert("doin-tx-node", tx_node);
    m.insert(
        "doin-hub-core",
        vec!["doin-types", "doin-crypto", "doin-tx-core", "doin-channels"],
    );
    // The hub reaches the transfer chain through its own port, never its service.
    let mut hub = SHARED.to_vec();
    hub.extend(["doin-tx-core", "doin-channels", "doin-hub-core"]);
    m.insert("doin-hub", hub);
    m.insert(
        "doin-main-core",
        vec!["doin-types", "doin-codec", "doin-crypto"],
    );
    // A node crate never imports another node crate: the main node knows nothing of the
    // transfer chain's service.
    let mut main_node = SHARED.to_vec();
    main_node.push("doin-main-core");
    m.insert("doin-main-node", main_node);
    // The clients reach a node only through its REST API: no service, store or network.
    m.insert(
        "doin-client",
        vec![
            "doin-types",
            "doin-codec",
            "doin-crypto",
            "doin-api",
            "doin-tx-core",
            "doin-main-core",
            "doin-channels",
            "doin-hub-core",
        ],
    );
    m.insert("doin-node", vec!["*"]);
    m.insert("doin-tests", vec!["*"]);
    m
}

/// The sans-IO crates (DESIGN §2: the cores and the channel state machine).
const SANS_IO: &[&str] = &[
    "doin-tx-core",
    "doin-main-core",
    "doin-channels",
    "doin-hub-core",
];

/// Crates a sans-IO core must never use directly.
const IO_CRATES: &[&str] = &["tokio", "rocksdb", "libp2p", "axum", "hyper", "reqwest"];

#[test]
fn workspace_dependencies_follow_the_design() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules = allowed();
    let packages = meta["packages"].as_array().unwrap();
    let ours: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap();
        let Some(allow) = rules.get(name) else {
            problems.push(format!(
                "{name} is not in the dependency table of this test"
            ));
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            let is_dev = d["kind"].as_str() == Some("dev");
            if ours.contains(&dep) && !is_dev && !allow.contains(&"*") && !allow.contains(&dep) {
                problems.push(format!("{name} must not depend on {dep}"));
            }
            if SANS_IO.contains(&name) && !is_dev && IO_CRATES.contains(&dep) {
                problems.push(format!("{name} is sans-IO and must not depend on {dep}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dependency rule violations:\n{}",
        problems.join("\n")
    );
}
