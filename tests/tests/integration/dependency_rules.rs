//! The dependency directions of docs/architecture.md, enforced from `cargo metadata`: each workspace crate may only
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
    m.insert(
        "doin-net",
        vec!["doin-types", "doin-codec", "doin-crypto", "doin-api"],
    );
    m.insert("doin-sync", vec!["doin-net", "doin-api"]);
    m.insert(
        "doin-tx-core",
        vec!["doin-types", "doin-codec", "doin-crypto"],
    );
    m.insert(
        "doin-channels",
        vec!["doin-types", "doin-codec", "doin-crypto", "doin-tx-core"],
    );
    // The BFT engine's view of the chain: its types, signing and wire bytes, no I/O of its own.
    m.insert(
        "doin-tx-consensus",
        vec!["doin-types", "doin-codec", "doin-crypto", "doin-tx-core"],
    );
    let mut tx_node = SHARED.to_vec();
    tx_node.extend(["doin-tx-core", "doin-tx-consensus"]);
    m.insert("doin-tx-node", tx_node);
    m.insert(
        "doin-hub-core",
        vec![
            "doin-types",
            "doin-api",
            "doin-crypto",
            "doin-tx-core",
            "doin-channels",
        ],
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

/// The sans-IO crates (docs/architecture.md: the cores and the channel state machine).
const SANS_IO: &[&str] = &[
    "doin-tx-core",
    "doin-tx-consensus",
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

/// Crates whose top-level modules still depend on each other in a circle: the chain cores'
/// type modules (a block names its certificate, a certificate its header) and the network's
/// swarm and service. Every other crate's modules form a tree of layers.
const MODULE_CYCLES_KNOWN: &[&str] = &["shared/net", "mainchain/core", "txchain/core"];

/// The crates of the workspace by folder (the test reads their sources).
const CRATE_DIRS: &[&str] = &[
    "shared/types",
    "shared/api",
    "shared/codec",
    "shared/crypto",
    "shared/store",
    "shared/telemetry",
    "shared/http",
    "shared/net",
    "shared/sync",
    "mainchain/core",
    "mainchain/node",
    "txchain/core",
    "txchain/node",
    "channels/core",
    "hub/core",
    "hub/node",
    "client",
    "node",
];

/// The top-level modules of the crate in `dir` and, for each, the modules it names as
/// `crate::<module>` (outside comments; a module's sub-folder counts as the module).
fn module_graph(dir: &std::path::Path) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    fn sources(path: &std::path::Path, into: &mut String) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                sources(&entry.unwrap().path(), into);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&std::fs::read_to_string(path).unwrap());
            into.push('\n');
        }
    }
    let src = dir.join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let not_source = path.is_file() && path.extension().is_none_or(|e| e != "rs");
        if ["lib", "main"].contains(&stem) || not_source {
            continue;
        }
        let mut text = String::new();
        sources(&path, &mut text);
        modules
            .entry(stem.to_string())
            .or_insert_with(String::new)
            .push_str(&text);
    }
    let names: Vec<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(m, text)| {
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let uses = names
                .iter()
                .filter(|n| {
                    *n != m
                        && (code.contains(&format!("crate::{n}::"))
                            || code.contains(&format!("crate::{n};"))
                            || code.contains(&format!("crate::{n}}}")))
                })
                .cloned()
                .collect();
            (m.clone(), uses)
        })
        .collect()
}

/// A cycle through `graph`'s modules, if there is one.
fn find_cycle(graph: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, std::collections::BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(graph, m, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_of_a_crate_form_no_cycle() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut problems = Vec::new();
    for dir in CRATE_DIRS {
        let cycle = find_cycle(&module_graph(&root.join(dir)));
        match (cycle, MODULE_CYCLES_KNOWN.contains(dir)) {
            (Some(c), false) => problems.push(format!("{dir}: {}", c.join(" -> "))),
            (None, true) => problems.push(format!(
                "{dir} has no module cycle any more: take it off MODULE_CYCLES_KNOWN"
            )),
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "module cycles:\n{}",
        problems.join("\n")
    );
    // The check itself finds a cycle where there is one.
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), ["b".to_string()].into_iter().collect());
    g.insert("b".to_string(), ["a".to_string()].into_iter().collect());
    assert!(find_cycle(&g).is_some());
}
