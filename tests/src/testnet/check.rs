//! What must hold after a scenario, read from every node's REST:
//! - no fork: every node holds the same block at every height up to the lowest tip;
//! - convergence: every node reaches one tip within a bound once the faults are healed;
//! - supply: on every node, balances + staked + in channels = what genesis created + what was
//!   imported from the main chain − what was burned;
//! - nothing lost: every transfer some node answered `202`/`200` to is final on every node.
//!
//! A failure names the node and the height or transfer, with the history lines that show it.

use super::bank::{is_final, Bank};
use super::node::{Http, Node};
use std::time::{Duration, Instant};

/// The tip height `node` reports, if it answers.
pub async fn height(http: &Http, node: &Node) -> Option<u64> {
    http.get(&format!("{}/v1/tx/info", node.rest()))
        .await
        .and_then(|v| v["height"].as_u64())
}

pub async fn block_hash(http: &Http, node: &Node, h: u64) -> Option<String> {
    http.get(&format!("{}/v1/tx/blocks/{h}", node.rest()))
        .await
        .and_then(|v| v["hash"].as_str().map(String::from))
}

/// Waits until every running node has the same block at one height at least `at_least`, and
/// their tips are within two blocks of each other.
pub async fn converge(
    http: &Http,
    nodes: &[Node],
    at_least: u64,
    secs: u64,
) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let running: Vec<&Node> = nodes.iter().filter(|n| n.running()).collect();
    loop {
        let mut heights = Vec::new();
        for n in &running {
            heights.push(height(http, n).await);
        }
        if let Some(hs) = heights.iter().copied().collect::<Option<Vec<u64>>>() {
            let (lo, hi) = (
                hs.iter().copied().min().unwrap_or(0),
                hs.iter().copied().max().unwrap_or(0),
            );
            if lo >= at_least && hi - lo <= 2 {
                let mut hashes = Vec::new();
                for n in &running {
                    hashes.push(block_hash(http, n, lo).await);
                }
                if hashes.iter().all(|h| h.is_some() && *h == hashes[0]) {
                    return Ok(lo);
                }
            }
        }
        if Instant::now() >= deadline {
            let seen: Vec<String> = running
                .iter()
                .zip(&heights)
                .map(|(n, h)| format!("{} at {h:?}", n.name()))
                .collect();
            return Err(format!(
                "no common tip at or above {at_least} within {secs} s: {}",
                seen.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every node holds the same block at every height from 1 up to `up_to`. The nodes are read
/// at once, each from its own task (a long soak has many heights to compare).
pub async fn no_fork(http: &Http, nodes: &[Node], up_to: u64) -> Result<(), String> {
    let mut reads = tokio::task::JoinSet::new();
    for n in nodes.iter().filter(|n| n.running()) {
        let (http, name, rest) = (http.clone(), n.name().to_string(), n.rest());
        reads.spawn(async move {
            let mut hashes = Vec::new();
            for h in 1..=up_to {
                let hash = http
                    .get(&format!("{rest}/v1/tx/blocks/{h}"))
                    .await
                    .and_then(|v| v["hash"].as_str().map(String::from))
                    .ok_or_else(|| format!("{name} has no block {h}"))?;
                hashes.push(hash);
            }
            Ok::<_, String>((name, hashes))
        });
    }
    let mut chains = Vec::new();
    while let Some(read) = reads.join_next().await {
        chains.push(read.map_err(|e| format!("a block read failed: {e}"))??);
    }
    chains.sort();
    let Some((first, theirs)) = chains.first() else {
        return Ok(());
    };
    for (name, hashes) in &chains[1..] {
        if let Some(i) = (0..hashes.len()).find(|&i| hashes[i] != theirs[i]) {
            return Err(format!(
                "FORK at height {}: {name} holds {}, {first} holds {}",
                i + 1,
                hashes[i],
                theirs[i]
            ));
        }
    }
    Ok(())
}

/// The supply equation on every running node, each read at one height.
pub async fn supply(
    http: &Http,
    nodes: &[Node],
    accounts: &[String],
    created: u128,
) -> Result<(), String> {
    for n in nodes.iter().filter(|n| n.running()) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info_url = format!("{}/v1/tx/info", n.rest());
            let before = http.get(&info_url).await;
            let mut balances: Option<u128> = Some(0);
            for a in accounts {
                let b = http
                    .get(&format!("{}/v1/tx/accounts/{a}", n.rest()))
                    .await
                    .and_then(|v| v["balance"].as_str()?.parse::<u128>().ok());
                balances = match (balances, b) {
                    (Some(s), Some(b)) => s.checked_add(b),
                    _ => None,
                };
            }
            let after = http.get(&info_url).await;
            if let (Some(before), Some(after), Some(balances)) = (before, after, balances) {
                if before["height"] == after["height"] {
                    let amount = |k: &str| -> Result<u128, String> {
                        after[k]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| format!("{}: /v1/tx/info has no {k}", n.name()))
                    };
                    let held = balances
                        .checked_add(amount("staked")?)
                        .and_then(|s| s.checked_add(amount("in_channels").ok()?))
                        .ok_or("supply overflow")?;
                    let expected = created
                        .checked_add(amount("imported_from_main")?)
                        .and_then(|s| s.checked_sub(amount("burned").ok()?))
                        .ok_or("supply underflow")?;
                    if held != expected {
                        return Err(format!(
                            "SUPPLY on {} at height {}: held {held}, created + imported − burned {expected}",
                            n.name(),
                            after["height"]
                        ));
                    }
                    break;
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("{}: no stable read for the supply check", n.name()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Waits up to `secs` until every accepted transfer is final on every running node; then a
/// transfer that is not is reported with its history. Past `secs`, a pass that still makes
/// some final (or finds a node answering that did not) earns one more: a long history's first
/// pass can outlast `secs`, and one unanswered read is no lost transfer.
pub async fn nothing_lost(
    http: &Http,
    nodes: &[Node],
    bank: &Bank,
    secs: u64,
) -> Result<usize, String> {
    let accepted = bank.accepted();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut open: Vec<(String, usize)> = accepted
        .iter()
        .flat_map(|tx| {
            nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.running())
                .map(move |(i, _)| (tx.clone(), i))
        })
        .collect();
    loop {
        // Each node's open transfers are asked from its own task, the nodes at once.
        let mut asks = tokio::task::JoinSet::new();
        for (i, n) in nodes.iter().enumerate() {
            let mine: Vec<String> = open
                .iter()
                .filter(|(_, at)| *at == i)
                .map(|(tx, _)| tx.clone())
                .collect();
            if mine.is_empty() {
                continue;
            }
            let (http, name, rest) = (http.clone(), n.name().to_string(), n.rest());
            asks.spawn(async move {
                let mut still = Vec::new();
                let mut first_failure = String::new();
                for tx in mine {
                    match http
                        .get_status(&format!("{rest}/v1/tx/transactions/{tx}"))
                        .await
                    {
                        Ok((200, v)) if v["status"].as_str().is_some_and(is_final) => {}
                        other => {
                            if still.is_empty() {
                                first_failure = match other {
                                    Ok((200, v)) => format!("{name} says {}", v["status"]),
                                    Ok((s, v)) => format!("{name} answers {s} {}", v["detail"]),
                                    Err(e) => format!("{name} does not answer: {e}"),
                                };
                            }
                            still.push((tx, i));
                        }
                    }
                }
                (still, first_failure)
            });
        }
        let mut still = Vec::new();
        // What the first transfer still open got from the node that has not made it final.
        let mut first_failure = String::new();
        while let Some(asked) = asks.join_next().await {
            let (more, failure) = asked.map_err(|e| format!("a transfer read failed: {e}"))?;
            if still.is_empty() && !more.is_empty() {
                first_failure = failure;
            }
            still.extend(more);
        }
        still.sort();
        if still.is_empty() {
            return Ok(accepted.len());
        }
        let progressed = still.len() < open.len();
        if Instant::now() >= deadline && !progressed {
            let (tx, _) = &still[0];
            let mut seen = Vec::new();
            for n in nodes.iter().filter(|n| n.running()) {
                let status = http
                    .get_status(&format!("{}/v1/tx/transactions/{tx}", n.rest()))
                    .await
                    .map(|(s, v)| format!("{s} {}", v["status"]))
                    .unwrap_or_else(|e| e);
                seen.push(format!("{}: {status}", n.name()));
            }
            return Err(format!(
                "LOST: {} accepted transfer(s) not final everywhere after {secs} s ({} node answers); {tx}: {first_failure}\n\
                 each node on it: {}\nits history:\n{}",
                still
                    .iter()
                    .map(|(tx, _)| tx)
                    .collect::<std::collections::HashSet<_>>()
                    .len(),
                still.len(),
                seen.join(", "),
                bank.excerpt(tx)
            ));
        }
        open = still;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Main-chain rewards credited exactly once: on every running node, what the transfer chain
/// imported from the main chain equals the coinbase of the main blocks it anchored, and every
/// node holds the same main blocks up to the lowest anchored height. Returns the lowest
/// anchored height and what it paid; a main chain that paid nothing fails (the check would
/// prove nothing).
pub async fn rewards_once(http: &Http, nodes: &[Node]) -> Result<(u64, u128), String> {
    let mut lowest: Option<(u64, u128)> = None;
    let mut first: Option<(String, Vec<String>)> = None;
    for n in nodes.iter().filter(|n| n.running()) {
        let info_url = format!("{}/v1/tx/info", n.rest());
        let deadline = Instant::now() + Duration::from_secs(30);
        let (anchored, imported) = loop {
            let info = http.get(&info_url).await;
            let read = info.as_ref().and_then(|i| {
                Some((
                    i["main_anchor"]["height"].as_u64()?,
                    i["imported_from_main"].as_str()?.parse::<u128>().ok()?,
                ))
            });
            if let Some(r) = read {
                break r;
            }
            if Instant::now() >= deadline {
                return Err(format!("{}: /v1/tx/info has no main anchor", n.name()));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let mut paid: u128 = 0;
        let mut hashes = Vec::new();
        for h in 1..=anchored {
            let block = http
                .get(&format!("{}/v1/main/blocks/{h}", n.rest()))
                .await
                .ok_or_else(|| format!("{} has no main block {h}", n.name()))?;
            hashes.push(block["hash"].as_str().unwrap_or_default().to_string());
            for p in block["coinbase"].as_array().into_iter().flatten() {
                let amount: u128 = p["amount"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        format!("{}: main block {h} has a malformed payout", n.name())
                    })?;
                paid = paid.checked_add(amount).ok_or("reward sum overflow")?;
            }
        }
        if imported != paid {
            return Err(format!(
                "REWARDS on {}: the transfer chain imported {imported}, the main blocks 1..={anchored} it anchors paid {paid}",
                n.name()
            ));
        }
        match &first {
            None => first = Some((n.name().to_string(), hashes)),
            Some((other, theirs)) => {
                if let Some(h) = theirs.iter().zip(&hashes).position(|(a, b)| a != b) {
                    return Err(format!(
                        "MAIN FORK at main height {}: {} and {other} hold different anchored blocks",
                        h + 1,
                        n.name()
                    ));
                }
            }
        }
        if lowest.is_none_or(|(a, _)| anchored < a) {
            lowest = Some((anchored, paid));
        }
    }
    match lowest {
        Some((anchored, paid)) if paid > 0 => Ok((anchored, paid)),
        _ => {
            Err("the main chain paid no rewards in the anchored blocks: nothing was checked".into())
        }
    }
}
