//! Resharings this node prepared as an old holder. A holder that leaves the committee deletes
//! its share on the commit; the record is the durable proof (surviving restarts, since commits
//! are redelivered on reconnect) that the commit is for a resharing of exactly the sharing the
//! node held when it agreed, so that no other commit can make it delete a share. Rows are
//! authenticated (`rows.rs`), so a forged mark cannot make a node delete its share.

use crate::error::StoreError;
use crate::store::Store;
use crate::tables::{RESHARES, T_RESHARES};
use crate::validate;

impl Store {
    /// Records that this node agreed to reshare `key_id`, holding sharing `held_session`, in
    /// resharing `session`.
    pub fn mark_reshare(
        &self,
        session: [u8; 32],
        key_id: &str,
        held_session: [u8; 32],
    ) -> Result<(), StoreError> {
        validate::key_id(key_id)?;
        let mut value = held_session.to_vec();
        value.extend_from_slice(key_id.as_bytes());
        let value = self.rows().wrap(T_RESHARES, &session, &value)?;
        self.write(|txn| {
            txn.open_table(RESHARES)?
                .insert(session.as_slice(), value.as_slice())?;
            Ok(((), true))
        })
    }

    /// Removes and returns the record of resharing `session`: (key id, sharing held).
    pub fn take_reshare(
        &self,
        session: [u8; 32],
    ) -> Result<Option<(String, [u8; 32])>, StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(RESHARES)?;
            let Some(bytes) = table
                .remove(session.as_slice())?
                .map(|g| g.value().to_vec())
            else {
                return Ok((None, false));
            };
            let corrupt = || StoreError::Corrupt {
                table: T_RESHARES,
                record: hex::encode(session),
            };
            let bytes = self
                .rows()
                .unwrap(T_RESHARES, &session, &bytes, || hex::encode(session))?;
            let held = bytes
                .get(..32)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(corrupt)?;
            let key_id = std::str::from_utf8(&bytes[32..])
                .map_err(|_| corrupt())?
                .to_string();
            Ok((Some((key_id, held)), true))
        })
    }
}
