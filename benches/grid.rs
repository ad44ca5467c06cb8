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
//! The EU LV groups need the reference data (`GRIDTWIN_REFDATA`, default
//! `../shared/refdata`) and are skipped with a notice without it.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gridtwin::grid::dss::DssCircuit;
use gridtwin::grid::network::Network;
use gridtwin::grid::powerflow::{Settings, Solver};

fn eu_lv() -> Option<(DssCircuit, Network)> {
    let base = std::env::var_os("GRIDTWIN_REFDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/refdata"));
    let master = base.join("ieee_eu_lv/dss/Master.dss");
    if !master.is_file() {
        eprintln!(
            "notice: {} not found; skipping the EU LV benches",
            master.display()
        );
        return None;
    }
    let c = DssCircuit::load(&master).expect("EU LV imports");
    let mut net = Network::from_dss(&c).expect("EU LV models");
    // Pure constant PQ at nominal, as in the IEEE definition.
    let pq = net
        .loads
        .iter()
        .map(|l| (l.name.clone(), (l.p_w / 1e3, l.q_var / 1e3)))
        .collect();
    net.set_constant_pq(&pq).expect("own loads");
    Some((c, net))
}

/// Per load, its shape's multipliers for minutes 1..=1440.
fn minute_multipliers(c: &DssCircuit, net: &Network) -> Vec<Vec<f64>> {
    net.loads
        .iter()
        .map(|l| {
            let def = c.loads.iter().find(|d| d.name == l.name).expect("load");
            let shape = &c.loadshapes[def.yearly.as_ref().expect("shape")];
            (1..=1440)
                .map(|m| shape.at(f64::from(m) * 60.0).expect("point"))
                .collect()
        })
        .collect()
}

fn eu_lv_benches(c: &mut Criterion) {
    let Some((circuit, mut net)) = eu_lv() else {
        return;
    };
    let nominal: Vec<(f64, f64)> = net.loads.iter().map(|l| (l.p_w, l.q_var)).collect();
    let mults = minute_multipliers(&circuit, &net);
    let by_minute: Vec<Vec<f64>> = (0..1440)
        .map(|m| mults.iter().map(|per_load| per_load[m]).collect())
        .collect();
    let solver = Solver::new(&net).expect("radial");
    let settings = Settings::default();
    let mut last = solver.solve(&net, settings, None).expect("converges").v;

    let mut g = c.benchmark_group("pf/eu_lv");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    let mut minute = 0usize;
    g.bench_function("resolve", |b| {
        b.iter(|| {
            // A load change: the next minute's demand.
            minute = (minute + 1) % 1440;
            for (i, l) in net.loads.iter_mut().enumerate() {
                l.p_w = nominal[i].0 * mults[i][minute];
                l.q_var = nominal[i].1 * mults[i][minute];
            }
            let sol = solver
                .solve(&net, settings, Some(&last))
                .expect("converges");
            last = sol.v;
            black_box(last[1][0])
        })
    });
    g.sample_size(10);
    g.throughput(Throughput::Elements(1440));
    g.bench_function("day_1440", |b| {
        b.iter(|| {
            let mut v = solver.solve(&net, settings, None).expect("converges").v;
            for row in &by_minute {
                for (i, l) in net.loads.iter_mut().enumerate() {
                    l.p_w = nominal[i].0 * row[i];
                    l.q_var = nominal[i].1 * row[i];
                }
                v = solver.solve(&net, settings, Some(&v)).expect("converges").v;
            }
            black_box(v[1][0])
        })
    });
    g.finish();
}

fn radial_10k(c: &mut Criterion) {
    let net = Network::synthetic_radial(10_000, 1);
    let mut g = c.benchmark_group("pf/radial");
    g.sample_size(10);
    g.bench_function("10000", |b| {
        b.iter(|| {
            let solver = Solver::new(&net).expect("radial");
            black_box(
                solver
                    .solve(&net, Settings::default(), None)
                    .expect("converges")
                    .iterations,
            )
        })
    });
    g.finish();
}

fn eu_lv_day_run(c: &mut Criterion) {
    let base = std::env::var_os("GRIDTWIN_REFDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/refdata"));
    let master = base.join("ieee_eu_lv/dss/Master.dss");
    if !master.is_file() {
        return;
    }
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
