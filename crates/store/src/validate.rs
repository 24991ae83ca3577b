//! Input bounds checked before any transaction, so bad input gets a clear error instead of a
//! strange record on disk.

use crate::error::{Result, StoreError};
use std::collections::HashSet;

/// Longest accepted key id in bytes; key ids come from the network and must stay bounded.
pub(crate) const MAX_KEY_ID_LEN: usize = 256;
/// Largest committee accepted; far above any realistic cohort, small enough to bound records.
pub(crate) const MAX_PARTIES: usize = 1024;
/// Largest value accepted for sealing or logging (16 MiB), to keep transactions short.
pub(crate) const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;
/// Longest error reason kept in a key record.
pub(crate) const MAX_REASON_LEN: usize = 4096;

pub(crate) fn key_id(key_id: &str) -> Result<()> {
    if key_id.is_empty() {
        return Err(StoreError::InvalidInput("key id is empty".into()));
    }
    if key_id.len() > MAX_KEY_ID_LEN {
        return Err(StoreError::InvalidInput(format!(
            "key id is {} bytes long, the limit is {MAX_KEY_ID_LEN}",
            key_id.len()
        )));
    }
    if key_id.chars().any(char::is_control) {
        return Err(StoreError::InvalidInput(
            "key id contains control characters".into(),
        ));
    }
    Ok(())
}

pub(crate) fn parties(what: &str, parties: &[[u8; 20]]) -> Result<()> {
    if parties.is_empty() {
        return Err(StoreError::InvalidInput(format!("{what} list is empty")));
    }
    if parties.len() > MAX_PARTIES {
        return Err(StoreError::InvalidInput(format!(
            "{what} list has {} entries, the limit is {MAX_PARTIES}",
            parties.len()
        )));
    }
    let mut seen = HashSet::with_capacity(parties.len());
    for p in parties {
        if !seen.insert(p) {
            return Err(StoreError::InvalidInput(format!(
                "{what} list contains 0x{} twice",
                hex::encode(p)
            )));
        }
    }
    Ok(())
}

pub(crate) fn committee(threshold: u16, list: &[[u8; 20]]) -> Result<()> {
    parties("party", list)?;
    if threshold == 0 || usize::from(threshold) > list.len() {
        return Err(StoreError::InvalidInput(format!(
            "threshold {threshold} is not within 1..={}",
            list.len()
        )));
    }
    Ok(())
}

pub(crate) fn value(what: &str, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_VALUE_LEN {
        return Err(StoreError::InvalidInput(format!(
            "{what} is {} bytes, the limit is {MAX_VALUE_LEN}",
            bytes.len()
        )));
    }
    Ok(())
}

pub(crate) fn reason(reason: &str) -> String {
    if reason.len() <= MAX_REASON_LEN {
        return reason.to_owned();
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}
