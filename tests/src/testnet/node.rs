//! One testnet node: its files (configuration, data directory, log), its `doin node` process
//! inside its namespace, and the REST reads the runner and the checker make of it.
//!
//! Every node listens on the same ports at its own address: REST 8645, peer-to-peer 8646 and
//! (validators) consensus 8656. Its network identity is made by the runner before the first
//! start, so the network's file (`network.toml` beside the genesis file) can name every
//! node's peer id; a wiped data directory gets the same identity back.

use super::host::{HostAddr, Made, Shared};
use super::scenario::{NodeSpec, Role};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REST_PORT: u16 = 8645;
pub const P2P_PORT: u16 = 8646;
pub const CONSENSUS_PORT: u16 = 8656;

/// Where libfaketime lives on Debian (package `faketime`).
const FAKETIME_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// What a node's configuration names: files, peers, timing.
pub struct Wiring<'a> {
    pub genesis: &'a Path,
    pub key: &'a Path,
    pub hub_key: Option<&'a Path>,
    /// Peers named in `p2p.bootstrap` (the network's file names the rest).
    pub bootstrap: Vec<String>,
    /// The other validators' consensus addresses.
    pub consensus_peers: Vec<String>,
    pub block_time_ms: u64,
    pub main: Option<MainPart>,
}

/// A node's part in the main chain, when the scenario runs one.
pub struct MainPart {
    pub genesis: PathBuf,
    pub poll_ms: u64,
    pub producer: Option<PathBuf>,
    pub evaluators: Vec<PathBuf>,
    pub optimizers: Vec<PathBuf>,
}

pub struct Node {
    pub spec: NodeSpec,
    pub host: HostAddr,
    /// `<out>/<name>`: configuration, keys, log; the data directory is `data/` inside.
    pub dir: PathBuf,
    pub peer_id: String,
    /// The identity file's bytes, put back after a wipe.
    identity: Vec<u8>,
    child: Option<Child>,
    pub paused: bool,
    /// Bytes `fill_disk` wrote.
    pub filler: Option<PathBuf>,
    made: Shared,
}

impl Node {
    /// Makes the node's directory and network identity.
    pub fn new(spec: NodeSpec, host: HostAddr, dir: PathBuf, made: Shared) -> Result<Node, String> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let key_path = data.join("net").join("node_key");
        let key = doin_net::load_or_create_identity(&key_path)
            .map_err(|e| format!("{}: {e}", key_path.display()))?;
        let identity =
            std::fs::read(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
        Ok(Node {
            peer_id: key.public().to_peer_id().to_string(),
            spec,
            host,
            dir,
            identity,
            child: None,
            paused: false,
            filler: None,
            made,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("node.toml")
    }

    pub fn rest(&self) -> String {
        format!("http://{}:{REST_PORT}", self.host.ip)
    }

    pub fn p2p_addr(&self) -> String {
        format!("/ip4/{}/tcp/{P2P_PORT}/p2p/{}", self.host.ip, self.peer_id)
    }

    pub fn consensus_addr(&self) -> String {
        format!("/ip4/{}/tcp/{CONSENSUS_PORT}", self.host.ip)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Writes `node.toml` (its peers come from the network's file): the validators' consensus
    /// addresses, the keys the role needs.
    pub fn write_config(&self, w: &Wiring<'_>) -> Result<(), String> {
        let Wiring {
            genesis,
            key,
            hub_key,
            bootstrap,
            consensus_peers,
            block_time_ms,
            main,
        } = w;
        let main = main.as_ref();
        let quoted = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut chains = vec!["tx".to_string()];
        if main.is_some() {
            chains.push("main".into());
        }
        if self.spec.role == Role::Hub {
            chains.push("hub".into());
        }
        let chains = format!("[{}]", quoted(&chains));
        let mut toml = format!(
            "data_dir = {:?}\ngenesis_file = {genesis:?}\nchains = {chains}\n\
             [rest]\nlisten = \"0.0.0.0:{REST_PORT}\"\nrate_limit_per_second = 0\n\
             [p2p]\nlisten = [\"/ip4/{}/tcp/{P2P_PORT}\"]\n\
             sync_interval_ms = 500\nban_secs = 30\nprobe_private_addresses = true\n\
             relay_server = {}\nmdns = {}\ndns_seeds = [{}]\nbootstrap = [{}]\n",
            self.data_dir(),
            self.host.ip,
            self.spec.relay_server,
            self.spec.mdns,
            quoted(&self.spec.dns_seeds),
            quoted(bootstrap),
        );
        if let Some(m) = self.spec.max_connections {
            toml.push_str(&format!("max_connections = {m}\n"));
        }
        if let Some(r) = self.spec.outbound_reserved {
            toml.push_str(&format!("outbound_reserved = {r}\n"));
        }
        if self.spec.role == Role::Validator {
            toml.push_str(&format!(
                "[producer]\nenabled = true\nkeystore = {key:?}\nblock_time_ms = {block_time_ms}\n\
                 [consensus]\nenabled = true\nlisten = {:?}\npeers = [{}]\nstep_timeout_ms = 1000\n",
                self.consensus_addr(),
                quoted(consensus_peers),
            ));
            if self.spec.double_vote {
                toml.push_str("test_double_vote = true\n");
            }
        }
        if let Some(m) = main {
            let paths = |v: &[PathBuf]| {
                v.iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            toml.push_str(&format!(
                "[main]\ngenesis_file = {:?}\npoll_ms = {}\nevaluator_keystores = [{}]\noptimizer_keystores = [{}]\n",
                m.genesis,
                m.poll_ms,
                paths(&m.evaluators),
                paths(&m.optimizers),
            ));
            if let Some(p) = &m.producer {
                toml.push_str(&format!("producer_keystore = {p:?}\n"));
            }
        }
        if let Some(hub) = hub_key {
            toml.push_str(&format!(
                "[hub]\nkeystore = {hub:?}\nwatch_interval_ms = 500\n"
            ));
        }
        std::fs::write(self.config_path(), toml).map_err(|e| format!("node.toml: {e}"))
    }

    /// Starts `doin node` in the node's namespace (its log appended to `node.log`).
    pub fn start(&mut self, doin: &Path) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("node.log: {e}"))?;
        let mut marker = log.try_clone().map_err(|e| e.to_string())?;
        let _ = writeln!(marker, "=== testnet: {} starts", self.name());
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host.netns])
            .arg(doin)
            .arg("node")
            .arg("--config")
            .arg(self.config_path())
            .env("RUST_LOG", node_log_filter())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if self.spec.clock_offset_ms != 0 {
            let lib = FAKETIME_LIBS
                .iter()
                .find(|p| Path::new(p).exists())
                .ok_or("a clock offset needs libfaketime (Debian package faketime)")?;
            let ms = self.spec.clock_offset_ms;
            let sign = if ms < 0 { "-" } else { "+" };
            let abs = ms.unsigned_abs();
            // Only the wall clock is offset: timers (the monotonic clock) keep their pace.
            cmd.env("LD_PRELOAD", lib)
                .env(
                    "FAKETIME",
                    format!("{sign}{}.{:03}s", abs / 1000, abs % 1000),
                )
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_NO_CACHE", "1");
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.name()))?;
        Made::add_pid(&self.made, child.id());
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Waits until the node's REST answers `/livez`; a node that exits first is an error
    /// naming the end of its log.
    pub async fn wait_live(&mut self, http: &Http, secs: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if http.get(&format!("{}/livez", self.rest())).await.is_some() {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited ({status}) while starting; its log ends:\n{}",
                    self.name(),
                    self.log_tail(20)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} does not answer after {secs} s; its log ends:\n{}",
                    self.name(),
                    self.log_tail(20)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The exit status if the process ended by itself (it is then forgotten).
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                Made::remove_pid(&self.made, child.id());
                self.child = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            Made::remove_pid(&self.made, c.id());
        }
        self.paused = false;
    }

    fn signal(&self, sig: &str) -> Result<(), String> {
        match &self.child {
            Some(c) => super::host::run("kill", &[sig, &c.id().to_string()]),
            None => Err(format!("{} is not running", self.name())),
        }
    }

    pub fn pause(&mut self) -> Result<(), String> {
        self.signal("-STOP")?;
        self.paused = true;
        Ok(())
    }

    pub fn resume(&mut self) -> Result<(), String> {
        self.signal("-CONT")?;
        self.paused = false;
        Ok(())
    }

    /// Deletes the data directory's contents and puts the network identity back.
    pub fn wipe(&mut self) -> Result<(), String> {
        self.kill9();
        let data = self.data_dir();
        let entries = std::fs::read_dir(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        for entry in entries.flatten() {
            let p = entry.path();
            let res = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            res.map_err(|e| format!("{}: {e}", p.display()))?;
        }
        self.filler = None;
        let key = data.join("net").join("node_key");
        std::fs::create_dir_all(data.join("net")).map_err(|e| e.to_string())?;
        std::fs::write(&key, &self.identity).map_err(|e| format!("{}: {e}", key.display()))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn log_contains(&self, text: &str) -> bool {
        std::fs::read_to_string(self.log_path())
            .map(|l| l.contains(text))
            .unwrap_or(false)
    }
}

/// The runner's HTTP client: short timeouts (a paused or cut-off node must not hold the run).
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Http { client })
    }

    /// The JSON body of a 200 answer; `None` for anything else.
    pub async fn get(&self, url: &str) -> Option<Value> {
        match self.get_status(url).await {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    /// Status and JSON body (`Null` when not JSON); `Err` when there was no answer.
    pub async fn get_status(&self, url: &str) -> Result<(u16, Value), String> {
        answer(self.client.get(url)).await
    }

    pub async fn post(&self, url: &str, body: &Value) -> Result<(u16, Value), String> {
        answer(self.client.post(url).json(body)).await
    }

    /// The JSON body of a 200 answer to a request carrying `Authorization: Bearer <token>`.
    pub async fn get_authorized(&self, url: &str, token: &str) -> Option<Value> {
        match answer(self.client.get(url).bearer_auth(token)).await {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    pub async fn text(&self, url: &str) -> Option<String> {
        let r = self.client.get(url).send().await.ok()?;
        if r.status().as_u16() != 200 {
            return None;
        }
        r.text().await.ok()
    }
}

/// Sends `req`: status and JSON body (`Null` when not JSON); `Err` when there was no answer.
async fn answer(req: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
    let r = req.send().await.map_err(|e| e.to_string())?;
    let s = r.status().as_u16();
    Ok((s, r.json().await.unwrap_or(Value::Null)))
}

/// The nodes' log filter: `TESTNET_NODE_LOG` when set, to look closer at one part (e.g.
/// `info,libp2p=warn,doin_sync=debug`), else `info,libp2p=warn`. Not a `DOIN_` name: the
/// nodes would read that as configuration.
fn node_log_filter() -> String {
    std::env::var("TESTNET_NODE_LOG").unwrap_or_else(|_| "info,libp2p=warn".into())
}
