//! Typed errors of the transport.
//!
//! Callers (the MPC engine) must tell apart "this peer is not ours", "this payload can never be
//! sent", "try again later" and "the remote said no", so each is its own variant. No variant
//! carries key material or payload bytes.

use thiserror::Error;

use crate::identity::{Address, fmt_address};

/// Why the remote host (or the stream to it) refused a message; lets the caller decide between
/// retrying later and failing the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RefusalReason {
    /// The session is open at the receiver but its inbox is full (the consumer is not reading).
    #[error("the receiver's session inbox is full")]
    InboxFull,
    /// The session is not open at the receiver and its unknown-session buffer is full.
    #[error("the receiver's unknown-session buffer is full")]
    BufferFull,
    /// The receiver is shutting down.
    #[error("the receiver is shutting down")]
    ShuttingDown,
    /// The receiver dropped the stream without answering (e.g. the message exceeded its size
    /// limit, or it was over its concurrent-stream limit).
    #[error("the receiver dropped the stream")]
    StreamDropped,
    /// The receiver does not speak the Cohort protocol.
    #[error("the receiver does not support the protocol")]
    UnsupportedProtocol,
}

/// Everything that can go wrong starting the host or sending through it.
#[derive(Debug, Error)]
pub enum P2pError {
    /// The destination address is not in the configured membership.
    #[error("{} is not a member of the cohort", fmt_address(.0))]
    NotAMember(Address),
    /// The payload exceeds `max_message_bytes`; it would be refused by every receiver.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the refused payload.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// No connection or no answer within the request timeout.
    #[error("timed out")]
    Timeout,
    /// The remote refused the message.
    #[error("refused: {0}")]
    Refused(RefusalReason),
    /// The connection to the member went away while the message was in flight; whether it was
    /// delivered is unknown.
    #[error("disconnected from the peer")]
    Disconnected,
    /// The host has been shut down.
    #[error("the p2p host is shut down")]
    Shutdown,
    /// The 32 secret bytes are not a valid secp256k1 secret key.
    #[error("invalid secp256k1 secret key")]
    InvalidKey,
    /// The configuration is unusable.
    #[error("invalid p2p configuration: {0}")]
    InvalidConfig(&'static str),
    /// The listen address could not be bound.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// The libp2p transport could not be built.
    #[error("cannot build the transport: {0}")]
    Transport(String),
}
