//! Shared helpers for the integration tests: random node keys, small timeouts, bounded waits.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::time::Duration;

use cohort_p2p::{
    Address, Member, Multiaddr, P2p, P2pConfig, SessionId, SessionInbox, Zeroizing,
    address_of_secret,
};

/// Upper bound for any single test body.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(25);

/// A fresh random node key with its address. Random (not fixed) keys keep concurrently running
/// tests from ever admitting each other's hosts.
pub fn node() -> (Zeroizing<[u8; 32]>, Address) {
    loop {
        let secret = Zeroizing::new(rand::random::<[u8; 32]>());
        if let Ok(address) = address_of_secret(&secret) {
            return (secret, address);
        }
    }
}

pub fn session() -> SessionId {
    rand::random()
}

pub fn member(address: Address, dial: Option<&P2p>) -> Member {
    Member {
        address,
        dial: dial.map(dial_addr),
    }
}

pub fn dial_addr(host: &P2p) -> Multiaddr {
    host.listen_addrs()
        .into_iter()
        .next()
        .expect("host has a listen address")
}

/// Test configuration: loopback, short timeouts, fast redial.
pub fn config(secret: &Zeroizing<[u8; 32]>, members: Vec<Member>) -> P2pConfig {
    let mut config = P2pConfig::new(
        "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"),
        secret.clone(),
        members,
    );
    config.request_timeout = Duration::from_secs(5);
    config.redial_min = Duration::from_millis(50);
    config.redial_max = Duration::from_millis(500);
    config
}

pub async fn start(config: P2pConfig) -> P2p {
    P2p::start(config).await.expect("host starts")
}

/// Runs a test body under [`TEST_TIMEOUT`].
pub async fn bounded<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, body)
        .await
        .expect("test exceeded its time budget")
}

/// Polls `condition` every 20 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// Receives one message or fails after `limit`.
pub async fn recv_within(inbox: &mut SessionInbox, limit: Duration) -> Option<(Address, Vec<u8>)> {
    tokio::time::timeout(limit, inbox.recv())
        .await
        .ok()
        .flatten()
}
