//! The session and its loops on the host, over a fake link.

use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

use gridtwin_lmu::dsp::{PhasorFrame, SAMPLES_PER_CYCLE, Waveform};
use gridtwin_lmu::frame::Keys;
use gridtwin_lmu::hil::{CRATE_VERSION, WIRE_VERSION, WireInput};
use gridtwin_lmu::node::Config;
use gridtwin_lmu::{Command, Duration};

use super::*;

const KEYS: Keys = Keys {
    mesh: [0x4d; 32],
    gateway: [0x47; 32],
};

/// Received bytes come out in chunks of `chunk`; `wait` with nothing left
/// means the loop would block for ever, a test failure.
struct FakeLink {
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    chunk: usize,
    waits: usize,
}

impl FakeLink {
    fn new(rx: Vec<u8>, chunk: usize) -> FakeLink {
        FakeLink {
            rx: rx.into(),
            tx: Vec::new(),
            chunk,
            waits: 0,
        }
    }
}

impl Link for FakeLink {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        // Every other call finds nothing yet, so the loop waits too.
        self.waits += 1;
        if self.waits.is_multiple_of(2) {
            return 0;
        }
        let n = self.rx.len().min(buf.len()).min(self.chunk);
        for (i, b) in self.rx.drain(..n).enumerate() {
            buf[i] = b;
        }
        n
    }

    fn write(&mut self, bytes: &[u8]) {
        self.tx.extend_from_slice(bytes);
    }

    fn wait(&mut self) {
        assert!(!self.rx.is_empty(), "the loop would wait for ever");
    }
}

impl AsyncLink for FakeLink {
    async fn read(&mut self, buf: &mut [u8]) -> usize {
        assert!(!self.rx.is_empty(), "the loop would wait for ever");
        let n = self.rx.len().min(buf.len()).min(self.chunk);
        for (i, b) in self.rx.drain(..n).enumerate() {
            buf[i] = b;
        }
        n
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.tx.extend_from_slice(bytes);
    }
}

/// Polls a future that never waits on anything but the fake link.
fn block_on<F: core::future::Future>(f: F) -> F::Output {
    let mut f = core::pin::pin!(f);
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    loop {
        if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn frame(msg: &HostMsg) -> Vec<u8> {
    let mut out = [0u8; MAX_WIRE];
    let n = encode(msg, &mut out).unwrap();
    out[..n].to_vec()
}

fn board_frame(msg: &BoardMsg) -> Vec<u8> {
    let mut out = [0u8; MAX_WIRE];
    let n = encode(msg, &mut out).unwrap();
    out[..n].to_vec()
}

fn decode_board(bytes: &[u8]) -> Vec<BoardMsg> {
    let mut d = Decoder::<MAX_WIRE>::new();
    let msgs: Vec<BoardMsg> = bytes.iter().filter_map(|&b| d.push(b)).collect();
    let s = d.stats();
    assert_eq!(
        s.accepted as usize,
        msgs.len(),
        "the board sent a bad frame: {s:?}"
    );
    msgs
}

fn config() -> Config {
    let mut c = Config::new(12);
    c.upstream = Some(11);
    let _ = c.downstream.push(13);
    c.report_interval = Duration::from_secs(2);
    c.boot_epoch = 4;
    c
}

fn waveform(amp_v: f32, amp_a: f32, lag: f32) -> Waveform {
    let mut w = Waveform {
        v: [[0.0; SAMPLES_PER_CYCLE]; 3],
        i: [[0.0; SAMPLES_PER_CYCLE]; 3],
    };
    for p in 0..3 {
        for n in 0..SAMPLES_PER_CYCLE {
            let th =
                core::f32::consts::TAU * (n as f32 / SAMPLES_PER_CYCLE as f32 - p as f32 / 3.0);
            w.v[p][n] = amp_v * libm_cos(th);
            w.i[p][n] = amp_a * libm_cos(th - lag);
        }
    }
    w
}

fn libm_cos(x: f32) -> f32 {
    gridtwin_lmu::math::polar(1.0, x).re
}

/// A run of inputs that exercises the node: load, a fault and the dead
/// feeder after it, timers, commands and frames (a good one from the
/// downstream neighbour, and junk).
fn inputs() -> Vec<(u64, WireInput)> {
    let mut v = Vec::new();
    let mut t = 0u64;
    for k in 0..30 {
        t += 20_000;
        let p = PhasorFrame::balanced(230.0, 40.0 + k as f32, 25.0);
        v.push((t, WireInput::Phasors(p)));
    }
    t += 20_000;
    v.push((t, WireInput::Waveform(waveform(325.0, 60.0, 0.4))));
    for _ in 0..5 {
        t += 20_000;
        v.push((
            t,
            WireInput::Phasors(PhasorFrame::balanced(180.0, 2_500.0, 60.0)),
        ));
    }
    for _ in 0..5 {
        t += 20_000;
        v.push((t, WireInput::Phasors(PhasorFrame::balanced(0.0, 0.0, 0.0))));
    }
    // A frame from the downstream LMU, sealed with the same keys.
    let mut other = Lmu::new(
        {
            let mut c = Config::new(13);
            c.upstream = Some(12);
            c
        },
        KEYS,
    );
    let mut out = Outputs::default();
    other.handle(
        Instant::from_micros(t),
        gridtwin_lmu::Input::Command(Command::Report),
        &mut out,
    );
    for f in &out.frames {
        t += 1_000;
        v.push((t, WireInput::Frame(f.bytes.clone())));
    }
    t += 1_000;
    v.push((
        t,
        WireInput::from_input(&gridtwin_lmu::Input::Frame(&[1, 2, 3, 0, 9])),
    ));
    for t_us in [1_500_000, 2_100_000, 4_000_000] {
        v.push((t_us, WireInput::Timer));
    }
    v.push((4_100_000, WireInput::Command(Command::Open)));
    v.push((4_200_000, WireInput::Command(Command::Report)));
    v.push((4_300_000, WireInput::Command(Command::Close)));
    v
}

/// What an in-process LMU answers to `inputs`, framed as the board frames
/// its answers.
fn expected(inputs: &[(u64, WireInput)]) -> Vec<u8> {
    let mut lmu = Lmu::new(config(), KEYS);
    let mut bytes = Vec::new();
    for (seq, (t, input)) in inputs.iter().enumerate() {
        let mut out = Outputs::default();
        lmu.handle(Instant::from_micros(*t), input.as_input(), &mut out);
        bytes.extend(board_frame(&BoardMsg::stepped(
            seq as u32,
            out,
            lmu.poll_at(),
        )));
    }
    bytes
}

fn steps(inputs: &[(u64, WireInput)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (seq, (t, input)) in inputs.iter().enumerate() {
        bytes.extend(frame(&HostMsg::Step {
            seq: seq as u32,
            now_us: *t,
            input: input.clone(),
        }));
    }
    bytes
}

fn hello() -> BoardMsg {
    BoardMsg::hello(0x1234_5678)
}

#[test]
fn the_board_announces_itself_and_answers_hello() {
    let mut rx = frame(&HostMsg::Hello { wire: WIRE_VERSION });
    rx.extend(frame(&HostMsg::Shutdown));
    let mut link = FakeLink::new(rx, 7);
    let mut s = Session::new(0x1234_5678);
    run(&mut s, &mut link);
    let got = decode_board(&link.tx);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], hello());
    assert_eq!(got[1], hello());
    let BoardMsg::Hello {
        wire,
        crate_version,
        build_id,
    } = &got[0]
    else {
        unreachable!()
    };
    assert_eq!(
        (*wire, crate_version.as_str(), *build_id),
        (WIRE_VERSION, CRATE_VERSION, 0x1234_5678)
    );
    assert!(matches!(got[2], BoardMsg::Bye { .. }));
}

#[test]
fn steps_through_the_loop_are_byte_identical_to_the_lmu_in_process() {
    let inputs = inputs();
    let mut rx = frame(&HostMsg::Configure {
        config: config(),
        keys: KEYS,
    });
    rx.extend(steps(&inputs));
    rx.extend(frame(&HostMsg::Shutdown));
    for chunk in [1, 5, 64, 4096] {
        let mut link = FakeLink::new(rx.clone(), chunk);
        let mut s = Session::new(1);
        run(&mut s, &mut link);
        let mut want = board_frame(&BoardMsg::hello(1));
        want.extend(board_frame(&BoardMsg::Configured { id: 12 }));
        want.extend(expected(&inputs));
        let bye = board_frame(&BoardMsg::Bye {
            stats: WireStats {
                accepted: inputs.len() as u32 + 2,
                ..WireStats::default()
            },
        });
        want.extend(bye);
        assert!(link.tx == want, "chunk {chunk}: the board's bytes differ");
        assert_eq!(s.steps(), inputs.len() as u32);
    }
    // The run did something: frames, a contactor command, a report.
    let msgs = decode_board(&expected(&inputs));
    let any = |f: &dyn Fn(&Outputs) -> bool| {
        msgs.iter()
            .any(|m| matches!(m, BoardMsg::Stepped { outputs, .. } if f(outputs)))
    };
    assert!(any(&|o| !o.frames.is_empty()));
    assert!(any(&|o| o.contactor.is_some()));
    assert!(any(&|o| o.report.is_some()));
    assert!(any(&|o| !o.events.is_empty()));
}

#[test]
fn the_async_loop_says_the_same() {
    let inputs = inputs();
    let mut rx = frame(&HostMsg::Configure {
        config: config(),
        keys: KEYS,
    });
    rx.extend(steps(&inputs));
    rx.extend(frame(&HostMsg::Shutdown));
    let mut blocking = FakeLink::new(rx.clone(), 13);
    run(&mut Session::new(9), &mut blocking);
    let mut link = FakeLink::new(rx, 13);
    block_on(run_async(&mut Session::new(9), &mut link));
    assert!(link.tx == blocking.tx);
}

#[test]
fn a_step_before_configure_and_a_reserved_id_are_refused() {
    let mut rx = frame(&HostMsg::Step {
        seq: 77,
        now_us: 5,
        input: WireInput::Timer,
    });
    rx.extend(frame(&HostMsg::Configure {
        config: Config::new(GATEWAY),
        keys: KEYS,
    }));
    rx.extend(frame(&HostMsg::Step {
        seq: 78,
        now_us: 6,
        input: WireInput::Timer,
    }));
    rx.extend(frame(&HostMsg::Shutdown));
    let mut link = FakeLink::new(rx, 64);
    let mut s = Session::new(0);
    run(&mut s, &mut link);
    let got = decode_board(&link.tx);
    assert_eq!(
        &got[1..4],
        &[
            BoardMsg::Refused {
                seq: 77,
                reason: Refusal::NotConfigured
            },
            BoardMsg::Refused {
                seq: 0,
                reason: Refusal::ReservedId
            },
            BoardMsg::Refused {
                seq: 78,
                reason: Refusal::NotConfigured
            },
        ]
    );
    assert_eq!((s.refused(), s.steps()), (3, 0));
    assert!(s.lmu().is_none());
}

#[test]
fn garbled_frames_are_dropped_counted_and_the_link_resyncs() {
    let step = |seq| HostMsg::Step {
        seq,
        now_us: 20_000 * u64::from(seq),
        input: WireInput::Phasors(PhasorFrame::balanced(230.0, 10.0, 20.0)),
    };
    let mut rx = vec![0x55, 0xAA, 0x13]; // boot noise
    rx.extend(frame(&HostMsg::Configure {
        config: config(),
        keys: KEYS,
    }));
    let mut flipped = frame(&step(1));
    flipped[10] ^= 0x20; // a bit error: bad CRC (or bad COBS)
    rx.extend(flipped);
    let mut cut = frame(&step(2));
    cut.truncate(cut.len() / 2); // a frame cut short, then a new one
    rx.extend(cut);
    rx.extend(frame(&step(3)));
    rx.extend(vec![0xEE; MAX_WIRE + 10]); // overlong junk
    rx.push(0);
    rx.extend(frame(&HostMsg::Shutdown));
    let mut link = FakeLink::new(rx, 64);
    let mut s = Session::new(0);
    run(&mut s, &mut link);
    let got = decode_board(&link.tx);
    let seqs: Vec<u32> = got
        .iter()
        .filter_map(|m| match m {
            BoardMsg::Stepped { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![3]);
    let BoardMsg::Bye { stats } = got.last().unwrap() else {
        panic!("{got:?}")
    };
    assert_eq!(stats.accepted, 3);
    assert_eq!(stats.overflow, 1);
    assert!(stats.crc + stats.framing + stats.decode >= 2, "{stats:?}");
    assert_eq!(*stats, s.wire_stats());
}

#[test]
fn random_bytes_never_panic_and_a_good_frame_still_gets_through() {
    // xorshift32: a fixed stream of noise, with zeros now and then.
    let mut x = 0x9E37_79B9u32;
    let mut rx = Vec::new();
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        rx.push(if x.is_multiple_of(97) { 0 } else { x as u8 });
    }
    rx.extend(frame(&HostMsg::Hello { wire: WIRE_VERSION }));
    rx.extend(frame(&HostMsg::Shutdown));
    let mut link = FakeLink::new(rx, 61);
    let mut s = Session::new(0);
    run(&mut s, &mut link);
    let got = decode_board(&link.tx);
    // Announce, any answers noise happened to form (none expected), the
    // answer to Hello, then Bye.
    assert_eq!(got[got.len() - 2], BoardMsg::hello(0));
    assert!(matches!(got.last(), Some(BoardMsg::Bye { .. })));
    assert!(s.wire_stats().crc + s.wire_stats().framing > 100);
}

#[test]
fn a_new_session_after_a_reset_announces_itself_again() {
    // Configure, then the board resets (a new session): its first bytes are
    // a Hello again, and its LMU is gone until configured anew.
    let mut rx = frame(&HostMsg::Configure {
        config: config(),
        keys: KEYS,
    });
    rx.extend(frame(&HostMsg::Shutdown));
    let mut link = FakeLink::new(rx, 64);
    run(&mut Session::new(5), &mut link);
    let mut after = FakeLink::new(
        frame(&HostMsg::Step {
            seq: 1,
            now_us: 0,
            input: WireInput::Timer,
        })
        .into_iter()
        .chain(frame(&HostMsg::Shutdown))
        .collect(),
        64,
    );
    run(&mut Session::new(5), &mut after);
    let got = decode_board(&after.tx);
    assert_eq!(got[0], BoardMsg::hello(5));
    assert_eq!(
        got[1],
        BoardMsg::Refused {
            seq: 1,
            reason: Refusal::NotConfigured
        }
    );
}

#[test]
fn the_session_fits_a_small_board() {
    // It lives in a static: keep it well inside the boards' RAM budget.
    let size = core::mem::size_of::<Session>();
    assert!(size < 16 * 1024, "{size} bytes");
}

/// A step retried with the same sequence number (its answer was lost on
/// the way back) is answered again with the very same bytes and is not
/// carried out a second time: the answers that follow are those of the
/// LMU stepped once per input.
#[test]
fn a_retried_step_is_answered_again_but_not_carried_out_twice() {
    let inputs = inputs();
    let mut rx = frame(&HostMsg::Configure {
        config: config(),
        keys: KEYS,
    });
    let once = steps(&inputs);
    // Every step sent twice in a row.
    for (seq, (t, input)) in inputs.iter().enumerate() {
        let f = frame(&HostMsg::Step {
            seq: seq as u32,
            now_us: *t,
            input: input.clone(),
        });
        rx.extend(&f);
        rx.extend(&f);
    }
    rx.extend(frame(&HostMsg::Shutdown));
    assert!(rx.len() > once.len());
    let mut link = FakeLink::new(rx, 64);
    let mut s = Session::new(1);
    run(&mut s, &mut link);
    let got = decode_board(&link.tx);
    let want = decode_board(&expected(&inputs));
    // hello, configured, then each answer twice, then bye.
    let answers: Vec<&BoardMsg> = got[2..got.len() - 1].iter().collect();
    assert_eq!(answers.len(), 2 * want.len());
    for (k, w) in want.iter().enumerate() {
        assert_eq!(answers[2 * k], w, "step {k}");
        assert_eq!(answers[2 * k + 1], w, "retry of step {k}");
    }
    assert_eq!(s.steps(), inputs.len() as u32);
    assert_eq!(s.retries(), inputs.len() as u32);
}
