//! Arbitrary bytes on the HIL serial link, as both ends decode them: never
//! a panic, and every message decoded re-encodes to a frame that decodes
//! to the same message.
#![no_main]

use gridtwin_lmu::hil::{BoardMsg, Decoder, HostMsg, MAX_WIRE, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut host_side = Decoder::<MAX_WIRE>::new();
    let mut board_side = Decoder::<MAX_WIRE>::new();
    for &b in data {
        if let Some(m) = board_side.push::<HostMsg>(b) {
            let mut out = [0u8; MAX_WIRE];
            let n = encode(&m, &mut out).expect("a decoded message fits");
            let mut again = Decoder::<MAX_WIRE>::new();
            let back: Vec<HostMsg> = out[..n].iter().filter_map(|&x| again.push(x)).collect();
            assert_eq!(back, vec![m]);
        }
        let _ = host_side.push::<BoardMsg>(b);
    }
});
