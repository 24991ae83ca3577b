//! A runtime of its own for the protocols' number crunching (Paillier encryption, range and
//! modulus proofs): a round can compute for hundreds of milliseconds between two awaits, and on
//! the I/O runtime that would hold up the manager link, libp2p and every other session's
//! message routing. With the protocols here, the I/O threads stay responsive however many
//! sessions run; the OS shares the cores between both.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use cohort_engine::EngineError;
use cohort_wire::{ErrorBody, ErrorCode};

use crate::handlers::{engine_err, err};

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

/// Runs `protocol` on the compute runtime, within `timeout`; `what` names it in errors.
pub(crate) async fn run<T: Send + 'static>(
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
        .map_err(|e| engine_err(&e))
}
