//! The contracts' events the follower reads, decoded into typed values with their position on
//! L1 (block, transaction, log index), so a consumer can apply them in chain order.

use alloy::rpc::types::Log;
use alloy_primitives::{Address, B256};
use alloy_sol_types::SolEventInterface;

use crate::bindings::{
    CohortGroupManager::CohortGroupManagerEvents, CohortStaking::CohortStakingEvents,
    TestChallenge::TestChallengeEvents, TestStateCommitmentChain::TestStateCommitmentChainEvents,
};
use crate::error::L1Error;

/// The addresses the follower watches. The SCC is Mantle's `StateCommitmentChain` (or the test
/// one, same events); the challenge contract is optional (test deployments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contracts {
    /// `CohortGroupManager`.
    pub group_manager: Address,
    /// `CohortStaking`.
    pub staking: Address,
    /// The state commitment chain.
    pub scc: Address,
    /// A `TestChallenge` (Mantle's `Challenge` emits no event Cohort needs).
    pub challenge: Option<Address>,
}

impl Contracts {
    /// Every watched address, for the log filter.
    pub fn addresses(&self) -> Vec<Address> {
        let mut v = vec![self.group_manager, self.staking, self.scc];
        v.extend(self.challenge);
        v
    }

    /// Every event signature of the watched contracts' ABIs (topic 0), for the log filter: a log
    /// with one of these topics must decode, anything else is not asked for.
    pub fn topics(&self) -> Vec<B256> {
        let mut v: Vec<B256> = Vec::new();
        for set in [
            CohortGroupManagerEvents::SELECTORS,
            CohortStakingEvents::SELECTORS,
            TestStateCommitmentChainEvents::SELECTORS,
        ] {
            v.extend(set.iter().map(|s| B256::from(*s)));
        }
        if self.challenge.is_some() {
            v.extend(
                TestChallengeEvents::SELECTORS
                    .iter()
                    .map(|s| B256::from(*s)),
            );
        }
        v.sort();
        v.dedup();
        v
    }
}

/// One decoded event, by source contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// From `CohortGroupManager`.
    Group(CohortGroupManagerEvents),
    /// From `CohortStaking`.
    Staking(CohortStakingEvents),
    /// From the state commitment chain.
    Scc(TestStateCommitmentChainEvents),
    /// From the challenge contract.
    Challenge(TestChallengeEvents),
}

/// An event with its place on L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    /// Block number.
    pub block: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Transaction hash.
    pub tx: B256,
    /// Index of the log in its block: `(block, log_index)` identifies an event on a chain.
    pub log_index: u64,
    /// The emitting contract.
    pub address: Address,
    /// The decoded event.
    pub event: Event,
}

/// Decodes `log` against the ABI of the watched contract that emitted it. Logs of unwatched
/// addresses yield `Ok(None)`; pending logs (no block) or logs that fail to decode are errors.
pub fn decode(contracts: &Contracts, log: &Log) -> Result<Option<EventLog>, L1Error> {
    let address = log.address();
    let data = log.data();
    let block = log.block_number.ok_or_else(|| L1Error::Missing {
        what: "block number on a log".into(),
    })?;
    let err = |what: &str, e: alloy_sol_types::Error| L1Error::Decode {
        event: what.to_string(),
        block,
        tx: log.transaction_hash,
        reason: e.to_string(),
    };
    let topics = data.topics();
    let bytes = data.data.as_ref();
    // The filter asks for the union of the ABIs' topics; a contract emitting another contract's
    // event signature is not one of its own events and is skipped, not misread.
    let own: &[[u8; 32]] = if address == contracts.group_manager {
        CohortGroupManagerEvents::SELECTORS
    } else if address == contracts.staking {
        CohortStakingEvents::SELECTORS
    } else if address == contracts.scc {
        TestStateCommitmentChainEvents::SELECTORS
    } else if Some(address) == contracts.challenge {
        TestChallengeEvents::SELECTORS
    } else {
        return Ok(None);
    };
    match topics.first() {
        Some(t0) if own.contains(&t0.0) => {}
        _ => return Ok(None),
    }
    let event = if address == contracts.group_manager {
        Event::Group(
            CohortGroupManagerEvents::decode_raw_log(topics, bytes)
                .map_err(|e| err("CohortGroupManager", e))?,
        )
    } else if address == contracts.staking {
        Event::Staking(
            CohortStakingEvents::decode_raw_log(topics, bytes)
                .map_err(|e| err("CohortStaking", e))?,
        )
    } else if address == contracts.scc {
        Event::Scc(
            TestStateCommitmentChainEvents::decode_raw_log(topics, bytes)
                .map_err(|e| err("StateCommitmentChain", e))?,
        )
    } else if Some(address) == contracts.challenge {
        Event::Challenge(
            TestChallengeEvents::decode_raw_log(topics, bytes)
                .map_err(|e| err("TestChallenge", e))?,
        )
    } else {
        return Ok(None);
    };
    Ok(Some(EventLog {
        block,
        block_hash: log.block_hash.ok_or_else(|| L1Error::Missing {
            what: "block hash on a log".into(),
        })?,
        tx: log.transaction_hash.ok_or_else(|| L1Error::Missing {
            what: "transaction hash on a log".into(),
        })?,
        log_index: log.log_index.ok_or_else(|| L1Error::Missing {
            what: "log index on a log".into(),
        })?,
        address,
        event,
    }))
}
