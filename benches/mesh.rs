//! Mesh benchmarks.
//!
//! - `mesh/build/10000`: precomputing the links of 10 000 nodes on a
//!   100 × 100 grid of 200 m (a 20 km × 20 km town), with the default
//!   calibration and cut-off;
//! - `mesh/traffic/10000`: one simulated second of traffic on that mesh:
//!   every node sends one 20-octet frame to a grid neighbour at a random
//!   instant (CSMA-CA, ACKs, retries), reported as frames per second of
//!   wall time. The baseline in the same group is the same traffic on a
//!   1 000-node 32 × 32 corner of the town, to show how the cost per frame
//!   grows with the mesh.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gridtwin::kernel::{Context, Handler, RunLimits, SimTime, Simulation};
use gridtwin::mesh::propagation::Position;
use gridtwin::mesh::radio::{MacFrame, Radio, RadioConfig, RadioEvent};
use rand::RngExt;

fn grid(side: usize) -> Vec<Position> {
    (0..side * side)
        .map(|i| Position::new((i % side) as f64 * 200.0, (i / side) as f64 * 200.0, 8.0))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Radio(RadioEvent),
    Send(u32, u32),
}

struct Net(Radio, u64);

impl Handler for Net {
    type Event = Ev;
    fn handle(&mut self, e: Ev, cx: &mut Context<'_, Ev>) {
        let now = cx.now();
        let (ev, out) = match e {
            Ev::Radio(r) => self.0.handle(now, r),
            Ev::Send(src, dst) => self.0.send(
                now,
                MacFrame {
                    src,
                    dst,
                    payload_octets: 20,
                    tag: 0,
                    attempts: 0,
                    urgent: false,
                },
            ),
        };
        self.1 += out.len() as u64;
        for (t, e) in ev {
            cx.schedule_at(t, Ev::Radio(e)).expect("future");
        }
    }
}

/// One simulated second of one frame per node; returns the outputs.
fn second_of_traffic(radio: Radio, side: usize) -> u64 {
    let mut sim = Simulation::new();
    let mut rng = gridtwin::kernel::rng::stream(1, "bench", 0, "traffic");
    for i in 0..(side * side) as u32 {
        let dst = if (i as usize) % side + 1 < side {
            i + 1
        } else {
            i - 1
        };
        let at = rng.random_range(0..1_000_000_000u64);
        sim.schedule_at(SimTime::from_nanos(at), Ev::Send(i, dst))
            .expect("future");
    }
    let mut net = Net(radio, 0);
    sim.run(
        &mut net,
        RunLimits {
            stop_at: SimTime::from_nanos(2_000_000_000),
            max_events: None,
        },
        &mut (),
    );
    net.1
}

fn mesh(c: &mut Criterion) {
    let mut g = c.benchmark_group("mesh");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let big = grid(100);
    g.bench_function("build/10000", |b| {
        b.iter(|| black_box(Radio::new(RadioConfig::default(), big.clone(), 1).len()))
    });
    for side in [32usize, 100] {
        let n = side * side;
        let pos = grid(side);
        let template = Radio::new(RadioConfig::default(), pos.clone(), 1);
        let links: usize = (0..n as u32).map(|i| template.links_of(i).len()).sum();
        eprintln!("{n} nodes: {} links per node on average", links / n);
        drop(template);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("traffic/{n}"), |b| {
            b.iter_batched(
                || Radio::new(RadioConfig::default(), pos.clone(), 1),
                |radio| black_box(second_of_traffic(radio, side)),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, mesh);
criterion_main!(benches);
