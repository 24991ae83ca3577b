//! What the node tells its managers about itself (aux info, READY keys, primes in stock), and
//! the background supply of safe primes that keeps the next aux-info generation from waiting
//! on a prime search.

use std::sync::Arc;
use std::time::Duration;

use cohort_store::KeyStatus;
use cohort_wire::{Address, KeyId, NodeMsg};

use crate::Inner;

/// The node's current status for the manager.
pub(crate) fn status(inner: &Inner) -> NodeMsg {
    let aux_members = match inner.aux.lock() {
        Ok(a) => a
            .as_ref()
            .map(|a| a.members().iter().map(|p| Address(p.0)).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let keys = inner
        .store
        .list_keys()
        .map(|ks| ks.iter().filter(|k| k.status == KeyStatus::Ready).count() as u64)
        .unwrap_or(0);
    let primes_ready = inner.store.primes_count().unwrap_or(0);
    let tombstoned = inner
        .store
        .list_tombstones()
        .map(|ts| {
            ts.into_iter()
                .filter_map(|t| KeyId::new(t.key_id).ok())
                .collect()
        })
        .unwrap_or_default();
    NodeMsg::Status {
        aux_members,
        keys,
        primes_ready,
        tombstoned,
    }
}

/// Keeps safe primes in the store for the next aux-info generation (unless the insecure
/// fixture is in use).
pub(crate) fn start_prime_supply(inner: Arc<Inner>) {
    if inner.config.insecure_test_primes {
        tracing::warn!(
            "using the repository's PUBLIC test primes: INSECURE, tests and devnet only"
        );
        return;
    }
    let have_aux = inner.aux.lock().map(|a| a.is_some()).unwrap_or(false);
    let stored = inner.store.primes_count().unwrap_or(0);
    if have_aux || stored > 0 {
        return;
    }
    let threads = inner.config.prime_threads.max(1);
    tokio::task::spawn_blocking(move || {
        let pool = cohort_engine::PrimePool::start(
            threads,
            1,
            |e| tracing::info!(event = ?e, "safe-prime search"),
        );
        loop {
            if let Some(p) = pool.take_timeout(Duration::from_secs(60)) {
                match p.to_bytes() {
                    Ok(bytes) => match inner.store.push_primes(&bytes) {
                        Ok(_) => {
                            tracing::info!("safe primes stored; aux info can be generated");
                            return;
                        }
                        Err(e) => tracing::error!(error = %e, "could not store primes"),
                    },
                    Err(e) => tracing::error!(error = %e, "could not encode primes"),
                }
            }
        }
    });
}
