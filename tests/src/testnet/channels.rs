//! The channel workload: a payer streams micropayments to a payee through the hub node while
//! the faults run, and the books are reconciled afterwards.
//!
//! Both peers are users of `doin hub` (the real command, run as a process against the hub
//! node's REST API): each keeps its channel states in its own state directory, and a command
//! the hub did not answer (killed, paused, cut off) is simply run again, as the command's
//! documentation tells a user to. Every command and its answer goes into the channel history
//! (`channels.jsonl`).
//!
//! The reconciliation, once everything is healed and both peers have synced: each side of
//! both channels holds what the hub holds for it; both channels hold exactly what was locked on
//! chain; what the payer paid is what the stream received; what the stream received is what it
//! forwarded plus the hub's fees; what was forwarded is what the payee gained plus what the hub
//! still owes it; the hub's ledger entries of payouts to the payee add up to what the payee
//! gained; and no tick a command reported as completed is missing.

use super::node::Http;
use doin_crypto::keystore::KeyFile;
use doin_crypto::KeyPair;
use doin_types::{Address, Network};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What each tick pays, milli-units.
const TICK_MSAT: u64 = 100_000;
/// Ticks per `doin hub tick` command.
const TICKS_PER_COMMAND: u64 = 5;
/// The payer's deposit into its channel and the hub's into its channel to the payee, DOIN.
const PAYER_DEPOSIT: &str = "5";
const HUB_DEPOSIT: &str = "4";
/// The stream's budget (the payee's invoice), milli-units: more than any run can pay.
const BUDGET_MSAT: &str = "100000000000";
/// A command that has not finished by then is treated as unanswered (and killed).
const COMMAND_SECS: u64 = 60;

/// A peer of the hub: its key file and its state directory.
pub struct Peer {
    pub name: &'static str,
    pub key: KeyPair,
    keystore: PathBuf,
    state_dir: PathBuf,
}

impl Peer {
    /// A new key (its key file in `dir`) and an empty state directory beside it.
    pub fn new(name: &'static str, dir: &Path) -> Result<Peer, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let key = KeyPair::generate();
        let keystore = dir.join(format!("{name}.json"));
        if keystore.exists() {
            std::fs::remove_file(&keystore).map_err(|e| format!("{}: {e}", keystore.display()))?;
        }
        KeyFile::plaintext_devnet(&key)
            .write_new(&keystore)
            .map_err(|e| format!("{}: {e}", keystore.display()))?;
        let state_dir = dir.join(format!("{name}-channels"));
        if state_dir.exists() {
            std::fs::remove_dir_all(&state_dir)
                .map_err(|e| format!("{}: {e}", state_dir.display()))?;
        }
        Ok(Peer {
            name,
            key,
            keystore,
            state_dir,
        })
    }

    pub fn address(&self) -> String {
        Address::new(Network::Devnet, self.key.public()).to_string()
    }
}

/// One `doin hub` command and what came of it.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    /// Milliseconds since the workload was made.
    pub at_ms: u64,
    /// The payer, the payee, or the operator.
    pub who: String,
    pub args: Vec<String>,
    pub ok: bool,
    /// The command's JSON answer (`null` when it printed none).
    pub answer: Value,
    /// The end of its error output when it failed.
    pub error: String,
}

/// The channels and stream the setup made.
#[derive(Clone, Debug)]
struct Ids {
    incoming: String,
    outgoing: String,
    stream: String,
}

/// What the reconciliation found.
#[derive(Debug)]
pub struct Books {
    pub ticks_reported: u64,
    pub received_msat: u64,
    pub paid_out_msat: u64,
    pub commands: usize,
    pub failed_commands: usize,
}

pub struct Channels {
    doin: PathBuf,
    /// The hub node's REST base.
    rest: String,
    /// The operator's token file (`hub.cookie` in the hub node's data directory).
    cookie: PathBuf,
    pub payer: Peer,
    pub payee: Peer,
    history: Mutex<Vec<Call>>,
    ids: Mutex<Option<Ids>>,
    /// Ticks that `doin hub tick` reported as completed.
    ticks_reported: AtomicU64,
    stop: AtomicBool,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A text field of a command's JSON answer.
fn text(v: &Value, field: &str) -> Result<String, String> {
    v[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {field} in {v}"))
}

/// A milli-unit amount of a JSON answer (decimal string).
fn msat(v: &Value, field: &str) -> Result<u64, String> {
    v[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no {field} in {v}"))
}

impl Channels {
    /// The workload of `payer` and `payee` (see [`Peer::new`]) against the hub node at `rest`.
    pub fn new(doin: &Path, rest: String, cookie: PathBuf, payer: Peer, payee: Peer) -> Channels {
        Channels {
            doin: doin.to_path_buf(),
            rest,
            cookie,
            payer,
            payee,
            history: Mutex::new(Vec::new()),
            ids: Mutex::new(None),
            ticks_reported: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            started: Instant::now(),
        }
    }

    /// Runs `doin hub ARGS --json` as `peer` (or the operator); records it.
    async fn call(&self, peer: Option<&Peer>, args: &[&str]) -> (bool, Value) {
        let mut cmd = tokio::process::Command::new(&self.doin);
        cmd.arg("hub")
            .args(args)
            .args(["--json", "--node", &self.rest])
            .arg("--cookie")
            .arg(&self.cookie)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(p) = peer {
            cmd.arg("--keystore")
                .arg(&p.keystore)
                .arg("--state-dir")
                .arg(&p.state_dir);
        }
        let out = tokio::time::timeout(Duration::from_secs(COMMAND_SECS), cmd.output()).await;
        let (ok, answer, error) = match out {
            Ok(Ok(out)) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                // The command's answer is its last line of JSON (progress goes to stderr).
                let answer = stdout
                    .lines()
                    .rev()
                    .find_map(|l| serde_json::from_str(l).ok())
                    .unwrap_or(Value::Null);
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                let error = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
                (out.status.success(), answer, error)
            }
            Ok(Err(e)) => (false, Value::Null, format!("cannot run doin: {e}")),
            Err(_) => (
                false,
                Value::Null,
                format!("no answer within {COMMAND_SECS} s"),
            ),
        };
        lock(&self.history).push(Call {
            at_ms: self.started.elapsed().as_millis() as u64,
            who: peer.map_or("operator", |p| p.name).to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ok,
            answer: answer.clone(),
            error,
        });
        (ok, answer)
    }

    /// Runs the command again until it succeeds (every command used this way may be re-run).
    async fn until_ok(
        &self,
        peer: Option<&Peer>,
        args: &[&str],
        within_secs: u64,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + Duration::from_secs(within_secs);
        loop {
            let (ok, v) = self.call(peer, args).await;
            if ok {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "`doin hub {}` kept failing for {within_secs} s:\n{}",
                    args.join(" "),
                    self.excerpt(6)
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The last `n` commands, one JSON line each.
    pub fn excerpt(&self, n: usize) -> String {
        let h = lock(&self.history);
        h.iter()
            .skip(h.len().saturating_sub(n))
            .map(|c| serde_json::to_string(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The payer's channel to the hub, the hub's to the payee and a stream between them, made
    /// before the faults start (opening a channel on chain is one signed transaction: it is
    /// not something to run twice).
    pub async fn setup(&self) -> Result<(), String> {
        let (ok, connected) = self
            .call(
                Some(&self.payer),
                &["connect", "--deposit", PAYER_DEPOSIT, "--wait-secs", "120"],
            )
            .await;
        let incoming = connected["id"]
            .as_str()
            .filter(|_| ok)
            .ok_or_else(|| format!("the payer could not connect:\n{}", self.excerpt(1)))?
            .to_string();
        let payee = self.payee.address();
        let opened = self
            .until_ok(
                None,
                &[
                    "operator",
                    "open",
                    "--payee",
                    &payee,
                    "--deposit",
                    HUB_DEPOSIT,
                    "--idempotency-key",
                    "testnet-payee",
                ],
                120,
            )
            .await?;
        let outgoing = text(&opened, "channel_id")?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, v) = self.call(None, &["channels", &outgoing]).await;
            if v["status"] == "open" {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the hub's channel to the payee is not open after 120 s:\n{}",
                    self.excerpt(3)
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let invoice = self
            .until_ok(
                Some(&self.payee),
                &[
                    "invoice",
                    "create",
                    "--amount-msat",
                    BUDGET_MSAT,
                    "--expiry-secs",
                    "604800",
                ],
                60,
            )
            .await?;
        let invoice = text(&invoice, "invoice")?;
        let stream = self
            .until_ok(
                Some(&self.payer),
                &["stream-open", "--channel", &incoming, "--invoice", &invoice],
                60,
            )
            .await?;
        let stream = text(&stream, "id")?;
        *lock(&self.ids) = Some(Ids {
            incoming,
            outgoing,
            stream,
        });
        Ok(())
    }

    fn ids(&self) -> Result<Ids, String> {
        lock(&self.ids)
            .clone()
            .ok_or_else(|| "the channels were not set up".to_string())
    }

    /// Ticks from the payer and syncs of the payee until [`Channels::stop`]. A command that
    /// fails (the hub down or cut off) is followed by a sync of that peer, which finishes or
    /// re-sends whatever update it interrupted.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let Ok(ids) = me.ids() else { return };
            let count = TICKS_PER_COMMAND.to_string();
            let amount = TICK_MSAT.to_string();
            let mut payer_behind = false;
            while !me.stop.load(Ordering::SeqCst) {
                if payer_behind {
                    let (ok, _) = me
                        .call(Some(&me.payer), &["sync", "--channel", &ids.incoming])
                        .await;
                    payer_behind = !ok;
                }
                if !payer_behind {
                    let (ok, v) = me
                        .call(
                            Some(&me.payer),
                            &[
                                "tick",
                                "--channel",
                                &ids.incoming,
                                "--stream",
                                &ids.stream,
                                "--amount-msat",
                                &amount,
                                "--count",
                                &count,
                            ],
                        )
                        .await;
                    if ok {
                        me.ticks_reported
                            .fetch_add(v["completed"].as_u64().unwrap_or(0), Ordering::SeqCst);
                    }
                    payer_behind = !ok;
                }
                // The payee takes what the hub proposes (its payouts); a failed sync is simply
                // the next one's work.
                me.call(Some(&me.payee), &["sync", "--channel", &ids.outgoing])
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Both peers sync until nothing is in flight and the hub owes the payee nothing, then
    /// every side of the books is compared (see the module's documentation).
    pub async fn reconcile(&self, http: &Http, within_secs: u64) -> Result<Books, String> {
        let ids = self.ids()?;
        let deadline = Instant::now() + Duration::from_secs(within_secs);
        let hub = |path: String| async move {
            http.get(&format!("{}{path}", self.rest))
                .await
                .ok_or_else(|| format!("the hub did not answer GET {path}"))
        };
        let (payer, payee) = loop {
            let payer = self
                .until_ok(Some(&self.payer), &["sync", "--channel", &ids.incoming], 60)
                .await?;
            let payee = self
                .until_ok(Some(&self.payee), &["sync", "--channel", &ids.outgoing], 60)
                .await?;
            let out = hub(format!("/v1/hub/channels/{}", ids.outgoing)).await?;
            let inc = hub(format!("/v1/hub/channels/{}", ids.incoming)).await?;
            let settled = msat(&out, "owed_msat")? == 0
                && out["update_in_flight"] == false
                && inc["update_in_flight"] == false;
            if settled {
                break (payer, payee);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the channels did not settle in {within_secs} s: the hub's view of the payee's channel {out}, of the payer's {inc}\n{}",
                    self.excerpt(8)
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let fail = |what: String| Err(format!("{what}\n{}", self.excerpt(8)));

        // Each side of each channel holds what the hub holds for it, and the two sides hold
        // what was locked on chain.
        let mut opening = [0u64; 2];
        for (k, (id, peer, mine)) in [
            (&ids.incoming, &self.payer, &payer),
            (&ids.outgoing, &self.payee, &payee),
        ]
        .into_iter()
        .enumerate()
        {
            let at_hub = hub(format!("/v1/hub/channels/{id}")).await?;
            let on_chain = hub(format!("/v1/tx/channels/{id}")).await?;
            let (peer_msat, hub_msat) = (
                msat(&at_hub, "peer_balance_msat")?,
                msat(&at_hub, "hub_balance_msat")?,
            );
            if msat(mine, "my_balance_msat")? != peer_msat {
                return fail(format!(
                    "the {} holds {} msat in channel {id}, the hub says it holds {peer_msat}",
                    peer.name, mine["my_balance_msat"]
                ));
            }
            let locked = msat(&on_chain, "opening_a_msat")?
                .checked_add(msat(&on_chain, "opening_b_msat")?)
                .ok_or("opening amounts overflow")?;
            if peer_msat.checked_add(hub_msat) != Some(locked) {
                return fail(format!(
                    "channel {id} holds {peer_msat} + {hub_msat} msat, {locked} were locked on chain"
                ));
            }
            // The payer opened its channel (side A); the hub opened the payee's (side B).
            opening[k] = msat(
                &on_chain,
                if k == 0 {
                    "opening_a_msat"
                } else {
                    "opening_b_msat"
                },
            )?;
        }

        // The stream: what the payer paid, received; what it received, forwarded plus fees;
        // what it forwarded, the payee's balance plus what the hub still owes.
        let stream = hub(format!("/v1/hub/streams/{}", ids.stream)).await?;
        let received = msat(&stream, "received_msat")?;
        let forwarded = msat(&stream, "forwarded_msat")?;
        let fees = msat(&stream, "fees_msat")?;
        let paid = opening[0]
            .checked_sub(msat(&payer, "my_balance_msat")?)
            .ok_or("the payer holds more than it put in")?;
        if paid != received {
            return fail(format!(
                "the payer paid {paid} msat, the stream received {received}"
            ));
        }
        if forwarded.checked_add(fees) != Some(received) {
            return fail(format!(
                "the stream received {received} msat but forwarded {forwarded} with {fees} in fees"
            ));
        }
        let out = hub(format!("/v1/hub/channels/{}", ids.outgoing)).await?;
        let payee_msat = msat(&payee, "my_balance_msat")?
            .checked_sub(opening[1])
            .ok_or("the payee holds less than it opened with")?;
        if payee_msat.checked_add(msat(&out, "owed_msat")?) != Some(forwarded) {
            return fail(format!(
                "the stream forwarded {forwarded} msat; the payee gained {payee_msat} and the hub owes {}",
                out["owed_msat"]
            ));
        }
        let ticks = self.ticks_reported.load(Ordering::SeqCst);
        if ticks.checked_mul(TICK_MSAT).is_none_or(|t| t > received) {
            return fail(format!(
                "`doin hub tick` reported {ticks} completed ticks of {TICK_MSAT} msat, the stream received only {received}"
            ));
        }
        if received == 0 {
            return fail("no tick was paid: the check would prove nothing".to_string());
        }

        // The hub's ledger of payouts to the payee adds up to what the payee gained.
        let token = std::fs::read_to_string(&self.cookie)
            .map_err(|e| format!("{}: {e}", self.cookie.display()))?;
        let mut booked: u64 = 0;
        let mut after = 0;
        loop {
            let url = format!(
                "{}/v1/hub/payees/{}/payments?after={after}&limit=1000",
                self.rest,
                self.payee.address()
            );
            let page = http
                .get_authorized(&url, token.trim())
                .await
                .ok_or_else(|| format!("the hub did not answer {url}"))?;
            let entries = page.as_array().cloned().unwrap_or_default();
            for e in &entries {
                // Payouts to the payee (batched: an entry names no single stream).
                if e["kind"] == "stream_out" {
                    booked = booked
                        .checked_add(msat(e, "amount_msat")?)
                        .ok_or("the ledger overflows")?;
                }
                after = after.max(e["seq"].as_u64().unwrap_or(after));
            }
            if entries.len() < 1000 {
                break;
            }
        }
        if booked != payee_msat {
            return fail(format!(
                "the hub's ledger books {booked} msat paid out to the payee, the payee gained {payee_msat}"
            ));
        }
        let h = lock(&self.history);
        Ok(Books {
            ticks_reported: ticks,
            received_msat: received,
            paid_out_msat: payee_msat,
            commands: h.len(),
            failed_commands: h.iter().filter(|c| !c.ok).count(),
        })
    }

    /// Writes the channel history as JSON lines.
    pub fn write_history(&self, path: &Path) -> Result<(), String> {
        let text: String = lock(&self.history)
            .iter()
            .map(|c| serde_json::to_string(c).unwrap_or_default() + "\n")
            .collect();
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
