//! Black-box: four validators as four real `doin node` processes reach BFT finality over
//! the consensus network (each its own RocksDB and write-ahead log, loopback 127.0.0.1–4).
//!
//! - all four finalize blocks, every block carrying its parent's certificate;
//! - one killed (SIGKILL): the other three keep finalizing;
//! - a second killed: no block is finalized (2 of 4 is not more than 2/3) and nothing forks;
//! - both restarted: they catch up and finality resumes;
//! - a network partition 1 | 3 (v3 reaches the others only through a TCP link the test cuts):
//!   the three keep finalizing, the one alone finalizes nothing, and once the link is back it
//!   catches up onto the same chain;
//! - at the end every node has the same blocks, supply is conserved, and a transfer a node
//!   answered as included is still there on every node.
//!
//! And a validator that double-votes (a test build's `test_double_vote`): the honest three
//! report it, its whole stake is burned and tombstoned, the next epoch's set leaves it out,
//! and the three finalize on.
//!
//! The two scenarios run one after the other (each is four node processes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{doin, free_port, wait_until, NodeProc};
use serde_json::Value;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A TCP link the test can cut and restore: it forwards connections from its own address to
/// `target`; cut, it closes every open connection and refuses new ones.
struct Link {
    addr: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    fn new(ip: &str, target: String) -> Link {
        let listener = TcpListener::bind(format!("{ip}:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if c.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                for (from, to) in [(&inbound, &outbound), (&outbound, &inbound)] {
                    let (mut r, mut w) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut r, &mut w);
                        let _ = w.shutdown(Shutdown::Both);
                    });
                }
                list.push(inbound);
                list.push(outbound);
            }
        });
        Link {
            addr: format!("/ip4/{}/tcp/{}", addr.ip(), addr.port()),
            cut,
            open,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

struct Net {
    dir: tempfile::TempDir,
    doin: PathBuf,
    genesis: PathBuf,
    password: PathBuf,
}

impl Net {
    fn wallet(&self, key: &Path, args: &[&str]) -> Value {
        common::wallet_json(&self.doin, &self.password, key, args)
    }

    fn new_key(&self, name: &str) -> (PathBuf, String) {
        common::new_testnet_key(&self.doin, &self.password, self.dir.path(), name)
    }
}

struct Validator {
    proc: NodeProc,
}

/// A keystore file and its address.
type Key = (PathBuf, String);

/// A new network directory with four validator keys, a user and a recipient, and a genesis
/// (testnet, 1-second blocks, each validator staked and given 100 DOIN, the user 500).
fn new_net(chain_name: &str, epoch_blocks: u64) -> (Net, Vec<Key>, Key, String) {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "bft test\n").unwrap();
    let net = Net {
        doin: doin(),
        genesis: dir.path().join("genesis.json"),
        password,
        dir,
    };
    let keys: Vec<(PathBuf, String)> = (0..4).map(|i| net.new_key(&format!("key{i}"))).collect();
    let user = net.new_key("user");
    let (_, recipient) = net.new_key("recipient");
    let mut genesis = Command::new(&net.doin);
    genesis.args([
        "genesis",
        "new",
        "--network",
        "testnet",
        "--chain-name",
        chain_name,
    ]);
    for (_, addr) in &keys {
        genesis.args(["--validator", addr]);
        genesis.args(["--alloc", &format!("{addr}=100")]);
    }
    let out = genesis
        .args(["--alloc", &format!("{}=500", user.1)])
        .args(["--block-time-ms", "1000"])
        .args(["--epoch-blocks", &epoch_blocks.to_string()])
        .arg("--out")
        .arg(&net.genesis)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (net, keys, user, recipient)
}

/// Everything created at genesis by [`new_net`]: 900 DOIN of balances and four validator
/// stakes of the public minimum (10 000 DOIN), in base units.
const GENESIS_TOTAL: u128 = (900 + 4 * 10_000) * 100_000_000;

/// Checks on every node, reading at one height, that balances and stakes add up to what was
/// created less what was burned.
fn assert_supply(vs: &[Validator], accounts: &[String]) {
    for v in vs {
        let n = &v.proc;
        let (info, balances) = wait_until(&format!("{} stable read", n.name), 30, || {
            let before = n.info()?;
            let b: u128 = accounts.iter().map(|a| n.balance(a)).sum();
            let after = n.info()?;
            (before["height"] == after["height"]).then_some((after, b))
        });
        let amount = |k: &str| info[k].as_str().unwrap().parse::<u128>().unwrap();
        assert_eq!(
            balances + amount("staked") + amount("in_channels"),
            GENESIS_TOTAL + amount("imported_from_main") - amount("burned"),
            "supply on {}",
            n.name
        );
    }
}

/// Every node holds the same block at every height up to the lowest tip.
fn assert_same_chain(vs: &[Validator]) {
    let common_height = vs.iter().map(|v| v.proc.height()).min().unwrap();
    for h in 1..=common_height {
        let hashes: Vec<Option<String>> = vs.iter().map(|v| v.proc.block_hash(h)).collect();
        assert!(
            hashes.iter().all(|x| x.is_some() && *x == hashes[0]),
            "nodes disagree at height {h}: {hashes:?}"
        );
    }
}

/// Configures the validators; the last is reached by the others only through a [`Link`] and
/// dials no one itself, so cutting the link partitions it from the rest. `double_voter`, if
/// any, is configured to double-vote.
fn configure(net: &Net, keys: &[PathBuf], double_voter: Option<usize>) -> (Vec<Validator>, Link) {
    let ports: Vec<(u16, u16, u16)> = (0..keys.len())
        .map(|i| {
            let ip = format!("127.0.0.{}", i + 1);
            (free_port("127.0.0.1"), free_port(&ip), free_port(&ip))
        })
        .collect();
    let consensus: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, _, c))| format!("/ip4/127.0.0.{}/tcp/{c}", i + 1))
        .collect();
    let last = keys.len() - 1;
    let link = Link::new("127.0.0.1", {
        let (_, _, c) = ports[last];
        format!("127.0.0.{}:{c}", last + 1)
    });
    let p2p: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, p, _))| format!("/ip4/127.0.0.{}/tcp/{p}", i + 1))
        .collect();
    let validators = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let name = format!("v{i}");
            let (rest_port, _, _) = ports[i];
            let peers: Vec<String> = if i == last {
                Vec::new()
            } else {
                consensus
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(j, a)| {
                        if j == last {
                            format!("{:?}", link.addr)
                        } else {
                            format!("{a:?}")
                        }
                    })
                    .collect()
            };
            let config = net.dir.path().join(format!("{name}.toml"));
            let toml = format!(
                "data_dir = {:?}\ngenesis_file = {:?}\nchains = [\"tx\"]\n\
                 [rest]\nlisten = \"127.0.0.1:{rest_port}\"\nrate_limit_per_second = 0\n\
                 [p2p]\nlisten = [{:?}]\nbootstrap = []\nsync_interval_ms = 500\n\
                 [producer]\nenabled = true\nkeystore = {key:?}\npassword_file = {:?}\n\
                 [consensus]\nenabled = true\nlisten = {:?}\npeers = [{}]\nstep_timeout_ms = 1000\n\
                 test_double_vote = {}\n",
                net.dir.path().join(&name),
                net.genesis,
                p2p[i],
                net.password,
                consensus[i],
                peers.join(", "),
                double_voter == Some(i),
            );
            std::fs::write(&config, toml).unwrap();
            Validator {
                proc: NodeProc {
                    log: net.dir.path().join(format!("{name}.log")),
                    name,
                    config,
                    rest: format!("http://127.0.0.1:{rest_port}"),
                    child: None,
                },
            }
        })
        .collect();
    (validators, link)
}

fn certified(n: &NodeProc) -> u64 {
    n.metric("doin_tx_certified_height_blocks")
}

#[test]
fn four_validators_finalize_through_the_loss_of_one_recover_from_two_and_heal_a_partition() {
    let _one = common::node_processes();
    let (net, keys, (user_key, user), recipient) = new_net("bft-e2e", 2_880);
    let key_paths: Vec<PathBuf> = keys.iter().map(|(k, _)| k.clone()).collect();
    let (mut vs, link) = configure(&net, &key_paths, None);
    for v in vs.iter_mut() {
        v.proc.start(&net.doin);
    }
    for v in &vs {
        wait_until(&format!("{} finalizes", v.proc.name), 120, || {
            (certified(&v.proc) >= 4).then_some(())
        });
    }
    // Every block after the first carries its parent's certificate signed by a quorum.
    let block = common::get_ok(&format!("{}/v1/tx/blocks/3", vs[0].proc.rest)).unwrap();
    let signers = block["last_commit"]["signatures"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    assert!(signers >= 3, "block 3's last_commit: {block}");

    // A transfer answered as included stays included everywhere.
    let sent = net.wallet(
        &user_key,
        &[
            "--node",
            &vs[1].proc.rest,
            "send",
            "--to",
            &recipient,
            "--amount",
            "2.5",
        ],
    );
    let tx_id = sent["id"].as_str().expect("tx id").to_string();
    wait_until("the transfer is final", 60, || {
        vs[1].proc.tx_status(&tx_id).filter(|s| s == "final")
    });

    // One validator lost: the other three keep finalizing.
    vs[3].proc.kill9();
    let before = certified(&vs[0].proc);
    for v in &vs[..3] {
        wait_until(&format!("{} finalizes without v3", v.proc.name), 90, || {
            (certified(&v.proc) >= before + 3).then_some(())
        });
    }

    // Two lost: no quorum, so no block is finalized (and none can fork).
    vs[2].proc.kill9();
    std::thread::sleep(Duration::from_secs(3));
    let stalled: Vec<u64> = vs[..2].iter().map(|v| v.proc.height()).collect();
    std::thread::sleep(Duration::from_secs(6));
    for (v, h) in vs[..2].iter().zip(&stalled) {
        assert_eq!(
            v.proc.height(),
            *h,
            "{} moved on without a quorum",
            v.proc.name
        );
    }

    // Both back: they catch up and finality resumes.
    vs[2].proc.start(&net.doin);
    vs[3].proc.start(&net.doin);
    let target = stalled.iter().copied().max().unwrap_or(0) + 3;
    for v in &vs {
        wait_until(&format!("{} finalizes again", v.proc.name), 180, || {
            (v.proc.height() >= target).then_some(())
        });
    }

    // Partition 1 | 3: the three keep finalizing, v3 alone finalizes nothing.
    link.cut();
    std::thread::sleep(Duration::from_secs(2));
    let alone = vs[3].proc.height();
    let before = vs[0].proc.height();
    for v in &vs[..3] {
        wait_until(&format!("{} finalizes without v3", v.proc.name), 90, || {
            (v.proc.height() >= before + 3).then_some(())
        });
    }
    assert_eq!(vs[3].proc.height(), alone, "v3 finalized alone");
    // Healed: v3 catches up onto the same chain, and all four finalize together.
    link.restore();
    let target = vs[0].proc.height() + 2;
    for v in &vs {
        wait_until(
            &format!("{} finalizes after the partition", v.proc.name),
            120,
            || (v.proc.height() >= target).then_some(()),
        );
    }

    // Same blocks everywhere, supply conserved, the transfer still there.
    assert_same_chain(&vs);
    let mut accounts: Vec<String> = keys.iter().map(|(_, a)| a.clone()).collect();
    accounts.extend([user.clone(), recipient.clone()]);
    for v in &vs {
        let n = &v.proc;
        assert_eq!(n.tx_status(&tx_id).as_deref(), Some("final"), "{}", n.name);
        assert_eq!(n.balance(&recipient), 250_000_000, "{}", n.name);
    }
    assert_supply(&vs, &accounts);
    for v in &vs {
        eprintln!(
            "{}: height {} decided {} round-timeouts {} votes-received {}\n{}",
            v.proc.name,
            v.proc.height(),
            v.proc.metric("doin_bft_decisions_total"),
            v.proc.metric("doin_bft_round_timeouts_total"),
            v.proc
                .metric("doin_bft_votes_total{direction=\"received\",kind=\"precommit\"}"),
            v.proc.log_tail()
        );
    }
    for v in vs.iter_mut() {
        v.proc.kill9();
    }
}

/// The validator set of the next block as `v` reports it: addresses in key order.
fn next_set(v: &NodeProc) -> Option<Vec<String>> {
    let sets = common::get_ok(&format!("{}/v1/tx/validators", v.rest))?;
    Some(
        sets["next"]
            .as_array()?
            .iter()
            .filter_map(|m| m["address"].as_str().map(String::from))
            .collect(),
    )
}

#[test]
fn a_double_voting_validator_is_reported_burned_and_unseated() {
    let _one = common::node_processes();
    // Epochs of 8 blocks: the set is fixed again soon after the offence.
    let (net, keys, (_, user), recipient) = new_net("bft-double-vote", 8);
    let key_paths: Vec<PathBuf> = keys.iter().map(|(k, _)| k.clone()).collect();
    let (mut vs, _link) = configure(&net, &key_paths, Some(3));
    for v in vs.iter_mut() {
        v.proc.start(&net.doin);
    }
    let offender = keys[3].1.clone();
    assert_eq!(next_set(&vs[0].proc).map(|s| s.len()), Some(4));

    // The honest validators see v3 vote twice and report it; one report burns its stake.
    let stake_url = format!("{}/v1/tx/accounts/{offender}/stakes", vs[0].proc.rest);
    let stake = wait_until("v3's stake burned for double voting", 120, || {
        let s = common::get_ok(&stake_url)?;
        let validator = s["stakes"]
            .as_array()?
            .iter()
            .find(|x| x["role"] == "validator")?
            .clone();
        (validator["tombstoned"] == true).then_some(validator)
    });
    assert_eq!(stake["bonded"], "0", "{stake}");
    assert_eq!(stake["unbonding"], "0", "{stake}");
    let reported: u64 = vs[..3]
        .iter()
        .map(|v| v.proc.metric("doin_bft_equivocations_total"))
        .sum();
    assert!(reported >= 1, "no honest node counted the double votes");

    // The next epoch's set leaves v3 out; the three honest validators finalize on.
    let seated = wait_until("a set without v3", 90, || {
        next_set(&vs[0].proc).filter(|s| !s.contains(&offender))
    });
    assert_eq!(seated.len(), 3, "{seated:?}");
    let before = vs[0].proc.height();
    for v in &vs[..3] {
        wait_until(
            &format!("{} finalizes without v3's seat", v.proc.name),
            90,
            || (certified(&v.proc) >= before + 3).then_some(()),
        );
    }

    // One chain everywhere (v3 follows it), and the burned stake is accounted for.
    wait_until("v3 follows the chain", 60, || {
        (vs[3].proc.height() >= before + 3).then_some(())
    });
    assert_same_chain(&vs);
    let mut accounts: Vec<String> = keys.iter().map(|(_, a)| a.clone()).collect();
    accounts.extend([user, recipient]);
    assert_supply(&vs, &accounts);
    let info = vs[0].proc.info().unwrap();
    let burned: u128 = info["burned"].as_str().unwrap().parse().unwrap();
    assert!(
        burned >= 10_000 * 100_000_000,
        "the offender's 10 000 DOIN stake is not in the burned total: {info}"
    );
    for v in vs.iter_mut() {
        v.proc.kill9();
    }
}
