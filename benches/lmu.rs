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
use gridtwin_lmu::dsp::{Analyzer, PhasorFrame, SAMPLES_PER_CYCLE, Waveform};
use gridtwin_lmu::frame::{FrameKind, Keys, MAX_FRAME, Security};
use gridtwin_lmu::node::Message;
use gridtwin_lmu::{Config, Input, Instant, Lmu, Outputs};

const KEYS: Keys = Keys {
    mesh: [5; 32],
    gateway: [6; 32],
};

fn waveform() -> Waveform {
    let mut w = Waveform {
        v: [[0.0; SAMPLES_PER_CYCLE]; 3],
        i: [[0.0; SAMPLES_PER_CYCLE]; 3],
    };
    for k in 0..3 {
        for n in 0..SAMPLES_PER_CYCLE {
            let th = std::f32::consts::TAU * n as f32 / SAMPLES_PER_CYCLE as f32
                - k as f32 * std::f32::consts::TAU / 3.0;
            w.v[k][n] = 325.0 * th.cos() + 15.0 * (5.0 * th).cos();
            w.i[k][n] = 14.0 * (th - 0.3).cos() + 2.0 * (3.0 * th).cos();
        }
    }
    w
}

fn phasors(v_pu: f32, i_a: f32) -> PhasorFrame {
    PhasorFrame::balanced(230.0 * v_pu, i_a, 20.0)
}

fn dsp(c: &mut Criterion) {
    let mut g = c.benchmark_group("lmu/dsp");
    let w = waveform();
    let p = phasors(1.0, 10.0);
    let mut a = Analyzer::new();
    g.bench_function("waveform_cycle", |b| {
        b.iter(|| black_box(a.waveform(black_box(&w))))
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
    let mut cfg = Config::new(1);
    cfg.downstream.push(2).unwrap();
    let fault = phasors(0.4, 3000.0);
    let dead = phasors(0.0, 0.0);
    let mut child = Security::new(2, KEYS, 0, &[]);
    let mut payload = [0u8; 64];
    let used = Message::Report { saw: false }
        .encode(&mut payload)
        .unwrap()
        .len();
    g.bench_function("flisr/report_frame", |b| {
        b.iter_batched(
            || {
                let mut n = Lmu::new(cfg.clone(), KEYS);
                let mut out = Outputs::default();
                n.handle(Instant::from_millis(0), Input::Phasors(&fault), &mut out);
                n.handle(Instant::from_millis(120), Input::Phasors(&dead), &mut out);
                let mut buf = [0u8; MAX_FRAME];
                let len = child
                    .seal(FrameKind::FaultReport, 1, &payload[..used], &mut buf)
                    .unwrap();
                (n, buf, len)
            },
            |(mut n, buf, len)| {
                let mut out = Outputs::default();
                n.handle(
                    Instant::from_millis(130),
                    Input::Frame(&buf[..len]),
                    &mut out,
                );
                black_box(out.contactor)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, dsp, node);
criterion_main!(benches);
