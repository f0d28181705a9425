//! Transactions: what is signed, how ids and weights are derived, and the checks that need no
//! state.
//!
//! Signing bytes (specified with vectors in `docs/transactions.md`):
//! `sighash = H_"doin/tx"(encode(TxBody))`, signed with BIP340. The body starts with the chain id,
//! so the signature is useless on any other chain. The transaction id is
//! `H_"doin/txid"(encode(SignedTx))`, always recomputed from the bytes, never taken from a client.

use crate::error::TxError;
use crate::stake::{check_domains, StakeRole};
use doin_codec::{decode_exact_bounded, encode};
use doin_crypto::{is_valid_public_key, tagged_hash, verify, KeyPair};
use doin_types::{Amount, ChainId, Hash256, PublicKeyBytes, SignatureBytes};
use serde::{Deserialize, Serialize};

pub const TAG_TX_SIGHASH: &str = "doin/tx";
pub const TAG_TX_ID: &str = "doin/txid";

/// A transaction id.
pub type TxId = Hash256;

/// What a transaction does. New kinds are appended (the variant index is part of the encoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxPayload {
    /// Moves `amount` from the sender to `to`.
    Transfer { to: PublicKeyBytes, amount: Amount },
    /// Bonds `amount` of the sender's balance to `role`. An evaluator names the domains it
    /// verifies (ascending; an empty list keeps the ones it named before).
    Stake {
        role: StakeRole,
        amount: Amount,
        domains: Vec<String>,
    },
    /// Starts unbonding `amount` of the sender's `role` stake.
    Unstake { role: StakeRole, amount: Amount },
    /// Returns the sender's unbonded `role` coins to its balance (after the unbonding period).
    Withdraw { role: StakeRole },
    /// Reports a validator that signed two different votes at one height and round: its whole
    /// validator stake is burned and it may never bond as a validator again.
    ReportEquivocation {
        evidence: Box<crate::bft::Equivocation>,
    },
    /// Opens a payment channel with `counterparty` (docs/channels.md): `deposit` from the sender and
    /// `counterparty_deposit` from the counterparty, which then signs its `consent` (an
    /// [`crate::channel::OpenConsent`]). The channel id is recomputed from sender and nonce.
    ChannelOpen {
        counterparty: PublicKeyBytes,
        deposit: Amount,
        counterparty_deposit: Amount,
        dispute_blocks: u64,
        consent: Option<SignatureBytes>,
    },
    /// Pays out a state both parties signed, without pending HTLCs, at once.
    ChannelCoopClose {
        state: Box<crate::channel::SignedChannelState>,
    },
    /// A party posts the latest state it holds (`None`: the opening split) and opens the
    /// dispute window.
    ChannelForceClose {
        channel: crate::channel::ChannelId,
        state: Option<Box<crate::channel::SignedChannelState>>,
    },
    /// A party replaces the posted state with a higher one during the window.
    ChannelChallenge {
        state: Box<crate::channel::SignedChannelState>,
    },
    /// Pays out a closing channel after its window.
    ChannelSettle { channel: crate::channel::ChannelId },
    /// Claims a pending HTLC of a closing channel with its preimage, before its expiry.
    HtlcClaim {
        channel: crate::channel::ChannelId,
        preimage: [u8; 32],
    },
    /// Pays each output's `amount` to its `to`: 1 to [`MAX_BATCH_OUTPUTS`] outputs, each
    /// above zero (an exchange's withdrawals in one transaction, one nonce, one fee by weight).
    BatchTransfer { outputs: Vec<BatchOutput> },
}

/// One payment of a [`TxPayload::BatchTransfer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutput {
    pub to: PublicKeyBytes,
    pub amount: Amount,
}

/// Most outputs of one batch payment. At 40 bytes each, 1 000 outputs (about 40 kB) stay under
/// the public transaction weight limit of 64 KiB; a chain with a lower limit bounds them there.
pub const MAX_BATCH_OUTPUTS: usize = 1_000;

impl TxPayload {
    /// Stable name of the kind, as shown over REST.
    pub fn kind(&self) -> &'static str {
        match self {
            TxPayload::Transfer { .. } => "transfer",
            TxPayload::Stake { .. } => "stake",
            TxPayload::Unstake { .. } => "unstake",
            TxPayload::Withdraw { .. } => "withdraw",
            TxPayload::ReportEquivocation { .. } => "report-equivocation",
            TxPayload::ChannelOpen { .. } => "channel-open",
            TxPayload::ChannelCoopClose { .. } => "channel-coop-close",
            TxPayload::ChannelForceClose { .. } => "channel-force-close",
            TxPayload::ChannelChallenge { .. } => "channel-challenge",
            TxPayload::ChannelSettle { .. } => "channel-settle",
            TxPayload::HtlcClaim { .. } => "htlc-claim",
            TxPayload::BatchTransfer { .. } => "batch-transfer",
        }
    }

    /// The other accounts a transaction names to receive (transfers and batch outputs, in
    /// order, repeats included) or to fund a channel with.
    pub fn recipients(&self) -> Vec<&PublicKeyBytes> {
        match self {
            TxPayload::Transfer { to, .. } => vec![to],
            // The counterparty of a new channel: its key must be valid and the channel shows
            // in its history.
            TxPayload::ChannelOpen { counterparty, .. } => vec![counterparty],
            TxPayload::BatchTransfer { outputs } => outputs.iter().map(|o| &o.to).collect(),
            _ => Vec::new(),
        }
    }
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBody {
    pub chain_id: ChainId,
    pub sender: PublicKeyBytes,
    /// Must equal the sender's account nonce when the transaction is applied (gap-free).
    pub nonce: u64,
    /// Highest total fee per weight unit (base fee + tip) the sender accepts.
    pub max_fee_per_weight: Amount,
    /// Highest tip per weight unit the sender offers the proposer.
    pub max_priority_fee_per_weight: Amount,
    pub payload: TxPayload,
}

impl TxBody {
    /// The 32-byte message the sender signs.
    pub fn sighash(&self) -> Result<Hash256, TxError> {
        let bytes = encode(self).map_err(|e| TxError::Malformed(e.to_string()))?;
        Ok(tagged_hash(TAG_TX_SIGHASH, &bytes))
    }

    /// Amount that leaves the sender besides fees.
    pub fn value(&self) -> Result<Amount, TxError> {
        Ok(match &self.payload {
            TxPayload::Transfer { amount, .. } | TxPayload::Stake { amount, .. } => *amount,
            TxPayload::ChannelOpen { deposit, .. } => *deposit,
            TxPayload::BatchTransfer { outputs } => {
                let mut total = Amount::ZERO;
                for o in outputs {
                    total = total
                        .checked_add(o.amount)
                        .map_err(|_| TxError::AmountOverflow)?;
                }
                total
            }
            TxPayload::Unstake { .. }
            | TxPayload::Withdraw { .. }
            | TxPayload::ReportEquivocation { .. }
            | TxPayload::ChannelCoopClose { .. }
            | TxPayload::ChannelForceClose { .. }
            | TxPayload::ChannelChallenge { .. }
            | TxPayload::ChannelSettle { .. }
            | TxPayload::HtlcClaim { .. } => Amount::ZERO,
        })
    }

    /// Signs the body.
    pub fn sign(self, key: &KeyPair) -> Result<SignedTx, TxError> {
        let sig = key.sign(&self.sighash()?);
        Ok(SignedTx {
            body: self,
            signature: sig,
        })
    }
}

/// A transaction with its signature: the unit that travels and is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    pub body: TxBody,
    pub signature: SignatureBytes,
}

impl SignedTx {
    /// Whether the signature is the sender's over the body (only that: block application
    /// checks everything else). A node may run this for a block's transactions on all its
    /// cores before applying the block without checking signatures again.
    pub fn signature_holds(&self) -> bool {
        self.body
            .sighash()
            .is_ok_and(|m| verify(&self.body.sender, &m, &self.signature).is_ok())
    }
}

/// A decoded transaction with its derived id, weight and canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    signed: SignedTx,
    id: TxId,
    bytes: Vec<u8>,
}

impl Tx {
    /// Decodes canonical bytes, refusing anything longer than `max_weight`, malformed input and
    /// trailing bytes.
    pub fn decode(bytes: &[u8], max_weight: u64) -> Result<Tx, TxError> {
        if bytes.len() as u64 > max_weight {
            return Err(TxError::Oversize {
                weight: bytes.len() as u64,
                max: max_weight,
            });
        }
        let signed: SignedTx = decode_exact_bounded(bytes, max_weight as usize)
            .map_err(|e| TxError::Malformed(e.to_string()))?;
        Ok(Tx {
            id: tagged_hash(TAG_TX_ID, bytes),
            bytes: bytes.to_vec(),
            signed,
        })
    }

    /// Wraps a transaction built in this process.
    pub fn from_signed(signed: SignedTx) -> Result<Tx, TxError> {
        let bytes = encode(&signed).map_err(|e| TxError::Malformed(e.to_string()))?;
        Ok(Tx {
            id: tagged_hash(TAG_TX_ID, &bytes),
            bytes,
            signed,
        })
    }

    pub fn id(&self) -> TxId {
        self.id
    }

    /// Weight = canonical encoded length in bytes.
    pub fn weight(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn signed(&self) -> &SignedTx {
        &self.signed
    }

    pub fn body(&self) -> &TxBody {
        &self.signed.body
    }

    pub fn into_signed(self) -> SignedTx {
        self.signed
    }

    /// `value + max_fee_per_weight × weight`: what the sender must hold for the transaction to be
    /// valid, whatever the base fee turns out to be.
    pub fn max_cost(&self) -> Result<Amount, TxError> {
        let body = self.body();
        let value = body.value()?;
        body.max_fee_per_weight
            .checked_mul(self.weight())
            .and_then(|fee| fee.checked_add(value))
            .map_err(|_| TxError::AmountOverflow)
    }

    /// Checks that need no state: chain, size, fee caps, payload sanity and (optionally) the
    /// signature. `verify_signature` is false only for transactions this node verified already.
    pub fn check_stateless(
        &self,
        chain_id: &ChainId,
        max_weight: u64,
        verify_signature: bool,
    ) -> Result<(), TxError> {
        self.check_fields(chain_id, max_weight, verify_signature)?;
        let body = self.body();
        if body
            .payload
            .recipients()
            .into_iter()
            .any(|to| !is_valid_public_key(to))
        {
            return Err(TxError::InvalidRecipient);
        }
        if !verify_signature && !is_valid_public_key(&body.sender) {
            return Err(TxError::InvalidSender);
        }
        Ok(())
    }

    /// [`Tx::check_stateless`] without the key-validity checks (each a field square root, a
    /// quarter of a signature check). Block application uses it and checks keys only where
    /// state cannot vouch for them: a recipient with an empty account. A sender's key is
    /// proven by its signature or by the balance it spends (only valid keys ever hold coins).
    pub(crate) fn check_fields(
        &self,
        chain_id: &ChainId,
        max_weight: u64,
        verify_signature: bool,
    ) -> Result<(), TxError> {
        let body = self.body();
        if body.chain_id != *chain_id {
            return Err(TxError::WrongChain);
        }
        if self.weight() > max_weight {
            return Err(TxError::Oversize {
                weight: self.weight(),
                max: max_weight,
            });
        }
        if body.max_priority_fee_per_weight > body.max_fee_per_weight {
            return Err(TxError::PriorityAboveMaxFee {
                priority: body.max_priority_fee_per_weight,
                max_fee: body.max_fee_per_weight,
            });
        }
        match &body.payload {
            TxPayload::Transfer { amount, .. } | TxPayload::Unstake { amount, .. } => {
                if amount.is_zero() {
                    return Err(TxError::ZeroAmount);
                }
            }
            TxPayload::Stake {
                role,
                amount,
                domains,
            } => {
                if amount.is_zero() {
                    return Err(TxError::ZeroAmount);
                }
                check_domains(*role, domains)?;
            }
            TxPayload::Withdraw { .. } => {}
            TxPayload::BatchTransfer { outputs } => {
                if outputs.is_empty() || outputs.len() > MAX_BATCH_OUTPUTS {
                    return Err(TxError::InvalidBatch(format!(
                        "a batch pays 1 to {MAX_BATCH_OUTPUTS} outputs, not {}",
                        outputs.len()
                    )));
                }
                if outputs.iter().any(|o| o.amount.is_zero()) {
                    return Err(TxError::ZeroAmount);
                }
            }
            TxPayload::ReportEquivocation { evidence } => {
                evidence
                    .offender(chain_id)
                    .map_err(TxError::InvalidEvidence)?;
            }
            TxPayload::ChannelOpen { .. }
            | TxPayload::ChannelCoopClose { .. }
            | TxPayload::ChannelForceClose { .. }
            | TxPayload::ChannelChallenge { .. }
            | TxPayload::ChannelSettle { .. }
            | TxPayload::HtlcClaim { .. } => crate::channel_tx::check_payload(body)?,
        }
        self.max_cost()?;
        if verify_signature {
            verify(&body.sender, &body.sighash()?, &self.signed.signature)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &KeyPair) -> TxBody {
        TxBody {
            chain_id: ChainId(Hash256([1; 32])),
            sender: key.public(),
            nonce: 0,
            max_fee_per_weight: Amount::from_base_units(20),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload: TxPayload::Transfer {
                to: KeyPair::generate().public(),
                amount: Amount::from_base_units(5),
            },
        }
    }

    #[test]
    fn id_is_recomputed_and_bytes_are_canonical() {
        let key = KeyPair::generate();
        let tx = Tx::from_signed(body(&key).sign(&key).unwrap()).unwrap();
        let back = Tx::decode(tx.bytes(), 1000).unwrap();
        assert_eq!(back.id(), tx.id());
        assert_eq!(tx.weight(), 196);
        let mut trailing = tx.bytes().to_vec();
        trailing.push(0);
        assert!(matches!(
            Tx::decode(&trailing, 1000),
            Err(TxError::Malformed(_))
        ));
        assert!(matches!(
            Tx::decode(tx.bytes(), 100),
            Err(TxError::Oversize { .. })
        ));
    }

    #[test]
    fn staking_payload_bytes_are_as_documented() {
        // docs/transactions.md: kind u32, role u32, amount u64, domains as count u64 then
        // each string as length u64 and bytes.
        let p = TxPayload::Stake {
            role: StakeRole::Evaluator,
            amount: Amount::from_base_units(5),
            domains: vec!["ab".into()],
        };
        let mut expected = vec![1, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0];
        expected.extend([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(encode(&p).unwrap(), expected);
        let u = TxPayload::Unstake {
            role: StakeRole::Optimizer,
            amount: Amount::from_base_units(7),
        };
        assert_eq!(
            encode(&u).unwrap(),
            vec![2, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        let w = TxPayload::Withdraw {
            role: StakeRole::Validator,
        };
        assert_eq!(encode(&w).unwrap(), vec![3, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn batch_payments_are_checked_on_their_own() {
        let key = KeyPair::generate();
        let chain = ChainId(Hash256([1; 32]));
        let batch = |outputs: Vec<(PublicKeyBytes, u64)>| {
            let mut b = body(&key);
            b.payload = TxPayload::BatchTransfer {
                outputs: outputs
                    .into_iter()
                    .map(|(to, amount)| BatchOutput {
                        to,
                        amount: Amount::from_base_units(amount),
                    })
                    .collect(),
            };
            Tx::from_signed(b.sign(&key).unwrap()).unwrap()
        };
        let (a, c) = (KeyPair::generate().public(), KeyPair::generate().public());
        let ok = batch(vec![(a, 5), (c, 7), (a, 1)]);
        assert_eq!(ok.check_stateless(&chain, 100_000, true), Ok(()));
        assert_eq!(ok.body().value(), Ok(Amount::from_base_units(13)));
        // kind 11, then a u64 count and 40 bytes per output.
        assert_eq!(ok.weight(), 88 + 4 + 8 + 3 * 40 + 64);
        assert!(matches!(
            batch(vec![]).check_stateless(&chain, 100_000, true),
            Err(TxError::InvalidBatch(_))
        ));
        let too_many = batch(vec![(a, 1); MAX_BATCH_OUTPUTS + 1]);
        assert!(matches!(
            too_many.check_stateless(&chain, 100_000, true),
            Err(TxError::InvalidBatch(_))
        ));
        assert_eq!(
            batch(vec![(a, 1), (c, 0)]).check_stateless(&chain, 100_000, true),
            Err(TxError::ZeroAmount)
        );
        assert_eq!(
            batch(vec![(a, 1), (PublicKeyBytes([0; 32]), 1)])
                .check_stateless(&chain, 100_000, true),
            Err(TxError::InvalidRecipient)
        );
        assert_eq!(
            batch(vec![(a, u64::MAX), (c, 1)]).check_stateless(&chain, 100_000, true),
            Err(TxError::AmountOverflow)
        );
    }

    #[test]
    fn stateless_checks() {
        let key = KeyPair::generate();
        let chain = ChainId(Hash256([1; 32]));
        let ok = Tx::from_signed(body(&key).sign(&key).unwrap()).unwrap();
        assert_eq!(ok.check_stateless(&chain, 1000, true), Ok(()));
        assert_eq!(
            ok.check_stateless(&ChainId(Hash256([2; 32])), 1000, true),
            Err(TxError::WrongChain)
        );

        let mut b = body(&key);
        b.max_priority_fee_per_weight = Amount::from_base_units(21);
        let tx = Tx::from_signed(b.sign(&key).unwrap()).unwrap();
        assert!(matches!(
            tx.check_stateless(&chain, 1000, true),
            Err(TxError::PriorityAboveMaxFee { .. })
        ));

        let mut b = body(&key);
        b.max_fee_per_weight = Amount::MAX;
        b.max_priority_fee_per_weight = Amount::ZERO;
        let tx = Tx::from_signed(b.sign(&key).unwrap()).unwrap();
        assert_eq!(
            tx.check_stateless(&chain, 1000, true),
            Err(TxError::AmountOverflow)
        );

        let mut signed = body(&key).sign(&key).unwrap();
        signed.body.nonce = 1;
        let tx = Tx::from_signed(signed).unwrap();
        assert_eq!(
            tx.check_stateless(&chain, 1000, true),
            Err(TxError::BadSignature)
        );
    }
}
