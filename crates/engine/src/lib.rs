//! Cohort's threshold engine: every piece of threshold cryptography the network runs, with no
//! networking and no storage, so that nodes, tests and benchmarks all drive the very same code.
//!
//! * [`keygen`] — t-of-n distributed key generation (cggmp21).
//! * [`aux`] — Paillier / ring-Pedersen aux-info generation (cggmp21), fed by the [`primes`] pool.
//! * [`sign`] — full interactive signing, presignature generation, partial signatures and their
//!   combination into an Ethereum-ready [`EthSignature`].
//! * [`reshare`] — our own Feldman-VSS resharing to a new committee and threshold, and refresh.
//! * [`sim`] — an in-process network that runs all parties of a protocol in one process.
//!
//! Every protocol speaks raw bytes ([`RawIncoming`] / [`RawOutgoing`]) so that the node can carry
//! them over any transport without knowing cggmp21's types; each message is bound to its
//! [`SessionBinding`], and a message from another session is refused and its sender named.

#![forbid(unsafe_code)]

pub mod aux;
mod blame;
pub mod codec;
pub mod error;
pub mod eth;
pub mod keygen;
pub mod primes;
pub mod reshare;
pub mod session;
pub mod share;
pub mod sign;
pub mod sim;
mod transport;

#[cfg(test)]
mod rotation_tests;

#[cfg(feature = "insecure-test-fixtures")]
pub mod insecure_fixture;

pub use error::EngineError;
pub use eth::{EthSignature, PublicKey};
pub use primes::{PrimePool, SafePrimes};
pub use session::{Operation, PartyId, SessionBinding};
pub use share::{AuxInfo, CoreShare, KeyShare};
pub use sign::{PartialSignature, Presignature};
pub use transport::{RawIncoming, RawOutgoing};

/// The curve of every key Cohort holds.
pub type Curve = cggmp21::supported_curves::Secp256k1;
