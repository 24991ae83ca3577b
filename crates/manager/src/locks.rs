//! The manager's locks: the per-key lock that keeps two operations from changing one key at
//! once (keygen, resharing, refresh and deletion all take it), the count of live operations
//! the presignature filler waits on, and the one lock-poisoning policy of the crate.
//!
//! **Poisoning: recover.** Every `std::sync::Mutex` of the manager guards a map whose every
//! critical section is a single insert, remove or lookup; a panic elsewhere cannot leave such a
//! map half-written, so [`lock`] takes the data of a poisoned mutex as it is. (Skipping a
//! poisoned map silently would make an operation deaf instead of failed; refusing would turn
//! one panic into a manager that refuses everything.)

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cohort_wire::{ErrorCode, KeyId};

use crate::record::OpError;

/// Locks `m`, recovering the data of a poisoned mutex (the crate's one policy, see above).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Key ids with an operation that changes them in flight.
#[derive(Default)]
pub(crate) struct KeyLocks(Arc<Mutex<HashSet<String>>>);

/// A key id claimed by one operation; released however the operation ends (also on a panic
/// or a cancelled future), so that a key id is never left refused as "already running".
pub(crate) struct KeyLock {
    set: Arc<Mutex<HashSet<String>>>,
    key_id: String,
}

impl KeyLocks {
    /// Claims `key_id` for `what`; `KeyPending` (409) if another operation holds it.
    pub(crate) fn claim(&self, key_id: &KeyId, what: &str) -> Result<KeyLock, OpError> {
        if !lock(&self.0).insert(key_id.to_string()) {
            return Err(OpError::new(
                ErrorCode::KeyPending,
                format!("another operation on {key_id} is running; {what} not started"),
            ));
        }
        Ok(KeyLock {
            set: self.0.clone(),
            key_id: key_id.to_string(),
        })
    }

    /// Whether an operation holds `key_id` (tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn is_held(&self, key_id: &str) -> bool {
        lock(&self.0).contains(key_id)
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        lock(&self.set).remove(&self.key_id);
    }
}

/// Live operations in flight; background presigning runs only while this is zero.
#[derive(Default)]
pub(crate) struct Active(Arc<AtomicUsize>);

/// Counts one live operation for as long as it is held.
pub(crate) struct ActiveGuard(Arc<AtomicUsize>);

impl Active {
    /// Counts a live operation until the guard drops.
    pub(crate) fn enter(&self) -> ActiveGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(self.0.clone())
    }

    /// Whether any live operation is in flight.
    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
