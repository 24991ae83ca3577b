//! Typed engine errors. Every error that another party can cause names that party (by address)
//! wherever cggmp21 or our own checks can tell, so that the manager can blame and slash.
//! No error carries secret material.

use thiserror::Error;

use crate::session::{Operation, PartyId};

/// What went wrong in the engine.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The caller asked for something impossible (bad threshold, unknown party, wrong key…).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A party sent bytes that do not decode as a message of this protocol.
    #[error("{culprit} sent a malformed {operation} message: {reason}")]
    Malformed {
        /// The run in which it happened.
        operation: Operation,
        /// Who sent it (as told by the transport).
        culprit: PartyId,
        /// Why decoding failed.
        reason: String,
    },

    /// A party sent a message tagged with another session's binding (replay or misrouting).
    #[error("{culprit} sent a message of another session to this {operation} run")]
    WrongSession {
        /// The run in which it happened.
        operation: Operation,
        /// Who sent it.
        culprit: PartyId,
    },

    /// The protocol aborted because one or more parties misbehaved.
    #[error("{operation} aborted by {culprits:?}: {reason}")]
    Aborted {
        /// The run that aborted.
        operation: Operation,
        /// Parties proven (or detected) to have cheated; empty when the protocol cannot tell.
        culprits: Vec<PartyId>,
        /// Which check failed.
        reason: String,
    },

    /// The transport failed (a channel closed, a send failed) — nobody is blamed.
    #[error("{operation} transport failed: {reason}")]
    Transport {
        /// The run that failed.
        operation: Operation,
        /// What the transport said.
        reason: String,
    },

    /// A key share, aux info or presignature failed validation or decoding.
    #[error("invalid key material: {0}")]
    InvalidShare(String),

    /// Combined partial signatures do not form a valid signature for the key.
    #[error("combined signature does not verify against the key")]
    InvalidSignature,

    /// Internal error in cggmp21 or in our code (a bug, not another party's fault).
    #[error("internal error in {operation}: {reason}")]
    Internal {
        /// The run that failed.
        operation: Operation,
        /// What failed.
        reason: String,
    },
}

impl EngineError {
    /// Parties to blame for this error, if any.
    pub fn culprits(&self) -> Vec<PartyId> {
        match self {
            EngineError::Malformed { culprit, .. } | EngineError::WrongSession { culprit, .. } => {
                vec![*culprit]
            }
            EngineError::Aborted { culprits, .. } => culprits.clone(),
            // Exhaustive on purpose (FROST's rule): a new variant must decide here whether it
            // names someone.
            EngineError::InvalidInput(_)
            | EngineError::Transport { .. }
            | EngineError::InvalidShare(_)
            | EngineError::InvalidSignature
            | EngineError::Internal { .. } => Vec::new(),
        }
    }
}
