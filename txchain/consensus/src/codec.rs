//! The bytes of every consensus message on the wire and in the engine's write-ahead log.
//!
//! Each engine type is converted to a plain wire form and encoded with the project's canonical
//! codec (`doin_codec`: bincode, trailing bytes and oversize input refused). The wire forms
//! are ours, so an engine upgrade that changes its types does not change what a DOIN node
//! sends or logs. Nothing here checks signatures: the engine verifies every signed message
//! with [`crate::signing::ConsensusSigner`] before it acts on it.

use crate::context::{BftHeight, BftProposal, BftVote, BlockPart, DoinContext, ValidatorAddress};
use arc_malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use arc_malachitebft_core_types::{
    CommitSignature, ExtendedCommitCertificate, ExtendedCommitSignature, NilOrVal,
    PolkaCertificate, PolkaSignature, Round, RoundCertificate, RoundCertificateType,
    RoundSignature, SignedMessage, ValidatorProof, Validity, VoteType,
};
use arc_malachitebft_engine::util::streaming::{StreamContent, StreamId, StreamMessage};
use arc_malachitebft_sync::{self as sync, PeerId, RawDecidedValue, ValueRequest, ValueResponse};
use bytes::Bytes;
use doin_codec::{decode_exact_bounded, encode, CodecError};
use doin_tx_core::bft::MAX_VALIDATORS;
use doin_tx_core::BlockHash;
use doin_types::SignatureBytes;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Largest single consensus message (a vote, a proposal, a certificate of at most
/// [`MAX_VALIDATORS`] signatures) or proposal part.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Largest sync response (a batch of blocks with their certificates).
pub const MAX_SYNC_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The codec the engine uses for the network, value sync and its write-ahead log.
#[derive(Clone, Copy, Debug, Default)]
pub struct WireCodec;

/// A message that could not be decoded (or, rarely, encoded).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("invalid {0}")]
    Invalid(&'static str),
}

fn enc<T: Serialize>(v: &T) -> Result<Bytes, WireError> {
    Ok(Bytes::from(encode(v)?))
}

fn dec<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, WireError> {
    Ok(decode_exact_bounded(bytes, max)?)
}

fn bounded<T>(v: Vec<T>, what: &'static str) -> Result<Vec<T>, WireError> {
    if v.len() > MAX_VALIDATORS {
        return Err(WireError::Invalid(what));
    }
    Ok(v)
}

#[derive(Serialize, Deserialize)]
enum WireSigned {
    Vote(BftVote, SignatureBytes),
    Proposal(BftProposal, SignatureBytes),
}

#[derive(Serialize, Deserialize)]
struct WirePolka {
    height: BftHeight,
    round: Round,
    block: BlockHash,
    signatures: Vec<(ValidatorAddress, SignatureBytes)>,
}

#[derive(Serialize, Deserialize)]
struct WireRoundCertificate {
    height: BftHeight,
    round: Round,
    /// `true`: 2f+1 precommits of the previous round; `false`: f+1 votes of a later round.
    precommit: bool,
    signatures: Vec<(
        VoteType,
        NilOrVal<BlockHash>,
        ValidatorAddress,
        SignatureBytes,
    )>,
}

#[derive(Serialize, Deserialize)]
enum WireLiveness {
    Vote(BftVote, SignatureBytes),
    Polka(WirePolka),
    SkipRound(WireRoundCertificate),
}

#[derive(Serialize, Deserialize)]
struct WireStream {
    stream_id: Vec<u8>,
    sequence: u64,
    /// `None` closes the stream.
    part: Option<BlockPart>,
}

#[derive(Serialize, Deserialize)]
struct WireProof {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: SignatureBytes,
}

#[derive(Serialize, Deserialize)]
struct WireStatus {
    peer_id: Vec<u8>,
    tip_height: BftHeight,
    history_min_height: BftHeight,
}

#[derive(Serialize, Deserialize)]
enum WireRequest {
    Values { from: BftHeight, to: BftHeight },
}

#[derive(Serialize, Deserialize)]
struct WireCommit {
    height: BftHeight,
    round: Round,
    block: BlockHash,
    signatures: Vec<(ValidatorAddress, SignatureBytes)>,
}

#[derive(Serialize, Deserialize)]
struct WireResponse {
    start_height: BftHeight,
    values: Vec<(Vec<u8>, WireCommit)>,
}

#[derive(Serialize, Deserialize)]
struct WireProposed {
    height: BftHeight,
    round: Round,
    valid_round: Round,
    proposer: ValidatorAddress,
    block: BlockHash,
    valid: bool,
}

fn polka_to_wire(c: &PolkaCertificate<DoinContext>) -> WirePolka {
    WirePolka {
        height: c.height,
        round: c.round,
        block: c.value_id,
        signatures: c
            .polka_signatures
            .iter()
            .map(|s| (s.address, s.signature))
            .collect(),
    }
}

fn polka_from_wire(w: WirePolka) -> Result<PolkaCertificate<DoinContext>, WireError> {
    Ok(PolkaCertificate {
        height: w.height,
        round: w.round,
        value_id: w.block,
        polka_signatures: bounded(w.signatures, "polka certificate")?
            .into_iter()
            .map(|(a, s)| PolkaSignature::new(a, s))
            .collect(),
    })
}

fn commit_to_wire(c: &ExtendedCommitCertificate<DoinContext>) -> WireCommit {
    WireCommit {
        height: c.height,
        round: c.round,
        block: c.value_id,
        signatures: c
            .commit_signatures
            .iter()
            .map(|s| (s.address, s.signature))
            .collect(),
    }
}

fn commit_from_wire(w: WireCommit) -> Result<ExtendedCommitCertificate<DoinContext>, WireError> {
    Ok(ExtendedCommitCertificate {
        height: w.height,
        round: w.round,
        value_id: w.block,
        // Vote extensions are disabled on the transfer chain.
        commit_signatures: bounded(w.signatures, "commit certificate")?
            .into_iter()
            .map(|(a, s)| ExtendedCommitSignature::new(a, s, None))
            .collect(),
    })
}

/// The engine's commit certificate in the chain's form (what headers and the store carry).
pub fn to_chain_certificate(
    c: &arc_malachitebft_core_types::CommitCertificate<DoinContext>,
) -> Option<doin_tx_core::bft::CommitCertificate> {
    Some(doin_tx_core::bft::CommitCertificate {
        height: c.height.0,
        round: c.round.as_u32()?,
        block: c.value_id,
        signatures: c
            .commit_signatures
            .iter()
            .map(|s| (s.address.0, s.signature))
            .collect(),
    })
}

/// The chain's certificate in the engine's form (for serving decided blocks to syncing peers).
pub fn to_engine_certificate(
    c: &doin_tx_core::bft::CommitCertificate,
) -> ExtendedCommitCertificate<DoinContext> {
    ExtendedCommitCertificate {
        height: BftHeight(c.height),
        round: Round::new(c.round),
        value_id: c.block,
        commit_signatures: c
            .signatures
            .iter()
            .map(|(k, s)| ExtendedCommitSignature::new(ValidatorAddress(*k), *s, None))
            .collect(),
    }
}

/// The engine's plain certificate from the chain's (as the engine reports decisions).
pub fn commit_signatures(
    c: &doin_tx_core::bft::CommitCertificate,
) -> Vec<CommitSignature<DoinContext>> {
    c.signatures
        .iter()
        .map(|(k, s)| CommitSignature::new(ValidatorAddress(*k), *s))
        .collect()
}

macro_rules! codec_for {
    ($t:ty, $max:expr, $to:expr, $from:expr) => {
        impl arc_malachitebft_codec::Codec<$t> for WireCodec {
            type Error = WireError;

            fn decode(&self, bytes: Bytes) -> Result<$t, WireError> {
                #[allow(clippy::redundant_closure_call)]
                ($from)(dec(&bytes, $max)?)
            }

            fn encode(&self, msg: &$t) -> Result<Bytes, WireError> {
                #[allow(clippy::redundant_closure_call)]
                enc(&($to)(msg))
            }
        }
    };
}

codec_for!(
    BlockPart,
    MAX_MESSAGE_BYTES,
    |p: &BlockPart| p.clone(),
    |p: BlockPart| Ok::<_, WireError>(p)
);

codec_for!(
    SignedConsensusMsg<DoinContext>,
    MAX_MESSAGE_BYTES,
    |m: &SignedConsensusMsg<DoinContext>| match m {
        SignedConsensusMsg::Vote(v) => WireSigned::Vote(v.message.clone(), v.signature),
        SignedConsensusMsg::Proposal(p) => WireSigned::Proposal(p.message.clone(), p.signature),
    },
    |w: WireSigned| Ok::<_, WireError>(match w {
        WireSigned::Vote(v, s) => SignedConsensusMsg::Vote(SignedMessage::new(v, s)),
        WireSigned::Proposal(p, s) => SignedConsensusMsg::Proposal(SignedMessage::new(p, s)),
    })
);

codec_for!(
    LivenessMsg<DoinContext>,
    MAX_MESSAGE_BYTES,
    |m: &LivenessMsg<DoinContext>| match m {
        LivenessMsg::Vote(v) => WireLiveness::Vote(v.message.clone(), v.signature),
        LivenessMsg::PolkaCertificate(c) => WireLiveness::Polka(polka_to_wire(c)),
        LivenessMsg::SkipRoundCertificate(c) => WireLiveness::SkipRound(WireRoundCertificate {
            height: c.height,
            round: c.round,
            precommit: c.cert_type == RoundCertificateType::Precommit,
            signatures: c
                .round_signatures
                .iter()
                .map(|s| (s.vote_type, s.value_id, s.address, s.signature))
                .collect(),
        }),
    },
    |w: WireLiveness| -> Result<LivenessMsg<DoinContext>, WireError> {
        Ok(match w {
            WireLiveness::Vote(v, s) => LivenessMsg::Vote(SignedMessage::new(v, s)),
            WireLiveness::Polka(p) => LivenessMsg::PolkaCertificate(polka_from_wire(p)?),
            WireLiveness::SkipRound(c) => LivenessMsg::SkipRoundCertificate(RoundCertificate {
                height: c.height,
                round: c.round,
                cert_type: if c.precommit {
                    RoundCertificateType::Precommit
                } else {
                    RoundCertificateType::Skip
                },
                round_signatures: bounded(c.signatures, "round certificate")?
                    .into_iter()
                    .map(|(t, v, a, s)| RoundSignature::new(t, v, a, s))
                    .collect(),
            }),
        })
    }
);

codec_for!(
    StreamMessage<BlockPart>,
    MAX_MESSAGE_BYTES,
    |m: &StreamMessage<BlockPart>| WireStream {
        stream_id: m.stream_id.to_bytes().to_vec(),
        sequence: m.sequence,
        part: m.content.as_data().cloned(),
    },
    |w: WireStream| -> Result<StreamMessage<BlockPart>, WireError> {
        if w.stream_id.len() > 64 {
            return Err(WireError::Invalid("stream id"));
        }
        Ok(StreamMessage::new(
            StreamId::new(Bytes::from(w.stream_id)),
            w.sequence,
            match w.part {
                Some(p) => StreamContent::Data(p),
                None => StreamContent::Fin,
            },
        ))
    }
);

codec_for!(
    ValidatorProof<DoinContext>,
    MAX_MESSAGE_BYTES,
    |p: &ValidatorProof<DoinContext>| WireProof {
        public_key: p.public_key.clone(),
        peer_id: p.peer_id.clone(),
        signature: p.signature,
    },
    |w: WireProof| -> Result<ValidatorProof<DoinContext>, WireError> {
        if w.public_key.len() > 64 || w.peer_id.len() > 128 {
            return Err(WireError::Invalid("validator proof"));
        }
        Ok(ValidatorProof::new(w.public_key, w.peer_id, w.signature))
    }
);

codec_for!(
    sync::Status<DoinContext>,
    MAX_MESSAGE_BYTES,
    |s: &sync::Status<DoinContext>| WireStatus {
        peer_id: s.peer_id.to_bytes(),
        tip_height: s.tip_height,
        history_min_height: s.history_min_height,
    },
    |w: WireStatus| -> Result<sync::Status<DoinContext>, WireError> {
        Ok(sync::Status {
            peer_id: PeerId::from_bytes(&w.peer_id).map_err(|_| WireError::Invalid("peer id"))?,
            tip_height: w.tip_height,
            history_min_height: w.history_min_height,
        })
    }
);

codec_for!(
    sync::Request<DoinContext>,
    MAX_MESSAGE_BYTES,
    |r: &sync::Request<DoinContext>| match r {
        sync::Request::ValueRequest(v) => WireRequest::Values {
            from: *v.range.start(),
            to: *v.range.end(),
        },
    },
    |w: WireRequest| Ok::<_, WireError>(match w {
        WireRequest::Values { from, to } =>
            sync::Request::ValueRequest(ValueRequest::new(from..=to)),
    })
);

fn response_to_wire(r: &sync::Response<DoinContext>) -> WireResponse {
    match r {
        sync::Response::ValueResponse(v) => WireResponse {
            start_height: v.start_height,
            values: v
                .values
                .iter()
                .map(|d| (d.value_bytes.to_vec(), commit_to_wire(&d.certificate)))
                .collect(),
        },
    }
}

impl arc_malachitebft_codec::Codec<sync::Response<DoinContext>> for WireCodec {
    type Error = WireError;

    fn decode(&self, bytes: Bytes) -> Result<sync::Response<DoinContext>, WireError> {
        let w: WireResponse = dec(&bytes, MAX_SYNC_RESPONSE_BYTES)?;
        let values = w
            .values
            .into_iter()
            .map(|(b, c)| Ok(RawDecidedValue::new(Bytes::from(b), commit_from_wire(c)?)))
            .collect::<Result<Vec<_>, WireError>>()?;
        Ok(sync::Response::ValueResponse(ValueResponse::new(
            w.start_height,
            values,
        )))
    }

    fn encode(&self, msg: &sync::Response<DoinContext>) -> Result<Bytes, WireError> {
        enc(&response_to_wire(msg))
    }
}

impl arc_malachitebft_codec::HasEncodedLen<sync::Response<DoinContext>> for WireCodec {
    fn encoded_len(&self, msg: &sync::Response<DoinContext>) -> Result<usize, WireError> {
        Ok(doin_codec::encoded_len(&response_to_wire(msg))?)
    }
}

codec_for!(
    ProposedValue<DoinContext>,
    MAX_MESSAGE_BYTES,
    |p: &ProposedValue<DoinContext>| WireProposed {
        height: p.height,
        round: p.round,
        valid_round: p.valid_round,
        proposer: p.proposer,
        block: p.value.0,
        valid: p.validity == Validity::Valid,
    },
    |w: WireProposed| Ok::<_, WireError>(ProposedValue {
        height: w.height,
        round: w.round,
        valid_round: w.valid_round,
        proposer: w.proposer,
        value: crate::context::BlockValue(w.block),
        validity: if w.valid {
            Validity::Valid
        } else {
            Validity::Invalid
        },
    })
);

codec_for!(
    PolkaCertificate<DoinContext>,
    MAX_MESSAGE_BYTES,
    polka_to_wire,
    polka_from_wire
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use arc_malachitebft_codec::Codec;
    use doin_tx_core::bft::VoteKind;
    use doin_types::{Hash256, PublicKeyBytes};

    fn vote() -> BftVote {
        BftVote {
            kind: VoteKind::Precommit,
            height: BftHeight(7),
            round: Round::new(2),
            value: NilOrVal::Val(Hash256([3; 32])),
            validator: ValidatorAddress(PublicKeyBytes([9; 32])),
        }
    }

    fn roundtrip<T>(msg: T)
    where
        T: PartialEq + std::fmt::Debug,
        WireCodec: Codec<T, Error = WireError>,
    {
        let bytes = WireCodec.encode(&msg).unwrap();
        assert_eq!(WireCodec.decode(bytes.clone()).unwrap(), msg);
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(
            Codec::<T>::decode(&WireCodec, Bytes::from(longer)).is_err(),
            "trailing byte accepted"
        );
        let cut = bytes.slice(..bytes.len() - 1);
        assert!(
            Codec::<T>::decode(&WireCodec, cut).is_err(),
            "truncated input accepted"
        );
    }

    #[test]
    fn every_message_roundtrips_and_refuses_trailing_or_missing_bytes() {
        let sig = SignatureBytes([5; 64]);
        roundtrip(SignedConsensusMsg::<DoinContext>::Vote(SignedMessage::new(
            vote(),
            sig,
        )));
        roundtrip(SignedConsensusMsg::<DoinContext>::Proposal(
            SignedMessage::new(
                BftProposal {
                    height: BftHeight(7),
                    round: Round::new(0),
                    value: super::super::context::BlockValue(Hash256([1; 32])),
                    pol_round: Round::Nil,
                    proposer: ValidatorAddress(PublicKeyBytes([2; 32])),
                },
                sig,
            ),
        ));
        roundtrip(LivenessMsg::<DoinContext>::Vote(SignedMessage::new(
            vote(),
            sig,
        )));
        let part = BlockPart {
            height: BftHeight(7),
            round: Round::new(1),
            proposer: ValidatorAddress(PublicKeyBytes([2; 32])),
            index: 0,
            total: 2,
            bytes: vec![1, 2, 3],
        };
        roundtrip(part.clone());
        roundtrip(StreamMessage::new(
            StreamId::new(Bytes::from_static(b"stream")),
            4,
            StreamContent::Data(part),
        ));
        roundtrip(StreamMessage::<BlockPart>::new(
            StreamId::new(Bytes::from_static(b"stream")),
            5,
            StreamContent::Fin,
        ));
        roundtrip(sync::Request::<DoinContext>::ValueRequest(
            ValueRequest::new(BftHeight(3)..=BftHeight(9)),
        ));
        let cert = doin_tx_core::bft::CommitCertificate {
            height: 3,
            round: 1,
            block: Hash256([4; 32]),
            signatures: vec![(PublicKeyBytes([6; 32]), sig)],
        };
        roundtrip(sync::Response::<DoinContext>::ValueResponse(
            ValueResponse::new(
                BftHeight(3),
                vec![RawDecidedValue::new(
                    Bytes::from_static(b"block"),
                    to_engine_certificate(&cert),
                )],
            ),
        ));
        roundtrip(ProposedValue::<DoinContext> {
            height: BftHeight(3),
            round: Round::new(0),
            valid_round: Round::Nil,
            proposer: ValidatorAddress(PublicKeyBytes([2; 32])),
            value: super::super::context::BlockValue(Hash256([1; 32])),
            validity: Validity::Invalid,
        });
    }

    #[test]
    fn certificates_convert_both_ways_unchanged() {
        let cert = doin_tx_core::bft::CommitCertificate {
            height: 11,
            round: 2,
            block: Hash256([8; 32]),
            signatures: vec![
                (PublicKeyBytes([1; 32]), SignatureBytes([1; 64])),
                (PublicKeyBytes([2; 32]), SignatureBytes([2; 64])),
            ],
        };
        let engine = to_engine_certificate(&cert);
        let plain = arc_malachitebft_core_types::CommitCertificate {
            height: engine.height,
            round: engine.round,
            value_id: engine.value_id,
            commit_signatures: commit_signatures(&cert),
        };
        assert_eq!(to_chain_certificate(&plain), Some(cert));
    }

    #[test]
    fn oversize_and_overlong_lists_are_refused() {
        let big = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES + 1]);
        assert!(Codec::<BlockPart>::decode(&WireCodec, big).is_err());
        let w = WireCommit {
            height: BftHeight(1),
            round: Round::new(0),
            block: Hash256([0; 32]),
            signatures: vec![
                (
                    ValidatorAddress(PublicKeyBytes([1; 32])),
                    SignatureBytes([0; 64])
                );
                MAX_VALIDATORS + 1
            ],
        };
        assert!(commit_from_wire(w).is_err());
    }
}
