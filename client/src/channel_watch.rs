//! A payer's or payee's own watch over its channels with the hub: what to do on chain, decided
//! from the newest state this machine holds and the channel's record on the transfer chain —
//! without asking the hub, so that the money is safe when the hub is gone or cheats.
//!
//! [`decide`] is pure (one channel, one look at the chain, one action). The commands around it
//! (`doin hub close --force`, `challenge`, `settle`, `watch`) read the chain from any node of
//! the transfer chain (`--node`: the peer's own node, not necessarily the hub's), build the
//! transaction with the peer's key and submit it. This module never talks to the hub; `watch`
//! syncs with the hub through [`crate::hub_peer`] when it is told where the hub is.

use crate::http::Client;
use crate::hub_common::print;
use crate::hub_peer::{follow_proposals, HubPeer};
use crate::wallet::{self, TxOptions, WalletOpts};
use anyhow::{anyhow, bail};
use doin_api::tx::{ChannelView as ChainChannelView, SubmitResponse};
use doin_channels::ChannelMachine;
use doin_tx_core::channel::{ChannelId, Side, SignedChannelState, MSAT_PER_UNIT};
use doin_tx_core::TxPayload;
use doin_types::Hash256;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// One HTLC of a state posted on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PostedHtlc {
    pub offered_by: Side,
    pub payment_hash: Hash256,
    pub expiry: u64,
}

/// Where a channel is on chain, as this module needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OnChain {
    Open,
    Closing {
        posted_seq: u64,
        /// First height the posted state can be paid out at (before pending HTLCs' expiries).
        closes_at: u64,
        htlcs: Vec<PostedHtlc>,
    },
    Closed,
}

/// What to do about one channel now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing; the reason says why (or what the watch waits for).
    Wait(String),
    /// Post our newest state: an HTLC offered to us, whose preimage we hold, is about to expire
    /// unfulfilled off chain, so it must be claimed on chain.
    ForceClose,
    /// The posted state is older than our newest: replace it (whoever posted it forfeits its
    /// reserve to us if it was the other side).
    Challenge,
    /// Take an HTLC offered to us in the posted state with its preimage.
    Claim { preimage: [u8; 32] },
    /// The window is over: pay the posted state out.
    Settle,
    /// The channel is paid out.
    Closed,
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Wait(_) => "wait",
            Action::ForceClose => "force-close",
            Action::Challenge => "challenge",
            Action::Claim { .. } => "claim",
            Action::Settle => "settle",
            Action::Closed => "closed",
        }
    }
}

/// The one thing to do about a channel at `height`, given the newest state both signed that
/// this machine holds (`latest`, our side `me`), the chain's record, and the preimages we hold.
/// `margin`: blocks before an HTLC offered to us expires by which it is taken on chain.
pub(crate) fn decide(
    latest: &SignedChannelState,
    me: Side,
    chain: &OnChain,
    height: u64,
    margin: u64,
    preimage: impl Fn(&Hash256) -> Option<[u8; 32]>,
) -> Action {
    match chain {
        OnChain::Closed => Action::Closed,
        OnChain::Open => {
            let due = latest.state.htlcs.iter().any(|h| {
                h.offered_by != me
                    && height < h.expiry
                    && h.expiry.saturating_sub(height) <= margin
                    && preimage(&h.payment_hash).is_some()
            });
            if due {
                Action::ForceClose
            } else {
                Action::Wait("open".into())
            }
        }
        OnChain::Closing {
            posted_seq,
            closes_at,
            htlcs,
        } => {
            if *posted_seq < latest.state.seq && height < *closes_at {
                return Action::Challenge;
            }
            let claim = htlcs
                .iter()
                .filter(|h| h.offered_by != me && height < h.expiry)
                .find_map(|h| preimage(&h.payment_hash));
            if let Some(preimage) = claim {
                return Action::Claim { preimage };
            }
            let settles_at = htlcs.iter().map(|h| h.expiry).fold(*closes_at, u64::max);
            if height >= settles_at {
                Action::Settle
            } else {
                Action::Wait(format!(
                    "closing with state {posted_seq}: can be settled from height {settles_at}"
                ))
            }
        }
    }
}

fn side(text: &str) -> anyhow::Result<Side> {
    match text {
        "a" => Ok(Side::A),
        "b" => Ok(Side::B),
        other => bail!("the node named side {other:?}"),
    }
}

/// The chain's record of a channel, as [`decide`] takes it.
pub(crate) fn on_chain(v: &ChainChannelView) -> anyhow::Result<OnChain> {
    Ok(match v.phase.as_str() {
        "open" => OnChain::Open,
        "closed" => OnChain::Closed,
        "closing" => {
            let p = v
                .posted
                .as_ref()
                .ok_or_else(|| anyhow!("a closing channel without its posted state"))?;
            let htlcs = p
                .htlcs
                .iter()
                .map(|h| {
                    Ok(PostedHtlc {
                        offered_by: side(&h.offered_by)?,
                        payment_hash: Hash256::from_hex(&h.payment_hash)
                            .map_err(|e| anyhow!("payment hash: {e}"))?,
                        expiry: h.expiry,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            OnChain::Closing {
                posted_seq: p.seq,
                closes_at: p.closes_at,
                htlcs,
            }
        }
        other => bail!("the node named channel phase {other:?}"),
    })
}

/// The chain's record of `id` and the height it reflects.
async fn read_chain(client: &Client, id: &ChannelId) -> anyhow::Result<(OnChain, u64)> {
    let v: ChainChannelView = client
        .get(&format!("/v1/tx/channels/{}", id.to_hex()))
        .await?;
    Ok((on_chain(&v)?, v.height))
}

/// The transaction an action submits (`None` for waiting and closed).
fn payload(action: &Action, id: &ChannelId, latest: &SignedChannelState) -> Option<TxPayload> {
    let signed = || (latest.state.seq > 0).then(|| Box::new(latest.clone()));
    match action {
        Action::Wait(_) | Action::Closed => None,
        Action::ForceClose => Some(TxPayload::ChannelForceClose {
            channel: *id,
            state: signed(),
        }),
        Action::Challenge => Some(TxPayload::ChannelChallenge {
            state: Box::new(latest.clone()),
        }),
        Action::Claim { preimage } => Some(TxPayload::HtlcClaim {
            channel: *id,
            preimage: *preimage,
        }),
        Action::Settle => Some(TxPayload::ChannelSettle { channel: *id }),
    }
}

/// Signs and submits `payload` (a `what`) from the peer's key; what the node said.
async fn submit(
    peer: &HubPeer,
    payload: TxPayload,
    what: &str,
    tx: &TxOptions,
) -> anyhow::Result<SubmitResponse> {
    let signed = wallet::sign_payload(&peer.client, &peer.key, payload, tx).await?;
    let (_, sub) = peer
        .client
        .submit(signed.bytes())
        .await
        .map_err(|e| anyhow!("the node refused the {what}: {e}"))?;
    Ok(sub)
}

/// `doin hub close --force`: closes with the newest state this machine holds, without asking
/// the hub (which may be gone): at once when it holds no HTLC, else posted and paid out after
/// the window (`watch` then claims and settles).
pub(crate) async fn force_close(
    opts: &WalletOpts,
    peer: &HubPeer,
    id: &ChannelId,
    tx: &TxOptions,
) -> anyhow::Result<()> {
    let m = peer.machine(id).await?;
    let latest = m.latest().clone();
    let payload = if latest.state.seq > 0 && latest.state.htlcs.is_empty() {
        TxPayload::ChannelCoopClose {
            state: Box::new(latest),
        }
    } else {
        TxPayload::ChannelForceClose {
            channel: *id,
            state: (latest.state.seq > 0).then(|| Box::new(latest)),
        }
    };
    let sub = submit(peer, payload, "close", tx).await?;
    if !opts.json {
        println!(
            "closing with my balance of {} msat ({} base units), state {}, without the hub",
            m.my_balance_msat(),
            m.my_balance_msat() / MSAT_PER_UNIT,
            m.latest().state.seq
        );
    }
    wallet::report_submitted(opts, &peer.client, &sub, tx).await
}

/// `doin hub challenge` / `doin hub settle`: the one action `wanted` when the chain calls for
/// it, else an error saying what the channel waits for.
pub(crate) async fn act(
    opts: &WalletOpts,
    peer: &HubPeer,
    id: &ChannelId,
    wanted: &str,
    margin: u64,
    tx: &TxOptions,
) -> anyhow::Result<()> {
    let m = peer.machine(id).await?;
    let (chain, height) = read_chain(&peer.client, id).await?;
    let action = decide(m.latest(), m.me(), &chain, height, margin, |h| {
        peer.preimage(h)
    });
    if action.name() != wanted {
        let why = match &action {
            Action::Wait(why) => why.clone(),
            Action::Closed => "the channel is paid out".into(),
            other => format!("the channel needs a {} first", other.name()),
        };
        bail!("nothing to {wanted} on channel {}: {why}", id.to_hex());
    }
    let Some(payload) = payload(&action, id, m.latest()) else {
        bail!("nothing to {wanted}");
    };
    let sub = submit(peer, payload, wanted, tx).await?;
    wallet::report_submitted(opts, &peer.client, &sub, tx).await
}

/// Every channel this peer keeps a state of.
fn kept_channels(peer: &HubPeer) -> anyhow::Result<Vec<ChannelId>> {
    let dir = match std::fs::read_dir(&peer.state_dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", peer.state_dir.display())),
    };
    let mut out = Vec::new();
    for entry in dir {
        let name = entry?.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".channel")) else {
            continue;
        };
        if let Ok(id) = Hash256::from_hex(hex) {
            out.push(id);
        }
    }
    out.sort();
    Ok(out)
}

/// What `watch` needs besides the peer.
pub(crate) struct WatchPlan {
    pub channels: Vec<ChannelId>,
    pub margin: u64,
    pub interval: Duration,
    /// Sync with the hub at this node each pass (take payouts, answer its proposals); the
    /// watch goes on when the hub cannot be reached.
    pub hub: Option<HubPeer>,
    /// One pass, then stop.
    pub once: bool,
}

/// `doin hub watch`: every interval, for each channel, does what [`decide`] says; a
/// transaction stays the channel's only one until the chain has it in a final block or
/// dropped it. With a hub, also answers each proposal the hub pushes. Stops when every watched
/// channel is paid out (or after one pass with `once`).
pub(crate) async fn watch(
    opts: &WalletOpts,
    peer: &HubPeer,
    plan: WatchPlan,
) -> anyhow::Result<()> {
    let mut in_flight: HashMap<ChannelId, (String, &'static str)> = HashMap::new();
    let (wake_tx, mut wake) = tokio::sync::mpsc::channel::<ChannelId>(64);
    let mut followed: HashSet<ChannelId> = HashSet::new();
    let mut tick = tokio::time::interval(plan.interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(id) = wake.recv() => {
                if let Some(hub) = &plan.hub {
                    sync_with_hub(opts, hub, &id).await;
                }
                continue;
            }
        }
        let channels = if plan.channels.is_empty() {
            kept_channels(peer)?
        } else {
            plan.channels.clone()
        };
        let mut open = 0usize;
        for id in &channels {
            if let Some(hub) = &plan.hub {
                if followed.insert(*id) {
                    // Whatever waited before the stream opened, then each push.
                    sync_with_hub(opts, hub, id).await;
                    if !plan.once {
                        follow_proposals(hub.client.clone(), *id, wake_tx.clone());
                    }
                }
            }
            match watch_one(opts, peer, id, plan.margin, &mut in_flight).await {
                Ok(closed) => open += usize::from(!closed),
                Err(e) => {
                    open += 1;
                    report(opts, id, "error", &e.to_string(), None);
                }
            }
        }
        if plan.once || (open == 0 && !channels.is_empty()) {
            return Ok(());
        }
    }
}

/// One pass over one channel; `true` once it is paid out.
async fn watch_one(
    opts: &WalletOpts,
    peer: &HubPeer,
    id: &ChannelId,
    margin: u64,
    in_flight: &mut HashMap<ChannelId, (String, &'static str)>,
) -> anyhow::Result<bool> {
    if let Some((tx_id, what)) = in_flight.get(id) {
        // Wait for our transaction: acting again before it is final would duplicate it.
        match peer.client.tx(tx_id).await {
            Ok(t) if matches!(t.status.as_str(), "pending" | "included") => return Ok(false),
            Ok(_) => {}
            Err(e) => report(opts, id, what, &format!("{tx_id} gone: {e}"), None),
        }
        in_flight.remove(id);
    }
    let m: ChannelMachine = peer.machine(id).await?;
    let (chain, height) = read_chain(&peer.client, id).await?;
    let action = decide(m.latest(), m.me(), &chain, height, margin, |h| {
        peer.preimage(h)
    });
    let Some(payload) = payload(&action, id, m.latest()) else {
        return Ok(action == Action::Closed);
    };
    let tx_id = submit(peer, payload, action.name(), &TxOptions::default())
        .await?
        .id;
    report(
        opts,
        id,
        action.name(),
        &format!("height {height}, my state {}", m.latest().state.seq),
        Some(&tx_id),
    );
    in_flight.insert(*id, (tx_id, action.name()));
    Ok(false)
}

/// Takes what the hub proposes on `id` (payouts, fulfilments); a hub that cannot be reached
/// is reported and the watch goes on.
async fn sync_with_hub(opts: &WalletOpts, hub: &HubPeer, id: &ChannelId) {
    let synced = async {
        let height = hub.client.info().await?.height;
        let mut m = hub.machine(id).await?;
        hub.sync(&mut m, height).await
    }
    .await;
    match synced {
        Ok(done) if !done.completed.is_empty() => report(
            opts,
            id,
            "synced",
            &format!("{} update(s) with the hub", done.completed.len()),
            None,
        ),
        Ok(_) => {}
        Err(e) => report(opts, id, "hub-unreachable", &e.to_string(), None),
    }
}

fn report(opts: &WalletOpts, id: &ChannelId, what: &str, detail: &str, tx: Option<&str>) {
    let v = json!({"channel": id.to_hex(), "action": what, "detail": detail, "tx": tx});
    print(opts, &v, |_| match tx {
        Some(tx) => println!("{} {what}: {detail} (transaction {tx})", id.to_hex()),
        None => println!("{} {what}: {detail}", id.to_hex()),
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use doin_tx_core::channel::{ChannelState, Htlc};
    use doin_types::SignatureBytes;

    fn state(seq: u64, htlcs: Vec<Htlc>) -> SignedChannelState {
        SignedChannelState {
            state: ChannelState {
                channel_id: Hash256([1; 32]),
                seq,
                balance_a_msat: 1_000,
                balance_b_msat: 1_000,
                htlcs,
            },
            sig_a: SignatureBytes([0; 64]),
            sig_b: SignatureBytes([0; 64]),
        }
    }

    const KNOWN: [u8; 32] = [5; 32];

    fn preimages(h: &Hash256) -> Option<[u8; 32]> {
        (*h == Hash256([9; 32])).then_some(KNOWN)
    }

    fn htlc_to_b(expiry: u64) -> Htlc {
        Htlc {
            offered_by: Side::A,
            amount_msat: 10,
            payment_hash: Hash256([9; 32]),
            expiry,
        }
    }

    fn closing(posted_seq: u64, closes_at: u64, htlcs: Vec<PostedHtlc>) -> OnChain {
        OnChain::Closing {
            posted_seq,
            closes_at,
            htlcs,
        }
    }

    #[test]
    fn a_stale_close_is_challenged_while_the_window_is_open() {
        let latest = state(7, vec![]);
        let chain = closing(3, 100, vec![]);
        assert_eq!(
            decide(&latest, Side::B, &chain, 50, 5, preimages),
            Action::Challenge
        );
        // Too late to challenge: it settles as posted.
        assert_eq!(
            decide(&latest, Side::B, &chain, 100, 5, preimages),
            Action::Settle
        );
        // Our own newest state posted: wait for the window, then settle.
        let current = closing(7, 100, vec![]);
        assert!(matches!(
            decide(&latest, Side::B, &current, 99, 5, preimages),
            Action::Wait(_)
        ));
        assert_eq!(
            decide(&latest, Side::B, &current, 100, 5, preimages),
            Action::Settle
        );
    }

    #[test]
    fn a_newer_posted_state_is_never_challenged() {
        let latest = state(3, vec![]);
        let chain = closing(4, 100, vec![]);
        assert!(matches!(
            decide(&latest, Side::A, &chain, 10, 5, preimages),
            Action::Wait(_)
        ));
        // A machine with no signed state has nothing to challenge with.
        let chain = closing(0, 100, vec![]);
        assert!(matches!(
            decide(&state(0, vec![]), Side::A, &chain, 10, 5, preimages),
            Action::Wait(_)
        ));
    }

    #[test]
    fn an_htlc_offered_to_us_is_claimed_before_its_expiry_and_settlement_waits_for_it() {
        let posted = vec![PostedHtlc {
            offered_by: Side::A,
            payment_hash: Hash256([9; 32]),
            expiry: 120,
        }];
        let chain = closing(4, 100, posted.clone());
        let latest = state(4, vec![htlc_to_b(120)]);
        assert_eq!(
            decide(&latest, Side::B, &chain, 110, 5, preimages),
            Action::Claim { preimage: KNOWN }
        );
        // Past its expiry it returns to A: B waits, then settles.
        assert_eq!(
            decide(&latest, Side::B, &chain, 120, 5, preimages),
            Action::Settle
        );
        // A (who offered it) does not claim; it waits for the expiry.
        assert!(matches!(
            decide(&latest, Side::A, &chain, 110, 5, preimages),
            Action::Wait(_)
        ));
        // An HTLC whose preimage we do not hold is not ours to claim.
        let unknown = closing(
            4,
            100,
            vec![PostedHtlc {
                payment_hash: Hash256([8; 32]),
                ..posted[0].clone()
            }],
        );
        assert!(matches!(
            decide(&latest, Side::B, &unknown, 110, 5, preimages),
            Action::Wait(_)
        ));
    }

    #[test]
    fn an_open_channel_is_closed_when_an_htlc_we_can_take_nears_its_expiry() {
        let latest = state(4, vec![htlc_to_b(120)]);
        assert!(matches!(
            decide(&latest, Side::B, &OnChain::Open, 100, 5, preimages),
            Action::Wait(_)
        ));
        assert_eq!(
            decide(&latest, Side::B, &OnChain::Open, 115, 5, preimages),
            Action::ForceClose
        );
        // Expired: nothing left to take.
        assert!(matches!(
            decide(&latest, Side::B, &OnChain::Open, 120, 5, preimages),
            Action::Wait(_)
        ));
        assert_eq!(
            decide(&latest, Side::B, &OnChain::Closed, 120, 5, preimages),
            Action::Closed
        );
    }
}
