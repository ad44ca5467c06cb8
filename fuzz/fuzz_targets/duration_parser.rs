//! Arbitrary text into the duration parser: whatever parses must print back
//! to the same value.
#![no_main]

use gridtwin::kernel::SimDuration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(d) = text.parse::<SimDuration>() {
        assert_eq!(d.to_string().parse::<SimDuration>(), Ok(d));
    }
});
