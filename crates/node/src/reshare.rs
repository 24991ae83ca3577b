//! Resharing and refresh on the node: prepare (check the sharing), start (run the engine's
//! Feldman-VSS resharing over p2p), then a two-phase switch — the new share is *staged* in the
//! encrypted store under a reserved id and becomes the key's share only on the manager's commit,
//! which comes once every new party has succeeded. Until then the old sharing keeps signing; an
//! abort (or a failure anywhere) discards the staged share and changes nothing else.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::reshare::ResharePlan;
use cohort_engine::{CoreShare, PublicKey};
use cohort_store::{BeginKeygen, KeyStatus};
use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, HexBytes, KeyInfo, NodeMsg, ReshareSpec,
};
use sha3::{Digest, Keccak256};

use crate::handlers::{
    engine_err, err, first_start, pid, refused, remember_prepared, store_err, take_prepared,
};
use crate::{Inner, Prepared, bridge};

/// Reserved store id of the share staged by resharing session `session` for `key_id` (user key
/// ids may not start with `~`).
fn staged_id(session: &Bytes32, key_id: &str) -> String {
    let mut h = Keccak256::new();
    h.update(b"cohort/staged-share/v1");
    h.update(session.0);
    h.update(key_id.as_bytes());
    format!("~staged-{}", hex::encode(&h.finalize()[..20]))
}

fn check_spec(inner: &Inner, spec: &ReshareSpec) -> Result<(bool, bool), ErrorBody> {
    let me = inner.identity.address();
    let in_old = spec.old_parties.contains(&me);
    let in_new = spec.new_parties.contains(&me);
    if !in_old && !in_new {
        return Err(err(
            ErrorCode::NotAParty,
            "this node is neither an old holder nor a new party",
        ));
    }
    if spec.key_id.is_empty() || spec.key_id.starts_with('~') {
        return Err(err(ErrorCode::BadRequest, "bad key id"));
    }
    let n_new = spec.new_parties.len();
    if spec.new_threshold < 2 || usize::from(spec.new_threshold) > n_new {
        return Err(err(ErrorCode::BadRequest, "new threshold out of range"));
    }
    if let Some(p) = spec.new_parties.iter().find(|p| !inner.members.contains(p)) {
        return Err(err(ErrorCode::BadRequest, format!("{p} is not a member")));
    }
    let mut uniq = spec.new_parties.clone();
    uniq.sort();
    uniq.dedup();
    if uniq.len() != n_new {
        return Err(err(ErrorCode::BadRequest, "duplicate new party"));
    }
    Ok((in_old, in_new))
}

/// Phase 1: an old holder checks it holds exactly this sharing; a new party checks it can
/// receive (aux info present, no other live share of this key).
pub(crate) fn prepare(inner: &Inner, session_id: Bytes32, spec: ReshareSpec) -> NodeMsg {
    let (in_old, in_new) = match check_spec(inner, &spec) {
        Ok(x) => x,
        Err(e) => return refused(session_id, e),
    };
    let record = match inner.store.get_key(&spec.key_id) {
        Ok(r) => r,
        Err(e) => return refused(session_id, store_err(&e)),
    };
    if in_old {
        let ok = record.as_ref().is_some_and(|r| {
            r.status == KeyStatus::Ready
                && r.key_session_id == spec.key_session_id.0
                && r.threshold == spec.old_threshold
                && r.parties
                    .iter()
                    .map(|p| Address(*p))
                    .eq(spec.old_parties.iter().copied())
                && r.public_key.as_deref() == Some(spec.public_key.0.as_slice())
        });
        if !ok {
            return refused(
                session_id,
                err(
                    ErrorCode::KeyNotReady,
                    "this node does not hold the sharing being reshared",
                ),
            );
        }
    } else if record.is_some() {
        return refused(
            session_id,
            err(
                ErrorCode::BadRequest,
                "this node already holds another share of this key id",
            ),
        );
    }
    if in_new && inner.aux.lock().map(|a| a.is_none()).unwrap_or(true) {
        return refused(
            session_id,
            err(ErrorCode::AuxMissing, "no aux info for this membership yet"),
        );
    }
    if in_old
        && let Err(e) = inner
            .store
            .mark_reshare(session_id.0, &spec.key_id, spec.key_session_id.0)
    {
        return refused(session_id, store_err(&e));
    }
    remember_prepared(inner, session_id, Prepared::Reshare(spec));
    NodeMsg::KeyReshareReady { session_id }
}

/// Phase 2: runs the resharing; a new party stages its new share and reports the key.
pub(crate) async fn start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    spec: ReshareSpec,
) -> Result<Option<KeyInfo>, ErrorBody> {
    match take_prepared(inner, &session_id) {
        Some(Prepared::Reshare(p))
            if p == ReshareSpec {
                dealers: Vec::new(),
                ..spec.clone()
            } => {}
        _ => {
            return Err(err(
                ErrorCode::BadRequest,
                "reshare start without a matching prepare",
            ));
        }
    }
    if !first_start(inner, session_id) {
        return Err(err(ErrorCode::Replayed, "session already started"));
    }
    if crate::failpoint("reshare_start") {
        // Test hook: die as if killed in the middle of the protocol.
        tracing::error!("failpoint reshare_start: exiting");
        std::process::exit(97);
    }
    let me = inner.identity.address();
    let public_key = PublicKey::from_sec1(&spec.public_key.0).map_err(|e| engine_err(&e))?;
    let plan = ResharePlan {
        old_parties: spec.old_parties.iter().map(pid).collect(),
        old_threshold: spec.old_threshold,
        dealers: spec.dealers.iter().map(pid).collect(),
        new_parties: spec.new_parties.iter().map(pid).collect(),
        new_threshold: spec.new_threshold,
        public_key,
    };
    let binding = plan
        .binding(session_id.0, &spec.key_id)
        .map_err(|e| engine_err(&e))?;
    let old_share = if spec.dealers.contains(&me) {
        let bytes = inner
            .store
            .load_share(&spec.key_id)
            .map_err(|e| store_err(&e))?
            .ok_or_else(|| err(ErrorCode::KeyNotFound, "no share to deal"))?;
        Some(CoreShare::from_bytes(&bytes).map_err(|e| engine_err(&e))?)
    } else {
        None
    };
    let participants: Vec<Address> = plan.participants().iter().map(|p| Address(p.0)).collect();
    let (incoming, outgoing) = bridge::delivery(inner.p2p.clone(), session_id.0, participants, me);
    let timeout = Duration::from_secs(inner.config.timeouts.keygen_secs.max(1));
    tracing::info!(key_id = %spec.key_id, session = %session_id, "resharing started");
    let my_id = pid(&me);
    let new = crate::compute::run(timeout, "resharing", async move {
        cohort_engine::reshare::reshare(
            &binding,
            &plan,
            &my_id,
            old_share.as_ref(),
            incoming,
            outgoing,
        )
        .await
    })
    .await?;
    let Some(core) = new else {
        tracing::info!(key_id = %spec.key_id, "dealt; this node leaves the committee on commit");
        return Ok(None);
    };
    let staged = staged_id(&session_id, &spec.key_id);
    let parties: Vec<[u8; 20]> = spec.new_parties.iter().map(|p| p.0).collect();
    match inner
        .store
        .begin_keygen(&staged, session_id.0, spec.new_threshold, parties)
        .map_err(|e| store_err(&e))?
    {
        BeginKeygen::Started(_) => {}
        _ => return Err(err(ErrorCode::Internal, "staged share slot already used")),
    }
    let pk = core.public_key().uncompressed();
    let bytes = core.to_bytes().map_err(|e| engine_err(&e))?;
    inner
        .store
        .finish_keygen(&staged, session_id.0, &pk, &bytes)
        .map_err(|e| store_err(&e))?;
    tracing::info!(key_id = %spec.key_id, "new share staged; waiting for the commit");
    Ok(Some(KeyInfo {
        key_id: spec.key_id,
        key_session_id: session_id,
        threshold: spec.new_threshold,
        parties: spec.new_parties,
        public_key: HexBytes(pk.to_vec()),
    }))
}

fn forget_cached(inner: &Inner, key_id: &str) {
    if let Ok(mut c) = inner.shares.lock() {
        c.remove(key_id);
    }
}

/// Commit: a new party switches to its staged share (atomically replacing an old one); an old
/// holder that leaves deletes its share. Idempotent.
pub(crate) fn commit(
    inner: &Inner,
    session_id: Bytes32,
    key_id: &str,
    new_parties: &[Address],
) -> Result<(), ErrorBody> {
    let me = inner.identity.address();
    let staged = staged_id(&session_id, key_id);
    let current = inner.store.get_key(key_id).map_err(|e| store_err(&e))?;
    if current
        .as_ref()
        .is_some_and(|r| r.key_session_id == session_id.0)
    {
        // Already committed (a resent commit).
        let _ = inner.store.delete_key(&staged);
        let _ = inner.store.take_reshare(session_id.0);
        return Ok(());
    }
    let agreed = inner
        .store
        .take_reshare(session_id.0)
        .map_err(|e| store_err(&e))?;
    if !new_parties.contains(&me) {
        let Some(current) = current else {
            return Ok(()); // already left (a resent commit)
        };
        // Only a commit of a resharing this node agreed to, of the sharing it still holds,
        // may make it delete its share.
        match agreed {
            Some((k, held)) if k == key_id && held == current.key_session_id => {}
            _ => {
                return Err(err(
                    ErrorCode::BadRequest,
                    "commit of a resharing this node did not agree to for its sharing; share kept",
                ));
            }
        }
        inner.store.delete_key(key_id).map_err(|e| store_err(&e))?;
        forget_cached(inner, key_id);
        tracing::info!(%key_id, "left the committee: share deleted");
        return Ok(());
    }
    let rec = inner
        .store
        .get_key(&staged)
        .map_err(|e| store_err(&e))?
        .filter(|r| r.status == KeyStatus::Ready)
        .ok_or_else(|| err(ErrorCode::KeyNotFound, "no staged share for this resharing"))?;
    // The commit must name the committee this node's staged share was dealt for.
    if !rec
        .parties
        .iter()
        .map(|p| Address(*p))
        .eq(new_parties.iter().copied())
    {
        return Err(err(
            ErrorCode::BadRequest,
            "the commit names another committee than the staged share's",
        ));
    }
    let bytes = inner
        .store
        .load_share(&staged)
        .map_err(|e| store_err(&e))?
        .ok_or_else(|| err(ErrorCode::KeyNotFound, "staged share missing"))?;
    match current {
        Some(old) if old.status == KeyStatus::Ready => {
            inner
                .store
                .replace_share(
                    key_id,
                    old.key_session_id,
                    session_id.0,
                    rec.threshold,
                    rec.parties.clone(),
                    &bytes,
                )
                .map_err(|e| store_err(&e))?;
        }
        _ => {
            match inner
                .store
                .begin_keygen(key_id, session_id.0, rec.threshold, rec.parties.clone())
                .map_err(|e| store_err(&e))?
            {
                BeginKeygen::Started(_) => {}
                _ => return Err(err(ErrorCode::Internal, "key slot busy at commit")),
            }
            let pk = rec.public_key.clone().unwrap_or_default();
            inner
                .store
                .finish_keygen(key_id, session_id.0, &pk, &bytes)
                .map_err(|e| store_err(&e))?;
        }
    }
    forget_cached(inner, key_id);
    let _ = inner.store.delete_key(&staged);
    tracing::info!(%key_id, session = %session_id, "reshared share committed");
    Ok(())
}

/// Abort: discards a staged share; the old sharing stays as it was.
pub(crate) fn abort(inner: &Inner, session_id: Bytes32, key_id: &str) -> Result<(), ErrorBody> {
    take_prepared(inner, &session_id);
    let staged = staged_id(&session_id, key_id);
    let existed = inner.store.delete_key(&staged).map_err(|e| store_err(&e))?;
    inner
        .store
        .take_reshare(session_id.0)
        .map_err(|e| store_err(&e))?;
    tracing::info!(%key_id, session = %session_id, existed, "resharing aborted; staged share discarded");
    Ok(())
}
