//! The hub's REST API (`/v1/hub/...`): the router and the OpenAPI document over the route
//! modules (`channel_api`, `message_api`, `stream_api`, `ledger_api`, `request_api`,
//! `keys_api`, `webhook_api`); operator calls are grouped by the API-key scope they need (`access`). Handlers parse,
//! authenticate and format; what the hub does is `doin-hub-core`'s. Every call that moves
//! money waits until the state it changed is on disk before answering, and takes an
//! `Idempotency-Key`.
//!
//! Channel protocol messages are authenticated: the peer signs (BIP340) the tagged hash
//! [`doin_hub_core::auth::message_auth_hash`] of the chain id, the channel id, the message and
//! the context it names, so nobody but the channel's peer can make the hub sign or block
//! anything.

use crate::access::require_scope;
use crate::api_keys::Scope;
use crate::hub::Hub;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use doin_api::hub::*;
use doin_http::ProblemDoc;
use std::sync::Arc;
use utoipa::OpenApi;

pub use crate::rest::OperatorToken;
pub use doin_hub_core::auth::*;

#[derive(OpenApi)]
#[openapi(
    paths(crate::channel_api::info, crate::channel_api::list_channels, crate::channel_api::get_channel, crate::channel_api::register_channel, crate::channel_api::open_outgoing, crate::channel_api::close_channel,
        crate::message_api::post_message, crate::message_api::outbox, crate::message_api::outbox_events, crate::stream_api::decode_invoice, crate::stream_api::create_hub_invoice, crate::stream_api::get_hub_invoice, crate::stream_api::open_stream, crate::stream_api::list_streams, crate::stream_api::get_stream,
        crate::stream_api::close_stream, crate::stream_api::list_funds, crate::stream_api::get_fund, crate::ledger_api::payee_payments, crate::ledger_api::payer_payments,
        crate::ledger_api::payee_payment_events, crate::ledger_api::accounting_csv,
        crate::request_api::quote, crate::request_api::request_channel, crate::request_api::get_request,
        crate::keys_api::create_key, crate::keys_api::list_keys, crate::keys_api::revoke_key,
        crate::webhook_api::create_webhook, crate::webhook_api::list_webhooks, crate::webhook_api::delete_webhook,
        crate::webhook_api::list_deliveries, crate::webhook_api::redeliver),
    components(schemas(HubInfo, FeeView, ChannelView, RegisterRequest, OpenOutgoingRequest,
        OpenedView, ClosedView, MessageRequest, ShareRequest, MessageResponse, OutboxView, DecodeRequest,
        InvoiceView, HubInvoiceRequest, HubInvoiceView, StreamRequest, StreamView, FundView, FundPaidView, PaymentView,
        ChannelQuoteView, ChannelRequestBody, ChannelRequestView, ApiKeyRequest, ApiKeyScope, ApiKeyView,
        WebhookEventType, WebhookRequest, WebhookView, WebhookDeliveryView, WebhookDeliveryPage, ChannelEventView, FundSettledView, ProblemDoc)),
    tags((name = "hub", description = "The channel hub: channels, streams, hash-locked payments, payee payment feeds, accounting"))
)]
pub struct HubApiDoc;

/// Routes under `/v1/hub`; the operator calls need `operator`.
pub fn router(hub: Arc<Hub>, operator: OperatorToken) -> Router {
    public_router(hub.clone(), operator.clone()).merge(operator_router(hub, operator))
}

/// The operator's routes, each behind the token or an API key of its scope (the node serves
/// them on its admin listener when it has one).
pub fn operator_router(hub: Arc<Hub>, operator: OperatorToken) -> Router {
    let gate = |scope: Scope| crate::access::Gate {
        operator: operator.clone(),
        hub: hub.clone(),
        scope,
    };
    // What moves the hub's money.
    let pay = Router::new()
        .route(
            "/v1/hub/channels/outgoing",
            post(crate::channel_api::open_outgoing),
        )
        .route(
            "/v1/hub/channels/{id}/close",
            post(crate::channel_api::close_channel),
        )
        .route(
            "/v1/hub/streams/{id}/close",
            post(crate::stream_api::close_stream),
        )
        .route_layer(from_fn_with_state(gate(Scope::Pay), require_scope));
    let read = Router::new()
        .route(
            "/v1/hub/accounting.csv",
            get(crate::ledger_api::accounting_csv),
        )
        .route(
            "/v1/hub/invoices/{hash}",
            get(crate::stream_api::get_hub_invoice),
        )
        .route_layer(from_fn_with_state(gate(Scope::Read), require_scope));
    let invoice = Router::new()
        .route(
            "/v1/hub/invoices",
            post(crate::stream_api::create_hub_invoice),
        )
        .route_layer(from_fn_with_state(gate(Scope::Invoice), require_scope));
    let admin = Router::new()
        .route(
            "/v1/hub/keys",
            get(crate::keys_api::list_keys).post(crate::keys_api::create_key),
        )
        .route("/v1/hub/keys/{id}", delete(crate::keys_api::revoke_key))
        .route(
            "/v1/hub/webhooks",
            get(crate::webhook_api::list_webhooks).post(crate::webhook_api::create_webhook),
        )
        .route(
            "/v1/hub/webhooks/{id}",
            delete(crate::webhook_api::delete_webhook),
        )
        .route(
            "/v1/hub/webhooks/{id}/deliveries",
            get(crate::webhook_api::list_deliveries),
        )
        .route(
            "/v1/hub/webhooks/{id}/deliveries/{seq}/redeliver",
            post(crate::webhook_api::redeliver),
        )
        .route_layer(from_fn_with_state(gate(Scope::Admin), require_scope));
    Router::new()
        .merge(pay)
        .merge(read)
        .merge(invoice)
        .merge(admin)
        .layer(Extension(operator))
        .with_state(hub)
}

/// Everyone else's routes: the hub's terms, the channel protocol, streams, channel requests,
/// and the lists and feeds each party reads of its own (the operator reads them too).
pub fn public_router(hub: Arc<Hub>, operator: OperatorToken) -> Router {
    Router::new()
        .route("/v1/hub/info", get(crate::channel_api::info))
        .route(
            "/v1/hub/channels",
            get(crate::channel_api::list_channels).post(crate::channel_api::register_channel),
        )
        .route(
            "/v1/hub/channels/{id}",
            get(crate::channel_api::get_channel),
        )
        .route(
            "/v1/hub/channels/{id}/messages",
            post(crate::message_api::post_message),
        )
        .route(
            "/v1/hub/channels/{id}/outbox",
            get(crate::message_api::outbox),
        )
        .route(
            "/v1/hub/channels/{id}/outbox/events",
            get(crate::message_api::outbox_events),
        )
        .route(
            "/v1/hub/channel-requests",
            post(crate::request_api::request_channel),
        )
        .route(
            "/v1/hub/channel-requests/quote",
            get(crate::request_api::quote),
        )
        .route(
            "/v1/hub/channel-requests/{id}",
            get(crate::request_api::get_request),
        )
        .route(
            "/v1/hub/invoices/decode",
            post(crate::stream_api::decode_invoice),
        )
        .route(
            "/v1/hub/streams",
            get(crate::stream_api::list_streams).post(crate::stream_api::open_stream),
        )
        .route("/v1/hub/streams/{id}", get(crate::stream_api::get_stream))
        .route("/v1/hub/funds", get(crate::stream_api::list_funds))
        .route("/v1/hub/funds/{optimae}", get(crate::stream_api::get_fund))
        .route(
            "/v1/hub/payees/{address}/payments",
            get(crate::ledger_api::payee_payments),
        )
        .route(
            "/v1/hub/payees/{address}/events",
            get(crate::ledger_api::payee_payment_events),
        )
        .route(
            "/v1/hub/payers/{address}/payments",
            get(crate::ledger_api::payer_payments),
        )
        // The party lists and feeds serve the operator too.
        .layer(Extension(operator))
        .with_state(hub)
}
