//! **Insecure** shortcuts for tests and benchmarks only: aux info dealt by one process from the
//! public fixture primes, skipping the minute-long aux-info protocol when a test is not about it.
//! Behind the `insecure-test-fixtures` feature (which turns on cggmp21's `spof`); never enable it
//! in a build that serves real keys.

use rand_core::OsRng;

use crate::error::EngineError;
use crate::primes::insecure_test_primes;
use crate::session::PartyId;
use crate::share::AuxInfo;

/// Aux info for `members`, member k using fixture pair k; one entry per member, in order.
pub fn trusted_aux(members: &[PartyId]) -> Result<Vec<AuxInfo>, EngineError> {
    let primes = (0..members.len())
        .map(|k| insecure_test_primes::pair(k).map(|p| p.into_inner().split()))
        .collect::<Result<Vec<_>, _>>()?;
    let auxes =
        cggmp21::trusted_dealer::generate_aux_data_with_primes(&mut OsRng, primes, false, false)
            .map_err(|e| EngineError::InvalidShare(e.to_string()))?;
    auxes
        .into_iter()
        .enumerate()
        .map(|(k, aux)| AuxInfo::new(members.to_vec(), k as u16, aux))
        .collect()
}
