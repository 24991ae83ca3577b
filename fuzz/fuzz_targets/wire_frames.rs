//! Manager ↔ node frames (JSON text over the WebSocket), both directions, and the node ↔ node
//! peer frame inside a p2p payload. A frame that decodes must encode and decode again.
#![no_main]

use cohort_wire::{ManagerMsg, NodeMsg, PeerFrame, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(f) = decode::<ManagerMsg>(text) {
            let again = encode(f.msg);
            assert!(decode::<ManagerMsg>(&again).is_ok(), "{again}");
        }
        if let Ok(f) = decode::<NodeMsg>(text) {
            let again = encode(f.msg);
            assert!(decode::<NodeMsg>(&again).is_ok(), "{again}");
        }
    }
    if let Ok(f) = PeerFrame::decode(data.to_vec()) {
        let again = PeerFrame::decode(f.encode()).expect("re-encoded peer frame decodes");
        assert_eq!(again, f);
    }
});
