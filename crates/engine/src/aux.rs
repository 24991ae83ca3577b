//! Paillier aux-info generation (cggmp21's aux-only key refresh) for a committee. Expensive even
//! with primes at hand, so a node runs it once per membership and reuses the result for every key.

use futures::{Sink, Stream};
use rand_core::OsRng;

use crate::error::EngineError;
use crate::primes::SafePrimes;
use crate::session::{Operation, PartyId, SessionBinding};
use crate::share::AuxInfo;
use crate::transport::{self, RawIncoming, RawOutgoing};

/// Protocol message of aux-info generation.
pub type Msg = cggmp21::key_refresh::msg::aux_only::Msg<
    sha2::Sha256,
    cggmp21::security_level::SecurityLevel128,
>;

/// Runs aux-info generation as `me` with its own safe primes (from the pool). `binding` must be
/// for [`Operation::AuxInfo`]; its parties are the membership the result covers.
pub async fn aux_info_gen<I, O, IE, OE>(
    binding: &SessionBinding,
    me: &PartyId,
    primes: SafePrimes,
    incoming: I,
    outgoing: O,
) -> Result<AuxInfo, EngineError>
where
    I: Stream<Item = Result<RawIncoming, IE>> + Unpin,
    O: Sink<RawOutgoing, Error = OE> + Unpin,
    IE: std::error::Error,
    OE: std::error::Error,
{
    if binding.operation() != Operation::AuxInfo {
        return Err(EngineError::InvalidInput(
            "binding is not for aux info".into(),
        ));
    }
    let i = binding.index_of(me)?;
    let (party, faults) = transport::typed::<Msg, _, _, _, _>(binding, i, incoming, outgoing);
    let aux = cggmp21::aux_info_gen(binding.execution_id(), i, binding.n(), primes.into_inner())
        .start(&mut OsRng, party)
        .await
        .map_err(|e| transport::classify(binding, &faults, &e))?;
    AuxInfo::new(binding.parties().to_vec(), i, aux)
}
