//! Bound, two-step deletes.
//!
//! A delete names the key *and* the sharing it targets (`key_session_id`): a node whose current
//! share belongs to another sharing refuses it, so a delete meant for an old sharing cannot
//! destroy a newer one. Step one, [`Store::tombstone_key`], turns the key record into a
//! tombstone and moves the share, still sealed and byte for byte, out of the shares table into
//! this module's table with the time after which it may be erased. From then on the key reads
//! as absent for every use ([`Store::get_key`] is `None`, [`Store::load_share`] is
//! [`StoreError::Tombstoned`], presignatures are gone) and [`Store::list_tombstones`] lists it.
//! Step two, [`Store::erase_expired`] (`erase.rs`), removes tombstones whose retention is over
//! and compacts the file, so the sealed bytes are gone from it and not only unlinked.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::keys::{self, KeyStatus, StoredKey};
use crate::presign;
use crate::rows::RowMac;
use crate::store::{Store, now_ms};
use crate::tables::{SHARES, T_TOMBSTONES, TOMBSTONES, key_prefix, scoped, short_hex};
use crate::validate;

/// Public facts of a tombstoned share: which sharing of which key, and when it is erased.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The deleted key.
    pub key_id: String,
    /// The sharing whose share is kept (the delete's `key_session_id`).
    #[serde(with = "crate::hexser::array")]
    pub key_session_id: [u8; 32],
    /// Threshold of that sharing.
    pub threshold: u16,
    /// Its committee.
    #[serde(with = "crate::hexser::array_vec")]
    pub parties: Vec<[u8; 20]>,
    /// The key's public key, if the key was READY.
    #[serde(default, with = "crate::hexser::opt_bytes")]
    pub public_key: Option<Vec<u8>>,
    /// When the delete was accepted.
    pub deleted_at_ms: u64,
    /// From when the erase sweep removes the share from the file.
    pub erase_after_ms: u64,
}

/// What [`Store::tombstone_key`] did, so the caller can answer the delete precisely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TombstoneOutcome {
    /// The key was live with this sharing and is now tombstoned.
    Tombstoned(Tombstone),
    /// The key was already deleted (a redelivered delete): nothing changed. The tombstone is
    /// there unless it was already erased (or the key was deleted without retention).
    AlreadyDeleted(Option<Tombstone>),
    /// No record of the key on this node.
    NotFound,
    /// The node holds another sharing of the key: refused, nothing changed.
    OtherSharing {
        /// The sharing this node holds.
        held: [u8; 32],
    },
}

/// On-disk form: the facts and the share exactly as it was sealed in the shares table.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredTombstone {
    pub(crate) tombstone: Tombstone,
    #[serde(default, with = "crate::hexser::opt_bytes")]
    pub(crate) sealed: Option<Vec<u8>>,
}

fn label(key_id: &str, session: &[u8; 32]) -> String {
    format!("{key_id}/{}", short_hex(session))
}

pub(crate) fn decode(
    rows: &RowMac,
    record: &[u8],
    bytes: &[u8],
    label: impl Fn() -> String,
) -> Result<StoredTombstone> {
    let value = rows.unwrap(T_TOMBSTONES, record, bytes, &label)?;
    serde_json::from_slice(value).map_err(|_| StoreError::Corrupt {
        table: T_TOMBSTONES,
        record: label(),
    })
}

fn encode(rows: &RowMac, record: &[u8], stored: &StoredTombstone) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(stored)
        .map_err(|e| StoreError::InvalidInput(format!("tombstone: {e}")))?;
    rows.wrap(T_TOMBSTONES, record, &json)
}

impl Store {
    /// Step one of a bound delete: tombstones `key_id` if its current sharing is
    /// `key_session_id`, keeping the sealed share for `retention_ms` (see the module doc).
    /// In one transaction: the key record becomes a tombstone, the share moves to the
    /// tombstones table, every presignature is discarded (marked used).
    pub fn tombstone_key(
        &self,
        key_id: &str,
        key_session_id: [u8; 32],
        retention_ms: u64,
    ) -> Result<TombstoneOutcome, StoreError> {
        validate::key_id(key_id)?;
        let record = scoped(key_id, &key_session_id);
        self.write(|txn| {
            let rows = self.rows();
            let Some(stored) = keys::stored_in(rows, txn, key_id)? else {
                return Ok((TombstoneOutcome::NotFound, false));
            };
            if stored.deleted_at_ms.is_some() {
                let table = txn.open_table(TOMBSTONES)?;
                let existing = match table.get(record.as_slice())? {
                    Some(g) => Some(
                        decode(rows, &record, g.value(), || label(key_id, &key_session_id))?
                            .tombstone,
                    ),
                    None => None,
                };
                return Ok((TombstoneOutcome::AlreadyDeleted(existing), false));
            }
            let held = stored.record.key_session_id;
            if held != key_session_id {
                return Ok((TombstoneOutcome::OtherSharing { held }, false));
            }
            let now = now_ms();
            let sealed = if stored.record.status == KeyStatus::Ready {
                txn.open_table(SHARES)?
                    .remove(key_id)?
                    .map(|g| g.value().to_vec())
            } else {
                None
            };
            let tombstone = Tombstone {
                key_id: key_id.to_owned(),
                key_session_id,
                threshold: stored.record.threshold,
                parties: stored.record.parties.clone(),
                public_key: stored.record.public_key.clone(),
                deleted_at_ms: now,
                erase_after_ms: now.saturating_add(retention_ms),
            };
            let row = encode(
                rows,
                &record,
                &StoredTombstone {
                    tombstone: tombstone.clone(),
                    sealed,
                },
            )?;
            txn.open_table(TOMBSTONES)?
                .insert(record.as_slice(), row.as_slice())?;
            keys::store_record(
                txn,
                rows,
                &StoredKey {
                    record: stored.record,
                    deleted_at_ms: Some(now),
                },
            )?;
            presign::discard_in(rows, txn, key_id)?;
            Ok((TombstoneOutcome::Tombstoned(tombstone), true))
        })
    }

    /// Every tombstone still kept (not yet erased), ordered by key id: for status.
    pub fn list_tombstones(&self) -> Result<Vec<Tombstone>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(TOMBSTONES)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                let stored = decode(self.rows(), k.value(), v.value(), || short_hex(k.value()))?;
                out.push(stored.tombstone);
            }
            Ok(out)
        })
    }

    /// The tombstones kept for `key_id` (one per deleted sharing still in retention).
    pub fn tombstones_of(&self, key_id: &str) -> Result<Vec<Tombstone>, StoreError> {
        validate::key_id(key_id)?;
        let prefix = key_prefix(key_id);
        self.read(|txn| {
            let table = txn.open_table(TOMBSTONES)?;
            let mut out = Vec::new();
            for entry in table.range(prefix.as_slice()..)? {
                let (k, v) = entry?;
                if !k.value().starts_with(&prefix) {
                    break;
                }
                let stored = decode(self.rows(), k.value(), v.value(), || short_hex(k.value()))?;
                out.push(stored.tombstone);
            }
            Ok(out)
        })
    }
}
