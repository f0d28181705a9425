//! Streamed payments per second through one hub with durable state, as a ratio to the cost of
//! one BIP340 signature plus one verification measured in the same run (timings are
//! reported, never asserted: docs/development.md).
//!
//! Run (release): `cargo bench --workspace --bench hub_stream`
//! Optional: `DOIN_BENCH_PAYERS=8 DOIN_BENCH_TICKS=2000 DOIN_BENCH_PULL_EVERY=16
//! DOIN_BENCH_PIPELINE=1 DOIN_BENCH_SERVER_THREADS=1 DOIN_BENCH_SPLIT=1` (pipeline 0: Confirm and the next
//! proposal in separate calls; server threads 0: clients call the hub on their own threads).
//!
//! Setup: a real transfer chain (RocksDB) where every payer opens a channel to the hub and the
//! hub one to every payer's payee, and a stream per payer set up by the payee's invoice; the hub
//! has its own RocksDB with group commit. Measured: payer threads each pay ticks into their
//! stream as fast as the hub answers — one tick is one update signed by both (propose, accept,
//! confirm), persisted by the hub with fsync before each answer; pipelined, the payer sends each
//! tick's Confirm with the next tick's proposal — and every few ticks the payee takes what the
//! hub pays out (one more update, batching those ticks). A "payment" is one stream's share of a
//! tick: with `DOIN_BENCH_SPLIT=1` (the default) one tick; with `DOIN_BENCH_SPLIT=k`, each payer
//! has k streams (k payees) and each tick is a split tick paying all k with one update.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::{create_invoice, Change, ChannelMachine, InvoiceTerms, Message};
use doin_crypto::{verify, KeyPair};
use doin_hub::store::StreamShare;
use doin_hub::{Handled, Hub, HubConfig, HubStore, ProposalContext};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_tx_core::channel::{channel_id, sha256, ChannelId, Side};
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, Tx, TxBody, TxPayload};
use doin_types::{Amount, Hash256, Network, Timestamp};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sign + verify pairs per second on this thread.
fn baseline(n: usize) -> f64 {
    let k = KeyPair::generate();
    let msg = Hash256([7; 32]);
    let start = Instant::now();
    for _ in 0..n {
        let sig = k.sign(&msg);
        verify(&k.public(), &msg, &sig).unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Sign + verify pairs per second with one thread per core: what this machine's cores can do
/// at most, and so the ceiling of a tick, which costs the hub one pair and the payer one.
fn baseline_all_cores(n: usize) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| baseline(n));
        }
    });
    (n * cores) as f64 / start.elapsed().as_secs_f64()
}

/// CPU time this thread has run (the scheduler's count, in nanoseconds).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// CPU time of the whole process so far, threads that have ended included (user + system;
/// Linux counts them in 1/100 s).
fn process_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Sign + verify pairs per second of this thread's CPU time.
fn baseline_cpu(n: usize) -> f64 {
    let at = thread_cpu();
    baseline(n);
    n as f64 / (thread_cpu() - at).as_secs_f64()
}

/// A call to the hub, made by the hub's own thread for one client (as a server's request
/// thread would), so that the hub's CPU time and the clients' are counted apart.
enum Call {
    Handle(ChannelId, Message, ProposalContext),
    Pipelined(ChannelId, Message, Message, ProposalContext),
    Outbox(ChannelId),
}

enum Answer {
    Handled(Handled),
    Outbox(Option<Message>),
}

/// A client's line to the hub: through a hub thread of its own, or calling the hub on the
/// client's thread (no hand-over between threads, but no separate CPU count either).
enum Link {
    Served {
        calls: mpsc::Sender<Call>,
        answers: mpsc::Receiver<Answer>,
    },
    Direct(Arc<Hub>),
}

fn answer(hub: &Hub, call: Call) -> Answer {
    match call {
        Call::Handle(id, m, ctx) => Answer::Handled(hub.handle(&id, m, ctx).unwrap()),
        Call::Pipelined(id, c, m, ctx) => {
            Answer::Handled(hub.handle_pipelined(&id, c, m, ctx).unwrap())
        }
        Call::Outbox(id) => Answer::Outbox(hub.outbox(&id).unwrap()),
    }
}

impl Link {
    fn serve(hub: Arc<Hub>) -> Link {
        let (calls, incoming) = mpsc::channel::<Call>();
        let (outgoing, answers) = mpsc::channel();
        let server = std::thread::Builder::new().name("hub-server".into());
        server
            .spawn(move || {
                while let Ok(call) = incoming.recv() {
                    if outgoing.send(answer(&hub, call)).is_err() {
                        return;
                    }
                }
            })
            .unwrap();
        Link::Served { calls, answers }
    }

    fn call(&self, call: Call) -> Answer {
        match self {
            Link::Served { calls, answers } => {
                calls.send(call).unwrap();
                answers.recv().unwrap()
            }
            Link::Direct(hub) => answer(hub, call),
        }
    }

    fn handle(&self, id: &ChannelId, msg: Message, ctx: ProposalContext) -> Handled {
        match self.call(Call::Handle(*id, msg, ctx)) {
            Answer::Handled(h) => h,
            Answer::Outbox(_) => unreachable!("answered in kind"),
        }
    }

    fn pipelined(
        &self,
        id: &ChannelId,
        confirm: Message,
        next: Message,
        ctx: ProposalContext,
    ) -> Handled {
        match self.call(Call::Pipelined(*id, confirm, next, ctx)) {
            Answer::Handled(h) => h,
            Answer::Outbox(_) => unreachable!("answered in kind"),
        }
    }

    fn outbox(&self, id: &ChannelId) -> Option<Message> {
        match self.call(Call::Outbox(*id)) {
            Answer::Outbox(m) => m,
            Answer::Handled(_) => unreachable!("answered in kind"),
        }
    }
}

/// One payer, its channel to the hub, and the payees its streams pay (one stream each).
struct Lane {
    payer: KeyPair,
    payer_m: ChannelMachine,
    payees: Vec<Payee>,
}

struct Payee {
    key: KeyPair,
    m: ChannelMachine,
    stream: Hash256,
}

fn exchange(
    hub: &Link,
    key: &KeyPair,
    m: &mut ChannelMachine,
    first: Message,
    ctx: ProposalContext,
    lat: &mut Vec<Duration>,
) {
    let id = m.id();
    let mut next = Some(first);
    let mut ctx = Some(ctx);
    while let Some(msg) = next.take() {
        let t = Instant::now();
        let handled = hub.handle(&id, msg, ctx.take().unwrap_or_default());
        lat.push(t.elapsed());
        let Some(reply) = handled.reply else { break };
        next = m.handle(key, reply, 1).unwrap().send;
    }
}

/// Takes every payout the hub has waiting for the payee.
fn pull(hub: &Link, payee: &mut Payee, lat: &mut Vec<Duration>) {
    while let Some(p) = hub.outbox(&payee.m.id()) {
        let accept = payee.m.handle(&payee.key, p, 1).unwrap().send.unwrap();
        exchange(
            hub,
            &payee.key,
            &mut payee.m,
            accept,
            ProposalContext::default(),
            lat,
        );
    }
}

fn main() {
    let payers = env_usize("DOIN_BENCH_PAYERS", 8);
    // 1: the payer sends each tick's Confirm with the next tick's proposal (one hub call
    // per tick); 0: three messages in two hub calls per tick.
    let pipeline = env_usize("DOIN_BENCH_PIPELINE", 1) == 1;
    // 1: every client's calls are made by a hub thread of its own, as a server's request
    // threads would, and the hub's CPU time is counted apart from the clients'; 0: clients
    // call the hub on their own threads.
    let served = env_usize("DOIN_BENCH_SERVER_THREADS", 1) == 1;
    let ticks = env_usize("DOIN_BENCH_TICKS", 2_000);
    let pull_every = env_usize("DOIN_BENCH_PULL_EVERY", 16).max(1);
    // Streams per payer, each to a payee of its own: above 1, every tick is a split tick
    // that pays all of the payer's streams with one update (one payment per stream).
    let split = env_usize("DOIN_BENCH_SPLIT", 1).clamp(1, doin_hub::hub::MAX_SPLIT_SHARES);
    println!("setup: {payers} payers, {ticks} ticks each paying {split} stream(s), each payee takes its payout every {pull_every} ticks, pipelined: {pipeline}, hub threads apart: {served}");
    let dir = tempfile::tempdir().unwrap();
    let (validator, hub_key) = (KeyPair::generate(), KeyPair::generate());
    let pairs: Vec<(KeyPair, Vec<KeyPair>)> = (0..payers)
        .map(|_| {
            let payees = (0..split).map(|_| KeyPair::generate()).collect();
            (KeyPair::generate(), payees)
        })
        .collect();
    let deposit = 1_000_000_000u64; // base units, each side of every channel
    let fund = |k: &KeyPair, channels: usize| Allocation {
        key: k.public(),
        amount: Amount::from_base_units(deposit * (channels as u64 + 1)),
    };
    let mut allocations = vec![fund(&hub_key, payers * split)];
    allocations.extend(pairs.iter().map(|(p, _)| fund(p, 1)));
    let spec = GenesisSpec {
        stakes: Vec::new(),
        network: Network::Devnet,
        chain_name: "hub-bench".into(),
        genesis_time: Timestamp(doin_tx_node::now_ms() - 10_000),
        params: ConsensusParams::public_defaults(),
        validators: vec![validator.public()],
        allocations,
    };
    let chain = doin_tests::open_rocks_chain(&dir.path().join("chain"), spec).unwrap();
    let chain_id = chain.params().chain_id;
    let kv: Arc<dyn KvStore> = Arc::new(
        RocksStore::open(
            &dir.path().join("hub"),
            doin_hub::COLUMNS,
            &RocksConfig::default(),
        )
        .unwrap(),
    );
    let metrics = doin_hub::HubMetrics::unregistered().unwrap();
    let hub = Arc::new(
        Hub::open(
            KeyPair::from_secret_bytes(&hub_key.secret_bytes()).unwrap(),
            Arc::new(doin_node::hub_port::TxChainPort::new(&chain)),
            HubStore::new(kv, metrics.clone()),
            HubConfig {
                max_owed_msat: u64::MAX,
                ..HubConfig::default()
            },
        )
        .unwrap(),
    );
    let mut outgoing = Vec::new();
    for (payer, payees) in &pairs {
        for payee in payees {
            outgoing.push(
                hub.open_outgoing(payee.public(), Amount::from_base_units(deposit))
                    .unwrap(),
            );
            // The pool holds at most 64 pending transactions of one sender.
            if outgoing.len() % 60 == 0 {
                chain
                    .produce_block(&validator, Timestamp(doin_tx_node::now_ms()))
                    .unwrap();
            }
        }
        let body = TxBody {
            chain_id,
            sender: payer.public(),
            nonce: 0,
            max_fee_per_weight: Amount::from_base_units(50),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload: TxPayload::ChannelOpen {
                counterparty: hub_key.public(),
                deposit: Amount::from_base_units(deposit),
                counterparty_deposit: Amount::ZERO,
                dispute_blocks: 2_880,
                consent: None,
            },
        };
        chain
            .submit(Tx::from_signed(body.sign(payer).unwrap()).unwrap().bytes())
            .unwrap();
    }
    chain
        .produce_block(&validator, Timestamp(doin_tx_node::now_ms()))
        .unwrap();
    hub.watch().unwrap();
    let msat = deposit * 1_000;
    let mut lanes = Vec::new();
    let mut outgoing = outgoing.into_iter();
    for (i, (payer, payee_keys)) in pairs.into_iter().enumerate() {
        let in_id: ChannelId = channel_id(&chain_id, &payer.public(), 0);
        hub.register_incoming(in_id).unwrap();
        let mut payees = Vec::new();
        for (j, key) in payee_keys.into_iter().enumerate() {
            let invoice = create_invoice(
                Network::Devnet,
                &key,
                &InvoiceTerms {
                    amount_msat: msat,
                    payment_hash: Hash256(sha256(&((i * 1_000 + j) as u64).to_be_bytes())),
                    payment_secret: [1; 32],
                    description: "bench".into(),
                    expiry_secs: 3_600,
                    min_final_cltv_blocks: 5,
                },
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap(),
            )
            .unwrap();
            let stream = hub.open_stream(in_id, &invoice).unwrap().id;
            let m = ChannelMachine::new(
                chain_id,
                outgoing.next().unwrap(),
                Side::B,
                hub_key.public(),
                key.public(),
                msat,
                0,
            )
            .unwrap();
            payees.push(Payee { key, m, stream });
        }
        lanes.push(Lane {
            payer_m: ChannelMachine::new(
                chain_id,
                in_id,
                Side::A,
                payer.public(),
                hub_key.public(),
                msat,
                0,
            )
            .unwrap(),
            payer,
            payees,
        });
    }

    let base_before = baseline(2_000);
    let cpu_before = baseline_cpu(2_000);
    let links: Vec<Link> = (0..payers)
        .map(|_| match served {
            true => Link::serve(hub.clone()),
            false => Link::Direct(hub.clone()),
        })
        .collect();
    let start = Instant::now();
    let process_at = process_cpu();
    let handles: Vec<_> = lanes
        .into_iter()
        .zip(links)
        .map(|(mut lane, hub)| {
            let client = std::thread::Builder::new().name("client".into());
            client
                .spawn(move || {
                    let client_at = thread_cpu();
                    let mut lat = Vec::with_capacity(ticks * 3);
                    // One stream: an ordinary tick; more: a split tick, 10 000 msat each.
                    let streams: Vec<Hash256> = lane.payees.iter().map(|p| p.stream).collect();
                    let ctx = || match streams.as_slice() {
                        [one] => ProposalContext {
                            stream: Some(*one),
                            ..ProposalContext::default()
                        },
                        many => ProposalContext {
                            split: many
                                .iter()
                                .map(|s| StreamShare {
                                    stream: *s,
                                    amount_msat: doin_types::Msat::new(10_000),
                                    vote_optimae: None,
                                })
                                .collect(),
                            ..ProposalContext::default()
                        },
                    };
                    let tick_msat = 10_000 * streams.len() as u64;
                    // The Confirm of the previous tick, when pipelining.
                    let mut unsent: Option<Message> = None;
                    for t in 0..ticks {
                        let proposal = lane
                            .payer_m
                            .propose(
                                Change::Pay {
                                    amount_msat: tick_msat,
                                },
                                1,
                            )
                            .unwrap()
                            .send
                            .unwrap();
                        if pipeline {
                            let at = Instant::now();
                            let handled = match unsent.take() {
                                Some(confirm) => {
                                    hub.pipelined(&lane.payer_m.id(), confirm, proposal, ctx())
                                }
                                None => hub.handle(&lane.payer_m.id(), proposal, ctx()),
                            };
                            lat.push(at.elapsed());
                            let accept = handled.reply.unwrap();
                            unsent = lane.payer_m.handle(&lane.payer, accept, 1).unwrap().send;
                            assert!(unsent.is_some(), "the hub accepted the tick");
                        } else {
                            exchange(
                                &hub,
                                &lane.payer,
                                &mut lane.payer_m,
                                proposal,
                                ctx(),
                                &mut lat,
                            );
                        }
                        if t % pull_every == pull_every - 1 {
                            for payee in &mut lane.payees {
                                pull(&hub, payee, &mut lat);
                            }
                        }
                    }
                    if let Some(confirm) = unsent.take() {
                        let at = Instant::now();
                        hub.handle(&lane.payer_m.id(), confirm, ProposalContext::default());
                        lat.push(at.elapsed());
                    }
                    for payee in &mut lane.payees {
                        pull(&hub, payee, &mut lat);
                    }
                    (
                        lat,
                        lane.payees
                            .iter()
                            .map(|p| p.m.my_balance_msat())
                            .sum::<u64>(),
                        thread_cpu() - client_at,
                    )
                })
                .unwrap()
        })
        .collect();
    let mut lat = Vec::new();
    let mut paid_out = 0u64;
    let mut clients_cpu = Duration::ZERO;
    for h in handles {
        let (l, b, cpu) = h.join().unwrap();
        lat.extend(l);
        paid_out += b;
        clients_cpu += cpu;
    }
    let elapsed = start.elapsed();
    let process = process_cpu() - process_at;
    let hub_cpu = process.saturating_sub(clients_cpu);
    let base_after = baseline(2_000);
    let cpu_after = baseline_cpu(2_000);
    let base = (base_before + base_after) / 2.0;
    let base_cpu = (cpu_before + cpu_after) / 2.0;
    let all_cores = baseline_all_cores(2_000);
    let payments = (payers * ticks * split) as f64;
    let rate = payments / elapsed.as_secs_f64();
    lat.sort();
    // The hub's CPU per payment, in sign+verify pairs: what one payment costs the hub
    // itself, wherever its clients run.
    let hub_pairs = hub_cpu.as_secs_f64() / payments * base_cpu;
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    // Fees: 0.1 % of each 10 000 msat tick.
    assert_eq!(
        paid_out,
        (payers * ticks * split) as u64 * 9_990,
        "every tick reached its payee"
    );
    println!("baseline: {base:.0} sign+verify pairs per second (before {base_before:.0}, after {base_after:.0}); {all_cores:.0} on all cores, so at most {:.0} ticks per second with payers and hub on this machine (ratio {:.2})", all_cores / 2.0, all_cores / 2.0 / base);
    println!(
        "streamed payments: {payments:.0} in {:.2} s = {rate:.0} per second; ratio to sign+verify {:.2}",
        elapsed.as_secs_f64(),
        rate / base
    );
    if !served {
        println!(
            "CPU: {:.2} s in all = {:.1} µs per payment, hub and clients together (the hub's share is counted with DOIN_BENCH_SERVER_THREADS=1)",
            process.as_secs_f64(),
            process.as_secs_f64() * 1e6 / payments
        );
    } else {
        println!(
        "CPU: {:.2} s in all, clients (payers and payees: their signing, verifying and state) {:.2} s, the hub {:.2} s = {:.1} µs per payment = {hub_pairs:.2} sign+verify pairs ({base_cpu:.0} pairs per CPU second); payments per hub CPU second ÷ pairs per CPU second: {:.2}",
        process.as_secs_f64(),
        clients_cpu.as_secs_f64(),
        hub_cpu.as_secs_f64(),
        hub_cpu.as_secs_f64() * 1e6 / payments,
        1.0 / hub_pairs
    );
    }
    println!(
        "hub calls (each answered after its state is fsynced): {} ; latency p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
    let persist = &metrics.persist_seconds;
    let inputs = metrics.commit_inputs.get_sample_sum()
        / metrics.commit_inputs.get_sample_count().max(1) as f64;
    println!(
        "persist (queued to fsynced, per input, doin_hub_persist_seconds): {} inputs, mean {:.3} ms, p50 <= {} ms, p99 <= {} ms; {:.1} inputs per fsync",
        persist.get_sample_count(),
        persist.get_sample_sum() * 1000.0 / persist.get_sample_count().max(1) as f64,
        bucket_bound_ms(persist, 0.5),
        bucket_bound_ms(persist, 0.99),
        inputs
    );
}

/// The upper bound (ms) of the histogram bucket holding quantile `q` (bucket resolution).
fn bucket_bound_ms(h: &doin_telemetry::prometheus::Histogram, q: f64) -> String {
    use doin_telemetry::prometheus::core::Collector;
    let families = h.collect();
    let Some(m) = families.first().and_then(|f| f.get_metric().first()) else {
        return "?".into();
    };
    let hist = m.get_histogram();
    let total = hist.get_sample_count() as f64;
    for b in hist.get_bucket() {
        if b.cumulative_count() as f64 >= total * q {
            return format!("{}", b.upper_bound() * 1000.0);
        }
    }
    "inf".into()
}
