//! What goes into [`crate::handle`] and what comes out: the inputs, the chain facts an input
//! needs ([`ChainSnapshot`], gathered by the caller beforehand as [`Needs`] says), and the
//! output the caller carries out in order — persist [`HubOutput::writes`], then submit
//! [`HubOutput::submissions`] (feeding their outcomes back as [`HubInput::Apply`]), then
//! answer with [`HubOutput::reply`].

use crate::error::HubError;
use crate::records::{
    ChannelRequest, Fund, HubChannel, HubEvent, HubInvoice, Payment, PendingContext, Route,
    StoredAnswer, Stream, StreamShare, VoteRef,
};
use doin_channels::{ChannelError, Message, Output, Snapshot};
use doin_tx_core::channel::{Channel, ChannelId};
use doin_tx_core::TxPayload;
use doin_types::{Amount, Hash256, Height, Msat, PortError, PublicKeyBytes};
use std::collections::BTreeMap;

/// Extra context of a proposal from a payer (which stream a tick belongs to, which invoice an
/// HTLC pays).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProposalContext {
    pub stream: Option<Hash256>,
    pub invoice: Option<String>,
    /// A stream tick that pays an evaluator's verification fee for this vote (released only
    /// for a vote the main chain holds).
    pub vote: Option<VoteRef>,
    /// A split tick: one `Pay` that pays several streams of this payer at once, each its
    /// share (the shares add up to the `Pay`). Used alone: no `stream`, `invoice` or `vote`.
    pub split: Vec<StreamShare>,
    /// A funding tick: the `Pay` goes into the verification fund of this optimae (used alone).
    pub fund: Option<Hash256>,
}

impl ProposalContext {
    /// The context as kept with the proposal the hub signed.
    pub fn pending(&self) -> PendingContext {
        PendingContext {
            stream: self.stream,
            invoice: self.invoice.clone(),
            vote: self.vote,
            split: self.split.clone(),
            fund: self.fund,
        }
    }
}

/// The most streams one split tick pays (bounds the work and the records of one update).
pub const MAX_SPLIT_SHARES: usize = 64;

/// The answer to a request with an `Idempotency-Key`, written in the batch of the operation
/// it answers: a crash can never leave the operation done without its answer (a retry would
/// repeat it) nor the answer without the operation.
pub struct PendingAnswer<R> {
    pub key: String,
    /// What the request asked (a repeat must ask the same).
    pub fingerprint: String,
    pub status: u16,
    /// The answer's JSON body, from the operation's result.
    pub body: fn(&R) -> Vec<u8>,
}

impl<R> PendingAnswer<R> {
    pub(crate) fn stored(self, result: &R) -> (String, StoredAnswer) {
        (
            self.key,
            StoredAnswer {
                fingerprint: self.fingerprint,
                status: self.status,
                body: (self.body)(result),
            },
        )
    }
}

impl<R> std::fmt::Debug for PendingAnswer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingAnswer({})", self.key)
    }
}

/// How the hub closes a channel the operator asked it to close.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseHow {
    /// With the newest state both signed: paid out at once.
    Cooperative,
    /// The newest state posted; settled after the dispute window.
    Force,
    /// A payee channel with a payout due: closed once the payee has taken it.
    AfterPayout,
}

impl CloseHow {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseHow::Cooperative => "cooperative",
            CloseHow::Force => "force",
            CloseHow::AfterPayout => "after-payout",
        }
    }
}

/// One message run through a copy of a channel's machine before the state is locked (see
/// [`crate::precompute`]).
#[derive(Clone, Debug)]
pub struct Precomputed {
    /// The snapshot the step started from.
    pub from: Snapshot,
    pub out: Result<Output, ChannelError>,
    /// The snapshot after the step.
    pub to: Snapshot,
}

/// What the hub is asked to do.
#[derive(Debug)]
pub enum HubInput {
    /// A peer's messages on `channel`: one, or a `Confirm` followed by the next proposal;
    /// `precomputed` are the machine's steps over them, made on a copy without the lock
    /// (used only where the channel has not moved since).
    Messages {
        channel: ChannelId,
        msgs: Vec<(Message, ProposalContext)>,
        precomputed: Vec<Precomputed>,
    },
    /// Take over a channel a payer opened on chain (its record is in the snapshot).
    RegisterIncoming {
        channel: ChannelId,
    },
    /// Open a channel from the hub to `payee` with `deposit` (the snapshot carries the
    /// hub's next nonce and the base fee).
    OpenOutgoing {
        payee: PublicKeyBytes,
        deposit: Amount,
        answer: Option<PendingAnswer<ChannelId>>,
    },
    /// A new invoice payable to the hub; the caller draws the preimage and the secret.
    CreateInvoice {
        amount: Msat,
        description: String,
        expiry_secs: u64,
        preimage: [u8; 32],
        secret: [u8; 32],
    },
    /// A stream from `payer_channel` to the payee of `invoice`.
    OpenStream {
        payer_channel: ChannelId,
        invoice: String,
    },
    CloseStream {
        stream: Hash256,
    },
    /// The operator closes `channel`.
    Close {
        channel: ChannelId,
        answer: Option<PendingAnswer<CloseHow>>,
    },
    /// A payee buys an inbound channel: `payment` is its signed transfer of the fee to the hub.
    RequestChannel {
        payment: Vec<u8>,
        capacity: Amount,
        duration_blocks: u64,
    },
    /// Open the channels whose request is paid (the snapshot carries the payments' status,
    /// the hub's next nonce and the base fee).
    OpenRequested,
    /// Propose whatever waits on every free channel.
    FlushAll,
    /// One pass of the watchtower (the snapshot carries the channels' on-chain records, the
    /// preimages claimed on chain since the last pass and the decisions of open funds).
    Watch,
    /// Submissions' outcomes: the marks of those the chain took, or of those it refused.
    Apply {
        marks: Vec<Mark>,
    },
}

/// What the chains said, read by the caller for one input (see [`Needs`]). Nothing in the
/// core reads a chain itself.
#[derive(Clone, Debug, Default)]
pub struct ChainSnapshot {
    /// Height of the transfer chain's final tip.
    pub height: Height,
    /// Base fee per weight unit of the next transfer block.
    pub base_fee: Amount,
    /// The nonce the hub's next transaction must carry (asked for by `OpenOutgoing`).
    pub hub_nonce: Option<u64>,
    /// On-chain records of the channels asked for (`None`: not on chain). A channel missing
    /// from the map was not read: the input treats it as unknown for now.
    pub channels: BTreeMap<ChannelId, Option<Channel>>,
    /// Preimages revealed by `HtlcClaim` transactions in final blocks `from..=to`.
    pub claims: Option<ClaimsRead>,
    /// The main chain's answers; `None` when the hub does not see the main chain.
    pub main: Option<MainSnapshot>,
    /// Where the transactions asked for stand (channel requests' payments).
    pub payments: BTreeMap<Hash256, Result<TxState, PortError>>,
}

/// Where a transaction stands on the transfer chain.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TxState {
    /// Neither in the pool nor in a block.
    Unknown,
    /// In the pool, or in a block that is not final yet.
    Pending,
    /// In a final block.
    Final,
}

/// Preimages claimed on chain in the final blocks `from..=to`, with the channel each names.
#[derive(Clone, Debug, Default)]
pub struct ClaimsRead {
    pub from: Height,
    pub to: Height,
    pub claims: Vec<(ChannelId, [u8; 32])>,
}

/// An optimae's decision as a verification fund sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// The main chain does not know the optimae (not revealed, or its reveal was undone).
    Unknown,
    /// Revealed, not decided yet, or decided in a block the transfer chain has not anchored
    /// (a reorganisation could still change it).
    Pending,
    /// Decided for good: the evaluators whose votes agreed with the decision, once per such
    /// vote (an evaluator that agreed in round 1 and again in round 2 is listed twice), and
    /// the fee each such vote earns (the domain's verification fee; zero when the domain
    /// charges none).
    Final {
        fee: Amount,
        agreeing: Vec<PublicKeyBytes>,
    },
}

/// The main chain's answers for one input.
#[derive(Clone, Debug, Default)]
pub struct MainSnapshot {
    pub decisions: BTreeMap<Hash256, Result<Decision, PortError>>,
    /// The verification fee each vote earns (`None`: it earns nothing).
    pub vote_fees: BTreeMap<VoteRef, Result<Option<Amount>, PortError>>,
}

/// What an input needs read from the chains before it is handled ([`crate::needs`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Channels whose on-chain record is needed.
    pub channels: Vec<ChannelId>,
    /// Preimages claimed on chain from this final height on (to the tip, at most
    /// [`crate::MAX_CLAIM_BLOCKS_PER_PASS`] blocks).
    pub claims_from: Option<Height>,
    pub decisions: Vec<Hash256>,
    pub vote_fees: Vec<VoteRef>,
    /// The hub's next nonce and the base fee.
    pub nonce: bool,
    /// Transactions whose status is needed (channel requests' payments).
    pub payments: Vec<Hash256>,
}

/// A transaction the hub wants on chain.
#[derive(Clone, Debug, PartialEq)]
pub enum PendingTx {
    /// Signed by the caller with the hub's next nonce at the time it is submitted.
    Payload(TxPayload),
    /// Signed already (an opening transaction, whose nonce fixed the channel's id).
    Signed(Vec<u8>),
}

/// Whether a submission goes ahead, given the outcomes of earlier ones of the same output.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only if the submission at this index was taken by the chain.
    IfAccepted(usize),
    /// Only if the submission at this index was refused.
    IfRefused(usize),
}

/// One transaction to submit, after the output's writes are durable, in output order.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    pub tx: PendingTx,
    pub when: Condition,
    /// Fed back with [`HubInput::Apply`] when the chain took it.
    pub on_accept: Vec<Mark>,
    /// Fed back when the chain refused it.
    pub on_refusal: Vec<Mark>,
}

/// What the hub records once it knows a submission's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A challenge with the state of this `seq` went out.
    Challenged {
        channel: ChannelId,
        seq: u64,
    },
    SettleSubmitted {
        channel: ChannelId,
    },
    ClaimSubmitted {
        channel: ChannelId,
        hash: Hash256,
    },
    /// The hub closed the channel over an HTLC deadline.
    ForceClosed {
        channel: ChannelId,
    },
    /// A close the operator asked for earlier went out.
    RequestedClose {
        channel: ChannelId,
    },
    /// The operator's close went out; the idempotent answer is written with it.
    OperatorClosed {
        channel: ChannelId,
        how: CloseHow,
        answer: Option<(String, StoredAnswer)>,
    },
    /// The chain refused a new channel's opening transaction: the channel never existed.
    OpeningRefused {
        channel: ChannelId,
        answer_key: Option<String>,
    },
    /// The chain took the transfer giving a settled fund's rest back to its payer on chain.
    FundReturnedOnChain {
        optimae: Hash256,
        returned_msat: Msat,
    },
    /// The chain refused a channel request's payment: the request never existed.
    RequestPaymentRefused {
        request: Hash256,
    },
    /// The chain refused the opening of a paid request's channel: the channel never existed
    /// and the request waits to be opened again.
    RequestOpeningRefused {
        request: Hash256,
        channel: ChannelId,
    },
}

/// Records to write, in one batch, before anything that depends on them leaves.
#[derive(Clone, Debug, Default)]
#[must_use = "writes must be persisted before the output's submissions and reply"]
pub struct Writes {
    pub channels: BTreeMap<ChannelId, HubChannel>,
    pub deleted_channels: Vec<ChannelId>,
    pub streams: BTreeMap<Hash256, Stream>,
    pub routes: BTreeMap<Hash256, Route>,
    /// Ledger entries, each with the payee whose feed lists it.
    pub payments: Vec<(Payment, Option<PublicKeyBytes>)>,
    pub claims_scanned: Option<Height>,
    pub answers: Vec<(String, StoredAnswer)>,
    pub deleted_answers: Vec<String>,
    pub paid_votes: Vec<(VoteRef, ChannelId)>,
    pub invoices: BTreeMap<Hash256, HubInvoice>,
    pub funds: BTreeMap<Hash256, Fund>,
    pub requests: BTreeMap<Hash256, ChannelRequest>,
    pub deleted_requests: Vec<Hash256>,
    /// Channel and fund events, in order (webhooks follow them).
    pub events: Vec<HubEvent>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
            && self.deleted_channels.is_empty()
            && self.streams.is_empty()
            && self.routes.is_empty()
            && self.payments.is_empty()
            && self.claims_scanned.is_none()
            && self.answers.is_empty()
            && self.deleted_answers.is_empty()
            && self.paid_votes.is_empty()
            && self.invoices.is_empty()
            && self.funds.is_empty()
            && self.requests.is_empty()
            && self.deleted_requests.is_empty()
            && self.events.is_empty()
    }

    /// The ledger entries of these writes.
    pub fn ledger(&self) -> Vec<Payment> {
        self.payments.iter().map(|(p, _)| p.clone()).collect()
    }
}

/// What one input answers.
#[derive(Debug)]
pub enum Reply {
    None,
    /// A peer's messages: the answer to the last one handled, and the error that stopped
    /// them, if any (the messages before it still count).
    Messages {
        reply: Option<Message>,
        error: Option<HubError>,
    },
    Channel(Box<HubChannel>),
    Opened(ChannelId),
    Invoice(HubInvoice),
    Stream(Stream),
    Closed(CloseHow),
    /// How many channels got a proposal.
    Flushed(usize),
    Request(ChannelRequest),
}

/// What the watchtower did (in a pass, or as its submissions' outcomes came back).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchReport {
    pub confirmed: Vec<ChannelId>,
    pub challenged: Vec<ChannelId>,
    pub settled: Vec<ChannelId>,
    pub closed: Vec<ChannelId>,
    /// Channels the hub closed on chain over an HTLC deadline.
    pub force_closed: Vec<ChannelId>,
    /// HTLCs claimed on chain with their preimage (by payment hash).
    pub claimed: Vec<Hash256>,
    /// Preimages learned from payees' claims on chain.
    pub learned: Vec<Hash256>,
    /// Routed payments failed because the payee let its HTLC expire.
    pub expired: Vec<Hash256>,
    /// Closes the operator asked for, started now that the payee took what was due.
    pub closing: Vec<ChannelId>,
}

impl WatchReport {
    /// Each kind of action with the ids it touched, in a fixed order.
    pub fn groups(&self) -> [(&'static str, &[Hash256]); 9] {
        [
            ("confirmed", &self.confirmed),
            ("challenged", &self.challenged),
            ("settled", &self.settled),
            ("closed", &self.closed),
            ("force_closed", &self.force_closed),
            ("claimed", &self.claimed),
            ("learned", &self.learned),
            ("expired", &self.expired),
            ("closing", &self.closing),
        ]
    }

    /// Adds `other`'s entries to this report.
    pub fn merge(&mut self, other: WatchReport) {
        self.confirmed.extend(other.confirmed);
        self.challenged.extend(other.challenged);
        self.settled.extend(other.settled);
        self.closed.extend(other.closed);
        self.force_closed.extend(other.force_closed);
        self.claimed.extend(other.claimed);
        self.learned.extend(other.learned);
        self.expired.extend(other.expired);
        self.closing.extend(other.closing);
    }
}

impl std::fmt::Display for WatchReport {
    /// Only what happened, with short channel ids: `confirmed 2 (1a7c71…, 5c58aa…) settled 1 (…)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (name, ids) in self.groups().iter().filter(|(_, ids)| !ids.is_empty()) {
            let short: Vec<String> = ids
                .iter()
                .map(|id| format!("{}…", &id.to_hex()[..12]))
                .collect();
            if !first {
                write!(f, " ")?;
            }
            first = false;
            write!(
                f,
                "{} {} ({})",
                name.replace('_', "-"),
                ids.len(),
                short.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Everything one input produced, to be carried out in order: persist, submit, reply.
#[derive(Debug)]
#[must_use = "an output's writes must be persisted and its submissions made"]
pub struct HubOutput {
    pub writes: Writes,
    pub submissions: Vec<Submission>,
    pub reply: Reply,
    pub report: WatchReport,
}

impl HubOutput {
    pub(crate) fn new(writes: Writes, reply: Reply) -> HubOutput {
        HubOutput {
            writes,
            submissions: Vec::new(),
            reply,
            report: WatchReport::default(),
        }
    }
}
