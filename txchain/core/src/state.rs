//! Transfer-chain state: accounts, stakes and chain totals, the read port the rules need, and
//! the diff a block produces.
//!
//! State lives in a Jellyfish Merkle Tree whose keys are tagged hashes of typed state keys and
//! whose values are canonical encodings; the root is in every header. This module defines the
//! layout; storing the tree is the service's job.

use crate::bft::EpochValidators;
use crate::channel::{Channel, ChannelId};
use crate::stake::{Stake, StakeRole};
use doin_codec::{decode_exact, encode};
use doin_crypto::tagged_hash_parts;
use doin_types::{Amount, Height, MainAnchor, PortError, PublicKeyBytes};
use jmt::{KeyHash, OwnedValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const TAG_STATE_KEY: &str = "doin/tx-state-key";

/// Key-space prefixes inside the state tree.
const KEY_ACCOUNT: u8 = 0x01;
const KEY_CHAIN_STATS: u8 = 0x02;
const KEY_STAKE: u8 = 0x03;
const KEY_STAKERS: u8 = 0x04;
const KEY_VALIDATORS: u8 = 0x05;
const KEY_CHANNEL: u8 = 0x06;

/// An account. Accounts that never received funds are absent, read as the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub balance: Amount,
    /// Number of transactions this account has sent; the next one must carry this nonce.
    pub nonce: u64,
}

/// Chain-wide totals, part of the authenticated state so the supply can be proven.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStats {
    /// Height of the block whose application produced this state.
    pub height: Height,
    /// Everything ever created: genesis allocations plus main-chain credits.
    pub issued: Amount,
    /// Everything ever destroyed: base fees.
    pub burned: Amount,
    /// The part of `issued` credited by anchored main blocks (coinbase payouts).
    pub imported: Amount,
    /// The newest main block whose effects are applied: effects of main blocks up to here
    /// are in this state, those above are not (this is what makes them apply exactly once).
    pub main_anchor: MainAnchor,
    /// Coins locked in stakes (bonded plus unbonding), out of every balance.
    pub staked: Amount,
    /// Coins locked in payment channels that are not paid out yet.
    pub in_channels: Amount,
}

impl ChainStats {
    /// `issued − burned`: what all balances, stakes and channels must add up to.
    pub fn circulating(&self) -> Option<Amount> {
        self.issued.checked_sub(self.burned).ok()
    }
}

/// Tree key of an account.
pub fn account_key(key: &PublicKeyBytes) -> KeyHash {
    KeyHash(tagged_hash_parts(TAG_STATE_KEY, &[&[KEY_ACCOUNT], &key.0]).0)
}

/// Tree key of one owner's stake in one role.
pub fn stake_key(owner: &PublicKeyBytes, role: StakeRole) -> KeyHash {
    KeyHash(tagged_hash_parts(TAG_STATE_KEY, &[&[KEY_STAKE], &owner.0, &[role.key_byte()]]).0)
}

/// Tree key of the stakers registry: every (owner, role) with a bonded stake, ascending. The
/// main chain reads who is staked from here (and each stake from its own key), at a
/// checkpointed height, with proofs against that block's state root.
pub fn stakers_key() -> KeyHash {
    KeyHash(tagged_hash_parts(TAG_STATE_KEY, &[&[KEY_STAKERS]]).0)
}

/// Decodes the stakers registry.
pub fn decode_stakers(bytes: &[u8]) -> Result<Vec<(PublicKeyBytes, StakeRole)>, String> {
    decode_exact(bytes).map_err(|e| e.to_string())
}

/// Tree key of the validator sets ([`EpochValidators`]): the set that finalised this state's
/// block and the one that finalises the next.
pub fn validators_key() -> KeyHash {
    KeyHash(tagged_hash_parts(TAG_STATE_KEY, &[&[KEY_VALIDATORS]]).0)
}

/// Decodes the validator sets (every set rule re-checked).
pub fn decode_validators(bytes: &[u8]) -> Result<EpochValidators, String> {
    decode_exact(bytes).map_err(|e| e.to_string())
}

/// Tree key of a payment channel.
pub fn channel_key(id: &ChannelId) -> KeyHash {
    KeyHash(tagged_hash_parts(TAG_STATE_KEY, &[&[KEY_CHANNEL], &id.0]).0)
}

/// Decodes a stored channel.
pub fn decode_channel(bytes: &[u8]) -> Result<Channel, String> {
    decode_exact(bytes).map_err(|e| e.to_string())
}

/// Tree key of the chain totals.
pub fn chain_stats_key() -> KeyHash {
    KeyHash(tagged_hash_parts(TAG_STATE_KEY, &[&[KEY_CHAIN_STATS]]).0)
}

/// Read access to the state a block builds on. Implemented by the service over its store and
/// by tests over maps.
pub trait StateView {
    fn account(&self, key: &PublicKeyBytes) -> Result<Option<Account>, PortError>;
    fn chain_stats(&self) -> Result<ChainStats, PortError>;
    fn stake(&self, owner: &PublicKeyBytes, role: StakeRole) -> Result<Option<Stake>, PortError>;
    /// The stakers registry (see [`stakers_key`]).
    fn stakers(&self) -> Result<Vec<(PublicKeyBytes, StakeRole)>, PortError>;
    /// The validator sets (see [`validators_key`]); every state from genesis on has them.
    fn validators(&self) -> Result<EpochValidators, PortError>;
    fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, PortError>;
}

/// Everything a block changes. Applying it to the parent state gives the child state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDiff {
    pub accounts: BTreeMap<PublicKeyBytes, Account>,
    pub stakes: BTreeMap<(PublicKeyBytes, StakeRole), Stake>,
    /// The new stakers registry, when someone joined or left it.
    pub stakers: Option<Vec<(PublicKeyBytes, StakeRole)>>,
    /// The new validator sets, when they changed (at and right after an epoch boundary).
    pub validators: Option<EpochValidators>,
    pub channels: BTreeMap<ChannelId, Channel>,
    pub chain_stats: ChainStats,
}

impl StateDiff {
    /// The stakers registry after `stakes` change on top of `view` (`None`: unchanged).
    pub fn next_stakers<V: StateView + ?Sized>(
        view: &V,
        stakes: &BTreeMap<(PublicKeyBytes, StakeRole), Stake>,
    ) -> Result<Option<Vec<(PublicKeyBytes, StakeRole)>>, PortError> {
        if stakes.is_empty() {
            return Ok(None);
        }
        let before = view.stakers()?;
        let mut set: std::collections::BTreeSet<(PublicKeyBytes, StakeRole)> =
            before.iter().copied().collect();
        for (k, st) in stakes {
            if st.bonded.is_zero() {
                set.remove(k);
            } else {
                set.insert(*k);
            }
        }
        let after: Vec<_> = set.into_iter().collect();
        Ok((after != before).then_some(after))
    }
}

impl StateDiff {
    /// The diff as a JMT value set, in key order (deterministic).
    pub fn to_value_set(&self) -> Result<Vec<(KeyHash, Option<OwnedValue>)>, String> {
        let mut out = Vec::with_capacity(self.accounts.len() + self.stakes.len() + 1);
        for (k, a) in &self.accounts {
            out.push((account_key(k), Some(encode(a).map_err(|e| e.to_string())?)));
        }
        for ((owner, role), st) in &self.stakes {
            out.push((
                stake_key(owner, *role),
                Some(encode(st).map_err(|e| e.to_string())?),
            ));
        }
        if let Some(list) = &self.stakers {
            out.push((
                stakers_key(),
                Some(encode(list).map_err(|e| e.to_string())?),
            ));
        }
        for (id, c) in &self.channels {
            out.push((channel_key(id), Some(encode(c).map_err(|e| e.to_string())?)));
        }
        if let Some(sets) = &self.validators {
            out.push((
                validators_key(),
                Some(encode(sets).map_err(|e| e.to_string())?),
            ));
        }
        out.push((
            chain_stats_key(),
            Some(encode(&self.chain_stats).map_err(|e| e.to_string())?),
        ));
        Ok(out)
    }
}

/// Decodes a stored account value.
pub fn decode_account(bytes: &[u8]) -> Result<Account, String> {
    decode_exact(bytes).map_err(|e| e.to_string())
}

/// Decodes a stored stake.
pub fn decode_stake(bytes: &[u8]) -> Result<Stake, String> {
    decode_exact(bytes).map_err(|e| e.to_string())
}

/// Decodes stored chain totals.
pub fn decode_chain_stats(bytes: &[u8]) -> Result<ChainStats, String> {
    decode_exact(bytes).map_err(|e| e.to_string())
}

/// Copy-on-write view over a base state: block application writes here, reads fall through.
pub struct Overlay<'a, V: StateView + ?Sized> {
    base: &'a V,
    accounts: BTreeMap<PublicKeyBytes, Account>,
    stakes: BTreeMap<(PublicKeyBytes, StakeRole), Stake>,
    channels: BTreeMap<ChannelId, Channel>,
}

/// What an overlay changed: accounts, stakes and channels.
pub type OverlayChanges = (
    BTreeMap<PublicKeyBytes, Account>,
    BTreeMap<(PublicKeyBytes, StakeRole), Stake>,
    BTreeMap<ChannelId, Channel>,
);

impl<'a, V: StateView + ?Sized> Overlay<'a, V> {
    pub fn new(base: &'a V) -> Self {
        Overlay {
            base,
            accounts: BTreeMap::new(),
            stakes: BTreeMap::new(),
            channels: BTreeMap::new(),
        }
    }

    pub fn channel(&self, id: &ChannelId) -> Result<Option<Channel>, PortError> {
        if let Some(c) = self.channels.get(id) {
            return Ok(Some(c.clone()));
        }
        self.base.channel(id)
    }

    pub fn set_channel(&mut self, id: ChannelId, channel: Channel) {
        self.channels.insert(id, channel);
    }

    pub fn account(&self, key: &PublicKeyBytes) -> Result<Account, PortError> {
        if let Some(a) = self.accounts.get(key) {
            return Ok(*a);
        }
        Ok(self.base.account(key)?.unwrap_or_default())
    }

    pub fn set_account(&mut self, key: PublicKeyBytes, account: Account) {
        self.accounts.insert(key, account);
    }

    pub fn stake(&self, owner: &PublicKeyBytes, role: StakeRole) -> Result<Stake, PortError> {
        if let Some(s) = self.stakes.get(&(*owner, role)) {
            return Ok(s.clone());
        }
        Ok(self.base.stake(owner, role)?.unwrap_or_default())
    }

    /// The validator sets of the base state (a transaction never changes them).
    pub fn validators(&self) -> Result<EpochValidators, PortError> {
        self.base.validators()
    }

    pub fn set_stake(&mut self, owner: PublicKeyBytes, role: StakeRole, stake: Stake) {
        self.stakes.insert((owner, role), stake);
    }

    /// The changed accounts, stakes and channels.
    pub fn into_changes(self) -> OverlayChanges {
        (self.accounts, self.stakes, self.channels)
    }
}
