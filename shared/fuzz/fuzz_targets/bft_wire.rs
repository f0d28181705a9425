//! The transfer chain's consensus messages as validators send them (votes, proposals, proposal
//! parts, liveness certificates, peer proofs, value-sync status, requests and answers):
//! decoding never panics, and what decodes re-encodes to the same bytes.
#![no_main]
use arc_malachitebft_codec::Codec;
use bytes::Bytes;
use doin_tx_consensus::codec::{WireCodec, WireError};
use doin_tx_consensus::{BlockPart, DoinContext};
use libfuzzer_sys::fuzz_target;

fn canonical<T>(data: &[u8])
where
    WireCodec: Codec<T, Error = WireError>,
{
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(msg) = Codec::<T>::decode(&WireCodec, bytes) {
        let again = Codec::<T>::encode(&WireCodec, &msg).ok();
        assert_eq!(
            again.as_deref(),
            Some(data),
            "a non-canonical encoding was accepted"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    use arc_malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
    use arc_malachitebft_core_types::{PolkaCertificate, ValidatorProof};
    use arc_malachitebft_engine::util::streaming::StreamMessage;
    use arc_malachitebft_sync as sync;
    canonical::<BlockPart>(data);
    canonical::<SignedConsensusMsg<DoinContext>>(data);
    canonical::<LivenessMsg<DoinContext>>(data);
    canonical::<StreamMessage<BlockPart>>(data);
    canonical::<ValidatorProof<DoinContext>>(data);
    canonical::<sync::Status<DoinContext>>(data);
    canonical::<sync::Request<DoinContext>>(data);
    canonical::<sync::Response<DoinContext>>(data);
    canonical::<ProposedValue<DoinContext>>(data);
    canonical::<PolkaCertificate<DoinContext>>(data);
});
