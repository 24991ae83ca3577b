//! Typed errors of the store.
//!
//! Messages name files, tables and records (all public) but never carry secret content:
//! no share bytes, passphrase or derived key can reach an error string.

use std::path::PathBuf;

/// Everything that can go wrong in the store, typed so callers can map it to a clear refusal
/// (`Conflict`), an operator action (`WrongPassphrase`, `Corrupt`) or an internal fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The passphrase does not open this store; reported before anything is written so the
    /// operator can simply retry.
    #[error("wrong passphrase for store at {}", path.display())]
    WrongPassphrase {
        /// The store file that was being opened.
        path: PathBuf,
    },

    /// A sealed or structured record failed to open or decode: tampered with, moved to another
    /// record, or damaged. Names the record, never its content.
    #[error("store record {table}/{record} is corrupt (failed authentication or decoding)")]
    Corrupt {
        /// The table holding the record.
        table: &'static str,
        /// The record's (public) key, rendered for humans.
        record: String,
    },

    /// A safety-table row (key record, journal, presignature or reshare mark, staged record,
    /// tombstone) failed its MAC: it was edited, or moved from another record, table or store.
    /// The store refuses it rather than act on it.
    #[error(
        "store record {table}/{record} failed authentication: it was modified or moved outside this node; refusing to use it"
    )]
    Unauthentic {
        /// The table holding the row.
        table: &'static str,
        /// The row's (public) key, rendered for humans.
        record: String,
    },

    /// The key was deleted: its share is tombstoned (kept sealed until the retention period
    /// ends, then erased) and refused for signing and every other use.
    #[error("key {key_id:?} is deleted (tombstoned); it cannot be used")]
    Tombstoned {
        /// The deleted key.
        key_id: String,
    },

    /// A compare-and-set precondition failed (wrong session, wrong status, reuse of a
    /// single-use id); the message says which rule refused the operation.
    #[error("store conflict: {0}")]
    Conflict(String),

    /// An argument was rejected before touching the database (empty key id, bad threshold...).
    #[error("invalid store input: {0}")]
    InvalidInput(String),

    /// The file is not a Cohort store, or is from a newer, unsupported format.
    #[error("unsupported store file at {}: {reason}", path.display())]
    Format {
        /// The file in question.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },

    /// Argon2id refused its parameters (kept distinct so a bad `KdfParams` is obvious).
    #[error("key derivation failed: {0}")]
    Kdf(String),

    /// Plain I/O on the store file (reading it for a side-effect-free passphrase check).
    #[error("I/O error on store at {}: {source}", path.display())]
    Io {
        /// The file in question.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The embedded database failed (I/O, locking, corruption detected by redb itself).
    #[error("store database error: {0}")]
    Database(#[from] redb::Error),
}

macro_rules! from_redb {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
);

/// Shorthand used throughout the crate.
pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;
