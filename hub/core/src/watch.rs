//! The watchtower and the hub's closes. One pass compares every channel's on-chain record
//! (from the snapshot) with what the hub holds: it confirms channels that reached the chain,
//! challenges a stale close with the newest state both signed (the stale publisher forfeits
//! its reserve to the hub), claims HTLCs whose preimage it knows, settles once the window is
//! over, records payouts, acts on HTLC deadlines ([`crate::deadlines`]), pays out final
//! verification funds and carries out the closes the operator asked for.
//!
//! A pass decides; it does not submit. Its transactions come out as [`Submission`]s, in the
//! order the chain must see them, each with the [`Mark`]s to record once the outcome is known
//! (`apply_marks`, through `HubInput::Apply`): a challenge counts as made only once the chain took it, so a refused one
//! is made again next pass. Claims that follow a challenge depend on it ([`Condition`]): the
//! HTLCs to claim are those of the state that will stand.

use crate::booking::fulfil_route;
use crate::error::HubError;
use crate::io::{
    ChainSnapshot, CloseHow, Condition, HubOutput, Mark, PendingTx, Reply, Submission, WatchReport,
    Writes,
};
use crate::pass::Pass;
use crate::records::{HubChannel, HubEventKind};
use crate::state::{HubState, Staging};
use doin_channels::ChannelMachine;
use doin_tx_core::channel::{sha256, ChannelId, ChannelPhase, Side};
use doin_tx_core::TxPayload;
use doin_types::{Hash256, Msat};
use std::collections::BTreeSet;

/// Most blocks read for revealed preimages in one pass; the rest wait for the next pass, so
/// a hub far behind never does a long pass.
pub const MAX_CLAIM_BLOCKS_PER_PASS: u64 = 1_000;

/// The transaction that closes `c` from the hub's side now: cooperative with the newest state
/// both signed when it holds no HTLC and nothing is in flight (paid out at once), else posting
/// that state (settled after the window).
pub(crate) fn close_now(id: &ChannelId, c: &HubChannel) -> (TxPayload, CloseHow) {
    let machine = ChannelMachine::restore(c.machine.clone());
    let latest = machine.latest().clone();
    if latest.state.seq > 0 && latest.state.htlcs.is_empty() && machine.in_flight().is_none() {
        (
            TxPayload::ChannelCoopClose {
                state: Box::new(latest),
            },
            CloseHow::Cooperative,
        )
    } else {
        let state = (latest.state.seq > 0).then(|| Box::new(latest));
        (
            TxPayload::ChannelForceClose {
                channel: *id,
                state,
            },
            CloseHow::Force,
        )
    }
}

/// One pass over every channel the hub has not seen paid out (see the module docs).
pub(crate) fn watch(
    st: &mut HubState,
    snap: &ChainSnapshot,
    now_ms: u64,
) -> Result<HubOutput, HubError> {
    let mut staging = Staging::new(st, now_ms);
    let mut pass = Pass {
        s: &mut staging,
        snap,
        report: WatchReport::default(),
        submissions: Vec::new(),
        closing_now: BTreeSet::new(),
    };
    learn_claimed_preimages(&mut pass)?;
    let open: Vec<ChannelId> = pass
        .s
        .st
        .channels
        .iter()
        .filter(|(_, c)| c.closed_at.is_none())
        .map(|(id, _)| *id)
        .collect();
    for id in open {
        // A channel the caller did not read (it came in after the snapshot): next pass.
        let Some(on_chain) = snap.channels.get(&id) else {
            continue;
        };
        let Some(on_chain) = on_chain else {
            resubmit_opening(&mut pass, &id);
            continue;
        };
        let height = snap.height;
        let Some(c) = pass.s.channel(&id) else {
            continue;
        };
        let newly_confirmed = !c.confirmed;
        c.confirmed = true;
        if newly_confirmed {
            c.opening_tx = None;
            pass.report.confirmed.push(id);
            let (peer, role, me) = (c.peer, c.role, c.machine.me);
            let (hub_msat, peer_msat) = match me {
                Side::A => (on_chain.opening_a_msat, on_chain.opening_b_msat),
                Side::B => (on_chain.opening_b_msat, on_chain.opening_a_msat),
            };
            pass.s.event(HubEventKind::ChannelOpened {
                channel: id,
                peer,
                role,
                hub_msat: Msat::new(hub_msat),
                peer_msat: Msat::new(peer_msat),
            })?;
        }
        match &on_chain.phase {
            ChannelPhase::Open => {}
            ChannelPhase::Closing {
                posted, closes_at, ..
            } => {
                let Some(c) = pass.s.channel(&id) else {
                    continue;
                };
                c.closing = true;
                let latest = c.machine.latest.clone();
                let (challenged_seq, settled) = (c.challenged_seq, c.settle_submitted);
                let stale = latest.state.seq > posted.seq;
                if stale && height < *closes_at && challenged_seq != Some(latest.state.seq) {
                    let challenge = pass.submit(
                        TxPayload::ChannelChallenge {
                            state: Box::new(latest.clone()),
                        },
                        Condition::Always,
                        vec![Mark::Challenged {
                            channel: id,
                            seq: latest.state.seq,
                        }],
                    );
                    // Claims follow the challenge in nonce order: against the state that
                    // will stand (the challenge's if the chain takes it).
                    pass.claim_posted(
                        &id,
                        &[
                            (&latest.state, Condition::IfAccepted(challenge)),
                            (posted, Condition::IfRefused(challenge)),
                        ],
                    );
                    // The window is still open: nothing to settle this pass.
                    continue;
                }
                pass.claim_posted(&id, &[(posted, Condition::Always)]);
                let until = posted
                    .htlcs
                    .iter()
                    .map(|h| h.expiry)
                    .fold(*closes_at, u64::max);
                if height >= until && !settled {
                    pass.submit(
                        TxPayload::ChannelSettle { channel: id },
                        Condition::Always,
                        vec![Mark::SettleSubmitted { channel: id }],
                    );
                }
            }
            ChannelPhase::Closed { at } => {
                if let Some(c) = pass.s.channel(&id) {
                    c.closing = true;
                    c.closed_at = Some(*at);
                    let (peer, role) = (c.peer, c.role);
                    pass.s.event(HubEventKind::ChannelClosed {
                        channel: id,
                        peer,
                        role,
                        height: *at,
                    })?;
                }
                pass.report.closed.push(id);
            }
        }
    }
    crate::deadlines::htlc_deadlines(&mut pass)?;
    // Verification funds whose decision became final pay out.
    crate::funds::release_funds(&mut pass);
    // What the pass queued (fulfilments and failures towards payers, expiries towards
    // payees) is proposed at once.
    let closing_now = pass.closing_now.clone();
    crate::flush::flush_staged(pass.s, snap.height, &closing_now)?;
    requested_closes(&mut pass);
    let Pass {
        report,
        submissions,
        ..
    } = pass;
    // Only what changed is written.
    staging.drop_unchanged_channels();
    Ok(HubOutput {
        writes: staging.commit(),
        submissions,
        reply: Reply::None,
        report,
    })
}

/// Reads the final blocks since the last pass (from the snapshot) for preimages payees
/// revealed on chain for HTLCs the hub forwarded.
fn learn_claimed_preimages(pass: &mut Pass<'_, '_>) -> Result<(), HubError> {
    let Some(read) = &pass.snap.claims else {
        return Ok(());
    };
    // Read for another starting point (the state moved since): next pass.
    if read.from != pass.s.st.claims_scanned.saturating_add(1) || read.to < read.from {
        return Ok(());
    }
    for (channel, preimage) in &read.claims {
        let hash = Hash256(sha256(preimage));
        let forwarded_there = pass
            .s
            .st
            .routes
            .get(&hash)
            .is_some_and(|r| r.outgoing == *channel);
        if forwarded_there && fulfil_route(pass.s, *preimage)? {
            tracing::info!(payment_hash = %hash, %channel, "preimage learned from the chain");
            pass.report.learned.push(hash);
        }
    }
    pass.s.w.claims_scanned = Some(read.to);
    Ok(())
}

/// An outgoing channel not on chain yet: its opening transaction goes to the pool again (a
/// pool that has it answers "known"; one that lost it, after a crash, takes it back).
fn resubmit_opening(pass: &mut Pass<'_, '_>, id: &ChannelId) {
    let Some(tx) = pass
        .s
        .st
        .channels
        .get(id)
        .and_then(|c| c.opening_tx.clone())
    else {
        return;
    };
    pass.submissions.push(Submission {
        tx: PendingTx::Signed(tx),
        when: Condition::Always,
        on_accept: Vec::new(),
        on_refusal: Vec::new(),
    });
}

/// Carries out the closes the operator asked for once the payee has taken what was due (or
/// the wait is over).
fn requested_closes(pass: &mut Pass<'_, '_>) {
    let height = pass.snap.height;
    let cltv_delta = pass.s.cfg().cltv_delta;
    let waiting: Vec<ChannelId> = pass
        .s
        .st
        .channels
        .iter()
        .filter(|(_, c)| c.close_requested_at.is_some() && !c.closing)
        .map(|(id, _)| *id)
        .collect();
    for id in waiting {
        if pass.closing_now.contains(&id) {
            continue;
        }
        let Some(c) = pass.s.channel(&id) else {
            continue;
        };
        let asked = c.close_requested_at.unwrap_or(height);
        let overdue = height >= asked.saturating_add(cltv_delta);
        if c.closing || (c.payout_due() && !overdue) {
            continue;
        }
        if c.payout_due() {
            tracing::warn!(channel = %id, owed_msat = %c.owed_msat, "the payee did not take what it was owed in time; closing without it");
        }
        let (payload, _) = close_now(&id, c);
        pass.submit(
            payload,
            Condition::Always,
            vec![Mark::RequestedClose { channel: id }],
        );
    }
}

/// Records the outcomes of submissions: what the chain took (or refused) is written and
/// reported.
pub(crate) fn apply_marks(
    st: &mut HubState,
    marks: Vec<Mark>,
    now_ms: u64,
) -> Result<HubOutput, HubError> {
    let mut s = Staging::new(st, now_ms);
    let mut report = WatchReport::default();
    let mut deleted: Writes = Writes::default();
    for mark in marks {
        match mark {
            Mark::Challenged { channel, seq } => {
                if let Some(c) = s.channel(&channel) {
                    c.challenged_seq = Some(seq);
                    report.challenged.push(channel);
                }
            }
            Mark::SettleSubmitted { channel } => {
                if let Some(c) = s.channel(&channel) {
                    c.settle_submitted = true;
                    report.settled.push(channel);
                }
            }
            Mark::ClaimSubmitted { channel, hash } => {
                if let Some(c) = s.channel(&channel) {
                    c.claims_submitted.push(hash);
                    report.claimed.push(hash);
                }
            }
            Mark::ForceClosed { channel } => {
                if let Some(c) = s.channel(&channel) {
                    c.closing = true;
                    report.force_closed.push(channel);
                }
            }
            Mark::RequestedClose { channel } => {
                if let Some(c) = s.channel(&channel) {
                    c.closing = true;
                    report.closing.push(channel);
                }
            }
            Mark::OperatorClosed {
                channel, answer, ..
            } => {
                if let Some(c) = s.channel(&channel) {
                    c.closing = true;
                }
                s.w.answers.extend(answer);
            }
            Mark::OpeningRefused {
                channel,
                answer_key,
            } => {
                s.w.channels.remove(&channel);
                deleted.deleted_channels.push(channel);
                deleted.deleted_answers.extend(answer_key);
            }
            Mark::FundReturnedOnChain {
                optimae,
                returned_msat,
            } => crate::funds::returned_on_chain(&mut s, &optimae, returned_msat)?,
            Mark::RequestPaymentRefused { request } => {
                s.w.requests.remove(&request);
                deleted.deleted_requests.push(request);
            }
            Mark::RequestOpeningRefused { request, channel } => {
                s.w.channels.remove(&channel);
                deleted.deleted_channels.push(channel);
                let back =
                    s.w.requests
                        .get(&request)
                        .or_else(|| s.st.requests.get(&request));
                if let Some(r) = back.cloned() {
                    tracing::warn!(request = %request, "the opening of a requested channel was refused; it is tried again");
                    s.w.requests.insert(
                        request,
                        crate::records::ChannelRequest {
                            state: crate::records::RequestState::Paying,
                            ..r
                        },
                    );
                }
            }
        }
    }
    s.w.deleted_channels = deleted.deleted_channels;
    s.w.deleted_answers = deleted.deleted_answers;
    s.w.deleted_requests = deleted.deleted_requests;
    let reply = Reply::None;
    Ok(HubOutput {
        writes: s.commit(),
        submissions: Vec::new(),
        reply,
        report,
    })
}
