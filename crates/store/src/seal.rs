//! Sealing of secret values with XChaCha20-Poly1305.
//!
//! Blob layout: `version (1) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`. The associated data is
//! `store id (16) ‖ len(table) ‖ table ‖ record`, so a blob only opens in the store, table and
//! record it was written for. The store id is the store's random salt: each node has its own
//! store (its identity key lives in it), so the store id binds a blob to the node. Records of a
//! key bind the sharing too (`key id ‖ sharing session id`, see `keys.rs`), so an old sharing's
//! share copied back into place fails to open.

use crate::error::{Result, StoreError};
use crate::validate;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

const BLOB_VERSION: u8 = 2;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Holds the derived store key and seals/opens values with it; the key is zeroized on drop
/// and never printed.
pub(crate) struct Sealer {
    key: Zeroizing<[u8; 32]>,
    store_id: [u8; 16],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

fn associated_data(store_id: &[u8; 16], table: &str, record: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(17 + table.len() + record.len());
    aad.extend_from_slice(store_id);
    // Table names are short constants; the length byte keeps (table, record) unambiguous.
    aad.push(u8::try_from(table.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(table.as_bytes());
    aad.extend_from_slice(record);
    aad
}

impl Sealer {
    /// A sealer for the store whose salt is `store_id`, under the derived master `key`.
    pub(crate) fn new(key: Zeroizing<[u8; 32]>, store_id: [u8; 16]) -> Self {
        Self { key, store_id }
    }

    /// The master key, for deriving the row-MAC key (`rows.rs`); never leaves the crate.
    pub(crate) fn master(&self) -> &[u8; 32] {
        &self.key
    }

    /// The store id bound into every sealed blob and row MAC.
    pub(crate) fn store_id(&self) -> &[u8; 16] {
        &self.store_id
    }

    fn cipher(&self) -> Option<XChaCha20Poly1305> {
        // The cipher keeps a copy of the key and zeroizes it on drop. The length is fixed at
        // 32, so this never fails; an Option keeps the code panic-free regardless.
        XChaCha20Poly1305::new_from_slice(self.key.as_ref()).ok()
    }

    /// Seals `plaintext` for `table`/`record` under a fresh random nonce.
    pub(crate) fn seal(&self, table: &str, record: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        validate::value("sealed value", plaintext)?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(&self.store_id, table, record);
        let ciphertext = self
            .cipher()
            .ok_or_else(|| StoreError::InvalidInput("store key has the wrong length".into()))?
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::InvalidInput("value could not be sealed".into()))?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// Opens a blob sealed for `table`/`record`; `label` renders the record for the error.
    /// Returns `None` on any failure so callers choose the error (Corrupt or WrongPassphrase).
    pub(crate) fn try_open(
        &self,
        table: &str,
        record: &[u8],
        blob: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != BLOB_VERSION {
            return None;
        }
        let (nonce, ciphertext) = blob[1..].split_at(NONCE_LEN);
        let nonce = XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?);
        let aad = associated_data(&self.store_id, table, record);
        self.cipher()?
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// Opens a blob or reports `Corrupt` naming the record (never its content).
    pub(crate) fn open(
        &self,
        table: &'static str,
        record: &[u8],
        label: impl FnOnce() -> String,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.try_open(table, record, blob)
            .ok_or_else(|| StoreError::Corrupt {
                table,
                record: label(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let s = Sealer::new(Zeroizing::new([7u8; 32]), [1; 16]);
        let blob = s.seal("shares", b"k1", b"secret").unwrap();
        assert_eq!(
            s.try_open("shares", b"k1", &blob).unwrap().as_slice(),
            b"secret"
        );
        assert!(s.try_open("shares", b"k2", &blob).is_none());
        assert!(s.try_open("aux", b"k1", &blob).is_none());
        // "sharesk" + "1" must not equal "shares" + "k1".
        assert!(s.try_open("sharesk", b"1", &blob).is_none());
        let other = Sealer::new(Zeroizing::new([8u8; 32]), [1; 16]);
        assert!(other.try_open("shares", b"k1", &blob).is_none());
        // Same key, another store: the blob does not open either.
        let elsewhere = Sealer::new(Zeroizing::new([7u8; 32]), [2; 16]);
        assert!(elsewhere.try_open("shares", b"k1", &blob).is_none());
        assert!(format!("{s:?}").contains("redacted"));
    }
}
