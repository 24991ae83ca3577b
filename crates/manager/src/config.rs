//! Manager configuration (TOML), every default documented.

use std::path::PathBuf;

use cohort_wire::Address;
use serde::{Deserialize, Serialize};

/// Timeouts, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagerTimeouts {
    /// Phase 1 (prepare → ready). Default 10.
    pub prepare_secs: u64,
    /// Keygen run, after start. Default 180.
    pub keygen_secs: u64,
    /// Signing run, after start. Default 120.
    pub sign_secs: u64,
    /// Aux-info generation run. Default 900.
    pub aux_secs: u64,
    /// Node authentication handshake. Default 10.
    pub handshake_secs: u64,
}

impl Default for ManagerTimeouts {
    fn default() -> Self {
        ManagerTimeouts {
            prepare_secs: 10,
            keygen_secs: 180,
            sign_secs: 120,
            aux_secs: 900,
            handshake_secs: 10,
        }
    }
}

/// The manager's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagerConfig {
    /// HTTP API and node WebSocket (`/v1/ws`) address. Default `127.0.0.1:7100`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The manager's name; nodes sign it in their authentication. Default `cohort-manager`.
    #[serde(default = "default_id")]
    pub manager_id: String,
    /// Directory of the manager's own store (keys registry, operation records). Required.
    pub data_dir: PathBuf,
    /// Cohort membership: node addresses, in the order aux info is generated for.
    pub members: Vec<Address>,
    /// Key used by `POST /api/v1/sign/state` when the request names none. Default `state`.
    #[serde(default = "default_state_key")]
    pub state_key_id: String,
    /// Presignatures kept ready per key for its preferred signer set (the t fastest connected
    /// holders), generated in the background when no live operation runs; 0 turns pools off.
    /// Default 2.
    #[serde(default = "default_pool_depth")]
    pub presign_pool_depth: usize,
    /// File holding a bearer token for the HTTP API; no token file means no API auth.
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: ManagerTimeouts,
}

fn default_listen() -> String {
    "127.0.0.1:7100".into()
}

fn default_pool_depth() -> usize {
    2
}

fn default_state_key() -> String {
    "state".into()
}

fn default_id() -> String {
    "cohort-manager".into()
}

impl ManagerConfig {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, crate::ManagerError> {
        toml::from_str(text).map_err(|e| crate::ManagerError::Config(e.to_string()))
    }

    /// The API token, if one is configured.
    pub fn api_token(&self) -> Result<Option<String>, crate::ManagerError> {
        match &self.api_token_file {
            None => Ok(None),
            Some(p) => std::fs::read_to_string(p)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|e| {
                    crate::ManagerError::Config(format!("cannot read {}: {e}", p.display()))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_with_its_defaults() {
        let c = ManagerConfig::from_toml(include_str!("../../../examples/manager.toml")).unwrap();
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.presign_pool_depth, default_pool_depth());
        assert_eq!(
            c.timeouts.prepare_secs,
            ManagerTimeouts::default().prepare_secs
        );
        assert!(ManagerConfig::from_toml("listen = 1").is_err());
    }
}
