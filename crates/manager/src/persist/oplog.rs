//! The manager's operation log: one JSON record per operation session, listed newest first.
//!
//! Nothing in it is secret, so it is a separate, unencrypted redb file that needs no
//! passphrase. Records are indexed by creation order (a monotonic sequence assigned at the
//! first `put` of a session), so later updates of a session do not reorder the list. It lived
//! in `cohort-store` (the node's store) until it moved here, beside the manager's registry.

use redb::{
    Builder, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::now_ms;

/// Largest record accepted (the limit `cohort-store` applied to every value).
const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// Why the operation log failed.
#[derive(Debug, thiserror::Error)]
pub enum OpLogError {
    /// The record is not acceptable (not JSON, too large).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A stored entry cannot be decoded.
    #[error("corrupt entry in {table}: {record}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The entry's key.
        record: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
}

macro_rules! db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for OpLogError {
            fn from(e: $t) -> Self {
                OpLogError::Db(e.to_string())
            }
        }
    )*};
}
db_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type Result<T, E = OpLogError> = std::result::Result<T, E>;

const T_OPS: &str = "operations";
/// session id → `seq ‖ created_ms ‖ updated_ms` (big-endian u64s) ‖ JSON.
const OPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new(T_OPS);
/// creation sequence → session id: the time index behind `list_recent`.
const OPS_BY_SEQ: TableDefinition<u64, &[u8]> = TableDefinition::new("operations_by_seq");
/// Counters: the next creation sequence.
const OPS_META: TableDefinition<&str, u64> = TableDefinition::new("operations_meta");
const NEXT_SEQ: &str = "next_seq";
const HEADER_LEN: usize = 24;

/// One logged operation as returned by [`OperationLog::get`] and
/// [`OperationLog::list_recent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationEntry {
    /// The operation's session id.
    pub session_id: [u8; 32],
    /// First time the session was logged.
    pub created_at_ms: u64,
    /// Last time its record was replaced.
    pub updated_at_ms: u64,
    /// The record as given by the manager (validated to be JSON).
    pub record_json: Vec<u8>,
}

/// Persistent log of operations for the manager (restart-safe status queries). Cheap to
/// clone, `Send + Sync`; operations are short blocking transactions.
#[derive(Clone)]
pub struct OperationLog {
    inner: Arc<OpLogInner>,
}

struct OpLogInner {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for OperationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationLog")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn decode(session_id: [u8; 32], bytes: &[u8]) -> Result<(u64, OperationEntry)> {
    let corrupt = || OpLogError::Corrupt {
        table: T_OPS,
        record: hex::encode(session_id),
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt());
    }
    let word = |i: usize| -> Result<u64> {
        bytes
            .get(i * 8..i * 8 + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(corrupt)
    };
    Ok((
        word(0)?,
        OperationEntry {
            session_id,
            created_at_ms: word(1)?,
            updated_at_ms: word(2)?,
            record_json: bytes[HEADER_LEN..].to_vec(),
        },
    ))
}

impl OperationLog {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<OperationLog, OpLogError> {
        let path = path.as_ref();
        let db = Builder::new().create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(OPS)?;
        txn.open_table(OPS_BY_SEQ)?;
        txn.open_table(OPS_META)?;
        txn.commit()?;
        Ok(OperationLog {
            inner: Arc::new(OpLogInner {
                db,
                path: path.to_path_buf(),
            }),
        })
    }

    /// Inserts or replaces the record of `session_id`. The JSON is validated (and bounded to
    /// 16 MiB) so readers can trust it; the session keeps its place in the time index.
    pub fn put(&self, session_id: [u8; 32], record_json: &[u8]) -> Result<(), OpLogError> {
        if record_json.len() > MAX_RECORD_LEN {
            return Err(OpLogError::InvalidInput(format!(
                "operation record is {} bytes, the limit is {MAX_RECORD_LEN}",
                record_json.len()
            )));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(record_json).map_err(|e| {
            OpLogError::InvalidInput(format!("operation record is not valid JSON: {e}"))
        })?;
        let now = now_ms();
        let txn = self.inner.db.begin_write()?;
        {
            let mut ops = txn.open_table(OPS)?;
            let existing = ops
                .get(session_id.as_slice())?
                .map(|g| decode(session_id, g.value()))
                .transpose()?;
            let (seq, created) = match existing {
                Some((seq, entry)) => (seq, entry.created_at_ms),
                None => {
                    let mut meta = txn.open_table(OPS_META)?;
                    let seq = meta.get(NEXT_SEQ)?.map(|g| g.value()).unwrap_or(0);
                    meta.insert(NEXT_SEQ, seq.saturating_add(1))?;
                    txn.open_table(OPS_BY_SEQ)?
                        .insert(seq, session_id.as_slice())?;
                    (seq, now)
                }
            };
            let mut value = Vec::with_capacity(HEADER_LEN + record_json.len());
            value.extend_from_slice(&seq.to_be_bytes());
            value.extend_from_slice(&created.to_be_bytes());
            value.extend_from_slice(&now.to_be_bytes());
            value.extend_from_slice(record_json);
            ops.insert(session_id.as_slice(), value.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The entry of `session_id`, if logged.
    pub fn get(&self, session_id: [u8; 32]) -> Result<Option<OperationEntry>, OpLogError> {
        let txn = self.inner.db.begin_read()?;
        let ops = txn.open_table(OPS)?;
        match ops.get(session_id.as_slice())? {
            Some(g) => Ok(Some(decode(session_id, g.value())?.1)),
            None => Ok(None),
        }
    }

    /// Up to `limit` entries, newest (most recently created) first.
    pub fn list_recent(&self, limit: usize) -> Result<Vec<OperationEntry>, OpLogError> {
        let txn = self.inner.db.begin_read()?;
        let index = txn.open_table(OPS_BY_SEQ)?;
        let ops = txn.open_table(OPS)?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for entry in index.iter()?.rev().take(limit) {
            let (seq, session) = entry?;
            let session_id =
                <[u8; 32]>::try_from(session.value()).map_err(|_| OpLogError::Corrupt {
                    table: "operations_by_seq",
                    record: seq.value().to_string(),
                })?;
            if let Some(g) = ops.get(session_id.as_slice())? {
                out.push(decode(session_id, g.value())?.1);
            }
        }
        Ok(out)
    }

    /// Removes the oldest entries so that at most `keep` remain; returns how many went. The log
    /// is an audit trail, not an archive: without a bound it would grow for as long as the
    /// network signs (one entry per batch).
    pub fn prune_to(&self, keep: u64) -> Result<u64, OpLogError> {
        let txn = self.inner.db.begin_write()?;
        let removed = {
            let mut index = txn.open_table(OPS_BY_SEQ)?;
            let mut ops = txn.open_table(OPS)?;
            let excess = index.len()?.saturating_sub(keep);
            let mut oldest = Vec::new();
            for entry in index.iter()?.take(excess as usize) {
                let (seq, session) = entry?;
                oldest.push((seq.value(), session.value().to_vec()));
            }
            for (seq, session) in &oldest {
                index.remove(*seq)?;
                ops.remove(session.as_slice())?;
            }
            oldest.len() as u64
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Number of logged operations.
    pub fn len(&self) -> Result<u64, OpLogError> {
        let txn = self.inner.db.begin_read()?;
        Ok(txn.open_table(OPS)?.len()?)
    }

    /// True when nothing has been logged yet.
    pub fn is_empty(&self) -> Result<bool, OpLogError> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn temp() -> (crate::tests::TempDir, OperationLog) {
        let dir = crate::tests::TempDir::new();
        let log = OperationLog::open(dir.path().join("ops.redb")).unwrap();
        (dir, log)
    }

    #[test]
    fn operation_log_put_get_list_across_reopen() {
        let dir = crate::tests::TempDir::new();
        let path = dir.path().join("ops.redb");
        {
            let log = OperationLog::open(&path).unwrap();
            assert!(log.is_empty().unwrap());
            assert_eq!(log.get(sid(1)).unwrap(), None);
            for i in 1..=5u8 {
                log.put(sid(i), format!(r#"{{"op":"keygen","n":{i}}}"#).as_bytes())
                    .unwrap();
            }
            // Updating a session replaces its record but keeps its place.
            log.put(sid(2), br#"{"op":"keygen","state":"done"}"#)
                .unwrap();
        }
        let log = OperationLog::open(&path).unwrap();
        assert_eq!(log.len().unwrap(), 5);
        let two = log.get(sid(2)).unwrap().unwrap();
        assert_eq!(two.record_json, br#"{"op":"keygen","state":"done"}"#);
        assert!(two.updated_at_ms >= two.created_at_ms);
        let ids = |n| -> Vec<[u8; 32]> {
            log.list_recent(n)
                .unwrap()
                .into_iter()
                .map(|e| e.session_id)
                .collect()
        };
        assert_eq!(ids(3), [sid(5), sid(4), sid(3)]);
        assert_eq!(ids(100), [sid(5), sid(4), sid(3), sid(2), sid(1)]);
        assert!(log.list_recent(0).unwrap().is_empty());
        log.put(sid(6), b"{}").unwrap();
        assert_eq!(log.list_recent(1).unwrap()[0].session_id, sid(6));
    }

    #[test]
    fn operation_log_rejects_invalid_json() {
        let (_dir, log) = temp();
        assert!(matches!(
            log.put(sid(1), b"{not json"),
            Err(OpLogError::InvalidInput(_))
        ));
        assert!(log.is_empty().unwrap());
    }

    #[test]
    fn operation_log_prunes_the_oldest_beyond_its_retention() {
        let (_dir, log) = temp();
        for i in 1..=10u8 {
            log.put(sid(i), b"{}").unwrap();
        }
        assert_eq!(log.prune_to(20).unwrap(), 0);
        assert_eq!(log.prune_to(4).unwrap(), 6);
        assert_eq!(log.len().unwrap(), 4);
        assert_eq!(log.get(sid(6)).unwrap(), None);
        let kept: Vec<_> = log
            .list_recent(100)
            .unwrap()
            .into_iter()
            .map(|e| e.session_id)
            .collect();
        assert_eq!(kept, [sid(10), sid(9), sid(8), sid(7)]);
        // New entries still go after the kept ones.
        log.put(sid(11), b"{}").unwrap();
        assert_eq!(log.list_recent(1).unwrap()[0].session_id, sid(11));
        assert_eq!(log.prune_to(0).unwrap(), 5);
        assert!(log.is_empty().unwrap());
    }
}
