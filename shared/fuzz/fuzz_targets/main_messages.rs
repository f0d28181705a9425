//! Main-chain messages from gossip or clients (domain registrations, commits, reveals, votes):
//! decoding and signature checking never panic; what decodes re-encodes to the same bytes.
#![no_main]
use doin_codec::{decode_exact_bounded, encode};
use doin_main_core::{SignedCommit, SignedRegister, SignedReveal, SignedVote};
use doin_types::{ChainId, Hash256};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64 * 1024;

fn check<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize,
    T: Verify,
{
    if let Ok(msg) = decode_exact_bounded::<T>(data, MAX) {
        assert_eq!(encode(&msg).ok().as_deref(), Some(data));
        msg.verify_with(&ChainId(Hash256([9; 32])));
    }
}

trait Verify {
    fn verify_with(&self, chain_id: &ChainId);
}

macro_rules! verify {
    ($($t:ty),*) => {$(
        impl Verify for $t {
            fn verify_with(&self, chain_id: &ChainId) {
                let _ = self.verify(chain_id);
            }
        }
    )*};
}
verify!(SignedCommit, SignedRegister, SignedReveal, SignedVote);

fuzz_target!(|data: &[u8]| {
    check::<SignedCommit>(data);
    check::<SignedReveal>(data);
    check::<SignedVote>(data);
    check::<SignedRegister>(data);
    if let Ok(reveal) = decode_exact_bounded::<SignedReveal>(data, MAX) {
        let _ = reveal.body.commitment();
        let _ = reveal.body.optimae_id();
    }
});
