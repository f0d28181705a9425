//! Black-box: the production path. `doin wallet new` makes an encrypted validator key,
//! `doin genesis new` a genesis, and `doin node --config` runs a producing node from a TOML file
//! with an environment override; misconfigurations are refused with a clear message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOIN: &str = env!("CARGO_BIN_EXE_doin");

fn free_port() -> u16 {
    crate::ports::free_port("127.0.0.1")
}

fn get(url: &str) -> Option<(u16, serde_json::Value)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let r = reqwest::get(url).await.ok()?;
        let s = r.status().as_u16();
        let v = r.json().await.unwrap_or(serde_json::Value::Null);
        Some((s, v))
    })
}

#[test]
fn a_node_runs_from_config_with_an_encrypted_validator_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("validator.json");
    let pw = dir.path().join("validator.password");
    std::fs::write(&pw, "correct horse battery\n").unwrap();

    let out = Command::new(DOIN)
        .args(["wallet", "--json", "--keystore"])
        .arg(&key)
        .arg("--password-file")
        .arg(&pw)
        .arg("new")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert_eq!(kf["kind"], "encrypted");
    assert!(kf.get("secret_key").is_none_or(|v| v.is_null()));

    let addr_out = Command::new(DOIN)
        .args(["wallet", "--keystore"])
        .arg(&key)
        .args(["address", "--network", "testnet"])
        .output()
        .unwrap();
    let addr = String::from_utf8(addr_out.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(addr.starts_with("tdoin1"), "{addr}");

    let genesis = dir.path().join("genesis.json");
    let out = Command::new(DOIN)
        .args([
            "genesis",
            "new",
            "--network",
            "testnet",
            "--chain-name",
            "e2e-testnet",
        ])
        .args(["--validator", &addr, "--alloc", &format!("{addr}=21000.5")])
        .args(["--block-time-ms", "300", "--out"])
        .arg(&genesis)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = free_port();
    let cfg = dir.path().join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\ngenesis_file = {:?}\n[rest]\nlisten = \"127.0.0.1:1\"\n[producer]\nenabled = true\nkeystore = {:?}\npassword_file = {:?}\n[p2p]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n",
            dir.path().join("data"),
            genesis,
            key,
            pw
        ),
    )
    .unwrap();

    // A wrong chain selection is refused before anything starts.
    let out = Command::new(DOIN)
        .args(["node", "--config"])
        .arg(&cfg)
        .args(["--chains", "main,hub"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs the transfer chain"), "{err}");

    // The listen address comes from the environment, overriding the file.
    let mut child = Command::new(DOIN)
        .args(["node", "--config"])
        .arg(&cfg)
        .env("DOIN_REST__LISTEN", format!("127.0.0.1:{port}"))
        .env("DOIN_LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let info = loop {
        if let Some((200, v)) = get(&format!("{base}/v1/tx/info")) {
            if v["height"].as_u64().unwrap_or(0) >= 2 {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "node did not produce blocks");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(info["network"], "testnet");
    assert_eq!(info["chain_name"], "e2e-testnet");
    let (code, acct) = get(&format!("{base}/v1/tx/accounts/{addr}")).unwrap();
    assert_eq!(code, 200);
    assert_eq!(acct["balance"], "2100050000000");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit on SIGTERM: {status}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let first = logs.lines().next().unwrap_or("");
    let parsed: serde_json::Value = serde_json::from_str(first)
        .unwrap_or_else(|e| panic!("log line {first:?} is not JSON: {e}"));
    assert!(parsed.get("level").is_some());
}
