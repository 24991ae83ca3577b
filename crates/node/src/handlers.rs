//! What a node does with each manager message: the rules of the design's operation table.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::primes::insecure_test_primes;
use cohort_engine::session::{Operation, PartyId, SessionBinding};
use cohort_engine::{CoreShare, EngineError, KeyShare, SafePrimes};
use cohort_rollup::RootCheck;
use cohort_store::{BeginKeygen, KeyRecord, KeyStatus};
use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, HexBytes, KeyInfo, ManagerMsg, NodeMsg, SignContext,
};
use tokio::sync::mpsc;

use crate::{Inner, Prepared, bridge, membership_id};

/// How many started session ids are remembered to refuse replays.
const REMEMBERED_SESSIONS: usize = 4096;

pub(crate) fn pid(a: &Address) -> PartyId {
    PartyId(a.0)
}

pub(crate) fn err(code: ErrorCode, msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, msg)
}

pub(crate) fn engine_err(e: &EngineError) -> ErrorBody {
    let code = match e {
        EngineError::InvalidInput(_) => ErrorCode::BadRequest,
        EngineError::InvalidShare(_) | EngineError::Internal { .. } => ErrorCode::Internal,
        _ => ErrorCode::ProtocolFailed,
    };
    ErrorBody {
        code,
        message: e.to_string(),
        culprits: e.culprits().into_iter().map(|p| Address(p.0)).collect(),
    }
}

pub(crate) fn store_err(e: &cohort_store::StoreError) -> ErrorBody {
    err(ErrorCode::Internal, format!("store: {e}"))
}

pub(crate) fn key_info(r: &KeyRecord) -> KeyInfo {
    KeyInfo {
        key_id: r.key_id.clone(),
        key_session_id: Bytes32(r.key_session_id),
        threshold: r.threshold,
        parties: r.parties.iter().map(|p| Address(*p)).collect(),
        public_key: HexBytes(r.public_key.clone().unwrap_or_default()),
    }
}

/// The node's current status for the manager.
pub(crate) fn status(inner: &Inner) -> NodeMsg {
    let aux_members = match inner.aux.lock() {
        Ok(a) => a
            .as_ref()
            .map(|a| a.members().iter().map(|p| Address(p.0)).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let keys = inner
        .store
        .list_keys()
        .map(|ks| {
            ks.iter()
                .filter(|k| k.status == KeyStatus::Ready && !k.key_id.starts_with('~'))
                .count() as u64
        })
        .unwrap_or(0);
    let primes_ready = inner.store.primes_count().unwrap_or(0);
    NodeMsg::Status {
        aux_members,
        keys,
        primes_ready,
    }
}

pub(crate) fn remember_prepared(inner: &Inner, session: Bytes32, p: Prepared) {
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(inner.config.timeouts.prepared_secs.max(1));
    if let Ok(mut map) = inner.prepared.lock() {
        map.insert(session, (p, deadline));
    }
}

pub(crate) fn take_prepared(inner: &Inner, session: &Bytes32) -> Option<Prepared> {
    inner
        .prepared
        .lock()
        .ok()
        .and_then(|mut m| m.remove(session))
        .map(|(p, _)| p)
}

/// Records a start; false if this session id was started before (a replay).
pub(crate) fn first_start(inner: &Inner, session: Bytes32) -> bool {
    let Ok(mut seen) = inner.started.lock() else {
        return false;
    };
    if seen.contains(&session) {
        return false;
    }
    seen.push_back(session);
    while seen.len() > REMEMBERED_SESSIONS {
        seen.pop_front();
    }
    true
}

/// Handles one manager message; replies go to `tx`.
pub(crate) async fn handle(inner: Arc<Inner>, msg: ManagerMsg, tx: mpsc::Sender<NodeMsg>) {
    let reply = match msg {
        ManagerMsg::Ping { nonce } => Some(NodeMsg::Pong { nonce }),
        ManagerMsg::AuxInfoPrepare {
            session_id,
            members,
        } => Some(aux_prepare(&inner, session_id, members)),
        ManagerMsg::AuxInfoStart {
            session_id,
            members,
        } => {
            let r = aux_start(&inner, session_id, members).await;
            let done = NodeMsg::AuxInfoFinish {
                session_id,
                result: r,
            };
            let _ = tx.send(done).await;
            Some(status(&inner))
        }
        ManagerMsg::KeyGenPrepare {
            session_id,
            key_id,
            threshold,
            parties,
        } => Some(keygen_prepare(
            &inner, session_id, key_id, threshold, parties,
        )),
        ManagerMsg::KeyGenStart {
            session_id,
            key_id,
            threshold,
            parties,
        } => {
            let result = keygen_start(&inner, session_id, key_id, threshold, parties).await;
            let _ = tx.send(NodeMsg::KeyGenFinish { session_id, result }).await;
            Some(status(&inner))
        }
        ManagerMsg::KeySignPrepare {
            session_id,
            key_id,
            digest,
            context,
            key_session_id,
        } => Some(sign_prepare(&inner, session_id, key_id, digest, context, key_session_id).await),
        ManagerMsg::KeySignStart {
            session_id,
            key_id,
            digest,
            context,
            signers,
            presignature: None,
        } => Some(NodeMsg::KeySignFinish {
            session_id,
            result: sign_start(&inner, session_id, key_id, digest, context, signers, None).await,
        }),
        ManagerMsg::KeySignStart {
            session_id,
            key_id,
            digest,
            context,
            signers,
            presignature: Some(presig),
        } => match sign_start(
            &inner,
            session_id,
            key_id,
            digest,
            context,
            signers,
            Some(presig),
        )
        .await
        {
            Ok(partial) => Some(NodeMsg::KeySignPartial {
                session_id,
                partial,
            }),
            Err(e) => Some(NodeMsg::KeySignFinish {
                session_id,
                result: Err(e),
            }),
        },
        ManagerMsg::PresignPrepare {
            session_id,
            key_id,
            key_session_id,
            signers,
        } => Some(crate::presign::prepare(
            &inner,
            session_id,
            key_id,
            key_session_id,
            signers,
        )),
        ManagerMsg::PresignStart {
            session_id,
            key_id,
            key_session_id,
            signers,
        } => Some(NodeMsg::PresignFinish {
            session_id,
            result: crate::presign::start(&inner, session_id, key_id, key_session_id, signers)
                .await,
        }),
        ManagerMsg::KeyResharePrepare { session_id, spec } => {
            Some(crate::reshare::prepare(&inner, session_id, spec))
        }
        ManagerMsg::KeyReshareStart { session_id, spec } => Some(NodeMsg::KeyReshareFinish {
            session_id,
            result: crate::reshare::start(&inner, session_id, spec).await,
        }),
        ManagerMsg::KeyReshareCommit {
            session_id,
            key_id,
            new_parties,
        } => {
            let result = crate::reshare::commit(&inner, session_id, &key_id, &new_parties);
            if let Err(e) = &result {
                tracing::error!(%key_id, error = %e.message, "reshare commit failed");
            }
            let done = NodeMsg::KeyReshareDone {
                session_id,
                key_id,
                result,
            };
            let _ = tx.send(done).await;
            Some(status(&inner))
        }
        ManagerMsg::KeyReshareAbort { session_id, key_id } => Some(NodeMsg::KeyReshareDone {
            session_id,
            result: crate::reshare::abort(&inner, session_id, &key_id),
            key_id,
        }),
        ManagerMsg::KeySignCancel { session_id } => {
            take_prepared(&inner, &session_id);
            None
        }
        ManagerMsg::KeyDelete { session_id, key_id } => {
            let existed = match inner.store.delete_key(&key_id) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(%key_id, error = %e, "delete failed");
                    false
                }
            };
            if let Ok(mut c) = inner.shares.lock() {
                c.remove(&key_id);
            }
            tracing::info!(%key_id, existed, "key deleted");
            let done = NodeMsg::KeyDeleted {
                session_id,
                key_id,
                existed,
            };
            let _ = tx.send(done).await;
            Some(status(&inner))
        }
        ManagerMsg::Challenge { .. } | ManagerMsg::Welcome { .. } | ManagerMsg::Rejected { .. } => {
            Some(NodeMsg::Error {
                error: err(
                    ErrorCode::BadRequest,
                    "handshake message after the handshake",
                ),
            })
        }
    };
    if let Some(r) = reply {
        let _ = tx.send(r).await;
    }
}

pub(crate) fn refused(session_id: Bytes32, error: ErrorBody) -> NodeMsg {
    NodeMsg::Refused { session_id, error }
}

// ---------- aux info ----------

fn aux_prepare(inner: &Inner, session_id: Bytes32, members: Vec<Address>) -> NodeMsg {
    if members != inner.members {
        return refused(
            session_id,
            err(
                ErrorCode::BadRequest,
                "aux info requested for another membership",
            ),
        );
    }
    let have_primes = inner.config.insecure_test_primes
        || inner.store.primes_count().map(|c| c > 0).unwrap_or(false);
    if !have_primes {
        return refused(
            session_id,
            err(
                ErrorCode::AuxMissing,
                "no safe primes ready yet; the pool is still searching",
            ),
        );
    }
    remember_prepared(inner, session_id, Prepared::Aux { members });
    NodeMsg::AuxInfoReady { session_id }
}

fn next_primes(inner: &Inner, members: &[Address]) -> Result<SafePrimes, ErrorBody> {
    if inner.config.insecure_test_primes {
        let me = inner.identity.address();
        let k = members.iter().position(|m| *m == me).unwrap_or(0);
        return insecure_test_primes::pair(k).map_err(|e| engine_err(&e));
    }
    let bytes = inner
        .store
        .pop_primes()
        .map_err(|e| store_err(&e))?
        .ok_or_else(|| err(ErrorCode::AuxMissing, "no safe primes ready"))?;
    SafePrimes::from_bytes(&bytes).map_err(|e| engine_err(&e))
}

async fn aux_start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    members: Vec<Address>,
) -> Result<(), ErrorBody> {
    match take_prepared(inner, &session_id) {
        Some(Prepared::Aux { members: m }) if m == members => {}
        _ => {
            return Err(err(
                ErrorCode::BadRequest,
                "aux-info start without a matching prepare",
            ));
        }
    }
    if !first_start(inner, session_id) {
        return Err(err(ErrorCode::Replayed, "session already started"));
    }
    let primes = next_primes(inner, &members)?;
    let parties: Vec<PartyId> = members.iter().map(pid).collect();
    let binding = SessionBinding::new(session_id.0, Operation::AuxInfo, "", parties, b"")
        .map_err(|e| engine_err(&e))?;
    let me = inner.identity.address();
    let (incoming, outgoing) =
        bridge::delivery(inner.p2p.clone(), session_id.0, members.clone(), me);
    let timeout = Duration::from_secs(inner.config.timeouts.aux_secs.max(1));
    tracing::info!(session = %session_id, "aux-info generation started");
    let my_id = pid(&me);
    let aux = crate::compute::run(timeout, "aux-info generation", async move {
        cohort_engine::aux::aux_info_gen(&binding, &my_id, primes, incoming, outgoing).await
    })
    .await?;
    let bytes = aux.to_bytes().map_err(|e| engine_err(&e))?;
    inner
        .store
        .put_aux(membership_id(&members), &bytes)
        .map_err(|e| store_err(&e))?;
    if let Ok(mut slot) = inner.aux.lock() {
        *slot = Some(Arc::new(aux));
    }
    if let Ok(mut c) = inner.shares.lock() {
        c.clear();
    }
    tracing::info!(session = %session_id, "aux-info generation finished");
    Ok(())
}

// ---------- keygen ----------

fn check_keygen_args(
    inner: &Inner,
    key_id: &str,
    threshold: u16,
    parties: &[Address],
) -> Result<(), ErrorBody> {
    if key_id.is_empty() || key_id.len() > 128 || key_id.starts_with('~') {
        return Err(err(
            ErrorCode::BadRequest,
            "key id must be 1..=128 bytes and not start with '~'",
        ));
    }
    if threshold < 2 || usize::from(threshold) > parties.len() {
        return Err(err(ErrorCode::BadRequest, "threshold out of range"));
    }
    if !parties.contains(&inner.identity.address()) {
        return Err(err(ErrorCode::NotAParty, "this node is not a party"));
    }
    if let Some(p) = parties.iter().find(|p| !inner.members.contains(p)) {
        return Err(err(ErrorCode::BadRequest, format!("{p} is not a member")));
    }
    Ok(())
}

fn keygen_prepare(
    inner: &Inner,
    session_id: Bytes32,
    key_id: String,
    threshold: u16,
    parties: Vec<Address>,
) -> NodeMsg {
    if let Err(e) = check_keygen_args(inner, &key_id, threshold, &parties) {
        return refused(session_id, e);
    }
    match inner.store.get_key(&key_id) {
        Ok(Some(r)) if r.status == KeyStatus::Ready => NodeMsg::KeyGenReady {
            session_id,
            existing: Some(key_info(&r)),
        },
        Ok(Some(r)) if r.status == KeyStatus::Pending => refused(
            session_id,
            err(
                ErrorCode::KeyPending,
                format!("keygen for {key_id} is already running"),
            ),
        ),
        Ok(_) => {
            remember_prepared(
                inner,
                session_id,
                Prepared::Keygen {
                    key_id,
                    threshold,
                    parties,
                },
            );
            NodeMsg::KeyGenReady {
                session_id,
                existing: None,
            }
        }
        Err(e) => refused(session_id, store_err(&e)),
    }
}

async fn keygen_start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    key_id: String,
    threshold: u16,
    parties: Vec<Address>,
) -> Result<KeyInfo, ErrorBody> {
    match take_prepared(inner, &session_id) {
        Some(Prepared::Keygen {
            key_id: k,
            threshold: t,
            parties: p,
        }) if k == key_id && t == threshold && p == parties => {}
        _ => {
            return Err(err(
                ErrorCode::BadRequest,
                "keygen start without a matching prepare",
            ));
        }
    }
    if !first_start(inner, session_id) {
        return Err(err(ErrorCode::Replayed, "session already started"));
    }
    let addrs: Vec<[u8; 20]> = parties.iter().map(|p| p.0).collect();
    match inner
        .store
        .begin_keygen(&key_id, session_id.0, threshold, addrs)
        .map_err(|e| store_err(&e))?
    {
        BeginKeygen::Started(_) => {
            if crate::failpoint("keygen_running") {
                // Test hook: die with the PENDING record written, as if killed mid-keygen.
                tracing::error!("failpoint keygen_running: exiting");
                std::process::exit(97);
            }
        }
        BeginKeygen::AlreadyReady(r) => return Ok(key_info(&r)),
        BeginKeygen::AlreadyPending(_) => {
            return Err(err(
                ErrorCode::KeyPending,
                format!("keygen for {key_id} is already running"),
            ));
        }
    }
    // Every failure after the PENDING record is written marks it ERROR, so the id is free again.
    let result = match run_keygen(inner, session_id, &key_id, threshold, &parties).await {
        Ok(core) => core
            .to_bytes()
            .map_err(|e| engine_err(&e))
            .and_then(|bytes| {
                let pk = core.public_key().uncompressed();
                inner
                    .store
                    .finish_keygen(&key_id, session_id.0, &pk, &bytes)
                    .map_err(|e| store_err(&e))
            })
            .map(|rec| (rec, core.public_key().address_checksummed())),
        Err(e) => Err(e),
    };
    match result {
        Ok((rec, address)) => {
            tracing::info!(%key_id, %address, "key generated");
            Ok(key_info(&rec))
        }
        Err(e) => {
            if let Err(se) = inner.store.fail_keygen(&key_id, session_id.0, &e.message) {
                tracing::error!(%key_id, error = %se, "could not mark failed keygen");
            }
            tracing::warn!(%key_id, error = %e.message, "keygen failed");
            Err(e)
        }
    }
}

async fn run_keygen(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    key_id: &str,
    threshold: u16,
    parties: &[Address],
) -> Result<CoreShare, ErrorBody> {
    let ids: Vec<PartyId> = parties.iter().map(pid).collect();
    let binding = SessionBinding::new(
        session_id.0,
        Operation::Keygen,
        key_id,
        ids,
        &cohort_engine::keygen::params(threshold),
    )
    .map_err(|e| engine_err(&e))?;
    let me = inner.identity.address();
    let (incoming, outgoing) =
        bridge::delivery(inner.p2p.clone(), session_id.0, parties.to_vec(), me);
    let timeout = Duration::from_secs(inner.config.timeouts.keygen_secs.max(1));
    let my_id = pid(&me);
    crate::compute::run(timeout, "keygen", async move {
        cohort_engine::keygen::keygen(&binding, &my_id, threshold, incoming, outgoing).await
    })
    .await
}

// ---------- signing ----------

pub(crate) fn load_share(inner: &Inner, key_id: &str) -> Result<Arc<KeyShare>, ErrorBody> {
    if let Some(s) = inner
        .shares
        .lock()
        .ok()
        .and_then(|c| c.get(key_id).cloned())
    {
        return Ok(s);
    }
    let rec = inner
        .store
        .get_key(key_id)
        .map_err(|e| store_err(&e))?
        .ok_or_else(|| err(ErrorCode::KeyNotFound, format!("no key {key_id}")))?;
    if rec.status != KeyStatus::Ready {
        return Err(err(
            ErrorCode::KeyNotReady,
            format!(
                "key {key_id} is {:?}: {}",
                rec.status,
                rec.error.unwrap_or_default()
            ),
        ));
    }
    let bytes = inner
        .store
        .load_share(key_id)
        .map_err(|e| store_err(&e))?
        .ok_or_else(|| err(ErrorCode::KeyNotFound, format!("no share for {key_id}")))?;
    let core = CoreShare::from_bytes(&bytes).map_err(|e| engine_err(&e))?;
    let aux = inner
        .aux
        .lock()
        .ok()
        .and_then(|a| a.clone())
        .ok_or_else(|| err(ErrorCode::AuxMissing, "no aux info for this membership yet"))?;
    let share = Arc::new(KeyShare::new(core, &aux).map_err(|e| engine_err(&e))?);
    if let Ok(mut c) = inner.shares.lock() {
        c.insert(key_id.to_string(), share.clone());
    }
    Ok(share)
}

async fn sign_prepare(
    inner: &Inner,
    session_id: Bytes32,
    key_id: String,
    digest: Bytes32,
    context: SignContext,
    key_session_id: Option<Bytes32>,
) -> NodeMsg {
    if let Err(e) = load_share(inner, &key_id) {
        return refused(session_id, e);
    }
    if let Some(expected) = key_session_id {
        match inner.store.get_key(&key_id) {
            Ok(Some(r)) if r.key_session_id == expected.0 => {}
            Ok(Some(r)) => {
                return refused(
                    session_id,
                    err(
                        ErrorCode::KeyNotReady,
                        format!(
                            "stale sharing of {key_id}: this node holds session {}, the key is now {expected}",
                            Bytes32(r.key_session_id)
                        ),
                    ),
                );
            }
            Ok(None) => {
                return refused(
                    session_id,
                    err(ErrorCode::KeyNotFound, format!("no key {key_id}")),
                );
            }
            Err(e) => return refused(session_id, store_err(&e)),
        }
    }
    match check_content(inner, &key_id, &digest, &context).await {
        Ok((slot, l2_ms)) => {
            remember_prepared(
                inner,
                session_id,
                Prepared::Sign {
                    key_id,
                    digest,
                    slot,
                },
            );
            NodeMsg::KeySignReady { session_id, l2_ms }
        }
        Err((e, rollback)) => {
            if let Some(start_block) = rollback {
                remember_prepared(
                    inner,
                    session_id,
                    Prepared::Rollback {
                        key_id,
                        start_block,
                    },
                );
            }
            refused(session_id, e)
        }
    }
}

/// A state key signs only state batches this node has checked (and their rollbacks): a plain
/// digest for it would skip both the L2 check and the journal.
fn plain_digest_allowed(config: &crate::NodeConfig, key_id: &str) -> Result<(), ErrorBody> {
    if config.state_key_ids.iter().any(|k| k == key_id) {
        return Err(err(
            ErrorCode::ContentRejected,
            format!("{key_id} is a state key: it signs only state batches this node has checked"),
        ));
    }
    Ok(())
}

/// Checks what a digest is of: the digest must be the content's, the journal must hold no
/// other root for any of its elements (`batch::check`), and every state root must match this
/// node's own L2 node.
/// Returns the journal slot; on a root mismatch, also the start block the node would roll back.
async fn check_content(
    inner: &Inner,
    key_id: &str,
    digest: &Bytes32,
    context: &SignContext,
) -> Result<(Option<u64>, Option<u64>), (ErrorBody, Option<u64>)> {
    let (start_block, offset, roots) = match context {
        SignContext::Digest => {
            return plain_digest_allowed(&inner.config, key_id)
                .map(|()| (None, None))
                .map_err(|e| (e, None));
        }
        SignContext::Rollback { .. } => {
            return Err((
                err(
                    ErrorCode::BadRequest,
                    "a rollback is only signed after disagreeing with a batch",
                ),
                None,
            ));
        }
        SignContext::StateBatch {
            start_block,
            offset_starts_at_index,
            state_roots,
        } => (*start_block, *offset_starts_at_index, state_roots),
    };
    if roots.is_empty() || roots.len() > crate::batch::MAX_BATCH_ROOTS {
        return Err((
            err(ErrorCode::BadRequest, "state batch size out of range"),
            None,
        ));
    }
    if offset.checked_add(inner.config.l2_block_offset) != Some(start_block) {
        return Err((
            err(
                ErrorCode::BadRequest,
                format!(
                    "start_block {start_block} does not belong to offset_starts_at_index {offset}: \
                     this node expects start_block = offset_starts_at_index + {}",
                    inner.config.l2_block_offset
                ),
            ),
            None,
        ));
    }
    let roots: Vec<[u8; 32]> = roots.iter().map(|r| r.0).collect();
    if cohort_rollup::state_batch_digest(&roots, offset) != digest.0 {
        return Err((
            err(
                ErrorCode::BadRequest,
                "digest is not the state batch's digest",
            ),
            None,
        ));
    }
    crate::batch::check(&inner.store, key_id, offset, &roots).map_err(|e| (e, None))?;
    let Some(l2) = &inner.l2 else {
        if inner.config.insecure_skip_state_check {
            return Ok((Some(offset), None));
        }
        return Err((
            err(
                ErrorCode::L2Unavailable,
                "this node has no l2_rpc_url to check state roots",
            ),
            None,
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
            Ok((Some(offset), Some(took.as_millis() as u64)))
        }
        Ok((RootCheck::NotSynced { block }, _)) => {
            let msg = format!(
                "this node's L2 node has no block {block} yet (not synced): cannot check the batch"
            );
            tracing::warn!(start_block, "{msg}");
            Err((err(ErrorCode::L2Unavailable, msg), None))
        }
        Ok((RootCheck::Mismatch { block, batch, l2 }, _)) => {
            let msg = format!(
                "state root mismatch at block {block}: batch has {}, L2 node has {}",
                Bytes32(batch),
                Bytes32(l2)
            );
            tracing::warn!(start_block, "{msg}");
            Err((err(ErrorCode::ContentRejected, msg), Some(start_block)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "state batch not checked");
            Err((err(ErrorCode::L2Unavailable, e.to_string()), None))
        }
    }
}

async fn sign_start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    key_id: String,
    digest: Bytes32,
    context: SignContext,
    signers: Vec<Address>,
    presignature: Option<Bytes32>,
) -> Result<HexBytes, ErrorBody> {
    let slot = match (take_prepared(inner, &session_id), &context) {
        (
            Some(Prepared::Sign {
                key_id: k,
                digest: d,
                slot,
            }),
            SignContext::Digest | SignContext::StateBatch { .. },
        ) if k == key_id && d == digest => slot,
        (
            Some(Prepared::Rollback {
                key_id: k,
                start_block,
            }),
            SignContext::Rollback { start_block: b },
        ) if k == key_id
            && start_block == *b
            && digest.0 == cohort_rollup::rollback_digest(start_block) =>
        {
            None
        }
        _ => {
            return Err(err(
                ErrorCode::BadRequest,
                "sign start does not match what this node approved in prepare",
            ));
        }
    };
    if !first_start(inner, session_id) {
        return Err(err(ErrorCode::Replayed, "session already started"));
    }
    if let Some(slot) = slot {
        crate::batch::record(&inner.store, &key_id, slot, &digest, &context)?;
    }
    if let Some(presig) = presignature {
        return crate::presign::issue_partial(inner, &key_id, presig, &digest, &signers);
    }
    let share = load_share(inner, &key_id)?;
    let ids: Vec<PartyId> = signers.iter().map(pid).collect();
    let binding = SessionBinding::new(
        session_id.0,
        Operation::Sign,
        &key_id,
        ids,
        &cohort_engine::sign::sign_params(&digest.0),
    )
    .map_err(|e| engine_err(&e))?;
    let me = inner.identity.address();
    let (incoming, outgoing) = bridge::delivery(inner.p2p.clone(), session_id.0, signers, me);
    let timeout = Duration::from_secs(inner.config.timeouts.sign_secs.max(1));
    let sig = crate::compute::run(timeout, "signing", async move {
        cohort_engine::sign::sign(&binding, &share, &digest.0, incoming, outgoing).await
    })
    .await?;
    Ok(HexBytes(sig.0.to_vec()))
}

// ---------- background ----------

/// Keeps safe primes in the store for the next aux-info generation (unless the insecure
/// fixture is in use).
pub(crate) fn start_prime_supply(inner: Arc<Inner>) {
    if inner.config.insecure_test_primes {
        tracing::warn!(
            "using the repository's PUBLIC test primes: INSECURE, tests and devnet only"
        );
        return;
    }
    let have_aux = inner.aux.lock().map(|a| a.is_some()).unwrap_or(false);
    let stored = inner.store.primes_count().unwrap_or(0);
    if have_aux || stored > 0 {
        return;
    }
    let threads = inner.config.prime_threads.max(1);
    tokio::task::spawn_blocking(move || {
        let pool = cohort_engine::PrimePool::start(
            threads,
            1,
            |e| tracing::info!(event = ?e, "safe-prime search"),
        );
        loop {
            if let Some(p) = pool.take_timeout(Duration::from_secs(60)) {
                match p.to_bytes() {
                    Ok(bytes) => match inner.store.push_primes(&bytes) {
                        Ok(_) => {
                            tracing::info!("safe primes stored; aux info can be generated");
                            return;
                        }
                        Err(e) => tracing::error!(error = %e, "could not store primes"),
                    },
                    Err(e) => tracing::error!(error = %e, "could not encode primes"),
                }
            }
        }
    });
}

/// Forgets prepared sessions that were never started.
pub(crate) fn start_sweeper(inner: Arc<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            if let Ok(mut m) = inner.prepared.lock() {
                m.retain(|_, (_, deadline)| *deadline > now);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_refuse_plain_digests_other_keys_do_not() {
        let mut config = crate::NodeConfig::from_toml("data_dir = \"/tmp/x\"").unwrap();
        let e = plain_digest_allowed(&config, "state").unwrap_err();
        assert_eq!(e.code, ErrorCode::ContentRejected);
        assert!(e.message.contains("state key"));
        assert!(plain_digest_allowed(&config, "treasury").is_ok());
        config.state_key_ids = vec!["rollup-a".into(), "rollup-b".into()];
        assert!(plain_digest_allowed(&config, "rollup-b").is_err());
        assert!(plain_digest_allowed(&config, "state").is_ok());
    }
}
