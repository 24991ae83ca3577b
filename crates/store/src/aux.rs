//! Paillier aux info, generated once per node per cohort membership and reused for every key.

use crate::error::StoreError;
use crate::store::Store;
use crate::tables::{AUX, T_AUX, short_hex};
use crate::validate;
use zeroize::Zeroizing;

impl Store {
    /// Stores (or replaces) the sealed aux info of `membership_id`; replacing is allowed
    /// because aux info is regenerated when a membership is rebuilt.
    pub fn put_aux(&self, membership_id: [u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        validate::value("aux info", bytes)?;
        let sealed = self.sealer().seal(T_AUX, &membership_id, bytes)?;
        self.write(|txn| {
            txn.open_table(AUX)?
                .insert(membership_id.as_slice(), sealed.as_slice())?;
            Ok(((), true))
        })
    }

    /// The decrypted aux info of `membership_id`, if any.
    pub fn get_aux(
        &self,
        membership_id: [u8; 32],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(AUX)?;
            let Some(guard) = table.get(membership_id.as_slice())? else {
                return Ok(None);
            };
            self.sealer()
                .open(
                    T_AUX,
                    &membership_id,
                    || short_hex(&membership_id),
                    guard.value(),
                )
                .map(Some)
        })
    }
}
