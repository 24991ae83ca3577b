//! The pure rules of a state batch, checked by every node before it compares a single root with
//! its own L2 node: the batch has 1..=[`MAX_STATE_ROOTS`] roots, its `start_block` is the L2
//! block of its `offset_starts_at_index` (`start_block == offset + l2_block_offset`), and the
//! digest the manager asks to sign is [`state_batch_digest`] of exactly these roots and offset.
//! Kept beside the digest so the rule and the encoding it protects are read together.

use crate::{MAX_STATE_ROOTS, state_batch_digest};

/// Why a state batch is refused before any L2 look-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// No roots, or more than [`MAX_STATE_ROOTS`].
    #[error("state batch size out of range")]
    Size,
    /// `start_block` is not the L2 block of `offset_starts_at_index`.
    #[error(
        "start_block {start_block} does not belong to offset_starts_at_index {offset}: \
         this node expects start_block = offset_starts_at_index + {l2_block_offset}"
    )]
    StartBlock {
        /// The batch's start block.
        start_block: u64,
        /// The batch's offset.
        offset: u64,
        /// This node's configured L2 block offset.
        l2_block_offset: u64,
    },
    /// The digest is not the batch's digest.
    #[error("digest is not the state batch's digest")]
    Digest,
}

/// Checks the pure rules of a state batch (see the module doc) for signing `digest`.
pub fn check_batch(
    digest: &[u8; 32],
    start_block: u64,
    offset: u64,
    roots: &[[u8; 32]],
    l2_block_offset: u64,
) -> Result<(), BatchError> {
    if roots.is_empty() || roots.len() > MAX_STATE_ROOTS {
        return Err(BatchError::Size);
    }
    if offset.checked_add(l2_block_offset) != Some(start_block) {
        return Err(BatchError::StartBlock {
            start_block,
            offset,
            l2_block_offset,
        });
    }
    if state_batch_digest(roots, offset) != *digest {
        return Err(BatchError::Digest);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_batch_passes() {
        let roots = [[1u8; 32], [2u8; 32]];
        let d = state_batch_digest(&roots, 10);
        assert_eq!(check_batch(&d, 15, 10, &roots, 5), Ok(()));
    }

    #[test]
    fn size_start_block_and_digest_are_each_refused() {
        let roots = [[1u8; 32]];
        let d = state_batch_digest(&roots, 10);
        assert_eq!(check_batch(&d, 10, 10, &[], 0), Err(BatchError::Size));
        let many = vec![[0u8; 32]; MAX_STATE_ROOTS + 1];
        assert_eq!(check_batch(&d, 10, 10, &many, 0), Err(BatchError::Size));
        let e = check_batch(&d, 11, 10, &roots, 0).unwrap_err();
        assert!(matches!(
            e,
            BatchError::StartBlock {
                start_block: 11,
                ..
            }
        ));
        assert!(e.to_string().contains("offset_starts_at_index + 0"));
        assert_eq!(
            check_batch(&d, u64::MAX, u64::MAX, &roots, 1),
            Err(BatchError::StartBlock {
                start_block: u64::MAX,
                offset: u64::MAX,
                l2_block_offset: 1
            })
        );
        assert_eq!(
            check_batch(&[0u8; 32], 10, 10, &roots, 0),
            Err(BatchError::Digest)
        );
        // Another offset is another digest.
        assert_eq!(check_batch(&d, 11, 11, &roots, 0), Err(BatchError::Digest));
    }
}
