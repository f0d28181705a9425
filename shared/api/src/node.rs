//! The node's own REST types: peers, sync progress (`/v1/node/...`) and cross-chain proofs
//! (`/v1/anchors/...`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PeersView {
    /// This node's peer id (give `<listen address>` to other nodes as a bootstrap peer).
    pub local_peer_id: String,
    /// Listen multiaddresses, each ending in `/p2p/<local_peer_id>`.
    pub listen_addresses: Vec<String>,
    /// Whether other peers can dial this node, and the relay it is reached through if not.
    pub reachability: ReachabilityView,
    pub peers: Vec<PeerEntry>,
}

/// What peers found when they tried to dial this node back (AutoNAT), and what the node
/// did about it (docs/network.md#nat-traversal).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReachabilityView {
    pub status: NatStatus,
    /// The address a peer dialled this node back at, when `public`.
    pub public_address: Option<String>,
    /// When `private`: the relay circuit address peers reach this node at (a reservation the
    /// relay accepted). A peer that connects through it upgrades to a direct connection by
    /// hole punching when both NATs allow it.
    pub relay_address: Option<String>,
    /// When `private` without a relay address: why, e.g. no connected peer offers relaying.
    pub problem: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NatStatus {
    /// Not probed yet, or no peer able to probe this node is connected.
    Unknown,
    /// Peers dialled this node back: it accepts inbound connections.
    Public,
    /// Peers could not dial it back: it is behind a NAT or a firewall.
    Private,
}

/// One open connection to a peer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionView {
    /// The peer's end: the address dialled, or where an inbound connection came from.
    pub remote_address: String,
    /// This node dialled.
    pub outbound: bool,
    /// Carried by a relay (`/p2p-circuit`) rather than direct.
    pub relayed: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PeerEntry {
    pub peer_id: String,
    /// 0 is a clean record; penalties lower it, time restores it; at -100 a peer is banned.
    pub score: i64,
    pub connected: bool,
    /// This node dialled the peer (outbound) rather than the other way round.
    pub outbound: bool,
    /// The open connections (at most two: a relayed one and its direct upgrade, or a
    /// dial each way).
    pub connections: Vec<ConnectionView>,
    /// Addresses the peer says it listens on.
    pub addresses: Vec<String>,
    /// Protocols the peer supports (from identify).
    pub protocols: Vec<String>,
    pub agent: Option<String>,
    /// Seconds left on the peer's ban, when banned.
    pub banned_for_secs: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncView {
    /// True while any networked chain is more than one block behind its best peer.
    pub syncing: bool,
    /// Where the node is: a warp sync's `peers`, `proof`, `snapshot` or `restore`, then
    /// `blocks` while any chain is behind its peers, else `following`.
    pub phase: SyncPhase,
    /// The warp sync this run made or makes (`[sync] mode = "warp"` on an empty data
    /// directory); absent otherwise.
    pub warp: Option<WarpView>,
    /// The transfer chain against its peers (absent when it is not run or not networked).
    pub tx: Option<SyncReport>,
    /// The main chain against its peers (absent when it is not run or not networked).
    pub main: Option<SyncReport>,
}

/// Where a node's sync is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Warp sync: waiting for a peer that offers a snapshot.
    Peers,
    /// Warp sync: fetching and checking the finality proof of the snapshot's block.
    Proof,
    /// Warp sync: fetching the state's chunks, each checked on arrival.
    Snapshot,
    /// Warp sync: restoring the state tree and checking its root.
    Restore,
    /// Fetching blocks the node is missing.
    Blocks,
    /// At the tip, importing blocks as they come.
    Following,
}

/// A warp sync's progress: the snapshot's height and how much of its state is in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WarpView {
    /// Height of the snapshot, once chosen.
    pub height: Option<u64>,
    pub chunks_done: u64,
    pub chunks_total: u64,
    /// Chunks a previous run had already fetched and checked (kept, not fetched again).
    pub chunks_resumed: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Peers serving the chosen snapshot.
    pub peers: u64,
    /// Seconds left at this run's rate, once it can be told.
    pub eta_secs: Option<u64>,
    /// True once the state is restored and checked.
    pub finished: bool,
}

/// A main block's anchoring proof. Only `proof` is evidence; the rest restates it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MainAnchorProofView {
    /// `doin-main-anchor/2`.
    pub format: String,
    pub main_height: u64,
    pub main_hash: String,
    /// `final` (anchored by a final transfer block and at least 2 deep) or `included`.
    pub status: String,
    /// The transfer block that anchors it.
    pub tx_height: u64,
    pub tx_block_hash: String,
    /// Hex of the encoded proof: the main headers from `main_height` up to the one the
    /// transfer header anchors, the transfer header and its finality proof (commit
    /// certificate and one epoch hop per earlier epoch).
    pub proof: String,
}

/// A transfer block's checkpoint leg. Only `proof` is evidence.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointProofView {
    /// `doin-tx-checkpoint/1`.
    pub format: String,
    pub tx_height: u64,
    /// The first main block whose `tx_checkpoint` covers the transfer block.
    pub main_height: u64,
    pub main_hash: String,
    /// Hex of the encoded leg: the transfer headers from `tx_height` up to the checkpointed
    /// one and the main header that names it.
    pub proof: String,
}

/// Where this node's sync of one chain stands, for its operators (`/v1/node/sync`).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct SyncReport {
    /// True while a peer is more than one block ahead.
    pub syncing: bool,
    pub local_height: u64,
    /// Highest tip a peer on this chain reported.
    pub best_peer_height: Option<u64>,
    /// Highest header fetched and checked ahead of its block.
    pub verified_header_height: u64,
    /// Peers on this chain that answered the last status round.
    pub peers_on_chain: usize,
    /// Peers of the last status round left out because they pruned the blocks this node needs
    /// next (it needs an archive or `full` peer with a long enough window).
    pub peers_pruned_past_us: usize,
    /// Signed headers fetched and checked since start.
    pub headers_synced: u64,
    /// Blocks fetched by range and imported since start.
    pub blocks_synced: u64,
    /// `local_height / best_peer_height` in percent (100 when level or ahead).
    pub progress_percent: u8,
}
