//! Deleting a key. Its rules: tombstone in the registry first (so the key is gone for the API
//! at once), then every holder is told; a holder that is offline, or goes away meanwhile, is
//! told again when it reconnects ([`redeliver_deletes`]).

use std::sync::Arc;
use std::time::Instant;

use cohort_wire::{Address, Bytes32, ErrorCode, KeyId, ManagerMsg, NodeMsg, OpKind};
use rand::RngCore;
use tracing::Instrument;

use crate::State;
use crate::handshake::{Op, Rule, secs};
use crate::record::{OpError, OpRecord};

/// Deletes `key_id` everywhere; the record's `ready` are the holders that confirmed, `absent`
/// those that will be told when they reconnect.
pub(crate) async fn delete(state: &Arc<State>, key_id: &KeyId) -> Result<OpRecord, OpError> {
    let _lock = state.key_locks.claim(key_id, "deletion")?;
    let _active = state.active.enter();
    let mut key = super::live_key(state, key_id)?;
    state.pool.discard(key_id);
    key.deleted = true;
    state
        .registry
        .put(&key)
        .map_err(|e| OpError::new(ErrorCode::Internal, e.to_string()))?;
    let op = Op::new(state, OpKind::Delete, key_id, key.parties.clone());
    let span = op.span();
    run(op, key_id.clone(), key.key_session_id)
        .instrument(span)
        .await
}

/// Every holder is told which sharing the delete targets (`key_session_id`, from the
/// registry), so a node holding another sharing refuses instead of deleting it.
async fn run(mut op: Op, key_id: KeyId, key_session_id: Bytes32) -> Result<OpRecord, OpError> {
    let session_id = op.session();
    let parties = op.record.parties.clone();
    let until = Instant::now() + secs(op.state.config.timeouts.prepare_secs);
    let results = op
        .run_phase(
            &parties,
            || ManagerMsg::KeyDelete {
                session_id,
                key_id: key_id.clone(),
                key_session_id,
            },
            until,
            Rule::Acks,
            |_, msg| match msg {
                NodeMsg::KeyDeleted { .. } => Some(Ok(())),
                _ => None,
            },
        )
        .await;
    op.record.absent.extend(results.missing.iter().copied());
    op.record.ready = results.oks().into_iter().map(|(a, ())| a).collect();
    op.finish(Ok(())).map(|(_, r)| r)
}

/// A reconnect hook: tells `address` about keys deleted while it was away.
pub(crate) fn redeliver_deletes(state: &State, address: &Address) {
    let Ok(keys) = state.registry.list() else {
        return;
    };
    for k in keys
        .into_iter()
        .filter(|k| k.deleted && k.parties.contains(address))
    {
        let mut s = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        state.links.send(
            address,
            ManagerMsg::KeyDelete {
                session_id: Bytes32(s),
                key_id: k.key_id,
                key_session_id: k.key_session_id,
            },
        );
    }
}
