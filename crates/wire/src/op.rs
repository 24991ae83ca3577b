//! Names of operations and of their outcomes, shared by the manager's records, its metrics and
//! the nodes' logs, so that no layer spells them as free strings.

use serde::{Deserialize, Serialize};

use crate::messages::ErrorCode;

/// What an operation does. Serialized in snake_case (`sign_state`, `aux`, …), the form the
/// operation record and the metrics labels have always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Paillier aux-info generation for the membership.
    Aux,
    /// Distributed key generation.
    Keygen,
    /// Signing a caller's digest.
    Sign,
    /// Signing a checked state batch (or its rollback).
    SignState,
    /// Background presignature generation.
    Presign,
    /// Resharing to another committee or threshold.
    Reshare,
    /// Refreshing the shares of an unchanged committee.
    Refresh,
    /// Deleting a key.
    Delete,
}

impl OpKind {
    /// Every kind, for metrics that pre-register their label sets.
    pub const ALL: [OpKind; 8] = [
        OpKind::Aux,
        OpKind::Keygen,
        OpKind::Sign,
        OpKind::SignState,
        OpKind::Presign,
        OpKind::Reshare,
        OpKind::Refresh,
        OpKind::Delete,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Aux => "aux",
            OpKind::Keygen => "keygen",
            OpKind::Sign => "sign",
            OpKind::SignState => "sign_state",
            OpKind::Presign => "presign",
            OpKind::Reshare => "reshare",
            OpKind::Refresh => "refresh",
            OpKind::Delete => "delete",
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an operation stands: running, done, or failed (with the code of its error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpOutcome {
    /// Not finished yet.
    Running,
    /// Finished successfully.
    Ok,
    /// Finished with an error.
    Failed,
}

impl OpOutcome {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Running => "running",
            OpOutcome::Ok => "ok",
            OpOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for OpOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    /// The snake_case name, as it travels and as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::KeyNotFound => "key_not_found",
            ErrorCode::KeyPending => "key_pending",
            ErrorCode::KeyExists => "key_exists",
            ErrorCode::KeyNotReady => "key_not_ready",
            ErrorCode::NotAParty => "not_a_party",
            ErrorCode::AuxMissing => "aux_missing",
            ErrorCode::ProtocolFailed => "protocol_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NotEnoughParties => "not_enough_parties",
            ErrorCode::JournalConflict => "journal_conflict",
            ErrorCode::ContentRejected => "content_rejected",
            ErrorCode::L2Unavailable => "l2_unavailable",
            ErrorCode::Replayed => "replayed",
            ErrorCode::PresignatureRefused => "presignature_refused",
            ErrorCode::KeyDeleted => "key_deleted",
            ErrorCode::L1Refused => "l1_refused",
            ErrorCode::L1Unavailable => "l1_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_their_serde_form() {
        for k in OpKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for o in [OpOutcome::Running, OpOutcome::Ok, OpOutcome::Failed] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for c in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::KeyNotFound,
            ErrorCode::KeyPending,
            ErrorCode::KeyExists,
            ErrorCode::KeyNotReady,
            ErrorCode::NotAParty,
            ErrorCode::AuxMissing,
            ErrorCode::ProtocolFailed,
            ErrorCode::Timeout,
            ErrorCode::NotEnoughParties,
            ErrorCode::JournalConflict,
            ErrorCode::ContentRejected,
            ErrorCode::L2Unavailable,
            ErrorCode::Replayed,
            ErrorCode::PresignatureRefused,
            ErrorCode::KeyDeleted,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
