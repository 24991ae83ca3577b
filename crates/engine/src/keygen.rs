//! t-of-n distributed key generation (cggmp21's threshold DKG). Every party of the binding takes
//! part; the output is a [`CoreShare`], which a node completes with its [`AuxInfo`](crate::AuxInfo)
//! to sign.

use futures::{Sink, Stream};
use rand_core::OsRng;

use crate::error::EngineError;
use crate::session::{Operation, PartyId, SessionBinding};
use crate::share::CoreShare;
use crate::transport::{self, RawIncoming, RawOutgoing};

/// Protocol message of keygen.
pub type Msg = cggmp21::keygen::ThresholdMsg<
    crate::Curve,
    cggmp21::security_level::SecurityLevel128,
    sha2::Sha256,
>;

/// Parameters hashed into a keygen binding.
pub fn params(threshold: u16) -> Vec<u8> {
    threshold.to_be_bytes().to_vec()
}

/// Runs keygen as `me`. `binding` must be for [`Operation::Keygen`] with
/// [`params`]`(threshold)`.
pub async fn keygen<I, O, IE, OE>(
    binding: &SessionBinding,
    me: &PartyId,
    threshold: u16,
    incoming: I,
    outgoing: O,
) -> Result<CoreShare, EngineError>
where
    I: Stream<Item = Result<RawIncoming, IE>> + Unpin,
    O: Sink<RawOutgoing, Error = OE> + Unpin,
    IE: std::error::Error,
    OE: std::error::Error,
{
    if binding.operation() != Operation::Keygen {
        return Err(EngineError::InvalidInput(
            "binding is not for keygen".into(),
        ));
    }
    let n = binding.n();
    if threshold < 2 || threshold > n {
        return Err(EngineError::InvalidInput(format!(
            "threshold {threshold} is not in 2..={n}"
        )));
    }
    let i = binding.index_of(me)?;
    let (party, faults) = transport::typed::<Msg, _, _, _, _>(binding, i, incoming, outgoing);
    let share = cggmp21::keygen::<crate::Curve>(binding.execution_id(), i, n)
        .set_threshold(threshold)
        .start(&mut OsRng, party)
        .await
        .map_err(|e| transport::classify(binding, &faults, &e))?;
    CoreShare::new(binding.parties().to_vec(), share)
}
