//! The producer's side of the state transition: `build_block` picks the valid prefix of a
//! candidate list, chooses the main-chain anchor and the parent's proof of finality, and
//! returns a block that `apply_block` accepts (every rule is re-checked there, on every node,
//! for this block too). No I/O: state comes in through `StateView`, the tree through
//! `jmt::storage::TreeReader`, the other chain through `MainView`.

use crate::anchor::{apply_effects, newly_anchored, MainView, MAX_ANCHOR_STEP};
use crate::apply::{
    apply_tx, compute_state_root, finish_diff, next_stats, own_certificate, settle_block,
    AppliedBlock,
};
use crate::bft::CommitCertificate;
use crate::block::{tx_root, Block, BlockHeader};
use crate::error::{BlockError, TxError};
use crate::fees::next_base_fee;
use crate::params::ChainParams;
use crate::state::{Overlay, StateView};
use crate::tx::{Tx, TxId};
use doin_crypto::KeyPair;
use doin_types::{MainAnchor, Timestamp};
use jmt::storage::TreeReader;

/// The anchor a proposer uses: the main view's candidate, at most `MAX_ANCHOR_STEP` past the
/// parent's and never behind it. A candidate the view cannot back with effects is skipped.
fn choose_anchor<M: MainView + ?Sized>(
    main: &M,
    parent: &MainAnchor,
) -> Result<MainAnchor, BlockError> {
    let Some(candidate) = main.anchor_candidate().map_err(BlockError::View)? else {
        return Ok(*parent);
    };
    if candidate.height <= parent.height {
        return Ok(*parent);
    }
    let height = candidate
        .height
        .min(parent.height.saturating_add(MAX_ANCHOR_STEP));
    if height == candidate.height {
        return Ok(candidate);
    }
    match main.effects(height).map_err(BlockError::View)? {
        Some(e) => Ok(MainAnchor {
            height,
            hash: e.hash,
        }),
        None => Ok(*parent),
    }
}

/// A block built by a producer, with what it left out and why.
#[derive(Debug)]
pub struct BuiltBlock {
    pub block: Block,
    pub applied: AppliedBlock,
    pub skipped: Vec<(TxId, TxError)>,
}

/// Builds and signs the next block from `candidates` (in priority order). Candidates that are
/// invalid at this point, or that no longer fit, are skipped and reported. `verify_signatures`
/// may be false only when every candidate was verified by this node already.
#[allow(clippy::too_many_arguments)]
pub fn build_block<V: StateView + ?Sized, R: TreeReader, M: MainView + ?Sized>(
    params: &ChainParams,
    view: &V,
    tree: &R,
    main: &M,
    parent: &BlockHeader,
    time: Timestamp,
    key: &KeyPair,
    candidates: impl IntoIterator<Item = Tx>,
    verify_signatures: bool,
) -> Result<BuiltBlock, BlockError> {
    build_block_certified(
        params,
        view,
        tree,
        main,
        parent,
        time,
        key,
        candidates,
        verify_signatures,
        ParentCommit::OwnPrecommit,
    )
}

/// Where a new block's `last_commit` (the proof that its parent is final) comes from.
#[derive(Clone, Copy, Debug)]
pub enum ParentCommit<'a> {
    /// The proposer's own precommit: a quorum only when it is the single validator.
    OwnPrecommit,
    /// A certificate collected by BFT consensus (checked here like any header's).
    Certificate(&'a CommitCertificate),
}

/// [`build_block`] with the parent's proof of finality chosen by the caller.
#[allow(clippy::too_many_arguments)]
pub fn build_block_certified<V: StateView + ?Sized, R: TreeReader, M: MainView + ?Sized>(
    params: &ChainParams,
    view: &V,
    tree: &R,
    main: &M,
    parent: &BlockHeader,
    time: Timestamp,
    key: &KeyPair,
    candidates: impl IntoIterator<Item = Tx>,
    verify_signatures: bool,
    parent_commit: ParentCommit<'_>,
) -> Result<BuiltBlock, BlockError> {
    let height = parent
        .height
        .checked_add(1)
        .ok_or_else(|| BlockError::State("height overflow".into()))?;
    let proposer = key.public();
    let sets = view.validators().map_err(BlockError::View)?;
    if !sets.next.contains(&proposer) {
        return Err(BlockError::WrongProposer);
    }
    let last_commit = match parent_commit {
        ParentCommit::OwnPrecommit => own_certificate(params, &sets.current, parent, key)?,
        ParentCommit::Certificate(_) if parent.height == 0 => None,
        ParentCommit::Certificate(c) => {
            c.verify(
                &params.chain_id,
                parent.height,
                &parent.hash()?,
                &sets.current,
            )
            .map_err(BlockError::LastCommit)?;
            Some(c.clone())
        }
    };
    let base_fee = next_base_fee(&params.consensus, parent.base_fee, parent.weight_used);
    let limit = params.consensus.block_weight_limit;
    let main_anchor = choose_anchor(main, &parent.main_anchor)?;
    let anchored = newly_anchored(main, &parent.main_anchor, &main_anchor)?;
    let mut overlay = Overlay::new(view);
    let mut operations = Vec::new();
    let imported = apply_effects(
        &params.consensus.staking,
        &mut overlay,
        &anchored,
        &mut operations,
    )?;
    let mut included = Vec::new();
    let mut receipts = Vec::new();
    let mut skipped = Vec::new();
    let mut weight: u64 = 0;
    for tx in candidates {
        let Some(new_weight) = weight.checked_add(tx.weight()).filter(|w| *w <= limit) else {
            continue;
        };
        match apply_tx(
            params,
            &mut overlay,
            &tx,
            height,
            base_fee,
            &proposer,
            verify_signatures,
        ) {
            Ok(r) => {
                weight = new_weight;
                receipts.push(r);
                included.push(tx);
            }
            Err(TxError::State(s)) => return Err(BlockError::View(s)),
            Err(e) => skipped.push((tx.id(), e)),
        }
    }
    let stats = next_stats(view, height, &receipts, imported, main_anchor)?;
    let diff = finish_diff(params, view, height, overlay, stats)?;
    let operations = settle_block(view, &diff, operations, &mut receipts)?;
    let (state_root, tree_update) =
        compute_state_root(tree, height, &diff).map_err(BlockError::State)?;
    let header = BlockHeader {
        chain_id: params.chain_id,
        height,
        parent: parent.hash()?,
        time: time.max(Timestamp(parent.time.0.saturating_add(1))),
        proposer,
        state_root,
        tx_root: tx_root(&included),
        base_fee,
        weight_used: weight,
        tx_count: u32::try_from(included.len())
            .map_err(|_| BlockError::State("too many transactions".into()))?,
        main_anchor,
        last_commit,
    };
    let block = Block::sign(
        header,
        included.iter().map(|t| t.signed().clone()).collect(),
        key,
    )?;
    Ok(BuiltBlock {
        block,
        applied: AppliedBlock {
            diff,
            state_root,
            tree_update,
            receipts,
            txs: included,
            anchored,
            operations,
        },
        skipped,
    })
}
