//! Deleting a key (design table, row "delete"), two-step and bound. The delete names the
//! sharing it targets (`key_session_id`); a node holding another sharing refuses it, so a
//! delete meant for an old sharing (or replayed after a resharing) cannot destroy the current
//! one. The share is tombstoned — kept sealed for `deletes.retention_secs`, refused for
//! signing and every other use, listed in the node's status — and the cached share is
//! forgotten; [`start_erase_sweep`] erases it from the store file after the retention.
//! Idempotent: a redelivered delete answers again without changing anything.

use std::sync::Arc;
use std::time::Duration;

use cohort_store::TombstoneOutcome;
use cohort_wire::{Bytes32, ErrorBody, ErrorCode, KeyId};

use crate::errors::{self, err};
use crate::{Inner, shares};

/// Tombstones `key_id` if this node holds sharing `key_session_id`: `Ok(true)` if it held the
/// key (now or before, for a redelivered delete), `Ok(false)` if it never had it, and a
/// refusal if it holds another sharing.
pub(crate) fn delete(
    inner: &Inner,
    key_id: &KeyId,
    key_session_id: &Bytes32,
) -> Result<bool, ErrorBody> {
    let retention_ms = inner.config.deletes.retention_secs.saturating_mul(1000);
    let outcome = inner
        .store
        .tombstone_key(key_id, key_session_id.0, retention_ms)
        .map_err(errors::store)?;
    shares::forget(inner, key_id);
    match outcome {
        TombstoneOutcome::Tombstoned(t) => {
            tracing::info!(erase_after_ms = t.erase_after_ms, "key tombstoned");
            Ok(true)
        }
        TombstoneOutcome::AlreadyDeleted(_) => Ok(true),
        TombstoneOutcome::NotFound => Ok(false),
        TombstoneOutcome::OtherSharing { held } => {
            tracing::warn!(
                held = %Bytes32(held),
                named = %key_session_id,
                "delete refused: it names another sharing than the one this node holds"
            );
            Err(err(
                ErrorCode::KeyNotReady,
                format!(
                    "delete of {key_id} names sharing {key_session_id}, this node holds {}",
                    Bytes32(held)
                ),
            ))
        }
    }
}

/// Erases tombstones whose retention ended, every `deletes.sweep_interval_secs`, on a
/// blocking thread (the erase compacts the store file); a sweep that outlives
/// `deletes.sweep_timeout_secs` is reported and the next one waits for it to end.
pub(crate) fn start_erase_sweep(inner: Arc<Inner>) {
    let every = Duration::from_secs(inner.config.deletes.sweep_interval_secs.max(1));
    let limit = Duration::from_secs(inner.config.deletes.sweep_timeout_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = inner.store.clone();
            let mut job = tokio::task::spawn_blocking(move || store.erase_expired());
            let outcome = match tokio::time::timeout(limit, &mut job).await {
                Ok(done) => done,
                Err(_) => {
                    tracing::error!(?limit, "erase sweep is taking too long; waiting for it");
                    job.await
                }
            };
            match outcome {
                Ok(Ok(report)) => {
                    for t in &report.erased {
                        tracing::info!(key_id = %t.key_id, "tombstoned share erased");
                    }
                    if report.compacted {
                        tracing::debug!("store file compacted");
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "erase sweep failed"),
                Err(e) => tracing::error!(error = %e, "erase sweep panicked"),
            }
        }
    });
}
