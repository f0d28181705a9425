//! External domain plugins, run for real: the example Python plugin evaluates like its
//! reference formula, broken plugins are reported (and restarted), and a main chain whose only
//! domain is the Python plugin grows from work verified through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_main_core::{DomainId, Fx, Objective};
use doin_main_node::plugin::{Plugin, PluginError, PluginSpec};
use doin_main_node::producer::run_producer;
use doin_main_node::workers::{run_evaluator, run_optimizer, DomainEvaluator, OptimizerOptions};
use doin_types::Hash256;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn plugin_spec(timeout_ms: u64) -> PluginSpec {
    PluginSpec {
        name: "py-quadratic".into(),
        command: vec![
            "python3".into(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/quadratic_plugin.py").into(),
        ],
        timeout_ms,
    }
}

/// The plugin's formula, computed independently here.
fn reference(seed: &Hash256, params: &[Fx]) -> Fx {
    let mut total: i128 = 0;
    for (i, p) in params.iter().enumerate() {
        let mut h = Sha256::new();
        h.update(seed.0);
        h.update((i as u32).to_le_bytes());
        let d = h.finalize();
        let mut w = [0u8; 8];
        w.copy_from_slice(&d[..8]);
        let c = (u64::from_le_bytes(w) % 2_000_000_001) as i128 - 1_000_000_000;
        let diff = p.0 as i128 - c;
        total += diff * diff / 1_000_000_000;
    }
    Fx(total as i64)
}

#[test]
fn python_plugin_answers_like_its_reference_formula() {
    let plugin = Plugin::new(plugin_spec(10_000));
    let domain = DomainId::new("py").unwrap();
    for (i, seed) in [Hash256([1; 32]), Hash256([0xab; 32])].iter().enumerate() {
        let params = vec![
            Fx::parse("0.5").unwrap(),
            Fx(-(i as i64) * 7_123_456_789),
            Fx::ZERO,
        ];
        let got = plugin.evaluate(&domain, seed, &params).unwrap();
        assert_eq!(got, reference(seed, &params));
    }
}

#[test]
fn broken_plugins_are_reported_not_trusted() {
    let d = DomainId::new("x").unwrap();
    let seed = Hash256([0; 32]);
    let run = |cmd: &[&str], timeout_ms| {
        Plugin::new(PluginSpec {
            name: "broken".into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            timeout_ms,
        })
        .evaluate(&d, &seed, &[Fx::ONE])
    };
    assert!(matches!(
        run(&["sh", "-c", "read l; echo not-json"], 5_000),
        Err(PluginError::BadAnswer { .. })
    ));
    assert!(matches!(
        run(
            &["sh", "-c", "read l; echo '{\"id\":999,\"metric\":\"1\"}'"],
            5_000
        ),
        Err(PluginError::BadAnswer { .. })
    ));
    assert!(matches!(
        run(
            &["sh", "-c", "read l; echo '{\"id\":2,\"metric\":1.5}'"],
            5_000
        ),
        Err(PluginError::BadAnswer { .. })
    ));
    assert!(matches!(run(&["true"], 5_000), Err(PluginError::Io { .. })));
    assert!(matches!(
        run(&["sleep", "5"], 300),
        Err(PluginError::Timeout { .. })
    ));
    assert!(matches!(
        run(&["/nonexistent/plugin"], 5_000),
        Err(PluginError::Spawn { .. })
    ));
    // A plugin that reports an evaluation error is believed, and stays up.
    let p = Plugin::new(plugin_spec(10_000));
    let bad = p.evaluate(&d, &seed, &[]).map(|_| ());
    assert_eq!(bad, Ok(()), "an empty vector is a valid (zero) evaluation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_python_domain_makes_main_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(3, 1);
    let domains = vec![domain(
        "py-quadratic",
        Objective::External {
            plugin: "py-quadratic".into(),
        },
        3,
    )];
    let spec = spec(&k, domains);
    let chain = open(dir.path(), spec.clone()).unwrap();
    let evaluator = Arc::new(DomainEvaluator::new(vec![plugin_spec(10_000)]));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poll = Duration::from_millis(50);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn({
        let f = run_producer(
            chain.clone(),
            Arc::new(copy(&k.producer)),
            poll,
            stop_rx.clone(),
        );
        async move { f.await.map_err(|e| e.to_string()) }
    }));
    for e in &k.evaluators {
        tasks.push(tokio::spawn(run_evaluator(
            chain.clone(),
            Arc::new(copy(e)),
            evaluator.clone(),
            poll,
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(run_optimizer(
        chain.clone(),
        Arc::new(copy(&k.optimizers[0])),
        evaluator.clone(),
        OptimizerOptions {
            poll,
            tries_per_round: 16,
        },
        stop_rx.clone(),
    )));

    let id = DomainId::new("py-quadratic").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = chain.head();
        let d = &head.state.domains[&id];
        if d.accepted >= 2 && head.header.cumulative_work > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no verified plugin work within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_tx.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let head = chain.head();
    let d = &head.state.domains[&id];
    assert!(d.best < Fx::from_int(100));
    // The best metric on chain is what the reference formula gives for the best parameters.
    assert_eq!(reference(&d.data_seed, &d.best_params), d.best);
    assert!(!head.state.minted.is_zero(), "work blocks paid a coinbase");

    // Restart: the same tip and state from disk.
    drop(chain);
    let reopened = open(dir.path(), spec).unwrap();
    assert_eq!(reopened.head().hash, head.hash);
    assert_eq!(*reopened.head().state, *head.state);
}
