//! FLISR, fault by fault: how long the LMUs took to detect each short
//! circuit, isolate its section and restore everyone else, and whether the
//! isolation was minimal.
//!
//! Definitions (all times from the fault's inception, within
//! [`WINDOW`] of it):
//! - **Faulted section:** the LMU sections hold the buses from an LMU's bus
//!   down to the next LMUs. The faulted section is the one holding the
//!   fault bus; with no LMU above the fault, the part of the feeder between
//!   the breaker and the first LMUs.
//! - **Minimal set:** the contactors bounding it: its upstream LMU and the
//!   LMUs at its downstream ends; none for a fault above every LMU, which
//!   the breaker alone clears (it locks out).
//! - **Detect:** the first LMU that saw fault current or located the fault.
//! - **Isolate:** the moment every contactor of the minimal set is open
//!   (or, when some of them never open, the last contactor that opened).
//! - **Restore:** the moment the last customer outside the faulted section
//!   that lost supply after the inception has it back; none if one that
//!   can be restored is still off at the end of the window or the run.
//!   Customers below the faulted section can come back only through a tie;
//!   those still off then are stranded, and count in the reliability
//!   indices but not here.
//! - **Minimal:** the contactors that opened are exactly the minimal set.
//! - **Path:** the LMUs at the buses from the feeder head down to the
//!   fault bus: the ones that should see forward fault current.
//! - **Detected:** the LMUs that started on forward fault current.
//! - **Frames lost:** FLISR frames between LMUs sent in the window that
//!   never arrived.
//! - **Unsafe isolation:** contactors opened, yet the fault stayed
//!   energised: none of them lies on the path, or a breaker tripped again
//!   after its reclose (the fault fed once more, from its own feeder or
//!   through a tie).
//! - **Lockout:** a feeder-head breaker locked out in the window.
//! - **Breaker tripped:** a feeder-head breaker tripped in the window; a
//!   fault below its pickup is never isolated, the LMUs acting only in the
//!   breaker's dead time.
//! - **Spurious detection:** an LMU's start on forward fault current (a
//!   `Detected` mark) outside every short circuit's window: with no fault
//!   applied, a secure protection never starts.

use std::collections::BTreeSet;

use super::lmu::{FlisrMark, LmuHost, RadialTree};
use crate::grid::model::{
    BreakerOp, BreakerRecord, Customer, FaultEffect, GridFault, Interruption,
};
use crate::grid::network::Network;
use crate::kernel::{SimDuration, SimTime};
use crate::metrics::Summary;

/// How long after a fault its FLISR steps are attributed to it.
pub const WINDOW: SimDuration = SimDuration::from_nanos(60_000_000_000);

/// One fault's FLISR outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultOutcome {
    /// Inception.
    pub at: SimTime,
    /// The faulted bus.
    pub bus: usize,
    /// The contactors that bound its section (LMU nodes).
    pub minimal: BTreeSet<u32>,
    /// The contactors that opened.
    pub opened: BTreeSet<u32>,
    /// To detection [s].
    pub detect_s: Option<f64>,
    /// To isolation [s].
    pub isolate_s: Option<f64>,
    /// To restoration of the healthy customers [s].
    pub restore_s: Option<f64>,
    /// The LMUs on the path from the feeder head to the fault.
    pub path: BTreeSet<u32>,
    /// The LMUs that started on forward fault current.
    pub detected: BTreeSet<u32>,
    /// FLISR frames between LMUs that never arrived.
    pub frames_lost: u64,
    /// Contactors opened, and the fault stayed energised.
    pub unsafe_isolation: bool,
    /// A feeder-head breaker locked out.
    pub lockout: bool,
    /// A feeder-head breaker tripped: the fault current reached its
    /// pickup. FLISR acts in the breaker's dead time, so a fault below
    /// every breaker's pickup is left to itself.
    pub tripped: bool,
}

/// What the rest of the world says about a fault's window.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Every operation of the feeder-head breakers.
    pub breakers: &'a [BreakerRecord],
    /// The mesh that carried FLISR's frames, if any.
    pub mesh: Option<&'a super::mesh::MeshApp>,
}

/// Every short circuit's outcome, in inception order.
pub fn outcomes(
    net: &Network,
    faults: &[GridFault],
    host: &LmuHost,
    customers: &[Customer],
    interruptions: &[Interruption],
    end: SimTime,
    cx: &Context<'_>,
) -> Vec<FaultOutcome> {
    let tree = RadialTree::of(net);
    let n_buses = net.buses.len();
    // The LMU at each bus.
    let mut lmu_at: Vec<Option<u32>> = vec![None; n_buses];
    for n in host.first()..host.len() as u32 {
        if let Some(p) = host.place(n) {
            lmu_at[p.bus] = Some(n);
        }
    }
    let mut out: Vec<FaultOutcome> = Vec::new();
    // Faults after the end (a run that stopped early) never happened.
    for f in faults.iter().filter(|f| f.at <= end) {
        let FaultEffect::Short { bus, .. } = f.effect else {
            continue;
        };
        // The nearest LMU at or above the fault, and the section's top bus.
        let mut top = bus;
        let mut upstream = lmu_at[bus];
        while upstream.is_none() {
            match tree.parent[top] {
                Some((p, _)) if tree.parent[p].is_some() => {
                    top = p;
                    upstream = lmu_at[p];
                }
                _ => break,
            }
        }
        // The section: below `top`, stopping at other LMUs' buses.
        let mut inside = vec![false; n_buses];
        inside[top] = true;
        let mut downstream = BTreeSet::new();
        for &x in &tree.order {
            if let Some((p, _)) = tree.parent[x]
                && inside[p]
                && x != top
            {
                match lmu_at[x] {
                    Some(m) => {
                        downstream.insert(m);
                    }
                    None => inside[x] = true,
                }
            }
        }
        // Above every LMU no contactor can isolate the fault: the breaker
        // locks out, by design, and the minimal set is empty.
        let minimal = match upstream {
            Some(u) => {
                let mut m = downstream;
                m.insert(u);
                m
            }
            None => BTreeSet::new(),
        };
        let until = f.at.saturating_add(WINDOW);
        let in_window = |t: SimTime| t >= f.at && t <= until;
        let marks: Vec<_> = host
            .marks()
            .iter()
            .filter(|(t, _, _)| in_window(*t))
            .collect();
        let since = |t: SimTime| t.saturating_since(f.at).as_secs_f64();
        let detect_s = marks
            .iter()
            .find(|(_, _, m)| matches!(m, FlisrMark::Detected | FlisrMark::Located))
            .map(|(t, _, _)| since(*t));
        let mut opened = BTreeSet::new();
        let mut last_open = None;
        let mut minimal_open_at = None;
        for (t, n, m) in &marks {
            if *m == FlisrMark::Opened && opened.insert(*n) {
                last_open = Some(*t);
                if minimal_open_at.is_none() && minimal.iter().all(|x| opened.contains(x)) {
                    minimal_open_at = Some(*t);
                }
            }
        }
        let isolate_s = minimal_open_at.or(last_open).map(since);
        // Below the section's top: the section and what hangs from it.
        let mut below = vec![false; n_buses];
        below[top] = true;
        for &x in &tree.order {
            if let Some((p, _)) = tree.parent[x]
                && below[p]
            {
                below[x] = true;
            }
        }
        // Healthy customers who lost supply after the inception.
        let mut restore = Some(f.at);
        for x in interruptions {
            let bus = customers[x.customer].bus;
            if inside[bus] || !in_window(x.start) {
                continue;
            }
            restore = match (restore, x.end) {
                (Some(r), Some(e)) if e <= until && e <= end => Some(r.max(e)),
                // Stranded below the faulted section: not restorable.
                (r, _) if below[bus] => r,
                _ => None,
            };
        }
        // The LMUs from the fault bus up to the feeder head.
        let mut path = BTreeSet::new();
        let mut x = Some(bus);
        while let Some(b) = x {
            if let Some(n) = lmu_at[b] {
                path.insert(n);
            }
            x = tree.parent[b].map(|(p, _)| p);
        }
        let detected: BTreeSet<u32> = marks
            .iter()
            .filter(|(_, _, m)| *m == FlisrMark::Detected)
            .map(|(_, n, _)| *n)
            .collect();
        let ops: Vec<&BreakerRecord> = cx
            .breakers
            .iter()
            .filter(|b| in_window(b.at) && b.at <= end)
            .collect();
        let first_reclose = ops.iter().position(|b| b.op == BreakerOp::Reclose);
        let tripped_again = first_reclose.is_some_and(|k| {
            ops[k..]
                .iter()
                .any(|b| matches!(b.op, BreakerOp::Trip | BreakerOp::Lockout))
        });
        let unsafe_isolation = !opened.is_empty() && (opened.is_disjoint(&path) || tripped_again);
        out.push(FaultOutcome {
            at: f.at,
            bus,
            minimal,
            opened,
            detect_s,
            isolate_s,
            restore_s: restore.map(since),
            path,
            detected,
            frames_lost: cx
                .mesh
                .map_or(0, |m| m.peer_frames_lost(f.at, until.min(end))),
            unsafe_isolation,
            lockout: ops.iter().any(|b| b.op == BreakerOp::Lockout),
            tripped: ops
                .iter()
                .any(|b| matches!(b.op, BreakerOp::Trip | BreakerOp::Lockout)),
        });
    }
    out.sort_by_key(|o| o.at);
    out
}

/// The LMUs' starts on forward fault current outside every short
/// circuit's window (from its inception to [`WINDOW`] after it), up to
/// `end`: starts with no fault applied.
pub fn spurious_detections(faults: &[GridFault], host: &LmuHost, end: SimTime) -> u64 {
    let windows: Vec<(SimTime, SimTime)> = faults
        .iter()
        .filter(|f| matches!(f.effect, FaultEffect::Short { .. }) && f.at <= end)
        .map(|f| (f.at, f.at.saturating_add(WINDOW)))
        .collect();
    host.marks()
        .iter()
        .filter(|(t, _, m)| {
            *m == FlisrMark::Detected
                && *t <= end
                && !windows.iter().any(|&(a, b)| a <= *t && *t <= b)
        })
        .count() as u64
}

/// `flisr_marks.csv`: every FLISR step of every LMU, in time order, the
/// starts with no fault applied included.
pub fn marks_csv(host: &LmuHost, end: SimTime) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = "writing CSV to memory cannot fail";
    w.write_record(["t_s", "lmu", "mark"]).expect(io);
    for (t, n, m) in host.marks().iter().filter(|(t, _, _)| *t <= end) {
        w.write_record([
            t.as_secs_f64().to_string(),
            n.to_string(),
            m.as_str().to_string(),
        ])
        .expect(io);
    }
    w.into_inner().expect(io)
}

/// Writes the `flisr.*` metrics (`spurious` is
/// [`spurious_detections`]); returns `flisr.csv`.
pub fn finish(
    outcomes: &[FaultOutcome],
    spurious: u64,
    net: &Network,
    summary: &mut Summary,
) -> Vec<u8> {
    summary.set_u64("flisr.faults", outcomes.len() as u64);
    summary.set_u64("flisr.spurious_detections", spurious);
    let max = |f: fn(&FaultOutcome) -> Option<f64>| {
        outcomes
            .iter()
            .map(f)
            .try_fold(0.0f64, |a, x| x.map(|x| a.max(x)))
    };
    if !outcomes.is_empty() {
        // A fault never detected (isolated, restored) leaves its key null:
        // the worst case is then unbounded.
        for (k, f) in [
            (
                "flisr.detect_s_max",
                (|o| o.detect_s) as fn(&FaultOutcome) -> Option<f64>,
            ),
            ("flisr.isolate_s_max", |o| o.isolate_s),
            ("flisr.restore_s_max", |o| o.restore_s),
        ] {
            summary.set_f64(k, max(f).unwrap_or(f64::NAN));
        }
        let minimal = outcomes.iter().filter(|o| o.opened == o.minimal).count();
        summary.set_f64(
            "flisr.minimal_share",
            minimal as f64 / outcomes.len() as f64,
        );
    }
    let count = |f: fn(&FaultOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    summary.set_u64("flisr.unsafe_isolations", count(|o| o.unsafe_isolation));
    summary.set_u64("flisr.lockouts", count(|o| o.lockout));
    summary.set_u64(
        "flisr.frames_lost",
        outcomes.iter().map(|o| o.frames_lost).sum(),
    );
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = "writing CSV to memory cannot fail";
    w.write_record([
        "fault",
        "at_s",
        "bus",
        "detect_s",
        "isolate_s",
        "restore_s",
        "minimal",
        "minimal_set",
        "opened",
        "unsafe",
        "lockout",
        "breaker_tripped",
        "frames_lost",
        "path",
        "detected",
    ])
    .expect(io);
    let opt = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
    let set = |s: &BTreeSet<u32>| s.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    for (i, o) in outcomes.iter().enumerate() {
        w.write_record([
            i.to_string(),
            o.at.as_secs_f64().to_string(),
            net.buses[o.bus].name.clone(),
            opt(o.detect_s),
            opt(o.isolate_s),
            opt(o.restore_s),
            (o.opened == o.minimal).to_string(),
            set(&o.minimal),
            set(&o.opened),
            o.unsafe_isolation.to_string(),
            o.lockout.to_string(),
            o.tripped.to_string(),
            o.frames_lost.to_string(),
            set(&o.path),
            set(&o.detected),
        ])
        .expect(io);
    }
    w.into_inner().expect(io)
}
