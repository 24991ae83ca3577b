//! Node ↔ node frame: the protocol message bytes plus whether the sender broadcast it, which
//! the round-based protocols need to know. The session id and the sender come from the p2p
//! transport, never from this frame.

/// How the sender addressed the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// Sent to every party of the session.
    Broadcast,
    /// Sent to this party only.
    P2P,
}

/// One protocol message between nodes: `kind (1 byte) ‖ payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFrame {
    /// Broadcast or point-to-point.
    pub kind: PeerKind,
    /// The engine's message bytes.
    pub payload: Vec<u8>,
}

impl PeerFrame {
    /// Wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 1);
        out.push(match self.kind {
            PeerKind::Broadcast => 1,
            PeerKind::P2P => 2,
        });
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses the wire form.
    pub fn decode(mut bytes: Vec<u8>) -> Result<Self, crate::WireError> {
        let kind = match bytes.first() {
            Some(1) => PeerKind::Broadcast,
            Some(2) => PeerKind::P2P,
            Some(k) => {
                return Err(crate::WireError::Malformed(format!(
                    "unknown frame kind {k}"
                )));
            }
            None => return Err(crate::WireError::Malformed("empty frame".into())),
        };
        bytes.remove(0);
        Ok(PeerFrame {
            kind,
            payload: bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let f = PeerFrame {
            kind: PeerKind::P2P,
            payload: vec![1, 2, 3],
        };
        assert_eq!(PeerFrame::decode(f.encode()).unwrap(), f);
        assert!(PeerFrame::decode(vec![]).is_err());
        assert!(PeerFrame::decode(vec![7, 1]).is_err());
    }
}
