//! Verification funds after the decision: what a closed payer channel cannot take back goes
//! back on chain once, and a fund whose optimae stays undecided goes back after the timeout.

#![allow(clippy::unwrap_used)]

use doin_channels::{Change, ChannelMachine};
use doin_crypto::KeyPair;
use doin_hub_core::config::HubConfig;
use doin_hub_core::records::{ChannelRole, Fund, HubChannel, HubEventKind, PaymentKind};
use doin_hub_core::{ChainSnapshot, Decision, HubInput, MainSnapshot, Mark, PendingTx};
use doin_hub_core::{HubParams, HubState, Loaded};
use doin_tx_core::channel::Side;
use doin_tx_core::TxPayload;
use doin_types::{Amount, ChainId, Hash256, Msat, Network};
use std::sync::Arc;
use std::time::Duration;

const DAY_MS: u64 = 86_400_000;

fn key(i: u8) -> KeyPair {
    KeyPair::from_secret_bytes(&[i; 32]).unwrap()
}

/// A hub with one payer channel (`closed` or open) and one fund from it.
fn hub(closed: bool, fund: Fund) -> HubState {
    let chain_id = ChainId(Hash256([7; 32]));
    let (hub, payer) = (key(1), key(2));
    let id = fund.payer_channel;
    let m = ChannelMachine::new(
        chain_id,
        id,
        Side::B,
        payer.public(),
        hub.public(),
        10_000_000,
        0,
    )
    .unwrap();
    let mut c = HubChannel::new(
        ChannelRole::Incoming,
        payer.public(),
        m.snapshot().clone(),
        true,
    );
    c.closed_at = closed.then_some(5);
    let params = HubParams {
        key: Arc::new(hub),
        cfg: HubConfig::default(),
        chain_id,
        network: Network::Devnet,
    };
    HubState::new(
        params,
        Loaded {
            channels: vec![(id, c)],
            funds: vec![fund],
            ..Loaded::default()
        },
    )
}

fn fund(settled: bool, released: u64) -> Fund {
    Fund {
        optimae: Hash256([9; 32]),
        payer_channel: Hash256([3; 32]),
        funded_msat: Msat::new(5_000_500),
        released_msat: Msat::new(released),
        returned_msat: Msat::ZERO,
        paid: Vec::new(),
        funded_at_ms: 0,
        settled,
    }
}

fn pending(optimae: Hash256) -> ChainSnapshot {
    let mut main = MainSnapshot::default();
    main.decisions.insert(optimae, Ok(Decision::Pending));
    ChainSnapshot {
        height: 10,
        main: Some(main),
        ..ChainSnapshot::default()
    }
}

#[test]
fn what_a_closed_payer_channel_cannot_take_back_goes_back_on_chain_once() {
    let f = fund(true, 2_000_000);
    let mut st = hub(true, f.clone());
    let out = watch(&mut st, &pending(f.optimae), 1_000).unwrap();
    let [sub] = &out.submissions[..] else {
        panic!("{:?}", out.submissions)
    };
    // 3 000 500 msat kept: 3 000 base units go back, the half unit stays.
    assert_eq!(
        sub.tx,
        PendingTx::Payload(TxPayload::Transfer {
            to: key(2).public(),
            amount: Amount::from_base_units(3_000),
        })
    );
    let booked = apply(&mut st, sub.on_accept.clone(), 2_000).unwrap();
    assert_eq!(
        st.fund(&f.optimae).unwrap().returned_msat,
        Msat::new(3_000_000)
    );
    let ledger = booked.writes.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].kind, PaymentKind::FundReturn);
    // Returned: nothing goes out again, even if the mark came twice.
    let again = watch(&mut st, &pending(f.optimae), 3_000).unwrap();
    assert!(again.submissions.is_empty());
    let twice = apply(
        &mut st,
        vec![Mark::FundReturnedOnChain {
            optimae: f.optimae,
            returned_msat: Msat::new(3_000_000),
        }],
        4_000,
    )
    .unwrap();
    assert!(twice.writes.ledger().is_empty());
}

#[test]
fn a_fund_whose_optimae_stays_undecided_goes_back_after_the_timeout() {
    let f = fund(false, 0);
    let mut st = hub(false, f.clone());
    let timeout = HubConfig::default().fund_timeout_secs * 1_000;
    let early = watch(&mut st, &pending(f.optimae), timeout).unwrap();
    assert!(early.writes.funds.is_empty());
    assert!(!st.fund(&f.optimae).unwrap().settled);
    let late = watch(&mut st, &pending(f.optimae), timeout + DAY_MS).unwrap();
    let settled = st.fund(&f.optimae).unwrap();
    assert!(settled.settled && settled.paid.is_empty());
    assert_eq!(settled.returned_msat, f.funded_msat);
    assert!(late.writes.funds.contains_key(&f.optimae));
    // Its `fund.settled` event is written with it (the webhooks' source).
    let events: Vec<HubEventKind> = late.writes.events.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        events,
        [HubEventKind::FundSettled {
            optimae: f.optimae,
            payer_channel: f.payer_channel,
            funded_msat: f.funded_msat,
            released_msat: Msat::ZERO,
            returned_msat: f.funded_msat,
            evaluators_paid: 0,
        }]
    );
    assert!(early.writes.events.is_empty());
    // Proposed back over the open payer channel (off chain, no transaction).
    assert!(late.submissions.is_empty());
    let c = st.channel(&f.payer_channel).unwrap();
    let proposed = c.queued.contains(&Change::Pay {
        amount_msat: 5_000_500,
    }) || c.machine.in_flight.is_some();
    assert!(proposed, "{c:?}");
}

fn watch(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now_ms: u64,
) -> Result<doin_hub_core::HubOutput, doin_hub_core::HubError> {
    doin_hub_core::handle(st, HubInput::Watch, Duration::from_millis(now_ms), snap)
}

fn apply(
    st: &mut HubState,
    marks: Vec<Mark>,
    now_ms: u64,
) -> Result<doin_hub_core::HubOutput, doin_hub_core::HubError> {
    doin_hub_core::handle(
        st,
        HubInput::Apply { marks },
        Duration::from_millis(now_ms),
        &ChainSnapshot::default(),
    )
}
