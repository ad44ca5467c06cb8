//! Arbitrary bytes into the scenario loader: it must return a scenario or a
//! positioned error, never panic.
#![no_main]

use std::path::Path;

use gridtwin::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Scenario::from_source("fuzz.ron", text, Path::new("."), "fuzz") {
        Ok(s) => {
            // What loads must re-load from its resolved form, unchanged.
            let again = Scenario::from_source("r.ron", &s.to_resolved_ron(), Path::new("."), "x");
            assert_eq!(again.ok(), Some(s));
        }
        Err(e) => {
            let d = e.diagnostic().expect("text errors carry a position");
            assert!(d.line >= 1 && d.col >= 1);
        }
    }
});
