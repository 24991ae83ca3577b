//! Aux-info generation (Paillier keys and their proofs), once per node per membership: every
//! member must take part, with a pair of safe primes from the background pool.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::SafePrimes;
use cohort_engine::primes::insecure_test_primes;
use cohort_engine::session::Operation;
use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode, NodeMsg};

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
    inner
        .sessions
        .prepare(session_id, Prepared::Aux { members });
    NodeMsg::AuxInfoReady {
        session_id,
        test_primes: inner.config.insecure_test_primes,
    }
}

fn next_primes(inner: &Inner, members: &[Address]) -> Result<SafePrimes, ErrorBody> {
    if inner.config.insecure_test_primes {
        let me = inner.identity.address();
        let k = members.iter().position(|m| *m == me).unwrap_or(0);
        return insecure_test_primes::pair(k).map_err(errors::engine);
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
    let primes = next_primes(inner, &members)?;
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
