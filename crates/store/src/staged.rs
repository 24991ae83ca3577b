//! Shares staged by a resharing: the new share a node receives in a resharing (or refresh) is
//! kept here, sealed, until the manager's commit makes it the key's share — or an abort
//! discards it. A record of its own (not a key record under a reserved id) so that a staged
//! share can never be listed, loaded or signed with as a key, and keygen's PENDING recovery at
//! open never touches it: a commit redelivered after a restart still finds it.
//!
//! Records are scoped by (key id, resharing session); the sealing associated data binds the
//! share to that pair, so a blob moved to another record fails to open; the record itself is an
//! authenticated row (`rows.rs`), so its public facts cannot be edited either.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::rows::RowMac;
use crate::store::{Store, now_ms};
use crate::tables::{STAGED, T_STAGED, scoped, short_hex};
use crate::validate;

/// Public facts of a staged share: what the resharing dealt it for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedShare {
    /// The key the share belongs to.
    pub key_id: String,
    /// The resharing session that produced it (the key's session id once committed).
    #[serde(with = "crate::hexser::array")]
    pub session: [u8; 32],
    /// Threshold of the new committee.
    pub threshold: u16,
    /// The new committee, in share order.
    #[serde(with = "crate::hexser::array_vec")]
    pub parties: Vec<[u8; 20]>,
    /// The key's public key (unchanged by resharing).
    #[serde(with = "crate::hexser::bytes")]
    pub public_key: Vec<u8>,
    /// When it was staged.
    pub staged_at_ms: u64,
}

/// A staged share opened for the commit: its public facts and the decrypted share.
pub type OpenedStaged = (StagedShare, Zeroizing<Vec<u8>>);

/// On-disk form: the public facts and the sealed share.
#[derive(Serialize, Deserialize)]
struct StoredStaged {
    share: StagedShare,
    #[serde(with = "crate::hexser::bytes")]
    sealed: Vec<u8>,
}

fn label(key_id: &str, session: &[u8; 32]) -> String {
    format!("{key_id}/{}", short_hex(session))
}

fn decode(
    rows: &RowMac,
    record: &[u8],
    bytes: &[u8],
    label: impl Fn() -> String,
) -> Result<StoredStaged> {
    let value = rows.unwrap(T_STAGED, record, bytes, &label)?;
    serde_json::from_slice(value).map_err(|_| StoreError::Corrupt {
        table: T_STAGED,
        record: label(),
    })
}

impl Store {
    /// Stages `share`, dealt to this node by resharing `session` of `key_id` for the committee
    /// (`threshold`, `parties`). Refused with [`StoreError::Conflict`] if that session already
    /// staged a share for the key (a session deals once).
    pub fn put_staged(&self, staged: &StagedShare, share: &[u8]) -> Result<(), StoreError> {
        validate::key_id(&staged.key_id)?;
        validate::committee(staged.threshold, &staged.parties)?;
        let record = scoped(&staged.key_id, &staged.session);
        let sealed = self.sealer().seal(T_STAGED, &record, share)?;
        let value = serde_json::to_vec(&StoredStaged {
            share: StagedShare {
                staged_at_ms: now_ms(),
                ..staged.clone()
            },
            sealed,
        })
        .map_err(|e| StoreError::InvalidInput(format!("staged share: {e}")))?;
        let value = self.rows().wrap(T_STAGED, &record, &value)?;
        self.write(|txn| {
            let mut table = txn.open_table(STAGED)?;
            if table.get(record.as_slice())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a share is already staged for {}",
                    label(&staged.key_id, &staged.session)
                )));
            }
            table.insert(record.as_slice(), value.as_slice())?;
            Ok(((), true))
        })
    }

    /// The public facts of the share staged by `session` for `key_id`, if any.
    pub fn get_staged(
        &self,
        key_id: &str,
        session: [u8; 32],
    ) -> Result<Option<StagedShare>, StoreError> {
        validate::key_id(key_id)?;
        let record = scoped(key_id, &session);
        self.read(|txn| {
            let table = txn.open_table(STAGED)?;
            match table.get(record.as_slice())? {
                Some(g) => Ok(Some(
                    decode(self.rows(), &record, g.value(), || label(key_id, &session))?.share,
                )),
                None => Ok(None),
            }
        })
    }

    /// The staged share itself, decrypted, with its public facts; the record stays until
    /// [`Store::discard_staged`] (so a crash before the commit's swap loses nothing).
    pub fn load_staged(
        &self,
        key_id: &str,
        session: [u8; 32],
    ) -> Result<Option<OpenedStaged>, StoreError> {
        validate::key_id(key_id)?;
        let record = scoped(key_id, &session);
        self.read(|txn| {
            let table = txn.open_table(STAGED)?;
            let Some(g) = table.get(record.as_slice())? else {
                return Ok(None);
            };
            let stored = decode(self.rows(), &record, g.value(), || label(key_id, &session))?;
            let share = self.sealer().open(
                T_STAGED,
                &record,
                || label(key_id, &session),
                &stored.sealed,
            )?;
            Ok(Some((stored.share, share)))
        })
    }

    /// Removes the share staged by `session` for `key_id` (after a commit or on an abort);
    /// `false` if there was none (idempotent).
    pub fn discard_staged(&self, key_id: &str, session: [u8; 32]) -> Result<bool, StoreError> {
        validate::key_id(key_id)?;
        let record = scoped(key_id, &session);
        self.write(|txn| {
            let existed = txn.open_table(STAGED)?.remove(record.as_slice())?.is_some();
            Ok((existed, existed))
        })
    }

    /// Every staged share (public facts only): for status and tests.
    pub fn list_staged(&self) -> Result<Vec<StagedShare>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(STAGED)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                let stored = decode(self.rows(), k.value(), v.value(), || {
                    format!("(listing) {}", short_hex(k.value()))
                })?;
                out.push(stored.share);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KdfParams, StoreOptions};

    #[test]
    fn a_staged_blob_moved_to_another_record_fails_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            kdf: KdfParams {
                m_cost_kib: 1024,
                t_cost: 1,
                p_cost: 1,
            },
        };
        let store = Store::open(dir.path().join("s.redb"), b"pass", options).unwrap();
        let staged = StagedShare {
            key_id: "r".into(),
            session: [1; 32],
            threshold: 2,
            parties: vec![[1; 20], [2; 20]],
            public_key: vec![4; 65],
            staged_at_ms: 0,
        };
        store.put_staged(&staged, b"share").unwrap();
        // Copy the record as it is on disk under another session's key.
        let from = scoped("r", &[1; 32]);
        let to = scoped("r", &[2; 32]);
        store
            .write(|txn| {
                let mut table = txn.open_table(STAGED)?;
                let value = table.get(from.as_slice())?.map(|g| g.value().to_vec());
                if let Some(v) = value {
                    table.insert(to.as_slice(), v.as_slice())?;
                }
                Ok(((), true))
            })
            .unwrap();
        // The record's MAC binds it to its key: the moved row is refused before its share is
        // even tried.
        for e in [
            store.get_staged("r", [2; 32]).unwrap_err(),
            store.load_staged("r", [2; 32]).unwrap_err(),
        ] {
            assert!(
                matches!(
                    e,
                    StoreError::Unauthentic {
                        table: T_STAGED,
                        ..
                    }
                ),
                "{e}"
            );
        }
        assert!(store.load_staged("r", [1; 32]).unwrap().is_some());
    }
}
