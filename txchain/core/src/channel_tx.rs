//! Applying channel transactions: reads the channel a transaction names, runs its rule from
//! [`crate::channel`] and says which balances move. `apply_tx` charges fees and nonces and
//! writes the result; this module does neither.

use crate::channel::{channel_id, Channel, ChannelId, OpenConsent, Payout};
use crate::error::TxError;
use crate::params::ChainParams;
use crate::state::{Overlay, StateView};
use crate::tx::{TxBody, TxPayload};
use doin_crypto::verify;
use doin_types::{Amount, Height, PublicKeyBytes};

/// What one channel transaction does besides its fee.
#[derive(Debug)]
pub(crate) struct ChannelEffects {
    pub id: ChannelId,
    pub channel: Channel,
    /// Balances debited (the counterparty's deposit; the sender's comes with the value).
    pub debits: Vec<(PublicKeyBytes, Amount)>,
    /// Balances credited by a payout.
    pub credits: Vec<(PublicKeyBytes, Amount)>,
    /// Coins newly locked (an open) and released (a payout, rounding included).
    pub locked: Amount,
    pub released: Amount,
    /// The rounding of a payout, burned.
    pub burned: Amount,
}

/// Stateless checks of a channel payload (other payloads pass).
pub(crate) fn check_payload(body: &TxBody) -> Result<(), TxError> {
    let invalid = |why: &str| Err(TxError::InvalidChannel(why.into()));
    match &body.payload {
        TxPayload::ChannelOpen {
            counterparty,
            deposit,
            counterparty_deposit,
            dispute_blocks,
            consent,
        } => {
            if *counterparty == body.sender {
                return invalid("a channel needs two different parties");
            }
            if deposit.is_zero() && counterparty_deposit.is_zero() {
                return Err(TxError::ZeroAmount);
            }
            if counterparty_deposit.is_zero() != consent.is_none() {
                return invalid(
                    "the counterparty's consent comes with its deposit, and only with it",
                );
            }
            if !(1..=crate::channel::MAX_DISPUTE_BLOCKS).contains(dispute_blocks) {
                return invalid("the dispute window is out of range");
            }
            Ok(())
        }
        TxPayload::ChannelCoopClose { state } | TxPayload::ChannelChallenge { state } => {
            if state.state.htlcs.len() > crate::channel::MAX_HTLCS {
                return invalid("too many HTLCs");
            }
            Ok(())
        }
        TxPayload::ChannelForceClose {
            state: Some(state), ..
        } if state.state.htlcs.len() > crate::channel::MAX_HTLCS => invalid("too many HTLCs"),
        _ => Ok(()),
    }
}

fn existing<V: StateView + ?Sized>(
    overlay: &Overlay<'_, V>,
    id: &ChannelId,
) -> Result<Channel, TxError> {
    overlay
        .channel(id)
        .map_err(TxError::State)?
        .ok_or(TxError::ChannelNotFound)
}

/// The effects of `body`'s channel payload in the block at `height`; `Ok(None)` for payloads
/// that are not about channels.
pub(crate) fn apply<V: StateView + ?Sized>(
    params: &ChainParams,
    overlay: &Overlay<'_, V>,
    body: &TxBody,
    height: Height,
) -> Result<Option<ChannelEffects>, TxError> {
    let chain_id = &params.chain_id;
    let sender = body.sender;
    let effects = |id, channel, payout: Option<(Payout, Amount)>| {
        let mut fx = ChannelEffects {
            id,
            channel,
            debits: Vec::new(),
            credits: Vec::new(),
            locked: Amount::ZERO,
            released: Amount::ZERO,
            burned: Amount::ZERO,
        };
        if let Some((p, capacity)) = payout {
            fx.credits = vec![(fx.channel.party_a, p.to_a), (fx.channel.party_b, p.to_b)];
            fx.released = capacity;
            fx.burned = p.burned;
        }
        fx
    };
    let fx = match &body.payload {
        TxPayload::ChannelOpen {
            counterparty,
            deposit,
            counterparty_deposit,
            dispute_blocks,
            consent,
        } => {
            let id = channel_id(chain_id, &sender, body.nonce);
            if overlay.channel(&id).map_err(TxError::State)?.is_some() {
                return Err(TxError::InvalidChannel("the channel exists already".into()));
            }
            let channel = Channel::open(
                sender,
                *counterparty,
                *deposit,
                *counterparty_deposit,
                *dispute_blocks,
                height,
            )?;
            let mut fx = effects(id, channel, None);
            if let Some(sig) = consent {
                let terms = OpenConsent {
                    channel_id: id,
                    party_a: sender,
                    party_b: *counterparty,
                    deposit_a: *deposit,
                    deposit_b: *counterparty_deposit,
                    dispute_blocks: *dispute_blocks,
                };
                verify(counterparty, &terms.signing_hash(chain_id)?, sig).map_err(|_| {
                    TxError::InvalidChannel("the counterparty's consent does not verify".into())
                })?;
                fx.debits.push((*counterparty, *counterparty_deposit));
            }
            fx.locked = fx.channel.capacity;
            fx
        }
        TxPayload::ChannelCoopClose { state } => {
            let id = state.state.channel_id;
            let before = existing(overlay, &id)?;
            let (after, payout) = before.coop_close(chain_id, &id, state, height)?;
            effects(id, after, Some((payout, before.capacity)))
        }
        TxPayload::ChannelForceClose { channel, state } => {
            let before = existing(overlay, channel)?;
            let side = before.side_of(&sender).ok_or(TxError::NotAChannelParty)?;
            let after = before.force_close(chain_id, channel, state.as_deref(), side, height)?;
            effects(*channel, after, None)
        }
        TxPayload::ChannelChallenge { state } => {
            let id = state.state.channel_id;
            let before = existing(overlay, &id)?;
            let side = before.side_of(&sender).ok_or(TxError::NotAChannelParty)?;
            let after = before.challenge(chain_id, &id, state, side, height)?;
            effects(id, after, None)
        }
        TxPayload::HtlcClaim { channel, preimage } => {
            let after = existing(overlay, channel)?.claim_htlc(preimage, height)?;
            effects(*channel, after, None)
        }
        TxPayload::ChannelSettle { channel } => {
            let before = existing(overlay, channel)?;
            let (after, payout) = before.settle(height)?;
            effects(*channel, after, Some((payout, before.capacity)))
        }
        TxPayload::Transfer { .. }
        | TxPayload::Stake { .. }
        | TxPayload::Unstake { .. }
        | TxPayload::Withdraw { .. }
        | TxPayload::ReportEquivocation { .. }
        | TxPayload::BatchTransfer { .. } => return Ok(None),
    };
    Ok(Some(fx))
}
