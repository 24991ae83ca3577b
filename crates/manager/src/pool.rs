//! Presignature pools: per key, a few presignatures kept ready for its preferred signer set (the
//! t fastest connected holders), so that a signature costs one network round. Generation runs in
//! the background, one at a time, and only while no live operation is in flight, so live
//! signing wins the CPU. An entry is removed from the pool when a signing picks it — before any
//! node is asked to use it — so the manager never asks for the same presignature twice; the
//! nodes' stores enforce the same on their side.
//!
//! The pool lives in memory: after a manager restart the nodes' stored pieces are simply never
//! asked for, and are discarded with the key's next resharing, refresh or deletion.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, ManagerMsg, NodeMsg};

use crate::State;
use crate::coord::{Op, Refusal, secs};
use crate::metrics::KeyLabel;
use crate::registry::KeyEntry;

/// One presignature ready in the nodes' stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    /// Its id (the session that generated it).
    pub id: Bytes32,
    /// The t signers holding its pieces, in protocol order.
    pub signers: Vec<Address>,
    /// The sharing it belongs to.
    pub key_session_id: Bytes32,
}

/// Counts a live operation for as long as it is held.
pub(crate) struct ActiveGuard(Arc<State>);

impl ActiveGuard {
    pub(crate) fn new(state: &Arc<State>) -> Self {
        state.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(state.clone())
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn set_gauge(state: &State, key_id: &str, n: usize) {
    state
        .metrics
        .presignatures_ready
        .get_or_create(&KeyLabel {
            key_id: key_id.to_string(),
        })
        .set(n as i64);
}

/// Presignatures ready for `key_id`.
pub(crate) fn depth(state: &State, key_id: &str) -> usize {
    state
        .pools
        .lock()
        .map(|p| p.get(key_id).map_or(0, Vec::len))
        .unwrap_or(0)
}

/// Removes and returns a presignature of `key` whose signers are all in `ready`.
pub(crate) fn take(state: &State, key: &KeyEntry, ready: &[Address]) -> Option<PoolEntry> {
    let mut pools = state.pools.lock().ok()?;
    let pool = pools.get_mut(key.key_id.as_str())?;
    pool.retain(|e| e.key_session_id == key.key_session_id);
    let pos = pool
        .iter()
        .position(|e| e.signers.iter().all(|s| ready.contains(s)))?;
    let entry = pool.remove(pos);
    let n = pool.len();
    drop(pools);
    set_gauge(state, &key.key_id, n);
    Some(entry)
}

/// Forgets every presignature of a key (resharing, refresh, deletion).
pub(crate) fn discard(state: &State, key_id: &str) {
    if let Ok(mut p) = state.pools.lock() {
        p.remove(key_id);
    }
    set_gauge(state, key_id, 0);
}

/// Records how fast a node answered a prepare (exponentially smoothed).
pub(crate) fn observe_latency(state: &State, node: Address, ms: f64) {
    if let Ok(mut l) = state.latency.lock() {
        let e = l.entry(node).or_insert(ms);
        *e = 0.8 * *e + 0.2 * ms;
    }
}

/// The key's preferred signer set: the t connected holders that answer fastest.
pub(crate) fn preferred(state: &State, key: &KeyEntry) -> Option<Vec<Address>> {
    let connected: HashSet<Address> = state.connected().into_iter().collect();
    let lat = state.latency.lock().ok()?;
    let mut holders: Vec<(f64, usize, Address)> = key
        .parties
        .iter()
        .enumerate()
        .filter(|(_, p)| connected.contains(p))
        .map(|(i, p)| (lat.get(p).copied().unwrap_or(f64::MAX), i, *p))
        .collect();
    let t = usize::from(key.threshold);
    if holders.len() < t {
        return None;
    }
    holders.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // Protocol order: the keys' share order, so every node sees the same list.
    let mut chosen: Vec<(usize, Address)> = holders[..t].iter().map(|(_, i, a)| (*i, *a)).collect();
    chosen.sort();
    Some(chosen.into_iter().map(|(_, a)| a).collect())
}

/// The background filler: tops pools up while the manager is otherwise idle.
pub(crate) async fn fill(state: Arc<State>) {
    let depth_wanted = state.config.presign_pool_depth;
    if depth_wanted == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if state.active.load(Ordering::SeqCst) > 0 {
            continue;
        }
        let Ok(keys) = state.registry.list() else {
            continue;
        };
        let next = keys
            .into_iter()
            .filter(|k| !k.deleted && k.pending_commit.is_empty())
            .find(|k| depth(&state, &k.key_id) < depth_wanted);
        let Some(key) = next else {
            continue;
        };
        let Some(signers) = preferred(&state, &key) else {
            continue;
        };
        match generate(&state, &key, signers).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(key_id = %key.key_id, error = %e.message, "presignature generation failed");
                // Do not hammer a failing cohort.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

async fn generate(
    state: &Arc<State>,
    key: &KeyEntry,
    signers: Vec<Address>,
) -> Result<(), ErrorBody> {
    let mut op = Op::new(state, "presign", &key.key_id, signers.clone());
    let session_id = op.session();
    let key_session_id = key.key_session_id;
    let started = Instant::now();
    op.record.absent = op.broadcast(&signers, || ManagerMsg::PresignPrepare {
        session_id,
        key_id: key.key_id.clone(),
        key_session_id,
        signers: signers.clone(),
    });
    let deadline = Instant::now() + secs(state.config.timeouts.prepare_secs);
    let mut pending: HashSet<Address> = signers
        .iter()
        .filter(|s| !op.record.absent.contains(s))
        .copied()
        .collect();
    while !pending.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        if !pending.contains(&from) {
            continue;
        }
        match msg {
            NodeMsg::PresignReady { .. } => {
                pending.remove(&from);
                op.record.ready.push(from);
                observe_latency(state, from, started.elapsed().as_secs_f64() * 1e3);
            }
            NodeMsg::Refused { error, .. } => {
                pending.remove(&from);
                op.record.refused.push(Refusal {
                    address: from,
                    error,
                });
            }
            NodeMsg::Error { .. } => {
                pending.remove(&from);
                op.record.absent.push(from);
            }
            _ => {}
        }
    }
    op.record.absent.extend(pending);
    if op.record.ready.len() != signers.len() {
        let e = ErrorBody::new(
            ErrorCode::NotEnoughParties,
            "a signer of the set is not ready",
        );
        return op.finish::<()>(Err(e.clone())).map(|_| ()).map_err(|_| e);
    }
    op.record.signers = signers.clone();
    op.broadcast(&signers, || ManagerMsg::PresignStart {
        session_id,
        key_id: key.key_id.clone(),
        key_session_id,
        signers: signers.clone(),
    });
    let deadline = Instant::now() + secs(state.config.timeouts.sign_secs);
    let mut waiting: HashSet<Address> = signers.iter().copied().collect();
    let mut failure: Option<ErrorBody> = None;
    while !waiting.is_empty() {
        let Some((from, msg)) = op.next(deadline).await else {
            break;
        };
        match msg {
            NodeMsg::PresignFinish { result: Ok(()), .. } => {
                waiting.remove(&from);
            }
            NodeMsg::PresignFinish { result: Err(e), .. } if waiting.remove(&from) => {
                failure.get_or_insert(e);
            }
            NodeMsg::Error { error } if waiting.remove(&from) => {
                failure.get_or_insert(ErrorBody {
                    code: error.code,
                    message: format!("{from}: {}", error.message),
                    culprits: vec![from],
                });
            }
            _ => {}
        }
    }
    if failure.is_none() && !waiting.is_empty() {
        failure = Some(ErrorBody::new(
            ErrorCode::Timeout,
            "presigning did not finish",
        ));
    }
    if let Some(e) = failure {
        return op.finish::<()>(Err(e.clone())).map(|_| ()).map_err(|_| e);
    }
    // Keep it only if the key was not reshared meanwhile.
    let current = state.registry.get(&key.key_id).ok().flatten();
    if current.is_some_and(|k| !k.deleted && k.key_session_id == key_session_id) {
        let n = {
            let Ok(mut pools) = state.pools.lock() else {
                return Ok(());
            };
            let pool = pools.entry(key.key_id.to_string()).or_default();
            pool.push(PoolEntry {
                id: session_id,
                signers,
                key_session_id,
            });
            pool.len()
        };
        set_gauge(state, &key.key_id, n);
        state.metrics.presignatures_generated.inc();
    }
    let _ = op.finish(Ok(()));
    Ok(())
}
