//! Presignatures are single use, across restarts.

mod common;

use cohort_store::StoreError;
use common::*;

#[test]
fn presignature_is_taken_once_and_its_id_is_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let id = [42; 32];
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), b"share");
        store
            .put_presignature("k", id, parties(2), b"presig-bytes")
            .unwrap();
        // Storing the same id twice is refused.
        assert!(matches!(
            store.put_presignature("k", id, parties(2), b"other"),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.find_presignature("k", &parties(2)).unwrap(), Some(id));
        assert_eq!(
            store
                .take_presignature("k", id)
                .unwrap()
                .unwrap()
                .as_slice(),
            b"presig-bytes"
        );
        assert_eq!(store.take_presignature("k", id).unwrap(), None);
        assert_eq!(store.find_presignature("k", &parties(2)).unwrap(), None);
        assert_eq!(store.count_presignatures("k").unwrap(), 0);
        let err = store
            .put_presignature("k", id, parties(2), b"presig-bytes")
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(err.to_string().contains("already used"), "{err}");
    }
    // Still refused after a restart.
    let store = open(&path);
    assert_eq!(store.take_presignature("k", id).unwrap(), None);
    assert!(matches!(
        store.put_presignature("k", id, parties(2), b"presig-bytes"),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn presignatures_persist_and_match_exact_signer_lists() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let ab = vec![party(1), party(2)];
    let ba = vec![party(2), party(1)];
    let ac = vec![party(1), party(3)];
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), b"share");
        ready_key(&store, "k2", session(2), b"share");
        store
            .put_presignature("k", [1; 32], ab.clone(), b"p1")
            .unwrap();
        store
            .put_presignature("k", [2; 32], ab.clone(), b"p2")
            .unwrap();
        store
            .put_presignature("k", [3; 32], ac.clone(), b"p3")
            .unwrap();
        store
            .put_presignature("k2", [4; 32], ab.clone(), b"p4")
            .unwrap();
    }
    let store = open(&path);
    assert_eq!(store.count_presignatures("k").unwrap(), 3);
    assert_eq!(store.count_presignatures_for("k", &ab).unwrap(), 2);
    assert_eq!(store.count_presignatures_for("k", &ac).unwrap(), 1);
    assert_eq!(store.find_presignature("k", &ba).unwrap(), None);
    assert_eq!(store.find_presignature("k", &[party(1)]).unwrap(), None);
    assert_eq!(store.find_presignature("k", &ac).unwrap(), Some([3; 32]));
    assert_eq!(store.find_presignature("k2", &ab).unwrap(), Some([4; 32]));
    // A presignature is only found under its own key.
    assert_eq!(store.take_presignature("k2", [1; 32]).unwrap(), None);

    let first = store.find_presignature("k", &ab).unwrap().unwrap();
    store.take_presignature("k", first).unwrap().unwrap();
    let second = store.find_presignature("k", &ab).unwrap().unwrap();
    assert_ne!(first, second);

    assert_eq!(store.discard_presignatures("k").unwrap(), 2);
    assert_eq!(store.discard_presignatures("k").unwrap(), 0);
    assert_eq!(store.count_presignatures("k").unwrap(), 0);
    assert_eq!(store.count_presignatures("k2").unwrap(), 1);
    // Discarded ids count as used.
    assert!(matches!(
        store.put_presignature("k", [3; 32], ac, b"p3"),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn presignature_needs_a_ready_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    assert!(matches!(
        store.put_presignature("missing", [1; 32], parties(2), b"p"),
        Err(StoreError::Conflict(_))
    ));
    store.begin_keygen("p", session(1), 2, parties(3)).unwrap();
    assert!(matches!(
        store.put_presignature("p", [1; 32], parties(2), b"p"),
        Err(StoreError::Conflict(_))
    ));
    ready_key(&store, "k", session(2), b"share");
    assert!(matches!(
        store.put_presignature("k", [1; 32], vec![party(1), party(1)], b"p"),
        Err(StoreError::InvalidInput(_))
    ));
    store
        .put_presignature("k", [1; 32], parties(2), b"p")
        .unwrap();
}

#[test]
fn concurrent_takes_hand_out_a_presignature_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    ready_key(&store, "k", session(1), b"share");
    store
        .put_presignature("k", [8; 32], parties(2), b"p")
        .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || store.take_presignature("k", [8; 32]).unwrap().is_some())
        })
        .collect();
    let got = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|x| *x)
        .count();
    assert_eq!(got, 1);
}
