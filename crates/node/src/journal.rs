//! The node's journal rules for state batches: what it checks before agreeing to sign a batch
//! and records when it signs one.
//!
//! The journal protects state-chain elements, not batch slots: a node never signs two
//! different roots for the same element index (of one key), across managers and restarts. A
//! batch that re-sends already signed roots unchanged and extends them with new, checked ones
//! is allowed — Mantle's batch submitter rebuilds its batch that way after a lost or reverted
//! transaction — and the same batch again is a retry.

use cohort_store::{BatchJournalOutcome, Store};
use cohort_wire::{Bytes32, ErrorBody, ErrorCode, SignContext};

use crate::errors::{self, err};

fn conflict(key_id: &str, outcome: BatchJournalOutcome) -> Result<(), ErrorBody> {
    match outcome {
        BatchJournalOutcome::Conflict {
            index,
            existing,
            batch,
        } => Err(err(
            ErrorCode::JournalConflict,
            format!(
                "journal refusal: state-chain element {index} of {key_id} was already signed with root {}, the batch has {}",
                Bytes32(existing),
                Bytes32(batch)
            ),
        )),
        BatchJournalOutcome::Extends { .. } | BatchJournalOutcome::AllKnown => Ok(()),
    }
}

/// The willingness check: refuses a batch that changes a signed element.
pub(crate) fn check(
    store: &Store,
    key_id: &str,
    offset: u64,
    roots: &[[u8; 32]],
) -> Result<(), ErrorBody> {
    let outcome = store
        .journal_check_batch(key_id, offset, roots)
        .map_err(errors::store)?;
    conflict(key_id, outcome)
}

/// At the start of a signing whose prepare recorded journal slot `slot`: records the batch's
/// roots before any signature share leaves. The roots are taken from the start's context and
/// bound to the prepared digest (which the prepare checked against L2): a start whose roots do
/// not hash to that digest is refused.
pub(crate) fn record(
    store: &Store,
    key_id: &str,
    slot: u64,
    digest: &Bytes32,
    context: &SignContext,
) -> Result<(), ErrorBody> {
    let SignContext::StateBatch {
        offset_starts_at_index,
        state_roots,
        ..
    } = context
    else {
        return Err(err(
            ErrorCode::BadRequest,
            "sign start of a state batch without its roots",
        ));
    };
    let roots: Vec<[u8; 32]> = state_roots.iter().map(|r| r.0).collect();
    if *offset_starts_at_index != slot
        || cohort_rollup::state_batch_digest(&roots, slot) != digest.0
    {
        return Err(err(
            ErrorCode::BadRequest,
            "sign start does not carry the batch this node approved in prepare",
        ));
    }
    let outcome = store
        .journal_sign_batch(key_id, slot, &roots)
        .map_err(errors::store)?;
    conflict(key_id, outcome)
}
