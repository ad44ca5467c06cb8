//! Arbitrary bytes as a `bridge_commands.csv` for `--replay-commands`: the
//! parser never panics; what it accepts has non-decreasing times and
//! writes back to CSV that parses to the same rows.
#![no_main]

use gridtwin::bridge::parse_replay;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = parse_replay(data, "fuzz") {
        assert!(rows.windows(2).all(|w| w[0].t_ns <= w[1].t_ns));
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &rows {
            w.serialize(r).expect("in memory");
        }
        let bytes = w.into_inner().expect("in memory");
        if !rows.is_empty() {
            assert_eq!(parse_replay(&bytes[..], "again").expect("round trip"), rows);
        }
    }
});
