//! Radio channel benchmarks.
//!
//! - `radio/reception/20_interferers`: one 100-octet reception at a node
//!   100 m from its sender while 20 interferers on a 1.5 km ring start
//!   20-octet frames one every 150 µs: every start and end closes a
//!   constant-SINR segment at the receiver (and at the interferers that
//!   hear each other), and the frame's end turns the segments into a
//!   packet error rate (IEEE 802.15.4 Annex E) and one draw. Every radio
//!   event of the exchange is handled, in time order. The baseline in the
//!   same group is `radio/reception/0_interferers`, the same frame alone.
//!
//! The radio is built outside the measurement (`iter_batched`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

mod workloads;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("radio/reception");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(2));
    for n in [0, workloads::INTERFERERS] {
        let (stats, got) = workloads::reception_n(workloads::reception_setup(), n);
        assert!(got, "the receiver gets the frame");
        eprintln!("{n} interferers: {stats:?}");
        g.bench_function(format!("{n}_interferers"), |b| {
            b.iter_batched(
                workloads::reception_setup,
                |r| black_box(workloads::reception_n(r, n)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
