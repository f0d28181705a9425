//! Gossip topics and request services, and the size each may carry.

/// A gossip topic. Names carry the network, so devnet and mainnet traffic never mix even when
/// peers find each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Signed transfer-chain transactions.
    TxTransactions,
    /// Compact transfer blocks: header, signature and short transaction ids.
    TxCompactBlocks,
    /// Transfer-chain consensus messages (proposals and votes).
    TxConsensus,
    /// Main-chain blocks.
    MainBlocks,
    /// Main-chain work: optimae commits, reveals and evaluator votes.
    MainWork,
}

impl Topic {
    pub const ALL: [Topic; 5] = [
        Topic::TxTransactions,
        Topic::TxCompactBlocks,
        Topic::TxConsensus,
        Topic::MainBlocks,
        Topic::MainWork,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Topic::TxTransactions => "tx/transactions",
            Topic::TxCompactBlocks => "tx/compact-blocks",
            Topic::TxConsensus => "tx/consensus",
            Topic::MainBlocks => "main/blocks",
            Topic::MainWork => "main/work",
        }
    }

    /// The topic's name on `network`, e.g. `/doin/devnet/tx/transactions/1`.
    pub fn name(self, network: &str) -> String {
        format!("/doin/{network}/{}/1", self.suffix())
    }

    /// Largest message accepted on the topic. Larger ones cost the forwarding peer score.
    pub fn max_bytes(self) -> usize {
        match self {
            // One transaction is at most a few hundred bytes; leave room for payload growth.
            Topic::TxTransactions => 16 * 1024,
            Topic::TxCompactBlocks => 512 * 1024,
            Topic::TxConsensus => 64 * 1024,
            Topic::MainBlocks => 4 * 1024 * 1024,
            Topic::MainWork => 256 * 1024,
        }
    }

    /// The topic's gossip mesh: how many peers each node forwards every message to.
    ///
    /// Each message crosses about `target` links per node, so the mesh degree is what gossip
    /// costs in bandwidth; a wider mesh buys fewer hops and more paths. Transactions are most
    /// of the traffic and can wait a heartbeat for lazy repair (peers outside the mesh are told
    /// message ids and fetch what they miss), so their mesh is narrow. Blocks, consensus and
    /// main-chain work are few and decide how fast the chains move, so they keep the wide mesh
    /// of gossipsub's defaults.
    pub fn mesh(self) -> MeshDegree {
        match self {
            Topic::TxTransactions => MeshDegree {
                target: 3,
                low: 2,
                high: 4,
                outbound_min: 1,
            },
            Topic::TxCompactBlocks | Topic::TxConsensus | Topic::MainBlocks | Topic::MainWork => {
                MeshDegree {
                    target: 6,
                    low: 5,
                    high: 12,
                    outbound_min: 2,
                }
            }
        }
    }

    /// A short label for logs and metrics.
    pub fn label(self) -> &'static str {
        self.suffix()
    }
}

/// A gossip mesh's size: each node keeps between `low` and `high` mesh peers, trimming or
/// grafting back to `target` at each heartbeat, at least `outbound_min` of them peers it dialled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshDegree {
    pub target: usize,
    pub low: usize,
    pub high: usize,
    pub outbound_min: usize,
}

/// A request kind. All share one libp2p protocol; the first byte of a request names the
/// service, so adding a service never changes protocol negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// Transfer-chain sync: status, blocks by range, missing transactions of a compact block.
    TxSync,
    /// Main-chain sync: status, blocks by range.
    MainSync,
}

impl Service {
    pub fn tag(self) -> u8 {
        match self {
            Service::TxSync => 1,
            Service::MainSync => 2,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Service> {
        match tag {
            1 => Some(Service::TxSync),
            2 => Some(Service::MainSync),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Service::TxSync => "tx-sync",
            Service::MainSync => "main-sync",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_distinct_and_carry_the_network() {
        let names: std::collections::BTreeSet<String> =
            Topic::ALL.iter().map(|t| t.name("devnet")).collect();
        assert_eq!(names.len(), Topic::ALL.len());
        assert!(names.iter().all(|n| n.starts_with("/doin/devnet/")));
        assert_ne!(
            Topic::TxTransactions.name("devnet"),
            Topic::TxTransactions.name("testnet")
        );
    }

    #[test]
    fn every_mesh_is_one_gossipsub_accepts() {
        for t in Topic::ALL {
            let m = t.mesh();
            assert!(m.outbound_min <= m.low && m.low <= m.target && m.target <= m.high);
            assert!(m.outbound_min * 2 <= m.target, "{t:?}");
        }
    }

    #[test]
    fn service_tags_round_trip() {
        for s in [Service::TxSync, Service::MainSync] {
            assert_eq!(Service::from_tag(s.tag()), Some(s));
        }
        assert_eq!(Service::from_tag(0), None);
        assert_eq!(Service::from_tag(200), None);
    }
}
