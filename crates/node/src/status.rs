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
        l1: None,
    }
}

/// Safe-prime pairs the node keeps in its store: every resharing or refresh it joins takes
/// one (fresh aux info per sharing), and a failed aux run can be re-run at once.
const PRIME_STOCK: u64 = 2;

/// Keeps [`PRIME_STOCK`] safe-prime pairs in the store at all times, refilling in the
/// background as aux-info generations take them (unless the insecure fixture is in use).
pub(crate) fn start_prime_supply(inner: Arc<Inner>) {
    if inner.config.insecure_test_primes {
        tracing::warn!(
            "using the repository's PUBLIC test primes: INSECURE, tests and devnet only"
        );
        return;
    }
    let threads = inner.config.prime_threads.max(1);
    tokio::task::spawn_blocking(move || {
        let mut pool: Option<cohort_engine::PrimePool> = None;
        loop {
            if inner.store.primes_count().unwrap_or(0) >= PRIME_STOCK {
                // Stocked: stop searching (the workers end after their current search).
                pool = None;
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
            let p = pool.get_or_insert_with(|| {
                cohort_engine::PrimePool::start(
                    threads,
                    1,
                    |e| tracing::info!(event = ?e, "safe-prime search"),
                )
            });
            if let Some(p) = p.take_timeout(Duration::from_secs(60)) {
                match p.to_bytes() {
                    Ok(bytes) => match inner.store.push_primes(&bytes) {
                        Ok(n) => tracing::info!(stored = n, "safe primes stored"),
                        Err(e) => tracing::error!(error = %e, "could not store primes"),
                    },
                    Err(e) => tracing::error!(error = %e, "could not encode primes"),
                }
            }
        }
    });
}
