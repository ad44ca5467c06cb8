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

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridtwin_lmu::dsp::{PhasorFrame, SAMPLES_PER_CYCLE, Waveform};
use gridtwin_lmu::frame::Keys;
use gridtwin_lmu::hil::{
    BoardMsg, CRATE_VERSION, Decoder, HostMsg, MAX_WIRE, WIRE_VERSION, WireInput, encode,
};
use gridtwin_lmu::node::{Command as LmuCommand, Config, Input, Lmu, Outputs};

use crate::at;

/// The emulated board's firmware image, relative to the workspace root.
pub const IMAGE: &str = "hardware/qemu-m4/target/thumbv7em-none-eabihf/release/gridtwin-qemu-m4";

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

fn qemu_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("qemu-system-arm"))
        .find(|p| p.is_file())
}

/// A QEMU process of our own, killed by its pid when dropped.
struct Qemu {
    child: Child,
    dir: tempfile::TempDir,
}

impl Qemu {
    /// Starts QEMU with UART0 on a Unix socket in a temp dir; QEMU waits
    /// for us to connect before it runs the firmware.
    fn start(qemu: &Path, image: &Path) -> (Qemu, UnixStream) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("hil.sock");
        let out = std::fs::File::create(dir.path().join("qemu.out")).unwrap();
        let err = std::fs::File::create(dir.path().join("qemu.err")).unwrap();
        let child = Command::new(qemu)
            .args(["-M", "mps2-an386", "-cpu", "cortex-m4", "-display", "none"])
            .args(["-monitor", "none", "-icount", "shift=auto"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=hil,path={},server=on,wait=on",
                sock.display()
            ))
            .args(["-serial", "chardev:hil", "-kernel"])
            .arg(image)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("qemu-system-arm starts");
        let mut q = Qemu { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&sock) {
                break s;
            }
            if let Ok(Some(status)) = q.child.try_wait() {
                panic!("QEMU exited with {status} before listening: {}", q.logs());
            }
            assert!(
                Instant::now() < deadline,
                "QEMU did not listen on {} within 20 s: {}",
                sock.display(),
                q.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(ANSWER_TIMEOUT)).unwrap();
        (q, stream)
    }

    /// What QEMU printed so far.
    fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!(
            "stdout: {:?}, stderr: {:?}",
            read("qemu.out"),
            read("qemu.err")
        )
    }

    /// Waits up to `timeout` for QEMU to exit; its exit code.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The host end of the link.
struct Host {
    stream: UnixStream,
    decoder: Decoder<MAX_WIRE>,
    pending: std::collections::VecDeque<u8>,
}

impl Host {
    fn send(&mut self, msg: &HostMsg) {
        let mut out = [0u8; MAX_WIRE];
        let n = encode(msg, &mut out).unwrap();
        self.stream
            .write_all(&out[..n])
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
            assert!(
                Instant::now() < deadline,
                "no answer within {ANSWER_TIMEOUT:?}"
            );
            let mut buf = [0u8; 512];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the board closed the link"),
                Ok(n) => self.pending.extend(&buf[..n]),
                Err(e) => panic!("no answer within {ANSWER_TIMEOUT:?}: {e}"),
            }
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
    let Some(qemu) = qemu_binary() else {
        return skip("qemu-system-arm not found (apt-get install qemu-system-arm)");
    };
    let image = at(IMAGE);
    if !image.is_file() {
        return skip(&format!(
            "{} not built (cd hardware/qemu-m4 && cargo build --release)",
            image.display()
        ));
    }
    let (mut q, stream) = Qemu::start(&qemu, &image);
    let mut host = Host {
        stream,
        decoder: Decoder::new(),
        pending: Default::default(),
    };

    // The board announces itself at boot, and answers our Hello alike.
    let announced = host.receive();
    let answer = host.request(&HostMsg::Hello { wire: WIRE_VERSION });
    assert_eq!(announced, answer, "{}", q.logs());
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
    assert_eq!(q.wait(Duration::from_secs(10)), Some(0), "{}", q.logs());
}
