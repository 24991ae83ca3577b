//! The node's WebSocket link to one manager: dial (over TLS with a pinned certificate for
//! `wss://`), authenticate mutually — the manager must announce the address this node pinned for
//! the URL, the node signs both nonces bound to that address, and the manager's welcome must
//! carry a signature by that address over both nonces — then serve operation frames; on any
//! failure, reconnect with capped exponential backoff. No frame is obeyed before the manager has
//! proved its identity.

use std::sync::Arc;
use std::time::Duration;

use cohort_engine::EthSignature;
use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, HexBytes, ManagerMsg, NodeMsg, decode, encode,
    manager_auth_digest, node_auth_digest,
};
use futures::{SinkExt, StreamExt};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::Inner;
use crate::config::ManagerEndpoint;

/// Outgoing frames waiting for the socket; bounded so a stuck manager cannot eat memory.
const OUTBOX: usize = 256;
/// Period of the node's status reports and WebSocket pings to the manager.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Keeps a link to `endpoint` up for the life of the node.
pub(crate) async fn run(inner: Arc<Inner>, endpoint: ManagerEndpoint) {
    let url = endpoint.url().to_string();
    let mut backoff = Duration::from_millis(200);
    let max = Duration::from_secs(inner.config.timeouts.max_backoff_secs.max(1));
    loop {
        match session(inner.clone(), &endpoint).await {
            Ok(()) => {
                tracing::info!(%url, "manager link closed");
                backoff = Duration::from_millis(200);
            }
            Err(e) => tracing::warn!(%url, error = %e, "manager link failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

async fn session(inner: Arc<Inner>, endpoint: &ManagerEndpoint) -> Result<(), String> {
    let url = endpoint.url();
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_message_size = Some(cohort_wire::MAX_FRAME_BYTES);
    ws_config.max_frame_size = Some(cohort_wire::MAX_FRAME_BYTES);
    let handshake = Duration::from_secs(inner.config.timeouts.handshake_secs.max(1));
    match endpoint.tls_cert_sha256() {
        None => {
            let (ws, _) = tokio::time::timeout(
                handshake,
                tokio_tungstenite::connect_async_with_config(url, Some(ws_config), false),
            )
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
            serve_link(inner, endpoint, ws).await
        }
        Some(pin) => {
            let ws = tokio::time::timeout(handshake, connect_tls(url, pin, ws_config))
                .await
                .map_err(|_| "connect timed out".to_string())??;
            serve_link(inner, endpoint, ws).await
        }
    }
}

/// Dials a `wss://` URL whose certificate must hash to `pin`.
async fn connect_tls(
    url: &str,
    pin: Bytes32,
    ws_config: WebSocketConfig,
) -> Result<WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>, String> {
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    let host = request
        .uri()
        .host()
        .ok_or("the URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = request.uri().port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot reach {host}:{port}: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| format!("bad host {host}: {e}"))?;
    let tls = crate::tls::connector(pin)?
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, tls, Some(ws_config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn serve_link<S>(
    inner: Arc<Inner>,
    endpoint: &ManagerEndpoint,
    ws: WebSocketStream<S>,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let url = endpoint.url();
    let handshake = Duration::from_secs(inner.config.timeouts.handshake_secs.max(1));
    let (mut sink, mut stream) = ws.split();

    // Challenge → Hello → Welcome, each side proving its key.
    let first = tokio::time::timeout(handshake, stream.next())
        .await
        .map_err(|_| "no challenge in time".to_string())?
        .ok_or("closed before challenge")?
        .map_err(|e| e.to_string())?;
    let text = first.into_text().map_err(|e| e.to_string())?;
    let (announced, nonce) = match decode::<ManagerMsg>(&text).map_err(|e| e.to_string())?.msg {
        ManagerMsg::Challenge { manager, nonce } => (manager, nonce),
        other => return Err(format!("expected a challenge, got {other:?}")),
    };
    let manager: Address = match endpoint.address() {
        Some(pinned) if pinned != announced => {
            return Err(format!(
                "refusing the manager: it announces {announced}, but this node pinned {pinned} for this URL"
            ));
        }
        Some(pinned) => pinned,
        None => {
            // Only reachable with insecure_accept_any_manager (checked at start).
            tracing::warn!(%url, manager = %announced, "accepting an unpinned manager (insecure_accept_any_manager)");
            announced
        }
    };
    let mut node_nonce = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut node_nonce);
    let node_nonce = Bytes32(node_nonce);
    let me = inner.identity.address();
    let sig = inner
        .identity
        .sign_digest(&node_auth_digest(&manager, &nonce, &node_nonce, &me))
        .map_err(|e| e.to_string())?;
    sink.send(Message::text(encode(NodeMsg::Hello {
        address: me,
        peer_id: inner.p2p.peer_id().to_string(),
        nonce: node_nonce,
        signature: HexBytes(sig.to_vec()),
        version: env!("CARGO_PKG_VERSION").to_string(),
        listen_addrs: Vec::new(),
    })))
    .await
    .map_err(|e| e.to_string())?;
    let welcome = tokio::time::timeout(handshake, stream.next())
        .await
        .map_err(|_| "no welcome in time".to_string())?
        .ok_or("closed before welcome")?
        .map_err(|e| e.to_string())?;
    let text = welcome.into_text().map_err(|e| e.to_string())?;
    match decode::<ManagerMsg>(&text).map_err(|e| e.to_string())?.msg {
        ManagerMsg::Welcome { signature, .. } => {
            let proof = <[u8; 65]>::try_from(signature.0.as_slice())
                .map_err(|_| "refusing the manager: its welcome signature is not 65 bytes")?;
            let digest = manager_auth_digest(&manager, &nonce, &node_nonce, &me);
            match EthSignature(proof).recover_address(&digest) {
                Ok(a) if a == manager.0 => {}
                _ => {
                    return Err(format!(
                        "refusing the manager: its welcome is not signed by {manager} over this link's nonces"
                    ));
                }
            }
        }
        ManagerMsg::Rejected { error } => return Err(format!("rejected: {}", error.message)),
        other => return Err(format!("expected welcome, got {other:?}")),
    }
    tracing::info!(%url, %manager, "authenticated to manager (mutually)");

    let (tx, mut rx) = mpsc::channel::<NodeMsg>(OUTBOX);
    let writer = tokio::spawn(async move {
        // WebSocket pings keep the manager's view of this link fresh and draw pongs that tell
        // the reader below the manager is still there.
        let mut ping = tokio::time::interval(HEARTBEAT);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let frame = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => Message::text(encode(msg)),
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Vec::new().into()),
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    });
    let _ = tx.send(crate::status::status(&inner)).await;

    // A status every few seconds reports prime-search progress; a manager silent for three
    // heartbeats (not even a pong) is gone, and the link is dialled again.
    let mut status_tick = tokio::time::interval(HEARTBEAT);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status_tick.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = status_tick.tick() => {
                if last_heard.elapsed() > 3 * HEARTBEAT {
                    writer.abort();
                    return Err("the manager went silent".into());
                }
                let _ = tx.try_send(crate::status::status(&inner));
                continue;
            }
        };
        last_heard = tokio::time::Instant::now();
        let Some(frame) = frame else {
            break;
        };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                writer.abort();
                return Err(e.to_string());
            }
        };
        let text = match frame {
            Message::Text(t) => t,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Binary(_) => {
                let _ = tx
                    .send(NodeMsg::Error {
                        error: ErrorBody::new(
                            ErrorCode::BadRequest,
                            "binary frames are not spoken",
                        ),
                    })
                    .await;
                continue;
            }
        };
        match decode::<ManagerMsg>(&text) {
            Ok(frame) => {
                let inner = inner.clone();
                let tx = tx.clone();
                tokio::spawn(async move { crate::dispatch::handle(inner, frame.msg, tx).await });
            }
            Err(e) => {
                tracing::warn!(error = %e, "malformed frame from manager");
                let _ = tx
                    .send(NodeMsg::Error {
                        error: ErrorBody::new(ErrorCode::BadRequest, e.to_string()),
                    })
                    .await;
            }
        }
    }
    writer.abort();
    Ok(())
}
