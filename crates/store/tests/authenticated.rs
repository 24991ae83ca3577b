//! Authenticated records: a sealed share swapped in from an older sharing, and an edited or
//! moved safety-table row, are refused at load with an error naming the record.

mod common;

use cohort_store::{Store, StoreError};
use common::*;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

const SHARES: TableDefinition<&str, &[u8]> = TableDefinition::new("shares");
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const JOURNAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("journal");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

fn scoped(key_id: &str, suffix: &[u8]) -> Vec<u8> {
    let mut out = (key_id.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(suffix);
    out
}

fn raw_share(path: &Path, key_id: &str) -> Vec<u8> {
    let db = Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(SHARES).unwrap();
    table.get(key_id).unwrap().unwrap().value().to_vec()
}

/// Runs `f` on the store file with redb directly (the store must be closed).
fn tamper(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    f(&txn);
    txn.commit().unwrap();
}

#[test]
fn a_share_of_an_older_sharing_swapped_back_in_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), b"old share");
    }
    let old = raw_share(&path, "k");
    {
        let store = open(&path);
        store
            .replace_share("k", session(1), session(2), 2, parties(3), b"new share")
            .unwrap();
    }
    tamper(&path, |txn| {
        txn.open_table(SHARES)
            .unwrap()
            .insert("k", old.as_slice())
            .unwrap();
    });
    let e = Store::open(&path, PASS, fast()).unwrap_err();
    assert!(
        matches!(&e, StoreError::Corrupt { table: "shares", record } if record == "k"),
        "{e}"
    );
    assert!(e.to_string().contains("shares/k"), "{e}");
}

#[test]
fn an_edited_journal_row_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        store.journal_sign("k", 7, [1; 32]).unwrap();
        store.journal_sign("k", 8, [2; 32]).unwrap();
    }
    // Rewrite slot 7's digest in place, keeping the rest of the row.
    tamper(&path, |txn| {
        let mut t = txn.open_table(JOURNAL).unwrap();
        let key = scoped("k", &7u64.to_be_bytes());
        let mut row = t.get(key.as_slice()).unwrap().unwrap().value().to_vec();
        assert_eq!(&row[..32], &[1; 32], "the row starts with the digest");
        row[..32].copy_from_slice(&[9; 32]);
        t.insert(key.as_slice(), row.as_slice()).unwrap();
    });
    let e = Store::open(&path, PASS, fast()).unwrap_err();
    assert!(
        matches!(&e, StoreError::Unauthentic { table: "journal", record } if record.starts_with("00016b")),
        "{e}"
    );
    assert!(e.to_string().contains("failed authentication"), "{e}");
}

#[test]
fn a_journal_row_moved_to_another_slot_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        store.journal_sign("k", 8, [2; 32]).unwrap();
    }
    tamper(&path, |txn| {
        let mut t = txn.open_table(JOURNAL).unwrap();
        let from = scoped("k", &8u64.to_be_bytes());
        let to = scoped("k", &7u64.to_be_bytes());
        let row = t.get(from.as_slice()).unwrap().unwrap().value().to_vec();
        t.insert(to.as_slice(), row.as_slice()).unwrap();
    });
    let e = Store::open(&path, PASS, fast()).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Unauthentic {
                table: "journal",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn an_edited_key_record_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), b"share");
    }
    tamper(&path, |txn| {
        let mut t = txn.open_table(KEYS).unwrap();
        let row = t.get("k").unwrap().unwrap().value().to_vec();
        let text = String::from_utf8_lossy(&row).to_string();
        assert!(text.contains(r#""threshold":2"#), "{text}");
        let edited = text.replacen(r#""threshold":2"#, r#""threshold":1"#, 1);
        t.insert("k", edited.as_bytes()).unwrap();
    });
    let e = Store::open(&path, PASS, fast()).unwrap_err();
    assert!(
        matches!(&e, StoreError::Unauthentic { table: "keys", record } if record == "k"),
        "{e}"
    );
}

#[test]
fn an_untouched_store_reopens_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), b"share");
        store.journal_sign("k", 1, [3; 32]).unwrap();
        store
            .journal_sign_batch("k", 0, &[[4; 32], [5; 32]])
            .unwrap();
        store
            .put_presignature("k", [6; 32], parties(2), b"p")
            .unwrap();
        store.mark_reshare([7; 32], "k", session(1)).unwrap();
    }
    let store = open(&path);
    assert_eq!(store.load_share("k").unwrap().unwrap().as_slice(), b"share");
    assert_eq!(store.journal_get("k", 1).unwrap(), Some([3; 32]));
    assert_eq!(store.journal_root("k", 1).unwrap(), Some([5; 32]));
    assert_eq!(
        store.find_presignature("k", &parties(2)).unwrap(),
        Some([6; 32])
    );
    assert_eq!(
        store.take_reshare([7; 32]).unwrap(),
        Some(("k".to_owned(), session(1)))
    );
}

#[test]
fn a_store_of_the_old_format_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    drop(open(&path));
    tamper(&path, |txn| {
        txn.open_table(META)
            .unwrap()
            .insert("format", 1u32.to_le_bytes().as_slice())
            .unwrap();
    });
    let e = Store::open(&path, PASS, fast()).unwrap_err();
    assert!(matches!(e, StoreError::Format { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("version 1") && msg.contains("no migration"),
        "{msg}"
    );
}
