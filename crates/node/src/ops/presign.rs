//! Presignatures on the node: generated in the background for a signer set the manager picks,
//! stored encrypted, and consumed exactly once — the store removes the piece and marks its id
//! used in one transaction *before* the partial signature is computed and leaves the node, so a
//! crash between the two steps loses the presignature instead of ever reusing it.
//! (Design table, row "sign": presignatures are consumed exactly once — [`crate::operations`].)
//!
//! Single use must also survive a restore: a store copied from a backup or a VM snapshot still
//! holds pieces the live node has since used, and cannot know which. So every unused piece is
//! discarded when the node starts ([`discard_at_start`], marked used like any other discard):
//! a presignature lives only within one run of the node. The cost is a pool refill after a
//! restart; the manager's first presigned attempt for such a piece fails and it signs in full.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::Presignature;
use cohort_engine::session::{Operation, PartyId};
use cohort_store::{KeyStatus, Store, StoreError};
use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, HexBytes, KeyId, NodeMsg};

use crate::compute::{self, Run};
use crate::errors::{self, err, pid, refused};
use crate::session::Prepared;
use crate::{Inner, shares};

/// The sharing must be this node's READY one, and the signers t of its holders, this node
/// among them.
pub(crate) fn check(
    inner: &Inner,
    key_id: &str,
    key_session_id: &Bytes32,
    signers: &[Address],
) -> Result<(), ErrorBody> {
    let rec = inner
        .store
        .get_key(key_id)
        .map_err(errors::store)?
        .filter(|r| r.status == KeyStatus::Ready)
        .ok_or_else(|| err(ErrorCode::KeyNotFound, format!("no READY key {key_id}")))?;
    if rec.key_session_id != key_session_id.0 {
        return Err(err(ErrorCode::KeyNotReady, "stale sharing"));
    }
    if signers.len() != usize::from(rec.threshold)
        || !signers.contains(&inner.identity.address())
        || signers.iter().any(|s| !rec.parties.contains(&s.0))
    {
        return Err(err(
            ErrorCode::BadRequest,
            "signer set is not t holders including this node",
        ));
    }
    Ok(())
}

/// Phase 1: willing if this node holds the sharing and is one of the t signers.
pub(crate) fn prepare(
    inner: &Inner,
    session_id: Bytes32,
    key_id: KeyId,
    key_session_id: Bytes32,
    signers: Vec<Address>,
) -> NodeMsg {
    if let Err(e) = check(inner, &key_id, &key_session_id, &signers)
        .and_then(|_| shares::load_share(inner, &key_id).map(|_| ()))
    {
        return refused(session_id, e);
    }
    inner.sessions.prepare(
        session_id,
        Prepared::Presign {
            key_id,
            key_session_id,
            signers,
        },
    );
    NodeMsg::PresignReady { session_id }
}

/// Phase 2: runs presigning and stores this node's piece under the session id.
pub(crate) async fn start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    key_id: KeyId,
    key_session_id: Bytes32,
    signers: Vec<Address>,
) -> Result<(), ErrorBody> {
    inner
        .sessions
        .start_presign(session_id, &key_id, &key_session_id, &signers)?;
    let share = shares::load_share(inner, &key_id)?;
    let run = Run {
        session_id,
        operation: Operation::Presign,
        key_id: &key_id,
        parties: signers.clone(),
        params: Vec::new(),
        timeout: Duration::from_secs(inner.config.timeouts.sign_secs.max(1)),
        what: "presigning",
    };
    let presig = compute::start(inner, run, |binding, _me, incoming, outgoing| async move {
        cohort_engine::sign::presign(&binding, &share, incoming, outgoing).await
    })
    .await?;
    let bytes = presig.to_bytes().map_err(errors::engine)?;
    inner
        .store
        .put_presignature(
            &key_id,
            session_id.0,
            signers.iter().map(|s| s.0).collect(),
            &bytes,
        )
        .map_err(errors::store)?;
    tracing::debug!("presignature stored");
    Ok(())
}

/// Consumes presignature `presig` (in one store transaction that also marks it used), then
/// issues the partial signature over `digest`.
pub(crate) fn issue_partial(
    inner: &Inner,
    key_id: &str,
    presig: Bytes32,
    digest: &Bytes32,
    signers: &[Address],
) -> Result<HexBytes, ErrorBody> {
    let bytes = inner
        .store
        .take_presignature(key_id, presig.0)
        .map_err(errors::store)?
        .ok_or_else(|| {
            err(
                ErrorCode::BadRequest,
                format!("presignature {presig} is unknown or was already used"),
            )
        })?;
    if crate::failpoint("presignature_consumed") {
        // Test hook: die between consuming the presignature and sending the partial.
        tracing::error!("failpoint presignature_consumed: exiting");
        std::process::exit(98);
    }
    let presig = Presignature::from_bytes(&bytes).map_err(errors::engine)?;
    let expected: Vec<PartyId> = signers.iter().map(pid).collect();
    if presig.signers() != expected.as_slice() {
        return Err(err(
            ErrorCode::BadRequest,
            "presignature is for another signer set",
        ));
    }
    let partial = presig.issue_partial(&digest.0);
    serde_json::to_vec(&partial)
        .map(HexBytes)
        .map_err(|e| err(ErrorCode::Internal, e.to_string()))
}

/// Discards every unused presignature in `store` (each id marked used, so it can never be
/// stored again), before the node answers anyone: a restored copy of the store cannot tell
/// which of its pieces the live node already used. Returns how many were discarded.
pub(crate) fn discard_at_start(store: &Store) -> Result<u64, StoreError> {
    let mut n = 0;
    for rec in store.list_keys()? {
        n += store.discard_presignatures(&rec.key_id)?;
    }
    if n > 0 {
        tracing::info!(
            discarded = n,
            "unused presignatures discarded at start (single use across restores)"
        );
    }
    Ok(n)
}
