//! Driving real `doin` processes from a test: finding the binary, free ports, blocking REST
//! reads, waiting with a deadline, and a node process that is killed when the test ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The `doin` binary of this build (built on demand when only this package was built).
pub(crate) fn doin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let doin = bin_dir.join(format!("doin{}", std::env::consts::EXE_SUFFIX));
    if !doin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "doin-node", "--bin", "doin"])
            .status()
            .unwrap();
        assert!(status.success(), "building the doin binary failed");
    }
    doin
}

pub(crate) use doin_tests::ports::free_port;

/// Runs one HTTP exchange to its end on a runtime of its own (the tests are synchronous).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

/// GET with a 5 s timeout: status and JSON body (`Null` when the body is not JSON).
pub(crate) fn get(url: &str) -> Option<(u16, Value)> {
    block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let s = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        Some((s, v))
    })
}

/// Sends one channel message `msg` on `channel` to the hub at `rest`, signed by the channel's
/// peer `key` (naming `stream` when given), as `doin hub` does; the hub's reply and the
/// payments it reported. The hub must answer 200.
pub(crate) fn send_channel_message(
    rest: &str,
    chain_id: &doin_types::ChainId,
    key: &doin_crypto::KeyPair,
    channel: &doin_tx_core::channel::ChannelId,
    msg: &doin_channels::Message,
    stream: Option<&doin_types::Hash256>,
) -> (Option<doin_channels::Message>, Vec<Value>) {
    let bytes = msg.encode().unwrap();
    let ctx = doin_hub::api::SignedContext {
        stream,
        ..Default::default()
    };
    let sig = key.sign(&doin_hub::api::message_auth_hash(
        chain_id, channel, &bytes, &ctx,
    ));
    let mut body =
        serde_json::json!({"message": hex::encode(&bytes), "signature": hex::encode(sig.0)});
    if let Some(s) = stream {
        body["stream"] = serde_json::json!(s.to_hex());
    }
    let url = format!("{rest}/v1/hub/channels/{}/messages", channel.to_hex());
    let (s, v) = post(&url, body, None);
    assert_eq!(s, 200, "{v}");
    let reply = v["reply"]
        .as_str()
        .map(|h| doin_channels::Message::decode(&hex::decode(h).unwrap()).unwrap());
    (reply, v["payments"].as_array().cloned().unwrap_or_default())
}

/// POST of a JSON body with a 10 s timeout (and an `Idempotency-Key` when given): status and
/// JSON body (`Null` when the body is not JSON).
pub(crate) fn post(url: &str, body: Value, idempotency: Option<&str>) -> (u16, Value) {
    post_with(url, body, idempotency, None)
}

/// [`post`], with an operator's bearer token when given.
pub(crate) fn post_with(
    url: &str,
    body: Value,
    idempotency: Option<&str>,
    operator: Option<&str>,
) -> (u16, Value) {
    block_on(async {
        let mut req = reqwest::Client::new()
            .post(url)
            .timeout(Duration::from_secs(10))
            .json(&body);
        if let Some(k) = idempotency {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(t) = operator {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    })
}

/// DELETE with a bearer token when given: the status.
pub(crate) fn delete_with(url: &str, bearer: Option<&str>) -> u16 {
    block_on(async {
        let mut req = reqwest::Client::new()
            .delete(url)
            .timeout(Duration::from_secs(10));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().status().as_u16()
    })
}

/// GET with a 5 s timeout (and a bearer token when given): status and text body.
pub(crate) fn get_text(url: &str, bearer: Option<&str>) -> Option<(u16, String)> {
    block_on(async {
        let mut req = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.ok()?;
        let s = r.status().as_u16();
        Some((s, r.text().await.ok()?))
    })
}

/// The body of a 200 answer, `None` for anything else.
pub(crate) fn get_ok(url: &str) -> Option<Value> {
    match get(url) {
        Some((200, v)) => Some(v),
        _ => None,
    }
}

pub(crate) fn wait_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One `doin node` process: its config file, REST base URL and log file.
pub(crate) struct NodeProc {
    pub name: String,
    pub config: PathBuf,
    pub rest: String,
    pub log: PathBuf,
    pub child: Option<Child>,
}

impl NodeProc {
    /// Writes the config of a transfer-chain node `name` in `dir` (its data in `dir/name`):
    /// REST on a free loopback port, libp2p on a free port of `ip`, dialling `bootstrap`, with
    /// `sync_interval_ms` and `extra` TOML sections (`[producer]`, `[storage]` …) appended.
    pub(crate) fn tx_node(
        dir: &Path,
        name: &str,
        genesis: &Path,
        ip: &str,
        bootstrap: &[String],
        sync_interval_ms: u64,
        extra: &str,
    ) -> NodeProc {
        let rest_port = free_port("127.0.0.1");
        let p2p_port = free_port(ip);
        let config = dir.join(format!("{name}.toml"));
        let bootstrap: Vec<String> = bootstrap.iter().map(|b| format!("{b:?}")).collect();
        let toml = format!(
            "data_dir = {:?}\ngenesis_file = {:?}\nchains = [\"tx\"]\n\
             [rest]\nlisten = \"127.0.0.1:{rest_port}\"\nrate_limit_per_second = 0\n\
             [p2p]\nlisten = [\"/ip4/{ip}/tcp/{p2p_port}\"]\nbootstrap = [{}]\nsync_interval_ms = {sync_interval_ms}\n{extra}",
            dir.join(name),
            genesis,
            bootstrap.join(", "),
        );
        std::fs::write(&config, toml).unwrap();
        NodeProc {
            log: dir.join(format!("{name}.log")),
            name: name.into(),
            config,
            rest: format!("http://127.0.0.1:{rest_port}"),
            child: None,
        }
    }

    /// The `[producer]` section of a validator whose key file is `keystore`.
    pub(crate) fn producer_toml(keystore: &Path, password: &Path) -> String {
        format!(
            "[producer]\nenabled = true\nkeystore = {keystore:?}\npassword_file = {password:?}\n"
        )
    }

    /// Starts `doin node --config` (logs appended to `self.log`) and waits until REST answers.
    pub(crate) fn start(&mut self, doin: &Path) {
        let config = self.config.clone().into_os_string();
        self.start_with(
            doin,
            &["node".as_ref(), "--config".as_ref(), config.as_os_str()],
        );
    }

    /// Starts `doin <args>` (e.g. a devnet) and waits until REST answers.
    pub(crate) fn start_with(&mut self, doin: &Path, args: &[&std::ffi::OsStr]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(doin)
            .args(args)
            .env("RUST_LOG", "info,libp2p=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(get(&format!("{}/livez", self.rest)), Some((200, _))) {
            if Instant::now() >= deadline {
                // The log says why (a refused config or store, a port in use).
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "timed out: {} answers; its log ends:\n{}",
                    self.name,
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(crate) fn info(&self) -> Option<Value> {
        get_ok(&format!("{}/v1/tx/info", self.rest))
    }

    pub(crate) fn height(&self) -> u64 {
        self.info().and_then(|v| v["height"].as_u64()).unwrap_or(0)
    }

    pub(crate) fn main_info(&self) -> Option<Value> {
        get_ok(&format!("{}/v1/main/info", self.rest))
    }

    pub(crate) fn main_height(&self) -> u64 {
        self.main_info()
            .and_then(|v| v["height"].as_u64())
            .unwrap_or(0)
    }

    pub(crate) fn main_block(&self, height: u64) -> Option<Value> {
        get_ok(&format!("{}/v1/main/blocks/{height}", self.rest))
    }

    pub(crate) fn peers(&self) -> Value {
        get(&format!("{}/v1/node/peers", self.rest))
            .map(|(_, v)| v)
            .unwrap_or(Value::Null)
    }

    /// The first address the node listens on, with its peer id.
    pub(crate) fn listen_address(&self) -> String {
        wait_until(&format!("{} listens", self.name), 30, || {
            self.peers()["listen_addresses"][0]
                .as_str()
                .map(String::from)
        })
    }

    pub(crate) fn block_hash(&self, height: u64) -> Option<String> {
        get_ok(&format!("{}/v1/tx/blocks/{height}", self.rest))
            .and_then(|v| v["hash"].as_str().map(String::from))
    }

    pub(crate) fn tx_status(&self, id: &str) -> Option<String> {
        get_ok(&format!("{}/v1/tx/transactions/{id}", self.rest))
            .and_then(|v| v["status"].as_str().map(String::from))
    }

    pub(crate) fn balance(&self, addr: &str) -> u128 {
        let (_, v) = get(&format!("{}/v1/tx/accounts/{addr}", self.rest)).unwrap();
        v["balance"].as_str().unwrap().parse().unwrap()
    }

    /// Sum of the samples of a metric (name with labels as a prefix).
    pub(crate) fn metric(&self, name: &str) -> u64 {
        let text = block_on(async {
            reqwest::get(format!("{}/metrics", self.rest))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// The last 30 lines of the node's log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-9", &c.id().to_string()])
                .status()
                .unwrap();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) use doin_tests::cluster::devnet_options;

/// Runs `doin wallet --json --keystore KEY --password-file PASSWORD ARGS…` and reads its last
/// line of output as JSON (`Null` when there is none); panics when the command fails.
pub(crate) fn wallet_json(doin: &Path, password: &Path, key: &Path, args: &[&str]) -> Value {
    let out = Command::new(doin)
        .args(["wallet", "--json", "--keystore"])
        .arg(key)
        .arg("--password-file")
        .arg(password)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "doin wallet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or(Value::Null)
}

/// A new encrypted key file `dir/NAME.json` and its testnet address.
pub(crate) fn new_testnet_key(
    doin: &Path,
    password: &Path,
    dir: &Path,
    name: &str,
) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.json"));
    wallet_json(doin, password, &key, &["new"]);
    let out = Command::new(doin)
        .args(["wallet", "--keystore"])
        .arg(&key)
        .args(["address", "--network", "testnet"])
        .output()
        .unwrap();
    let address = String::from_utf8(out.stdout).unwrap().trim().to_string();
    (key, address)
}

/// `doin genesis new --network testnet` into `out`: a transfer chain `name` made by
/// `validator` every `block_time_ms`, with `allocs` (address, whole DOIN) funded.
pub(crate) fn testnet_genesis(
    doin: &Path,
    name: &str,
    validator: &str,
    allocs: &[(&str, u64)],
    block_time_ms: u64,
    out: &Path,
) {
    let mut c = Command::new(doin);
    c.args([
        "genesis",
        "new",
        "--network",
        "testnet",
        "--chain-name",
        name,
    ])
    .args(["--validator", validator]);
    for (address, doin) in allocs {
        c.args(["--alloc", &format!("{address}={doin}")]);
    }
    let done = c
        .args(["--block-time-ms", &block_time_ms.to_string(), "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "doin genesis new: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// Writes `k` as a plaintext devnet key file `dir/name.json`.
pub(crate) fn write_key(dir: &Path, name: &str, k: &doin_crypto::KeyPair) -> PathBuf {
    let p = dir.join(format!("{name}.json"));
    doin_crypto::keystore::KeyFile::plaintext_devnet(k)
        .write_new(&p)
        .unwrap();
    p
}

/// A `doin node` (not started yet) running the transfer chain, produced by its own validator
/// every 300 ms, and the hub, with each of `funded` holding 100 000 000 base units. Its data
/// directory is `dir/data` (the operator token is `dir/data/hub.cookie`).
pub(crate) fn hub_node(
    dir: &Path,
    name: &str,
    validator: &doin_crypto::KeyPair,
    hub: &doin_crypto::KeyPair,
    funded: &[&doin_crypto::KeyPair],
) -> (NodeProc, doin_tx_core::GenesisSpec) {
    let spec = doin_tests::funded_genesis(
        name,
        validator,
        funded,
        100_000_000,
        doin_tx_core::ConsensusParams {
            target_block_time_ms: 300,
            ..doin_tx_core::ConsensusParams::public_defaults()
        },
    );
    let genesis = dir.join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&spec).unwrap()).unwrap();
    let validator_key = write_key(dir, "validator", validator);
    let hub_key = write_key(dir, "hub", hub);
    let rest_port = free_port("127.0.0.1");
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ngenesis_file = {genesis:?}\nchains = [\"tx\", \"hub\"]\n\
             [rest]\nlisten = \"127.0.0.1:{rest_port}\"\nrate_limit_per_second = 0\n\
             [p2p]\nenabled = false\n\
             [producer]\nenabled = true\nkeystore = {validator_key:?}\nblock_time_ms = 300\n\
             [hub]\nkeystore = {hub_key:?}\ndispute_blocks = 30\nmin_dispute_blocks = 10\nwatch_interval_ms = 200\n",
            dir.join("data"),
        ),
    )
    .unwrap();
    let node = NodeProc {
        name: name.into(),
        log: dir.join("node.log"),
        config,
        rest: format!("http://127.0.0.1:{rest_port}"),
        child: None,
    };
    (node, spec)
}

/// Held by every test that runs a network of `doin` node processes: one such network at a
/// time (each starts several nodes on two cores; the tests of this binary share one process).
pub(crate) fn node_processes() -> MutexGuard<'static, ()> {
    static NODE_PROCESSES: Mutex<()> = Mutex::new(());
    NODE_PROCESSES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
