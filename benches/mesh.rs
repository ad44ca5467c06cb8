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
use gridtwin::mesh::radio::{Radio, RadioConfig};

mod workloads;

use workloads::{second_of_traffic, town as grid};

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
