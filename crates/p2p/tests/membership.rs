//! The membership gate over real connections: a key outside the membership can neither connect
//! (whoever dials) nor get a message delivered, and every refusal is counted.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_dialling_a_member_is_refused() {
    bounded(async {
        let (km, m_addr) = node();
        let (kx, x_addr) = node();
        let (_, other) = node();
        let m = start(config(&km, vec![member(m_addr, None), member(other, None)])).await;
        // The outsider believes it belongs and dials the member.
        let mut xc = config(&kx, vec![member(m_addr, Some(&m)), member(x_addr, None)]);
        xc.request_timeout = Duration::from_millis(800);
        let x = start(xc).await;
        let id = session();
        let mut inbox = m.open_session(id);

        assert!(
            eventually(Duration::from_secs(5), || m.stats().refused_connections
                >= 1)
            .await,
            "the member refuses the outsider's connection"
        );
        let sent = x.send(m_addr, id, b"let me in".to_vec()).await;
        assert!(sent.is_err(), "outsider's send must fail: {sent:?}");
        assert_eq!(
            recv_within(&mut inbox, Duration::from_millis(500)).await,
            None
        );
        assert!(m.connected_members().is_empty());
        let stats = m.stats();
        assert_eq!(stats.delivered_messages, 0);
        assert_eq!(stats.buffered_messages, 0);
        // The outsider keeps redialling with backoff and keeps being refused.
        assert!(
            eventually(Duration::from_secs(5), || m.stats().refused_connections
                >= 2)
            .await
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_told_to_dial_a_non_member_refuses_it() {
    bounded(async {
        let (km, m_addr) = node();
        let (kx, x_addr) = node();
        let (_, expected) = node();
        let mut xc = config(&kx, vec![member(m_addr, None), member(x_addr, None)]);
        xc.request_timeout = Duration::from_millis(800);
        let x = start(xc).await;
        // The member's list says "`expected` is at X's address", but X has another key.
        let m = start(config(
            &km,
            vec![member(m_addr, None), member(expected, Some(&x))],
        ))
        .await;
        let id = session();
        let mut inbox = m.open_session(id);

        assert!(
            eventually(Duration::from_secs(5), || m.stats().refused_connections
                >= 1)
            .await,
            "the member refuses the connection it dialled"
        );
        assert!(m.connected_members().is_empty());
        let sent = x.send(m_addr, id, b"hello".to_vec()).await;
        assert!(sent.is_err(), "outsider's send must fail: {sent:?}");
        assert_eq!(
            recv_within(&mut inbox, Duration::from_millis(500)).await,
            None
        );
        assert_eq!(m.stats().delivered_messages, 0);
        assert_eq!(m.stats().buffered_messages, 0);
    })
    .await;
}
