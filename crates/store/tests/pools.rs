//! Prime pool, aux info and node identity.

mod common;

use cohort_store::StoreError;
use common::*;

#[test]
fn primes_pop_in_fifo_order_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        assert_eq!(store.pop_primes().unwrap(), None);
        assert_eq!(store.push_primes(b"p0").unwrap(), 1);
        assert_eq!(store.push_primes(b"p1").unwrap(), 2);
        assert_eq!(store.push_primes(b"p2").unwrap(), 3);
        assert_eq!(store.pop_primes().unwrap().unwrap().as_slice(), b"p0");
    }
    let store = open(&path);
    assert_eq!(store.primes_count().unwrap(), 2);
    assert_eq!(store.push_primes(b"p3").unwrap(), 3);
    for want in [&b"p1"[..], b"p2", b"p3"] {
        assert_eq!(store.pop_primes().unwrap().unwrap().as_slice(), want);
    }
    assert_eq!(store.pop_primes().unwrap(), None);
    assert_eq!(store.primes_count().unwrap(), 0);
}

#[test]
fn aux_info_round_trips_and_can_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir));
    assert_eq!(store.get_aux([1; 32]).unwrap(), None);
    store.put_aux([1; 32], b"aux-v1").unwrap();
    store.put_aux([2; 32], b"aux-other").unwrap();
    assert_eq!(
        store.get_aux([1; 32]).unwrap().unwrap().as_slice(),
        b"aux-v1"
    );
    store.put_aux([1; 32], b"aux-v2").unwrap();
    assert_eq!(
        store.get_aux([1; 32]).unwrap().unwrap().as_slice(),
        b"aux-v2"
    );
    assert_eq!(
        store.get_aux([2; 32]).unwrap().unwrap().as_slice(),
        b"aux-other"
    );
}

#[test]
fn identity_is_kept_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        assert_eq!(store.get_identity().unwrap(), None);
        store.put_identity(&[7; 32]).unwrap();
        store.put_identity(&[7; 32]).unwrap();
        let err = store.put_identity(&[8; 32]).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    let store = open(&path);
    assert_eq!(*store.get_identity().unwrap().unwrap(), [7; 32]);
}
