//! Decode entry points for the cargo-fuzz targets (`fuzz/`): the codec reads a peer's bytes
//! exactly as it does on a libp2p stream.

use std::sync::Arc;

use libp2p::request_response::Codec as _;

use crate::codec::{CohortCodec, PROTOCOL};
use crate::stats::Counters;

/// Reads one request (session ‖ length ‖ payload) from `bytes` with a `max` payload limit;
/// returns the session and payload length, or the codec's error text.
pub fn read_request(bytes: &[u8], max: usize) -> Result<([u8; 32], usize), String> {
    let mut codec = CohortCodec::new(max, Arc::new(Counters::default()));
    let mut io = futures::io::Cursor::new(bytes);
    futures::executor::block_on(codec.read_request(&PROTOCOL, &mut io))
        .map(|r| (r.session, r.payload.len()))
        .map_err(|e| e.to_string())
}

/// Reads one response byte from `bytes`.
pub fn read_response(bytes: &[u8]) -> Result<(), String> {
    let mut codec = CohortCodec::new(0, Arc::new(Counters::default()));
    let mut io = futures::io::Cursor::new(bytes);
    futures::executor::block_on(codec.read_response(&PROTOCOL, &mut io))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Writes a request and reads it back: the round trip must give the same session and payload.
pub fn round_trip(session: [u8; 32], payload: &[u8], max: usize) -> Result<bool, String> {
    let mut codec = CohortCodec::new(max, Arc::new(Counters::default()));
    let mut out = futures::io::Cursor::new(Vec::new());
    let req = crate::codec::WireRequest {
        session,
        payload: payload.to_vec(),
    };
    futures::executor::block_on(codec.write_request(&PROTOCOL, &mut out, req))
        .map_err(|e| e.to_string())?;
    let bytes = out.into_inner();
    let mut io = futures::io::Cursor::new(bytes.as_slice());
    let back = futures::executor::block_on(codec.read_request(&PROTOCOL, &mut io))
        .map_err(|e| e.to_string())?;
    Ok(back.session == session && back.payload == payload)
}
