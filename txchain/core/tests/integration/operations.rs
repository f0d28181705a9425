//! Account operations add up: over random chains of every payload kind and anchored main-chain
//! credits and slashes, each account's operations, summed from genesis, are its balance at every
//! height; each operation's `balance_after` and `nonce_after` continue from the one before, across
//! blocks; and each stake's movements sum to what the stake holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, build_and_import, fixture, signed, Fixture, MainChainStub};
use doin_crypto::KeyPair;
use doin_tx_core::channel::{channel_id, ChannelId, ChannelState, OpenConsent, SignedChannelState};
use doin_tx_core::state::StateView;
use doin_tx_core::{
    BatchOutput, BlockHeader, GenesisStake, OperationKind, SettledOperation, StakeRole, Tx,
    TxPayload,
};
use doin_types::{Amount, PublicKeyBytes, Slash, SlashReason};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const USERS: usize = 4;
const VALIDATOR_STAKE: u64 = 5_000;
const MAIN_BLOCKS: u64 = 40;

#[derive(Clone, Debug)]
enum Step {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Stake {
        from: usize,
        role: StakeRole,
        amount: u64,
    },
    Unstake {
        from: usize,
        role: StakeRole,
        amount: u64,
    },
    Withdraw {
        from: usize,
        role: StakeRole,
    },
    Open {
        from: usize,
        to: usize,
        deposit_a: u64,
        deposit_b: u64,
    },
    CoopClose {
        which: usize,
        a_share_ppm: u64,
    },
    ForceClose {
        which: usize,
        by_b: bool,
    },
    Settle {
        which: usize,
        by: usize,
    },
    ReportDoubleSign {
        by: usize,
    },
    /// Lets the next block anchor up to this many more main blocks.
    Anchor {
        blocks: u64,
    },
    Batch {
        from: usize,
        outputs: Vec<(usize, u64)>,
    },
}

fn role() -> impl Strategy<Value = StakeRole> {
    prop_oneof![
        Just(StakeRole::Validator),
        Just(StakeRole::Evaluator),
        Just(StakeRole::Optimizer)
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let user = 0..USERS;
    prop_oneof![
        4 => (user.clone(), 0..USERS, 1u64..50_000).prop_map(|(from, to, amount)| Step::Transfer { from, to, amount }),
        2 => (user.clone(), role(), 100u64..20_000).prop_map(|(from, role, amount)| Step::Stake { from, role, amount }),
        1 => (user.clone(), role(), 1u64..20_000).prop_map(|(from, role, amount)| Step::Unstake { from, role, amount }),
        1 => (user.clone(), role()).prop_map(|(from, role)| Step::Withdraw { from, role }),
        2 => (user.clone(), 0..USERS, 0u64..30_000, prop_oneof![Just(0u64), 1u64..30_000])
            .prop_map(|(from, to, deposit_a, deposit_b)| Step::Open { from, to, deposit_a, deposit_b }),
        1 => (0usize..8, 0u64..=1_000_000).prop_map(|(which, a_share_ppm)| Step::CoopClose { which, a_share_ppm }),
        1 => (0usize..8, any::<bool>()).prop_map(|(which, by_b)| Step::ForceClose { which, by_b }),
        1 => (0usize..8, user.clone()).prop_map(|(which, by)| Step::Settle { which, by }),
        1 => user.prop_map(|by| Step::ReportDoubleSign { by }),
        2 => (1u64..4).prop_map(|blocks| Step::Anchor { blocks }),
        2 => (0..USERS, proptest::collection::vec((0..USERS, 1u64..10_000), 1..6))
            .prop_map(|(from, outputs)| Step::Batch { from, outputs }),
    ]
}

struct OpenChannel {
    id: ChannelId,
    a: usize,
    b: usize,
    capacity: u64,
}

/// A chain under test, with every operation it produced so far.
struct World {
    f: Fixture,
    main: MainChainStub,
    tip: BlockHeader,
    channels: Vec<OpenChannel>,
    ops: Vec<SettledOperation>,
}

impl World {
    fn new() -> World {
        let mut f = fixture(USERS);
        // The validator holds a stake (so double signing can be reported), and one user starts
        // with an optimizer stake: genesis stakes are operations too.
        f.spec.stakes.push(GenesisStake {
            key: f.validator.public(),
            role: StakeRole::Validator,
            amount: Amount::from_base_units(VALIDATOR_STAKE),
            domains: Vec::new(),
        });
        f.spec.stakes.push(GenesisStake {
            key: f.users[3].public(),
            role: StakeRole::Optimizer,
            amount: Amount::from_base_units(10_000),
            domains: Vec::new(),
        });
        common::regenesis(&mut f);
        let (_, applied) =
            doin_tx_core::genesis(&f.spec, &doin_tx_core::memtree::MemoryState::new()).unwrap();
        // Main block h pays each of two users and, every fifth block, slashes a user's stake.
        let payees: Vec<PublicKeyBytes> = f.users[..2].iter().map(|u| u.public()).collect();
        let mut main = MainChainStub::with_blocks(MAIN_BLOCKS, &payees);
        for (h, e) in main.blocks.iter_mut() {
            if h % 5 == 0 {
                let reason = if h % 10 == 0 {
                    SlashReason::WrongVote
                } else {
                    SlashReason::RejectedOptimae
                };
                e.slashes.push(Slash {
                    key: f.users[(*h as usize / 5) % USERS].public(),
                    reason,
                });
            }
        }
        let tip = f.genesis.header.clone();
        World {
            f,
            main,
            tip,
            channels: Vec::new(),
            ops: applied.operations,
        }
    }

    fn key(&self, i: usize) -> KeyPair {
        KeyPair::from_secret_bytes(&self.f.users[i].secret_bytes()).unwrap()
    }

    /// The sender and payload of `step`; `nonces` are the senders' next nonces.
    fn payload(
        &mut self,
        step: &Step,
        nonces: &BTreeMap<usize, u64>,
    ) -> Option<(usize, TxPayload)> {
        let units = Amount::from_base_units;
        let chain_id = self.f.params.chain_id;
        let payload = match step {
            Step::Transfer { from, to, amount } => (
                *from,
                TxPayload::Transfer {
                    to: self.f.users[*to].public(),
                    amount: units(*amount),
                },
            ),
            Step::Stake { from, role, amount } => (
                *from,
                TxPayload::Stake {
                    role: *role,
                    amount: units(*amount),
                    domains: if *role == StakeRole::Evaluator {
                        vec!["sphere".into()]
                    } else {
                        Vec::new()
                    },
                },
            ),
            Step::Unstake { from, role, amount } => (
                *from,
                TxPayload::Unstake {
                    role: *role,
                    amount: units(*amount),
                },
            ),
            Step::Withdraw { from, role } => (*from, TxPayload::Withdraw { role: *role }),
            Step::Open {
                from,
                to,
                deposit_a,
                deposit_b,
            } => {
                let (a, b) = (self.key(*from), self.key(*to));
                let id = channel_id(&chain_id, &a.public(), nonces[from]);
                let consent = (*deposit_b > 0).then(|| {
                    let terms = OpenConsent {
                        channel_id: id,
                        party_a: a.public(),
                        party_b: b.public(),
                        deposit_a: units(*deposit_a),
                        deposit_b: units(*deposit_b),
                        dispute_blocks: 1,
                    };
                    b.sign(&terms.signing_hash(&chain_id).unwrap())
                });
                self.channels.push(OpenChannel {
                    id,
                    a: *from,
                    b: *to,
                    capacity: deposit_a + deposit_b,
                });
                (
                    *from,
                    TxPayload::ChannelOpen {
                        counterparty: b.public(),
                        deposit: units(*deposit_a),
                        counterparty_deposit: units(*deposit_b),
                        dispute_blocks: 1,
                        consent,
                    },
                )
            }
            Step::CoopClose { which, a_share_ppm } => {
                let ch = self.channels.get(*which)?;
                let capacity_msat = ch.capacity * 1_000;
                // Odd milli-units leave a rounding remainder to burn.
                let a_msat = capacity_msat / 1_000_000 * a_share_ppm + a_share_ppm % 7;
                let a_msat = a_msat.min(capacity_msat);
                let state = ChannelState {
                    channel_id: ch.id,
                    seq: 1,
                    balance_a_msat: a_msat,
                    balance_b_msat: capacity_msat - a_msat,
                    htlcs: Vec::new(),
                };
                let hash = state.signing_hash(&chain_id).unwrap();
                let signed = SignedChannelState {
                    sig_a: self.key(ch.a).sign(&hash),
                    sig_b: self.key(ch.b).sign(&hash),
                    state,
                };
                (
                    ch.b,
                    TxPayload::ChannelCoopClose {
                        state: Box::new(signed),
                    },
                )
            }
            Step::ForceClose { which, by_b } => {
                let ch = self.channels.get(*which)?;
                (
                    if *by_b { ch.b } else { ch.a },
                    TxPayload::ChannelForceClose {
                        channel: ch.id,
                        state: None,
                    },
                )
            }
            Step::Settle { which, by } => {
                let ch = self.channels.get(*which)?;
                (*by, TxPayload::ChannelSettle { channel: ch.id })
            }
            Step::ReportDoubleSign { by } => (
                *by,
                TxPayload::ReportEquivocation {
                    evidence: Box::new(crate::evidence::evidence(&chain_id, &self.f.validator)),
                },
            ),
            Step::Batch { from, outputs } => (
                *from,
                TxPayload::BatchTransfer {
                    outputs: outputs
                        .iter()
                        .map(|(to, amount)| BatchOutput {
                            to: self.f.users[*to].public(),
                            amount: units(*amount),
                        })
                        .collect(),
                },
            ),
            Step::Anchor { .. } => return None,
        };
        Some(payload)
    }

    /// One block of `steps` (those the builder refuses are skipped, as a node's would be).
    fn block(&mut self, steps: &[Step]) {
        let mut next_nonce: BTreeMap<usize, u64> = (0..USERS)
            .map(|i| {
                let key = self.f.users[i].public();
                (
                    i,
                    self.f
                        .state
                        .account(&key)
                        .unwrap()
                        .unwrap_or_default()
                        .nonce,
                )
            })
            .collect();
        let mut txs = Vec::new();
        for step in steps {
            if let Step::Anchor { blocks } = step {
                let reached = self.main.candidate.map_or(0, |a| a.height);
                let to = (reached + blocks).min(MAIN_BLOCKS);
                self.main.candidate = Some(self.main.anchor(to));
                continue;
            }
            let Some((from, payload)) = self.payload(step, &next_nonce) else {
                continue;
            };
            let nonce = next_nonce[&from];
            next_nonce.insert(from, nonce + 1);
            let tx = signed(&self.f, &self.f.users[from], nonce, payload, 100, 1);
            txs.push(Tx::from_signed(tx).unwrap());
        }
        let parent = self.tip.clone();
        let (block, _skipped) = build_and_import(&mut self.f, &self.main, &parent, txs);
        self.tip = block.header;
        self.ops.append(&mut self.f.last_operations);
    }

    /// Every account's operations add up to its state, and each continues from the last.
    fn check(&self) -> Result<(), TestCaseError> {
        let mut running: BTreeMap<PublicKeyBytes, (u128, u64)> = BTreeMap::new();
        let mut stakes: BTreeMap<(PublicKeyBytes, StakeRole), i128> = BTreeMap::new();
        for s in &self.ops {
            let (balance, nonce) = running.entry(s.op.account).or_default();
            prop_assert_eq!(
                u128::from(s.balance_before().unwrap().base_units()),
                *balance
            );
            prop_assert_eq!(s.nonce_before(), *nonce);
            *balance = *balance + u128::from(s.op.credit.base_units())
                - u128::from(s.op.debit.base_units());
            *nonce = s.nonce_after;
            prop_assert_eq!(u128::from(s.balance_after.base_units()), *balance);
            if let Some(role) = s.op.role {
                let change = i128::from(s.op.stake_change.base_units());
                let held = stakes.entry((s.op.account, role)).or_default();
                match s.op.kind {
                    OperationKind::Genesis | OperationKind::Stake => *held += change,
                    OperationKind::Withdraw | OperationKind::Slash => *held -= change,
                    // Unbonding moves coins within the stake.
                    _ => {}
                }
            }
            if s.op.kind == OperationKind::Fee {
                prop_assert_eq!(
                    s.op.debit.base_units(),
                    s.op.burned.base_units() + s.op.tip.base_units()
                );
            }
        }
        let mut keys: BTreeSet<PublicKeyBytes> = self.f.users.iter().map(|u| u.public()).collect();
        keys.insert(self.f.validator.public());
        for key in keys {
            let account = self.f.state.account(&key).unwrap().unwrap_or_default();
            let (balance, nonce) = running.get(&key).copied().unwrap_or_default();
            prop_assert_eq!(balance, u128::from(account.balance.base_units()));
            prop_assert_eq!(nonce, account.nonce);
            for role in [
                StakeRole::Validator,
                StakeRole::Evaluator,
                StakeRole::Optimizer,
            ] {
                let held = self
                    .f
                    .state
                    .stake(&key, role)
                    .unwrap()
                    .map_or(0, |s| i128::from(s.locked().unwrap().base_units()));
                prop_assert_eq!(stakes.get(&(key, role)).copied().unwrap_or(0), held);
            }
        }
        Ok(())
    }

    fn kinds(&self) -> BTreeSet<&'static str> {
        self.ops.iter().map(|s| s.op.kind.as_str()).collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn operations_sum_to_every_balance_and_stake_at_every_height(
        steps in proptest::collection::vec(step(), 1..80),
        block_size in 1usize..10,
    ) {
        let mut w = World::new();
        w.check()?;
        for chunk in steps.chunks(block_size) {
            w.block(chunk);
            w.check()?;
        }
    }
}

#[test]
fn a_scripted_chain_produces_every_kind_of_operation() {
    let mut w = World::new();
    use Step::*;
    let script = vec![
        vec![
            Anchor { blocks: 3 },
            Transfer {
                from: 0,
                to: 1,
                amount: 500,
            },
        ],
        vec![Stake {
            from: 2,
            role: StakeRole::Evaluator,
            amount: 1_000,
        }],
        vec![Unstake {
            from: 2,
            role: StakeRole::Evaluator,
            amount: 1_000,
        }],
        vec![Open {
            from: 0,
            to: 1,
            deposit_a: 5_000,
            deposit_b: 2_000,
        }],
        vec![Open {
            from: 1,
            to: 2,
            deposit_a: 3_000,
            deposit_b: 0,
        }],
        vec![
            CoopClose {
                which: 0,
                a_share_ppm: 400_000,
            },
            ForceClose {
                which: 1,
                by_b: true,
            },
        ],
        vec![],
        vec![
            Settle { which: 1, by: 3 },
            Withdraw {
                from: 2,
                role: StakeRole::Evaluator,
            },
        ],
        vec![ReportDoubleSign { by: 3 }, Anchor { blocks: 3 }],
        vec![Batch {
            from: 0,
            outputs: vec![(1, 10), (2, 20), (1, 30), (0, 5)],
        }],
        vec![],
    ];
    for steps in &script {
        w.block(steps);
        w.check().unwrap();
    }
    let all: BTreeSet<&str> = OperationKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(w.kinds(), all, "every kind shows up");
}
