//! Cohort's node-to-node transport on libp2p.
//!
//! Nodes of a cohort run MPC protocol rounds among themselves; this crate gives them an
//! authenticated, membership-gated, bounded message pipe keyed by session id. One secp256k1 key
//! per node yields both its libp2p [`PeerId`] and its Ethereum address, so the transport can name
//! the sender of every message by the address the rest of Cohort uses — never by a field inside
//! the message.
//!
//! * [`identity`] — key → PeerId → address derivation.
//! * [`P2p`] — the host handle: start, send, open sessions, stats, shutdown.
//! * [`SessionInbox`] — the per-session receiving end, with a bounded buffer for messages that
//!   arrive before their session is opened.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod host;
pub mod identity;
mod inbox;
mod stats;

pub use config::{Member, P2pConfig, UnknownSessionLimits};
pub use error::{P2pError, RefusalReason};
pub use host::P2p;
pub use identity::{Address, address_of_peer, address_of_secret, peer_id_of_secret};
pub use inbox::{SessionId, SessionInbox};
pub use libp2p::{Multiaddr, PeerId};
pub use stats::P2pStats;
pub use zeroize::Zeroizing;
