//! Node WebSockets: challenge–response authentication with the node key (members only), then
//! routing of node replies to the operation waiting for them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use cohort_engine::EthSignature;
use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, ManagerMsg, NodeMsg, auth_digest, decode, encode,
};
use futures::{SinkExt, StreamExt};
use rand::RngCore;
use tokio::sync::mpsc;

use crate::{NodeConn, State, now_ms};

/// Frames waiting for one node's socket.
const OUTBOX: usize = 256;
/// A node heard from neither by frame nor by ping for this long is taken as gone.
const NODE_SILENCE: Duration = Duration::from_secs(35);

fn session_of(msg: &NodeMsg) -> Option<Bytes32> {
    match msg {
        NodeMsg::AuxInfoReady { session_id }
        | NodeMsg::KeyGenReady { session_id, .. }
        | NodeMsg::KeySignReady { session_id, .. }
        | NodeMsg::Refused { session_id, .. }
        | NodeMsg::AuxInfoFinish { session_id, .. }
        | NodeMsg::KeyGenFinish { session_id, .. }
        | NodeMsg::KeySignFinish { session_id, .. }
        | NodeMsg::KeyDeleted { session_id, .. }
        | NodeMsg::KeyReshareReady { session_id }
        | NodeMsg::PresignReady { session_id }
        | NodeMsg::PresignFinish { session_id, .. }
        | NodeMsg::KeySignPartial { session_id, .. }
        | NodeMsg::KeyReshareFinish { session_id, .. }
        | NodeMsg::KeyReshareDone { session_id, .. } => Some(*session_id),
        NodeMsg::Hello { .. }
        | NodeMsg::Status { .. }
        | NodeMsg::Error { .. }
        | NodeMsg::Pong { .. } => None,
    }
}

async fn reject(socket: &mut WebSocket, state: &State, why: &str) {
    state.metrics.ws_refused.inc();
    tracing::warn!(reason = why, "node connection refused");
    let _ = socket
        .send(Message::Text(
            encode(ManagerMsg::Rejected {
                error: ErrorBody::new(ErrorCode::Unauthorized, why),
            })
            .into(),
        ))
        .await;
    let _ = socket.send(Message::Close(None)).await;
}

/// Authenticates one node socket and serves it until it closes.
pub(crate) async fn serve(state: Arc<State>, mut socket: WebSocket) {
    let mut nonce = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut nonce);
    let nonce = Bytes32(nonce);
    let manager_id = state.config.manager_id.clone();
    if socket
        .send(Message::Text(
            encode(ManagerMsg::Challenge {
                manager_id: manager_id.clone(),
                nonce,
            })
            .into(),
        ))
        .await
        .is_err()
    {
        return;
    }
    let handshake = Duration::from_secs(state.config.timeouts.handshake_secs.max(1));
    let hello = match tokio::time::timeout(handshake, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => decode::<NodeMsg>(&t).map(|f| f.msg),
        Ok(_) => {
            reject(&mut socket, &state, "expected a text hello").await;
            return;
        }
        Err(_) => {
            reject(&mut socket, &state, "no hello in time").await;
            return;
        }
    };
    let (address, peer_id) = match hello {
        Ok(NodeMsg::Hello {
            address,
            peer_id,
            signature,
            ..
        }) => {
            let Ok(sig) = <[u8; 65]>::try_from(signature.0.as_slice()) else {
                reject(&mut socket, &state, "signature must be 65 bytes").await;
                return;
            };
            let digest = auth_digest(&manager_id, &nonce, &address);
            match EthSignature(sig).recover_address(&digest) {
                Ok(a) if a == address.0 => {}
                _ => {
                    reject(&mut socket, &state, "signature does not match the address").await;
                    return;
                }
            }
            if !state.config.members.contains(&address) {
                reject(&mut socket, &state, "not a member of this cohort").await;
                return;
            }
            (address, peer_id)
        }
        Ok(_) => {
            reject(&mut socket, &state, "expected hello").await;
            return;
        }
        Err(e) => {
            reject(&mut socket, &state, &format!("bad hello: {e}")).await;
            return;
        }
    };

    let (tx, mut rx) = mpsc::channel::<ManagerMsg>(OUTBOX);
    let conn_id = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let mut replaced = false;
    if let Ok(mut nodes) = state.nodes.lock() {
        replaced = nodes
            .insert(
                address,
                NodeConn {
                    tx: tx.clone(),
                    conn_id,
                    connected_at_ms: now_ms(),
                    aux_members: None,
                    keys: 0,
                    primes_ready: 0,
                },
            )
            .is_some();
        state.metrics.nodes_connected.set(nodes.len() as i64);
    }
    if replaced {
        // The node answers each request on the connection it came in on: whatever ran on the
        // old one will never be answered.
        notify_waiters(
            &state,
            address,
            "node reconnected; its answers on the previous connection are lost",
        );
    }
    if let Ok(mut ids) = state.peer_ids.lock() {
        ids.insert(address, peer_id);
    }
    tracing::info!(%address, "node connected");
    let (mut sink, mut stream) = socket.split();
    let welcome = encode(ManagerMsg::Welcome {
        members: state.config.members.clone(),
    });
    if sink.send(Message::Text(welcome.into())).await.is_err() {
        drop_conn(&state, &address, conn_id);
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(Message::Text(encode(msg).into())).await.is_err() {
                break;
            }
        }
    });
    redeliver_deletes(&state, &address);
    redeliver_commits(&state, &address);

    // Nodes send a status and a ping every 10 s: a node silent for much longer is gone (power
    // loss, partition) even if no TCP reset ever arrives.
    loop {
        let frame = match tokio::time::timeout(NODE_SILENCE, stream.next()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(%address, "node silent for {NODE_SILENCE:?}; closing");
                break;
            }
        };
        let text = match frame {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Binary(_)) => {
                tracing::warn!(%address, "binary frame from node; closing");
                break;
            }
            Err(e) => {
                tracing::warn!(%address, error = %e, "node socket error; closing");
                break;
            }
        };
        let msg = match decode::<NodeMsg>(&text) {
            Ok(f) => f.msg,
            Err(e) => {
                tracing::warn!(%address, error = %e, "malformed frame from node; closing");
                break;
            }
        };
        route(&state, address, conn_id, msg);
    }
    writer.abort();
    if !drop_conn(&state, &address, conn_id) {
        // A newer connection of this node took over (and waiters were told then).
        tracing::info!(%address, "superseded node connection closed");
        return;
    }
    tracing::info!(%address, "node disconnected");
    notify_waiters(&state, address, "node disconnected during the operation");
}

/// Operations waiting on `address` learn that it is gone at once instead of at their timeout.
fn notify_waiters(state: &State, address: Address, why: &str) {
    let waiters: Vec<_> = state
        .waiters
        .lock()
        .map(|w| w.values().cloned().collect())
        .unwrap_or_default();
    for w in waiters {
        let _ = w.try_send((
            address,
            NodeMsg::Error {
                error: ErrorBody::new(ErrorCode::Timeout, why),
            },
        ));
    }
}

/// Forgets connection `conn_id` of `address`; false if a newer connection replaced it.
fn drop_conn(state: &State, address: &Address, conn_id: u64) -> bool {
    let Ok(mut nodes) = state.nodes.lock() else {
        return false;
    };
    let current = nodes.get(address).is_some_and(|c| c.conn_id == conn_id);
    if current {
        nodes.remove(address);
    }
    state.metrics.nodes_connected.set(nodes.len() as i64);
    current
}

fn route(state: &State, from: Address, conn_id: u64, msg: NodeMsg) {
    match &msg {
        NodeMsg::Status {
            aux_members,
            keys,
            primes_ready,
        } => {
            if let Ok(mut nodes) = state.nodes.lock()
                && let Some(c) = nodes.get_mut(&from)
                && c.conn_id == conn_id
            {
                c.aux_members = Some(aux_members.clone());
                c.keys = *keys;
                c.primes_ready = *primes_ready;
            }
            return;
        }
        NodeMsg::Error { error } => {
            tracing::warn!(%from, code = ?error.code, message = %error.message, "node reported an error");
            return;
        }
        NodeMsg::Pong { .. } | NodeMsg::Hello { .. } => return,
        NodeMsg::KeyReshareDone {
            key_id,
            result: Ok(()),
            session_id,
        } => {
            if let Ok(Some(mut k)) = state.registry.get(key_id)
                && k.key_session_id == *session_id
                && k.pending_commit.contains(&from)
            {
                k.pending_commit.retain(|a| *a != from);
                if let Err(e) = state.registry.put(&k) {
                    tracing::error!(error = %e, "registry write failed");
                }
            }
        }
        _ => {}
    }
    let Some(session) = session_of(&msg) else {
        return;
    };
    let waiter = state
        .waiters
        .lock()
        .ok()
        .and_then(|w| w.get(&session).cloned());
    match waiter {
        Some(w) => {
            if w.try_send((from, msg)).is_err() {
                tracing::warn!(%from, %session, "operation inbox full; reply dropped");
            }
        }
        None => tracing::debug!(%from, %session, "reply for no running operation"),
    }
}

/// Resends resharing commits a reconnecting node missed.
fn redeliver_commits(state: &State, address: &Address) {
    let Ok(keys) = state.registry.list() else {
        return;
    };
    for k in keys
        .into_iter()
        .filter(|k| !k.deleted && k.pending_commit.contains(address))
    {
        state.send_to(
            address,
            ManagerMsg::KeyReshareCommit {
                session_id: k.key_session_id,
                key_id: k.key_id,
                new_parties: k.parties,
            },
        );
    }
}

/// Tells a reconnecting node about keys deleted while it was away.
fn redeliver_deletes(state: &State, address: &Address) {
    let Ok(keys) = state.registry.list() else {
        return;
    };
    for k in keys
        .into_iter()
        .filter(|k| k.deleted && k.parties.contains(address))
    {
        let mut s = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        state.send_to(
            address,
            ManagerMsg::KeyDelete {
                session_id: Bytes32(s),
                key_id: k.key_id,
            },
        );
    }
}
