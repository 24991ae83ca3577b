//! What ties a keygen or resharing to an L1 election, and what a node says about L1 in its
//! status (l1-spec §3.5.2, §3.7.3).
//!
//! The manager only names the election; every node checks round, committee, threshold,
//! deadline and bans against its own L1 view before it answers ready, so these types carry
//! references, never authority.

use serde::{Deserialize, Serialize};

use crate::{Address, Bytes32};

/// The L1 election a keygen or resharing claims to carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionRef {
    /// The group manager's round id (`getTssInactiveGroupInfo().0`).
    pub round: u64,
    /// L1 chain id; a node following another chain refuses.
    pub l1_chain_id: u64,
    /// `CohortGroupManager` address; a node following another contract refuses.
    pub group_manager: Address,
}

/// How to reach one member over libp2p, as the manager learnt it from the member's `Hello`.
///
/// The manager is trusted only for reachability: the peer id is self-certifying (a secp256k1
/// PeerId of the node key) and the node checks it against the address L1 lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The member's address.
    pub address: Address,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Multiaddrs it listens on.
    pub multiaddrs: Vec<String>,
}

/// A node's own `setGroupPublicKey` transaction for an election.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionTx {
    /// Election round.
    pub round: u64,
    /// Hash of the latest transaction sent (bumped resends change it).
    pub tx_hash: Bytes32,
    /// `pending`, `mined`, `confirmed`, `reverted` or `skipped` (already submitted on L1).
    pub status: String,
}

/// What a node in L1 mode reports about its L1 view in `NodeMsg::Status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeL1Status {
    /// L1 chain id the node follows.
    pub chain_id: u64,
    /// Latest L1 head the node saw.
    pub head: u64,
    /// Highest confirmed block whose events the node applied.
    pub scanned_height: u64,
    /// Active round in the node's view (0 when none).
    pub round: u64,
    /// The node key's ETH balance in wei, decimal.
    pub eth_balance: String,
    /// The node's last election transaction, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_tx: Option<ElectionTx>,
}
