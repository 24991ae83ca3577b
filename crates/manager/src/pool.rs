//! Presignature pools: per key, a few presignatures ready in the nodes' stores for one signer
//! set, so that a signature costs one network round. This is the data structure only; they are
//! made by [`crate::ops::presign`] and used by [`crate::ops::sign`]. An entry is removed when a
//! signing picks it — before any node is asked to use it — so the manager never asks for the
//! same presignature twice; the nodes' stores enforce the same on their side.
//!
//! Presignatures serve only digests the nodes compute themselves: cggmp21's advisory
//! RUSTSEC-2025-0127 (CVE-2025-66017, no fix in 0.6) lets whoever knows a presignature's R and
//! chooses the digest forge a signature on another message. So pools are filled only for the
//! state key ([`presign_key`]) and [`PresigPool::take`] serves only a state batch, whose digest
//! every node recomputes from roots it checked; a caller-chosen digest is always signed with
//! the full protocol. The nodes refuse the same on their side (`presignature_refused`), so a
//! hostile manager gains nothing by ignoring this rule.
//!
//! The pool lives in memory: after a manager restart the nodes' stored pieces are simply never
//! asked for, and are discarded with the key's next resharing, refresh or deletion.

use std::collections::HashMap;
use std::sync::Mutex;

use cohort_wire::{Address, Bytes32, SignContext};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::locks::lock;
use crate::metrics::KeyLabel;
use crate::persist::registry::KeyEntry;

/// Whether `key_id` may have pooled presignatures: only the state key, whose every signature is
/// of a state batch the nodes hash themselves (its plain digests are refused by the nodes).
pub(crate) fn presign_key(config: &crate::config::ManagerConfig, key_id: &str) -> bool {
    key_id == config.state_key_id
}

/// Whether a signing of `context` may use a presignature: only a state batch, whose digest each
/// node computes from the roots it checks — never a caller-chosen digest, nor a rollback.
pub(crate) fn serves(context: &SignContext) -> bool {
    matches!(context, SignContext::StateBatch { .. })
}

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

    /// Removes and returns a presignature of `key` whose signers are all in `ready`, for a
    /// signing of `context`; `None` for anything but a state batch ([`serves`]).
    pub(crate) fn take(
        &self,
        key: &KeyEntry,
        ready: &[Address],
        context: &SignContext,
    ) -> Option<PoolEntry> {
        if !serves(context) {
            return None;
        }
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

    /// Forgets every presignature that `signer` holds a piece of, in every key: a node
    /// discards its unused pieces when it starts (single use across a store restore), so after
    /// a (re)connection the manager no longer counts on them.
    pub(crate) fn forget_signer(&self, signer: &Address) {
        let depths: Vec<(String, usize)> = {
            let mut pools = lock(&self.pools);
            pools
                .iter_mut()
                .filter_map(|(k, pool)| {
                    let before = pool.len();
                    pool.retain(|e| !e.signers.contains(signer));
                    if pool.len() == before {
                        None
                    } else {
                        Some((k.clone(), pool.len()))
                    }
                })
                .collect()
        };
        for (key_id, n) in depths {
            self.set_gauge(&key_id, n);
        }
    }

    /// Forgets every presignature of a key (resharing, refresh, deletion).
    pub(crate) fn discard(&self, key_id: &str) {
        lock(&self.pools).remove(key_id);
        self.set_gauge(key_id, 0);
    }
}
