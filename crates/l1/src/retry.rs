//! Retries with exponential backoff and a timeout on every attempt, for RPC calls.
//!
//! Only transport failures, timeouts and rate limits are retried; a JSON-RPC error answer (a
//! revert, an invalid argument) is returned at once, because asking again gives the same answer.

use std::future::IntoFuture;
use std::time::Duration;

use alloy::transports::{RpcError, TransportError};

use crate::error::L1Error;

/// How RPC calls are retried. Every attempt has its own timeout, so no call waits forever.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Timeout of one attempt.
    pub call_timeout: Duration,
    /// Attempts in total (at least 1).
    pub attempts: u32,
    /// The first backoff; doubled after each failure up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The backoff ceiling.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            call_timeout: Duration::from_secs(10),
            attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Whether an RPC failure is worth another attempt (transport trouble or a rate limit).
pub fn is_transient(e: &TransportError) -> bool {
    match e {
        RpcError::Transport(_) | RpcError::NullResp => true,
        RpcError::ErrorResp(p) => p.is_retry_err(),
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails permanently, or the attempts run out.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    method: &'static str,
    mut op: F,
) -> Result<T, L1Error>
where
    F: FnMut() -> Fut,
    Fut: IntoFuture<Output = Result<T, TransportError>>,
{
    let mut backoff = policy.initial_backoff;
    let attempts = policy.attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match tokio::time::timeout(policy.call_timeout, op().into_future()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if !is_transient(&e) => {
                return Err(L1Error::Rpc {
                    method,
                    message: e.to_string(),
                });
            }
            Ok(Err(e)) => L1Error::Rpc {
                method,
                message: e.to_string(),
            },
            Err(_) => L1Error::Timeout { method },
        };
        if attempt >= attempts {
            return Err(err);
        }
        tracing::warn!(method, attempt, error = %err, backoff_ms = backoff.as_millis() as u64, "L1 RPC failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::transports::TransportErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            call_timeout: Duration::from_millis(50),
            attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_answers_are_not_and_hangs_time_out() {
        let n = AtomicU32::new(0);
        let r: Result<(), _> = retry(&policy(), "m", || {
            n.fetch_add(1, Ordering::SeqCst);
            async { Err(TransportErrorKind::backend_gone()) }
        })
        .await;
        assert!(matches!(r, Err(L1Error::Rpc { .. })));
        assert_eq!(n.load(Ordering::SeqCst), 3);

        let n = AtomicU32::new(0);
        let r: Result<(), _> = retry(&policy(), "m", || {
            n.fetch_add(1, Ordering::SeqCst);
            async { Err(RpcError::UnsupportedFeature("eth_frob")) }
        })
        .await;
        assert!(matches!(r, Err(L1Error::Rpc { .. })));
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "a permanent failure is not retried"
        );

        let t0 = std::time::Instant::now();
        let r: Result<(), _> = retry(&policy(), "m", std::future::pending).await;
        assert!(matches!(r, Err(L1Error::Timeout { method: "m" })));
        assert!(t0.elapsed() < Duration::from_secs(2));

        let n = AtomicU32::new(0);
        let r = retry(&policy(), "m", || {
            let k = n.fetch_add(1, Ordering::SeqCst);
            async move {
                if k == 0 {
                    Err(TransportErrorKind::backend_gone())
                } else {
                    Ok(k)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 1);
    }
}
