//! A mix of refusals is answered with the right code — and a state batch that t holders reject
//! gets its rollback signed by them.

use cohort_wire::{Bytes32, ErrorCode, KeyId, ManagerMsg, SignContext};

use super::{Net, addr, except, refused};
use crate::ops;
use crate::record::OpError;

fn refusing(code: ErrorCode) -> super::Script {
    except(move |_, m| match m {
        ManagerMsg::KeySignPrepare { session_id, .. } => {
            Some(vec![super::Act::Reply(refused(*session_id, code, "no"))])
        }
        _ => None,
    })
}

fn batch() -> SignContext {
    SignContext::StateBatch {
        start_block: 11,
        offset_starts_at_index: 10,
        state_roots: vec![Bytes32([5; 32])],
    }
}

/// Three holders, t = 2; member 0 willing, 1 and 2 refusing with the given codes.
async fn sign_with_refusals(
    a: ErrorCode,
    b: ErrorCode,
    context: SignContext,
) -> (Net, Result<ops::sign::Signed, OpError>) {
    let net = Net::new(3, 30, 30);
    net.seed_key("s", 2, 3);
    net.node(0, Box::new(super::honest));
    net.node(1, refusing(a));
    net.node(2, refusing(b));
    let r = ops::sign::sign(
        &net.state,
        &KeyId::new("s").unwrap(),
        Bytes32([4; 32]),
        context,
    )
    .await;
    (net, r)
}

#[tokio::test]
async fn content_rejected_by_t_holders_signs_the_rollback() {
    let (net, r) = sign_with_refusals(
        ErrorCode::ContentRejected,
        ErrorCode::ContentRejected,
        batch(),
    )
    .await;
    let signed = r.unwrap();
    assert!(signed.roll_back);
    assert_eq!(signed.record.signers, vec![addr(1), addr(2)]);
    let rb = Bytes32(cohort_rollup::rollback_digest(11));
    assert_eq!(signed.record.digest, Some(rb));
    // The real signature of the rollback digest, by the key.
    let expected = cohort_engine::PublicKey::from_sec1(&net.public_key().0)
        .unwrap()
        .address();
    assert_eq!(signed.signature.recover_address(&rb.0).unwrap(), expected);
    // The one who agreed is released.
    net.settle().await;
    assert_eq!(
        net.received(addr(0), |m| matches!(m, ManagerMsg::KeySignCancel { .. }))
            .len(),
        1
    );
    let starts = net.received(addr(1), |m| matches!(m, ManagerMsg::KeySignStart { .. }));
    assert!(matches!(
        &starts[0],
        ManagerMsg::KeySignStart {
            context: SignContext::Rollback { start_block: 11 },
            ..
        }
    ));
}

#[tokio::test]
async fn content_rejected_below_t_is_content_rejected_without_rollback() {
    let (_net, r) = sign_with_refusals(
        ErrorCode::ContentRejected,
        ErrorCode::L2Unavailable,
        batch(),
    )
    .await;
    let e = r.err().unwrap();
    assert_eq!(e.error.code, ErrorCode::ContentRejected);
    assert_eq!(e.refused.len(), 2);
    assert_eq!(e.ready, vec![addr(0)]);
}

#[tokio::test]
async fn a_journal_conflict_is_journal_conflict() {
    let (_net, r) = sign_with_refusals(
        ErrorCode::JournalConflict,
        ErrorCode::L2Unavailable,
        batch(),
    )
    .await;
    assert_eq!(r.err().unwrap().error.code, ErrorCode::JournalConflict);
}

#[tokio::test]
async fn nodes_without_their_l2_is_l2_unavailable() {
    let (_net, r) =
        sign_with_refusals(ErrorCode::L2Unavailable, ErrorCode::KeyNotReady, batch()).await;
    let e = r.err().unwrap();
    assert_eq!(e.error.code, ErrorCode::L2Unavailable);
    assert!(
        e.error.message.contains("1 of 3 holders willing"),
        "{}",
        e.error.message
    );
}

#[tokio::test]
async fn other_refusals_are_not_enough_parties() {
    let (_net, r) = sign_with_refusals(
        ErrorCode::KeyNotReady,
        ErrorCode::AuxMissing,
        SignContext::Digest,
    )
    .await;
    let e = r.err().unwrap();
    assert_eq!(e.error.code, ErrorCode::NotEnoughParties);
    assert!(e.session_id.is_some());
}
