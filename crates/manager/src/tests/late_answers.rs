//! Answers after the choice: late refusals land in the record (also after the operation
//! finished), late readies are cancelled.

use std::time::Duration;

use cohort_wire::{Bytes32, ErrorCode, KeyId, ManagerMsg, NodeMsg};

use super::{Act, Net, addr, except, refused};
use crate::ops;

fn sign(
    net: &Net,
) -> impl std::future::Future<Output = Result<ops::sign::Signed, crate::record::OpError>> {
    let state = net.state.clone();
    async move {
        ops::sign::sign(
            &state,
            &KeyId::new("s").unwrap(),
            Bytes32([3; 32]),
            Default::default(),
        )
        .await
    }
}

#[tokio::test]
async fn a_late_refusal_after_the_operation_finished_is_recorded() {
    let net = Net::new(3, 30, 30);
    net.seed_key("s", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(
        2,
        except(|_, m| match m {
            ManagerMsg::KeySignPrepare { session_id, .. } => Some(vec![Act::Later(
                Duration::from_millis(300),
                refused(*session_id, ErrorCode::L2Unavailable, "my L2 node is slow"),
            )]),
            _ => None,
        }),
    );
    let signed = sign(&net).await.unwrap();
    assert_eq!(signed.record.signers, vec![addr(0), addr(1)]);
    assert!(signed.record.refused.is_empty(), "not yet");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rec = net.record(signed.record.session_id);
    assert_eq!(rec.refused.len(), 1);
    assert_eq!(rec.refused[0].address, addr(2));
    assert_eq!(rec.refused[0].error.code, ErrorCode::L2Unavailable);
    assert_eq!(rec.outcome, cohort_wire::OpOutcome::Ok);
}

#[tokio::test]
async fn a_late_refusal_during_the_protocol_is_in_the_answer() {
    let net = Net::new(3, 30, 30);
    net.seed_key("s", 2, 3);
    // The signers take 300 ms; the third refuses after 50.
    let slow = || {
        except(|n, m| match m {
            ManagerMsg::KeySignStart {
                session_id, digest, ..
            } => Some(vec![Act::Later(
                Duration::from_millis(300),
                NodeMsg::KeySignFinish {
                    session_id: *session_id,
                    result: Ok(super::signature(&n.key, digest)),
                },
            )]),
            _ => None,
        })
    };
    net.node(0, slow());
    net.node(1, slow());
    net.node(
        2,
        except(|_, m| match m {
            ManagerMsg::KeySignPrepare { session_id, .. } => Some(vec![Act::Later(
                Duration::from_millis(50),
                refused(*session_id, ErrorCode::JournalConflict, "slot signed"),
            )]),
            _ => None,
        }),
    );
    let signed = sign(&net).await.unwrap();
    assert_eq!(signed.record.refused.len(), 1);
    assert_eq!(signed.record.refused[0].address, addr(2));
}

#[tokio::test]
async fn a_late_ready_is_cancelled_and_not_counted() {
    let net = Net::new(3, 30, 30);
    net.seed_key("s", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(
        2,
        except(|_, m| match m {
            ManagerMsg::KeySignPrepare { session_id, .. } => Some(vec![Act::Later(
                Duration::from_millis(200),
                NodeMsg::KeySignReady {
                    session_id: *session_id,
                    l2_ms: None,
                },
            )]),
            _ => None,
        }),
    );
    let signed = sign(&net).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cancels = net.received(addr(2), |m| matches!(m, ManagerMsg::KeySignCancel { .. }));
    assert_eq!(cancels.len(), 1);
    assert!(matches!(
        &cancels[0],
        ManagerMsg::KeySignCancel { session_id } if *session_id == signed.record.session_id
    ));
    let rec = net.record(signed.record.session_id);
    assert_eq!(rec.ready, vec![addr(0), addr(1)]);
    assert!(rec.refused.is_empty());
    // The signers were never cancelled.
    assert!(
        net.received(addr(0), |m| matches!(m, ManagerMsg::KeySignCancel { .. }))
            .is_empty()
    );
}
