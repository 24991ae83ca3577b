//! Shared helpers for the store's integration tests.
#![allow(dead_code)]

use cohort_store::{BeginKeygen, KdfParams, KeyRecord, Store, StoreOptions};
use std::path::{Path, PathBuf};

pub const PASS: &[u8] = b"correct horse battery staple";

/// Cheap Argon2id parameters so the suite stays fast; one test covers the defaults.
pub fn fast() -> StoreOptions {
    StoreOptions {
        kdf: KdfParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        },
    }
}

pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("node.redb")
}

pub fn open(path: &Path) -> Store {
    Store::open(path, PASS, fast()).unwrap()
}

pub fn party(n: u8) -> [u8; 20] {
    [n; 20]
}

pub fn parties(n: u8) -> Vec<[u8; 20]> {
    (1..=n).map(party).collect()
}

pub fn session(n: u8) -> [u8; 32] {
    [n; 32]
}

/// Runs a whole successful keygen for `key_id` and returns the READY record.
pub fn ready_key(store: &Store, key_id: &str, sess: [u8; 32], share: &[u8]) -> KeyRecord {
    match store.begin_keygen(key_id, sess, 2, parties(3)).unwrap() {
        BeginKeygen::Started(_) => {}
        other => panic!("unexpected {other:?}"),
    }
    store
        .finish_keygen(key_id, sess, b"public-key", share)
        .unwrap()
}

/// True if `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
