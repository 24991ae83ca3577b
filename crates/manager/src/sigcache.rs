//! The cache of verified state-batch signatures (`signatures.redb` in the manager's data
//! directory).
//!
//! Mantle's batch submitter sends the identical request again after a timeout or a restart.
//! ECDSA signatures are randomised, so signing again would give another valid signature for
//! the same batch: harmless, but it costs a protocol run and makes retries look like new
//! operations. The manager keeps every state-batch signature it verified, keyed by key id and
//! digest, with the public key it verified against, and answers an identical request from
//! here. Entries are bounded (`signature_cache_entries`): the oldest are pruned on insert.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

/// scoped(key id, digest) → [`Cached`] JSON.
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("signatures");
/// Insertion sequence → scoped(key id, digest), for pruning the oldest.
const ORDER: TableDefinition<u64, &[u8]> = TableDefinition::new("signature_order");

/// Why the cache failed (it is an optimisation: callers log this and sign afresh).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The redb file failed.
    #[error("signature cache: {0}")]
    Db(String),
}

fn db<E: std::fmt::Display>(e: E) -> CacheError {
    CacheError::Db(e.to_string())
}

/// One cached signature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cached {
    /// The 65-byte signature, 0x-hex.
    pub signature: String,
    /// The key's public key (SEC1 hex) it was verified against.
    pub public_key: String,
    /// The operation that produced it.
    pub session_id: String,
    /// Insertion sequence.
    pub seq: u64,
}

/// The cache handle.
#[derive(Clone)]
pub struct SignatureCache {
    db: Arc<Database>,
    max_entries: u64,
}

fn record_key(key_id: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + key_id.len() + 32);
    out.extend_from_slice(&(key_id.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(digest);
    out
}

impl SignatureCache {
    /// Opens (or creates) the cache file.
    pub fn open(path: &Path, max_entries: u64) -> Result<Self, CacheError> {
        let file = Database::create(path).map_err(db)?;
        let txn = file.begin_write().map_err(db_err)?;
        txn.open_table(ENTRIES).map_err(db)?;
        txn.open_table(ORDER).map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(SignatureCache {
            db: Arc::new(file),
            max_entries: max_entries.max(1),
        })
    }

    /// The cached signature of `digest` by `key_id`, if any.
    pub fn get(&self, key_id: &str, digest: &[u8; 32]) -> Result<Option<Cached>, CacheError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = txn.open_table(ENTRIES).map_err(db)?;
        match table
            .get(record_key(key_id, digest).as_slice())
            .map_err(db)?
        {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(db),
            None => Ok(None),
        }
    }

    /// Stores a verified signature, pruning the oldest entries beyond the bound.
    pub fn put(
        &self,
        key_id: &str,
        digest: &[u8; 32],
        signature: String,
        public_key: String,
        session_id: String,
    ) -> Result<(), CacheError> {
        let key = record_key(key_id, digest);
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut entries = txn.open_table(ENTRIES).map_err(db)?;
            let mut order = txn.open_table(ORDER).map_err(db)?;
            let seq = order
                .last()
                .map_err(db)?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(0);
            let old = entries
                .get(key.as_slice())
                .map_err(db)?
                .and_then(|v| serde_json::from_slice::<Cached>(v.value()).ok());
            if let Some(old) = old {
                order.remove(old.seq).map_err(db)?;
            }
            let value = serde_json::to_vec(&Cached {
                signature,
                public_key,
                session_id,
                seq,
            })
            .map_err(db)?;
            entries
                .insert(key.as_slice(), value.as_slice())
                .map_err(db)?;
            order.insert(seq, key.as_slice()).map_err(db)?;
            while order.len().map_err(db)? > self.max_entries {
                let Some((_, oldest)) = order.pop_first().map_err(db)? else {
                    break;
                };
                let oldest = oldest.value().to_vec();
                entries.remove(oldest.as_slice()).map_err(db)?;
            }
        }
        txn.commit().map_err(db)?;
        Ok(())
    }

    /// Entries held.
    pub fn len(&self) -> Result<u64, CacheError> {
        let txn = self.db.begin_read().map_err(db)?;
        txn.open_table(ENTRIES).map_err(db)?.len().map_err(db)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> Result<bool, CacheError> {
        self.len().map(|n| n == 0)
    }
}

fn db_err(e: redb::TransactionError) -> CacheError {
    CacheError::Db(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen_and_the_oldest_are_pruned() {
        let dir = std::env::temp_dir().join(format!("cohort-sigcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("signatures.redb");
        {
            let c = SignatureCache::open(&path, 2).unwrap();
            for i in 0..3u8 {
                c.put("state", &[i; 32], format!("s{i}"), "pk".into(), "id".into())
                    .unwrap();
            }
            // The same digest again replaces its entry, it does not grow the cache.
            c.put("state", &[2; 32], "s2b".into(), "pk".into(), "id".into())
                .unwrap();
            assert_eq!(c.len().unwrap(), 2);
        }
        let c = SignatureCache::open(&path, 2).unwrap();
        assert_eq!(c.get("state", &[0; 32]).unwrap(), None);
        assert_eq!(c.get("state", &[1; 32]).unwrap().unwrap().signature, "s1");
        assert_eq!(c.get("state", &[2; 32]).unwrap().unwrap().signature, "s2b");
        assert_eq!(c.get("other", &[1; 32]).unwrap(), None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
