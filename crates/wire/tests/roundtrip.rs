//! Property tests of the encoders: whatever a frame holds, `decode(encode(m))` gives it back
//! (manager ↔ node JSON frames and node ↔ node peer frames).

use cohort_wire::{
    Address, Bytes32, ErrorBody, ErrorCode, ManagerMsg, NodeMsg, PeerFrame, PeerKind, decode,
    encode,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn challenge_frames_round_trip(manager in any::<[u8; 20]>(), nonce in any::<[u8; 32]>()) {
        let msg = ManagerMsg::Challenge { manager: Address(manager), nonce: Bytes32(nonce) };
        let back = decode::<ManagerMsg>(&encode(msg.clone())).unwrap();
        prop_assert_eq!(back.msg, msg);
    }

    #[test]
    fn refusals_round_trip(session in any::<[u8; 32]>(), message in ".{0,200}") {
        let msg = NodeMsg::Refused {
            session_id: Bytes32(session),
            error: ErrorBody::new(ErrorCode::BadRequest, message),
        };
        let back = decode::<NodeMsg>(&encode(msg.clone())).unwrap();
        prop_assert_eq!(back.msg, msg);
    }

    #[test]
    fn aux_ready_round_trips_with_its_test_primes_flag(session in any::<[u8; 32]>(), test_primes in any::<bool>()) {
        let msg = NodeMsg::AuxInfoReady { session_id: Bytes32(session), test_primes };
        let back = decode::<NodeMsg>(&encode(msg.clone())).unwrap();
        prop_assert_eq!(back.msg, msg);
    }

    #[test]
    fn peer_frames_round_trip(p2p in any::<bool>(), payload in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let f = PeerFrame { kind: if p2p { PeerKind::P2P } else { PeerKind::Broadcast }, payload };
        prop_assert_eq!(PeerFrame::decode(f.encode()).unwrap(), f);
    }
}
