//! Host configuration.
//!
//! Everything that bounds memory or time is a field here, with defaults sized for the MPC rounds
//! Cohort runs (aux-info messages reach ~500 KiB), so an operator can tighten them and tests can
//! shrink them.

use std::fmt;
use std::time::Duration;

use libp2p::Multiaddr;
use zeroize::Zeroizing;

use crate::error::P2pError;
use crate::identity::{Address, fmt_address};

/// Largest payload the wire format can frame (u32 length prefix).
const WIRE_MAX: usize = u32::MAX as usize;

/// One member of the cohort: its address (its name) and, optionally, where to dial it. Members
/// without a dial address are only reached when they dial us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's Ethereum address; its libp2p PeerId must derive to this address.
    pub address: Address,
    /// Where this host dials the member (and redials it after a disconnect).
    pub dial: Option<Multiaddr>,
}

/// Bounds on messages held for sessions that are not open yet: a peer that starts a round a
/// little earlier than us must not lose its first message, but nobody may fill our memory with
/// made-up session ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSessionLimits {
    /// Distinct not-yet-open sessions held at once.
    pub max_sessions: usize,
    /// Messages held per not-yet-open session.
    pub max_messages_per_session: usize,
    /// Total payload bytes held across all not-yet-open sessions.
    pub max_total_bytes: usize,
    /// How long a held message waits for its session before it is dropped.
    pub ttl: Duration,
}

impl Default for UnknownSessionLimits {
    fn default() -> Self {
        Self {
            max_sessions: 64,
            max_messages_per_session: 256,
            max_total_bytes: 64 * 1024 * 1024,
            ttl: Duration::from_secs(15),
        }
    }
}

/// Configuration of one [`P2p`](crate::P2p) host.
#[derive(Clone)]
pub struct P2pConfig {
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/7000` (tests: `/ip4/127.0.0.1/tcp/0`).
    pub listen: Multiaddr,
    /// The node key (32 secret bytes): it is both the libp2p identity and the node's address.
    pub secret_key: Zeroizing<[u8; 32]>,
    /// The cohort: only these addresses may connect or be sent to.
    pub members: Vec<Member>,
    /// Largest payload sent or accepted; larger inbound streams are dropped unread.
    pub max_message_bytes: usize,
    /// Bound on one `send`: waiting for the connection plus waiting for the acknowledgement.
    pub request_timeout: Duration,
    /// Bounds on the buffer for messages whose session is not open yet.
    pub unknown_session_buffer: UnknownSessionLimits,
    /// Capacity of each session inbox; when full, further messages are refused (see
    /// [`SessionInbox`](crate::SessionInbox)).
    pub inbox_capacity: usize,
    /// First redial delay after a failed dial or a lost connection.
    pub redial_min: Duration,
    /// Cap of the exponential redial backoff.
    pub redial_max: Duration,
    /// Concurrent request streams per connection (inbound + outbound).
    pub max_concurrent_streams: usize,
}

impl P2pConfig {
    /// A configuration with Cohort's defaults: 8 MiB messages, 30 s requests, 64×256 messages
    /// buffered for 15 s, inboxes of 1024, redial 250 ms … 10 s.
    pub fn new(listen: Multiaddr, secret_key: Zeroizing<[u8; 32]>, members: Vec<Member>) -> Self {
        Self {
            listen,
            secret_key,
            members,
            max_message_bytes: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            unknown_session_buffer: UnknownSessionLimits::default(),
            inbox_capacity: 1024,
            redial_min: Duration::from_millis(250),
            redial_max: Duration::from_secs(10),
            max_concurrent_streams: 256,
        }
    }

    /// Rejects settings that would make the host unbounded or unusable.
    pub(crate) fn validate(&self) -> Result<(), P2pError> {
        if self.max_message_bytes == 0 || self.max_message_bytes > WIRE_MAX {
            return Err(P2pError::InvalidConfig(
                "max_message_bytes must be between 1 and u32::MAX",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(P2pError::InvalidConfig("request_timeout must be positive"));
        }
        if self.inbox_capacity == 0 {
            return Err(P2pError::InvalidConfig("inbox_capacity must be positive"));
        }
        if self.redial_min.is_zero() || self.redial_max < self.redial_min {
            return Err(P2pError::InvalidConfig(
                "redial backoff must satisfy 0 < redial_min <= redial_max",
            ));
        }
        if self.max_concurrent_streams == 0 {
            return Err(P2pError::InvalidConfig(
                "max_concurrent_streams must be positive",
            ));
        }
        if self.unknown_session_buffer.ttl.is_zero() {
            return Err(P2pError::InvalidConfig(
                "unknown_session_buffer.ttl must be positive",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for P2pConfig {
    // Hand-written so the secret key can never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|m| fmt_address(&m.address))
            .collect();
        f.debug_struct("P2pConfig")
            .field("listen", &self.listen)
            .field("secret_key", &"<redacted>")
            .field("members", &members)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("unknown_session_buffer", &self.unknown_session_buffer)
            .field("inbox_capacity", &self.inbox_capacity)
            .field("redial_min", &self.redial_min)
            .field("redial_max", &self.redial_max)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let config = P2pConfig::new(
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            Zeroizing::new([0xabu8; 32]),
            vec![],
        );
        let text = format!("{config:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("171")); // 0xab as a decimal array element
        assert!(!text.to_lowercase().contains("abab"));
    }

    #[test]
    fn validation_rejects_unbounded_settings() {
        let mut config = P2pConfig::new(
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            Zeroizing::new([1u8; 32]),
            vec![],
        );
        assert!(config.validate().is_ok());
        config.max_message_bytes = 0;
        assert!(config.validate().is_err());
        config.max_message_bytes = 1024;
        config.redial_max = config.redial_min / 2;
        assert!(config.validate().is_err());
    }
}
