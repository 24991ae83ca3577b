//! The manager's own secp256k1 identity key: its Ethereum-style address is the manager id
//! nodes pin, and its signature in every welcome proves to a node that it talks to the
//! manager it pinned (not to whoever relays a challenge).
//!
//! The key lives in `<data_dir>/manager.key` (hex, mode 0600, created on first start); a key
//! file readable by group or others is refused, as is a file that does not hold a key.

use std::io::Write;
use std::path::{Path, PathBuf};

use cohort_wire::Address;
use k256::ecdsa::SigningKey;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::ManagerError;

/// File name of the key inside the manager's data directory.
pub const KEY_FILE: &str = "manager.key";

/// The manager key, held in memory (zeroized on drop) and in its 0600 file.
pub struct ManagerIdentity {
    secret: Zeroizing<[u8; 32]>,
    address: Address,
}

impl std::fmt::Debug for ManagerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerIdentity")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn bad(path: &Path, why: impl std::fmt::Display) -> ManagerError {
    ManagerError::Config(format!("manager key {}: {why}", path.display()))
}

impl ManagerIdentity {
    /// Loads `<data_dir>/manager.key`, creating a fresh key (0600) if there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<ManagerIdentity, ManagerError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| bad(data_dir, format!("cannot create the directory: {e}")))?;
        let path = key_path(data_dir);
        if !path.exists() {
            let sk = SigningKey::random(&mut rand::rngs::OsRng);
            let secret = Zeroizing::new(hex::encode(sk.to_bytes()));
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&path)
                .map_err(|e| bad(&path, format!("cannot create: {e}")))?;
            f.write_all(secret.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| bad(&path, format!("cannot write: {e}")))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map_err(|e| bad(&path, e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(bad(
                    &path,
                    format!("mode {:o} lets others read it; chmod 600 it", mode & 0o777),
                ));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| bad(&path, e))?);
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut secret[..])
            .map_err(|_| bad(&path, "does not hold 32 bytes of hex"))?;
        let sk = SigningKey::from_slice(&secret[..])
            .map_err(|_| bad(&path, "not a valid secp256k1 key"))?;
        Ok(ManagerIdentity {
            address: address_of(&sk),
            secret,
        })
    }

    /// The manager's address: its id, which nodes pin per manager URL.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Ethereum-style 65-byte r‖s‖v signature over a 32-byte digest.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<[u8; 65], ManagerError> {
        let sk = SigningKey::from_slice(&self.secret[..])
            .map_err(|_| ManagerError::Config("manager key unusable".into()))?;
        let (sig, recid) = sk
            .sign_prehash_recoverable(digest)
            .map_err(|_| ManagerError::Config("manager key signing failed".into()))?;
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        Ok(out)
    }
}

/// Where the key of a manager with this data directory lives.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

fn address_of(sk: &SigningKey) -> Address {
    let pk = sk.verifying_key().to_encoded_point(false);
    let h = Keccak256::digest(&pk.as_bytes()[1..]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h[12..]);
    Address(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohort_engine::EthSignature;

    #[test]
    fn the_key_is_created_once_private_and_signs_as_its_address() {
        let dir = std::env::temp_dir().join(format!("cohort-mkey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = ManagerIdentity::load_or_create(&dir).unwrap();
        let b = ManagerIdentity::load_or_create(&dir).unwrap();
        assert_eq!(a.address(), b.address(), "the key is kept across starts");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = key_path(&dir);
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = ManagerIdentity::load_or_create(&dir)
                .unwrap_err()
                .to_string();
            assert!(e.contains("chmod 600"), "{e}");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let d = [7u8; 32];
        let sig = a.sign_digest(&d).unwrap();
        assert_eq!(
            EthSignature(sig).recover_address(&d).unwrap(),
            a.address().0
        );
        std::fs::write(key_path(&dir), "zz").unwrap();
        assert!(ManagerIdentity::load_or_create(&dir).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
