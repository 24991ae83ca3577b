//! Counters of what the host refused or dropped.
//!
//! Refusals and drops are silent by design (a non-member gets nothing back); counters make them
//! observable to operators and tests without logging per event.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters shared by the swarm task, the gate, the codec and the session registry.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) refused_connections: AtomicU64,
    pub(crate) delivered_messages: AtomicU64,
    pub(crate) dropped_messages: AtomicU64,
    pub(crate) oversized_messages: AtomicU64,
    pub(crate) expired_messages: AtomicU64,
    pub(crate) inbound_failures: AtomicU64,
}

impl Counters {
    /// Adds one to a counter; relaxed ordering is enough for monotonic metrics.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Snapshot with the current buffer gauge filled in by the caller.
    pub(crate) fn snapshot(&self, buffered_messages: u64) -> P2pStats {
        P2pStats {
            refused_connections: self.refused_connections.load(Ordering::Relaxed),
            delivered_messages: self.delivered_messages.load(Ordering::Relaxed),
            dropped_messages: self.dropped_messages.load(Ordering::Relaxed),
            oversized_messages: self.oversized_messages.load(Ordering::Relaxed),
            expired_messages: self.expired_messages.load(Ordering::Relaxed),
            inbound_failures: self.inbound_failures.load(Ordering::Relaxed),
            buffered_messages,
        }
    }
}

/// A point-in-time copy of the host's counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2pStats {
    /// Connections (inbound or outbound) refused because the peer's address is not a member.
    pub refused_connections: u64,
    /// Inbound messages handed to a session inbox.
    pub delivered_messages: u64,
    /// Inbound messages discarded: oversized, inbox full, unknown-session buffer full, or
    /// expired in that buffer.
    pub dropped_messages: u64,
    /// Of the dropped messages, those over `max_message_bytes` (the stream was dropped).
    pub oversized_messages: u64,
    /// Of the dropped messages, those that waited in the unknown-session buffer past its TTL.
    pub expired_messages: u64,
    /// Inbound streams that failed (oversized, truncated, timed out, ...).
    pub inbound_failures: u64,
    /// Messages currently waiting for their session to be opened.
    pub buffered_messages: u64,
}
