//! Typed errors of the L1 side. Callers decide on the variant: a transient RPC failure is
//! retried inside the crate and only surfaces after the retry budget; everything else is fatal
//! for the operation (a wrong chain, a reorg deeper than the confirmations, a revert).

use alloy_primitives::{B256, Bytes};

/// An error of the provider or the log follower.
#[derive(Debug, thiserror::Error)]
pub enum L1Error {
    /// The RPC URL does not parse.
    #[error("invalid L1 RPC URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as configured.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The node at the URL serves another chain than the configured one: refuse to start, since
    /// every digest and every event would be read on the wrong chain.
    #[error("L1 chain id mismatch: configured {expected}, the RPC node at {url} serves {actual}")]
    ChainIdMismatch {
        /// `[l1] chain_id` from the configuration.
        expected: u64,
        /// What `eth_chainId` answered.
        actual: u64,
        /// The RPC URL (no credentials are expected in it).
        url: String,
    },
    /// An RPC call failed with an answer that retrying will not change (or the retries ran out).
    #[error("L1 RPC {method} failed: {message}")]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// The transport's or the node's message.
        message: String,
    },
    /// An RPC call did not answer in time (after the retries).
    #[error("L1 RPC {method} timed out")]
    Timeout {
        /// The JSON-RPC method.
        method: &'static str,
    },
    /// The node answered `null` for something that must exist (a block below its head).
    #[error("L1 node has no {what}")]
    Missing {
        /// What was asked for.
        what: String,
    },
    /// A log of a watched contract with a known event signature does not decode: the artifacts
    /// and the deployed contract disagree. The follower stops rather than skip an event.
    #[error("undecodable {event} log at block {block} (tx {tx:?}): {reason}")]
    Decode {
        /// The contract the log came from.
        event: String,
        /// Its block.
        block: u64,
        /// Its transaction.
        tx: Option<B256>,
        /// The decoder's message.
        reason: String,
    },
    /// The chain no longer contains the block the persisted cursor was applied at: a reorg deeper
    /// than the configured confirmations. Events already applied may be orphaned; the follower
    /// stops loudly instead of guessing. `common` is the newest block of the cursor's ring that
    /// is still canonical (if any), where an operator can rewind to.
    #[error(
        "L1 reorg deeper than the confirmations: block {height} was {stored} when applied, the chain now has {chain:?}; last common block in the cursor ring: {common:?}"
    )]
    DeepReorg {
        /// The cursor's height.
        height: u64,
        /// The hash the cursor recorded.
        stored: B256,
        /// The hash the chain has now (None if the chain is shorter).
        chain: Option<B256>,
        /// The newest still-canonical `(height, hash)` of the ring.
        common: Option<(u64, B256)>,
    },
    /// The configuration is unusable (e.g. a scan range of 0 or above 1000 blocks).
    #[error("invalid L1 follower configuration: {0}")]
    Config(String),
    /// The persisted cursor could not be read or written.
    #[error("L1 cursor store: {0}")]
    Store(String),
}

/// An error of the transaction sender.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider failed (after retries) or the chain misbehaved.
    #[error(transparent)]
    L1(#[from] L1Error),
    /// The transaction reverts: at gas estimation (never sent) or mined with status 0 (`tx`).
    /// `reason` is the custom error decoded against the contracts' ABIs when possible.
    #[error("transaction reverted{}: {}", tx.map(|h| format!(" in {h}")).unwrap_or_default(), reason.as_deref().unwrap_or("(undecoded revert data)"))]
    Reverted {
        /// The mined transaction, if it was mined.
        tx: Option<B256>,
        /// The raw revert data, if the node returned it.
        data: Option<Bytes>,
        /// The decoded custom error, e.g. `InvalidGroupSignature()`.
        reason: Option<String>,
    },
    /// The transaction was not mined (with the wanted confirmations) before the deadline, even
    /// after fee bumps. The nonce stays reserved: the next send re-reads the pending nonce.
    #[error("transaction {last:?} not confirmed within {secs} s after {bumps} fee bumps")]
    NotConfirmed {
        /// The hash of the last version sent.
        last: B256,
        /// Fee bumps done.
        bumps: u32,
        /// The deadline in seconds.
        secs: u64,
    },
    /// Signing failed (the local key could not sign the transaction).
    #[error("signing the transaction failed: {0}")]
    Sign(String),
    /// The node refused the raw transaction for a reason retrying will not change.
    #[error("L1 node refused the transaction: {0}")]
    Refused(String),
}
