//! A testnet scenario: the nodes (name, role, clock offset, a small disk), the bank workload and
//! the fault schedule, read from a TOML file (`docs/testing.md#scenario-files`).
//!
//! Parsing is strict (unknown keys are refused) and [`Scenario::validate`] checks every name a
//! step uses before anything is started, so a typo costs a second, not a teardown.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Transfer-chain block time.
    #[serde(default = "default_block_time")]
    pub block_time_ms: u64,
    /// Blocks per validator epoch.
    #[serde(default = "default_epoch_blocks")]
    pub epoch_blocks: u64,
    /// Bank accounts the workload moves money between (one client each).
    #[serde(default = "default_accounts")]
    pub accounts: usize,
    /// Seconds a transfer answered `202` may take to become final before the final check.
    #[serde(default = "default_settle")]
    pub settle_secs: u64,
    /// Target main-block time; 0 runs no main chain.
    #[serde(default)]
    pub main_block_time_ms: u64,
    /// Evaluators and optimizers of the main chain (staked at genesis), placed on nodes by
    /// their `evaluators` and `optimizers`.
    #[serde(default)]
    pub evaluators: usize,
    #[serde(default)]
    pub optimizers: usize,
    /// A payer streams micropayments to a payee through the hub node (`doin hub`), and the
    /// hub's books are reconciled at the end. Needs a node with the role `hub`.
    #[serde(default)]
    pub channels: bool,
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

fn default_block_time() -> u64 {
    1000
}
fn default_epoch_blocks() -> u64 {
    2880
}
fn default_accounts() -> usize {
    8
}
fn default_settle() -> u64 {
    120
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Proposes and votes on transfer blocks (BFT), and serves peers.
    Validator,
    /// Follows the transfer chain over the peer-to-peer network.
    Follower,
    /// A follower that also runs the channel hub.
    Hub,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    /// The node's clock runs this far ahead (negative: behind) of the others.
    #[serde(default)]
    pub clock_offset_ms: i64,
    /// Its data directory is a filesystem of this many MiB (0: the runner's own disk), so a
    /// step can fill it.
    #[serde(default)]
    pub disk_mb: u64,
    /// A test build's validator that signs a conflicting vote after each vote.
    #[serde(default)]
    pub double_vote: bool,
    /// The workload never sends to this node (a node that is wiped loses what only it held).
    #[serde(default)]
    pub no_clients: bool,
    /// Produces main blocks (with its own key).
    #[serde(default)]
    pub main_producer: bool,
    /// Which of the scenario's evaluators and optimizers this node runs.
    #[serde(default)]
    pub evaluators: Vec<usize>,
    #[serde(default)]
    pub optimizers: Vec<usize>,
    /// Behind its own home router, which masquerades it and lets in only answers to what it
    /// sent: no node is told its address, and others reach it only through a relay or a hole
    /// punched through the router. Followers and hubs only.
    #[serde(default)]
    pub nat: bool,
    /// Relays connections for peers behind NAT (`p2p.relay_server`).
    #[serde(default)]
    pub relay_server: bool,
    /// Told of every other node as a bootstrap peer (false: of none, and named in no other
    /// node's list; it must find peers by its DNS seeds or mDNS).
    #[serde(default = "yes")]
    pub bootstrap: bool,
    /// DNS seeds (`p2p.dns_seeds`) asked of the runner's DNS server, which answers
    /// [`DNS_SEED_A`] with A records and [`DNS_SEED_TXT`] with `dnsaddr` TXT records of every
    /// node others are told of (not behind a NAT, not without a bootstrap list).
    #[serde(default)]
    pub dns_seeds: Vec<String>,
    /// Finds and is found by peers on the bridge by mDNS (`p2p.mdns`).
    #[serde(default)]
    pub mdns: bool,
    /// Its own address instead of `10.77.B.(10+i)`: a public-looking one (e.g. `66.1.0.5`), so
    /// that the nodes' network-group rules apply to it.
    #[serde(default)]
    pub address: Option<std::net::Ipv4Addr>,
    /// Told of these nodes only (`p2p.bootstrap`), instead of the network's file; with
    /// `bootstrap = false` it is also named in no one's list.
    #[serde(default)]
    pub peers: Option<Vec<String>>,
    /// `p2p.max_connections` and `p2p.outbound_reserved` (the node's defaults when unset).
    #[serde(default)]
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub outbound_reserved: Option<u32>,
}

/// The seed whose A records list the nodes.
pub const DNS_SEED_A: &str = "a.seed.doin.test";
/// The seed whose `_dnsaddr` TXT records list the nodes' full addresses.
pub const DNS_SEED_TXT: &str = "seed.doin.test";

fn yes() -> bool {
    true
}

impl NodeSpec {
    pub fn runs_main(&self) -> bool {
        self.main_producer || !self.evaluators.is_empty() || !self.optimizers.is_empty()
    }
}

/// One step of the fault schedule; the workload runs throughout.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Let the network and the workload run.
    Wait {
        secs: u64,
    },
    /// SIGKILL the nodes.
    Kill {
        nodes: Vec<String>,
    },
    /// Start the nodes again (on their data).
    Restart {
        nodes: Vec<String>,
    },
    /// `times` rounds: SIGKILL one of `nodes` (in turn), wait `down_secs`, restart it, wait
    /// `up_secs`.
    KillCycles {
        nodes: Vec<String>,
        times: u32,
        #[serde(default = "one")]
        down_secs: u64,
        #[serde(default = "one")]
        up_secs: u64,
    },
    /// SIGSTOP / SIGCONT.
    Pause {
        nodes: Vec<String>,
    },
    Resume {
        nodes: Vec<String>,
    },
    /// Cut the network into these groups (every node in exactly one); the runner still
    /// reaches every node.
    Partition {
        groups: Vec<Vec<String>>,
    },
    /// Cut every link between a node of `from` and a node of `to` (both ways), leaving every
    /// other link: with a node in neither list, a partial partition that node bridges.
    Cut {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// Undo every partition and cut.
    Heal,
    /// Drop this share of the packets every listed node receives from the others (all nodes
    /// when `nodes` is empty).
    Loss {
        #[serde(default)]
        nodes: Vec<String>,
        percent: u32,
    },
    /// Undo every `loss`.
    LossClear,
    /// Delay every packet each listed node (all when empty) receives from other nodes by `ms`
    /// plus up to `jitter_ms` (packets overtake each other).
    Latency {
        #[serde(default)]
        nodes: Vec<String>,
        ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Undo every `latency`.
    LatencyClear,
    /// Deliver `percent` % of the packets each listed node (all when empty) receives from
    /// other nodes twice.
    Duplicate {
        #[serde(default)]
        nodes: Vec<String>,
        percent: u32,
    },
    /// Undo every `duplicate`.
    DuplicateClear,
    /// Fill the node's small filesystem to the last byte.
    FillDisk {
        node: String,
    },
    /// Delete what `fill_disk` wrote; restart the node if it stopped.
    FreeDisk {
        node: String,
    },
    /// SIGKILL the node, delete its data (its network identity kept), start it again: it
    /// re-syncs from its peers.
    Wipe {
        node: String,
    },
    /// Stop and start every listed node (all when empty) one after the other, waiting
    /// `up_secs` after each.
    RollingRestart {
        #[serde(default)]
        nodes: Vec<String>,
        #[serde(default = "one")]
        up_secs: u64,
    },
    /// Each listed node's final height rises by at least `blocks` within `within_secs`.
    ExpectProgress {
        nodes: Vec<String>,
        blocks: u64,
        within_secs: u64,
    },
    /// No listed node's final height moves for `secs`.
    ExpectStall {
        nodes: Vec<String>,
        secs: u64,
    },
    /// The node's log gains a line containing `text` within `within_secs`.
    ExpectLog {
        node: String,
        text: String,
        within_secs: u64,
    },
    /// Every running node reaches one tip (same height and hash) within `within_secs`.
    Converge {
        within_secs: u64,
    },
    /// Every listed node's reachability (`/v1/node/peers`) is `status` (`public` or
    /// `private`) within `within_secs`; with `relayed = true` it also advertises a relay
    /// circuit address, with `false` it has none and says why.
    ExpectReachability {
        nodes: Vec<String>,
        status: String,
        #[serde(default)]
        relayed: Option<bool>,
        within_secs: u64,
    },
    /// Every listed node is connected to at least `at_least` peers within `within_secs`.
    ExpectPeers {
        nodes: Vec<String>,
        at_least: usize,
        within_secs: u64,
    },
    /// `node` holds outbound connections to at least `at_least` of `to` within `within_secs`.
    ExpectOutbound {
        node: String,
        to: Vec<String>,
        at_least: usize,
        within_secs: u64,
    },
    /// The two nodes have a direct (not relayed) connection to each other within
    /// `within_secs`.
    ExpectDirect {
        between: Vec<String>,
        within_secs: u64,
    },
    /// Every listed validator's stake is burned and tombstoned within `within_secs`.
    ExpectBurned {
        nodes: Vec<String>,
        within_secs: u64,
    },
}

fn one() -> u64 {
    1
}

impl Scenario {
    pub fn read(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let s: Scenario = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        s.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(s)
    }

    pub fn validators(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.iter().filter(|n| n.role == Role::Validator)
    }

    /// Checks names, counts and bounds; every error names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() || self.nodes.len() > 200 {
            return Err("a scenario has 1 to 200 nodes".into());
        }
        let mut names = BTreeSet::new();
        for n in &self.nodes {
            let ok = !n.name.is_empty()
                && n.name.len() <= 8
                && n.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                return Err(format!(
                    "node name {:?}: 1 to 8 lowercase letters and digits",
                    n.name
                ));
            }
            if !names.insert(n.name.as_str()) {
                return Err(format!("node {} is named twice", n.name));
            }
            if n.double_vote && n.role != Role::Validator {
                return Err(format!("node {}: only a validator can double-vote", n.name));
            }
            if n.nat && n.role == Role::Validator {
                return Err(format!(
                    "node {}: a validator cannot be behind a NAT (its consensus address is dialled)",
                    n.name
                ));
            }
            if n.nat && self.nodes.iter().position(|m| m.name == n.name) >= Some(16) {
                return Err(format!(
                    "node {}: only the first 16 nodes can be behind a NAT",
                    n.name
                ));
            }
            if let Some(seed) = n
                .dns_seeds
                .iter()
                .find(|s| *s != DNS_SEED_A && *s != DNS_SEED_TXT)
            {
                return Err(format!(
                    "node {}: DNS seed {seed}: the runner serves {DNS_SEED_A} and {DNS_SEED_TXT}",
                    n.name
                ));
            }
            if let Some(unknown) = n
                .peers
                .iter()
                .flatten()
                .find(|p| !self.nodes.iter().any(|m| &m.name == *p))
            {
                return Err(format!("node {}: peer {unknown} is no node", n.name));
            }
            if n.address.is_some() && n.nat {
                return Err(format!(
                    "node {}: an address of its own or a NAT, not both",
                    n.name
                ));
            }
            if n.clock_offset_ms.unsigned_abs() > 3_600_000 {
                return Err(format!("node {}: clock offset beyond an hour", n.name));
            }
            if n.runs_main() && self.main_block_time_ms == 0 {
                return Err(format!(
                    "node {}: main-chain roles need main_block_time_ms",
                    n.name
                ));
            }
            if n.evaluators.iter().any(|e| *e >= self.evaluators)
                || n.optimizers.iter().any(|o| *o >= self.optimizers)
            {
                return Err(format!(
                    "node {}: evaluators and optimizers are numbered from 0 below the scenario's counts",
                    n.name
                ));
            }
        }
        if self.validators().next().is_none() {
            return Err("a scenario needs at least one validator".into());
        }
        if self.accounts < 2 || self.accounts > 64 {
            return Err("accounts: 2 to 64".into());
        }
        if self.main_block_time_ms > 0 && !self.nodes.iter().any(|n| n.main_producer) {
            return Err("a main chain needs a node with main_producer".into());
        }
        if self.channels && !self.nodes.iter().any(|n| n.role == Role::Hub) {
            return Err("channels need a node with the role hub".into());
        }
        if self.evaluators > 32 || self.optimizers > 32 {
            return Err("evaluators and optimizers: at most 32 each".into());
        }
        if self.block_time_ms < 100 || self.epoch_blocks < 2 {
            return Err("block_time_ms ≥ 100 and epoch_blocks ≥ 2".into());
        }
        let known = |n: &String| -> Result<(), String> {
            if names.contains(n.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "a step names node {n}, which the scenario does not have"
                ))
            }
        };
        for (i, step) in self.steps.iter().enumerate() {
            let at = |e: String| format!("step {}: {e}", i + 1);
            match step {
                Step::Kill { nodes }
                | Step::Restart { nodes }
                | Step::Pause { nodes }
                | Step::Resume { nodes }
                | Step::Loss { nodes, .. }
                | Step::Latency { nodes, .. }
                | Step::Duplicate { nodes, .. }
                | Step::RollingRestart { nodes, .. }
                | Step::ExpectStall { nodes, .. }
                | Step::ExpectProgress { nodes, .. }
                | Step::ExpectBurned { nodes, .. } => {
                    nodes.iter().try_for_each(known).map_err(at)?
                }
                Step::Cut { from, to } => {
                    from.iter().chain(to).try_for_each(known).map_err(at)?;
                    if from.is_empty() || to.is_empty() || from.iter().any(|f| to.contains(f)) {
                        return Err(at("a cut needs two disjoint, non-empty lists".into()));
                    }
                }
                Step::KillCycles { nodes, times, .. } => {
                    nodes.iter().try_for_each(known).map_err(at)?;
                    if nodes.is_empty() || *times == 0 {
                        return Err(at("kill_cycles needs nodes and times ≥ 1".into()));
                    }
                }
                Step::Partition { groups } => {
                    let mut seen = BTreeSet::new();
                    for g in groups {
                        for n in g {
                            known(n).map_err(at)?;
                            if !seen.insert(n.as_str()) {
                                return Err(at(format!("{n} is in two groups")));
                            }
                        }
                    }
                    if seen.len() != names.len() || groups.len() < 2 {
                        return Err(at("a partition puts every node in one of ≥ 2 groups".into()));
                    }
                }
                Step::FillDisk { node } | Step::FreeDisk { node } => {
                    known(node).map_err(at)?;
                    let spec = self.nodes.iter().find(|n| &n.name == node);
                    if spec.map(|n| n.disk_mb) == Some(0) {
                        return Err(at(format!("{node} has no disk_mb of its own to fill")));
                    }
                }
                Step::Wipe { node } | Step::ExpectLog { node, .. } => known(node).map_err(at)?,
                Step::ExpectReachability { nodes, status, .. } => {
                    nodes.iter().try_for_each(known).map_err(at)?;
                    if status != "public" && status != "private" {
                        return Err(at(format!("status {status:?}: public or private")));
                    }
                }
                Step::ExpectPeers { nodes, .. } => nodes.iter().try_for_each(known).map_err(at)?,
                Step::ExpectOutbound { node, to, .. } => {
                    known(node).map_err(at)?;
                    to.iter().try_for_each(known).map_err(at)?;
                }
                Step::ExpectDirect { between, .. } => {
                    between.iter().try_for_each(known).map_err(at)?;
                    if between.len() != 2 || between[0] == between[1] {
                        return Err(at("expect_direct needs two different nodes".into()));
                    }
                }
                Step::Wait { .. }
                | Step::Heal
                | Step::LossClear
                | Step::LatencyClear
                | Step::DuplicateClear
                | Step::Converge { .. } => {}
            }
            if let Step::Loss { percent, .. } = step {
                if *percent > 100 {
                    return Err(at("loss percent ≤ 100".into()));
                }
            }
            if let Step::Duplicate { percent, .. } = step {
                if *percent > 100 {
                    return Err(at("duplicate percent ≤ 100".into()));
                }
            }
            if let Step::Latency { ms, jitter_ms, .. } = step {
                if *ms > 10_000 || *jitter_ms > 10_000 {
                    return Err(at("latency and jitter ≤ 10 000 ms".into()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    const NODES: &str = "name = \"t\"\n\
        [[nodes]]\nname = \"v0\"\nrole = \"validator\"\n\
        [[nodes]]\nname = \"f0\"\nrole = \"follower\"\ndisk_mb = 32\n";

    #[test]
    fn a_scenario_reads_and_its_names_are_checked() {
        let s = parse(&format!(
            "{NODES}[[steps]]\ndo = \"partition\"\ngroups = [[\"v0\"], [\"f0\"]]\n\
             [[steps]]\ndo = \"fill_disk\"\nnode = \"f0\"\n[[steps]]\ndo = \"heal\"\n"
        ))
        .unwrap();
        assert_eq!(s.steps.len(), 3);
        let unknown = parse(&format!(
            "{NODES}[[steps]]\ndo = \"kill\"\nnodes = [\"v9\"]\n"
        ));
        assert!(unknown.unwrap_err().contains("v9"));
        let half = parse(&format!(
            "{NODES}[[steps]]\ndo = \"partition\"\ngroups = [[\"v0\"]]\n"
        ));
        assert!(half.unwrap_err().contains("every node"));
        let no_disk = parse(&format!(
            "{NODES}[[steps]]\ndo = \"fill_disk\"\nnode = \"v0\"\n"
        ));
        assert!(no_disk.unwrap_err().contains("disk_mb"));
        let typo = parse(&format!("{NODES}[[steps]]\ndo = \"wait\"\nsec = 3\n"));
        assert!(typo.is_err());
    }

    #[test]
    fn the_scenarios_in_the_repository_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testnet");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::read(&path).unwrap();
                read += 1;
            }
        }
        assert!(read >= 2, "scenario files in {}", dir.display());
    }
}
