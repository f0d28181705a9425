//! The channel hub's REST types (`/v1/hub/...`). Milli-unit amounts are decimal strings.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The largest integer the OpenAPI document allows in a query (it states `u64` query values as
/// `int64`, as most clients read them): a larger one is refused like any other bad value, so
/// the node accepts exactly what its document allows.
const QUERY_INT_MAX: u64 = 9_223_372_036_854_775_807;

fn query_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(n) if n > QUERY_INT_MAX => Err(serde::de::Error::custom(format!(
            "{n} is above {QUERY_INT_MAX}"
        ))),
        n => Ok(n),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeeView {
    /// Charged per forwarded payment (a stream tick or a routed HTLC), milli-units.
    pub base_msat: u64,
    /// Millionths of the forwarded amount.
    pub ppm: u32,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HubInfo {
    pub address: String,
    pub network: String,
    pub fee: FeeView,
    /// Dispute window of the channels the hub opens; the shortest it accepts on a payer's.
    pub dispute_blocks: u64,
    pub min_dispute_blocks: u64,
    /// Blocks between a routed HTLC's expiry towards the payee and the payer's.
    pub cltv_delta: u64,
    /// Most the hub owes one payee before it refuses more stream ticks towards it.
    pub max_owed_msat: String,
    pub channels: usize,
    /// What the hub can still pay out over its open payee channels, milli-units.
    pub outgoing_liquidity_msat: String,
    /// What payers hold in their open channels to the hub, milli-units.
    pub incoming_capacity_msat: String,
}

/// One channel as the hub holds it. Milli-unit amounts are decimal strings. (In the OpenAPI
/// document `HubChannelView`: the transfer chain's on-chain record is another `ChannelView`.)
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = HubChannelView)]
pub struct ChannelView {
    pub id: String,
    /// `incoming` (a payer's channel to the hub) or `outgoing` (the hub's to a payee).
    pub role: String,
    pub peer: String,
    /// `opening` (not on chain yet), `open`, `closing` or `closed`.
    pub status: String,
    /// Seq of the newest state both signed.
    pub seq: u64,
    pub hub_balance_msat: String,
    pub peer_balance_msat: String,
    pub pending_htlcs: usize,
    /// Outgoing: forwarded to the payee and not yet paid out.
    pub owed_msat: String,
    /// An update is in flight (the peer may need to fetch the outbox).
    pub update_in_flight: bool,
    pub closed_at: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// A channel the payer opened on the transfer chain with this hub as counterparty.
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub channel_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenOutgoingRequest {
    /// The payee's address.
    #[schema(format = "doin-address")]
    pub payee: String,
    /// Base units the hub locks (decimal string).
    #[schema(pattern = r"^[1-9][0-9]{0,18}$")]
    pub deposit: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OpenedView {
    pub channel_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClosedView {
    /// `cooperative` (paid out at once), `force` (posted; settled after the window) or
    /// `after-payout` (a payee channel with a payout due or under way: nothing new goes
    /// towards the payee, and the hub closes once the payee has taken it, or after
    /// `cltv_delta` blocks regardless).
    pub how: String,
}

/// The payee's proof that it asks for its own feed (absent when the operator asks).
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedAuth {
    /// The time the payee signed, in unix milliseconds (within 5 minutes of the hub's clock).
    #[serde(default, deserialize_with = "query_int")]
    pub at: Option<u64>,
    /// The payee's BIP340 signature (hex) over `H_tag("doin/hub-feed", chain_id ‖ payee key ‖
    /// at as u64 big-endian)`.
    pub sig: Option<String>,
}

/// One ledger entry. Milli-unit amounts are decimal strings.
#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
pub struct PaymentView {
    pub seq: u64,
    pub at_ms: u64,
    /// `stream_in`, `stream_out`, `routed_out`, `received`, `fund_in`, `fund_release` or
    /// `fund_return`.
    pub kind: String,
    pub channel: String,
    pub counterparty: String,
    pub amount_msat: String,
    pub fee_msat: String,
    pub stream: Option<String>,
    pub payment_hash: Option<String>,
    pub state_seq: u64,
    /// A verification fund's entry: its optimae (hex).
    pub optimae: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Entries with a sequence number above this one.
    #[serde(default, deserialize_with = "query_int")]
    pub after: Option<u64>,
    /// At most this many rows (1-100000, default 100000).
    #[param(minimum = 1, maximum = 100000)]
    pub limit: Option<usize>,
    /// Only entries made at or after this time (unix milliseconds).
    #[serde(default, deserialize_with = "query_int")]
    pub from: Option<u64>,
    /// Only entries made before this time (unix milliseconds).
    #[serde(default, deserialize_with = "query_int")]
    pub to: Option<u64>,
}

/// A page of a payee's (or payer's) ledger entries, with its proof ([`FeedAuth`]).
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayeePageQuery {
    /// Entries with a sequence number above this one.
    #[serde(default, deserialize_with = "query_int")]
    pub after: Option<u64>,
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// See [`FeedAuth`].
    #[serde(default, deserialize_with = "query_int")]
    pub at: Option<u64>,
    /// See [`FeedAuth`].
    pub sig: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The channel message (bincode, hex), see docs/channels.md.
    #[schema(format = "doin-channel-message", pattern = r"^([0-9a-fA-F]{2})+$")]
    pub message: String,
    /// A stream tick: the stream it pays (hex).
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub stream: Option<String>,
    /// An HTLC through the hub: the invoice it pays.
    #[schema(format = "bolt11")]
    pub invoice: Option<String>,
    /// Evaluator pay: a stream tick that pays the verification fee of the stream payee's vote
    /// on this optimae (hex). The hub signs it only for a vote the main chain holds, that
    /// agreed with the decision and was not paid before, and only for exactly the fee.
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub vote_optimae: Option<String>,
    /// Pipelining: a second message (hex), handled right after `message` in the same durable
    /// step; `message` must then be a `Confirm`, and `stream`, `invoice` and `vote_optimae`
    /// belong to this one. A streaming payer confirms one tick and proposes the next in one
    /// request.
    #[schema(format = "doin-channel-message", pattern = r"^([0-9a-fA-F]{2})+$")]
    pub next: Option<String>,
    /// A split tick: the payer pays several of its streams with one `Pay` (one signature for
    /// them all), each stream its share (which may pay a vote's verification fee); the shares
    /// add up to the `Pay`. Given alone (no `stream`, `invoice` or `vote_optimae`), at most 64
    /// shares, each stream once.
    pub split: Option<Vec<ShareRequest>>,
    /// A funding tick: the `Pay` goes into this optimae's verification fund (hex), which the
    /// hub pays out to the agreeing evaluators once the decision is final and returns the
    /// rest of. Given alone; only while the optimae is revealed and not finally decided.
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub fund_optimae: Option<String>,
    /// The peer's BIP340 signature (hex) over `H_tag("doin/hub-message", chain_id ‖
    /// channel_id ‖ message ‖ stream ‖ SHA-256(invoice) ‖ vote_optimae ‖ split digest ‖
    /// fund_optimae)`, each of the last five 32 zero bytes when absent; with `next`, over
    /// `H_tag("doin/hub-messages", chain_id ‖ channel_id ‖ SHA-256(message) ‖ SHA-256(next) ‖
    /// the same five)`. The split digest is `SHA-256(stream ‖ amount_msat as u64 big-endian ‖
    /// vote_optimae or 32 zero bytes, for each share in order)`, or 32 zero bytes without
    /// `split`.
    #[schema(pattern = r"^[0-9a-fA-F]{128}$")]
    pub signature: String,
}

/// One stream's share of a split tick.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// The stream (hex).
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub stream: String,
    /// Its share of the tick in milli-units (decimal string).
    pub amount_msat: String,
    /// Evaluator pay: the share is the verification fee of the stream payee's vote on this
    /// optimae (hex), checked like `vote_optimae` of a single tick.
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub vote_optimae: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    /// The hub's answer (hex), already durable; null when none is due.
    pub reply: Option<String>,
    /// Ledger entries this message completed.
    pub payments: Vec<PaymentView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutboxView {
    /// The hub's proposal waiting for the peer (hex), or null.
    pub message: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecodeRequest {
    /// A BOLT11 invoice of this network.
    #[schema(format = "bolt11")]
    pub invoice: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvoiceView {
    pub amount_msat: String,
    pub payment_hash: String,
    pub payee: String,
    pub description: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub min_final_cltv_blocks: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HubInvoiceRequest {
    /// Milli-units (decimal string).
    #[schema(pattern = r"^[1-9][0-9]{0,18}$")]
    pub amount_msat: String,
    #[serde(default)]
    pub description: String,
    /// Seconds the invoice stays payable (default 3600, at most a week).
    #[schema(minimum = 1, maximum = 604800)]
    pub expiry_secs: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HubInvoiceView {
    /// BOLT11, signed by the hub's key.
    pub invoice: String,
    pub payment_hash: String,
    pub amount_msat: String,
    pub description: String,
    pub expires_at: u64,
    /// The payer channel whose HTLC paid it; null while unpaid.
    pub paid_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// The payer's channel to the hub (hex).
    #[schema(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub payer_channel: String,
    /// The payee's invoice: its amount is the stream's budget, its hash the stream's id.
    #[schema(format = "bolt11")]
    pub invoice: String,
    /// The payer's BIP340 signature (hex) over `doin_hub_core::auth::stream_auth_hash`: `H_tag("doin/hub-stream",
    /// chain_id ‖ payer_channel ‖ SHA-256(invoice))`. Only the payer binds an invoice to its
    /// channel.
    #[schema(pattern = r"^[0-9a-fA-F]{128}$")]
    pub signature: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamView {
    pub id: String,
    pub payer_channel: String,
    pub payee_channel: String,
    pub payee: String,
    pub budget_msat: String,
    pub received_msat: String,
    pub forwarded_msat: String,
    pub fees_msat: String,
    pub ticks: u64,
    pub opened_at_ms: u64,
    pub closed: bool,
}

/// A verification fund. Milli-unit amounts are decimal strings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundView {
    /// The optimae (hex).
    pub optimae: String,
    pub payer_channel: String,
    pub funded_msat: String,
    /// Paid to evaluators (their verification fees, the hub's fee included).
    pub released_msat: String,
    /// Given back to the payer on its channel when the fund settled.
    pub returned_msat: String,
    /// Each evaluator paid (address) and its fee in msat.
    pub paid: Vec<FundPaidView>,
    pub funded_at_ms: u64,
    /// The decision was final and the fund paid out.
    pub settled: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundPaidView {
    pub evaluator: String,
    pub fee_msat: String,
}

/// What a channel of a given capacity and duration costs (`GET /v1/hub/channel-requests/quote`).
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChannelQuoteQuery {
    /// Base units the hub would lock in the channel.
    #[serde(deserialize_with = "query_int_required")]
    pub capacity: u64,
    /// Blocks the hub keeps the channel open once it opened it.
    #[serde(deserialize_with = "query_int_required")]
    pub duration_blocks: u64,
}

fn query_int_required<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    query_int(d)?.ok_or_else(|| serde::de::Error::custom("a number is needed"))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelQuoteView {
    /// Base units (decimal string).
    pub capacity: String,
    pub duration_blocks: u64,
    /// What the payee pays, base units (decimal string): a transfer of at least this much to
    /// `pay_to`.
    pub fee: String,
    /// The hub's address.
    pub pay_to: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelRequestBody {
    /// Base units the hub locks (decimal string).
    #[schema(pattern = r"^[1-9][0-9]{0,18}$")]
    pub capacity: String,
    /// Blocks the hub keeps the channel open once it opened it.
    pub duration_blocks: u64,
    /// The payee's signed transfer of the fee to the hub (hex of the transaction's canonical
    /// bytes); its sender is the payee and its id the request's id.
    #[schema(pattern = r"^([0-9a-fA-F]{2})+$")]
    pub payment: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelRequestView {
    /// The payment transaction's id (hex).
    pub id: String,
    /// The payee's address.
    pub payee: String,
    /// Base units (decimal string).
    pub capacity: String,
    pub duration_blocks: u64,
    /// Base units paid (decimal string).
    pub fee: String,
    /// `paying` (the payment is not final yet), `opened` or `failed`.
    pub status: String,
    /// Once `opened`: the channel (usable once on chain).
    pub channel: Option<String>,
    /// Once `opened`: the hub keeps the channel open until this transfer-chain height.
    pub lease_until: Option<u64>,
    /// Once `failed`: why.
    pub reason: Option<String>,
    pub requested_at_ms: u64,
}

/// What an API key may do: `read` (the accounting export, the hub's invoices, payees'
/// feeds), `invoice` (invoices payable to the hub), `pay` (open and close the hub's channels,
/// close streams), `admin` (everything, keys included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyScope {
    Read,
    Invoice,
    Pay,
    Admin,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRequest {
    /// At least one.
    #[schema(min_items = 1)]
    pub scopes: Vec<ApiKeyScope>,
    /// What the key is for (at most 100 characters).
    #[serde(default)]
    #[schema(max_length = 100)]
    pub label: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub scopes: Vec<ApiKeyScope>,
    pub label: String,
    pub created_at_ms: u64,
    /// The key itself (`Authorization: Bearer <key>`): only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What a webhook is told of: `payment.received` (a payment to the hub, an invoice's or a
/// payer's into a verification fund), `payout.sent` (money delivered to a payee: stream
/// money, a hash-locked payment), `channel.opened` (a channel's opening is on chain),
/// `channel.closed` (a channel is paid out on chain), `fund.settled` (a verification fund paid
/// out). Stream ticks received from payers are not events (thousands a second): the payee
/// feeds and the accounting export list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum WebhookEventType {
    #[serde(rename = "payment.received")]
    PaymentReceived,
    #[serde(rename = "payout.sent")]
    PayoutSent,
    #[serde(rename = "channel.opened")]
    ChannelOpened,
    #[serde(rename = "channel.closed")]
    ChannelClosed,
    #[serde(rename = "fund.settled")]
    FundSettled,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where deliveries are POSTed: an `https://` or `http://` URL (at most 2048 characters).
    #[schema(max_length = 2048)]
    pub url: String,
    /// At least one.
    #[schema(min_items = 1)]
    pub events: Vec<WebhookEventType>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    /// 16 hex digits.
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookEventType>,
    pub created_at_ms: u64,
    /// The HMAC-SHA256 key of the deliveries' `Doin-Webhook-Signature` (64 hex digits): only
    /// in the answer that made the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One event's delivery to one webhook.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryView {
    /// The delivery's number (`Doin-Webhook-Id` is `<webhook id>-<number>`).
    pub seq: u64,
    /// The event's id (`p<ledger seq>` or `e<event seq>`): the same in every delivery of it.
    pub event_id: String,
    pub event_type: WebhookEventType,
    /// `pending` (an attempt is due at `next_attempt_at_ms`), `delivered` (a 2xx answer) or
    /// `failed` (every attempt refused; redeliver to try again).
    pub state: String,
    pub attempts: u32,
    pub created_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at_ms: Option<u64>,
    /// The receiver's HTTP status at the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed, when it got no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The body POSTed (JSON: `id`, `type`, `created_at_ms`, `data`).
    pub body: String,
}

/// A page of a webhook's deliveries, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryPage {
    pub deliveries: Vec<WebhookDeliveryView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// A channel event's `data`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelEventView {
    pub channel: String,
    /// The peer's address.
    pub peer: String,
    /// `incoming` (a payer's channel) or `outgoing` (the hub's channel to a payee).
    pub role: String,
    /// `channel.opened`: what each side put in, milli-units (decimal strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_msat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_msat: Option<String>,
    /// `channel.closed`: the height it was paid out at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at_height: Option<u64>,
}

/// A `fund.settled` event's `data`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundSettledView {
    pub optimae: String,
    pub payer_channel: String,
    pub funded_msat: String,
    pub released_msat: String,
    /// Given back over the payer's channel; `0` when the rest goes back on chain later.
    pub returned_msat: String,
    pub evaluators_paid: u32,
}

/// A page of a webhook's deliveries.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryPageQuery {
    /// Deliveries numbered above this one.
    #[serde(default, deserialize_with = "query_int")]
    pub after: Option<u64>,
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// A page of a list of the hub's (channels, streams, funds), shown to the operator or, of what
/// concerns it, to one party.
#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartyPageQuery {
    /// The payer or payee whose records to show (its address). A party reading its own gives
    /// it with `at` and `sig`; the operator may give it or not (everything).
    #[param(format = "doin-address")]
    pub party: Option<String>,
    /// The time the party signed, in unix milliseconds (within 5 minutes of the hub's clock).
    #[serde(default, deserialize_with = "query_int")]
    pub at: Option<u64>,
    /// The party's BIP340 signature (hex) over `H_tag("doin/hub-feed", chain_id ‖ its key ‖ at
    /// as u64 big-endian)`.
    pub sig: Option<String>,
    /// Records with an id above this one (hex), in id order: the last id of the page before.
    #[param(pattern = r"^(0x)?[0-9a-fA-F]{64}$")]
    pub after: Option<String>,
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}
