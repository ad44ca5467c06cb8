//! Arbitrary bytes as a received mesh frame: the parser, the security layer
//! and the node never panic, and a frame that opens re-parses to the same
//! fields.
#![no_main]

use gridtwin_lmu::frame::{FrameRepr, Keys, Packet, Security, GATEWAY};
use gridtwin_lmu::{Config, Input, Instant, Lmu, Outputs};
use libfuzzer_sys::fuzz_target;

const KEYS: Keys = Keys {
    mesh: [0x11; 32],
    gateway: [0x22; 32],
};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = (p.src(), p.dst(), p.counter(), p.payload(), p.tag());
        assert!(p.frame_len() <= data.len());
    }
    let mut s = Security::new(1, KEYS, 0, &[2, 3, GATEWAY]);
    if let Ok(r) = s.open(data) {
        assert_eq!(FrameRepr::parse(data), Ok(r));
    }
    let mut cfg = Config::new(1);
    cfg.upstream = Some(2);
    let _ = cfg.downstream.push(3);
    let mut node = Lmu::new(cfg, KEYS);
    let mut out = Outputs::default();
    node.handle(Instant::from_millis(1), Input::Frame(data), &mut out);
});
