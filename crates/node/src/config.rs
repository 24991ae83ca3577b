//! Node configuration (TOML). Every field has a documented default; the passphrase is never in
//! the file or on the command line: it comes from `passphrase_file` or `COHORT_PASSPHRASE`.

use std::path::PathBuf;

use cohort_wire::Address;
use serde::{Deserialize, Serialize};

/// A cohort member as the node needs to know it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberConfig {
    /// The member's Ethereum address (its identity).
    pub address: Address,
    /// Where to dial its p2p endpoint (multiaddr), e.g. `/ip4/127.0.0.1/tcp/7201`.
    pub p2p: Option<String>,
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
    /// Manager WebSocket URLs to dial, e.g. `ws://127.0.0.1:7100/v1/ws`. Default none.
    #[serde(default)]
    pub managers: Vec<String>,
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
        match std::env::var("COHORT_PASSPHRASE") {
            Ok(p) if !p.is_empty() => Ok(zeroize::Zeroizing::new(p.into_bytes())),
            _ => Err(crate::NodeError::Config(
                "no passphrase: set passphrase_file in the config or COHORT_PASSPHRASE".into(),
            )),
        }
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
        assert_eq!(c.state_key_ids, minimal.state_key_ids);
        assert_eq!(c.l2_block_offset, minimal.l2_block_offset);
        assert!(NodeConfig::from_toml("data_dir = 5").is_err());
    }
}
