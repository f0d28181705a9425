//! Payment channels on the transfer chain (docs/channels.md): the on-chain record of a 2-of-2 lock,
//! the off-chain state both parties sign, and the rules of opening, closing, disputing and
//! settling.
//!
//! A channel holds `capacity` base units taken from its parties' balances. Off chain the
//! parties sign [`ChannelState`]s that split `capacity × 1000` milli-units between them and
//! pending HTLCs. On chain:
//! - a cooperative close pays a state without HTLCs out at once;
//! - a force close posts a state (or the opening split) and opens a dispute window of the
//!   channel's `dispute_blocks`;
//! - during the window a state with a higher `seq` replaces the posted one, and whoever posted
//!   the superseded state forfeits the channel reserve (1 % of capacity) to the new poster;
//! - an HTLC of the posted state is claimed with its preimage before its expiry height;
//! - after the window (and every pending HTLC's expiry) anyone settles: balances are paid out,
//!   unclaimed HTLCs go back to whoever offered them.
//!
//! Payouts round each side down to whole base units; the milli-unit remainder (under two base
//! units) is burned. Every function here is pure: it takes a channel and returns the next one
//! or a payout; `apply` moves the coins.

use crate::error::TxError;
use doin_codec::encode;
use doin_crypto::{tagged_hash, tagged_hash_parts, verify};
use doin_types::{Amount, ChainId, Hash256, Height, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

/// Tag of the hash both parties sign over a channel state.
pub const TAG_CHANNEL_STATE: &str = "doin/channel-state";
/// Tag of the counterparty's consent to fund a channel it is opened with.
pub const TAG_CHANNEL_OPEN: &str = "doin/channel-open";
/// Tag of channel ids.
pub const TAG_CHANNEL_ID: &str = "doin/channel-id";
/// Milli-units per base unit: channels count in milli-units.
pub const MSAT_PER_UNIT: u64 = 1_000;
/// Most pending HTLCs one state may hold.
pub const MAX_HTLCS: usize = 64;
/// The reserve a stale publisher forfeits, in millionths of the capacity.
pub const RESERVE_PPM: u64 = 10_000;
/// Dispute windows a channel may choose, in blocks (default 2 880, one day of 30-second
/// blocks; at most five weeks).
pub const DEFAULT_DISPUTE_BLOCKS: u64 = 2_880;
pub const MAX_DISPUTE_BLOCKS: u64 = 100_800;

/// A channel's id: `H_tag(chain_id ‖ opener ‖ opener's nonce)`, recomputed from the opening
/// transaction, so two channels never share one.
pub type ChannelId = Hash256;

pub fn channel_id(chain_id: &ChainId, opener: &PublicKeyBytes, nonce: u64) -> ChannelId {
    tagged_hash_parts(
        TAG_CHANNEL_ID,
        &[&chain_id.0 .0, &opener.0, &nonce.to_le_bytes()],
    )
}

/// One of the two parties: `A` opened the channel, `B` is the counterparty.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// A hash-locked payment pending in a state: `amount_msat` moves to the other side on the
/// preimage of `payment_hash` before `expiry`, and back to `offered_by` after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Htlc {
    pub offered_by: Side,
    pub amount_msat: u64,
    pub payment_hash: Hash256,
    pub expiry: Height,
}

/// The off-chain state both parties sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub channel_id: ChannelId,
    /// Grows with every new state; a higher one replaces a lower one on chain.
    pub seq: u64,
    pub balance_a_msat: u64,
    pub balance_b_msat: u64,
    pub htlcs: Vec<Htlc>,
}

impl ChannelState {
    /// What the parties sign: `H_tag(chain_id ‖ encode(state))`.
    pub fn signing_hash(&self, chain_id: &ChainId) -> Result<Hash256, TxError> {
        let body = encode(self).map_err(|e| TxError::Malformed(e.to_string()))?;
        let mut bytes = Vec::with_capacity(32 + body.len());
        bytes.extend_from_slice(&chain_id.0 .0);
        bytes.extend_from_slice(&body);
        Ok(tagged_hash(TAG_CHANNEL_STATE, &bytes))
    }

    /// Everything the state accounts for, in milli-units (`None` on overflow).
    pub fn total_msat(&self) -> Option<u64> {
        self.htlcs.iter().try_fold(
            self.balance_a_msat.checked_add(self.balance_b_msat)?,
            |t, h| t.checked_add(h.amount_msat),
        )
    }

    fn balance_mut(&mut self, side: Side) -> &mut u64 {
        match side {
            Side::A => &mut self.balance_a_msat,
            Side::B => &mut self.balance_b_msat,
        }
    }
}

/// A state with both parties' signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChannelState {
    pub state: ChannelState,
    pub sig_a: SignatureBytes,
    pub sig_b: SignatureBytes,
}

/// Where a channel is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelPhase {
    Open,
    /// A state is posted; it can be replaced by a higher one until `closes_at`.
    Closing {
        posted: ChannelState,
        posted_by: Side,
        closes_at: Height,
    },
    /// Paid out; the record stays so the id is never reused and its end can be looked up.
    Closed {
        at: Height,
    },
}

/// A channel as the transfer-chain state holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub party_a: PublicKeyBytes,
    pub party_b: PublicKeyBytes,
    /// Base units locked, the sum of both deposits.
    pub capacity: Amount,
    /// The opening split, in milli-units (what a force close without a signed state posts).
    pub opening_a_msat: u64,
    pub opening_b_msat: u64,
    pub dispute_blocks: u64,
    pub opened_at: Height,
    pub phase: ChannelPhase,
}

/// What closing a channel pays: to each party, and the rounding burned. Always adds up to the
/// capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Payout {
    pub to_a: Amount,
    pub to_b: Amount,
    pub burned: Amount,
}

/// What the counterparty signs to fund a channel with its own deposit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenConsent {
    pub channel_id: ChannelId,
    pub party_a: PublicKeyBytes,
    pub party_b: PublicKeyBytes,
    pub deposit_a: Amount,
    pub deposit_b: Amount,
    pub dispute_blocks: u64,
}

impl OpenConsent {
    pub fn signing_hash(&self, chain_id: &ChainId) -> Result<Hash256, TxError> {
        let body = encode(self).map_err(|e| TxError::Malformed(e.to_string()))?;
        Ok(tagged_hash_parts(
            TAG_CHANNEL_OPEN,
            &[&chain_id.0 .0, &body],
        ))
    }
}

fn invalid(why: impl Into<String>) -> TxError {
    TxError::InvalidChannel(why.into())
}

impl Channel {
    /// A new open channel. `deposit_b` is taken from B only with its consent (checked by the
    /// caller, which also debits both balances).
    pub fn open(
        party_a: PublicKeyBytes,
        party_b: PublicKeyBytes,
        deposit_a: Amount,
        deposit_b: Amount,
        dispute_blocks: u64,
        height: Height,
    ) -> Result<Channel, TxError> {
        if party_a == party_b {
            return Err(invalid("a channel needs two different parties"));
        }
        if !(1..=MAX_DISPUTE_BLOCKS).contains(&dispute_blocks) {
            return Err(invalid(format!(
                "the dispute window must be 1..={MAX_DISPUTE_BLOCKS} blocks"
            )));
        }
        let capacity = deposit_a
            .checked_add(deposit_b)
            .map_err(|_| TxError::AmountOverflow)?;
        if capacity.is_zero() {
            return Err(TxError::ZeroAmount);
        }
        let msat = |a: Amount| {
            a.base_units()
                .checked_mul(MSAT_PER_UNIT)
                .ok_or_else(|| invalid("the capacity is too large to count in milli-units"))
        };
        msat(capacity)?;
        Ok(Channel {
            party_a,
            party_b,
            capacity,
            opening_a_msat: msat(deposit_a)?,
            opening_b_msat: msat(deposit_b)?,
            dispute_blocks,
            opened_at: height,
            phase: ChannelPhase::Open,
        })
    }

    pub fn capacity_msat(&self) -> Result<u64, TxError> {
        self.capacity
            .base_units()
            .checked_mul(MSAT_PER_UNIT)
            .ok_or(TxError::AmountOverflow)
    }

    /// The party `key` is, if any.
    pub fn side_of(&self, key: &PublicKeyBytes) -> Option<Side> {
        if *key == self.party_a {
            Some(Side::A)
        } else if *key == self.party_b {
            Some(Side::B)
        } else {
            None
        }
    }

    pub fn key_of(&self, side: Side) -> PublicKeyBytes {
        match side {
            Side::A => self.party_a,
            Side::B => self.party_b,
        }
    }

    /// The seq-0 state: the opening split.
    pub fn opening_state(&self, id: ChannelId) -> ChannelState {
        ChannelState {
            channel_id: id,
            seq: 0,
            balance_a_msat: self.opening_a_msat,
            balance_b_msat: self.opening_b_msat,
            htlcs: Vec::new(),
        }
    }

    /// Checks that `signed` is a state of this channel (`id`) signed by both parties whose
    /// amounts add up to the capacity.
    pub fn check_state(
        &self,
        chain_id: &ChainId,
        id: &ChannelId,
        signed: &SignedChannelState,
    ) -> Result<(), TxError> {
        let s = &signed.state;
        if s.channel_id != *id {
            return Err(invalid("the state is for another channel"));
        }
        if s.htlcs.len() > MAX_HTLCS {
            return Err(invalid(format!("more than {MAX_HTLCS} pending HTLCs")));
        }
        for (i, h) in s.htlcs.iter().enumerate() {
            if h.amount_msat == 0 {
                return Err(invalid("an HTLC of zero"));
            }
            if s.htlcs[..i]
                .iter()
                .any(|o| o.payment_hash == h.payment_hash)
            {
                return Err(invalid("two HTLCs with one payment hash"));
            }
        }
        if s.total_msat() != Some(self.capacity_msat()?) {
            return Err(invalid(
                "balances and HTLCs do not add up to the channel's capacity",
            ));
        }
        let hash = s.signing_hash(chain_id)?;
        for (key, sig) in [
            (&self.party_a, &signed.sig_a),
            (&self.party_b, &signed.sig_b),
        ] {
            verify(key, &hash, sig).map_err(|_| invalid("a party's signature does not verify"))?;
        }
        Ok(())
    }

    /// `ChannelCoopClose`: pays a signed state without HTLCs out at once.
    pub fn coop_close(
        &self,
        chain_id: &ChainId,
        id: &ChannelId,
        signed: &SignedChannelState,
        height: Height,
    ) -> Result<(Channel, Payout), TxError> {
        if self.phase != ChannelPhase::Open {
            return Err(TxError::ChannelNotOpen);
        }
        self.check_state(chain_id, id, signed)?;
        if !signed.state.htlcs.is_empty() {
            return Err(invalid("a cooperative close pays no pending HTLCs"));
        }
        let payout = self.payout(signed.state.balance_a_msat, signed.state.balance_b_msat)?;
        Ok((self.closed(height), payout))
    }

    /// `ChannelForceClose` by `publisher`: posts `signed` (or the opening split) and opens the
    /// dispute window.
    pub fn force_close(
        &self,
        chain_id: &ChainId,
        id: &ChannelId,
        signed: Option<&SignedChannelState>,
        publisher: Side,
        height: Height,
    ) -> Result<Channel, TxError> {
        if self.phase != ChannelPhase::Open {
            return Err(TxError::ChannelNotOpen);
        }
        let posted = match signed {
            Some(s) => {
                self.check_state(chain_id, id, s)?;
                s.state.clone()
            }
            None => self.opening_state(*id),
        };
        let closes_at = height
            .checked_add(self.dispute_blocks)
            .ok_or(TxError::AmountOverflow)?;
        Ok(Channel {
            phase: ChannelPhase::Closing {
                posted,
                posted_by: publisher,
                closes_at,
            },
            ..self.clone()
        })
    }

    /// `ChannelChallenge` by `challenger`: a higher state replaces the posted one before the
    /// window ends. When the other party had posted, it forfeits the reserve (or all it has,
    /// if less) to the challenger.
    pub fn challenge(
        &self,
        chain_id: &ChainId,
        id: &ChannelId,
        signed: &SignedChannelState,
        challenger: Side,
        height: Height,
    ) -> Result<Channel, TxError> {
        let ChannelPhase::Closing {
            posted,
            posted_by,
            closes_at,
        } = &self.phase
        else {
            return Err(TxError::ChannelNotClosing);
        };
        if height >= *closes_at {
            return Err(TxError::DisputeWindowOver {
                closed_at: *closes_at,
            });
        }
        self.check_state(chain_id, id, signed)?;
        if signed.state.seq <= posted.seq {
            return Err(TxError::StaleChannelState {
                posted: posted.seq,
                got: signed.state.seq,
            });
        }
        let mut next = signed.state.clone();
        if *posted_by != challenger {
            let reserve = self
                .capacity_msat()?
                .checked_mul(RESERVE_PPM)
                .map(|x| x / 1_000_000)
                .ok_or(TxError::AmountOverflow)?;
            let cheater = next.balance_mut(*posted_by);
            let taken = reserve.min(*cheater);
            *cheater -= taken;
            let gainer = next.balance_mut(challenger);
            *gainer = gainer.checked_add(taken).ok_or(TxError::AmountOverflow)?;
        }
        Ok(Channel {
            phase: ChannelPhase::Closing {
                posted: next,
                posted_by: challenger,
                closes_at: *closes_at,
            },
            ..self.clone()
        })
    }

    /// `HtlcClaim`: the preimage of a posted HTLC, before its expiry, moves it to the side it
    /// was offered to.
    pub fn claim_htlc(&self, preimage: &[u8; 32], height: Height) -> Result<Channel, TxError> {
        let ChannelPhase::Closing {
            posted,
            posted_by,
            closes_at,
        } = &self.phase
        else {
            return Err(TxError::ChannelNotClosing);
        };
        let hash = Hash256(sha256(preimage));
        let index = posted
            .htlcs
            .iter()
            .position(|h| h.payment_hash == hash)
            .ok_or(TxError::HtlcNotFound)?;
        let mut next = posted.clone();
        let htlc = next.htlcs.remove(index);
        if height >= htlc.expiry {
            return Err(TxError::HtlcExpired {
                expiry: htlc.expiry,
            });
        }
        let to = next.balance_mut(htlc.offered_by.other());
        *to = to
            .checked_add(htlc.amount_msat)
            .ok_or(TxError::AmountOverflow)?;
        Ok(Channel {
            phase: ChannelPhase::Closing {
                posted: next,
                posted_by: *posted_by,
                closes_at: *closes_at,
            },
            ..self.clone()
        })
    }

    /// `ChannelSettle`: after the window and every pending HTLC's expiry, pays the posted
    /// state out; unclaimed HTLCs return to whoever offered them.
    pub fn settle(&self, height: Height) -> Result<(Channel, Payout), TxError> {
        let ChannelPhase::Closing {
            posted, closes_at, ..
        } = &self.phase
        else {
            return Err(TxError::ChannelNotClosing);
        };
        let until = posted
            .htlcs
            .iter()
            .map(|h| h.expiry)
            .fold(*closes_at, u64::max);
        if height < until {
            return Err(TxError::DisputeWindowOpen { until });
        }
        let mut end = posted.clone();
        for h in std::mem::take(&mut end.htlcs) {
            let back = end.balance_mut(h.offered_by);
            *back = back
                .checked_add(h.amount_msat)
                .ok_or(TxError::AmountOverflow)?;
        }
        let payout = self.payout(end.balance_a_msat, end.balance_b_msat)?;
        Ok((self.closed(height), payout))
    }

    fn closed(&self, height: Height) -> Channel {
        Channel {
            phase: ChannelPhase::Closed { at: height },
            ..self.clone()
        }
    }

    /// Rounds both sides down to base units; the remainder of the capacity is burned.
    fn payout(&self, a_msat: u64, b_msat: u64) -> Result<Payout, TxError> {
        let to_a = Amount::from_base_units(a_msat / MSAT_PER_UNIT);
        let to_b = Amount::from_base_units(b_msat / MSAT_PER_UNIT);
        let burned = self
            .capacity
            .checked_sub(to_a)
            .and_then(|r| r.checked_sub(to_b))
            .map_err(|_| invalid("the payout exceeds the capacity"))?;
        Ok(Payout { to_a, to_b, burned })
    }
}

/// SHA-256 of an HTLC preimage (plain, as Lightning's payment hashes are).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
