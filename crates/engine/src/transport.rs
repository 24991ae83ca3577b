//! Byte-level delivery for the node, typed delivery for cggmp21.
//!
//! The node hands every protocol a stream of [`RawIncoming`] (sender = the index of the
//! authenticated peer, as its transport tells) and a sink of [`RawOutgoing`]. Here they are
//! wrapped into the typed `MpcParty` the protocols want; a message that is not for this session,
//! does not decode, or claims an impossible sender stops the run and its sender is remembered so
//! that the error names it.

use std::sync::{Arc, Mutex};

use futures::{Sink, SinkExt, Stream, StreamExt};
use round_based::runtime::TokioRuntime;
use round_based::{Incoming, MpcParty, Outgoing};
use serde::{Serialize, de::DeserializeOwned};

use crate::blame;
use crate::codec::{self, DecodeError};
use crate::error::EngineError;
use crate::session::SessionBinding;

/// A message as the transport delivers it: bytes plus the sender's protocol index.
pub type RawIncoming = Incoming<Vec<u8>>;
/// A message as a protocol emits it: bytes plus broadcast / p2p destination.
pub type RawOutgoing = Outgoing<Vec<u8>>;

#[derive(Debug, Clone)]
pub(crate) enum Fault {
    WrongSession(u16),
    Malformed(u16, String),
}

/// Where the adapter records the first bad message it saw.
#[derive(Clone, Default)]
pub(crate) struct FaultCell(Arc<Mutex<Option<Fault>>>);

impl FaultCell {
    fn record(&self, fault: Fault) {
        if let Ok(mut slot) = self.0.lock()
            && slot.is_none()
        {
            *slot = Some(fault);
        }
    }

    fn take(&self) -> Option<Fault> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// Error the typed stream yields for a refused message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IncomingError {
    #[error("transport: {0}")]
    Transport(String),
    #[error("refused message from party {0}")]
    Refused(u16),
}

/// Error the typed sink yields.
#[derive(Debug, thiserror::Error)]
#[error("send failed: {0}")]
pub(crate) struct OutgoingError(String);

/// Wraps raw delivery into a typed `MpcParty` for message type `M`.
#[allow(clippy::type_complexity)]
pub(crate) fn typed<M, I, O, IE, OE>(
    binding: &SessionBinding,
    me: u16,
    incoming: I,
    outgoing: O,
) -> (
    MpcParty<
        M,
        (
            impl Stream<Item = Result<Incoming<M>, IncomingError>> + Unpin,
            impl Sink<Outgoing<M>, Error = OutgoingError> + Unpin,
        ),
        TokioRuntime,
    >,
    FaultCell,
)
where
    M: Serialize + DeserializeOwned,
    I: Stream<Item = Result<RawIncoming, IE>> + Unpin,
    O: Sink<RawOutgoing, Error = OE> + Unpin,
    IE: std::error::Error,
    OE: std::error::Error,
{
    let cell = FaultCell::default();
    let tag = binding.digest();
    let n = binding.n();
    let faults = cell.clone();
    let incoming = incoming.map(move |item| {
        let raw = item.map_err(|e| IncomingError::Transport(e.to_string()))?;
        let sender = raw.sender;
        if sender >= n || sender == me {
            faults.record(Fault::Malformed(sender, "impossible sender index".into()));
            return Err(IncomingError::Refused(sender));
        }
        raw.try_map(|bytes| codec::decode::<M>(&tag, &bytes))
            .map_err(|e| {
                faults.record(match e {
                    DecodeError::WrongSession => Fault::WrongSession(sender),
                    other => Fault::Malformed(sender, other.to_string()),
                });
                IncomingError::Refused(sender)
            })
    });
    let outgoing = outgoing
        .sink_map_err(|e| OutgoingError(e.to_string()))
        .with(move |out: Outgoing<M>| {
            let recipient = out.recipient;
            let encoded = codec::encode(&tag, &out.msg)
                .map(|msg| Outgoing { recipient, msg })
                .map_err(OutgoingError);
            futures::future::ready(encoded)
        });
    // Tokio runtime: the protocols yield between heavy steps, so one slow run never starves the
    // others sharing the node's executor.
    (
        MpcParty::connected((incoming, outgoing)).set_runtime(TokioRuntime),
        cell,
    )
}

/// The error for the refused message recorded in `faults`, if any.
pub(crate) fn fault_error(binding: &SessionBinding, faults: &FaultCell) -> Option<EngineError> {
    let operation = binding.operation();
    let names = |i: u16| binding.names(&[i]).into_iter().next();
    match faults.take()? {
        Fault::WrongSession(i) => {
            names(i).map(|culprit| EngineError::WrongSession { operation, culprit })
        }
        Fault::Malformed(i, reason) => names(i).map(|culprit| EngineError::Malformed {
            operation,
            culprit,
            reason,
        }),
    }
}

/// Turns a protocol error into an [`EngineError`] that names culprits where anyone can tell.
pub(crate) fn classify(
    binding: &SessionBinding,
    faults: &FaultCell,
    err: &(dyn std::error::Error + 'static),
) -> EngineError {
    let operation = binding.operation();
    if let Some(e) = fault_error(binding, faults) {
        return e;
    }
    let reason = blame::chain(err);
    let debug = format!("{err:?}");
    let culprits = binding.names(&blame::culprit_indices(&debug));
    if debug.contains("Aborted") || !culprits.is_empty() {
        EngineError::Aborted {
            operation,
            culprits,
            reason,
        }
    } else if debug.contains("IoError") {
        EngineError::Transport { operation, reason }
    } else {
        EngineError::Internal { operation, reason }
    }
}
