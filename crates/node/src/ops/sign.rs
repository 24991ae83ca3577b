//! Signing (design table, row "sign" — [`crate::operations`]): exactly t of the willing sign. A
//! node is willing only if the key is READY (and the sharing the one the manager names), it
//! agrees with the content — a state batch's roots checked against its own L2 node — and its
//! journal holds no other root for any state-chain element of the batch. A node that disagrees with a batch may sign
//! only that batch's rollback.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::session::Operation;
use cohort_rollup::{BatchError, RootCheck};
use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, HexBytes, KeyId, NodeMsg, SignContext};

use crate::compute::{self, Run};
use crate::errors::{self, err, refused};
use crate::session::Prepared;
use crate::{Inner, NodeConfig, ops, shares};

/// This node's judgement of what a digest is of.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Willing to sign; `slot` is the journal slot to record, `l2_ms` the L2 check's time.
    Agree {
        slot: Option<u64>,
        l2_ms: Option<u64>,
    },
    /// The batch's roots are not this node's: refuse, but the rollback from `rollback_from`
    /// may be signed.
    Disagree {
        error: ErrorBody,
        rollback_from: u64,
    },
    /// Not willing, and nothing else to offer.
    Refuse(ErrorBody),
}

/// Phase 1: the share, the sharing, the content.
pub(crate) async fn prepare(
    inner: &Inner,
    session_id: Bytes32,
    key_id: KeyId,
    digest: Bytes32,
    context: SignContext,
    key_session_id: Option<Bytes32>,
) -> NodeMsg {
    if let Err(e) = shares::load_share(inner, &key_id) {
        return refused(session_id, e);
    }
    if let Some(expected) = key_session_id
        && let Err(e) = check_sharing(inner, &key_id, &expected)
    {
        return refused(session_id, e);
    }
    match check_content(inner, &key_id, &digest, &context).await {
        Verdict::Agree { slot, l2_ms } => {
            inner.sessions.prepare(
                session_id,
                Prepared::Sign {
                    key_id,
                    digest,
                    slot,
                },
            );
            NodeMsg::KeySignReady { session_id, l2_ms }
        }
        Verdict::Disagree {
            error,
            rollback_from,
        } => {
            inner.sessions.prepare(
                session_id,
                Prepared::Rollback {
                    key_id,
                    start_block: rollback_from,
                },
            );
            refused(session_id, error)
        }
        Verdict::Refuse(error) => refused(session_id, error),
    }
}

/// The sharing this node holds must be the one the manager names (a node left behind by a
/// resharing must not sign with its old share).
pub(crate) fn check_sharing(
    inner: &Inner,
    key_id: &KeyId,
    expected: &Bytes32,
) -> Result<(), ErrorBody> {
    match inner.store.get_key(key_id).map_err(errors::store)? {
        Some(r) if r.key_session_id == expected.0 => Ok(()),
        Some(r) => Err(err(
            ErrorCode::KeyNotReady,
            format!(
                "stale sharing of {key_id}: this node holds session {}, the key is now {expected}",
                Bytes32(r.key_session_id)
            ),
        )),
        None => Err(errors::missing_key(inner, key_id)),
    }
}

/// A state key signs only state batches this node has checked (and their rollbacks): a plain
/// digest for it would skip both the L2 check and the journal.
pub(crate) fn plain_digest_allowed(config: &NodeConfig, key_id: &str) -> Result<(), ErrorBody> {
    if config.state_key_ids.iter().any(|k| k == key_id) {
        return Err(err(
            ErrorCode::ContentRejected,
            format!("{key_id} is a state key: it signs only state batches this node has checked"),
        ));
    }
    Ok(())
}

fn batch_error(e: BatchError) -> ErrorBody {
    let code = match &e {
        BatchError::Size | BatchError::StartBlock { .. } | BatchError::Digest => {
            ErrorCode::BadRequest
        }
    };
    err(code, e.to_string())
}

/// Checks what a digest is of: the batch's pure rules ([`cohort_rollup::check_batch`]), the
/// journal ([`crate::journal::check`]: no other root for any of its elements), then every root
/// against this node's own L2 node.
pub(crate) async fn check_content(
    inner: &Inner,
    key_id: &str,
    digest: &Bytes32,
    context: &SignContext,
) -> Verdict {
    let (start_block, offset, roots) = match context {
        SignContext::Digest => {
            return match plain_digest_allowed(&inner.config, key_id) {
                Ok(()) => Verdict::Agree {
                    slot: None,
                    l2_ms: None,
                },
                Err(e) => Verdict::Refuse(e),
            };
        }
        SignContext::Rollback { .. } => {
            return Verdict::Refuse(err(
                ErrorCode::BadRequest,
                "a rollback is only signed after disagreeing with a batch",
            ));
        }
        SignContext::ChallengeRollback { .. } => {
            // Needs the node's own L1 view of the Challenge contract (l1-spec §3.5.7).
            return Verdict::Refuse(err(
                ErrorCode::L1Refused,
                "a challenge rollback needs L1 evidence this node does not check yet",
            ));
        }
        SignContext::StateBatch {
            start_block,
            offset_starts_at_index,
            state_roots,
        } => (*start_block, *offset_starts_at_index, state_roots),
    };
    let roots: Vec<[u8; 32]> = roots.iter().map(|r| r.0).collect();
    if let Err(e) = cohort_rollup::check_batch(
        &digest.0,
        start_block,
        offset,
        &roots,
        inner.config.l2_block_offset,
    ) {
        return Verdict::Refuse(batch_error(e));
    }
    if let Err(e) = crate::journal::check(&inner.store, key_id, offset, &roots) {
        return Verdict::Refuse(e);
    }
    let Some(l2) = &inner.l2 else {
        if inner.config.insecure_skip_state_check {
            return Verdict::Agree {
                slot: Some(offset),
                l2_ms: None,
            };
        }
        return Verdict::Refuse(err(
            ErrorCode::L2Unavailable,
            "this node has no l2_rpc_url to check state roots",
        ));
    };
    match l2.check(start_block, &roots).await {
        Ok((RootCheck::Match, took)) => {
            tracing::info!(
                start_block,
                roots = roots.len(),
                ms = took.as_millis() as u64,
                "state batch matches L2"
            );
            Verdict::Agree {
                slot: Some(offset),
                l2_ms: Some(took.as_millis() as u64),
            }
        }
        Ok((RootCheck::NotSynced { block }, _)) => {
            let msg = format!(
                "this node's L2 node has no block {block} yet (not synced): cannot check the batch"
            );
            tracing::warn!(start_block, "{msg}");
            Verdict::Refuse(err(ErrorCode::L2Unavailable, msg))
        }
        Ok((RootCheck::Mismatch { block, batch, l2 }, _)) => {
            let msg = format!(
                "state root mismatch at block {block}: batch has {}, L2 node has {}",
                Bytes32(batch),
                Bytes32(l2)
            );
            tracing::warn!(start_block, "{msg}");
            Verdict::Disagree {
                error: err(ErrorCode::ContentRejected, msg),
                rollback_from: start_block,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "state batch not checked");
            Verdict::Refuse(err(ErrorCode::L2Unavailable, e.to_string()))
        }
    }
}

/// A partial from a presignature only for a digest this node computed itself: cggmp21's
/// advisory RUSTSEC-2025-0127 (CVE-2025-66017, no fix in 0.6) lets whoever knows a
/// presignature's R and picks the digest forge a signature on another message. `slot` is what
/// this node approved in the prepare — `Some` only for a state batch whose digest it recomputed
/// from roots it checked — never what the start message claims, so a hostile manager cannot
/// relabel a raw digest. Checked before the presignature is touched, so a refusal does not
/// burn it.
pub(crate) fn presignature_allowed(slot: Option<u64>) -> Result<(), ErrorBody> {
    match slot {
        Some(_) => Ok(()),
        None => Err(err(
            ErrorCode::PresignatureRefused,
            "a presignature is used only for a state batch whose digest this node computed; \
             a caller-chosen digest is signed with the full protocol",
        )),
    }
}

/// Phase 2: record the slot in the journal, then sign — with a presignature (one round, the
/// partial goes back to the manager) or the full protocol.
pub(crate) async fn start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    key_id: KeyId,
    digest: Bytes32,
    context: SignContext,
    signers: Vec<Address>,
    presignature: Option<Bytes32>,
) -> Result<HexBytes, ErrorBody> {
    let slot = inner
        .sessions
        .start_sign(session_id, &key_id, &digest, &context)?;
    if presignature.is_some() {
        presignature_allowed(slot)?;
    }
    if let Some(slot) = slot {
        crate::journal::record(&inner.store, &key_id, slot, &digest, &context)?;
    }
    if let Some(presig) = presignature {
        return ops::presign::issue_partial(inner, &key_id, presig, &digest, &signers);
    }
    let share = shares::load_share(inner, &key_id)?;
    let run = Run {
        session_id,
        operation: Operation::Sign,
        key_id: &key_id,
        parties: signers,
        params: cohort_engine::sign::sign_params(&digest.0),
        timeout: Duration::from_secs(inner.config.timeouts.sign_secs.max(1)),
        what: "signing",
    };
    let sig = compute::start(inner, run, |binding, _me, incoming, outgoing| async move {
        cohort_engine::sign::sign(&binding, &share, &digest.0, incoming, outgoing).await
    })
    .await?;
    Ok(HexBytes(sig.0.to_vec()))
}
