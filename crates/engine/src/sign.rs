//! Signing: full interactive signing by exactly t holders, presignature generation for a chosen
//! set of t, a partial signature from a presignature (one local step, no round trip), and the
//! combination of t partials into an [`EthSignature`].
//!
//! A [`Presignature`] is consumed by value when it issues its partial signature: the type system
//! stops a second use in the same process. Across restarts, the node must delete the stored
//! presignature in the same store transaction that marks it used, before the partial leaves.
//! Reusing a presignature for two digests reveals the key share.

use std::fmt;

use cggmp21::DataToSign;
use cggmp21::generic_ec::Scalar;
use futures::{Sink, Stream};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::Curve;
use crate::error::EngineError;
use crate::eth::{EthSignature, PublicKey};
use crate::session::{Operation, PartyId, SessionBinding};
use crate::share::{KeyShare, SHARE_FORMAT_VERSION};
use crate::transport::{self, RawIncoming, RawOutgoing};

/// Protocol message of signing and presigning.
pub type Msg = cggmp21::signing::msg::Msg<Curve, sha2::Sha256>;

/// Parameters hashed into a full-signing binding: the digest being signed.
pub fn sign_params(digest: &[u8; 32]) -> Vec<u8> {
    digest.to_vec()
}

fn data_to_sign(digest: &[u8; 32]) -> DataToSign<Curve> {
    // ECDSA over secp256k1 uses the 32-byte hash reduced mod n, exactly as Ethereum does.
    DataToSign::from_scalar(Scalar::from_be_bytes_mod_order(digest))
}

/// Checks that the binding's parties are exactly t holders of `share` including its holder, and
/// returns (my index in the run, the signers' indices at keygen).
fn signer_indices(
    binding: &SessionBinding,
    share: &KeyShare,
) -> Result<(u16, Vec<u16>), EngineError> {
    if binding.n() != share.threshold() {
        return Err(EngineError::InvalidInput(format!(
            "signing needs exactly {} signers, the run has {}",
            share.threshold(),
            binding.n()
        )));
    }
    let at_keygen = binding
        .parties()
        .iter()
        .map(|p| {
            share
                .index_of(p)
                .ok_or_else(|| EngineError::InvalidInput(format!("{p} does not hold this key")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let i = binding.index_of(&share.holder())?;
    Ok((i, at_keygen))
}

/// Full interactive signing of `digest`. `binding` must be for [`Operation::Sign`] with
/// [`sign_params`]`(digest)` and the t signers as parties. The result is verified against the key.
pub async fn sign<I, O, IE, OE>(
    binding: &SessionBinding,
    share: &KeyShare,
    digest: &[u8; 32],
    incoming: I,
    outgoing: O,
) -> Result<EthSignature, EngineError>
where
    I: Stream<Item = Result<RawIncoming, IE>> + Unpin,
    O: Sink<RawOutgoing, Error = OE> + Unpin,
    IE: std::error::Error,
    OE: std::error::Error,
{
    if binding.operation() != Operation::Sign || binding.key_id().is_empty() {
        return Err(EngineError::InvalidInput(
            "binding is not for signing".into(),
        ));
    }
    if binding.digest()
        != SessionBinding::new(
            binding.session_id(),
            Operation::Sign,
            binding.key_id(),
            binding.parties().to_vec(),
            &sign_params(digest),
        )?
        .digest()
    {
        return Err(EngineError::InvalidInput(
            "binding does not commit to this digest".into(),
        ));
    }
    let (i, at_keygen) = signer_indices(binding, share)?;
    let (party, faults) = transport::typed::<Msg, _, _, _, _>(binding, i, incoming, outgoing);
    let sig = cggmp21::signing(binding.execution_id(), i, &at_keygen, &share.inner)
        .sign(&mut OsRng, party, data_to_sign(digest))
        .await
        .map_err(|e| transport::classify(binding, &faults, &e))?;
    to_eth(&sig, digest, &share.public_key())
}

fn to_eth(
    sig: &cggmp21::Signature<Curve>,
    digest: &[u8; 32],
    key: &PublicKey,
) -> Result<EthSignature, EngineError> {
    let mut rs = [0u8; 64];
    sig.normalize_s().write_to_slice(&mut rs);
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&rs[..32]);
    s.copy_from_slice(&rs[32..]);
    EthSignature::from_rs(r, s, digest, key)
}

/// Generates a presignature for the run's signer set. `binding` must be for
/// [`Operation::Presign`] with the t signers as parties.
pub async fn presign<I, O, IE, OE>(
    binding: &SessionBinding,
    share: &KeyShare,
    incoming: I,
    outgoing: O,
) -> Result<Presignature, EngineError>
where
    I: Stream<Item = Result<RawIncoming, IE>> + Unpin,
    O: Sink<RawOutgoing, Error = OE> + Unpin,
    IE: std::error::Error,
    OE: std::error::Error,
{
    if binding.operation() != Operation::Presign {
        return Err(EngineError::InvalidInput(
            "binding is not for presigning".into(),
        ));
    }
    let (i, at_keygen) = signer_indices(binding, share)?;
    let (party, faults) = transport::typed::<Msg, _, _, _, _>(binding, i, incoming, outgoing);
    let inner = cggmp21::signing(binding.execution_id(), i, &at_keygen, &share.inner)
        .generate_presignature(&mut OsRng, party)
        .await
        .map_err(|e| transport::classify(binding, &faults, &e))?;
    Ok(Presignature {
        v: SHARE_FORMAT_VERSION,
        key: share.public_key(),
        signers: binding.parties().to_vec(),
        holder: share.holder(),
        inner,
    })
}

/// One signer's share of a future signature, for a fixed signer set. Secret; single use.
#[derive(Serialize, Deserialize)]
pub struct Presignature {
    v: u16,
    key: PublicKey,
    signers: Vec<PartyId>,
    holder: PartyId,
    inner: cggmp21::Presignature<Curve>,
}

impl Presignature {
    /// Identifier shared by every signer's piece of the same presignature (a hash of its public
    /// nonce point R), used to match partial signatures.
    pub fn id(&self) -> [u8; 32] {
        Keccak256::digest(self.inner.R.to_bytes(true)).into()
    }

    /// The signer set that must all issue partials with their pieces.
    pub fn signers(&self) -> &[PartyId] {
        &self.signers
    }

    /// The key this presignature signs for.
    pub fn public_key(&self) -> PublicKey {
        self.key
    }

    /// Holder of this piece.
    pub fn holder(&self) -> PartyId {
        self.holder
    }

    /// Issues this signer's partial signature over `digest`, consuming the presignature.
    pub fn issue_partial(self, digest: &[u8; 32]) -> PartialSignature {
        let id = self.id();
        let partial = self.inner.issue_partial_signature(data_to_sign(digest));
        PartialSignature {
            presignature: id,
            signer: self.holder,
            signers: self.signers.clone(),
            r: partial.r.to_be_bytes().to_vec(),
            sigma: partial.sigma.to_be_bytes().to_vec(),
        }
    }

    /// Serialized (secret!) form for the encrypted store.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let mut out = Zeroizing::new(Vec::new());
        ciborium::into_writer(self, &mut *out)
            .map_err(|e| EngineError::InvalidShare(e.to_string()))?;
        Ok(out)
    }

    /// Decodes a stored presignature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let p: Self = ciborium::from_reader(bytes)
            .map_err(|e| EngineError::InvalidShare(format!("presignature does not decode: {e}")))?;
        if p.v != SHARE_FORMAT_VERSION {
            return Err(EngineError::InvalidShare(format!(
                "presignature has format version {}",
                p.v
            )));
        }
        Ok(p)
    }
}

impl fmt::Debug for Presignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presignature")
            .field("id", &hex::encode(self.id()))
            .field("holder", &self.holder)
            .field("signers", &self.signers)
            .finish_non_exhaustive()
    }
}

/// A signer's partial signature. Public: it reveals nothing without the other t−1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialSignature {
    /// Which presignature it came from.
    pub presignature: [u8; 32],
    /// Who issued it (the combiner checks this against the transport's sender).
    pub signer: PartyId,
    /// The signer set of the presignature.
    pub signers: Vec<PartyId>,
    r: Vec<u8>,
    sigma: Vec<u8>,
}

impl PartialSignature {
    fn to_cggmp(&self) -> Result<cggmp21::PartialSignature<Curve>, EngineError> {
        let scalar = |b: &[u8]| {
            Scalar::<Curve>::from_be_bytes(b).map_err(|_| EngineError::Malformed {
                operation: Operation::Sign,
                culprit: self.signer,
                reason: "partial signature scalar out of range".into(),
            })
        };
        Ok(cggmp21::PartialSignature {
            r: scalar(&self.r)?,
            sigma: scalar(&self.sigma)?,
        })
    }
}

/// Combines the partials of every signer of one presignature into a signature over `digest`,
/// verified against `key` before it is returned.
pub fn combine(
    key: &PublicKey,
    digest: &[u8; 32],
    partials: &[PartialSignature],
) -> Result<EthSignature, EngineError> {
    let first = partials
        .first()
        .ok_or_else(|| EngineError::InvalidInput("no partial signatures".into()))?;
    let mut seen: Vec<PartyId> = Vec::with_capacity(partials.len());
    for p in partials {
        if p.presignature != first.presignature || p.signers != first.signers {
            return Err(EngineError::InvalidInput(format!(
                "partial of {} belongs to another presignature",
                p.signer
            )));
        }
        if !first.signers.contains(&p.signer) || seen.contains(&p.signer) {
            return Err(EngineError::InvalidInput(format!(
                "unexpected or duplicate partial from {}",
                p.signer
            )));
        }
        seen.push(p.signer);
    }
    if seen.len() != first.signers.len() {
        return Err(EngineError::InvalidInput(format!(
            "need partials from all {} signers, have {}",
            first.signers.len(),
            seen.len()
        )));
    }
    let inner = partials
        .iter()
        .map(PartialSignature::to_cggmp)
        .collect::<Result<Vec<_>, _>>()?;
    let sig = cggmp21::PartialSignature::combine(&inner).ok_or(EngineError::InvalidSignature)?;
    to_eth(&sig, digest, key)
}
