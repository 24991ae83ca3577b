//! The coordination runtime itself ([`crate::handshake::Op`]), under each of its rules.

use std::time::{Duration, Instant};

use cohort_wire::{Bytes32, ErrorBody, ErrorCode, KeyId, ManagerMsg, NodeMsg, OpKind, OpOutcome};

use super::{Act, Net, addr, except, timed};
use crate::handshake::{Op, Rule};

fn delete_msg(session_id: Bytes32) -> ManagerMsg {
    ManagerMsg::KeyDelete {
        session_id,
        key_id: KeyId::new("x").unwrap(),
        key_session_id: Bytes32([0; 32]),
    }
}

fn deleted(_: cohort_wire::Address, m: NodeMsg) -> Option<Result<(), ErrorBody>> {
    matches!(m, NodeMsg::KeyDeleted { .. }).then_some(Ok(()))
}

#[tokio::test]
async fn acks_go_on_past_a_disconnect_protocols_stop_at_once() {
    for rule in [Rule::Acks, Rule::WaitAll, Rule::FailFast] {
        let net = Net::new(3, 30, 30);
        // Member 0 goes away; member 2 answers only after 300 ms.
        net.node(0, except(|_, _| Some(vec![Act::Drop])));
        net.node(1, Box::new(super::honest));
        net.node(
            2,
            except(|_, m| match m {
                ManagerMsg::KeyDelete {
                    session_id, key_id, ..
                } => Some(vec![Act::Later(
                    Duration::from_millis(300),
                    NodeMsg::KeyDeleted {
                        session_id: *session_id,
                        key_id: key_id.clone(),
                        existed: true,
                    },
                )]),
                _ => None,
            }),
        );
        let mut op = Op::new(&net.state, OpKind::Delete, "x", net.members.clone());
        let s = op.session();
        let until = Instant::now() + Duration::from_secs(30);
        let (r, took) =
            timed(op.run_phase(&net.members, || delete_msg(s), until, rule, deleted)).await;
        assert!(took < Duration::from_secs(5), "{rule:?} {took:?}");
        assert!(op.record.absent.contains(&addr(0)), "{rule:?}");
        let answered: Vec<_> = r.results.iter().map(|(a, _)| *a).collect();
        if rule == Rule::Acks {
            // Everyone else is still heard.
            assert!(
                answered.contains(&addr(1)) && answered.contains(&addr(2)),
                "{answered:?}"
            );
            assert!(r.missing.is_empty());
        } else {
            // The protocol cannot finish without member 0: it ends, member 2 still missing.
            assert!(r.missing.contains(&addr(2)), "{rule:?} {answered:?}");
            let e = op.completed(r, "test").unwrap_err();
            assert!(e.culprits.is_empty(), "absent, not a culprit: {e:?}");
        }
    }
}

#[tokio::test]
async fn fail_fast_stops_at_the_first_failure_wait_all_hears_everyone() {
    for rule in [Rule::FailFast, Rule::WaitAll] {
        let net = Net::new(2, 30, 30);
        net.node(
            0,
            except(|_, m| match m {
                ManagerMsg::AuxInfoStart { session_id, .. } => {
                    Some(vec![Act::Reply(NodeMsg::AuxInfoFinish {
                        session_id: *session_id,
                        result: Err(ErrorBody::new(ErrorCode::ProtocolFailed, "bad proof")),
                    })])
                }
                _ => None,
            }),
        );
        net.node(
            1,
            except(|_, m| match m {
                ManagerMsg::AuxInfoStart { session_id, .. } => Some(vec![Act::Later(
                    Duration::from_millis(300),
                    NodeMsg::AuxInfoFinish {
                        session_id: *session_id,
                        result: Ok(()),
                    },
                )]),
                _ => None,
            }),
        );
        let mut op = Op::new(&net.state, OpKind::Aux, "", net.members.clone());
        let s = op.session();
        let members = net.members.clone();
        let until = Instant::now() + Duration::from_secs(30);
        let r = op
            .run_phase(
                &members,
                || ManagerMsg::AuxInfoStart {
                    session_id: s,
                    members: members.clone(),
                },
                until,
                rule,
                |_, m| match m {
                    NodeMsg::AuxInfoFinish { result, .. } => Some(result),
                    _ => None,
                },
            )
            .await;
        assert_eq!(r.results.len(), if rule == Rule::FailFast { 1 } else { 2 });
        let e = op.completed(r, "aux").unwrap_err();
        assert_eq!(e.code, ErrorCode::ProtocolFailed);
        let (_, rec) = match op.finish::<()>(Err(e)) {
            Err(err) => ((), net.record(err.session_id.unwrap())),
            Ok(_) => unreachable!(),
        };
        assert_eq!(rec.outcome, OpOutcome::Failed);
        assert_eq!(rec.operation, OpKind::Aux);
    }
}

#[tokio::test]
async fn a_prepare_stops_when_the_operation_has_enough() {
    let net = Net::new(3, 30, 30);
    net.honest_all();
    let mut op = Op::new(&net.state, OpKind::Sign, "x", net.members.clone());
    let s = op.session();
    let until = Instant::now() + Duration::from_secs(30);
    let ready = op
        .prepare(
            &net.members,
            || ManagerMsg::AuxInfoPrepare {
                session_id: s,
                members: vec![],
            },
            until,
            |rec| !rec.ready.is_empty(),
        )
        .await;
    assert_eq!(ready.len(), 1);
    assert_eq!(op.record.ready.len(), 1);
    // The others are still deciding; counted absent only when the operation says so.
    assert!(op.record.absent.is_empty());
    op.pending_absent();
    assert_eq!(op.record.absent.len(), 2);
}
