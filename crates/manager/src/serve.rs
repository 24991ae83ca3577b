//! The manager's listeners: one accept loop with a connection limit, HTTP/1 with a header read
//! timeout, and (in [`crate::api`]) a body read deadline. The HTTP API and the node WebSocket
//! listener are served by [`serve`], so a client that opens connections and never finishes a
//! request costs a bounded number of sockets for a bounded time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::ManagerError;

/// Limits of one listener (`[http]` in the manager's configuration).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct HttpLimits {
    /// A connection must send a request's whole header section within this many seconds of
    /// starting it (or of its previous answer, when kept alive), else it is closed. Default 10.
    pub header_read_timeout_secs: u64,
    /// A request's whole body must arrive within this many seconds of its headers, else the
    /// answer is 408. Default 30.
    pub body_read_timeout_secs: u64,
    /// Most connections served at once; beyond it a new connection is answered 503 and closed
    /// at once (node WebSockets count too). Default 1024.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

impl HttpLimits {
    /// The header read timeout (at least 1 s).
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    /// The body read timeout (at least 1 s).
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs.max(1))
    }
}

/// What a connection over the limit is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\ncontent-length: 74\r\n\r\n\
{\"error\":{\"code\":\"internal\",\"message\":\"too many connections, try again\"}}\n";

/// How long an over-the-limit connection gets to take its 503.
const BUSY_WRITE: Duration = Duration::from_secs(1);

/// How long open connections get to finish after shutdown is asked.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves: each connection is
/// HTTP/1.1 (WebSocket upgrades included) with [`HttpLimits::header_read_timeout`], at most
/// [`HttpLimits::max_connections`] at once. The handlers see the peer as
/// [`ConnectInfo<std::net::SocketAddr>`].
pub(crate) async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ManagerError>
where
    L: Listener<Addr = std::net::SocketAddr>,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // `Listener::accept` retries failed accepts itself (with a pause, never a spin).
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: at the connection limit");
            // Told briefly and closed; the write is bounded in time so a stalled peer holds
            // nothing.
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(BUSY_WRITE, stream.write_all(BUSY)).await;
            });
            continue;
        };
        let service =
            TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo(peer))));
        let header_timeout = limits.header_read_timeout();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    match tokio::time::timeout(DRAIN, conn.as_mut()).await {
                        Ok(r) => r,
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a slot: all slots back means all connections are done.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), slots.acquire_many(all)).await;
    Ok(())
}

/// A TCP listener whose connections have Nagle off (small JSON frames and answers go out at once).
pub(crate) fn nodelay(listener: TcpListener) -> impl Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}
