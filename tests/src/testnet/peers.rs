//! The checks of discovery, eclipse resistance and NAT traversal, read from the nodes'
//! `/v1/node/peers`: how many peers a node holds and which it dialled, what it learned of its
//! own reachability, and whether two nodes hold a direct connection.

use super::node::{Http, Node};
use super::scenario::Step;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Runs one of the steps checked here (`expect_reachability`, `expect_peers`,
/// `expect_outbound`, `expect_direct`); returns the lines to report.
pub async fn expect(http: &Http, nodes: &[Node], step: &Step) -> Result<Vec<String>, String> {
    let node = |name: &str| {
        nodes
            .iter()
            .find(|n| n.name() == name)
            .ok_or_else(|| format!("no node {name}"))
    };
    let mut said = Vec::new();
    match step {
        Step::ExpectReachability {
            nodes: names,
            status,
            relayed,
            within_secs,
        } => {
            for name in names {
                let seen =
                    expect_reachability(http, node(name)?, status, *relayed, *within_secs).await?;
                said.push(format!("{name} is {seen}"));
            }
        }
        Step::ExpectPeers {
            nodes: names,
            at_least,
            within_secs,
        } => {
            for name in names {
                let n = expect_peers(http, node(name)?, *at_least, *within_secs).await?;
                said.push(format!("{name} has {n} peers"));
            }
        }
        Step::ExpectOutbound {
            node: name,
            to,
            at_least,
            within_secs,
        } => {
            let targets: Vec<&Node> = to.iter().map(|t| node(t)).collect::<Result<_, _>>()?;
            let got = expect_outbound(http, node(name)?, &targets, *at_least, *within_secs).await?;
            said.push(format!("{name} has outbound connections to {got:?}"));
        }
        Step::ExpectDirect {
            between,
            within_secs,
        } => {
            let (a, b) = (&between[0], &between[1]);
            let seen = expect_direct(http, node(a)?, node(b)?, *within_secs).await?;
            said.push(format!("{a} and {b} connected directly: {seen}"));
        }
        other => return Err(format!("not a step of peers: {other:?}")),
    }
    Ok(said)
}

/// Reads `node`'s `/v1/node/peers` every 500 ms until `check` accepts it (returning what to
/// report) or `within_secs` pass; then fails with `check`'s last complaint (or that the node
/// never answered).
async fn poll_peers<T>(
    http: &Http,
    node: &Node,
    within_secs: u64,
    mut check: impl FnMut(&Value) -> Result<T, String>,
) -> Result<T, String> {
    let url = format!("{}/v1/node/peers", node.rest());
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    let mut last = "it never answered".to_string();
    loop {
        if let Some(view) = http.get(&url).await {
            match check(&view) {
                Ok(found) => return Ok(found),
                Err(why) => last = why,
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("{} after {within_secs} s: {last}", node.name()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The entry of `peer` among a view's peers.
fn entry<'v>(view: &'v Value, peer: &Node) -> Option<&'v Value> {
    view["peers"]
        .as_array()?
        .iter()
        .find(|p| p["peer_id"] == peer.peer_id.as_str())
}

/// Waits until `node` reports `status` and, with `relayed = Some(true)`, a relay circuit
/// address, with `Some(false)` none and the problem stated; returns what it reports.
async fn expect_reachability(
    http: &Http,
    node: &Node,
    status: &str,
    relayed: Option<bool>,
    within_secs: u64,
) -> Result<String, String> {
    poll_peers(http, node, within_secs, |view| {
        let reach = &view["reachability"];
        let relay = reach["relay_address"].as_str();
        let problem = reach["problem"].as_str();
        let relay_as_expected = match relayed {
            None => true,
            Some(true) => relay.is_some(),
            Some(false) => relay.is_none() && problem.is_some(),
        };
        if reach["status"] == status && relay_as_expected {
            return Ok(match (relay, problem) {
                (Some(r), _) => format!("{status}, reachable through {r}"),
                (None, Some(p)) => format!("{status}: {p}"),
                (None, None) => status.to_string(),
            });
        }
        let what = match relayed {
            None => "",
            Some(true) => " with a relay address",
            Some(false) => " without a relay address, saying why",
        };
        Err(format!("not {status}{what}; its reachability: {reach}"))
    })
    .await
}

/// Waits until `a` holds a connection to `b` that no relay carries; returns its address.
async fn expect_direct(
    http: &Http,
    a: &Node,
    b: &Node,
    within_secs: u64,
) -> Result<String, String> {
    poll_peers(http, a, within_secs, |view| {
        let connections = entry(view, b).map(|e| e["connections"].clone());
        let direct = connections.as_ref().and_then(|cs| {
            cs.as_array()?
                .iter()
                .find(|c| c["relayed"] == false)
                .and_then(|c| c["remote_address"].as_str())
                .map(str::to_string)
        });
        direct.ok_or_else(|| {
            format!(
                "no direct connection to {}; its connections to it: {}",
                b.name(),
                connections.unwrap_or(Value::Null)
            )
        })
    })
    .await
}

/// Waits until `node` is connected to at least `at_least` peers; returns how many.
async fn expect_peers(
    http: &Http,
    node: &Node,
    at_least: usize,
    within_secs: u64,
) -> Result<usize, String> {
    poll_peers(http, node, within_secs, |view| {
        let n = view["peers"]
            .as_array()
            .map_or(0, |p| p.iter().filter(|p| p["connected"] == true).count());
        if n >= at_least {
            Ok(n)
        } else {
            Err(format!("{n} peers, not {at_least}"))
        }
    })
    .await
}

/// Waits until `node` holds outbound connections to at least `at_least` of `to`; returns their
/// names.
async fn expect_outbound(
    http: &Http,
    node: &Node,
    to: &[&Node],
    at_least: usize,
    within_secs: u64,
) -> Result<Vec<String>, String> {
    poll_peers(http, node, within_secs, |view| {
        let dialled: Vec<String> = to
            .iter()
            .filter(|t| {
                entry(view, t).is_some_and(|e| {
                    e["connections"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|c| c["outbound"] == true))
                })
            })
            .map(|t| t.name().to_string())
            .collect();
        if dialled.len() >= at_least {
            Ok(dialled)
        } else {
            Err(format!(
                "outbound connections to {dialled:?}, not {at_least} of the {} named",
                to.len()
            ))
        }
    })
    .await
}
