//! Ethereum-facing forms: uncompressed public keys, addresses, and 65-byte `r‖s‖v` signatures.
//!
//! The recovery id `v` is found with `k256` public-key recovery, independently of cggmp21, so a
//! signature leaves the engine only once ordinary Ethereum tooling would accept it.

use std::fmt;

use cggmp21::generic_ec::{NonZero, Point};
use k256::ecdsa::{RecoveryId, Signature as K256Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::Curve;
use crate::error::EngineError;

/// A key's public key (secp256k1), kept as the 33-byte compressed SEC1 form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey(#[serde(with = "hex_33")] [u8; 33]);

impl PublicKey {
    pub(crate) fn from_point(p: &NonZero<Point<Curve>>) -> Self {
        let bytes = p.to_bytes(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(&bytes);
        PublicKey(out)
    }

    pub(crate) fn to_point(self) -> Result<NonZero<Point<Curve>>, EngineError> {
        let p = Point::<Curve>::from_bytes(self.0)
            .map_err(|_| EngineError::InvalidShare("public key is not a curve point".into()))?;
        NonZero::from_point(p)
            .ok_or_else(|| EngineError::InvalidShare("public key is the identity".into()))
    }

    /// Parses any SEC1 encoding (33 or 65 bytes).
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, EngineError> {
        let vk = VerifyingKey::from_sec1_bytes(bytes)
            .map_err(|_| EngineError::InvalidInput("not a secp256k1 public key".into()))?;
        let enc = vk.to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(enc.as_bytes());
        Ok(PublicKey(out))
    }

    /// Compressed SEC1 bytes.
    pub fn compressed(&self) -> [u8; 33] {
        self.0
    }

    /// Uncompressed SEC1 bytes `0x04 ‖ x ‖ y`, the form Ethereum tools print.
    pub fn uncompressed(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        if let Ok(vk) = VerifyingKey::from_sec1_bytes(&self.0) {
            out.copy_from_slice(vk.to_encoded_point(false).as_bytes());
        }
        out
    }

    /// The key's Ethereum address: the last 20 bytes of keccak256(x ‖ y).
    pub fn address(&self) -> [u8; 20] {
        address_of_uncompressed(&self.uncompressed())
    }

    /// The address in EIP-55 mixed-case checksum form.
    pub fn address_checksummed(&self) -> String {
        checksum_address(&self.address())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(0x{})", hex::encode(self.0))
    }
}

/// Ethereum address of an uncompressed SEC1 public key.
pub fn address_of_uncompressed(pk: &[u8; 65]) -> [u8; 20] {
    let h = Keccak256::digest(&pk[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&h[12..]);
    out
}

/// EIP-55 checksum form of an address.
pub fn checksum_address(addr: &[u8; 20]) -> String {
    let lower = hex::encode(addr);
    let h = Keccak256::digest(lower.as_bytes());
    let mut s = String::from("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (h[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            s.push(c.to_ascii_uppercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// A signature as Ethereum wants it: `r ‖ s ‖ v`, low-s, `v ∈ {27, 28}`.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthSignature(#[serde(with = "hex_65")] pub [u8; 65]);

impl EthSignature {
    /// Builds the 65-byte form from `(r, s)` over `digest`: normalises s to low-s and finds `v` by
    /// recovering the public key, which must equal `expected`.
    pub fn from_rs(
        r: [u8; 32],
        s: [u8; 32],
        digest: &[u8; 32],
        expected: &PublicKey,
    ) -> Result<Self, EngineError> {
        let sig = K256Signature::from_scalars(r, s).map_err(|_| EngineError::InvalidSignature)?;
        let sig = sig.normalize_s().unwrap_or(sig);
        for id in 0u8..2 {
            let Some(recid) = RecoveryId::from_byte(id) else {
                continue;
            };
            if let Ok(vk) = VerifyingKey::recover_from_prehash(digest, &sig, recid)
                && PublicKey::from_sec1(vk.to_encoded_point(true).as_bytes())? == *expected
            {
                let mut out = [0u8; 65];
                out[..64].copy_from_slice(&sig.to_bytes());
                out[64] = 27 + id;
                return Ok(EthSignature(out));
            }
        }
        Err(EngineError::InvalidSignature)
    }

    /// Recovers the signer's address the way Ethereum's `ecrecover` does.
    pub fn recover_address(&self, digest: &[u8; 32]) -> Result<[u8; 20], EngineError> {
        let v = self.0[64];
        let recid = match v {
            27 | 28 => RecoveryId::from_byte(v - 27),
            _ => None,
        }
        .ok_or(EngineError::InvalidSignature)?;
        let sig =
            K256Signature::from_slice(&self.0[..64]).map_err(|_| EngineError::InvalidSignature)?;
        if sig.normalize_s().is_some() {
            // High-s signatures are malleable; Ethereum (EIP-2) refuses them.
            return Err(EngineError::InvalidSignature);
        }
        let vk = VerifyingKey::recover_from_prehash(digest, &sig, recid)
            .map_err(|_| EngineError::InvalidSignature)?;
        let mut pk = [0u8; 65];
        pk.copy_from_slice(vk.to_encoded_point(false).as_bytes());
        Ok(address_of_uncompressed(&pk))
    }

    /// `0x`-prefixed hex of the 65 bytes.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for EthSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EthSignature({})", self.to_hex())
    }
}

macro_rules! hex_array {
    ($name:ident, $n:expr) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serializer, de::Error};
            pub fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&format!("0x{}", hex::encode(v)))
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                let mut out = [0u8; $n];
                hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(&s), &mut out)
                    .map_err(D::Error::custom)?;
                Ok(out)
            }
        }
    };
}
hex_array!(hex_33, 33);
hex_array!(hex_65, 65);

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    #[test]
    fn eip55_known_vectors() {
        // Vectors from EIP-55.
        for a in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        ] {
            let mut b = [0u8; 20];
            hex::decode_to_slice(a[2..].to_lowercase(), &mut b).unwrap();
            assert_eq!(checksum_address(&b), a);
        }
    }

    #[test]
    fn single_key_signature_round_trip() {
        let sk = SigningKey::from_slice(&[0x11; 32]).unwrap();
        let pk =
            PublicKey::from_sec1(sk.verifying_key().to_encoded_point(true).as_bytes()).unwrap();
        let digest = [0x42u8; 32];
        let (sig, _) = sk.sign_prehash_recoverable(&digest).unwrap();
        let bytes = sig.to_bytes();
        let (r, s) = bytes.split_at(32);
        let eth = EthSignature::from_rs(r.try_into().unwrap(), s.try_into().unwrap(), &digest, &pk)
            .unwrap();
        assert!(eth.0[64] == 27 || eth.0[64] == 28);
        assert_eq!(eth.recover_address(&digest).unwrap(), pk.address());
        // A wrong key is refused.
        let other = SigningKey::from_slice(&[0x22; 32]).unwrap();
        let other_pk =
            PublicKey::from_sec1(other.verifying_key().to_encoded_point(true).as_bytes()).unwrap();
        assert!(
            EthSignature::from_rs(
                r.try_into().unwrap(),
                s.try_into().unwrap(),
                &digest,
                &other_pk
            )
            .is_err()
        );
    }
}
