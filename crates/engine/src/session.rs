//! Session binding: what makes one protocol run distinct from every other.
//!
//! A run is bound to its 32-byte session id, the operation, the key id, the ordered party list and
//! the operation's parameters (threshold, digest, resharing plan…). All of them are hashed with a
//! domain tag into one digest, which becomes cggmp21's `ExecutionId` and tags every message, so a
//! message recorded in one run is refused by any other.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};

use crate::error::EngineError;

/// A party's name: its node's Ethereum address, the identity used everywhere in Cohort.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartyId(pub [u8; 20]);

impl PartyId {
    /// Lower-case 0x-hex, as addresses appear in logs and errors.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for PartyId {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let h = s.strip_prefix("0x").unwrap_or(s);
        let mut out = [0u8; 20];
        hex::decode_to_slice(h, &mut out)
            .map_err(|_| EngineError::InvalidInput(format!("not a 20-byte hex address: {s:?}")))?;
        Ok(PartyId(out))
    }
}

/// The kinds of protocol run; part of the binding so that, say, keygen messages can never be fed
/// to a signing run of the same session id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Distributed key generation.
    Keygen,
    /// Paillier aux-info generation for a committee.
    AuxInfo,
    /// Full interactive signing of one digest.
    Sign,
    /// Presignature generation for a signer set.
    Presign,
    /// Resharing to a new committee and/or threshold.
    Reshare,
    /// Resharing to the same committee and threshold.
    Refresh,
}

impl Operation {
    fn tag(self) -> u8 {
        match self {
            Operation::Keygen => 1,
            Operation::AuxInfo => 2,
            Operation::Sign => 3,
            Operation::Presign => 4,
            Operation::Reshare => 5,
            Operation::Refresh => 6,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Operation::Keygen => "keygen",
            Operation::AuxInfo => "aux-info",
            Operation::Sign => "sign",
            Operation::Presign => "presign",
            Operation::Reshare => "reshare",
            Operation::Refresh => "refresh",
        };
        f.write_str(s)
    }
}

/// Everything a run is bound to. Build it identically on every party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionBinding {
    session_id: [u8; 32],
    operation: Operation,
    key_id: String,
    parties: Vec<PartyId>,
    params: Vec<u8>,
    digest: [u8; 32],
}

/// Largest committee the engine accepts; cggmp21 indexes parties with u16, we stay far below.
pub const MAX_PARTIES: usize = 256;

impl SessionBinding {
    /// Binds a run. `parties` is the ordered list of protocol participants (index = position);
    /// `params` is the operation's own public parameters, encoded by the caller.
    pub fn new(
        session_id: [u8; 32],
        operation: Operation,
        key_id: &str,
        parties: Vec<PartyId>,
        params: &[u8],
    ) -> Result<Self, EngineError> {
        if parties.len() < 2 || parties.len() > MAX_PARTIES {
            return Err(EngineError::InvalidInput(format!(
                "a run needs 2..={MAX_PARTIES} parties, got {}",
                parties.len()
            )));
        }
        let mut sorted = parties.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != parties.len() {
            return Err(EngineError::InvalidInput(
                "party list has duplicates".into(),
            ));
        }
        let mut h = Sha3_256::new();
        h.update(b"cohort/session-binding/v1");
        h.update(session_id);
        h.update([operation.tag()]);
        h.update((key_id.len() as u64).to_be_bytes());
        h.update(key_id.as_bytes());
        h.update((parties.len() as u64).to_be_bytes());
        for p in &parties {
            h.update(p.0);
        }
        h.update((params.len() as u64).to_be_bytes());
        h.update(params);
        let digest: [u8; 32] = h.finalize().into();
        Ok(Self {
            session_id,
            operation,
            key_id: key_id.to_owned(),
            parties,
            params: params.to_vec(),
            digest,
        })
    }

    /// The session id chosen by the coordinator.
    pub fn session_id(&self) -> [u8; 32] {
        self.session_id
    }

    /// The operation of this run.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The key this run is about.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Ordered participants; a party's protocol index is its position here.
    pub fn parties(&self) -> &[PartyId] {
        &self.parties
    }

    /// Number of participants, as cggmp21 wants it.
    pub fn n(&self) -> u16 {
        // MAX_PARTIES keeps this in range.
        self.parties.len() as u16
    }

    /// The digest every message of this run is tagged with.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Protocol index of `me`, or an error if `me` is not a participant.
    pub fn index_of(&self, me: &PartyId) -> Result<u16, EngineError> {
        self.parties
            .iter()
            .position(|p| p == me)
            .map(|i| i as u16)
            .ok_or_else(|| EngineError::InvalidInput(format!("{me} is not a party of this run")))
    }

    /// Names the parties behind protocol indices (unknown indices are skipped).
    pub fn names(&self, indices: &[u16]) -> Vec<PartyId> {
        indices
            .iter()
            .filter_map(|&i| self.parties.get(usize::from(i)).copied())
            .collect()
    }

    pub(crate) fn execution_id(&self) -> cggmp21::ExecutionId<'_> {
        cggmp21::ExecutionId::new(&self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(b: u8) -> PartyId {
        PartyId([b; 20])
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = SessionBinding::new([1; 32], Operation::Sign, "k", vec![p(1), p(2)], b"x")
            .unwrap()
            .digest();
        let variants = [
            SessionBinding::new([2; 32], Operation::Sign, "k", vec![p(1), p(2)], b"x"),
            SessionBinding::new([1; 32], Operation::Presign, "k", vec![p(1), p(2)], b"x"),
            SessionBinding::new([1; 32], Operation::Sign, "k2", vec![p(1), p(2)], b"x"),
            SessionBinding::new([1; 32], Operation::Sign, "k", vec![p(2), p(1)], b"x"),
            SessionBinding::new([1; 32], Operation::Sign, "k", vec![p(1), p(2)], b"y"),
        ];
        for v in variants {
            assert_ne!(v.unwrap().digest(), base);
        }
    }

    #[test]
    fn rejects_duplicates_and_tiny_committees() {
        assert!(SessionBinding::new([0; 32], Operation::Keygen, "k", vec![p(1)], b"").is_err());
        assert!(
            SessionBinding::new([0; 32], Operation::Keygen, "k", vec![p(1), p(1)], b"").is_err()
        );
    }

    #[test]
    fn party_id_parses_and_prints() {
        let id: PartyId = "0x0101010101010101010101010101010101010101"
            .parse()
            .unwrap();
        assert_eq!(id, p(1));
        assert_eq!(id.to_string(), "0x0101010101010101010101010101010101010101");
        assert!("0x01".parse::<PartyId>().is_err());
    }
}
