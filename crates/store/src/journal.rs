//! The signing journal: at most one digest per (key, slot), so a node never signs two
//! different contents for the same slot (anti-equivocation across managers and restarts).
//! Entries survive key deletion on purpose.
//!
//! State batches are journaled per state-chain element instead ([`Store::journal_sign_batch`]):
//! what must never happen is two different roots signed for the same element index. A batch
//! is a run of elements from `offset_starts_at_index` on, and Mantle's batch submitter
//! rebuilds a batch after a lost or reverted transaction with the same offset and more roots
//! (a different digest); a per-slot digest would refuse that forever and halt the chain.
//!
//! Both journals are authenticated rows (`rows.rs`): an edited entry is refused with
//! [`StoreError::Unauthentic`] instead of letting the node sign another digest for its slot.

use crate::error::StoreError;
use crate::rows::RowMac;
use crate::store::Store;
use crate::tables::{JOURNAL, JOURNAL_ROOTS, T_JOURNAL, T_JOURNAL_ROOTS, scoped};
use crate::validate;
use redb::ReadableTable;

/// Result of [`Store::journal_sign`]; only `Recorded` and `SameDigest` allow signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalOutcome {
    /// First digest for this slot; now recorded.
    Recorded,
    /// The same digest was already recorded (a retry); signing again is safe.
    SameDigest,
    /// A different digest is recorded for this slot: refuse to sign.
    Conflict {
        /// The digest already signed for the slot.
        existing: [u8; 32],
    },
}

/// Result of [`Store::journal_sign_batch`] and [`Store::journal_check_batch`]; only
/// `Conflict` forbids signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchJournalOutcome {
    /// No element of the batch was signed before, or some were (with the same roots) and the
    /// others are new: the new ones are now recorded (by `journal_sign_batch`).
    Extends {
        /// Elements already recorded with the same root.
        known: u64,
        /// Elements not recorded before.
        new: u64,
    },
    /// Every element is recorded with the same root: a retry of signed content.
    AllKnown,
    /// An element is recorded with another root: refuse to sign. Nothing was recorded.
    Conflict {
        /// The first conflicting state-chain element index.
        index: u64,
        /// The root signed for it.
        existing: [u8; 32],
        /// The batch's root for it.
        batch: [u8; 32],
    },
}

fn decode_root(
    rows: &RowMac,
    key_id: &str,
    index: u64,
    bytes: &[u8],
) -> Result<[u8; 32], StoreError> {
    let record = scoped(key_id, &index.to_be_bytes());
    let value = rows.unwrap(T_JOURNAL_ROOTS, &record, bytes, || {
        format!("{key_id}/{index}")
    })?;
    <[u8; 32]>::try_from(value).map_err(|_| StoreError::Corrupt {
        table: T_JOURNAL_ROOTS,
        record: format!("{key_id}/{index}"),
    })
}

/// Compares `roots` (elements `offset..`) with what `table` holds; returns the outcome and
/// the indices (relative to `offset`) that are new.
fn compare_batch(
    rows: &RowMac,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key_id: &str,
    offset: u64,
    roots: &[[u8; 32]],
) -> Result<(BatchJournalOutcome, Vec<usize>), StoreError> {
    let mut fresh = Vec::new();
    for (k, root) in roots.iter().enumerate() {
        let index = offset
            .checked_add(k as u64)
            .ok_or_else(|| StoreError::InvalidInput("state-chain index overflows".into()))?;
        let record = scoped(key_id, &index.to_be_bytes());
        match table.get(record.as_slice())? {
            Some(g) => {
                let existing = decode_root(rows, key_id, index, g.value())?;
                if existing != *root {
                    return Ok((
                        BatchJournalOutcome::Conflict {
                            index,
                            existing,
                            batch: *root,
                        },
                        Vec::new(),
                    ));
                }
            }
            None => fresh.push(k),
        }
    }
    let outcome = if fresh.is_empty() {
        BatchJournalOutcome::AllKnown
    } else {
        BatchJournalOutcome::Extends {
            known: (roots.len() - fresh.len()) as u64,
            new: fresh.len() as u64,
        }
    };
    Ok((outcome, fresh))
}

fn decode(rows: &RowMac, key_id: &str, slot: u64, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    let record = scoped(key_id, &slot.to_be_bytes());
    let value = rows.unwrap(T_JOURNAL, &record, bytes, || format!("{key_id}/{slot}"))?;
    <[u8; 32]>::try_from(value).map_err(|_| StoreError::Corrupt {
        table: T_JOURNAL,
        record: format!("{key_id}/{slot}"),
    })
}

impl Store {
    /// Atomically records `digest` for (`key_id`, `slot`) unless another digest is there.
    pub fn journal_sign(
        &self,
        key_id: &str,
        slot: u64,
        digest: [u8; 32],
    ) -> Result<JournalOutcome, StoreError> {
        validate::key_id(key_id)?;
        let record = scoped(key_id, &slot.to_be_bytes());
        self.write(|txn| {
            let mut table = txn.open_table(JOURNAL)?;
            let existing = table.get(record.as_slice())?.map(|g| g.value().to_vec());
            match existing {
                Some(bytes) => {
                    let existing = decode(self.rows(), key_id, slot, &bytes)?;
                    if existing == digest {
                        Ok((JournalOutcome::SameDigest, false))
                    } else {
                        Ok((JournalOutcome::Conflict { existing }, false))
                    }
                }
                None => {
                    let row = self.rows().wrap(T_JOURNAL, &record, &digest)?;
                    table.insert(record.as_slice(), row.as_slice())?;
                    Ok((JournalOutcome::Recorded, true))
                }
            }
        })
    }

    /// Atomically records `roots` as signed for the state-chain elements `offset..` of
    /// `key_id`, unless one of them is recorded with another root (then nothing is recorded).
    pub fn journal_sign_batch(
        &self,
        key_id: &str,
        offset: u64,
        roots: &[[u8; 32]],
    ) -> Result<BatchJournalOutcome, StoreError> {
        validate::key_id(key_id)?;
        self.write(|txn| {
            let mut table = txn.open_table(JOURNAL_ROOTS)?;
            let (outcome, fresh) = compare_batch(self.rows(), &table, key_id, offset, roots)?;
            if fresh.is_empty() {
                return Ok((outcome, false));
            }
            for k in fresh {
                let record = scoped(key_id, &(offset + k as u64).to_be_bytes());
                let row = self.rows().wrap(T_JOURNAL_ROOTS, &record, &roots[k])?;
                table.insert(record.as_slice(), row.as_slice())?;
            }
            Ok((outcome, true))
        })
    }

    /// What [`Store::journal_sign_batch`] would answer, without recording: the willingness
    /// check of a node before it agrees to sign a batch.
    pub fn journal_check_batch(
        &self,
        key_id: &str,
        offset: u64,
        roots: &[[u8; 32]],
    ) -> Result<BatchJournalOutcome, StoreError> {
        validate::key_id(key_id)?;
        self.read(|txn| {
            let table = txn.open_table(JOURNAL_ROOTS)?;
            compare_batch(self.rows(), &table, key_id, offset, roots).map(|(o, _)| o)
        })
    }

    /// The root recorded for state-chain element `index` of `key_id`.
    pub fn journal_root(&self, key_id: &str, index: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let record = scoped(key_id, &index.to_be_bytes());
        self.read(|txn| {
            let table = txn.open_table(JOURNAL_ROOTS)?;
            match table.get(record.as_slice())? {
                Some(g) => decode_root(self.rows(), key_id, index, g.value()).map(Some),
                None => Ok(None),
            }
        })
    }

    /// The digest recorded for (`key_id`, `slot`), for the willingness check.
    pub fn journal_get(&self, key_id: &str, slot: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let record = scoped(key_id, &slot.to_be_bytes());
        self.read(|txn| {
            let table = txn.open_table(JOURNAL)?;
            match table.get(record.as_slice())? {
                Some(g) => decode(self.rows(), key_id, slot, g.value()).map(Some),
                None => Ok(None),
            }
        })
    }
}
