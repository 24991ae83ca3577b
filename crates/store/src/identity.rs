//! The node identity key (secp256k1 secret from which the node's address and libp2p identity
//! derive), sealed like any share.

use crate::error::StoreError;
use crate::store::Store;
use crate::tables::{IDENTITY, IDENTITY_RECORD, T_IDENTITY};
use redb::ReadableTable;
use zeroize::Zeroizing;

impl Store {
    /// Stores the node identity secret. Idempotent for the same secret; a different one is
    /// refused with [`StoreError::Conflict`], since replacing it would change the node's
    /// address and orphan its key shares.
    pub fn put_identity(&self, secret: &[u8; 32]) -> Result<(), StoreError> {
        let sealed = self
            .sealer()
            .seal(T_IDENTITY, IDENTITY_RECORD.as_bytes(), secret)?;
        self.write(|txn| {
            let mut table = txn.open_table(IDENTITY)?;
            let existing = table.get(IDENTITY_RECORD)?.map(|g| g.value().to_vec());
            if let Some(existing) = existing {
                let current = self.sealer().open(
                    T_IDENTITY,
                    IDENTITY_RECORD.as_bytes(),
                    || IDENTITY_RECORD.to_owned(),
                    &existing,
                )?;
                return if current.as_slice() == secret.as_slice() {
                    Ok(((), false))
                } else {
                    Err(StoreError::Conflict(
                        "a different node identity is already stored; refusing to overwrite it"
                            .to_owned(),
                    ))
                };
            }
            table.insert(IDENTITY_RECORD, sealed.as_slice())?;
            Ok(((), true))
        })
    }

    /// The node identity secret, if one was stored.
    pub fn get_identity(&self) -> Result<Option<Zeroizing<[u8; 32]>>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(IDENTITY)?;
            let Some(guard) = table.get(IDENTITY_RECORD)? else {
                return Ok(None);
            };
            let corrupt = || StoreError::Corrupt {
                table: T_IDENTITY,
                record: IDENTITY_RECORD.to_owned(),
            };
            let plain = self.sealer().open(
                T_IDENTITY,
                IDENTITY_RECORD.as_bytes(),
                || IDENTITY_RECORD.to_owned(),
                guard.value(),
            )?;
            if plain.len() != 32 {
                return Err(corrupt());
            }
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(&plain);
            Ok(Some(out))
        })
    }
}
