//! An optimae's whole life on chain: commit, reveal, votes, counted work, coinbase,
//! reputation; escalation to a second quorum; the per-domain cap; expiry; determinism.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use doin_main_core::*;
use doin_types::Timestamp;

#[test]
fn accepted_optimae_earns_work_rewards_and_reputation() {
    let mut c = chain();
    let claim = c.claim("sphere-a", 1); // params 0.1 each: loss 0.04, gain 99.96
    let id = c.commit_and_reveal(0, &claim);
    assert_eq!(c.tip.height, 2);
    assert_eq!(c.tip.counted_work, Fx::ZERO);
    assert!(
        c.blocks.iter().all(|b| b.body.coinbase.is_empty()),
        "carrier blocks mint nothing"
    );

    let v = c.honest_verdict(&id);
    assert_eq!(v.votes.len(), 3, "five evaluators give a quorum of three");
    let t = Timestamp(c.tip.time.0 + 1000);
    let built = c.extend(
        t,
        MainBody {
            verdicts: vec![v],
            ..Default::default()
        },
    );
    let h = &built.block.header;
    // gain 99.96 / scale 1 × weight 1 × factor 1 (reputation ≈ 20 ≥ 10) × fraction 1.
    assert_eq!(h.counted_work, Fx::parse("99.960000000").unwrap());
    assert_eq!(h.cumulative_work, h.counted_work.0 as u128);
    let d = &c.state.domains[&claim.domain];
    assert_eq!(d.best, claim.reported);
    assert_eq!(d.best_params, claim.params);
    assert_eq!(d.best_optimae, Some(id));

    // 50 DOIN: 65 % to the only optimizer, 30 % split over 3 agreeing evaluators, rest to the
    // producer (5 % plus the remainder of 15 DOIN / 3 = 5 DOIN each: none).
    let cb = &built.block.body.coinbase;
    let total: u64 = cb.iter().map(|p| p.amount.base_units()).sum();
    assert_eq!(total, 5_000_000_000);
    let opt: Vec<&Payout> = cb.iter().filter(|p| p.role == Role::Optimizer).collect();
    assert_eq!(opt.len(), 1);
    assert_eq!(opt[0].key, c.optimizers[0].public());
    assert_eq!(opt[0].amount.base_units(), 3_250_000_000);
    assert_eq!(cb.iter().filter(|p| p.role == Role::Evaluator).count(), 3);
    let prod: Vec<&Payout> = cb.iter().filter(|p| p.role == Role::Producer).collect();
    assert_eq!(prod[0].amount.base_units(), 250_000_000);
    assert_eq!(c.state.minted.base_units(), 5_000_000_000);

    // Reputation: optimizer 20 decayed over 3 blocks (half-life 1008) + 1; evaluators +0.4.
    let r = c.state.reputation[&c.optimizers[0].public()];
    assert!(r.value > Fx::parse("20.95").unwrap() && r.value < Fx::from_int(21));
    for k in c.quorum_keys_of_last_verdict() {
        assert_eq!(c.state.reputation[&k].value, Fx::ratio(4, 10));
    }
}

impl Chain {
    fn quorum_keys_of_last_verdict(&self) -> Vec<doin_types::PublicKeyBytes> {
        let b = self.blocks.last().unwrap();
        b.body.verdicts[0]
            .votes
            .iter()
            .map(|v| v.body.evaluator)
            .collect()
    }
}

#[test]
fn false_claim_is_rejected_and_penalized() {
    let mut c = chain();
    let mut claim = c.claim("sphere-a", 1);
    claim.reported = Fx::ZERO; // claims the optimum; the truth is 0.04
    let id = c.commit_and_reveal(1, &claim);
    let v = c.honest_verdict(&id);
    let t = c.carrier_time();
    let built = c.extend(
        t,
        MainBody {
            verdicts: vec![v],
            ..Default::default()
        },
    );
    assert!(matches!(
        built
            .applied
            .events
            .iter()
            .find(|e| matches!(e, OptimaeEvent::Rejected { .. })),
        Some(OptimaeEvent::Rejected { .. })
    ));
    assert_eq!(built.block.header.counted_work, Fx::ZERO);
    let r = c.state.reputation[&c.optimizers[1].public()];
    assert!(r.value < Fx::from_int(17) && r.value > Fx::parse("16.9").unwrap());
    let d = &c.state.domains[&claim.domain];
    assert_eq!(
        d.best,
        Fx::from_int(100),
        "a rejected optimae never sets the best"
    );
    assert_eq!(d.rejected, 1);
}

#[test]
fn disagreement_escalates_to_a_larger_second_quorum() {
    // Nine evaluators: round 1 has 3, round 2 has min(9, 7) = 7.
    let mut c = chain_with(9, |_| {});
    let claim = c.claim("sphere-a", 2);
    let id = c.commit_and_reveal(0, &claim);
    let truth = claim.reported;
    let v1 = c.verdict_with(&id, |i| Fx(truth.0 + (i as i64) * 1_000_000_000));
    let t = c.carrier_time();
    let built = c.extend(
        t,
        MainBody {
            verdicts: vec![v1],
            ..Default::default()
        },
    );
    assert!(built
        .applied
        .events
        .iter()
        .any(|e| matches!(e, OptimaeEvent::Escalated { .. })));
    assert_eq!(c.state.pending[&id].round, 2);
    let v2 = c.honest_verdict(&id);
    assert_eq!(v2.votes.len(), 7);
    let t = Timestamp(c.tip.time.0 + 1);
    let built = c.extend(
        t,
        MainBody {
            verdicts: vec![v2],
            ..Default::default()
        },
    );
    assert!(built
        .applied
        .events
        .iter()
        .any(|e| matches!(e, OptimaeEvent::Accepted { round: 2, .. })));
    assert!(built.block.header.counted_work > Fx::ZERO);
}

#[test]
fn two_domains_are_capped_at_sixty_percent_of_the_threshold_each() {
    let mut c = chain_with(5, |s| s.params.initial_threshold = Fx::from_int(50));
    let a = c.claim("sphere-a", 1);
    let b = c.claim("sphere-b", 1);
    let ka = c.optimizers[0].public();
    let kb = c.optimizers[1].public();
    let (ca, cb) = (
        c.commit(&c.optimizers[0], &a),
        c.commit(&c.optimizers[1], &b),
    );
    let (ra, rb) = (
        c.reveal(&c.optimizers[0], &a, &ca),
        c.reveal(&c.optimizers[1], &b, &cb),
    );
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            commits: vec![ca, cb],
            ..Default::default()
        },
    );
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            reveals: vec![ra.clone(), rb.clone()],
            ..Default::default()
        },
    );
    let (ia, ib) = (ra.body.optimae_id().unwrap(), rb.body.optimae_id().unwrap());
    let threshold = c.state.controller.threshold;
    let body = MainBody {
        verdicts: vec![c.honest_verdict(&ia), c.honest_verdict(&ib)],
        ..Default::default()
    };
    let t = Timestamp(c.tip.time.0 + 1);
    let built = c.extend(t, body);
    // Each domain earned 99.96 > 0.6 × threshold, so each counts exactly 60 %.
    let cap = threshold.checked_mul(Fx::ratio(6, 10)).unwrap();
    assert_eq!(built.block.header.counted_work, Fx(cap.0 * 2));
    let pay = |k| {
        built
            .block
            .body
            .coinbase
            .iter()
            .find(|p| p.role == Role::Optimizer && p.key == k)
            .unwrap()
            .amount
    };
    assert_eq!(pay(ka), pay(kb));
}

#[test]
fn undecided_optimae_and_unrevealed_commits_expire() {
    let mut c = chain();
    let claim = c.claim("sphere-a", 3);
    let id = c.commit_and_reveal(0, &claim);
    let unrevealed = c.commit(&c.optimizers[1], &c.claim("sphere-b", 3));
    let t = c.carrier_time();
    c.extend(
        t,
        MainBody {
            commits: vec![unrevealed],
            ..Default::default()
        },
    );
    let window = c.params.consensus.verdict_window;
    let mut expired = false;
    for i in 0..window {
        // Carrier blocks need content: a fresh commit each time keeps the chain moving.
        let cm = c.commit(&c.optimizers[1], &c.claim("sphere-b", 10 + i as i64));
        let t = c.carrier_time();
        let built = c.extend(
            t,
            MainBody {
                commits: vec![cm],
                ..Default::default()
            },
        );
        expired |= built
            .applied
            .events
            .contains(&OptimaeEvent::Expired { optimae_id: id });
    }
    assert!(expired);
    assert!(!c.state.pending.contains_key(&id));
    // One commit per block, each kept for its window plus one block.
    assert!(c.state.commits.len() <= c.params.consensus.reveal_window as usize + 1);
}

fn copy_key(k: &doin_crypto::KeyPair) -> doin_crypto::KeyPair {
    doin_crypto::KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

#[test]
fn same_inputs_give_the_same_blocks_on_two_fresh_chains() {
    let mut a = chain();
    // A second chain with the very same keys and genesis.
    let mut b = Chain {
        spec: a.spec.clone(),
        params: a.params.clone(),
        evaluators: a.evaluators.iter().map(copy_key).collect(),
        optimizers: a.optimizers.iter().map(copy_key).collect(),
        producer: copy_key(&a.producer),
        state: MainState::genesis(&a.spec).unwrap(),
        tip: a.tip.clone(),
        blocks: Vec::new(),
    };
    let claim = a.claim("sphere-a", 1);
    let cm = a.commit(&a.optimizers[0], &claim);
    let rv = a.reveal(&a.optimizers[0], &claim, &cm);
    let id = rv.body.optimae_id().unwrap();
    for ch in [&mut a, &mut b] {
        let t = ch.carrier_time();
        ch.extend(
            t,
            MainBody {
                commits: vec![cm.clone()],
                ..Default::default()
            },
        );
        let t = ch.carrier_time();
        ch.extend(
            t,
            MainBody {
                reveals: vec![rv.clone()],
                ..Default::default()
            },
        );
    }
    let v = a.honest_verdict(&id);
    for ch in [&mut a, &mut b] {
        let t = Timestamp(ch.tip.time.0 + 5);
        ch.extend(
            t,
            MainBody {
                verdicts: vec![v.clone()],
                ..Default::default()
            },
        );
    }
    let ha: Vec<_> = a.blocks.iter().map(|x| x.hash().unwrap()).collect();
    let hb: Vec<_> = b.blocks.iter().map(|x| x.hash().unwrap()).collect();
    assert_eq!(ha, hb);
    assert_eq!(a.state, b.state);
}

#[test]
fn blocks_round_trip_through_the_codec_and_reject_trailing_bytes() {
    let mut c = chain();
    let claim = c.claim("sphere-a", 1);
    let id = c.commit_and_reveal(0, &claim);
    let v = c.honest_verdict(&id);
    let t = c.carrier_time();
    let built = c.extend(
        t,
        MainBody {
            verdicts: vec![v],
            ..Default::default()
        },
    );
    let bytes = built.block.encode().unwrap();
    assert_eq!(MainBlock::decode(&bytes).unwrap(), built.block);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(MainBlock::decode(&trailing).is_err());
    assert!(MainBlock::decode(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn state_and_registrations_round_trip_through_the_codec() {
    let mut c = chain();
    let sponsor = doin_crypto::KeyPair::generate();
    let mut spec = sphere("ls");
    spec.objective = Objective::LeastSquares { samples: 16 };
    let ext = DomainSpec {
        id: DomainId::new("plugin-domain").unwrap(),
        objective: Objective::External {
            plugin: "py-quadratic".into(),
        },
        ..sphere("x")
    };
    let regs = [spec, ext]
        .into_iter()
        .map(|spec| {
            Signed::sign(
                DomainRegister {
                    chain_id: c.id(),
                    sponsor: sponsor.public(),
                    spec,
                },
                &sponsor,
            )
            .unwrap()
        })
        .collect();
    let t = c.carrier_time();
    let built = c.extend(
        t,
        MainBody {
            registrations: regs,
            ..Default::default()
        },
    );
    let bytes = built.block.encode().unwrap();
    assert_eq!(MainBlock::decode(&bytes).unwrap(), built.block);
    let state_bytes = doin_codec::encode(&c.state).unwrap();
    let back: MainState = doin_codec::decode_exact(&state_bytes).unwrap();
    assert_eq!(back, c.state);
    // JSON (genesis files, REST) uses decimal strings for fixed-point values.
    let json = serde_json::to_string(&c.spec).unwrap();
    assert!(
        json.contains("\"initial_threshold\":\"1.000000000\""),
        "{json}"
    );
    let spec: MainGenesisSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(spec, c.spec);
}
