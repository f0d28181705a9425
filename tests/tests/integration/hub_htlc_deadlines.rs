//! HTLC deadlines at the hub, on a real transfer chain: a payer that withholds the fulfilment
//! of an HTLC the hub was paid for loses it on chain; an HTLC the payee never answers comes
//! back to the payer off chain and to the hub on chain; a preimage a payee reveals on chain
//! is used towards the payer. Nobody's money is lost in any of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::Change;
use doin_hub::store::RouteState;
use doin_hub::{HubConfig, ProposalContext, WatchReport};
use doin_tests::hub_harness::{exchange, htlc_context, payee_invoice, pull, HubWorld, UNIT};
use doin_tx_core::channel::{sha256, ChannelPhase, ChannelState, Side};
use doin_tx_core::{StateView, TxPayload};
use doin_types::Hash256;

const PAYER_DEPOSIT: u64 = 50_000;
const HUB_DEPOSIT: u64 = 100_000;

fn config() -> HubConfig {
    HubConfig {
        dispute_blocks: 4,
        min_dispute_blocks: 3,
        // Margin of 3 blocks before an HTLC's expiry.
        cltv_delta: 6,
        ..HubConfig::default()
    }
}

/// The payer locks `amount` units (plus the hub's fee) for the payee's invoice with expiry
/// `expiry`; the hub forwards it and the payee signs the forward. Returns the HTLC amount the
/// payer locked (milli-units).
fn route_htlc(w: &mut HubWorld, preimage: [u8; 32], amount: u64, expiry: u64) -> u64 {
    let invoice = payee_invoice(&w.payee.key, amount * UNIT, preimage, "one verification");
    let h = w.net.height();
    let locked = amount * UNIT
        + w.hub
            .config()
            .fee
            .fee(doin_types::Msat::new(amount * UNIT))
            .unwrap()
            .get();
    let add = w
        .payer
        .m
        .propose(
            Change::AddHtlc {
                amount_msat: locked,
                payment_hash: Hash256(sha256(&preimage)),
                expiry,
            },
            h,
        )
        .unwrap();
    let in_id = w.in_id;
    exchange(
        &w.hub,
        &mut w.payer,
        &in_id,
        add.send.unwrap(),
        htlc_context(invoice),
        h,
    );
    assert_eq!(
        w.payer.m.latest().state.htlcs.len(),
        1,
        "the hub took the HTLC"
    );
    let out_id = w.out_id;
    assert!(
        pull(&w.hub, &mut w.payee, &out_id, h),
        "the hub forwards it"
    );
    assert_eq!(w.payee.m.latest().state.htlcs.len(), 1);
    locked
}

/// Makes blocks, running the watch after each, until `done` holds for a report (at most
/// `limit` blocks). Returns that report and the height it was made at.
fn blocks_until(
    w: &HubWorld,
    limit: u64,
    done: impl Fn(&WatchReport) -> bool,
) -> (WatchReport, u64) {
    for _ in 0..limit {
        w.net.block();
        let report = w.hub.watch().unwrap();
        if done(&report) {
            return (report, w.net.height());
        }
    }
    panic!("nothing happened within {limit} blocks");
}

fn posted(w: &HubWorld, id: &doin_tx_core::channel::ChannelId) -> ChannelState {
    match w.net.chain.store().channel(id).unwrap().unwrap().phase {
        ChannelPhase::Closing { posted, .. } => posted,
        other => panic!("channel not closing: {other:?}"),
    }
}

#[test]
fn a_payer_withholding_a_fulfilment_loses_the_htlc_on_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HubWorld::new(dir.path(), config(), PAYER_DEPOSIT, HUB_DEPOSIT);
    let preimage = [7u8; 32];
    let hash = Hash256(sha256(&preimage));
    let expiry = w.net.height() + 20;
    let locked = route_htlc(&mut w, preimage, 900, expiry);

    // The payee takes the hub's HTLC with the preimage; the hub asks the payer for its own
    // with it, and the payer never answers.
    let h = w.net.height();
    let take = w
        .payee
        .m
        .propose(Change::FulfillHtlc { preimage }, h)
        .unwrap();
    let out_id = w.out_id;
    exchange(
        &w.hub,
        &mut w.payee,
        &out_id,
        take.send.unwrap(),
        ProposalContext::default(),
        h,
    );
    assert_eq!(w.payee.m.my_balance_msat(), 900 * UNIT);
    assert!(w.hub.outbox(&w.in_id).unwrap().is_some());

    // The hub waits until `margin` blocks before the expiry, then closes and claims at once.
    let margin = 3;
    let (report, at) = blocks_until(&w, 40, |r| !r.force_closed.is_empty());
    assert_eq!(report.force_closed, vec![w.in_id]);
    assert_eq!(report.claimed, vec![hash]);
    assert_eq!(at, expiry - margin);
    w.net.block();
    let state = posted(&w, &w.in_id);
    assert!(state.htlcs.is_empty(), "claimed: {state:?}");
    assert_eq!(state.balance_b_msat, locked, "the hub has the payer's HTLC");
    assert_eq!(state.balance_a_msat, PAYER_DEPOSIT * UNIT - locked);
    w.net.assert_supply();

    // The window passes; the watch settles the channel and the hub is paid out.
    blocks_until(&w, 20, |r| r.closed.contains(&w.in_id));
    assert!(w.hub.channel(&w.in_id).unwrap().closed_at.is_some());
    w.net.assert_supply();
}

#[test]
fn an_htlc_the_payee_never_answers_comes_back_to_payer_and_hub() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HubWorld::new(dir.path(), config(), PAYER_DEPOSIT, HUB_DEPOSIT);
    let preimage = [8u8; 32];
    let hash = Hash256(sha256(&preimage));
    let expiry = w.net.height() + 20;
    route_htlc(&mut w, preimage, 900, expiry);
    let expiry_out = expiry - config().cltv_delta;

    // Silence from the payee: at the forward's expiry the route fails and the payer's HTLC
    // is released off chain.
    let (report, at) = blocks_until(&w, 40, |r| !r.expired.is_empty());
    assert_eq!(report.expired, vec![hash]);
    assert_eq!(at, expiry_out);
    assert_eq!(
        w.hub.store().route(&hash).unwrap().unwrap().state,
        RouteState::Failed
    );
    let in_id = w.in_id;
    assert!(pull(&w.hub, &mut w.payer, &in_id, at));
    assert!(w.payer.m.latest().state.htlcs.is_empty());
    assert_eq!(w.payer.m.my_balance_msat(), PAYER_DEPOSIT * UNIT);

    // The hub asks for its own HTLC back; the payee does not sign, so after the margin the
    // hub closes on chain and the HTLC returns to it at settlement.
    assert!(matches!(
        w.hub.outbox(&w.out_id).unwrap(),
        Some(doin_channels::Message::Propose {
            change: Change::ExpireHtlc { .. },
            ..
        })
    ));
    let (report, at) = blocks_until(&w, 10, |r| !r.force_closed.is_empty());
    assert_eq!(report.force_closed, vec![w.out_id]);
    assert_eq!(at, expiry_out + 3);
    w.net.block();
    let state = posted(&w, &w.out_id);
    assert_eq!(state.htlcs.len(), 1);
    assert_eq!(state.htlcs[0].offered_by, Side::A);
    let (before, from) = (w.net.balance(&w.hub_key), w.net.height() + 1);
    blocks_until(&w, 20, |r| r.closed.contains(&w.out_id));
    let fees = w.net.fees_paid(&w.hub_key, from, w.net.height());
    // The whole deposit, the expired HTLC included, less the settlement's fee.
    assert_eq!(w.net.balance(&w.hub_key) - before + fees, HUB_DEPOSIT);
    w.net.assert_supply();
}

#[test]
fn a_preimage_a_payee_reveals_on_chain_pays_the_hub_off_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HubWorld::new(dir.path(), config(), PAYER_DEPOSIT, HUB_DEPOSIT);
    let preimage = [5u8; 32];
    let hash = Hash256(sha256(&preimage));
    let expiry = w.net.height() + 30;
    let locked = route_htlc(&mut w, preimage, 900, expiry);

    // The payee skips the hub: it posts the state with the HTLC and claims it on chain.
    let payee_key = doin_tests::hub_harness::copy_key(&w.payee.key);
    w.net.send(
        &payee_key,
        TxPayload::ChannelForceClose {
            channel: w.out_id,
            state: Some(Box::new(w.payee.m.latest().clone())),
        },
    );
    w.net.send(
        &payee_key,
        TxPayload::HtlcClaim {
            channel: w.out_id,
            preimage,
        },
    );
    w.net.block();
    let report = w.hub.watch().unwrap();
    assert_eq!(report.learned, vec![hash]);
    assert!(matches!(
        w.hub.store().route(&hash).unwrap().unwrap().state,
        RouteState::Fulfilled { .. }
    ));
    // The hub takes the payer's HTLC with the preimage it read from the chain.
    let in_id = w.in_id;
    let h = w.net.height();
    assert!(pull(&w.hub, &mut w.payer, &in_id, h));
    assert!(w.payer.m.latest().state.htlcs.is_empty());
    assert_eq!(w.payer.m.my_balance_msat(), PAYER_DEPOSIT * UNIT - locked);
    // Learned once: a later pass does not book it again.
    w.net.block();
    assert!(w.hub.watch().unwrap().learned.is_empty());
    let routed: Vec<_> = w
        .hub
        .store()
        .payments(0, 100)
        .unwrap()
        .into_iter()
        .filter(|p| p.payment_hash == Some(hash))
        .collect();
    assert_eq!(routed.len(), 1);
    assert_eq!(routed[0].amount_msat.get(), 900 * UNIT);
    w.net.assert_supply();
}
