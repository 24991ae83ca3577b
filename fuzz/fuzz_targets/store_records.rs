//! The node store's record formats: the key record (JSON), the KDF parameters (JSON), and the
//! blobs kept sealed in it once opened — key shares, core shares, aux info, presignatures,
//! safe primes (CBOR / fixed layouts, decoded by the engine).
#![no_main]

use cohort_engine::{AuxInfo, CoreShare, KeyShare, Presignature, SafePrimes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<cohort_store::KeyRecord>(data);
    let _ = serde_json::from_slice::<cohort_store::KdfParams>(data);
    let _ = KeyShare::from_bytes(data);
    let _ = CoreShare::from_bytes(data);
    let _ = AuxInfo::from_bytes(data);
    let _ = Presignature::from_bytes(data);
    let _ = SafePrimes::from_bytes(data);
});
