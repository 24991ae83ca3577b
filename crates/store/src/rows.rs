//! Authenticated rows of the safety tables.
//!
//! Key records, the signing journals, presignature signer sets and used marks, reshare marks,
//! staged-share records and tombstones are not secret, but a node's safety rests on them (a
//! journal row edited to another digest would let the node equivocate; a used mark removed or
//! a key record rewritten would let it reuse or misuse a share). Each such row is stored as
//! `value ‖ HMAC-SHA256(k_mac, store id ‖ len(table) ‖ table ‖ len(key) ‖ key ‖ value)`, where
//! `k_mac = HMAC-SHA256(master key, "cohort-store/row-mac/v2")` is derived from the store's
//! unlocked master key. Every read checks the tag, and [`crate::Store::open`] checks every row
//! before the store is used, so an edited row, or a row moved to another key or table, is
//! refused with [`StoreError::Unauthentic`].
//!
//! What a MAC per row cannot tell: a row removed, or every row of an older copy of the same
//! store put back (a restore from a backup). Those are the restore problem and are handled
//! where it matters (presignatures) by their own rules.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::seal::Sealer;

type HmacSha256 = Hmac<Sha256>;

/// Length of the tag appended to every authenticated row.
pub(crate) const TAG_LEN: usize = 32;

const MAC_KEY_LABEL: &[u8] = b"cohort-store/row-mac/v2";

/// The row-MAC key, derived once at open and zeroized on drop.
pub(crate) struct RowMac {
    key: Zeroizing<[u8; 32]>,
    store_id: [u8; 16],
}

impl std::fmt::Debug for RowMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowMac(<redacted>)")
    }
}

fn hmac(key: &[u8]) -> Option<HmacSha256> {
    // HMAC accepts keys of any length, so this never fails; an Option keeps it panic-free.
    <HmacSha256 as Mac>::new_from_slice(key).ok()
}

impl RowMac {
    /// Derives the row-MAC key from the sealer's master key (domain-separated from sealing).
    pub(crate) fn derive(sealer: &Sealer) -> Result<Self> {
        let mut mac = hmac(sealer.master())
            .ok_or_else(|| StoreError::InvalidInput("row MAC key could not be derived".into()))?;
        mac.update(MAC_KEY_LABEL);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        Ok(Self {
            key,
            store_id: *sealer.store_id(),
        })
    }

    fn mac(&self, table: &str, key: &[u8], value: &[u8]) -> Result<HmacSha256> {
        let mut mac = hmac(self.key.as_ref())
            .ok_or_else(|| StoreError::InvalidInput("row MAC key has the wrong length".into()))?;
        mac.update(&self.store_id);
        // Table names are short constants and keys are bounded by validation; the lengths keep
        // (table, key, value) unambiguous.
        mac.update(&[u8::try_from(table.len()).unwrap_or(u8::MAX)]);
        mac.update(table.as_bytes());
        mac.update(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
        mac.update(key);
        mac.update(value);
        Ok(mac)
    }

    /// `value ‖ tag`, the stored form of a row of `table` under `key`.
    pub(crate) fn wrap(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>> {
        let tag = self.mac(table, key, value)?.finalize().into_bytes();
        let mut out = Vec::with_capacity(value.len() + TAG_LEN);
        out.extend_from_slice(value);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// The value of a stored row after checking its tag (constant-time); `label` renders the
    /// record for the error, which never carries the value.
    pub(crate) fn unwrap<'a>(
        &self,
        table: &'static str,
        key: &[u8],
        stored: &'a [u8],
        label: impl FnOnce() -> String,
    ) -> Result<&'a [u8]> {
        let refuse = || StoreError::Unauthentic {
            table,
            record: label(),
        };
        let Some(split) = stored.len().checked_sub(TAG_LEN) else {
            return Err(refuse());
        };
        let (value, tag) = stored.split_at(split);
        match self.mac(table, key, value)?.verify_slice(tag) {
            Ok(()) => Ok(value),
            Err(_) => Err(refuse()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_verifies_only_where_it_was_written() {
        let sealer = Sealer::new(Zeroizing::new([3; 32]), [4; 16]);
        let m = RowMac::derive(&sealer).unwrap();
        let row = m.wrap("journal", b"k1", b"digest").unwrap();
        assert_eq!(
            m.unwrap("journal", b"k1", &row, String::new).unwrap(),
            b"digest"
        );
        assert!(m.unwrap("journal", b"k2", &row, String::new).is_err());
        assert!(m.unwrap("keys", b"k1", &row, String::new).is_err());
        let mut edited = row.clone();
        edited[0] ^= 1;
        assert!(m.unwrap("journal", b"k1", &edited, String::new).is_err());
        assert!(m.unwrap("journal", b"k1", &row[..10], String::new).is_err());
        let other = RowMac::derive(&Sealer::new(Zeroizing::new([3; 32]), [5; 16])).unwrap();
        assert!(other.unwrap("journal", b"k1", &row, String::new).is_err());
        assert!(format!("{m:?}").contains("redacted"));
    }
}
