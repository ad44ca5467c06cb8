//! LMU firmware hot paths, measured on the host (the board runs the same
//! code; its cycle budget is checked in HIL).
//!
//! - `lmu/dsp/waveform_cycle`: one 64-sample cycle of three voltages and
//!   three currents → RMS, powers, 25 harmonic bins per channel, THD,
//!   frequency, unbalance. The baseline in the same group is
//!   `lmu/dsp/phasor_frame`, the cheap input form.
//! - `lmu/node/measurement`: a whole `Lmu::handle` of one phasor frame
//!   (measurement, power quality, protection, FLISR state).
//! - `lmu/flisr/report_frame`: a received FLISR report: authentication
//!   (HMAC-SHA256), replay check, decode, judgement and the sealed
//!   acknowledgement and verdicts it sends.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gridtwin_lmu::dsp::Analyzer;
use gridtwin_lmu::{Config, Input, Instant, Lmu, Outputs};

mod workloads;
use workloads::{KEYS, phasors, waveform};

fn dsp(c: &mut Criterion) {
    let mut g = c.benchmark_group("lmu/dsp");
    let w = waveform();
    let p = phasors(1.0, 10.0);
    let mut a = Analyzer::new();
    g.bench_function("waveform_cycle", |b| {
        b.iter(|| black_box(workloads::dsp_cycle(&mut a, black_box(&w))))
    });
    g.bench_function("phasor_frame", |b| {
        b.iter(|| black_box(a.phasors(black_box(&p))))
    });
    g.finish();
}

fn node(c: &mut Criterion) {
    let mut g = c.benchmark_group("lmu");
    let p = phasors(1.0, 10.0);
    let mut n = Lmu::new(Config::new(1), KEYS);
    let mut out = Outputs::default();
    let mut t = 0u64;
    g.bench_function("node/measurement", |b| {
        b.iter(|| {
            t += 20_000;
            out.clear();
            n.handle(Instant::from_micros(t), Input::Phasors(&p), &mut out);
            black_box(out.events.len())
        })
    });

    // An LMU that saw a fault, on a dead feeder, hearing its child's report.
    g.bench_function("flisr/report_frame", |b| {
        b.iter_batched(
            workloads::flisr_setup,
            |(mut n, buf, len)| black_box(workloads::flisr_report(&mut n, &buf[..len]).contactor),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, dsp, node);
criterion_main!(benches);
