//! The Cohort manager: serves the HTTP API, accepts node WebSockets (challenge–response with the
//! node key, members only), and coordinates every operation with the prepare → ready → start
//! handshake. It holds no key shares; it verifies every signature before anyone sees it and
//! records every operation — who took part, who was absent, the outcome.

#![forbid(unsafe_code)]

mod api;
pub mod auth;
pub mod config;
mod coord;
mod mantle;
pub mod metrics;
mod pool;
pub mod registry;
pub mod sigcache;
mod ws;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cohort_store::OperationLog;
use cohort_wire::{Address, Bytes32, ManagerMsg, NodeMsg};
use tokio::sync::mpsc;

pub use config::ManagerConfig;
use metrics::Metrics;
use registry::Registry;

/// What can stop the manager.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Unusable configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The manager's store failed.
    #[error("store: {0}")]
    Store(String),
    /// The listener could not bind or serve.
    #[error("server: {0}")]
    Server(String),
}

/// One authenticated node connection.
pub(crate) struct NodeConn {
    pub tx: mpsc::Sender<ManagerMsg>,
    pub conn_id: u64,
    pub connected_at_ms: u64,
    /// The membership the node has aux info for; None until its first status report, so that
    /// a fresh connection is not mistaken for a node lacking aux info.
    pub aux_members: Option<Vec<Address>>,
    pub keys: u64,
    pub primes_ready: u64,
}

/// Shared manager state.
pub(crate) struct State {
    pub config: ManagerConfig,
    pub registry: Registry,
    pub oplog: OperationLog,
    pub metrics: Metrics,
    /// API credentials: the static token and/or Mantle's JWT secret.
    pub auth: auth::Credentials,
    /// Verified state-batch signatures, to answer identical requests (None if unopenable).
    pub sigcache: Option<sigcache::SignatureCache>,
    pub nodes: Mutex<HashMap<Address, NodeConn>>,
    pub peer_ids: Mutex<HashMap<Address, String>>,
    pub waiters: Mutex<HashMap<Bytes32, mpsc::Sender<(Address, NodeMsg)>>>,
    pub keygen_inflight: Mutex<HashSet<String>>,
    pub aux_lock: tokio::sync::Mutex<()>,
    pub next_conn: std::sync::atomic::AtomicU64,
    /// Presignatures ready per key.
    pub pools: Mutex<HashMap<String, Vec<pool::PoolEntry>>>,
    /// Smoothed prepare→ready latency per node (ms), to prefer the fastest signers.
    pub latency: Mutex<HashMap<Address, f64>>,
    /// Live operations in flight; background presigning runs only when this is zero.
    pub active: std::sync::atomic::AtomicUsize,
}

impl State {
    pub(crate) fn connected(&self) -> Vec<Address> {
        let nodes = self
            .nodes
            .lock()
            .map(|n| n.keys().copied().collect::<HashSet<_>>());
        let nodes = nodes.unwrap_or_default();
        self.config
            .members
            .iter()
            .filter(|m| nodes.contains(m))
            .copied()
            .collect()
    }

    pub(crate) fn send_to(&self, to: &Address, msg: ManagerMsg) -> bool {
        match self.nodes.lock() {
            Ok(n) => n.get(to).is_some_and(|c| c.tx.try_send(msg).is_ok()),
            Err(_) => false,
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A running manager.
pub struct Manager {
    state: Arc<State>,
    listener: tokio::net::TcpListener,
}

impl Manager {
    /// Opens the manager's store and binds its listener.
    pub async fn bind(config: ManagerConfig) -> Result<Manager, ManagerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ManagerError::Config(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        if config.members.len() < 2 {
            return Err(ManagerError::Config(
                "membership needs at least 2 nodes".into(),
            ));
        }
        let registry = Registry::open(&config.data_dir.join("keys.redb"))
            .map_err(|e| ManagerError::Store(e.to_string()))?;
        let oplog = OperationLog::open(config.data_dir.join("operations.redb"))
            .map_err(|e| ManagerError::Store(e.to_string()))?;
        config.validate()?;
        let token = config.api_token()?;
        let jwt_secret = match &config.jwt_secret_file {
            Some(p) => Some(auth::read_jwt_secret(p)?),
            None => None,
        };
        let sigcache = sigcache::SignatureCache::open(
            &config.data_dir.join("signatures.redb"),
            config.signature_cache_entries,
        )
        .map_err(|e| ManagerError::Store(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| {
                ManagerError::Server(format!("cannot listen on {}: {e}", config.listen))
            })?;
        let state = Arc::new(State {
            config,
            registry,
            oplog,
            metrics: Metrics::new(),
            auth: auth::Credentials { token, jwt_secret },
            sigcache: Some(sigcache),
            nodes: Mutex::new(HashMap::new()),
            peer_ids: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            keygen_inflight: Mutex::new(HashSet::new()),
            aux_lock: tokio::sync::Mutex::new(()),
            next_conn: std::sync::atomic::AtomicU64::new(1),
            pools: Mutex::new(HashMap::new()),
            latency: Mutex::new(HashMap::new()),
            active: std::sync::atomic::AtomicUsize::new(0),
        });
        Ok(Manager { state, listener })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<std::net::SocketAddr, ManagerError> {
        self.listener
            .local_addr()
            .map_err(|e| ManagerError::Server(e.to_string()))
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ManagerError> {
        let filler = tokio::spawn(pool::fill(self.state.clone()));
        let pruner = tokio::spawn(prune_oplog(self.state.clone()));
        let app = api::router(self.state.clone());
        let result = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ManagerError::Server(e.to_string()));
        filler.abort();
        pruner.abort();
        result
    }
}

/// Keeps the operation log within `oplog_retention` records.
async fn prune_oplog(state: Arc<State>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    loop {
        tick.tick().await;
        let log = state.oplog.clone();
        let keep = state.config.oplog_retention;
        match tokio::task::spawn_blocking(move || log.prune_to(keep)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(removed = n, keep, "operation log pruned"),
            Ok(Err(e)) => tracing::warn!(error = %e, "operation log not pruned"),
            Err(e) => tracing::warn!(error = %e, "operation log pruning task failed"),
        }
    }
}
