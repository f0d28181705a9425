//! The two-party channel state machine, sans I/O: one party's view of one channel.
//!
//! Every change to a channel is one **update** of three messages:
//!
//! 1. `Propose { seq, change }` — the proposer names a change on top of the latest state both
//!    signed; it signs nothing yet;
//! 2. `Accept { seq, sig }` — the acceptor checks the change is one it may accept (see
//!    [`Change`]), signs the resulting state and sends its signature;
//! 3. `Confirm { seq, sig }` — the proposer signs too; both now hold the state signed by both.
//!
//! Safety rests on one invariant: **a party signs at most one state per `seq`, and only a
//! state extending the latest state both signed.** So two different fully signed states at one
//! `seq` cannot exist, and the newest fully signed state supersedes every older one on chain.
//! When both parties propose at once, A's proposal wins: B drops its own (it signed nothing for
//! it) and the caller proposes it again later.
//!
//! Any message can be lost, and its sender cannot tell: it sends it again and gets the same
//! answer. A proposal already signed gets the same `Accept`; an `Accept` of an update already
//! complete gets the `Confirm` again; a `Confirm` already applied changes nothing. So a party
//! left with an update in flight (or unsure its `Confirm` arrived) recovers by resending.
//!
//! The machine returns [`Output`]s and never touches a disk, a socket or a clock: the caller
//! persists [`Output::persist`] **before** sending [`Output::send`] (a signature must never
//! leave the process ahead of the state it commits to) and then acts on the events. Heights
//! come in as arguments (HTLC expiry checks).

use crate::ChannelError;
use doin_crypto::{verify, KeyPair};
use doin_tx_core::channel::{
    sha256, ChannelId, ChannelState, Htlc, Side, SignedChannelState, MAX_HTLCS,
};
use doin_types::{ChainId, Hash256, Height, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

/// A change one update makes. Who may propose it (the acceptor checks):
/// - `Pay`: moves the proposer's money to the acceptor;
/// - `AddHtlc`: locks the proposer's money in an HTLC offered to the acceptor, expiring after
///   the acceptor's current height;
/// - `FulfillHtlc`: the proposer shows the preimage of an HTLC the acceptor offered, before
///   it expires, and takes it;
/// - `FailHtlc`: the proposer gives up an HTLC the acceptor offered (money back to the
///   acceptor);
/// - `ExpireHtlc`: the proposer takes back its own HTLC once it has expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Pay {
        amount_msat: u64,
    },
    AddHtlc {
        amount_msat: u64,
        payment_hash: Hash256,
        expiry: Height,
    },
    FulfillHtlc {
        preimage: [u8; 32],
    },
    FailHtlc {
        payment_hash: Hash256,
    },
    ExpireHtlc {
        payment_hash: Hash256,
    },
}

/// What the parties send each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Propose {
        channel_id: ChannelId,
        seq: u64,
        change: Change,
    },
    Accept {
        channel_id: ChannelId,
        seq: u64,
        sig: SignatureBytes,
    },
    Confirm {
        channel_id: ChannelId,
        seq: u64,
        sig: SignatureBytes,
    },
    /// The receiver will not sign this proposal (the reason is for logs).
    Reject {
        channel_id: ChannelId,
        seq: u64,
        reason: String,
    },
}

/// Largest encoded message accepted.
pub const MAX_MESSAGE_BYTES: usize = 1_024;

impl Message {
    pub fn encode(&self) -> Result<Vec<u8>, ChannelError> {
        doin_codec::encode(self).map_err(|e| ChannelError::Encoding(e.to_string()))
    }

    /// Decodes a message from the other party: oversize input and trailing bytes are refused.
    pub fn decode(bytes: &[u8]) -> Result<Message, ChannelError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(ChannelError::Malformed(format!(
                "{} bytes, more than the {MAX_MESSAGE_BYTES} allowed",
                bytes.len()
            )));
        }
        doin_codec::decode_exact_bounded(bytes, MAX_MESSAGE_BYTES)
            .map_err(|e| ChannelError::Malformed(e.to_string()))
    }

    pub fn channel_id(&self) -> &ChannelId {
        match self {
            Message::Propose { channel_id, .. }
            | Message::Accept { channel_id, .. }
            | Message::Confirm { channel_id, .. }
            | Message::Reject { channel_id, .. } => channel_id,
        }
    }
}

/// What happened, for the caller to act on once it has persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An update is signed by both: `change` by `proposer` is now in the latest state.
    Completed {
        seq: u64,
        proposer: Side,
        change: Change,
    },
    /// This party's own proposal lost a race and was dropped; propose it again.
    Dropped { change: Change },
    /// The other party refused this party's proposal.
    Rejected { change: Change, reason: String },
}

/// The result of one input: persist `persist` first, then send `send`, then handle `events`.
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use = "persist the snapshot before sending the message, then handle the events"]
pub struct Output {
    pub persist: Option<Snapshot>,
    pub send: Option<Message>,
    pub events: Vec<Event>,
}

/// An update in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InFlight {
    /// This party proposed `change`; the state it makes is `state`.
    Proposed { change: Change, state: ChannelState },
    /// This party accepted the other's `change` and signed `state`.
    Accepted {
        change: Change,
        state: ChannelState,
        sig: SignatureBytes,
    },
}

/// Everything a party must keep of a channel (its keys excepted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub chain_id: ChainId,
    pub me: Side,
    pub party_a: PublicKeyBytes,
    pub party_b: PublicKeyBytes,
    pub capacity_msat: u64,
    /// The newest state signed by both (seq 0 is the opening split, which needs no
    /// signatures on chain: its signatures are empty).
    pub latest: SignedChannelState,
    pub in_flight: Option<InFlight>,
}

/// One party's view of one channel.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelMachine {
    s: Snapshot,
}

fn other_key(s: &Snapshot) -> PublicKeyBytes {
    match s.me {
        Side::A => s.party_b,
        Side::B => s.party_a,
    }
}

fn balance_mut(state: &mut ChannelState, side: Side) -> &mut u64 {
    match side {
        Side::A => &mut state.balance_a_msat,
        Side::B => &mut state.balance_b_msat,
    }
}

/// The state `change` by `proposer` makes from `base`, if it is allowed at `height`.
pub fn apply_change(
    base: &ChannelState,
    change: &Change,
    proposer: Side,
    height: Height,
) -> Result<ChannelState, ChannelError> {
    let mut next = base.clone();
    next.seq = base.seq.checked_add(1).ok_or(ChannelError::Overflow)?;
    let acceptor = proposer.other();
    let take = |state: &mut ChannelState, side: Side, amount: u64| {
        let b = balance_mut(state, side);
        *b = b
            .checked_sub(amount)
            .ok_or(ChannelError::InsufficientFunds)?;
        Ok::<(), ChannelError>(())
    };
    let give = |state: &mut ChannelState, side: Side, amount: u64| {
        let b = balance_mut(state, side);
        *b = b.checked_add(amount).ok_or(ChannelError::Overflow)?;
        Ok::<(), ChannelError>(())
    };
    let find = |state: &ChannelState, hash: &Hash256, offered_by: Side| {
        state
            .htlcs
            .iter()
            .position(|h| h.payment_hash == *hash && h.offered_by == offered_by)
            .ok_or(ChannelError::UnknownHtlc)
    };
    match change {
        Change::Pay { amount_msat } => {
            if *amount_msat == 0 {
                return Err(ChannelError::ZeroAmount);
            }
            take(&mut next, proposer, *amount_msat)?;
            give(&mut next, acceptor, *amount_msat)?;
        }
        Change::AddHtlc {
            amount_msat,
            payment_hash,
            expiry,
        } => {
            if *amount_msat == 0 {
                return Err(ChannelError::ZeroAmount);
            }
            if *expiry <= height {
                return Err(ChannelError::HtlcExpiry);
            }
            if next.htlcs.len() >= MAX_HTLCS {
                return Err(ChannelError::TooManyHtlcs);
            }
            if next.htlcs.iter().any(|h| h.payment_hash == *payment_hash) {
                return Err(ChannelError::DuplicateHtlc);
            }
            take(&mut next, proposer, *amount_msat)?;
            next.htlcs.push(Htlc {
                offered_by: proposer,
                amount_msat: *amount_msat,
                payment_hash: *payment_hash,
                expiry: *expiry,
            });
        }
        Change::FulfillHtlc { preimage } => {
            let hash = Hash256(sha256(preimage));
            let i = find(&next, &hash, acceptor)?;
            if height >= next.htlcs[i].expiry {
                return Err(ChannelError::HtlcExpiry);
            }
            let h = next.htlcs.remove(i);
            give(&mut next, proposer, h.amount_msat)?;
        }
        Change::FailHtlc { payment_hash } => {
            let i = find(&next, payment_hash, acceptor)?;
            let h = next.htlcs.remove(i);
            give(&mut next, acceptor, h.amount_msat)?;
        }
        Change::ExpireHtlc { payment_hash } => {
            let i = find(&next, payment_hash, proposer)?;
            if height < next.htlcs[i].expiry {
                return Err(ChannelError::HtlcExpiry);
            }
            let h = next.htlcs.remove(i);
            give(&mut next, proposer, h.amount_msat)?;
        }
    }
    Ok(next)
}

impl ChannelMachine {
    /// A channel just opened on chain with the given opening split (milli-units).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: ChainId,
        channel_id: ChannelId,
        me: Side,
        party_a: PublicKeyBytes,
        party_b: PublicKeyBytes,
        opening_a_msat: u64,
        opening_b_msat: u64,
    ) -> Result<ChannelMachine, ChannelError> {
        let capacity_msat = opening_a_msat
            .checked_add(opening_b_msat)
            .ok_or(ChannelError::Overflow)?;
        Ok(ChannelMachine {
            s: Snapshot {
                chain_id,
                me,
                party_a,
                party_b,
                capacity_msat,
                latest: SignedChannelState {
                    state: ChannelState {
                        channel_id,
                        seq: 0,
                        balance_a_msat: opening_a_msat,
                        balance_b_msat: opening_b_msat,
                        htlcs: Vec::new(),
                    },
                    sig_a: SignatureBytes([0; 64]),
                    sig_b: SignatureBytes([0; 64]),
                },
                in_flight: None,
            },
        })
    }

    /// Restores a persisted machine.
    pub fn restore(s: Snapshot) -> ChannelMachine {
        ChannelMachine { s }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.s
    }

    pub fn id(&self) -> ChannelId {
        self.s.latest.state.channel_id
    }

    pub fn me(&self) -> Side {
        self.s.me
    }

    /// The newest state signed by both.
    pub fn latest(&self) -> &SignedChannelState {
        &self.s.latest
    }

    pub fn in_flight(&self) -> Option<&InFlight> {
        self.s.in_flight.as_ref()
    }

    /// This party's balance in the latest state, in milli-units.
    pub fn my_balance_msat(&self) -> u64 {
        match self.s.me {
            Side::A => self.s.latest.state.balance_a_msat,
            Side::B => self.s.latest.state.balance_b_msat,
        }
    }

    pub fn their_balance_msat(&self) -> u64 {
        match self.s.me {
            Side::A => self.s.latest.state.balance_b_msat,
            Side::B => self.s.latest.state.balance_a_msat,
        }
    }

    fn signing_hash(&self, state: &ChannelState) -> Result<Hash256, ChannelError> {
        state
            .signing_hash(&self.s.chain_id)
            .map_err(|e| ChannelError::Encoding(e.to_string()))
    }

    fn my_key_check(&self, key: &KeyPair) -> Result<(), ChannelError> {
        let mine = match self.s.me {
            Side::A => self.s.party_a,
            Side::B => self.s.party_b,
        };
        if key.public() != mine {
            return Err(ChannelError::WrongKey);
        }
        Ok(())
    }

    /// Proposes `change` at `height`. Refused while another update is in flight.
    pub fn propose(&mut self, change: Change, height: Height) -> Result<Output, ChannelError> {
        if self.s.in_flight.is_some() {
            return Err(ChannelError::Busy);
        }
        let state = apply_change(&self.s.latest.state, &change, self.s.me, height)?;
        let seq = state.seq;
        self.s.in_flight = Some(InFlight::Proposed {
            change: change.clone(),
            state,
        });
        Ok(Output {
            persist: Some(self.s.clone()),
            send: Some(Message::Propose {
                channel_id: self.id(),
                seq,
                change,
            }),
            events: Vec::new(),
        })
    }

    fn reject(&self, seq: u64, reason: String) -> Output {
        Output {
            persist: None,
            send: Some(Message::Reject {
                channel_id: self.id(),
                seq,
                reason,
            }),
            events: Vec::new(),
        }
    }

    /// Handles a message from the other party at `height`, signing with `key` where the
    /// protocol calls for it. Errors mean the message was not acted on (and nothing changed).
    pub fn handle(
        &mut self,
        key: &KeyPair,
        msg: Message,
        height: Height,
    ) -> Result<Output, ChannelError> {
        self.my_key_check(key)?;
        if *msg.channel_id() != self.id() {
            return Err(ChannelError::WrongChannel);
        }
        match msg {
            Message::Propose { seq, change, .. } => self.on_propose(key, seq, change, height),
            Message::Accept { seq, sig, .. } => self.on_accept(key, seq, sig),
            Message::Confirm { seq, sig, .. } => self.on_confirm(seq, sig),
            Message::Reject { seq, reason, .. } => self.on_reject(seq, reason),
        }
    }

    fn on_propose(
        &mut self,
        key: &KeyPair,
        seq: u64,
        change: Change,
        height: Height,
    ) -> Result<Output, ChannelError> {
        let latest_seq = self.s.latest.state.seq;
        let mut events = Vec::new();
        match &self.s.in_flight {
            // A retransmitted proposal we already signed: send the same signature again.
            Some(InFlight::Accepted {
                change: signed,
                state,
                sig,
            }) if state.seq == seq => {
                if *signed != change {
                    return Ok(self.reject(seq, "another state is signed at this seq".into()));
                }
                return Ok(Output {
                    persist: None,
                    send: Some(Message::Accept {
                        channel_id: self.id(),
                        seq,
                        sig: *sig,
                    }),
                    events,
                });
            }
            Some(InFlight::Accepted { .. }) => {
                return Ok(self.reject(seq, "an earlier update is not confirmed yet".into()));
            }
            // Both proposed at once: A's proposal wins.
            Some(InFlight::Proposed { change: mine, .. }) => {
                if self.s.me == Side::A {
                    return Ok(self.reject(seq, "crossing proposals: A's goes first".into()));
                }
                events.push(Event::Dropped {
                    change: mine.clone(),
                });
            }
            None => {}
        }
        if seq != latest_seq.saturating_add(1) {
            return Ok(self.reject(
                seq,
                format!("expected seq {}", latest_seq.saturating_add(1)),
            ));
        }
        let state = match apply_change(&self.s.latest.state, &change, self.s.me.other(), height) {
            Ok(s) => s,
            Err(e) => return Ok(self.reject(seq, e.to_string())),
        };
        let sig = key.sign(&self.signing_hash(&state)?);
        self.s.in_flight = Some(InFlight::Accepted { change, state, sig });
        Ok(Output {
            persist: Some(self.s.clone()),
            send: Some(Message::Accept {
                channel_id: self.id(),
                seq,
                sig,
            }),
            events,
        })
    }

    fn fully_signed(
        &self,
        state: ChannelState,
        mine: SignatureBytes,
        theirs: SignatureBytes,
    ) -> SignedChannelState {
        let (sig_a, sig_b) = match self.s.me {
            Side::A => (mine, theirs),
            Side::B => (theirs, mine),
        };
        SignedChannelState {
            state,
            sig_a,
            sig_b,
        }
    }

    fn on_accept(
        &mut self,
        key: &KeyPair,
        seq: u64,
        sig: SignatureBytes,
    ) -> Result<Output, ChannelError> {
        // The acceptance of an update already complete here, again: the confirmation sent
        // for it was lost on the way, so the other party is still waiting for it.
        if let Some(latest) = self.retransmitted(seq, &sig)? {
            let mine = match self.s.me {
                Side::A => latest.sig_a,
                Side::B => latest.sig_b,
            };
            return Ok(Output {
                persist: None,
                send: Some(Message::Confirm {
                    channel_id: self.id(),
                    seq,
                    sig: mine,
                }),
                events: Vec::new(),
            });
        }
        let Some(InFlight::Proposed { change, state }) = self.s.in_flight.clone() else {
            return Err(ChannelError::Unexpected);
        };
        if state.seq != seq {
            return Err(ChannelError::Unexpected);
        }
        let hash = self.signing_hash(&state)?;
        verify(&other_key(&self.s), &hash, &sig).map_err(|_| ChannelError::BadSignature)?;
        let mine = key.sign(&hash);
        self.s.latest = self.fully_signed(state, mine, sig);
        self.s.in_flight = None;
        Ok(Output {
            persist: Some(self.s.clone()),
            send: Some(Message::Confirm {
                channel_id: self.id(),
                seq,
                sig: mine,
            }),
            events: vec![Event::Completed {
                seq,
                proposer: self.s.me,
                change,
            }],
        })
    }

    fn on_confirm(&mut self, seq: u64, sig: SignatureBytes) -> Result<Output, ChannelError> {
        // A confirmation of the latest state, again (the sender could not know it arrived):
        // nothing to do.
        if self.retransmitted(seq, &sig)?.is_some() {
            return Ok(Output::default());
        }
        let Some(InFlight::Accepted {
            change,
            state,
            sig: mine,
        }) = self.s.in_flight.clone()
        else {
            return Err(ChannelError::Unexpected);
        };
        if state.seq != seq {
            return Err(ChannelError::Unexpected);
        }
        let hash = self.signing_hash(&state)?;
        verify(&other_key(&self.s), &hash, &sig).map_err(|_| ChannelError::BadSignature)?;
        self.s.latest = self.fully_signed(state, mine, sig);
        self.s.in_flight = None;
        Ok(Output {
            persist: Some(self.s.clone()),
            send: None,
            events: vec![Event::Completed {
                seq,
                proposer: self.s.me.other(),
                change,
            }],
        })
    }

    /// The latest state when `seq` names it and `sig` is the other party's valid signature
    /// on it: a message of an update already complete here, sent again. `None` for any other
    /// seq; an invalid signature on the latest state is an error.
    fn retransmitted(
        &self,
        seq: u64,
        sig: &SignatureBytes,
    ) -> Result<Option<SignedChannelState>, ChannelError> {
        let latest = &self.s.latest;
        // Seq 0 is the opening split: nobody signs it, so nothing can be sent again for it.
        if seq == 0 || seq != latest.state.seq {
            return Ok(None);
        }
        let hash = self.signing_hash(&latest.state)?;
        verify(&other_key(&self.s), &hash, sig).map_err(|_| ChannelError::BadSignature)?;
        Ok(Some(latest.clone()))
    }

    fn on_reject(&mut self, seq: u64, reason: String) -> Result<Output, ChannelError> {
        match self.s.in_flight.clone() {
            Some(InFlight::Proposed { change, state }) if state.seq == seq => {
                self.s.in_flight = None;
                Ok(Output {
                    persist: Some(self.s.clone()),
                    send: None,
                    events: vec![Event::Rejected { change, reason }],
                })
            }
            // A late answer to a proposal already dropped (crossing) or never made: nothing
            // of ours is in flight at that seq, so there is nothing to undo.
            _ => Ok(Output::default()),
        }
    }
}
