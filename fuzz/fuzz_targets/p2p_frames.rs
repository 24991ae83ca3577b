//! libp2p request/response frames as the codec reads them off a stream: header, announced
//! length against the limit, payload; and the response byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = data.first().map_or(0, |b| usize::from(*b) * 64);
    let _ = cohort_p2p::fuzzing::read_request(data, max);
    let _ = cohort_p2p::fuzzing::read_request(data, 1024 * 1024);
    let _ = cohort_p2p::fuzzing::read_response(data);
    if data.len() >= 32 {
        let mut session = [0u8; 32];
        session.copy_from_slice(&data[..32]);
        let payload = &data[32..];
        assert_eq!(
            cohort_p2p::fuzzing::round_trip(session, payload, 1024 * 1024),
            Ok(true)
        );
    }
});
