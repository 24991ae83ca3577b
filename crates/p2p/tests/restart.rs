//! A member that restarts (same key, same port) is redialled and messages flow again.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_peer_is_redialled_and_messages_flow_again() {
    bounded(async {
        let (ka, a_addr) = node();
        let (kb, b_addr) = node();
        // B never dials: reconnecting is A's job.
        let b_config = config(&kb, vec![member(a_addr, None), member(b_addr, None)]);
        let b = start(b_config.clone()).await;
        let b_listen = dial_addr(&b);
        let a = start(config(
            &ka,
            vec![member(a_addr, None), member(b_addr, Some(&b))],
        ))
        .await;
        a.wait_for_members(&[b_addr], Duration::from_secs(10))
            .await
            .expect("connected");
        let s1 = session();
        let mut inbox = b.open_session(s1);
        a.send(b_addr, s1, b"before".to_vec()).await.expect("sent");
        assert_eq!(
            recv_within(&mut inbox, Duration::from_secs(2)).await,
            Some((a_addr, b"before".to_vec()))
        );

        b.shutdown().await;
        drop(inbox);
        drop(b);
        assert!(eventually(Duration::from_secs(5), || a.connected_members().is_empty()).await);

        // A send issued while B is down waits for the reconnection.
        let s2 = session();
        let pending = {
            let a = a.clone();
            tokio::spawn(async move { a.send(b_addr, s2, b"while down".to_vec()).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;

        let mut restarted = b_config;
        restarted.listen = b_listen;
        let b = start(restarted).await;
        a.wait_for_members(&[b_addr], Duration::from_secs(10))
            .await
            .expect("A redials the restarted member");
        pending
            .await
            .expect("send task")
            .expect("the waiting send goes through");
        let mut inbox = b.open_session(s2);
        assert_eq!(
            recv_within(&mut inbox, Duration::from_secs(2)).await,
            Some((a_addr, b"while down".to_vec()))
        );
        // And the other way round.
        let mut back = a.open_session(s2);
        b.send(a_addr, s2, b"after".to_vec()).await.expect("sent");
        assert_eq!(
            recv_within(&mut back, Duration::from_secs(2)).await,
            Some((b_addr, b"after".to_vec()))
        );
    })
    .await;
}
