//! The hardware-in-the-loop wire format, shared by the host and the board.
//!
//! Each message is postcard-encoded, followed by its CRC-32C (Castagnoli,
//! little-endian), COBS-encoded, and framed by zero bytes:
//!
//! ```text
//!   0x00 ‖ COBS( postcard(message) ‖ CRC-32C ) ‖ 0x00
//! ```
//!
//! The leading zero flushes whatever noise preceded the frame (boot
//! messages, a half-sent frame). A receiver ([`Decoder`]) collects bytes up
//! to each zero, and drops and counts anything that does not decode, has a
//! bad CRC, or overflows its buffer; the next zero resynchronises it. Nothing
//! already accepted is affected.
//!
//! The protocol is one request in flight, and every request has exactly one
//! answer:
//!
//! ```text
//!   host                                   board
//!    │                  ◄── Hello (unsolicited, at every boot)
//!    ├── Hello { wire } ──────────────────►
//!    │                  ◄── Hello { wire, crate_version, build_id }
//!    ├── Configure { config, keys } ──────►   (re)boots its LMU
//!    │                  ◄── Configured { id }
//!    ├── Step { seq, now_us, input } ─────►   Lmu::handle
//!    │                  ◄── Stepped { seq, outputs, poll_at_us }
//!    │                      (or Refused { seq, reason })
//!    ├── Shutdown ────────────────────────►
//!    │                  ◄── Bye { stats }     then halts (QEMU: exits)
//! ```
//!
//! The host sends [`HostMsg::Hello`] and expects [`BoardMsg::Hello`] with the
//! same wire version; the board also announces itself with an unsolicited
//! [`BoardMsg::Hello`] when it (re)boots, so a host that sees one in place
//! of an answer knows the board was reset and lost its LMU. The host then
//! sends the LMU's configuration and keys ([`HostMsg::Configure`]); each
//! [`HostMsg::Step`] carries a sequence number, the simulated time and one
//! [`WireInput`], and the board answers [`BoardMsg::Stepped`] with the same
//! sequence number, its [`Outputs`] and its next poll time, or
//! [`BoardMsg::Refused`] (no configuration yet, or an answer too large).
//! Frames the board could not read get no answer: the host times out and
//! asks again.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::dsp::{PhasorFrame, Waveform};
use crate::frame::{Keys, MAX_FRAME};
use crate::node::{Command, Config, Input, Outputs};
use crate::time::Instant;

/// Version of this wire format; both ends must agree.
///
/// 3: [`HostMsg::Configure`], [`HostMsg::Shutdown`], [`BoardMsg::Configured`],
/// [`BoardMsg::Refused`] and [`BoardMsg::Bye`].
pub const WIRE_VERSION: u16 = 3;

/// This crate's version, as the board reports it.
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

include!(concat!(env!("OUT_DIR"), "/build_id.rs"));

/// The CRC: CRC-32C (iSCSI polynomial).
pub const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Largest encoded message [bytes], framing included: a waveform step
/// (6 × 64 samples of 4 bytes) with headroom.
pub const MAX_WIRE: usize = 1800;

/// An input, owned, as it crosses the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// No heap to box the large variant into: a message is as big as its
// largest variant, and lives in a static or stack buffer.
#[allow(clippy::large_enum_variant)]
pub enum WireInput {
    /// One cycle of samples.
    Waveform(Waveform),
    /// Phasors.
    Phasors(PhasorFrame),
    /// A received mesh frame.
    Frame(Vec<u8, MAX_FRAME>),
    /// A timer expiry.
    Timer,
    /// A local command.
    Command(Command),
}

impl WireInput {
    /// The node input it stands for.
    pub fn as_input(&self) -> Input<'_> {
        match self {
            WireInput::Waveform(w) => Input::Waveform(w),
            WireInput::Phasors(p) => Input::Phasors(p),
            WireInput::Frame(f) => Input::Frame(f),
            WireInput::Timer => Input::Timer,
            WireInput::Command(c) => Input::Command(*c),
        }
    }

    /// The wire form of a node input; a frame longer than [`MAX_FRAME`] is
    /// cut (the node would reject it anyway).
    pub fn from_input(input: &Input<'_>) -> WireInput {
        match input {
            Input::Waveform(w) => WireInput::Waveform((*w).clone()),
            Input::Phasors(p) => WireInput::Phasors((*p).clone()),
            Input::Frame(f) => {
                let mut v = Vec::new();
                let n = f.len().min(MAX_FRAME);
                let _ = v.extend_from_slice(f.get(..n).unwrap_or(&[]));
                WireInput::Frame(v)
            }
            Input::Timer => WireInput::Timer,
            Input::Command(c) => WireInput::Command(*c),
        }
    }
}

/// From the host to the board.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// No heap to box the large variant into: a message is as big as its
// largest variant, and lives in a static or stack buffer.
#[allow(clippy::large_enum_variant)]
pub enum HostMsg {
    /// Opens the session.
    Hello {
        /// The host's wire version.
        wire: u16,
    },
    /// One input at one instant.
    Step {
        /// Sequence number, echoed in the answer.
        seq: u32,
        /// Simulated time [µs].
        now_us: u64,
        /// The input.
        input: WireInput,
    },
    /// (Re)boots the board's LMU with this configuration and these keys,
    /// as `Lmu::new` does; answered by [`BoardMsg::Configured`] or, for an
    /// id the mesh reserves, [`BoardMsg::Refused`] with sequence number 0.
    /// The keys cross the link in clear: HIL links are test benches.
    Configure {
        /// The LMU's configuration.
        config: Config,
        /// Its keys.
        keys: Keys,
    },
    /// Ends the session: the board answers [`BoardMsg::Bye`] and halts (the
    /// emulated board exits QEMU with success).
    Shutdown,
}

/// From the board to the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// No heap to box the large variant into: a message is as big as its
// largest variant, and lives in a static or stack buffer.
#[allow(clippy::large_enum_variant)]
pub enum BoardMsg {
    /// Answers [`HostMsg::Hello`].
    Hello {
        /// The board's wire version.
        wire: u16,
        /// The LMU crate version it was built from.
        crate_version: heapless::String<16>,
        /// An identifier of the firmware build.
        build_id: u32,
    },
    /// Answers [`HostMsg::Step`].
    Stepped {
        /// The step's sequence number.
        seq: u32,
        /// What the node produced.
        outputs: Outputs,
        /// When the node next wants a timer [µs].
        poll_at_us: Option<u64>,
    },
    /// Answers [`HostMsg::Configure`]: the LMU was (re)booted.
    Configured {
        /// The configured node id.
        id: u16,
    },
    /// Answers a request the board could not carry out; its state is
    /// unchanged.
    Refused {
        /// The sequence number of the refused step (0 for a refused
        /// configuration).
        seq: u32,
        /// Why.
        reason: Refusal,
    },
    /// Answers [`HostMsg::Shutdown`], just before the board halts.
    Bye {
        /// What the board's decoder accepted and dropped in this session.
        stats: WireStats,
    },
}

/// Why the board refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// A step before any [`HostMsg::Configure`]: there is no LMU yet.
    NotConfigured,
    /// A configuration whose id is the gateway's or the broadcast address.
    ReservedId,
    /// The step's answer does not fit in [`MAX_WIRE`]; the step was
    /// carried out, but its outputs are lost.
    AnswerTooLarge,
}

impl BoardMsg {
    /// The board's hello for this crate.
    pub fn hello(build_id: u32) -> BoardMsg {
        let mut v = heapless::String::new();
        let _ = v.push_str(CRATE_VERSION);
        BoardMsg::Hello {
            wire: WIRE_VERSION,
            crate_version: v,
            build_id,
        }
    }

    /// A step's answer.
    pub fn stepped(seq: u32, outputs: Outputs, poll_at: Option<Instant>) -> BoardMsg {
        BoardMsg::Stepped {
            seq,
            outputs,
            poll_at_us: poll_at.map(Instant::total_micros),
        }
    }
}

/// Why a message could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall,
}

/// Writes `msg` as one framed wire message into `out`; returns its length.
pub fn encode<T: Serialize>(msg: &T, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut body = [0u8; MAX_WIRE];
    let used = postcard::to_slice_crc32(msg, &mut body, CRC.digest())
        .map_err(|_| EncodeError::BufferTooSmall)?
        .len();
    cobs::try_encode_including_sentinels(body.get(..used).unwrap_or(&[]), out)
        .map_err(|_| EncodeError::BufferTooSmall)
}

/// Counts of dropped frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireStats {
    /// Frames accepted.
    pub accepted: u32,
    /// Not valid COBS.
    pub framing: u32,
    /// Bad CRC.
    pub crc: u32,
    /// Valid CRC but not a message of the expected type.
    pub decode: u32,
    /// Longer than the buffer.
    pub overflow: u32,
}

/// A stream decoder: feed it bytes, get messages.
#[derive(Clone, Debug)]
pub struct Decoder<const N: usize> {
    buf: Vec<u8, N>,
    overflowed: bool,
    stats: WireStats,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Decoder {
            buf: Vec::new(),
            overflowed: false,
            stats: WireStats::default(),
        }
    }
}

impl<const N: usize> Decoder<N> {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops counted so far.
    pub fn stats(&self) -> WireStats {
        self.stats
    }

    /// Takes one byte; returns a message when this byte completes one.
    pub fn push<T: for<'de> Deserialize<'de>>(&mut self, byte: u8) -> Option<T> {
        if byte != 0 {
            if self.buf.push(byte).is_err() {
                self.overflowed = true;
            }
            return None;
        }
        // A zero ends a frame (an empty frame is just the leading zero).
        if self.overflowed {
            self.overflowed = false;
            self.buf.clear();
            self.stats.overflow = self.stats.overflow.saturating_add(1);
            return None;
        }
        if self.buf.is_empty() {
            return None;
        }
        let result = match cobs::decode_in_place(&mut self.buf) {
            Err(_) => {
                self.stats.framing = self.stats.framing.saturating_add(1);
                None
            }
            Ok(n) => {
                let body = self.buf.get(..n).unwrap_or(&[]);
                if body.len() < 4 || !crc_ok(body) {
                    self.stats.crc = self.stats.crc.saturating_add(1);
                    None
                } else {
                    match postcard::from_bytes_crc32::<T>(body, CRC.digest()) {
                        Ok(m) => {
                            self.stats.accepted = self.stats.accepted.saturating_add(1);
                            Some(m)
                        }
                        Err(_) => {
                            self.stats.decode = self.stats.decode.saturating_add(1);
                            None
                        }
                    }
                }
            }
        };
        self.buf.clear();
        result
    }
}

/// Whether the last four bytes are the CRC-32C of the rest.
fn crc_ok(body: &[u8]) -> bool {
    let Some(split) = body.len().checked_sub(4) else {
        return false;
    };
    let (data, tail) = body.split_at(split);
    let mut want = [0u8; 4];
    want.copy_from_slice(tail);
    CRC.checksum(data) == u32::from_le_bytes(want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{MAX_HARMONIC, SAMPLES_PER_CYCLE};
    use crate::math;
    use crate::node::{Config, Lmu};
    use proptest::prelude::*;

    fn decode_all<T: for<'de> Deserialize<'de>, const N: usize>(
        d: &mut Decoder<N>,
        bytes: &[u8],
    ) -> std::vec::Vec<T> {
        bytes.iter().filter_map(|&b| d.push::<T>(b)).collect()
    }

    fn waveform(seed: u32) -> Waveform {
        let mut w = Waveform {
            v: [[0.0; SAMPLES_PER_CYCLE]; 3],
            i: [[0.0; SAMPLES_PER_CYCLE]; 3],
        };
        for (k, x) in w.v.iter_mut().flatten().enumerate() {
            *x = (k as f32 + seed as f32) * 0.37 - 100.0;
        }
        for (k, x) in w.i.iter_mut().flatten().enumerate() {
            *x = ((k as u32).wrapping_mul(7919).wrapping_add(seed) % 10_007) as f32 * 0.01;
        }
        w
    }

    #[test]
    fn the_wire_bytes_are_zero_cobs_crc_zero() {
        let mut out = [0u8; MAX_WIRE];
        let n = encode(&HostMsg::Hello { wire: 1 }, &mut out).unwrap();
        assert_eq!((out[0], out[n - 1]), (0, 0));
        assert!(out[1..n - 1].iter().all(|&b| b != 0));
        let mut body = out[1..n - 1].to_vec();
        let m = cobs::decode_in_place(&mut body).unwrap();
        // postcard: variant 0, then wire 1; then CRC-32C LE.
        assert_eq!(&body[..2], &[0, 1]);
        assert_eq!(
            u32::from_le_bytes(body[2..m].try_into().unwrap()),
            CRC.checksum(&[0, 1])
        );
    }

    #[test]
    fn every_input_and_output_crosses_losslessly() {
        let inputs = [
            WireInput::Waveform(waveform(3)),
            WireInput::Phasors(PhasorFrame {
                v: [math::polar(230.0, 0.1); 3],
                i: [math::polar(5.0, -0.4); 3],
                frequency_hz: 49.97,
                v_harmonics: Some([[1.5; MAX_HARMONIC - 1]; 3]),
                i_harmonics: None,
            }),
            WireInput::Frame(Vec::from_slice(&[1, 2, 0, 3]).unwrap()),
            WireInput::Timer,
            WireInput::Command(Command::Close),
        ];
        let mut d = Decoder::<MAX_WIRE>::new();
        for (seq, input) in inputs.into_iter().enumerate() {
            let msg = HostMsg::Step {
                seq: seq as u32,
                now_us: 1 << 40,
                input,
            };
            let mut out = [0u8; MAX_WIRE];
            let n = encode(&msg, &mut out).unwrap();
            let got: std::vec::Vec<HostMsg> = decode_all(&mut d, &out[..n]);
            assert_eq!(got, std::vec![msg]);
        }
        // Outputs of a real node: frames, contactor, report, events.
        let mut node = Lmu::new(
            Config::new(3),
            crate::frame::Keys {
                mesh: [0; 32],
                gateway: [1; 32],
            },
        );
        let mut outputs = Outputs::default();
        node.handle(
            Instant::from_millis(0),
            Input::Command(Command::Open),
            &mut outputs,
        );
        node.handle(
            Instant::from_millis(5),
            Input::Command(Command::Report),
            &mut outputs,
        );
        assert!(outputs.report.is_some() && !outputs.frames.is_empty());
        let msg = BoardMsg::stepped(7, outputs, node.poll_at());
        let mut out = [0u8; MAX_WIRE];
        let n = encode(&msg, &mut out).unwrap();
        let mut d = Decoder::<MAX_WIRE>::new();
        let got: std::vec::Vec<BoardMsg> = decode_all(&mut d, &out[..n]);
        assert_eq!(got, std::vec![msg]);
        let hello = BoardMsg::hello(0xBEEF);
        let n = encode(&hello, &mut out).unwrap();
        assert_eq!(
            decode_all::<BoardMsg, _>(&mut d, &out[..n]),
            std::vec![hello]
        );
        assert_eq!(d.stats().accepted, 2);
    }

    #[test]
    fn configuration_and_session_messages_cross_losslessly() {
        let mut config = Config::new(42);
        config.upstream = Some(7);
        config.downstream = Vec::from_slice(&[43, 44]).unwrap();
        config.restore_via = Some(90);
        config.protection.phase.curve =
            crate::protection::Curve::DefiniteTime(crate::Duration::from_millis(150));
        config.flisr.dead_pu = 0.125;
        config.report_interval = crate::Duration::from_secs(900);
        config.boot_epoch = 3;
        let keys = crate::frame::Keys {
            mesh: [0x4d; 32],
            gateway: [0x47; 32],
        };
        let mut d = Decoder::<MAX_WIRE>::new();
        let mut out = [0u8; MAX_WIRE];
        for msg in [HostMsg::Configure { config, keys }, HostMsg::Shutdown] {
            let n = encode(&msg, &mut out).unwrap();
            assert_eq!(decode_all::<HostMsg, _>(&mut d, &out[..n]), std::vec![msg]);
        }
        let answers = [
            BoardMsg::Configured { id: 42 },
            BoardMsg::Refused {
                seq: 9,
                reason: Refusal::NotConfigured,
            },
            BoardMsg::Bye {
                stats: WireStats {
                    accepted: 5,
                    crc: 1,
                    ..WireStats::default()
                },
            },
        ];
        for msg in answers {
            let n = encode(&msg, &mut out).unwrap();
            assert_eq!(decode_all::<BoardMsg, _>(&mut d, &out[..n]), std::vec![msg]);
        }
    }

    #[test]
    fn the_largest_answer_fits_the_wire() {
        use crate::node::{Contactor, LogEvent, MAX_LOG_EVENTS, MAX_OUT_FRAMES, OutFrame};
        let mut outputs = Outputs::default();
        for _ in 0..MAX_OUT_FRAMES {
            outputs
                .frames
                .push(OutFrame {
                    dst: u16::MAX,
                    bytes: Vec::from_slice(&[0xFF; MAX_FRAME]).unwrap(),
                })
                .unwrap();
        }
        outputs.contactor = Some(Contactor::Close);
        outputs.setpoint = Some(crate::node::Setpoint::LoadReduction {
            percent: u8::MAX,
            minutes: u16::MAX,
        });
        outputs.report = Some(crate::node::Telemetry {
            t_ms: u64::MAX,
            seq: u32::MAX,
            epoch: u32::MAX,
            v_min_dv: [u16::MAX; 3],
            v_max_dv: [u16::MAX; 3],
            v_mean_dv: [u16::MAX; 3],
            import_wh: f32::MAX,
            export_wh: f32::MAX,
            pq_events: [u16::MAX; 3],
            pq_intervals: [u32::MAX; 2],
            closed: true,
            fault_latched: true,
            frames: [u32::MAX; 3],
        });
        for _ in 0..MAX_LOG_EVENTS {
            outputs
                .events
                .push(LogEvent::Executed(Command::ReduceLoad {
                    percent: u8::MAX,
                    minutes: u16::MAX,
                }))
                .unwrap();
        }
        outputs.overflowed = u16::MAX;
        let msg = BoardMsg::stepped(u32::MAX, outputs, Some(Instant::MAX));
        let mut out = [0u8; MAX_WIRE];
        let n = encode(&msg, &mut out).unwrap();
        assert!(n < MAX_WIRE, "{n}");
    }

    #[test]
    fn a_broken_frame_is_dropped_counted_and_the_link_resyncs() {
        let mut out = [0u8; MAX_WIRE];
        let a = HostMsg::Step {
            seq: 1,
            now_us: 10,
            input: WireInput::Timer,
        };
        let b = HostMsg::Step {
            seq: 2,
            now_us: 20,
            input: WireInput::Timer,
        };
        let na = encode(&a, &mut out).unwrap();
        let mut stream = out[..na].to_vec();
        // Flip a bit inside the first frame, then send a good one.
        stream[3] ^= 0x04;
        let nb = encode(&b, &mut out).unwrap();
        stream.extend_from_slice(&out[..nb]);
        // Boot noise before everything.
        let mut noisy = std::vec![0x55, 0x13, 0x99];
        noisy.extend(stream);
        let mut d = Decoder::<MAX_WIRE>::new();
        let got: std::vec::Vec<HostMsg> = decode_all(&mut d, &noisy);
        assert_eq!(got, std::vec![b]);
        let s = d.stats();
        assert_eq!(s.accepted, 1);
        assert!(s.crc + s.framing + s.decode >= 2, "{s:?}");
    }

    #[test]
    fn an_overlong_frame_is_dropped_and_counted() {
        let mut d = Decoder::<16>::new();
        let junk = [7u8; 40];
        assert!(decode_all::<HostMsg, _>(&mut d, &junk).is_empty());
        assert!(d.push::<HostMsg>(0).is_none());
        assert_eq!(d.stats().overflow, 1);
        // And the next frame is read.
        let mut out = [0u8; 16];
        let n = encode(&HostMsg::Hello { wire: 1 }, &mut out).unwrap();
        assert_eq!(
            decode_all::<HostMsg, _>(&mut d, &out[..n]),
            std::vec![HostMsg::Hello { wire: 1 }]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut d = Decoder::<256>::new();
            for b in bytes {
                let _ = d.push::<HostMsg>(b);
                let _ = d.push::<BoardMsg>(b);
            }
        }

        #[test]
        fn steps_round_trip_exactly(seq in any::<u32>(), now in any::<u64>(), frame in proptest::collection::vec(any::<u8>(), 0..MAX_FRAME), seed in any::<u32>()) {
            let mut d = Decoder::<MAX_WIRE>::new();
            for input in [WireInput::Frame(Vec::from_slice(&frame).unwrap()), WireInput::Waveform(waveform(seed))] {
                let msg = HostMsg::Step { seq, now_us: now, input };
                let mut out = [0u8; MAX_WIRE];
                let n = encode(&msg, &mut out).unwrap();
                let got: std::vec::Vec<HostMsg> = decode_all(&mut d, &out[..n]);
                prop_assert_eq!(got, std::vec![msg]);
            }
        }
    }
}
