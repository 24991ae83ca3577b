//! The two-phase switch of a resharing on the node: a staged share becomes the key's share on
//! the commit (even after a restart), a leaver deletes its share only for a resharing it agreed
//! to, and an abort changes nothing but the staged share.

use std::sync::Arc;

use cohort_store::{KeyStatus, StagedShare};
use cohort_wire::{
    Address, Bytes32, ErrorCode, HexBytes, ManagerMsg, NodeMsg, ReshareAck, reshare_ack_digest,
};

use super::{TestNode, key, session};
use crate::identity::NodeIdentity;
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
            acks: Vec::new(),
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
    assert!(commit(&node.inner, session(2), &key("r"), &m, &[]).is_ok());
    assert_eq!(node.inner.store.get_key("r").unwrap().unwrap(), rec);
}

#[tokio::test]
async fn a_holder_that_stays_swaps_its_share() {
    let node = TestNode::new(4).await;
    let m = node.members.clone();
    node.ready_key("r", session(1), 2, &m[..3]);
    stage(&node, session(2), 3, &m, b"new-share");
    // A commit naming another committee than the staged share's keeps everything.
    let e = commit(&node.inner, session(2), &key("r"), &m[..3], &[]).unwrap_err();
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
    // The old sharing's own aux info goes at the commit; the new sharing's stays.
    let old_aux = crate::ops::aux::key_aux_id("r", &session(1).0);
    let new_aux = crate::ops::aux::key_aux_id("r", &session(2).0);
    node.inner.store.put_aux(old_aux, b"old aux").unwrap();
    node.inner.store.put_aux(new_aux, b"new aux").unwrap();
    commit(&node.inner, session(2), &key("r"), &m, &[]).unwrap();
    assert!(node.inner.store.get_aux(old_aux).unwrap().is_none());
    assert!(node.inner.store.get_aux(new_aux).unwrap().is_some());
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
    let e = commit(&node.inner, session(2), &key("r"), &m, &[]).unwrap_err();
    assert_eq!(e.code, ErrorCode::KeyNotFound);
    assert!(node.inner.store.get_key("r").unwrap().is_none());
}

/// Gives members 2.. of `node` real node keys (their acknowledgements must verify).
fn keyed_members(node: &mut TestNode) -> Vec<NodeIdentity> {
    let inner = Arc::get_mut(&mut node.inner).unwrap();
    let ids: Vec<NodeIdentity> = (1..inner.members.len())
        .map(|_| NodeIdentity::from_secret(NodeIdentity::generate()).unwrap())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        inner.members[i + 1] = id.address();
    }
    node.members = inner.members.clone();
    ids
}

fn shares_of(n: usize) -> Vec<HexBytes> {
    (0..n).map(|i| HexBytes(vec![2 + i as u8; 33])).collect()
}

/// `id`'s acknowledgement of sharing `sess` of "r" (public key `[4; 65]`) for `new`.
fn ack_by(id: &NodeIdentity, party: Address, sess: Bytes32, new: &[Address]) -> ReshareAck {
    let public_shares = shares_of(new.len());
    let aux_modulus = Bytes32([party.0[0]; 32]);
    let digest = reshare_ack_digest(
        &key("r"),
        &sess,
        &[4; 65],
        new,
        &public_shares,
        &aux_modulus,
    );
    ReshareAck {
        party,
        public_shares,
        aux_modulus,
        signature: HexBytes(id.sign_digest(&digest).unwrap().to_vec()),
    }
}

fn acks_for(ids: &[NodeIdentity], sess: Bytes32, new: &[Address]) -> Vec<ReshareAck> {
    new.iter()
        .map(|p| {
            let id = ids.iter().find(|i| i.address() == *p).unwrap();
            ack_by(id, *p, sess, new)
        })
        .collect()
}

#[tokio::test]
async fn a_leaver_deletes_its_share_only_for_a_resharing_it_agreed_to() {
    let mut node = TestNode::new(4).await;
    let ids = keyed_members(&mut node);
    let m = node.members.clone();
    node.ready_key("r", session(1), 2, &m[..3]);
    let new = m[1..4].to_vec();
    let e = commit(
        &node.inner,
        session(2),
        &key("r"),
        &new,
        &acks_for(&ids, session(2), &new),
    )
    .unwrap_err();
    assert!(e.message.contains("share kept"), "{}", e.message);
    assert!(node.inner.store.get_key("r").unwrap().is_some());
    // Agreed, but holding another sharing than the one it agreed for: kept.
    node.inner
        .store
        .mark_reshare(session(3).0, "r", session(9).0)
        .unwrap();
    let acks = acks_for(&ids, session(3), &new);
    assert!(commit(&node.inner, session(3), &key("r"), &new, &acks).is_err());
    assert!(node.inner.store.get_key("r").unwrap().is_some());
    // Agreed for the sharing it holds, every new party acknowledged: deleted, with the
    // sharing's own aux info; a resent commit is fine.
    let old_aux = crate::ops::aux::key_aux_id("r", &session(1).0);
    node.inner.store.put_aux(old_aux, b"old aux").unwrap();
    node.inner
        .store
        .mark_reshare(session(4).0, "r", session(1).0)
        .unwrap();
    let acks = acks_for(&ids, session(4), &new);
    commit(&node.inner, session(4), &key("r"), &new, &acks).unwrap();
    assert!(node.inner.store.get_key("r").unwrap().is_none());
    assert!(node.inner.store.get_aux(old_aux).unwrap().is_none());
    commit(&node.inner, session(4), &key("r"), &new, &acks).unwrap();
}

#[tokio::test]
async fn a_leaver_refuses_to_delete_when_an_ack_is_missing_or_forged() {
    let mut node = TestNode::new(4).await;
    let ids = keyed_members(&mut node);
    let m = node.members.clone();
    node.ready_key("r", session(1), 2, &m[..3]);
    node.inner
        .store
        .mark_reshare(session(2).0, "r", session(1).0)
        .unwrap();
    let new = m[1..4].to_vec();
    let good = acks_for(&ids, session(2), &new);
    let refused = |acks: &[ReshareAck], why: &str| {
        let e = commit(&node.inner, session(2), &key("r"), &new, acks).unwrap_err();
        assert!(e.message.contains("share kept"), "{why}: {}", e.message);
        assert!(
            node.inner.store.get_key("r").unwrap().is_some(),
            "{why}: share deleted"
        );
    };
    refused(&[], "no acks (the commit of today's manager)");
    refused(&good[..2], "one new party's ack missing");
    // The last new party's ack signed by another new party's key.
    let mut forged = good.clone();
    forged[2] = ack_by(&ids[0], new[2], session(2), &new);
    refused(&forged, "an ack signed by the wrong key");
    // A signature that is not a signature.
    let mut junk = good.clone();
    junk[1].signature = HexBytes(vec![7; 65]);
    refused(&junk, "a junk signature");
    let mut short = good.clone();
    short[1].signature = HexBytes(vec![7; 10]);
    refused(&short, "a short signature");
    // An ack of another sharing: another session, or other public shares.
    let mut other = good.clone();
    other[0] = ack_by(&ids[0], new[0], session(3), &new);
    refused(&other, "an ack of another session");
    let mut shares = good.clone();
    shares[1].public_shares[0] = HexBytes(vec![9; 33]);
    refused(&shares, "an ack of other public shares");
    // An ack whose Paillier modulus was swapped after signing.
    let mut modulus = good.clone();
    modulus[0].aux_modulus = Bytes32([0xee; 32]);
    refused(&modulus, "an ack with a swapped modulus");
    // Twice the same party instead of all three.
    let twice = vec![good[0].clone(), good[1].clone(), good[1].clone()];
    refused(&twice, "a duplicated ack");
    // A new committee with a non-member, acknowledged by a key of its own.
    let outsider = NodeIdentity::from_secret(NodeIdentity::generate()).unwrap();
    let strange = vec![new[0], new[1], outsider.address()];
    let mut all = ids.iter().collect::<Vec<_>>();
    all.push(&outsider);
    let acks: Vec<ReshareAck> = strange
        .iter()
        .map(|p| {
            ack_by(
                all.iter().find(|i| i.address() == *p).unwrap(),
                *p,
                session(2),
                &strange,
            )
        })
        .collect();
    let e = commit(&node.inner, session(2), &key("r"), &strange, &acks).unwrap_err();
    assert!(e.message.contains("not a member"), "{}", e.message);
    assert!(node.inner.store.get_key("r").unwrap().is_some());
    // The mark survived every refusal: the genuine acks delete.
    commit(&node.inner, session(2), &key("r"), &new, &good).unwrap();
    assert!(node.inner.store.get_key("r").unwrap().is_none());
}

#[tokio::test]
async fn an_abort_discards_only_the_staged_share() {
    let node = TestNode::new(4).await;
    let m = node.members.clone();
    let old = node.ready_key("r", session(1), 2, &m[..3]);
    stage(&node, session(2), 3, &m, b"new-share");
    let staged_aux = crate::ops::aux::key_aux_id("r", &session(2).0);
    node.inner.store.put_aux(staged_aux, b"staged aux").unwrap();
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
    assert!(node.inner.store.get_aux(staged_aux).unwrap().is_none());
    assert_eq!(node.inner.store.get_key("r").unwrap().unwrap(), old);
    assert!(
        node.inner
            .store
            .take_reshare(session(2).0)
            .unwrap()
            .is_none()
    );
    // A commit after the abort finds nothing to switch to.
    assert!(commit(&node.inner, session(2), &key("r"), &m, &[]).is_err());
    assert!(abort(&node.inner, session(2), &key("r")).is_ok());
}
