//! Key records: keygen compare-and-set rules, restart recovery, races, deletion, resharing.

mod common;

use cohort_store::{BeginKeygen, KeyStatus, StoreError};
use common::*;
use std::sync::{Arc, Barrier};

#[test]
fn keygen_compare_and_set_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    assert_eq!(store.get_key("k").unwrap(), None);
    assert_eq!(store.load_share("k").unwrap(), None);

    let BeginKeygen::Started(rec) = store.begin_keygen("k", session(1), 2, parties(3)).unwrap()
    else {
        panic!("expected Started");
    };
    assert_eq!(rec.status, KeyStatus::Pending);
    assert_eq!(store.get_key("k").unwrap().unwrap(), rec);
    assert!(matches!(
        store.begin_keygen("k", session(2), 2, parties(3)).unwrap(),
        BeginKeygen::AlreadyPending(r) if r.key_session_id == session(1)
    ));
    assert_eq!(store.load_share("k").unwrap(), None, "PENDING has no share");

    // Wrong session is refused for finish and fail.
    let err = store
        .finish_keygen("k", session(2), b"pk", b"share")
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("finish_keygen"), "{err}");
    assert!(matches!(
        store.fail_keygen("k", session(2), "x"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.finish_keygen("missing", session(1), b"pk", b"share"),
        Err(StoreError::Conflict(_))
    ));

    let rec = store
        .finish_keygen("k", session(1), b"pk", b"share")
        .unwrap();
    assert_eq!(rec.status, KeyStatus::Ready);
    assert_eq!(rec.public_key.as_deref(), Some(&b"pk"[..]));
    assert_eq!(store.load_share("k").unwrap().unwrap().as_slice(), b"share");
    assert!(matches!(
        store.begin_keygen("k", session(3), 2, parties(3)).unwrap(),
        BeginKeygen::AlreadyReady(r) if r == rec
    ));
    // READY cannot be finished or failed again.
    assert!(matches!(
        store.finish_keygen("k", session(1), b"pk2", b"share2"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.fail_keygen("k", session(1), "late"),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.load_share("k").unwrap().unwrap().as_slice(), b"share");

    // Failure path: PENDING → ERROR, then the key id can be generated again.
    store.begin_keygen("e", session(4), 1, parties(1)).unwrap();
    let rec = store
        .fail_keygen("e", session(4), "party 3 absent")
        .unwrap();
    assert_eq!(rec.status, KeyStatus::Error);
    assert_eq!(rec.error.as_deref(), Some("party 3 absent"));
    assert!(matches!(
        store.begin_keygen("e", session(5), 1, parties(1)).unwrap(),
        BeginKeygen::Started(r) if r.key_session_id == session(5) && r.error.is_none()
    ));

    let ids: Vec<_> = store
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|r| r.key_id)
        .collect();
    assert_eq!(ids, ["e", "k"]);
}

#[test]
fn invalid_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let bad = |r: Result<BeginKeygen, StoreError>| matches!(r, Err(StoreError::InvalidInput(_)));
    assert!(bad(store.begin_keygen("", session(1), 1, parties(1))));
    assert!(bad(store.begin_keygen(
        &"x".repeat(300),
        session(1),
        1,
        parties(1)
    )));
    assert!(bad(store.begin_keygen("k", session(1), 0, parties(3))));
    assert!(bad(store.begin_keygen("k", session(1), 4, parties(3))));
    assert!(bad(store.begin_keygen("k", session(1), 1, vec![])));
    assert!(bad(store.begin_keygen(
        "k",
        session(1),
        1,
        vec![party(1), party(1)]
    )));
    assert!(store.list_keys().unwrap().is_empty());
}

#[test]
fn pending_becomes_error_on_reopen_and_keygen_can_begin_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        store.begin_keygen("p", session(1), 2, parties(3)).unwrap();
        ready_key(&store, "r", session(2), b"share");
        assert!(store.recovered_pending().is_empty());
    }
    let store = open(&path);
    assert_eq!(store.recovered_pending(), ["p".to_owned()]);
    let rec = store.get_key("p").unwrap().unwrap();
    assert_eq!(rec.status, KeyStatus::Error);
    assert_eq!(
        rec.error.as_deref(),
        Some("interrupted: the node restarted during keygen")
    );
    assert_eq!(
        store.get_key("r").unwrap().unwrap().status,
        KeyStatus::Ready
    );
    // The old session can no longer finish.
    assert!(matches!(
        store.finish_keygen("p", session(1), b"pk", b"s"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.begin_keygen("p", session(3), 2, parties(3)).unwrap(),
        BeginKeygen::Started(_)
    ));
    drop(store);
    // The new PENDING attempt is interrupted too; after that nothing is left to recover.
    let store = open(&path);
    assert_eq!(store.recovered_pending(), ["p".to_owned()]);
    drop(store);
    assert!(open(&path).recovered_pending().is_empty());
}

#[test]
fn sixteen_racing_begin_keygen_calls_start_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16u8)
        .map(|i| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .begin_keygen("race", session(i), 2, parties(3))
                    .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let started: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            BeginKeygen::Started(r) => Some(r.key_session_id),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 1);
    let pending = outcomes
        .iter()
        .filter(|o| matches!(o, BeginKeygen::AlreadyPending(r) if r.key_session_id == started[0]))
        .count();
    assert_eq!(pending, 15);
    assert_eq!(
        store.get_key("race").unwrap().unwrap().key_session_id,
        started[0]
    );
}

#[test]
fn delete_tombstones_and_removes_share_and_presignatures() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = open(&path);
    ready_key(&store, "d", session(1), b"share");
    ready_key(&store, "keep", session(2), b"other");
    for i in 0..3u8 {
        store
            .put_presignature("d", [i; 32], parties(2), b"presig")
            .unwrap();
    }
    store
        .put_presignature("keep", [9; 32], parties(2), b"presig")
        .unwrap();

    assert!(store.delete_key("d").unwrap());
    assert_eq!(store.get_key("d").unwrap(), None);
    assert!(store.deleted_at_ms("d").unwrap().is_some());
    assert!(matches!(
        store.load_share("d"),
        Err(cohort_store::StoreError::Tombstoned { .. })
    ));
    assert_eq!(store.count_presignatures("d").unwrap(), 0);
    assert_eq!(store.take_presignature("d", [0; 32]).unwrap(), None);
    assert!(!store.delete_key("d").unwrap(), "second delete is a no-op");
    assert!(!store.delete_key("never").unwrap());
    assert_eq!(store.list_keys().unwrap().len(), 1);
    // The other key is untouched.
    assert_eq!(store.count_presignatures("keep").unwrap(), 1);
    assert_eq!(
        store.load_share("keep").unwrap().unwrap().as_slice(),
        b"other"
    );
    assert!(matches!(
        store.finish_keygen("d", session(1), b"pk", b"s"),
        Err(StoreError::Conflict(_))
    ));
    drop(store);

    // The tombstone survives a restart, and the key id can be generated again.
    let store = open(&path);
    assert_eq!(store.get_key("d").unwrap(), None);
    assert!(store.deleted_at_ms("d").unwrap().is_some());
    ready_key(&store, "d", session(3), b"new-share");
    assert_eq!(store.deleted_at_ms("d").unwrap(), None);
    assert_eq!(
        store.load_share("d").unwrap().unwrap().as_slice(),
        b"new-share"
    );
    // Presignatures discarded by the delete stay unusable forever.
    assert!(matches!(
        store.put_presignature("d", [0; 32], parties(2), b"presig"),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn replace_share_is_compare_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    ready_key(&store, "k", session(1), b"old-share");
    store
        .put_presignature("k", [7; 32], parties(2), b"presig")
        .unwrap();

    assert!(matches!(
        store.replace_share("k", session(9), session(2), 3, parties(4), b"new"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.replace_share("missing", session(1), session(2), 3, parties(4), b"new"),
        Err(StoreError::Conflict(_))
    ));
    let rec = store
        .replace_share("k", session(1), session(2), 3, parties(4), b"new-share")
        .unwrap();
    assert_eq!(rec.key_session_id, session(2));
    assert_eq!(rec.threshold, 3);
    assert_eq!(rec.parties, parties(4));
    assert_eq!(rec.public_key.as_deref(), Some(&b"public-key"[..]));
    assert_eq!(
        store.load_share("k").unwrap().unwrap().as_slice(),
        b"new-share"
    );
    assert_eq!(
        store.count_presignatures("k").unwrap(),
        0,
        "old presignatures dropped"
    );
    // The old session is stale now.
    assert!(matches!(
        store.replace_share("k", session(1), session(3), 3, parties(4), b"x"),
        Err(StoreError::Conflict(_))
    ));
    // A PENDING key cannot be replaced.
    store.begin_keygen("p", session(5), 2, parties(3)).unwrap();
    assert!(matches!(
        store.replace_share("p", session(5), session(6), 2, parties(3), b"x"),
        Err(StoreError::Conflict(_))
    ));
}
