//! Wire form of protocol messages: `version (1 byte) ‖ session tag (32 bytes) ‖ CBOR body`.
//!
//! CBOR (ciborium) is the binary serde format cggmp21 recommends for its types. The session tag
//! is the run's [`SessionBinding::digest`](crate::SessionBinding::digest): a message from any
//! other run is refused before its body is even parsed.

use serde::{Serialize, de::DeserializeOwned};

/// Current wire version of engine messages.
pub const WIRE_VERSION: u8 = 1;

/// Largest engine message accepted. The biggest real message (aux-info proofs at n = 16) is far
/// below this; anything larger is an attack or a bug.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

const HEADER: usize = 1 + 32;

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Too short to hold the header.
    #[error("message shorter than its header")]
    Truncated,
    /// A wire version this build does not speak.
    #[error("unknown wire version {0}")]
    Version(u8),
    /// Tagged for another session.
    #[error("message belongs to another session")]
    WrongSession,
    /// The body does not decode as this protocol's message.
    #[error("body does not decode: {0}")]
    Body(String),
}

/// Encodes `msg` for the session tagged `tag`.
pub fn encode<T: Serialize>(tag: &[u8; 32], msg: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    out.push(WIRE_VERSION);
    out.extend_from_slice(tag);
    ciborium::into_writer(msg, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Decodes a message that must belong to the session tagged `tag`.
pub fn decode<T: DeserializeOwned>(tag: &[u8; 32], bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER {
        return Err(DecodeError::Truncated);
    }
    if bytes[0] != WIRE_VERSION {
        return Err(DecodeError::Version(bytes[0]));
    }
    if &bytes[1..HEADER] != tag {
        return Err(DecodeError::WrongSession);
    }
    ciborium::from_reader(&bytes[HEADER..]).map_err(|e| DecodeError::Body(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let tag = [7u8; 32];
        let bytes = encode(&tag, &(1u32, "x".to_string())).unwrap();
        let back: (u32, String) = decode(&tag, &bytes).unwrap();
        assert_eq!(back, (1, "x".into()));
        assert!(matches!(
            decode::<(u32, String)>(&[8u8; 32], &bytes),
            Err(DecodeError::WrongSession)
        ));
        assert!(matches!(
            decode::<(u32, String)>(&tag, &bytes[..10]),
            Err(DecodeError::Truncated)
        ));
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(matches!(
            decode::<(u32, String)>(&tag, &bad),
            Err(DecodeError::Version(9))
        ));
        let mut garbage = bytes[..HEADER].to_vec();
        garbage.extend_from_slice(&[0xff, 0x00, 0x13]);
        assert!(matches!(
            decode::<(u32, String)>(&tag, &garbage),
            Err(DecodeError::Body(_))
        ));
        let huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            decode::<(u32, String)>(&tag, &huge),
            Err(DecodeError::TooLarge(_))
        ));
    }
}
