//! Black-box: evaluator pay in a `doin devnet` process. Every demo evaluator's vote that a
//! committed main block carries, for an optimae that was decided and that the vote agreed
//! with, releases the domain's verification fee through the hub: each tick into an
//! evaluator's stream is exactly one fee, there are never more ticks than such votes, the
//! evaluators of one decision are paid with one update (a split tick), and a SIGKILL and
//! restart pays no vote twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, free_port, get_ok, get_text, wait_until, NodeProc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

/// The devnet's verification fee per vote (25 000 base units) in milli-units.
const FEE_MSAT: u64 = 25_000_000;

fn num(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// A list of the hub's, read as its operator (with the devnet's `hub.cookie`).
fn operator_list(node: &NodeProc, path: &str) -> Vec<Value> {
    let cookie = node.log.with_file_name("devnet").join("hub.cookie");
    let Ok(token) = std::fs::read_to_string(cookie) else {
        return Vec::new();
    };
    get_text(
        &format!("{}{path}?limit=1000", node.rest),
        Some(token.trim()),
    )
    .filter(|(status, _)| *status == 200)
    .and_then(|(_, body)| serde_json::from_str::<Vec<Value>>(&body).ok())
    .unwrap_or_default()
}

/// Ticks and milli-units received over every stream of the hub.
fn streams(node: &NodeProc) -> Vec<(u64, u64)> {
    operator_list(node, "/v1/hub/streams")
        .iter()
        .map(|s| (num(&s["ticks"]), num(&s["received_msat"])))
        .collect()
}

/// What the evaluators hold on their channels from the hub.
fn delivered(node: &NodeProc) -> u64 {
    operator_list(node, "/v1/hub/channels")
        .iter()
        .filter(|c| c["role"] == "outgoing")
        .map(|c| num(&c["peer_balance_msat"]))
        .sum()
}

/// Agreeing votes of decided optimae that the main blocks up to the tip carry.
fn agreeing_votes(rest: &str) -> u64 {
    let height = get_ok(&format!("{rest}/v1/main/info"))
        .map(|v| num(&v["height"]))
        .unwrap_or(0);
    let mut optimae = BTreeSet::new();
    for h in 1..=height {
        let Some(block) = get_ok(&format!("{rest}/v1/main/blocks/{h}")) else {
            continue;
        };
        for verdict in block["verdicts"].as_array().into_iter().flatten() {
            optimae.insert(verdict["optimae_id"].as_str().unwrap_or("").to_string());
        }
    }
    let mut votes = 0;
    for id in optimae {
        let Some(o) = get_ok(&format!("{rest}/v1/main/optimae/{id}")) else {
            continue;
        };
        if o["decided_at"].is_null() {
            continue;
        }
        votes += o["votes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["agreed"] == Value::Bool(true))
            .count() as u64;
    }
    votes
}

/// Each evaluator's agreeing votes on one optimae (by address).
fn agreeing_votes_of(rest: &str, optimae: &str) -> BTreeMap<String, u64> {
    let mut by_evaluator = BTreeMap::new();
    let Some(o) = get_ok(&format!("{rest}/v1/main/optimae/{optimae}")) else {
        return by_evaluator;
    };
    for v in o["votes"].as_array().into_iter().flatten() {
        if v["agreed"] == Value::Bool(true) {
            *by_evaluator
                .entry(v["evaluator"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    by_evaluator
}

fn check(node: &NodeProc) -> u64 {
    let rest = &node.rest;
    let s = streams(node);
    for (ticks, received) in &s {
        assert_eq!(
            *received,
            ticks * FEE_MSAT,
            "a tick that is not one vote's fee"
        );
    }
    let ticks: u64 = s.iter().map(|(t, _)| t).sum();
    // Read after the ticks: votes only grow, so this bound holds at the ticks' moment too.
    let votes = agreeing_votes(rest);
    assert!(
        ticks <= votes,
        "{ticks} fees paid for {votes} agreeing votes: a vote was paid twice"
    );
    ticks
}

/// A devnet whose demo payer pays the evaluators by `pay` (`ticks` or `fund`); its node and
/// its arguments (to start it again).
fn devnet(dir: &std::path::Path, pay: &str) -> (NodeProc, Vec<OsString>) {
    let port = free_port("127.0.0.1");
    let node = NodeProc {
        name: "devnet".into(),
        config: dir.join("unused"),
        rest: format!("http://127.0.0.1:{port}"),
        log: dir.join("devnet.log"),
        child: None,
    };
    let args: Vec<OsString> = vec![
        "devnet".into(),
        "--data-dir".into(),
        dir.join("devnet").into(),
        "--listen".into(),
        format!("127.0.0.1:{port}").into(),
        "--block-time-ms".into(),
        "300".into(),
        "--main-block-time-ms".into(),
        "1000".into(),
        "--demo-interval-ms".into(),
        "200".into(),
        "--evaluators".into(),
        "3".into(),
        "--evaluator-pay".into(),
        pay.into(),
    ];
    (node, args)
}

#[test]
fn agreeing_votes_release_their_fee_through_the_hub_once_each() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let (mut node, args) = devnet(dir.path(), "ticks");
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let doin = doin();
    node.start_with(&doin, &args);

    let paid = wait_until("evaluators are paid for their votes", 240, || {
        let ticks = check(&node);
        (ticks >= 3).then_some(ticks)
    });
    // The payees took their payouts: what reached them is what the ticks carried, less the
    // hub's fee (0.1 %).
    wait_until("the payouts are taken", 60, || {
        let delivered = delivered(&node);
        let received: u64 = streams(&node).iter().map(|(_, r)| r).sum();
        (delivered > 0 && delivered == received - received / 1000).then_some(())
    });

    // The payer pays every agreeing demo evaluator of a decision with one update (a split
    // tick): stream entries of one payer channel state, each into another stream.
    let cookie = std::fs::read_to_string(dir.path().join("devnet").join("hub.cookie")).unwrap();
    let (_, csv) = get_text(
        &format!("{}/v1/hub/accounting.csv", node.rest),
        Some(cookie.trim()),
    )
    .unwrap();
    let mut per_update: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for row in csv.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        if f.get(2) == Some(&"stream_in") {
            per_update
                .entry((f[3].to_string(), f[9].to_string()))
                .or_default()
                .insert(f[7].to_string());
        }
    }
    assert!(
        per_update.values().any(|streams| streams.len() >= 2),
        "no split tick among {per_update:?}"
    );

    node.kill9();
    node.start_with(&doin, &args);
    std::thread::sleep(std::time::Duration::from_secs(5));
    let after = check(&node);
    assert!(
        after >= paid,
        "payments lost in the restart: {paid} then {after}"
    );
}

/// Every verification fund: optimae, funded, released, returned, settled, (evaluator, fee)s.
type FundRow = (String, u64, u64, u64, bool, Vec<(String, u64)>);

fn funds(node: &NodeProc) -> Vec<FundRow> {
    operator_list(node, "/v1/hub/funds")
        .iter()
        .map(|f| {
            let paid = f["paid"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p["evaluator"].as_str().unwrap_or("").to_string(),
                        num(&p["fee_msat"]),
                    )
                })
                .collect();
            (
                f["optimae"].as_str().unwrap_or("").to_string(),
                num(&f["funded_msat"]),
                num(&f["released_msat"]),
                num(&f["returned_msat"]),
                f["settled"] == Value::Bool(true),
                paid,
            )
        })
        .collect()
}

/// Checks every fund's books; the number of votes paid out of funds.
fn check_funds(node: &NodeProc) -> u64 {
    let rest = &node.rest;
    let all = funds(node);
    let mut paid_votes = 0;
    for (optimae, funded, released, returned, settled, paid) in &all {
        // One fee per agreeing vote: an evaluator is paid at most as many fees as the main
        // chain records agreeing votes of it on this optimae (two if it agreed in both rounds).
        let agreed = agreeing_votes_of(rest, optimae);
        for evaluator in paid.iter().map(|(e, _)| e).collect::<BTreeSet<_>>() {
            let fees = paid.iter().filter(|(e, _)| e == evaluator).count() as u64;
            let votes = agreed.get(evaluator).copied().unwrap_or(0);
            assert!(
                fees <= votes,
                "{optimae}: {evaluator} paid {fees} fees for {votes} agreeing votes"
            );
        }
        assert!(
            paid.iter().all(|(_, fee)| *fee == FEE_MSAT),
            "{optimae}: not one fee each"
        );
        assert_eq!(*released, FEE_MSAT * paid.len() as u64, "{optimae}");
        assert!(
            released <= funded,
            "{optimae}: paid out more than was put in"
        );
        if *settled {
            assert_eq!(
                released + returned,
                *funded,
                "{optimae}: the rest not returned"
            );
        } else {
            assert!(
                paid.is_empty(),
                "{optimae}: paid before its decision was final"
            );
        }
        paid_votes += paid.len() as u64;
    }
    // Read after the funds: votes only grow.
    let votes = agreeing_votes(rest);
    assert!(
        paid_votes <= votes,
        "{paid_votes} fees paid for {votes} agreeing votes"
    );
    paid_votes
}

#[test]
fn revealed_optimae_are_funded_and_the_hub_pays_each_agreeing_vote_once_final() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let (mut node, args) = devnet(dir.path(), "fund");
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let doin = doin();
    node.start_with(&doin, &args);

    // The payer funds every revealed optimae (a fee per demo evaluator); once a decision is
    // final the hub pays the agreeing evaluators and returns the rest.
    let paid = wait_until("funds pay evaluators", 240, || {
        let n = check_funds(&node);
        (n >= 3).then_some(n)
    });
    // What reached the evaluators is what the funds released, less the hub's fee (0.1 %).
    wait_until("the payouts are taken", 60, || {
        let delivered = delivered(&node);
        let released: u64 = funds(&node).iter().map(|f| f.2).sum();
        (delivered > 0 && delivered == released - released / 1000).then_some(())
    });
    // The ledger books each fund's money in and each evaluator's fee out, naming the optimae.
    let cookie = std::fs::read_to_string(dir.path().join("devnet").join("hub.cookie")).unwrap();
    let (_, csv) = get_text(
        &format!("{}/v1/hub/accounting.csv", node.rest),
        Some(cookie.trim()),
    )
    .unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let released: BTreeSet<(String, String)> = rows
        .iter()
        .filter(|f| f.get(2) == Some(&"fund_release"))
        .map(|f| (f[10].to_string(), f[4].to_string()))
        .collect();
    let listed: BTreeSet<(String, String)> = funds(&node)
        .iter()
        .flat_map(|f| f.5.iter().map(|(e, _)| (f.0.clone(), e.clone())))
        .collect();
    assert!(listed.is_subset(&released) || released.is_subset(&listed));
    assert!(rows
        .iter()
        .any(|f| f.get(2) == Some(&"fund_in") && !f[10].is_empty()));

    node.kill9();
    node.start_with(&doin, &args);
    std::thread::sleep(std::time::Duration::from_secs(5));
    let after = check_funds(&node);
    assert!(
        after >= paid,
        "payments lost in the restart: {paid} then {after}"
    );
}

/// A payer's `doin hub fund-reveals` on a devnet whose demo payer pays nobody: it funds the
/// revealed optimae by itself within its budget, the hub pays the agreeing evaluators out of
/// the funds, and a SIGKILL and restart of the daemon funds no optimae twice.
#[test]
fn a_payer_daemon_funds_revealed_optimae_within_its_budget_and_evaluators_are_paid() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let (mut node, args) = devnet(dir.path(), "none");
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let doin = doin();
    node.start_with(&doin, &args);
    let keys = dir.path().join("devnet").join("keys");
    let state_dir = dir.path().join("payer-channels");
    let hub = |more: &[&str]| {
        let mut cmd = std::process::Command::new(&doin);
        cmd.arg("hub")
            .args(more)
            .args(["--json", "--node", &node.rest])
            .arg("--keystore")
            .arg(keys.join("account-0.json"))
            .arg("--state-dir")
            .arg(&state_dir);
        cmd
    };
    let out = hub(&["connect", "--deposit", "10"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let connected: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let channel = connected["id"].as_str().unwrap().to_string();
    // Three evaluators at 25 000 base units each: an optimae with all three in its quorum
    // wants 75 000 000 msat; the budget puts 60 000 000 into one at most.
    const PER_OPTIMAE: u64 = 60_000_000;
    let daemon = |from: Option<&str>| {
        let mut args = vec![
            "fund-reveals",
            "--channel",
            &channel,
            "--max-per-optimae-msat",
            "60000000",
            "--max-per-day-msat",
            "100000000000",
            "--interval-ms",
            "300",
        ];
        if let Some(h) = from {
            args.extend(["--from-height", h]);
        }
        hub(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let funds = |node: &NodeProc| -> Vec<Value> {
        operator_list(node, "/v1/hub/funds")
            .into_iter()
            .filter(|f| f["payer_channel"] == Value::String(channel.clone()))
            .collect()
    };
    let mut running = daemon(Some("1"));
    wait_until("the daemon funded two optimae", 240, || {
        (funds(&node).len() >= 2).then_some(())
    });
    // Killed mid-way and started again: it goes on from its ledger.
    running.kill().unwrap();
    running.wait().unwrap();
    let mut running = daemon(None);
    let released = wait_until("an evaluator is paid out of a fund", 240, || {
        let paid: u64 = funds(&node).iter().map(|f| num(&f["released_msat"])).sum();
        (paid > 0 && funds(&node).len() >= 4).then_some(paid)
    });
    running.kill().unwrap();
    running.wait().unwrap();
    assert_eq!(released % FEE_MSAT, 0, "fees are released whole");
    for f in funds(&node) {
        // Each optimae funded once: its quorum's fees, at most what its budget allows (a
        // second funding would pass the budget).
        let funded = num(&f["funded_msat"]);
        assert!(
            funded == PER_OPTIMAE || (funded < PER_OPTIMAE && funded % FEE_MSAT == 0),
            "{f}"
        );
        assert!(num(&f["released_msat"]) <= PER_OPTIMAE);
    }
    // Every funded optimae was revealed by the main chain.
    for f in funds(&node) {
        let o = get_ok(&format!(
            "{}/v1/main/optimae/{}",
            node.rest,
            f["optimae"].as_str().unwrap()
        ));
        assert!(o.is_some(), "{f}");
    }
}
