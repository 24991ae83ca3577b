//! The manager's registry of keys (public facts only: the manager holds no shares), on redb.
//! Deleted keys stay as tombstones so that nodes that were offline at deletion time are told
//! again when they reconnect.

use std::path::Path;

use cohort_wire::{Address, Bytes32, HexBytes};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");

/// What the manager knows of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Key id.
    pub key_id: cohort_wire::KeyId,
    /// Session of the current sharing.
    pub key_session_id: Bytes32,
    /// Signers needed.
    pub threshold: u16,
    /// Holders in share order.
    pub parties: Vec<Address>,
    /// Uncompressed SEC1 public key.
    pub public_key: HexBytes,
    /// Whether the key was deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Creation time (unix ms).
    pub created_at_ms: u64,
    /// Nodes that have not yet confirmed the last resharing's commit; it is resent when they
    /// reconnect.
    #[serde(default)]
    pub pending_commit: Vec<Address>,
    /// The new parties' signed acknowledgements of the last resharing, resent with its commit
    /// (old holders that leave delete only once they verify).
    #[serde(default)]
    pub acks: Vec<cohort_wire::ReshareAck>,
}

/// Registry errors.
#[derive(Debug, thiserror::Error)]
#[error("registry: {0}")]
pub struct RegistryError(String);

fn e(x: impl std::fmt::Display) -> RegistryError {
    RegistryError(x.to_string())
}

/// The keys table.
pub struct Registry {
    db: Database,
}

impl Registry {
    /// Opens or creates the registry file.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let db = Database::create(path).map_err(e)?;
        let txn = db.begin_write().map_err(e)?;
        txn.open_table(KEYS).map_err(e)?;
        txn.commit().map_err(e)?;
        Ok(Registry { db })
    }

    /// Inserts or replaces a key entry.
    pub fn put(&self, entry: &KeyEntry) -> Result<(), RegistryError> {
        let bytes = serde_json::to_vec(entry).map_err(e)?;
        let txn = self.db.begin_write().map_err(e)?;
        txn.open_table(KEYS)
            .map_err(e)?
            .insert(entry.key_id.as_str(), bytes.as_slice())
            .map_err(e)?;
        txn.commit().map_err(e)
    }

    /// Changes one entry in a single write transaction (redb runs one at a time), so that
    /// concurrent read-modify-writes — confirmations arriving on several links at once —
    /// cannot lose each other's change. `change` returns whether it changed anything; returns
    /// whether the entry existed.
    pub fn update(
        &self,
        key_id: &str,
        change: impl FnOnce(&mut KeyEntry) -> bool,
    ) -> Result<bool, RegistryError> {
        let txn = self.db.begin_write().map_err(e)?;
        let existed = {
            let mut table = txn.open_table(KEYS).map_err(e)?;
            let current: Option<KeyEntry> = match table.get(key_id).map_err(e)? {
                Some(v) => Some(serde_json::from_slice(v.value()).map_err(e)?),
                None => None,
            };
            match current {
                Some(mut entry) => {
                    if change(&mut entry) {
                        let bytes = serde_json::to_vec(&entry).map_err(e)?;
                        table.insert(key_id, bytes.as_slice()).map_err(e)?;
                    }
                    true
                }
                None => false,
            }
        };
        txn.commit().map_err(e)?;
        Ok(existed)
    }

    /// A key entry (including tombstones).
    pub fn get(&self, key_id: &str) -> Result<Option<KeyEntry>, RegistryError> {
        let txn = self.db.begin_read().map_err(e)?;
        let table = txn.open_table(KEYS).map_err(e)?;
        match table.get(key_id).map_err(e)? {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(e),
            None => Ok(None),
        }
    }

    /// Every entry (including tombstones), by key id.
    pub fn list(&self) -> Result<Vec<KeyEntry>, RegistryError> {
        let txn = self.db.begin_read().map_err(e)?;
        let table = txn.open_table(KEYS).map_err(e)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(e)? {
            let (_, v) = item.map_err(e)?;
            out.push(serde_json::from_slice(v.value()).map_err(e)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = crate::tests::TempDir::new();
        let reg = std::sync::Arc::new(Registry::open(&dir.path().join("keys.redb")).unwrap());
        let parties: Vec<Address> = (0..8u8).map(|i| Address([i; 20])).collect();
        reg.put(&KeyEntry {
            key_id: cohort_wire::KeyId::new("k").unwrap(),
            key_session_id: Bytes32([1; 32]),
            threshold: 2,
            parties: parties.clone(),
            public_key: HexBytes(vec![4; 65]),
            deleted: false,
            created_at_ms: 0,
            pending_commit: parties.clone(),
            acks: Vec::new(),
        })
        .unwrap();
        let threads: Vec<_> = parties
            .iter()
            .map(|p| {
                let (reg, p) = (reg.clone(), *p);
                std::thread::spawn(move || {
                    reg.update("k", |k| {
                        k.pending_commit.retain(|a| *a != p);
                        true
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
        assert!(reg.get("k").unwrap().unwrap().pending_commit.is_empty());
        assert!(!reg.update("nope", |_| true).unwrap());
    }
}
