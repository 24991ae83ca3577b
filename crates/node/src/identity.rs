//! The node's one secp256k1 key: its Ethereum address (its name), its libp2p peer id, and the
//! signature that authenticates its WebSocket to a manager.

use cohort_wire::Address;
use k256::ecdsa::SigningKey;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::NodeError;

/// The node key, held only in memory (zeroized on drop) and in the encrypted store.
pub struct NodeIdentity {
    secret: Zeroizing<[u8; 32]>,
    address: Address,
}

impl NodeIdentity {
    /// Loads a key from its 32 secret bytes.
    pub fn from_secret(secret: Zeroizing<[u8; 32]>) -> Result<Self, NodeError> {
        let sk = SigningKey::from_slice(&secret[..]).map_err(|_| {
            NodeError::Identity("stored node key is not a valid secp256k1 key".into())
        })?;
        let address = address_of(&sk);
        Ok(NodeIdentity { secret, address })
    }

    /// A fresh random key.
    pub fn generate() -> Zeroizing<[u8; 32]> {
        let sk = SigningKey::random(&mut rand::rngs::OsRng);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&sk.to_bytes());
        out
    }

    /// The node's Ethereum address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The secret bytes, for the p2p host's identity.
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        self.secret.clone()
    }

    /// Ethereum-style 65-byte r‖s‖v signature over a 32-byte digest.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 65], NodeError> {
        let sk = SigningKey::from_slice(&self.secret[..])
            .map_err(|_| NodeError::Identity("node key unusable".into()))?;
        let (sig, recid) = sk
            .sign_prehash_recoverable(digest)
            .map_err(|_| NodeError::Identity("signing failed".into()))?;
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        Ok(out)
    }
}

fn address_of(sk: &SigningKey) -> Address {
    let pk = sk.verifying_key().to_encoded_point(false);
    let h = Keccak256::digest(&pk.as_bytes()[1..]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h[12..]);
    Address(a)
}
