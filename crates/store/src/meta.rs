//! The meta table: format version, salt, Argon2id parameters and the passphrase verifier.
//!
//! The passphrase is checked against a snapshot read without writing a single byte (a
//! read-only open, or an in-memory copy when the file needs crash recovery), so a wrong
//! passphrase leaves the file untouched.

use crate::error::{Result, StoreError};
use crate::kdf::{KdfParams, SALT_LEN};
use crate::seal::Sealer;
use crate::tables::{
    FORMAT_VERSION, META, META_FORMAT, META_KDF, META_SALT, META_VERIFIER, T_META,
};
use redb::backends::InMemoryBackend;
use redb::{
    Builder, DatabaseError, ReadableDatabase, ReadableTableMetadata, StorageBackend, TableError,
    WriteTransaction,
};
use std::path::Path;

/// The sealed constant whose successful opening proves the passphrase.
const VERIFIER_PLAINTEXT: &[u8] = b"cohort-store/verifier/v2";

/// What `open` needs to derive and check the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaSnapshot {
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) kdf: KdfParams,
    pub(crate) verifier: Vec<u8>,
}

fn format_err(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the meta snapshot; `None` when the file holds no initialized store yet (e.g. a crash
/// between creating the file and the first commit).
pub(crate) fn read_snapshot<D: ReadableDatabase>(
    db: &D,
    path: &Path,
) -> Result<Option<MetaSnapshot>> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => {
            return if txn.list_tables()?.next().is_none() {
                Ok(None)
            } else {
                Err(format_err(
                    path,
                    "the file is a redb database but not a Cohort store",
                ))
            };
        }
        Err(e) => return Err(e.into()),
    };
    if table.is_empty()? {
        return Ok(None);
    }
    let get = |name: &str| -> Result<Vec<u8>> {
        table
            .get(name)?
            .map(|g| g.value().to_vec())
            .ok_or_else(|| format_err(path, format!("meta entry `{name}` is missing")))
    };
    let format = get(META_FORMAT)?;
    let format = <[u8; 4]>::try_from(format.as_slice())
        .map(u32::from_le_bytes)
        .map_err(|_| format_err(path, "meta entry `format` is malformed"))?;
    if format < FORMAT_VERSION {
        return Err(format_err(
            path,
            format!(
                "store format version {format} predates authenticated records (this build reads only version {FORMAT_VERSION}); there is no migration: move the file aside and create a new store for this node"
            ),
        ));
    }
    if format != FORMAT_VERSION {
        return Err(format_err(
            path,
            format!(
                "store format version {format} is not supported (this build reads {FORMAT_VERSION})"
            ),
        ));
    }
    let salt = get(META_SALT)?;
    let salt = <[u8; SALT_LEN]>::try_from(salt.as_slice())
        .map_err(|_| format_err(path, "meta entry `kdf_salt` has the wrong length"))?;
    let kdf: KdfParams = serde_json::from_slice(&get(META_KDF)?)
        .map_err(|_| format_err(path, "meta entry `kdf_params` is malformed"))?;
    let verifier = get(META_VERIFIER)?;
    Ok(Some(MetaSnapshot {
        salt,
        kdf,
        verifier,
    }))
}

/// Reads the snapshot without modifying the file in any way.
pub(crate) fn read_without_writing(path: &Path) -> Result<Option<MetaSnapshot>> {
    match Builder::new().open_read_only(path) {
        Ok(db) => {
            let snapshot = read_snapshot(&db, path);
            db.close()?;
            snapshot
        }
        // The file was not closed cleanly and needs recovery, which writes. Recover a private
        // in-memory copy instead; the real file is repaired only once the passphrase is known.
        Err(DatabaseError::RepairAborted) => {
            let io = |source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            };
            let bytes = std::fs::read(path).map_err(io)?;
            let backend = InMemoryBackend::new();
            backend.set_len(bytes.len() as u64).map_err(io)?;
            backend.write(0, &bytes).map_err(io)?;
            drop(bytes);
            let db = Builder::new().create_with_backend(backend)?;
            read_snapshot(&db, path)
        }
        Err(e) => Err(e.into()),
    }
}

/// True when `sealer` holds the key this snapshot was created with.
pub(crate) fn verify(sealer: &Sealer, snapshot: &MetaSnapshot) -> bool {
    sealer
        .try_open(T_META, META_VERIFIER.as_bytes(), &snapshot.verifier)
        .is_some_and(|p| p.as_slice() == VERIFIER_PLAINTEXT)
}

/// Writes a fresh meta table (format, salt, parameters, verifier) into `txn`.
pub(crate) fn initialize(
    txn: &WriteTransaction,
    sealer: &Sealer,
    salt: &[u8; SALT_LEN],
    kdf: &KdfParams,
) -> Result<()> {
    let verifier = sealer.seal(T_META, META_VERIFIER.as_bytes(), VERIFIER_PLAINTEXT)?;
    let kdf_json = serde_json::to_vec(kdf)
        .map_err(|e| StoreError::InvalidInput(format!("KDF parameters: {e}")))?;
    let mut meta = txn.open_table(META)?;
    meta.insert(META_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())?;
    meta.insert(META_SALT, salt.as_slice())?;
    meta.insert(META_KDF, kdf_json.as_slice())?;
    meta.insert(META_VERIFIER, verifier.as_slice())?;
    Ok(())
}
