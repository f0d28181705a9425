//! The hub's own operations: taking over a payer's channel, opening a channel to a payee,
//! invoices payable to the hub, streams, and the operator's closes.

use crate::error::HubError;
use crate::io::{
    ChainSnapshot, CloseHow, Condition, HubOutput, Mark, PendingAnswer, PendingTx, Reply,
    Submission,
};
use crate::records::{ChannelRole, HubChannel, HubEventKind, HubInvoice, Stream};
use crate::state::{HubState, Staging};
use doin_channels::{parse_invoice, ChannelMachine};
use doin_tx_core::channel::{channel_id, ChannelId, ChannelPhase, Side};
use doin_tx_core::TxPayload;
use doin_types::{Amount, Hash256, Msat, PortError, PublicKeyBytes};
use std::time::Duration;

/// Takes over a channel a payer opened on chain with this hub as counterparty (its on-chain
/// record is in the snapshot). A channel the hub has already is answered as it is.
pub(crate) fn register_incoming(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now_ms: u64,
    id: ChannelId,
) -> Result<HubOutput, HubError> {
    if let Some(c) = st.channels.get(&id) {
        return Ok(HubOutput::new(
            Default::default(),
            Reply::Channel(Box::new(c.clone())),
        ));
    }
    let on_chain = snap
        .channels
        .get(&id)
        .ok_or_else(|| {
            HubError::Chain(PortError::NotYet(format!(
                "channel {id} was not read from the transfer chain"
            )))
        })?
        .as_ref()
        .ok_or_else(|| HubError::Invalid(format!("no channel {id} on the transfer chain")))?;
    if on_chain.party_b != st.params.public_key() {
        return Err(HubError::Invalid(
            "this hub is not the channel's counterparty".into(),
        ));
    }
    if on_chain.phase != ChannelPhase::Open {
        return Err(HubError::Invalid("the channel is not open".into()));
    }
    let cfg = &st.params.cfg;
    if on_chain.dispute_blocks < cfg.min_dispute_blocks {
        return Err(HubError::Invalid(format!(
            "the channel's dispute window ({} blocks) is shorter than this hub accepts ({})",
            on_chain.dispute_blocks, cfg.min_dispute_blocks
        )));
    }
    let machine = ChannelMachine::new(
        st.params.chain_id,
        id,
        Side::B,
        on_chain.party_a,
        on_chain.party_b,
        on_chain.opening_a_msat,
        on_chain.opening_b_msat,
    )?;
    let channel = HubChannel::new(
        ChannelRole::Incoming,
        on_chain.party_a,
        machine.snapshot().clone(),
        true,
    );
    let mut s = Staging::new(st, now_ms);
    s.w.channels.insert(id, channel.clone());
    // A payer's channel is on chain before the hub takes it on: opened for the hub now.
    s.event(HubEventKind::ChannelOpened {
        channel: id,
        peer: on_chain.party_a,
        role: ChannelRole::Incoming,
        hub_msat: Msat::new(on_chain.opening_b_msat),
        peer_msat: Msat::new(on_chain.opening_a_msat),
    })?;
    Ok(HubOutput::new(
        s.commit(),
        Reply::Channel(Box::new(channel)),
    ))
}

/// Opens a channel from the hub to `payee` with `deposit` on chain: the channel is recorded
/// with its signed opening transaction (so that after a crash the watch submits it again and
/// the hub never forgets coins it locked), then submitted. The channel is usable once the
/// transfer chain has it (the watch notices). If the chain refuses the transaction, the
/// channel and its answer go again ([`Mark::OpeningRefused`]).
pub(crate) fn open_outgoing(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now_ms: u64,
    payee: PublicKeyBytes,
    deposit: Amount,
    answer: Option<PendingAnswer<ChannelId>>,
) -> Result<HubOutput, HubError> {
    let nonce = snap
        .hub_nonce
        .ok_or_else(|| HubError::Chain(PortError::NotYet("the hub's nonce was not read".into())))?;
    let mut s = Staging::new(st, now_ms);
    let (id, tx) = stage_opening(&mut s, nonce, snap.base_fee, payee, deposit)?;
    s.w.answers.extend(answer.map(|a| a.stored(&id)));
    let answer_key = s.w.answers.first().map(|(k, _)| k.clone());
    let mut out = HubOutput::new(s.commit(), Reply::Opened(id));
    out.submissions.push(Submission {
        tx: PendingTx::Signed(tx),
        when: Condition::Always,
        on_accept: Vec::new(),
        on_refusal: vec![Mark::OpeningRefused {
            channel: id,
            answer_key,
        }],
    });
    Ok(out)
}

/// Stages a channel from the hub to `payee` with `deposit`, opened by a transaction with the
/// hub's `nonce` (which fixes the channel's id): the channel and its signed opening
/// transaction, which the caller submits once they are durable.
pub(crate) fn stage_opening(
    s: &mut Staging<'_>,
    nonce: u64,
    base_fee: Amount,
    payee: PublicKeyBytes,
    deposit: Amount,
) -> Result<(ChannelId, Vec<u8>), HubError> {
    if deposit.is_zero() {
        return Err(HubError::Invalid("a deposit above zero is needed".into()));
    }
    // The chain refuses a channel whose peer could never sign its close; refusing here keeps
    // the nonce and the books untouched and tells the operator why (not "chain unavailable").
    if !doin_crypto::is_valid_public_key(&payee) {
        return Err(HubError::Invalid(
            "the payee's address holds no valid public key: nobody could ever sign for it".into(),
        ));
    }
    let params = &s.st.params;
    let me = params.public_key();
    if payee == me {
        return Err(HubError::Invalid(
            "the payee is the hub itself: a channel needs two different parties".into(),
        ));
    }
    let chain_id = params.chain_id;
    let id = channel_id(&chain_id, &me, nonce);
    let capacity = Msat::from_amount(deposit)
        .map_err(|_| HubError::Invalid("the deposit is too large".into()))?;
    let machine = ChannelMachine::new(chain_id, id, Side::A, me, payee, capacity.get(), 0)?;
    let tx = crate::txs::sign(
        &params.key,
        chain_id,
        nonce,
        base_fee,
        TxPayload::ChannelOpen {
            counterparty: payee,
            deposit,
            counterparty_deposit: Amount::ZERO,
            dispute_blocks: params.cfg.dispute_blocks,
            consent: None,
        },
    )
    .map_err(HubError::Invalid)?;
    let mut channel = HubChannel::new(
        ChannelRole::Outgoing,
        payee,
        machine.snapshot().clone(),
        false,
    );
    channel.opening_tx = Some(tx.clone());
    s.w.channels.insert(id, channel);
    Ok((id, tx))
}

/// A new invoice payable to the hub itself for `amount`, valid `expiry_secs`; the hub keeps
/// its preimage (written before the invoice is returned) and takes a payer's HTLC for it at
/// once.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_invoice(
    st: &mut HubState,
    now: Duration,
    now_ms: u64,
    amount: Msat,
    description: String,
    expiry_secs: u64,
    preimage: [u8; 32],
    secret: [u8; 32],
) -> Result<HubOutput, HubError> {
    if amount.is_zero() {
        return Err(HubError::Invalid("an amount above zero is needed".into()));
    }
    let expires_at = now
        .as_secs()
        .checked_add(expiry_secs)
        .ok_or_else(|| HubError::Invalid("the expiry is too far away".into()))?;
    let payment_hash = Hash256(doin_tx_core::channel::sha256(&preimage));
    let text = doin_channels::create_invoice(
        st.params.network,
        &st.params.key,
        &doin_channels::InvoiceTerms {
            amount_msat: amount.get(),
            payment_hash,
            payment_secret: secret,
            description: description.clone(),
            expiry_secs,
            min_final_cltv_blocks: st.params.cfg.htlc_margin(),
        },
        now,
    )?;
    let invoice = HubInvoice {
        text,
        payment_hash,
        preimage,
        amount_msat: amount,
        description,
        expires_at,
        paid_by: None,
    };
    let mut s = Staging::new(st, now_ms);
    s.w.invoices.insert(payment_hash, invoice.clone());
    Ok(HubOutput::new(s.commit(), Reply::Invoice(invoice)))
}

/// Sets up a stream from `payer_channel` to the payee of `invoice` (its amount is the stream's
/// budget, its payment hash the stream's id). The same invoice again answers the same stream.
pub(crate) fn open_stream(
    st: &mut HubState,
    now: Duration,
    now_ms: u64,
    payer_channel: ChannelId,
    invoice: &str,
) -> Result<HubOutput, HubError> {
    let parsed = parse_invoice(invoice, st.params.network, now, None)?;
    if let Some(s) = st.streams.get(&parsed.payment_hash) {
        if s.payer_channel == payer_channel {
            return Ok(HubOutput::new(Default::default(), Reply::Stream(s.clone())));
        }
        return Err(HubError::Invalid(
            "the invoice already pays another stream".into(),
        ));
    }
    let payer = st
        .channels
        .get(&payer_channel)
        .ok_or(HubError::UnknownChannel(payer_channel))?;
    if payer.role != ChannelRole::Incoming || payer.closed_at.is_some() {
        return Err(HubError::Invalid(
            "streams are paid from an open payer channel".into(),
        ));
    }
    let payee_channel = st.payee_channel(&parsed.payee).ok_or_else(|| {
        HubError::Liquidity(format!(
            "the hub has no open channel to the invoice's payee {}",
            parsed.payee
        ))
    })?;
    let stream = Stream {
        id: parsed.payment_hash,
        payer_channel,
        payee_channel,
        payee: parsed.payee,
        budget_msat: Msat::new(parsed.amount_msat),
        received_msat: Msat::ZERO,
        forwarded_msat: Msat::ZERO,
        fees_msat: Msat::ZERO,
        ticks: 0,
        opened_at_ms: now_ms,
        closed: false,
    };
    let mut s = Staging::new(st, now_ms);
    s.w.streams.insert(stream.id, stream.clone());
    Ok(HubOutput::new(s.commit(), Reply::Stream(stream)))
}

/// Closes a stream: no further ticks are accepted (what it carried stays paid).
pub(crate) fn close_stream(
    st: &mut HubState,
    now_ms: u64,
    id: &Hash256,
) -> Result<HubOutput, HubError> {
    let mut stream = st
        .streams
        .get(id)
        .cloned()
        .ok_or(HubError::UnknownStream(*id))?;
    stream.closed = true;
    let mut s = Staging::new(st, now_ms);
    s.w.streams.insert(stream.id, stream.clone());
    Ok(HubOutput::new(s.commit(), Reply::Stream(stream)))
}

/// Closes channel `id` from the hub's side. A payee channel with something still due or under
/// way is closed once the payee has taken it (`after-payout`: nothing new goes towards it
/// meanwhile, and after `cltv_delta` blocks it is closed regardless); otherwise at once, by
/// a transaction the caller submits: the close (and its answer) is recorded once the chain
/// takes it ([`Mark::OperatorClosed`]).
pub(crate) fn close(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now_ms: u64,
    id: &ChannelId,
    answer: Option<PendingAnswer<CloseHow>>,
) -> Result<HubOutput, HubError> {
    let mut c = st
        .channels
        .get(id)
        .cloned()
        .ok_or(HubError::UnknownChannel(*id))?;
    if c.closing || c.closed_at.is_some() {
        return Err(HubError::AlreadyClosing(*id));
    }
    // A payee bought this channel for a time: the hub keeps its word.
    if let Some(until) = st.leased_until(id) {
        if snap.height < until {
            return Err(HubError::Leased(*id, until));
        }
    }
    if c.role == ChannelRole::Outgoing && c.confirmed && c.payout_due() {
        c.close_requested_at.get_or_insert(snap.height);
        let how = CloseHow::AfterPayout;
        let mut s = Staging::new(st, now_ms);
        s.w.channels.insert(*id, c);
        s.w.answers.extend(answer.map(|a| a.stored(&how)));
        return Ok(HubOutput::new(s.commit(), Reply::Closed(how)));
    }
    let (payload, how) = crate::watch::close_now(id, &c);
    let mut out = HubOutput::new(Default::default(), Reply::Closed(how));
    out.submissions.push(Submission {
        tx: PendingTx::Payload(payload),
        when: Condition::Always,
        on_accept: vec![Mark::OperatorClosed {
            channel: *id,
            how,
            answer: answer.map(|a| a.stored(&how)),
        }],
        on_refusal: Vec::new(),
    });
    Ok(out)
}
