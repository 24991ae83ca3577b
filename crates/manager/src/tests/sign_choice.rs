//! Who signs: the t fastest (by the latency model, and by who is ready first), a pooled
//! presignature when its whole set is ready — falling back to full signing — and a signature
//! is verified against the key before anyone sees it.

use std::time::Duration;

use cohort_wire::{Bytes32, ErrorCode, KeyId, ManagerMsg, NodeMsg, OpKind, OpOutcome, SignContext};

use super::{Act, Net, addr, except};
use crate::ops;
use crate::pool::PoolEntry;

fn id(s: &str) -> KeyId {
    KeyId::new(s).unwrap()
}

/// A state batch (slot 0, blocks 1..=2) and its digest: the only signing a presignature serves.
fn batch() -> (Bytes32, SignContext) {
    let roots = [[1u8; 32], [2u8; 32]];
    let digest = Bytes32(cohort_rollup::state_batch_digest(&roots, 0));
    let context = SignContext::StateBatch {
        start_block: 1,
        offset_starts_at_index: 0,
        state_roots: roots.iter().map(|r| Bytes32(*r)).collect(),
    };
    (digest, context)
}

fn presigned_starts(net: &Net, a: cohort_wire::Address) -> usize {
    net.received(a, |m| {
        matches!(
            m,
            ManagerMsg::KeySignStart {
                presignature: Some(_),
                ..
            }
        )
    })
    .len()
}

#[tokio::test]
async fn a_raw_digest_is_never_served_from_a_presignature() {
    let net = Net::new(3, 30, 30);
    let key = net.seed_key("state", 2, 3);
    net.honest_all();
    let entry = PoolEntry {
        id: Bytes32([6; 32]),
        signers: vec![addr(0), addr(1)],
        key_session_id: key.key_session_id,
    };
    net.state.pool.push("state", entry.clone());
    // The pool itself serves no caller-chosen digest, nor a rollback, whoever is ready.
    assert_eq!(
        net.state
            .pool
            .take(&key, &net.members, &SignContext::Digest),
        None
    );
    assert_eq!(
        net.state.pool.take(
            &key,
            &net.members,
            &SignContext::Rollback { start_block: 1 }
        ),
        None
    );
    // A raw digest, with every signer of the pooled set ready: signed in full, one operation,
    // no presignature offered to anyone, the pooled one still there.
    let digest = Bytes32([2; 32]);
    let signed = ops::sign::sign(&net.state, &id("state"), digest, SignContext::Digest)
        .await
        .unwrap();
    assert_eq!(signed.record.presignature, None);
    assert_eq!(signed.record.retry_of, None);
    assert_eq!(net.records().len(), 1);
    for a in &net.members {
        assert_eq!(presigned_starts(&net, *a), 0, "{a}");
    }
    assert_eq!(net.state.pool.depth("state"), 1);
    // A state batch does use it.
    let (digest, ctx) = batch();
    ops::sign::sign(&net.state, &id("state"), digest, ctx)
        .await
        .unwrap();
    assert_eq!(net.state.pool.depth("state"), 0);
    assert_eq!(presigned_starts(&net, addr(0)), 1);
    // Presignatures are generated only for the state key.
    let other = net.seed_key("other", 2, 3);
    let e = ops::presign::generate(&net.state, &other, vec![addr(0), addr(1)])
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(net.state.pool.entries(&other).is_empty());
}

#[tokio::test]
async fn the_latency_model_prefers_the_fastest_in_share_order() {
    let net = Net::new(4, 30, 30);
    let key = net.seed_key("s", 2, 4);
    let l = &net.state.latency;
    l.observe(addr(0), 50.0);
    l.observe(addr(1), 5.0);
    l.observe(addr(3), 10.0);
    // addr(2) never measured: slowest.
    assert_eq!(
        l.preferred(&key, &net.members),
        Some(vec![addr(1), addr(3)])
    );
    // Only connected holders count.
    assert_eq!(
        l.preferred(&key, &[addr(0), addr(2), addr(3)]),
        Some(vec![addr(0), addr(3)])
    );
    assert_eq!(l.preferred(&key, &[addr(0)]), None);
    // Smoothing: one fast answer does not make a slow node the fastest.
    l.observe(addr(0), 1.0);
    assert_eq!(
        l.preferred(&key, &net.members),
        Some(vec![addr(1), addr(3)])
    );
}

#[tokio::test]
async fn signers_are_the_first_t_ready_and_their_speed_is_learnt() {
    let net = Net::new(3, 30, 30);
    net.seed_key("s", 2, 3);
    net.node(
        0,
        except(|_, m| match m {
            ManagerMsg::KeySignPrepare { session_id, .. } => Some(vec![Act::Later(
                Duration::from_millis(300),
                NodeMsg::KeySignReady {
                    session_id: *session_id,
                    l2_ms: None,
                },
            )]),
            _ => None,
        }),
    );
    net.node(1, Box::new(super::honest));
    net.node(2, Box::new(super::honest));
    let digest = Bytes32([8; 32]);
    let signed = ops::sign::sign(&net.state, &id("s"), digest, Default::default())
        .await
        .unwrap();
    assert_eq!(signed.record.signers, vec![addr(1), addr(2)]);
    assert_eq!(signed.record.operation, OpKind::Sign);
    let expected = cohort_engine::PublicKey::from_sec1(&net.public_key().0)
        .unwrap()
        .address();
    assert_eq!(
        signed.signature.recover_address(&digest.0).unwrap(),
        expected
    );
    let key = net.state.registry.get("s").unwrap().unwrap();
    assert_eq!(
        net.state.latency.preferred(&key, &net.members),
        Some(vec![addr(1), addr(2)])
    );
}

#[tokio::test]
async fn a_reconnecting_signer_drops_its_pooled_presignatures() {
    let net = Net::new(3, 30, 30);
    let key = net.seed_key("state", 2, 3);
    net.honest_all();
    for (n, signers) in [(1u8, vec![addr(0), addr(1)]), (2, vec![addr(1), addr(2)])] {
        net.state.pool.push(
            "state",
            PoolEntry {
                id: Bytes32([n; 32]),
                signers,
                key_session_id: key.key_session_id,
            },
        );
    }
    // Member 0 comes back (a restart discarded its pieces): only the entry without it stays.
    net.node(0, Box::new(super::honest));
    let left = net.state.pool.entries(&key);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, Bytes32([2; 32]));
}

#[tokio::test]
async fn a_failed_presignature_signing_is_signed_again_in_full() {
    let net = Net::new(3, 30, 30);
    let key = net.seed_key("state", 2, 3);
    net.honest_all();
    let entry = PoolEntry {
        id: Bytes32([6; 32]),
        signers: vec![addr(0), addr(1)],
        key_session_id: key.key_session_id,
    };
    net.state.pool.push("state", entry.clone());
    let (digest, ctx) = batch();
    let signed = ops::sign::sign(&net.state, &id("state"), digest, ctx)
        .await
        .unwrap();
    // The second attempt, in full, names the first.
    let records = net.records();
    assert_eq!(records.len(), 2);
    let (full, first) = (&records[0], &records[1]);
    assert_eq!(full.session_id, signed.record.session_id);
    assert_eq!(full.retry_of, Some(first.session_id));
    assert_eq!(full.presignature, None);
    assert_eq!(full.outcome, OpOutcome::Ok);
    assert_eq!(first.presignature, Some(entry.id));
    assert_eq!(first.outcome, OpOutcome::Failed);
    assert_eq!(first.signers, entry.signers);
    // The presignature was taken before anyone used it, and never offered again.
    assert_eq!(net.state.pool.depth("state"), 0);
    let starts = net.received(addr(0), |m| {
        matches!(
            m,
            ManagerMsg::KeySignStart {
                presignature: Some(_),
                ..
            }
        )
    });
    assert_eq!(starts.len(), 1);
    let text = net.state.metrics.render();
    assert!(
        text.contains("cohort_manager_presignature_fallbacks_total 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_late_ready_within_the_grace_completes_a_presignature_set() {
    let net = Net::new(3, 30, 30);
    let key = net.seed_key("state", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(1, Box::new(super::honest));
    net.node(
        2,
        except(|_, m| match m {
            ManagerMsg::KeySignPrepare { session_id, .. } => Some(vec![Act::Later(
                Duration::from_millis(100),
                NodeMsg::KeySignReady {
                    session_id: *session_id,
                    l2_ms: None,
                },
            )]),
            _ => None,
        }),
    );
    let entry = PoolEntry {
        id: Bytes32([6; 32]),
        signers: vec![addr(0), addr(2)],
        key_session_id: key.key_session_id,
    };
    net.state.pool.push("state", entry.clone());
    let (digest, ctx) = batch();
    ops::sign::sign(&net.state, &id("state"), digest, ctx)
        .await
        .unwrap();
    let records = net.records();
    // The presignature path was taken (then fell back, the fake nodes hold no piece).
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].presignature, Some(entry.id));
    assert_eq!(records[1].signers, entry.signers);
    assert_eq!(net.state.pool.depth("state"), 0);
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let net = Net::new(2, 30, 30);
    net.seed_key("s", 2, 2);
    let other = k256::ecdsa::SigningKey::random(&mut rand::thread_rng());
    for i in 0..2 {
        let other = other.clone();
        net.node(
            i,
            except(move |_, m| match m {
                ManagerMsg::KeySignStart {
                    session_id, digest, ..
                } => Some(vec![Act::Reply(NodeMsg::KeySignFinish {
                    session_id: *session_id,
                    result: Ok(super::signature(&other, digest)),
                })]),
                _ => None,
            }),
        );
    }
    let e = ops::sign::sign(&net.state, &id("s"), Bytes32([1; 32]), Default::default())
        .await
        .err()
        .unwrap();
    assert_eq!(e.error.code, ErrorCode::ProtocolFailed);
    assert!(
        e.error.message.contains("does not verify"),
        "{}",
        e.error.message
    );
}

#[tokio::test]
async fn presigning_pools_a_presignature_for_the_set() {
    let net = Net::new(3, 30, 30);
    let key = net.seed_key("state", 2, 3);
    net.honest_all();
    ops::presign::generate(&net.state, &key, vec![addr(0), addr(2)])
        .await
        .unwrap();
    let pooled = net.state.pool.entries(&key);
    assert_eq!(pooled.len(), 1);
    assert_eq!(pooled[0].signers, vec![addr(0), addr(2)]);
    assert!(
        net.received(addr(1), |_| true).is_empty(),
        "only the set is asked"
    );
}

#[tokio::test]
async fn keygen_creates_once_and_refuses_other_parameters_with_409() {
    let net = Net::new(3, 30, 30);
    net.honest_all();
    let (k, rec) = ops::keygen::keygen(&net.state, id("k"), 2, None)
        .await
        .unwrap();
    let rec = rec.unwrap();
    assert_eq!(k.key_session_id, rec.session_id);
    assert_eq!(k.parties, net.members);
    assert_eq!(k.public_key, net.public_key());
    // The same parameters: the key as it is, no operation.
    let (again, none) = ops::keygen::keygen(&net.state, id("k"), 2, None)
        .await
        .unwrap();
    assert!(none.is_none());
    assert_eq!(again, k);
    let (again, _) = ops::keygen::keygen(&net.state, id("k"), 2, Some(net.members.clone()))
        .await
        .unwrap();
    assert_eq!(again, k);
    // Another threshold or committee: 409 naming the existing key.
    for (t, parties) in [(3, None), (2, Some(vec![addr(0), addr(1)]))] {
        let e = ops::keygen::keygen(&net.state, id("k"), t, parties)
            .await
            .unwrap_err();
        assert_eq!(e.error.code, ErrorCode::KeyExists);
        assert!(
            e.error.message.contains("key k already exists as 2-of-3"),
            "{}",
            e.error.message
        );
    }
    assert_eq!(net.records().len(), 1);
}
