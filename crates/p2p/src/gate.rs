//! The membership gate: a connection is admitted only if the remote's PeerId derives to a
//! member address.
//!
//! Members are configured by Ethereum address, not PeerId, so the gate recomputes the address from
//! the authenticated PeerId (which inlines the secp256k1 key) at connection time. Refusing in the
//! `handle_established_*` hooks closes the connection before any protocol handler exists, so a
//! non-member can never open a stream, whichever side dialled.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};
use thiserror::Error;
use tracing::debug;

use crate::identity::{Address, address_of_peer};
use crate::stats::Counters;

/// Reason attached to a denied connection.
#[derive(Debug, Error)]
#[error("peer is not a member of the cohort")]
pub(crate) struct NotAMemberPeer;

/// Admits members only; counts every refusal.
pub(crate) struct MembershipGate {
    members: HashSet<Address>,
    counters: Arc<Counters>,
}

impl MembershipGate {
    pub(crate) fn new(members: HashSet<Address>, counters: Arc<Counters>) -> Self {
        Self { members, counters }
    }

    fn admit(&self, peer: &PeerId, direction: &str) -> Result<(), ConnectionDenied> {
        match address_of_peer(peer) {
            Some(address) if self.members.contains(&address) => Ok(()),
            _ => {
                Counters::bump(&self.counters.refused_connections);
                debug!(%peer, direction, "refused connection from a non-member");
                Err(ConnectionDenied::new(NotAMemberPeer))
            }
        }
    }
}

impl NetworkBehaviour for MembershipGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(&peer, "inbound")?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.admit(&peer, "dial")?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(&peer, "outbound")?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
