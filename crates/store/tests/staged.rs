//! Staged shares of a resharing: their own record type, surviving restarts, never a key.

mod common;

use cohort_store::{KeyStatus, StagedShare};
use common::*;

fn staged(key_id: &str, sess: u8) -> StagedShare {
    StagedShare {
        key_id: key_id.into(),
        session: session(sess),
        threshold: 3,
        parties: parties(4),
        public_key: b"public-key".to_vec(),
        staged_at_ms: 0,
    }
}

#[test]
fn a_staged_share_survives_a_restart_and_is_not_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        store.put_staged(&staged("r", 9), b"new-share").unwrap();
    }
    // A restart (PENDING recovery runs at open) keeps the staged share for the commit.
    let store = open(&path);
    assert!(store.recovered_pending().is_empty());
    assert!(store.get_key("r").unwrap().is_none());
    assert!(store.list_keys().unwrap().is_empty());
    let (facts, share) = store.load_staged("r", session(9)).unwrap().unwrap();
    assert_eq!(share.as_slice(), b"new-share");
    assert_eq!(facts.threshold, 3);
    assert_eq!(facts.parties, parties(4));
    assert_eq!(facts.public_key, b"public-key");
    assert!(facts.staged_at_ms > 0);
    assert_eq!(store.get_staged("r", session(9)).unwrap(), Some(facts));
    assert_eq!(store.list_staged().unwrap().len(), 1);
}

#[test]
fn staged_shares_are_scoped_by_key_and_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    store.put_staged(&staged("r", 1), b"one").unwrap();
    assert!(store.get_staged("r", session(2)).unwrap().is_none());
    assert!(store.get_staged("rr", session(1)).unwrap().is_none());
    assert!(store.load_staged("other", session(1)).unwrap().is_none());
    // A session stages once.
    let e = store.put_staged(&staged("r", 1), b"again").unwrap_err();
    assert!(e.to_string().contains("already staged"), "{e}");
    store.put_staged(&staged("r", 2), b"two").unwrap();
    assert_eq!(
        store
            .load_staged("r", session(2))
            .unwrap()
            .unwrap()
            .1
            .as_slice(),
        b"two"
    );
}

#[test]
fn discarding_a_staged_share_is_idempotent_and_leaves_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let key = ready_key(&store, "r", session(1), b"old-share");
    store.put_staged(&staged("r", 7), b"new-share").unwrap();
    assert!(store.discard_staged("r", session(7)).unwrap());
    assert!(!store.discard_staged("r", session(7)).unwrap());
    assert!(store.load_staged("r", session(7)).unwrap().is_none());
    let rec = store.get_key("r").unwrap().unwrap();
    assert_eq!(rec, key);
    assert_eq!(rec.status, KeyStatus::Ready);
    assert_eq!(
        store.load_share("r").unwrap().unwrap().as_slice(),
        b"old-share"
    );
}

#[test]
fn a_staged_share_is_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        store
            .put_staged(&staged("r", 3), b"STAGED-SECRET-SHARE")
            .unwrap();
    }
    let raw = std::fs::read(&path).unwrap();
    assert!(!contains(&raw, b"STAGED-SECRET-SHARE"));
}

#[test]
fn staging_refuses_a_bad_committee() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let mut s = staged("r", 1);
    s.threshold = 9;
    assert!(store.put_staged(&s, b"x").is_err());
    assert!(store.get_staged("r", session(1)).unwrap().is_none());
}
