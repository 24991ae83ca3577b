//! Passphrase → store key derivation (Argon2id).
//!
//! The parameters live in the store's meta table next to the salt, so they can be raised for
//! new stores without breaking old ones.
//!
//! Default for new stores: Argon2id v1.3, m = 65536 KiB (64 MiB), t = 3, p = 1, 32-byte output,
//! 16-byte random salt. That is above the OWASP floor (m = 19 MiB, t = 2, p = 1, or its
//! equivalents such as m = 46 MiB, t = 1) on both memory and passes, and matches RFC 9106's
//! second recommended option in memory and passes (p = 1 since the `argon2` crate computes
//! lanes on one thread). Unlock (one derivation) measured on the 2-core build machine with the
//! release build: see the README ("Store unlock"). Unit tests use a cheap profile
//! (m = 1024 KiB, t = 1) passed explicitly through `StoreOptions`, only because they open
//! dozens of stores; every binary, the devnet and the end-to-end tests use the default.

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
/// created with (default m=64 MiB, t=3, p=1: above the OWASP floor of m=19 MiB, t=2, p=1).
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
            m_cost_kib: 65_536,
            t_cost: 3,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The default must stay above the OWASP floor (m=19456 KiB with t=2, p=1).
    #[test]
    fn the_default_is_above_the_owasp_floor() {
        let d = KdfParams::default();
        assert!(
            d.m_cost_kib > 19_456 && d.t_cost >= 2 && d.p_cost == 1,
            "{d:?}"
        );
        assert_eq!((d.m_cost_kib, d.t_cost, d.p_cost), (65_536, 3, 1));
        d.check().unwrap();
    }
}
