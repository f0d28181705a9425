//! The application side of the engine: answers what consensus asks of the chain.
//!
//! The engine owns rounds, votes, timeouts and its write-ahead log; this loop owns blocks. It
//! builds a block when this validator proposes, streams it as parts, reassembles and checks
//! the blocks others propose, commits what is decided with its certificate, serves decided
//! blocks to syncing peers and files slashing evidence the engine observed. The blocks of
//! undecided heights it keeps on disk too (`super::undecided`), written before the engine
//! hears of them, so that a restart in the middle of a height loses none. It must not sign
//! votes (the engine does, through [`super::ConsensusSigner`]) and must not decide validity
//! itself (the chain's `check_proposal` does).

use super::codec::to_chain_certificate;
use super::context::{
    BftHeight, BftValidatorSet, BlockPart, BlockValue, DoinContext, ValidatorAddress,
};
use super::metrics::BftMetrics;
use super::parts::{split_block, PartsCollector, PartsOutcome};
use arc_malachitebft_app_channel::app::types::core::{
    HeightParams, LinearTimeouts, Round, Validity, VoteExtensionPolicy,
};
use arc_malachitebft_app_channel::app::types::sync::RawDecidedValue;
use arc_malachitebft_app_channel::app::types::{LocallyProposedValue, ProposedValue};
use arc_malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use arc_malachitebft_core_consensus::MisbehaviorEvidence;
use arc_malachitebft_engine::host::{Next, SyncedValueOutcome};
use arc_malachitebft_engine::util::streaming::{StreamContent, StreamId, StreamMessage};
use bytes::Bytes;
use doin_crypto::KeyPair;
use doin_tx_core::bft::{Equivocation, VoteForm};
use doin_tx_core::{Block, BlockError, BlockHash, StakeRole, StateView, TxBody, TxPayload};
use doin_types::Timestamp;
use std::sync::Arc;
use std::time::Duration;

use super::undecided::UndecidedBlocks;
use crate::chain::{now_ms, ChainError, TxChain};

/// How many decided blocks one sync response carries at most.
const MAX_SYNC_BATCH: u64 = 32;

/// What checking a proposed block on the tip says about it.
#[derive(Debug)]
enum Checked {
    Valid,
    /// The block breaks a rule: a verdict, kept.
    Invalid(BlockError),
    /// This node cannot judge it yet (its main chain has not reached the main block the
    /// block anchors or is on another main branch for now, or what the block needs could not
    /// be read for now): no verdict, so that the
    /// block is checked again later instead of being refused for good. A node whose main
    /// chain lags after a restart or a partition would otherwise refuse a block the others
    /// decide, and never vote for it again.
    NotYet(String),
    /// This node's own store failed.
    Failed(ChainError),
}

fn classify(checked: Result<(), ChainError>) -> Checked {
    match checked {
        Ok(()) => Checked::Valid,
        // What the block anchors is judged against this node's main chain as it is now: one
        // that lags, or still follows the other side of a main fork a partition made, sees a
        // main block it lacks or another block at that height. That changes as its main chain
        // catches up or reorganises; what the block says of its parent's anchor does not.
        Err(ChainError::Block(
            e @ (BlockError::UnknownMainBlock { .. }
            | BlockError::AnchorMismatch { .. }
            | BlockError::MainChainBroken { .. }),
        )) => Checked::NotYet(e.to_string()),
        Err(ChainError::Block(BlockError::View(p))) if p.is_transient() => {
            Checked::NotYet(p.to_string())
        }
        Err(ChainError::Block(e)) => Checked::Invalid(e),
        Err(e) => Checked::Failed(e),
    }
}

/// Timing of consensus heights.
#[derive(Clone, Debug)]
pub struct HeightTiming {
    pub timeouts: LinearTimeouts,
    /// Least time between the start of a height and the next (the block time).
    pub target_time: Duration,
}

pub struct Host {
    chain: Arc<TxChain>,
    key: Arc<KeyPair>,
    address: ValidatorAddress,
    /// Whether the key held a seat at the last height started (logged when it changes).
    seated: Option<bool>,
    timing: HeightTiming,
    collector: PartsCollector,
    max_block_bytes: usize,
    /// Blocks proposed for heights above the tip, in memory and on disk.
    undecided: UndecidedBlocks,
    stream_counter: u64,
    metrics: BftMetrics,
}

impl Host {
    pub fn new(
        chain: Arc<TxChain>,
        key: Arc<KeyPair>,
        timing: HeightTiming,
        metrics: BftMetrics,
    ) -> Host {
        let limit =
            usize::try_from(chain.params().consensus.block_weight_limit).unwrap_or(usize::MAX);
        // A block's bytes are bounded by its weight plus its header and signatures.
        let max_block_bytes = limit
            .saturating_mul(2)
            .saturating_add(256 * 1024)
            .min(doin_codec::MAX_DECODE_LEN);
        let undecided = UndecidedBlocks::new(chain.store().kv().clone());
        Host {
            address: ValidatorAddress(key.public()),
            chain,
            key,
            seated: None,
            timing,
            collector: PartsCollector::new(max_block_bytes, 64),
            max_block_bytes,
            undecided,
            stream_counter: 0,
            metrics,
        }
    }

    fn next_height(&self) -> u64 {
        self.chain.tip().header.height.saturating_add(1)
    }

    /// The height after the tip with what the engine needs to run it. Block sync commits on
    /// other threads and may move the tip between the two reads: then both are read again.
    fn next_height_params(&mut self) -> Result<(BftHeight, HeightParams<DoinContext>), ChainError> {
        let mut attempts = 0;
        loop {
            let next = BftHeight(self.next_height());
            match self.height_params(next) {
                Ok(params) => return Ok((next, params)),
                Err(_) if self.next_height() != next.0 && attempts < 16 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// What the engine needs to run `height`: above all its validator set, which the chain's
    /// state fixes per epoch (the engine only ever runs the height after the tip).
    fn height_params(
        &mut self,
        height: BftHeight,
    ) -> Result<HeightParams<DoinContext>, ChainError> {
        let set = self.chain.validator_set_at(height.0).ok_or_else(|| {
            ChainError::Inconsistent(format!(
                "consensus asked for height {height}, but the tip is {}",
                self.chain.tip().header.height
            ))
        })?;
        let seated = set.contains(&self.address.0);
        if self.seated.replace(seated) != Some(seated) {
            if seated {
                tracing::info!(%height, validators = set.validators().len(), "this node's key holds a seat in the validator set");
            } else {
                tracing::warn!(%height, validators = set.validators().len(), "this node's key holds no seat in the validator set; it follows without voting");
            }
        }
        Ok(HeightParams {
            validator_set: BftValidatorSet::from(set),
            timeouts: self.timing.timeouts,
            target_time: Some(self.timing.target_time),
            vote_extension_policy: VoteExtensionPolicy::Disabled,
        })
    }

    /// Runs until the engine closes its channel. An error means the chain cannot go on (its
    /// store failed); the node stops.
    pub async fn run(mut self, channels: &mut Channels<DoinContext>) -> Result<(), ChainError> {
        while let Some(msg) = channels.consensus.recv().await {
            self.handle(msg, &channels.network).await?;
        }
        Ok(())
    }

    async fn handle(
        &mut self,
        msg: AppMsg<DoinContext>,
        network: &tokio::sync::mpsc::Sender<NetworkMsg<DoinContext>>,
    ) -> Result<(), ChainError> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let (height, params) = self.next_height_params()?;
                let restored = self.undecided.restore(height.0).await?;
                tracing::info!(%height, restored, "consensus ready");
                let _ = reply.send((height, params));
            }
            AppMsg::StartedRound {
                height,
                round,
                reply_value,
                ..
            } => {
                self.metrics.height.set(gauge(height.0));
                self.metrics
                    .round
                    .set(i64::from(round.as_u32().unwrap_or(0)));
                self.metrics.height_lag.set(gauge(
                    height.0.saturating_sub(self.chain.tip().header.height),
                ));
                self.check_pending(height.0).await?;
                let values = self
                    .undecided
                    .at_height(height.0)
                    .filter_map(|(hash, s)| {
                        s.validity
                            .map(|v| proposed(height, s.round, s.proposer, *hash, v))
                    })
                    .collect();
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue {
                height,
                round,
                reply,
                ..
            } => {
                // (A height block sync committed meanwhile has only one block to propose:
                // `build` finds it.)
                let built = (height.0 > self.chain.tip().header.height)
                    .then(|| self.undecided.built_by(height.0, round, self.address))
                    .flatten();
                let (hash, block) = match built {
                    // Built before a restart: proposing another block in this round would
                    // put a second value of ours into it.
                    Some(built) => {
                        tracing::info!(%height, %round, block = %built.0, "proposing again the block built for this round before a restart");
                        built
                    }
                    None => {
                        let Some(block) = self.build(height).await? else {
                            // Dropping the reply lets the round's propose timeout pass to the
                            // next proposer.
                            return Ok(());
                        };
                        let hash = block.hash()?;
                        self.undecided
                            .keep(hash, round, self.address, block.clone())
                            .await?;
                        (hash, block)
                    }
                };
                if let Some(s) = self.undecided.get_mut(height.0, &hash) {
                    s.validity = Some(Validity::Valid);
                }
                let _ = reply.send(LocallyProposedValue::new(height, round, BlockValue(hash)));
                self.metrics.proposals.with_label_values(&["sent"]).inc();
                self.stream(&block, height, round, self.address, network)
                    .await;
            }
            AppMsg::ReceivedProposalPart { part, reply, .. } => {
                let value = match part.content {
                    StreamContent::Data(p) => self.on_part(p).await?,
                    StreamContent::Fin => None,
                };
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate, reply, ..
            } => {
                self.on_decided(&certificate).await?;
                let _ = reply.send(());
            }
            AppMsg::Finalized {
                certificate,
                evidence,
                reply,
                ..
            } => {
                self.file_evidence(&evidence).await;
                let (next, params) = self.next_height_params()?;
                self.collector.prune_below(next);
                self.undecided.final_below(next.0).await?;
                let decided = certificate.height;
                let _ = reply.send(if next > decided {
                    Next::Start(next, params)
                } else {
                    // The decided block never reached this node: run the height again while
                    // value sync fetches it from a peer.
                    Next::Restart(next, params)
                });
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let values = self.decided_values(range.start().0, range.end().0).await?;
                let _ = reply.send(values);
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = self
                    .on_synced(height, round, proposer, &value_bytes)
                    .await?;
                let _ = reply.send(outcome);
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                // Every block this node has is kept with its certificate.
                let _ = reply.send(BftHeight(1));
            }
            AppMsg::RestreamProposal {
                height,
                round,
                address,
                value_id,
                ..
            } => {
                if let Some(s) = self.undecided.get(height.0, &value_id) {
                    let block = s.block.clone();
                    self.stream(&block, height, round, address, network).await;
                }
            }
            AppMsg::ExtendVote { reply, .. } => {
                // Vote extensions are disabled on the transfer chain.
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                let _ = reply.send(
                    extensions
                        .into_iter()
                        .map(|(a, _)| {
                            (
                                a,
                                Err(arc_malachitebft_core_consensus::VoteExtensionError::InvalidVoteExtension),
                            )
                        })
                        .collect(),
                );
            }
        }
        Ok(())
    }

    /// Builds this validator's proposal for `height` on the tip; `None` when it cannot yet
    /// (the tip came by block sync and its certificate is not here yet: it comes with the next
    /// block, which another validator can propose).
    async fn build(&self, height: BftHeight) -> Result<Option<Arc<Block>>, ChainError> {
        let chain = self.chain.clone();
        let key = self.key.clone();
        let block = tokio::task::spawn_blocking(move || {
            let tip = chain.tip().header.height;
            if height.0 <= tip {
                // The peer-to-peer block sync committed this height while consensus was still
                // running it here: the block already final at this height is the only valid
                // proposal.
                return chain.block_at(height.0)?.map(Some).ok_or_else(|| {
                    ChainError::Inconsistent(format!(
                        "asked to propose height {height}, below the tip {tip}, whose block is gone"
                    ))
                });
            }
            if tip.saturating_add(1) != height.0 {
                return Err(ChainError::Inconsistent(format!(
                    "asked to propose height {height} on tip {tip}"
                )));
            }
            let parent_commit = match tip {
                0 => None,
                h => match chain.certificate(h)? {
                    Some(c) => Some(c),
                    None => {
                        tracing::warn!(%height, tip = h, "not proposing: the tip's certificate has not reached this node yet");
                        return Ok(None);
                    }
                },
            };
            match chain.propose_block(&key, Timestamp(now_ms()), parent_commit.as_ref()) {
                Ok(block) => Ok(Some(block)),
                // The block sync moved the tip while the proposal was built: let the round pass.
                Err(ChainError::Block(e)) if chain.tip().header.height != tip => {
                    tracing::warn!(%height, error = %e, "not proposing: the tip moved while the proposal was built");
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| ChainError::Inconsistent(format!("block builder failed: {e}")))??;
        Ok(block.map(Arc::new))
    }

    /// Publishes `block` as a stream of parts (a fresh stream id each time).
    async fn stream(
        &mut self,
        block: &Block,
        height: BftHeight,
        round: Round,
        proposer: ValidatorAddress,
        network: &tokio::sync::mpsc::Sender<NetworkMsg<DoinContext>>,
    ) {
        let parts = match split_block(block, height, round, proposer, self.max_block_bytes) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%height, error = %e, "cannot split a proposed block");
                return;
            }
        };
        self.stream_counter = self.stream_counter.wrapping_add(1);
        let mut id = Vec::with_capacity(24);
        id.extend_from_slice(&height.0.to_be_bytes());
        id.extend_from_slice(&round.as_i64().to_be_bytes());
        id.extend_from_slice(&self.stream_counter.to_be_bytes());
        let stream_id = StreamId::new(Bytes::from(id));
        let count = parts.len() as u64;
        let messages = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| StreamMessage::new(stream_id.clone(), i as u64, StreamContent::Data(p)))
            .chain(std::iter::once(StreamMessage::new(
                stream_id.clone(),
                count,
                StreamContent::Fin,
            )));
        for m in messages {
            if network
                .send(NetworkMsg::PublishProposalPart(m))
                .await
                .is_err()
            {
                tracing::warn!("the consensus network is gone; proposal not streamed");
                return;
            }
        }
    }

    /// A part arrived; when it completes a block for the next height, returns the checked value.
    async fn on_part(
        &mut self,
        part: BlockPart,
    ) -> Result<Option<ProposedValue<DoinContext>>, ChainError> {
        let (height, round, proposer) = (part.height, part.round, part.proposer);
        if height.0 < self.next_height() {
            return Ok(None);
        }
        let block = match self.collector.insert(part) {
            Ok(PartsOutcome::Incomplete) => return Ok(None),
            Ok(PartsOutcome::Complete(b)) => Arc::new(*b),
            Err(e) => {
                tracing::debug!(%height, %proposer, error = %e, "dropped a proposal stream");
                return Ok(None);
            }
        };
        self.metrics
            .proposals
            .with_label_values(&["received"])
            .inc();
        let hash = block.hash()?;
        self.undecided.keep(hash, round, proposer, block).await?;
        self.check_pending(height.0).await?;
        Ok(self.undecided.get(height.0, &hash).and_then(|s| {
            s.validity
                .map(|v| proposed(height, round, proposer, hash, v))
        }))
    }

    /// Gives every unchecked block proposed for `height` its verdict: checked on the tip when
    /// it extends the tip; compared with the committed block when the tip is already past
    /// `height` (the node's block sync can commit final blocks before consensus decides them
    /// here); left for later when `height` is further ahead.
    async fn check_pending(&mut self, height: u64) -> Result<(), ChainError> {
        if height > self.next_height() {
            return Ok(());
        }
        let unchecked: Vec<(BlockHash, Arc<Block>)> = self
            .undecided
            .at_height(height)
            .filter(|(_, s)| s.validity.is_none())
            .map(|(hash, s)| (*hash, s.block.clone()))
            .collect();
        for (hash, block) in unchecked {
            if height < self.next_height() {
                let validity = self.committed_validity(height, &hash)?;
                if let Some(s) = self.undecided.get_mut(height, &hash) {
                    s.validity = Some(validity);
                }
                continue;
            }
            let chain = self.chain.clone();
            let checked = tokio::task::spawn_blocking(move || {
                chain.check_proposal(&block, Timestamp(now_ms()))
            })
            .await
            .map_err(|e| ChainError::Inconsistent(format!("block check failed: {e}")))?;
            let validity = match classify(checked) {
                Checked::Valid => Validity::Valid,
                // The tip moved past `height` during the check: the block sync committed it.
                Checked::Invalid(_) if height < self.next_height() => {
                    self.committed_validity(height, &hash)?
                }
                Checked::Invalid(e) => {
                    tracing::warn!(height, block = %hash, error = %e, "proposed block is invalid");
                    self.metrics.proposals_rejected.inc();
                    Validity::Invalid
                }
                Checked::NotYet(why) => {
                    tracing::info!(height, block = %hash, reason = %why, "proposed block not checkable yet; checked again at the next round, part or synced value");
                    continue;
                }
                // Our own store failed: not the proposer's fault, and not something to vote on.
                Checked::Failed(e) => return Err(e),
            };
            if let Some(s) = self.undecided.get_mut(height, &hash) {
                s.validity = Some(validity);
            }
        }
        Ok(())
    }

    /// The verdict on a block proposed for a height this node has committed already: valid
    /// exactly when it is the committed (final) block.
    fn committed_validity(&self, height: u64, hash: &BlockHash) -> Result<Validity, ChainError> {
        Ok(match self.chain.committed_as(height, hash)? {
            Some(true) => Validity::Valid,
            _ => {
                tracing::warn!(height, block = %hash, "proposed block differs from the final block at its height");
                self.metrics.proposals_rejected.inc();
                Validity::Invalid
            }
        })
    }

    async fn on_decided(
        &mut self,
        certificate: &arc_malachitebft_core_types::CommitCertificate<DoinContext>,
    ) -> Result<(), ChainError> {
        let height = certificate.height.0;
        let Some(cert) = to_chain_certificate(certificate) else {
            tracing::error!(height, "decided certificate without a round");
            return Ok(());
        };
        let Some(block) = self
            .undecided
            .get(height, &certificate.value_id)
            .map(|s| s.block.clone())
        else {
            // Decided without the block reaching us; value sync will bring it.
            tracing::warn!(height, block = %certificate.value_id, "decided a block this node does not have");
            return Ok(());
        };
        let chain = self.chain.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            chain.commit_decided(&block, &cert, Timestamp(now_ms()))
        })
        .await
        .map_err(|e| ChainError::Inconsistent(format!("commit task failed: {e}")))?;
        match outcome {
            Ok(o) => {
                self.metrics.decided.inc();
                tracing::debug!(height, ?o, "decided block committed");
                Ok(())
            }
            Err(ChainError::Block(e)) => {
                // 2/3+ of the validators decided a block this node finds invalid: its own
                // state or main-chain view differs. Stop rather than fork.
                Err(ChainError::Inconsistent(format!(
                    "consensus decided block {} at height {height}, which this node cannot apply: {e}",
                    certificate.value_id
                )))
            }
            Err(e) => Err(e),
        }
    }

    async fn decided_values(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<RawDecidedValue<DoinContext>>, ChainError> {
        let chain = self.chain.clone();
        let tip = chain.tip().header.height;
        let to = to.min(tip).min(from.saturating_add(MAX_SYNC_BATCH - 1));
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for h in from.max(1)..=to {
                let (Some(block), Some(cert)) = (chain.block_at(h)?, chain.certificate(h)?) else {
                    break;
                };
                out.push(RawDecidedValue::new(
                    Bytes::from(block.encode()?),
                    super::codec::to_engine_certificate(&cert),
                ));
            }
            Ok(out)
        })
        .await
        .map_err(|e| ChainError::Inconsistent(format!("sync task failed: {e}")))?
    }

    async fn on_synced(
        &mut self,
        height: BftHeight,
        round: Round,
        proposer: ValidatorAddress,
        bytes: &[u8],
    ) -> Result<SyncedValueOutcome<DoinContext>, ChainError> {
        if bytes.len() > self.max_block_bytes {
            return Ok(SyncedValueOutcome::PeerFault);
        }
        let Ok(block) = Block::decode(bytes) else {
            return Ok(SyncedValueOutcome::PeerFault);
        };
        if block.header.height != height.0 || block.verify_signature().is_err() {
            return Ok(SyncedValueOutcome::PeerFault);
        }
        let hash = block.hash()?;
        self.undecided
            .keep(hash, round, proposer, Arc::new(block))
            .await?;
        self.check_pending(height.0).await?;
        Ok(
            match self.undecided.get(height.0, &hash).and_then(|s| s.validity) {
                Some(v) => SyncedValueOutcome::Verdict(proposed(height, round, proposer, hash, v)),
                // Not on our tip yet (we are further behind): ask again later.
                None => SyncedValueOutcome::LocalTransientError,
            },
        )
    }

    /// Files every double vote the engine saw as a `ReportEquivocation` transaction.
    async fn file_evidence(&self, evidence: &MisbehaviorEvidence<DoinContext>) {
        for (address, doubles) in evidence.votes.iter() {
            for (first, second) in doubles {
                self.metrics.equivocations.inc();
                let (Some(a), Some(b)) = (first.message.form(), second.message.form()) else {
                    continue;
                };
                let punished = self
                    .chain
                    .store()
                    .stake(&a.validator, StakeRole::Validator)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.tombstoned);
                if punished {
                    tracing::debug!(validator = %address, height = a.height, "validator double-voted again; its stake is already burned");
                    continue;
                }
                tracing::warn!(validator = %address, height = a.height, "validator double-voted; reporting it");
                if let Err(e) = self.report(a, first.signature, b, second.signature) {
                    tracing::warn!(validator = %address, error = %e, "could not file equivocation evidence");
                }
            }
        }
    }

    fn report(
        &self,
        first: VoteForm,
        first_signature: doin_types::SignatureBytes,
        second: VoteForm,
        second_signature: doin_types::SignatureBytes,
    ) -> Result<(), String> {
        let me = self.key.public();
        let (nonce, _) = self.chain.next_nonce(&me).map_err(|e| e.to_string())?;
        let base_fee = self.chain.next_base_fee();
        let body = TxBody {
            chain_id: self.chain.params().chain_id,
            sender: me,
            nonce,
            // Room for the base fee to rise for a few blocks before the report is included.
            max_fee_per_weight: base_fee.checked_mul(4).unwrap_or(base_fee),
            max_priority_fee_per_weight: doin_types::Amount::ZERO,
            payload: TxPayload::ReportEquivocation {
                evidence: Box::new(Equivocation {
                    first,
                    first_signature,
                    second,
                    second_signature,
                }),
            },
        };
        let signed = body.sign(&self.key).map_err(|e| e.to_string())?;
        let bytes = doin_codec::encode(&signed).map_err(|e| e.to_string())?;
        self.chain
            .submit(&bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// What the engine is told about a checked block. The lock round is the engine's business
/// (the signed proposal carries it), so it is not repeated here.
fn proposed(
    height: BftHeight,
    round: Round,
    proposer: ValidatorAddress,
    hash: BlockHash,
    validity: Validity,
) -> ProposedValue<DoinContext> {
    ProposedValue {
        height,
        round,
        valid_round: Round::Nil,
        proposer,
        value: BlockValue(hash),
        validity,
    }
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_anchoring_a_main_block_this_node_lacks_or_has_otherwise_gets_no_verdict_yet() {
        let lagging = classify(Err(ChainError::Block(BlockError::UnknownMainBlock {
            height: 133,
        })));
        assert!(matches!(lagging, Checked::NotYet(_)), "{lagging:?}");
        let other_branch = classify(Err(ChainError::Block(BlockError::AnchorMismatch {
            height: 6,
        })));
        assert!(
            matches!(other_branch, Checked::NotYet(_)),
            "{other_branch:?}"
        );
        let unread = classify(Err(ChainError::Block(BlockError::View(
            doin_types::PortError::NotYet("main block 133 is not final here yet".into()),
        ))));
        assert!(matches!(unread, Checked::NotYet(_)), "{unread:?}");
    }

    /// A validator killed after streaming its proposal, before the engine logged it, is asked
    /// for a value at the same round again after the restart: it must propose the block it
    /// built then, not a second one (which would split the others' votes in that round).
    #[tokio::test]
    async fn a_restarted_proposer_proposes_the_block_it_built_for_that_round_again() {
        use crate::chain::TxChainConfig;
        use doin_store::{KvStore, MemStore};
        use doin_telemetry::Metrics;
        use doin_tx_core::{ConsensusParams, GenesisSpec};
        use doin_types::Network;

        let key = Arc::new(KeyPair::generate());
        let spec = GenesisSpec {
            stakes: Vec::new(),
            network: Network::Devnet,
            chain_name: "undecided-test".into(),
            genesis_time: Timestamp(1_000_000),
            params: ConsensusParams::public_defaults(),
            validators: vec![key.public()],
            allocations: Vec::new(),
        };
        let kv: Arc<dyn KvStore> = Arc::new(MemStore::new(crate::store::COLUMNS));
        // One process's life: a chain and a host on the store, asked for values.
        let start = || {
            let metrics = Metrics::new();
            let chain = TxChain::open(kv.clone(), spec.clone(), TxChainConfig::default(), &metrics)
                .unwrap();
            let timing = HeightTiming {
                timeouts: LinearTimeouts::default(),
                target_time: Duration::from_secs(1),
            };
            Host::new(
                chain,
                key.clone(),
                timing,
                BftMetrics::register(&metrics).unwrap(),
            )
        };
        let (network, mut streamed) = tokio::sync::mpsc::channel(1_024);
        let ask = |round: u32| {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let msg = AppMsg::GetValue {
                height: BftHeight(1),
                round: Round::new(round),
                timeout: Duration::from_secs(1),
                reply,
            };
            (msg, answer)
        };
        let ready = || {
            let (reply, answer) = tokio::sync::oneshot::channel();
            (AppMsg::ConsensusReady { reply }, answer)
        };

        let mut host = start();
        let (msg, answer) = ready();
        host.handle(msg, &network).await.unwrap();
        assert_eq!(answer.await.unwrap().0, BftHeight(1));
        let (msg, answer) = ask(0);
        host.handle(msg, &network).await.unwrap();
        let first = answer.await.unwrap().value;
        assert!(streamed.try_recv().is_ok(), "the block was streamed");
        drop(host);
        // Another block built now would differ (its time is later).
        tokio::time::sleep(Duration::from_millis(5)).await;

        let mut host = start();
        let (msg, _) = ready();
        host.handle(msg, &network).await.unwrap();
        let (msg, answer) = ask(0);
        host.handle(msg, &network).await.unwrap();
        assert_eq!(answer.await.unwrap().value, first);
        // A later round is a new proposal.
        let (msg, answer) = ask(1);
        host.handle(msg, &network).await.unwrap();
        assert_ne!(answer.await.unwrap().value, first);
    }

    #[test]
    fn a_broken_rule_is_a_verdict_and_a_store_failure_is_ours() {
        let broken = classify(Err(ChainError::Block(BlockError::AnchorBackwards {
            parent: 5,
            got: 4,
        })));
        assert!(matches!(broken, Checked::Invalid(_)), "{broken:?}");
        let corrupt = classify(Err(ChainError::Block(BlockError::View(
            doin_types::PortError::Corrupt("undecodable".into()),
        ))));
        assert!(matches!(corrupt, Checked::Invalid(_)), "{corrupt:?}");
        let ours = classify(Err(ChainError::Inconsistent("disk".into())));
        assert!(matches!(ours, Checked::Failed(_)), "{ours:?}");
        assert!(matches!(classify(Ok(())), Checked::Valid));
    }
}
