//! Arbitrary bytes as an OpenDSS script: the importer returns a circuit or
//! an error naming file:line, never panics.
#![no_main]

use gridtwin::grid::dss::DssCircuit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("gridtwin-fuzz-dss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let master = dir.join("Master.dss");
    std::fs::write(&master, data).expect("write script");
    if let Err(e) = DssCircuit::load(&master) {
        assert!(!e.to_string().is_empty());
    }
});
