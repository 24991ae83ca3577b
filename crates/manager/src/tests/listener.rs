//! The listener over real sockets: a connection that never finishes its headers is closed
//! within the header read timeout, a trickled body gets 408 within the body read timeout, and
//! connections beyond the limit are refused at once while the ones inside it are served.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Net;
use crate::config::HttpLimits;

/// Serves the API of `net` on a fresh loopback port; returns its address.
async fn listen(net: &Net) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = crate::api::router(net.state.clone(), true);
    let limits = net.state.config.http.clone();
    tokio::spawn(crate::serve::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    addr
}

/// Reads until the peer closes (or `limit` passes); returns what came and when it closed.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&out).into(), Some(start.elapsed()));
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), None),
        }
    }
}

async fn healthz(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut s, Duration::from_secs(5)).await.0
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed_within_the_read_timeout() {
    let limits = HttpLimits {
        header_read_timeout_secs: 1,
        ..HttpLimits::default()
    };
    let net = Net::with_http(2, 1, 1, limits);
    let addr = listen(&net).await;
    // Half a request line, then silence; and a connection that sends nothing at all.
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"POST /v1/keys HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let (_, closed) = read_to_close(&mut partial, Duration::from_secs(5)).await;
    let closed = closed.expect("a stalled header section is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    let (_, closed) = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle connection is closed");
    // A kept-alive connection idle after its answer is closed the same way.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_to_close(&mut kept, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed.is_some(), "kept-alive idle connection closed");
    assert!(healthz(addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_within_the_body_timeout() {
    let limits = HttpLimits {
        body_read_timeout_secs: 1,
        ..HttpLimits::default()
    };
    let net = Net::with_http(2, 1, 1, limits);
    let addr = listen(&net).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n{\"key",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let (answer, closed) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"bad_request""#), "{answer}");
    assert!(closed.is_some(), "the connection is closed after the 408");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_without_starving_the_others() {
    let limits = HttpLimits {
        max_connections: 4,
        header_read_timeout_secs: 30,
        ..HttpLimits::default()
    };
    let net = Net::with_http(2, 1, 1, limits);
    let addr = listen(&net).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = TcpStream::connect(addr).await.unwrap();
        held.push(s);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Hundreds more: each is answered 503 and closed at once, none is held.
    let start = Instant::now();
    for _ in 0..300 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (answer, closed) = read_to_close(&mut s, Duration::from_secs(2)).await;
        assert!(closed.is_some(), "refused at once");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The held ones are still served; once one leaves, a newcomer is served.
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut held[0], Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held.remove(0));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(healthz(addr).await.starts_with("HTTP/1.1 200"));
}
