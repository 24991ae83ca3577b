//! A three-member mesh over real libp2p on loopback: delivery, sender authenticity, sessions,
//! the unknown-session buffer, local errors and shutdown.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cohort_p2p::{P2p, P2pConfig, P2pError, RefusalReason, UnknownSessionLimits, Zeroizing};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_mesh_and_exchange_on_two_concurrent_sessions() {
    bounded(async {
        let (ka, a_addr) = node();
        let (kb, b_addr) = node();
        let (kc, c_addr) = node();
        // A dials nobody, B dials A, C dials A and B: every pair gets a connection.
        let a = start(config(
            &ka,
            vec![
                member(a_addr, None),
                member(b_addr, None),
                member(c_addr, None),
            ],
        ))
        .await;
        let b = start(config(
            &kb,
            vec![
                member(a_addr, Some(&a)),
                member(b_addr, None),
                member(c_addr, None),
            ],
        ))
        .await;
        let c = start(config(
            &kc,
            vec![
                member(a_addr, Some(&a)),
                member(b_addr, Some(&b)),
                member(c_addr, None),
            ],
        ))
        .await;
        let all = [a_addr, b_addr, c_addr];
        let hosts = [&a, &b, &c];
        for host in hosts {
            host.wait_for_members(&all, Duration::from_secs(10))
                .await
                .expect("mesh forms");
            assert_eq!(host.connected_members().len(), 2);
        }

        let sessions = [session(), session()];
        let mut inboxes = Vec::new();
        for host in hosts {
            for s in sessions {
                inboxes.push((host.local_address(), s, host.open_session(s)));
            }
        }

        let payload = |s: &[u8; 32], from: &[u8; 20], to: &[u8; 20]| {
            format!(
                "{}:{}:{}",
                hex::encode(s),
                hex::encode(from),
                hex::encode(to)
            )
            .into_bytes()
        };
        let mut sends = Vec::new();
        for from in hosts {
            for to in all {
                if to == from.local_address() {
                    continue;
                }
                for s in sessions {
                    let from = from.clone();
                    let body = payload(&s, &from.local_address(), &to);
                    sends.push(tokio::spawn(async move { from.send(to, s, body).await }));
                }
            }
        }
        for send in futures::future::join_all(sends).await {
            send.expect("send task").expect("send succeeds");
        }

        for (me, s, inbox) in &mut inboxes {
            let mut got = BTreeSet::new();
            for _ in 0..2 {
                let (from, body) = recv_within(inbox, Duration::from_secs(5))
                    .await
                    .expect("message arrives");
                // The inbox names the authenticated sender, and the payload agrees with it.
                assert_eq!(body, payload(s, &from, me));
                got.insert(from);
            }
            let expected: BTreeSet<_> = all.iter().copied().filter(|x| x != me).collect();
            assert_eq!(got, expected);
            assert!(inbox.try_recv().is_none(), "no extra messages");
        }
        for host in hosts {
            assert_eq!(host.stats().delivered_messages, 4);
            assert_eq!(host.stats().dropped_messages, 0);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sent_before_the_session_opens_is_delivered_when_it_opens() {
    bounded(async {
        let (kr, r_addr) = node();
        let (ks, s_addr) = node();
        let r = start(config(
            &kr,
            vec![member(r_addr, None), member(s_addr, None)],
        ))
        .await;
        let s = start(config(
            &ks,
            vec![member(r_addr, Some(&r)), member(s_addr, None)],
        ))
        .await;
        let id = session();
        // Sent before the connection even exists: `send` waits for it.
        s.send(r_addr, id, b"early".to_vec())
            .await
            .expect("accepted and held");
        assert_eq!(r.stats().buffered_messages, 1);
        let mut inbox = r.open_session(id);
        assert_eq!(
            recv_within(&mut inbox, Duration::from_secs(1)).await,
            Some((s_addr, b"early".to_vec()))
        );
        assert_eq!(r.stats().buffered_messages, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_buffer_is_bounded_and_expires() {
    bounded(async {
        let (kr, r_addr) = node();
        let (ks, s_addr) = node();
        let mut rc = config(&kr, vec![member(r_addr, None), member(s_addr, None)]);
        rc.unknown_session_buffer = UnknownSessionLimits {
            max_sessions: 2,
            max_messages_per_session: 3,
            max_total_bytes: 1024,
            ttl: Duration::from_millis(600),
        };
        let r = start(rc).await;
        let s = start(config(
            &ks,
            vec![member(r_addr, Some(&r)), member(s_addr, None)],
        ))
        .await;
        let (s1, s2, s3) = (session(), session(), session());
        for i in 0..3u8 {
            s.send(r_addr, s1, vec![i]).await.expect("held");
        }
        let full = s.send(r_addr, s1, vec![9]).await;
        assert!(
            matches!(full, Err(P2pError::Refused(RefusalReason::BufferFull))),
            "{full:?}"
        );
        s.send(r_addr, s2, vec![0])
            .await
            .expect("second session held");
        let full = s.send(r_addr, s3, vec![0]).await;
        assert!(
            matches!(full, Err(P2pError::Refused(RefusalReason::BufferFull))),
            "{full:?}"
        );
        // Byte cap: 4 bytes held, 1021 more would exceed 1024.
        let full = s.send(r_addr, s2, vec![0; 1021]).await;
        assert!(
            matches!(full, Err(P2pError::Refused(RefusalReason::BufferFull))),
            "{full:?}"
        );
        assert_eq!(r.stats().buffered_messages, 4);
        assert_eq!(r.stats().dropped_messages, 3);

        // After the TTL everything held is gone, and counted.
        assert!(eventually(Duration::from_secs(3), || r.stats().buffered_messages == 0).await);
        assert_eq!(r.stats().expired_messages, 4);
        let mut inbox = r.open_session(s1);
        assert_eq!(
            recv_within(&mut inbox, Duration::from_millis(300)).await,
            None
        );
        // The buffer is free again and the open session receives directly.
        s.send(r_addr, s1, b"fresh".to_vec()).await.expect("sent");
        assert_eq!(
            recv_within(&mut inbox, Duration::from_secs(1)).await,
            Some((s_addr, b"fresh".to_vec()))
        );
        s.send(r_addr, s3, vec![1])
            .await
            .expect("room for a new session");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_inbox_refuses_and_counts() {
    bounded(async {
        let (kr, r_addr) = node();
        let (ks, s_addr) = node();
        let mut rc = config(&kr, vec![member(r_addr, None), member(s_addr, None)]);
        rc.inbox_capacity = 2;
        let r = start(rc).await;
        let s = start(config(
            &ks,
            vec![member(r_addr, Some(&r)), member(s_addr, None)],
        ))
        .await;
        let id = session();
        let mut inbox = r.open_session(id);
        s.send(r_addr, id, vec![1]).await.expect("fits");
        s.send(r_addr, id, vec![2]).await.expect("fits");
        let full = s.send(r_addr, id, vec![3]).await;
        assert!(
            matches!(full, Err(P2pError::Refused(RefusalReason::InboxFull))),
            "{full:?}"
        );
        assert_eq!(r.stats().dropped_messages, 1);
        assert_eq!(inbox.try_recv(), Some((s_addr, vec![1])));
        s.send(r_addr, id, vec![4]).await.expect("room again");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_errors_and_loopback() {
    bounded(async {
        let (ka, a_addr) = node();
        let (_, stranger) = node();
        let mut ac = config(&ka, vec![member(a_addr, None)]);
        ac.max_message_bytes = 1024;
        ac.request_timeout = Duration::from_millis(300);
        let a = start(ac).await;
        let id = session();
        assert!(matches!(
            a.send(stranger, id, vec![0]).await,
            Err(P2pError::NotAMember(x)) if x == stranger
        ));
        assert!(matches!(
            a.send(a_addr, id, vec![0; 1025]).await,
            Err(P2pError::TooLarge {
                size: 1025,
                max: 1024
            })
        ));
        // To ourselves: delivered locally, sender is us.
        let mut inbox = a.open_session(id);
        a.send(a_addr, id, b"self".to_vec())
            .await
            .expect("loopback");
        assert_eq!(inbox.try_recv(), Some((a_addr, b"self".to_vec())));

        // A member that never connects: `send` waits for it, bounded by the request timeout.
        let (_, b_addr) = node();
        let (kc, _) = node();
        let mut cc = config(&kc, vec![member(b_addr, None)]);
        cc.request_timeout = Duration::from_millis(300);
        let c = start(cc).await;
        let started = tokio::time::Instant::now();
        let timed_out = c.send(b_addr, id, vec![1]).await;
        assert!(matches!(timed_out, Err(P2pError::Timeout)), "{timed_out:?}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let bad = P2pConfig::new(
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            Zeroizing::new([0u8; 32]),
            vec![],
        );
        assert!(matches!(P2p::start(bad).await, Err(P2pError::InvalidKey)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_stops_the_host() {
    bounded(async {
        let (ka, a_addr) = node();
        let (kb, b_addr) = node();
        let a = start(config(
            &ka,
            vec![member(a_addr, None), member(b_addr, None)],
        ))
        .await;
        let b = start(config(
            &kb,
            vec![member(a_addr, Some(&a)), member(b_addr, None)],
        ))
        .await;
        a.wait_for_members(&[b_addr], Duration::from_secs(10))
            .await
            .expect("connected");
        let mut inbox = b.open_session(session());
        let clone = b.clone();
        drop(b);
        // A clone keeps it alive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(a.connected_members(), vec![b_addr]);
        drop(clone);
        assert!(eventually(Duration::from_secs(5), || a.connected_members().is_empty()).await);
        assert_eq!(recv_within(&mut inbox, Duration::from_secs(2)).await, None);

        // Explicit shutdown: other clones get `Shutdown`.
        let a2 = a.clone();
        a.shutdown().await;
        assert!(matches!(
            a2.send(b_addr, session(), vec![1]).await,
            Err(P2pError::Shutdown)
        ));
    })
    .await;
}
