//! One node key → libp2p PeerId → Ethereum address.
//!
//! Cohort names nodes by Ethereum address (the membership list, L1), while libp2p authenticates
//! peers by PeerId. A secp256k1 PeerId embeds the public key itself (identity multihash), so the
//! address of any authenticated peer can be recomputed locally without trusting anything it says.
//! libp2p uses k256 0.14 internally while the rest of the workspace uses 0.13: only bytes cross
//! that boundary.

use libp2p::PeerId;
use libp2p::identity::{self, Keypair};
use libp2p::multihash::Multihash;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::error::P2pError;

/// A node's Ethereum address: the name under which it appears in the cohort membership.
pub type Address = [u8; 20];

/// Multihash code of the identity "hash" that libp2p uses to inline short public keys.
const IDENTITY_MULTIHASH: u64 = 0x00;

/// Builds the libp2p keypair from the node's 32 secret bytes, so the transport identity is the
/// node key itself. The temporary copy is zeroized whatever the outcome.
pub(crate) fn keypair_from_secret(secret: &[u8; 32]) -> Result<Keypair, P2pError> {
    let mut copy = Zeroizing::new(*secret);
    let secret = identity::secp256k1::SecretKey::try_from_bytes(&mut copy[..])
        .map_err(|_| P2pError::InvalidKey)?;
    Ok(Keypair::from(identity::secp256k1::Keypair::from(secret)))
}

/// The libp2p PeerId of the node whose secret key this is; lets operators and tests predict a
/// node's transport identity from its key alone.
pub fn peer_id_of_secret(secret: &[u8; 32]) -> Result<PeerId, P2pError> {
    Ok(keypair_from_secret(secret)?.public().to_peer_id())
}

/// The Ethereum address of the node whose secret key this is: the name the membership uses.
pub fn address_of_secret(secret: &[u8; 32]) -> Result<Address, P2pError> {
    let keypair = keypair_from_secret(secret)?;
    address_of_public(&keypair.public()).ok_or(P2pError::InvalidKey)
}

/// The Ethereum address behind an authenticated PeerId, or `None` when the PeerId does not
/// inline a secp256k1 key (hashed or other key types cannot be Cohort members).
pub fn address_of_peer(peer: &PeerId) -> Option<Address> {
    let multihash: &Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let public = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    address_of_public(&public)
}

/// Address of a libp2p public key, if it is a secp256k1 key.
pub(crate) fn address_of_public(public: &identity::PublicKey) -> Option<Address> {
    let secp = public.clone().try_into_secp256k1().ok()?;
    Some(address_of_uncompressed(&secp.to_bytes_uncompressed()))
}

/// Ethereum rule: last 20 bytes of keccak256 over the 64-byte point (no 0x04 prefix).
fn address_of_uncompressed(point: &[u8; 65]) -> Address {
    let digest = Keccak256::digest(&point[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&digest[12..]);
    address
}

/// Renders an address as `0x…` hex for logs and error messages (addresses are public).
pub(crate) fn fmt_address(address: &Address) -> String {
    format!("0x{}", hex::encode(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_one_has_the_well_known_address() {
        let mut secret = [0u8; 32];
        secret[31] = 1;
        let expected = hex::decode("7e5f4552091a69125d5dfcb7b8c2659029395bdf").unwrap();
        assert_eq!(address_of_secret(&secret).unwrap().to_vec(), expected);
        let peer = peer_id_of_secret(&secret).unwrap();
        assert_eq!(address_of_peer(&peer).unwrap().to_vec(), expected);
    }

    #[test]
    fn invalid_secrets_are_rejected() {
        assert!(matches!(
            peer_id_of_secret(&[0u8; 32]),
            Err(P2pError::InvalidKey)
        ));
        assert!(matches!(
            address_of_secret(&[0xffu8; 32]),
            Err(P2pError::InvalidKey)
        ));
    }

    #[test]
    fn non_secp256k1_peer_has_no_address() {
        assert_eq!(address_of_peer(&PeerId::random()), None);
    }
}
