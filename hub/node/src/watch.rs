//! The watchtower and the hub's closes: it compares every channel's on-chain record with what
//! the hub holds, confirms channels that reached the chain, challenges a stale close with the
//! newest state both signed (the stale publisher forfeits its reserve to the hub), settles
//! once the window is over and records the payout.
//!
//! Run [`Hub::watch`] once per transfer block (the node's watch task does); it is idempotent.

use crate::hub::{Hub, HubError, PendingAnswer, Staged, State};
use crate::store::{ChannelRole, HubChannel};
use doin_channels::ChannelMachine;
use doin_tx_core::channel::{ChannelId, ChannelPhase};
use doin_tx_core::TxPayload;
use doin_types::Hash256;
use doin_types::Height;
use std::collections::BTreeMap;

/// What one pass of the watch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchReport {
    pub confirmed: Vec<ChannelId>,
    pub challenged: Vec<ChannelId>,
    pub settled: Vec<ChannelId>,
    pub closed: Vec<ChannelId>,
    /// Channels the hub closed on chain over an HTLC deadline.
    pub force_closed: Vec<ChannelId>,
    /// HTLCs claimed on chain with their preimage (by payment hash).
    pub claimed: Vec<Hash256>,
    /// Preimages learned from payees' claims on chain.
    pub learned: Vec<Hash256>,
    /// Routed payments failed because the payee let its HTLC expire.
    pub expired: Vec<Hash256>,
    /// Closes the operator asked for, started now that the payee took what was due.
    pub closing: Vec<ChannelId>,
}

impl std::fmt::Display for WatchReport {
    /// Only what happened, with short channel ids: `confirmed 2 (1a7c71…, 5c58aa…) settled 1 (…)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: [(&str, &[Hash256]); 9] = [
            ("confirmed", &self.confirmed),
            ("challenged", &self.challenged),
            ("settled", &self.settled),
            ("closed", &self.closed),
            ("force-closed", &self.force_closed),
            ("claimed", &self.claimed),
            ("learned", &self.learned),
            ("expired", &self.expired),
            ("closing", &self.closing),
        ];
        let mut first = true;
        for (name, ids) in groups.iter().filter(|(_, ids)| !ids.is_empty()) {
            let short: Vec<String> = ids
                .iter()
                .map(|id| format!("{}…", &id.to_hex()[..12]))
                .collect();
            if !first {
                write!(f, " ")?;
            }
            first = false;
            write!(f, "{name} {} ({})", ids.len(), short.join(", "))?;
        }
        Ok(())
    }
}

impl Hub {
    fn submit_tx(&self, payload: TxPayload) -> Result<(), HubError> {
        let me = self.key.public();
        let nonce = self.chain.next_nonce(&me).map_err(HubError::Chain)?;
        let tx = crate::txs::sign(
            &self.key,
            self.chain.chain_id(),
            nonce,
            self.chain.base_fee(),
            payload,
        )
        .map_err(HubError::Invalid)?;
        self.chain.submit(&tx).map(|_| ()).map_err(HubError::Chain)
    }

    /// Submits `payload` for channel `id`: `Ok(false)` when the chain refused it now (tried
    /// again next pass), so one refusal does not hold up the other channels' watch.
    pub(crate) fn submit_or_retry(
        &self,
        id: &ChannelId,
        payload: TxPayload,
    ) -> Result<bool, HubError> {
        match self.submit_tx(payload) {
            Ok(()) => Ok(true),
            Err(HubError::Chain(e)) => {
                tracing::warn!(channel = %id, error = %e, "watchtower transaction refused; retrying next pass");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// One pass over every channel the hub has not seen paid out: preimages revealed on
    /// chain, confirmations, challenges, HTLC claims, settlements, payouts, then the HTLC
    /// deadlines of the channels still open (see `deadlines`).
    pub fn watch(&self) -> Result<WatchReport, HubError> {
        let height = self.chain.height();
        let mut report = WatchReport::default();
        let mut st = self.state.lock();
        let mut staged = Staged::default();
        self.learn_claimed_preimages(&mut st, &mut staged, height, &mut report)?;
        let open: Vec<ChannelId> = st
            .channels
            .iter()
            .filter(|(_, c)| c.closed_at.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in open {
            let Some(on_chain) = self.chain.channel(&id).map_err(HubError::Chain)? else {
                self.resubmit_opening(&st, &id);
                continue;
            };
            if crate::flow::staged_channel(&st, &mut staged, &id).is_none() {
                continue;
            }
            // Fields borrowed apart: the channel is changed while the routes are read.
            let Some(c) = staged.channels.get_mut(&id) else {
                continue;
            };
            if !c.confirmed {
                c.confirmed = true;
                c.opening_tx = None;
                report.confirmed.push(id);
            }
            match &on_chain.phase {
                ChannelPhase::Open => {}
                ChannelPhase::Closing {
                    posted, closes_at, ..
                } => {
                    c.closing = true;
                    let latest = c.machine.latest.clone();
                    let mut standing = posted.clone();
                    let stale = latest.state.seq > posted.seq;
                    if stale && height < *closes_at && c.challenged_seq != Some(latest.state.seq) {
                        let challenge = TxPayload::ChannelChallenge {
                            state: Box::new(latest.clone()),
                        };
                        if self.submit_or_retry(&id, challenge)? {
                            c.challenged_seq = Some(latest.state.seq);
                            report.challenged.push(id);
                            // Claims follow the challenge in nonce order: against its state.
                            standing = latest.state;
                        }
                    }
                    let preimages = crate::deadlines::Preimages {
                        staged_routes: &staged.routes,
                        routes: &st.routes,
                        invoices: &st.invoices,
                    };
                    self.claim_posted(&id, c, &standing, &preimages, height, &mut report)?;
                    let until = posted
                        .htlcs
                        .iter()
                        .chain(standing.htlcs.iter())
                        .map(|h| h.expiry)
                        .fold(*closes_at, u64::max);
                    if height >= until
                        && !c.settle_submitted
                        && self.submit_or_retry(&id, TxPayload::ChannelSettle { channel: id })?
                    {
                        c.settle_submitted = true;
                        report.settled.push(id);
                    }
                }
                ChannelPhase::Closed { at } => {
                    c.closing = true;
                    c.closed_at = Some(*at);
                    report.closed.push(id);
                }
            }
        }
        self.htlc_deadlines(&mut st, &mut staged, height, &mut report)?;
        // Verification funds whose decision became final pay out.
        self.release_funds(&mut st, &mut staged);
        // What the pass queued (fulfilments and failures towards payers, expiries towards
        // payees) is proposed at once.
        self.flush_staged(&st, &mut staged, height);
        self.requested_closes(&st, &mut staged, height, &mut report)?;
        // Only what changed is written.
        staged
            .channels
            .retain(|id, c| st.channels.get(id) != Some(&*c));
        let (durable, payments) = self.stage(&mut st, staged)?;
        self.set_gauges(&st);
        drop(st);
        self.finish(durable, payments)?;
        self.count_actions(&report);
        Ok(report)
    }

    fn set_gauges(&self, st: &State) {
        let m = self.store.metrics();
        let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        let mut owed: u64 = 0;
        for c in st.channels.values() {
            let role = match c.role {
                ChannelRole::Incoming => "payer",
                ChannelRole::Outgoing => "payee",
            };
            let status = match (c.confirmed, c.closing, c.closed_at) {
                (_, _, Some(_)) => "closed",
                (_, true, None) => "closing",
                (false, false, None) => "opening",
                (true, false, None) => "open",
            };
            *counts.entry((role, status)).or_default() += 1;
            owed = owed.saturating_add(c.owed_msat);
        }
        for role in ["payer", "payee"] {
            for status in ["opening", "open", "closing", "closed"] {
                let n = counts.get(&(role, status)).copied().unwrap_or(0);
                m.channels.with_label_values(&[role, status]).set(n);
            }
        }
        m.owed_msat.set(i64::try_from(owed).unwrap_or(i64::MAX));
        let open_streams = st.streams.values().filter(|s| !s.closed).count();
        m.open_streams
            .set(i64::try_from(open_streams).unwrap_or(i64::MAX));
    }

    fn count_actions(&self, r: &WatchReport) {
        let m = self.store.metrics();
        for (action, n) in [
            ("confirmed", r.confirmed.len()),
            ("challenged", r.challenged.len()),
            ("settled", r.settled.len()),
            ("closed", r.closed.len()),
            ("force_closed", r.force_closed.len()),
            ("claimed", r.claimed.len()),
            ("learned", r.learned.len()),
            ("expired", r.expired.len()),
            ("closing", r.closing.len()),
        ] {
            if n > 0 {
                m.watch_actions
                    .with_label_values(&[action])
                    .inc_by(n as u64);
            }
        }
    }

    /// Closes channel `id` from the hub's side. A payee channel with something still due or
    /// under way is closed once the payee has taken it (`after-payout`; nothing new goes
    /// towards it meanwhile, and after `cltv_delta` blocks it is closed regardless); otherwise
    /// at once: cooperatively with the newest state both signed when it holds no HTLC and
    /// nothing is in flight (paid out at once), else by posting that state (the watch settles
    /// it after the window).
    pub fn close(&self, id: &ChannelId) -> Result<&'static str, HubError> {
        self.close_answering(id, None)
    }

    /// [`Hub::close`], writing `answer` with the channel's new state.
    pub fn close_answering(
        &self,
        id: &ChannelId,
        answer: Option<PendingAnswer<&'static str>>,
    ) -> Result<&'static str, HubError> {
        let height = self.chain.height();
        let mut st = self.state.lock();
        let mut c = st
            .channels
            .get(id)
            .cloned()
            .ok_or(HubError::UnknownChannel(*id))?;
        if c.closing || c.closed_at.is_some() {
            return Err(HubError::Invalid("the channel is already closing".into()));
        }
        let how = if c.role == ChannelRole::Outgoing && c.confirmed && payout_due(&c) {
            c.close_requested_at.get_or_insert(height);
            "after-payout"
        } else {
            let how = self.close_now(id, &c)?;
            c.closing = true;
            how
        };
        let mut staged = Staged::default();
        staged.channels.insert(*id, c);
        staged.answers.extend(answer.map(|a| a.stored(&how)));
        let (durable, payments) = self.stage(&mut st, staged)?;
        drop(st);
        self.finish(durable, payments)?;
        Ok(how)
    }

    /// An outgoing channel not on chain yet: its opening transaction goes to the pool again
    /// (a pool that has it answers "known"; one that lost it, after a crash, takes it back).
    fn resubmit_opening(&self, st: &State, id: &ChannelId) {
        let Some(tx) = st.channels.get(id).and_then(|c| c.opening_tx.as_ref()) else {
            return;
        };
        if let Err(e) = self.chain.submit(tx) {
            tracing::warn!(channel = %id, error = %e, "the hub's opening transaction is refused");
        }
    }

    /// Submits the close of `c`: cooperative when possible, else posting the newest state.
    fn close_now(&self, id: &ChannelId, c: &HubChannel) -> Result<&'static str, HubError> {
        let machine = ChannelMachine::restore(c.machine.clone());
        let latest = machine.latest().clone();
        if latest.state.seq > 0 && latest.state.htlcs.is_empty() && machine.in_flight().is_none() {
            self.submit_tx(TxPayload::ChannelCoopClose {
                state: Box::new(latest),
            })?;
            Ok("cooperative")
        } else {
            let state = (latest.state.seq > 0).then(|| Box::new(latest));
            self.submit_tx(TxPayload::ChannelForceClose {
                channel: *id,
                state,
            })?;
            Ok("force")
        }
    }

    /// Carries out the closes the operator asked for once the payee has taken what was due
    /// (or the wait is over).
    fn requested_closes(
        &self,
        st: &State,
        staged: &mut Staged,
        height: Height,
        report: &mut WatchReport,
    ) -> Result<(), HubError> {
        let waiting: Vec<ChannelId> = st
            .channels
            .iter()
            .filter(|(_, c)| c.close_requested_at.is_some() && !c.closing)
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            let Some(c) = crate::flow::staged_channel(st, staged, &id) else {
                continue;
            };
            let asked = c.close_requested_at.unwrap_or(height);
            let overdue = height >= asked.saturating_add(self.cfg.cltv_delta);
            if c.closing || (payout_due(c) && !overdue) {
                continue;
            }
            if payout_due(c) {
                tracing::warn!(channel = %id, owed_msat = c.owed_msat, "the payee did not take what it was owed in time; closing without it");
            }
            let snapshot = c.clone();
            match self.close_now(&id, &snapshot) {
                Ok(_) => {
                    if let Some(c) = staged.channels.get_mut(&id) {
                        c.closing = true;
                    }
                    report.closing.push(id);
                }
                Err(HubError::Chain(e)) => {
                    tracing::warn!(channel = %id, error = %e, "close refused; retrying next pass");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Something is still owed to the payee or under way on its channel.
fn payout_due(c: &HubChannel) -> bool {
    c.owed_msat > 0
        || c.in_flight_owed_msat > 0
        || !c.queued.is_empty()
        || c.machine.in_flight.is_some()
}
