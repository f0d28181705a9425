//! A payer's or payee's own side of its channels with the hub, over REST: the channel
//! machine's state kept in files, and the protocol messages signed with the peer's key.
//!
//! Persist before acting: a state is written (temporary file, fsync, rename, directory fsync)
//! before any message that depends on it leaves, so an interrupted command can simply be run
//! again (the hub answers a retransmitted message the same way). This module never decides
//! what to pay: the `doin hub` commands do.

use crate::http::Client;
use anyhow::{anyhow, bail, Context};
use doin_api::hub::{
    ChannelView, MessageRequest, MessageResponse, OutboxView, PaymentView, ShareRequest,
};
use doin_channels::{Change, ChannelMachine, Event, InFlight, Message, Output, Snapshot};
use doin_crypto::KeyPair;
use doin_hub_core::auth::message_auth_hash;
use doin_hub_core::records::StreamShare;
use doin_tx_core::channel::{sha256, ChannelId, Side};
use doin_types::{Address, ChainId, Hash256, Network};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` durably: a temporary file, fsynced, renamed over the old one.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// One peer (its key) talking to the hub of one node.
pub struct HubPeer {
    pub client: Client,
    pub key: KeyPair,
    pub chain_id: ChainId,
    pub network: Network,
    pub state_dir: PathBuf,
}

/// What a proposal to the hub is for (signed with the message): the stream a tick pays, the
/// invoice an HTLC pays, the vote whose verification fee a tick pays, the streams a split
/// tick pays, the optimae a funding tick funds.
pub type MessageContext<'a> = doin_hub_core::auth::SignedContext<'a>;

/// The context of our proposal in flight, kept beside the channel's state: a proposal sent
/// again (after a lost message or an interrupted command) must carry the context it was
/// signed with, or the hub would book a tick as a plain payment and its stream would miss it.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SavedContext {
    /// The sequence number of the proposed state this context belongs to.
    seq: u64,
    stream: Option<Hash256>,
    invoice: Option<String>,
    vote_optimae: Option<Hash256>,
    split: Vec<StreamShare>,
    fund_optimae: Option<Hash256>,
}

impl SavedContext {
    fn new(seq: u64, ctx: &MessageContext<'_>) -> Self {
        Self {
            seq,
            stream: ctx.stream.copied(),
            invoice: ctx.invoice.map(str::to_string),
            vote_optimae: ctx.vote_optimae.copied(),
            split: ctx.split.to_vec(),
            fund_optimae: ctx.fund_optimae.copied(),
        }
    }

    /// No context: a proposal of state `seq` that pays nothing in particular, or an
    /// acceptance or confirmation.
    fn plain(seq: u64) -> Self {
        Self {
            seq,
            ..Self::default()
        }
    }

    fn borrow(&self) -> MessageContext<'_> {
        MessageContext {
            stream: self.stream.as_ref(),
            invoice: self.invoice.as_deref(),
            vote_optimae: self.vote_optimae.as_ref(),
            split: &self.split,
            fund_optimae: self.fund_optimae.as_ref(),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Self::plain(self.seq)
    }
}

/// What one exchange with the hub completed.
#[derive(Debug, Default)]
pub struct Exchanged {
    /// Updates signed by both, in order.
    pub completed: Vec<Change>,
    /// The hub refused this peer's proposal, with its reason.
    pub rejected: Option<String>,
    /// The ledger entries the hub reported.
    pub payments: Vec<PaymentView>,
}

impl HubPeer {
    fn state_path(&self, id: &ChannelId) -> PathBuf {
        self.state_dir.join(format!("{}.channel", id.to_hex()))
    }

    fn context_path(&self, id: &ChannelId) -> PathBuf {
        self.state_dir.join(format!("{}.context", id.to_hex()))
    }

    /// Where a payee keeps the preimage of an invoice it made.
    pub fn preimage_path(&self, hash: &Hash256) -> PathBuf {
        self.state_dir
            .join("preimages")
            .join(format!("{}.preimage", hash.to_hex()))
    }

    pub fn save(&self, m: &ChannelMachine) -> anyhow::Result<()> {
        write_durably(
            &self.state_path(&m.id()),
            &doin_codec::encode(m.snapshot())?,
        )
    }

    /// The channel's machine: from its file, else started from the channel's opening state
    /// on chain (this key must be one of its parties).
    pub async fn machine(&self, id: &ChannelId) -> anyhow::Result<ChannelMachine> {
        let path = self.state_path(id);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let s: Snapshot = doin_codec::decode_exact(&bytes)
                    .with_context(|| format!("{} is not a channel state", path.display()))?;
                return Ok(ChannelMachine::restore(s));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        let v: doin_api::tx::ChannelView = self
            .client
            .get(&format!("/v1/tx/channels/{}", id.to_hex()))
            .await?;
        let party =
            |text: &str| -> anyhow::Result<_> { Ok(Address::parse(text, self.network)?.key) };
        let msat = |what: &str, text: &str| -> anyhow::Result<u64> {
            text.parse()
                .map_err(|_| anyhow!("{what} in the answer is not a number"))
        };
        let (a, b) = (party(&v.party_a)?, party(&v.party_b)?);
        let me = if a == self.key.public() {
            Side::A
        } else if b == self.key.public() {
            Side::B
        } else {
            bail!("this key is not a party of channel {}", id.to_hex());
        };
        let m = ChannelMachine::new(
            self.chain_id,
            *id,
            me,
            a,
            b,
            msat("opening_a_msat", &v.opening_a_msat)?,
            msat("opening_b_msat", &v.opening_b_msat)?,
        )?;
        self.save(&m)?;
        Ok(m)
    }

    /// Sends one signed message; the hub's reply and the payments it reported.
    async fn send(
        &self,
        id: &ChannelId,
        msg: &Message,
        ctx: MessageContext<'_>,
    ) -> anyhow::Result<(Option<Message>, Vec<PaymentView>)> {
        let bytes = msg.encode()?;
        let sig = self
            .key
            .sign(&message_auth_hash(&self.chain_id, id, &bytes, &ctx));
        let body = MessageRequest {
            message: hex::encode(&bytes),
            stream: ctx.stream.map(|s| s.to_hex()),
            invoice: ctx.invoice.map(str::to_string),
            vote_optimae: ctx.vote_optimae.map(|o| o.to_hex()),
            next: None,
            split: (!ctx.split.is_empty()).then(|| {
                ctx.split
                    .iter()
                    .map(|s| ShareRequest {
                        stream: s.stream.to_hex(),
                        amount_msat: s.amount_msat.to_string(),
                        vote_optimae: s.vote_optimae.map(|o| o.to_hex()),
                    })
                    .collect()
            }),
            fund_optimae: ctx.fund_optimae.map(|o| o.to_hex()),
            signature: hex::encode(sig.0),
        };
        let path = format!("/v1/hub/channels/{}/messages", id.to_hex());
        let (_, v): (u16, MessageResponse) = self.client.post(&path, &body).await?;
        let reply = match &v.reply {
            Some(h) => Some(Message::decode(&hex::decode(h)?)?),
            None => None,
        };
        Ok((reply, v.payments))
    }

    /// Runs `first` (the output of a proposal or of handling the hub's proposal) to its end:
    /// persist, send, handle the reply, persist, send, ...
    async fn run(
        &self,
        m: &mut ChannelMachine,
        first: Output,
        ctx: MessageContext<'_>,
        height: u64,
    ) -> anyhow::Result<Exchanged> {
        let mut done = Exchanged::default();
        let mut out = first;
        let mut context = ctx;
        loop {
            self.save(m)?;
            for e in out.events {
                match e {
                    Event::Completed { change, .. } => done.completed.push(change),
                    Event::Rejected { reason, .. } => done.rejected = Some(reason),
                    Event::Dropped { .. } => {}
                }
            }
            let Some(msg) = out.send else {
                return Ok(done);
            };
            let id = m.id();
            let (reply, payments) = self.send(&id, &msg, context).await?;
            // Only a proposal carries its context (the hub keeps it with its signature); the
            // confirmation names the stream alone.
            context = MessageContext {
                stream: context.stream,
                ..MessageContext::default()
            };
            done.payments.extend(payments);
            let Some(reply) = reply else {
                return Ok(done);
            };
            out = m.handle(&self.key, reply, height)?;
        }
    }

    /// Proposes `change` and completes the update with the hub.
    pub async fn propose(
        &self,
        m: &mut ChannelMachine,
        change: Change,
        ctx: MessageContext<'_>,
        height: u64,
    ) -> anyhow::Result<Exchanged> {
        if m.in_flight().is_some() {
            bail!("an update of this channel is in flight: run `doin hub sync` first");
        }
        let out = m.propose(change.clone(), height)?;
        self.keep_context(m, &ctx)?;
        let done = self.run(m, out, ctx, height).await?;
        self.forget_context(m)?;
        if done.rejected.is_none() {
            return Ok(done);
        }
        // Refused: perhaps because the hub still waits for a confirmation of ours that was
        // lost. Then send it and propose once more (only a refusal costs this extra look).
        let Some((resend, saved)) = self.unfinished(m).await? else {
            return Ok(done);
        };
        let out = Output {
            persist: None,
            send: Some(resend),
            events: Vec::new(),
        };
        let mut all = self.run(m, out, saved.borrow(), height).await?;
        let out = m.propose(change, height)?;
        self.keep_context(m, &ctx)?;
        merge(&mut all, self.run(m, out, ctx, height).await?);
        self.forget_context(m)?;
        Ok(all)
    }

    /// Answers every proposal the hub has waiting on the channel; as a payee, takes every
    /// HTLC it holds the preimage of. Returns what completed.
    pub async fn sync(&self, m: &mut ChannelMachine, height: u64) -> anyhow::Result<Exchanged> {
        let mut all = Exchanged::default();
        let id = m.id();
        if let Some((resend, saved)) = self.unfinished(m).await? {
            let out = Output {
                persist: None,
                send: Some(resend),
                events: Vec::new(),
            };
            merge(&mut all, self.run(m, out, saved.borrow(), height).await?);
            self.forget_context(m)?;
        }
        loop {
            let v: OutboxView = self
                .client
                .get(&format!("/v1/hub/channels/{}/outbox", id.to_hex()))
                .await?;
            let Some(h) = v.message else {
                break;
            };
            let proposal = Message::decode(&hex::decode(h)?)?;
            let out = m.handle(&self.key, proposal, height)?;
            merge(
                &mut all,
                self.run(m, out, MessageContext::default(), height).await?,
            );
        }
        // HTLCs offered to this peer whose preimage it holds (it made the invoice).
        let mine = m.me();
        let claimable: Vec<[u8; 32]> = m
            .latest()
            .state
            .htlcs
            .iter()
            .filter(|h| h.offered_by != mine && h.expiry > height)
            .filter_map(|h| self.preimage(&h.payment_hash))
            .collect();
        for preimage in claimable {
            let done = self
                .propose(
                    m,
                    Change::FulfillHtlc { preimage },
                    MessageContext::default(),
                    height,
                )
                .await?;
            merge(&mut all, done);
        }
        Ok(all)
    }

    /// Keeps the context of the proposal `m` has in flight, durably, before it is sent: a
    /// plain proposal (no context) keeps nothing.
    fn keep_context(&self, m: &ChannelMachine, ctx: &MessageContext<'_>) -> anyhow::Result<()> {
        let Some(InFlight::Proposed { state, .. }) = m.in_flight() else {
            return Ok(());
        };
        let saved = SavedContext::new(state.seq, ctx);
        if saved.is_empty() {
            return self.forget_context(m);
        }
        write_durably(&self.context_path(&m.id()), &doin_codec::encode(&saved)?)
    }

    /// Removes the kept context once no proposal of ours is in flight.
    fn forget_context(&self, m: &ChannelMachine) -> anyhow::Result<()> {
        if matches!(m.in_flight(), Some(InFlight::Proposed { .. })) {
            return Ok(());
        }
        let path = self.context_path(&m.id());
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// The kept context of our proposal of state `seq` (none kept: a plain proposal).
    fn saved_context(&self, id: &ChannelId, seq: u64) -> anyhow::Result<SavedContext> {
        let path = self.context_path(id);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SavedContext::plain(seq))
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let saved: SavedContext = doin_codec::decode_exact(&bytes)
            .with_context(|| format!("{} is not a proposal's context", path.display()))?;
        if saved.seq != seq {
            // Left by an earlier proposal (a crash between its end and the removal).
            return Ok(SavedContext::plain(seq));
        }
        Ok(saved)
    }

    /// The message to send again when an update was left half-way by an interrupted command
    /// or a lost message (the channel machine answers a message sent twice the same way),
    /// with the context it is signed with: our proposal (and its kept context) or acceptance
    /// still in flight, or our confirmation of the latest state when the hub is still
    /// waiting for it.
    async fn unfinished(
        &self,
        m: &ChannelMachine,
    ) -> anyhow::Result<Option<(Message, SavedContext)>> {
        let channel_id = m.id();
        match m.in_flight().cloned() {
            Some(InFlight::Proposed { change, state }) => Ok(Some((
                Message::Propose {
                    channel_id,
                    seq: state.seq,
                    change,
                },
                self.saved_context(&channel_id, state.seq)?,
            ))),
            Some(InFlight::Accepted { state, sig, .. }) => Ok(Some((
                Message::Accept {
                    channel_id,
                    seq: state.seq,
                    sig,
                },
                SavedContext::plain(state.seq),
            ))),
            None => {
                let latest = m.latest();
                if latest.state.seq == 0 {
                    return Ok(None);
                }
                let at_hub: ChannelView = self
                    .client
                    .get(&format!("/v1/hub/channels/{}", channel_id.to_hex()))
                    .await?;
                // The hub signed our latest state but never got our signature on it.
                let waiting =
                    at_hub.update_in_flight && at_hub.seq.checked_add(1) == Some(latest.state.seq);
                let mine = match m.me() {
                    Side::A => latest.sig_a,
                    Side::B => latest.sig_b,
                };
                Ok(waiting.then(|| {
                    (
                        Message::Confirm {
                            channel_id,
                            seq: latest.state.seq,
                            sig: mine,
                        },
                        SavedContext::plain(latest.state.seq),
                    )
                }))
            }
        }
    }

    /// The preimage of `hash` when this peer made the invoice (it keeps the preimage).
    pub(crate) fn preimage(&self, hash: &Hash256) -> Option<[u8; 32]> {
        let text = std::fs::read_to_string(self.preimage_path(hash)).ok()?;
        let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
        (Hash256(sha256(&bytes)) == *hash).then_some(bytes)
    }
}

/// Follows the hub's proposals on `id`, pushed as server-sent events: sends `id` down `wake`
/// for each proposal, and once after every reconnection (something may have waited while the
/// stream was down; the hub also sends the waiting proposal first). Reconnects after a pause
/// when the stream breaks, saying so on stderr once per outage; ends when `wake` is closed.
pub fn follow_proposals(
    client: Client,
    id: ChannelId,
    wake: tokio::sync::mpsc::Sender<ChannelId>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let path = format!("/v1/hub/channels/{}/outbox/events", id.to_hex());
        let (mut reconnected, mut warned) = (false, false);
        loop {
            match client.open_events(&path, None, None).await {
                Ok(resp) => {
                    warned = false;
                    if reconnected && wake.send(id).await.is_err() {
                        return;
                    }
                    let mut events = crate::http::EventReader::new(resp);
                    while events.next_data().await.is_some() {
                        if wake.send(id).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) if !warned => {
                    warned = true;
                    eprintln!(
                        "the hub's proposals on {} cannot be followed now ({e}); retrying",
                        id.to_hex()
                    );
                }
                Err(_) => {}
            }
            if wake.is_closed() {
                return;
            }
            reconnected = true;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    })
}

fn merge(into: &mut Exchanged, more: Exchanged) {
    into.completed.extend(more.completed);
    into.payments.extend(more.payments);
    if more.rejected.is_some() {
        into.rejected = more.rejected;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use doin_types::Msat;

    #[test]
    fn a_kept_context_reads_back_as_signed_and_a_plain_one_is_not_kept() {
        let stream = Hash256([7; 32]);
        let split = [StreamShare {
            stream,
            amount_msat: Msat::new(50_000),
            vote_optimae: Some(Hash256([9; 32])),
        }];
        let ctx = MessageContext {
            invoice: Some("lnbc1"),
            split: &split,
            ..MessageContext::default()
        };
        let saved = SavedContext::new(4, &ctx);
        assert!(!saved.is_empty());
        let back: SavedContext =
            doin_codec::decode_exact(&doin_codec::encode(&saved).unwrap()).unwrap();
        assert_eq!(back, saved);
        let chain_id = ChainId(Hash256([1; 32]));
        let (id, msg) = (Hash256([2; 32]), b"propose");
        assert_eq!(
            message_auth_hash(&chain_id, &id, msg, &back.borrow()),
            message_auth_hash(&chain_id, &id, msg, &ctx)
        );
        assert!(SavedContext::new(4, &MessageContext::default()).is_empty());
    }
}
