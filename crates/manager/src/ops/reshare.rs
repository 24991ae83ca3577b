//! Resharing (another committee or threshold) and refresh (the same ones). Its rules: a checked
//! committee of members; at least t_old current holders ready and every new party ready; the
//! first t_old ready holders deal; every new party must report the unchanged key; new shares
//! are staged and committed only once every new party has succeeded, otherwise aborted and the
//! old committee keeps signing.
//!
//! The commit state — [`KeyEntry::pending_commit`], the nodes that have not confirmed the
//! commit yet — is written here only: set when the registry switches to the new committee,
//! shrunk by [`confirm_commit`] as confirmations come in (during the operation or after a
//! redelivery, [`redeliver_commits`], run when a node reconnects).

use std::sync::Arc;
use std::time::Instant;

use cohort_wire::{
    Address, Committee, ErrorBody, ErrorCode, KeyId, ManagerMsg, NodeMsg, OpKind, ReshareSpec,
};
use tracing::Instrument;

use crate::State;
use crate::handshake::{Op, Rule, secs};
use crate::persist::registry::KeyEntry;
use crate::record::{OpError, OpRecord, list};

/// Reshares `key_id` to `new_parties` with threshold `new_threshold` (refresh: `None, None`,
/// the same committee and threshold).
pub(crate) async fn reshare(
    state: &Arc<State>,
    key_id: &KeyId,
    new_parties: Option<Vec<Address>>,
    new_threshold: Option<u16>,
) -> Result<(KeyEntry, OpRecord), OpError> {
    let key = super::live_key(state, key_id)?;
    let committee = Committee::new(
        new_parties.unwrap_or_else(|| key.parties.clone()),
        new_threshold.unwrap_or(key.threshold),
    )
    .map_err(|e| OpError::bad_request(e.to_string()))?;
    committee
        .check_members(&state.config.members)
        .map_err(|e| OpError::bad_request(e.to_string()))?;
    let kind = if committee.parties() == key.parties && committee.threshold() == key.threshold {
        OpKind::Refresh
    } else {
        OpKind::Reshare
    };
    let _lock = state.key_locks.claim(key_id, kind.as_str())?;
    if let Err(e) = super::aux::ensure_aux(state).await {
        tracing::warn!(error = %e.error.message, "aux-info generation failed");
    }
    let _active = state.active.enter();
    state.pool.discard(key_id);
    let mut everyone: Vec<Address> = key.parties.clone();
    everyone.extend(
        committee
            .parties()
            .iter()
            .filter(|p| !key.parties.contains(p)),
    );
    let op = Op::new(state, kind, key_id, everyone);
    let span = op.span();
    run(op, key, committee).instrument(span).await
}

/// Ready parties (or participants) of a failed or idle session discard it.
fn abort(op: &Op, key_id: &KeyId, to: &[Address]) {
    let session_id = op.session();
    op.broadcast(to, || ManagerMsg::KeyReshareAbort {
        session_id,
        key_id: key_id.clone(),
    });
}

async fn run(
    mut op: Op,
    key: KeyEntry,
    committee: Committee,
) -> Result<(KeyEntry, OpRecord), OpError> {
    let state = op.state.clone();
    let key_id = key.key_id.clone();
    let session_id = op.session();
    let everyone = op.record.parties.clone();
    let timeouts = state.config.timeouts.clone();
    let (new_parties, new_threshold) = (committee.parties().to_vec(), committee.threshold());
    let mut spec = ReshareSpec {
        key_id: key_id.clone(),
        key_session_id: key.key_session_id,
        old_parties: key.parties.clone(),
        old_threshold: key.threshold,
        new_parties: new_parties.clone(),
        new_threshold,
        public_key: key.public_key.clone(),
        dealers: Vec::new(),
        election: None,
    };
    op.record.context = Some(serde_json::json!({
        "old_parties": key.parties,
        "old_threshold": key.threshold,
        "new_parties": new_parties,
        "new_threshold": new_threshold,
    }));
    op.prepare(
        &everyone,
        || ManagerMsg::KeyResharePrepare {
            session_id,
            spec: spec.clone(),
        },
        Instant::now() + secs(timeouts.prepare_secs),
        |_| false,
    )
    .await;
    op.pending_absent();
    let old_ready: Vec<Address> = key
        .parties
        .iter()
        .filter(|p| op.record.ready.contains(p))
        .copied()
        .collect();
    let new_missing: Vec<Address> = new_parties
        .iter()
        .filter(|p| !op.record.ready.contains(p))
        .copied()
        .collect();
    if old_ready.len() < usize::from(key.threshold) || !new_missing.is_empty() {
        abort(&op, &key_id, &op.record.ready);
        let e = ErrorBody::new(
            ErrorCode::NotEnoughParties,
            format!(
                "resharing needs {} old holders and every new party ready; old holders ready: {}; new parties not ready: {}; refused: {}; absent: {}",
                key.threshold,
                list(&old_ready),
                list(&new_missing),
                op.record.describe_refusals(),
                list(&op.record.absent)
            ),
        );
        return op.finish(Err(e));
    }
    spec.dealers = old_ready[..usize::from(key.threshold)].to_vec();
    let participants = committee.reshare_participants(&spec.dealers);
    op.record.signers = participants.clone();
    // Ready parties that do not take part — old holders that leave without dealing — forget
    // the session but keep their mark: they delete their share on the commit too.
    let idle: Vec<Address> = op
        .record
        .ready
        .iter()
        .filter(|p| !participants.contains(p))
        .copied()
        .collect();
    op.broadcast(&idle, || ManagerMsg::KeySignCancel { session_id });
    let mut prepared = participants.clone();
    prepared.extend(idle.iter().copied());
    let results = op
        .run_phase(
            &participants,
            || ManagerMsg::KeyReshareStart {
                session_id,
                spec: spec.clone(),
            },
            // The resharing, then the new committee's fresh aux-info generation.
            Instant::now() + secs(timeouts.keygen_secs) + secs(timeouts.aux_secs),
            Rule::FailFast,
            |from, msg| match msg {
                NodeMsg::KeyReshareFinish { result, ack, .. } => {
                    Some(result.map(|info| (info, ack)).map_err(|mut e| {
                        if e.culprits.is_empty() && e.code != ErrorCode::ProtocolFailed {
                            e.message = format!("{from}: {}", e.message);
                        }
                        e
                    }))
                }
                _ => None,
            },
        )
        .await;
    let mut acks = Vec::new();
    let failure = match op.completed(results, "resharing") {
        Err(e) => Some(e),
        Ok(infos) => {
            let ok = new_parties.iter().all(|p| {
                infos.iter().any(|(a, (i, ack))| {
                    a == p
                        && ack.as_ref().is_some_and(|ack| ack.party == *p)
                        && i.as_ref().is_some_and(|i| {
                            i.public_key == key.public_key
                                && i.key_session_id == session_id
                                && i.parties == new_parties
                                && i.threshold == new_threshold
                        })
                })
            });
            acks = new_parties
                .iter()
                .filter_map(|p| {
                    infos
                        .iter()
                        .find(|(a, _)| a == p)
                        .and_then(|(_, (_, ack))| ack.clone())
                })
                .collect();
            (!ok).then(|| {
                ErrorBody::new(
                    ErrorCode::ProtocolFailed,
                    "new parties did not all report the unchanged key with their acknowledgement",
                )
            })
        }
    };
    if let Some(e) = failure {
        abort(&op, &key_id, &prepared);
        return op.finish(Err(e));
    }
    // Every new party holds its staged share: switch the registry, then commit everywhere.
    let entry = KeyEntry {
        key_id: key_id.clone(),
        key_session_id: session_id,
        threshold: new_threshold,
        parties: new_parties.clone(),
        public_key: key.public_key.clone(),
        deleted: false,
        created_at_ms: key.created_at_ms,
        pending_commit: everyone.clone(),
        acks,
    };
    if let Err(e) = state.registry.put(&entry) {
        abort(&op, &key_id, &prepared);
        return op.finish(Err(ErrorBody::new(
            ErrorCode::Internal,
            format!("registry: {e}"),
        )));
    }
    // Confirmations shrink `pending_commit` through `confirm_commit` (a frame hook), whether
    // they come now or after a redelivery; this phase only waits for them.
    let results = op
        .run_phase(
            &everyone,
            || commit_msg(&entry),
            Instant::now() + secs(timeouts.prepare_secs),
            Rule::Acks,
            |_, msg| match msg {
                NodeMsg::KeyReshareDone { result, .. } => Some(result),
                _ => None,
            },
        )
        .await;
    op.record.absent.extend(results.missing.iter().copied());
    for (from, r) in &results.results {
        if let Err(e) = r {
            tracing::error!(%from, error = %e.message, "commit failed on node");
        }
    }
    let entry = match state.registry.get(&key_id) {
        Ok(Some(current)) => current,
        _ => entry,
    };
    if !entry.pending_commit.is_empty() {
        tracing::warn!(pending = ?entry.pending_commit, "commit not yet confirmed; resent when they reconnect");
    }
    op.finish(Ok(entry))
}

fn commit_msg(k: &KeyEntry) -> ManagerMsg {
    ManagerMsg::KeyReshareCommit {
        session_id: k.key_session_id,
        key_id: k.key_id.clone(),
        new_parties: k.parties.clone(),
        acks: k.acks.clone(),
    }
}

/// A frame hook: a node's confirmation of the current sharing's commit takes it off
/// `pending_commit`. The only place `pending_commit` shrinks.
pub(crate) fn confirm_commit(state: &State, from: Address, msg: &NodeMsg) {
    let NodeMsg::KeyReshareDone {
        key_id,
        result: Ok(()),
        session_id,
    } = msg
    else {
        return;
    };
    // One transaction per confirmation: several links confirm at once.
    let confirmed = state.registry.update(key_id, |k| {
        if k.key_session_id != *session_id || !k.pending_commit.contains(&from) {
            return false;
        }
        k.pending_commit.retain(|a| *a != from);
        true
    });
    if let Err(e) = confirmed {
        tracing::error!(error = %e, "registry write failed");
    }
}

/// A reconnect hook: resends the resharing commits `address` missed.
pub(crate) fn redeliver_commits(state: &State, address: &Address) {
    let Ok(keys) = state.registry.list() else {
        return;
    };
    for k in keys
        .iter()
        .filter(|k| !k.deleted && k.pending_commit.contains(address))
    {
        tracing::info!(%address, key_id = %k.key_id, session = %k.key_session_id, "resharing commit redelivered");
        state.links.send(address, commit_msg(k));
    }
}
