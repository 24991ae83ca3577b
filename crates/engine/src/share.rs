//! Key material a node holds: the key's share ([`CoreShare`]), the node's Paillier aux info
//! ([`AuxInfo`], one per node per membership, reused by every key), and the two put together
//! ([`KeyShare`]), which is what signing needs.
//!
//! All three serialize with a format version, validate on decode (cggmp21's `Valid` types), and
//! print no secret in `Debug`. The secret scalar inside cggmp21's share is a `SecretScalar`, which
//! zeroizes itself on drop; serialized forms are returned in `Zeroizing` buffers. Known limit:
//! the Paillier primes are GMP integers (`rug::Integer`), whose limbs cannot be wiped without
//! `unsafe` code, so they are freed but not overwritten.

use std::fmt;

use cggmp21::key_share::{AnyKeyShare, DirtyAuxInfo, Valid};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use zeroize::Zeroizing;

use crate::Curve;
use crate::error::EngineError;
use crate::eth::PublicKey;
use crate::session::PartyId;

/// Version written into every serialized share; bump on any change of layout.
pub const SHARE_FORMAT_VERSION: u16 = 1;

fn to_bytes<T: Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let mut out = Zeroizing::new(Vec::new());
    ciborium::into_writer(v, &mut *out).map_err(|e| EngineError::InvalidShare(e.to_string()))?;
    Ok(out)
}

fn from_bytes<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, EngineError> {
    // ciborium's error text names the offending field, never its value.
    ciborium::from_reader(bytes)
        .map_err(|e| EngineError::InvalidShare(format!("{what} does not decode: {e}")))
}

fn check_version(v: u16, what: &str) -> Result<(), EngineError> {
    if v != SHARE_FORMAT_VERSION {
        return Err(EngineError::InvalidShare(format!(
            "{what} has format version {v}, this build reads {SHARE_FORMAT_VERSION}"
        )));
    }
    Ok(())
}

/// One party's share of a key, without Paillier aux info: the output of keygen and resharing.
#[derive(Clone, Serialize, Deserialize)]
pub struct CoreShare {
    v: u16,
    parties: Vec<PartyId>,
    pub(crate) inner: cggmp21::IncompleteKeyShare<Curve>,
}

impl CoreShare {
    pub(crate) fn new(
        parties: Vec<PartyId>,
        inner: cggmp21::IncompleteKeyShare<Curve>,
    ) -> Result<Self, EngineError> {
        if parties.len() != inner.public_shares.len() {
            return Err(EngineError::InvalidShare(
                "party list does not match the share's committee".into(),
            ));
        }
        Ok(Self {
            v: SHARE_FORMAT_VERSION,
            parties,
            inner,
        })
    }

    /// The key's committee in share-index order.
    pub fn parties(&self) -> &[PartyId] {
        &self.parties
    }

    /// This share's holder.
    pub fn holder(&self) -> PartyId {
        self.parties[usize::from(self.inner.i)]
    }

    /// Signers needed.
    pub fn threshold(&self) -> u16 {
        self.inner.min_signers()
    }

    /// The key's public key (same for every holder).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_point(&self.inner.shared_public_key)
    }

    /// Each holder's public share, in committee order; a fingerprint of the sharing.
    pub fn public_shares(&self) -> Vec<[u8; 33]> {
        self.inner
            .public_shares
            .iter()
            .map(|p| PublicKey::from_point(p).compressed())
            .collect()
    }

    /// Serialized (secret!) form for the encrypted store.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        to_bytes(self)
    }

    /// Decodes and validates a stored share.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let s: Self = from_bytes(bytes, "key share")?;
        check_version(s.v, "key share")?;
        Self::new(s.parties, s.inner)
    }
}

impl fmt::Debug for CoreShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreShare")
            .field("holder", &self.holder())
            .field("threshold", &self.threshold())
            .field("parties", &self.parties)
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// A node's Paillier aux info for a membership: its own secret primes and every member's public
/// parameters. Generated once and reused for every key of that membership.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuxInfo {
    v: u16,
    members: Vec<PartyId>,
    me: u16,
    pub(crate) inner: cggmp21::key_share::AuxInfo,
}

impl AuxInfo {
    pub(crate) fn new(
        members: Vec<PartyId>,
        me: u16,
        inner: cggmp21::key_share::AuxInfo,
    ) -> Result<Self, EngineError> {
        if members.len() != inner.parties.len() || usize::from(me) >= members.len() {
            return Err(EngineError::InvalidShare(
                "aux info does not match its member list".into(),
            ));
        }
        Ok(Self {
            v: SHARE_FORMAT_VERSION,
            members,
            me,
            inner,
        })
    }

    /// Members this aux info covers, in generation order.
    pub fn members(&self) -> &[PartyId] {
        &self.members
    }

    /// The holder of the secret primes.
    pub fn holder(&self) -> PartyId {
        self.members[usize::from(self.me)]
    }

    /// A public fingerprint of this holder's own Paillier modulus N = p·q (SHA-256 of its
    /// big-endian bytes): shows whether a refresh really rotated the node's Paillier key.
    pub fn modulus_hash(&self) -> [u8; 32] {
        modulus_hash(&self.inner.p, &self.inner.q)
    }

    /// Members whose Paillier modulus is made of the public INSECURE test primes
    /// ([`crate::primes::is_test_modulus`]); a node that does not use them refuses such aux info.
    pub fn members_with_test_primes(&self) -> Vec<PartyId> {
        let dirty: &DirtyAuxInfo = &self.inner;
        dirty
            .parties
            .iter()
            .zip(&self.members)
            .filter(|(p, _)| crate::primes::is_test_modulus(&p.N.to_string_radix(16)))
            .map(|(_, m)| *m)
            .collect()
    }

    /// Whether this aux info can serve a key held by `parties`.
    pub fn covers(&self, parties: &[PartyId]) -> bool {
        parties.iter().all(|p| self.members.contains(p))
    }

    /// The aux info cggmp21 wants for a key held by `parties` (a subset of the members, in the
    /// key's order).
    fn restricted(&self, parties: &[PartyId]) -> Result<cggmp21::key_share::AuxInfo, EngineError> {
        let dirty: &DirtyAuxInfo = &self.inner;
        let picked = parties
            .iter()
            .map(|p| {
                self.members
                    .iter()
                    .position(|m| m == p)
                    .map(|i| dirty.parties[i].clone())
                    .ok_or_else(|| {
                        EngineError::InvalidInput(format!("aux info has no entry for {p}"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let restricted = DirtyAuxInfo {
            p: dirty.p.clone(),
            q: dirty.q.clone(),
            parties: picked,
            security_level: Default::default(),
        };
        Valid::validate(restricted).map_err(|e| EngineError::InvalidShare(e.error().to_string()))
    }

    /// Serialized (secret!) form for the encrypted store.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        to_bytes(self)
    }

    /// Decodes and validates stored aux info.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let s: Self = from_bytes(bytes, "aux info")?;
        check_version(s.v, "aux info")?;
        Self::new(s.members, s.me, s.inner)
    }
}

impl fmt::Debug for AuxInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuxInfo")
            .field("holder", &self.holder())
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of the big-endian bytes of p·q: the public fingerprint of a Paillier modulus.
pub(crate) fn modulus_hash(p: &cggmp21::rug::Integer, q: &cggmp21::rug::Integer) -> [u8; 32] {
    use sha2::Digest;
    let n = cggmp21::rug::Integer::from(p * q);
    sha2::Sha256::digest(n.to_digits::<u8>(cggmp21::rug::integer::Order::MsfBe)).into()
}

/// A complete key share — the key's share plus the matching aux info — ready to sign.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyShare {
    v: u16,
    parties: Vec<PartyId>,
    pub(crate) inner: cggmp21::KeyShare<Curve>,
}

impl KeyShare {
    /// Completes `core` with the holder's aux info; fails if the aux info does not cover the
    /// key's committee or belongs to another holder.
    pub fn new(core: CoreShare, aux: &AuxInfo) -> Result<Self, EngineError> {
        if aux.holder() != core.holder() {
            return Err(EngineError::InvalidInput(format!(
                "aux info of {} cannot complete the share of {}",
                aux.holder(),
                core.holder()
            )));
        }
        let restricted = aux.restricted(&core.parties)?;
        let inner = cggmp21::KeyShare::from_parts((core.inner, restricted))
            .map_err(|e| EngineError::InvalidShare(e.error().to_string()))?;
        Ok(Self {
            v: SHARE_FORMAT_VERSION,
            parties: core.parties,
            inner,
        })
    }

    /// The key's committee in share-index order.
    pub fn parties(&self) -> &[PartyId] {
        &self.parties
    }

    /// This share's holder.
    pub fn holder(&self) -> PartyId {
        self.parties[usize::from(self.inner.core.i)]
    }

    /// Signers needed.
    pub fn threshold(&self) -> u16 {
        self.inner.min_signers()
    }

    /// The key's public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_point(&self.inner.shared_public_key)
    }

    /// Share index (at keygen) of `p`, if it holds this key.
    pub(crate) fn index_of(&self, p: &PartyId) -> Option<u16> {
        self.parties.iter().position(|x| x == p).map(|i| i as u16)
    }

    /// Serialized (secret!) form for the encrypted store.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        to_bytes(self)
    }

    /// Decodes and validates a stored share.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let s: Self = from_bytes(bytes, "key share")?;
        check_version(s.v, "key share")?;
        if s.parties.len() != s.inner.public_shares.len() {
            return Err(EngineError::InvalidShare(
                "party list does not match the share's committee".into(),
            ));
        }
        Ok(s)
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("holder", &self.holder())
            .field("threshold", &self.threshold())
            .field("parties", &self.parties)
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}
