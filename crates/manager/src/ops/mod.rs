//! The operations, one module each, over the runtime of [`crate::handshake`]: each states only
//! who must be ready, how the parties are chosen and what a result must contain.

pub(crate) mod aux;
pub(crate) mod delete;
pub(crate) mod keygen;
pub(crate) mod presign;
pub(crate) mod reshare;
pub(crate) mod sign;

use crate::State;
use crate::persist::registry::KeyEntry;
use crate::record::OpError;

/// A live (not deleted) key entry, or `KeyNotFound`.
pub(crate) fn live_key(state: &State, key_id: &str) -> Result<KeyEntry, OpError> {
    match state.registry.get(key_id) {
        Ok(Some(k)) if !k.deleted => Ok(k),
        Ok(_) => Err(OpError::not_found(key_id)),
        Err(e) => Err(OpError::new(
            cohort_wire::ErrorCode::Internal,
            format!("registry: {e}"),
        )),
    }
}
