//! Black-box: a user adds an external Python domain to a running devnet. `doin devnet --plugin`
//! gives the demo workers the plugin; `doin wallet register-domain` puts the domain on chain;
//! the demo optimizers and evaluators then produce accepted optimae in it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOIN: &str = env!("CARGO_BIN_EXE_doin");
const PLUGINS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mainchain/node/plugins");

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Blocking GET: status and JSON body (0 and null when the node is not reachable).
fn get(url: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match reqwest::get(url).await {
            Ok(r) => {
                let s = r.status().as_u16();
                let v = r.json().await.unwrap_or(serde_json::Value::Null);
                (s, v)
            }
            Err(_) => (0, serde_json::Value::Null),
        }
    })
}

#[test]
fn a_registered_python_domain_gets_verified_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let port = crate::ports::free_port("127.0.0.1");
    let base = format!("http://127.0.0.1:{port}");
    let plugin = format!("py-quadratic=python3 {PLUGINS}/quadratic_plugin.py");
    let _node = Kill(
        Command::new(DOIN)
            .args(["devnet", "--data-dir"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--main-block-time-ms",
                "300",
                "--no-demo",
                "--plugin",
                &plugin,
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&format!("{base}/readyz")).0 != 200 {
        assert!(Instant::now() < deadline, "devnet did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = Command::new(DOIN)
        .args(["wallet", "--json", "--node", &base, "--keystore"])
        .arg(data.join("keys/account-0.json"))
        .args(["register-domain", "--spec"])
        .arg(format!("{PLUGINS}/py-quadratic.domain.json"))
        .args(["--wait", "--wait-secs", "60"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "register-domain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["id"], "py-quadratic");
    assert_eq!(d["objective"], "external:py-quadratic");

    // Registering it again is refused with a clear error.
    let again = Command::new(DOIN)
        .args(["wallet", "--node", &base, "--keystore"])
        .arg(data.join("keys/account-0.json"))
        .args(["register-domain", "--spec"])
        .arg(format!("{PLUGINS}/py-quadratic.domain.json"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("domain-exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let best = loop {
        let (_, d) = get(&format!("{base}/v1/main/domains/py-quadratic"));
        if let Some(o) = d["best_optimae"].as_str() {
            break o.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no accepted optimae in the plugin domain: {d}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let (code, o) = get(&format!("{base}/v1/main/optimae/{best}"));
    assert_eq!(code, 200);
    assert_eq!(o["status"], "accepted", "{o}");
    assert_eq!(o["domain"], "py-quadratic");
    assert!(o["votes"].as_array().unwrap().len() >= 2);
}
