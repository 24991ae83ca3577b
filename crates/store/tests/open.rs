//! Opening, persistence, the passphrase check and crash recovery.

mod common;

use cohort_store::{KdfParams, KeyStatus, Store, StoreError, StoreOptions};
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn store_is_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Store>();
}

#[test]
fn data_persists_across_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "key-1", session(1), b"share-one");
        store.put_aux([9; 32], b"aux-info").unwrap();
        store.put_identity(&[5; 32]).unwrap();
        store.push_primes(b"primes-a").unwrap();
        store
            .put_presignature("key-1", [3; 32], parties(2), b"presig")
            .unwrap();
        store.journal_sign("key-1", 7, [1; 32]).unwrap();
    }
    // Different options on reopen are ignored: the recorded parameters win.
    let store = Store::open(&path, PASS, StoreOptions::default()).unwrap();
    assert_eq!(store.kdf_params(), fast().kdf);
    assert!(store.recovered_pending().is_empty());
    let rec = store.get_key("key-1").unwrap().unwrap();
    assert_eq!(rec.status, KeyStatus::Ready);
    assert_eq!(rec.public_key.as_deref(), Some(&b"public-key"[..]));
    assert_eq!(rec.parties, parties(3));
    assert_eq!(
        store.load_share("key-1").unwrap().unwrap().as_slice(),
        b"share-one"
    );
    assert_eq!(
        store.get_aux([9; 32]).unwrap().unwrap().as_slice(),
        b"aux-info"
    );
    assert_eq!(*store.get_identity().unwrap().unwrap(), [5; 32]);
    assert_eq!(store.primes_count().unwrap(), 1);
    assert_eq!(store.count_presignatures("key-1").unwrap(), 1);
    assert_eq!(store.journal_get("key-1", 7).unwrap(), Some([1; 32]));
}

#[test]
fn default_kdf_parameters_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = Store::open(&path, PASS, StoreOptions::default()).unwrap();
    let expected = KdfParams {
        m_cost_kib: 65_536,
        t_cost: 3,
        p_cost: 1,
    };
    assert_eq!(store.kdf_params(), expected);
    drop(store);
    // Reopening with the cheap profile still uses the recorded (default) cost. The unlock time
    // is printed for the README figure (`--nocapture`).
    let t = std::time::Instant::now();
    assert_eq!(open(&path).kdf_params(), expected);
    eprintln!(
        "unlock with the default Argon2id profile took {:?}",
        t.elapsed()
    );
}

#[test]
fn wrong_passphrase_fails_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "key-1", session(1), b"share-one");
        store
            .begin_keygen("key-2", session(2), 2, parties(3))
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, b"not the passphrase", fast()).unwrap_err();
    assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("wrong passphrase for store at {}", path.display())
    );
    assert!(!format!("{err:?}").contains("not the passphrase"));
    assert_eq!(std::fs::read(&path).unwrap(), before, "file was modified");

    // The right passphrase still works, and only then is the PENDING key recovered.
    let store = open(&path);
    assert_eq!(store.recovered_pending(), ["key-2".to_owned()]);
}

#[test]
fn empty_passphrase_and_bad_parameters_are_refused_on_create() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    assert!(matches!(
        Store::open(&path, b"", fast()),
        Err(StoreError::InvalidInput(_))
    ));
    let bad = StoreOptions {
        kdf: KdfParams {
            m_cost_kib: 1,
            t_cost: 1,
            p_cost: 1,
        },
    };
    assert!(matches!(
        Store::open(&path, PASS, bad),
        Err(StoreError::Kdf(_))
    ));
}

#[test]
fn foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("other");
            txn.open_table(def).unwrap().insert("x", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = Store::open(&path, PASS, fast()).unwrap_err();
    assert!(matches!(err, StoreError::Format { .. }), "{err:?}");
}

const CRASH_ENV: &str = "COHORT_STORE_CRASH_CHILD_DIR";

/// Child half of the crash test: does nothing unless launched by it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let store = open(&dir.join("node.redb"));
    ready_key(&store, "ready", session(1), b"share-ready");
    store
        .begin_keygen("pending", session(2), 2, parties(3))
        .unwrap();
    std::fs::write(dir.join("child-done"), b"1").unwrap();
    std::process::abort();
}

#[test]
fn crash_leaves_a_recoverable_store_and_wrong_passphrase_still_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--test-threads=1"])
        .env(CRASH_ENV, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    assert!(dir.path().join("child-done").exists(), "child did not run");
    // The file was not closed: a plain read-only open would need recovery.
    assert!(matches!(
        redb::ReadOnlyDatabase::open(&path),
        Err(redb::DatabaseError::RepairAborted)
    ));

    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, b"wrong", fast()).unwrap_err();
    assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "file was modified");

    let store = open(&path);
    assert_eq!(store.recovered_pending(), ["pending".to_owned()]);
    let rec = store.get_key("pending").unwrap().unwrap();
    assert_eq!(rec.status, KeyStatus::Error);
    assert_eq!(
        store.load_share("ready").unwrap().unwrap().as_slice(),
        b"share-ready"
    );
}
