//! Kernel benchmarks.
//!
//! `hold/<dist>/<n>`: the classic hold model for the future-event list.
//! The queue is prefilled with `n` pending events; one *hold* pops the next
//! event and schedules a new one at the popped time plus a random delay, so
//! the queue size stays `n`. Criterion reports time per hold
//! (`Throughput::Elements(1)` per iteration).
//!
//! Each group compares, on identical delay sequences and identical
//! `(time, seq)` keys:
//! * `EventQueue`: the kernel's queue with its default thresholds;
//! * `BinaryHeap`: `std::collections::BinaryHeap<Reverse<(u64, u64, u32)>>`
//!   with `(time ns, seq, payload)`, the baseline;
//! * `EventQueue-radix-only` and `EventQueue-4ary-only`: the kernel's queue
//!   pinned to one of its two structures, to show where each wins.
//!
//! Delay distributions: `exp` is exponential with a mean of 1 s, in whole
//! nanoseconds; `ties` is a uniform choice among 1 ms, 10 ms, 100 ms and 1 s,
//! so many events share a time. Delays are drawn up front into a table of
//! 2²⁰ entries read in order, so the generator's cost is not measured.
//!
//! Every structure is kept alive across criterion's iterations
//! (`iter_custom`), after a prefill and `max(n, 10⁵)` warm-up holds, so the
//! measured state is the steady state of the hold model, not a fresh build.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use gridtwin::kernel::queue::{DEFAULT_TO_HEAP, DEFAULT_TO_RADIX, EventQueue};
use gridtwin::kernel::rng::stream;
use gridtwin::kernel::{SimDuration, SimTime};
use rand::RngExt;
use rand_distr::{Distribution, Exp};

/// Queue sizes of the hold model.
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

/// Length of the pre-drawn delay table (a power of two).
const DELAY_TABLE: usize = 1 << 20;

/// Pre-drawn delays [ns] for distribution `dist`.
fn delay_table(dist: &str) -> Vec<u64> {
    let mut rng = stream(2024, "bench", 0, dist);
    match dist {
        "exp" => {
            let exp = Exp::new(1.0 / 1e9).expect("positive rate");
            (0..DELAY_TABLE)
                .map(|_| exp.sample(&mut rng) as u64)
                .collect()
        }
        "ties" => {
            let choices = [1_000_000, 10_000_000, 100_000_000, 1_000_000_000];
            (0..DELAY_TABLE)
                .map(|_| choices[rng.random_range(0..choices.len())])
                .collect()
        }
        other => panic!("unknown delay distribution {other}"),
    }
}

/// A future-event list under the hold model.
trait Fel {
    /// Schedules payload `payload` at `time` [ns].
    fn schedule(&mut self, time: u64, payload: u32);
    /// Pops the next event and schedules its payload again `delay` [ns]
    /// after it.
    fn hold(&mut self, delay: u64);
}

impl Fel for EventQueue<u32> {
    #[inline]
    fn schedule(&mut self, time: u64, payload: u32) {
        EventQueue::schedule(self, SimTime::from_nanos(time), payload).expect("not in the past");
    }

    #[inline]
    fn hold(&mut self, delay: u64) {
        let (id, payload) = self.pop().expect("the queue holds n events");
        let at = id.time() + SimDuration::from_nanos(delay);
        EventQueue::schedule(self, at, black_box(payload)).expect("not in the past");
    }
}

/// The baseline: `std`'s binary heap on the same `(time, seq)` keys.
#[derive(Default)]
struct StdHeap {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    next_seq: u64,
}

impl Fel for StdHeap {
    #[inline]
    fn schedule(&mut self, time: u64, payload: u32) {
        self.heap.push(Reverse((time, self.next_seq, payload)));
        self.next_seq += 1;
    }

    #[inline]
    fn hold(&mut self, delay: u64) {
        let Reverse((time, _seq, payload)) = self.heap.pop().expect("the queue holds n events");
        self.schedule(time + delay, black_box(payload));
    }
}

/// A queue in the hold model's steady state, with its place in the table.
struct Held<'d, Q> {
    queue: Q,
    delays: &'d [u64],
    next: usize,
}

impl<'d, Q: Fel> Held<'d, Q> {
    /// Prefills `queue` with `n` events and runs `max(n, 10⁵)` holds.
    fn new(mut queue: Q, n: usize, delays: &'d [u64]) -> Self {
        for (i, &delay) in delays.iter().cycle().take(n).enumerate() {
            queue.schedule(delay, i as u32);
        }
        let mut held = Held {
            queue,
            delays,
            next: n,
        };
        held.run(n.max(100_000) as u64);
        held
    }

    #[inline]
    fn run(&mut self, holds: u64) {
        for _ in 0..holds {
            let delay = self.delays[self.next % DELAY_TABLE];
            self.next += 1;
            self.queue.hold(delay);
        }
    }

    fn time(&mut self, holds: u64) -> Duration {
        let start = Instant::now();
        self.run(holds);
        start.elapsed()
    }
}

fn hold_group(c: &mut Criterion, dist: &str) {
    let delays = delay_table(dist);
    for n in SIZES {
        let mut group = c.benchmark_group(format!("hold/{dist}/{n}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(if n >= 100_000 { 3 } else { 2 }));

        let variants: [(&str, usize, usize); 3] = [
            ("EventQueue", DEFAULT_TO_RADIX, DEFAULT_TO_HEAP),
            ("EventQueue-radix-only", 0, 0),
            ("EventQueue-4ary-only", usize::MAX, 0),
        ];
        for (name, to_radix, to_heap) in variants {
            let mut held = Held::new(EventQueue::with_thresholds(to_radix, to_heap), n, &delays);
            group.bench_function(name, |b| b.iter_custom(|holds| held.time(holds)));
        }
        let mut held = Held::new(StdHeap::default(), n, &delays);
        group.bench_function("BinaryHeap", |b| b.iter_custom(|holds| held.time(holds)));
        group.finish();
    }
}

fn hold_exp(c: &mut Criterion) {
    hold_group(c, "exp");
}

fn hold_ties(c: &mut Criterion) {
    hold_group(c, "ties");
}

/// `run_loop/typed/1000`: the whole kernel, not just its queue. A world of
/// 1 000 entities keeps 10³ events pending; each event is one of three kinds
/// of a typed enum, dispatched statically by `match` in `Handler::handle`,
/// and schedules its successor through the `Context` with a delay from the
/// exp table. Criterion reports events per second. The baseline in the same
/// group is the bare hold model on the same queue and delays
/// (`hold-EventQueue`), so the ratio is the run loop's own overhead.
mod run_loop_world {
    use gridtwin::kernel::{Context, Handler, SimDuration};

    /// Three kinds of events, as a world routes them to different models.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Ev {
        Tick(u32),
        Frame { node: u32, bytes: u16 },
        Timer(u32),
    }

    pub(crate) struct World<'d> {
        pub(crate) delays: &'d [u64],
        pub(crate) next: usize,
        pub(crate) ticks: Vec<u32>,
        pub(crate) bytes: u64,
    }

    impl World<'_> {
        #[inline]
        fn delay(&mut self) -> SimDuration {
            let d = self.delays[self.next & (self.delays.len() - 1)];
            self.next += 1;
            SimDuration::from_nanos(d)
        }
    }

    impl Handler for World<'_> {
        type Event = Ev;

        #[inline]
        fn handle(&mut self, ev: Ev, cx: &mut Context<'_, Ev>) {
            let delay = self.delay();
            let next = match ev {
                Ev::Tick(id) => {
                    self.ticks[id as usize] += 1;
                    Ev::Frame {
                        node: id,
                        bytes: 20,
                    }
                }
                Ev::Frame { node, bytes } => {
                    self.bytes += u64::from(bytes);
                    Ev::Timer(node)
                }
                Ev::Timer(id) => Ev::Tick(id),
            };
            cx.schedule_in(delay, next).expect("within simulated time");
        }
    }
}

fn run_loop(c: &mut Criterion) {
    use gridtwin::kernel::{RunLimits, Simulation};
    use run_loop_world::{Ev, World};

    const PENDING: usize = 1_000;
    let delays = delay_table("exp");
    let mut group = c.benchmark_group(format!("run_loop/typed/{PENDING}"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));

    let mut sim = Simulation::new();
    for (i, &delay) in delays.iter().take(PENDING).enumerate() {
        sim.schedule_at(SimTime::from_nanos(delay), Ev::Tick(i as u32))
            .expect("not in the past");
    }
    let mut world = World {
        delays: &delays,
        next: PENDING,
        ticks: vec![0; PENDING],
        bytes: 0,
    };
    let budget = |sim: &mut Simulation<Ev>, world: &mut World<'_>, events: u64| {
        let stats = sim.run(
            world,
            RunLimits {
                stop_at: SimTime::MAX,
                max_events: Some(events),
            },
            &mut (),
        );
        assert_eq!(stats.events, events);
    };
    budget(&mut sim, &mut world, 100_000);
    group.bench_function("Simulation", |b| {
        b.iter_custom(|events| {
            let start = Instant::now();
            budget(&mut sim, &mut world, events);
            start.elapsed()
        })
    });
    black_box(world.bytes);

    let mut held = Held::new(EventQueue::new(), PENDING, &delays);
    group.bench_function("hold-EventQueue", |b| {
        b.iter_custom(|holds| held.time(holds))
    });
    group.finish();
}

criterion_group!(benches, hold_exp, hold_ties, run_loop);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
}

/// Criterion's latest estimate for `group/bench` [ns per element]: the
/// slope of its linear fit where it has one, else the mean.
fn estimate_ns(group: &str, bench: &str) -> Option<f64> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = root
        .join("criterion")
        .join(group.replace('/', "_"))
        .join(bench)
        .join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

/// Prints each hold-model ratio against `BinaryHeap`, with the target it must
/// meet, for the groups that ran.
fn print_ratios() {
    let targets: [(&str, usize, Option<f64>); 6] = [
        ("exp", 1_000, Some(0.9)),
        ("exp", 100_000, Some(1.7)),
        ("exp", 1_000_000, Some(5.0)),
        ("ties", 1_000, None),
        ("ties", 100_000, Some(2.5)),
        ("ties", 1_000_000, None),
    ];
    println!("\nBinaryHeap / EventQueue, ns per hold (higher ratio is better):");
    for (dist, n, target) in targets {
        let group = format!("hold/{dist}/{n}");
        let (Some(ours), Some(base)) = (
            estimate_ns(&group, "EventQueue"),
            estimate_ns(&group, "BinaryHeap"),
        ) else {
            continue;
        };
        let ratio = base / ours;
        let verdict = match target {
            Some(t) if ratio >= t => format!("target >= {t}x: met"),
            Some(t) => format!("target >= {t}x: MISSED"),
            None => String::new(),
        };
        println!("  {group:<18} {ours:>8.1} vs {base:>8.1}  {ratio:>6.2}x  {verdict}");
    }
    let group = "run_loop/typed/1000";
    if let (Some(ours), Some(bare)) = (
        estimate_ns(group, "Simulation"),
        estimate_ns(group, "hold-EventQueue"),
    ) {
        println!(
            "  {group:<18} {:.1} M events/s (target >= 8 M), {:.2}x the bare queue",
            1e3 / ours,
            ours / bare
        );
    }
}
