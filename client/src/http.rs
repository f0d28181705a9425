//! A small typed client of the node's REST API: requests and answers are `doin-api`'s types,
//! and a refusal is the node's problem document, read into [`ClientError::Problem`].

use doin_api::tx::{AccountView, ChainInfo, FeeEstimate, SubmitRequest, SubmitResponse, TxView};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// `v` as compact JSON (what `--json` prints).
pub fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the node at {url}: {source}")]
    Network { url: String, source: reqwest::Error },
    #[error("{title} ({status}): {detail} [{kind}]")]
    Problem {
        status: u16,
        kind: String,
        title: String,
        detail: String,
        body: Value,
    },
    #[error("unexpected answer from the node: {0}")]
    Decode(String),
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// The problem kind (`nonce-too-low`, …) when the node refused the request.
    pub fn kind(&self) -> Option<&str> {
        match self {
            ClientError::Problem { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// For event streams: no overall timeout.
    streams: reqwest::Client,
}

/// The environment variable naming a PEM file of CA certificates to trust for `https://`
/// nodes besides the system's (a node with a certificate of its own CA).
pub const CA_CERT_ENV: &str = "DOIN_CA_CERT";

/// An HTTP client that trusts the system's roots and the CAs in [`CA_CERT_ENV`].
fn http_builder() -> Result<reqwest::ClientBuilder, ClientError> {
    let mut b = reqwest::Client::builder();
    if let Some(path) = std::env::var_os(CA_CERT_ENV) {
        let shown = std::path::Path::new(&path).display().to_string();
        let pem = std::fs::read(&path)
            .map_err(|e| ClientError::Setup(format!("{CA_CERT_ENV}={shown}: {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ClientError::Setup(format!("{CA_CERT_ENV}={shown}: not PEM certificates: {e}"))
        })?;
        if certs.is_empty() {
            return Err(ClientError::Setup(format!(
                "{CA_CERT_ENV}={shown}: no certificate in the file"
            )));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

impl Client {
    pub fn new(base: &str) -> Result<Client, ClientError> {
        let built = |b: reqwest::ClientBuilder| {
            b.build().map_err(|e| ClientError::Network {
                url: base.to_string(),
                source: e,
            })
        };
        let http = built(http_builder()?.timeout(std::time::Duration::from_secs(30)))?;
        let streams = built(http_builder()?)?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
            streams,
        })
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        url: &str,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<(u16, T), ClientError> {
        let resp = resp.map_err(|e| ClientError::Network {
            url: url.to_string(),
            source: e,
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        // An answer without a body (204) reads as null.
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))?
        };
        if status >= 400 {
            let s = |k: &str| {
                body.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let kind = s("type")
                .strip_prefix("urn:doin:problem:")
                .unwrap_or("unknown")
                .to_string();
            return Err(ClientError::Problem {
                status,
                kind,
                title: s("title"),
                detail: s("detail"),
                body,
            });
        }
        let v = serde_json::from_value(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok((status, v))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{}", self.base, path);
        let resp = self.http.get(&url).send().await;
        self.decode(&url, resp).await.map(|(_, v)| v)
    }

    pub async fn info(&self) -> Result<ChainInfo, ClientError> {
        self.get("/v1/tx/info").await
    }

    pub async fn account(&self, address: &str) -> Result<AccountView, ClientError> {
        self.get(&format!("/v1/tx/accounts/{address}")).await
    }

    pub async fn fees(&self) -> Result<FeeEstimate, ClientError> {
        self.get("/v1/tx/fees").await
    }

    pub async fn tx(&self, id: &str) -> Result<TxView, ClientError> {
        self.get(&format!("/v1/tx/transactions/{id}")).await
    }

    /// POSTs a JSON body; returns the HTTP status and the JSON answer.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(u16, T), ClientError> {
        let url = format!("{}{}", self.base, path);
        let resp = self.http.post(&url).json(body).send().await;
        self.decode(&url, resp).await
    }

    /// A JSON request with an optional body, bearer token and idempotency key; the HTTP
    /// status and the JSON answer.
    pub async fn request<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        bearer: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, T), ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await;
        self.decode(&url, resp).await
    }

    /// A GET answered with text (CSV), with an optional bearer token.
    pub async fn get_text(&self, path: &str, bearer: Option<&str>) -> Result<String, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.get(&url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| ClientError::Network {
            url: url.clone(),
            source: e,
        })?;
        if resp.status().is_success() {
            return resp
                .text()
                .await
                .map_err(|e| ClientError::Decode(e.to_string()));
        }
        // A problem document: decoded (and reported) like any other.
        self.decode::<Value>(&url, Ok(resp))
            .await
            .map(|_| String::new())
    }

    /// Opens a long-lived GET (server-sent events): no overall timeout, resumed after
    /// `last_event_id` when given.
    pub async fn open_events(
        &self,
        path: &str,
        last_event_id: Option<u64>,
        bearer: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.streams.get(&url).header("Accept", "text/event-stream");
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.map_err(|e| ClientError::Network {
            url: url.clone(),
            source: e,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self
            .decode::<Value>(&url, Ok(resp))
            .await
            .err()
            .unwrap_or_else(|| ClientError::Decode("the event stream was refused".into())))
    }

    /// Submits signed transaction bytes; returns the HTTP status (202 new, 200 known) too.
    pub async fn submit(&self, tx_bytes: &[u8]) -> Result<(u16, SubmitResponse), ClientError> {
        let body = SubmitRequest {
            tx: hex::encode(tx_bytes),
        };
        self.post("/v1/tx/transactions", &body).await
    }
}

/// Reads server-sent events from a stream opened by [`Client::open_events`].
pub struct EventReader {
    resp: reqwest::Response,
    buf: String,
}

impl EventReader {
    pub fn new(resp: reqwest::Response) -> EventReader {
        EventReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event's `data` (its lines joined); `None` when the stream ends.
    pub async fn next_data(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                    .collect();
                // A keep-alive comment carries no data.
                if data.is_empty() {
                    continue;
                }
                return Some(data.join(""));
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}
