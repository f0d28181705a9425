//! Seeds of the consensus targets: every message kind a validator sends, and the parts of a
//! real signed block framed as `bft_parts` reads them (two-byte length, then the part).

use arc_malachitebft_codec::Codec;
use arc_malachitebft_core_consensus::{LivenessMsg, SignedConsensusMsg};
use arc_malachitebft_core_types::{NilOrVal, Round, SignedMessage};
use arc_malachitebft_engine::util::streaming::{StreamContent, StreamId, StreamMessage};
use arc_malachitebft_sync as sync;
use bytes::Bytes;
use doin_crypto::KeyPair;
use doin_tx_consensus::codec::{to_engine_certificate, WireCodec};
use doin_tx_consensus::{
    split_block, BftHeight, BftProposal, BftVote, BlockValue, DoinContext, ValidatorAddress,
    VoteKind,
};
use doin_tx_core::bft::CommitCertificate;
use doin_tx_core::{Block, BlockHeader};
use doin_types::{Amount, ChainId, Hash256, MainAnchor, SignatureBytes, Timestamp};
use std::error::Error;

type Write = fn(&str, &str, &[u8]) -> std::io::Result<()>;

pub fn write_seeds(write: Write) -> Result<(), Box<dyn Error>> {
    let key = KeyPair::from_secret_bytes(&[8; 32])?;
    let proposer = ValidatorAddress(key.public());
    let sig = SignatureBytes([5; 64]);
    let vote = BftVote {
        kind: VoteKind::Precommit,
        height: BftHeight(7),
        round: Round::new(2),
        value: NilOrVal::Val(Hash256([3; 32])),
        validator: proposer,
    };
    let proposal = BftProposal {
        height: BftHeight(7),
        round: Round::new(0),
        value: BlockValue(Hash256([1; 32])),
        pol_round: Round::Nil,
        proposer,
    };
    let mut messages: Vec<(&str, Bytes)> = vec![
        (
            "vote",
            WireCodec.encode(&SignedConsensusMsg::<DoinContext>::Vote(
                SignedMessage::new(vote.clone(), sig),
            ))?,
        ),
        (
            "proposal",
            WireCodec.encode(&SignedConsensusMsg::<DoinContext>::Proposal(
                SignedMessage::new(proposal, sig),
            ))?,
        ),
        (
            "liveness-vote",
            WireCodec.encode(&LivenessMsg::<DoinContext>::Vote(SignedMessage::new(
                vote, sig,
            )))?,
        ),
        (
            "request",
            WireCodec.encode(&sync::Request::<DoinContext>::ValueRequest(
                sync::ValueRequest::new(BftHeight(3)..=BftHeight(9)),
            ))?,
        ),
    ];
    let cert = CommitCertificate {
        height: 3,
        round: 1,
        block: Hash256([4; 32]),
        signatures: vec![(key.public(), sig)],
    };
    messages.push((
        "response",
        WireCodec.encode(&sync::Response::<DoinContext>::ValueResponse(
            sync::ValueResponse::new(
                BftHeight(3),
                vec![sync::RawDecidedValue::new(
                    Bytes::from_static(b"block"),
                    to_engine_certificate(&cert),
                )],
            ),
        ))?,
    ));

    let header = BlockHeader {
        chain_id: ChainId(Hash256([9; 32])),
        height: 7,
        parent: Hash256([2; 32]),
        time: Timestamp(1_800_000_000_000),
        proposer: key.public(),
        state_root: Hash256([6; 32]),
        tx_root: Hash256([0; 32]),
        base_fee: Amount::from_base_units(1),
        weight_used: 0,
        tx_count: 0,
        main_anchor: MainAnchor {
            height: 0,
            hash: Hash256([0; 32]),
        },
        last_commit: Some(cert),
    };
    let block = Block::sign(header, Vec::new(), &key)?;
    let parts = split_block(&block, BftHeight(7), Round::new(0), proposer, 1 << 20)?;
    let mut framed = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let bytes = WireCodec.encode(part)?;
        messages.push(("part", bytes.clone()));
        let stream = StreamMessage::new(
            StreamId::new(Bytes::from_static(b"stream")),
            i as u64,
            StreamContent::Data(part.clone()),
        );
        messages.push(("stream", WireCodec.encode(&stream)?));
        framed.extend_from_slice(&u16::try_from(bytes.len())?.to_le_bytes());
        framed.extend_from_slice(&bytes);
    }
    for (i, (name, bytes)) in messages.iter().enumerate() {
        write("bft_wire", &format!("{name}-{i}"), bytes)?;
    }
    write("bft_parts", "signed-block", &framed)?;
    Ok(())
}
