//! The node's WebSocket link to one manager: dial, answer the challenge with the node key,
//! then serve operation frames; on any failure, reconnect with capped exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use cohort_wire::{
    ErrorBody, ErrorCode, HexBytes, ManagerMsg, NodeMsg, auth_digest, decode, encode,
};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::Inner;

/// Outgoing frames waiting for the socket; bounded so a stuck manager cannot eat memory.
const OUTBOX: usize = 256;
/// Period of the node's status reports and WebSocket pings to the manager.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Keeps a link to `url` up for the life of the node.
pub(crate) async fn run(inner: Arc<Inner>, url: String) {
    let mut backoff = Duration::from_millis(200);
    let max = Duration::from_secs(inner.config.timeouts.max_backoff_secs.max(1));
    loop {
        match session(inner.clone(), &url).await {
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

async fn session(inner: Arc<Inner>, url: &str) -> Result<(), String> {
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_message_size = Some(cohort_wire::MAX_FRAME_BYTES);
    ws_config.max_frame_size = Some(cohort_wire::MAX_FRAME_BYTES);
    let handshake = Duration::from_secs(inner.config.timeouts.handshake_secs.max(1));
    let (ws, _) = tokio::time::timeout(
        handshake,
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config), false),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = ws.split();

    // Challenge → Hello → Welcome.
    let first = tokio::time::timeout(handshake, stream.next())
        .await
        .map_err(|_| "no challenge in time".to_string())?
        .ok_or("closed before challenge")?
        .map_err(|e| e.to_string())?;
    let text = first.into_text().map_err(|e| e.to_string())?;
    let (manager_id, nonce) = match decode::<ManagerMsg>(&text).map_err(|e| e.to_string())?.msg {
        ManagerMsg::Challenge { manager_id, nonce } => (manager_id, nonce),
        other => return Err(format!("expected a challenge, got {other:?}")),
    };
    let me = inner.identity.address();
    let sig = inner
        .identity
        .sign_digest(&auth_digest(&manager_id, &nonce, &me))
        .map_err(|e| e.to_string())?;
    sink.send(Message::text(encode(NodeMsg::Hello {
        address: me,
        peer_id: inner.p2p.peer_id().to_string(),
        signature: HexBytes(sig.to_vec()),
        version: env!("CARGO_PKG_VERSION").to_string(),
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
        ManagerMsg::Welcome { .. } => {}
        ManagerMsg::Rejected { error } => return Err(format!("rejected: {}", error.message)),
        other => return Err(format!("expected welcome, got {other:?}")),
    }
    tracing::info!(%url, %manager_id, "authenticated to manager");

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
