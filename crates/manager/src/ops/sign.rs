//! Signing. Its rules: the prepare goes to every holder and stops at t ready, the fastest
//! first; for a state batch (never a caller-chosen digest: RUSTSEC-2025-0127, see
//! [`crate::pool`]) with t ready and a pooled presignature whose whole signer set is ready (a 300 ms
//! grace completes such a set) it signs in one round, and if that fails it signs again in full
//! (a second operation, `retry_of` the first); a state batch that at least t holders reject as
//! not matching their L2 node gets its rollback signed by t of them; every signature is
//! verified against the key's address before anyone sees it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cohort_engine::{EthSignature, PartialSignature, PublicKey};
use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, HexBytes, KeyId, ManagerMsg, NodeMsg, OpKind,
    SignContext,
};
use tracing::Instrument;

use crate::State;
use crate::handshake::{Op, Rule, secs};
use crate::persist::registry::KeyEntry;
use crate::pool::PoolEntry;
use crate::record::{OpError, OpRecord, list, refusal_code};

/// How long late readies may complete a presignature's signer set.
const PRESIG_GRACE: Duration = Duration::from_millis(300);

/// A verified signature and how it came about.
pub(crate) struct Signed {
    /// The verified signature.
    pub signature: EthSignature,
    /// The operation record.
    pub record: OpRecord,
    /// True when the nodes disagreed with a state batch and signed its rollback instead.
    pub roll_back: bool,
}

/// Why one signing attempt did not produce a signature.
enum AttemptError {
    /// The presignature path failed (recorded under this session); sign again in full.
    Retry(Bytes32),
    /// A final failure.
    Fail(OpError),
}

fn cancel(session_id: Bytes32) -> ManagerMsg {
    ManagerMsg::KeySignCancel { session_id }
}

/// Signs `digest` (of `context`) with `key_id`: exactly t of the willing holders, the fastest
/// first. For a state batch that at least t holders reject as not matching their L2 node, those
/// holders sign the batch's rollback instead.
pub(crate) async fn sign(
    state: &Arc<State>,
    key_id: &KeyId,
    digest: Bytes32,
    context: SignContext,
) -> Result<Signed, OpError> {
    let _active = state.active.enter();
    match attempt(state, key_id, digest, context.clone(), true, None).await {
        Ok(s) => Ok(s),
        Err(AttemptError::Fail(e)) => Err(e),
        Err(AttemptError::Retry(session)) => {
            state.metrics.presignature_fallbacks.inc();
            tracing::warn!(%key_id, %session, "presignature signing failed; signing in full");
            match attempt(state, key_id, digest, context, false, Some(session)).await {
                Ok(s) => Ok(s),
                Err(AttemptError::Fail(e)) => Err(e),
                Err(AttemptError::Retry(_)) => Err(OpError::new(
                    ErrorCode::Internal,
                    "a full signing asked to be retried",
                )),
            }
        }
    }
}

async fn attempt(
    state: &Arc<State>,
    key_id: &KeyId,
    digest: Bytes32,
    context: SignContext,
    allow_presig: bool,
    retry_of: Option<Bytes32>,
) -> Result<Signed, AttemptError> {
    let key = super::live_key(state, key_id).map_err(AttemptError::Fail)?;
    if let Err(e) = super::aux::ensure_aux(state).await {
        tracing::warn!(error = %e.error.message, "aux-info generation failed");
    }
    let kind = match context {
        SignContext::StateBatch { .. }
        | SignContext::Rollback { .. }
        | SignContext::ChallengeRollback { .. } => OpKind::SignState,
        SignContext::Digest => OpKind::Sign,
    };
    let mut op = Op::new(state, kind, key_id, key.parties.clone());
    op.learn_latency();
    op.record.digest = Some(digest);
    op.record.retry_of = retry_of;
    if let SignContext::StateBatch {
        start_block,
        offset_starts_at_index,
        state_roots,
    } = &context
    {
        op.record.context = Some(serde_json::json!({
            "start_block": start_block,
            "offset_starts_at_index": offset_starts_at_index,
            "roots": state_roots.len(),
        }));
    }
    let span = op.span();
    run(op, key, digest, context, allow_presig)
        .instrument(span)
        .await
}

async fn run(
    mut op: Op,
    key: KeyEntry,
    digest: Bytes32,
    context: SignContext,
    allow_presig: bool,
) -> Result<Signed, AttemptError> {
    let state = op.state.clone();
    let t = usize::from(key.threshold);
    let session_id = op.session();
    let deadline = Instant::now() + secs(crate::mantle::prepare_secs(&state.config, &context));
    let ready = op
        .prepare(
            &key.parties,
            || ManagerMsg::KeySignPrepare {
                session_id,
                key_id: key.key_id.clone(),
                digest,
                context: context.clone(),
                key_session_id: Some(key.key_session_id),
            },
            deadline,
            |rec| rec.ready.len() >= t,
        )
        .await;
    for (from, msg) in ready {
        if let NodeMsg::KeySignReady {
            l2_ms: Some(ms), ..
        } = msg
        {
            op.record.l2_checks.push((from, ms));
        }
    }

    // With t willing, a ready presignature whose whole set is willing gives a one-round
    // signature; late answers get a short grace to complete such a set.
    // Only a state batch, whose digest every node computes itself (RUSTSEC-2025-0127; see
    // `crate::pool`); a caller-chosen digest is always signed in full.
    let mut presig = None;
    if allow_presig
        && crate::pool::serves(&context)
        && op.record.ready.len() >= t
        && state.pool.depth(&key.key_id) > 0
    {
        presig = state.pool.take(&key, &op.record.ready, &context);
        if presig.is_none() {
            op.collect_ready((Instant::now() + PRESIG_GRACE).min(deadline), |rec| {
                presig = state.pool.take(&key, &rec.ready, &context);
                presig.is_some()
            })
            .await;
        }
    }
    if let Some(entry) = presig {
        op.await_late(deadline, cancel);
        let others: Vec<Address> = op
            .record
            .ready
            .iter()
            .filter(|a| !entry.signers.contains(a))
            .copied()
            .collect();
        op.broadcast(&others, || cancel(session_id));
        let result = run_presigned(&mut op, &key, &entry, digest, context).await;
        return match result {
            Ok(signature) => {
                state.metrics.presignatures_used.inc();
                finish(op, Ok(signature), false)
            }
            Err(e) => {
                let _ = op.finish::<EthSignature>(Err(e));
                Err(AttemptError::Retry(session_id))
            }
        };
    }

    if op.record.ready.len() < t {
        op.pending_absent();
        let disagreed: Vec<Address> = op
            .record
            .refused
            .iter()
            .filter(|r| r.error.code == ErrorCode::ContentRejected)
            .map(|r| r.address)
            .collect();
        if let SignContext::StateBatch { start_block, .. } = context
            && disagreed.len() >= t
        {
            let others: Vec<Address> = op
                .record
                .ready
                .iter()
                .chain(disagreed[t..].iter())
                .copied()
                .collect();
            op.broadcast(&others, || cancel(session_id));
            let rb = Bytes32(cohort_rollup::rollback_digest(start_block));
            op.record.roll_back = true;
            op.record.digest = Some(rb);
            let signers = disagreed[..t].to_vec();
            let context = SignContext::Rollback { start_block };
            let result = run_signing(&mut op, &key, signers, rb, context).await;
            return finish(op, result, true);
        }
        let ready = op.record.ready.clone();
        op.broadcast(&ready, || cancel(session_id));
        // Late answers to this session find no operation and are dropped; nodes forget
        // unstarted sessions on their own.
        let e = ErrorBody::new(
            refusal_code(&op.record.refused),
            format!(
                "{} of {} holders willing, {t} needed; agreed: {}; refused: {}; absent: {}",
                op.record.ready.len(),
                key.parties.len(),
                list(&op.record.ready),
                op.record.describe_refusals(),
                list(&op.record.absent),
            ),
        );
        return finish(op, Err(e), false);
    }
    op.await_late(deadline, cancel);
    let signers: Vec<Address> = op.record.ready[..t].to_vec();
    let result = run_signing(&mut op, &key, signers, digest, context).await;
    finish(op, result, false)
}

fn finish(
    op: Op,
    result: Result<EthSignature, ErrorBody>,
    roll_back: bool,
) -> Result<Signed, AttemptError> {
    op.finish(result)
        .map(|(signature, record)| Signed {
            signature,
            record,
            roll_back,
        })
        .map_err(AttemptError::Fail)
}

/// One-round signing from a presignature: each signer of its set consumes its piece and sends
/// a partial signature; the manager combines them.
async fn run_presigned(
    op: &mut Op,
    key: &KeyEntry,
    entry: &PoolEntry,
    digest: Bytes32,
    context: SignContext,
) -> Result<EthSignature, ErrorBody> {
    let session_id = op.session();
    op.record.signers = entry.signers.clone();
    op.record.presignature = Some(entry.id);
    let until = Instant::now() + secs(op.state.config.timeouts.sign_secs);
    let results = op
        .run_phase(
            &entry.signers,
            || ManagerMsg::KeySignStart {
                session_id,
                key_id: key.key_id.clone(),
                digest,
                context: context.clone(),
                signers: entry.signers.clone(),
                presignature: Some(entry.id),
            },
            until,
            Rule::FailFast,
            |from, msg| {
                let blame = |message: String| ErrorBody {
                    code: ErrorCode::ProtocolFailed,
                    message,
                    culprits: vec![from],
                };
                match msg {
                    NodeMsg::KeySignPartial { partial, .. } => Some(
                        serde_json::from_slice::<PartialSignature>(&partial.0)
                            .map_err(|e| {
                                blame(format!("{from} sent a malformed partial signature: {e}"))
                            })
                            // The sender is the authenticated connection, never a field.
                            .and_then(|p| {
                                if p.signer.0 == from.0 {
                                    Ok(p)
                                } else {
                                    Err(blame(format!(
                                        "{from} sent a partial signature of another signer"
                                    )))
                                }
                            }),
                    ),
                    // A node's own failure names only whom its engine blamed: the reporter
                    // is not a culprit for reporting (it may have timed out waiting for
                    // another, or refused a presignature it must not use).
                    NodeMsg::KeySignFinish { result: Err(e), .. } => Some(Err(ErrorBody {
                        code: e.code,
                        message: format!("{from}: {}", e.message),
                        culprits: e.culprits,
                    })),
                    _ => None,
                }
            },
        )
        .await;
    let partials: Vec<PartialSignature> = op
        .completed(results, "presigned signing")?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let pk = public_key(key)?;
    let sig = cohort_engine::sign::combine(&pk, &digest.0, &partials).map_err(|e| {
        ErrorBody::new(
            ErrorCode::ProtocolFailed,
            format!("partials do not combine: {e}"),
        )
    })?;
    verify(key, &digest, sig)
}

/// Full signing: starts exactly `signers`, collects their results (which must be one
/// signature) and verifies it.
async fn run_signing(
    op: &mut Op,
    key: &KeyEntry,
    signers: Vec<Address>,
    digest: Bytes32,
    context: SignContext,
) -> Result<EthSignature, ErrorBody> {
    let session_id = op.session();
    op.record.signers = signers.clone();
    let until = Instant::now() + secs(op.state.config.timeouts.sign_secs);
    let results = op
        .run_phase(
            &signers,
            || ManagerMsg::KeySignStart {
                session_id,
                key_id: key.key_id.clone(),
                digest,
                context: context.clone(),
                signers: signers.clone(),
                presignature: None,
            },
            until,
            Rule::WaitAll,
            |_, msg| match msg {
                NodeMsg::KeySignFinish { result, .. } => Some(result),
                _ => None,
            },
        )
        .await;
    let sigs: Vec<HexBytes> = op
        .completed(results, "signing")?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    if sigs.windows(2).any(|w| w[0] != w[1]) {
        return Err(ErrorBody::new(
            ErrorCode::ProtocolFailed,
            "signers returned different signatures",
        ));
    }
    let sig = sigs
        .first()
        .and_then(|s| <[u8; 65]>::try_from(s.0.as_slice()).ok())
        .map(EthSignature)
        .ok_or_else(|| ErrorBody::new(ErrorCode::ProtocolFailed, "no 65-byte signature"))?;
    verify(key, &digest, sig)
}

fn public_key(key: &KeyEntry) -> Result<PublicKey, ErrorBody> {
    PublicKey::from_sec1(&key.public_key.0).map_err(|_| {
        ErrorBody::new(
            ErrorCode::ProtocolFailed,
            "the registry holds an invalid public key",
        )
    })
}

/// The one verification: the signature must recover to the key's address.
fn verify(key: &KeyEntry, digest: &Bytes32, sig: EthSignature) -> Result<EthSignature, ErrorBody> {
    let address = public_key(key)?.address();
    match sig.recover_address(&digest.0) {
        Ok(a) if a == address => Ok(sig),
        _ => Err(ErrorBody::new(
            ErrorCode::ProtocolFailed,
            "combined signature does not verify against the key",
        )),
    }
}
