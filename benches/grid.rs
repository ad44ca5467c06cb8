//! Grid power-flow benchmarks.
//!
//! - `pf/eu_lv/resolve`: a warm re-solve of the IEEE European LV feeder after
//!   a load change (factorisation reused, warm start from the last solution).
//! - `pf/eu_lv/day_1440`: a full day at one-minute steps, each minute's loads
//!   from the feeder's load shapes, warm-started from the previous minute.
//! - `pf/radial/10000`: a cold solve of a synthetic 10 000-bus radial feeder,
//!   factorisation included.
//! - `run/eu_lv_day`: the grid model inside a whole run: a simulated day of
//!   the EU LV feeder with its one-minute shapes and three volt-var PV
//!   systems, the feeder import and every event included.
//!
//! The EU LV groups read the feeder in the repository's `data/ieee_eu_lv/`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gridtwin::grid::network::Network;

mod workloads;

fn eu_lv_benches(c: &mut Criterion) {
    let master = workloads::eu_lv_master();
    let mut eu = workloads::eu_lv_setup(&master);
    let mut g = c.benchmark_group("pf/eu_lv");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    let mut minute = 0usize;
    g.bench_function("resolve", |b| {
        b.iter(|| {
            // A load change: the next minute's demand.
            minute = (minute + 1) % 1440;
            black_box(eu.resolve(minute))
        })
    });
    g.sample_size(10);
    g.throughput(Throughput::Elements(1440));
    g.bench_function("day_1440", |b| b.iter(|| black_box(eu.day(1440))));
    g.finish();
}

fn radial_10k(c: &mut Criterion) {
    let net = Network::synthetic_radial(10_000, 1);
    let mut g = c.benchmark_group("pf/radial");
    g.sample_size(10);
    g.bench_function("10000", |b| {
        b.iter(|| black_box(workloads::radial_solve(&net)))
    });
    g.finish();
}

fn eu_lv_day_run(c: &mut Criterion) {
    let master = workloads::eu_lv_master();
    let pv = |name: &str, bus: &str| {
        format!(
            "(name: \"{name}\", bus: \"{bus}\", phases: \"a\", kw: 5.0, \
             profile: ClearSky(latitude_deg: 52.0), control: Ieee1547)"
        )
    };
    let src = format!(
        "(duration: \"24h\", outputs: (sample_interval: \"15min\"), grid: (feeder: Dss({master:?}), \
         pv: [{}, {}, {}]))",
        pv("a", "34"),
        pv("b", "502"),
        pv("c", "899")
    );
    let sc = gridtwin::scenario::Scenario::from_source(
        "bench.ron",
        &src,
        std::path::Path::new("."),
        "b",
    )
    .expect("valid");
    let mut g = c.benchmark_group("run");
    g.sample_size(10);
    g.bench_function("eu_lv_day", |b| {
        b.iter(|| black_box(gridtwin::world::run(&sc, 1, &mut ()).expect("runs").summary))
    });
    g.finish();
}

criterion_group!(benches, eu_lv_benches, radial_10k, eu_lv_day_run);
criterion_main!(benches);
