//! Links to the nodes: they only move frames. Each authenticated connection has an outbox; each
//! running operation has an inbox registered by its session id; [`route`] hands a node's frame
//! to the inbox of the session it answers, and a node that goes away (or reconnects, which
//! loses whatever ran on the old connection) is announced to every inbox at once as
//! [`Inbound::Gone`]. What an operation does about it is the operation's business
//! ([`crate::handshake`]); what is owed to a node that comes back is told by the reconnect
//! hooks the operations provide ([`Hooks`]).

use std::collections::HashMap;
use std::sync::Mutex;

use cohort_wire::{Address, Bytes32, ManagerMsg, NodeMsg};
use tokio::sync::mpsc;

use crate::State;
use crate::locks::lock;

/// Frames waiting for one node's socket.
pub(crate) const OUTBOX: usize = 256;

/// What an operation's inbox receives from one node.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "frames pass by value through small bounded inboxes; boxing would allocate per frame"
)]
pub(crate) enum Inbound {
    /// A frame of this session.
    Msg(NodeMsg),
    /// The node disconnected (or reconnected): it will not answer this session.
    Gone(String),
}

/// One authenticated node connection.
pub(crate) struct NodeConn {
    /// Its outbox (the socket's writer drains it).
    pub tx: mpsc::Sender<ManagerMsg>,
    /// Tells this connection apart from a later one of the same node.
    pub conn_id: u64,
    /// When it authenticated (unix ms).
    pub connected_at_ms: u64,
    /// The membership the node has aux info for; None until its first status report, so that
    /// a fresh connection is not mistaken for a node lacking aux info.
    pub aux_members: Option<Vec<Address>>,
    /// READY keys it reported.
    pub keys: u64,
    /// Safe-prime pairs it reported ready.
    pub primes_ready: u64,
}

/// What operations want to know about links, without links knowing operations.
pub(crate) struct Hooks {
    /// Run when a node (re)connects, after its welcome: redelivery of what it missed.
    pub on_connect: &'static [fn(&State, &Address)],
    /// Run for every session frame before it is routed, whether or not an operation still
    /// waits for it (a commit confirmation may answer a redelivery long after its operation).
    pub on_frame: &'static [fn(&State, Address, &NodeMsg)],
}

/// Connections, peer ids and the inboxes of running operations.
#[derive(Default)]
pub(crate) struct Links {
    nodes: Mutex<HashMap<Address, NodeConn>>,
    peer_ids: Mutex<HashMap<Address, String>>,
    inboxes: Mutex<HashMap<Bytes32, mpsc::Sender<(Address, Inbound)>>>,
    next_conn: std::sync::atomic::AtomicU64,
}

/// A snapshot of one node's link, for `GET /v1/nodes`.
pub(crate) struct NodeView {
    /// The libp2p peer id it announced.
    pub peer_id: Option<String>,
    /// Connection facts, if connected: (since ms, aux members, keys, primes ready).
    pub conn: Option<(u64, Option<Vec<Address>>, u64, u64)>,
}

impl Links {
    /// The members in `members` that are connected, in `members`' order.
    pub(crate) fn connected(&self, members: &[Address]) -> Vec<Address> {
        let nodes = lock(&self.nodes);
        members
            .iter()
            .filter(|m| nodes.contains_key(m))
            .copied()
            .collect()
    }

    /// Queues `msg` for `to`; false if it is not connected or its outbox is full.
    pub(crate) fn send(&self, to: &Address, msg: ManagerMsg) -> bool {
        lock(&self.nodes)
            .get(to)
            .is_some_and(|c| c.tx.try_send(msg).is_ok())
    }

    /// Registers the inbox of session `session_id` (bounded by `capacity`).
    pub(crate) fn open_inbox(
        &self,
        session_id: Bytes32,
        capacity: usize,
    ) -> mpsc::Receiver<(Address, Inbound)> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        lock(&self.inboxes).insert(session_id, tx);
        rx
    }

    /// Forgets the inbox of `session_id`.
    pub(crate) fn close_inbox(&self, session_id: &Bytes32) {
        lock(&self.inboxes).remove(session_id);
    }

    /// The members that lack aux info for `members` (by their last status report).
    pub(crate) fn lacking_aux(&self, members: &[Address]) -> Vec<Address> {
        lock(&self.nodes)
            .iter()
            .filter(|(_, c)| c.aux_members.as_ref().is_some_and(|a| a != members))
            .map(|(a, _)| *a)
            .collect()
    }

    /// One node's link as the API shows it.
    pub(crate) fn view(&self, address: &Address) -> NodeView {
        let conn = lock(&self.nodes).get(address).map(|c| {
            (
                c.connected_at_ms,
                c.aux_members.clone(),
                c.keys,
                c.primes_ready,
            )
        });
        NodeView {
            peer_id: lock(&self.peer_ids).get(address).cloned(),
            conn,
        }
    }

    /// Tells every running operation that `address` is gone, at once instead of at their
    /// deadlines.
    fn notify_gone(&self, address: Address, why: &str) {
        let inboxes: Vec<_> = lock(&self.inboxes).values().cloned().collect();
        for inbox in inboxes {
            if inbox
                .try_send((address, Inbound::Gone(why.into())))
                .is_err()
            {
                tracing::warn!(%address, "operation inbox full; disconnect notice dropped");
            }
        }
    }

    fn count(&self, state: &State) {
        state
            .metrics
            .nodes_connected
            .set(lock(&self.nodes).len() as i64);
    }
}

/// Attaches a new authenticated connection of `address`; returns its id and outbox. A
/// connection it replaces is announced as gone: the node answers each request on the connection
/// it came in on, so whatever ran on the old one will never be answered.
pub(crate) fn attach(
    state: &State,
    address: Address,
    peer_id: String,
) -> (u64, mpsc::Receiver<ManagerMsg>) {
    let links = &state.links;
    let (tx, rx) = mpsc::channel::<ManagerMsg>(OUTBOX);
    let conn_id = links
        .next_conn
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let replaced = lock(&links.nodes)
        .insert(
            address,
            NodeConn {
                tx,
                conn_id,
                connected_at_ms: crate::now_ms(),
                aux_members: None,
                keys: 0,
                primes_ready: 0,
            },
        )
        .is_some();
    links.count(state);
    if replaced {
        links.notify_gone(
            address,
            "node reconnected; its answers on the previous connection are lost",
        );
    }
    lock(&links.peer_ids).insert(address, peer_id);
    tracing::info!(%address, "node connected");
    (conn_id, rx)
}

/// Runs the reconnect hooks for `address` (after its welcome went out).
pub(crate) fn on_connected(state: &State, address: &Address) {
    for hook in state.hooks.on_connect {
        hook(state, address);
    }
}

/// Detaches connection `conn_id` of `address`; operations waiting on it learn at once. A
/// connection already superseded by a newer one changes nothing (its operations were told when
/// it was replaced).
pub(crate) fn detach(state: &State, address: &Address, conn_id: u64) {
    let current = {
        let mut nodes = lock(&state.links.nodes);
        let current = nodes.get(address).is_some_and(|c| c.conn_id == conn_id);
        if current {
            nodes.remove(address);
        }
        current
    };
    state.links.count(state);
    if !current {
        tracing::info!(%address, "superseded node connection closed");
        return;
    }
    tracing::info!(%address, "node disconnected");
    state
        .links
        .notify_gone(*address, "node disconnected during the operation");
}

/// Hands one frame of connection `conn_id` of `from` on: a status updates the link; a session
/// frame is shown to the frame hooks, then goes to its operation's inbox.
pub(crate) fn route(state: &State, from: Address, conn_id: u64, msg: NodeMsg) {
    match &msg {
        NodeMsg::Status {
            aux_members,
            keys,
            primes_ready,
            ..
        } => {
            if let Some(c) = lock(&state.links.nodes).get_mut(&from)
                && c.conn_id == conn_id
            {
                c.aux_members = Some(aux_members.clone());
                c.keys = *keys;
                c.primes_ready = *primes_ready;
            }
            return;
        }
        NodeMsg::Error { error } => {
            tracing::warn!(%from, code = %error.code, message = %error.message, "node reported an error");
            return;
        }
        _ => {}
    }
    let Some(session) = msg.session_id() else {
        return;
    };
    for hook in state.hooks.on_frame {
        hook(state, from, &msg);
    }
    let inbox = lock(&state.links.inboxes).get(&session).cloned();
    match inbox {
        Some(inbox) => {
            if inbox.try_send((from, Inbound::Msg(msg))).is_err() {
                tracing::warn!(%from, %session, "operation inbox full; reply dropped");
            }
        }
        None => tracing::debug!(%from, %session, "reply for no running operation"),
    }
}
