//! Bound two-step deletes: a delete names the sharing, tombstones the share (sealed, refused
//! for every use, listed), and the sweep erases it after the retention, from the file itself.

mod common;

use cohort_store::{StoreError, TombstoneOutcome};
use common::*;
use redb::{Database, ReadableDatabase, TableDefinition};

const SHARES: TableDefinition<&str, &[u8]> = TableDefinition::new("shares");

#[test]
fn delete_tombstones_then_erases_the_share_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), &[0x5a; 3000]);
        ready_key(&store, "other", session(3), b"other share");
        store
            .put_presignature("k", [9; 32], parties(2), b"p")
            .unwrap();
    }
    let sealed = {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(SHARES).unwrap();
        t.get("k").unwrap().unwrap().value().to_vec()
    };
    assert!(sealed.len() > 3000);
    let store = open(&path);

    // Bound: a delete naming another sharing is refused and changes nothing.
    assert_eq!(
        store.tombstone_key("k", session(2), 60_000).unwrap(),
        TombstoneOutcome::OtherSharing { held: session(1) }
    );
    assert!(store.load_share("k").unwrap().is_some());
    assert_eq!(
        store.tombstone_key("none", session(1), 60_000).unwrap(),
        TombstoneOutcome::NotFound
    );

    let TombstoneOutcome::Tombstoned(t) = store.tombstone_key("k", session(1), 60_000).unwrap()
    else {
        panic!("not tombstoned");
    };
    assert_eq!(t.key_session_id, session(1));
    assert_eq!(t.erase_after_ms, t.deleted_at_ms + 60_000);
    // Refused for every use, listed as tombstoned.
    assert!(store.get_key("k").unwrap().is_none());
    assert!(matches!(
        store.load_share("k").unwrap_err(),
        StoreError::Tombstoned { ref key_id } if key_id == "k"
    ));
    assert_eq!(store.take_presignature("k", [9; 32]).unwrap(), None);
    assert!(
        store
            .put_presignature("k", [8; 32], parties(2), b"p")
            .is_err()
    );
    assert_eq!(store.list_tombstones().unwrap(), vec![t.clone()]);
    assert_eq!(store.tombstones_of("k").unwrap(), vec![t.clone()]);
    // A redelivered delete is idempotent.
    assert_eq!(
        store.tombstone_key("k", session(1), 60_000).unwrap(),
        TombstoneOutcome::AlreadyDeleted(Some(t.clone()))
    );

    // Before the retention ends the sweep keeps it (sealed, still in the file).
    let early = store.erase_expired_at(t.erase_after_ms - 1).unwrap();
    assert!(early.erased.is_empty());
    assert_eq!(store.list_tombstones().unwrap().len(), 1);
    // The tombstone keeps the share exactly as sealed (hex in its JSON record).
    let hex_sealed = hex::encode(&sealed);
    assert!(
        contains(&std::fs::read(&path).unwrap(), hex_sealed.as_bytes()),
        "kept sealed during retention"
    );

    // After it, erased: gone from the table and from the file's bytes.
    let report = store.erase_expired_at(t.erase_after_ms).unwrap();
    assert_eq!(report.erased, vec![t.clone()]);
    assert!(report.compacted);
    assert!(store.list_tombstones().unwrap().is_empty());
    let raw = std::fs::read(&path).unwrap();
    assert!(
        !contains(&raw, &sealed[..64]),
        "sealed share bytes remain in the file"
    );
    assert!(!contains(&raw, &sealed[sealed.len() - 64..]));
    assert!(
        !contains(&raw, &hex_sealed.as_bytes()[..128]),
        "hex copy remains"
    );
    // The rest of the store is intact.
    assert_eq!(
        store.load_share("other").unwrap().unwrap().as_slice(),
        b"other share"
    );
    assert_eq!(
        store.tombstone_key("k", session(1), 60_000).unwrap(),
        TombstoneOutcome::AlreadyDeleted(None)
    );
    drop(store);
    let raw = std::fs::read(&path).unwrap();
    assert!(!contains(&raw, &sealed[..64]));
    assert!(!contains(&raw, &hex_sealed.as_bytes()[..128]));
    let store = open(&path);
    assert!(store.list_tombstones().unwrap().is_empty());
}

#[test]
fn an_immediate_delete_is_compacted_away_by_the_next_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), &[0x33; 2000]);
    }
    let sealed = {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(SHARES).unwrap();
        t.get("k").unwrap().unwrap().value().to_vec()
    };
    let store = open(&path);
    store.erase_expired().unwrap();
    assert!(store.delete_key("k").unwrap());
    let report = store.erase_expired().unwrap();
    assert!(report.erased.is_empty() && report.compacted);
    assert!(!contains(&std::fs::read(&path).unwrap(), &sealed[..64]));
    // Nothing removed since: no compaction.
    assert!(!store.erase_expired().unwrap().compacted);
}
