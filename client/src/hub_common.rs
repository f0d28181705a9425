//! What the hub's commands share: printing the hub's answers (text, or JSON with `--json`),
//! parsing ids and amounts given on the command line, and the operator's token. Used by
//! `hub_cli` and `hub_operator_cli`; it knows neither.

use crate::http::json;
use crate::wallet::WalletOpts;
use anyhow::{anyhow, Context};
use doin_api::hub::{ChannelView, PaymentView, StreamView};
use doin_types::{Amount, Hash256};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Prints `v` as JSON with `--json`, else as `text` says.
pub(crate) fn print<T: Serialize + ?Sized>(opts: &WalletOpts, v: &T, text: impl FnOnce(&T)) {
    if opts.json {
        println!("{}", json(v));
    } else {
        text(v);
    }
}

pub(crate) fn print_channel(c: &ChannelView) {
    println!(
        "{}  {:<8} {:<8} seq {:<6} hub {} msat  peer {} msat  owed {} msat  htlcs {}  peer {}",
        c.id,
        c.role,
        c.status,
        c.seq,
        c.hub_balance_msat,
        c.peer_balance_msat,
        c.owed_msat,
        c.pending_htlcs,
        c.peer,
    );
}

pub(crate) fn print_stream(st: &StreamView) {
    println!(
        "{}  payer {}  payee {}  budget {}  received {}  forwarded {}  fees {}  ticks {}  {}",
        st.id,
        st.payer_channel,
        st.payee,
        st.budget_msat,
        st.received_msat,
        st.forwarded_msat,
        st.fees_msat,
        st.ticks,
        if st.closed { "closed" } else { "open" },
    );
}

pub(crate) fn print_payment(p: &PaymentView) {
    println!(
        "#{:<6} {:<10} {:>14} msat  fee {:>8}  channel {}  state {}",
        p.seq, p.kind, p.amount_msat, p.fee_msat, p.channel, p.state_seq,
    );
}

pub(crate) fn hash(text: &str, what: &str) -> anyhow::Result<Hash256> {
    Hash256::from_hex(text).map_err(|e| anyhow!("{what}: {e}"))
}

pub(crate) fn doin(text: &str, what: &str) -> anyhow::Result<Amount> {
    Amount::parse_doin(text).map_err(|e| anyhow!("{what}: {e}"))
}

/// The hub operator's token: from `path`, else `./devnet/hub.cookie` or
/// `./doin-data/hub.cookie`, whichever exists.
pub(crate) fn cookie(path: Option<&Path>) -> anyhow::Result<String> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => ["./devnet/hub.cookie", "./doin-data/hub.cookie"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                anyhow!("operator calls need the node's hub.cookie: give --cookie PATH")
            })?,
    };
    let token = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the operator token {}", path.display()))?;
    Ok(token.trim().to_string())
}

/// The wall clock since the Unix epoch (zero before it).
pub(crate) fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(std::time::Duration::ZERO)
}
