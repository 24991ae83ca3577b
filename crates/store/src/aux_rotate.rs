//! Removing aux info: every sharing of a key gets fresh aux info (Paillier keys) of its own, and
//! the previous sharing's is removed when a resharing commits (or the staged one on an abort),
//! so an old Paillier secret does not outlive the sharing it served.

use crate::error::StoreError;
use crate::store::Store;
use crate::tables::AUX;

impl Store {
    /// Removes the aux info of `aux_id`; `false` if there was none (idempotent).
    pub fn remove_aux(&self, aux_id: [u8; 32]) -> Result<bool, StoreError> {
        self.write(|txn| {
            let existed = txn.open_table(AUX)?.remove(aux_id.as_slice())?.is_some();
            Ok((existed, existed))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{KdfParams, Store, StoreOptions};

    #[test]
    fn removed_aux_info_is_gone_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            kdf: KdfParams {
                m_cost_kib: 1024,
                t_cost: 1,
                p_cost: 1,
            },
        };
        let store = Store::open(dir.path().join("s.redb"), b"pass", options).unwrap();
        store.put_aux([1; 32], b"one").unwrap();
        store.put_aux([2; 32], b"two").unwrap();
        assert!(store.remove_aux([1; 32]).unwrap());
        assert!(!store.remove_aux([1; 32]).unwrap());
        assert!(store.get_aux([1; 32]).unwrap().is_none());
        assert_eq!(store.get_aux([2; 32]).unwrap().unwrap().as_slice(), b"two");
    }
}
