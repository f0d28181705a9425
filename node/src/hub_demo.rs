//! The devnet's channel demo: a payer (funding the demo optimizers' verification) opens a
//! channel to the hub, the hub opens one to every demo evaluator, and each evaluator's invoice
//! sets up a stream. **Evaluator pay**: for every vote of an evaluator that a committed main
//! block carries and that agreed with the optimae's decision, the payer pays one tick of the
//! domain's verification fee naming that vote; the hub releases it only after checking the
//! vote on the main chain (once per vote). Without the main chain in the node, the payer ticks
//! at a steady pace instead. The evaluators accept what the hub pays out, so their payments
//! show on `GET /v1/hub/payees/{address}/events` (signed by the evaluator) as they happen.
//!
//! The payer's and evaluators' sides of the channels are kept in `hub-demo.bin` in the data
//! directory (written and fsynced after every update), so the demo continues after a restart
//! where it stopped. It talks to the hub in process; a real payer or payee does the same over
//! `/v1/hub/...`.

use crate::run::{Handles, SideTask};
use doin_channels::{create_invoice, Change, ChannelMachine, InvoiceTerms, Message, Snapshot};
use doin_crypto::KeyPair;
use doin_hub::store::{PendingContext, StreamShare};
use doin_hub::{Hub, ProposalContext};
use doin_tx_core::channel::{channel_id, ChannelId, Side};
use doin_tx_core::{StateView, Tx, TxBody, TxPayload};
use doin_tx_node::TxChain;
use doin_types::{Amount, Hash256, Msat};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the payer locks in its channel, and the hub in each evaluator's, DOIN.
const PAYER_DEPOSIT_DOIN: u64 = 10_000;
const HUB_DEPOSIT_DOIN: u64 = 2_000;
/// Budget of one stream (a new one starts when it is spent), DOIN.
const STREAM_BUDGET_DOIN: u64 = 100;
/// One tick into one stream: 0.25 base units… in milli-units.
const TICK_MSAT: Msat = Msat::new(250_000);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PayeeState {
    channel: ChannelId,
    machine: Snapshot,
    stream: Option<Hash256>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct DemoState {
    payer_channel: Option<ChannelId>,
    payer_machine: Option<Snapshot>,
    payees: Vec<Option<PayeeState>>,
    /// The last main-chain height whose votes were paid.
    main_seen: u64,
    /// What the payer's proposal in flight pays (its stream and vote, or its split), kept with
    /// it so a retransmission after a crash names the same.
    in_flight: Option<PendingContext>,
}

fn load(path: &Path) -> anyhow::Result<DemoState> {
    match std::fs::read(path) {
        Ok(b) => Ok(doin_codec::decode_exact(&b)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DemoState::default()),
        Err(e) => Err(e.into()),
    }
}

/// Writes the state durably: a temporary file, fsynced, renamed over the old one.
fn save(path: &Path, s: &DemoState) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&doin_codec::encode(s)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The demo task.
/// How the demo payer pays the demo evaluators' verification fees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvaluatorPay {
    /// At reveal, each optimae's fees go into a verification fund the hub pays out to the
    /// agreeing evaluators once the decision is final (and returns the rest of).
    Fund,
    /// After each final decision, the payer pays every agreeing evaluator's vote itself (one
    /// split tick per decision, the hub checking each vote).
    Ticks,
    /// The demo payer pays no evaluator: left to a payer running `doin hub fund-reveals`.
    None,
}

pub fn hub_demo(
    payer: KeyPair,
    payees: Vec<KeyPair>,
    dir: PathBuf,
    tick: Duration,
    pay: EvaluatorPay,
) -> SideTask {
    Box::new(move |handles: Handles, mut shutdown| {
        Box::pin(async move {
            let (Some(chain), Some(hub)) = (handles.tx, handles.hub) else {
                return Ok(());
            };
            let main = handles.main;
            let demo = Arc::new(parking_lot::Mutex::new(Demo {
                payer,
                payees,
                pay,
                path: dir.join("hub-demo.bin"),
                state: DemoState::default(),
            }));
            {
                let d = demo.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    let mut d = d.lock();
                    d.state = load(&d.path)?;
                    let n = d.payees.len();
                    d.state.payees.resize(n, None);
                    Ok::<_, anyhow::Error>(())
                })
                .await
                .map_err(|e| e.to_string())?;
                loaded.map_err(|e| format!("hub demo state: {e:#}"))?;
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                let (d, c, h, m) = (demo.clone(), chain.clone(), hub.clone(), main.clone());
                let step = tokio::task::spawn_blocking(move || d.lock().step(&c, &h, m.as_deref()))
                    .await
                    .map_err(|e| e.to_string())?;
                if let Err(e) = step {
                    tracing::debug!(error = %format!("{e:#}"), "hub demo step");
                }
            }
        })
    })
}

struct Demo {
    payer: KeyPair,
    payees: Vec<KeyPair>,
    pay: EvaluatorPay,
    path: PathBuf,
    state: DemoState,
}

fn copy(k: &KeyPair) -> anyhow::Result<KeyPair> {
    Ok(KeyPair::from_secret_bytes(&k.secret_bytes())?)
}

impl Demo {
    /// One step: set up whatever is missing, else pay one tick into every stream.
    fn step(
        &mut self,
        chain: &TxChain,
        hub: &Hub,
        main: Option<&doin_main_node::MainChain>,
    ) -> anyhow::Result<()> {
        let chain_id = chain.params().chain_id;
        let height = chain.tip().final_height;
        // The payer's channel.
        let Some(payer_channel) = self.state.payer_channel else {
            let (nonce, _) = chain.next_nonce(&self.payer.public())?;
            let id = channel_id(&chain_id, &self.payer.public(), nonce);
            let body = TxBody {
                chain_id,
                sender: self.payer.public(),
                nonce,
                max_fee_per_weight: chain.next_base_fee().checked_mul(2)?,
                max_priority_fee_per_weight: Amount::ZERO,
                payload: TxPayload::ChannelOpen {
                    counterparty: hub.public_key(),
                    deposit: Amount::from_doin(PAYER_DEPOSIT_DOIN)?,
                    counterparty_deposit: Amount::ZERO,
                    dispute_blocks: hub.config().dispute_blocks,
                    consent: None,
                },
            };
            // Recorded before it is sent, so a restart waits for it instead of opening another.
            self.state.payer_channel = Some(id);
            save(&self.path, &self.state)?;
            chain.submit(Tx::from_signed(body.sign(&self.payer)?)?.bytes())?;
            return Ok(());
        };
        if self.state.payer_machine.is_none() {
            let Some(on_chain) = chain
                .store()
                .channel(&payer_channel)
                .map_err(anyhow::Error::msg)?
            else {
                return Ok(()); // not in a block yet
            };
            hub.register_incoming(payer_channel)?;
            let m = ChannelMachine::new(
                chain_id,
                payer_channel,
                Side::A,
                on_chain.party_a,
                on_chain.party_b,
                on_chain.opening_a_msat,
                on_chain.opening_b_msat,
            )?;
            self.state.payer_machine = Some(m.snapshot().clone());
            save(&self.path, &self.state)?;
            tracing::info!(channel = %payer_channel, "hub demo: the payer's channel is open");
        }
        // The hub's channel to every payee, and a stream to each.
        for i in 0..self.payees.len() {
            let payee = copy(&self.payees[i])?;
            match &self.state.payees[i] {
                None => {
                    let id =
                        hub.open_outgoing(payee.public(), Amount::from_doin(HUB_DEPOSIT_DOIN)?)?;
                    let m = ChannelMachine::new(
                        chain_id,
                        id,
                        Side::B,
                        hub.public_key(),
                        payee.public(),
                        Msat::from_amount(Amount::from_doin(HUB_DEPOSIT_DOIN)?)?.get(),
                        0,
                    )?;
                    self.state.payees[i] = Some(PayeeState {
                        channel: id,
                        machine: m.snapshot().clone(),
                        stream: None,
                    });
                    save(&self.path, &self.state)?;
                }
                Some(p) if p.stream.is_none() => {
                    let confirmed = hub.channel(&p.channel).is_some_and(|c| c.confirmed);
                    if !confirmed {
                        continue;
                    }
                    let stream = self.new_stream(hub, &payee, payer_channel)?;
                    if let Some(p) = &mut self.state.payees[i] {
                        p.stream = Some(stream);
                    }
                    save(&self.path, &self.state)?;
                    tracing::info!(payee = %payee.public(), stream = %stream, "hub demo: streaming");
                }
                Some(_) => {}
            }
        }
        // What the hub gives back (a settled fund's rest) first: the channel is then free.
        self.payer_pulls(hub, payer_channel, height)?;
        match (main, self.pay) {
            (Some(main), EvaluatorPay::Fund) => {
                self.fund_reveals(hub, main, payer_channel, height)?
            }
            (Some(main), EvaluatorPay::Ticks) => {
                self.pay_votes(hub, main, payer_channel, height)?
            }
            (Some(_), EvaluatorPay::None) => {}
            (None, _) => self.steady_ticks(hub, payer_channel, height)?,
        }
        for i in 0..self.payees.len() {
            self.payee_pulls(hub, i, height)?;
        }
        Ok(())
    }

    /// The stream into payee `i` that can still carry `amount` msat, if any (a spent one is
    /// let go, so the next step opens a new one); `None` too while its channel is closing.
    fn open_stream_of(
        &mut self,
        hub: &Hub,
        i: usize,
        amount: Msat,
    ) -> anyhow::Result<Option<Hash256>> {
        let Some(PayeeState {
            stream: Some(stream),
            channel,
            ..
        }) = self.state.payees[i].clone()
        else {
            return Ok(None);
        };
        // A payee channel the operator closes gets nothing more (its payouts still flow).
        let closing = hub
            .channel(&channel)
            .is_none_or(|c| c.closing || c.closed_at.is_some() || c.close_requested_at.is_some());
        if closing {
            return Ok(None);
        }
        let spent = hub.stream(&stream).is_none_or(|s| {
            s.received_msat
                .checked_add(amount)
                .map_or(true, |total| total > s.budget_msat)
        });
        if spent {
            if let Some(p) = &mut self.state.payees[i] {
                p.stream = None;
            }
            save(&self.path, &self.state)?;
            return Ok(None);
        }
        Ok(Some(stream))
    }

    /// Evaluator pay: one tick of the verification fee per vote the main blocks since the
    /// last step carry (the hub checks each against the main chain and refuses the rest).
    fn pay_votes(
        &mut self,
        hub: &Hub,
        main: &doin_main_node::MainChain,
        payer_channel: ChannelId,
        height: u64,
    ) -> anyhow::Result<()> {
        // Only blocks the transfer chain has anchored: their decisions are final (the hub
        // refuses to pay for one that a reorganisation could still undo).
        let tip = main.head().header.height.min(main.anchored_height());
        let votes = crate::hub_port::MainChainVotes::new_borrowed(main);
        self.each_new_block(main, tip, |demo, block| {
            for verdict in &block.body.verdicts {
                // Every agreeing demo evaluator of this decision, paid with one update.
                let mut shares = Vec::new();
                for vote in &verdict.votes {
                    let evaluator = vote.body.evaluator;
                    let Some(i) = demo.payees.iter().position(|k| k.public() == evaluator) else {
                        continue;
                    };
                    let Some(fee) = votes.fee(&verdict.optimae_id, &evaluator)? else {
                        continue;
                    };
                    let amount = Msat::from_amount(fee)?;
                    let Some(stream) = demo.open_stream_of(hub, i, amount)? else {
                        continue;
                    };
                    shares.push(StreamShare {
                        stream,
                        amount_msat: amount,
                        vote_optimae: Some(verdict.optimae_id),
                    });
                }
                let amount = Msat::sum(shares.iter().map(|s| s.amount_msat))?;
                let ctx = match shares.as_slice() {
                    [] => continue,
                    // One vote: a tick of its own, naming it.
                    [one] => PendingContext {
                        stream: Some(one.stream),
                        vote: hub.stream(&one.stream).and_then(|s| one.vote(s.payee)),
                        ..PendingContext::default()
                    },
                    _ => PendingContext {
                        split: shares,
                        ..PendingContext::default()
                    },
                };
                demo.tick(hub, payer_channel, ctx, amount, height)?;
            }
            Ok(())
        })
    }

    /// Verification funds: for every optimae the main blocks since the last step reveal, the
    /// payer puts one verification fee per demo evaluator into its fund; the hub pays the
    /// agreeing evaluators out of it once the decision is final.
    fn fund_reveals(
        &mut self,
        hub: &Hub,
        main: &doin_main_node::MainChain,
        payer_channel: ChannelId,
        height: u64,
    ) -> anyhow::Result<()> {
        let tip = main.head().header.height;
        let domains = main.head().state.domains.clone();
        self.each_new_block(main, tip, |demo, block| {
            for reveal in &block.body.reveals {
                let fee = domains
                    .get(&reveal.body.domain)
                    .map(|d| d.spec.verification_fee)
                    .unwrap_or(Amount::ZERO);
                let amount = Msat::from_amount(fee)?.checked_mul(demo.payees.len() as u64)?;
                if amount.is_zero() {
                    continue;
                }
                let ctx = PendingContext {
                    fund: Some(reveal.body.optimae_id()?),
                    ..PendingContext::default()
                };
                demo.tick(hub, payer_channel, ctx, amount, height)?;
            }
            Ok(())
        })
    }

    /// Runs `pay` on each main block after the last one paid, up to `tip`, and records it as
    /// paid (durably) once `pay` is done with it. A bounded number of blocks per step keeps a
    /// step short after a long pause.
    fn each_new_block(
        &mut self,
        main: &doin_main_node::MainChain,
        tip: u64,
        mut pay: impl FnMut(&mut Self, &doin_main_core::MainBlock) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let to = tip.min(self.state.main_seen.saturating_add(20));
        for h in self.state.main_seen.saturating_add(1)..=to {
            if let Some(block) = main.store().block(h)? {
                pay(self, &block)?;
            }
            self.state.main_seen = h;
            save(&self.path, &self.state)?;
        }
        Ok(())
    }

    /// The payer takes what the hub proposes on its channel (a settled fund's rest).
    fn payer_pulls(
        &mut self,
        hub: &Hub,
        payer_channel: ChannelId,
        height: u64,
    ) -> anyhow::Result<()> {
        let Some(snapshot) = self.state.payer_machine.clone() else {
            return Ok(());
        };
        let mut m = ChannelMachine::restore(snapshot);
        if m.in_flight().is_some() {
            return Ok(());
        }
        let key = copy(&self.payer)?;
        answer_outbox(hub, payer_channel, &key, &mut m, height, |m| {
            self.state.payer_machine = Some(m.snapshot().clone());
            save(&self.path, &self.state)
        })
    }

    /// Without the main chain: one tick into every stream at a steady pace.
    fn steady_ticks(
        &mut self,
        hub: &Hub,
        payer_channel: ChannelId,
        height: u64,
    ) -> anyhow::Result<()> {
        for i in 0..self.payees.len() {
            if let Some(stream) = self.open_stream_of(hub, i, TICK_MSAT)? {
                let ctx = PendingContext {
                    stream: Some(stream),
                    ..PendingContext::default()
                };
                self.tick(hub, payer_channel, ctx, TICK_MSAT, height)?;
            }
        }
        Ok(())
    }

    fn new_stream(
        &self,
        hub: &Hub,
        payee: &KeyPair,
        payer_channel: ChannelId,
    ) -> anyhow::Result<Hash256> {
        let preimage: [u8; 32] = rand::thread_rng().gen();
        let invoice = create_invoice(
            hub.chain().network(),
            payee,
            &InvoiceTerms {
                amount_msat: Msat::from_amount(Amount::from_doin(STREAM_BUDGET_DOIN)?)?.get(),
                payment_hash: Hash256(doin_tx_core::channel::sha256(&preimage)),
                payment_secret: rand::thread_rng().gen(),
                description: "devnet evaluation stream".into(),
                expiry_secs: 3_600,
                min_final_cltv_blocks: 10,
            },
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?,
        )?;
        Ok(hub.open_stream(payer_channel, &invoice)?.id)
    }

    /// The payer pays one tick of `amount` msat: into `what.stream` (paying `what.vote`'s fee,
    /// if any), or a split tick over `what.split` (the shares add up to `amount`).
    fn tick(
        &mut self,
        hub: &Hub,
        channel: ChannelId,
        what: PendingContext,
        amount: Msat,
        height: u64,
    ) -> anyhow::Result<()> {
        let Some(snapshot) = self.state.payer_machine.clone() else {
            return Ok(());
        };
        let mut m = ChannelMachine::restore(snapshot);
        if m.in_flight().is_some() {
            // Left over from a crash: ask again with the same proposal.
            if let Some(doin_channels::InFlight::Proposed { change, state }) =
                m.in_flight().cloned()
            {
                let msg = Message::Propose {
                    channel_id: channel,
                    seq: state.seq,
                    change,
                };
                let ctx = context(self.state.in_flight.clone().unwrap_or(what));
                self.exchange(hub, &mut m, channel, msg, ctx, height)?;
            }
            return Ok(());
        }
        let out = m.propose(
            Change::Pay {
                amount_msat: amount.get(),
            },
            height,
        )?;
        self.state.payer_machine = Some(m.snapshot().clone());
        self.state.in_flight = Some(what.clone());
        save(&self.path, &self.state)?;
        if let Some(msg) = out.send {
            self.exchange(hub, &mut m, channel, msg, context(what), height)?;
        }
        Ok(())
    }

    /// The payer's side of one update with the hub.
    fn exchange(
        &mut self,
        hub: &Hub,
        m: &mut ChannelMachine,
        channel: ChannelId,
        first: Message,
        ctx: ProposalContext,
        height: u64,
    ) -> anyhow::Result<()> {
        let mut next = Some(first);
        let mut ctx = Some(ctx);
        while let Some(msg) = next.take() {
            let handled = hub.handle(&channel, msg, ctx.take().unwrap_or_default())?;
            let Some(reply) = handled.reply else { break };
            let out = m.handle(&self.payer, reply, height)?;
            self.state.payer_machine = Some(m.snapshot().clone());
            if m.in_flight().is_none() {
                self.state.in_flight = None;
            }
            save(&self.path, &self.state)?;
            next = out.send;
        }
        Ok(())
    }

    /// Payee `i` accepts whatever the hub proposes on its channel.
    fn payee_pulls(&mut self, hub: &Hub, i: usize, height: u64) -> anyhow::Result<()> {
        let Some(p) = self.state.payees[i].clone() else {
            return Ok(());
        };
        let key = copy(&self.payees[i])?;
        let mut m = ChannelMachine::restore(p.machine.clone());
        answer_outbox(hub, p.channel, &key, &mut m, height, |m| {
            self.save_payee(i, m)
        })
    }

    fn save_payee(&mut self, i: usize, m: &ChannelMachine) -> anyhow::Result<()> {
        if let Some(p) = &mut self.state.payees[i] {
            p.machine = m.snapshot().clone();
        }
        save(&self.path, &self.state)
    }
}

/// What the payer tells the hub its proposal pays.
fn context(what: PendingContext) -> ProposalContext {
    ProposalContext {
        stream: what.stream,
        invoice: what.invoice,
        vote: what.vote,
        split: what.split,
        fund: what.fund,
    }
}

/// `key`'s side `m` of `channel` accepts what the hub proposes there, a few updates at most
/// (the hub proposes the next one as soon as one ends); `persist` runs after every step of
/// the machine, before its message goes out.
fn answer_outbox(
    hub: &Hub,
    channel: ChannelId,
    key: &KeyPair,
    m: &mut ChannelMachine,
    height: u64,
    mut persist: impl FnMut(&ChannelMachine) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for _ in 0..8 {
        let Some(proposal) = hub.outbox(&channel)? else {
            break;
        };
        let mut next = m.handle(key, proposal, height)?.send;
        persist(m)?;
        while let Some(msg) = next.take() {
            let handled = hub.handle(&channel, msg, ProposalContext::default())?;
            let Some(reply) = handled.reply else { break };
            next = m.handle(key, reply, height)?.send;
            persist(m)?;
        }
    }
    Ok(())
}
