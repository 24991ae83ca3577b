//! Passphrase → store key derivation (Argon2id).
//!
//! The parameters live in the store's meta table next to the salt, so they can be raised for
//! new stores without breaking old ones.

use crate::error::{Result, StoreError};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length of the random per-store salt.
pub(crate) const SALT_LEN: usize = 16;
/// Upper bounds applied to parameters read from disk, so a tampered file cannot make `open`
/// allocate terabytes or spin forever.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 64;

/// Argon2id cost parameters; recorded in the store so each file is opened with the cost it was
/// created with (defaults follow the OWASP recommendation m=19 MiB, t=2, p=1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB; the main defence against GPU guessing.
    pub m_cost_kib: u32,
    /// Number of passes over memory.
    pub t_cost: u32,
    /// Degree of parallelism.
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            m_cost_kib: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Rejects parameters Argon2 would refuse or that exceed the sanity bounds, before any
    /// file is created with them.
    pub(crate) fn check(&self) -> Result<()> {
        if self.m_cost_kib > MAX_M_COST_KIB || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST
        {
            return Err(StoreError::Kdf(format!(
                "parameters m={} KiB, t={}, p={} exceed the limits m<={MAX_M_COST_KIB}, t<={MAX_T_COST}, p<={MAX_P_COST}",
                self.m_cost_kib, self.t_cost, self.p_cost
            )));
        }
        self.argon2().map(|_| ())
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| StoreError::Kdf(format!("invalid Argon2id parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Derives the 32-byte store key; the result is zeroized when dropped.
pub(crate) fn derive_key(
    passphrase: &[u8],
    salt: &[u8],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>> {
    params.check()?;
    let mut key = Zeroizing::new([0u8; 32]);
    params
        .argon2()?
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| StoreError::Kdf(format!("Argon2id failed: {e}")))?;
    Ok(key)
}
