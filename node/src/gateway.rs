//! The REST gateway: every service's routes under one axum router, plus the node's own
//! endpoints (`/livez`, `/readyz`, `/metrics`, `/v1/node/status`, `/openapi.json`, `/docs`) and
//! the cross-cutting layers (client address and request id with the access log, metrics, rate
//! limit, timeouts, body limit, CORS, panic guard).

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use doin_http::access::{AccessConfig, REQUEST_ID};
use doin_http::{Problem, RateLimitConfig, RateLimiter};
use doin_main_node::MainChain;
use doin_telemetry::{HttpMetrics, Metrics};
use doin_tx_node::TxChain;
use serde::Serialize;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// Readiness as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Readiness {
    Starting = 0,
    Ready = 1,
    Syncing = 2,
    Broken = 3,
}

/// Shared, lock-free readiness flag set by the runtime.
#[derive(Clone, Default)]
pub struct ReadyFlag(Arc<AtomicU8>);

impl ReadyFlag {
    pub fn set(&self, r: Readiness) {
        self.0.store(r as u8, Ordering::SeqCst);
    }

    pub fn get(&self) -> Readiness {
        match self.0.load(Ordering::SeqCst) {
            1 => Readiness::Ready,
            2 => Readiness::Syncing,
            3 => Readiness::Broken,
            _ => Readiness::Starting,
        }
    }
}

#[derive(Clone)]
pub struct GatewayState {
    pub metrics: Metrics,
    pub ready: ReadyFlag,
    pub started: Instant,
    pub tx: Option<Arc<TxChain>>,
    pub main: Option<Arc<MainChain>>,
    /// The hub with the token its operator calls need.
    pub hub: Option<(Arc<doin_hub::Hub>, doin_hub::api::OperatorToken)>,
    pub chains: Vec<String>,
    pub net: Option<doin_net::NetHandle>,
    pub tx_sync: Option<doin_sync::SyncState>,
    pub main_sync: Option<doin_sync::SyncState>,
    /// The warp sync this run made, if it made one.
    pub warp: Option<doin_tx_node::warp::WarpProgress>,
}

impl GatewayState {
    /// Readiness as reported: a ready node that is catching up with its peers is syncing.
    fn readiness(&self) -> Readiness {
        match self.ready.get() {
            Readiness::Ready
                if self.tx_sync.as_ref().is_some_and(|s| s.is_syncing())
                    || self.main_sync.as_ref().is_some_and(|s| s.is_syncing()) =>
            {
                Readiness::Syncing
            }
            r => r,
        }
    }
}

#[derive(Clone)]
pub struct GatewayLimits {
    pub rate: RateLimitConfig,
    pub request_timeout: Duration,
    /// Trusted proxies and the access log.
    pub access: AccessConfig,
    /// Web origins whose pages may read this API (`rest.cors_allowed_origins`): empty (none),
    /// `["*"]` (any), or exact origins such as `https://wallet.example`.
    pub cors_allowed_origins: Vec<String>,
}

/// The cross-origin policy: none unless origins are allow-listed. Without CORS headers a
/// browser keeps a page of another origin from reading the answers (and refuses to send its
/// preflighted requests), so a web page a user visits cannot read or drive a node on their
/// machine.
fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("idempotency-key"),
            REQUEST_ID,
        ])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER]);
    if origins == ["*"] {
        return Ok(Some(base.allow_origin(Any)));
    }
    let mut allowed = Vec::with_capacity(origins.len());
    for o in origins {
        let well_formed = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
            .is_some_and(|host| {
                !host.is_empty()
                    && host.bytes().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']')
                    })
            });
        if !well_formed {
            return Err(format!(
                "rest.cors_allowed_origins: {o:?} is not an origin (scheme://host[:port], no path), \
                 and \"*\" must stand alone"
            ));
        }
        allowed.push(HeaderValue::from_str(o).map_err(|e| format!("{o:?}: {e}"))?);
    }
    Ok(Some(base.allow_origin(AllowOrigin::list(allowed))))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DOIN node REST API",
        description = "Transfer chain, main chain, node status and events. Amounts are decimal strings of base units (1 DOIN = 10^8). Errors are RFC 9457 problem+json with a stable `type` (urn:doin:problem:<kind>).",
        version = env!("CARGO_PKG_VERSION")
    ),
    paths(livez, readyz, metrics, node_status),
    components(schemas(NodeStatus, Health)),
    tags((name = "node", description = "Liveness, readiness, metrics and status"))
)]
struct NodeApiDoc;

/// The OpenAPI documents of the gateway's parts, in the order [`openapi`] merges them.
fn part_docs() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        NodeApiDoc::openapi(),
        doin_tx_node::api::TxApiDoc::openapi(),
        doin_tx_node::account_api::AccountApiDoc::openapi(),
        doin_tx_node::proof_api::ProofApiDoc::openapi(),
        doin_tx_node::stake_api::StakeApiDoc::openapi(),
        doin_tx_node::simulate_api::SimulateApiDoc::openapi(),
        doin_tx_node::channel_api::ChannelApiDoc::openapi(),
        crate::anchor_api::AnchorApiDoc::openapi(),
        doin_main_node::api::MainApiDoc::openapi(),
        doin_hub::api::HubApiDoc::openapi(),
        crate::node_api::NodeNetApiDoc::openapi(),
    ]
}

/// The full OpenAPI document of this node.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut parts = part_docs().into_iter();
    let mut doc = parts.next().unwrap_or_else(NodeApiDoc::openapi);
    for part in parts {
        doc.merge(part);
    }
    add_gateway_responses(&mut doc);
    describe_problems_and_security(&mut doc);
    doc
}

/// Every operation of the document, whatever its method.
fn operations_mut(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

/// The name of the hub operator's bearer scheme in the document.
const OPERATOR_SCHEME: &str = "hub_operator_token";

/// Two things the route annotations cannot say: a problem may carry extension members besides
/// the ones named (`expected_nonce`, `kept_from`, …: `docs/api.md`), and the hub's operator
/// routes take a bearer token — required where a route answers 401 to anyone else, one of two
/// ways in where a payee's signature also does.
fn describe_problems_and_security(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement};
    use utoipa::openapi::RefOr;
    // Served by the node itself: the server is wherever the document was read from. Routes
    // need no credentials unless they say so below.
    doc.servers = Some(vec![utoipa::openapi::server::ServerBuilder::new()
        .url("/")
        .description(Some("this node"))
        .build()]);
    doc.security = Some(vec![SecurityRequirement::default()]);
    // Each part names its tags; merged, a tag named by two parts is listed once.
    if let Some(tags) = &mut doc.tags {
        let mut seen = std::collections::BTreeSet::new();
        tags.retain(|t| seen.insert(t.name.clone()));
    }
    let components = doc.components.get_or_insert_with(Default::default);
    if let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("ProblemDoc") {
        problem.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(true)));
    }
    components.add_security_scheme(
        OPERATOR_SCHEME,
        utoipa::openapi::security::SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The hub operator's token, which the node writes to a file only its user can read (docs/hub.md)",
                ))
                .build(),
        ),
    );
    for op in operations_mut(doc) {
        let unauthorized = match op.responses.responses.get("401") {
            Some(RefOr::T(r)) => r.description.clone(),
            _ => continue,
        };
        let token = SecurityRequirement::new(OPERATOR_SCHEME, Vec::<String>::new());
        if unauthorized.starts_with("Operator only") {
            op.security = Some(vec![token]);
        } else if unauthorized.contains("operator's token") {
            // The token or the route's own signature: no requirement is one way in.
            op.security = Some(vec![token, SecurityRequirement::default()]);
        }
    }
}

/// The answers the gateway itself may give to any request, before or instead of its route: the
/// rate limit (429) and the request timeout (408) on every operation, and the JSON body
/// extractor's refusals (`doin_http::Json`: 400, 413, 415, 422) on every operation that takes a
/// body, and 400 for a malformed path or query parameter. Added where a route does not document
/// them already.
fn add_gateway_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    Content::new(Some(Ref::from_schema_name("ProblemDoc"))),
                )
                .build(),
        )
    };
    let every = [
        ("429", "Too many requests from this client (`rest.rate_limit_per_second`); `Retry-After` says when to try again (`rate-limited`)"),
        ("408", "The request took longer than `rest.request_timeout_secs`"),
    ];
    let with_body = [
        ("400", "The body is not JSON (`malformed-json`)"),
        ("413", "The body is larger than this route accepts (`body-too-large`)"),
        ("415", "The body is not `application/json` (`unsupported-media-type`)"),
        ("422", "The body is JSON but not of the documented shape: a missing, unknown or mistyped field (`invalid-request-body`)"),
    ];
    let with_params = [(
        "400",
        "A path or query parameter is malformed (`invalid-path`, `invalid-query`)",
    )];
    for op in operations_mut(doc) {
        let has_body = op.request_body.is_some();
        let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
        let responses = &mut op.responses.responses;
        let extra = every
            .iter()
            .chain(with_body.iter().filter(|_| has_body))
            .chain(with_params.iter().filter(|_| has_params));
        for (status, description) in extra {
            responses
                .entry((*status).to_string())
                .or_insert_with(|| problem(description));
        }
    }
}

/// The whole API on one listener.
pub fn router(state: GatewayState, limits: GatewayLimits) -> Result<Router, String> {
    routers(state, limits, false).map(|(all, _)| all)
}

/// The API's routers: with `split_admin`, the public one and an admin one (`/metrics`,
/// `/v1/node/peers`, the hub's operator routes, and `/livez`, `/readyz` for probes), else the
/// whole API in the first and `None`.
pub fn routers(
    state: GatewayState,
    limits: GatewayLimits,
    split_admin: bool,
) -> Result<(Router, Option<Router>), String> {
    let http_metrics = HttpMetrics::new(&state.metrics).map_err(|e| e.to_string())?;
    let net_state = crate::node_api::NetState {
        net: state.net.clone(),
        tx_sync: state.tx_sync.clone(),
        main_sync: state.main_sync.clone(),
        warp: state.warp.clone(),
    };
    let probes = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(state.clone());
    let mut admin = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(crate::node_api::peers_router(net_state.clone()));
    if let Some((hub, operator)) = &state.hub {
        admin = admin.merge(doin_hub::api::operator_router(
            hub.clone(),
            operator.clone(),
        ));
    }
    let mut app = Router::new()
        .route("/v1/node/status", get(node_status))
        .with_state(state.clone())
        .merge(probes.clone())
        .merge(crate::node_api::sync_router(net_state));
    match &state.tx {
        Some(chain) => {
            app = app
                .merge(doin_tx_node::api::router(chain.clone()))
                .merge(doin_tx_node::account_api::router(chain.clone()))
                .merge(doin_tx_node::proof_api::router(chain.clone()))
                .merge(doin_tx_node::stake_api::router(chain.clone()))
                .merge(doin_tx_node::simulate_api::router(chain.clone()))
                .merge(doin_tx_node::channel_api::router(chain.clone()))
        }
        None => {
            app = app
                .route("/v1/tx/{*rest}", any(|| disabled("tx", "transfer chain")))
                .route(
                    "/v1/anchors/tx/{*rest}",
                    any(|| disabled("tx", "transfer chain")),
                )
        }
    }
    match &state.main {
        Some(chain) => app = app.merge(doin_main_node::api::router(chain.clone())),
        None => app = app.route("/v1/main/{*rest}", any(|| disabled("main", "main chain"))),
    }
    if let (Some(tx), Some(main)) = (&state.tx, &state.main) {
        app = app.merge(crate::anchor_api::router(tx.clone(), main.clone()));
    } else {
        let both = || async {
            Problem::not_found(
                "chain-disabled",
                "proofs across the chains need both chains; this node does not run both",
            )
        };
        app = app
            .route("/v1/anchors/main/{*rest}", any(both))
            .route("/v1/anchors/checkpoint/{*rest}", any(both));
    }
    app = match &state.hub {
        Some((hub, operator)) => {
            app.merge(doin_hub::api::public_router(hub.clone(), operator.clone()))
        }
        None => app.route("/v1/hub/{*rest}", any(|| disabled("hub", "channel hub"))),
    };
    app = app.route("/v1/anchors/{*rest}", any(not_yet_anchors));
    let app = app.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()));
    if !split_admin {
        let all = app.merge(admin).fallback(doin_http::not_found);
        return Ok((with_layers(all, &limits, http_metrics)?, None));
    }
    let public = app.fallback(not_here);
    let admin = admin.merge(probes).fallback(doin_http::not_found);
    Ok((
        with_layers(public, &limits, http_metrics.clone())?,
        Some(with_layers(admin, &limits, http_metrics)?),
    ))
}

/// The public listener's answer to a path it does not serve when the node has an admin
/// listener: it may be one of the admin routes.
async fn not_here() -> Problem {
    Problem::not_found(
        "not-found",
        "no such route on this listener; /metrics, /v1/node/peers and the hub's operator routes \
         are served on this node's admin listener (rest.admin_listen)",
    )
}

/// The cross-cutting layers, the same on every listener.
fn with_layers(
    app: Router,
    limits: &GatewayLimits,
    http_metrics: HttpMetrics,
) -> Result<Router, String> {
    let app = app
        .method_not_allowed_fallback(doin_http::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            HttpMetrics::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            RateLimiter::new(limits.rate),
            RateLimiter::layer,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    let app = match cors_layer(&limits.cors_allowed_origins)? {
        Some(cors) => app.layer(cors),
        None => app,
    };
    Ok(app
        .layer(CatchPanicLayer::custom(|_| {
            Problem::internal("a request handler panicked").into_response()
        }))
        // Outermost: every answer, even a panic's or a refusal's, carries its request id and
        // is logged, and the rate limit sees the client the access layer judged.
        .layer(axum::middleware::from_fn_with_state(
            limits.access.clone(),
            doin_http::access::layer,
        )))
}

async fn not_yet_anchors() -> Problem {
    Problem::not_found(
        "not-available",
        "this version of doin serves /v1/anchors/tx/{id}, /v1/anchors/main/{height} and /v1/anchors/checkpoint/{tx_height} only",
    )
}

async fn disabled(chain: &'static str, name: &'static str) -> Problem {
    Problem::not_found(
        "chain-disabled",
        format!("this node does not run the {name} (`{chain}` is not in its chains)"),
    )
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`, `starting`, `syncing` or `broken`.
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/livez", tag = "node",
    responses((status = 200, description = "The process is up", body = Health)))]
async fn livez() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the node's chains are open and it takes requests.
#[utoipa::path(get, path = "/readyz", tag = "node",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 206, description = "Up but still catching up with the network", body = Health),
        (status = 503, description = "Starting, or a critical task failed", body = Health),
    ))]
async fn readyz(State(s): State<GatewayState>) -> Response {
    let (code, status) = match s.readiness() {
        Readiness::Ready => (StatusCode::OK, "ok"),
        Readiness::Syncing => (StatusCode::PARTIAL_CONTENT, "syncing"),
        Readiness::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
        Readiness::Broken => (StatusCode::SERVICE_UNAVAILABLE, "broken"),
    };
    (code, Json(Health { status })).into_response()
}

/// Prometheus metrics of this node.
#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(s): State<GatewayState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

#[derive(Serialize, ToSchema)]
struct NodeStatus {
    version: &'static str,
    /// Chains this node runs.
    chains: Vec<String>,
    network: Option<String>,
    uptime_secs: u64,
    /// `ok`, `starting`, `syncing` or `broken`.
    readiness: &'static str,
    tx_height: Option<u64>,
    tx_final_height: Option<u64>,
    main_height: Option<u64>,
}

/// Version, chains, network, uptime, readiness and heights.
#[utoipa::path(get, path = "/v1/node/status", tag = "node",
    responses((status = 200, description = "Version, chains and heights", body = NodeStatus)))]
async fn node_status(State(s): State<GatewayState>) -> Json<NodeStatus> {
    let tip = s.tx.as_ref().map(|c| c.tip());
    Json(NodeStatus {
        version: env!("CARGO_PKG_VERSION"),
        chains: s.chains.clone(),
        network: s
            .tx
            .as_ref()
            .map(|c| c.params().network.to_string())
            .or_else(|| s.main.as_ref().map(|m| m.params().network.to_string())),
        uptime_secs: s.started.elapsed().as_secs(),
        readiness: match s.readiness() {
            Readiness::Ready => "ok",
            Readiness::Syncing => "syncing",
            Readiness::Starting => "starting",
            Readiness::Broken => "broken",
        },
        tx_height: tip.as_ref().map(|t| t.header.height),
        tx_final_height: tip.as_ref().map(|t| t.final_height),
        main_height: s.main.as_ref().map(|m| m.head().header.height),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Merging keeps the first schema of a name: two different types under one name would
    /// describe one of them wrongly.
    #[test]
    fn no_two_schemas_share_a_component_name() {
        let mut seen: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        let mut clashes = Vec::new();
        for part in part_docs() {
            let Some(components) = part.components else {
                continue;
            };
            for (name, schema) in components.schemas {
                let schema = serde_json::to_value(schema).unwrap_or_default();
                match seen.get(&name) {
                    Some(first) if *first != schema => clashes.push(name),
                    Some(_) => {}
                    None => {
                        seen.insert(name, schema);
                    }
                }
            }
        }
        assert!(
            clashes.is_empty(),
            "one name, different schemas: {clashes:?}"
        );
    }

    /// What the gateway's layers and extractors answer is documented on every operation it
    /// can reach.
    #[test]
    fn every_operation_documents_the_gateways_own_answers() {
        let doc = serde_json::to_value(openapi()).unwrap_or_default();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let responses = &op["responses"];
                let mut expected = vec!["429", "408"];
                if !op["requestBody"].is_null() {
                    expected.extend(["400", "413", "415", "422"]);
                }
                for status in expected {
                    if responses[status].is_null() {
                        missing.push(format!("{method} {path}: {status}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "{missing:?}");
    }

    /// `docs/openapi.json` is the document this build serves, so that clients can be
    /// generated from the repository. After changing the API, rewrite it with
    /// `DOIN_WRITE_OPENAPI=1 cargo test -p doin-node --lib committed_openapi` and commit it.
    #[test]
    fn the_committed_openapi_document_is_the_served_one() {
        let served = serde_json::to_string_pretty(&openapi()).unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        if std::env::var_os("DOIN_WRITE_OPENAPI").is_some() {
            std::fs::write(path, &served).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == served,
            "docs/openapi.json is not the served document: rewrite it with \
             DOIN_WRITE_OPENAPI=1 cargo test -p doin-node --lib committed_openapi"
        );
    }

    #[test]
    fn operator_routes_declare_the_bearer_scheme_and_problems_their_members() {
        let doc = serde_json::to_value(openapi()).unwrap_or_default();
        let scheme = &doc["components"]["securitySchemes"][OPERATOR_SCHEME];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        let secured: Vec<String> = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                item.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, op)| !op["security"].is_null())
                    .map(move |(method, _)| format!("{method} {path}"))
            })
            .collect();
        assert!(
            secured.contains(&"get /v1/hub/accounting.csv".to_string()),
            "{secured:?}"
        );
        assert!(
            secured.iter().all(|s| s.contains("/v1/hub/")),
            "{secured:?}"
        );
        let problem = &doc["components"]["schemas"]["ProblemDoc"];
        assert_eq!(problem["additionalProperties"], true);
        assert_eq!(problem["properties"]["retriable"]["type"], "boolean");
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(openapi()).unwrap_or_default();
        let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                if let Some(id) = op["operationId"].as_str() {
                    ids.entry(id.to_string())
                        .or_default()
                        .push(format!("{method} {path}"));
                }
            }
        }
        let repeated: Vec<_> = ids.iter().filter(|(_, at)| at.len() > 1).collect();
        assert!(repeated.is_empty(), "{repeated:?}");
    }
}
