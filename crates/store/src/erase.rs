//! Step two of a bound delete: erasing tombstones whose retention is over, so that the share
//! is gone from the file and not only unlinked.
//!
//! How: redb is copy-on-write, so a removed value stays in a freed page of the file until that
//! page is reused. After removing the rows, the sweep runs redb's compaction
//! ([`redb::Database::compact`]), which rewrites the live pages into the front of the file and
//! truncates it; the store's tests grep the whole file for the share's sealed bytes afterwards.
//! (Not a per-record data key: a destroyed key in a redb page lingers exactly like the share.)
//! Compaction needs the database to itself, so it briefly blocks every other store call; it
//! runs only when something was removed (a tombstone erased, a share deleted or replaced).

use std::sync::atomic::Ordering;

use redb::ReadableTable;

use crate::error::{Result, StoreError};
use crate::store::{Store, now_ms};
use crate::tables::{TOMBSTONES, short_hex};
use crate::tombstones::{self, Tombstone};

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EraseReport {
    /// Tombstones erased by this sweep.
    pub erased: Vec<Tombstone>,
    /// Whether the file was compacted (freed pages holding removed secrets rewritten away).
    pub compacted: bool,
}

impl Store {
    /// Records that secret bytes were removed, so the next sweep compacts the file.
    pub(crate) fn mark_for_compaction(&self) {
        self.compaction_flag().store(true, Ordering::SeqCst);
    }

    /// Erases every tombstone whose retention ended by now, then compacts the file if anything
    /// secret was removed since the last compaction. Blocking (one transaction plus the
    /// compaction); call it from a background task on a blocking thread.
    pub fn erase_expired(&self) -> Result<EraseReport, StoreError> {
        self.erase_expired_at(now_ms())
    }

    /// [`Store::erase_expired`] as of `now_ms` (tests pass the time instead of sleeping).
    pub fn erase_expired_at(&self, now_ms: u64) -> Result<EraseReport, StoreError> {
        let erased = self.write(|txn| {
            let mut table = txn.open_table(TOMBSTONES)?;
            let mut due = Vec::new();
            for entry in table.iter()? {
                let (k, v) = entry?;
                let stored =
                    tombstones::decode(self.rows(), k.value(), v.value(), || short_hex(k.value()))?;
                if stored.tombstone.erase_after_ms <= now_ms {
                    due.push((k.value().to_vec(), stored.tombstone));
                }
            }
            for (k, _) in &due {
                table.remove(k.as_slice())?;
            }
            let changed = !due.is_empty();
            Ok((due.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), changed))
        })?;
        if !erased.is_empty() {
            self.mark_for_compaction();
        }
        let compacted = if self.compaction_flag().swap(false, Ordering::SeqCst) {
            match self.exclusive(|db| db.compact()) {
                Ok(_) => true,
                Err(e) => {
                    // Try again on the next sweep.
                    self.mark_for_compaction();
                    return Err(StoreError::Database(redb::Error::from(e)));
                }
            }
        } else {
            false
        };
        Ok(EraseReport { erased, compacted })
    }
}
