//! How the node's errors become the wire's [`ErrorBody`], in one place, and the conversions
//! between wire, engine and store vocabulary (`pid`, `key_info`).
//!
//! The matches are exhaustive on purpose (FROST's `culprits()` rule): a new engine or store
//! error variant does not compile until someone decides which code it travels with. They are
//! functions rather than `From` impls because neither `ErrorBody` nor the leaf errors belong
//! to this crate.

use cohort_engine::EngineError;
use cohort_engine::session::PartyId;
use cohort_store::{KeyRecord, StoreError};
use cohort_wire::{
    Address, Bytes32, CommitteeError, ErrorBody, ErrorCode, HexBytes, KeyId, KeyInfo, NodeMsg,
};

/// An error answer with `code` and a message for the operator.
pub(crate) fn err(code: ErrorCode, msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, msg)
}

/// A refusal of session `session_id` (phase 1 or an unknown start).
pub(crate) fn refused(session_id: Bytes32, error: ErrorBody) -> NodeMsg {
    NodeMsg::Refused { session_id, error }
}

/// An engine error with its code and, where the protocol can tell, its culprits.
pub(crate) fn engine(e: EngineError) -> ErrorBody {
    let code = match &e {
        EngineError::InvalidInput(_) => ErrorCode::BadRequest,
        EngineError::InvalidShare(_) | EngineError::Internal { .. } => ErrorCode::Internal,
        EngineError::Malformed { .. }
        | EngineError::WrongSession { .. }
        | EngineError::Aborted { .. }
        | EngineError::Transport { .. }
        | EngineError::InvalidSignature => ErrorCode::ProtocolFailed,
    };
    ErrorBody {
        code,
        message: e.to_string(),
        culprits: e.culprits().into_iter().map(|p| Address(p.0)).collect(),
    }
}

/// A store error: always this node's own fault, so `internal` (the message names the record,
/// never its content).
pub(crate) fn store(e: StoreError) -> ErrorBody {
    let code = match &e {
        // The node validates what it stores before it asks; a store refusal here is a bug or
        // a damaged file, not the caller's fault.
        StoreError::Tombstoned { .. } => ErrorCode::KeyDeleted,
        StoreError::WrongPassphrase { .. }
        | StoreError::Corrupt { .. }
        | StoreError::Unauthentic { .. }
        | StoreError::Conflict(_)
        | StoreError::InvalidInput(_)
        | StoreError::Format { .. }
        | StoreError::Kdf(_)
        | StoreError::Io { .. }
        | StoreError::Database(_) => ErrorCode::Internal,
    };
    err(code, format!("store: {e}"))
}

/// The refusal for a key this node has no live record of: `key_deleted` if it was deleted
/// here (its share tombstoned or erased), else `key_not_found`.
pub(crate) fn missing_key(inner: &crate::Inner, key_id: &str) -> ErrorBody {
    match inner.store.deleted_at_ms(key_id) {
        Ok(Some(_)) => err(
            ErrorCode::KeyDeleted,
            format!("key {key_id} was deleted on this node; it cannot be used"),
        ),
        _ => err(ErrorCode::KeyNotFound, format!("no key {key_id}")),
    }
}

/// A committee that breaks the one rule of `cohort_wire::Committee`; `what` names it.
pub(crate) fn committee(what: &str, e: CommitteeError) -> ErrorBody {
    let code = match &e {
        CommitteeError::Duplicate(_)
        | CommitteeError::Threshold { .. }
        | CommitteeError::TooMany(_)
        | CommitteeError::NotAMember(_) => ErrorCode::BadRequest,
    };
    err(code, format!("{what}: {e}"))
}

/// A wire address as the engine's party id.
pub(crate) fn pid(a: &Address) -> PartyId {
    PartyId(a.0)
}

/// A stored record as the wire's key facts.
pub(crate) fn key_info(r: &KeyRecord) -> Result<KeyInfo, ErrorBody> {
    let key_id = KeyId::new(r.key_id.clone())
        .map_err(|e| err(ErrorCode::Internal, format!("stored key id: {e}")))?;
    Ok(KeyInfo {
        key_id,
        key_session_id: Bytes32(r.key_session_id),
        threshold: r.threshold,
        parties: r.parties.iter().map(|p| Address(*p)).collect(),
        public_key: HexBytes(r.public_key.clone().unwrap_or_default()),
    })
}
