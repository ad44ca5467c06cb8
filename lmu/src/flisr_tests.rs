//! FLISR in a tiny in-crate harness: random radial feeders of LMUs with
//! normally-open ties, a fault in a random section, and a lossy mesh with
//! random delays. The physics is the minimum FLISR needs, unbalanced as an
//! LV feeder with one-phase PV is: each LMU carries 20 A of load per phase
//! and its own standing export of 0 to 300 A on phase b (so as much
//! residual current), measured every 20 ms from t = 0; at 100 ms the fault
//! strikes and every LMU on the path from the source to it sees 400 A more
//! on phase a, to earth (below the 800 A total-current start, so only the
//! superimposed starts can see it), while the voltage sags everywhere and
//! the export stands; at 200 ms the feeder-head breaker trips, and the
//! feeder is dead until it recloses at 3 s.
//!
//! Properties:
//! - **safety**, always: after reclosing, the faulted section is energised
//!   neither from the breaker nor through a tie, and no two sources are
//!   paralleled;
//! - **minimality**, whenever no frame was lost: exactly the LMUs bounding
//!   the faulted section opened, and every subtree below it with a tie is
//!   restored;
//! - **economy**, always: only LMUs that saw the fault send reports, and
//!   only the upstream boundary sends verdicts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::vec::Vec as StdVec;

use proptest::prelude::*;

use crate::dsp::PhasorFrame;
use crate::frame::Keys;
use crate::node::{Config, Contactor, Input, Lmu, Outputs};
use crate::time::Instant;

const KEYS: Keys = Keys {
    mesh: [3; 32],
    gateway: [4; 32],
};

/// A feeder: LMU ids 1..=n; `parent[i]` is the LMU upstream of LMU i
/// (0 = the feeder head); ties are leaves whose contactor is normally
/// open and whose far side is another, live feeder.
#[derive(Clone, Debug)]
struct Feeder {
    parent: BTreeMap<u16, u16>,
    ties: BTreeSet<u16>,
}

impl Feeder {
    fn children(&self, i: u16) -> StdVec<u16> {
        self.parent
            .iter()
            .filter(|(_, p)| **p == i)
            .map(|(c, _)| *c)
            .collect()
    }

    /// Whether `x` lies in the subtree of `root` (itself included).
    fn below(&self, mut x: u16, root: u16) -> bool {
        loop {
            if x == root {
                return true;
            }
            match self.parent.get(&x) {
                Some(&p) if p != 0 => x = p,
                _ => return false,
            }
        }
    }

    /// The first tie of `root`'s subtree, depth first.
    fn first_tie(&self, root: u16) -> Option<u16> {
        let mut stack = std::vec![root];
        while let Some(x) = stack.pop() {
            if self.ties.contains(&x) && x != root {
                return Some(x);
            }
            let mut c = self.children(x);
            c.reverse();
            stack.extend(c);
        }
        None
    }

    fn config(&self, id: u16) -> Config {
        let mut c = Config::new(id);
        let p = self.parent[&id];
        c.upstream = (p != 0).then_some(p);
        for ch in self.children(id) {
            let _ = c.downstream.push(ch);
        }
        c.normally_open = self.ties.contains(&id);
        if !c.normally_open {
            c.restore_via = self.first_tie(id);
        }
        // A tie accepts restore requests from every LMU above it.
        if c.normally_open {
            let mut x = p;
            while x != 0 {
                let _ = c.peers.push(x);
                x = self.parent[&x];
            }
        }
        c
    }
}

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One measurement: phase voltages at `v_pu`, 20 A of load per phase
/// (lagging 20°), `export_a` flowing back on phase b, and `fault_a` more on
/// phase a lagging its voltage by 50°; all zero when `v_pu` is 0.
fn phasors(v_pu: f32, export_a: f32, fault_a: f32) -> PhasorFrame {
    use crate::math::{self, Complex32};
    let deg = |d: f32| d.to_radians();
    let angle = [0.0f32, -120.0, 120.0];
    let live = if v_pu > 0.0 { 1.0 } else { 0.0 };
    let v = angle.map(|a| math::polar(230.0 * v_pu, deg(a)));
    let mut i: [Complex32; 3] = angle.map(|a| math::polar(20.0 * live, deg(a - 20.0)));
    i[1] += math::polar(export_a * live, deg(-120.0 + 180.0));
    i[0] += math::polar(fault_a * live, deg(-50.0));
    PhasorFrame {
        v,
        i,
        frequency_hz: 50.0,
        v_harmonics: None,
        i_harmonics: None,
    }
}

struct Outcome {
    opened: BTreeSet<u16>,
    closed_ties: BTreeSet<u16>,
    dropped: u32,
    /// LMUs that sent a FLISR report or verdict (acks and retries aside).
    speakers: BTreeSet<u16>,
}

/// Runs one fault in section `fault` with frame loss `loss_pct` %.
fn run(feeder: &Feeder, fault: u16, loss_pct: u64, seed: u64) -> Outcome {
    let mut nodes: BTreeMap<u16, Lmu> = feeder
        .parent
        .keys()
        .map(|&id| (id, Lmu::new(feeder.config(id), KEYS)))
        .collect();
    let mut rng = Rng(seed | 1);
    // Each LMU's standing one-phase export [A].
    let export: BTreeMap<u16, f32> = feeder
        .parent
        .keys()
        .map(|&id| (id, rng.below(301) as f32))
        .collect();
    // In-flight frames: (arrival µs, order, dst, bytes).
    let mut flight: VecDeque<(u64, u64, u16, StdVec<u8>)> = VecDeque::new();
    let mut order = 0u64;
    let mut dropped = 0u32;
    let mut speakers = BTreeSet::new();
    let mut contactor: BTreeMap<u16, bool> =
        nodes.iter().map(|(id, n)| (*id, n.is_closed())).collect();
    let mut out = Outputs::default();
    let tick_us = 20_000u64;
    let end_us = 3_000_000u64;
    let mut t = 0u64;
    while t <= end_us {
        // Deliver every frame due by now, in arrival order.
        let mut due: StdVec<(u64, u64, u16, StdVec<u8>)> = StdVec::new();
        flight.retain(|f| {
            if f.0 <= t {
                due.push(f.clone());
                false
            } else {
                true
            }
        });
        due.sort();
        let mut inputs: StdVec<(u16, Option<StdVec<u8>>)> =
            due.into_iter().map(|f| (f.2, Some(f.3))).collect();
        // Measurements every 20 ms.
        if t.is_multiple_of(tick_us) {
            for &id in nodes.keys() {
                inputs.push((id, None));
            }
        }
        // Timers.
        for (&id, n) in &nodes {
            if n.poll_at().is_some_and(|p| p.total_micros() <= t) {
                inputs.push((id, Some(StdVec::new())));
            }
        }
        for (id, what) in inputs {
            let now = Instant::from_micros(t);
            let node = nodes.get_mut(&id).unwrap();
            out.clear();
            let measured = what.is_none();
            match what {
                None => {
                    let on = (100_000..200_000).contains(&t);
                    let sees = on && !feeder.ties.contains(&id) && feeder.below(fault, id);
                    let x = export[&id];
                    let frame = if t >= 200_000 {
                        phasors(0.0, 0.0, 0.0)
                    } else if sees {
                        phasors(0.6, x, 400.0)
                    } else if on {
                        phasors(0.6, x, 0.0)
                    } else {
                        phasors(1.0, x, 0.0)
                    };
                    node.handle(now, Input::Phasors(&frame), &mut out);
                }
                Some(bytes) if bytes.is_empty() => node.handle(now, Input::Timer, &mut out),
                Some(bytes) => node.handle(now, Input::Frame(&bytes), &mut out),
            }
            assert_eq!(out.overflowed, 0, "outputs overflowed at node {id}");
            if measured && !out.frames.is_empty() {
                // What an LMU sends on a measurement (no telemetry is due
                // in this 3 s harness) is its FLISR report.
                speakers.insert(id);
            }
            if let Some(c) = out.contactor {
                // Contactors switch only while the feeder is dead (ties
                // excepted: they close onto a dead subtree from a live one).
                assert!(
                    t >= 200_000 || feeder.ties.contains(&id),
                    "node {id} switched at {t} µs under load"
                );
                contactor.insert(id, c == Contactor::Close);
            }
            for f in out.frames.iter() {
                if rng.below(100) < loss_pct {
                    dropped += 1;
                    continue;
                }
                if nodes.contains_key(&f.dst) {
                    order += 1;
                    let delay = 2_000 + rng.below(13_000);
                    flight.push_back((t + delay, order, f.dst, f.bytes.to_vec()));
                }
            }
        }
        // Next step: the next frame, timer or measurement.
        let mut next = (t / tick_us + 1) * tick_us;
        for f in &flight {
            next = next.min(f.0);
        }
        for n in nodes.values() {
            if let Some(p) = n.poll_at() {
                next = next.min(p.total_micros().max(t + 1));
            }
        }
        t = next.max(t + 1);
    }
    Outcome {
        opened: contactor
            .iter()
            .filter(|(id, closed)| !**closed && !feeder.ties.contains(id))
            .map(|(id, _)| *id)
            .collect(),
        closed_ties: contactor
            .iter()
            .filter(|(id, closed)| **closed && feeder.ties.contains(id))
            .map(|(id, _)| *id)
            .collect(),
        dropped,
        speakers,
    }
}

/// Sections reachable from the breaker (section 0) and from each closed
/// tie's far side, through closed contactors; and whether two sources
/// meet.
fn energised(feeder: &Feeder, o: &Outcome) -> (BTreeSet<u16>, bool) {
    // Section of LMU i is `i`; the head side is 0; a tie's far side is
    // `1000 + tie`.
    let mut adj: BTreeMap<u16, StdVec<u16>> = BTreeMap::new();
    for (&i, &p) in &feeder.parent {
        let closed = if feeder.ties.contains(&i) {
            o.closed_ties.contains(&i)
        } else {
            !o.opened.contains(&i)
        };
        if closed {
            let far = if feeder.ties.contains(&i) {
                1000 + i
            } else {
                i
            };
            adj.entry(p).or_default().push(far);
            adj.entry(far).or_default().push(p);
        }
    }
    let sources: StdVec<u16> = std::iter::once(0)
        .chain(feeder.ties.iter().map(|t| 1000 + t))
        .collect();
    let mut seen: BTreeMap<u16, u16> = BTreeMap::new();
    let mut paralleled = false;
    for &s in &sources {
        if seen.contains_key(&s) {
            paralleled = true;
            continue;
        }
        let mut q = std::vec![s];
        seen.insert(s, s);
        while let Some(x) = q.pop() {
            for &y in adj.get(&x).map_or(&[][..], |v| &v[..]) {
                match seen.get(&y) {
                    Some(&src) if src != s => paralleled = true,
                    Some(_) => {}
                    None => {
                        seen.insert(y, s);
                        q.push(y);
                    }
                }
            }
        }
    }
    // Tie far sides are always live; only feeder sections count.
    let live = seen.keys().copied().filter(|&x| x < 1000).collect();
    (live, paralleled)
}

fn feeder_strategy() -> impl Strategy<Value = (Feeder, u16)> {
    (3usize..=12, any::<u64>()).prop_map(|(n, seed)| {
        let mut rng = Rng(seed | 1);
        let mut parent = BTreeMap::new();
        parent.insert(1u16, 0u16);
        for i in 2..=n as u16 {
            parent.insert(i, 1 + rng.below(u64::from(i) - 1) as u16);
        }
        // Ties on some leaves' far ends: a tie LMU hangs below a leaf.
        let mut ties = BTreeSet::new();
        let mut next = n as u16 + 1;
        let leaves: StdVec<u16> = parent
            .keys()
            .copied()
            .filter(|i| !parent.values().any(|p| p == i))
            .collect();
        for l in leaves {
            if rng.below(2) == 0 {
                parent.insert(next, l);
                ties.insert(next);
                next += 1;
            }
        }
        let feeder = Feeder { parent, ties };
        let lmus: StdVec<u16> = (1..=n as u16).collect();
        let fault = lmus[rng.below(lmus.len() as u64) as usize];
        (feeder, fault)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn flisr_isolates_the_faulted_section_and_never_energises_it(
        (feeder, fault) in feeder_strategy(),
        loss_pct in 0u64..=30,
        seed in any::<u64>(),
    ) {
        let o = run(&feeder, fault, loss_pct, seed);
        let (live, paralleled) = energised(&feeder, &o);
        prop_assert!(!live.contains(&fault), "faulted section {} energised: {:?}, opened {:?}", fault, feeder, o.opened);
        prop_assert!(!paralleled, "two sources paralleled: ties {:?}", o.closed_ties);
        // Only the LMUs on the path to the fault report.
        for s in &o.speakers {
            prop_assert!(feeder.below(fault, *s) && !feeder.ties.contains(s), "LMU {} spoke", s);
        }
        // With no frame lost, exactly the bounding LMUs opened.
        if o.dropped == 0 {
            let mut minimal: BTreeSet<u16> = feeder
                .children(fault)
                .into_iter()
                .filter(|c| !feeder.ties.contains(c))
                .collect();
            minimal.insert(fault);
            prop_assert_eq!(&o.opened, &minimal);
            // Every subtree below the fault that has a tie is back.
            for c in feeder.children(fault) {
                if !feeder.ties.contains(&c) && feeder.first_tie(c).is_some() {
                    prop_assert!(live.contains(&c), "subtree of {} not restored", c);
                }
            }
        }
    }
}

#[test]
fn with_no_loss_a_mid_feeder_fault_opens_exactly_its_bounds() {
    // 1 ─ 2 ─ 3 ─ 5(tie)
    //      └─ 4
    let mut parent = BTreeMap::new();
    for (c, p) in [(1u16, 0u16), (2, 1), (3, 2), (4, 2), (5, 3)] {
        parent.insert(c, p);
    }
    let feeder = Feeder {
        parent,
        ties: BTreeSet::from([5]),
    };
    let o = run(&feeder, 2, 0, 1);
    assert_eq!(o.opened, BTreeSet::from([2, 3, 4]));
    assert_eq!(o.closed_ties, BTreeSet::from([5]));
    let (live, paralleled) = energised(&feeder, &o);
    assert_eq!(live, BTreeSet::from([0, 1, 3]));
    assert!(!paralleled);
}

#[test]
fn with_every_frame_lost_the_fault_is_still_bounded_from_upstream() {
    let mut parent = BTreeMap::new();
    for (c, p) in [(1u16, 0u16), (2, 1), (3, 2), (4, 3)] {
        parent.insert(c, p);
    }
    let feeder = Feeder {
        parent,
        ties: BTreeSet::new(),
    };
    let o = run(&feeder, 2, 100, 7);
    // 1 and 2 saw the fault and heard nothing from below: both open (1's
    // opening is the larger outage a lost report costs). 3 and 4 saw
    // nothing and got no verdict: they stay closed, and their sections
    // stay dead behind the faulted one. Section 2 is bounded.
    assert_eq!(o.opened, BTreeSet::from([1, 2]));
    let (live, _) = energised(&feeder, &o);
    assert!(!live.contains(&2));
}

/// The LMUs on the path to a fault make progress on every timer, whatever
/// messages are lost: each `poll_at` after a timer lies later than it, and
/// the round ends. Here LMUs 1 → 2 → 3 in a chain all see a fault below 3,
/// and every frame LMU 1 sends is lost (its acks among them, so 2 retries
/// its report until it gives up): 3 opens as the boundary, 2 and 1 stay
/// closed, and every LMU stops asking for timers. (A mismatch between
/// `poll_at` and the timer's own conditions once made an LMU that saw the
/// fault but had no verdict ask for the same instant forever.)
#[test]
fn every_timer_makes_progress() {
    let cfg = |id: u16, up: Option<u16>, down: &[u16]| {
        let mut c = Config::new(id);
        c.upstream = up;
        for &d in down {
            let _ = c.downstream.push(d);
        }
        c
    };
    let mut lmus = [
        Lmu::new(cfg(1, None, &[2]), KEYS),
        Lmu::new(cfg(2, Some(1), &[3]), KEYS),
        Lmu::new(cfg(3, Some(2), &[]), KEYS),
    ];
    let ms = |x: u64| Instant::from_micros(x * 1000);
    let mut out = Outputs::default();
    type Flight = StdVec<(Instant, usize, StdVec<u8>)>;
    // Frames in flight: (deliver at, to index, bytes); 5 ms a hop; LMU 1's
    // are lost.
    let mut feed =
        |lmus: &mut [Lmu; 3], k: usize, t: Instant, input: Input<'_>, flight: &mut Flight| {
            out.clear();
            lmus[k].handle(t, input, &mut out);
            for f in out.frames.iter().filter(|_| k != 0) {
                if let Some(to) = [1u16, 2, 3].iter().position(|&id| id == f.dst) {
                    flight.push((
                        t + crate::time::Duration::from_millis(5),
                        to,
                        f.bytes.to_vec(),
                    ));
                }
            }
        };
    let mut flight: Flight = StdVec::new();
    for k in 0..3 {
        feed(
            &mut lmus,
            k,
            ms(0),
            Input::Phasors(&phasors(1.0, 50.0, 0.0)),
            &mut flight,
        );
        feed(
            &mut lmus,
            k,
            ms(1000),
            Input::Phasors(&phasors(0.3, 50.0, 2000.0)),
            &mut flight,
        );
        feed(
            &mut lmus,
            k,
            ms(1100),
            Input::Phasors(&phasors(0.0, 0.0, 0.0)),
            &mut flight,
        );
    }
    let mut steps = 0;
    loop {
        // The next thing to happen: a frame or a timer.
        flight.sort_by_key(|f| f.0);
        let timer = (0..3)
            .filter_map(|k| lmus[k].poll_at().map(|t| (t, k)))
            .min();
        let frame = flight.first().map(|f| f.0);
        match (timer, frame) {
            (_, Some(tf)) if timer.is_none_or(|(t, _)| tf <= t) => {
                let (t, k, bytes) = flight.remove(0);
                feed(&mut lmus, k, t, Input::Frame(&bytes), &mut flight);
            }
            (Some((t, k)), _) if t <= ms(10_000) => {
                feed(&mut lmus, k, t, Input::Timer, &mut flight);
                let next = lmus[k].poll_at();
                assert!(
                    next.is_none_or(|n| n > t),
                    "LMU {}: a timer at {t:?} asks for {next:?}",
                    k + 1
                );
            }
            _ => break,
        }
        steps += 1;
        assert!(steps < 10_000, "no end");
    }
    // 3 bounds the fault; 2 stays closed.
    assert!(!lmus[2].is_closed() && lmus[1].is_closed());
}
