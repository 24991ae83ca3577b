//! Resharing and refresh on the node (design table, rows "reshare" and "refresh" —
//! [`crate::operations`]): prepare (check the sharing), start (run the engine's Feldman-VSS
//! resharing over p2p), then a two-phase switch — the new share is *staged* in the encrypted
//! store as a [`StagedShare`] of its own and becomes the key's share only on the manager's
//! commit, which comes once every new party has succeeded. Until then the old sharing keeps
//! signing; an abort (or a failure anywhere) discards the staged share and changes nothing else.
//! A staged share survives a restart, so a commit redelivered after one still finds it.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::reshare::ResharePlan;
use cohort_engine::session::Operation;
use cohort_engine::{CoreShare, EthSignature, KeyShare, PublicKey};
use cohort_store::{BeginKeygen, KeyStatus, StagedShare};
use cohort_wire::{
    Address, Bytes32, Committee, ErrorBody, ErrorCode, HexBytes, KeyId, KeyInfo, NodeMsg,
    ReshareAck, ReshareSpec, reshare_ack_digest,
};

use crate::compute::{self, Run};
use crate::errors::{self, err, pid, refused};
use crate::ops::aux;
use crate::session::Prepared;
use crate::{Inner, shares};

/// Whether this node is an old holder and/or a new party; the new committee must follow the
/// committee rule and consist of members.
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
    let new = Committee::new(spec.new_parties.clone(), spec.new_threshold)
        .map_err(|e| errors::committee("new committee", e))?;
    new.check_members(&inner.members)
        .map_err(|e| errors::committee("new committee", e))?;
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
        Err(e) => return refused(session_id, errors::store(e)),
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
    // A new party generates fresh aux info for the new sharing: it needs primes at hand.
    if in_new && !aux::have_primes(inner) {
        return refused(
            session_id,
            err(
                ErrorCode::AuxMissing,
                "no safe primes ready for the new sharing's aux info; the pool is still searching",
            ),
        );
    }
    if in_old
        && let Err(e) = inner
            .store
            .mark_reshare(session_id.0, &spec.key_id, spec.key_session_id.0)
    {
        return refused(session_id, errors::store(e));
    }
    inner.sessions.prepare(session_id, Prepared::Reshare(spec));
    NodeMsg::KeyReshareReady { session_id }
}

/// Phase 2: runs the resharing; a new party then runs a fresh aux-info generation with the
/// other new parties, stages its new share (and that aux info), and reports the key with its
/// signed acknowledgement of the new sharing.
pub(crate) async fn start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    spec: ReshareSpec,
) -> Result<(Option<KeyInfo>, Option<ReshareAck>), ErrorBody> {
    inner.sessions.start_reshare(session_id, &spec)?;
    if crate::failpoint("reshare_start") {
        // Test hook: die as if killed in the middle of the protocol.
        tracing::error!("failpoint reshare_start: exiting");
        std::process::exit(97);
    }
    let me = inner.identity.address();
    let public_key = PublicKey::from_sec1(&spec.public_key.0).map_err(errors::engine)?;
    let plan = ResharePlan {
        old_parties: spec.old_parties.iter().map(pid).collect(),
        old_threshold: spec.old_threshold,
        dealers: spec.dealers.iter().map(pid).collect(),
        new_parties: spec.new_parties.iter().map(pid).collect(),
        new_threshold: spec.new_threshold,
        public_key,
    };
    // The binding the engine's `ResharePlan::binding` would make, through the one start path.
    plan.validate().map_err(errors::engine)?;
    let operation = if plan.is_refresh() {
        Operation::Refresh
    } else {
        Operation::Reshare
    };
    let params = plan.params().map_err(errors::engine)?;
    let old_share = if spec.dealers.contains(&me) {
        let bytes = inner
            .store
            .load_share(&spec.key_id)
            .map_err(errors::store)?
            .ok_or_else(|| err(ErrorCode::KeyNotFound, "no share to deal"))?;
        Some(CoreShare::from_bytes(&bytes).map_err(errors::engine)?)
    } else {
        None
    };
    let run = Run {
        session_id,
        operation,
        key_id: &spec.key_id,
        parties: plan.participants().iter().map(|p| Address(p.0)).collect(),
        params,
        timeout: Duration::from_secs(inner.config.timeouts.keygen_secs.max(1)),
        what: "resharing",
    };
    let new = compute::start(inner, run, |binding, me, incoming, outgoing| async move {
        cohort_engine::reshare::reshare(
            &binding,
            &plan,
            &me,
            old_share.as_ref(),
            incoming,
            outgoing,
        )
        .await
    })
    .await?;
    let Some(core) = new else {
        tracing::info!("dealt; this node leaves the committee on commit");
        return Ok((None, None));
    };
    let pk = core.public_key().uncompressed();
    // Fresh Paillier keys for the new sharing, so that whoever learnt this node's old primes
    // cannot decrypt its nonce shares in later signatures; checked against the share here so a
    // commit never switches to a pair that cannot sign.
    let aux = aux::for_resharing(
        inner,
        session_id,
        spec.key_id.as_str(),
        spec.key_session_id.0,
        &spec.new_parties,
    )
    .await?;
    if let Err(e) = KeyShare::new(core.clone(), &aux) {
        discard_aux(inner, &spec.key_id, &session_id);
        return Err(errors::engine(e));
    }
    let bytes = core.to_bytes().map_err(errors::engine)?;
    inner
        .store
        .put_staged(
            &StagedShare {
                key_id: spec.key_id.to_string(),
                session: session_id.0,
                threshold: spec.new_threshold,
                parties: spec.new_parties.iter().map(|p| p.0).collect(),
                public_key: pk.to_vec(),
                staged_at_ms: 0,
            },
            &bytes,
        )
        .map_err(errors::store)?;
    tracing::info!("new share staged; waiting for the commit");
    let public_shares: Vec<HexBytes> = core
        .public_shares()
        .iter()
        .map(|s| HexBytes(s.to_vec()))
        .collect();
    let aux_modulus = Bytes32(aux.modulus_hash());
    let digest = reshare_ack_digest(
        &spec.key_id,
        &session_id,
        &pk,
        &spec.new_parties,
        &public_shares,
        &aux_modulus,
    );
    let signature = inner
        .identity
        .sign_digest(&digest)
        .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
    let ack = ReshareAck {
        party: me,
        public_shares,
        aux_modulus,
        signature: HexBytes(signature.to_vec()),
    };
    Ok((
        Some(KeyInfo {
            key_id: spec.key_id,
            key_session_id: session_id,
            threshold: spec.new_threshold,
            parties: spec.new_parties,
            public_key: HexBytes(pk.to_vec()),
        }),
        Some(ack),
    ))
}

/// Removes the aux info staged for resharing `session_id` (an abort, or a failed check).
fn discard_aux(inner: &Inner, key_id: &KeyId, session_id: &Bytes32) {
    if let Err(e) = inner
        .store
        .remove_aux(aux::key_aux_id(key_id.as_str(), &session_id.0))
    {
        tracing::error!(error = %e, "could not remove staged aux info");
    }
}

/// Checks, before a leaver deletes its share, that every new party acknowledged the new
/// sharing `session_id` of the key with public key `public_key`: one ack per new party (each
/// a member), signed with that party's node key over the same new sharing.
pub(crate) fn verify_acks(
    inner: &Inner,
    session_id: &Bytes32,
    key_id: &KeyId,
    public_key: &[u8],
    new_parties: &[Address],
    acks: &[ReshareAck],
) -> Result<(), ErrorBody> {
    let refuse = |why: String| {
        err(
            ErrorCode::BadRequest,
            format!("resharing acknowledgements do not verify ({why}); share kept"),
        )
    };
    if new_parties.is_empty() {
        return Err(refuse("no new committee".into()));
    }
    let mut seen: Vec<Address> = Vec::with_capacity(new_parties.len());
    for p in new_parties {
        if seen.contains(p) {
            return Err(refuse(format!("{p} named twice")));
        }
        seen.push(*p);
        if !inner.members.contains(p) {
            return Err(refuse(format!("{p} is not a member")));
        }
    }
    let Some(first) = acks.first() else {
        return Err(refuse("none given".into()));
    };
    let shares = &first.public_shares;
    if shares.len() != new_parties.len() || shares.iter().any(|s| s.0.len() != 33) {
        return Err(refuse(
            "public shares do not match the new committee".into(),
        ));
    }
    for p in new_parties {
        let mut of_p = acks.iter().filter(|a| a.party == *p);
        let (Some(ack), None) = (of_p.next(), of_p.next()) else {
            return Err(refuse(format!("no single acknowledgement from {p}")));
        };
        if ack.public_shares != *shares {
            return Err(refuse(format!("{p} acknowledged another sharing")));
        }
        let digest = reshare_ack_digest(
            key_id,
            session_id,
            public_key,
            new_parties,
            shares,
            &ack.aux_modulus,
        );
        let signature = <[u8; 65]>::try_from(ack.signature.0.as_slice())
            .map_err(|_| refuse(format!("{p}'s signature is not 65 bytes")))?;
        match EthSignature(signature).recover_address(&digest) {
            Ok(a) if a == p.0 => {}
            _ => return Err(refuse(format!("{p}'s signature does not verify"))),
        }
    }
    if acks.len() != new_parties.len() {
        return Err(refuse(
            "acknowledgements from outside the new committee".into(),
        ));
    }
    Ok(())
}

/// Commit: a new party switches to its staged share (atomically replacing an old one); an old
/// holder that leaves deletes its share. Idempotent.
pub(crate) fn commit(
    inner: &Inner,
    session_id: Bytes32,
    key_id: &KeyId,
    new_parties: &[Address],
    acks: &[ReshareAck],
) -> Result<(), ErrorBody> {
    let me = inner.identity.address();
    let current = inner.store.get_key(key_id).map_err(errors::store)?;
    if current
        .as_ref()
        .is_some_and(|r| r.key_session_id == session_id.0)
    {
        // Already committed (a resent commit).
        let _ = inner.store.discard_staged(key_id, session_id.0);
        let _ = inner.store.take_reshare(session_id.0);
        return Ok(());
    }
    if !new_parties.contains(&me) {
        let Some(current) = current else {
            let _ = inner.store.take_reshare(session_id.0);
            return Ok(()); // already left (a resent commit)
        };
        // Only a commit of a resharing this node agreed to, of the sharing it still holds,
        // and acknowledged by every new party, may make it delete its share. The mark stays
        // until then, so a commit redelivered with the acknowledgements still deletes.
        let agreed = inner
            .store
            .take_reshare(session_id.0)
            .map_err(errors::store)?;
        match agreed {
            Some((k, held)) if k == key_id.as_str() && held == current.key_session_id => {}
            _ => {
                return Err(err(
                    ErrorCode::BadRequest,
                    "commit of a resharing this node did not agree to for its sharing; share kept",
                ));
            }
        }
        let public_key = current.public_key.clone().unwrap_or_default();
        if let Err(e) = verify_acks(inner, &session_id, key_id, &public_key, new_parties, acks) {
            // Put the mark back: a commit redelivered with valid acknowledgements may delete.
            inner
                .store
                .mark_reshare(session_id.0, key_id.as_str(), current.key_session_id)
                .map_err(errors::store)?;
            return Err(e);
        }
        inner.store.delete_key(key_id).map_err(errors::store)?;
        shares::forget(inner, key_id);
        let _ = inner
            .store
            .remove_aux(aux::key_aux_id(key_id.as_str(), &current.key_session_id));
        tracing::info!("left the committee: share deleted");
        return Ok(());
    }
    let _ = inner.store.take_reshare(session_id.0);
    let (staged, bytes) = inner
        .store
        .load_staged(key_id, session_id.0)
        .map_err(errors::store)?
        .ok_or_else(|| err(ErrorCode::KeyNotFound, "no staged share for this resharing"))?;
    // The commit must name the committee this node's staged share was dealt for.
    if !staged
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
    match &current {
        Some(old) if old.status == KeyStatus::Ready => {
            inner
                .store
                .replace_share(
                    key_id,
                    old.key_session_id,
                    session_id.0,
                    staged.threshold,
                    staged.parties.clone(),
                    &bytes,
                )
                .map_err(errors::store)?;
        }
        _ => {
            match inner
                .store
                .begin_keygen(
                    key_id,
                    session_id.0,
                    staged.threshold,
                    staged.parties.clone(),
                )
                .map_err(errors::store)?
            {
                BeginKeygen::Started(_) => {}
                _ => return Err(err(ErrorCode::Internal, "key slot busy at commit")),
            }
            inner
                .store
                .finish_keygen(key_id, session_id.0, &staged.public_key, &bytes)
                .map_err(errors::store)?;
        }
    }
    shares::forget(inner, key_id);
    let _ = inner.store.discard_staged(key_id, session_id.0);
    // The previous sharing's own aux info (a sharing from an earlier resharing) goes with it.
    if let Some(old) = &current {
        let _ = inner
            .store
            .remove_aux(aux::key_aux_id(key_id.as_str(), &old.key_session_id));
    }
    tracing::info!("reshared share committed");
    Ok(())
}

/// Abort: discards a staged share; the old sharing stays as it was.
pub(crate) fn abort(inner: &Inner, session_id: Bytes32, key_id: &KeyId) -> Result<(), ErrorBody> {
    inner.sessions.cancel(&session_id);
    let existed = inner
        .store
        .discard_staged(key_id, session_id.0)
        .map_err(errors::store)?;
    discard_aux(inner, key_id, &session_id);
    inner
        .store
        .take_reshare(session_id.0)
        .map_err(errors::store)?;
    tracing::info!(existed, "resharing aborted; staged share discarded");
    Ok(())
}
