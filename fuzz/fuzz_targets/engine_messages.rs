//! Engine protocol messages (version ‖ session tag ‖ CBOR) of every protocol: keygen, aux info,
//! signing and presigning, resharing. The input is tried raw and behind a valid header, so the
//! CBOR body decoders of cggmp21's and our own message types see the bytes.
#![no_main]

use cohort_engine::codec::{WIRE_VERSION, decode};
use cohort_engine::{aux, keygen, reshare, sign};
use libfuzzer_sys::fuzz_target;

const TAG: [u8; 32] = [7u8; 32];

fn all(bytes: &[u8]) {
    let _ = decode::<keygen::Msg>(&TAG, bytes);
    let _ = decode::<aux::Msg>(&TAG, bytes);
    let _ = decode::<sign::Msg>(&TAG, bytes);
    let _ = decode::<reshare::msg::Msg>(&TAG, bytes);
}

fuzz_target!(|data: &[u8]| {
    all(data);
    let mut framed = Vec::with_capacity(33 + data.len());
    framed.push(WIRE_VERSION);
    framed.extend_from_slice(&TAG);
    framed.extend_from_slice(data);
    all(&framed);
});
