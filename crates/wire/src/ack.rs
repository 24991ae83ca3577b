//! A new party's signed acknowledgement of a resharing: the proof an old holder that leaves
//! needs before it deletes its share. A manager cannot forge it (it is signed with the new
//! party's node key), so a hostile manager cannot make a leaver delete before every new party
//! really holds its share of the new sharing.

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::hex_types::{Address, Bytes32, HexBytes};
use crate::key_id::KeyId;

/// One new party's acknowledgement of the new sharing `session_id` of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshareAck {
    /// The new party that signs (checked against the recovered signer, never trusted alone).
    pub party: Address,
    /// The new sharing's public shares (33-byte compressed points), in new committee order;
    /// the acknowledging party's own one is at its index.
    pub public_shares: Vec<HexBytes>,
    /// SHA-256 of the party's fresh Paillier modulus for the new sharing (public; shows the
    /// refresh rotated it).
    pub aux_modulus: Bytes32,
    /// 65-byte r‖s‖v signature with the party's node key over [`reshare_ack_digest`].
    pub signature: HexBytes,
}

/// What a new party signs to acknowledge a resharing: the key, the new sharing's session, the
/// (unchanged) public key, the new committee and its public shares, and the party's fresh
/// Paillier modulus, under a domain tag.
pub fn reshare_ack_digest(
    key_id: &KeyId,
    session_id: &Bytes32,
    public_key: &[u8],
    new_parties: &[Address],
    public_shares: &[HexBytes],
    aux_modulus: &Bytes32,
) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"cohort/reshare-ack/v1");
    let len = |h: &mut Keccak256, n: usize| h.update((n as u64).to_be_bytes());
    len(&mut h, key_id.as_str().len());
    h.update(key_id.as_str().as_bytes());
    h.update(session_id.0);
    len(&mut h, public_key.len());
    h.update(public_key);
    len(&mut h, new_parties.len());
    for p in new_parties {
        h.update(p.0);
    }
    len(&mut h, public_shares.len());
    for s in public_shares {
        len(&mut h, s.0.len());
        h.update(&s.0);
    }
    h.update(aux_modulus.0);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ack_digest_binds_every_field() {
        let k = KeyId::new("k").unwrap();
        let s = Bytes32([1; 32]);
        let parties = [Address([2; 20]), Address([3; 20])];
        let shares = [HexBytes(vec![2; 33]), HexBytes(vec![3; 33])];
        let m = Bytes32([6; 32]);
        let a = reshare_ack_digest(&k, &s, &[4; 65], &parties, &shares, &m);
        assert_ne!(
            a,
            reshare_ack_digest(
                &KeyId::new("j").unwrap(),
                &s,
                &[4; 65],
                &parties,
                &shares,
                &m
            )
        );
        assert_ne!(
            a,
            reshare_ack_digest(&k, &Bytes32([9; 32]), &[4; 65], &parties, &shares, &m)
        );
        assert_ne!(
            a,
            reshare_ack_digest(&k, &s, &[5; 65], &parties, &shares, &m)
        );
        assert_ne!(
            a,
            reshare_ack_digest(&k, &s, &[4; 65], &parties[..1], &shares, &m)
        );
        assert_ne!(
            a,
            reshare_ack_digest(&k, &s, &[4; 65], &parties, &shares[..1], &m)
        );
    }
}
