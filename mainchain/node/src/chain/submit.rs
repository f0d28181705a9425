//! Checking a submitted message against the tip before it is pooled, so a client hears about
//! its mistake at once. These checks are a courtesy: the block builder re-checks everything with
//! the consensus rules when the message goes into a block.

use super::MainChain;
use crate::store::PoolKind;
use doin_codec::decode_exact_bounded;
use doin_main_core::quorum;
use doin_main_core::{
    ItemError, Message, MsgError, SignedCommit, SignedRegister, SignedReveal, SignedVote,
};
use doin_store::StoreError;
use doin_types::Hash256;

use super::MAX_MESSAGE_BYTES;

/// Why a submitted message was refused; `kind` is the stable problem type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Rejection {
    pub kind: &'static str,
    pub detail: String,
}

pub(super) fn reject(kind: &'static str, detail: impl std::fmt::Display) -> Rejection {
    Rejection {
        kind,
        detail: detail.to_string(),
    }
}

pub(super) fn item_rejection(e: ItemError) -> Rejection {
    let kind = match &e {
        ItemError::Message(MsgError::WrongChain) => "wrong-chain",
        ItemError::Message(MsgError::BadSignature) => "bad-signature",
        ItemError::Message(MsgError::BadSigner) => "invalid-signer",
        ItemError::Message(MsgError::Encode(_)) => "malformed-message",
        ItemError::Domain(_) => "invalid-domain-spec",
        ItemError::DomainExists(_) => "domain-exists",
        ItemError::UnknownDomain(_) => "unknown-domain",
        ItemError::DuplicateCommit => "duplicate-commit",
        ItemError::RevealWithoutCommit => "reveal-without-commit",
        ItemError::RevealTooEarly { .. } => "reveal-too-early",
        ItemError::RevealTooLate { .. } => "reveal-too-late",
        ItemError::RevealMismatch => "reveal-mismatch",
        ItemError::TooFewEvaluators { .. } => "too-few-evaluators",
        ItemError::AlreadyPending => "optimae-pending",
        ItemError::UnknownOptimae => "unknown-optimae",
        ItemError::VerdictTooEarly => "vote-too-early",
        ItemError::WrongRound { .. } => "wrong-round",
        ItemError::VoteMismatch { .. } => "vote-mismatch",
        ItemError::VoterNotSelected { .. } => "evaluator-not-selected",
        ItemError::DuplicateVote { .. } => "duplicate-vote",
        ItemError::BadVote { .. } => "bad-signature",
        ItemError::VoteCount { .. } => "vote-count",
        ItemError::DuplicateVerdict => "duplicate-verdict",
        ItemError::OptimizerNotStaked(_) => "optimizer-not-staked",
    };
    reject(kind, e)
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a submission did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The message id (for a reveal: the optimae id; for a commit: the commit id).
    pub id: Hash256,
    /// False when the message was already known.
    pub new: bool,
}

impl MainChain {
    pub(super) fn check_and_pool(
        &self,
        kind: PoolKind,
        bytes: &[u8],
        persist: bool,
    ) -> Result<Submitted, SubmitError> {
        let malformed = |e: doin_codec::CodecError| reject("malformed-message", e);
        let head = self.head();
        let s = &head.state;
        let chain_id = &self.params.chain_id;
        let mut pool = self.pool.lock();
        if persist && pool.len() >= self.cfg.max_pool_messages {
            return Err(reject(
                "pool-full",
                "the main-chain message pool is full; retry later",
            )
            .into());
        }
        let (id, msg_id) = match kind {
            PoolKind::Register => {
                let r: SignedRegister =
                    decode_exact_bounded(bytes, MAX_MESSAGE_BYTES).map_err(malformed)?;
                let id = r.verify(chain_id).map_err(|e| item_rejection(e.into()))?;
                if pool.registrations.contains_key(&id) {
                    return Ok(Submitted { id, new: false });
                }
                r.body
                    .spec
                    .validate()
                    .map_err(|e| item_rejection(e.into()))?;
                if s.domains.contains_key(&r.body.spec.id) {
                    return Err(item_rejection(ItemError::DomainExists(
                        r.body.spec.id.to_string(),
                    ))
                    .into());
                }
                pool.registrations.insert(id, r);
                (id, id)
            }
            PoolKind::Commit => {
                let c: SignedCommit =
                    decode_exact_bounded(bytes, MAX_MESSAGE_BYTES).map_err(malformed)?;
                let id = c.verify(chain_id).map_err(|e| item_rejection(e.into()))?;
                if pool.commits.contains_key(&id) || s.commits.contains_key(&id) {
                    return Ok(Submitted { id, new: false });
                }
                if self.store.commit_info(&id)?.is_some() {
                    return Ok(Submitted { id, new: false });
                }
                if !s.domains.contains_key(&c.body.domain) {
                    return Err(item_rejection(ItemError::UnknownDomain(
                        c.body.domain.to_string(),
                    ))
                    .into());
                }
                pool.commits.insert(id, c);
                (id, id)
            }
            PoolKind::Reveal => {
                let r: SignedReveal =
                    decode_exact_bounded(bytes, MAX_MESSAGE_BYTES).map_err(malformed)?;
                let msg_id = r.verify(chain_id).map_err(|e| item_rejection(e.into()))?;
                let optimae = r.body.optimae_id().map_err(|e| item_rejection(e.into()))?;
                if pool.reveals.contains_key(&msg_id) {
                    return Ok(Submitted {
                        id: optimae,
                        new: false,
                    });
                }
                let Some(cm) = s.commits.get(&r.body.commit_id) else {
                    // Already revealed (and so no longer pending as a commit)?
                    if let Some(info) = self.store.commit_info(&r.body.commit_id)? {
                        if info.revealed_as == Some(optimae) {
                            return Ok(Submitted {
                                id: optimae,
                                new: false,
                            });
                        }
                        return Err(reject(
                            "reveal-too-late",
                            "the commit was revealed already or its reveal window has passed",
                        )
                        .into());
                    }
                    return Err(reject(
                        "reveal-without-commit",
                        "the commit is not on chain (yet): reveal only after the block that includes the commit",
                    )
                    .into());
                };
                let next = head.header.height + 1;
                let window = self.params.consensus.reveal_window;
                if next - cm.height > window {
                    return Err(item_rejection(ItemError::RevealTooLate {
                        late: next - cm.height,
                        window,
                    })
                    .into());
                }
                let commitment = r.body.commitment().map_err(|e| item_rejection(e.into()))?;
                if cm.domain != r.body.domain
                    || cm.optimizer != r.body.optimizer
                    || commitment != cm.commitment
                {
                    return Err(item_rejection(ItemError::RevealMismatch).into());
                }
                let domain = s.domains.get(&r.body.domain).ok_or_else(|| {
                    item_rejection(ItemError::UnknownDomain(r.body.domain.to_string()))
                })?;
                domain
                    .spec
                    .check_params(&r.body.params)
                    .map_err(|e| item_rejection(e.into()))?;
                let eligible = s.eligible(&r.body.domain).len();
                if eligible < quorum::MIN_QUORUM {
                    return Err(item_rejection(ItemError::TooFewEvaluators { eligible }).into());
                }
                if s.pending.contains_key(&optimae) {
                    return Err(item_rejection(ItemError::AlreadyPending).into());
                }
                pool.reveals.insert(msg_id, r);
                (optimae, msg_id)
            }
            PoolKind::Vote => {
                let v: SignedVote =
                    decode_exact_bounded(bytes, MAX_MESSAGE_BYTES).map_err(malformed)?;
                let msg_id = v.verify(chain_id).map_err(|e| item_rejection(e.into()))?;
                let b = &v.body;
                let key = (b.optimae_id, b.round);
                if let Some((known, _)) = pool.votes.get(&key).and_then(|m| m.get(&b.evaluator)) {
                    if *known == msg_id {
                        return Ok(Submitted {
                            id: msg_id,
                            new: false,
                        });
                    }
                    return Err(reject(
                        "duplicate-vote",
                        "this evaluator already voted in this round with a different metric",
                    )
                    .into());
                }
                let p = s
                    .pending
                    .get(&b.optimae_id)
                    .ok_or_else(|| item_rejection(ItemError::UnknownOptimae))?;
                if p.round != b.round {
                    return Err(item_rejection(ItemError::WrongRound {
                        expected: p.round,
                        got: b.round,
                    })
                    .into());
                }
                let q = self
                    .quorum(&head, &b.optimae_id)
                    .ok_or_else(|| item_rejection(ItemError::VerdictTooEarly))?;
                if !q.contains(&b.evaluator) {
                    return Err(item_rejection(ItemError::VoterNotSelected { index: 0 }).into());
                }
                pool.votes
                    .entry(key)
                    .or_default()
                    .insert(b.evaluator, (msg_id, v));
                (msg_id, msg_id)
            }
        };
        drop(pool);
        if persist {
            self.store.pool_put(kind, &msg_id, bytes)?;
        }
        Ok(Submitted { id, new: true })
    }
}

pub(super) fn kind_label(kind: PoolKind) -> &'static str {
    match kind {
        PoolKind::Register => "register",
        PoolKind::Commit => "commit",
        PoolKind::Reveal => "reveal",
        PoolKind::Vote => "vote",
    }
}

/// The pool id of stored message bytes (for deleting entries that no longer decode or verify).
pub(super) fn message_id(kind: PoolKind, bytes: &[u8]) -> Option<Hash256> {
    fn id<T: Message + serde::de::DeserializeOwned>(b: &[u8]) -> Option<Hash256> {
        let s: doin_main_core::Signed<T> = decode_exact_bounded(b, MAX_MESSAGE_BYTES).ok()?;
        s.body.id().ok()
    }
    match kind {
        PoolKind::Register => id::<doin_main_core::DomainRegister>(bytes),
        PoolKind::Commit => id::<doin_main_core::Commit>(bytes),
        PoolKind::Reveal => id::<doin_main_core::Reveal>(bytes),
        PoolKind::Vote => id::<doin_main_core::Vote>(bytes),
    }
}
