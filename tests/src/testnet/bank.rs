//! The bank workload: one client per account sends transfers to other accounts through a
//! random node, and every request and answer goes into the history.
//!
//! A client behaves as a careful wallet does: one transfer in flight at a time; the same
//! signed bytes are offered to another node while nobody answers (so a transfer is never
//! signed twice with one nonce); after a `202`/`200` it waits until some node reports the
//! transfer final before it signs the next; after a refusal it reads its nonce again, but never
//! goes below the nonce after its last final transfer (a node cut off from the others answers
//! with the nonce it last saw, and a wallet that believed it would sign a second transfer
//! with a nonce already used: one that can never be final). The
//! checker ([`super::check`]) then holds the network to what the clients were told.

use super::node::Http;
use doin_crypto::KeyPair;
use doin_tx_core::tx::{Tx, TxBody, TxPayload};
use doin_types::{Address, Amount, ChainId, Network};
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a node answered to one request.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// `202` (new) or `200` (known already).
    Accepted { status: u16 },
    /// A refusal: the problem's kind and detail.
    Refused {
        status: u16,
        kind: String,
        detail: String,
    },
    /// No answer (a dead, paused or cut-off node).
    NoAnswer { error: String },
    /// A node reported the transfer final.
    Final { status: String },
}

/// One line of the history.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// Milliseconds since the workload started.
    pub at_ms: u64,
    pub client: usize,
    pub nonce: u64,
    pub tx: String,
    pub node: String,
    #[serde(flatten)]
    pub answer: Answer,
}

/// Where the clients send: a node's name and REST base.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub rest: String,
}

pub struct Bank {
    pub accounts: Vec<KeyPair>,
    pub network: Network,
    pub chain_id: ChainId,
    pub history: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    started: Instant,
}

impl Bank {
    pub fn new(accounts: Vec<KeyPair>, network: Network, chain_id: ChainId) -> Bank {
        Bank {
            accounts,
            network,
            chain_id,
            history: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            started: Instant::now(),
        }
    }

    pub fn address(&self, i: usize) -> String {
        Address::new(self.network, self.accounts[i].public()).to_string()
    }

    /// Starts one client task per account.
    pub fn start(
        self: &Arc<Self>,
        targets: Vec<Target>,
        http: Http,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.accounts.len())
            .map(|i| {
                let bank = self.clone();
                let targets = targets.clone();
                let http = http.clone();
                tokio::spawn(async move { bank.client(i, targets, http).await })
            })
            .collect()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn record(&self, client: usize, nonce: u64, tx: &str, node: &str, answer: Answer) {
        let r = Record {
            at_ms: self.started.elapsed().as_millis() as u64,
            client,
            nonce,
            tx: tx.to_string(),
            node: node.to_string(),
            answer,
        };
        if let Ok(mut h) = self.history.lock() {
            h.push(r);
        }
    }

    /// Ids of every transfer some node answered `202` or `200` to.
    pub fn accepted(&self) -> Vec<String> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = h
            .iter()
            .filter(|r| matches!(r.answer, Answer::Accepted { .. }))
            .map(|r| r.tx.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Every history line about transfer `tx`, and the client's lines just before it.
    pub fn excerpt(&self, tx: &str) -> String {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let Some(first) = h.iter().position(|r| r.tx == tx) else {
            return format!("(no history line names {tx})");
        };
        let client = h[first].client;
        let before: Vec<&Record> = h[..first]
            .iter()
            .filter(|r| r.client == client)
            .rev()
            .take(3)
            .collect();
        before
            .into_iter()
            .rev()
            .chain(h.iter().filter(|r| r.tx == tx))
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The nonce the chain expects next from client `i`, as the first node that answers says.
    async fn nonce_of(&self, i: usize, targets: &[Target], http: &Http) -> Option<u64> {
        let addr = self.address(i);
        for t in shuffled(targets) {
            if let Some(v) = http.get(&format!("{}/v1/tx/accounts/{addr}", t.rest)).await {
                if let Some(n) = v["next_nonce"].as_u64() {
                    return Some(n);
                }
            }
        }
        None
    }

    async fn base_fee(&self, targets: &[Target], http: &Http) -> Option<u64> {
        for t in shuffled(targets) {
            if let Some(v) = http.get(&format!("{}/v1/tx/fees", t.rest)).await {
                if let Some(b) = v["base_fee"].as_str().and_then(|s| s.parse().ok()) {
                    return Some(b);
                }
            }
        }
        None
    }

    fn sign(&self, i: usize, nonce: u64, base_fee: u64) -> Result<(Tx, String), String> {
        let mut rng = rand::thread_rng();
        let mut to = rng.gen_range(0..self.accounts.len() - 1);
        if to >= i {
            to += 1;
        }
        let tip = 1;
        let max_fee = base_fee
            .checked_mul(4)
            .and_then(|f| f.checked_add(tip))
            .ok_or("fee overflow")?;
        let body = TxBody {
            chain_id: self.chain_id,
            sender: self.accounts[i].public(),
            nonce,
            max_fee_per_weight: Amount::from_base_units(max_fee),
            max_priority_fee_per_weight: Amount::from_base_units(tip),
            payload: TxPayload::Transfer {
                to: self.accounts[to].public(),
                amount: Amount::from_base_units(rng.gen_range(1..1_000u64) * 100_000),
            },
        };
        let signed = body.sign(&self.accounts[i]).map_err(|e| e.to_string())?;
        let tx = Tx::from_signed(signed).map_err(|e| e.to_string())?;
        let id = tx.id().to_string();
        Ok((tx, id))
    }

    async fn client(self: Arc<Self>, i: usize, targets: Vec<Target>, http: Http) {
        let mut nonce = None;
        // The nonce after the last transfer this client saw final: nothing below is signed.
        let mut floor = 0;
        // A signed transfer nobody has answered yet: offered again, never re-signed.
        let mut unanswered: Option<(Tx, String, u64)> = None;
        while !self.stopped() {
            let (tx, id, n) = match unanswered.take() {
                Some(t) => t,
                None => {
                    let n = match nonce {
                        Some(n) => n,
                        None => match self.nonce_of(i, &targets, &http).await {
                            Some(n) => n.max(floor),
                            None => {
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                continue;
                            }
                        },
                    };
                    let Some(base) = self.base_fee(&targets, &http).await else {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    };
                    match self.sign(i, n, base) {
                        Ok((tx, id)) => (tx, id, n),
                        Err(e) => {
                            eprintln!("client {i}: cannot sign: {e}");
                            return;
                        }
                    }
                }
            };
            let target = &targets[rand::thread_rng().gen_range(0..targets.len())];
            let body = json!({ "tx": hex::encode(tx.bytes()) });
            let answer = http
                .post(&format!("{}/v1/tx/transactions", target.rest), &body)
                .await;
            match answer {
                Ok((status @ (200 | 202), _)) => {
                    self.record(i, n, &id, &target.name, Answer::Accepted { status });
                    if self.wait_final(i, n, &id, &targets, &http).await {
                        nonce = Some(n + 1);
                        floor = n + 1;
                    } else {
                        // Stopped while waiting: the final check decides.
                        return;
                    }
                }
                Ok((status, v)) if status >= 500 || status == 408 || status == 429 => {
                    // The node could not take it now (a full disk, a timeout): someone else may.
                    self.record(i, n, &id, &target.name, refusal(status, &v));
                    unanswered = Some((tx, id, n));
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Ok((status, v)) => {
                    self.record(i, n, &id, &target.name, refusal(status, &v));
                    nonce = None;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(error) => {
                    self.record(i, n, &id, &target.name, Answer::NoAnswer { error });
                    unanswered = Some((tx, id, n));
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    /// Polls random nodes until one reports `id` final; false if the workload stopped first.
    async fn wait_final(
        &self,
        i: usize,
        n: u64,
        id: &str,
        targets: &[Target],
        http: &Http,
    ) -> bool {
        while !self.stopped() {
            let t = &targets[rand::thread_rng().gen_range(0..targets.len())];
            if let Some(v) = http
                .get(&format!("{}/v1/tx/transactions/{id}", t.rest))
                .await
            {
                if let Some(s) = v["status"].as_str().filter(|s| is_final(s)) {
                    self.record(
                        i,
                        n,
                        id,
                        &t.name,
                        Answer::Final {
                            status: s.to_string(),
                        },
                    );
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        false
    }

    /// Writes the history as JSON lines.
    pub fn write_history(&self, path: &std::path::Path) -> Result<(), String> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let text: String = h
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default() + "\n")
            .collect();
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Counts of each kind of answer.
    pub fn tally(&self) -> (usize, usize, usize, usize) {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let mut t = (0, 0, 0, 0);
        for r in h.iter() {
            match r.answer {
                Answer::Accepted { .. } => t.0 += 1,
                Answer::Final { .. } => t.1 += 1,
                Answer::Refused { .. } => t.2 += 1,
                Answer::NoAnswer { .. } => t.3 += 1,
            }
        }
        t
    }
}

pub fn is_final(status: &str) -> bool {
    status == "final" || status == "anchored"
}

fn refusal(status: u16, v: &Value) -> Answer {
    let kind = v["type"]
        .as_str()
        .map(|t| t.trim_start_matches("urn:doin:problem:").to_string())
        .unwrap_or_default();
    Answer::Refused {
        status,
        kind,
        detail: v["detail"].as_str().unwrap_or_default().to_string(),
    }
}

fn shuffled(targets: &[Target]) -> Vec<Target> {
    use rand::seq::SliceRandom;
    let mut v = targets.to_vec();
    v.shuffle(&mut rand::thread_rng());
    v
}
