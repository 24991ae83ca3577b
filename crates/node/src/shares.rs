//! A key's usable share: the sealed share from the store joined with this membership's aux
//! info into the engine's `KeyShare`, cached per key id so signing does not decrypt and rebuild
//! it every time. Every change of a key's share (keygen, commit, delete, new aux info) forgets
//! the cached copy.

use std::sync::Arc;

use cohort_engine::{AuxInfo, CoreShare, KeyShare};
use cohort_store::KeyStatus;
use cohort_wire::{ErrorBody, ErrorCode};

use crate::Inner;
use crate::errors::{self, err};

/// The READY share of `key_id`, from the cache or the store.
pub(crate) fn load_share(inner: &Inner, key_id: &str) -> Result<Arc<KeyShare>, ErrorBody> {
    if let Some(s) = inner
        .shares
        .lock()
        .ok()
        .and_then(|c| c.get(key_id).cloned())
    {
        return Ok(s);
    }
    let rec = inner
        .store
        .get_key(key_id)
        .map_err(errors::store)?
        .ok_or_else(|| errors::missing_key(inner, key_id))?;
    if rec.status != KeyStatus::Ready {
        return Err(err(
            ErrorCode::KeyNotReady,
            format!(
                "key {key_id} is {:?}: {}",
                rec.status,
                rec.error.unwrap_or_default()
            ),
        ));
    }
    let bytes = inner
        .store
        .load_share(key_id)
        .map_err(errors::store)?
        .ok_or_else(|| err(ErrorCode::KeyNotFound, format!("no share for {key_id}")))?;
    let core = CoreShare::from_bytes(&bytes).map_err(errors::engine)?;
    // A sharing made by a resharing or refresh has fresh aux info of its own; a keygen's
    // sharing uses the membership's.
    let aux = match inner
        .store
        .get_aux(crate::ops::aux::key_aux_id(key_id, &rec.key_session_id))
        .map_err(errors::store)?
    {
        Some(bytes) => Arc::new(AuxInfo::from_bytes(&bytes).map_err(errors::engine)?),
        None => inner
            .aux
            .lock()
            .ok()
            .and_then(|a| a.clone())
            .ok_or_else(|| err(ErrorCode::AuxMissing, "no aux info for this membership yet"))?,
    };
    let share = Arc::new(KeyShare::new(core, &aux).map_err(errors::engine)?);
    if let Ok(mut c) = inner.shares.lock() {
        c.insert(key_id.to_string(), share.clone());
    }
    Ok(share)
}

/// Forgets the cached share of `key_id` (its share changed or is gone).
pub(crate) fn forget(inner: &Inner, key_id: &str) {
    if let Ok(mut c) = inner.shares.lock() {
        c.remove(key_id);
    }
}

/// Forgets every cached share (the aux info they were built with changed).
pub(crate) fn forget_all(inner: &Inner) {
    if let Ok(mut c) = inner.shares.lock() {
        c.clear();
    }
}
