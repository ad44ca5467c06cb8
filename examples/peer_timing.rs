//! gridtwin's side of the peer comparisons in `benches/peers/` (OpenDSS,
//! pandapower, SimPy): the same tasks, timed in-process with
//! `std::time::Instant`, printed as one JSON object on stdout.
//!
//! ```text
//! cargo run --release --example peer_timing -- eu-lv MASTER.dss
//! cargo run --release --example peer_timing -- hold N EVENTS
//! ```
//!
//! `eu-lv` times, on the IEEE European LV feeder at pure constant PQ:
//! the import (`parse_s`: reading and parsing the OpenDSS files, building
//! the network), a cold snapshot solve at nominal loads (`snapshot_s`:
//! factorisation and solve), a warm re-solve after a load change
//! (`resolve_s`: the next minute's loads set, then a solve warm-started
//! from the last one), and a 1440-minute day (`day_s`: each minute's loads
//! from the feeder's load shapes, warm-started from the previous minute).
//! Each is the median of several repetitions. It also prints the phase
//! voltages at minute 566 (09:26) for the comparison of results.
//!
//! `hold` runs the hold model through the kernel's `Simulation::run`: N
//! pending events, each handled event draws an Exp(1 s) delay and schedules
//! its successor, for EVENTS events; `ns_per_event` is wall time per event,
//! the draw included (as in SimPy's `env.timeout(expovariate(1))`).

use std::path::Path;
use std::time::Instant;

use gridtwin::grid::powerflow::{Settings, Solver};
use gridtwin::kernel::rng::stream;
use gridtwin::kernel::{Context, Handler, RunLimits, SimDuration, SimTime, Simulation};
use rand_distr::{Distribution, Exp};
use rand_xoshiro::Xoshiro256PlusPlus;

#[path = "../benches/workloads/mod.rs"]
mod workloads;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let out = f();
    (t.elapsed().as_secs_f64(), out)
}

fn eu_lv(master: &Path) {
    let parse_s = median(
        (0..5)
            .map(|_| time(|| workloads::eu_lv_load(master)).0)
            .collect(),
    );
    let mut eu = workloads::eu_lv_setup(master);
    let settings = Settings::default();
    let snapshot_s = median(
        (0..20)
            .map(|_| {
                time(|| {
                    let solver = Solver::new(&eu.net).expect("radial");
                    solver.solve(&eu.net, settings, None).expect("converges")
                })
                .0
            })
            .collect(),
    );
    let resolve_s = median((0..1440).map(|m| time(|| eu.resolve(m)).0).collect());
    let day_s = median((0..5).map(|_| time(|| eu.day(1440)).0).collect());
    // Minute 566 (09:26) is index 565.
    eu.set_minute(565);
    let net = &eu.net;
    let v = eu.solver.solve(net, settings, None).expect("converges").v;
    let volts: Vec<String> = net
        .buses
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "\"{}\":[{:.6},{:.6},{:.6}]",
                b.name,
                v[i][0].norm(),
                v[i][1].norm(),
                v[i][2].norm()
            )
        })
        .collect();
    println!(
        "{{\"parse_s\":{parse_s:.6e},\"snapshot_s\":{snapshot_s:.6e},\"resolve_s\":{resolve_s:.6e},\
         \"day_s\":{day_s:.6e},\"buses\":{},\"v_m566\":{{{}}}}}",
        net.buses.len(),
        volts.join(",")
    );
}

struct Holder {
    exp: Exp<f64>,
    rng: Xoshiro256PlusPlus,
}

impl Handler for Holder {
    type Event = u32;
    fn handle(&mut self, id: u32, cx: &mut Context<'_, u32>) {
        let d = self.exp.sample(&mut self.rng) as u64;
        cx.schedule_in(SimDuration::from_nanos(d), id)
            .expect("within simulated time");
    }
}

fn hold(n: usize, events: u64) {
    let mut h = Holder {
        exp: Exp::new(1.0 / 1e9).expect("positive rate"),
        rng: stream(1, "peer", 0, "hold"),
    };
    let mut sim = Simulation::new();
    for i in 0..n {
        let d = h.exp.sample(&mut h.rng) as u64;
        sim.schedule_at(SimTime::from_nanos(d), i as u32)
            .expect("future");
    }
    let limits = |e| RunLimits {
        stop_at: SimTime::MAX,
        max_events: Some(e),
    };
    // Warm-up: as many events as pending.
    sim.run(&mut h, limits(n as u64), &mut ());
    let (s, stats) = time(|| sim.run(&mut h, limits(events), &mut ()));
    assert_eq!(stats.events, events);
    println!(
        "{{\"n\":{n},\"events\":{events},\"wall_s\":{s:.6e},\"ns_per_event\":{:.3}}}",
        s * 1e9 / events as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["eu-lv", master] => eu_lv(Path::new(master)),
        ["hold", n, events] => hold(
            n.parse().expect("N: a count"),
            events.parse().expect("EVENTS: a count"),
        ),
        _ => {
            eprintln!("usage: peer_timing eu-lv MASTER.dss | peer_timing hold N EVENTS");
            std::process::exit(2);
        }
    }
}
