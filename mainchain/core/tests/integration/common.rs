//! A small main chain in memory: genesis with two built-in domains, five evaluators, two
//! optimizers, and helpers that sign commits, reveals and votes and build blocks.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use doin_crypto::KeyPair;
use doin_main_core::*;
use doin_types::{Amount, Hash256, Network, Timestamp};

pub(crate) const T0: u64 = 1_700_000_000_000;

pub(crate) struct Chain {
    pub spec: MainGenesisSpec,
    pub params: MainChainParams,
    pub evaluators: Vec<KeyPair>,
    pub optimizers: Vec<KeyPair>,
    pub producer: KeyPair,
    pub state: MainState,
    pub tip: MainHeader,
    pub blocks: Vec<MainBlock>,
}

pub(crate) fn sphere(id: &str) -> DomainSpec {
    DomainSpec {
        id: DomainId::new(id).unwrap(),
        metric: "loss".into(),
        direction: Direction::Minimize,
        objective: Objective::Sphere,
        dim: 4,
        scale: Fx::ONE,
        weight: Fx::ONE,
        tolerance: Fx::ratio(1, 1000),
        baseline: Fx::from_int(100),
        eval_budget: 1000,
        verification_fee: Amount::ZERO,
    }
}

pub(crate) fn chain() -> Chain {
    chain_with(5, |_| {})
}

pub(crate) fn chain_with(evaluators: usize, tweak: impl FnOnce(&mut MainGenesisSpec)) -> Chain {
    let evaluators: Vec<KeyPair> = (0..evaluators).map(|_| KeyPair::generate()).collect();
    let optimizers: Vec<KeyPair> = (0..2).map(|_| KeyPair::generate()).collect();
    let domains = vec![sphere("sphere-a"), sphere("sphere-b")];
    let mut spec = MainGenesisSpec {
        network: Network::Devnet,
        chain_name: "main-core-test".into(),
        genesis_time: Timestamp(T0),
        params: MainParams {
            initial_threshold: Fx::ONE,
            ..MainParams::public_defaults()
        },
        evaluators: evaluators
            .iter()
            .map(|k| EvaluatorEntry {
                key: k.public(),
                domains: domains.iter().map(|d| d.id.clone()).collect(),
                stake: Amount::from_base_units(1),
                all_domains: false,
            })
            .collect(),
        domains,
        reputation: optimizers
            .iter()
            .map(|k| InitialReputation {
                key: k.public(),
                value: Fx::from_int(20),
            })
            .collect(),
    };
    tweak(&mut spec);
    let params = MainChainParams::from_genesis(&spec).unwrap();
    let state = MainState::genesis(&spec).unwrap();
    let tip = genesis_header(&params, &state, spec.genesis_time).unwrap();
    Chain {
        spec,
        params,
        evaluators,
        optimizers,
        producer: KeyPair::generate(),
        state,
        tip,
        blocks: Vec::new(),
    }
}

/// An optimae an optimizer intends to submit.
#[derive(Clone)]
pub(crate) struct Claim {
    pub domain: DomainId,
    pub params: Vec<Fx>,
    pub reported: Fx,
    pub salt: [u8; 32],
}

impl Chain {
    pub(crate) fn id(&self) -> doin_types::ChainId {
        self.params.chain_id
    }

    /// An honest claim: the reported metric is the true one.
    pub(crate) fn claim(&self, domain: &str, x: i64) -> Claim {
        let d = &self.state.domains[&DomainId::new(domain).unwrap()];
        let params = vec![Fx::ratio(x, 10); 4];
        let reported = evaluate_builtin(&d.spec, d.data_seed, &params).unwrap();
        Claim {
            domain: d.spec.id.clone(),
            params,
            reported,
            salt: [x as u8; 32],
        }
    }

    pub(crate) fn commit(&self, who: &KeyPair, c: &Claim) -> SignedCommit {
        let commitment = doin_main_core::msg::commitment(
            &c.domain,
            &who.public(),
            &c.params,
            c.reported,
            &c.salt,
        )
        .unwrap();
        Signed::sign(
            Commit {
                chain_id: self.id(),
                domain: c.domain.clone(),
                optimizer: who.public(),
                commitment,
            },
            who,
        )
        .unwrap()
    }

    pub(crate) fn reveal(&self, who: &KeyPair, c: &Claim, commit: &SignedCommit) -> SignedReveal {
        Signed::sign(
            Reveal {
                chain_id: self.id(),
                commit_id: commit.body.id().unwrap(),
                domain: c.domain.clone(),
                optimizer: who.public(),
                params: c.params.clone(),
                reported_metric: c.reported,
                salt: c.salt,
            },
            who,
        )
        .unwrap()
    }

    pub(crate) fn evaluator(&self, key: &doin_types::PublicKeyBytes) -> &KeyPair {
        self.evaluators.iter().find(|k| k.public() == *key).unwrap()
    }

    /// The quorum of the optimae's current round.
    pub(crate) fn quorum(&self, id: &OptimaeId) -> Vec<doin_types::PublicKeyBytes> {
        let p = &self.state.pending[id];
        let eligible = self.state.eligible(&p.domain);
        // Evaluators learn the seed (the reveal block's hash) as soon as that block exists;
        // the state records it when the next block is applied.
        let seed = p.quorum_seed.unwrap_or_else(|| self.hash0());
        doin_main_core::quorum::select(&eligible, &seed, id, p.round)
    }

    pub(crate) fn vote(
        &self,
        evaluator: &KeyPair,
        id: &OptimaeId,
        round: u8,
        metric: Fx,
    ) -> SignedVote {
        Signed::sign(
            Vote {
                chain_id: self.id(),
                optimae_id: *id,
                round,
                evaluator: evaluator.public(),
                metric,
            },
            evaluator,
        )
        .unwrap()
    }

    /// Every selected evaluator votes the true metric.
    pub(crate) fn honest_verdict(&self, id: &OptimaeId) -> Verdict {
        let p = &self.state.pending[id];
        let d = &self.state.domains[&p.domain];
        let metric = evaluate_builtin(&d.spec, d.data_seed, &p.params).unwrap();
        self.verdict_with(id, |_| metric)
    }

    pub(crate) fn verdict_with(&self, id: &OptimaeId, metric: impl Fn(usize) -> Fx) -> Verdict {
        let round = self.state.pending[id].round;
        Verdict {
            optimae_id: *id,
            round,
            votes: self
                .quorum(id)
                .iter()
                .enumerate()
                .map(|(i, k)| self.vote(self.evaluator(k), id, round, metric(i)))
                .collect(),
        }
    }

    /// Time of a carrier block on the current tip.
    pub(crate) fn carrier_time(&self) -> Timestamp {
        Timestamp(self.tip.time.0 + self.params.consensus.carrier_interval_ms)
    }

    pub(crate) fn build(&self, time: Timestamp, body: MainBody) -> Result<BuiltMain, BuildError> {
        build_block(
            &self.params,
            &self.state,
            &self.tip,
            MainContext {
                now: time,
                tx_chain: &NoTxChain,
            },
            &self.producer,
            &body,
        )
    }

    pub(crate) fn check(&self, block: &MainBlock) -> Result<AppliedMain, MainBlockError> {
        apply_block(
            &self.params,
            &self.state,
            &self.tip,
            block,
            MainContext {
                now: Timestamp(block.header.time.0),
                tx_chain: &NoTxChain,
            },
        )
    }

    /// Builds, imports (with the importer's rules) and advances.
    pub(crate) fn extend(&mut self, time: Timestamp, body: MainBody) -> BuiltMain {
        let built = self.build(time, body).expect("build");
        let applied = self.check(&built.block).expect("import");
        self.state = applied.state;
        self.tip = built.block.header.clone();
        self.blocks.push(built.block.clone());
        built
    }

    /// Commit in a carrier block, reveal in the next: returns the optimae id.
    pub(crate) fn commit_and_reveal(&mut self, who: usize, c: &Claim) -> OptimaeId {
        let key = &self.optimizers[who];
        let cm = self.commit(key, c);
        let rv = self.reveal(key, c, &cm);
        let t = self.carrier_time();
        self.extend(
            t,
            MainBody {
                commits: vec![cm],
                ..Default::default()
            },
        );
        let t = self.carrier_time();
        self.extend(
            t,
            MainBody {
                reveals: vec![rv.clone()],
                ..Default::default()
            },
        );
        rv.body.optimae_id().unwrap()
    }

    /// Re-signs `header` with the producer after an edit (the body root is recomputed).
    pub(crate) fn resign(&self, mut header: MainHeader, body: MainBody) -> MainBlock {
        header.body_root = body.root().unwrap();
        MainBlock::sign(header, body, &self.producer).unwrap()
    }

    pub(crate) fn hash0(&self) -> Hash256 {
        self.tip.hash().unwrap()
    }
}
