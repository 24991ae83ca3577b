//! Single-use presignatures.
//!
//! Taking a presignature deletes it and records its id in `used_presignatures` in the same
//! committed transaction that returns it, so a crash can never hand the same presignature out
//! twice, and a used id can never be stored again. Signer sets are public and kept in a side
//! table so lookups never decrypt anything. Signer-set rows and used marks are authenticated
//! rows (`rows.rs`): an edited signer set or a forged used mark is refused.

use crate::error::{Result, StoreError};
use crate::keys::{self, KeyStatus};
use crate::rows::RowMac;
use crate::store::{Store, now_ms};
use crate::tables::{
    PRESIG_SIGNERS, PRESIGS, T_PRESIG_SIGNERS, T_PRESIGS, T_USED_PRESIGS, USED_PRESIGS, key_prefix,
    scoped, short_hex,
};
use crate::validate;
use redb::{ReadableTable, WriteTransaction};
use zeroize::Zeroizing;

fn encode_signers(signers: &[[u8; 20]]) -> Vec<u8> {
    signers.iter().flatten().copied().collect()
}

fn label(key_id: &str, presig_id: &[u8]) -> String {
    format!("{key_id}/{}", short_hex(presig_id))
}

/// The authenticated used mark of `presig_id`, written at `at_ms`.
pub(crate) fn used_mark(rows: &RowMac, presig_id: &[u8], at_ms: u64) -> Result<Vec<u8>> {
    rows.wrap(T_USED_PRESIGS, presig_id, &at_ms.to_be_bytes())
}

fn mark_used(rows: &RowMac, txn: &WriteTransaction, presig_id: &[u8], at_ms: u64) -> Result<()> {
    let mark = used_mark(rows, presig_id, at_ms)?;
    txn.open_table(USED_PRESIGS)?
        .insert(presig_id, mark.as_slice())?;
    Ok(())
}

/// Ids (and encoded signer sets) of every presignature stored for `key_id`, each row's MAC
/// checked.
fn scan<T>(rows: &RowMac, table: &T, key_id: &str) -> Result<Vec<([u8; 32], Vec<u8>)>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let prefix = key_prefix(key_id);
    let mut out = Vec::new();
    for entry in table.range(prefix.as_slice()..)? {
        let (k, v) = entry?;
        let Some(suffix) = k.value().strip_prefix(prefix.as_slice()) else {
            break;
        };
        let id = <[u8; 32]>::try_from(suffix).map_err(|_| StoreError::Corrupt {
            table: crate::tables::T_PRESIG_SIGNERS,
            record: key_id.to_owned(),
        })?;
        let signers = rows.unwrap(T_PRESIG_SIGNERS, k.value(), v.value(), || {
            label(key_id, &id)
        })?;
        out.push((id, signers.to_vec()));
    }
    Ok(out)
}

/// Removes every presignature of `key_id` inside `txn`, marking the ids used; returns how
/// many were removed. Used by delete, replace and discard.
pub(crate) fn discard_in(rows: &RowMac, txn: &WriteTransaction, key_id: &str) -> Result<u64> {
    let mut signers = txn.open_table(PRESIG_SIGNERS)?;
    let ids = scan(rows, &signers, key_id)?;
    let mut presigs = txn.open_table(PRESIGS)?;
    let mut used = txn.open_table(USED_PRESIGS)?;
    let now = now_ms();
    for (id, _) in &ids {
        let record = scoped(key_id, id);
        signers.remove(record.as_slice())?;
        presigs.remove(record.as_slice())?;
        let mark = used_mark(rows, id, now)?;
        used.insert(id.as_slice(), mark.as_slice())?;
    }
    Ok(ids.len() as u64)
}

impl Store {
    /// Stores a presignature of READY key `key_id` for the ordered signer list `signers`.
    ///
    /// Refused with [`StoreError::Conflict`] if the key is not READY, or if `presig_id` is
    /// already stored or was ever used, so single use holds across restarts.
    pub fn put_presignature(
        &self,
        key_id: &str,
        presig_id: [u8; 32],
        signers: Vec<[u8; 20]>,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        validate::key_id(key_id)?;
        validate::parties("signer", &signers)?;
        let record = scoped(key_id, &presig_id);
        let sealed = self.sealer().seal(T_PRESIGS, &record, bytes)?;
        self.write(|txn| {
            match keys::live_in(self.rows(), txn, key_id)? {
                Some(r) if r.status == KeyStatus::Ready => {}
                _ => {
                    return Err(StoreError::Conflict(format!(
                        "presignature {} refused: key {key_id:?} is not READY",
                        short_hex(&presig_id)
                    )));
                }
            }
            if txn
                .open_table(USED_PRESIGS)?
                .get(presig_id.as_slice())?
                .is_some()
            {
                return Err(StoreError::Conflict(format!(
                    "presignature {} was already used and can never be stored again",
                    short_hex(&presig_id)
                )));
            }
            let mut presigs = txn.open_table(PRESIGS)?;
            if presigs.get(record.as_slice())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "presignature {} is already stored",
                    label(key_id, &presig_id)
                )));
            }
            presigs.insert(record.as_slice(), sealed.as_slice())?;
            let signers = self
                .rows()
                .wrap(T_PRESIG_SIGNERS, &record, &encode_signers(&signers))?;
            txn.open_table(PRESIG_SIGNERS)?
                .insert(record.as_slice(), signers.as_slice())?;
            Ok(((), true))
        })
    }

    /// Consumes a presignature: returns it and, in the same committed transaction, deletes it
    /// and marks its id used. A second take returns `None`. A blob that fails to open is still
    /// consumed (it is useless) and reported as [`StoreError::Corrupt`].
    pub fn take_presignature(
        &self,
        key_id: &str,
        presig_id: [u8; 32],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        validate::key_id(key_id)?;
        let record = scoped(key_id, &presig_id);
        self.write(|txn| {
            let sealed = txn
                .open_table(PRESIGS)?
                .remove(record.as_slice())?
                .map(|g| g.value().to_vec());
            let Some(sealed) = sealed else {
                return Ok((Ok(None), false));
            };
            txn.open_table(PRESIG_SIGNERS)?.remove(record.as_slice())?;
            mark_used(self.rows(), txn, presig_id.as_slice(), now_ms())?;
            let opened = self
                .sealer()
                .open(T_PRESIGS, &record, || label(key_id, &presig_id), &sealed)
                .map(Some);
            Ok((opened, true))
        })?
    }

    /// Any unused presignature of `key_id` made for exactly this ordered signer list (order
    /// matters, since a presignature is bound to the signers' positions).
    pub fn find_presignature(
        &self,
        key_id: &str,
        signers: &[[u8; 20]],
    ) -> Result<Option<[u8; 32]>, StoreError> {
        let wanted = encode_signers(signers);
        self.read(|txn| {
            let table = txn.open_table(PRESIG_SIGNERS)?;
            Ok(scan(self.rows(), &table, key_id)?
                .into_iter()
                .find(|(_, s)| *s == wanted)
                .map(|(id, _)| id))
        })
    }

    /// Unused presignatures stored for `key_id` (all signer sets), for pool sizing.
    pub fn count_presignatures(&self, key_id: &str) -> Result<u64, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(PRESIG_SIGNERS)?;
            Ok(scan(self.rows(), &table, key_id)?.len() as u64)
        })
    }

    /// Unused presignatures of `key_id` for exactly this ordered signer list, so a background
    /// filler can top up one (key, signer set) pool.
    pub fn count_presignatures_for(
        &self,
        key_id: &str,
        signers: &[[u8; 20]],
    ) -> Result<u64, StoreError> {
        let wanted = encode_signers(signers);
        self.read(|txn| {
            let table = txn.open_table(PRESIG_SIGNERS)?;
            Ok(scan(self.rows(), &table, key_id)?
                .iter()
                .filter(|(_, s)| *s == wanted)
                .count() as u64)
        })
    }

    /// Drops every presignature of `key_id` (e.g. the committee changed), marking the ids
    /// used; returns how many were dropped.
    pub fn discard_presignatures(&self, key_id: &str) -> Result<u64, StoreError> {
        validate::key_id(key_id)?;
        self.write(|txn| {
            let n = discard_in(self.rows(), txn, key_id)?;
            Ok((n, n > 0))
        })
    }
}
