//! The anti-equivocation signing journal.

mod common;

use cohort_store::JournalOutcome;
use common::*;

#[test]
fn journal_records_and_refuses_conflicts_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        assert_eq!(store.journal_get("k", 10).unwrap(), None);
        assert_eq!(
            store.journal_sign("k", 10, [1; 32]).unwrap(),
            JournalOutcome::Recorded
        );
        assert_eq!(
            store.journal_sign("k", 10, [1; 32]).unwrap(),
            JournalOutcome::SameDigest
        );
        assert_eq!(
            store.journal_sign("k", 10, [2; 32]).unwrap(),
            JournalOutcome::Conflict { existing: [1; 32] }
        );
        // Other slots and other keys are independent.
        assert_eq!(
            store.journal_sign("k", 11, [2; 32]).unwrap(),
            JournalOutcome::Recorded
        );
        assert_eq!(
            store.journal_sign("k2", 10, [2; 32]).unwrap(),
            JournalOutcome::Recorded
        );
    }
    let store = open(&path);
    assert_eq!(store.journal_get("k", 10).unwrap(), Some([1; 32]));
    assert_eq!(
        store.journal_sign("k", 10, [1; 32]).unwrap(),
        JournalOutcome::SameDigest
    );
    assert_eq!(
        store.journal_sign("k", 10, [3; 32]).unwrap(),
        JournalOutcome::Conflict { existing: [1; 32] }
    );
    assert_eq!(store.journal_get("k", 10).unwrap(), Some([1; 32]));
    assert_eq!(store.journal_get("k2", 10).unwrap(), Some([2; 32]));
    assert_eq!(store.journal_get("k", 12).unwrap(), None);
}

#[test]
fn racing_journal_writes_record_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let handles: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || store.journal_sign("k", 1, [i; 32]).unwrap())
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let recorded = outcomes
        .iter()
        .filter(|o| **o == JournalOutcome::Recorded)
        .count();
    assert_eq!(recorded, 1);
    let winner = store.journal_get("k", 1).unwrap().unwrap();
    for o in &outcomes {
        match o {
            JournalOutcome::Recorded => {}
            JournalOutcome::Conflict { existing } => assert_eq!(*existing, winner),
            JournalOutcome::SameDigest => panic!("all digests differ"),
        }
    }
}

#[test]
fn resharing_marks_survive_a_reopen_and_are_taken_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    {
        let store = common::open(&path);
        store.mark_reshare([1; 32], "k", [9; 32]).unwrap();
        store.mark_reshare([2; 32], "other", [8; 32]).unwrap();
    }
    let store = common::open(&path);
    assert_eq!(
        store.take_reshare([1; 32]).unwrap(),
        Some(("k".to_string(), [9; 32]))
    );
    assert_eq!(store.take_reshare([1; 32]).unwrap(), None);
    assert_eq!(store.take_reshare([3; 32]).unwrap(), None);
    assert!(store.mark_reshare([4; 32], "", [0; 32]).is_err());
}
