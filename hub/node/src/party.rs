//! Who may read what concerns one party of the hub (a payer or a payee: its channels,
//! streams, funds and payments): the operator (its token, or an API key with the `read`
//! scope), or the party itself with a fresh proof: `at` (unix milliseconds, within
//! [`FEED_AUTH_WINDOW_MS`] of the hub's clock) and `sig`, its BIP340 signature over
//! [`feed_auth_hash`]. Nobody else. This module decides access only; it knows no route.

use crate::api_keys::Scope;
use crate::hub::Hub;
use crate::rest::OperatorToken;
use axum::http::{HeaderMap, StatusCode};
use doin_crypto::verify;
use doin_http::Problem;
use doin_hub_core::auth::{feed_auth_hash, FEED_AUTH_WINDOW_MS};
use doin_types::{Hash256, PublicKeyBytes, SignatureBytes};

/// Who is reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Everything (or one party's, when it named one).
    Operator(Option<PublicKeyBytes>),
    /// Only what concerns this party.
    Party(PublicKeyBytes),
}

impl Reader {
    /// The party whose records to show; `None`: every record.
    pub(crate) fn only(&self) -> Option<PublicKeyBytes> {
        match self {
            Reader::Operator(party) => *party,
            Reader::Party(party) => Some(*party),
        }
    }
}

/// Whether `party`'s proof (`at`, `sig`) is fresh and its own; `refuse` words the refusal.
pub(crate) fn check_proof(
    hub: &Hub,
    party: &PublicKeyBytes,
    at: u64,
    sig: &str,
    refuse: impl Fn(String) -> Problem,
) -> Result<(), Problem> {
    let now = u64::try_from(crate::hub::now().as_millis()).unwrap_or(u64::MAX);
    if now.abs_diff(at) > FEED_AUTH_WINDOW_MS {
        return Err(refuse(format!(
            "the signature's time {at} is more than {} s from the hub's clock ({now}): sign \
             again",
            FEED_AUTH_WINDOW_MS / 1000
        )));
    }
    let sig = SignatureBytes(crate::rest::hex32(sig, "sig")?);
    let hash = feed_auth_hash(&hub.chain().chain_id(), party, at);
    verify(party, &hash, &sig).map_err(|_| refuse("the signature is not the party's".into()))
}

fn party_only(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "party-only", "Party only", detail)
}

/// The party whose records a list shows to its reader (`None`: every record, to the
/// operator); see [`reader`].
pub(crate) fn list_reader(
    hub: &Hub,
    operator: &OperatorToken,
    headers: &HeaderMap,
    q: &doin_api::hub::PartyPageQuery,
) -> Result<Option<PublicKeyBytes>, Problem> {
    let who = reader(
        hub,
        operator,
        headers,
        q.party.as_deref(),
        q.at,
        q.sig.as_deref(),
    )?;
    Ok(who.only())
}

/// Who reads a list: the operator, or `party` (an address) with its fresh proof.
pub(crate) fn reader(
    hub: &Hub,
    operator: &OperatorToken,
    headers: &HeaderMap,
    party: Option<&str>,
    at: Option<u64>,
    sig: Option<&str>,
) -> Result<Reader, Problem> {
    let party = party.map(|a| crate::rest::parse_addr(hub, a)).transpose()?;
    if crate::access::authorize(hub, operator, headers, Scope::Read).is_ok() {
        return Ok(Reader::Operator(party));
    }
    let (Some(party), Some(at), Some(sig)) = (party, at, sig) else {
        return Err(party_only(
            "a payer's or payee's records are shown to it (`party`, its address, with `at` and \
             `sig`: its signature over H_tag(\"doin/hub-feed\", chain_id ‖ its key ‖ at)) or \
             to the operator",
        ));
    };
    check_proof(hub, &party, at, sig, party_only)?;
    Ok(Reader::Party(party))
}

/// One page of `items` (in id order): those with an id above `after` (hex), at most `limit`
/// (1-1000, default 100).
pub(crate) fn page<T>(
    items: impl IntoIterator<Item = (Hash256, T)>,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<(Hash256, T)>, Problem> {
    let limit = match limit {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(_) => return Err(Problem::bad_request("invalid-limit", "limit is 1-1000")),
    };
    let after = after
        .map(|a| crate::rest::parse_hash(a, "after"))
        .transpose()?;
    Ok(items
        .into_iter()
        .filter(|(id, _)| after.is_none_or(|a| id.0 > a.0))
        .take(limit)
        .collect())
}
