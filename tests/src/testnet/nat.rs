//! The checks of discovery and NAT traversal, read from the nodes' `/v1/node/peers`: how many
//! peers a node holds, what it learned of its own reachability, and whether two nodes hold a
//! direct connection.

use super::node::{Http, Node};
use serde_json::Value;
use std::time::{Duration, Instant};

fn peers_url(node: &Node) -> String {
    format!("{}/v1/node/peers", node.rest())
}

/// Waits until `node` reports `status` and, with `relayed = Some(true)`, a relay circuit
/// address, with `Some(false)` none and the problem stated; returns what it reports.
pub async fn expect_reachability(
    http: &Http,
    node: &Node,
    status: &str,
    relayed: Option<bool>,
    within_secs: u64,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    let mut last = Value::Null;
    loop {
        if let Some(view) = http.get(&peers_url(node)).await {
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
            last = reach.clone();
        }
        if Instant::now() >= deadline {
            let what = match relayed {
                None => "",
                Some(true) => " with a relay address",
                Some(false) => " without a relay address, saying why",
            };
            return Err(format!(
                "{} is not {status}{what} after {within_secs} s; its reachability: {last}",
                node.name(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `a` holds a connection to `b` that no relay carries; returns its address.
pub async fn expect_direct(
    http: &Http,
    a: &Node,
    b: &Node,
    within_secs: u64,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    let mut last = Value::Null;
    loop {
        if let Some(view) = http.get(&peers_url(a)).await {
            let entry = view["peers"]
                .as_array()
                .and_then(|peers| peers.iter().find(|p| p["peer_id"] == b.peer_id.as_str()));
            if let Some(entry) = entry {
                let direct = entry["connections"].as_array().and_then(|cs| {
                    cs.iter()
                        .find(|c| c["relayed"] == false)
                        .and_then(|c| c["remote_address"].as_str())
                });
                if let Some(addr) = direct {
                    return Ok(addr.to_string());
                }
                last = entry["connections"].clone();
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} has no direct connection to {} after {within_secs} s; its connections to it: {last}",
                a.name(),
                b.name()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `node` is connected to at least `at_least` peers; returns how many.
pub async fn expect_peers(
    http: &Http,
    node: &Node,
    at_least: usize,
    within_secs: u64,
) -> Result<usize, String> {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    let mut last = 0;
    loop {
        if let Some(view) = http.get(&peers_url(node)).await {
            last = view["peers"]
                .as_array()
                .map_or(0, |p| p.iter().filter(|p| p["connected"] == true).count());
            if last >= at_least {
                return Ok(last);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} has {last} peers after {within_secs} s, not {at_least}",
                node.name()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `node` holds outbound connections to at least `at_least` of `to`; returns their
/// names.
pub async fn expect_outbound(
    http: &Http,
    node: &Node,
    to: &[&Node],
    at_least: usize,
    within_secs: u64,
) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + Duration::from_secs(within_secs);
    let mut last = Vec::new();
    loop {
        if let Some(view) = http.get(&peers_url(node)).await {
            let peers = view["peers"].as_array().cloned().unwrap_or_default();
            last = to
                .iter()
                .filter(|t| {
                    peers.iter().any(|p| {
                        p["peer_id"] == t.peer_id.as_str()
                            && p["connections"]
                                .as_array()
                                .is_some_and(|cs| cs.iter().any(|c| c["outbound"] == true))
                    })
                })
                .map(|t| t.name().to_string())
                .collect();
            if last.len() >= at_least {
                return Ok(last);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} has outbound connections to {last:?} after {within_secs} s, not {at_least} of the {} named",
                node.name(),
                to.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
