//! The hosts of a testnet: one network namespace per node, each with its own address on one
//! bridge, and the faults that live in the kernel: partitions and packet loss (`iptables` in
//! each namespace), small filesystems for data directories (`tmpfs`).
//!
//! Everything made is recorded in [`Made`] as it is made, and [`Made::teardown`] removes it all
//! (children killed, filesystems unmounted, namespaces and the bridge deleted) — on success, on
//! failure, and from the signal handler. Every name carries the runner's process id
//! (`dtn<pid>…`), so [`clean_stale`] can remove what a runner killed with SIGKILL left behind
//! without touching a live run.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip` (iproute2), `iptables` and `mount`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Chain of each namespace's filter table holding the partition rules.
const PARTITION_CHAIN: &str = "DTN_PART";
/// Chain holding the packet-loss rules.
const LOSS_CHAIN: &str = "DTN_LOSS";
/// Chain sending packets to the namespace's link shaper ([`super::shape`]).
const DELAY_CHAIN: &str = "DTN_DELAY";

/// Runs a command; its stderr is the error when it fails.
pub(crate) fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn output(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a run has made and must remove.
#[derive(Default)]
pub struct Made {
    bridge: Option<String>,
    namespaces: Vec<String>,
    mounts: Vec<PathBuf>,
    /// Per-namespace files (`/etc/netns/<namespace>`, a resolver configuration).
    etc_dirs: Vec<PathBuf>,
    /// Process ids of the node processes and link shapers still running.
    pids: Vec<u32>,
    /// Each namespace's link shaper.
    shapers: std::collections::HashMap<String, std::process::Child>,
}

pub type Shared = Arc<Mutex<Made>>;

impl Made {
    pub fn add_pid(shared: &Shared, pid: u32) {
        if let Ok(mut m) = shared.lock() {
            m.pids.push(pid);
        }
    }

    pub fn remove_pid(shared: &Shared, pid: u32) {
        if let Ok(mut m) = shared.lock() {
            m.pids.retain(|p| *p != pid);
        }
    }

    /// Removes everything recorded; each failure is printed and the rest still removed.
    pub fn teardown(&mut self) {
        for pid in self.pids.drain(..) {
            // A paused process dies of SIGKILL as well.
            let _ = run("kill", &["-9", &pid.to_string()]);
        }
        for (_, mut shaper) in self.shapers.drain() {
            let _ = shaper.wait();
        }
        // The processes must be gone before their filesystems can be unmounted.
        std::thread::sleep(std::time::Duration::from_millis(300));
        for m in self.mounts.drain(..) {
            if let Err(e) = run("umount", &["-l", &m.to_string_lossy()]) {
                eprintln!("teardown: {e}");
            }
        }
        for dir in self.etc_dirs.drain(..) {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!("teardown: {}: {e}", dir.display());
            }
        }
        for ns in self.namespaces.drain(..) {
            if let Err(e) = run("ip", &["netns", "del", &ns]) {
                eprintln!("teardown: {e}");
            }
        }
        if let Some(br) = self.bridge.take() {
            if let Err(e) = run("ip", &["link", "del", &br]) {
                eprintln!("teardown: {e}");
            }
        }
    }
}

/// The bridge and the addresses of one run.
pub struct Hosts {
    prefix: String,
    /// `10.A.B.` — the run's /24.
    net: String,
    pub made: Shared,
    /// What each host's link shaper does now, by namespace (latency and duplication compose).
    shaping: Mutex<std::collections::HashMap<String, Shaping>>,
}

/// What a host's link shaper does to the packets it receives from other hosts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaping {
    pub delay_ms: u64,
    pub jitter_ms: u64,
    pub duplicate_percent: u32,
}

/// One node's host.
#[derive(Clone, Debug)]
pub struct HostAddr {
    pub netns: String,
    /// The host's own address (behind a NAT, a private one only its router and the runner
    /// can reach).
    pub ip: Ipv4Addr,
    /// Where its packets come from as the other hosts see them: `ip`, or its router's.
    pub seen_as: Ipv4Addr,
}

impl Hosts {
    /// Makes the bridge (`10.77.B.1/24` on the runner's side, `B` from the process id).
    pub fn new(made: Shared) -> Result<Hosts, String> {
        let pid = std::process::id();
        let prefix = format!("dtn{pid}");
        let net = format!("10.77.{}.", 1 + pid % 250);
        let bridge = format!("{prefix}b");
        if bridge.len() > 15 {
            return Err(format!("interface name {bridge} is too long"));
        }
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        lock(&made).bridge = Some(bridge.clone());
        run(
            "ip",
            &["addr", "add", &format!("{net}1/24"), "dev", &bridge],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        Ok(Hosts {
            prefix,
            net,
            made,
            shaping: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The runner's own address on the bridge (never partitioned, never loses packets).
    pub fn runner_ip(&self) -> String {
        format!("{}1", self.net)
    }

    /// A namespace `ns` whose `eth0` is a veth pair's end, the other end (`veth`, on the
    /// runner's side) on the bridge, with `addr` (`ip/len`) on `eth0`; both links and the
    /// namespace's loopback up. Recorded for teardown.
    fn namespace_on_bridge(&self, ns: &str, veth: &str, addr: &str) -> Result<(), String> {
        if veth.len() > 15 {
            return Err(format!("interface name {veth} is too long"));
        }
        run("ip", &["netns", "add", ns])?;
        lock(&self.made).namespaces.push(ns.to_string());
        run(
            "ip",
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        )?;
        run("ip", &["link", "set", veth, "master", &self.bridge()])?;
        run("ip", &["link", "set", veth, "up"])?;
        run("ip", &["-n", ns, "addr", "add", addr, "dev", "eth0"])?;
        run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", ns, "link", "set", "lo", "up"])
    }

    /// Host `i` (0-based): namespace `dtn<pid>n<i>`, address `10.77.B.(10 + i)`.
    pub fn add(&self, i: usize) -> Result<HostAddr, String> {
        if i > 200 {
            return Err(format!("host {i}: at most 201 hosts"));
        }
        let ns = format!("{}n{i}", self.prefix);
        let ip: Ipv4Addr = format!("{}{}", self.net, 10 + i)
            .parse()
            .map_err(|e| format!("address: {e}"))?;
        self.namespace_on_bridge(&ns, &format!("{}v{i}", self.prefix), &format!("{ip}/24"))?;
        fault_chains(&ns)?;
        Ok(HostAddr {
            netns: ns,
            ip,
            seen_as: ip,
        })
    }

    /// Host `i` at an address of its own choosing (a public-looking one, so that the nodes'
    /// network-group rules apply to it): the namespace of [`Hosts::add`] with `ip/32` on its
    /// link and every destination on-link (the bridge carries any address), and a route to it
    /// on the runner's side. The routes go with the bridge at teardown.
    pub fn add_at(&self, i: usize, ip: Ipv4Addr) -> Result<HostAddr, String> {
        if i > 200 {
            return Err(format!("host {i}: at most 201 hosts"));
        }
        let ns = format!("{}n{i}", self.prefix);
        self.namespace_on_bridge(&ns, &format!("{}v{i}", self.prefix), &format!("{ip}/32"))?;
        run(
            "ip",
            &[
                "-n", &ns, "route", "add", "default", "dev", "eth0", "scope", "link",
            ],
        )?;
        run(
            "ip",
            &["route", "add", &format!("{ip}/32"), "dev", &self.bridge()],
        )?;
        fault_chains(&ns)?;
        Ok(HostAddr {
            netns: ns,
            ip,
            seen_as: ip,
        })
    }

    /// Host `i` behind its own home router: the router (namespace `dtn<pid>r<i>`) takes the
    /// bridge address host `i` would have had and masquerades the host's private /24
    /// (`172.(16 + i).B.0/24`, the host at `.2`) behind it, dropping what nobody inside asked
    /// for — except the runner's own requests, for which the runner's side gets a route.
    /// Other hosts can reach this one only through a connection it opened, a relay, or a
    /// hole punched through the router (`docs/testing.md#nat`).
    pub fn add_behind_nat(&self, i: usize) -> Result<HostAddr, String> {
        if i >= 16 {
            return Err(format!(
                "host {i}: only the first 16 hosts can be behind a NAT"
            ));
        }
        let router = format!("{}r{i}", self.prefix);
        let ns = format!("{}n{i}", self.prefix);
        let veth = format!("{}v{i}", self.prefix);
        let public: Ipv4Addr = format!("{}{}", self.net, 10 + i)
            .parse()
            .map_err(|e| format!("address: {e}"))?;
        let b = self.net.split('.').nth(2).unwrap_or("0");
        let lan = format!("172.{}.{b}.", 16 + i);
        let ip: Ipv4Addr = format!("{lan}2")
            .parse()
            .map_err(|e| format!("address: {e}"))?;
        // The router's public side ("eth0") on the bridge.
        self.namespace_on_bridge(&router, &veth, &format!("{public}/24"))?;
        run("ip", &["netns", "add", &ns])?;
        lock(&self.made).namespaces.push(ns.clone());
        // Its private side, to the host.
        run(
            "ip",
            &[
                "-n", &router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ],
        )?;
        run(
            "ip",
            &[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{lan}1/24"),
                "dev",
                "lan",
            ],
        )?;
        run("ip", &["-n", &router, "link", "set", "lan", "up"])?;
        run(
            "ip",
            &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        )?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run(
            "ip",
            &[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &format!("{lan}1"),
            ],
        )?;
        // A home router: forwards, masquerades what goes out, and lets in only answers to
        // what went out (and the runner).
        run(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        )?;
        ipt_table(
            &router,
            "nat",
            &["-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"],
        )?;
        let runner = self.runner_ip();
        for rule in [
            "-A FORWARD -i lan -j ACCEPT".to_string(),
            "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".to_string(),
            format!("-A FORWARD -s {runner} -j ACCEPT"),
            "-A FORWARD -j DROP".to_string(),
            // Nothing unasked reaches the router itself either, and it stays silent: a reset
            // to the first packet of a hole punch would end it.
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT".to_string(),
            "-A INPUT -i eth0 -j DROP".to_string(),
        ] {
            ipt(&router, &rule.split_whitespace().collect::<Vec<_>>())?;
        }
        // The runner reaches the host's REST port through the router. The route goes with
        // the bridge at teardown.
        run(
            "ip",
            &[
                "route",
                "add",
                &format!("{lan}0/24"),
                "via",
                &public.to_string(),
            ],
        )?;
        fault_chains(&ns)?;
        Ok(HostAddr {
            netns: ns,
            ip,
            seen_as: public,
        })
    }

    fn bridge(&self) -> String {
        format!("{}b", self.prefix)
    }

    /// Cuts `host` off from every address in `others` (both directions).
    pub fn isolate(&self, host: &HostAddr, others: &[Ipv4Addr]) -> Result<(), String> {
        for ip in others {
            let ip = ip.to_string();
            ipt(
                &host.netns,
                &["-A", PARTITION_CHAIN, "-s", &ip, "-j", "DROP"],
            )?;
            ipt(
                &host.netns,
                &["-A", PARTITION_CHAIN, "-d", &ip, "-j", "DROP"],
            )?;
        }
        Ok(())
    }

    pub fn heal(&self, host: &HostAddr) -> Result<(), String> {
        ipt(&host.netns, &["-F", PARTITION_CHAIN])
    }

    /// Drops `percent` % of the packets `host` receives from anyone but the runner.
    pub fn loss(&self, host: &HostAddr, percent: u32) -> Result<(), String> {
        ipt(&host.netns, &["-F", LOSS_CHAIN])?;
        if percent == 0 {
            return Ok(());
        }
        let p = if percent >= 100 {
            "1".to_string()
        } else {
            format!("0.{percent:02}")
        };
        let runner = self.runner_ip();
        ipt(
            &host.netns,
            &[
                "-A",
                LOSS_CHAIN,
                "!",
                "-s",
                &runner,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ],
        )
    }

    /// Delays every packet `host` receives from other hosts by `delay_ms` plus up to
    /// `jitter_ms` (so packets overtake each other); 0 and 0 remove the delay.
    pub fn latency(&self, host: &HostAddr, delay_ms: u64, jitter_ms: u64) -> Result<(), String> {
        self.reshape(host, |s| {
            s.delay_ms = delay_ms;
            s.jitter_ms = jitter_ms;
        })
    }

    /// Delivers `percent` % of the packets `host` receives from other hosts twice; 0 stops it.
    pub fn duplicate(&self, host: &HostAddr, percent: u32) -> Result<(), String> {
        self.reshape(host, |s| s.duplicate_percent = percent)
    }

    /// Changes what `host`'s link shaper does: a shaper process in its namespace (this
    /// runner's own binary, `doin-testnet shape`, recorded for teardown) started afresh, or
    /// none when there is nothing left to do.
    fn reshape(&self, host: &HostAddr, change: impl FnOnce(&mut Shaping)) -> Result<(), String> {
        let shaping = {
            let mut all = lock(&self.shaping);
            let s = all.entry(host.netns.clone()).or_default();
            change(s);
            *s
        };
        ipt(&host.netns, &["-F", DELAY_CHAIN])?;
        let old = lock(&self.made).shapers.remove(&host.netns);
        if let Some(mut child) = old {
            let _ = child.kill();
            let _ = child.wait();
            Made::remove_pid(&self.made, child.id());
        }
        if shaping == Shaping::default() {
            return Ok(());
        }
        let me = std::env::current_exe().map_err(|e| format!("the runner's own path: {e}"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &host.netns])
            .arg(me)
            .args(["shape", "--delay-ms", &shaping.delay_ms.to_string()])
            .args(["--jitter-ms", &shaping.jitter_ms.to_string()])
            .args([
                "--duplicate-percent",
                &shaping.duplicate_percent.to_string(),
            ])
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the link shaper: {e}"))?;
        Made::add_pid(&self.made, child.id());
        lock(&self.made).shapers.insert(host.netns.clone(), child);
        let runner = self.runner_ip();
        let subnet = format!("{}0/24", self.net);
        // The shaper's own copies pass as they are (else they would be queued and copied
        // again), and so do the runner's requests; everything else from the bridge is shaped
        // (loopback, a node talking to itself, is not).
        let copies = super::shape::COPY_MARK.to_string();
        ipt(
            &host.netns,
            &[
                "-A",
                DELAY_CHAIN,
                "-m",
                "mark",
                "--mark",
                &copies,
                "-j",
                "RETURN",
            ],
        )?;
        ipt(
            &host.netns,
            &["-A", DELAY_CHAIN, "-s", &runner, "-j", "RETURN"],
        )?;
        ipt(
            &host.netns,
            &[
                "-A",
                DELAY_CHAIN,
                "-s",
                &subnet,
                "-j",
                "NFQUEUE",
                "--queue-num",
                "0",
                "--queue-bypass",
            ],
        )
    }

    /// Starts the runner's DNS server: `dnsmasq` in namespace `dtn<pid>d` at `10.77.B.9`,
    /// answering the A records `a` and the TXT records `txt` (name, value) and nothing else,
    /// its queries logged to `log`. Returns its address.
    pub fn dns_server(
        &self,
        a: &[(String, Ipv4Addr)],
        txt: &[(String, String)],
        log: &Path,
    ) -> Result<Ipv4Addr, String> {
        let ns = format!("{}d", self.prefix);
        let ip: Ipv4Addr = format!("{}9", self.net)
            .parse()
            .map_err(|e| format!("address: {e}"))?;
        self.namespace_on_bridge(&ns, &format!("{}vd", self.prefix), &format!("{ip}/24"))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, "dnsmasq", "--keep-in-foreground"])
            .args(["--conf-file=/dev/null", "--no-resolv", "--no-hosts"])
            .args(["--bind-interfaces", "--user=root", "--log-queries"])
            .arg(format!("--listen-address={ip}"))
            .arg(format!(
                "--pid-file={}",
                log.with_extension("pid").display()
            ))
            .arg(format!("--log-facility={}", log.display()));
        for (name, addr) in a {
            cmd.arg(format!("--host-record={name},{addr}"));
        }
        for (name, value) in txt {
            cmd.arg(format!("--txt-record={name},{value}"));
        }
        let child = cmd
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dnsmasq (Debian package dnsmasq-base): {e}"))?;
        Made::add_pid(&self.made, child.id());
        Ok(ip)
    }

    /// Points `host`'s resolver at `server`: `/etc/netns/<namespace>/resolv.conf`, which
    /// `ip netns exec` mounts over `/etc/resolv.conf` for what it starts.
    pub fn use_dns(&self, host: &HostAddr, server: Ipv4Addr) -> Result<(), String> {
        let dir = Path::new("/etc/netns").join(&host.netns);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        lock(&self.made).etc_dirs.push(dir.clone());
        let conf = dir.join("resolv.conf");
        std::fs::write(
            &conf,
            format!("nameserver {server}\noptions timeout:2 attempts:2\n"),
        )
        .map_err(|e| format!("{}: {e}", conf.display()))
    }

    /// Mounts a `size_mb` MiB filesystem at `dir` (recorded for teardown).
    pub fn small_disk(&self, dir: &Path, size_mb: u64) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mb}m"),
                &self.prefix,
                &dir.to_string_lossy(),
            ],
        )?;
        lock(&self.made).mounts.push(dir.to_path_buf());
        Ok(())
    }
}

/// The chains holding a host's partition, loss and delay rules, hooked in.
fn fault_chains(ns: &str) -> Result<(), String> {
    for chain in [PARTITION_CHAIN, LOSS_CHAIN, DELAY_CHAIN] {
        ipt(ns, &["-N", chain])?;
    }
    ipt(ns, &["-A", "INPUT", "-j", PARTITION_CHAIN])?;
    ipt(ns, &["-A", "OUTPUT", "-j", PARTITION_CHAIN])?;
    ipt(ns, &["-A", "INPUT", "-j", LOSS_CHAIN])?;
    ipt(ns, &["-A", "INPUT", "-j", DELAY_CHAIN])
}

fn ipt_table(ns: &str, table: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "iptables", "-w", "-t", table];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn ipt(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, "iptables", "-w"];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether process `pid` is alive.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The runner process id in a name `dtn<pid>…`, if it is one of ours.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("dtn")?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Removes namespaces, bridges and filesystems of runs whose runner is gone; returns what it
/// removed.
pub fn clean_stale() -> Result<Vec<String>, String> {
    let mut removed = Vec::new();
    let stale = |name: &str| owner(name).is_some_and(|pid| !alive(pid));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    for line in mounts.lines() {
        let mut f = line.split(' ');
        if let (Some(source), Some(target)) = (f.next(), f.next()) {
            if stale(source) && run("umount", &["-l", target]).is_ok() {
                removed.push(format!("mount {target}"));
            }
        }
    }
    for line in output("ip", &["netns", "list"])?.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if stale(name) && run("ip", &["netns", "del", name]).is_ok() {
            removed.push(format!("netns {name}"));
        }
    }
    if let Ok(dirs) = std::fs::read_dir("/etc/netns") {
        for entry in dirs.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if stale(&name) && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed.push(format!("/etc/netns/{name}"));
            }
        }
    }
    for line in output("ip", &["-o", "link", "show", "type", "bridge"])?.lines() {
        let name = line
            .split(':')
            .nth(1)
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        if stale(&name) && run("ip", &["link", "del", &name]).is_ok() {
            removed.push(format!("bridge {name}"));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_runs_are_owned() {
        assert_eq!(owner("dtn4242n3"), Some(4242));
        assert_eq!(owner("dtn17b"), Some(17));
        assert_eq!(owner("docker0"), None);
        assert_eq!(owner("dtnx"), None);
    }
}
