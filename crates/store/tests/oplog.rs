//! The manager's operation log.

use cohort_store::{OperationLog, StoreError};

fn sid(n: u8) -> [u8; 32] {
    [n; 32]
}

#[test]
fn operation_log_put_get_list_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ops.redb");
    {
        let log = OperationLog::open(&path).unwrap();
        assert!(log.is_empty().unwrap());
        assert_eq!(log.get(sid(1)).unwrap(), None);
        for i in 1..=5u8 {
            log.put(sid(i), format!(r#"{{"op":"keygen","n":{i}}}"#).as_bytes())
                .unwrap();
        }
        // Updating a session replaces its record but keeps its place.
        log.put(sid(2), br#"{"op":"keygen","state":"done"}"#)
            .unwrap();
    }
    let log = OperationLog::open(&path).unwrap();
    assert_eq!(log.len().unwrap(), 5);
    let two = log.get(sid(2)).unwrap().unwrap();
    assert_eq!(two.record_json, br#"{"op":"keygen","state":"done"}"#);
    assert!(two.updated_at_ms >= two.created_at_ms);

    let recent: Vec<_> = log
        .list_recent(3)
        .unwrap()
        .into_iter()
        .map(|e| e.session_id)
        .collect();
    assert_eq!(recent, [sid(5), sid(4), sid(3)]);
    let all: Vec<_> = log
        .list_recent(100)
        .unwrap()
        .into_iter()
        .map(|e| e.session_id)
        .collect();
    assert_eq!(all, [sid(5), sid(4), sid(3), sid(2), sid(1)]);
    assert!(log.list_recent(0).unwrap().is_empty());

    log.put(sid(6), b"{}").unwrap();
    assert_eq!(log.list_recent(1).unwrap()[0].session_id, sid(6));
}

#[test]
fn operation_log_rejects_invalid_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = OperationLog::open(dir.path().join("ops.redb")).unwrap();
    assert!(matches!(
        log.put(sid(1), b"{not json"),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(log.is_empty().unwrap());
}

#[test]
fn operation_log_prunes_the_oldest_beyond_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let log = OperationLog::open(dir.path().join("ops.redb")).unwrap();
    for i in 1..=10u8 {
        log.put(sid(i), b"{}").unwrap();
    }
    assert_eq!(log.prune_to(20).unwrap(), 0);
    assert_eq!(log.prune_to(4).unwrap(), 6);
    assert_eq!(log.len().unwrap(), 4);
    assert_eq!(log.get(sid(6)).unwrap(), None);
    let kept: Vec<_> = log
        .list_recent(100)
        .unwrap()
        .into_iter()
        .map(|e| e.session_id)
        .collect();
    assert_eq!(kept, [sid(10), sid(9), sid(8), sid(7)]);
    // New entries still go after the kept ones.
    log.put(sid(11), b"{}").unwrap();
    assert_eq!(log.list_recent(1).unwrap()[0].session_id, sid(11));
    assert_eq!(log.prune_to(0).unwrap(), 5);
    assert!(log.is_empty().unwrap());
}
