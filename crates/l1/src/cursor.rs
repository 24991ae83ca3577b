//! The follower's persisted cursor: the last applied block (height and hash) and a bounded ring
//! of recent `(height, hash)` pairs, stored in redb.
//!
//! The cursor is written by the consumer in the same redb write transaction as the effects of
//! the batch it ends ([`write_cursor`] takes the consumer's `WriteTransaction`), so a crash
//! leaves either both or neither: an event is applied exactly once across restarts.

use std::collections::VecDeque;

use alloy_primitives::B256;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::L1Error;

/// The redb table holding the cursor (one row, key [`CURSOR_KEY`]).
pub const CURSOR_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("l1_cursor");
/// The row key of the cursor.
pub const CURSOR_KEY: &str = "follower";
/// The encoding version byte.
const VERSION: u8 = 1;

/// Where the follower stands: the last applied block and the recent ones before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last applied block's height.
    pub height: u64,
    /// The last applied block's hash.
    pub hash: B256,
    /// Recent applied `(height, hash)` pairs, oldest first, ending with `(height, hash)`.
    recent: VecDeque<(u64, B256)>,
}

impl Cursor {
    /// A cursor at `(height, hash)` with no history.
    pub fn new(height: u64, hash: B256) -> Cursor {
        Cursor {
            height,
            hash,
            recent: VecDeque::from([(height, hash)]),
        }
    }

    /// This cursor moved to `(height, hash)`, keeping at most `ring` recent pairs.
    pub fn advanced(&self, height: u64, hash: B256, ring: usize) -> Cursor {
        let mut recent = self.recent.clone();
        recent.push_back((height, hash));
        while recent.len() > ring.max(1) {
            recent.pop_front();
        }
        Cursor {
            height,
            hash,
            recent,
        }
    }

    /// The recent `(height, hash)` pairs, newest first.
    pub fn recent(&self) -> impl Iterator<Item = (u64, B256)> + '_ {
        self.recent.iter().rev().copied()
    }

    /// The stored form: version, height, hash, count, pairs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 40 + 4 + 40 * self.recent.len());
        out.push(VERSION);
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(self.hash.as_slice());
        out.extend_from_slice(&(self.recent.len() as u32).to_be_bytes());
        for (h, b) in &self.recent {
            out.extend_from_slice(&h.to_be_bytes());
            out.extend_from_slice(b.as_slice());
        }
        out
    }

    /// Parses [`Cursor::to_bytes`]; a malformed row is an error, never a silent reset.
    pub fn from_bytes(b: &[u8]) -> Result<Cursor, L1Error> {
        let bad = |why: &str| L1Error::Store(format!("malformed L1 cursor: {why}"));
        if b.first() != Some(&VERSION) {
            return Err(bad("unknown version"));
        }
        let pair = |at: usize| -> Result<(u64, B256), L1Error> {
            let h = b.get(at..at + 8).ok_or_else(|| bad("truncated"))?;
            let hash = b.get(at + 8..at + 40).ok_or_else(|| bad("truncated"))?;
            let mut hb = [0u8; 8];
            hb.copy_from_slice(h);
            Ok((u64::from_be_bytes(hb), B256::from_slice(hash)))
        };
        let (height, hash) = pair(1)?;
        let n = b.get(41..45).ok_or_else(|| bad("truncated"))?;
        let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
        if b.len() != 45 + 40 * n || n == 0 {
            return Err(bad("length"));
        }
        let mut recent = VecDeque::with_capacity(n);
        for i in 0..n {
            recent.push_back(pair(45 + 40 * i)?);
        }
        if recent.back() != Some(&(height, hash)) {
            return Err(bad("ring does not end at the cursor"));
        }
        Ok(Cursor {
            height,
            hash,
            recent,
        })
    }
}

fn store_err(e: impl std::fmt::Display) -> L1Error {
    L1Error::Store(e.to_string())
}

/// Writes `cursor` inside the consumer's write transaction (commit is the consumer's).
pub fn write_cursor(txn: &redb::WriteTransaction, cursor: &Cursor) -> Result<(), L1Error> {
    let mut t = txn.open_table(CURSOR_TABLE).map_err(store_err)?;
    t.insert(CURSOR_KEY, cursor.to_bytes().as_slice())
        .map_err(store_err)?;
    Ok(())
}

/// Reads the cursor inside a write transaction (so a consumer can compare before applying).
pub fn read_cursor_in(txn: &redb::WriteTransaction) -> Result<Option<Cursor>, L1Error> {
    let t = txn.open_table(CURSOR_TABLE).map_err(store_err)?;
    let v = t.get(CURSOR_KEY).map_err(store_err)?;
    v.map(|g| Cursor::from_bytes(g.value())).transpose()
}

/// Reads the cursor from `db`; `None` before the first batch.
pub fn read_cursor(db: &redb::Database) -> Result<Option<Cursor>, L1Error> {
    let txn = db.begin_read().map_err(store_err)?;
    let t = match txn.open_table(CURSOR_TABLE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(store_err(e)),
    };
    let v = t.get(CURSOR_KEY).map_err(store_err)?;
    v.map(|g| Cursor::from_bytes(g.value())).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_round_trips() {
        let mut c = Cursor::new(1, B256::repeat_byte(1));
        for i in 2..10u8 {
            c = c.advanced(i as u64, B256::repeat_byte(i), 4);
        }
        let got: Vec<u64> = c.recent().map(|(h, _)| h).collect();
        assert_eq!(got, vec![9, 8, 7, 6]);
        assert_eq!(Cursor::from_bytes(&c.to_bytes()).unwrap(), c);
        let mut b = c.to_bytes();
        b.pop();
        assert!(Cursor::from_bytes(&b).is_err());
    }

    #[test]
    fn persisted_in_redb() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("c.redb")).unwrap();
        assert_eq!(read_cursor(&db).unwrap(), None);
        let c = Cursor::new(5, B256::repeat_byte(5)).advanced(7, B256::repeat_byte(7), 8);
        let txn = db.begin_write().unwrap();
        write_cursor(&txn, &c).unwrap();
        txn.commit().unwrap();
        drop(db);
        let db = redb::Database::open(dir.path().join("c.redb")).unwrap();
        assert_eq!(read_cursor(&db).unwrap(), Some(c));
    }
}
