//! Node WebSockets: the mutual challenge–response authentication (the node signs both nonces
//! and the manager address it pinned, members only; the manager's welcome signs both nonces
//! with the manager's identity key), then the socket pump — frames out of the node's outbox, frames in to [`crate::links::route`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use cohort_engine::EthSignature;
use cohort_wire::{
    Bytes32, ErrorBody, ErrorCode, HexBytes, ManagerMsg, NodeMsg, decode, encode,
    manager_auth_digest, node_auth_digest,
};
use futures::{SinkExt, StreamExt};
use rand::RngCore;

use crate::State;
use crate::links;
/// A node heard from neither by frame nor by ping for this long is taken as gone.
const NODE_SILENCE: Duration = Duration::from_secs(35);

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
    let manager = state.identity.address();
    if socket
        .send(Message::Text(
            encode(ManagerMsg::Challenge { manager, nonce }).into(),
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
    let (address, peer_id, node_nonce) = match hello {
        Ok(NodeMsg::Hello {
            address,
            peer_id,
            nonce: node_nonce,
            signature,
            ..
        }) => {
            let Ok(sig) = <[u8; 65]>::try_from(signature.0.as_slice()) else {
                reject(&mut socket, &state, "signature must be 65 bytes").await;
                return;
            };
            // Checked with this manager's own address: a node that pinned another manager
            // for the URL it dialled (a challenge relayed by that manager) fails here.
            let digest = node_auth_digest(&manager, &nonce, &node_nonce, &address);
            match EthSignature(sig).recover_address(&digest) {
                Ok(a) if a == address.0 => {}
                _ => {
                    reject(
                        &mut socket,
                        &state,
                        "signature does not match the address (or the node pinned another manager for this URL)",
                    )
                    .await;
                    return;
                }
            }
            if !state.config.members.contains(&address) {
                reject(&mut socket, &state, "not a member of this cohort").await;
                return;
            }
            (address, peer_id, node_nonce)
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

    let proof = match state.identity.sign_digest(&manager_auth_digest(
        &manager,
        &nonce,
        &node_nonce,
        &address,
    )) {
        Ok(sig) => sig,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the welcome");
            return;
        }
    };
    let (conn_id, mut rx) = links::attach(&state, address, peer_id);
    let (mut sink, mut stream) = socket.split();
    let welcome = encode(ManagerMsg::Welcome {
        members: state.config.members.clone(),
        peers: Vec::new(),
        signature: HexBytes(proof.to_vec()),
    });
    if sink.send(Message::Text(welcome.into())).await.is_err() {
        links::detach(&state, &address, conn_id);
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(Message::Text(encode(msg).into())).await.is_err() {
                break;
            }
        }
    });
    links::on_connected(&state, &address);

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
        links::route(&state, address, conn_id, msg);
    }
    writer.abort();
    links::detach(&state, &address, conn_id);
}
