//! What a peer signs to ask the hub for something, so that nobody but a channel's peer can
//! make the hub sign, block or show anything of that channel. Every hash is tagged (BIP340
//! tagged hashes, see `docs/hub.md`) and names the chain. The REST routes check these; the
//! peers' clients make them.

use crate::records::StreamShare;
use doin_crypto::tagged_hash_parts;
use doin_tx_core::channel::ChannelId;
use doin_types::{ChainId, Hash256, PublicKeyBytes};

/// Tag of what a peer signs to send the hub a channel message.
pub const TAG_HUB_MESSAGE: &str = "doin/hub-message";

/// `SHA-256(stream₁ ‖ amount₁ ‖ vote₁ ‖ stream₂ ‖ amount₂ ‖ vote₂ ‖ …)` of a split tick's shares
/// (amounts as u64 big-endian, each vote's optimae id or 32 zero bytes), or 32 zero bytes when
/// the request is not a split tick.
pub fn split_digest(split: &[StreamShare]) -> [u8; 32] {
    if split.is_empty() {
        return [0; 32];
    }
    let mut bytes = Vec::with_capacity(split.len().saturating_mul(72));
    for share in split {
        bytes.extend_from_slice(&share.stream.0);
        bytes.extend_from_slice(&share.amount_msat.get().to_be_bytes());
        bytes.extend_from_slice(&share.vote_optimae.map(|o| o.0).unwrap_or([0; 32]));
    }
    doin_tx_core::channel::sha256(&bytes)
}

/// What a peer's signature on a channel message covers besides the message itself: the
/// context the hub books a proposal under (all empty for other messages).
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedContext<'a> {
    /// A stream tick: its stream.
    pub stream: Option<&'a Hash256>,
    /// An HTLC through the hub: the invoice it pays.
    pub invoice: Option<&'a str>,
    /// Evaluator pay: the optimae of the stream payee's vote the tick pays.
    pub vote_optimae: Option<&'a Hash256>,
    /// A split tick: its shares.
    pub split: &'a [StreamShare],
    /// A funding tick: the optimae whose verification fund it pays into.
    pub fund_optimae: Option<&'a Hash256>,
}

impl SignedContext<'_> {
    /// `stream ‖ SHA-256(invoice) ‖ vote_optimae ‖ split digest ‖ fund_optimae`, each 32 bytes
    /// (zeros when absent).
    fn parts(&self) -> [[u8; 32]; 5] {
        let zeros = [0; 32];
        [
            self.stream.map_or(zeros, |s| s.0),
            self.invoice
                .map_or(zeros, |t| doin_tx_core::channel::sha256(t.as_bytes())),
            self.vote_optimae.map_or(zeros, |o| o.0),
            split_digest(self.split),
            self.fund_optimae.map_or(zeros, |o| o.0),
        ]
    }
}

/// `H_tag("doin/hub-message", chain_id ‖ channel_id ‖ message ‖ stream id ‖ SHA-256 of the
/// invoice text ‖ the paid vote's optimae id ‖ [`split_digest`] ‖ the funded optimae id)`, each
/// context part 32 zero bytes when absent.
pub fn message_auth_hash(
    chain_id: &ChainId,
    channel: &ChannelId,
    message: &[u8],
    ctx: &SignedContext<'_>,
) -> Hash256 {
    let [a, b, c, d, e] = ctx.parts();
    tagged_hash_parts(
        TAG_HUB_MESSAGE,
        &[&chain_id.0 .0, &channel.0, message, &a, &b, &c, &d, &e],
    )
}

/// Tag of what a peer signs to send the hub a `Confirm` and its next message in one request.
pub const TAG_HUB_MESSAGES: &str = "doin/hub-messages";

/// `H_tag("doin/hub-messages", chain_id ‖ channel_id ‖ SHA-256(confirm) ‖ SHA-256(next) ‖ the
/// same five context parts)`: the context belongs to `next`.
pub fn pipelined_auth_hash(
    chain_id: &ChainId,
    channel: &ChannelId,
    confirm: &[u8],
    next: &[u8],
    ctx: &SignedContext<'_>,
) -> Hash256 {
    let sha = doin_tx_core::channel::sha256;
    let [a, b, c, d, e] = ctx.parts();
    tagged_hash_parts(
        TAG_HUB_MESSAGES,
        &[
            &chain_id.0 .0,
            &channel.0,
            &sha(confirm),
            &sha(next),
            &a,
            &b,
            &c,
            &d,
            &e,
        ],
    )
}

/// Tag of what a payer signs to open a stream.
pub const TAG_HUB_STREAM: &str = "doin/hub-stream";

/// `H_tag("doin/hub-stream", chain_id ‖ payer_channel ‖ SHA-256 of the invoice text)`.
pub fn stream_auth_hash(chain_id: &ChainId, payer_channel: &ChannelId, invoice: &str) -> Hash256 {
    tagged_hash_parts(
        TAG_HUB_STREAM,
        &[
            &chain_id.0 .0,
            &payer_channel.0,
            &doin_tx_core::channel::sha256(invoice.as_bytes()),
        ],
    )
}

/// Tag of what a payee signs to read its payment feed.
pub const TAG_HUB_FEED: &str = "doin/hub-feed";

/// How far a feed signature's time may be from the hub's clock, either way (ms).
pub const FEED_AUTH_WINDOW_MS: u64 = 300_000;

/// `H_tag("doin/hub-feed", chain_id ‖ payee key (33 bytes) ‖ at_ms as u64 big-endian)`: what a
/// payee signs to read its feed; valid while `at_ms` is within [`FEED_AUTH_WINDOW_MS`] of the
/// hub's clock.
pub fn feed_auth_hash(chain_id: &ChainId, payee: &PublicKeyBytes, at_ms: u64) -> Hash256 {
    tagged_hash_parts(
        TAG_HUB_FEED,
        &[&chain_id.0 .0, &payee.0, &at_ms.to_be_bytes()],
    )
}
