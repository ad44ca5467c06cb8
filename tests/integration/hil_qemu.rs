//! Smoke test of the emulated HIL board: QEMU's `mps2-an386` runs the
//! release image of `hardware/qemu-m4` (built by `.ci/run`, or by hand with
//! `cd hardware/qemu-m4 && cargo build --release`), and the board must
//! answer every step exactly, bit for bit, as an in-process `Lmu` with the
//! same configuration does.
//!
//! The image is looked for at [`IMAGE`]. Without it or without
//! `qemu-system-arm` the test is skipped with a notice, except under
//! `CI=true`, where it fails. Every wait has a timeout, and QEMU is killed
//! by its pid whatever happens.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gridtwin::hil::qemu::{DEFAULT_IMAGE as IMAGE, Qemu, Uart};
use gridtwin::hil::{Board, Link};

use gridtwin_lmu::dsp::{PhasorFrame, SAMPLES_PER_CYCLE, Waveform};
use gridtwin_lmu::frame::Keys;
use gridtwin_lmu::hil::{
    BoardMsg, CRATE_VERSION, Decoder, HostMsg, MAX_WIRE, WIRE_VERSION, WireInput, encode,
};
use gridtwin_lmu::node::{Command as LmuCommand, Config, Input, Lmu, Outputs};

use crate::at;

/// The firmware's stack budget [bytes] (hardware/README.md).
const STACK_BUDGET: usize = 32 * 1024;

/// How long any one answer may take (QEMU answers in milliseconds).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

const KEYS: Keys = Keys {
    mesh: [0x4d; 32],
    gateway: [0x47; 32],
};

/// Skips (or, under `CI=true`, fails) with `msg`.
fn skip(msg: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("notice: skipping: {msg}");
}

/// The host end of the link, speaking the raw protocol.
struct Host {
    link: Box<dyn Link>,
    decoder: Decoder<MAX_WIRE>,
    pending: std::collections::VecDeque<u8>,
}

impl Host {
    fn send(&mut self, msg: &HostMsg) {
        let mut out = [0u8; MAX_WIRE];
        let n = encode(msg, &mut out).unwrap();
        self.link
            .send(&out[..n])
            .expect("the board takes a request");
    }

    /// The board's next message, within [`ANSWER_TIMEOUT`].
    fn receive(&mut self) -> BoardMsg {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            while let Some(b) = self.pending.pop_front() {
                if let Some(m) = self.decoder.push::<BoardMsg>(b) {
                    return m;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no answer within {ANSWER_TIMEOUT:?}");
            let mut buf = [0u8; 512];
            let n = self.link.receive(&mut buf, left).expect("the link holds");
            self.pending.extend(&buf[..n]);
        }
    }

    fn request(&mut self, msg: &HostMsg) -> BoardMsg {
        self.send(msg);
        self.receive()
    }
}

fn config() -> Config {
    let mut c = Config::new(12);
    c.upstream = Some(11);
    c.downstream.push(13).unwrap();
    c.report_interval = gridtwin_lmu::Duration::from_secs(1);
    c.boot_epoch = 2;
    c
}

fn waveform(amp_v: f32, amp_a: f32, lag_rad: f32) -> Waveform {
    let mut w = Waveform {
        v: [[0.0; SAMPLES_PER_CYCLE]; 3],
        i: [[0.0; SAMPLES_PER_CYCLE]; 3],
    };
    for p in 0..3 {
        for n in 0..SAMPLES_PER_CYCLE {
            let th = std::f32::consts::TAU * (n as f32 / SAMPLES_PER_CYCLE as f32 - p as f32 / 3.0);
            w.v[p][n] = gridtwin_lmu::math::polar(amp_v, th).re;
            w.i[p][n] = gridtwin_lmu::math::polar(amp_a, th - lag_rad).re;
        }
    }
    w
}

/// Inputs for the board: load, a waveform, a fault and the dead feeder
/// after it, a frame from the downstream LMU, timers and commands.
fn inputs() -> Vec<(u64, WireInput)> {
    let mut v = Vec::new();
    let mut t = 0u64;
    for k in 0..20 {
        t += 20_000;
        let p = PhasorFrame::balanced(230.0 + k as f32 * 0.1, 35.0 + k as f32, 20.0);
        v.push((t, WireInput::Phasors(p)));
    }
    t += 20_000;
    v.push((t, WireInput::Waveform(waveform(325.0, 80.0, 0.3))));
    for _ in 0..4 {
        t += 20_000;
        v.push((
            t,
            WireInput::Phasors(PhasorFrame::balanced(170.0, 2_400.0, 65.0)),
        ));
    }
    for _ in 0..4 {
        t += 20_000;
        v.push((t, WireInput::Phasors(PhasorFrame::balanced(0.0, 0.0, 0.0))));
    }
    let mut below = Config::new(13);
    below.upstream = Some(12);
    let mut other = Lmu::new(below, KEYS);
    let mut out = Outputs::default();
    other.handle(
        gridtwin_lmu::Instant::from_micros(t),
        Input::Command(LmuCommand::Report),
        &mut out,
    );
    for f in &out.frames {
        t += 1_000;
        v.push((t, WireInput::Frame(f.bytes.clone())));
    }
    for t_us in [1_000_000, 1_100_000, 2_500_000] {
        v.push((t_us, WireInput::Timer));
    }
    v.push((2_600_000, WireInput::Command(LmuCommand::Report)));
    v
}

fn wire_bytes(msg: &BoardMsg) -> Vec<u8> {
    let mut out = [0u8; MAX_WIRE];
    let n = encode(msg, &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn hil_qemu_board_steps_bit_for_bit_like_the_lmu_in_process() {
    let Some(image) = image() else { return };
    let (mut q, link) = Qemu::start(&image, Uart::Socket).expect("QEMU starts");
    let mut host = Host {
        link,
        decoder: Decoder::new(),
        pending: Default::default(),
    };

    // The board announces itself at boot, and answers our Hello alike.
    let announced = host.receive();
    let answer = host.request(&HostMsg::Hello { wire: WIRE_VERSION });
    assert_eq!(announced, answer, "{}", q.output());
    let BoardMsg::Hello {
        wire,
        crate_version,
        build_id,
    } = answer
    else {
        panic!("not a Hello: {answer:?}");
    };
    assert_eq!(wire, WIRE_VERSION);
    assert_eq!(crate_version.as_str(), CRATE_VERSION);
    eprintln!("board: wire {wire}, gridtwin-lmu {crate_version}, build {build_id:08x}");

    assert_eq!(
        host.request(&HostMsg::Configure {
            config: config(),
            keys: KEYS
        }),
        BoardMsg::Configured { id: 12 }
    );

    let mut lmu = Lmu::new(config(), KEYS);
    let (mut frames, mut reports, mut contactor) = (0, 0, 0);
    for (seq, (t, input)) in inputs().into_iter().enumerate() {
        let seq = seq as u32;
        let got = host.request(&HostMsg::Step {
            seq,
            now_us: t,
            input: input.clone(),
        });
        let mut out = Outputs::default();
        lmu.handle(
            gridtwin_lmu::Instant::from_micros(t),
            input.as_input(),
            &mut out,
        );
        frames += out.frames.len();
        reports += usize::from(out.report.is_some());
        contactor += usize::from(out.contactor.is_some());
        let want = BoardMsg::stepped(seq, out, lmu.poll_at());
        // Bit for bit: the encoded answers, floats included.
        assert!(
            wire_bytes(&got) == wire_bytes(&want),
            "step {seq} at {t} µs differs:\nboard:      {got:?}\nin process: {want:?}"
        );
    }
    // The steps exercised the node.
    assert!(
        frames > 0 && reports > 0 && contactor > 0,
        "{frames} {reports} {contactor}"
    );

    let bye = host.request(&HostMsg::Shutdown);
    let BoardMsg::Bye { stats } = bye else {
        panic!("not a Bye: {bye:?}");
    };
    assert_eq!(stats.accepted as usize, inputs().len() + 3, "{stats:?}");
    assert_eq!(stats.crc + stats.framing + stats.decode + stats.overflow, 0);
    assert_eq!(host.decoder.stats().accepted as usize, inputs().len() + 4);
    assert_eq!(q.wait(Duration::from_secs(10)), Some(0), "{}", q.output());
}

/// QEMU and the image, or a skip (a failure under `CI=true`).
pub fn image() -> Option<PathBuf> {
    if gridtwin::hil::qemu::binary().is_none() {
        skip("qemu-system-arm not found (apt-get install qemu-system-arm)");
        return None;
    }
    let image = at(IMAGE);
    if !image.is_file() {
        skip(&format!(
            "{} not built (cd hardware/qemu-m4 && cargo build --release)",
            image.display()
        ));
        return None;
    }
    Some(image)
}

/// The host's own board session (handshake, configuration, lock-step
/// steps) drives the emulated board through a Unix socket and through a
/// pseudo-terminal opened as a serial port, the path that real boards
/// take: both answer every step as the in-process LMU does, bit for bit,
/// with no frame dropped and no retry, and QEMU exits cleanly on shutdown.
#[test]
fn hil_qemu_board_session_over_a_socket_and_a_serial_port() {
    let Some(image) = image() else { return };
    for uart in [Uart::Socket, Uart::Pty] {
        let (mut q, link) = Qemu::start(&image, uart).expect("QEMU starts");
        let mut board = Board::connect(link, ANSWER_TIMEOUT, 2).expect("hello");
        board.configure(config(), KEYS).expect("configured");
        let mut lmu = Lmu::new(config(), KEYS);
        for (t, input) in inputs() {
            let got = board.step(t, input.clone()).expect("a step");
            let mut out = Outputs::default();
            lmu.handle(
                gridtwin_lmu::Instant::from_micros(t),
                input.as_input(),
                &mut out,
            );
            let bytes = |o: &Outputs| postcard::to_allocvec(o).unwrap();
            assert!(
                bytes(&got.outputs) == bytes(&out),
                "{uart:?}: step at {t} µs differs"
            );
            assert_eq!(got.poll_at_us, lmu.poll_at().map(|i| i.total_micros()));
        }
        let s = board.stats().clone();
        assert_eq!(s.steps as usize, inputs().len(), "{uart:?}");
        assert_eq!((s.retries, s.resets), (0, 0), "{uart:?}");
        assert_eq!(s.rtts_s.len(), inputs().len());
        let wire = board.shutdown().expect("bye").expect("the goodbye arrives");
        assert_eq!(wire.crc + wire.framing + wire.decode + wire.overflow, 0);
        assert_eq!(
            q.wait(Duration::from_secs(10)),
            Some(0),
            "{uart:?}: {}",
            q.output()
        );
        // The firmware's stack, after every kind of input: within its
        // budget of 32 KiB (static RAM is 12 KiB of the 64 KiB budget).
        let out = q.output();
        let used: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("stack high-water mark: "))
            .and_then(|r| r.strip_suffix(" bytes"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no stack figure in {out:?}"));
        assert!(used > 0 && used <= STACK_BUDGET, "{used} bytes of stack");
        eprintln!("{uart:?}: stack high-water mark {used} bytes");
    }
}
