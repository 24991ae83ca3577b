//! A party that goes away is absent at once, in every phase of every operation; a silent one
//! at the deadline. The "at once" tests give the operation deadlines of 30 s and require an
//! answer within a few.

use std::time::Duration;

use cohort_wire::{ErrorCode, KeyId, ManagerMsg};

use super::{Act, Net, addr, except, timed};
use crate::ops;

const AT_ONCE: Duration = Duration::from_secs(5);

fn drop_on(pick: fn(&ManagerMsg) -> bool) -> super::Script {
    except(move |_, m| pick(m).then(|| vec![Act::Drop]))
}

fn silent_on(pick: fn(&ManagerMsg) -> bool) -> super::Script {
    except(move |_, m| pick(m).then(Vec::new))
}

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

#[tokio::test]
async fn keygen_prepare_silent_party_is_absent_at_the_deadline() {
    let net = Net::new(3, 1, 30);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(
        2,
        silent_on(|m| matches!(m, ManagerMsg::KeyGenPrepare { .. })),
    );
    let (r, took) = timed(ops::keygen::keygen(&net.state, id("k"), 2, None)).await;
    let e = r.unwrap_err();
    assert_eq!(e.error.code, ErrorCode::NotEnoughParties);
    assert_eq!(e.absent, vec![addr(2)]);
    assert_eq!(e.ready, vec![addr(0), addr(1)]);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(
        !net.state.key_locks.is_held("k"),
        "the key lock is released"
    );
}

#[tokio::test]
async fn sign_finish_silent_signer_times_out_absent_not_a_culprit() {
    let net = Net::new(2, 30, 1);
    net.seed_key("s", 2, 2);
    net.node(0, Box::new(super::honest));
    net.node(
        1,
        silent_on(|m| matches!(m, ManagerMsg::KeySignStart { .. })),
    );
    let digest = cohort_wire::Bytes32([7; 32]);
    let r = ops::sign::sign(&net.state, &id("s"), digest, Default::default()).await;
    let e = r.err().unwrap();
    assert_eq!(e.error.code, ErrorCode::Timeout);
    // Absent, never a culprit: going away proves nothing.
    assert!(e.error.culprits.is_empty(), "{:?}", e.error);
    assert!(e.absent.contains(&addr(1)), "{:?}", e.absent);
    // The stored record says the same: member 1 absent (it was ready, then never answered the
    // start), nobody blamed.
    let rec = net.record(e.session_id.unwrap());
    assert!(rec.ready.contains(&addr(1)), "{rec:?}");
    assert_eq!(rec.absent, vec![addr(1)]);
    assert!(rec.culprits.is_empty(), "{rec:?}");
    assert!(rec.error.unwrap().culprits.is_empty());
}

#[tokio::test]
async fn aux_prepare_disconnect_is_absent_at_once() {
    let net = Net::new(3, 30, 30);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(
        2,
        drop_on(|m| matches!(m, ManagerMsg::AuxInfoPrepare { .. })),
    );
    net.lacks_aux(0);
    let (r, took) = timed(ops::aux::ensure_aux(&net.state)).await;
    let e = r.unwrap_err();
    assert!(took < AT_ONCE, "{took:?}");
    assert_eq!(e.error.code, ErrorCode::NotEnoughParties);
    assert_eq!(e.absent, vec![addr(2)]);
    assert!(
        e.error.message.contains(&addr(2).to_string()),
        "{}",
        e.error.message
    );
}

#[tokio::test]
async fn aux_finish_disconnect_fails_at_once_naming_the_party() {
    let net = Net::new(3, 30, 30);
    net.node(0, Box::new(super::honest));
    net.node(1, drop_on(|m| matches!(m, ManagerMsg::AuxInfoStart { .. })));
    net.node(2, Box::new(super::honest));
    net.lacks_aux(2);
    let (r, took) = timed(ops::aux::ensure_aux(&net.state)).await;
    let e = r.unwrap_err();
    assert!(
        took < AT_ONCE,
        "aux waited {took:?} for a member that was gone"
    );
    // Absent, never a culprit: going away proves nothing.
    assert!(e.error.culprits.is_empty(), "{:?}", e.error);
    assert!(e.absent.contains(&addr(1)), "{:?}", e.absent);
    assert!(
        e.error.message.contains(&addr(1).to_string()),
        "{}",
        e.error.message
    );
    let rec = net.record(e.session_id.unwrap());
    assert_eq!(rec.absent, vec![addr(1)]);
    assert_eq!(rec.operation, cohort_wire::OpKind::Aux);
}

#[tokio::test]
async fn keygen_prepare_disconnect_is_absent_at_once() {
    let net = Net::new(3, 30, 30);
    net.node(
        0,
        drop_on(|m| matches!(m, ManagerMsg::KeyGenPrepare { .. })),
    );
    net.node(1, Box::new(super::honest));
    net.node(2, Box::new(super::honest));
    let (r, took) = timed(ops::keygen::keygen(&net.state, id("k"), 2, None)).await;
    let e = r.unwrap_err();
    assert!(took < AT_ONCE, "{took:?}");
    assert_eq!(e.error.code, ErrorCode::NotEnoughParties);
    assert_eq!(e.absent, vec![addr(0)]);
}

#[tokio::test]
async fn keygen_finish_disconnect_fails_at_once_and_discards_the_pieces() {
    let net = Net::new(3, 30, 30);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(2, drop_on(|m| matches!(m, ManagerMsg::KeyGenStart { .. })));
    let (r, took) = timed(ops::keygen::keygen(&net.state, id("k"), 2, None)).await;
    let e = r.unwrap_err();
    assert!(took < AT_ONCE, "{took:?}");
    // Absent, never a culprit: going away proves nothing.
    assert!(e.error.culprits.is_empty(), "{:?}", e.error);
    assert!(e.absent.contains(&addr(2)), "{:?}", e.absent);
    // Nobody keeps a piece: a tombstone, and a delete to those still there.
    net.settle().await;
    let k = net.state.registry.get("k").unwrap().unwrap();
    assert!(k.deleted);
    for i in 0..2 {
        let deletes = net.received(addr(i), |m| matches!(m, ManagerMsg::KeyDelete { .. }));
        assert_eq!(deletes.len(), 1, "member {i}");
    }
    assert!(!net.state.key_locks.is_held("k"));
}

#[tokio::test]
async fn sign_prepare_disconnect_is_absent_at_once() {
    let net = Net::new(3, 30, 30);
    net.seed_key("s", 3, 3);
    net.node(0, Box::new(super::honest));
    net.node(
        1,
        drop_on(|m| matches!(m, ManagerMsg::KeySignPrepare { .. })),
    );
    net.node(2, Box::new(super::honest));
    let (r, took) = timed(ops::sign::sign(
        &net.state,
        &id("s"),
        cohort_wire::Bytes32([1; 32]),
        Default::default(),
    ))
    .await;
    let e = r.err().unwrap();
    assert!(took < AT_ONCE, "{took:?}");
    assert_eq!(e.error.code, ErrorCode::NotEnoughParties);
    assert_eq!(e.absent, vec![addr(1)]);
    // The willing ones are released.
    net.settle().await;
    for i in [0, 2] {
        let cancels = net.received(addr(i), |m| matches!(m, ManagerMsg::KeySignCancel { .. }));
        assert_eq!(cancels.len(), 1);
    }
}

#[tokio::test]
async fn sign_finish_disconnect_fails_at_once() {
    let net = Net::new(2, 30, 30);
    net.seed_key("s", 2, 2);
    net.node(0, Box::new(super::honest));
    net.node(1, drop_on(|m| matches!(m, ManagerMsg::KeySignStart { .. })));
    let (r, took) = timed(ops::sign::sign(
        &net.state,
        &id("s"),
        cohort_wire::Bytes32([1; 32]),
        Default::default(),
    ))
    .await;
    let e = r.err().unwrap();
    assert!(took < AT_ONCE, "{took:?}");
    // Absent, never a culprit: going away proves nothing.
    assert!(e.error.culprits.is_empty(), "{:?}", e.error);
    assert!(e.absent.contains(&addr(1)), "{:?}", e.absent);
    assert!(e.absent.contains(&addr(1)));
}

#[tokio::test]
async fn presign_prepare_and_finish_disconnects_fail_at_once() {
    for prepare in [true, false] {
        let net = Net::new(2, 30, 30);
        let key = net.seed_key("state", 2, 2);
        net.node(0, Box::new(super::honest));
        if prepare {
            net.node(
                1,
                drop_on(|m| matches!(m, ManagerMsg::PresignPrepare { .. })),
            );
        } else {
            net.node(1, drop_on(|m| matches!(m, ManagerMsg::PresignStart { .. })));
        }
        let (r, took) = timed(ops::presign::generate(
            &net.state,
            &key,
            net.members.clone(),
        ))
        .await;
        let e = r.unwrap_err();
        assert!(took < AT_ONCE, "prepare={prepare} {took:?}");
        if prepare {
            assert_eq!(e.code, ErrorCode::NotEnoughParties);
        } else {
            assert!(e.culprits.is_empty(), "{e:?}");
        }
        assert_eq!(net.state.pool.depth("state"), 0);
        let rec = &net.records()[0];
        assert_eq!(rec.operation, cohort_wire::OpKind::Presign);
        assert_eq!(rec.absent, vec![addr(1)]);
    }
}

#[tokio::test]
async fn reshare_prepare_disconnect_is_absent_at_once_and_aborts_the_ready() {
    let net = Net::new(3, 30, 30);
    net.seed_key("r", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(
        2,
        drop_on(|m| matches!(m, ManagerMsg::KeyResharePrepare { .. })),
    );
    let (r, took) = timed(ops::reshare::reshare(&net.state, &id("r"), None, None)).await;
    let e = r.err().unwrap();
    assert!(took < AT_ONCE, "{took:?}");
    assert_eq!(e.error.code, ErrorCode::NotEnoughParties);
    assert_eq!(e.absent, vec![addr(2)]);
    net.settle().await;
    for i in 0..2 {
        let aborts = net.received(addr(i), |m| matches!(m, ManagerMsg::KeyReshareAbort { .. }));
        assert_eq!(aborts.len(), 1);
    }
    assert!(!net.state.key_locks.is_held("r"));
}

#[tokio::test]
async fn reshare_finish_disconnect_fails_at_once_and_keeps_the_old_sharing() {
    let net = Net::new(3, 30, 30);
    let before = net.seed_key("r", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(
        1,
        drop_on(|m| matches!(m, ManagerMsg::KeyReshareStart { .. })),
    );
    net.node(2, Box::new(super::honest));
    let (r, took) = timed(ops::reshare::reshare(&net.state, &id("r"), None, None)).await;
    let e = r.err().unwrap();
    assert!(took < AT_ONCE, "{took:?}");
    // Absent, never a culprit: going away proves nothing.
    assert!(e.error.culprits.is_empty(), "{:?}", e.error);
    assert!(e.absent.contains(&addr(1)), "{:?}", e.absent);
    assert_eq!(net.state.registry.get("r").unwrap().unwrap(), before);
    net.settle().await;
    let aborts = net.received(addr(2), |m| matches!(m, ManagerMsg::KeyReshareAbort { .. }));
    assert_eq!(aborts.len(), 1);
    assert!(!net.state.key_locks.is_held("r"));
}

#[tokio::test]
async fn delete_disconnect_is_absent_at_once_and_told_on_reconnect() {
    let net = Net::new(3, 30, 30);
    net.seed_key("d", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(1, drop_on(|m| matches!(m, ManagerMsg::KeyDelete { .. })));
    net.node(2, Box::new(super::honest));
    let (r, took) = timed(ops::delete::delete(&net.state, &id("d"))).await;
    let rec = r.unwrap();
    assert!(took < AT_ONCE, "{took:?}");
    assert_eq!(rec.ready, vec![addr(0), addr(2)]);
    assert_eq!(rec.absent, vec![addr(1)]);
    assert!(net.state.registry.get("d").unwrap().unwrap().deleted);
    // Back again: the delete it missed is delivered.
    net.node(1, Box::new(super::honest));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deletes = net.received(addr(1), |m| matches!(m, ManagerMsg::KeyDelete { .. }));
    assert_eq!(
        deletes.len(),
        2,
        "the first (dropped on) and the redelivery"
    );
    // Both name the sharing the registry holds, so a node with another sharing refuses.
    let sharing = net.state.registry.get("d").unwrap().unwrap().key_session_id;
    for m in deletes {
        assert!(
            matches!(m, ManagerMsg::KeyDelete { key_session_id, .. } if key_session_id == sharing),
            "{m:?}"
        );
    }
}
