//! The one path by which every operation runs a protocol ([`start`]): session binding, p2p
//! delivery, the compute runtime, the timeout and the error mapping, written once.
//!
//! The protocols run on a runtime of their own for their number crunching (Paillier
//! encryption, range and modulus proofs): a round can compute for hundreds of milliseconds
//! between two awaits, and on the I/O runtime that would hold up the manager link, libp2p and
//! every other session's message routing. With the protocols here, the I/O threads stay
//! responsive however many sessions run; the OS shares the cores between both.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use cohort_engine::EngineError;
use cohort_engine::session::{Operation, PartyId, SessionBinding};
use cohort_wire::{Address, Bytes32, ErrorBody, ErrorCode};
use tracing::Instrument;

use crate::Inner;
use crate::bridge::{self, Inbound, Outbound};
use crate::errors::{self, err, pid};

static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();

fn handle() -> Option<tokio::runtime::Handle> {
    RUNTIME
        .get_or_init(|| {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("cohort-compute")
                .enable_time()
                .build()
                .map_err(|e| {
                    tracing::error!(error = %e, "no compute runtime; protocols share the I/O runtime");
                })
                .ok()
        })
        .as_ref()
        .map(|r| r.handle().clone())
}

/// One protocol run of a started session: what the binding hashes and how long it may take.
pub(crate) struct Run<'a> {
    /// The session (also the p2p session tag).
    pub session_id: Bytes32,
    /// The engine operation the binding names.
    pub operation: Operation,
    /// The key ("" for aux info).
    pub key_id: &'a str,
    /// Every party of the run, in protocol order (binding order and delivery list).
    pub parties: Vec<Address>,
    /// The operation's parameters, as the engine encodes them for the binding.
    pub params: Vec<u8>,
    /// Deadline of the whole run.
    pub timeout: Duration,
    /// Names the run in logs and errors ("keygen", "signing", …).
    pub what: &'static str,
}

/// Binds the session, opens its p2p delivery and runs `protocol(binding, me, incoming,
/// outgoing)` on the compute runtime within `run.timeout`, in the caller's tracing span; every
/// failure comes back as the wire's error.
pub(crate) async fn start<T, Fut>(
    inner: &Inner,
    run: Run<'_>,
    protocol: impl FnOnce(SessionBinding, PartyId, Inbound, Outbound) -> Fut,
) -> Result<T, ErrorBody>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, EngineError>> + Send + 'static,
{
    let ids: Vec<PartyId> = run.parties.iter().map(pid).collect();
    let binding = SessionBinding::new(
        run.session_id.0,
        run.operation,
        run.key_id,
        ids,
        &run.params,
    )
    .map_err(errors::engine)?;
    let me = inner.identity.address();
    let (incoming, outgoing) =
        bridge::delivery(inner.p2p.clone(), run.session_id.0, run.parties, me);
    tracing::info!(what = run.what, "protocol started");
    let protocol = protocol(binding, pid(&me), incoming, outgoing);
    let out = on_runtime(run.timeout, run.what, protocol.in_current_span()).await;
    match &out {
        Ok(_) => tracing::info!(what = run.what, "protocol finished"),
        Err(e) => {
            tracing::warn!(what = run.what, code = %e.code.as_str(), error = %e.message, "protocol failed")
        }
    }
    out
}

/// Runs `protocol` on the compute runtime, within `timeout`; `what` names it in errors.
async fn on_runtime<T: Send + 'static>(
    timeout: Duration,
    what: &'static str,
    protocol: impl Future<Output = Result<T, EngineError>> + Send + 'static,
) -> Result<T, ErrorBody> {
    let timed = async move { tokio::time::timeout(timeout, protocol).await };
    let out = match handle() {
        Some(h) => h
            .spawn(timed)
            .await
            .map_err(|e| err(ErrorCode::Internal, format!("{what} task failed: {e}")))?,
        None => timed.await,
    };
    out.map_err(|_| err(ErrorCode::Timeout, format!("{what} timed out")))?
        .map_err(errors::engine)
}
