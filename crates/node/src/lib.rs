//! The Cohort node daemon: holds its key shares in the encrypted store, dials its managers over
//! WebSocket (authenticated with its node key), answers the prepare → ready → start handshake of
//! every operation, and runs the protocols with the other nodes over libp2p.
//!
//! Every operation runs in a task of its own, so a slow session never blocks another; every
//! wait has a timeout.
//!
//! ## The path of one operation
//!
//! What each party checks for each operation is the table in [`operations`]
//! (`crates/node/docs/operations.md`); the operation modules cite its rows.
//!
//! **A signature.** [`link`] decodes the manager's `KeySignPrepare` and spawns
//! [`dispatch::handle`], which opens the session's tracing span (`session`, `op`, `key_id`) and
//! hands the message to [`ops::sign::prepare`]: [`shares::load_share`] (store + aux info →
//! engine share, cached), [`ops::sign::check_sharing`], [`ops::sign::check_content`] (for a
//! state batch [`cohort_rollup::check_batch`], the journal, this node's L2 node) →
//! a [`ops::sign::Verdict`] → [`session::Sessions::prepare`] → `KeySignReady`. The
//! `KeySignStart` goes the same way to [`ops::sign::start`]: [`session::Sessions::start_sign`]
//! (replay, prepare, expiry, match) → the journal → either
//! [`ops::presign::issue_partial`] (one round) or [`compute::start`] (session binding, p2p
//! delivery via [`bridge`], the compute runtime, the timeout) → `cohort_engine::sign::sign` →
//! `KeySignFinish`; errors become the wire's through [`errors`].
//!
//! **A resharing.** `KeyResharePrepare` → [`dispatch::handle`] → [`ops::reshare::prepare`]
//! (the committee rule, the sharing held, the agreement recorded in the store) →
//! `KeyReshareStart` → [`ops::reshare::start`] → [`session::Sessions::start_reshare`] →
//! [`compute::start`] → `cohort_engine::reshare::reshare` → the new share staged as a
//! [`cohort_store::StagedShare`] → `KeyReshareFinish`. Later `KeyReshareCommit` →
//! [`ops::reshare::commit`] (swap in the staged share, or a leaver deletes its own) or
//! `KeyReshareAbort` → [`ops::reshare::abort`]; then [`status::status`] tells the manager.
//!
//! The other operations take the same path through their own module: [`ops::aux`],
//! [`ops::keygen`], [`ops::presign`], [`ops::delete`].

#![forbid(unsafe_code)]

mod bridge;
mod compute;
pub mod config;
mod dispatch;
mod errors;
pub mod identity;
mod journal;
mod link;
#[doc = include_str!("../docs/operations.md")]
pub mod operations {}
mod ops;
mod session;
mod shares;
mod status;
#[cfg(test)]
mod tests;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cohort_engine::{AuxInfo, KeyShare};
use cohort_p2p::{Member, P2p, P2pConfig};
use cohort_store::Store;
use cohort_wire::Address;
use sha3::{Digest, Keccak256};

pub use config::NodeConfig;
use identity::NodeIdentity;

/// What can stop a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The store could not be opened or used (a wrong passphrase lands here).
    #[error("store: {0}")]
    Store(#[from] cohort_store::StoreError),
    /// The node key is missing or unusable.
    #[error("identity: {0}")]
    Identity(String),
    /// The p2p host could not start.
    #[error("p2p: {0}")]
    P2p(String),
}

/// State shared by every session of the node.
pub(crate) struct Inner {
    pub config: NodeConfig,
    pub store: Store,
    pub p2p: P2p,
    pub identity: NodeIdentity,
    pub members: Vec<Address>,
    /// Prepared sessions and started session ids (the prepare → start rules).
    pub sessions: session::Sessions,
    pub shares: Mutex<HashMap<String, Arc<KeyShare>>>,
    pub aux: Mutex<Option<Arc<AuxInfo>>>,
    /// Client of this node's own L2 full node, if configured.
    pub l2: Option<cohort_rollup::L2Client>,
}

impl Inner {
    /// Assembles the shared state; the membership comes from the configuration.
    pub(crate) fn new(
        config: NodeConfig,
        store: Store,
        p2p: P2p,
        identity: NodeIdentity,
        aux: Option<Arc<AuxInfo>>,
        l2: Option<cohort_rollup::L2Client>,
    ) -> Inner {
        let members = config.members.iter().map(|m| m.address).collect();
        let ttl = Duration::from_secs(config.timeouts.prepared_secs.max(1));
        Inner {
            config,
            store,
            p2p,
            identity,
            members,
            sessions: session::Sessions::new(ttl),
            shares: Mutex::new(HashMap::new()),
            aux: Mutex::new(aux),
            l2,
        }
    }
}

/// A running node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

/// Whether test hook `name` is armed (`COHORT_FAILPOINT=name`); always false unless the
/// crate is built with the `failpoints` feature, which only the end-to-end tests enable.
pub(crate) fn failpoint(name: &str) -> bool {
    cfg!(feature = "failpoints") && std::env::var("COHORT_FAILPOINT").as_deref() == Ok(name)
}

/// Identifier of aux info for an ordered membership.
pub fn membership_id(members: &[Address]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"cohort/membership/v1");
    for m in members {
        h.update(m.0);
    }
    h.finalize().into()
}

impl Node {
    /// Opens the store (creating the node key on first start), starts the p2p host and the
    /// manager links. Fails clearly on a wrong passphrase, writing nothing.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate_managers()?;
        config.check_build()?;
        let passphrase = config.passphrase()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            NodeError::Config(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let store = Store::open(config.store_path(), &passphrase, Default::default())?;
        for key_id in store.recovered_pending() {
            tracing::warn!(%key_id, "keygen interrupted by a restart: key marked ERROR");
        }
        ops::presign::discard_at_start(&store)?;
        let secret = match store.get_identity()? {
            Some(s) => s,
            None => {
                let s = NodeIdentity::generate();
                store.put_identity(&s)?;
                s
            }
        };
        let identity = NodeIdentity::from_secret(secret)?;
        let members: Vec<Address> = config.members.iter().map(|m| m.address).collect();
        if !members.contains(&identity.address()) {
            tracing::warn!(address = %identity.address(), "this node is not in the configured membership");
        }
        let p2p_members = config
            .members
            .iter()
            .filter(|m| m.address != identity.address())
            .map(|m| {
                Ok(Member {
                    address: m.address.0,
                    dial: match &m.p2p {
                        Some(a) => Some(a.parse().map_err(|e| {
                            NodeError::Config(format!("bad p2p address {a:?}: {e}"))
                        })?),
                        None => None,
                    },
                })
            })
            .collect::<Result<Vec<_>, NodeError>>()?;
        let listen = config
            .p2p_listen
            .parse()
            .map_err(|e| NodeError::Config(format!("bad p2p_listen: {e}")))?;
        let p2p = P2p::start(P2pConfig::new(listen, identity.secret(), p2p_members))
            .await
            .map_err(|e| NodeError::P2p(e.to_string()))?;
        tracing::info!(address = %identity.address(), peer_id = %p2p.peer_id(), "node started");

        let aux = match store.get_aux(membership_id(&members))? {
            Some(bytes) => match AuxInfo::from_bytes(&bytes) {
                Ok(a) => Some(Arc::new(a)),
                Err(e) => {
                    tracing::error!(error = %e, "stored aux info unusable; it will be regenerated");
                    None
                }
            },
            None => None,
        };
        let l2 = match &config.l2_rpc_url {
            Some(url) => Some(
                cohort_rollup::L2Client::new(url, config.l2.clone())
                    .map_err(|e| NodeError::Config(e.to_string()))?,
            ),
            None => {
                if config.insecure_skip_state_check {
                    tracing::warn!(
                        "no l2_rpc_url and insecure_skip_state_check: state batches are signed WITHOUT checking their roots"
                    );
                } else {
                    tracing::warn!("no l2_rpc_url: this node refuses every state batch");
                }
                None
            }
        };
        let inner = Arc::new(Inner::new(config, store, p2p, identity, aux, l2));
        status::start_prime_supply(inner.clone());
        session::start_sweeper(inner.clone());
        ops::delete::start_erase_sweep(inner.clone());
        for endpoint in inner.config.managers.clone() {
            tokio::spawn(link::run(inner.clone(), endpoint));
        }
        Ok(Node { inner })
    }

    /// The node's address.
    pub fn address(&self) -> Address {
        self.inner.identity.address()
    }

    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> String {
        self.inner.p2p.peer_id().to_string()
    }

    /// Runs until Ctrl-C.
    pub async fn serve(self) {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("node stopping");
        // Give in-flight frames a moment; the store commits each transaction as it goes.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a node's store and key without starting it, and returns (address, peer id): what an
/// operator needs to add the node to the membership.
pub fn init(config: &NodeConfig) -> Result<(Address, String), NodeError> {
    let passphrase = config.passphrase()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        NodeError::Config(format!("cannot create {}: {e}", config.data_dir.display()))
    })?;
    let store = Store::open(config.store_path(), &passphrase, Default::default())?;
    let secret = match store.get_identity()? {
        Some(s) => s,
        None => {
            let s = NodeIdentity::generate();
            store.put_identity(&s)?;
            s
        }
    };
    let peer_id = cohort_p2p::peer_id_of_secret(&secret)
        .map_err(|e| NodeError::Identity(e.to_string()))?
        .to_string();
    let identity = NodeIdentity::from_secret(secret)?;
    Ok((identity.address(), peer_id))
}
