//! Aux-info generation (Paillier keys and their proofs) for the whole membership, run before a
//! keygen, signing or resharing whenever a connected member lacks it. Its rules: every member
//! connected and ready; every member must finish; a member that goes away fails it at once,
//! naming the member.

use std::sync::Arc;
use std::time::Instant;

use cohort_wire::{ErrorBody, ErrorCode, ManagerMsg, NodeMsg, OpKind};
use tracing::Instrument;

use crate::State;
use crate::handshake::{Op, Rule, secs};
use crate::record::{OpError, list};

/// Runs aux-info generation over the whole membership if any connected member lacks it.
/// Needs every member connected; otherwise it does nothing (nodes will refuse to sign with
/// `aux_missing` until it can run).
pub(crate) async fn ensure_aux(state: &Arc<State>) -> Result<(), OpError> {
    let _guard = state.aux_lock.lock().await;
    let members = state.config.members.clone();
    let lacking = state.links.lacking_aux(&members);
    if lacking.is_empty() {
        return Ok(());
    }
    if state.links.connected(&members).len() != members.len() {
        tracing::warn!(lacking = ?lacking, "aux info missing but not every member is connected; not generating yet");
        return Ok(());
    }
    let op = Op::new(state, OpKind::Aux, "", members.clone());
    let span = op.span();
    run(op).instrument(span).await
}

async fn run(mut op: Op) -> Result<(), OpError> {
    let members = op.record.parties.clone();
    let session_id = op.session();
    let timeouts = op.state.config.timeouts.clone();
    let until = Instant::now() + secs(timeouts.prepare_secs);
    let ready = op
        .prepare(
            &members,
            || ManagerMsg::AuxInfoPrepare {
                session_id,
                members: members.clone(),
            },
            until,
            |_| false,
        )
        .await;
    op.pending_absent();
    // Test primes (announced in the ready answer) and real primes never mix in one membership:
    // the nodes without them would refuse the result anyway.
    let on_test: Vec<_> = ready
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                NodeMsg::AuxInfoReady {
                    test_primes: true,
                    ..
                }
            )
        })
        .map(|(a, _)| *a)
        .collect();
    if !on_test.is_empty() && on_test.len() != ready.len() {
        let e = ErrorBody::new(
            ErrorCode::BadRequest,
            format!(
                "aux-info generation refused: {} use the public INSECURE test primes and the \
                 other members do not",
                list(&on_test)
            ),
        );
        return op.finish::<()>(Err(e)).map(|_| ());
    }
    if op.record.ready.len() != members.len() {
        let e = ErrorBody::new(
            ErrorCode::NotEnoughParties,
            format!(
                "aux-info generation needs every member ready; absent: {}; refused: {}",
                list(&op.record.absent),
                op.record.describe_refusals()
            ),
        );
        return op.finish::<()>(Err(e)).map(|_| ());
    }
    op.record.signers = members.clone();
    let results = op
        .run_phase(
            &members,
            || ManagerMsg::AuxInfoStart {
                session_id,
                members: members.clone(),
            },
            Instant::now() + secs(timeouts.aux_secs),
            Rule::FailFast,
            |_, msg| match msg {
                NodeMsg::AuxInfoFinish { result, .. } => Some(result),
                _ => None,
            },
        )
        .await;
    let result = op.completed(results, "aux-info generation").map(|_| ());
    // Nodes report their new aux state in a Status right after finishing.
    op.finish(result).map(|_| ())
}
