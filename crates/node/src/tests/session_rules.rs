//! The prepared-session rules of `session.rs`: a start runs only once, only after its prepare,
//! only before the prepare expires, and only for exactly what was prepared.

use std::time::{Duration, Instant};

use cohort_wire::{Address, Bytes32, Committee, ErrorCode, HexBytes, ReshareSpec, SignContext};

use super::{key, session};
use crate::session::{Prepared, Sessions};

fn parties(n: u8) -> Vec<Address> {
    (1..=n).map(|i| Address([i; 20])).collect()
}

fn sessions() -> Sessions {
    Sessions::new(Duration::from_secs(60))
}

fn keygen(sessions: &Sessions, s: Bytes32) {
    sessions.prepare(
        s,
        Prepared::Keygen {
            key_id: key("k"),
            committee: Committee::new(parties(3), 2).unwrap(),
        },
    );
}

#[test]
fn a_start_without_its_prepare_is_refused() {
    let s = sessions();
    let e = s
        .start_keygen(session(1), &key("k"), 2, &parties(3))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(
        e.message.contains("without a matching prepare"),
        "{}",
        e.message
    );
    let e = s.start_aux(session(1), &parties(3)).unwrap_err();
    assert!(e.message.contains("aux-info start"), "{}", e.message);
}

#[test]
fn a_second_start_of_one_session_is_a_replay() {
    let s = sessions();
    keygen(&s, session(1));
    let c = s
        .start_keygen(session(1), &key("k"), 2, &parties(3))
        .unwrap();
    assert_eq!(c.threshold(), 2);
    // Again, without and with a fresh prepare of the same id: both are replays.
    let e = s
        .start_keygen(session(1), &key("k"), 2, &parties(3))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Replayed);
    assert_eq!(e.message, "session already started");
    keygen(&s, session(1));
    let e = s
        .start_keygen(session(1), &key("k"), 2, &parties(3))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Replayed);
    // Another session id is not affected.
    keygen(&s, session(2));
    assert!(
        s.start_keygen(session(2), &key("k"), 2, &parties(3))
            .is_ok()
    );
}

#[test]
fn an_expired_prepare_is_refused_and_swept() {
    let s = Sessions::new(Duration::ZERO);
    keygen(&s, session(1));
    let e = s
        .start_keygen(session(1), &key("k"), 2, &parties(3))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("expired"), "{}", e.message);

    let s = Sessions::new(Duration::from_millis(50));
    keygen(&s, session(2));
    keygen(&s, session(3));
    s.sweep(Instant::now());
    assert_eq!(s.pending(), 2, "nothing expired yet");
    s.sweep(Instant::now() + Duration::from_millis(100));
    assert_eq!(s.pending(), 0);
    assert!(
        s.start_keygen(session(2), &key("k"), 2, &parties(3))
            .is_err()
    );
}

#[test]
fn a_keygen_start_must_name_the_prepared_key_and_committee() {
    let s = sessions();
    let cases: [(&str, u16, Vec<Address>); 4] = [
        ("other", 2, parties(3)),
        ("k", 3, parties(3)),
        ("k", 2, parties(4)),
        ("k", 2, {
            let mut p = parties(3);
            p.reverse();
            p
        }),
    ];
    for (i, (k, t, p)) in cases.into_iter().enumerate() {
        let id = session(10 + i as u8);
        keygen(&s, id);
        let e = s.start_keygen(id, &key(k), t, &p).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "case {i}");
        // The mismatch consumed the prepare: a matching start now finds none.
        assert!(s.start_keygen(id, &key("k"), 2, &parties(3)).is_err());
    }
}

#[test]
fn a_sign_start_must_name_the_prepared_key_and_digest() {
    let s = sessions();
    let prepared = |id| {
        s.prepare(
            id,
            Prepared::Sign {
                key_id: key("k"),
                digest: Bytes32([7; 32]),
                slot: Some(4),
            },
        )
    };
    prepared(session(1));
    let e = s
        .start_sign(
            session(1),
            &key("k"),
            &Bytes32([8; 32]),
            &SignContext::Digest,
        )
        .unwrap_err();
    assert!(e.message.contains("does not match"), "{}", e.message);
    prepared(session(2));
    assert!(
        s.start_sign(
            session(2),
            &key("j"),
            &Bytes32([7; 32]),
            &SignContext::Digest
        )
        .is_err()
    );
    prepared(session(3));
    let slot = s
        .start_sign(
            session(3),
            &key("k"),
            &Bytes32([7; 32]),
            &SignContext::Digest,
        )
        .unwrap();
    assert_eq!(slot, Some(4));
}

#[test]
fn after_a_disagreement_only_that_rollback_may_be_signed() {
    let s = sessions();
    let rb = Bytes32(cohort_rollup::rollback_digest(15));
    let prepared = |id| {
        s.prepare(
            id,
            Prepared::Rollback {
                key_id: key("state"),
                start_block: 15,
            },
        )
    };
    // Not the batch itself, not another block's rollback, not another digest.
    prepared(session(1));
    assert!(
        s.start_sign(session(1), &key("state"), &rb, &SignContext::Digest)
            .is_err()
    );
    prepared(session(2));
    let other = SignContext::Rollback { start_block: 16 };
    assert!(
        s.start_sign(session(2), &key("state"), &rb, &other)
            .is_err()
    );
    prepared(session(3));
    let ctx = SignContext::Rollback { start_block: 15 };
    assert!(
        s.start_sign(session(3), &key("state"), &Bytes32([1; 32]), &ctx)
            .is_err()
    );
    prepared(session(4));
    assert_eq!(
        s.start_sign(session(4), &key("state"), &rb, &ctx).unwrap(),
        None
    );
    // And a prepared batch does not allow a rollback.
    s.prepare(
        session(5),
        Prepared::Sign {
            key_id: key("state"),
            digest: rb,
            slot: Some(5),
        },
    );
    assert!(s.start_sign(session(5), &key("state"), &rb, &ctx).is_err());
}

#[test]
fn a_presign_start_must_name_the_prepared_signers_in_order() {
    let s = sessions();
    let prepared = |id| {
        s.prepare(
            id,
            Prepared::Presign {
                key_id: key("k"),
                key_session_id: Bytes32([9; 32]),
                signers: parties(2),
            },
        )
    };
    prepared(session(1));
    let mut swapped = parties(2);
    swapped.reverse();
    assert!(
        s.start_presign(session(1), &key("k"), &Bytes32([9; 32]), &swapped)
            .is_err()
    );
    prepared(session(2));
    assert!(
        s.start_presign(session(2), &key("k"), &Bytes32([1; 32]), &parties(2))
            .is_err()
    );
    prepared(session(3));
    assert!(
        s.start_presign(session(3), &key("k"), &Bytes32([9; 32]), &parties(2))
            .is_ok()
    );
}

fn spec() -> ReshareSpec {
    ReshareSpec {
        key_id: key("r"),
        key_session_id: Bytes32([3; 32]),
        old_parties: parties(3),
        old_threshold: 2,
        new_parties: parties(4),
        new_threshold: 3,
        public_key: HexBytes(vec![4; 65]),
        dealers: Vec::new(),
        election: None,
    }
}

#[test]
fn a_reshare_start_adds_only_the_dealers_to_its_prepare() {
    let s = sessions();
    s.prepare(session(1), Prepared::Reshare(spec()));
    let started = ReshareSpec {
        dealers: parties(2),
        ..spec()
    };
    assert!(s.start_reshare(session(1), &started).is_ok());
    s.prepare(session(2), Prepared::Reshare(spec()));
    let other = ReshareSpec {
        new_threshold: 2,
        ..started
    };
    let e = s.start_reshare(session(2), &other).unwrap_err();
    assert!(e.message.contains("reshare start"), "{}", e.message);
}

#[test]
fn a_start_of_another_operation_does_not_match() {
    let s = sessions();
    keygen(&s, session(1));
    assert!(s.start_aux(session(1), &parties(3)).is_err());
    s.prepare(
        session(2),
        Prepared::Aux {
            members: parties(3),
        },
    );
    assert!(
        s.start_keygen(session(2), &key("k"), 2, &parties(3))
            .is_err()
    );
    s.prepare(
        session(3),
        Prepared::Aux {
            members: parties(3),
        },
    );
    assert!(s.start_aux(session(3), &parties(4)).is_err());
}

#[test]
fn a_cancel_forgets_the_prepare() {
    let s = sessions();
    keygen(&s, session(1));
    assert!(s.cancel(&session(1)));
    assert!(!s.cancel(&session(1)));
    assert!(
        s.start_keygen(session(1), &key("k"), 2, &parties(3))
            .is_err()
    );
    // A cancelled session was never started: preparing it again works.
    keygen(&s, session(1));
    assert!(
        s.start_keygen(session(1), &key("k"), 2, &parties(3))
            .is_ok()
    );
}
