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

use cohort_store::BatchJournalOutcome;

fn roots(from: u8, n: usize) -> Vec<[u8; 32]> {
    (0..n).map(|k| [from.wrapping_add(k as u8); 32]).collect()
}

#[test]
fn batches_are_journaled_per_element_and_may_grow_but_never_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let first = roots(1, 4); // elements 10..=13
    {
        let store = open(&path);
        assert_eq!(
            store.journal_check_batch("k", 10, &first).unwrap(),
            BatchJournalOutcome::Extends { known: 0, new: 4 }
        );
        // A check records nothing.
        assert_eq!(store.journal_root("k", 10).unwrap(), None);
        assert_eq!(
            store.journal_sign_batch("k", 10, &first).unwrap(),
            BatchJournalOutcome::Extends { known: 0, new: 4 }
        );
        assert_eq!(store.journal_root("k", 13).unwrap(), Some(first[3]));
        // The same batch again, or a part of it: a retry.
        assert_eq!(
            store.journal_sign_batch("k", 10, &first).unwrap(),
            BatchJournalOutcome::AllKnown
        );
        assert_eq!(
            store.journal_sign_batch("k", 11, &first[1..3]).unwrap(),
            BatchJournalOutcome::AllKnown
        );
        // Re-sent after a lost transaction with more roots at the same offset: allowed.
        let mut grown = first.clone();
        grown.extend(roots(100, 3)); // elements 14..=16
        assert_eq!(
            store.journal_sign_batch("k", 10, &grown).unwrap(),
            BatchJournalOutcome::Extends { known: 4, new: 3 }
        );
        assert_eq!(store.journal_root("k", 16).unwrap(), Some([102; 32]));
    }
    // Across a reopen: a different root at a signed index is refused, and the refusal
    // records nothing (element 17 stays free).
    let store = open(&path);
    let mut changed = roots(1, 4);
    changed[2] = [0xee; 32];
    changed.extend(roots(200, 4)); // would be 14..=17; 14..=16 differ too
    assert_eq!(
        store.journal_sign_batch("k", 10, &changed).unwrap(),
        BatchJournalOutcome::Conflict {
            index: 12,
            existing: first[2],
            batch: [0xee; 32]
        }
    );
    assert_eq!(
        store.journal_check_batch("k", 10, &changed).unwrap(),
        BatchJournalOutcome::Conflict {
            index: 12,
            existing: first[2],
            batch: [0xee; 32]
        }
    );
    assert_eq!(store.journal_root("k", 17).unwrap(), None);
    assert_eq!(store.journal_root("k", 12).unwrap(), Some(first[2]));
    // A batch overlapping the end with a changed root is refused at the first change.
    assert_eq!(
        store
            .journal_sign_batch("k", 16, &[[102; 32], [1; 32]])
            .unwrap(),
        BatchJournalOutcome::Extends { known: 1, new: 1 }
    );
    assert!(matches!(
        store.journal_sign_batch("k", 15, &[[9; 32]]).unwrap(),
        BatchJournalOutcome::Conflict { index: 15, .. }
    ));
    // Other keys are independent; overflowing indices are refused.
    assert_eq!(
        store.journal_sign_batch("k2", 12, &[[0xee; 32]]).unwrap(),
        BatchJournalOutcome::Extends { known: 0, new: 1 }
    );
    assert!(
        store
            .journal_sign_batch("k", u64::MAX, &roots(1, 2))
            .is_err()
    );
}

#[test]
fn racing_batch_writes_never_sign_two_roots_for_one_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    let handles: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            // Every batch covers elements 0..=2; element 0 differs between batches.
            std::thread::spawn(move || {
                store
                    .journal_sign_batch("k", 0, &[[i; 32], [50; 32], [51; 32]])
                    .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let recorded = outcomes
        .iter()
        .filter(|o| matches!(o, BatchJournalOutcome::Extends { .. }))
        .count();
    assert_eq!(recorded, 1, "{outcomes:?}");
    let winner = store.journal_root("k", 0).unwrap().unwrap();
    for o in &outcomes {
        if let BatchJournalOutcome::Conflict {
            index, existing, ..
        } = o
        {
            assert_eq!((*index, *existing), (0, winner));
        }
    }
}
