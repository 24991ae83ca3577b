//! Distributed key generation. Its rules: a checked committee of members; an existing key with
//! the same parameters is answered as it is, with other parameters refused (409); every party
//! must be ready and every party must finish (the first failure ends it); every party must
//! report exactly the key asked for, with one public key; after a failure nobody keeps a piece.

use std::sync::Arc;
use std::time::Instant;

use cohort_engine::PublicKey;
use cohort_wire::{
    Address, Committee, ErrorBody, ErrorCode, HexBytes, KeyId, KeyInfo, ManagerMsg, NodeMsg, OpKind,
};
use tracing::Instrument;

use crate::handshake::{Op, Rule, secs};
use crate::persist::registry::KeyEntry;
use crate::record::{OpError, OpRecord, list, refusal_code};
use crate::{State, now_ms};

/// Keygen for `key_id` among `parties` (default: every connected member). `Ok((key, None))`
/// when the key already exists with these parameters.
pub(crate) async fn keygen(
    state: &Arc<State>,
    key_id: KeyId,
    threshold: u16,
    parties: Option<Vec<Address>>,
) -> Result<(KeyEntry, Option<OpRecord>), OpError> {
    if let Ok(Some(k)) = state.registry.get(&key_id)
        && !k.deleted
    {
        return same_key(k, threshold, parties.as_deref()).map(|k| (k, None));
    }
    let parties = parties.unwrap_or_else(|| state.links.connected(&state.config.members));
    let committee = Committee::new(parties, threshold)
        .map_err(|e| OpError::bad_request(format!("{e} (parties available)")))?;
    committee
        .check_members(&state.config.members)
        .map_err(|e| OpError::bad_request(e.to_string()))?;
    let _lock = state.key_locks.claim(&key_id, "keygen")?;
    let _active = state.active.enter();
    // Aux info first, so that the key can sign as soon as it exists.
    if let Err(e) = super::aux::ensure_aux(state).await {
        tracing::warn!(error = %e.error.message, "aux-info generation failed; keygen goes on");
    }
    let op = Op::new(state, OpKind::Keygen, &key_id, committee.parties().to_vec());
    let span = op.span();
    run(op, key_id, committee)
        .instrument(span)
        .await
        .map(|(k, r)| (k, Some(r)))
}

/// An existing key answers a keygen only if asked with its own parameters (the committee is
/// compared only when the request names one: the default is "whoever is connected").
fn same_key(k: KeyEntry, threshold: u16, parties: Option<&[Address]>) -> Result<KeyEntry, OpError> {
    if k.threshold == threshold && parties.is_none_or(|p| p == k.parties) {
        return Ok(k);
    }
    Err(OpError::new(
        ErrorCode::KeyExists,
        format!(
            "key {} already exists as {}-of-{} ({}); it is not generated again with other parameters",
            k.key_id,
            k.threshold,
            k.parties.len(),
            list(&k.parties)
        ),
    ))
}

async fn run(
    mut op: Op,
    key_id: KeyId,
    committee: Committee,
) -> Result<(KeyEntry, OpRecord), OpError> {
    let state = op.state.clone();
    let session_id = op.session();
    let threshold = committee.threshold();
    let parties = committee.parties().to_vec();
    let timeouts = state.config.timeouts.clone();
    let ready = op
        .prepare(
            &parties,
            || ManagerMsg::KeyGenPrepare {
                session_id,
                key_id: key_id.clone(),
                threshold,
                parties: parties.clone(),
                election: None,
            },
            Instant::now() + secs(timeouts.prepare_secs),
            |_| false,
        )
        .await;
    op.pending_absent();
    if !op.record.refused.is_empty() || !op.record.absent.is_empty() {
        let e = ErrorBody::new(
            refusal_code(&op.record.refused),
            format!(
                "keygen needs every party ready; refused: {}; absent: {}",
                op.record.describe_refusals(),
                list(&op.record.absent)
            ),
        );
        return op.finish(Err(e));
    }
    let existing: Vec<KeyInfo> = ready
        .into_iter()
        .filter_map(|(_, m)| match m {
            NodeMsg::KeyGenReady { existing, .. } => existing,
            _ => None,
        })
        .collect();
    if existing.len() == parties.len()
        && existing.iter().all(|k| *k == existing[0])
        && existing[0].key_id == key_id
        && existing[0].threshold == threshold
        && existing[0].parties == parties
    {
        let entry = entry_of(&existing[0]);
        if let Err(e) = state.registry.put(&entry) {
            tracing::error!(error = %e, "registry write failed");
        }
        return op.finish(Ok(entry));
    }
    if !existing.is_empty() {
        let e = ErrorBody::new(
            ErrorCode::Internal,
            "some parties already hold this key id (or hold it with another threshold or \
             committee); it is not in the registry: recover or remove those shares first",
        );
        return op.finish(Err(e));
    }
    op.record.signers = parties.clone();
    let results = op
        .run_phase(
            &parties,
            || ManagerMsg::KeyGenStart {
                session_id,
                key_id: key_id.clone(),
                threshold,
                parties: parties.clone(),
            },
            Instant::now() + secs(timeouts.keygen_secs),
            Rule::FailFast,
            |_, msg| match msg {
                NodeMsg::KeyGenFinish { result, .. } => Some(result),
                _ => None,
            },
        )
        .await;
    let infos: Vec<KeyInfo> = match op.completed(results, "keygen") {
        Ok(oks) => oks.into_iter().map(|(_, i)| i).collect(),
        Err(e) => {
            discard_failed_keygen(&op, &key_id, &parties);
            return op.finish(Err(e));
        }
    };
    // The registry entry is built from what was asked, not from what nodes say; every node
    // must report exactly that key, with one public key.
    let expected = |i: &KeyInfo| {
        i.key_id == key_id
            && i.key_session_id == session_id
            && i.threshold == threshold
            && i.parties == parties
            && i.public_key == infos[0].public_key
    };
    if infos.is_empty()
        || !infos.iter().all(expected)
        || PublicKey::from_sec1(&infos[0].public_key.0).is_err()
    {
        let e = ErrorBody::new(
            ErrorCode::ProtocolFailed,
            "parties disagree on the key they generated (or reported an invalid public key)",
        );
        discard_failed_keygen(&op, &key_id, &parties);
        return op.finish(Err(e));
    }
    let entry = KeyEntry {
        key_id: key_id.clone(),
        key_session_id: session_id,
        threshold,
        parties: parties.clone(),
        public_key: infos[0].public_key.clone(),
        deleted: false,
        created_at_ms: now_ms(),
        pending_commit: Vec::new(),
        acks: Vec::new(),
    };
    if let Err(e) = state.registry.put(&entry) {
        let e = ErrorBody::new(ErrorCode::Internal, format!("registry: {e}"));
        return op.finish(Err(e));
    }
    op.finish(Ok(entry))
}

/// After a failed keygen nobody may keep a piece of the key: parties that finished would
/// otherwise hold a READY share under an id the registry does not know, and the id could
/// neither be generated again nor deleted. Their acknowledgements are not awaited; a tombstone
/// naming the parties gets the delete to those unreachable now when they reconnect.
fn discard_failed_keygen(op: &Op, key_id: &KeyId, parties: &[Address]) {
    let mut holders = parties.to_vec();
    if let Ok(Some(old)) = op.state.registry.get(key_id)
        && old.deleted
    {
        holders.extend(old.parties.into_iter().filter(|p| !parties.contains(p)));
    }
    let tombstone = KeyEntry {
        key_id: key_id.clone(),
        key_session_id: op.session(),
        threshold: 0,
        parties: holders,
        public_key: HexBytes(Vec::new()),
        deleted: true,
        created_at_ms: now_ms(),
        pending_commit: Vec::new(),
        acks: Vec::new(),
    };
    if let Err(e) = op.state.registry.put(&tombstone) {
        tracing::error!(%key_id, error = %e, "registry write failed");
    }
    let session_id = op.session();
    let missed = op.broadcast(parties, || ManagerMsg::KeyDelete {
        session_id,
        key_id: key_id.clone(),
        key_session_id: session_id,
    });
    tracing::warn!(%key_id, unreachable = ?missed, "keygen failed: partial shares discarded");
}

fn entry_of(k: &KeyInfo) -> KeyEntry {
    KeyEntry {
        key_id: k.key_id.clone(),
        key_session_id: k.key_session_id,
        threshold: k.threshold,
        parties: k.parties.clone(),
        public_key: k.public_key.clone(),
        deleted: false,
        created_at_ms: now_ms(),
        pending_commit: Vec::new(),
        acks: Vec::new(),
    }
}
