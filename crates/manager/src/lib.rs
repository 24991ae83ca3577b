//! The Cohort manager: serves the HTTP API, accepts node WebSockets (mutual challenge–response:
//! the node key, members only, and the manager's own identity key, [`identity`]; optionally over
//! TLS on a listener of its own), and coordinates every operation with the prepare → ready → start
//! handshake. It holds no key shares; it verifies every signature before anyone sees it and
//! records every operation — who took part, who was absent, the outcome.
//!
//! ## The path of one operation
//!
//! A signature, `POST /v1/keys/{id}/sign`:
//!
//! 1. [`api`] — `router` → `auth` → `sign`: the key id is checked ([`cohort_wire::KeyId`]) and
//!    the operation runs on a task of its own.
//! 2. [`ops::sign`] — the key from [`persist::registry`], aux info first if a member lacks it
//!    ([`ops::aux`]), then an [`handshake::Op`] in its tracing span.
//! 3. [`handshake::Op::prepare`] — `KeySignPrepare` to every holder through
//!    [`links::Links::send`] (→ [`ws`] → the node); answers come back through
//!    [`links::route`] into the operation's inbox until t are ready; [`latency`] learns who was
//!    fast.
//! 4. The choice, in [`ops::sign`]: a presignature from [`pool`] whose signer set is ready (one
//!    round), else the t fastest; the rest are cancelled, late answers go to
//!    [`handshake::Op::await_late`]; a rejected state batch turns into its rollback.
//! 5. [`handshake::Op::run_phase`] — `KeySignStart`, the results collected; the signature is
//!    verified against the key's address; a failed presignature signing is signed again in full
//!    (`retry_of`).
//! 6. [`handshake::Op::finish`] — [`record::OpRecord`] into [`persist::oplog`], [`metrics`], the
//!    log line; the API answers with the signature and the session id.
//!
//! A resharing, `POST /v1/keys/{id}/reshare` (and `/refresh`):
//!
//! 1. [`api`] → [`ops::reshare`] — the new [`cohort_wire::Committee`] checked, the key's
//!    [`locks::KeyLock`] taken, aux info ensured ([`ops::aux`]), the key's presignatures
//!    discarded ([`pool`]).
//! 2. [`handshake::Op::prepare`] — `KeyResharePrepare` to old and new parties; t_old old
//!    holders and every new party must be ready.
//! 3. [`handshake::Op::run_phase`] — `KeyReshareStart` with the dealers, first failure ends it
//!    (then `KeyReshareAbort`); every new party must report the unchanged key.
//! 4. The registry switches to the new committee with `pending_commit` = everyone
//!    ([`persist::registry`]); [`handshake::Op::run_phase`] sends `KeyReshareCommit` and
//!    collects the confirmations, which [`ops::reshare::confirm_commit`] (a [`links::Hooks`]
//!    frame hook) takes off `pending_commit`; a node that missed it gets it again from
//!    [`ops::reshare::redeliver_commits`] when it reconnects.
//! 5. [`handshake::Op::finish`] records it, as for a signature.

#![forbid(unsafe_code)]
// `OpError` carries the record's party lists to the API answer; it is built once per failed
// operation, so its size does not matter and boxing would only add noise.
#![allow(clippy::result_large_err)]

mod api;
pub mod auth;
pub mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
pub mod identity;
mod latency;
mod links;
mod locks;
mod mantle;
pub mod metrics;
mod ops;
pub mod persist;
mod pool;
mod record;
mod serve;
pub mod sigcache;
#[cfg(test)]
mod tests;
mod tls;
mod ws;

use std::sync::Arc;

pub use config::ManagerConfig;
use metrics::Metrics;
use persist::oplog::OperationLog;
use persist::registry::Registry;

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

/// What the links tell the operations: redelivery on reconnect, commit confirmations.
const HOOKS: links::Hooks = links::Hooks {
    on_connect: &[
        ops::delete::redeliver_deletes,
        ops::reshare::redeliver_commits,
        ops::presign::forget_on_connect,
    ],
    on_frame: &[ops::reshare::confirm_commit],
};

/// Shared manager state: each field is one concern with its own gateway.
pub(crate) struct State {
    pub config: ManagerConfig,
    /// The manager's identity key: its address is the manager id nodes pin.
    pub identity: identity::ManagerIdentity,
    pub registry: Registry,
    pub oplog: OperationLog,
    pub metrics: Metrics,
    /// API credentials: the static token and/or Mantle's JWT secret.
    pub auth: auth::Credentials,
    /// Verified state-batch signatures, to answer identical requests (None if unopenable).
    pub sigcache: Option<sigcache::SignatureCache>,
    /// Node connections and operation inboxes.
    pub links: links::Links,
    pub hooks: links::Hooks,
    /// Key ids with a keygen, resharing or deletion in flight.
    pub key_locks: locks::KeyLocks,
    /// One aux-info generation at a time.
    pub aux_lock: tokio::sync::Mutex<()>,
    /// Presignatures ready per key.
    pub pool: pool::PresigPool,
    /// Who answers fastest, to prefer them as signers.
    pub latency: latency::Latency,
    /// Live operations in flight; background presigning runs only when there are none.
    pub active: locks::Active,
}

impl State {
    pub(crate) fn new(
        config: ManagerConfig,
        identity: identity::ManagerIdentity,
        registry: Registry,
        oplog: OperationLog,
        auth: auth::Credentials,
        sigcache: Option<sigcache::SignatureCache>,
    ) -> State {
        let metrics = Metrics::new();
        let pool = pool::PresigPool::new(metrics.presignatures_ready.clone());
        State {
            config,
            identity,
            registry,
            oplog,
            metrics,
            auth,
            sigcache,
            links: links::Links::default(),
            hooks: HOOKS,
            key_locks: locks::KeyLocks::default(),
            aux_lock: tokio::sync::Mutex::new(()),
            pool,
            latency: latency::Latency::default(),
            active: locks::Active::default(),
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
    /// The node WebSocket's own listener (`ws_listen`), with its TLS configuration.
    ws_listener: Option<(tokio::net::TcpListener, Option<Arc<rustls::ServerConfig>>)>,
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
        let identity = identity::ManagerIdentity::load_or_create(&config.data_dir)?;
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let credentials = auth::Credentials { token, jwt_secret };
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| {
                ManagerError::Server(format!("cannot listen on {}: {e}", config.listen))
            })?;
        let api_addr = listener
            .local_addr()
            .map_err(|e| ManagerError::Server(e.to_string()))?;
        check_api_exposure(api_addr, &credentials)?;
        let ws_listener = match &config.ws_listen {
            None => None,
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    ManagerError::Server(format!("cannot listen on ws_listen {addr}: {e}"))
                })?;
                Some((l, tls))
            }
        };
        let state = Arc::new(State::new(
            config,
            identity,
            registry,
            oplog,
            credentials,
            Some(sigcache),
        ));
        Ok(Manager {
            state,
            listener,
            ws_listener,
        })
    }

    /// The manager's id: the address of its identity key, which nodes pin.
    pub fn manager_address(&self) -> cohort_wire::Address {
        self.state.identity.address()
    }

    /// The node WebSocket's own bound address, if `ws_listen` is set.
    pub fn ws_local_addr(&self) -> Option<std::net::SocketAddr> {
        self.ws_listener
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
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
        let filler = tokio::spawn(ops::presign::fill(self.state.clone()));
        let pruner = tokio::spawn(prune_oplog(self.state.clone()));
        let app = api::router(self.state.clone(), self.ws_listener.is_none());
        let limits = self.state.config.http.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let ws_server = match self.ws_listener {
            None => None,
            Some((listener, tls)) => {
                let ws_app = api::ws_router(self.state.clone());
                let stop = stopped(stop_rx.clone());
                let limits = limits.clone();
                Some(tokio::spawn(async move {
                    match tls {
                        Some(config) => {
                            serve::serve(
                                tls::TlsListener::new(listener, config)?,
                                ws_app,
                                limits,
                                stop,
                            )
                            .await
                        }
                        None => serve::serve(serve::nodelay(listener), ws_app, limits, stop).await,
                    }
                }))
            }
        };
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let mut result =
            serve::serve(serve::nodelay(self.listener), app, limits, stopped(stop_rx)).await;
        if let Some(ws) = ws_server {
            let ws_result = ws
                .await
                .map_err(|e| ManagerError::Server(e.to_string()))
                .and_then(|r| r);
            result = result.and(ws_result);
        }
        filler.abort();
        pruner.abort();
        result
    }
}

/// Refuses an API reachable beyond loopback without a credential: anyone on the network could
/// then create keys and sign.
pub(crate) fn check_api_exposure(
    addr: std::net::SocketAddr,
    credentials: &auth::Credentials,
) -> Result<(), ManagerError> {
    if !addr.ip().is_loopback() && credentials.open() {
        return Err(ManagerError::Config(format!(
            "the API listens on {addr}, beyond loopback, without a credential: set api_token_file (or jwt_secret_file), or listen on 127.0.0.1"
        )));
    }
    Ok(())
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

#[cfg(test)]
mod exposure_tests {
    use super::*;

    fn config(dir: &std::path::Path, listen: &str) -> ManagerConfig {
        let mut c = ManagerConfig::from_toml(&format!(
            "data_dir = \"{}\"\nmembers = [\"0x{}\", \"0x{}\"]\nlisten = \"{listen}\"",
            dir.display(),
            "11".repeat(20),
            "22".repeat(20)
        ))
        .unwrap();
        c.signature_cache_entries = 10;
        c
    }

    #[tokio::test]
    async fn an_api_beyond_loopback_needs_a_token_and_the_ws_listener_is_apart() {
        let dir = std::env::temp_dir().join(format!("cohort-exposed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let e = Manager::bind(config(&dir, "0.0.0.0:0"))
            .await
            .err()
            .expect("an open API on 0.0.0.0 must be refused")
            .to_string();
        assert!(e.contains("beyond loopback"), "{e}");

        std::fs::write(dir.join("token"), "t").unwrap();
        let mut c = config(&dir, "0.0.0.0:0");
        c.api_token_file = Some(dir.join("token"));
        let m = Manager::bind(c).await.unwrap();
        assert!(m.ws_local_addr().is_none());
        drop(m);

        let mut c = config(&dir, "127.0.0.1:0");
        c.ws_listen = Some("127.0.0.1:0".into());
        let m = Manager::bind(c).await.unwrap();
        let api = m.local_addr().unwrap();
        let ws = m.ws_local_addr().unwrap();
        assert_ne!(api, ws);
        let address = m.manager_address();
        tokio::spawn(m.serve(std::future::pending()));
        // The API answers on its own listener, and no longer serves /v1/ws there.
        let get = |addr: std::net::SocketAddr, path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                s.read_to_string(&mut out),
            )
            .await
            .unwrap()
            .unwrap();
            out
        };
        let status = get(api, "/v1/status").await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(
            status.contains(&format!("{address:?}"))
                || status
                    .to_lowercase()
                    .contains(&format!("{address:?}").to_lowercase()),
            "{status}"
        );
        assert!(get(api, "/v1/ws").await.starts_with("HTTP/1.1 404"));
        assert!(get(ws, "/v1/status").await.starts_with("HTTP/1.1 404"));
        // /v1/ws on its listener wants a WebSocket upgrade, so a plain GET is not a 404.
        assert!(!get(ws, "/v1/ws").await.starts_with("HTTP/1.1 404"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
