//! The commit of a resharing: `pending_commit` is set when the registry switches, shrinks only
//! by confirmations (during the operation or after a redelivery), and a node that missed the
//! commit gets it again when it reconnects.

use std::time::Duration;

use cohort_wire::{Address, Bytes32, KeyId, ManagerMsg, NodeMsg, OpKind};

use super::{Act, Net, addr, except};
use crate::{links, ops};

#[tokio::test]
async fn reshare_commit_missed_by_a_disconnect_is_redelivered_on_reconnect() {
    let net = Net::new(3, 30, 30);
    net.seed_key("r", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(
        2,
        except(|_, m| matches!(m, ManagerMsg::KeyReshareCommit { .. }).then(|| vec![Act::Drop])),
    );
    let key_id = KeyId::new("r").unwrap();
    let (entry, rec) = ops::reshare::reshare(&net.state, &key_id, None, None)
        .await
        .unwrap();
    assert_eq!(rec.operation, OpKind::Refresh);
    assert_eq!(
        entry.key_session_id, rec.session_id,
        "the new sharing is the session's"
    );
    assert_eq!(entry.pending_commit, vec![addr(2)]);
    assert_eq!(rec.absent, vec![addr(2)]);
    // It comes back: the commit is sent again, and its confirmation clears the entry.
    net.node(2, Box::new(super::honest));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let commits = net.received(addr(2), |m| {
        matches!(m, ManagerMsg::KeyReshareCommit { .. })
    });
    assert_eq!(commits.len(), 2);
    assert!(matches!(
        &commits[1],
        ManagerMsg::KeyReshareCommit { session_id, .. } if *session_id == rec.session_id
    ));
    let now = net.state.registry.get("r").unwrap().unwrap();
    assert!(now.pending_commit.is_empty(), "{:?}", now.pending_commit);
}

#[tokio::test]
async fn pending_commit_shrinks_only_by_a_confirmation_of_the_current_sharing() {
    let net = Net::new(3, 30, 30);
    let mut k = net.seed_key("r", 2, 3);
    k.pending_commit = vec![addr(1), addr(2)];
    net.state.registry.put(&k).unwrap();
    net.node(1, Box::new(|_, _| Vec::new()));
    net.node(2, Box::new(|_, _| Vec::new()));
    let done = |session_id: Bytes32, result| NodeMsg::KeyReshareDone {
        session_id,
        key_id: KeyId::new("r").unwrap(),
        result,
    };
    let route = |from: Address, msg| links::route(&net.state, from, 0, msg);
    // Another session's confirmation, and a failed one, change nothing.
    route(addr(1), done(Bytes32([1; 32]), Ok(())));
    route(
        addr(1),
        done(
            k.key_session_id,
            Err(cohort_wire::ErrorBody::new(
                cohort_wire::ErrorCode::Internal,
                "disk",
            )),
        ),
    );
    assert_eq!(
        net.state.registry.get("r").unwrap().unwrap().pending_commit,
        vec![addr(1), addr(2)]
    );
    route(addr(1), done(k.key_session_id, Ok(())));
    assert_eq!(
        net.state.registry.get("r").unwrap().unwrap().pending_commit,
        vec![addr(2)]
    );
}

#[tokio::test]
async fn reshare_to_a_new_committee_deals_from_the_first_t_ready_holders() {
    let net = Net::new(4, 30, 30);
    net.seed_key("r", 2, 3);
    net.honest_all();
    let key_id = KeyId::new("r").unwrap();
    let parties = vec![addr(3), addr(2), addr(1)];
    let (entry, rec) = ops::reshare::reshare(&net.state, &key_id, Some(parties.clone()), Some(3))
        .await
        .unwrap();
    assert_eq!(rec.operation, OpKind::Reshare);
    assert_eq!(entry.parties, parties);
    assert_eq!(entry.threshold, 3);
    assert!(entry.pending_commit.is_empty());
    let starts = net.received(addr(3), |m| matches!(m, ManagerMsg::KeyReshareStart { .. }));
    let ManagerMsg::KeyReshareStart { spec, .. } = &starts[0] else {
        unreachable!()
    };
    assert_eq!(spec.dealers.len(), 2);
    // Participants: the dealers, then the new parties that do not deal.
    let c = cohort_wire::Committee::new(parties, 3).unwrap();
    assert_eq!(rec.signers, c.reshare_participants(&spec.dealers));
    // Everyone, old and new, got the commit.
    for i in 0..4 {
        let commits = net.received(addr(i), |m| {
            matches!(m, ManagerMsg::KeyReshareCommit { .. })
        });
        assert_eq!(commits.len(), 1, "member {i}");
    }
}

#[tokio::test]
async fn delete_takes_the_key_lock_a_resharing_holds() {
    let net = Net::new(3, 30, 30);
    net.seed_key("r", 2, 3);
    net.honest_all();
    let key_id = KeyId::new("r").unwrap();
    let held = net.state.key_locks.claim(&key_id, "test").unwrap();
    let e = ops::delete::delete(&net.state, &key_id).await.unwrap_err();
    assert_eq!(e.error.code, cohort_wire::ErrorCode::KeyPending);
    let e = ops::reshare::reshare(&net.state, &key_id, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.error.code, cohort_wire::ErrorCode::KeyPending);
    assert!(!net.state.registry.get("r").unwrap().unwrap().deleted);
    drop(held);
    ops::delete::delete(&net.state, &key_id).await.unwrap();
    assert!(!net.state.key_locks.is_held("r"));
}
