//! HIL lock-step throughput over the emulated board: one step (request
//! out, the board's `Lmu::handle`, answer back) per iteration, through the
//! host's board session, for each input kind, over QEMU's UART on a Unix
//! socket and on a pty opened as a serial port.
//!
//! - `hil/qemu_socket/{timer,phasors,waveform}` and
//!   `hil/qemu_pty/{timer,phasors,waveform}`: one lock-step exchange.
//! - `hil/in_process/{timer,phasors,waveform}`: the same input handled by
//!   the in-process LMU (the shadow's cost), the baseline in the same run.
//!
//! Needs `qemu-system-arm` and the qemu-m4 release image
//! (`cd hardware/qemu-m4 && cargo build --release`); without them it says
//! so and measures only the baseline.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gridtwin::hil::Board;
use gridtwin::hil::qemu::{DEFAULT_IMAGE, Qemu, Uart};
use gridtwin_lmu::dsp::PhasorFrame;
use gridtwin_lmu::hil::WireInput;
use gridtwin_lmu::{Config, Instant, Lmu, Outputs};

mod workloads;
use workloads::KEYS;

/// Time between steps [µs]: a cycle (20 ms), as a waveform-fed LMU sees.
const STEP_US: u64 = 20_000;

fn config() -> Config {
    let mut c = Config::new(7);
    c.upstream = Some(6);
    c.downstream.push(8).expect("room for one neighbour");
    c
}

fn inputs() -> [(&'static str, WireInput); 3] {
    [
        ("timer", WireInput::Timer),
        (
            "phasors",
            WireInput::Phasors(PhasorFrame::balanced(231.0, 40.0, 20.0)),
        ),
        ("waveform", WireInput::Waveform(workloads::waveform())),
    ]
}

fn in_process(c: &mut Criterion) {
    let mut g = c.benchmark_group("hil/in_process");
    for (name, input) in inputs() {
        let mut lmu = Lmu::new(config(), KEYS);
        let mut out = Outputs::default();
        let mut t = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                t += STEP_US;
                out.clear();
                lmu.handle(Instant::from_micros(t), input.as_input(), &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn over_qemu(c: &mut Criterion) {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_IMAGE);
    if gridtwin::hil::qemu::binary().is_none() || !image.is_file() {
        eprintln!(
            "notice: no qemu-system-arm or no image at {}: only hil/in_process is measured",
            image.display()
        );
        return;
    }
    for (group, uart) in [
        ("hil/qemu_socket", Uart::Socket),
        ("hil/qemu_pty", Uart::Pty),
    ] {
        let (_qemu, link) = Qemu::start(&image, uart).expect("QEMU starts");
        let mut board = Board::connect(link, Duration::from_secs(5), 0).expect("hello");
        board.configure(config(), KEYS).expect("configured");
        let mut g = c.benchmark_group(group);
        g.sample_size(20).measurement_time(Duration::from_secs(4));
        let mut t = 0u64;
        for (name, input) in inputs() {
            g.bench_function(name, |b| {
                b.iter(|| {
                    t += STEP_US;
                    black_box(board.step(t, input.clone()).expect("a step"))
                })
            });
        }
        g.finish();
        // The emulated board exits on its goodbye; `_qemu` is stopped by
        // its pid when dropped otherwise.
        let _ = board.shutdown();
    }
}

criterion_group!(benches, in_process, over_qemu);
criterion_main!(benches);
