//! The operation record (`GET /v1/operations/{session_id}`): who was asked, who was ready, who
//! refused and why, who was absent, who ran the protocol, and how it ended — and the error an
//! operation answers with, built from that record, never field by field.

use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, OpKind, OpOutcome};
use serde::{Deserialize, Serialize};

/// A node's refusal, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Who refused.
    pub address: Address,
    /// Why.
    pub error: ErrorBody,
}

/// Everything recorded about one operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpRecord {
    /// Session id.
    pub session_id: Bytes32,
    /// What the operation does.
    pub operation: OpKind,
    /// Key concerned (empty for aux info).
    pub key_id: String,
    /// Parties asked.
    pub parties: Vec<Address>,
    /// Parties that answered ready.
    pub ready: Vec<Address>,
    /// Parties that refused, with reasons.
    pub refused: Vec<Refusal>,
    /// Parties that did not answer (or were not connected, or disconnected).
    pub absent: Vec<Address>,
    /// Parties chosen to run the protocol.
    pub signers: Vec<Address>,
    /// Digest signed, for signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Bytes32>,
    /// What was signed, for content with a context (a state batch: its blocks and slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// True when a state batch was rejected and its rollback signed instead.
    #[serde(default)]
    pub roll_back: bool,
    /// The presignature this signing used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presignature: Option<Bytes32>,
    /// The failed attempt (with a presignature) this signing retried in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<Bytes32>,
    /// For an answer from the signature cache: the operation that signed it (no protocol
    /// ran in this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_cache: Option<Bytes32>,
    /// Per willing node, how long its L2 look-up of a state batch took (ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l2_checks: Vec<(Address, u64)>,
    /// running, ok or failed.
    pub outcome: OpOutcome,
    /// The failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Parties blamed.
    pub culprits: Vec<Address>,
    /// Start time (unix ms).
    pub started_at_ms: u64,
    /// Duration in ms.
    pub duration_ms: u64,
}

impl OpRecord {
    /// A running record of a fresh operation.
    pub(crate) fn new(
        session_id: Bytes32,
        operation: OpKind,
        key_id: &str,
        parties: Vec<Address>,
    ) -> Self {
        OpRecord {
            session_id,
            operation,
            key_id: key_id.into(),
            parties,
            ready: Vec::new(),
            refused: Vec::new(),
            absent: Vec::new(),
            signers: Vec::new(),
            digest: None,
            context: None,
            roll_back: false,
            presignature: None,
            retry_of: None,
            from_cache: None,
            l2_checks: Vec::new(),
            outcome: OpOutcome::Running,
            error: None,
            culprits: Vec::new(),
            started_at_ms: crate::now_ms(),
            duration_ms: 0,
        }
    }

    /// `refused` as one line for error messages.
    pub(crate) fn describe_refusals(&self) -> String {
        if self.refused.is_empty() {
            return "none".into();
        }
        self.refused
            .iter()
            .map(|r| format!("{} ({})", r.address, r.error.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The error of a failed operation, with the parts of its record that explain it.
#[derive(Debug, Clone)]
pub struct OpError {
    /// What failed.
    pub error: ErrorBody,
    /// Members that did not answer.
    pub absent: Vec<Address>,
    /// Refusals.
    pub refused: Vec<Refusal>,
    /// Members that were willing.
    pub ready: Vec<Address>,
    /// The session, for `GET /v1/operations/{id}`; None when no operation started.
    pub session_id: Option<Bytes32>,
}

impl OpError {
    /// An error raised before any node was asked (no record).
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        OpError {
            error: ErrorBody::new(code, message),
            absent: Vec::new(),
            refused: Vec::new(),
            ready: Vec::new(),
            session_id: None,
        }
    }

    /// A `BadRequest` raised before any node was asked.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// No live key `key_id`.
    pub(crate) fn not_found(key_id: &str) -> Self {
        Self::new(ErrorCode::KeyNotFound, format!("no key {key_id}"))
    }

    /// The failure of the operation `record` describes.
    pub(crate) fn from_record(record: &OpRecord, error: ErrorBody) -> Self {
        OpError {
            error,
            absent: record.absent.clone(),
            refused: record.refused.clone(),
            ready: record.ready.clone(),
            session_id: Some(record.session_id),
        }
    }
}

/// The code a failed prepare answers with, from the mix of refusals (one rule, tested in
/// `tests::refusal_codes`): a journal conflict first (the request would change a root already
/// signed for a state-chain element — the one thing a batch submitter must not retry), then a
/// content disagreement, then a node without its L2, then a keygen already running; otherwise,
/// simply too few willing parties. (The rollback path reads the disagreements itself, before
/// any failure is answered.)
pub(crate) fn refusal_code(refused: &[Refusal]) -> ErrorCode {
    const PRIORITY: [ErrorCode; 4] = [
        ErrorCode::JournalConflict,
        ErrorCode::ContentRejected,
        ErrorCode::L2Unavailable,
        ErrorCode::KeyPending,
    ];
    PRIORITY
        .into_iter()
        .find(|c| refused.iter().any(|r| r.error.code == *c))
        .unwrap_or(ErrorCode::NotEnoughParties)
}

/// A party list for messages: "a, b" or "none".
pub(crate) fn list(a: &[Address]) -> String {
    if a.is_empty() {
        "none".into()
    } else {
        a.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
