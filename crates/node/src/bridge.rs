//! Carries the engine's byte-level delivery over the p2p host for one session.
//!
//! The sender of every incoming message is the authenticated p2p peer, mapped to its index in
//! the session's party list; messages from anyone else are dropped. A frame that does not parse
//! is passed on as garbage so that the engine stops the run at once and names its sender,
//! instead of the session waiting for its timeout.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cohort_engine::{RawIncoming, RawOutgoing};
use cohort_p2p::P2p;
use cohort_wire::{Address, PeerFrame, PeerKind};
use futures::{Sink, Stream, StreamExt};
use round_based::{Incoming, MessageDestination, MessageType};

/// Why a protocol message could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("p2p send to {to} failed: {reason}")]
pub struct BridgeError {
    to: Address,
    reason: String,
}

/// The incoming half of a session's delivery, as the engine reads it.
pub type Inbound = std::pin::Pin<Box<dyn Stream<Item = Result<RawIncoming, Infallible>> + Send>>;
/// The outgoing half of a session's delivery, as the engine writes it.
pub type Outbound = std::pin::Pin<Box<dyn Sink<RawOutgoing, Error = BridgeError> + Send>>;

/// Byte-level delivery for session `session` among `parties` (this node is `me`).
pub fn delivery(
    p2p: P2p,
    session: [u8; 32],
    parties: Vec<Address>,
    me: Address,
) -> (Inbound, Outbound) {
    let inbox = p2p.open_session(session);
    let ids = Arc::new(AtomicU64::new(0));
    let in_parties = parties.clone();
    let incoming = futures::stream::unfold(inbox, |mut inbox| async move {
        inbox.recv().await.map(|item| (item, inbox))
    })
    .filter_map(move |(from, payload)| {
        let sender = in_parties.iter().position(|p| p.0 == from);
        let ids = ids.clone();
        async move {
            let Some(sender) = sender else {
                tracing::warn!(from = %Address(from), "dropping protocol message from a non-party");
                return None;
            };
            let (msg_type, msg) = match PeerFrame::decode(payload) {
                Ok(frame) => (
                    match frame.kind {
                        PeerKind::Broadcast => MessageType::Broadcast,
                        PeerKind::P2P => MessageType::P2P,
                    },
                    frame.payload,
                ),
                // Garbage in, garbage on: the engine refuses it and names the sender.
                Err(_) => (MessageType::P2P, Vec::new()),
            };
            Some(Ok(Incoming {
                id: ids.fetch_add(1, Ordering::Relaxed),
                sender: sender as u16,
                msg_type,
                msg,
            }))
        }
    });
    let my_index = parties.iter().position(|p| *p == me);
    let outgoing = futures::sink::unfold(
        (p2p, parties, my_index),
        move |(p2p, parties, my_index), out: RawOutgoing| async move {
            let (targets, kind): (Vec<Address>, PeerKind) = match out.recipient {
                MessageDestination::AllParties => (
                    parties
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| Some(*k) != my_index)
                        .map(|(_, p)| *p)
                        .collect(),
                    PeerKind::Broadcast,
                ),
                MessageDestination::OneParty(j) => {
                    let to = parties.get(usize::from(j)).copied().ok_or(BridgeError {
                        to: me,
                        reason: format!("no party with index {j}"),
                    })?;
                    (vec![to], PeerKind::P2P)
                }
            };
            let bytes = PeerFrame {
                kind,
                payload: out.msg,
            }
            .encode();
            let sends = targets.iter().map(|to| {
                let p2p = p2p.clone();
                let bytes = bytes.clone();
                let to = *to;
                async move {
                    p2p.send(to.0, session, bytes)
                        .await
                        .map_err(|e| BridgeError {
                            to,
                            reason: e.to_string(),
                        })
                }
            });
            for r in futures::future::join_all(sends).await {
                r?;
            }
            Ok((p2p, parties, my_index))
        },
    );
    (Box::pin(incoming), Box::pin(outgoing))
}
