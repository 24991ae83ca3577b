//! The PeerId → address derivation agrees with an independent computation using the workspace's
//! k256 0.13 and sha3 from the same secret.

mod common;

use cohort_p2p::{address_of_peer, address_of_secret, peer_id_of_secret};
use k256::ecdsa::SigningKey;
use sha3::{Digest, Keccak256};

fn reference_address(secret: &[u8; 32]) -> [u8; 20] {
    let key = SigningKey::from_slice(secret).expect("valid secret");
    let point = key.verifying_key().to_encoded_point(false);
    let digest = Keccak256::digest(&point.as_bytes()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&digest[12..]);
    address
}

#[test]
fn peer_id_address_matches_k256_0_13_and_sha3() {
    for _ in 0..64 {
        let secret: [u8; 32] = rand::random();
        if SigningKey::from_slice(&secret).is_err() {
            continue;
        }
        let expected = reference_address(&secret);
        let peer = peer_id_of_secret(&secret).expect("valid secret");
        assert_eq!(address_of_peer(&peer), Some(expected));
        assert_eq!(address_of_secret(&secret).expect("valid secret"), expected);
    }
}

#[tokio::test]
async fn host_identity_matches_its_secret() {
    let (secret, address) = common::node();
    let host = common::start(common::config(&secret, vec![])).await;
    assert_eq!(host.local_address(), address);
    assert_eq!(host.local_address(), reference_address(&secret));
    assert_eq!(host.peer_id(), peer_id_of_secret(&secret).expect("valid"));
    assert_eq!(address_of_peer(&host.peer_id()), Some(address));
    host.shutdown().await;
}
