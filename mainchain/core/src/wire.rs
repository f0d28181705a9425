//! The main chain's peer-to-peer sync messages: requests and their answers. (Gossip payloads
//! are a block's canonical bytes and the signed messages of [`crate::msg`].)
//!
//! Pure data: decoded by the node with a bound and no trailing bytes, and every answer checked
//! against what was asked, never trusted.

use crate::{MainBlock, SignedMainHeader};
use doin_types::{ChainId, Hash256};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MainSyncRequest {
    Status,
    Blocks {
        from: u64,
        max: u32,
    },
    /// Consecutive signed headers from `from` (headers-first sync).
    Headers {
        from: u64,
        max: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainStatus {
    pub chain_id: ChainId,
    pub height: u64,
    pub tip: Hash256,
    /// Cumulative counted work of the tip: what fork choice compares.
    pub cumulative_work: u128,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MainSyncResponse {
    Status(MainStatus),
    Blocks(Vec<MainBlock>),
    Headers(Vec<SignedMainHeader>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use doin_codec::{decode_exact_bounded, encode};

    #[test]
    fn messages_round_trip_and_trailing_bytes_are_refused() {
        for req in [
            MainSyncRequest::Status,
            MainSyncRequest::Blocks { from: 3, max: 32 },
            MainSyncRequest::Headers { from: 9, max: 256 },
        ] {
            let mut bytes = encode(&req).unwrap();
            assert_eq!(
                decode_exact_bounded::<MainSyncRequest>(&bytes, 1024).unwrap(),
                req
            );
            bytes.push(0);
            assert!(decode_exact_bounded::<MainSyncRequest>(&bytes, 1024).is_err());
        }
        let status = MainSyncResponse::Status(MainStatus {
            chain_id: ChainId(Hash256([1; 32])),
            height: 4,
            tip: Hash256([2; 32]),
            cumulative_work: 1 << 70,
        });
        let bytes = encode(&status).unwrap();
        assert_eq!(
            decode_exact_bounded::<MainSyncResponse>(&bytes, 1 << 20).unwrap(),
            status
        );
        assert!(decode_exact_bounded::<MainSyncResponse>(&bytes, bytes.len() - 1).is_err());
    }
}
