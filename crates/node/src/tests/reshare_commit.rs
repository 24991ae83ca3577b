//! The two-phase switch of a resharing on the node: a staged share becomes the key's share on
//! the commit (even after a restart), a leaver deletes its share only for a resharing it agreed
//! to, and an abort changes nothing but the staged share.

use cohort_store::{KeyStatus, StagedShare};
use cohort_wire::{Address, Bytes32, ErrorCode, ManagerMsg, NodeMsg};

use super::{TestNode, key, session};
use crate::ops::reshare::{abort, commit};

fn stage(node: &TestNode, sess: Bytes32, t: u16, parties: &[Address], share: &[u8]) {
    node.inner
        .store
        .put_staged(
            &StagedShare {
                key_id: "r".into(),
                session: sess.0,
                threshold: t,
                parties: parties.iter().map(|p| p.0).collect(),
                public_key: vec![4; 65],
                staged_at_ms: 0,
            },
            share,
        )
        .unwrap();
}

/// The READY share of "r", decrypted.
fn share_of(node: &TestNode) -> Vec<u8> {
    node.inner.store.load_share("r").unwrap().unwrap().to_vec()
}

#[tokio::test]
async fn a_commit_after_a_restart_still_finds_the_staged_share() {
    let node = TestNode::new(4).await;
    let m = node.members.clone();
    stage(&node, session(2), 3, &m, b"new-share");
    let me = node.me();
    let TestNode { inner, dir, .. } = node;
    drop(inner);
    // Restart: the store is reopened (PENDING recovery runs), the staged share is still there.
    let node = TestNode::in_dir(4, dir).await;
    assert_eq!(node.me(), me);
    let answers = node
        .send(ManagerMsg::KeyReshareCommit {
            session_id: session(2),
            key_id: key("r"),
            new_parties: m.clone(),
        })
        .await;
    match &answers[0] {
        NodeMsg::KeyReshareDone { result, .. } => assert!(result.is_ok(), "{result:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(answers[1], NodeMsg::Status { keys: 1, .. }));
    let rec = node.inner.store.get_key("r").unwrap().unwrap();
    assert_eq!(rec.status, KeyStatus::Ready);
    assert_eq!(rec.key_session_id, session(2).0);
    assert_eq!(rec.threshold, 3);
    assert_eq!(rec.public_key.as_deref(), Some(&[4u8; 65][..]));
    assert_eq!(share_of(&node), b"new-share");
    assert!(node.inner.store.list_staged().unwrap().is_empty());
    // A resent commit is a no-op.
    assert!(commit(&node.inner, session(2), &key("r"), &m).is_ok());
    assert_eq!(node.inner.store.get_key("r").unwrap().unwrap(), rec);
}

#[tokio::test]
async fn a_holder_that_stays_swaps_its_share() {
    let node = TestNode::new(4).await;
    let m = node.members.clone();
    node.ready_key("r", session(1), 2, &m[..3]);
    stage(&node, session(2), 3, &m, b"new-share");
    // A commit naming another committee than the staged share's keeps everything.
    let e = commit(&node.inner, session(2), &key("r"), &m[..3]).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert_eq!(
        node.inner
            .store
            .get_key("r")
            .unwrap()
            .unwrap()
            .key_session_id,
        session(1).0
    );
    commit(&node.inner, session(2), &key("r"), &m).unwrap();
    let rec = node.inner.store.get_key("r").unwrap().unwrap();
    assert_eq!(rec.key_session_id, session(2).0);
    assert_eq!(rec.parties.len(), 4);
    assert_eq!(share_of(&node), b"new-share");
    assert!(
        node.inner
            .store
            .get_staged("r", session(2).0)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_commit_without_a_staged_share_is_refused() {
    let node = TestNode::new(3).await;
    let m = node.members.clone();
    let e = commit(&node.inner, session(2), &key("r"), &m).unwrap_err();
    assert_eq!(e.code, ErrorCode::KeyNotFound);
    assert!(node.inner.store.get_key("r").unwrap().is_none());
}

#[tokio::test]
async fn a_leaver_deletes_its_share_only_for_a_resharing_it_agreed_to() {
    let node = TestNode::new(4).await;
    let m = node.members.clone();
    node.ready_key("r", session(1), 2, &m[..3]);
    let new = m[1..4].to_vec();
    let e = commit(&node.inner, session(2), &key("r"), &new).unwrap_err();
    assert!(e.message.contains("share kept"), "{}", e.message);
    assert!(node.inner.store.get_key("r").unwrap().is_some());
    // Agreed, but holding another sharing than the one it agreed for: kept.
    node.inner
        .store
        .mark_reshare(session(3).0, "r", session(9).0)
        .unwrap();
    assert!(commit(&node.inner, session(3), &key("r"), &new).is_err());
    assert!(node.inner.store.get_key("r").unwrap().is_some());
    // Agreed for the sharing it holds: deleted; a resent commit is fine.
    node.inner
        .store
        .mark_reshare(session(4).0, "r", session(1).0)
        .unwrap();
    commit(&node.inner, session(4), &key("r"), &new).unwrap();
    assert!(node.inner.store.get_key("r").unwrap().is_none());
    commit(&node.inner, session(4), &key("r"), &new).unwrap();
}

#[tokio::test]
async fn an_abort_discards_only_the_staged_share() {
    let node = TestNode::new(4).await;
    let m = node.members.clone();
    let old = node.ready_key("r", session(1), 2, &m[..3]);
    stage(&node, session(2), 3, &m, b"new-share");
    node.inner
        .store
        .mark_reshare(session(2).0, "r", session(1).0)
        .unwrap();
    let answers = node
        .send(ManagerMsg::KeyReshareAbort {
            session_id: session(2),
            key_id: key("r"),
        })
        .await;
    assert!(
        matches!(&answers[0], NodeMsg::KeyReshareDone { result: Ok(()), .. }),
        "{answers:?}"
    );
    assert!(node.inner.store.list_staged().unwrap().is_empty());
    assert_eq!(node.inner.store.get_key("r").unwrap().unwrap(), old);
    assert!(
        node.inner
            .store
            .take_reshare(session(2).0)
            .unwrap()
            .is_none()
    );
    // A commit after the abort finds nothing to switch to.
    assert!(commit(&node.inner, session(2), &key("r"), &m).is_err());
    assert!(abort(&node.inner, session(2), &key("r")).is_ok());
}
