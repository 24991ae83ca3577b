//! Node and manager configuration files (TOML), parsed and validated as at start-up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cohort_node::NodeConfig::from_toml(text);
        if let Ok(c) = cohort_manager::ManagerConfig::from_toml(text) {
            let _ = c.validate();
        }
    }
});
