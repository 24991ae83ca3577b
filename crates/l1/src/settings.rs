//! The `[l1]` section of a node's or manager's configuration (l1-spec §3.5.1): where L1 is,
//! which contracts to follow, and how far behind the head a block counts as confirmed.
//!
//! One type for both processes, so that a node and its manager read the same contracts with
//! the same confirmation depth and cannot drift apart in what they consider final.

use std::time::Duration;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

use crate::events::Contracts;
use crate::follower::{FollowerConfig, MAX_SCAN_RANGE};
use crate::provider::ProviderConfig;

/// Where L1 is and what to follow there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L1Settings {
    /// HTTP JSON-RPC URL of an L1 node this process trusts (ideally its operator's own).
    pub rpc_url: String,
    /// Chain id the node must report; checked at start (a wrong RPC URL is refused).
    pub chain_id: u64,
    /// `CohortGroupManager`.
    pub group_manager: Address,
    /// `CohortStaking`.
    pub staking: Address,
    /// The state commitment chain (Mantle's `StateCommitmentChain` or `TestStateCommitmentChain`).
    pub scc: Address,
    /// The rollup contract whose `challengeCtx()` names a challenge (`type: 1` rollbacks).
    #[serde(default)]
    pub rollup: Option<Address>,
    /// Blocks below the head before a block's events are applied. Default 10.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// Seconds between polls once caught up. Default 10.
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u64,
    /// Blocks per `eth_getLogs`, 1..=1000. Default 1000.
    #[serde(default = "default_scan_range")]
    pub scan_range: u64,
    /// First block to read when the store has no cursor (the contracts' deployment). Default 0.
    #[serde(default)]
    pub start_block: u64,
}

fn default_confirmations() -> u64 {
    10
}

fn default_poll_secs() -> u64 {
    10
}

fn default_scan_range() -> u64 {
    MAX_SCAN_RANGE
}

impl L1Settings {
    /// The provider configuration (default retry policy).
    pub fn provider(&self) -> ProviderConfig {
        ProviderConfig::new(self.rpc_url.clone(), self.chain_id)
    }

    /// The watched contracts.
    pub fn contracts(&self) -> Contracts {
        Contracts {
            group_manager: self.group_manager,
            staking: self.staking,
            scc: self.scc,
            challenge: None,
        }
    }

    /// The follower configuration these settings describe.
    pub fn follower(&self) -> FollowerConfig {
        let mut c = FollowerConfig::new(self.contracts(), self.start_block);
        c.confirmations = self.confirmations;
        c.scan_range = self.scan_range.clamp(1, MAX_SCAN_RANGE);
        c.poll_interval = Duration::from_secs(self.poll_secs.max(1));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_section_gets_the_spec_defaults() {
        let s: L1Settings = toml::from_str(
            r#"
            rpc_url = "http://127.0.0.1:8545"
            chain_id = 31337
            group_manager = "0x0000000000000000000000000000000000000001"
            staking = "0x0000000000000000000000000000000000000002"
            scc = "0x0000000000000000000000000000000000000003"
            "#,
        )
        .unwrap();
        assert_eq!((s.confirmations, s.poll_secs, s.scan_range), (10, 10, 1000));
        assert_eq!(s.follower().scan_range, 1000);
        assert!(s.rollup.is_none());
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let e = toml::from_str::<L1Settings>(
            r#"
            rpc_url = "http://x"
            chain_id = 1
            group_manager = "0x0000000000000000000000000000000000000001"
            staking = "0x0000000000000000000000000000000000000002"
            scc = "0x0000000000000000000000000000000000000003"
            confirmation = 3
            "#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("confirmation"), "{e}");
    }
}
