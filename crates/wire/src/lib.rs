//! Messages between Cohort's manager and its nodes (JSON text frames over WebSocket) and the
//! frame nodes wrap protocol messages in on the p2p transport.
//!
//! Every manager ↔ node frame is a [`Frame`] with a protocol version; decoding is bounded
//! ([`MAX_FRAME_BYTES`]) and a frame that does not decode gets a typed [`WireError`] instead of
//! a panic. Addresses and ids travel as `0x`-hex strings.

#![forbid(unsafe_code)]

mod ack;
mod committee;
mod election;
mod hex_types;
mod key_id;
mod messages;
mod op;
mod peer;

pub use ack::{ReshareAck, reshare_ack_digest};
pub use committee::{Committee, CommitteeError};
pub use election::{ElectionRef, ElectionTx, NodeL1Status, PeerInfo};
pub use hex_types::{Address, Bytes32, HexBytes};
pub use key_id::{KeyId, KeyIdError};
pub use messages::*;
pub use op::{OpKind, OpOutcome};
pub use peer::{PeerFrame, PeerKind};

/// Version of the manager ↔ node protocol; a frame of another version is refused.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest manager ↔ node frame accepted. The bulkiest frames are a state batch's
/// `KeySignPrepare` and `KeySignStart`, which carry every root: 1 MiB holds
/// [`MAX_FRAME_STATE_ROOTS`] of them, above Mantle's batches (up to 3001 roots by default).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Bytes one state root takes in a frame: `"0x` + 64 hex digits + `",`.
pub const FRAME_BYTES_PER_ROOT: usize = 69;

/// Room a batch frame needs besides its roots (ids, digest, key id, signer list).
pub const FRAME_OVERHEAD_BYTES: usize = 16 * 1024;

/// Most state roots one manager ↔ node frame can carry: the ceiling of every configurable
/// batch limit (a manager refuses a `max_state_roots` above it at start).
pub const MAX_FRAME_STATE_ROOTS: usize =
    (MAX_FRAME_BYTES - FRAME_OVERHEAD_BYTES) / FRAME_BYTES_PER_ROOT;

// A frame carries the managers' default batch limit (8192 roots).
const _: () = assert!(MAX_FRAME_STATE_ROOTS >= 8192);

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON of a known message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Another protocol version.
    #[error("protocol version {0} is not supported (this build speaks {PROTOCOL_VERSION})")]
    Version(u16),
}

/// Decodes one manager ↔ node frame, enforcing size and version.
pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<Frame<T>, WireError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(text.len()));
    }
    let frame: Frame<T> =
        serde_json::from_str(text).map_err(|e| WireError::Malformed(e.to_string()))?;
    if frame.v != PROTOCOL_VERSION {
        return Err(WireError::Version(frame.v));
    }
    Ok(frame)
}

/// Encodes one frame of the current version.
pub fn encode<T: serde::Serialize>(msg: T) -> String {
    // Our message types contain only strings, numbers and vectors: serialization cannot fail.
    serde_json::to_string(&Frame {
        v: PROTOCOL_VERSION,
        msg,
    })
    .unwrap_or_else(|e| format!("{{\"v\":0,\"encode_error\":\"{e}\"}}"))
}

/// A versioned frame.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Frame<T> {
    /// Protocol version.
    pub v: u16,
    /// The message.
    #[serde(flatten)]
    pub msg: T,
}

/// Domain tag of the node's half of the link authentication.
pub const NODE_AUTH_TAG: &[u8] = b"cohort/ws-auth/node/v2";
/// Domain tag of the manager's half of the link authentication.
pub const MANAGER_AUTH_TAG: &[u8] = b"cohort/ws-auth/manager/v2";

fn link_digest(
    tag: &[u8],
    manager: &Address,
    manager_nonce: &Bytes32,
    node_nonce: &Bytes32,
    node: &Address,
) -> [u8; 32] {
    use sha3::{Digest, Keccak256};
    let mut h = Keccak256::new();
    h.update(tag);
    h.update(manager.0);
    h.update(manager_nonce.0);
    h.update(node_nonce.0);
    h.update(node.0);
    h.finalize().into()
}

/// The bytes a node signs to authenticate its WebSocket: the address it PINNED for the
/// manager's URL, both nonces and its own address, under a domain tag. A manager checks it
/// with its own address, so a challenge relayed from another manager fails there.
pub fn node_auth_digest(
    pinned_manager: &Address,
    manager_nonce: &Bytes32,
    node_nonce: &Bytes32,
    node: &Address,
) -> [u8; 32] {
    link_digest(
        NODE_AUTH_TAG,
        pinned_manager,
        manager_nonce,
        node_nonce,
        node,
    )
}

/// The bytes a manager signs in its welcome to prove its identity key to the node: both
/// nonces and both identities, under a tag of its own (no node signature can pass for it).
pub fn manager_auth_digest(
    manager: &Address,
    manager_nonce: &Bytes32,
    node_nonce: &Bytes32,
    node: &Address,
) -> [u8; 32] {
    link_digest(MANAGER_AUTH_TAG, manager, manager_nonce, node_nonce, node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refusals() {
        let msg = ManagerMsg::KeySignCancel {
            session_id: Bytes32([3; 32]),
        };
        let text = encode(msg.clone());
        let back: Frame<ManagerMsg> = decode(&text).unwrap();
        assert_eq!(back.msg, msg);

        assert!(matches!(
            decode::<ManagerMsg>("{not json"),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ManagerMsg>(&text.replace("\"v\":1", "\"v\":9")),
            Err(WireError::Version(9))
        ));
        let huge = format!("{{\"v\":1,\"pad\":\"{}\"}}", "x".repeat(MAX_FRAME_BYTES));
        assert!(matches!(
            decode::<ManagerMsg>(&huge),
            Err(WireError::TooLarge(_))
        ));
        assert!(matches!(
            decode::<ManagerMsg>("{\"v\":1,\"type\":\"NoSuchThing\"}"),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn a_batch_of_the_frame_ceiling_fits_a_frame() {
        let roots = vec![Bytes32([0xab; 32]); MAX_FRAME_STATE_ROOTS];
        let ctx = SignContext::StateBatch {
            start_block: u64::MAX,
            offset_starts_at_index: u64::MAX - 1,
            state_roots: roots,
        };
        let msg = ManagerMsg::KeySignStart {
            session_id: Bytes32([1; 32]),
            key_id: KeyId::new("k".repeat(128)).unwrap(),
            digest: Bytes32([2; 32]),
            context: ctx,
            signers: vec![Address([3; 20]); 64],
            presignature: Some(Bytes32([4; 32])),
        };
        let text = encode(msg.clone());
        assert!(text.len() <= MAX_FRAME_BYTES, "{}", text.len());
        assert_eq!(decode::<ManagerMsg>(&text).unwrap().msg, msg);
    }

    #[test]
    fn auth_digests_bind_every_field_and_their_side() {
        let (m, n1, n2, a) = (
            Address([1; 20]),
            Bytes32([2; 32]),
            Bytes32([3; 32]),
            Address([4; 20]),
        );
        let d = node_auth_digest(&m, &n1, &n2, &a);
        assert_ne!(d, node_auth_digest(&Address([9; 20]), &n1, &n2, &a));
        assert_ne!(d, node_auth_digest(&m, &Bytes32([9; 32]), &n2, &a));
        assert_ne!(d, node_auth_digest(&m, &n1, &Bytes32([9; 32]), &a));
        assert_ne!(d, node_auth_digest(&m, &n1, &n2, &Address([9; 20])));
        // Swapping the nonces, or the side, gives another digest.
        assert_ne!(d, node_auth_digest(&m, &n2, &n1, &a));
        assert_ne!(d, manager_auth_digest(&m, &n1, &n2, &a));
    }
}
