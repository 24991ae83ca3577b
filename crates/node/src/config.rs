//! Node configuration (TOML). Every field has a documented default; the passphrase is never in
//! the file or on the command line: it comes from `passphrase_file` or `COHORT_PASSPHRASE`.

use std::path::PathBuf;

use cohort_wire::{Address, Bytes32};
use serde::{Deserialize, Serialize};

/// A cohort member as the node needs to know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberConfig {
    /// The member's Ethereum address (its identity).
    pub address: Address,
    /// Where to dial its p2p endpoint (multiaddr), e.g. `/ip4/127.0.0.1/tcp/7201`.
    pub p2p: Option<String>,
}

/// One manager the node dials, with what it pins for it. In TOML either a table
/// `{ url = "wss://…/v1/ws", address = "0x…", tls_cert_sha256 = "0x…" }` or, for an old config,
/// a bare URL string (no pin: refused unless `insecure_accept_any_manager`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ManagerEndpoint {
    /// A bare URL, with no pinned identity.
    Url(String),
    /// A URL with its pins.
    Pinned(ManagerPin),
}

/// A manager URL and what the node insists on finding there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagerPin {
    /// `ws://` or `wss://` URL of the manager's `/v1/ws`.
    pub url: String,
    /// The manager's address (of its identity key; `cohort manager --init` and
    /// `GET /v1/status` show it). The node refuses a manager that proves another identity.
    #[serde(default)]
    pub address: Option<Address>,
    /// SHA-256 of the manager's TLS certificate (DER), 0x-hex; required for `wss://`.
    #[serde(default)]
    pub tls_cert_sha256: Option<Bytes32>,
}

impl ManagerEndpoint {
    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            ManagerEndpoint::Url(u) => u,
            ManagerEndpoint::Pinned(p) => &p.url,
        }
    }

    /// The pinned manager address, if any.
    pub fn address(&self) -> Option<Address> {
        match self {
            ManagerEndpoint::Url(_) => None,
            ManagerEndpoint::Pinned(p) => p.address,
        }
    }

    /// The pinned certificate hash, if any.
    pub fn tls_cert_sha256(&self) -> Option<Bytes32> {
        match self {
            ManagerEndpoint::Url(_) => None,
            ManagerEndpoint::Pinned(p) => p.tls_cert_sha256,
        }
    }
}

/// Timeouts, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeouts {
    /// A prepared session not started within this time is forgotten. Default 60.
    pub prepared_secs: u64,
    /// Keygen protocol run. Default 120.
    pub keygen_secs: u64,
    /// Signing protocol run. Default 120.
    pub sign_secs: u64,
    /// Aux-info protocol run. Default 900.
    pub aux_secs: u64,
    /// WebSocket handshake with a manager. Default 10.
    pub handshake_secs: u64,
    /// Longest pause between reconnection attempts. Default 30.
    pub max_backoff_secs: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            prepared_secs: 60,
            keygen_secs: 120,
            sign_secs: 120,
            aux_secs: 900,
            handshake_secs: 10,
            max_backoff_secs: 30,
        }
    }
}

/// The node's whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Directory of the encrypted store (`node.redb`). Required.
    pub data_dir: PathBuf,
    /// File holding the store passphrase; if absent, `COHORT_PASSPHRASE` is read.
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    /// p2p listen multiaddr. Default `/ip4/0.0.0.0/tcp/7200`.
    #[serde(default = "default_p2p_listen")]
    pub p2p_listen: String,
    /// Managers to dial, each with its pinned address (and, for `wss://`, its pinned
    /// certificate hash). Default none.
    #[serde(default)]
    pub managers: Vec<ManagerEndpoint>,
    /// Accept whatever identity a manager without a pinned `address` claims. INSECURE: anyone
    /// on the path could then drive this node. Default false (such a config is refused).
    #[serde(default)]
    pub insecure_accept_any_manager: bool,
    /// Cohort membership, in the order aux info is generated for.
    #[serde(default)]
    pub members: Vec<MemberConfig>,
    /// Use the repository's PUBLIC test primes for aux info instead of searching. INSECURE:
    /// tests and the devnet only. Default false.
    #[serde(default)]
    pub insecure_test_primes: bool,
    /// Threads searching safe primes in the background. Default 1.
    #[serde(default = "default_prime_threads")]
    pub prime_threads: usize,
    /// JSON-RPC URL of this node's own L2 full node, asked for the state root of every block
    /// of a state batch before the node agrees to sign it. Default none: state batches are
    /// refused (unless `insecure_skip_state_check`).
    #[serde(default)]
    pub l2_rpc_url: Option<String>,
    /// Sign state batches without checking them when no `l2_rpc_url` is set. INSECURE: the
    /// devnet without an L2 only. Default false.
    #[serde(default)]
    pub insecure_skip_state_check: bool,
    /// Keys that sign only state batches this node has checked (and their rollbacks): a plain
    /// digest for one of them is refused, so nobody can get a state signature past the L2
    /// check and the journal by calling the plain signing API. Default `["state"]`.
    #[serde(default = "default_state_key_ids")]
    pub state_key_ids: Vec<String>,
    /// L2 block number of the state root at index 0 of the state commitment chain: a batch's
    /// `start_block` must be `offset_starts_at_index + l2_block_offset`, so that a batch cannot
    /// claim a journal slot that its blocks do not belong to. Default 1 (Mantle's and
    /// Optimism's legacy `BlockOffset`: L2 genesis is block 0, index 0 is block 1).
    #[serde(default = "default_l2_block_offset")]
    pub l2_block_offset: u64,
    /// How the node talks to its L2 node (timeout, attempts, batch size).
    #[serde(default)]
    pub l2: cohort_rollup::L2Settings,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// How deleted keys are kept and erased.
    #[serde(default)]
    pub deletes: DeleteSettings,
    /// L1 mode (`[l1]`): the node takes part in the lifecycle of L1-bound keys only as its own
    /// view of L1 allows (l1-spec §3.5). Default none.
    #[serde(default)]
    pub l1: Option<cohort_l1::L1Settings>,
}

/// Deletes are two-step: a deleted key's share is tombstoned (kept sealed, refused for every
/// use) for `retention_secs`, so an operator can still recover from a mistaken or hostile
/// delete, then a background sweep erases it from the store file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteSettings {
    /// How long a tombstoned share is kept before it is erased. Default 604800 (7 days).
    pub retention_secs: u64,
    /// How often the erase sweep runs. Default 60.
    pub sweep_interval_secs: u64,
    /// Longest one sweep (erase + file compaction) may take before it is reported stuck.
    /// Default 120.
    pub sweep_timeout_secs: u64,
}

impl Default for DeleteSettings {
    fn default() -> Self {
        DeleteSettings {
            retention_secs: 7 * 24 * 3600,
            sweep_interval_secs: 60,
            sweep_timeout_secs: 120,
        }
    }
}

fn default_p2p_listen() -> String {
    "/ip4/0.0.0.0/tcp/7200".into()
}

fn default_prime_threads() -> usize {
    1
}

fn default_state_key_ids() -> Vec<String> {
    vec!["state".into()]
}

fn default_l2_block_offset() -> u64 {
    1
}

/// The environment variable a node's passphrase may come from.
pub const PASSPHRASE_ENV: &str = "COHORT_PASSPHRASE";

/// The passphrase the binary read from [`PASSPHRASE_ENV`] and then removed from the
/// environment (so no child process and no later environment dump sees it).
static ENV_PASSPHRASE: std::sync::Mutex<Option<zeroize::Zeroizing<Vec<u8>>>> =
    std::sync::Mutex::new(None);

/// Hands over the passphrase the binary took out of the environment at start-up; later
/// [`NodeConfig::passphrase`] calls use it instead of the (now removed) variable.
pub fn set_env_passphrase(passphrase: zeroize::Zeroizing<Vec<u8>>) {
    if let Ok(mut slot) = ENV_PASSPHRASE.lock() {
        *slot = Some(passphrase);
    }
}

impl NodeConfig {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, crate::NodeError> {
        let c: NodeConfig =
            toml::from_str(text).map_err(|e| crate::NodeError::Config(e.to_string()))?;
        c.check_build()?;
        Ok(c)
    }

    /// Refuses settings this build cannot honour: `insecure_test_primes` in a binary built
    /// without the cargo feature `insecure-test-primes` (a released binary has no test primes).
    pub fn check_build(&self) -> Result<(), crate::NodeError> {
        if self.insecure_test_primes && !cohort_engine::primes::TEST_PRIMES_COMPILED {
            return Err(crate::NodeError::Config(
                "insecure_test_primes = true, but this binary has no test primes: it was built \
                 without the cargo feature insecure-test-primes (only the devnet and the tests \
                 use them; ./scripts/devnet.sh builds with it). Remove the setting."
                    .into(),
            ));
        }
        Ok(())
    }

    /// The store passphrase from the file or the environment (never from the command line).
    pub fn passphrase(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, crate::NodeError> {
        if let Some(path) = &self.passphrase_file {
            let text = std::fs::read(path).map_err(|e| {
                crate::NodeError::Config(format!(
                    "cannot read passphrase file {}: {e}",
                    path.display()
                ))
            })?;
            let mut text = zeroize::Zeroizing::new(text);
            while text.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                text.pop();
            }
            return Ok(text);
        }
        if let Some(p) = ENV_PASSPHRASE
            .lock()
            .ok()
            .and_then(|slot| slot.as_ref().map(|p| zeroize::Zeroizing::new(p.to_vec())))
            && !p.is_empty()
        {
            return Ok(p);
        }
        // A library user (tests) that did not hand it over: read the variable directly.
        match std::env::var(PASSPHRASE_ENV) {
            Ok(p) if !p.is_empty() => Ok(zeroize::Zeroizing::new(p.into_bytes())),
            _ => Err(crate::NodeError::Config(
                "no passphrase: set passphrase_file in the config or COHORT_PASSPHRASE".into(),
            )),
        }
    }

    /// Refuses manager entries the node could not authenticate: no pinned address (unless
    /// `insecure_accept_any_manager`), `wss://` without a certificate pin, a pin on `ws://`.
    pub fn validate_managers(&self) -> Result<(), crate::NodeError> {
        for m in &self.managers {
            let url = m.url();
            let bad = |why: &str| Err(crate::NodeError::Config(format!("manager {url}: {why}")));
            if m.address().is_none() && !self.insecure_accept_any_manager {
                return bad(
                    "no pinned manager address: write it as { url = \"…\", address = \"0x…\" } (the manager prints its address at start and in GET /v1/status), or set insecure_accept_any_manager = true",
                );
            }
            if url.starts_with("wss://") {
                if m.tls_cert_sha256().is_none() {
                    return bad(
                        "wss:// needs tls_cert_sha256, the SHA-256 of the manager's certificate",
                    );
                }
            } else if url.starts_with("ws://") {
                if m.tls_cert_sha256().is_some() {
                    return bad("tls_cert_sha256 is set but the URL is plain ws://");
                }
            } else {
                return bad("the URL must start with ws:// or wss://");
            }
        }
        Ok(())
    }

    /// The store's path.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("node.redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_test_primes_is_refused_by_a_build_without_them() {
        let text = "data_dir = \"/tmp/x\"\ninsecure_test_primes = true\n";
        match (
            NodeConfig::from_toml(text),
            cohort_engine::primes::TEST_PRIMES_COMPILED,
        ) {
            (Ok(c), true) => assert!(c.insecure_test_primes),
            (Err(e), false) => assert!(e.to_string().contains("insecure-test-primes"), "{e}"),
            (r, compiled) => panic!("{:?} in a build with test primes = {compiled}", r.err()),
        }
    }

    #[test]
    fn the_documented_example_parses_with_its_defaults() {
        let c = NodeConfig::from_toml(include_str!("../../../examples/node.toml")).unwrap();
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.p2p_listen, default_p2p_listen());
        assert_eq!(c.timeouts.sign_secs, Timeouts::default().sign_secs);
        assert!(!c.insecure_test_primes && !c.insecure_skip_state_check);
        let minimal = NodeConfig::from_toml("data_dir = \"/tmp/x\"").unwrap();
        assert_eq!(minimal.prime_threads, 1);
        assert_eq!(minimal.state_key_ids, vec!["state".to_string()]);
        assert_eq!(minimal.l2_block_offset, 1);
        assert_eq!(minimal.deletes.retention_secs, 7 * 24 * 3600);
        assert_eq!(c.state_key_ids, minimal.state_key_ids);
        assert_eq!(c.l2_block_offset, minimal.l2_block_offset);
        assert!(NodeConfig::from_toml("data_dir = 5").is_err());
    }

    #[test]
    fn a_manager_without_a_pin_is_refused_unless_insecure() {
        let old =
            NodeConfig::from_toml("data_dir = \"/x\"\nmanagers = [\"ws://m:1/v1/ws\"]").unwrap();
        let e = old.validate_managers().unwrap_err().to_string();
        assert!(e.contains("no pinned manager address"), "{e}");
        let mut insecure = old.clone();
        insecure.insecure_accept_any_manager = true;
        insecure.validate_managers().unwrap();

        let a = format!("0x{}", "11".repeat(20));
        let pinned = NodeConfig::from_toml(&format!(
            "data_dir = \"/x\"\nmanagers = [{{ url = \"ws://m:1/v1/ws\", address = \"{a}\" }}]"
        ))
        .unwrap();
        pinned.validate_managers().unwrap();
        assert_eq!(
            pinned.managers[0]
                .address()
                .unwrap()
                .to_string()
                .to_lowercase(),
            a
        );
        // The pinned form survives a round trip (the devnet writes configs this way).
        let back = NodeConfig::from_toml(&toml::to_string_pretty(&pinned).unwrap()).unwrap();
        assert_eq!(back.managers[0].address(), pinned.managers[0].address());

        let wss = NodeConfig::from_toml(&format!(
            "data_dir = \"/x\"\nmanagers = [{{ url = \"wss://m:1/v1/ws\", address = \"{a}\" }}]"
        ))
        .unwrap();
        let e = wss.validate_managers().unwrap_err().to_string();
        assert!(e.contains("tls_cert_sha256"), "{e}");
    }
}
