//! The signing journal: at most one digest per (key, slot), so a node never signs two
//! different contents for the same slot (anti-equivocation across managers and restarts).
//! Entries survive key deletion on purpose.

use crate::error::StoreError;
use crate::store::Store;
use crate::tables::{JOURNAL, T_JOURNAL, scoped};
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

fn decode(key_id: &str, slot: u64, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| StoreError::Corrupt {
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
                    let existing = decode(key_id, slot, &bytes)?;
                    if existing == digest {
                        Ok((JournalOutcome::SameDigest, false))
                    } else {
                        Ok((JournalOutcome::Conflict { existing }, false))
                    }
                }
                None => {
                    table.insert(record.as_slice(), digest.as_slice())?;
                    Ok((JournalOutcome::Recorded, true))
                }
            }
        })
    }

    /// The digest recorded for (`key_id`, `slot`), for the willingness check.
    pub fn journal_get(&self, key_id: &str, slot: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let record = scoped(key_id, &slot.to_be_bytes());
        self.read(|txn| {
            let table = txn.open_table(JOURNAL)?;
            match table.get(record.as_slice())? {
                Some(g) => decode(key_id, slot, g.value()).map(Some),
                None => Ok(None),
            }
        })
    }
}
