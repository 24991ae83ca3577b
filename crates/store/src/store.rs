//! The [`Store`] handle: opening (key derivation, passphrase check, crash recovery) and the
//! transaction helpers the per-concept modules build on.

use crate::error::{Result, StoreError};
use crate::kdf::{KdfParams, SALT_LEN, derive_key};
use crate::keys;
use crate::meta;
use crate::rows::RowMac;
use crate::seal::Sealer;
use crate::tables::{
    AUX, IDENTITY, JOURNAL, JOURNAL_ROOTS, KEYS, META, PRESIG_SIGNERS, PRESIGS, PRIMES, RESHARES,
    SHARES, STAGED, TOMBSTONES, USED_PRESIGS,
};
use crate::verify;
use rand::RngCore;
use rand::rngs::OsRng;
use redb::{Builder, Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Options for [`Store::open`]; only used when the file is created (an existing store keeps
/// the parameters recorded in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Argon2id cost for a new store; defaults to [`KdfParams::default`] (m=65536 KiB, t=3,
    /// p=1).
    pub kdf: KdfParams,
}

/// The node's encrypted store. Cheap to clone (an `Arc` inside) and `Send + Sync`, so every
/// session can hold one; each operation is a single short redb transaction.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    // Transactions hold the read side while they run; compaction (`erase.rs`) takes the write
    // side, since redb compacts only with no transaction in progress.
    db: RwLock<Database>,
    sealer: Sealer,
    rows: RowMac,
    path: PathBuf,
    kdf: KdfParams,
    recovered: Vec<String>,
    // Set when secret bytes were removed; the erase sweep compacts the file while it is set.
    compact: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("kdf", &self.inner.kdf)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970), for record timestamps.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Creates every table so read transactions can open them unconditionally.
fn create_tables(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(META)?;
    txn.open_table(KEYS)?;
    txn.open_table(SHARES)?;
    txn.open_table(AUX)?;
    txn.open_table(PRIMES)?;
    txn.open_table(PRESIGS)?;
    txn.open_table(PRESIG_SIGNERS)?;
    txn.open_table(USED_PRESIGS)?;
    txn.open_table(IDENTITY)?;
    txn.open_table(JOURNAL)?;
    txn.open_table(JOURNAL_ROOTS)?;
    txn.open_table(RESHARES)?;
    txn.open_table(STAGED)?;
    txn.open_table(TOMBSTONES)?;
    Ok(())
}

impl Store {
    /// Opens the store at `path`, creating it (random salt, `options.kdf`, verifier) if absent.
    ///
    /// On an existing file the passphrase is checked before anything is written: a wrong one
    /// returns [`StoreError::WrongPassphrase`] and leaves the file byte-identical. Keygens left
    /// PENDING by a previous run become ERROR (see [`Store::recovered_pending`]) so their key
    /// ids can be generated again.
    pub fn open(
        path: impl AsRef<Path>,
        passphrase: &[u8],
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let exists = match std::fs::metadata(path) {
            Ok(m) => m.len() > 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let snapshot = if exists {
            meta::read_without_writing(path)?
        } else {
            None
        };
        let wrong = || StoreError::WrongPassphrase {
            path: path.to_path_buf(),
        };

        let (db, sealer, rows, kdf, recovered) = match snapshot {
            Some(snapshot) => {
                let sealer = Sealer::new(
                    derive_key(passphrase, &snapshot.salt, &snapshot.kdf)?,
                    snapshot.salt,
                );
                if !meta::verify(&sealer, &snapshot) {
                    return Err(wrong());
                }
                let db = Builder::new().open(path)?;
                // The file could have been replaced between the check and the open.
                match meta::read_snapshot(&db, path)? {
                    Some(now) if meta::verify(&sealer, &now) => {}
                    _ => return Err(wrong()),
                }
                let rows = RowMac::derive(&sealer)?;
                let txn = db.begin_write()?;
                create_tables(&txn)?;
                // Every authenticated row and sealed share is checked before the store is used:
                // a tampered or swapped record refuses the whole open, naming the record.
                verify::all(&txn, &sealer, &rows)?;
                let recovered = keys::recover_pending(&txn, &rows)?;
                txn.commit()?;
                (db, sealer, rows, snapshot.kdf, recovered)
            }
            None => {
                if passphrase.is_empty() {
                    return Err(StoreError::InvalidInput(
                        "refusing to create a store with an empty passphrase".into(),
                    ));
                }
                options.kdf.check()?;
                let mut salt = [0u8; SALT_LEN];
                OsRng.fill_bytes(&mut salt);
                let sealer = Sealer::new(derive_key(passphrase, &salt, &options.kdf)?, salt);
                let rows = RowMac::derive(&sealer)?;
                let db = Builder::new().create(path)?;
                if meta::read_snapshot(&db, path)?.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "store at {} was initialized concurrently; open it again",
                        path.display()
                    )));
                }
                let txn = db.begin_write()?;
                meta::initialize(&txn, &sealer, &salt, &options.kdf)?;
                create_tables(&txn)?;
                txn.commit()?;
                tracing::info!(path = %path.display(), "created encrypted store");
                (db, sealer, rows, options.kdf, Vec::new())
            }
        };
        if !recovered.is_empty() {
            tracing::warn!(
                path = %path.display(),
                keys = ?recovered,
                "keygens interrupted by a restart were marked ERROR"
            );
        }
        Ok(Store {
            inner: Arc::new(Inner {
                db: RwLock::new(db),
                sealer,
                rows,
                path: path.to_path_buf(),
                kdf,
                recovered,
                // A store opened after a crash may hold freed secret pages: compact once.
                compact: AtomicBool::new(true),
            }),
        })
    }

    /// Key ids whose PENDING keygen was turned into ERROR by this `open`, for the caller to
    /// log or report.
    pub fn recovered_pending(&self) -> &[String] {
        &self.inner.recovered
    }

    /// The store file, for diagnostics.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The Argon2id parameters recorded in this store (public, useful for audits).
    pub fn kdf_params(&self) -> KdfParams {
        self.inner.kdf
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    pub(crate) fn compaction_flag(&self) -> &AtomicBool {
        &self.inner.compact
    }

    pub(crate) fn rows(&self) -> &RowMac {
        &self.inner.rows
    }

    /// The database for one transaction. A poisoned lock only means a panic elsewhere while
    /// holding it; redb's own transactions keep the file consistent, so carry on.
    fn db(&self) -> RwLockReadGuard<'_, Database> {
        self.inner.db.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` with the database to itself (no transaction in progress): compaction.
    pub(crate) fn exclusive<T>(&self, f: impl FnOnce(&mut Database) -> T) -> T {
        let mut db = self.inner.db.write().unwrap_or_else(|e| e.into_inner());
        f(&mut db)
    }

    /// Runs `f` in one write transaction; it returns the result and whether to commit (a
    /// `false` aborts, for outcomes that changed nothing). An error aborts.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(T, bool)>,
    ) -> Result<T> {
        let db = self.db();
        let txn = db.begin_write()?;
        let (out, commit) = f(&txn)?;
        if commit {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(out)
    }

    /// Runs `f` on a consistent snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        let db = self.db();
        let txn = db.begin_read()?;
        f(&txn)
    }
}
