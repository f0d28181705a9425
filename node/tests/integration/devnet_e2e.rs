//! Black-box: the README's first command, tried as a new user would. A real `doin devnet`
//! process answers REST; the `doin wallet` command moves coins between two dev accounts; the
//! balance shows it after the next block; the main chain grows from work verified by the demo
//! evaluators (an accepted optimae with votes, a coinbase); a restart (SIGTERM, then the same
//! command) keeps all of it; the event stream delivers blocks and resumes from an id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOIN: &str = env!("CARGO_BIN_EXE_doin");

fn free_port() -> u16 {
    crate::ports::free_port("127.0.0.1")
}

struct Devnet {
    child: Child,
    base: String,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, port: u16) -> Devnet {
    let child = Command::new(DOIN)
        .args(["devnet", "--data-dir"])
        .arg(dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--block-time-ms",
            "400",
            "--main-block-time-ms",
            "300",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start doin devnet");
    let base = format!("http://127.0.0.1:{port}");
    let d = Devnet { child, base };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = get(&format!("{}/readyz", d.base)) {
            break;
        }
        assert!(Instant::now() < deadline, "devnet did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    d
}

/// Blocking GET: status and body.
fn get(url: &str) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let r = reqwest::get(url).await.map_err(|e| e.to_string())?;
        let s = r.status().as_u16();
        let t = r.text().await.map_err(|e| e.to_string())?;
        Ok((s, t))
    })
}

fn wallet(base: &str, keystore: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(DOIN)
        .args(["wallet", "--json", "--node", base, "--keystore"])
        .arg(keystore)
        .args(args)
        .output()
        .expect("run doin wallet");
    assert!(
        out.status.success(),
        "doin wallet {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("wallet output {stdout:?}: {e}"))
}

/// Fetches a proof with `wallet <fetch…> --out FILE` and checks it offline with
/// `wallet verify-proof FILE --genesis … --main-genesis …`; returns the check's answer.
fn fetch_and_verify(
    base: &str,
    keystore: &Path,
    data: &Path,
    file: &Path,
    fetch: &[&str],
) -> serde_json::Value {
    let mut args: Vec<&str> = fetch.to_vec();
    args.extend(["--out", file.to_str().unwrap()]);
    wallet(base, keystore, &args);
    let genesis = data.join("genesis.json");
    let main_genesis = data.join("main-genesis.json");
    wallet(
        base,
        keystore,
        &[
            "verify-proof",
            file.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
            "--main-genesis",
            main_genesis.to_str().unwrap(),
        ],
    )
}

fn balance(base: &str, keystore: &Path) -> u64 {
    wallet(base, keystore, &["balance"])["balance"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn devnet_wallet_transfer_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let port = free_port();
    let mut node = start(&data, port);
    let base = node.base.clone();

    let (code, info) = get(&format!("{base}/v1/tx/info")).unwrap();
    assert_eq!(code, 200);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["network"], "devnet");

    let a0 = data.join("keys/account-0.json");
    let a1 = data.join("keys/account-1.json");
    let to = wallet(&base, &a1, &["address"])["address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(to.starts_with("ddoin1"));
    let before0 = balance(&base, &a0);
    let before1 = balance(&base, &a1);

    let sent = wallet(
        &base,
        &a0,
        &[
            "send",
            "--to",
            &to,
            "--amount",
            "1.5",
            "--wait",
            "--wait-secs",
            "60",
        ],
    );
    assert!(
        sent["status"] == "final" || sent["status"] == "anchored",
        "{sent}"
    );
    let fee: u64 = sent["fee_paid"]["total"].as_str().unwrap().parse().unwrap();
    assert_eq!(balance(&base, &a1), before1 + 150_000_000);
    assert_eq!(balance(&base, &a0), before0 - 150_000_000 - fee);
    let id = sent["id"].as_str().unwrap().to_string();

    // Staking: demo evaluators are staked at genesis; an account stakes, starts unbonding,
    // and cannot withdraw before the unbonding period ends (the node says why).
    let ev_stakes = wallet(&base, &data.join("keys/evaluator-0.json"), &["stakes"]);
    assert_eq!(ev_stakes["stakes"][0]["role"], "evaluator", "{ev_stakes}");
    assert!(!ev_stakes["stakes"][0]["domains"]
        .as_array()
        .unwrap()
        .is_empty());
    let staked = wallet(
        &base,
        &a1,
        &[
            "stake",
            "--role",
            "optimizer",
            "--amount",
            "5",
            "--wait",
            "--wait-secs",
            "60",
        ],
    );
    assert_eq!(staked["payload"]["type"], "stake", "{staked}");
    let unstaked = wallet(
        &base,
        &a1,
        &[
            "unstake",
            "--role",
            "optimizer",
            "--amount",
            "5",
            "--wait",
            "--wait-secs",
            "60",
        ],
    );
    assert_eq!(unstaked["payload"]["type"], "unstake", "{unstaked}");
    let a1_stakes = wallet(&base, &a1, &["stakes"]);
    let st = &a1_stakes["stakes"][0];
    assert_eq!(st["bonded"], "0", "{a1_stakes}");
    assert_eq!(st["unbonding"], "500000000", "{a1_stakes}");
    assert_eq!(st["withdrawable"], false, "{a1_stakes}");
    let early = Command::new(DOIN)
        .args(["wallet", "--json", "--node", &base, "--keystore"])
        .arg(&a1)
        .args(["withdraw", "--role", "optimizer"])
        .output()
        .unwrap();
    assert!(!early.status.success());
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(err.contains("still-unbonding"), "{err}");
    let a1_after_staking = balance(&base, &a1);

    // An exchange keeps the deposit's inclusion proof and checks it offline against the
    // genesis file alone.
    let proof_file = dir.path().join("deposit-proof.json");
    let checked = fetch_and_verify(&base, &a0, &data, &proof_file, &["proof", &id]);
    assert_eq!(checked["valid"], true, "{checked}");
    assert_eq!(checked["tx_id"], sent["id"], "{checked}");

    // The event stream delivers block events with resumable ids.
    let (code, _) = get(&format!("{base}/v1/tx/blocks/latest")).unwrap();
    assert_eq!(code, 200);
    let first_block = read_one_block_event(&base, Some("1-0"));
    assert_eq!(first_block.0, "2-0");

    // The main chain grows from verified work: wait for a work block with an accepted optimae.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (main_height, accepted) = loop {
        let (_, body) = get(&format!("{base}/v1/main/domains")).unwrap();
        let domains: serde_json::Value = serde_json::from_str(&body).unwrap();
        let with_best = domains
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["best_optimae"].is_string())
            .cloned();
        let (_, info) = get(&format!("{base}/v1/main/info")).unwrap();
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        if let (Some(d), true) = (with_best, info["minted"] != "0") {
            break (info["height"].as_u64().unwrap(), d);
        }
        assert!(
            Instant::now() < deadline,
            "no main-chain work block within 60 s: {info}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    // The rewards of that block reach the evaluators' transfer-chain balances once a
    // transfer block anchors it (one main block deep).
    let ev0 = data.join("keys/evaluator-0.json");
    let ev_address = wallet(&base, &ev0, &["address"])["address"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, rewards) = get(&format!("{base}/v1/main/rewards/{ev_address}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let credited = loop {
        let b = balance(&base, &ev0);
        if b > 0 {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "no main-chain reward reached evaluator 0's transfer balance within 60 s: {rewards}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let (_, info) = get(&format!("{base}/v1/tx/info")).unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(
        info["main_anchor"]["height"].as_u64().unwrap() >= 1,
        "{info}"
    );
    assert_ne!(info["imported_from_main"], "0", "{info}");
    assert!(credited > 0);
    // Exactly once: the balance (the evaluator never spends, and starts with nothing) equals
    // the coinbase paid to it by every main block its state's anchor covers.
    assert_eq!(
        transfer_balance_and_anchored_rewards(&base, &ev_address),
        (0, 0),
        "evaluator 0's balance differs from its anchored main-chain rewards"
    );
    // The main block that paid the reward is final once a final transfer block anchors it
    // (and it is 2 deep); its anchoring proof checks offline against both genesis files.
    let anchor = info["main_anchor"]["height"].as_u64().unwrap();
    let (_, mb) = get(&format!("{base}/v1/main/blocks/{anchor}")).unwrap();
    let mb: serde_json::Value = serde_json::from_str(&mb).unwrap();
    assert_eq!(mb["status"], "final", "{mb}");
    assert!(mb["anchored_by"]["height"].as_u64().unwrap() >= 1, "{mb}");
    let main_proof = dir.path().join("main-proof.json");
    let checked = fetch_and_verify(&base, &a0, &data, &main_proof, &["main-proof", "1"]);
    assert_eq!(checked["valid"], true, "{checked}");
    assert_eq!(checked["main_height"], 1, "{checked}");
    let mut lying: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&main_proof).unwrap()).unwrap();
    lying["main_height"] = serde_json::Value::from(2);
    std::fs::write(&main_proof, lying.to_string()).unwrap();
    let refused = Command::new(DOIN)
        .args(["wallet", "verify-proof"])
        .arg(&main_proof)
        .arg("--genesis")
        .arg(data.join("genesis.json"))
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a lying main-anchor proof was accepted"
    );
    let optimae = accepted["best_optimae"].as_str().unwrap();
    let (code, body) = get(&format!("{base}/v1/main/optimae/{optimae}")).unwrap();
    assert_eq!(code, 200, "{body}");
    let o: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(o["status"], "accepted", "{o}");
    assert!(o["votes"].as_array().unwrap().len() >= 2, "{o}");
    assert_eq!(o["verified_metric"], accepted["best_metric"]);

    // Graceful stop, then the same command again: everything is still there.
    let pid = node.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            assert!(s.success(), "devnet exited with {s} on SIGTERM");
            break;
        }
        assert!(Instant::now() < deadline, "devnet did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut banner = String::new();
    if let Some(mut out) = node.child.stdout.take() {
        let _ = out.read_to_string(&mut banner);
    }
    assert!(
        banner.contains("/docs"),
        "banner names the API docs: {banner}"
    );
    drop(node);

    let node = start(&data, port);
    assert_eq!(balance(&node.base, &a1), a1_after_staking);
    let a1_stakes = wallet(&node.base, &a1, &["stakes"]);
    assert_eq!(
        a1_stakes["stakes"][0]["unbonding"], "500000000",
        "{a1_stakes}"
    );
    let (_, info) = get(&format!("{}/v1/main/info", node.base)).unwrap();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(info["height"].as_u64().unwrap() >= main_height, "{info}");
    let (code, _) = get(&format!("{}/v1/main/optimae/{optimae}", node.base)).unwrap();
    assert_eq!(code, 200);
    assert!(balance(&node.base, &ev0) >= credited);
    assert_eq!(
        transfer_balance_and_anchored_rewards(&node.base, &ev_address),
        (0, 0),
        "after a restart, evaluator 0's balance still equals its anchored rewards"
    );
    // Main blocks checkpoint final transfer blocks: the transfer becomes `anchored`, named by
    // a main block whose checkpoint covers its block.
    let deadline = Instant::now() + Duration::from_secs(60);
    let tx = loop {
        let (_, body) = get(&format!("{}/v1/tx/transactions/{id}", node.base)).unwrap();
        let tx: serde_json::Value = serde_json::from_str(&body).unwrap();
        if tx["status"] == "anchored" {
            break tx;
        }
        assert!(Instant::now() < deadline, "transfer never anchored: {tx}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(tx["confirmations"].as_u64().unwrap() >= 1);
    let by = tx["anchored_by"]["height"].as_u64().unwrap();
    let (_, main_block) = get(&format!("{}/v1/main/blocks/{by}", node.base)).unwrap();
    let main_block: serde_json::Value = serde_json::from_str(&main_block).unwrap();
    assert_eq!(main_block["hash"], tx["anchored_by"]["hash"]);
    let covered = main_block["tx_checkpoint"]["height"].as_u64().unwrap();
    assert!(
        covered >= tx["block_height"].as_u64().unwrap(),
        "{main_block}"
    );
    let (_, cp_block) = get(&format!("{}/v1/tx/blocks/{covered}", node.base)).unwrap();
    let cp_block: serde_json::Value = serde_json::from_str(&cp_block).unwrap();
    assert_eq!(cp_block["hash"], main_block["tx_checkpoint"]["hash"]);
    let shown = wallet(&node.base, &a0, &["tx", &id]);
    assert_eq!(shown["status"], "anchored");
    // The proof now carries the checkpoint leg: transfer headers up to the checkpointed block
    // and the main header naming it.
    let proof_file = dir.path().join("anchored-proof.json");
    let checked = fetch_and_verify(&node.base, &a0, &data, &proof_file, &["proof", &id]);
    assert_eq!(checked["valid"], true, "{checked}");
    assert_eq!(
        checked["checkpointed_by"]["main_height"], tx["anchored_by"]["height"],
        "{checked}"
    );
}

/// The difference between `address`'s transfer-chain balance and the sum of coinbase payouts
/// to it in the main blocks its state's anchor covers, as (excess, shortfall).
fn transfer_balance_and_anchored_rewards(base: &str, address: &str) -> (u64, u64) {
    let json = |path: String| -> serde_json::Value {
        let (code, body) = get(&format!("{base}{path}")).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let account = json(format!("/v1/tx/accounts/{address}"));
    let balance: u64 = account["balance"].as_str().unwrap().parse().unwrap();
    let block = json(format!("/v1/tx/blocks/{}", account["height"]));
    let anchor = block["main_anchor"]["height"].as_u64().unwrap();
    let mut paid = 0u64;
    for h in 1..=anchor {
        let main_block = json(format!("/v1/main/blocks/{h}"));
        for p in main_block["coinbase"].as_array().unwrap() {
            if p["address"] == address {
                paid += p["amount"].as_str().unwrap().parse::<u64>().unwrap();
            }
        }
    }
    (balance.saturating_sub(paid), paid.saturating_sub(balance))
}

/// Opens `/v1/events` (optionally resuming) and returns the first block event's id and data.
fn read_one_block_event(base: &str, last_event_id: Option<&str>) -> (String, String) {
    let url = format!("{base}/v1/events");
    let host = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n");
    if let Some(id) = last_event_id {
        req.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    req.push_str("\r\n");
    std::io::Write::write_all(&mut stream, req.as_bytes()).unwrap();
    let reader = BufReader::new(stream);
    let (mut id, mut event) = (String::new(), String::new());
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(v) = line
            .strip_prefix("id: ")
            .or_else(|| line.strip_prefix("id:"))
        {
            id = v.trim().to_string();
        } else if let Some(v) = line
            .strip_prefix("event: ")
            .or_else(|| line.strip_prefix("event:"))
        {
            event = v.trim().to_string();
        } else if let Some(v) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        {
            if event == "block" {
                return (id, v.to_string());
            }
        }
    }
    panic!("event stream ended without a block event");
}
