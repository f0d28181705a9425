//! `doin hub request-channel`: a payee buys an inbound channel from the hub. It asks the hub's
//! price, signs a transfer of the fee to the hub with its own key, hands it in, and waits until
//! the channel is on chain, then keeps the channel's opening state (so `sync` and `watch` can
//! use it at once). The payment is the request: asking again with the same payment (after an
//! interrupted command, the request id printed) finds the same request.

use crate::hub_common::print;
use crate::hub_peer::HubPeer;
use crate::wallet::{self, TxOptions, WalletOpts};
use anyhow::{anyhow, bail};
use doin_api::hub::{ChannelQuoteView, ChannelRequestBody, ChannelRequestView};
use doin_tx_core::TxPayload;
use doin_types::{Address, Amount};
use std::time::{Duration, Instant};

/// Buys a channel of `capacity` held open `duration_blocks`; waits at most `wait` for it.
pub(crate) async fn request_channel(
    opts: &WalletOpts,
    peer: &HubPeer,
    capacity: Amount,
    duration_blocks: u64,
    wait: Duration,
    tx: &TxOptions,
) -> anyhow::Result<()> {
    let client = &peer.client;
    let quote: ChannelQuoteView = client
        .get(&format!(
            "/v1/hub/channel-requests/quote?capacity={}&duration_blocks={duration_blocks}",
            capacity.base_units()
        ))
        .await?;
    let fee: u64 = quote
        .fee
        .parse()
        .map_err(|_| anyhow!("the hub quoted fee {:?}", quote.fee))?;
    let hub = Address::parse(&quote.pay_to, peer.network)?.key;
    let payment = wallet::sign_payload(
        client,
        &peer.key,
        TxPayload::Transfer {
            to: hub,
            amount: Amount::from_base_units(fee),
        },
        tx,
    )
    .await?;
    let body = ChannelRequestBody {
        capacity: capacity.base_units().to_string(),
        duration_blocks,
        payment: hex::encode(payment.bytes()),
    };
    let (_, mut request): (u16, ChannelRequestView) =
        client.post("/v1/hub/channel-requests", &body).await?;
    if !opts.json {
        eprintln!(
            "request {} paid {fee} base units; waiting for the hub to open the channel",
            request.id
        );
    }
    let started = Instant::now();
    let channel = loop {
        match (request.status.as_str(), &request.channel) {
            ("opened", Some(channel)) => break channel.clone(),
            ("failed", _) => bail!(
                "the hub could not open the channel: {}",
                request.reason.as_deref().unwrap_or("no reason given")
            ),
            _ => {}
        }
        if started.elapsed() > wait {
            bail!(
                "no channel after {} s; ask again later: GET /v1/hub/channel-requests/{}",
                wait.as_secs(),
                request.id
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        request = client
            .get(&format!("/v1/hub/channel-requests/{}", request.id))
            .await?;
    };
    let id = doin_types::Hash256::from_hex(&channel).map_err(|e| anyhow!("channel: {e}"))?;
    // The opening state is kept once the chain has the channel.
    loop {
        match peer.machine(&id).await {
            Ok(_) => break,
            Err(e) if started.elapsed() > wait => {
                bail!("channel {channel} is not on chain yet ({e}); run `doin hub sync` later")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    print(opts, &request, |r| {
        println!(
            "channel {channel} open: {} base units from the hub, kept open until height {}",
            r.capacity,
            r.lease_until.unwrap_or_default()
        );
    });
    Ok(())
}
