//! Keygen (design table, row "keygen" — [`crate::operations`]): all n parties must be ready. A
//! READY record for the key id is returned as it is, with no new keygen; a PENDING one is
//! refused as concurrent; otherwise the node writes PENDING at start, then READY with the
//! share, or ERROR — so a failed or interrupted keygen never blocks the key id.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::session::Operation;
use cohort_store::{BeginKeygen, KeyStatus};
use cohort_wire::{Address, Bytes32, Committee, ErrorBody, ErrorCode, KeyId, KeyInfo, NodeMsg};

use crate::Inner;
use crate::compute::{self, Run};
use crate::errors::{self, err, key_info, refused};
use crate::session::Prepared;

/// The committee rule (`cohort_wire::Committee`), this node in it, every party a member.
fn check_args(
    inner: &Inner,
    threshold: u16,
    parties: Vec<Address>,
) -> Result<Committee, ErrorBody> {
    let committee =
        Committee::new(parties, threshold).map_err(|e| errors::committee("committee", e))?;
    if !committee.contains(&inner.identity.address()) {
        return Err(err(ErrorCode::NotAParty, "this node is not a party"));
    }
    committee
        .check_members(&inner.members)
        .map_err(|e| errors::committee("committee", e))?;
    Ok(committee)
}

/// Phase 1: the table's rules against this node's record of the key.
pub(crate) fn prepare(
    inner: &Inner,
    session_id: Bytes32,
    key_id: KeyId,
    threshold: u16,
    parties: Vec<Address>,
) -> NodeMsg {
    let committee = match check_args(inner, threshold, parties) {
        Ok(c) => c,
        Err(e) => return refused(session_id, e),
    };
    match inner.store.get_key(&key_id) {
        Ok(Some(r)) if r.status == KeyStatus::Ready => match key_info(&r) {
            Ok(k) => NodeMsg::KeyGenReady {
                session_id,
                existing: Some(k),
            },
            Err(e) => refused(session_id, e),
        },
        Ok(Some(r)) if r.status == KeyStatus::Pending => refused(
            session_id,
            err(
                ErrorCode::KeyPending,
                format!("keygen for {key_id} is already running"),
            ),
        ),
        Ok(_) => {
            inner
                .sessions
                .prepare(session_id, Prepared::Keygen { key_id, committee });
            NodeMsg::KeyGenReady {
                session_id,
                existing: None,
            }
        }
        Err(e) => refused(session_id, errors::store(e)),
    }
}

/// Phase 2: PENDING, the protocol, then READY with the share — or ERROR on any failure.
pub(crate) async fn start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    key_id: KeyId,
    threshold: u16,
    parties: Vec<Address>,
) -> Result<KeyInfo, ErrorBody> {
    inner
        .sessions
        .start_keygen(session_id, &key_id, threshold, &parties)?;
    let addrs: Vec<[u8; 20]> = parties.iter().map(|p| p.0).collect();
    match inner
        .store
        .begin_keygen(&key_id, session_id.0, threshold, addrs)
        .map_err(errors::store)?
    {
        BeginKeygen::Started(_) => {
            if crate::failpoint("keygen_running") {
                // Test hook: die with the PENDING record written, as if killed mid-keygen.
                tracing::error!("failpoint keygen_running: exiting");
                std::process::exit(97);
            }
        }
        BeginKeygen::AlreadyReady(r) => return key_info(&r),
        BeginKeygen::AlreadyPending(_) => {
            return Err(err(
                ErrorCode::KeyPending,
                format!("keygen for {key_id} is already running"),
            ));
        }
    }
    let run = Run {
        session_id,
        operation: Operation::Keygen,
        key_id: &key_id,
        parties,
        params: cohort_engine::keygen::params(threshold),
        timeout: Duration::from_secs(inner.config.timeouts.keygen_secs.max(1)),
        what: "keygen",
    };
    let ran = compute::start(inner, run, |binding, me, incoming, outgoing| async move {
        cohort_engine::keygen::keygen(&binding, &me, threshold, incoming, outgoing).await
    })
    .await;
    // Every failure after the PENDING record is written marks it ERROR, so the id is free again.
    let result = ran.and_then(|core| {
        let bytes = core.to_bytes().map_err(errors::engine)?;
        let pk = core.public_key().uncompressed();
        let rec = inner
            .store
            .finish_keygen(&key_id, session_id.0, &pk, &bytes)
            .map_err(errors::store)?;
        Ok((rec, core.public_key().address_checksummed()))
    });
    match result {
        Ok((rec, address)) => {
            tracing::info!(%address, "key generated");
            key_info(&rec)
        }
        Err(e) => {
            if let Err(se) = inner.store.fail_keygen(&key_id, session_id.0, &e.message) {
                tracing::error!(error = %se, "could not mark failed keygen");
            }
            tracing::warn!(error = %e.message, "keygen failed");
            Err(e)
        }
    }
}
