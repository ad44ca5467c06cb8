//! `gridtwin hil`: LMUs on emulated boards in the loop of a whole run.
//!
//! The scenario (`scenarios/hil_fault.ron`) puts a permanent fault in the
//! section bounded by LMUs 41 and 42 of the IEEE European LV feeder. Run
//! with those two LMUs on emulated boards (one QEMU each), the twin must
//! do exactly what the pure simulation does: every input the pure run
//! feeds those LMUs crosses the wire once, the boards' outputs equal their
//! shadows' bit for bit, and every result file is the same.
//!
//! Then the link is made hostile: garbage in both directions, a board
//! reset, a board that falls silent. The run recovers, or fails clearly,
//! as `--on-reset` says, and never hangs.
//!
//! Needs `qemu-system-arm`, the qemu-m4 image and the reference feeder;
//! skipped with a notice without them, except under `CI=true`.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use gridtwin::hil::qemu::{Qemu, Uart};
use gridtwin::hil::{HilError, Link, OnReset, Rig};
use gridtwin::scenario::Scenario;
use gridtwin::world::{self, WorldError};
use gridtwin_lmu::hil::{BoardMsg, MAX_WIRE, encode};

use crate::hil_qemu::image;
use crate::{at, gridtwin, stderr};

const SCENARIO: &str = "scenarios/hil_fault.ron";

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// summary.json without its `hil.*` lines.
fn without_hil(summary: &str) -> String {
    summary
        .lines()
        .filter(|l| !l.trim_start().starts_with("\"hil."))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `hil.*` count from summary.json.
fn hil(summary: &str, key: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(summary).unwrap();
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

/// The inputs the pure run fed LMU `n` (lmus.csv's `inputs` column).
fn inputs(lmus_csv: &str, n: u32) -> u64 {
    let mut r = csv::Reader::from_reader(lmus_csv.as_bytes());
    let col = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "inputs")
        .unwrap();
    r.records()
        .map(Result::unwrap)
        .find(|row| row[0] == *n.to_string())
        .map(|row| row[col].parse().unwrap())
        .unwrap_or_else(|| panic!("LMU {n} not in lmus.csv"))
}

/// Acceptance: two LMUs on two emulated boards (a Unix-socket UART each),
/// then one on a board reached through its pseudo-terminal as a serial
/// port, then one over TCP. `hil.steps` equals the inputs the pure run fed those LMUs,
/// nothing diverges, nothing is retried or dropped, and every file but
/// the HIL report and the wall-clock timing is byte-identical to the pure
/// run's: the fault is isolated exactly as in the pure simulation.
#[test]
fn hil_run_on_emulated_boards_is_the_pure_simulation_bit_for_bit() {
    if image().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pure = tmp.path().join("pure");
    let o = gridtwin(&["run", SCENARIO, "--out", pure.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pure_summary = read(&pure, "summary.json");
    assert!(pure_summary.contains("\"flisr.minimal_share\": 1.0"));

    for (board, lmus) in [
        ("qemu", &[41u32, 42][..]),
        ("qemu:pty", &[41][..]),
        ("qemu:tcp", &[42][..]),
    ] {
        let dir = tmp.path().join(board.replace(':', "_"));
        let mut args = vec!["hil", SCENARIO, "--board", board, "--out"];
        args.push(dir.to_str().unwrap());
        let ids: Vec<String> = lmus.iter().map(u32::to_string).collect();
        for id in &ids {
            args.extend(["--lmu", id]);
        }
        args.push("-q");
        let o = gridtwin(&args);
        assert!(o.status.success(), "{board}: {}", stderr(&o));
        let s = read(&dir, "summary.json");
        let fed: u64 = lmus
            .iter()
            .map(|&n| inputs(&read(&pure, "lmus.csv"), n))
            .sum();
        assert!(fed > 0);
        assert_eq!(hil(&s, "hil.steps"), fed, "{board}");
        assert_eq!(hil(&s, "hil.boards"), lmus.len() as u64);
        for key in [
            "hil.divergences",
            "hil.retries",
            "hil.resyncs",
            "hil.resets",
        ] {
            assert_eq!(hil(&s, key), 0, "{board}: {key}");
        }
        assert_eq!(without_hil(&s), without_hil(&pure_summary), "{board}");
        assert_eq!(read(&dir, "hil_divergences.csv").lines().count(), 1);
        let timing: serde_json::Value = serde_json::from_str(&read(&dir, "timing.json")).unwrap();
        let (p50, p99) = (
            timing["hil.rtt_p50_s"].as_f64().unwrap(),
            timing["hil.rtt_p99_s"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{timing}");
        // Every other file (plots included), byte for byte.
        same_files(&pure, &dir, board);
    }
}

/// Every file under `a` but the summary, the timing and the report is in
/// `b`, byte for byte.
fn same_files(a: &Path, b: &Path, what: &str) {
    for f in std::fs::read_dir(a).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        if f.file_type().unwrap().is_dir() {
            same_files(&a.join(&name), &b.join(&name), what);
            continue;
        }
        if ["summary.json", "timing.json", "report.html"].contains(&name.as_str()) {
            continue;
        }
        assert!(
            std::fs::read(a.join(&name)).unwrap() == std::fs::read(b.join(&name)).unwrap(),
            "{what}: {name} differs"
        );
    }
}

/// A link that misbehaves on cue. Counting the host's messages (one per
/// `send`): message `garble_to_board` goes after a burst of noise with a
/// byte flipped (the board drops both, so the host must retry); after message `garble_to_host` the host receives
/// a garbage frame before the answer (it drops it and resyncs); message
/// `reset_at` is swallowed and answered with a hello, as a board that
/// rebooted would say; from message `mute_from` on nothing is forwarded.
struct Hostile {
    inner: Box<dyn Link>,
    sent: u32,
    garble_to_board: u32,
    garble_to_host: u32,
    reset_at: u32,
    mute_from: u32,
    injected: VecDeque<u8>,
}

impl Hostile {
    fn new(inner: Box<dyn Link>) -> Hostile {
        Hostile {
            inner,
            sent: 0,
            garble_to_board: 5,
            garble_to_host: 7,
            reset_at: 9,
            mute_from: u32::MAX,
            injected: VecDeque::new(),
        }
    }
}

impl Link for Hostile {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sent += 1;
        let k = self.sent;
        if k >= self.mute_from {
            return Ok(());
        }
        if k == self.reset_at {
            let mut hello = [0u8; MAX_WIRE];
            let n = encode(&BoardMsg::hello(1), &mut hello).unwrap();
            self.injected.extend(&hello[..n]);
            return Ok(());
        }
        if k == self.garble_to_board {
            // Noise between frames, then a frame with a flipped byte.
            self.inner.send(&[0x55, 0xAA, 0x13, 0x37, 0x00])?;
            let mut bad = bytes.to_vec();
            let mid = bad.len() / 2;
            bad[mid] ^= 0x5A;
            self.inner.send(&bad)?;
            return Ok(());
        }
        self.inner.send(bytes)?;
        if k == self.garble_to_host {
            self.injected.extend([0xDE, 0xAD, 0xBE, 0xEF, 0x00]);
        }
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        if !self.injected.is_empty() {
            let n = self.injected.len().min(buf.len());
            for (b, x) in buf.iter_mut().zip(self.injected.drain(..n)) {
                *b = x;
            }
            return Ok(n);
        }
        self.inner.receive(buf, timeout)
    }
}

/// LMU 42 on an emulated board behind [`Hostile`], with `on_reset`.
fn hostile_run(
    on_reset: OnReset,
    tweak: impl FnOnce(&mut Hostile),
) -> Option<Result<world::RunOutput, WorldError>> {
    let image = image()?;
    let scenario = Scenario::load(&at(SCENARIO)).unwrap();
    let (q, link) = Qemu::start(&image, Uart::Socket).expect("QEMU starts");
    let mut hostile = Hostile::new(link);
    tweak(&mut hostile);
    let mut rig = Rig::from_links(
        vec![(42, Box::new(hostile))],
        on_reset,
        Duration::from_millis(300),
        2,
    )
    .expect("hello");
    rig.keep(q);
    Some(world::run_driven(&scenario, 1, &mut (), &mut rig).and_then(world::RunOutput::complete))
}

/// Garbage both ways and a board reset, with `--on-reset reinit`: the
/// garbled frames are dropped and counted on both ends, the frame the
/// board could not read is sent again, the reset boots LMU 42 again on the
/// board and in its shadow, and the run goes on: nothing diverges and the
/// fault is still isolated minimally.
#[test]
fn hil_run_recovers_from_garbage_and_a_board_reset_with_reinit() {
    let Some(out) = hostile_run(OnReset::Reinit, |_| {}) else {
        return;
    };
    let out = out.expect("the run recovers");
    let s = &out.summary;
    let n = |k: &str| crate::num(s, k);
    assert_eq!(n("hil.resets"), 1.0);
    assert_eq!(n("hil.reinits"), 1.0);
    assert!(n("hil.retries") >= 1.0, "the garbled request is sent again");
    assert!(
        n("hil.resyncs") >= 1.0,
        "the host dropped the garbage frame"
    );
    assert!(n("hil.board_resyncs") >= 1.0, "the board dropped one too");
    assert_eq!(n("hil.divergences"), 0.0);
    assert_eq!(n("lmu.reboots"), 1.0);
    assert_eq!(n("flisr.minimal_share"), 1.0);
    let resets = out
        .files
        .iter()
        .find(|(f, _)| f == "hil_resets.csv")
        .unwrap();
    let rows: Vec<&str> = std::str::from_utf8(&resets.1).unwrap().lines().collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].ends_with(",42"), "{rows:?}");
}

/// The same reset with `--on-reset fail` fails the run, saying the board
/// was reset; a board that falls silent fails it after its retries,
/// naming the step.
#[test]
fn hil_run_fails_clearly_on_a_reset_or_a_silent_board() {
    let Some(out) = hostile_run(OnReset::Fail, |_| {}) else {
        return;
    };
    let e = out.expect_err("a reset fails the run");
    assert!(
        matches!(e, WorldError::Hil(HilError::Reset { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("reset"), "{e}");

    let Some(out) = hostile_run(OnReset::Reinit, |h| {
        h.reset_at = u32::MAX;
        h.mute_from = 20;
    }) else {
        return;
    };
    let e = out.expect_err("silence fails the run");
    let msg = e.to_string();
    assert!(
        matches!(e, WorldError::Hil(HilError::Timeout { tries: 3, .. })) && msg.contains("step"),
        "{msg}"
    );
}
