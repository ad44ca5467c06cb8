//! The whole twin.
//!
//! - `twin/default_scenario/1h`: `scenarios/default.ron` (the village: 147
//!   houses, 48 PV systems, 39 LMUs on the mesh, the gateway, the BFT
//!   ledger) with its duration cut to one simulated hour (midnight to
//!   01:00, before any fault), built and run through `world::run`, the
//!   call behind `gridtwin run`. The outputs are built in memory
//!   (summary, CSVs) but not written, and no plots are drawn. Loading and
//!   validating the scenario file is outside the measurement; building the
//!   world from it (the feeder files and load profiles included) is in.
//!
//! The village's load shapes are the EU LV feeder's profiles, in the
//! repository's `data/ieee_eu_lv/`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

mod workloads;

fn bench(c: &mut Criterion) {
    let sc = workloads::default_scenario("1h");
    eprintln!(
        "default scenario, 1 h: {} events",
        workloads::run_scenario(&sc)
    );
    let mut g = c.benchmark_group("twin/default_scenario");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("1h", |b| b.iter(|| black_box(workloads::run_scenario(&sc))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
