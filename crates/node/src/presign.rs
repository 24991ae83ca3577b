//! Presignatures on the node: generated in the background for a signer set the manager picks,
//! stored encrypted, and consumed exactly once — the store removes the piece and marks its id
//! used in one transaction *before* the partial signature is computed and leaves the node, so a
//! crash between the two steps loses the presignature instead of ever reusing it.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::Presignature;
use cohort_engine::session::{Operation, PartyId, SessionBinding};
use cohort_store::KeyStatus;
use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, HexBytes, NodeMsg};

use crate::handlers::{
    engine_err, err, first_start, load_share, pid, refused, remember_prepared, store_err,
    take_prepared,
};
use crate::{Inner, Prepared, bridge};

fn check(
    inner: &Inner,
    key_id: &str,
    key_session_id: &Bytes32,
    signers: &[Address],
) -> Result<(), ErrorBody> {
    let rec = inner
        .store
        .get_key(key_id)
        .map_err(|e| store_err(&e))?
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
    key_id: String,
    key_session_id: Bytes32,
    signers: Vec<Address>,
) -> NodeMsg {
    if let Err(e) = check(inner, &key_id, &key_session_id, &signers)
        .and_then(|_| load_share(inner, &key_id).map(|_| ()))
    {
        return refused(session_id, e);
    }
    remember_prepared(
        inner,
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
    key_id: String,
    key_session_id: Bytes32,
    signers: Vec<Address>,
) -> Result<(), ErrorBody> {
    match take_prepared(inner, &session_id) {
        Some(Prepared::Presign {
            key_id: k,
            key_session_id: s,
            signers: g,
        }) if k == key_id && s == key_session_id && g == signers => {}
        _ => {
            return Err(err(
                ErrorCode::BadRequest,
                "presign start without a matching prepare",
            ));
        }
    }
    if !first_start(inner, session_id) {
        return Err(err(ErrorCode::Replayed, "session already started"));
    }
    let share = load_share(inner, &key_id)?;
    let ids: Vec<PartyId> = signers.iter().map(pid).collect();
    let binding = SessionBinding::new(session_id.0, Operation::Presign, &key_id, ids, b"")
        .map_err(|e| engine_err(&e))?;
    let me = inner.identity.address();
    let (incoming, outgoing) =
        bridge::delivery(inner.p2p.clone(), session_id.0, signers.clone(), me);
    let timeout = Duration::from_secs(inner.config.timeouts.sign_secs.max(1));
    let presig = crate::compute::run(timeout, "presigning", async move {
        cohort_engine::sign::presign(&binding, &share, incoming, outgoing).await
    })
    .await?;
    let bytes = presig.to_bytes().map_err(|e| engine_err(&e))?;
    inner
        .store
        .put_presignature(
            &key_id,
            session_id.0,
            signers.iter().map(|s| s.0).collect(),
            &bytes,
        )
        .map_err(|e| store_err(&e))?;
    tracing::debug!(%key_id, presignature = %session_id, "presignature stored");
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
        .map_err(|e| store_err(&e))?
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
    let presig = Presignature::from_bytes(&bytes).map_err(|e| engine_err(&e))?;
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
