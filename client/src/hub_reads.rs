//! Reading from the hub what concerns one party (a payer or a payee): who reads — the party
//! itself, signing a fresh proof for each request, or the operator with its token — its
//! lists by pages, its ledger entries, and a payee's live payment feed. Requests and printing
//! only; what a party may see is the hub's rule (docs/hub.md, "Lists and feeds").

use crate::http::Client;
use crate::hub_common::{cookie, hash, print, print_payment, unix_now};
use crate::wallet::{self, WalletOpts};
use anyhow::anyhow;
use doin_api::hub::PaymentView;
use doin_crypto::KeyPair;
use doin_types::{Address, ChainId};
use std::path::Path;
use std::time::Duration;

/// Who reads a payee's payments: the payee, signing a fresh proof for every request, or the
/// operator with its token.
pub(crate) enum FeedReader {
    Party { key: KeyPair, chain_id: ChainId },
    Operator(String),
}

impl FeedReader {
    /// The query parameters of a fresh proof (`at=…&sig=…`; none for the operator).
    fn query(&self) -> Option<String> {
        match self {
            FeedReader::Party { key, chain_id } => {
                let at = u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX);
                let sig = key.sign(&doin_hub_core::auth::feed_auth_hash(
                    chain_id,
                    &key.public(),
                    at,
                ));
                Some(format!("at={at}&sig={}", hex::encode(sig.0)))
            }
            FeedReader::Operator(_) => None,
        }
    }

    fn bearer(&self) -> Option<&str> {
        match self {
            FeedReader::Party { .. } => None,
            FeedReader::Operator(token) => Some(token),
        }
    }
}

/// A page of a party's ledger entries at `path` (its query started), read as `reader`.
pub(crate) async fn ledger_page(
    client: &Client,
    path: &str,
    reader: &FeedReader,
) -> anyhow::Result<Vec<PaymentView>> {
    let proof = reader.query().map(|q| format!("&{q}")).unwrap_or_default();
    let (_, v): (u16, Vec<PaymentView>) = client
        .request(
            reqwest::Method::GET,
            &format!("{path}{proof}"),
            None::<&()>,
            reader.bearer(),
            None,
        )
        .await?;
    Ok(v)
}

/// One page of a list of the hub's: this key's records, signed with it, when `--keystore`
/// is given; else everything, with the operator's token.
pub(crate) async fn list<T: serde::de::DeserializeOwned>(
    opts: &WalletOpts,
    cookie_path: Option<&Path>,
    client: &Client,
    path: &str,
    after: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<T>> {
    let mut query = format!("limit={limit}");
    if let Some(after) = after {
        query.push_str(&format!("&after={}", hash(after, "--after")?.to_hex()));
    }
    let reader = if opts.keystore.is_some() {
        let (address, reader) = feed_reader(opts, cookie_path, client, None).await?;
        query.push_str(&format!("&party={address}"));
        reader
    } else {
        FeedReader::Operator(cookie(cookie_path).map_err(|_| {
            anyhow!(
                "the hub's lists are shown to the party they concern (give its key file with \
                 --keystore) or to the hub's operator (--cookie)"
            )
        })?)
    };
    if let Some(q) = reader.query() {
        query.push_str(&format!("&{q}"));
    }
    let (_, v): (u16, Vec<T>) = client
        .request(
            reqwest::Method::GET,
            &format!("{path}?{query}"),
            None::<&()>,
            reader.bearer(),
            None,
        )
        .await?;
    Ok(v)
}

/// The payee whose payments to show (`address`, else this key's) and how to prove the right
/// to see them: this key when it is the payee's, else the operator's token.
pub(crate) async fn feed_reader(
    opts: &WalletOpts,
    cookie_path: Option<&Path>,
    client: &Client,
    address: Option<&str>,
) -> anyhow::Result<(String, FeedReader)> {
    let (network, chain_id) = wallet::chain_of(client).await?;
    let key = match address {
        // No address: this key's payments, so the key is needed.
        None => Some(wallet::load_key(opts)?),
        Some(_) => wallet::load_key(opts).ok(),
    };
    let payee = match address {
        Some(a) => Address::parse(a, network)?.key,
        None => key
            .as_ref()
            .map(|k| k.public())
            .ok_or_else(|| anyhow!("no key"))?,
    };
    let address = Address::new(network, payee).to_string();
    if let Some(key) = key.filter(|k| k.public() == payee) {
        return Ok((address, FeedReader::Party { key, chain_id }));
    }
    let token = cookie(cookie_path).map_err(|_| {
        anyhow!(
            "a party's payments are shown to it (give its key file with --keystore) or to the \
             hub's operator (--cookie)"
        )
    })?;
    Ok((address, FeedReader::Operator(token)))
}

/// Prints a payee's payments as they arrive, resuming after the last one seen when the
/// connection drops (with a fresh proof each time).
pub(crate) async fn follow_payments(
    opts: &WalletOpts,
    client: &Client,
    address: &str,
    reader: &FeedReader,
    after: u64,
) -> anyhow::Result<()> {
    let mut last = after;
    loop {
        let path = match reader.query() {
            Some(q) => format!("/v1/hub/payees/{address}/events?{q}"),
            None => format!("/v1/hub/payees/{address}/events"),
        };
        let resp = match client.open_events(&path, Some(last), reader.bearer()).await {
            Ok(r) => r,
            Err(e @ crate::http::ClientError::Problem { .. }) => return Err(e.into()),
            Err(e) => {
                eprintln!("{e}; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let mut events = crate::http::EventReader::new(resp);
        while let Some(data) = events.next_data().await {
            let Ok(p) = serde_json::from_str::<PaymentView>(&data) else {
                continue;
            };
            last = last.max(p.seq);
            print(opts, &p, print_payment);
        }
        eprintln!("the payment feed closed; reconnecting");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
