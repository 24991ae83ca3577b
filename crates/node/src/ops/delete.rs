//! Deleting a key (design table, row "delete"): no protocol; the record is tombstoned with its
//! share and presignatures, and the cached share forgotten. Idempotent.

use cohort_wire::KeyId;

use crate::{Inner, shares};

/// Deletes `key_id`; true if this node held it. A store failure is logged and reported as
/// "did not exist", as before: the manager redelivers deletes until every holder confirms.
pub(crate) fn delete(inner: &Inner, key_id: &KeyId) -> bool {
    let existed = match inner.store.delete_key(key_id) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "delete failed");
            false
        }
    };
    shares::forget(inner, key_id);
    tracing::info!(existed, "key deleted");
    existed
}
