//! Fault campaigns: short circuits drawn at random over a feeder and a day,
//! one per run, each run starting shortly before its fault.
//!
//! A draw picks, from the fault's own random stream (seed, replication):
//! - a place: a bus below a feeder-head breaker, or a point part-way along
//!   a line there (`line_share` of the draws);
//! - a time of day, uniform in `[from, to)` at millisecond resolution, or,
//!   for `near_measurement_share` of the draws, within `fault_memory`
//!   (10 s) after a whole minute, when every LMU has just measured;
//! - a kind, uniform over the ten (`slg-a` … `3ph`);
//! - a fault resistance, uniform in `[0, r_max_ohm]`.
//!
//! [`scenario`] turns a draw into a run of a base scenario: it begins at
//! the whole minute at least `warm_up` before the fault (the scenario's
//! `start`), has the drawn short circuit as its only fault, and lasts until
//! `after` past it. The warm-up must cover the LMUs' boot (within one
//! report interval) and the mesh's first DAOs; a run counts the faults
//! that struck earlier in `flisr.faults_in_warm_up`.

use std::path::Path;

use rand::RngExt;

use crate::grid::network::{BranchKind, Network};
use crate::kernel::SimDuration;
use crate::kernel::rng::stream;
use crate::scenario::Scenario;
use crate::scenario::dto::{FaultFile, ScenarioFile, ShortFile};
use crate::world::flisr::FaultOutcome;
use crate::world::lmu::RadialTree;

/// The ten kinds of short circuit.
pub const KINDS: [&str; 10] = [
    "slg-a", "slg-b", "slg-c", "ll-ab", "ll-bc", "ll-ca", "llg-ab", "llg-bc", "llg-ca", "3ph",
];

/// How faults are drawn and run.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Earliest time of day [s].
    pub from_s: f64,
    /// Latest time of day [s].
    pub to_s: f64,
    /// Largest fault resistance [Ω].
    pub r_max_ohm: f64,
    /// Share of the draws part-way along a line, in [0, 1].
    pub line_share: f64,
    /// Share of the draws within 10 s after a whole minute, in [0, 1].
    pub near_measurement_share: f64,
    /// Simulated time before the fault, at least.
    pub warm_up: SimDuration,
    /// Simulated time after the fault.
    pub after: SimDuration,
}

impl Default for Settings {
    /// 06:00 to 22:00, up to 0.5 Ω, a quarter part-way along lines, a
    /// quarter just after a measurement, 8 min of warm-up, 90 s after.
    fn default() -> Self {
        Settings {
            from_s: 6.0 * 3600.0,
            to_s: 22.0 * 3600.0,
            r_max_ohm: 0.5,
            line_share: 0.25,
            near_measurement_share: 0.25,
            warm_up: SimDuration::from_secs(480).expect("fits"),
            after: SimDuration::from_secs(90).expect("fits"),
        }
    }
}

/// Where a drawn fault lies.
#[derive(Clone, Debug, PartialEq)]
pub enum Place {
    /// At a bus.
    Bus(String),
    /// Part-way along a line (`line.<name>`), at this fraction from its
    /// from end.
    Line(String, f64),
}

/// One drawn short circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct Draw {
    /// Time of day [ms].
    pub at_ms: u64,
    /// Where.
    pub place: Place,
    /// Its kind (one of [`KINDS`]).
    pub kind: &'static str,
    /// Fault resistance [Ω], rounded to the milliohm.
    pub r_ohm: f64,
}

impl Draw {
    /// The draw as a scenario fault, its time the time of day (for a run
    /// that starts at midnight).
    pub fn describe(&self) -> String {
        let (place, fraction) = match &self.place {
            Place::Bus(b) => (format!("bus: {b:?}"), String::new()),
            Place::Line(l, f) => (format!("line: {l:?}"), format!(", fraction: {f}")),
        };
        format!(
            "Short((at: \"{}ms\", {place}{fraction}, kind: {:?}, r_ohm: {}))",
            self.at_ms, self.kind, self.r_ohm
        )
    }

    /// The fault as a scenario's `Short`, `at` from a run starting at
    /// `start`.
    pub fn short(&self, start: SimDuration) -> ShortFile {
        let at = SimDuration::from_nanos((self.at_ms * 1_000_000).saturating_sub(start.as_nanos()));
        let (bus, line, fraction) = match &self.place {
            Place::Bus(b) => (Some(b.clone()), None, None),
            Place::Line(l, f) => (None, Some(l.clone()), Some(*f)),
        };
        ShortFile {
            at,
            bus,
            line,
            fraction,
            kind: self.kind.to_string(),
            r_ohm: self.r_ohm,
            duration: None,
        }
    }
}

/// The buses and lines where faults may be drawn: everything below a
/// feeder-head branch (`heads`), that branch included.
pub fn candidates(net: &Network, heads: &[usize]) -> (Vec<String>, Vec<String>) {
    let tree = RadialTree::of(net);
    let mut below = vec![false; net.buses.len()];
    for &k in heads {
        let b = &net.branches[k];
        let far = if tree.parent[b.to].is_some_and(|(p, _)| p == b.from) {
            b.to
        } else {
            b.from
        };
        below[far] = true;
    }
    for &x in &tree.order {
        if let Some((p, _)) = tree.parent[x]
            && below[p]
        {
            below[x] = true;
        }
    }
    let buses = (0..net.buses.len())
        .filter(|&b| below[b])
        .map(|b| net.buses[b].name.clone())
        .collect();
    let lines = net
        .branches
        .iter()
        .enumerate()
        .filter(|(k, b)| {
            matches!(b.kind, BranchKind::Line { .. }) && (below[b.from] || heads.contains(k))
        })
        .map(|(_, b)| b.name.clone())
        .collect();
    (buses, lines)
}

/// Draw `replication` of a campaign seeded `seed` over these buses and
/// lines.
pub fn draw(seed: u64, replication: u64, buses: &[String], lines: &[String], s: &Settings) -> Draw {
    let mut rng = stream(seed, "campaign", replication, "fault");
    let place = if !lines.is_empty() && (buses.is_empty() || rng.random_bool(s.line_share)) {
        let l = &lines[rng.random_range(0..lines.len())];
        // Well inside the line: 5 % to 95 % of its length, to the permille.
        let f = f64::from(rng.random_range(50u32..=950)) / 1000.0;
        Place::Line(l.clone(), f)
    } else {
        Place::Bus(buses[rng.random_range(0..buses.len())].clone())
    };
    let (lo, hi) = ((s.from_s * 1e3) as u64, (s.to_s * 1e3) as u64);
    let at_ms = if rng.random_bool(s.near_measurement_share) {
        let minute = rng.random_range(lo / 60_000..hi.div_ceil(60_000).max(lo / 60_000 + 1));
        minute * 60_000 + rng.random_range(1..10_000)
    } else {
        rng.random_range(lo..hi.max(lo + 1))
    };
    let kind = KINDS[rng.random_range(0..KINDS.len())];
    let r_ohm = (rng.random_range(0.0..=s.r_max_ohm) * 1e3).round() / 1e3;
    Draw {
        at_ms,
        place,
        kind,
        r_ohm,
    }
}

/// The run of `base` for one draw: it starts at the whole minute at least
/// `warm_up` before the fault, whose short circuit is its only fault, and
/// lasts until `after` past it. Its name gets the replication's number.
pub fn scenario(base: &ScenarioFile, d: &Draw, replication: u64, s: &Settings) -> ScenarioFile {
    let at = SimDuration::from_nanos(d.at_ms * 1_000_000);
    let minute = 60_000_000_000u64;
    let start = SimDuration::from_nanos(
        at.as_nanos().saturating_sub(s.warm_up.as_nanos()) / minute * minute,
    );
    let short = d.short(start);
    let mut f = base.clone();
    f.name = Some(format!(
        "{}-{replication}",
        base.name.as_deref().unwrap_or("campaign")
    ));
    f.start = start;
    f.duration = SimDuration::from_nanos(short.at.as_nanos() + s.after.as_nanos());
    f.faults = vec![FaultFile::Short(short)];
    if f.outputs.sample_interval > f.duration {
        f.outputs.sample_interval = f.duration;
    }
    f
}

/// One fault's run: its FLISR outcome as the run computed it, and what the
/// summary adds.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The replication.
    pub replication: u64,
    /// The fault.
    pub draw: Draw,
    /// Its FLISR outcome (fields reached through `Deref`).
    pub fault: FaultOutcome,
    /// Starts outside the fault's window.
    pub spurious: u64,
    /// The fault struck before every LMU was ready.
    pub in_warm_up: bool,
}

impl std::ops::Deref for Outcome {
    type Target = FaultOutcome;

    fn deref(&self) -> &FaultOutcome {
        &self.fault
    }
}

impl Outcome {
    /// Whether exactly the minimal set opened.
    pub fn is_minimal(&self) -> bool {
        self.opened == self.minimal
    }

    /// How to run this fault alone: the draw as a scenario fault.
    pub fn reproduce(&self) -> String {
        format!("replication {}: {}", self.replication, self.draw.describe())
    }
}

/// Runs replication `replication` of a campaign over `base` (a scenario
/// file whose paths resolve against `base_dir`).
pub fn run_one(
    base: &ScenarioFile,
    base_dir: &Path,
    buses: &[String],
    lines: &[String],
    seed: u64,
    replication: u64,
    s: &Settings,
) -> Result<Outcome, String> {
    let d = draw(seed, replication, buses, lines, s);
    let file = scenario(base, &d, replication, s);
    let sc = Scenario::from_file("campaign.ron", &file, base_dir, "campaign")
        .map_err(|e| format!("{e:?}"))?;
    let out = crate::world::run(&sc, 1, &mut ())
        .map_err(|e| format!("replication {replication} ({d:?}): {e}"))?;
    let fault = out
        .flisr
        .first()
        .cloned()
        .ok_or("the run had no short circuit")?;
    let count = |k: &str| match out.summary.get(k) {
        Some(crate::metrics::Value::U64(x)) => Ok(*x),
        other => Err(format!("{k}: {other:?}")),
    };
    Ok(Outcome {
        replication,
        fault,
        spurious: count("flisr.spurious_detections")?,
        in_warm_up: count("flisr.faults_in_warm_up")? != 0,
        draw: d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_span_their_ranges() {
        let buses: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
        let lines: Vec<String> = (0..10).map(|i| format!("line.l{i}")).collect();
        let s = Settings::default();
        let a: Vec<Draw> = (0..400).map(|r| draw(7, r, &buses, &lines, &s)).collect();
        let b: Vec<Draw> = (0..400).map(|r| draw(7, r, &buses, &lines, &s)).collect();
        assert_eq!(a, b);
        assert!(
            a.iter()
                .all(|d| (21_600_000..=79_260_000).contains(&d.at_ms))
        );
        assert!(a.iter().all(|d| (0.0..=0.5).contains(&d.r_ohm)));
        for k in KINDS {
            assert!(a.iter().any(|d| d.kind == k), "{k} never drawn");
        }
        let on_lines = a
            .iter()
            .filter(|d| matches!(d.place, Place::Line(..)))
            .count();
        // 400 draws at 25 %: 100 expected; ±5 σ (σ = 8.7).
        assert!((57..=143).contains(&on_lines), "{on_lines}");
        let near = a.iter().filter(|d| d.at_ms % 60_000 < 10_000).count();
        // 25 % drawn there, plus 1/6 of the uniform rest: 125 expected.
        assert!((75..=175).contains(&near), "{near}");
    }

    #[test]
    fn a_run_starts_on_a_whole_minute_before_its_fault() {
        let d = Draw {
            at_ms: 46_922_770,
            place: Place::Bus("f1p7".into()),
            kind: "llg-ca",
            r_ohm: 0.5,
        };
        let s = Settings::default();
        let f = scenario(&ScenarioFile::default(), &d, 3, &s);
        // 46 922.77 s − 480 s = 46 442.77 s, floored to the minute.
        assert_eq!(f.start.as_nanos(), 46_440 * 1_000_000_000);
        let FaultFile::Short(sh) = &f.faults[0] else {
            panic!("{:?}", f.faults)
        };
        assert_eq!(sh.at.as_nanos(), 482_770 * 1_000_000);
        assert!(sh.at >= s.warm_up);
        assert_eq!(f.duration.as_nanos(), sh.at.as_nanos() + s.after.as_nanos());
        assert_eq!(f.name.as_deref(), Some("campaign-3"));
    }
}
