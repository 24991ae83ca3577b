//! What Cohort signs for a rollup, and how a node checks it: Mantle-compatible state-batch and
//! rollback digests (ABI-encoded with alloy, never by hand), the batch request as Mantle's
//! batch submitter sends it, and the look-up of each block's state root on the node's own L2
//! full node.

#![forbid(unsafe_code)]

mod batch;
mod l2;
mod request;

pub use batch::{BatchError, check_batch};
pub use l2::{L2Client, L2Error, L2Settings, RootCheck};
pub use request::{StateBatchRequest, flexible_u64, is_go_encoded};

use alloy_primitives::{B256, U256, keccak256};
use alloy_sol_types::SolValue;

/// Most roots a batch request may carry before it is even parsed: a bound on the decoder's
/// work. What a deployment accepts is the manager's `max_state_roots` (default
/// [`DEFAULT_MAX_STATE_ROOTS`]), itself at most what one manager ↔ node frame carries.
pub const MAX_STATE_ROOTS: usize = 16_384;

/// The manager's default `max_state_roots`: Mantle's batch submitter builds batches of up to
/// `MAX_STATE_ROOT_ELEMENTS` (3000 by default) + 1 roots, and operators raise that setting.
pub const DEFAULT_MAX_STATE_ROOTS: usize = 8192;

/// `keccak256(abi.encode(bytes32[] state_roots, uint256 offset_starts_at_index))` — the digest
/// Mantle's state-commitment chain verifies.
pub fn state_batch_digest(state_roots: &[[u8; 32]], offset_starts_at_index: u64) -> [u8; 32] {
    let roots: Vec<B256> = state_roots.iter().map(|r| B256::from(*r)).collect();
    let encoded = (roots, U256::from(offset_starts_at_index)).abi_encode_params();
    keccak256(encoded).0
}

/// `keccak256(abi.encode(uint256 start_block))` — what the nodes that disagree with a batch sign
/// to ask L1 for a rollback.
pub fn rollback_digest(start_block: u64) -> [u8; 32] {
    keccak256(U256::from(start_block).abi_encode()).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha3::{Digest, Keccak256};

    /// The ABI layout written out word by word, independently of alloy.
    fn by_hand(roots: &[[u8; 32]], offset: u64) -> [u8; 32] {
        let word = |v: u64| {
            let mut w = [0u8; 32];
            w[24..].copy_from_slice(&v.to_be_bytes());
            w
        };
        let mut buf = Vec::new();
        buf.extend_from_slice(&word(0x40)); // head: offset of the dynamic array
        buf.extend_from_slice(&word(offset)); // head: uint256
        buf.extend_from_slice(&word(roots.len() as u64)); // tail: length
        for r in roots {
            buf.extend_from_slice(r);
        }
        Keccak256::digest(&buf).into()
    }

    #[test]
    fn digests_match_the_abi_layout() {
        let roots = [[1u8; 32], [2u8; 32], [0xab; 32]];
        assert_eq!(state_batch_digest(&roots, 7), by_hand(&roots, 7));
        assert_eq!(state_batch_digest(&[], 0), by_hand(&[], 0));
        assert_ne!(state_batch_digest(&roots, 7), state_batch_digest(&roots, 8));
        let mut w = [0u8; 32];
        w[24..].copy_from_slice(&1234u64.to_be_bytes());
        assert_eq!(
            rollback_digest(1234),
            <[u8; 32]>::from(Keccak256::digest(w))
        );
    }
}
