//! What the hub keeps: one record type per thing it tracks (a channel with the hub's
//! bookkeeping around its state machine, a stream, a routed payment, a verification fund, an
//! invoice of its own, a ledger entry). The node's store writes each as one value of its own
//! column family; the encoding is the canonical one, so a field added here is a new store
//! layout.

use doin_channels::{Change, Snapshot};
use doin_tx_core::channel::ChannelId;
use doin_types::{Amount, Hash256, Height, Msat, PublicKeyBytes};
use serde::{Deserialize, Serialize};

/// Which way a channel faces from the hub.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelRole {
    /// A payer's channel: the payer opened it and pays into the hub (the hub is side B).
    Incoming,
    /// The hub's channel to a payee: the hub opened it and pays out (the hub is side A).
    Outgoing,
}

impl ChannelRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelRole::Incoming => "incoming",
            ChannelRole::Outgoing => "outgoing",
        }
    }
}

/// One channel of the hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HubChannel {
    pub role: ChannelRole,
    pub peer: PublicKeyBytes,
    pub machine: Snapshot,
    /// Outgoing: stream money forwarded to the payee and not yet in a proposal.
    pub owed_msat: Msat,
    /// Outgoing: the part of the `Pay` in flight that came from `owed_msat` (back to owed if
    /// the payee refuses it).
    pub in_flight_owed_msat: Msat,
    /// Changes the hub will propose once the channel is free (HTLC forwards, fulfilments,
    /// failures), in order.
    pub queued: Vec<Change>,
    /// The channel is on chain (an outgoing one is recorded before its opening transaction
    /// is included).
    pub confirmed: bool,
    /// A close is under way on chain (posted by either side): the hub proposes nothing more.
    pub closing: bool,
    /// Set once the channel is paid out on chain.
    pub closed_at: Option<Height>,
    /// The watchtower's last challenge (the seq it posted), so it does not repeat it.
    pub challenged_seq: Option<u64>,
    /// The watchtower submitted the settlement.
    pub settle_submitted: bool,
    /// Payment hashes whose HTLC the watchtower claimed on chain with the preimage.
    pub claims_submitted: Vec<Hash256>,
    /// An outgoing channel's signed opening transaction, kept until the channel is on chain
    /// so the watch can submit it again (after a crash, or a node that lost its mempool).
    pub opening_tx: Option<Vec<u8>>,
    /// The operator asked to close this payee channel at this height: nothing new goes
    /// towards the payee, and the watch closes it once what the hub owes has been taken.
    pub close_requested_at: Option<Height>,
    /// What the peer's proposal in flight (signed by the hub, not yet confirmed) is for: kept
    /// with it so a restart in between books the payment where it belongs.
    pub pending_context: Option<PendingContext>,
}

impl HubChannel {
    /// A channel the hub just took on, with nothing owed, queued or posted yet.
    pub fn new(
        role: ChannelRole,
        peer: PublicKeyBytes,
        machine: Snapshot,
        confirmed: bool,
    ) -> Self {
        HubChannel {
            role,
            peer,
            machine,
            owed_msat: Msat::ZERO,
            in_flight_owed_msat: Msat::ZERO,
            queued: Vec::new(),
            confirmed,
            closing: false,
            closed_at: None,
            challenged_seq: None,
            settle_submitted: false,
            claims_submitted: Vec::new(),
            opening_tx: None,
            close_requested_at: None,
            pending_context: None,
        }
    }

    /// `opening`, `open`, `closing` or `closed`.
    pub fn status(&self) -> &'static str {
        match (self.confirmed, self.closing, self.closed_at) {
            (_, _, Some(_)) => "closed",
            (_, true, None) => "closing",
            (false, false, None) => "opening",
            (true, false, None) => "open",
        }
    }

    /// On chain, not closing, not closed: the hub takes and makes proposals on it.
    pub fn is_open(&self) -> bool {
        self.confirmed && !self.closing && self.closed_at.is_none()
    }

    /// Something is still owed to the payee or under way on the channel.
    pub fn payout_due(&self) -> bool {
        !self.owed_msat.is_zero()
            || !self.in_flight_owed_msat.is_zero()
            || !self.queued.is_empty()
            || self.machine.in_flight.is_some()
    }
}

/// An invoice payable to the hub itself, with the preimage the hub takes the payment with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubInvoice {
    pub text: String,
    pub payment_hash: Hash256,
    pub preimage: [u8; 32],
    pub amount_msat: Msat,
    pub description: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// The payer channel whose HTLC paid it, once paid.
    pub paid_by: Option<ChannelId>,
}

/// An evaluator's vote on an optimae, named by a tick that pays its verification fee.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VoteRef {
    pub optimae: Hash256,
    pub evaluator: PublicKeyBytes,
}

/// The stream, invoice or vote a peer's proposal names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingContext {
    pub stream: Option<Hash256>,
    pub invoice: Option<String>,
    pub vote: Option<VoteRef>,
    /// A split tick: the streams one `Pay` pays, and how much each.
    pub split: Vec<StreamShare>,
    /// A funding tick: the optimae whose verification fees it puts in a fund.
    pub fund: Option<Hash256>,
}

impl PendingContext {
    /// The votes a proposal with this context pays: its own, or its split shares' (a share's
    /// vote is its stream payee's, looked up with `payee_of`).
    pub fn votes(&self, payee_of: impl Fn(&Hash256) -> Option<PublicKeyBytes>) -> Vec<VoteRef> {
        let mut votes: Vec<VoteRef> = self.vote.into_iter().collect();
        for share in &self.split {
            if let Some(vote) = payee_of(&share.stream).and_then(|p| share.vote(p)) {
                votes.push(vote);
            }
        }
        votes
    }
}

/// A verification fund: what a payer put in (at reveal) for the evaluators of one optimae.
/// The hub holds it; once the optimae's decision is final it pays each agreeing evaluator one
/// verification fee out of it and returns the rest to the payer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fund {
    pub optimae: Hash256,
    /// The payer's channel: funding ticks come from it, the rest goes back over it.
    pub payer_channel: ChannelId,
    pub funded_msat: Msat,
    /// Paid to evaluators (verification fees, the hub's fee included).
    pub released_msat: Msat,
    /// Given back to the payer (proposed on its channel when the fund settled).
    pub returned_msat: Msat,
    /// Each vote paid: its evaluator and its fee (msat, the hub's fee included). An evaluator
    /// that agreed in both rounds is here twice.
    pub paid: Vec<(PublicKeyBytes, Msat)>,
    pub funded_at_ms: u64,
    /// Set when the decision was final and the fund paid out: takes nothing more.
    pub settled: bool,
}

/// One stream's part of a split tick (a payer paying several of its streams with one signed
/// update).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamShare {
    pub stream: Hash256,
    pub amount_msat: Msat,
    /// Evaluator pay: the share pays the verification fee of the stream payee's vote on this
    /// optimae (checked like a single tick naming the vote).
    pub vote_optimae: Option<Hash256>,
}

impl StreamShare {
    /// The vote this share pays, if any: the stream payee's on `vote_optimae`.
    pub fn vote(&self, payee: PublicKeyBytes) -> Option<VoteRef> {
        self.vote_optimae.map(|optimae| VoteRef {
            optimae,
            evaluator: payee,
        })
    }
}

/// Where a hash-locked payment through the hub stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteState {
    /// Locked on the incoming channel, forwarded (or queued) on the outgoing one.
    Pending,
    /// The payee showed the preimage; the hub claims the incoming HTLC with it.
    Fulfilled { preimage: [u8; 32] },
    /// The payee gave the HTLC up; the hub gives the incoming one up too.
    Failed,
}

/// A hash-locked payment payer → hub → payee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub payment_hash: Hash256,
    pub incoming: ChannelId,
    pub outgoing: ChannelId,
    pub payee: PublicKeyBytes,
    pub amount_in_msat: Msat,
    pub amount_out_msat: Msat,
    pub expiry_in: Height,
    pub expiry_out: Height,
    pub state: RouteState,
}

/// A stream of cumulative payments from one payer channel to one payee, set up by invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    /// The invoice's payment hash.
    pub id: Hash256,
    pub payer_channel: ChannelId,
    pub payee_channel: ChannelId,
    pub payee: PublicKeyBytes,
    /// Most the stream may carry in total (the invoice amount).
    pub budget_msat: Msat,
    pub received_msat: Msat,
    pub forwarded_msat: Msat,
    pub fees_msat: Msat,
    pub ticks: u64,
    pub opened_at_ms: u64,
    pub closed: bool,
}

/// A payee's request for an inbound channel, paid on chain ([`crate::requests`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRequest {
    /// The id of the payment transaction (which names the payee: its sender).
    pub id: Hash256,
    pub payee: PublicKeyBytes,
    /// Base units the hub locks in the channel.
    pub capacity: Amount,
    /// Blocks the hub keeps the channel open once it is on chain.
    pub duration_blocks: u64,
    /// What the payee paid, base units.
    pub fee: Amount,
    /// The signed payment, submitted by the hub (kept to submit again if it is lost).
    pub payment_tx: Vec<u8>,
    pub requested_at_ms: u64,
    pub state: RequestState,
}

/// Where a channel request stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestState {
    /// The payment is not final yet.
    Paying,
    /// Paid; the hub opened `channel` (usable once on chain) and keeps it open until the
    /// transfer chain reaches `lease_until` (counted from the height the hub opened it at).
    Opened {
        channel: ChannelId,
        lease_until: Height,
    },
    /// The payment never reached the chain: nothing was paid, nothing opened.
    Failed { reason: String },
}

/// The first answer to a request with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    /// What the request asked (a repeat must ask the same).
    pub fingerprint: String,
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// What a ledger entry records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentKind {
    /// A stream tick received from the payer.
    StreamIn,
    /// Stream money delivered to the payee (signed by both on the payee's channel).
    StreamOut,
    /// A hash-locked payment delivered to the payee.
    RoutedOut,
    /// A direct payment to the hub.
    Received,
    /// A payer put money in a verification fund (held by the hub).
    FundIn,
    /// One agreeing evaluator's verification fee out of a fund (now owed to the evaluator).
    FundRelease,
    /// What a settled fund did not pay out, back on the payer's channel.
    FundReturn,
}

impl PaymentKind {
    /// Whether the entry's counterparty is a payer paying the hub or paid back by it (a
    /// payer's history lists it); else it is a payee the hub paid.
    pub fn is_payers(&self) -> bool {
        matches!(
            self,
            PaymentKind::StreamIn
                | PaymentKind::Received
                | PaymentKind::FundIn
                | PaymentKind::FundReturn
        )
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentKind::StreamIn => "stream_in",
            PaymentKind::StreamOut => "stream_out",
            PaymentKind::RoutedOut => "routed_out",
            PaymentKind::Received => "received",
            PaymentKind::FundIn => "fund_in",
            PaymentKind::FundRelease => "fund_release",
            PaymentKind::FundReturn => "fund_return",
        }
    }
}

/// One entry of the accounting ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub seq: u64,
    pub at_ms: u64,
    pub kind: PaymentKind,
    pub channel: ChannelId,
    /// Who paid (incoming) or was paid (outgoing).
    pub counterparty: PublicKeyBytes,
    pub amount_msat: Msat,
    pub fee_msat: Msat,
    pub stream: Option<Hash256>,
    pub payment_hash: Option<Hash256>,
    /// The channel state (`seq`) that carries it.
    pub state_seq: u64,
    /// A verification fund's entries: the optimae it is for.
    pub optimae: Option<Hash256>,
}

/// Something that happened to the hub's channels or funds that a business following the hub
/// hears of (webhooks; payments are the ledger's [`Payment`]s). Written in the same batch as
/// the change it reports, so none is lost to a crash and none is told before it is durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubEvent {
    /// In the order the hub recorded them, from 1.
    pub seq: u64,
    pub at_ms: u64,
    pub kind: HubEventKind,
}

/// What a [`HubEvent`] reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HubEventKind {
    /// The channel's opening is on chain, with what each side put in.
    ChannelOpened {
        channel: ChannelId,
        peer: PublicKeyBytes,
        role: ChannelRole,
        hub_msat: Msat,
        peer_msat: Msat,
    },
    /// The channel is paid out on chain (at `height`).
    ChannelClosed {
        channel: ChannelId,
        peer: PublicKeyBytes,
        role: ChannelRole,
        height: Height,
    },
    /// A verification fund paid out: `released_msat` to evaluators (fees, the hub's included),
    /// `returned_msat` back over the payer's channel (0 when that goes back on chain later).
    FundSettled {
        optimae: Hash256,
        payer_channel: ChannelId,
        funded_msat: Msat,
        released_msat: Msat,
        returned_msat: Msat,
        /// Votes paid: an evaluator that agreed in both rounds counts twice.
        evaluators_paid: u32,
    },
}

impl HubEventKind {
    /// The event's type, as webhooks name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            HubEventKind::ChannelOpened { .. } => "channel.opened",
            HubEventKind::ChannelClosed { .. } => "channel.closed",
            HubEventKind::FundSettled { .. } => "fund.settled",
        }
    }
}
