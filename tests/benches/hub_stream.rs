//! Streamed payments per second through one hub with durable state, as a ratio to the cost of
//! one BIP340 signature plus one verification measured in the same run (DESIGN §11: timings
//! are reported, never asserted).
//!
//! Run (release): `cargo bench --workspace --bench hub_stream`
//! Optional: `DOIN_BENCH_PAYERS=8 DOIN_BENCH_TICKS=2000 DOIN_BENCH_PULL_EVERY=16
//! DOIN_BENCH_PIPELINE=1` (0: Confirm and the next proposal in separate calls).
//!
//! Setup: a real transfer chain (RocksDB) where every payer opens a channel to the hub and the
//! hub one to every payer's payee, and a stream per payer set up by the payee's invoice; the hub
//! has its own RocksDB with group commit. Measured: payer threads each pay ticks into their
//! stream as fast as the hub answers — one tick is one update signed by both (propose, accept,
//! confirm), persisted by the hub with fsync before each answer; pipelined, the payer sends each
//! tick's Confirm with the next tick's proposal — and every few ticks the payee takes what the
//! hub pays out (one more update, batching those ticks). A "payment" is one tick.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::{create_invoice, Change, ChannelMachine, InvoiceTerms, Message};
use doin_crypto::{verify, KeyPair};
use doin_hub::{Hub, HubConfig, HubStore, ProposalContext};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_tx_core::channel::{channel_id, sha256, ChannelId, Side};
use doin_tx_core::{Allocation, ConsensusParams, GenesisSpec, Tx, TxBody, TxPayload};
use doin_types::{Amount, Hash256, Network, Timestamp};
use std::sync::Arc;
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

struct Lane {
    payer: KeyPair,
    payee: KeyPair,
    payer_m: ChannelMachine,
    payee_m: ChannelMachine,
    stream: Hash256,
}

fn exchange(
    hub: &Hub,
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
        let handled = hub
            .handle(&id, msg, ctx.take().unwrap_or_default())
            .unwrap();
        lat.push(t.elapsed());
        let Some(reply) = handled.reply else { break };
        next = m.handle(key, reply, 1).unwrap().send;
    }
}

/// Takes every payout the hub has waiting for the lane's payee.
fn pull(hub: &Hub, lane: &mut Lane, lat: &mut Vec<Duration>) {
    while let Some(p) = hub.outbox(&lane.payee_m.id()).unwrap() {
        let accept = lane
            .payee_m
            .handle(&lane.payee, p, 1)
            .unwrap()
            .send
            .unwrap();
        exchange(
            hub,
            &lane.payee,
            &mut lane.payee_m,
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
    let ticks = env_usize("DOIN_BENCH_TICKS", 2_000);
    let pull_every = env_usize("DOIN_BENCH_PULL_EVERY", 16).max(1);
    println!("setup: {payers} payers, {ticks} ticks each, the payee takes its payout every {pull_every} ticks, pipelined: {pipeline}");
    let dir = tempfile::tempdir().unwrap();
    let (validator, hub_key) = (KeyPair::generate(), KeyPair::generate());
    let pairs: Vec<(KeyPair, KeyPair)> = (0..payers)
        .map(|_| (KeyPair::generate(), KeyPair::generate()))
        .collect();
    let fund = |k: &KeyPair| Allocation {
        key: k.public(),
        amount: Amount::from_base_units(100_000_000_000),
    };
    let mut allocations = vec![fund(&hub_key)];
    allocations.extend(pairs.iter().map(|(p, _)| fund(p)));
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
    let deposit = 1_000_000_000u64; // base units, each side
    let mut outgoing = Vec::new();
    for (payer, payee) in &pairs {
        outgoing.push(
            hub.open_outgoing(payee.public(), Amount::from_base_units(deposit))
                .unwrap(),
        );
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
    for (i, (payer, payee)) in pairs.into_iter().enumerate() {
        let in_id: ChannelId = channel_id(&chain_id, &payer.public(), 0);
        hub.register_incoming(in_id).unwrap();
        let invoice = create_invoice(
            Network::Devnet,
            &payee,
            &InvoiceTerms {
                amount_msat: msat,
                payment_hash: Hash256(sha256(&[i as u8; 32])),
                payment_secret: [1; 32],
                description: "bench".into(),
                expiry_secs: 3_600,
                min_final_cltv_blocks: 5,
            },
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap(),
        )
        .unwrap();
        let stream = hub.open_stream(in_id, &invoice).unwrap().id;
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
            payee_m: ChannelMachine::new(
                chain_id,
                outgoing[i],
                Side::B,
                hub_key.public(),
                payee.public(),
                msat,
                0,
            )
            .unwrap(),
            payer,
            payee,
            stream,
        });
    }

    let base_before = baseline(2_000);
    let start = Instant::now();
    let handles: Vec<_> = lanes
        .into_iter()
        .map(|mut lane| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(ticks * 3);
                let stream = lane.stream;
                let ctx = || ProposalContext {
                    stream: Some(stream),
                    invoice: None,
                    vote: None,
                };
                // The Confirm of the previous tick, when pipelining.
                let mut unsent: Option<Message> = None;
                for t in 0..ticks {
                    let proposal = lane
                        .payer_m
                        .propose(
                            Change::Pay {
                                amount_msat: 10_000,
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
                                hub.handle_pipelined(&lane.payer_m.id(), confirm, proposal, ctx())
                            }
                            None => hub.handle(&lane.payer_m.id(), proposal, ctx()),
                        }
                        .unwrap();
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
                        pull(&hub, &mut lane, &mut lat);
                    }
                }
                if let Some(confirm) = unsent.take() {
                    let at = Instant::now();
                    hub.handle(&lane.payer_m.id(), confirm, ProposalContext::default())
                        .unwrap();
                    lat.push(at.elapsed());
                }
                pull(&hub, &mut lane, &mut lat);
                (lat, lane.payee_m.my_balance_msat())
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut paid_out = 0u64;
    for h in handles {
        let (l, b) = h.join().unwrap();
        lat.extend(l);
        paid_out += b;
    }
    let elapsed = start.elapsed();
    let base_after = baseline(2_000);
    let base = (base_before + base_after) / 2.0;
    let payments = (payers * ticks) as f64;
    let rate = payments / elapsed.as_secs_f64();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    // Fees: 0.1 % of each 10 000 msat tick.
    assert_eq!(
        paid_out,
        (payers * ticks) as u64 * 9_990,
        "every tick reached its payee"
    );
    println!("baseline: {base:.0} sign+verify pairs per second (before {base_before:.0}, after {base_after:.0})");
    println!(
        "streamed payments: {payments:.0} in {:.2} s = {rate:.0} per second; ratio to sign+verify {:.2}",
        elapsed.as_secs_f64(),
        rate / base
    );
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
