//! Encryption at rest: no plaintext in the file, and sealed blobs are bound to their record.

mod common;

use cohort_store::StoreError;
use common::*;
use redb::{ReadableTable, TableDefinition};

const SHARES: TableDefinition<&str, &[u8]> = TableDefinition::new("shares");
const AUX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("aux");
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");

/// A distinctive 64-byte plaintext that cannot occur by chance.
fn marker(tag: u8) -> Vec<u8> {
    (0..64u8).map(|i| i.wrapping_mul(37) ^ tag ^ 0xA5).collect()
}

#[test]
fn secret_plaintexts_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let share = marker(1);
    let presig = marker(2);
    let aux = marker(3);
    let primes = marker(4);
    let identity: [u8; 32] = marker(5)[..32].try_into().unwrap();
    {
        let store = open(&path);
        ready_key(&store, "k", session(1), &share);
        store
            .put_presignature("k", [1; 32], parties(2), &presig)
            .unwrap();
        store.put_aux([2; 32], &aux).unwrap();
        store.push_primes(&primes).unwrap();
        store.put_identity(&identity).unwrap();
        // Reading secrets back must not write them either.
        assert_eq!(store.load_share("k").unwrap().unwrap().as_slice(), share);
        assert_eq!(store.get_aux([2; 32]).unwrap().unwrap().as_slice(), aux);
        // The public key is stored unsealed on purpose.
        assert!(store.get_key("k").unwrap().unwrap().public_key.is_some());
    }
    let raw = std::fs::read(&path).unwrap();
    assert!(
        contains(&raw, hex::encode(b"public-key").as_bytes()),
        "sanity: the grep works on public data"
    );
    for (name, secret) in [
        ("share", &share[..]),
        ("presignature", &presig[..]),
        ("aux", &aux[..]),
        ("primes", &primes[..]),
        ("identity", &identity[..]),
        ("passphrase", PASS),
    ] {
        assert!(
            !contains(&raw, secret),
            "{name} plaintext found in the file"
        );
        // Not even a 16-byte fragment.
        assert!(
            !contains(&raw, &secret[..16]),
            "{name} fragment found in the file"
        );
    }
}

#[test]
fn sealed_blob_moved_to_another_record_fails_with_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "a", session(1), &marker(1));
        ready_key(&store, "b", session(2), &marker(2));
        store.put_aux([1; 32], b"aux-one").unwrap();
        store.put_aux([2; 32], b"aux-two").unwrap();
    }
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut shares = txn.open_table(SHARES).unwrap();
            let blob = shares.get("a").unwrap().unwrap().value().to_vec();
            shares.insert("b", blob.as_slice()).unwrap();
            let mut aux = txn.open_table(AUX).unwrap();
            let blob = aux
                .get([1u8; 32].as_slice())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            aux.insert([2u8; 32].as_slice(), blob.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    // The open checks every READY share under its record: the moved one refuses the open.
    let err = cohort_store::Store::open(&path, PASS, fast()).unwrap_err();
    match &err {
        StoreError::Corrupt { table, record } => {
            assert_eq!(*table, "shares");
            assert_eq!(record, "b");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let text = format!("{err} {err:?}");
    assert!(text.contains("shares/b"), "{text}");
    assert!(!text.contains(&format!("{:?}", marker(1))));

    // Put b's own share back (copied from a): still refused. Then delete b by hand so the
    // store opens, and check the moved aux blob on read.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(SHARES).unwrap().remove("b").unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        cohort_store::Store::open(&path, PASS, fast()),
        Err(StoreError::Corrupt {
            table: "shares",
            ..
        })
    ));
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(KEYS).unwrap().remove("b").unwrap();
        txn.commit().unwrap();
    }
    let store = open(&path);
    assert_eq!(
        store.load_share("a").unwrap().unwrap().as_slice(),
        marker(1)
    );
    assert_eq!(
        store.get_aux([1; 32]).unwrap().unwrap().as_slice(),
        b"aux-one"
    );
    assert!(matches!(
        store.get_aux([2; 32]),
        Err(StoreError::Corrupt { table: "aux", .. })
    ));
}

#[test]
fn tampered_blob_fails_with_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let store = open(&path);
        ready_key(&store, "a", session(1), &marker(1));
    }
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut shares = txn.open_table(SHARES).unwrap();
            let mut blob = shares.get("a").unwrap().unwrap().value().to_vec();
            let last = blob.len() - 1;
            blob[last] ^= 1;
            shares.insert("a", blob.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(
        cohort_store::Store::open(&path, PASS, fast()),
        Err(StoreError::Corrupt {
            table: "shares",
            ..
        })
    ));
}
