//! Key records and their sealed shares: the keygen state machine (PENDING → READY | ERROR),
//! immediate deletion (a resharing's leaver), and the resharing swap. Every transition is one
//! compare-and-set write transaction. Bound deletes with retention are in `tombstones.rs`.
//!
//! Key records are authenticated rows (`rows.rs`). A share is sealed with associated data
//! `key id ‖ sharing session id` of the record that holds it, so a share of an older sharing
//! copied back into place fails to open ([`StoreError::Corrupt`]) instead of signing.

use crate::error::{Result, StoreError};
use crate::presign;
use crate::rows::RowMac;
use crate::store::{Store, now_ms};
use crate::tables::{KEYS, SHARES, T_KEYS, T_SHARES, scoped, short_hex};
use crate::validate;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Reason written into records whose keygen was cut short by a restart.
pub const INTERRUPTED_KEYGEN_REASON: &str = "interrupted: the node restarted during keygen";

/// Lifecycle of a key on this node; only READY keys have a share and may sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyStatus {
    /// A keygen (or reshare-in) is running; blocks concurrent keygens for the same key id.
    Pending,
    /// The share is stored and usable.
    Ready,
    /// The last keygen failed; the key id may be generated again.
    Error,
}

/// Public metadata of a key on this node (stored unsealed; the share is kept separately and
/// sealed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Caller-chosen key name, unique per cohort.
    pub key_id: String,
    /// Session that produced (or is producing) the current share; the CAS token of updates.
    #[serde(with = "crate::hexser::array")]
    pub key_session_id: [u8; 32],
    /// Current lifecycle state.
    pub status: KeyStatus,
    /// Signers needed to sign.
    pub threshold: u16,
    /// Committee addresses in keygen order.
    #[serde(with = "crate::hexser::array_vec")]
    pub parties: Vec<[u8; 20]>,
    /// Shared public key once READY (encoding chosen by the engine).
    #[serde(default, with = "crate::hexser::opt_bytes")]
    pub public_key: Option<Vec<u8>>,
    /// Why the record is in ERROR.
    pub error: Option<String>,
    /// When the record (this keygen) was created.
    pub created_at_ms: u64,
    /// Last transition.
    pub updated_at_ms: u64,
}

/// Outcome of [`Store::begin_keygen`], so the caller can answer Prepare without a second read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BeginKeygen {
    /// A PENDING record was written; run the protocol.
    Started(KeyRecord),
    /// The key already exists: return it, no new keygen.
    AlreadyReady(KeyRecord),
    /// Another keygen for this key id is running: refuse as concurrent.
    AlreadyPending(KeyRecord),
}

/// On-disk form of a key record: the record plus its tombstone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub(crate) record: KeyRecord,
    #[serde(default)]
    pub(crate) deleted_at_ms: Option<u64>,
}

impl StoredKey {
    fn live(self) -> Option<KeyRecord> {
        match self.deleted_at_ms {
            None => Some(self.record),
            Some(_) => None,
        }
    }
}

/// The associated data record of the share of `key_id` in sharing `session`.
pub(crate) fn share_record(key_id: &str, session: &[u8; 32]) -> Vec<u8> {
    scoped(key_id, session)
}

/// Checks the row's MAC and decodes it; an edited or moved row is [`StoreError::Unauthentic`].
pub(crate) fn decode(rows: &RowMac, key_id: &str, bytes: &[u8]) -> Result<StoredKey> {
    let value = rows.unwrap(T_KEYS, key_id.as_bytes(), bytes, || key_id.to_owned())?;
    serde_json::from_slice(value).map_err(|_| StoreError::Corrupt {
        table: T_KEYS,
        record: key_id.to_owned(),
    })
}

fn encode(rows: &RowMac, stored: &StoredKey) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(stored)
        .map_err(|e| StoreError::InvalidInput(format!("key record not serializable: {e}")))?;
    rows.wrap(T_KEYS, stored.record.key_id.as_bytes(), &json)
}

pub(crate) fn load<T>(rows: &RowMac, table: &T, key_id: &str) -> Result<Option<StoredKey>>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    match table.get(key_id)? {
        Some(guard) => decode(rows, key_id, guard.value()).map(Some),
        None => Ok(None),
    }
}

/// The live record of `key_id` inside a write transaction (tombstones read as absent).
pub(crate) fn live_in(
    rows: &RowMac,
    txn: &WriteTransaction,
    key_id: &str,
) -> Result<Option<KeyRecord>> {
    let table = txn.open_table(KEYS)?;
    Ok(load(rows, &table, key_id)?.and_then(StoredKey::live))
}

/// The stored record of `key_id` (live or tombstone) inside a write transaction.
pub(crate) fn stored_in(
    rows: &RowMac,
    txn: &WriteTransaction,
    key_id: &str,
) -> Result<Option<StoredKey>> {
    let table = txn.open_table(KEYS)?;
    load(rows, &table, key_id)
}

pub(crate) fn store_record(
    txn: &WriteTransaction,
    rows: &RowMac,
    stored: &StoredKey,
) -> Result<()> {
    let bytes = encode(rows, stored)?;
    txn.open_table(KEYS)?
        .insert(stored.record.key_id.as_str(), bytes.as_slice())?;
    Ok(())
}

/// Turns every live PENDING record into ERROR; run once at open.
pub(crate) fn recover_pending(txn: &WriteTransaction, rows: &RowMac) -> Result<Vec<String>> {
    let mut pending = Vec::new();
    {
        let table = txn.open_table(KEYS)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let key_id = k.value().to_owned();
            let stored = decode(rows, &key_id, v.value())?;
            if stored.deleted_at_ms.is_none() && stored.record.status == KeyStatus::Pending {
                pending.push(stored);
            }
        }
    }
    let now = now_ms();
    let mut ids = Vec::with_capacity(pending.len());
    for mut stored in pending {
        stored.record.status = KeyStatus::Error;
        stored.record.error = Some(INTERRUPTED_KEYGEN_REASON.to_owned());
        stored.record.updated_at_ms = now;
        store_record(txn, rows, &stored)?;
        ids.push(stored.record.key_id);
    }
    Ok(ids)
}

fn describe(record: Option<&KeyRecord>) -> String {
    match record {
        None => "no record".to_owned(),
        Some(r) => format!(
            "record is {:?} with session {}",
            r.status,
            short_hex(&r.key_session_id)
        ),
    }
}

/// Requires a live PENDING record with `session`; shared by finish and fail.
fn pending_with_session(
    rows: &RowMac,
    txn: &WriteTransaction,
    op: &str,
    key_id: &str,
    session: &[u8; 32],
) -> Result<KeyRecord> {
    match live_in(rows, txn, key_id)? {
        Some(r) if r.status == KeyStatus::Pending && &r.key_session_id == session => Ok(r),
        other => Err(StoreError::Conflict(format!(
            "{op} for key {key_id:?} with session {} refused: {}",
            short_hex(session),
            describe(other.as_ref())
        ))),
    }
}

impl Store {
    /// Phase 1 of keygen: claims `key_id` for `session` unless it is READY or already PENDING.
    ///
    /// No record, an ERROR record or a tombstone → PENDING is written and `Started` returned;
    /// READY / PENDING are reported without writing, so racing callers see exactly one start.
    pub fn begin_keygen(
        &self,
        key_id: &str,
        session: [u8; 32],
        threshold: u16,
        parties: Vec<[u8; 20]>,
    ) -> Result<BeginKeygen, StoreError> {
        validate::key_id(key_id)?;
        validate::committee(threshold, &parties)?;
        self.write(|txn| {
            match live_in(self.rows(), txn, key_id)? {
                Some(r) if r.status == KeyStatus::Ready => {
                    return Ok((BeginKeygen::AlreadyReady(r), false));
                }
                Some(r) if r.status == KeyStatus::Pending => {
                    return Ok((BeginKeygen::AlreadyPending(r), false));
                }
                _ => {}
            }
            let now = now_ms();
            let record = KeyRecord {
                key_id: key_id.to_owned(),
                key_session_id: session,
                status: KeyStatus::Pending,
                threshold,
                parties,
                public_key: None,
                error: None,
                created_at_ms: now,
                updated_at_ms: now,
            };
            store_record(
                txn,
                self.rows(),
                &StoredKey {
                    record: record.clone(),
                    deleted_at_ms: None,
                },
            )?;
            // Defensive: a non-READY key never has a share; make sure none lingers.
            txn.open_table(SHARES)?.remove(key_id)?;
            Ok((BeginKeygen::Started(record), true))
        })
    }

    /// Phase 2 of keygen: PENDING(`session`) → READY, storing the public key and sealing the
    /// share in the same transaction. Any other state is a [`StoreError::Conflict`].
    pub fn finish_keygen(
        &self,
        key_id: &str,
        session: [u8; 32],
        public_key: &[u8],
        share: &[u8],
    ) -> Result<KeyRecord, StoreError> {
        validate::key_id(key_id)?;
        validate::value("public key", public_key)?;
        let sealed = self
            .sealer()
            .seal(T_SHARES, &share_record(key_id, &session), share)?;
        self.write(|txn| {
            let mut record =
                pending_with_session(self.rows(), txn, "finish_keygen", key_id, &session)?;
            record.status = KeyStatus::Ready;
            record.public_key = Some(public_key.to_vec());
            record.error = None;
            record.updated_at_ms = now_ms();
            store_record(
                txn,
                self.rows(),
                &StoredKey {
                    record: record.clone(),
                    deleted_at_ms: None,
                },
            )?;
            txn.open_table(SHARES)?.insert(key_id, sealed.as_slice())?;
            Ok((record, true))
        })
    }

    /// Records a failed keygen: PENDING(`session`) → ERROR with `reason` (truncated to 4 KiB),
    /// freeing the key id for a new attempt.
    pub fn fail_keygen(
        &self,
        key_id: &str,
        session: [u8; 32],
        reason: &str,
    ) -> Result<KeyRecord, StoreError> {
        validate::key_id(key_id)?;
        let reason = validate::reason(reason);
        self.write(|txn| {
            let mut record =
                pending_with_session(self.rows(), txn, "fail_keygen", key_id, &session)?;
            record.status = KeyStatus::Error;
            record.error = Some(reason);
            record.updated_at_ms = now_ms();
            store_record(
                txn,
                self.rows(),
                &StoredKey {
                    record: record.clone(),
                    deleted_at_ms: None,
                },
            )?;
            Ok((record, true))
        })
    }

    /// The live record of `key_id`; deleted (tombstoned) keys read as `None`.
    pub fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(KEYS)?;
            Ok(load(self.rows(), &table, key_id)?.and_then(StoredKey::live))
        })
    }

    /// When `key_id` was deleted, if its current record is a tombstone; lets callers answer a
    /// repeated delete idempotently.
    pub fn deleted_at_ms(&self, key_id: &str) -> Result<Option<u64>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(KEYS)?;
            Ok(load(self.rows(), &table, key_id)?.and_then(|s| s.deleted_at_ms))
        })
    }

    /// All live records, ordered by key id.
    pub fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(KEYS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                if let Some(r) = decode(self.rows(), k.value(), v.value())?.live() {
                    out.push(r);
                }
            }
            Ok(out)
        })
    }

    /// The decrypted share of a READY key (`None` for PENDING, ERROR or no record). A deleted
    /// key is [`StoreError::Tombstoned`]. A READY record without a share, or a share that
    /// fails to open (e.g. one of another sharing put in its place), is [`StoreError::Corrupt`].
    pub fn load_share(&self, key_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read(|txn| {
            let keys = txn.open_table(KEYS)?;
            let session = match load(self.rows(), &keys, key_id)? {
                Some(s) if s.deleted_at_ms.is_some() => {
                    return Err(StoreError::Tombstoned {
                        key_id: key_id.to_owned(),
                    });
                }
                Some(s) if s.record.status == KeyStatus::Ready => s.record.key_session_id,
                _ => return Ok(None),
            };
            let shares = txn.open_table(SHARES)?;
            let guard = shares.get(key_id)?.ok_or_else(|| StoreError::Corrupt {
                table: T_SHARES,
                record: key_id.to_owned(),
            })?;
            self.sealer()
                .open(
                    T_SHARES,
                    &share_record(key_id, &session),
                    || key_id.to_owned(),
                    guard.value(),
                )
                .map(Some)
        })
    }

    /// Deletes `key_id` at once: tombstones the record and removes its share and every
    /// presignature in one transaction (a resharing's leaver, whose share the new committee
    /// replaced). The next erase sweep compacts the file so the share's bytes are gone from
    /// it. Returns `false` if there was no live record (idempotent). Bound deletes with
    /// retention are [`Store::tombstone_key`].
    pub fn delete_key(&self, key_id: &str) -> Result<bool, StoreError> {
        validate::key_id(key_id)?;
        let removed = self.write(|txn| {
            let Some(record) = live_in(self.rows(), txn, key_id)? else {
                return Ok((false, false));
            };
            store_record(
                txn,
                self.rows(),
                &StoredKey {
                    record,
                    deleted_at_ms: Some(now_ms()),
                },
            )?;
            txn.open_table(SHARES)?.remove(key_id)?;
            presign::discard_in(self.rows(), txn, key_id)?;
            Ok((true, true))
        })?;
        if removed {
            self.mark_for_compaction();
        }
        Ok(removed)
    }

    /// Resharing/refresh swap: replaces the share of a READY key atomically, only if the
    /// current record still carries `expected_session`. The public key is kept; presignatures
    /// made with the old share are discarded in the same transaction.
    pub fn replace_share(
        &self,
        key_id: &str,
        expected_session: [u8; 32],
        new_session: [u8; 32],
        threshold: u16,
        parties: Vec<[u8; 20]>,
        share: &[u8],
    ) -> Result<KeyRecord, StoreError> {
        validate::key_id(key_id)?;
        validate::committee(threshold, &parties)?;
        let sealed = self
            .sealer()
            .seal(T_SHARES, &share_record(key_id, &new_session), share)?;
        let replaced = self.write(|txn| {
            let mut record = match live_in(self.rows(), txn, key_id)? {
                Some(r) if r.status == KeyStatus::Ready && r.key_session_id == expected_session => {
                    r
                }
                other => {
                    return Err(StoreError::Conflict(format!(
                        "replace_share for key {key_id:?} expecting READY with session {} refused: {}",
                        short_hex(&expected_session),
                        describe(other.as_ref())
                    )));
                }
            };
            record.key_session_id = new_session;
            record.threshold = threshold;
            record.parties = parties;
            record.updated_at_ms = now_ms();
            store_record(
                txn,
                self.rows(),
                &StoredKey {
                    record: record.clone(),
                    deleted_at_ms: None,
                },
            )?;
            txn.open_table(SHARES)?.insert(key_id, sealed.as_slice())?;
            presign::discard_in(self.rows(), txn, key_id)?;
            Ok((record, true))
        })?;
        // The old share's bytes are freed pages now: the next sweep compacts them away.
        self.mark_for_compaction();
        Ok(replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_record_json_uses_hex_and_round_trips() {
        let record = KeyRecord {
            key_id: "k".into(),
            key_session_id: [0xab; 32],
            status: KeyStatus::Ready,
            threshold: 2,
            parties: vec![[1; 20], [2; 20]],
            public_key: Some(vec![2, 3]),
            error: None,
            created_at_ms: 1,
            updated_at_ms: 2,
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(&"ab".repeat(32)), "{json}");
        assert!(json.contains(r#""status":"READY""#), "{json}");
        assert!(json.contains(r#""public_key":"0203""#), "{json}");
        let back: KeyRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }
}
