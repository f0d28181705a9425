//! Main-block validation time with K votes per optimae, next to BIP340 verification measured in
//! the same run (timings are reported, never asserted).
//!
//! Run (release): `taskset -c 0 cargo bench --workspace --bench main_validation`
//! Optional: `DOIN_BENCH_OPTIMAE=20 DOIN_BENCH_REPS=10`.
//!
//! For each quorum size K (3, 5, 10, 15; N = K² eligible evaluators) a block decides
//! `DOIN_BENCH_OPTIMAE` optimae with K votes each; `apply_block` (every rule, every signature,
//! quorum selection over all N evaluators, state root) is timed on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/integration/common.rs"]
mod common;

use common::*;
use doin_crypto::{verify, KeyPair};
use doin_main_core::*;
use doin_types::{Hash256, Timestamp};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let optimae = env_usize("DOIN_BENCH_OPTIMAE", 20);
    let reps = env_usize("DOIN_BENCH_REPS", 10).max(1);

    // Baseline: BIP340 verifications per second.
    let key = KeyPair::generate();
    let msgs: Vec<(Hash256, doin_types::SignatureBytes)> = (0..2000u32)
        .map(|i| {
            let m = doin_crypto::tagged_hash("bench", &i.to_le_bytes());
            (m, key.sign(&m))
        })
        .collect();
    let pk = key.public();
    let start = Instant::now();
    for (m, s) in &msgs {
        verify(&pk, m, s).unwrap();
    }
    let verify_rate = msgs.len() as f64 / start.elapsed().as_secs_f64();

    println!("{optimae} optimae decided per block, median of {reps} validations\n");
    println!("| K (votes per optimae) | N evaluators | votes in block | block validation ms | µs per vote | votes/s ÷ BIP340 verifies/s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for k in [3usize, 5, 10, 15] {
        let n = k * k;
        let mut c = chain_with(n, |s| {
            s.params.initial_threshold = Fx::ratio(1, 1000);
            s.params.max_commits = 4096;
            s.params.max_reveals = 4096;
        });
        // Commit and reveal `optimae` claims (alternating optimizers and domains).
        let claims: Vec<(usize, Claim)> = (0..optimae)
            .map(|i| {
                let domain = if i % 2 == 0 { "sphere-a" } else { "sphere-b" };
                (i % 2, c.claim(domain, (i / 2) as i64 % 9 + 1))
            })
            .collect();
        let mut commits = Vec::new();
        let mut reveals = Vec::new();
        for (i, (who, cl)) in claims.iter().enumerate() {
            let mut cl = cl.clone();
            cl.salt = [i as u8; 32];
            let cm = c.commit(&c.optimizers[*who], &cl);
            reveals.push(c.reveal(&c.optimizers[*who], &cl, &cm));
            commits.push(cm);
        }
        let t = c.carrier_time();
        c.extend(
            t,
            MainBody {
                commits,
                ..Default::default()
            },
        );
        let ids: Vec<OptimaeId> = reveals
            .iter()
            .map(|r| r.body.optimae_id().unwrap())
            .collect();
        let t = c.carrier_time();
        c.extend(
            t,
            MainBody {
                reveals,
                ..Default::default()
            },
        );
        let verdicts: Vec<Verdict> = ids
            .iter()
            .filter(|id| c.state.pending.contains_key(*id))
            .map(|id| c.honest_verdict(id))
            .collect();
        let votes: usize = verdicts.iter().map(|v| v.votes.len()).sum();
        let built = c
            .build(
                Timestamp(c.tip.time.0 + 1000),
                MainBody {
                    verdicts,
                    ..Default::default()
                },
            )
            .unwrap();
        let times: Vec<f64> = (0..reps)
            .map(|_| {
                let s = Instant::now();
                c.check(&built.block).unwrap();
                s.elapsed().as_secs_f64()
            })
            .collect();
        let t = median(times);
        let per_vote = t / votes as f64;
        println!(
            "| {k} | {n} | {votes} | {:.2} | {:.1} | {:.2} |",
            t * 1e3,
            per_vote * 1e6,
            (1.0 / per_vote) / verify_rate
        );
    }
    println!("\nBIP340 verify baseline: {verify_rate:.0}/s");
}
