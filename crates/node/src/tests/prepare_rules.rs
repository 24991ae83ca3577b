//! What a node checks before it answers ready ([`crate::operations`]), through
//! `dispatch::answers` over a temporary store.

use cohort_store::KeyStatus;
use cohort_wire::{
    Address, Bytes32, ErrorCode, HexBytes, KeyInfo, ManagerMsg, NodeMsg, ReshareSpec, SignContext,
};

use super::{TestNode, key, refusal, session};
use crate::ops::sign::{Verdict, check_content, check_sharing, plain_digest_allowed};

fn keygen_prepare(s: u8, k: &str, threshold: u16, parties: Vec<Address>) -> ManagerMsg {
    ManagerMsg::KeyGenPrepare {
        session_id: session(s),
        key_id: key(k),
        threshold,
        parties,
        election: None,
    }
}

#[tokio::test]
async fn keygen_prepare_follows_the_table() {
    let node = TestNode::new(3).await;
    let m = node.members.clone();
    // Fresh key id: ready, nothing existing.
    match node.one(keygen_prepare(1, "k", 2, m.clone())).await {
        NodeMsg::KeyGenReady { existing: None, .. } => {}
        other => panic!("{other:?}"),
    }
    // READY: returned as it is.
    node.ready_key("done", session(9), 2, &m);
    match node.one(keygen_prepare(2, "done", 2, m.clone())).await {
        NodeMsg::KeyGenReady {
            existing: Some(KeyInfo { key_session_id, .. }),
            ..
        } => assert_eq!(key_session_id, session(9)),
        other => panic!("{other:?}"),
    }
    // PENDING: refused as concurrent.
    let parties: Vec<[u8; 20]> = m.iter().map(|p| p.0).collect();
    node.inner
        .store
        .begin_keygen("busy", session(8).0, 2, parties)
        .unwrap();
    let (code, _) = refusal(&node.one(keygen_prepare(3, "busy", 2, m.clone())).await);
    assert_eq!(code, ErrorCode::KeyPending);
}

#[tokio::test]
async fn keygen_prepare_checks_the_committee() {
    let node = TestNode::new(3).await;
    let m = node.members.clone();
    let (code, msg) = refusal(&node.one(keygen_prepare(1, "k", 4, m.clone())).await);
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(msg.contains("threshold"), "{msg}");
    let (code, msg) = refusal(
        &node
            .one(keygen_prepare(2, "k", 2, vec![m[0], m[1], m[1]]))
            .await,
    );
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(msg.contains("twice"), "{msg}");
    let (code, _) = refusal(&node.one(keygen_prepare(3, "k", 2, vec![m[1], m[2]])).await);
    assert_eq!(code, ErrorCode::NotAParty);
    let stranger = Address([0xee; 20]);
    let (code, msg) = refusal(
        &node
            .one(keygen_prepare(4, "k", 2, vec![m[0], stranger]))
            .await,
    );
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(msg.contains("not a member"), "{msg}");
    // None of them left a prepare behind.
    assert_eq!(node.inner.sessions.pending(), 0);
}

#[tokio::test]
async fn a_keygen_start_that_does_not_match_its_prepare_writes_nothing() {
    let node = TestNode::new(3).await;
    let m = node.members.clone();
    node.one(keygen_prepare(1, "k", 2, m.clone())).await;
    let answers = node
        .send(ManagerMsg::KeyGenStart {
            session_id: session(1),
            key_id: key("k"),
            threshold: 3,
            parties: m.clone(),
        })
        .await;
    match &answers[0] {
        NodeMsg::KeyGenFinish { result: Err(e), .. } => {
            assert_eq!(e.code, ErrorCode::BadRequest)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(answers[1], NodeMsg::Status { keys: 0, .. }));
    assert!(node.inner.store.get_key("k").unwrap().is_none());
}

#[tokio::test]
async fn a_sign_prepare_for_a_key_the_node_does_not_hold_is_refused() {
    let node = TestNode::new(3).await;
    let msg = ManagerMsg::KeySignPrepare {
        session_id: session(1),
        key_id: key("nope"),
        digest: Bytes32([1; 32]),
        context: SignContext::Digest,
        key_session_id: None,
    };
    let (code, msg) = refusal(&node.one(msg).await);
    assert_eq!(code, ErrorCode::KeyNotFound);
    assert!(msg.contains("no key nope"), "{msg}");
    // A start for it finds no prepare.
    let start = ManagerMsg::KeySignStart {
        session_id: session(1),
        key_id: key("nope"),
        digest: Bytes32([1; 32]),
        context: SignContext::Digest,
        signers: node.members[..2].to_vec(),
        presignature: None,
    };
    match node.one(start).await {
        NodeMsg::KeySignFinish { result: Err(e), .. } => assert_eq!(e.code, ErrorCode::BadRequest),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_stale_sharing_is_refused() {
    let node = TestNode::new(3).await;
    let m = node.members.clone();
    node.ready_key("k", session(1), 2, &m);
    assert!(check_sharing(&node.inner, &key("k"), &session(1)).is_ok());
    let e = check_sharing(&node.inner, &key("k"), &session(2)).unwrap_err();
    assert_eq!(e.code, ErrorCode::KeyNotReady);
    assert!(e.message.contains("stale sharing"), "{}", e.message);
    let e = check_sharing(&node.inner, &key("gone"), &session(1)).unwrap_err();
    assert_eq!(e.code, ErrorCode::KeyNotFound);
    // Presigning names the sharing too.
    let msg = ManagerMsg::PresignPrepare {
        session_id: session(5),
        key_id: key("k"),
        key_session_id: session(2),
        signers: m[..2].to_vec(),
    };
    let (code, msg) = refusal(&node.one(msg).await);
    assert_eq!(code, ErrorCode::KeyNotReady);
    assert!(msg.contains("stale"), "{msg}");
}

#[tokio::test]
async fn presign_prepare_needs_t_holders_including_this_node() {
    let node = TestNode::new(3).await;
    let m = node.members.clone();
    node.ready_key("k", session(1), 2, &m);
    for signers in [
        vec![m[1], m[2]],
        vec![m[0]],
        vec![m[0], Address([0xee; 20])],
    ] {
        let msg = ManagerMsg::PresignPrepare {
            session_id: session(5),
            key_id: key("k"),
            key_session_id: session(1),
            signers,
        };
        let (code, _) = refusal(&node.one(msg).await);
        assert_eq!(code, ErrorCode::BadRequest);
    }
}

#[test]
fn a_state_key_refuses_plain_digests_other_keys_do_not() {
    let mut config = crate::NodeConfig::from_toml("data_dir = \"/tmp/x\"").unwrap();
    let e = plain_digest_allowed(&config, "state").unwrap_err();
    assert_eq!(e.code, ErrorCode::ContentRejected);
    assert!(e.message.contains("state key"));
    assert!(plain_digest_allowed(&config, "treasury").is_ok());
    config.state_key_ids = vec!["rollup-a".into(), "rollup-b".into()];
    assert!(plain_digest_allowed(&config, "rollup-b").is_err());
    assert!(plain_digest_allowed(&config, "state").is_ok());
}

fn batch(start_block: u64, offset: u64, roots: &[[u8; 32]]) -> (Bytes32, SignContext) {
    let digest = Bytes32(cohort_rollup::state_batch_digest(roots, offset));
    let context = SignContext::StateBatch {
        start_block,
        offset_starts_at_index: offset,
        state_roots: roots.iter().map(|r| Bytes32(*r)).collect(),
    };
    (digest, context)
}

#[tokio::test]
async fn the_content_verdicts() {
    let mut node = TestNode::new(3).await;
    let roots = [[1u8; 32], [2u8; 32]];
    // Plain digest on a state key: refused; on another key: agreed without a slot.
    let v = check_content(
        &node.inner,
        "state",
        &Bytes32([1; 32]),
        &SignContext::Digest,
    )
    .await;
    assert!(matches!(v, Verdict::Refuse(e) if e.code == ErrorCode::ContentRejected));
    let v = check_content(
        &node.inner,
        "other",
        &Bytes32([1; 32]),
        &SignContext::Digest,
    )
    .await;
    assert_eq!(
        v,
        Verdict::Agree {
            slot: None,
            l2_ms: None
        }
    );
    // A rollback is never prepared directly.
    let rb = SignContext::Rollback { start_block: 3 };
    let v = check_content(&node.inner, "state", &Bytes32([1; 32]), &rb).await;
    assert!(matches!(v, Verdict::Refuse(e) if e.code == ErrorCode::BadRequest));
    // Batch rules: start block (l2_block_offset 1 by default) and digest.
    let (digest, ctx) = batch(10, 10, &roots);
    let v = check_content(&node.inner, "state", &digest, &ctx).await;
    assert!(
        matches!(&v, Verdict::Refuse(e) if e.message.contains("does not belong to offset_starts_at_index 10")),
        "{v:?}"
    );
    let (_, ctx) = batch(11, 10, &roots);
    let v = check_content(&node.inner, "state", &Bytes32([0; 32]), &ctx).await;
    assert!(
        matches!(&v, Verdict::Refuse(e) if e.message.contains("digest")),
        "{v:?}"
    );
    // No L2 node: refused, unless the operator skipped the check.
    let (digest, ctx) = batch(11, 10, &roots);
    let v = check_content(&node.inner, "state", &digest, &ctx).await;
    assert!(
        matches!(&v, Verdict::Refuse(e) if e.code == ErrorCode::L2Unavailable),
        "{v:?}"
    );
    node.config().insecure_skip_state_check = true;
    let v = check_content(&node.inner, "state", &digest, &ctx).await;
    assert_eq!(
        v,
        Verdict::Agree {
            slot: Some(10),
            l2_ms: None
        }
    );
    // The journal: a signed prefix that the batch re-sends unchanged and extends is fine…
    node.inner
        .store
        .journal_sign_batch("state", 10, &roots[..1])
        .unwrap();
    let v = check_content(&node.inner, "state", &digest, &ctx).await;
    assert!(matches!(v, Verdict::Agree { .. }), "{v:?}");
    // …another root signed for one of its elements (index 11) is refused, naming it.
    node.inner
        .store
        .journal_sign_batch("state", 11, &[[9u8; 32]])
        .unwrap();
    let v = check_content(&node.inner, "state", &digest, &ctx).await;
    assert!(
        matches!(&v, Verdict::Refuse(e) if e.code == ErrorCode::JournalConflict
            && e.message.contains("element 11")),
        "{v:?}"
    );
}

#[tokio::test]
async fn aux_prepare_needs_this_membership() {
    let node = TestNode::new(3).await;
    let mut other = node.members.clone();
    other.reverse();
    let msg = ManagerMsg::AuxInfoPrepare {
        session_id: session(1),
        members: other,
    };
    let (code, _) = refusal(&node.one(msg).await);
    assert_eq!(code, ErrorCode::BadRequest);
    let msg = ManagerMsg::AuxInfoPrepare {
        session_id: session(2),
        members: node.members.clone(),
    };
    assert!(matches!(node.one(msg).await, NodeMsg::AuxInfoReady { .. }));
}

fn spec(old: Vec<Address>, new: Vec<Address>, new_t: u16) -> ReshareSpec {
    ReshareSpec {
        key_id: key("r"),
        key_session_id: session(1),
        old_parties: old,
        old_threshold: 2,
        new_parties: new,
        new_threshold: new_t,
        public_key: HexBytes(vec![4; 65]),
        dealers: Vec::new(),
        election: None,
    }
}

#[tokio::test]
async fn reshare_prepare_rules() {
    let node = TestNode::new(4).await;
    let m = node.members.clone();
    let prepare = |s: u8, spec: ReshareSpec| ManagerMsg::KeyResharePrepare {
        session_id: session(s),
        spec,
    };
    // Neither an old holder nor a new party.
    let (code, _) = refusal(
        &node
            .one(prepare(1, spec(m[1..3].to_vec(), m[1..4].to_vec(), 2)))
            .await,
    );
    assert_eq!(code, ErrorCode::NotAParty);
    // A bad new committee.
    let (code, msg) = refusal(
        &node
            .one(prepare(2, spec(m[..3].to_vec(), m[..3].to_vec(), 4)))
            .await,
    );
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(msg.contains("new committee"), "{msg}");
    // An old holder that does not hold the sharing.
    let (code, _) = refusal(
        &node
            .one(prepare(3, spec(m[..3].to_vec(), m[..4].to_vec(), 3)))
            .await,
    );
    assert_eq!(code, ErrorCode::KeyNotReady);
    // A new party that already holds a share of the key id.
    node.ready_key("r", session(7), 2, &m[..3]);
    let (code, msg) = refusal(
        &node
            .one(prepare(4, spec(m[1..4].to_vec(), m[..4].to_vec(), 3)))
            .await,
    );
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(msg.contains("already holds"), "{msg}");
    // An old holder whose sharing is another session's.
    let (code, _) = refusal(
        &node
            .one(prepare(5, spec(m[..3].to_vec(), m[1..4].to_vec(), 2)))
            .await,
    );
    assert_eq!(
        code,
        ErrorCode::KeyNotReady,
        "the held sharing is session 7, not 1"
    );
    assert_eq!(node.inner.sessions.pending(), 0);
    let rec = node.inner.store.get_key("r").unwrap().unwrap();
    assert_eq!(rec.status, KeyStatus::Ready);
}

#[tokio::test]
async fn a_new_party_needs_primes_for_the_new_sharings_aux_info() {
    let mut node = TestNode::new(4).await;
    node.config().insecure_test_primes = false;
    let m = node.members.clone();
    let msg = ManagerMsg::KeyResharePrepare {
        session_id: session(1),
        spec: spec(m[1..4].to_vec(), m.clone(), 3),
    };
    let (code, msg) = refusal(&node.one(msg).await);
    assert_eq!(code, ErrorCode::AuxMissing);
    assert!(msg.contains("primes"), "{msg}");
    // Nothing recorded: a new party does not mark an agreement.
    assert!(
        node.inner
            .store
            .take_reshare(session(1).0)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn link_level_messages() {
    let node = TestNode::new(2).await;
    assert!(matches!(
        node.one(ManagerMsg::Ping { nonce: 7 }).await,
        NodeMsg::Pong { nonce: 7 }
    ));
    assert!(
        node.send(ManagerMsg::KeySignCancel {
            session_id: session(1)
        })
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn delete_is_bound_tombstoned_refused_for_signing_then_erased() {
    let mut node = TestNode::new(3).await;
    node.config().deletes.retention_secs = 1;
    node.config().deletes.sweep_interval_secs = 1;
    node.ready_key("k", session(1), 2, &node.members.clone());
    let del = |sharing: u8| ManagerMsg::KeyDelete {
        session_id: session(2),
        key_id: key("k"),
        key_session_id: session(sharing),
    };
    // A delete naming another sharing is refused; the key stays usable.
    let (code, msg) = refusal(&node.one(del(9)).await);
    assert_eq!(code, ErrorCode::KeyNotReady);
    assert!(msg.contains("names sharing"), "{msg}");
    assert!(node.inner.store.get_key("k").unwrap().is_some());

    let a = node.send(del(1)).await;
    assert!(
        matches!(a[0], NodeMsg::KeyDeleted { existed: true, .. }),
        "{a:?}"
    );
    match &a[1] {
        NodeMsg::Status {
            keys: 0,
            tombstoned,
            ..
        } => assert_eq!(tombstoned, &vec![key("k")]),
        other => panic!("{other:?}"),
    }
    // Tombstoned: refused for signing with a clear code; the sealed share is still kept.
    let sign = ManagerMsg::KeySignPrepare {
        session_id: session(3),
        key_id: key("k"),
        digest: Bytes32([1; 32]),
        context: SignContext::Digest,
        key_session_id: Some(session(1)),
    };
    let (code, msg) = refusal(&node.one(sign).await);
    assert_eq!(code, ErrorCode::KeyDeleted, "{msg}");
    assert_eq!(node.inner.store.list_tombstones().unwrap().len(), 1);
    // A redelivered delete is idempotent.
    let a = node.send(del(1)).await;
    assert!(matches!(a[0], NodeMsg::KeyDeleted { existed: true, .. }));

    // After the retention, the node's own sweep erases it from the file.
    crate::ops::delete::start_erase_sweep(node.inner.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !node.inner.store.list_tombstones().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "not erased in time");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let sign = ManagerMsg::KeySignPrepare {
        session_id: session(4),
        key_id: key("k"),
        digest: Bytes32([1; 32]),
        context: SignContext::Digest,
        key_session_id: None,
    };
    assert_eq!(refusal(&node.one(sign).await).0, ErrorCode::KeyDeleted);
}
