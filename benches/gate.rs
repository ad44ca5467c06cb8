//! The regression gate: short variants of the criterion workloads
//! (`benches/workloads/`), measured in instructions executed (Callgrind's
//! `Ir`, through gungraun) instead of wall time, so that a run on a shared
//! or noisy machine gives the same figures.
//!
//! Run it with the `benches/gate` script, which builds this bench with
//! curve25519-dalek's serial backend pinned (its SIMD backend is otherwise
//! chosen at run time, which changes the ledger's counts), compares the
//! counts with `results/bench/baseline/gate.json` and fails on growth above
//! a threshold. `results/bench/README.md` says how to read and refresh it.
//!
//! Each workload's setup runs before the measured function and is never
//! counted. `GRIDTWIN_GATE_SLOWDOWN=name[,name...]` (read by this bench
//! only) makes the named workloads run twice, each on a fresh setup: the
//! gate's self-test uses it to show that a slowed workload fails the gate.
//!
//! | workload | what one run does |
//! |---|---|
//! | `kernel/hold/exp_10000` | 100 000 holds of the kernel's queue holding 10 000 events, Exp(1 s) delays |
//! | `grid/eu_lv_resolve/one` | one warm re-solve of the EU LV feeder after a load change |
//! | `grid/eu_lv_day/minutes_120` | the first 120 minutes of the EU LV day, one warm-started solve a minute (the criterion bench does all 1440) |
//! | `grid/radial/buses_10000` | a cold solve of a synthetic 10 000-bus radial feeder, factorisation included |
//! | `radio/reception/interferers_20` | one 100-octet reception while 20 interferers start and end: SINR segments, PER, every radio event |
//! | `mesh/traffic/nodes_256` | a second of traffic on a 16 × 16 corner of the town (the criterion bench does 10 000 nodes) |
//! | `lmu/dsp_waveform/cycle` | the DSP of one 64-sample cycle of six channels |
//! | `lmu/flisr_report/frame` | an LMU handling a received FLISR report (HMAC, replay check, judgement, answers) |
//! | `ledger/validate_block/txs_1000` | a validator's check of a 1 000-transaction block with real ed25519 signatures |
//! | `twin/default_scenario/minutes_15` | `scenarios/default.ron` cut to its first 15 simulated minutes, built and run through `world::run` (the criterion bench does an hour) |

use std::hint::black_box;

use gridtwin::grid::network::Network;
use gridtwin::ledger::block::{Block, Ledger};
use gridtwin::mesh::radio::{Radio, RadioConfig};
use gridtwin::scenario::Scenario;
use gridtwin_lmu::Lmu;
use gridtwin_lmu::dsp::{Analyzer, Waveform};
use gridtwin_lmu::frame::MAX_FRAME;
use gungraun::{LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};

mod workloads;

use workloads::*;

/// Holds per run of the hold-model workload.
const HOLDS: usize = 100_000;
/// Minutes of the EU LV day in the gate's short variant.
const DAY_MINUTES: usize = 120;
/// Side of the mesh in the gate's short variant (side² nodes).
const MESH_SIDE: usize = 16;

/// One state from `make`, or two (each from its own `make`) when `name` is
/// listed in `GRIDTWIN_GATE_SLOWDOWN`: the measured function runs once per
/// state, so a listed workload costs about twice as much.
fn states<T>(name: &str, make: impl Fn() -> T) -> Vec<T> {
    let slowed = std::env::var("GRIDTWIN_GATE_SLOWDOWN")
        .map(|v| v.split(',').any(|w| w.trim() == name))
        .unwrap_or(false);
    (0..if slowed { 2 } else { 1 }).map(|_| make()).collect()
}

#[library_benchmark]
#[bench::exp_10000(states("hold", || hold_setup(10_000, HOLDS)))]
fn hold(mut s: Vec<Hold>) -> (Vec<Hold>, u64) {
    let mut last = 0;
    for h in &mut s {
        last = black_box(h.run(HOLDS));
    }
    (s, last)
}

fn eu_lv() -> EuLv {
    let master = eu_lv_master();
    eu_lv_setup(&master)
}

#[library_benchmark]
#[bench::one(states("eu_lv_resolve", eu_lv))]
fn eu_lv_resolve(mut s: Vec<EuLv>) -> (Vec<EuLv>, usize) {
    let mut it = 0;
    for f in &mut s {
        it = black_box(f.resolve(565));
    }
    (s, it)
}

#[library_benchmark]
#[bench::minutes_120(states("eu_lv_day", eu_lv))]
fn eu_lv_day(mut s: Vec<EuLv>) -> (Vec<EuLv>, f64) {
    let mut v = 0.0;
    for f in &mut s {
        v = black_box(f.day(DAY_MINUTES));
    }
    (s, v)
}

#[library_benchmark]
#[bench::buses_10000(states("radial", || Network::synthetic_radial(10_000, 1)))]
fn radial(s: Vec<Network>) -> (Vec<Network>, usize) {
    let mut it = 0;
    for net in &s {
        it = black_box(radial_solve(net));
    }
    (s, it)
}

library_benchmark_group!(name = grid, benchmarks = [eu_lv_resolve, eu_lv_day, radial]);

#[library_benchmark]
#[bench::interferers_20(states("reception", reception_setup))]
fn reception(s: Vec<Radio>) -> u64 {
    let mut received = 0;
    for r in s {
        received += black_box(workloads::reception(r)).0.received;
    }
    received
}

#[library_benchmark]
#[bench::nodes_256(states("traffic", || Radio::new(RadioConfig::default(), town(MESH_SIDE), 1)))]
fn traffic(s: Vec<Radio>) -> u64 {
    let mut outputs = 0;
    for r in s {
        outputs += black_box(second_of_traffic(r, MESH_SIDE));
    }
    outputs
}

#[library_benchmark]
#[bench::cycle(states("dsp_waveform", || (Analyzer::new(), waveform())))]
fn dsp_waveform(mut s: Vec<(Analyzer, Waveform)>) -> (Vec<(Analyzer, Waveform)>, f32) {
    let mut thd = 0.0;
    for (a, w) in &mut s {
        thd = black_box(dsp_cycle(a, black_box(w))).phases[0].thd_v_pct;
    }
    (s, thd)
}

#[library_benchmark]
#[bench::frame(states("flisr_report", flisr_setup))]
fn flisr_report(mut s: Vec<(Lmu, [u8; MAX_FRAME], usize)>) -> Vec<(Lmu, [u8; MAX_FRAME], usize)> {
    for (n, buf, len) in &mut s {
        black_box(workloads::flisr_report(n, &buf[..*len]));
    }
    s
}

#[library_benchmark]
#[bench::txs_1000(states("validate_block", block_setup))]
fn validate_block(s: Vec<(Ledger, Block)>) -> Vec<Ledger> {
    s.into_iter()
        .map(|(l, b)| black_box(workloads::validate_block(l, b)))
        .collect()
}

#[library_benchmark]
#[bench::minutes_15(states("default_scenario", || workloads::default_scenario("15min")))]
fn default_scenario(s: Vec<Scenario>) -> (Vec<Scenario>, u64) {
    let mut events = 0;
    for sc in &s {
        events = black_box(run_scenario(sc));
    }
    (s, events)
}

library_benchmark_group!(name = kernel, benchmarks = [hold]);
library_benchmark_group!(name = radio, benchmarks = [reception]);
library_benchmark_group!(name = mesh, benchmarks = [traffic]);
library_benchmark_group!(name = lmu, benchmarks = [dsp_waveform, flisr_report]);
library_benchmark_group!(name = ledger, benchmarks = [validate_block]);
library_benchmark_group!(name = twin, benchmarks = [default_scenario]);

main!(
    config = LibraryBenchmarkConfig::default()
        .pass_through_envs(["GRIDTWIN_GATE_SLOWDOWN"]);
    library_benchmark_groups = kernel, grid, radio, mesh, lmu, ledger, twin
);
