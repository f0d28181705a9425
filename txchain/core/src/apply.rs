//! The state transition: pure functions from (parameters, parent state, block) to a state diff.
//!
//! `apply_block` is what every node runs on every block it imports, including its own: every
//! rule is re-checked there (the producer's side, `build_block`, is the `build` module). No
//! I/O: state is read through `StateView` and the tree through `jmt::storage::TreeReader`,
//! and the caller commits the returned diff and tree update atomically.

use crate::anchor::{
    apply_effects, check_not_contradicting, newly_anchored, EffectTotals, MainView,
};
use crate::bft::{CommitCertificate, EpochValidators, ValidatorSet, ValidatorSetError};
use crate::block::{tx_root, Block, BlockHeader, SignedHeader};
use crate::error::{BlockError, GenesisError, TxError};
use crate::fees::{fee_split, next_base_fee};
use crate::operations::{settle, Operation, OperationCause, OperationKind, SettledOperation};
use crate::params::{ChainParams, GenesisSpec};
use crate::stake::{bond, slash, unbond, withdraw, Stake, StakeRole};
use crate::state::{Account, ChainStats, Overlay, StateDiff, StateView};
use crate::tx::{Tx, TxId, TxPayload};
use doin_crypto::{is_valid_public_key, merkle, KeyPair};
use doin_types::{
    Amount, Hash256, Height, MainAnchor, MainEffects, PublicKeyBytes, SignatureBytes, Timestamp,
};
use jmt::storage::{TreeReader, TreeUpdateBatch};
use jmt::Sha256Jmt;
use std::collections::BTreeMap;

/// What the fee of one included transaction became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxReceipt {
    pub id: TxId,
    pub burned: Amount,
    pub tip: Amount,
    /// Coins this transaction locked in a stake (`Stake`).
    pub staked: Amount,
    /// Coins this transaction released from a stake (`Withdraw`).
    pub unstaked: Amount,
    /// Stake it burned (`ReportEquivocation`).
    pub slashed: Amount,
    /// Coins it locked in a channel (`ChannelOpen`).
    pub channel_locked: Amount,
    /// Coins a channel payout released (the whole capacity, rounding included).
    pub channel_released: Amount,
    /// The payout's rounding, burned.
    pub channel_burned: Amount,
    /// What it moved, in order: its fee first ([`crate::operations`]).
    pub operations: Vec<Operation>,
}

/// The result of applying a block: commit `diff` and `tree_update` together.
#[derive(Debug)]
pub struct AppliedBlock {
    pub diff: StateDiff,
    pub state_root: Hash256,
    pub tree_update: TreeUpdateBatch,
    pub receipts: Vec<TxReceipt>,
    pub txs: Vec<Tx>,
    /// Main blocks this block newly anchored, with the effects it applied.
    pub anchored: Vec<MainEffects>,
    /// Every balance and stake movement of the block, in order: the anchored main blocks'
    /// effects, then each transaction's (the receipts' own lists are moved here).
    pub operations: Vec<SettledOperation>,
}

/// Options of one `apply_block` call.
#[derive(Clone, Copy, Debug)]
pub struct ApplyContext {
    /// The importing node's clock (bounds how far ahead block times may be).
    pub now: Timestamp,
    /// False only for transactions whose signatures this node verified already: its own
    /// mempool's, or a block's whose every [`crate::SignedTx::signature_holds`] the node checked
    /// (on all its cores) just before.
    pub verify_tx_signatures: bool,
}

/// Applies one transaction to `overlay` in the block at `height` with `base_fee`, paying the
/// tip to `proposer`. On error the overlay is unchanged.
pub fn apply_tx<V: StateView + ?Sized>(
    params: &ChainParams,
    overlay: &mut Overlay<'_, V>,
    tx: &Tx,
    height: Height,
    base_fee: Amount,
    proposer: &PublicKeyBytes,
    verify_signature: bool,
) -> Result<TxReceipt, TxError> {
    tx.check_fields(
        &params.chain_id,
        params.consensus.max_tx_weight,
        verify_signature,
    )?;
    let body = tx.body();
    if body.max_fee_per_weight < base_fee {
        return Err(TxError::FeeBelowBaseFee {
            max_fee: body.max_fee_per_weight,
            base_fee,
        });
    }
    let mut sender = overlay.account(&body.sender).map_err(TxError::State)?;
    if body.nonce < sender.nonce {
        return Err(TxError::NonceTooLow {
            expected: sender.nonce,
            got: body.nonce,
        });
    }
    if body.nonce > sender.nonce {
        return Err(TxError::NonceTooHigh {
            expected: sender.nonce,
            got: body.nonce,
        });
    }
    let max_cost = tx.max_cost()?;
    if sender.balance < max_cost {
        return Err(TxError::InsufficientBalance {
            needed: max_cost,
            available: sender.balance,
        });
    }
    let split = fee_split(
        body.max_fee_per_weight,
        body.max_priority_fee_per_weight,
        base_fee,
        tx.weight(),
    )
    .map_err(|_| TxError::AmountOverflow)?;
    let value = body.value()?;
    let charged = split
        .total()
        .and_then(|f| f.checked_add(value))
        .map_err(|_| TxError::AmountOverflow)?;
    // max_cost ≥ charged because max_fee ≥ base_fee + tip; the checked sub keeps it honest.
    sender.balance =
        sender
            .balance
            .checked_sub(charged)
            .map_err(|_| TxError::InsufficientBalance {
                needed: charged,
                available: sender.balance,
            })?;
    sender.nonce = sender.nonce.checked_add(1).ok_or(TxError::AmountOverflow)?;
    let id = tx.id();
    let cause = OperationCause::Tx(id);
    let mut ops = vec![Operation::fee(body.sender, id, split.burned, split.tip)
        .map_err(|_| TxError::AmountOverflow)?];

    // Compute every new account and stake before writing any, so an error leaves the overlay
    // untouched.
    let mut writes: Vec<(PublicKeyBytes, Account)> = vec![(body.sender, sender)];
    let mut stake_write = None;
    let mut offender_write = None;
    let mut channel_write = None;
    let (mut channel_locked, mut channel_released, mut channel_burned) =
        (Amount::ZERO, Amount::ZERO, Amount::ZERO);
    let (mut staked, mut unstaked, mut slashed) = (Amount::ZERO, Amount::ZERO, Amount::ZERO);
    let staking = &params.consensus.staking;
    match &body.payload {
        TxPayload::Transfer { to, amount } => {
            let mut recipient = current(overlay, &writes, to)?;
            // Only valid keys ever hold an account, so only an empty one needs the check.
            if recipient == Account::default() && !is_valid_public_key(to) {
                return Err(TxError::InvalidRecipient);
            }
            recipient.balance = recipient
                .balance
                .checked_add(*amount)
                .map_err(|_| TxError::AmountOverflow)?;
            writes.push((*to, recipient));
            ops.push(Operation::debit(
                body.sender,
                OperationKind::TransferOut,
                cause,
                *amount,
            ));
            ops.push(Operation::credit(
                *to,
                OperationKind::TransferIn,
                cause,
                *amount,
            ));
        }
        TxPayload::BatchTransfer { outputs } => {
            for out in outputs {
                let mut recipient = current(overlay, &writes, &out.to)?;
                if recipient == Account::default() && !is_valid_public_key(&out.to) {
                    return Err(TxError::InvalidRecipient);
                }
                recipient.balance = recipient
                    .balance
                    .checked_add(out.amount)
                    .map_err(|_| TxError::AmountOverflow)?;
                writes.push((out.to, recipient));
                ops.push(Operation::debit(
                    body.sender,
                    OperationKind::BatchOut,
                    cause,
                    out.amount,
                ));
                ops.push(Operation::credit(
                    out.to,
                    OperationKind::BatchIn,
                    cause,
                    out.amount,
                ));
            }
        }
        TxPayload::Stake {
            role,
            amount,
            domains,
        } => {
            let before = overlay.stake(&body.sender, *role).map_err(TxError::State)?;
            stake_write = Some((*role, bond(staking, *role, before, *amount, domains)?));
            staked = *amount;
            ops.push(Operation {
                debit: *amount,
                ..Operation::stake(body.sender, OperationKind::Stake, cause, *role, *amount)
            });
        }
        TxPayload::Unstake { role, amount } => {
            let before = overlay.stake(&body.sender, *role).map_err(TxError::State)?;
            stake_write = Some((*role, unbond(staking, *role, before, *amount, height)?));
            ops.push(Operation::stake(
                body.sender,
                OperationKind::Unstake,
                cause,
                *role,
                *amount,
            ));
        }
        TxPayload::Withdraw { role } => {
            let before = overlay.stake(&body.sender, *role).map_err(TxError::State)?;
            let (after, amount) = withdraw(before, height)?;
            let mut me = current(overlay, &writes, &body.sender)?;
            me.balance = me
                .balance
                .checked_add(amount)
                .map_err(|_| TxError::AmountOverflow)?;
            writes.push((body.sender, me));
            stake_write = Some((*role, after));
            unstaked = amount;
            ops.push(Operation {
                credit: amount,
                ..Operation::stake(body.sender, OperationKind::Withdraw, cause, *role, amount)
            });
        }
        TxPayload::ReportEquivocation { evidence } => {
            // The signatures were checked with the other stateless rules.
            // A validator of the current sets, or anyone still holding a validator stake (a
            // double vote from an earlier epoch stays punishable until the stake is gone).
            let offender = evidence.first.validator;
            let sets = overlay.validators().map_err(TxError::State)?;
            let before = overlay
                .stake(&offender, StakeRole::Validator)
                .map_err(TxError::State)?;
            let holds_stake = !before.bonded.is_zero() || !before.unbonding.is_zero();
            if !holds_stake && !sets.current.contains(&offender) && !sets.next.contains(&offender) {
                return Err(TxError::NotAValidator(offender));
            }
            if before.tombstoned {
                return Err(TxError::Tombstoned);
            }
            let (mut after, taken) = slash(before, 1_000_000)?;
            after.tombstoned = true;
            offender_write = Some((offender, after));
            slashed = taken;
            ops.push(Operation::stake(
                offender,
                OperationKind::Slash,
                cause,
                StakeRole::Validator,
                taken,
            ));
        }
        TxPayload::ChannelOpen { .. }
        | TxPayload::ChannelCoopClose { .. }
        | TxPayload::ChannelForceClose { .. }
        | TxPayload::ChannelChallenge { .. }
        | TxPayload::ChannelSettle { .. }
        | TxPayload::HtlcClaim { .. } => {
            let fx = crate::channel_tx::apply(params, overlay, body, height)?
                .ok_or_else(|| TxError::InvalidChannel("not a channel transaction".into()))?;
            if let TxPayload::ChannelOpen { deposit, .. } = &body.payload {
                if !deposit.is_zero() {
                    ops.push(
                        Operation::debit(body.sender, OperationKind::ChannelOpen, cause, *deposit)
                            .with_channel(fx.id),
                    );
                }
            }
            for (key, amount) in fx.debits {
                let mut a = current(overlay, &writes, &key)?;
                a.balance =
                    a.balance
                        .checked_sub(amount)
                        .map_err(|_| TxError::InsufficientBalance {
                            needed: amount,
                            available: a.balance,
                        })?;
                writes.push((key, a));
                ops.push(
                    Operation::debit(key, OperationKind::ChannelOpen, cause, amount)
                        .with_channel(fx.id),
                );
            }
            for (key, amount) in fx.credits {
                if amount.is_zero() {
                    continue;
                }
                let mut a = current(overlay, &writes, &key)?;
                a.balance = a
                    .balance
                    .checked_add(amount)
                    .map_err(|_| TxError::AmountOverflow)?;
                writes.push((key, a));
                ops.push(
                    Operation::credit(key, OperationKind::ChannelPayout, cause, amount)
                        .with_channel(fx.id),
                );
            }
            channel_locked = fx.locked;
            channel_released = fx.released;
            channel_burned = fx.burned;
            channel_write = Some((fx.id, fx.channel));
        }
    }
    if !split.tip.is_zero() {
        let mut p = current(overlay, &writes, proposer)?;
        p.balance = p
            .balance
            .checked_add(split.tip)
            .map_err(|_| TxError::AmountOverflow)?;
        writes.push((*proposer, p));
        ops.push(Operation::credit(
            *proposer,
            OperationKind::Tip,
            cause,
            split.tip,
        ));
    }
    for (k, a) in writes {
        overlay.set_account(k, a);
    }
    if let Some((role, st)) = stake_write {
        overlay.set_stake(body.sender, role, st);
    }
    if let Some((offender, st)) = offender_write {
        overlay.set_stake(offender, StakeRole::Validator, st);
    }
    if let Some((id, channel)) = channel_write {
        overlay.set_channel(id, channel);
    }
    Ok(TxReceipt {
        id,
        burned: split.burned,
        tip: split.tip,
        staked,
        unstaked,
        slashed,
        channel_locked,
        channel_released,
        channel_burned,
        operations: ops,
    })
}

/// The account as it will be after the pending `writes` (last write wins).
fn current<V: StateView + ?Sized>(
    overlay: &Overlay<'_, V>,
    writes: &[(PublicKeyBytes, Account)],
    key: &PublicKeyBytes,
) -> Result<Account, TxError> {
    if let Some((_, a)) = writes.iter().rev().find(|(k, _)| k == key) {
        return Ok(*a);
    }
    overlay.account(key).map_err(TxError::State)
}

/// Computes the state root after `diff` on top of version `version - 1`.
pub fn compute_state_root<R: TreeReader>(
    tree: &R,
    version: Height,
    diff: &StateDiff,
) -> Result<(Hash256, TreeUpdateBatch), String> {
    let values = diff.to_value_set()?;
    let jmt = Sha256Jmt::new(tree);
    // The batch insertion builds each touched internal node once per block; inserting key by
    // key re-hashes the whole path for every key (most of a block's import time with thousands
    // of accounts). Both give the same tree; the batch form cannot delete, and nothing in the
    // state is ever deleted, so the fallback only guards the invariant.
    if !values.is_empty() && values.iter().all(|(_, v)| v.is_some()) {
        let set: Vec<(jmt::KeyHash, jmt::OwnedValue)> = values
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let (roots, batch) = jmt
            .batch_put_value_sets(vec![set], None, version)
            .map_err(|e| e.to_string())?;
        let root = roots
            .first()
            .ok_or_else(|| "tree returned no root".to_string())?;
        return Ok((Hash256(root.0), batch));
    }
    let (root, batch) = jmt
        .put_value_set(values, version)
        .map_err(|e| e.to_string())?;
    Ok((Hash256(root.0), batch))
}

/// The parent must be proven final by the header's `last_commit` (none after genesis), signed
/// by `parent_set`, the set of the parent's height.
fn check_last_commit(
    params: &ChainParams,
    parent_set: &ValidatorSet,
    parent: &BlockHeader,
    header: &BlockHeader,
) -> Result<(), BlockError> {
    match (&header.last_commit, parent.height) {
        (None, 0) => Ok(()),
        (Some(_), 0) => Err(BlockError::UnexpectedLastCommit),
        (None, _) => Err(BlockError::MissingLastCommit),
        (Some(c), h) => c
            .verify(&params.chain_id, h, &header.parent, parent_set)
            .map_err(BlockError::LastCommit),
    }
}

/// The certificate a solo producer gives its parent: its own precommit. It is a quorum only
/// when the producer is the only validator; with several, finality needs the BFT engine.
pub(crate) fn own_certificate(
    params: &ChainParams,
    parent_set: &ValidatorSet,
    parent: &BlockHeader,
    key: &KeyPair,
) -> Result<Option<CommitCertificate>, BlockError> {
    if parent.height == 0 {
        return Ok(None);
    }
    let parent_hash = parent.hash()?;
    let cert = CommitCertificate::sign(&params.chain_id, parent.height, 0, parent_hash, &[key])
        .map_err(BlockError::State)?;
    cert.verify(&params.chain_id, parent.height, &parent_hash, parent_set)
        .map_err(BlockError::LastCommit)?;
    Ok(Some(cert))
}

/// The validator sets after the block at `height`, whose changed `stakes` and stakers
/// registry (`None`: unchanged) are given; `None` when the sets stay as in `view`, the parent
/// state. The next set moves into `current`; a block that closes an epoch picks the next
/// epoch's set: the `max_validators` largest bonded validator stakes, tombstoned ones
/// excluded, stake in base units as voting power. If nobody holds a validator stake the set
/// stays as it is — a chain without validators could never make another block.
pub fn next_validators<V: StateView + ?Sized>(
    params: &ChainParams,
    view: &V,
    height: Height,
    stakes: &BTreeMap<(PublicKeyBytes, StakeRole), Stake>,
    stakers: Option<&[(PublicKeyBytes, StakeRole)]>,
) -> Result<Option<EpochValidators>, BlockError> {
    let before = view.validators().map_err(BlockError::View)?;
    let next = if params.closes_epoch(height) {
        let registry = match stakers {
            Some(list) => list.to_vec(),
            None => view.stakers().map_err(BlockError::View)?,
        };
        let mut powers = Vec::new();
        for (key, role) in registry {
            if role != StakeRole::Validator {
                continue;
            }
            let stake = match stakes.get(&(key, role)) {
                Some(s) => s.clone(),
                None => view
                    .stake(&key, role)
                    .map_err(BlockError::View)?
                    .unwrap_or_default(),
            };
            if !stake.tombstoned {
                powers.push((key, stake.bonded.base_units()));
            }
        }
        match ValidatorSet::from_stakes(powers, params.consensus.max_validators as usize) {
            Ok(set) => set,
            Err(ValidatorSetError::Empty) => before.next.clone(),
            Err(e) => return Err(BlockError::State(e.to_string())),
        }
    } else {
        before.next.clone()
    };
    let after = EpochValidators {
        current: before.next.clone(),
        next,
    };
    Ok((after != before).then_some(after))
}

/// The state diff of the block at `height` once its transactions are applied to `overlay`.
pub(crate) fn finish_diff<V: StateView + ?Sized>(
    params: &ChainParams,
    view: &V,
    height: Height,
    overlay: Overlay<'_, V>,
    chain_stats: ChainStats,
) -> Result<StateDiff, BlockError> {
    let (accounts, stakes, channels) = overlay.into_changes();
    let stakers = StateDiff::next_stakers(view, &stakes).map_err(BlockError::View)?;
    let validators = next_validators(params, view, height, &stakes, stakers.as_deref())?;
    Ok(StateDiff {
        accounts,
        stakes,
        stakers,
        validators,
        channels,
        chain_stats,
    })
}

/// Checks the header against its parent (everything but state and transactions). `parent_set`
/// signed the parent, `set` may propose and sign this block.
fn check_header(
    params: &ChainParams,
    parent_set: &ValidatorSet,
    set: &ValidatorSet,
    parent: &BlockHeader,
    header: &BlockHeader,
    now: Timestamp,
) -> Result<(), BlockError> {
    if header.chain_id != params.chain_id {
        return Err(BlockError::WrongChain);
    }
    if Some(header.height) != parent.height.checked_add(1) {
        return Err(BlockError::WrongHeight {
            parent: parent.height,
            got: header.height,
        });
    }
    if header.parent != parent.hash()? {
        return Err(BlockError::WrongParent);
    }
    if header.time <= parent.time {
        return Err(BlockError::TimeNotIncreasing {
            parent: parent.time.0,
            got: header.time.0,
        });
    }
    let latest = now
        .checked_add_millis(params.consensus.max_future_drift_ms)
        .unwrap_or(Timestamp(u64::MAX));
    if header.time > latest {
        return Err(BlockError::TimeInFuture {
            now: now.0,
            got: header.time.0,
        });
    }
    if !set.contains(&header.proposer) {
        return Err(BlockError::WrongProposer);
    }
    check_last_commit(params, parent_set, parent, header)?;
    let expected_fee = next_base_fee(&params.consensus, parent.base_fee, parent.weight_used);
    if header.base_fee != expected_fee {
        return Err(BlockError::WrongBaseFee {
            expected: expected_fee.base_units(),
            got: header.base_fee.base_units(),
        });
    }
    Ok(())
}

/// Checks a run of signed headers on top of `parent` — heights, parent links, times, proposers,
/// base fees, certificates and signatures — without the transactions, state or main chain
/// (those are checked when the bodies are applied). Used by headers-first sync to vet a peer's
/// chain before downloading it. `parent_sets` are the validator sets of the state after
/// `parent`. A header past an epoch boundary needs the sets that boundary's state fixed, which
/// headers alone do not give: the check stops there and returns how many headers it verified
/// (the caller applies those bodies, then checks on). On failure, returns the index of the
/// first bad header with its error.
pub fn verify_header_chain(
    params: &ChainParams,
    parent: &BlockHeader,
    parent_sets: &EpochValidators,
    headers: &[SignedHeader],
    now: Timestamp,
) -> Result<usize, (usize, BlockError)> {
    let mut parent = parent;
    let mut parent_set = &parent_sets.current;
    let set = &parent_sets.next;
    for (i, h) in headers.iter().enumerate() {
        if i > 0 && params.closes_epoch(parent.height) {
            return Ok(i);
        }
        check_header(params, parent_set, set, parent, &h.header, now).map_err(|e| (i, e))?;
        h.verify_signature().map_err(|e| (i, e))?;
        parent = &h.header;
        parent_set = set;
    }
    Ok(headers.len())
}

/// Validates and applies `block` on top of `parent` and the state `view` (which must be the
/// state after `parent`). Every consensus rule is checked here.
pub fn apply_block<V: StateView + ?Sized, R: TreeReader, M: MainView + ?Sized>(
    params: &ChainParams,
    view: &V,
    tree: &R,
    main: &M,
    parent: &BlockHeader,
    block: &Block,
    ctx: ApplyContext,
) -> Result<AppliedBlock, BlockError> {
    let header = &block.header;
    let sets = view.validators().map_err(BlockError::View)?;
    check_header(params, &sets.current, &sets.next, parent, header, ctx.now)?;
    block.verify_signature()?;
    check_not_contradicting(main, header.height, &header.hash()?)?;
    let anchored = newly_anchored(main, &parent.main_anchor, &header.main_anchor)?;

    if block.txs.len() != header.tx_count as usize {
        return Err(BlockError::Malformed(
            "tx_count differs from the number of transactions".into(),
        ));
    }
    let mut txs = Vec::with_capacity(block.txs.len());
    let mut weight: u64 = 0;
    for (index, signed) in block.txs.iter().enumerate() {
        let tx = Tx::from_signed(signed.clone())
            .map_err(|error| BlockError::InvalidTx { index, error })?;
        weight = weight
            .checked_add(tx.weight())
            .ok_or(BlockError::Overweight {
                weight: u64::MAX,
                limit: params.consensus.block_weight_limit,
            })?;
        txs.push(tx);
    }
    if weight > params.consensus.block_weight_limit {
        return Err(BlockError::Overweight {
            weight,
            limit: params.consensus.block_weight_limit,
        });
    }
    if weight != header.weight_used {
        return Err(BlockError::WrongWeight {
            expected: weight,
            got: header.weight_used,
        });
    }
    if tx_root(&txs) != header.tx_root {
        return Err(BlockError::WrongTxRoot);
    }

    let mut overlay = Overlay::new(view);
    // Anchored main blocks' effects come first: a reward is spendable in the block that
    // imports it.
    let mut operations = Vec::new();
    let imported = apply_effects(
        &params.consensus.staking,
        &mut overlay,
        &anchored,
        &mut operations,
    )?;
    let mut receipts = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        let r = apply_tx(
            params,
            &mut overlay,
            tx,
            header.height,
            header.base_fee,
            &header.proposer,
            ctx.verify_tx_signatures,
        )
        .map_err(|error| match error {
            TxError::State(s) => BlockError::View(s),
            error => BlockError::InvalidTx { index, error },
        })?;
        receipts.push(r);
    }
    let stats = next_stats(view, header.height, &receipts, imported, header.main_anchor)?;
    let diff = finish_diff(params, view, header.height, overlay, stats)?;
    let operations = settle_block(view, &diff, operations, &mut receipts)?;
    let (state_root, tree_update) =
        compute_state_root(tree, header.height, &diff).map_err(BlockError::State)?;
    if state_root != header.state_root {
        return Err(BlockError::WrongStateRoot);
    }
    Ok(AppliedBlock {
        diff,
        state_root,
        tree_update,
        receipts,
        txs,
        anchored,
        operations,
    })
}

/// The block's operations settled against its diff: `effects` (the anchored main blocks')
/// first, then each receipt's, moved out of the receipts.
pub(crate) fn settle_block<V: StateView + ?Sized>(
    view: &V,
    diff: &StateDiff,
    mut effects: Vec<Operation>,
    receipts: &mut [TxReceipt],
) -> Result<Vec<SettledOperation>, BlockError> {
    for r in receipts.iter_mut() {
        effects.append(&mut r.operations);
    }
    settle(view, &diff.accounts, effects)
}

pub(crate) fn next_stats<V: StateView + ?Sized>(
    view: &V,
    height: Height,
    receipts: &[TxReceipt],
    effects: EffectTotals,
    main_anchor: MainAnchor,
) -> Result<ChainStats, BlockError> {
    let imported = effects.credited;
    let mut stats = view.chain_stats().map_err(BlockError::View)?;
    for r in receipts {
        stats.burned = stats
            .burned
            .checked_add(r.burned)
            .map_err(|_| BlockError::State("burned total overflows".into()))?;
        // Stake slashed for equivocation is burned like slashes from the main chain.
        stats.staked = stats
            .staked
            .checked_add(r.staked)
            .and_then(|s| s.checked_sub(r.unstaked))
            .and_then(|s| s.checked_sub(r.slashed))
            .map_err(|_| BlockError::State("staked total out of range".into()))?;
        stats.burned = stats
            .burned
            .checked_add(r.slashed)
            .and_then(|b| b.checked_add(r.channel_burned))
            .map_err(|_| BlockError::State("burned total overflows".into()))?;
        stats.in_channels = stats
            .in_channels
            .checked_add(r.channel_locked)
            .and_then(|c| c.checked_sub(r.channel_released))
            .map_err(|_| BlockError::State("channel total out of range".into()))?;
    }
    let overflow = |_| BlockError::State("issued total overflows".into());
    stats.issued = stats.issued.checked_add(imported).map_err(overflow)?;
    stats.imported = stats.imported.checked_add(imported).map_err(overflow)?;
    // Slashed stake is burned: out of the staked total, into the burned one.
    stats.staked = stats
        .staked
        .checked_sub(effects.slashed)
        .map_err(|_| BlockError::State("slashed more than is staked".into()))?;
    stats.burned = stats
        .burned
        .checked_add(effects.slashed)
        .map_err(|_| BlockError::State("burned total overflows".into()))?;
    stats.main_anchor = main_anchor;
    stats.height = height;
    Ok(stats)
}

/// The genesis block and its state, rebuilt from the specification on an empty tree.
pub fn genesis<R: TreeReader>(
    spec: &GenesisSpec,
    tree: &R,
) -> Result<(Block, AppliedBlock), GenesisError> {
    let params = ChainParams::from_genesis(spec)?;
    let diff = StateDiff {
        accounts: spec
            .allocations
            .iter()
            .map(|a| {
                (
                    a.key,
                    Account {
                        balance: a.amount,
                        nonce: 0,
                    },
                )
            })
            .collect(),
        stakers: {
            let mut list: Vec<_> = spec.stakes.iter().map(|st| (st.key, st.role)).collect();
            list.sort();
            (!list.is_empty()).then_some(list)
        },
        validators: Some(EpochValidators::steady(
            params
                .genesis_validator_set()
                .map_err(|e| GenesisError::Invalid(e.to_string()))?,
        )),
        stakes: spec
            .stakes
            .iter()
            .map(|st| {
                (
                    (st.key, st.role),
                    Stake {
                        bonded: st.amount,
                        unbonding: Amount::ZERO,
                        unbonding_until: 0,
                        domains: st.domains.clone(),
                        tombstoned: false,
                    },
                )
            })
            .collect(),
        chain_stats: ChainStats {
            height: 0,
            issued: spec.total_supply()?,
            burned: Amount::ZERO,
            imported: Amount::ZERO,
            main_anchor: MainAnchor::NONE,
            staked: spec.total_staked()?,
            in_channels: Amount::ZERO,
        },
        channels: BTreeMap::new(),
    };
    let (state_root, tree_update) =
        compute_state_root(tree, 0, &diff).map_err(GenesisError::State)?;
    let mut operations: Vec<Operation> = spec
        .allocations
        .iter()
        .map(|a| {
            Operation::credit(
                a.key,
                OperationKind::Genesis,
                OperationCause::Genesis,
                a.amount,
            )
        })
        .collect();
    operations.extend(spec.stakes.iter().map(|st| {
        Operation::stake(
            st.key,
            OperationKind::Genesis,
            OperationCause::Genesis,
            st.role,
            st.amount,
        )
    }));
    let operations = settle(
        &crate::memtree::MemoryState::default(),
        &diff.accounts,
        operations,
    )
    .map_err(|e| GenesisError::Invalid(e.to_string()))?;
    let header = BlockHeader {
        chain_id: params.chain_id,
        height: 0,
        parent: Hash256::zero(),
        time: spec.genesis_time,
        proposer: PublicKeyBytes::zero(),
        state_root,
        tx_root: merkle::empty_root(),
        base_fee: spec.params.initial_base_fee,
        weight_used: 0,
        tx_count: 0,
        main_anchor: MainAnchor::NONE,
        last_commit: None,
    };
    let block = Block {
        header,
        signature: SignatureBytes::zero(),
        txs: Vec::new(),
    };
    Ok((
        block,
        AppliedBlock {
            diff,
            state_root,
            tree_update,
            receipts: Vec::new(),
            txs: Vec::new(),
            anchored: Vec::new(),
            operations,
        },
    ))
}
