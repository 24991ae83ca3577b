//! The host: a cheap-to-clone handle over one background swarm task.
//!
//! All libp2p state lives in a single tokio task that owns the [`Swarm`]; handles talk to it
//! through a bounded command queue and read shared snapshots (connected members, listen
//! addresses, counters). The task dials every member that has a dial address, redials with bounded
//! exponential backoff, routes inbound messages to sessions, and stops when the last handle is
//! dropped or [`P2p::shutdown`] is called.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use crate::codec::{CohortCodec, PROTOCOL, WireRequest, WireResponse};
use crate::config::P2pConfig;
use crate::error::{P2pError, RefusalReason};
use crate::gate::MembershipGate;
use crate::identity::{
    Address, address_of_peer, address_of_public, fmt_address, keypair_from_secret,
};
use crate::inbox::{Registry, SessionId, SessionInbox};
use crate::stats::{Counters, P2pStats};

/// Depth of the handle → task command queue; senders wait (bounded by their timeout) when full.
const COMMAND_QUEUE: usize = 1024;
/// How long `start` waits for the listener to report its bound address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `shutdown` waits for the task to finish before aborting it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Period of the housekeeping tick: due redials and expiry of held messages.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_millis(100);
/// Mesh connections are kept open while both sides live; liveness is TCP's business.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(u64::MAX);

/// The composed behaviour: the gate first, so a refused peer never reaches request-response.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    gate: MembershipGate,
    messages: request_response::Behaviour<CohortCodec>,
}

/// A handle to a running p2p host. Clones share the same host; the host stops when the last clone
/// is dropped or on [`P2p::shutdown`].
#[derive(Clone)]
pub struct P2p {
    inner: Arc<Inner>,
}

struct Inner {
    local_address: Address,
    peer_id: PeerId,
    members: HashSet<Address>,
    max_message_bytes: usize,
    request_timeout: Duration,
    commands: mpsc::Sender<Command>,
    connected: watch::Receiver<BTreeSet<Address>>,
    listen_addrs: Arc<Mutex<Vec<Multiaddr>>>,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for P2p {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P2p")
            .field("address", &fmt_address(&self.inner.local_address))
            .field("peer_id", &self.inner.peer_id)
            .finish_non_exhaustive()
    }
}

enum Command {
    Send {
        to: Address,
        request: WireRequest,
        reply: oneshot::Sender<SendReply>,
    },
    Shutdown,
}

enum SendReply {
    /// The member is not connected (any more); the request comes back untouched for a retry.
    NotConnected(WireRequest),
    /// The request went out and this is its outcome.
    Done(Result<(), P2pError>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl P2p {
    /// Builds the swarm, binds the listen address and spawns the swarm task. When this returns,
    /// [`P2p::listen_addrs`] holds the bound address and dials to members are under way.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: P2pConfig) -> Result<Self, P2pError> {
        config.validate()?;
        let keypair = keypair_from_secret(&config.secret_key)?;
        let local_address = address_of_public(&keypair.public()).ok_or(P2pError::InvalidKey)?;
        let peer_id = keypair.public().to_peer_id();
        let members: HashSet<Address> = config.members.iter().map(|m| m.address).collect();
        let counters = Arc::new(Counters::default());
        let registry = Arc::new(Registry::new(
            config.unknown_session_buffer.clone(),
            config.inbox_capacity,
            counters.clone(),
        ));

        let behaviour = Behaviour {
            gate: MembershipGate::new(members.clone(), counters.clone()),
            messages: request_response::Behaviour::with_codec(
                CohortCodec::new(config.max_message_bytes, counters.clone()),
                [(PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(config.request_timeout)
                    .with_max_concurrent_streams(config.max_concurrent_streams),
            ),
        };
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default().nodelay(true),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .map_err(|e| P2pError::Transport(e.to_string()))?
            .with_behaviour(|_| behaviour)
            .map_err(|never| match never {})?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();

        let listener = swarm
            .listen_on(config.listen.clone())
            .map_err(|e| P2pError::Listen(e.to_string()))?;
        let first_addr = tokio::time::timeout(LISTEN_TIMEOUT, async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::NewListenAddr {
                        listener_id,
                        address,
                    } if listener_id == listener => return Ok(address),
                    SwarmEvent::ListenerClosed { reason, .. } => {
                        return Err(P2pError::Listen(match reason {
                            Ok(()) => "listener closed".to_owned(),
                            Err(e) => e.to_string(),
                        }));
                    }
                    SwarmEvent::ListenerError { error, .. } => {
                        return Err(P2pError::Listen(error.to_string()));
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| P2pError::Listen("timed out waiting for the listener".to_owned()))??;
        info!(
            address = %fmt_address(&local_address),
            %peer_id,
            listen = %first_addr,
            members = members.len(),
            "p2p host listening"
        );

        let listen_addrs = Arc::new(Mutex::new(vec![first_addr]));
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (connected_tx, connected_rx) = watch::channel(BTreeSet::new());
        let now = Instant::now();
        let dials = config
            .members
            .iter()
            .filter(|m| m.address != local_address)
            .filter_map(|m| {
                m.dial.clone().map(|addr| {
                    (
                        m.address,
                        DialTarget {
                            addr,
                            backoff: config.redial_min,
                            next_attempt: now,
                            in_flight: None,
                            connected_since: None,
                        },
                    )
                })
            })
            .collect();

        let task = SwarmTask {
            swarm,
            commands: commands_rx,
            connected: connected_tx,
            members: members.clone(),
            peers: HashMap::new(),
            by_address: HashMap::new(),
            dials,
            dial_ids: HashMap::new(),
            pending: HashMap::new(),
            registry: registry.clone(),
            counters: counters.clone(),
            listen_addrs: listen_addrs.clone(),
            redial_min: config.redial_min,
            redial_max: config.redial_max,
        };
        let handle = tokio::spawn(task.run());

        Ok(Self {
            inner: Arc::new(Inner {
                local_address,
                peer_id,
                members,
                max_message_bytes: config.max_message_bytes,
                request_timeout: config.request_timeout,
                commands: commands_tx,
                connected: connected_rx,
                listen_addrs,
                registry,
                counters,
                task: Mutex::new(Some(handle)),
            }),
        })
    }

    /// This node's Ethereum address, as other members know it.
    pub fn local_address(&self) -> Address {
        self.inner.local_address
    }

    /// This node's libp2p identity (derived from the same key as its address).
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The addresses actually bound (e.g. with the real port when listening on port 0), so
    /// others can be told where to dial.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        lock(&self.inner.listen_addrs).clone()
    }

    /// Members with at least one live, admitted connection right now.
    pub fn connected_members(&self) -> Vec<Address> {
        self.inner.connected.borrow().iter().copied().collect()
    }

    /// Waits until every listed member (other than ourselves) is connected; lets a caller start a
    /// protocol only once its parties are reachable.
    pub async fn wait_for_members(
        &self,
        members: &[Address],
        timeout: Duration,
    ) -> Result<(), P2pError> {
        let local = self.inner.local_address;
        let mut connected = self.inner.connected.clone();
        let wait = connected.wait_for(|set| {
            members
                .iter()
                .all(|member| *member == local || set.contains(member))
        });
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(P2pError::Shutdown),
            Err(_) => Err(P2pError::Timeout),
        }
    }

    /// Counters of refusals, drops and deliveries, for metrics.
    pub fn stats(&self) -> P2pStats {
        let held = u64::try_from(self.inner.registry.held_messages()).unwrap_or(u64::MAX);
        self.inner.counters.snapshot(held)
    }

    /// Opens the inbox of a session, handing it any messages that arrived before (within the
    /// unknown-session limits). Opening a session that is already open replaces the old inbox.
    pub fn open_session(&self, session: SessionId) -> SessionInbox {
        self.inner.registry.open(session, Instant::now())
    }

    /// Sends one message of a session to a member and waits for its acknowledgement.
    ///
    /// If the member is not connected yet, waits for the connection; the whole call is bounded by
    /// `request_timeout`. `Ok` means the receiving host accepted the message (delivered to the
    /// open session, or held until the session opens). Messages sent concurrently to the same
    /// member may arrive in any order; await each `send` to keep order. A send to our own address
    /// is delivered locally.
    pub async fn send(
        &self,
        to: Address,
        session: SessionId,
        payload: Vec<u8>,
    ) -> Result<(), P2pError> {
        let inner = &self.inner;
        if !inner.members.contains(&to) {
            return Err(P2pError::NotAMember(to));
        }
        if payload.len() > inner.max_message_bytes {
            return Err(P2pError::TooLarge {
                size: payload.len(),
                max: inner.max_message_bytes,
            });
        }
        if to == inner.local_address {
            return match inner.registry.deliver(session, to, payload, Instant::now()) {
                WireResponse::Accepted => Ok(()),
                WireResponse::Refused(reason) => Err(P2pError::Refused(reason)),
            };
        }
        let request = WireRequest { session, payload };
        tokio::time::timeout(inner.request_timeout, self.send_remote(to, request))
            .await
            .unwrap_or(Err(P2pError::Timeout))
    }

    async fn send_remote(&self, to: Address, mut request: WireRequest) -> Result<(), P2pError> {
        let mut connected = self.inner.connected.clone();
        loop {
            if connected.wait_for(|set| set.contains(&to)).await.is_err() {
                return Err(P2pError::Shutdown);
            }
            let (reply, answer) = oneshot::channel();
            self.inner
                .commands
                .send(Command::Send { to, request, reply })
                .await
                .map_err(|_| P2pError::Shutdown)?;
            match answer.await.map_err(|_| P2pError::Shutdown)? {
                SendReply::Done(result) => return result,
                // The task publishes disconnections before answering, so the next wait blocks
                // until the member is back: no spinning.
                SendReply::NotConnected(back) => request = back,
            }
        }
    }

    /// Stops the swarm task and waits for it (bounded), closing every connection and inbox.
    /// Other clones of the handle then fail with [`P2pError::Shutdown`].
    pub async fn shutdown(&self) {
        let task = lock(&self.inner.task).take();
        // If the queue is full the task is busy; the timeout keeps shutdown bounded anyway.
        let queued = tokio::time::timeout(
            SHUTDOWN_TIMEOUT,
            self.inner.commands.send(Command::Shutdown),
        )
        .await;
        if let Some(mut task) = task {
            if queued.is_err() {
                task.abort();
            }
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                warn!("p2p task did not stop in time; aborting it");
                task.abort();
            }
        }
    }
}

/// Redial state of one member we are configured to dial.
struct DialTarget {
    addr: Multiaddr,
    backoff: Duration,
    next_attempt: Instant,
    in_flight: Option<ConnectionId>,
    connected_since: Option<Instant>,
}

impl DialTarget {
    /// Schedules the next attempt after the current backoff and doubles it, up to `max`.
    fn schedule(&mut self, now: Instant, max: Duration) {
        self.next_attempt = now + self.backoff;
        self.backoff = (self.backoff * 2).min(max);
    }
}

/// Owns the swarm; everything libp2p happens here, one event at a time.
struct SwarmTask {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    connected: watch::Sender<BTreeSet<Address>>,
    members: HashSet<Address>,
    peers: HashMap<PeerId, Address>,
    by_address: HashMap<Address, PeerId>,
    dials: HashMap<Address, DialTarget>,
    dial_ids: HashMap<ConnectionId, Address>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<SendReply>>,
    registry: Arc<Registry>,
    counters: Arc<Counters>,
    listen_addrs: Arc<Mutex<Vec<Multiaddr>>>,
    redial_min: Duration,
    redial_max: Duration,
}

impl SwarmTask {
    async fn run(mut self) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_PERIOD);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Send { to, request, reply }) => self.on_send(to, request, reply),
                    Some(Command::Shutdown) | None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = housekeeping.tick() => {
                    let now = Instant::now();
                    self.registry.expire(now);
                    self.dial_due(now);
                }
            }
        }
        self.registry.close();
        for (_, reply) in self.pending.drain() {
            // The caller may have given up already; nothing to do then.
            let _ = reply.send(SendReply::Done(Err(P2pError::Shutdown)));
        }
        self.connected.send_replace(BTreeSet::new());
        info!("p2p host stopped");
    }

    fn on_send(&mut self, to: Address, request: WireRequest, reply: oneshot::Sender<SendReply>) {
        match self.by_address.get(&to) {
            Some(peer) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .messages
                    .send_request(peer, request);
                self.pending.insert(id, reply);
            }
            None => {
                let _ = reply.send(SendReply::NotConnected(request));
            }
        }
    }

    fn publish_connected(&self) {
        self.connected
            .send_replace(self.by_address.keys().copied().collect());
    }

    fn dial_due(&mut self, now: Instant) {
        let due: Vec<Address> = self
            .dials
            .iter()
            .filter(|(address, target)| {
                target.in_flight.is_none()
                    && target.next_attempt <= now
                    && !self.by_address.contains_key(*address)
            })
            .map(|(address, _)| *address)
            .collect();
        for address in due {
            let Some(target) = self.dials.get_mut(&address) else {
                continue;
            };
            let opts = DialOpts::unknown_peer_id()
                .address(target.addr.clone())
                .build();
            let id = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    debug!(member = %fmt_address(&address), addr = %target.addr, "dialling member");
                    target.in_flight = Some(id);
                    self.dial_ids.insert(id, address);
                }
                Err(error) => {
                    debug!(member = %fmt_address(&address), %error, "dial not started");
                    target.schedule(now, self.redial_max);
                }
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = Instant::now();
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Messages(event)) => self.on_message(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gate(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } => self.on_established(peer_id, connection_id, now),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.on_disconnected(peer_id, now),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some(address) = self.dial_ids.remove(&connection_id) {
                    debug!(member = %fmt_address(&address), %error, "dial failed");
                    if let Some(target) = self.dials.get_mut(&address) {
                        target.in_flight = None;
                        target.schedule(now, self.redial_max);
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                debug!(remote = %send_back_addr, %error, "inbound connection failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let mut addrs = lock(&self.listen_addrs);
                if !addrs.contains(&address) {
                    addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                lock(&self.listen_addrs).retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                warn!(?reason, "p2p listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                warn!(%error, "p2p listener error");
            }
            _ => {}
        }
    }

    fn on_established(&mut self, peer: PeerId, connection: ConnectionId, now: Instant) {
        let dialled = self.dial_ids.remove(&connection);
        // The gate admitted this peer, so it derives to a member; stay defensive anyway.
        let Some(address) = address_of_peer(&peer).filter(|a| self.members.contains(a)) else {
            warn!(%peer, "connection to a non-member slipped past the gate; closing");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        if let Some(target_address) = dialled
            && let Some(target) = self.dials.get_mut(&target_address)
        {
            target.in_flight = None;
            if target_address != address {
                warn!(
                    expected = %fmt_address(&target_address),
                    answered = %fmt_address(&address),
                    "a member's dial address is served by another member"
                );
                target.schedule(now, self.redial_max);
            }
        }
        if let Some(target) = self.dials.get_mut(&address) {
            target.connected_since.get_or_insert(now);
        }
        if self.peers.insert(peer, address).is_none() {
            self.by_address.insert(address, peer);
            info!(member = %fmt_address(&address), %peer, "member connected");
            self.publish_connected();
        }
    }

    fn on_disconnected(&mut self, peer: PeerId, now: Instant) {
        let Some(address) = self.peers.remove(&peer) else {
            return;
        };
        self.by_address.remove(&address);
        self.publish_connected();
        info!(member = %fmt_address(&address), "member disconnected");
        if let Some(target) = self.dials.get_mut(&address) {
            // A connection that lived long resets the backoff; one that keeps dying right after
            // it is made (e.g. the remote refuses us) keeps backing off.
            let lived = target
                .connected_since
                .take()
                .map_or(Duration::ZERO, |since| now.duration_since(since));
            if lived >= self.redial_max {
                target.backoff = self.redial_min;
            }
            target.schedule(now, self.redial_max);
        }
    }

    fn on_message(&mut self, event: request_response::Event<WireRequest, WireResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                // The sender is the authenticated peer, never anything inside the message.
                let from = self.peers.get(&peer).copied().or_else(|| {
                    address_of_peer(&peer).filter(|address| self.members.contains(address))
                });
                let response = match from {
                    Some(from) => self.registry.deliver(
                        request.session,
                        from,
                        request.payload,
                        Instant::now(),
                    ),
                    None => {
                        Counters::bump(&self.counters.dropped_messages);
                        WireResponse::Refused(RefusalReason::StreamDropped)
                    }
                };
                if self
                    .swarm
                    .behaviour_mut()
                    .messages
                    .send_response(channel, response)
                    .is_err()
                {
                    debug!(%peer, "response not sent: the stream is gone");
                }
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let result = match response {
                        WireResponse::Accepted => Ok(()),
                        WireResponse::Refused(reason) => Err(P2pError::Refused(reason)),
                    };
                    let _ = reply.send(SendReply::Done(result));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %error, "outbound message failed");
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(SendReply::Done(Err(outbound_error(error))));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                Counters::bump(&self.counters.inbound_failures);
                debug!(%peer, %error, "inbound message failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}

/// Maps libp2p's failure to the caller-facing error.
fn outbound_error(error: OutboundFailure) -> P2pError {
    match error {
        OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => P2pError::Disconnected,
        OutboundFailure::Timeout => P2pError::Timeout,
        OutboundFailure::UnsupportedProtocols => {
            P2pError::Refused(RefusalReason::UnsupportedProtocol)
        }
        OutboundFailure::Io(_) => P2pError::Refused(RefusalReason::StreamDropped),
    }
}
