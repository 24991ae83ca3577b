//! The JSON bodies of every HTTP route (keygen, sign, reshare, Mantle's sign/state), parsed as
//! the handlers parse them, and key ids as the paths carry them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cohort_manager::fuzzing::http_bodies(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = cohort_manager::fuzzing::key_id(s);
    }
});
