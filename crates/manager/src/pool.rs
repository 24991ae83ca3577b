//! Presignature pools: per key, a few presignatures ready in the nodes' stores for one signer
//! set, so that a signature costs one network round. This is the data structure only; they are
//! made by [`crate::ops::presign`] and used by [`crate::ops::sign`]. An entry is removed when a
//! signing picks it — before any node is asked to use it — so the manager never asks for the
//! same presignature twice; the nodes' stores enforce the same on their side.
//!
//! The pool lives in memory: after a manager restart the nodes' stored pieces are simply never
//! asked for, and are discarded with the key's next resharing, refresh or deletion.

use std::collections::HashMap;
use std::sync::Mutex;

use cohort_wire::{Address, Bytes32};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::locks::lock;
use crate::metrics::KeyLabel;
use crate::persist::registry::KeyEntry;

/// One presignature ready in the nodes' stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    /// Its id (the session that generated it).
    pub id: Bytes32,
    /// The t signers holding its pieces, in protocol order.
    pub signers: Vec<Address>,
    /// The sharing it belongs to.
    pub key_session_id: Bytes32,
}

/// Presignatures ready per key, mirrored in the `presignatures_ready` gauge.
pub(crate) struct PresigPool {
    pools: Mutex<HashMap<String, Vec<PoolEntry>>>,
    gauge: Family<KeyLabel, Gauge>,
}

impl PresigPool {
    /// An empty pool reporting its depth per key to `gauge`.
    pub(crate) fn new(gauge: Family<KeyLabel, Gauge>) -> Self {
        PresigPool {
            pools: Mutex::new(HashMap::new()),
            gauge,
        }
    }

    fn set_gauge(&self, key_id: &str, n: usize) {
        self.gauge
            .get_or_create(&KeyLabel {
                key_id: key_id.to_string(),
            })
            .set(n as i64);
    }

    /// Presignatures ready for `key_id`.
    pub(crate) fn depth(&self, key_id: &str) -> usize {
        lock(&self.pools).get(key_id).map_or(0, Vec::len)
    }

    /// The entries of `key`'s current sharing.
    pub(crate) fn entries(&self, key: &KeyEntry) -> Vec<PoolEntry> {
        lock(&self.pools)
            .get(key.key_id.as_str())
            .map(|p| {
                p.iter()
                    .filter(|e| e.key_session_id == key.key_session_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes and returns a presignature of `key` whose signers are all in `ready`.
    pub(crate) fn take(&self, key: &KeyEntry, ready: &[Address]) -> Option<PoolEntry> {
        let (entry, n) = {
            let mut pools = lock(&self.pools);
            let pool = pools.get_mut(key.key_id.as_str())?;
            pool.retain(|e| e.key_session_id == key.key_session_id);
            let pos = pool
                .iter()
                .position(|e| e.signers.iter().all(|s| ready.contains(s)))?;
            (pool.remove(pos), pool.len())
        };
        self.set_gauge(&key.key_id, n);
        Some(entry)
    }

    /// Adds a presignature of `key_id`.
    pub(crate) fn push(&self, key_id: &str, entry: PoolEntry) {
        let n = {
            let mut pools = lock(&self.pools);
            let pool = pools.entry(key_id.to_string()).or_default();
            pool.push(entry);
            pool.len()
        };
        self.set_gauge(key_id, n);
    }

    /// Forgets every presignature of a key (resharing, refresh, deletion).
    pub(crate) fn discard(&self, key_id: &str) {
        lock(&self.pools).remove(key_id);
        self.set_gauge(key_id, 0);
    }
}
