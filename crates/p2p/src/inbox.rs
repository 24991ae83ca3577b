//! Session inboxes and the buffer for sessions not opened yet.
//!
//! Parties of one MPC session start their rounds at slightly different times, so a message may
//! arrive before the local engine opens its session. Such messages are held in a bounded,
//! expiring buffer and handed over when the session opens.
//!
//! **Full inbox policy: refuse and count.** Delivery never blocks the swarm task. When an open
//! session's inbox is full, the message is dropped, counted in `dropped_messages`, and the sender's
//! `send` fails with [`RefusalReason::InboxFull`](crate::RefusalReason::InboxFull), so the sending
//! engine learns at once that the receiver is not keeping up rather than believing the message
//! was delivered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::codec::WireResponse;
use crate::config::UnknownSessionLimits;
use crate::error::RefusalReason;
use crate::identity::Address;
use crate::stats::Counters;

/// A session id: 32 random bytes chosen by the manager for one operation.
pub type SessionId = [u8; 32];

/// What an inbox yields: the authenticated sender's address and the payload.
type Inbound = (Address, Vec<u8>);

/// The receiving end of one session. Messages come with the *authenticated* sender address (taken
/// from the connection, never from the message). Dropping the inbox closes the session: later
/// messages for it are treated as for an unknown session.
pub struct SessionInbox {
    session: SessionId,
    generation: u64,
    receiver: mpsc::Receiver<Inbound>,
    registry: Arc<Registry>,
}

impl SessionInbox {
    /// Waits for the next message; `None` once the host has shut down (or the session was
    /// reopened elsewhere). Apply your own timeout: a silent peer is the protocol's business.
    pub async fn recv(&mut self) -> Option<(Address, Vec<u8>)> {
        self.receiver.recv().await
    }

    /// Takes a message if one is already waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<(Address, Vec<u8>)> {
        self.receiver.try_recv().ok()
    }

    /// The session this inbox receives for.
    pub fn session(&self) -> SessionId {
        self.session
    }
}

impl std::fmt::Debug for SessionInbox {
    // Payloads may carry protocol secrets in transit: show only the session.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionInbox")
            .field("session", &hex::encode(self.session))
            .finish_non_exhaustive()
    }
}

impl Drop for SessionInbox {
    fn drop(&mut self) {
        self.registry.unregister(&self.session, self.generation);
    }
}

/// A message waiting for its session.
struct Held {
    at: Instant,
    from: Address,
    payload: Vec<u8>,
}

struct OpenSession {
    generation: u64,
    sender: mpsc::Sender<Inbound>,
}

#[derive(Default)]
struct State {
    open: HashMap<SessionId, OpenSession>,
    held: HashMap<SessionId, VecDeque<Held>>,
    held_messages: usize,
    held_bytes: usize,
    next_generation: u64,
    closed: bool,
}

/// Routes inbound messages to open sessions or the bounded hold buffer. Shared by the swarm task
/// (delivery), the host handle (opening) and the inboxes (closing); every critical section is
/// short and never awaits.
pub(crate) struct Registry {
    state: Mutex<State>,
    limits: UnknownSessionLimits,
    inbox_capacity: usize,
    counters: Arc<Counters>,
}

impl Registry {
    pub(crate) fn new(
        limits: UnknownSessionLimits,
        inbox_capacity: usize,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            state: Mutex::new(State::default()),
            limits,
            inbox_capacity,
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of plain maps; the data is
        // still consistent enough to keep routing.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens (or reopens) a session and hands it every held message that has not expired.
    pub(crate) fn open(self: &Arc<Self>, session: SessionId, now: Instant) -> SessionInbox {
        let (sender, receiver) = mpsc::channel(self.inbox_capacity);
        let mut state = self.lock();
        let generation = state.next_generation;
        state.next_generation = state.next_generation.wrapping_add(1);
        if let Some(held) = state.held.remove(&session) {
            for message in held {
                state.held_messages -= 1;
                state.held_bytes -= message.payload.len();
                if now.duration_since(message.at) >= self.limits.ttl {
                    Counters::bump(&self.counters.expired_messages);
                    Counters::bump(&self.counters.dropped_messages);
                } else if sender.try_send((message.from, message.payload)).is_ok() {
                    Counters::bump(&self.counters.delivered_messages);
                } else {
                    Counters::bump(&self.counters.dropped_messages);
                }
            }
        }
        if !state.closed {
            let previous = state
                .open
                .insert(session, OpenSession { generation, sender });
            if previous.is_some() {
                warn!(
                    session = %hex::encode(session),
                    "session opened twice; the previous inbox is closed"
                );
            }
        }
        drop(state);
        SessionInbox {
            session,
            generation,
            receiver,
            registry: Arc::clone(self),
        }
    }

    /// Removes the session if it is still the one this inbox opened.
    fn unregister(&self, session: &SessionId, generation: u64) {
        let mut state = self.lock();
        if state
            .open
            .get(session)
            .is_some_and(|open| open.generation == generation)
        {
            state.open.remove(session);
        }
    }

    /// Routes one authenticated inbound message; the answer goes back to the sender.
    pub(crate) fn deliver(
        &self,
        session: SessionId,
        from: Address,
        payload: Vec<u8>,
        now: Instant,
    ) -> WireResponse {
        let mut state = self.lock();
        if state.closed {
            Counters::bump(&self.counters.dropped_messages);
            return WireResponse::Refused(RefusalReason::ShuttingDown);
        }
        let payload = match state.open.get(&session) {
            Some(open) => match open.sender.try_send((from, payload)) {
                Ok(()) => {
                    Counters::bump(&self.counters.delivered_messages);
                    return WireResponse::Accepted;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    Counters::bump(&self.counters.dropped_messages);
                    debug!(session = %hex::encode(session), "session inbox full; message refused");
                    return WireResponse::Refused(RefusalReason::InboxFull);
                }
                Err(mpsc::error::TrySendError::Closed((_, payload))) => {
                    // The inbox is being dropped right now; treat the session as not open.
                    state.open.remove(&session);
                    payload
                }
            },
            None => payload,
        };
        self.hold(&mut state, session, from, payload, now)
    }

    fn hold(
        &self,
        state: &mut State,
        session: SessionId,
        from: Address,
        payload: Vec<u8>,
        now: Instant,
    ) -> WireResponse {
        self.expire_locked(state, now);
        let limits = &self.limits;
        let queued = state.held.get(&session).map_or(0, VecDeque::len);
        let refuse = (queued == 0 && state.held.len() >= limits.max_sessions)
            || queued >= limits.max_messages_per_session
            || state.held_bytes.saturating_add(payload.len()) > limits.max_total_bytes;
        if refuse {
            Counters::bump(&self.counters.dropped_messages);
            debug!(session = %hex::encode(session), "unknown-session buffer full; message refused");
            return WireResponse::Refused(RefusalReason::BufferFull);
        }
        state.held_messages += 1;
        state.held_bytes += payload.len();
        state.held.entry(session).or_default().push_back(Held {
            at: now,
            from,
            payload,
        });
        WireResponse::Accepted
    }

    /// Drops held messages older than the TTL; called on every hold and periodically.
    pub(crate) fn expire(&self, now: Instant) {
        let mut state = self.lock();
        self.expire_locked(&mut state, now);
    }

    fn expire_locked(&self, state: &mut State, now: Instant) {
        let ttl: Duration = self.limits.ttl;
        let mut expired_messages = 0usize;
        let mut expired_bytes = 0usize;
        state.held.retain(|_, queue| {
            while queue
                .front()
                .is_some_and(|held| now.duration_since(held.at) >= ttl)
            {
                if let Some(held) = queue.pop_front() {
                    expired_messages += 1;
                    expired_bytes += held.payload.len();
                }
            }
            !queue.is_empty()
        });
        state.held_messages -= expired_messages;
        state.held_bytes -= expired_bytes;
        for _ in 0..expired_messages {
            Counters::bump(&self.counters.expired_messages);
            Counters::bump(&self.counters.dropped_messages);
        }
    }

    /// Messages currently held, for the stats gauge.
    pub(crate) fn held_messages(&self) -> usize {
        self.lock().held_messages
    }

    /// Called when the host stops: closes every inbox (their `recv` returns `None`) and frees the
    /// buffer.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.open.clear();
        state.held.clear();
        state.held_messages = 0;
        state.held_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(limits: UnknownSessionLimits, capacity: usize) -> (Arc<Registry>, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (
            Arc::new(Registry::new(limits, capacity, counters.clone())),
            counters,
        )
    }

    fn small_limits() -> UnknownSessionLimits {
        UnknownSessionLimits {
            max_sessions: 2,
            max_messages_per_session: 2,
            max_total_bytes: 10,
            ttl: Duration::from_secs(5),
        }
    }

    #[test]
    fn held_messages_are_delivered_on_open_in_order() {
        let (reg, _) = registry(small_limits(), 8);
        let now = Instant::now();
        assert_eq!(
            reg.deliver([1; 32], [9; 20], vec![1], now),
            WireResponse::Accepted
        );
        assert_eq!(
            reg.deliver([1; 32], [8; 20], vec![2], now),
            WireResponse::Accepted
        );
        let mut inbox = reg.open([1; 32], now);
        assert_eq!(inbox.try_recv(), Some(([9; 20], vec![1])));
        assert_eq!(inbox.try_recv(), Some(([8; 20], vec![2])));
        assert_eq!(inbox.try_recv(), None);
        assert_eq!(reg.held_messages(), 0);
    }

    #[test]
    fn buffer_limits_are_enforced() {
        let (reg, counters) = registry(small_limits(), 8);
        let now = Instant::now();
        let refused = WireResponse::Refused(RefusalReason::BufferFull);
        assert_eq!(
            reg.deliver([1; 32], [9; 20], vec![0], now),
            WireResponse::Accepted
        );
        assert_eq!(
            reg.deliver([1; 32], [9; 20], vec![0], now),
            WireResponse::Accepted
        );
        // Per-session cap.
        assert_eq!(reg.deliver([1; 32], [9; 20], vec![0], now), refused);
        assert_eq!(
            reg.deliver([2; 32], [9; 20], vec![0], now),
            WireResponse::Accepted
        );
        // Session-count cap.
        assert_eq!(reg.deliver([3; 32], [9; 20], vec![0], now), refused);
        // Byte cap: 3 held bytes + 8 > 10.
        assert_eq!(reg.deliver([2; 32], [9; 20], vec![0; 8], now), refused);
        assert_eq!(counters.snapshot(0).dropped_messages, 3);
    }

    #[test]
    fn held_messages_expire() {
        let (reg, counters) = registry(small_limits(), 8);
        let then = Instant::now();
        reg.deliver([1; 32], [9; 20], vec![0], then);
        reg.expire(then + Duration::from_secs(6));
        assert_eq!(reg.held_messages(), 0);
        let mut inbox = reg.open([1; 32], then + Duration::from_secs(6));
        assert_eq!(inbox.try_recv(), None);
        assert_eq!(counters.snapshot(0).expired_messages, 1);
    }

    #[test]
    fn full_inbox_refuses_and_drop_unregisters() {
        let (reg, counters) = registry(small_limits(), 1);
        let now = Instant::now();
        let inbox = reg.open([1; 32], now);
        assert_eq!(
            reg.deliver([1; 32], [9; 20], vec![0], now),
            WireResponse::Accepted
        );
        assert_eq!(
            reg.deliver([1; 32], [9; 20], vec![0], now),
            WireResponse::Refused(RefusalReason::InboxFull)
        );
        assert_eq!(counters.snapshot(0).dropped_messages, 1);
        drop(inbox);
        // Now unknown again: held.
        assert_eq!(
            reg.deliver([1; 32], [9; 20], vec![0], now),
            WireResponse::Accepted
        );
        assert_eq!(reg.held_messages(), 1);
    }

    #[test]
    fn reopening_keeps_the_new_inbox_registered() {
        let (reg, _) = registry(small_limits(), 4);
        let now = Instant::now();
        let first = reg.open([1; 32], now);
        let mut second = reg.open([1; 32], now);
        drop(first);
        reg.deliver([1; 32], [9; 20], vec![5], now);
        assert_eq!(second.try_recv(), Some(([9; 20], vec![5])));
    }
}
