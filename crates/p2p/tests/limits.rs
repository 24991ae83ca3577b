//! Message size limits: refused locally with `TooLarge`, and when forced onto the wire by a host
//! with a bigger limit, dropped by the receiver without harm to anyone else.

mod common;

use std::time::Duration;

use cohort_p2p::{P2pError, RefusalReason};
use common::*;

const LIMIT: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_is_dropped_by_the_receiver_which_keeps_working() {
    bounded(async {
        let (kr, r_addr) = node();
        let (kb, b_addr) = node();
        let (kt, t_addr) = node();
        let members = |dial: Option<&cohort_p2p::P2p>| {
            vec![
                member(r_addr, dial),
                member(b_addr, None),
                member(t_addr, None),
            ]
        };
        let mut rc = config(&kr, members(None));
        rc.max_message_bytes = LIMIT;
        let r = start(rc).await;
        // The "raw client": a member whose own limit is 16 times larger.
        let mut bc = config(&kb, members(Some(&r)));
        bc.max_message_bytes = LIMIT * 16;
        let big = start(bc).await;
        let third = start(config(&kt, members(Some(&r)))).await;
        r.wait_for_members(&[b_addr, t_addr], Duration::from_secs(10))
            .await
            .expect("connected");

        let id = session();
        let mut inbox = r.open_session(id);

        // The receiver itself refuses to send oversized messages.
        assert!(matches!(
            r.send(b_addr, id, vec![0; LIMIT + 1]).await,
            Err(P2pError::TooLarge { max: LIMIT, .. })
        ));

        // Forced onto the wire: the receiver drops the stream unread.
        let forced = big.send(r_addr, id, vec![7; LIMIT * 8]).await;
        assert!(
            matches!(forced, Err(P2pError::Refused(RefusalReason::StreamDropped))),
            "{forced:?}"
        );
        assert!(eventually(Duration::from_secs(2), || r.stats().oversized_messages == 1).await);
        assert!(r.stats().dropped_messages >= 1);
        assert_eq!(
            recv_within(&mut inbox, Duration::from_millis(200)).await,
            None
        );

        // Everyone keeps working, including the offender's connection.
        third
            .send(r_addr, id, b"still here".to_vec())
            .await
            .expect("third member delivers");
        assert_eq!(
            recv_within(&mut inbox, Duration::from_secs(2)).await,
            Some((t_addr, b"still here".to_vec()))
        );
        big.send(r_addr, id, vec![1; LIMIT])
            .await
            .expect("exactly the limit is fine");
        assert_eq!(
            recv_within(&mut inbox, Duration::from_secs(2)).await,
            Some((b_addr, vec![1; LIMIT]))
        );
        let mut back = big.open_session(id);
        r.send(b_addr, id, b"ack".to_vec()).await.expect("reply");
        assert_eq!(
            recv_within(&mut back, Duration::from_secs(2)).await,
            Some((r_addr, b"ack".to_vec()))
        );
    })
    .await;
}
