//! Background presignature generation: only for the state key ([`crate::pool::presign_key`]:
//! presignatures serve only digests the nodes compute), the pool is topped up for its preferred signer
//! set (the t fastest connected holders, [`crate::latency`]), one presignature at a time and
//! only while no live operation is in flight, so that live signing wins the CPU. Its rules:
//! every signer of the set ready; every signer finishes; the piece is kept only if the key was
//! not reshared meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cohort_wire::{Address, ErrorBody, ErrorCode, ManagerMsg, NodeMsg, OpKind};
use tracing::Instrument;

use crate::State;
use crate::handshake::{Op, Rule, secs};
use crate::persist::registry::KeyEntry;
use crate::pool::PoolEntry;
use crate::record::list;

/// On every node connection: its pieces are gone (a node discards unused presignatures when it
/// starts), so the pooled presignatures it was part of are forgotten and the filler replaces
/// them.
pub(crate) fn forget_on_connect(state: &State, address: &Address) {
    state.pool.forget_signer(address);
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
        if state.active.any() {
            continue;
        }
        let Ok(keys) = state.registry.list() else {
            continue;
        };
        let next = keys
            .into_iter()
            .filter(|k| !k.deleted && k.pending_commit.is_empty())
            .filter(|k| crate::pool::presign_key(&state.config, &k.key_id))
            .find(|k| state.pool.depth(&k.key_id) < depth_wanted);
        let Some(key) = next else {
            continue;
        };
        let connected = state.links.connected(&state.config.members);
        let Some(signers) = state.latency.preferred(&key, &connected) else {
            continue;
        };
        if let Err(e) = generate(&state, &key, signers).await {
            tracing::warn!(key_id = %key.key_id, error = %e.message, "presignature generation failed");
            // Do not hammer a failing cohort.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// Generates one presignature of `key` for `signers` and pools it.
pub(crate) async fn generate(
    state: &Arc<State>,
    key: &KeyEntry,
    signers: Vec<Address>,
) -> Result<(), ErrorBody> {
    if !crate::pool::presign_key(&state.config, &key.key_id) {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!(
                "{} is not the state key: its digests are chosen by callers, so it is signed \
                 only with the full protocol (RUSTSEC-2025-0127)",
                key.key_id
            ),
        ));
    }
    let mut op = Op::new(state, OpKind::Presign, &key.key_id, signers.clone());
    op.learn_latency();
    let span = op.span();
    run(op, key, signers).instrument(span).await
}

async fn run(mut op: Op, key: &KeyEntry, signers: Vec<Address>) -> Result<(), ErrorBody> {
    let state = op.state.clone();
    let session_id = op.session();
    let key_session_id = key.key_session_id;
    let timeouts = state.config.timeouts.clone();
    op.prepare(
        &signers,
        || ManagerMsg::PresignPrepare {
            session_id,
            key_id: key.key_id.clone(),
            key_session_id,
            signers: signers.clone(),
        },
        Instant::now() + secs(timeouts.prepare_secs),
        |_| false,
    )
    .await;
    op.pending_absent();
    if op.record.ready.len() != signers.len() {
        let e = ErrorBody::new(
            ErrorCode::NotEnoughParties,
            format!(
                "a signer of the set is not ready; refused: {}; absent: {}",
                op.record.describe_refusals(),
                list(&op.record.absent)
            ),
        );
        return op.finish::<()>(Err(e)).map(|_| ()).map_err(|e| e.error);
    }
    op.record.signers = signers.clone();
    let results = op
        .run_phase(
            &signers,
            || ManagerMsg::PresignStart {
                session_id,
                key_id: key.key_id.clone(),
                key_session_id,
                signers: signers.clone(),
            },
            Instant::now() + secs(timeouts.sign_secs),
            Rule::WaitAll,
            |_, msg| match msg {
                NodeMsg::PresignFinish { result, .. } => Some(result),
                _ => None,
            },
        )
        .await;
    if let Err(e) = op.completed(results, "presigning") {
        return op.finish::<()>(Err(e)).map(|_| ()).map_err(|e| e.error);
    }
    // Keep it only if the key was not reshared meanwhile.
    let current = state.registry.get(&key.key_id).ok().flatten();
    if current.is_some_and(|k| !k.deleted && k.key_session_id == key_session_id) {
        state.pool.push(
            &key.key_id,
            PoolEntry {
                id: session_id,
                signers,
                key_session_id,
            },
        );
        state.metrics.presignatures_generated.inc();
    }
    op.finish(Ok(())).map(|_| ()).map_err(|e| e.error)
}
