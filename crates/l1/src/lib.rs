//! Cohort's L1 side: typed bindings over the committed contract artifacts
//! (`contracts/out/*.json`, built by `scripts/build-contracts.sh`), the exact digests the
//! cluster signs (spec §3.4), a provider checked against the configured chain id
//! ([`provider`]), a log follower over confirmed blocks with a persisted reorg-safe cursor
//! ([`follower`], [`cursor`], [`events`]) and a transaction sender for node keys ([`sender`]).
//!
//! The bindings come from the artifacts rather than from hand-written Solidity so that a contract
//! change which is not rebuilt and committed cannot compile against stale Rust types: CI checks
//! that the artifacts are what the pinned compiler produces, and this crate is generated from them.
//!
//! Thresholds: the contracts store tss-lib's t (signing needs t + 1 parties); Cohort's threshold is
//! the number of signers, so every boundary converts with `cohort_t = l1_t + 1`
//! ([`cohort_threshold`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bindings;
pub mod cursor;
pub mod digests;
pub mod error;
pub mod events;
pub mod follower;
pub mod provider;
pub mod retry;
pub mod revert;
pub mod sender;
pub mod settings;

pub use cursor::Cursor;
pub use error::{L1Error, SendError};
pub use events::{Contracts, Event, EventLog};
pub use follower::{Batch, Consumer, Follower, FollowerConfig};
pub use provider::{L1Provider, ProviderConfig};
pub use retry::RetryPolicy;
pub use sender::{Sender, SenderConfig, Sent, TxRequest};
pub use settings::L1Settings;

pub use digests::{
    FraudSlash, LivenessSlash, SlashMsg, cohort_domain, mantle_slash_digest, rollback_digest,
    state_batch_digest,
};

/// Converts the L1 (tss-lib) threshold t into Cohort's threshold, the number of signers (t + 1).
///
/// Kept as one function so the off-by-one between the two conventions lives in one place.
pub fn cohort_threshold(l1_threshold: u64) -> u64 {
    l1_threshold + 1
}

/// The L1 address of a 64-byte `X‖Y` public key: `keccak256(pub64)[12..]`, the contracts' rule
/// (`publicKeyToAddress`) and Cohort's node identity.
pub fn address_of_key(pub64: &[u8; 64]) -> alloy_primitives::Address {
    alloy_primitives::Address::from_raw_public_key(pub64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_conversion_adds_one() {
        assert_eq!(cohort_threshold(1), 2);
        assert_eq!(cohort_threshold(4), 5);
    }
}
