//! Presignatures on the node: a partial from a presignature only for a digest this node
//! computed itself (RUSTSEC-2025-0127), whatever the manager's start message claims; and single
//! use across a store restored from a copy.

use cohort_wire::{Address, Bytes32, ErrorCode, ManagerMsg, NodeMsg, SignContext};

use super::{TestNode, key, session};
use crate::session::Prepared;

const PRESIG: [u8; 32] = [7; 32];

/// A state batch at slot 10 (start block 11) and its digest, as the node computes it.
fn batch() -> (Bytes32, SignContext) {
    let roots = [[1u8; 32], [2u8; 32]];
    let digest = Bytes32(cohort_rollup::state_batch_digest(&roots, 10));
    let context = SignContext::StateBatch {
        start_block: 11,
        offset_starts_at_index: 10,
        state_roots: roots.iter().map(|r| Bytes32(*r)).collect(),
    };
    (digest, context)
}

/// A node holding READY key "k" (2 of its 3 members) and one stored presignature piece for
/// the first two members.
async fn node_with_piece() -> (TestNode, Vec<Address>) {
    let node = TestNode::new(3).await;
    let m = node.members.clone();
    node.ready_key("k", session(9), 2, &m);
    let signers = m[..2].to_vec();
    node.inner
        .store
        .put_presignature("k", PRESIG, signers.iter().map(|s| s.0).collect(), b"piece")
        .unwrap();
    (node, signers)
}

fn pieces(node: &TestNode) -> u64 {
    node.inner.store.count_presignatures("k").unwrap()
}

/// What the prepare approved: `slot` is `Some` only for a state batch whose digest the node
/// recomputed from the roots it checked.
fn approve(node: &TestNode, s: Bytes32, digest: Bytes32, slot: Option<u64>) {
    node.inner.sessions.prepare(
        s,
        Prepared::Sign {
            key_id: key("k"),
            digest,
            slot,
        },
    );
}

fn start(s: Bytes32, digest: Bytes32, context: SignContext, signers: &[Address]) -> ManagerMsg {
    ManagerMsg::KeySignStart {
        session_id: s,
        key_id: key("k"),
        digest,
        context,
        signers: signers.to_vec(),
        presignature: Some(Bytes32(PRESIG)),
    }
}

fn finish_error(msg: NodeMsg) -> cohort_wire::ErrorBody {
    match msg {
        NodeMsg::KeySignFinish { result: Err(e), .. } => e,
        other => panic!("expected a failed finish, got {other:?}"),
    }
}

#[tokio::test]
async fn a_raw_digest_is_never_signed_from_a_presignature_whatever_the_manager_says() {
    let (node, signers) = node_with_piece().await;
    let raw = Bytes32([0xab; 32]);
    // A caller-chosen digest the node agreed to sign (a non-state key): with a presignature
    // the start is refused with its own code, and the piece is left untouched.
    approve(&node, session(1), raw, None);
    let e = finish_error(
        node.one(start(session(1), raw, SignContext::Digest, &signers))
            .await,
    );
    assert_eq!(e.code, ErrorCode::PresignatureRefused, "{e:?}");
    assert!(e.culprits.is_empty());
    assert_eq!(pieces(&node), 1, "a refusal does not burn the piece");

    // The hostile path: the manager relabels the approved raw digest as a state batch in its
    // start. What counts is what this node approved, not what the start claims.
    let (_, ctx) = batch();
    approve(&node, session(2), raw, None);
    let e = finish_error(node.one(start(session(2), raw, ctx, &signers)).await);
    assert_eq!(e.code, ErrorCode::PresignatureRefused, "{e:?}");
    assert_eq!(pieces(&node), 1);
    // No journal entry was written for the relabelled request.
    assert!(
        crate::journal::check(&node.inner.store, "k", 10, &[[9u8; 32]]).is_ok(),
        "the refused start recorded nothing in the journal"
    );

    // A state batch whose digest the node computed reaches the piece and consumes it (the
    // test piece is opaque bytes, so no partial comes out — but it is gone for good).
    let (digest, ctx) = batch();
    approve(&node, session(3), digest, Some(10));
    let e = finish_error(node.one(start(session(3), digest, ctx, &signers)).await);
    assert_ne!(e.code, ErrorCode::PresignatureRefused, "{e:?}");
    assert_eq!(pieces(&node), 0, "the state batch consumed the piece");
}

#[tokio::test]
async fn a_store_restored_from_a_copy_never_reuses_a_used_presignature() {
    let (node, signers) = node_with_piece().await;
    let me = node.me();
    let file = node.dir.path().join("node.redb");
    // The backup, taken while the piece is unused.
    let backup = node.dir.path().join("backup.redb");
    std::fs::copy(&file, &backup).unwrap();

    // The live node uses the piece for a state batch.
    let (digest, ctx) = batch();
    approve(&node, session(1), digest, Some(10));
    let _ = node
        .one(start(session(1), digest, ctx.clone(), &signers))
        .await;
    assert_eq!(pieces(&node), 0);

    // Stop; restore the copy over the live store; start again.
    let TestNode { inner, dir, .. } = node;
    drop(inner);
    std::fs::copy(&backup, &file).unwrap();
    let node = TestNode::in_dir(3, dir).await;
    assert_eq!(node.me(), me, "the restored store is the same node");

    // The piece the live node used is gone from the restored store, and its id can never be
    // stored again; a start naming it finds nothing to issue from.
    assert_eq!(pieces(&node), 0);
    assert_eq!(
        node.inner
            .store
            .find_presignature("k", &signers.iter().map(|s| s.0).collect::<Vec<_>>())
            .unwrap(),
        None
    );
    assert!(
        node.inner
            .store
            .put_presignature("k", PRESIG, signers.iter().map(|s| s.0).collect(), b"x")
            .is_err()
    );
    approve(&node, session(2), digest, Some(10));
    let e = finish_error(node.one(start(session(2), digest, ctx, &signers)).await);
    assert!(e.message.contains("unknown or was already used"), "{e:?}");
}
