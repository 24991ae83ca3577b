//! Manager configuration (TOML), every default documented.

use std::path::PathBuf;

use cohort_wire::Address;
use serde::{Deserialize, Serialize};

pub use crate::serve::HttpLimits;

/// Timeouts, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ManagerTimeouts {
    /// Phase 1 (prepare → ready). Default 10.
    pub prepare_secs: u64,
    /// Added to `prepare_secs` per 1000 roots of a state batch, so that the nodes' L2
    /// look-ups of a big batch finish inside phase 1 (keep it above the nodes'
    /// `[l2] deadline_per_1000_roots_secs`). Default 3.
    pub prepare_per_1000_roots_secs: u64,
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
            prepare_per_1000_roots_secs: 3,
            keygen_secs: 180,
            sign_secs: 120,
            aux_secs: 900,
            handshake_secs: 10,
        }
    }
}

/// A certificate and key (PEM files) the node WebSocket listener serves TLS with; nodes pin
/// the certificate's SHA-256 (`cohort manager --init` prints it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key_file: PathBuf,
}

/// The manager's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagerConfig {
    /// HTTP API address (and node WebSocket `/v1/ws`, unless `ws_listen` is set). Beyond
    /// loopback the API needs `api_token_file` or `jwt_secret_file`, or the manager refuses to
    /// start. Default `127.0.0.1:7100`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A separate address for the nodes' WebSocket (`/v1/ws` only), so the node link can face
    /// the network while the API stays on loopback. Default none: `/v1/ws` is on `listen`.
    #[serde(default)]
    pub ws_listen: Option<String>,
    /// TLS for the node WebSocket listener (`wss://`), which then must be `ws_listen`.
    /// Default none (plain `ws://`).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
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
    /// File holding Mantle's `jwt_secret` (32 bytes as hex, like the batch submitter's
    /// setting): HS256 JWTs with an `iat` within 60 s are then accepted as API credentials,
    /// besides the static token. Default none.
    #[serde(default)]
    pub jwt_secret_file: Option<PathBuf>,
    /// Most state roots one `POST /api/v1/sign/state` batch may carry; a bigger batch gets
    /// 400. The HTTP body limit and the batch deadlines scale with it. At most
    /// `cohort_wire::MAX_FRAME_STATE_ROOTS` (what one manager ↔ node frame carries).
    /// Default 8192.
    #[serde(default = "default_max_state_roots")]
    pub max_state_roots: usize,
    /// Verified state-batch signatures kept (in `signatures.redb`) so that an identical
    /// request is answered with the identical signature without running the protocol;
    /// the oldest are pruned beyond this. Default 100 000.
    #[serde(default = "default_signature_cache")]
    pub signature_cache_entries: u64,
    /// Operation records kept (`GET /v1/operations/{id}`); older ones are pruned every few
    /// minutes. Default 1 000 000 (a few GB at most; about two years of one batch a minute).
    #[serde(default = "default_oplog_retention")]
    pub oplog_retention: u64,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: ManagerTimeouts,
    /// Header and body read timeouts and the connection limit of the listener (`[http]`).
    #[serde(default)]
    pub http: HttpLimits,
    /// L1 mode (`[l1]`): membership, elections and the state key come from L1's contracts.
    /// Default none: membership from `members`, keys driven by the API (l1-spec §3.6).
    #[serde(default)]
    pub l1: Option<cohort_l1::L1Settings>,
}

fn default_listen() -> String {
    "127.0.0.1:7100".into()
}

fn default_pool_depth() -> usize {
    2
}

fn default_max_state_roots() -> usize {
    cohort_rollup::DEFAULT_MAX_STATE_ROOTS
}

fn default_signature_cache() -> u64 {
    100_000
}

fn default_oplog_retention() -> u64 {
    1_000_000
}

fn default_state_key() -> String {
    "state".into()
}

impl ManagerConfig {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, crate::ManagerError> {
        toml::from_str(text).map_err(|e| crate::ManagerError::Config(e.to_string()))
    }

    /// Refuses settings that cannot work: a batch limit no frame could carry.
    pub fn validate(&self) -> Result<(), crate::ManagerError> {
        if self.max_state_roots == 0 || self.max_state_roots > cohort_wire::MAX_FRAME_STATE_ROOTS {
            return Err(crate::ManagerError::Config(format!(
                "max_state_roots = {} is out of range: between 1 and {} (what one manager-node frame of {} bytes carries)",
                self.max_state_roots,
                cohort_wire::MAX_FRAME_STATE_ROOTS,
                cohort_wire::MAX_FRAME_BYTES
            )));
        }
        if self.tls.is_some() && self.ws_listen.is_none() {
            return Err(crate::ManagerError::Config(
                "tls is served on the node WebSocket listener: set ws_listen too".into(),
            ));
        }
        Ok(())
    }

    /// The API token, if one is configured.
    pub fn api_token(&self) -> Result<Option<zeroize::Zeroizing<String>>, crate::ManagerError> {
        match &self.api_token_file {
            None => Ok(None),
            Some(p) => {
                let t = zeroize::Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    crate::ManagerError::Config(format!("cannot read {}: {e}", p.display()))
                })?);
                let t = t.trim();
                // An empty token would make `Authorization: Bearer ` a valid credential.
                if t.is_empty() {
                    return Err(crate::ManagerError::Config(format!(
                        "api_token_file {} is empty: write a token into it or remove the setting",
                        p.display()
                    )));
                }
                Ok(Some(zeroize::Zeroizing::new(t.to_string())))
            }
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
        assert_eq!(c.oplog_retention, default_oplog_retention());
        assert_eq!(c.max_state_roots, 8192);
        assert_eq!(c.signature_cache_entries, default_signature_cache());
        assert_eq!(c.timeouts.prepare_per_1000_roots_secs, 3);
        c.validate().unwrap();
        let mut big = c.clone();
        big.max_state_roots = cohort_wire::MAX_FRAME_STATE_ROOTS + 1;
        let e = big.validate().unwrap_err().to_string();
        assert!(e.contains("max_state_roots"), "{e}");
        big.max_state_roots = cohort_wire::MAX_FRAME_STATE_ROOTS;
        big.validate().unwrap();
        assert!(ManagerConfig::from_toml("listen = 1").is_err());
    }

    #[test]
    fn an_empty_api_token_file_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!("cohort-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, " \n").unwrap();
        let mut c = ManagerConfig::from_toml("data_dir = \"/tmp/x\"\nmembers = []").unwrap();
        c.api_token_file = Some(path.clone());
        let e = c.api_token().unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(
            c.api_token().unwrap().as_deref().map(String::as_str),
            Some("s3cret")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
