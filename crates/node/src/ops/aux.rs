//! Aux-info generation (Paillier keys and their proofs), once per node per membership: every
//! member must take part, with a pair of safe primes from the background pool.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::primes::insecure_test_primes;
use cohort_engine::session::Operation;
use cohort_engine::{AuxInfo, SafePrimes};
use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, NodeMsg};
use sha3::{Digest, Keccak256};

use crate::compute::{self, Run};
use crate::errors::{self, err, refused};
use crate::session::Prepared;
use crate::{Inner, membership_id, shares};

/// Phase 1: willing if asked for this node's own membership and it has primes ready.
pub(crate) fn prepare(inner: &Inner, session_id: Bytes32, members: Vec<Address>) -> NodeMsg {
    if members != inner.members {
        return refused(
            session_id,
            err(
                ErrorCode::BadRequest,
                "aux info requested for another membership",
            ),
        );
    }
    if !have_primes(inner) {
        return refused(
            session_id,
            err(
                ErrorCode::AuxMissing,
                "no safe primes ready yet; the pool is still searching",
            ),
        );
    }
    inner
        .sessions
        .prepare(session_id, Prepared::Aux { members });
    NodeMsg::AuxInfoReady {
        session_id,
        test_primes: inner.config.insecure_test_primes,
    }
}

/// Whether this node can take part in an aux-info generation now (primes at hand).
pub(crate) fn have_primes(inner: &Inner) -> bool {
    inner.config.insecure_test_primes || inner.store.primes_count().map(|c| c > 0).unwrap_or(false)
}

/// The next pair of safe primes: from the pool (fresh, popped once), or with the insecure
/// fixture a pair whose modulus is none of `avoid` (the node's current ones), picked by
/// `salt` and the node's place in `members` so parties of one run get distinct pairs.
fn next_primes(
    inner: &Inner,
    members: &[Address],
    salt: &[u8; 32],
    avoid: &[[u8; 32]],
) -> Result<SafePrimes, ErrorBody> {
    if inner.config.insecure_test_primes {
        let me = inner.identity.address();
        let k = members.iter().position(|m| *m == me).unwrap_or(0);
        let pairs = insecure_test_primes::pairs().max(1);
        let base = usize::from(u16::from_be_bytes([salt[0], salt[1]]));
        for step in 0..pairs {
            let p = insecure_test_primes::pair((base + k + step * members.len()) % pairs)
                .map_err(errors::engine)?;
            if !avoid.contains(&p.modulus_hash()) {
                return Ok(p);
            }
        }
        return Err(err(
            ErrorCode::AuxMissing,
            "the insecure prime fixture has no pair left that this node does not use",
        ));
    }
    let bytes = inner
        .store
        .pop_primes()
        .map_err(errors::store)?
        .ok_or_else(|| err(ErrorCode::AuxMissing, "no safe primes ready"))?;
    SafePrimes::from_bytes(&bytes).map_err(errors::engine)
}

/// Phase 2: generates the aux info, stores it and rebuilds every cached share with it.
pub(crate) async fn start(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    members: Vec<Address>,
) -> Result<(), ErrorBody> {
    inner.sessions.start_aux(session_id, &members)?;
    // The first generation of a membership uses the node's place (pair k, as before); a
    // re-run avoids the modulus this node holds.
    let avoid: Vec<[u8; 32]> = current_aux(inner)
        .iter()
        .map(|a| a.modulus_hash())
        .collect();
    let salt = if avoid.is_empty() {
        [0; 32]
    } else {
        session_id.0
    };
    let primes = next_primes(inner, &members, &salt, &avoid)?;
    let run = Run {
        session_id,
        operation: Operation::AuxInfo,
        key_id: "",
        parties: members.clone(),
        params: Vec::new(),
        timeout: Duration::from_secs(inner.config.timeouts.aux_secs.max(1)),
        what: "aux-info generation",
    };
    let aux = compute::start(inner, run, |binding, me, incoming, outgoing| async move {
        cohort_engine::aux::aux_info_gen(&binding, &me, primes, incoming, outgoing).await
    })
    .await?;
    refuse_test_primes(inner.config.insecure_test_primes, &aux)?;
    let bytes = aux.to_bytes().map_err(errors::engine)?;
    inner
        .store
        .put_aux(membership_id(&members), &bytes)
        .map_err(errors::store)?;
    if let Ok(mut slot) = inner.aux.lock() {
        *slot = Some(Arc::new(aux));
    }
    shares::forget_all(inner);
    Ok(())
}

fn current_aux(inner: &Inner) -> Option<Arc<AuxInfo>> {
    inner.aux.lock().ok().and_then(|a| a.clone())
}

/// Where the aux info of one sharing of a key is kept: fresh aux info is generated with every
/// resharing or refresh, so each sharing has Paillier keys of its own.
pub(crate) fn key_aux_id(key_id: &str, key_session_id: &[u8; 32]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"cohort/key-aux/v1");
    h.update((key_id.len() as u64).to_be_bytes());
    h.update(key_id.as_bytes());
    h.update(key_session_id);
    h.finalize().into()
}

/// The p2p session of the aux-info run inside resharing `session_id` (its own message stream).
fn resharing_aux_session(session_id: &Bytes32) -> Bytes32 {
    let mut h = Keccak256::new();
    h.update(b"cohort/reshare-aux/v1");
    h.update(session_id.0);
    Bytes32(h.finalize().into())
}

/// Fresh aux info for the new committee of resharing `session_id` of `key_id`, from fresh
/// primes (never a modulus this node already uses for the membership or the current sharing),
/// run by the new parties right after the resharing itself. Stored under
/// [`key_aux_id`]`(key_id, session_id)`, which nothing uses until the commit makes
/// `session_id` the key's sharing; an abort removes it.
pub(crate) async fn for_resharing(
    inner: &Arc<Inner>,
    session_id: Bytes32,
    key_id: &str,
    current_session: [u8; 32],
    new_parties: &[Address],
) -> Result<AuxInfo, ErrorBody> {
    let mut avoid: Vec<[u8; 32]> = current_aux(inner)
        .iter()
        .map(|a| a.modulus_hash())
        .collect();
    if let Some(bytes) = inner
        .store
        .get_aux(key_aux_id(key_id, &current_session))
        .map_err(errors::store)?
    {
        avoid.push(
            AuxInfo::from_bytes(&bytes)
                .map_err(errors::engine)?
                .modulus_hash(),
        );
    }
    let primes = next_primes(inner, new_parties, &session_id.0, &avoid)?;
    let run = Run {
        session_id: resharing_aux_session(&session_id),
        operation: Operation::AuxInfo,
        key_id,
        parties: new_parties.to_vec(),
        params: session_id.0.to_vec(),
        timeout: Duration::from_secs(inner.config.timeouts.aux_secs.max(1)),
        what: "aux-info generation of the new sharing",
    };
    let aux = compute::start(inner, run, |binding, me, incoming, outgoing| async move {
        cohort_engine::aux::aux_info_gen(&binding, &me, primes, incoming, outgoing).await
    })
    .await?;
    let bytes = aux.to_bytes().map_err(errors::engine)?;
    inner
        .store
        .put_aux(key_aux_id(key_id, &session_id.0), &bytes)
        .map_err(errors::store)?;
    tracing::info!("fresh aux info staged for the new sharing");
    Ok(aux)
}

/// A node that does not use the public test primes keeps no aux info in which any member's
/// Paillier modulus is made of them (its own check on the finished aux info, whatever any
/// member or the manager announced): such a member's nonce shares are readable by anyone.
pub(crate) fn refuse_test_primes(
    uses_test_primes: bool,
    aux: &cohort_engine::AuxInfo,
) -> Result<(), ErrorBody> {
    if uses_test_primes {
        return Ok(());
    }
    let tainted = aux.members_with_test_primes();
    if tainted.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = tainted.iter().map(|p| p.to_hex()).collect();
    tracing::error!(members = ?names, "aux info refused: members use the public test primes");
    Err(err(
        ErrorCode::BadRequest,
        format!(
            "aux info refused: {} use the public INSECURE test primes, and this node does not",
            names.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use cohort_engine::PartyId;

    #[test]
    fn a_node_without_test_primes_refuses_aux_info_made_with_them() {
        let members: Vec<PartyId> = (0..3u8).map(|i| PartyId([i + 1; 20])).collect();
        let auxes = cohort_engine::insecure_fixture::trusted_aux(&members).unwrap();
        let e = super::refuse_test_primes(false, &auxes[0]).unwrap_err();
        assert!(e.message.contains("test primes"), "{}", e.message);
        assert!(e.message.contains(&members[2].to_hex()), "{}", e.message);
        // A devnet node (itself on the fixture) takes it.
        assert!(super::refuse_test_primes(true, &auxes[1]).is_ok());
    }
}
