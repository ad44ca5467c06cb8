//! Protection coverage: what a feeder's faults and its healthy days draw
//! through each measuring point, as a protection engineer computes it
//! before choosing pickups.
//!
//! - **Minimum fault currents**, under IEC 60909-0's minimum conditions:
//!   loads and PV out of service, the source EMF at `c_min`·Un/√3 with
//!   `c_min` = 0.95 (LV), and line resistances at the conductors' end
//!   temperature, 80 °C: `R = (1 + 0.004/K · 60 K)·R₂₀ = 1.24·R₂₀`. The
//!   network is linear then, so each LV board's Thévenin equivalent (phase
//!   frame, 3×3) comes from unit current injections into the factorised
//!   admittance matrix ([`thevenins`]), and a bus below it adds the
//!   series impedances of the lines on its path; each kind of fault through
//!   the stated resistance is then `I_f = (1 + Y_f·Z)⁻¹·Y_f·V_oc`. With
//!   loads out of service the current through every branch on the path
//!   from the source to the fault is the fault current, so the least that
//!   a measuring point must see is the least fault current at the far ends
//!   (the leaves) of the network below it: along a radial path the
//!   impedance only grows.
//! - **Healthy currents and their changes**, from the load and PV profiles
//!   over one day, each load's current taken at nominal voltage
//!   (`conj(S/V)`, a line-to-line load between its two phases) and each PV
//!   system's as the negative of its active power shared over its phases:
//!   per measuring point, the largest phase current, the largest change of
//!   a phase current from one profile step to the next, and the largest
//!   change of the residual `3I₀`. Load steps are what a superimposed start
//!   must stay above.

use num_complex::Complex64 as C;

use super::fault::FaultKind;
#[cfg(test)]
use super::fault::solve_fault;
use super::mat3::{self, M3, V3};
use super::model::Profile;
use super::network::{BranchKind, Network};
use super::powerflow::PowerFlowError;

/// IEC 60909-0's voltage factor for minimum short-circuit currents in LV
/// networks.
pub const C_MIN: f64 = 0.95;

/// Line resistance at the end temperature (80 °C) over that at 20 °C.
pub const R_END_TEMPERATURE: f64 = 1.24;

/// The least fault current at a bus, over the kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinFault {
    /// Least of the largest phase current, over every kind [A].
    pub phase_a: f64,
    /// The kind that gives it.
    pub phase_kind: FaultKind,
    /// Least residual current `|Iₐ + I_b + I_c|`, over the kinds to ground
    /// (`slg-*`, `llg-*`) [A].
    pub earth_a: f64,
    /// The kind that gives it.
    pub earth_kind: FaultKind,
}

/// The network under IEC 60909-0's minimum conditions (see the module
/// docs).
pub fn iec60909_min_network(net: &Network) -> Network {
    let mut n = net.clone();
    n.loads.clear();
    n.pv.clear();
    for e in &mut n.source.e {
        *e *= C_MIN;
    }
    for br in &mut n.branches {
        if let BranchKind::Line { z, .. } = &mut br.kind {
            for x in z.iter_mut().flatten() {
                x.re *= R_END_TEMPERATURE;
            }
        }
    }
    n
}

/// The ten kinds of fault, in the order of `FaultKind::parse`'s names.
fn kinds() -> [FaultKind; 10] {
    [
        "slg-a", "slg-b", "slg-c", "ll-ab", "ll-bc", "ll-ca", "llg-ab", "llg-bc", "llg-ca", "3ph",
    ]
    .map(|k| FaultKind::parse(k).expect("the ten kinds parse"))
}

/// A bus's Thévenin equivalent in the phase frame: open-circuit voltages
/// [V] and impedance matrix [Ω].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thevenin {
    /// Open-circuit phase voltages [V].
    pub v_oc: V3,
    /// Impedance matrix [Ω]; an absent phase has a very large self
    /// impedance and no mutual terms.
    pub z: M3,
    /// Which phases reach the bus.
    pub phases: [bool; 3],
}

/// Impedance standing in for an absent phase [Ω].
const ABSENT_OHM: f64 = 1e9;

/// The Thévenin equivalents of `buses` of the linear `min_net` (no loads,
/// no PV): the open-circuit voltages from one solve, and column k of each
/// impedance matrix from a unit current injected into phase k (every
/// source shorted, [`super::powerflow::Solver::response`]), all with one
/// factorisation.
pub fn thevenins(min_net: &Network, buses: &[usize]) -> Result<Vec<Thevenin>, PowerFlowError> {
    let solver = super::powerflow::Solver::new(min_net)?;
    let sol = solver.solve(min_net, super::powerflow::Settings::default(), None)?;
    let n = min_net.buses.len();
    Ok(buses
        .iter()
        .map(|&bus| {
            let mut z = mat3::ZM;
            for k in 0..3 {
                let mut unit = mat3::ZV;
                unit[k] = C::new(1.0, 0.0);
                let v = solver.response(n, &[(bus, unit)]);
                for (row, x) in z.iter_mut().zip(v[bus]) {
                    row[k] = x;
                }
            }
            Thevenin {
                v_oc: sol.v[bus],
                z,
                phases: [true; 3],
            }
        })
        .collect())
}

impl Thevenin {
    /// The equivalent one line further: `z_line` (a line's series
    /// impedance [Ω]) added, on the phases it carries.
    pub fn through(&self, z_line: &M3, phases: [bool; 3]) -> Thevenin {
        let mut t = *self;
        for (mine, &line) in t.phases.iter_mut().zip(&phases) {
            *mine &= line;
        }
        let on = t.phases;
        for (i, (row, (own, line))) in t.z.iter_mut().zip(self.z.iter().zip(z_line)).enumerate() {
            for (j, (x, (a, b))) in row.iter_mut().zip(own.iter().zip(line)).enumerate() {
                *x = if on[i] && on[j] {
                    a + b
                } else if i == j {
                    C::new(ABSENT_OHM, 0.0)
                } else {
                    C::new(0.0, 0.0)
                };
            }
        }
        t
    }

    /// The fault current of `kind` through `r_ohm` [A], per phase:
    /// `I_f = (1 + Y_f·Z)⁻¹·Y_f·V_oc`. `None` if the kind needs a phase
    /// that does not reach the bus.
    pub fn fault_current(&self, kind: FaultKind, r_ohm: f64) -> Option<V3> {
        let y = kind.admittance(r_ohm);
        let uses = |k: usize| (0..3).any(|j| y[k][j].norm() > 0.0);
        if (0..3).any(|k| uses(k) && !self.phases[k]) {
            return None;
        }
        let mut m = mat3::mul(&y, &self.z);
        for (k, row) in m.iter_mut().enumerate() {
            row[k] += 1.0;
        }
        Some(mat3::mulv(&mat3::inv(&m)?, &mat3::mulv(&y, &self.v_oc)))
    }

    /// The least fault currents here through `r_ohm`, over every kind
    /// this bus's phases allow.
    pub fn least(&self, r_ohm: f64) -> MinFault {
        let kinds = kinds();
        let mut m = MinFault {
            phase_a: f64::INFINITY,
            phase_kind: kinds[9],
            earth_a: f64::INFINITY,
            earth_kind: kinds[0],
        };
        for (k, &kind) in kinds.iter().enumerate() {
            let Some(i) = self.fault_current(kind, r_ohm) else {
                continue;
            };
            let phase = i.iter().map(|x| x.norm()).fold(0.0, f64::max);
            if phase < m.phase_a {
                (m.phase_a, m.phase_kind) = (phase, kind);
            }
            let grounded = k < 3 || (6..9).contains(&k);
            let earth = (i[0] + i[1] + i[2]).norm();
            if grounded && earth < m.earth_a {
                (m.earth_a, m.earth_kind) = (earth, kind);
            }
        }
        m
    }
}

/// A measuring point's healthy currents over a day.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Healthy {
    /// Largest phase current [A].
    pub phase_max_a: f64,
    /// Largest change of a phase current between two profile steps [A].
    pub phase_step_a: f64,
    /// Largest change of the residual current between two profile steps
    /// [A].
    pub earth_step_a: f64,
}

/// The healthy currents into the subtree of each bus of `points` over one
/// day (time of day 0 to 24 h in steps of `step_s`), loads scaled by
/// `load_profiles` and PV by `pv_profiles` × `pv_peak_w`. `parent` and
/// `order` give the radial tree (each bus's parent bus, and the buses
/// parents first).
#[allow(clippy::too_many_arguments)]
pub fn healthy_currents(
    net: &Network,
    load_profiles: &[Profile],
    pv_profiles: &[Profile],
    pv_peak_w: &[f64],
    step_s: f64,
    parent: &[Option<usize>],
    order: &[usize],
    points: &[usize],
) -> Vec<Healthy> {
    let a = |deg: f64| C::from_polar(1.0, deg.to_radians());
    let unit = [a(0.0), a(-120.0), a(120.0)];
    let steps = (86_400.0 / step_s.max(1.0)).ceil() as usize;
    let n = net.buses.len();
    let zero = [C::new(0.0, 0.0); 3];
    let mut out = vec![Healthy::default(); points.len()];
    let mut prev: Option<Vec<[C; 3]>> = None;
    let mut sub = vec![zero; n];
    // Profiles the same as the one before them (rooftop PV shares one) are
    // evaluated once per step.
    let repeats =
        |p: &[Profile]| -> Vec<bool> { (0..p.len()).map(|i| i > 0 && p[i] == p[i - 1]).collect() };
    let (load_rep, pv_rep) = (repeats(load_profiles), repeats(pv_profiles));
    for s in 0..steps {
        let t = s as f64 * step_s;
        let mut last = 0.0;
        let mut value = |p: &Profile, repeat: bool| {
            if !repeat {
                last = p.at(t);
            }
            last
        };
        // Each bus's own current drawn, per phase, then summed up the tree.
        sub.iter_mut().for_each(|x| *x = zero);
        for ((l, p), &rep) in net.loads.iter().zip(load_profiles).zip(&load_rep) {
            let m = value(p, rep);
            let sv = C::new(l.p_w * m, l.q_var * m);
            match l.to_phase {
                None => {
                    let v = unit[l.phase] * l.v_nom;
                    sub[l.bus][l.phase] += (sv / v).conj();
                }
                Some(q) => {
                    let v = (unit[l.phase] - unit[q]) * (l.v_nom / 3f64.sqrt());
                    let i = (sv / v).conj();
                    sub[l.bus][l.phase] += i;
                    sub[l.bus][q] -= i;
                }
            }
        }
        for (((g, p), &peak), &rep) in net.pv.iter().zip(pv_profiles).zip(pv_peak_w).zip(&pv_rep) {
            let ph = g.n_phases().max(1) as f64;
            let share = value(p, rep);
            for k in (0..3).filter(|&k| g.phases[k]) {
                let w = (peak * share).min(g.s_rated_va) / ph;
                sub[g.bus][k] -= (C::new(w, 0.0) / (unit[k] * g.v_nom)).conj();
            }
        }
        for &b in order.iter().rev() {
            if let Some(p) = parent[b] {
                let x = sub[b];
                for k in 0..3 {
                    sub[p][k] += x[k];
                }
            }
        }
        let now: Vec<[C; 3]> = points.iter().map(|&b| sub[b]).collect();
        for (j, i) in now.iter().enumerate() {
            let h = &mut out[j];
            for x in i {
                h.phase_max_a = h.phase_max_a.max(x.norm());
            }
            if let Some(p) = &prev {
                let d = [i[0] - p[j][0], i[1] - p[j][1], i[2] - p[j][2]];
                for x in &d {
                    h.phase_step_a = h.phase_step_a.max(x.norm());
                }
                h.earth_step_a = h.earth_step_a.max((d[0] + d[1] + d[2]).norm());
            }
        }
        prev = Some(now);
    }
    out
}

/// The least healthy change a start must stay above, whatever the
/// profiles say [A]: one appliance switching (4.6 kW at 230 V). Flat or
/// smooth profiles change nothing from step to step, yet measurements
/// differ by more than nothing (a fridge, rounding); a pickup derived from
/// zero would start on noise.
pub const MIN_HEALTHY_STEP_A: f64 = 20.0;

/// A pickup between a security floor `lo` (above healthy currents or
/// changes) and a dependability ceiling `hi` (below the least fault
/// current): their geometric mean, which leaves the same margin both ways;
/// `lo` when they cross (security first: such a section is reported as
/// uncovered).
pub fn pickup_between(lo: f64, hi: f64) -> f64 {
    if lo <= hi { (lo * hi).sqrt() } else { lo }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pickup_leaves_equal_margins_or_stays_secure() {
        assert!((pickup_between(100.0, 400.0) - 200.0).abs() < 1e-9);
        assert_eq!(pickup_between(300.0, 200.0), 300.0);
    }

    /// The Thévenin method gives the currents of the full fault solve
    /// (the network is linear without loads): within 1e-6 relative, for
    /// every kind, at a bus well down the synthetic feeder, through 0 and
    /// 0.5 Ω. Along the feeder the least current falls, and a resistance
    /// lowers it.
    #[test]
    fn thevenin_currents_match_the_full_fault_solve() {
        let net = Network::synthetic_radial(20, 7);
        let min = iec60909_min_network(&net);
        let tree = crate::world::lmu::RadialTree::of(&min);
        let last = min.buses.len() - 1;
        // Walk from the source's child down to the last bus.
        let mut path = vec![last];
        while let Some((p, _)) = tree.parent[*path.last().unwrap()] {
            path.push(p);
        }
        path.reverse();
        let top = path[1];
        let mut th = thevenins(&min, &[top]).unwrap()[0];
        let mut near = None;
        for w in path[1..].windows(2) {
            let (_, k) = tree.parent[w[1]].unwrap();
            let BranchKind::Line { z, .. } = &min.branches[k].kind else {
                panic!("a line")
            };
            th = th.through(z, min.branches[k].phases);
            near.get_or_insert(th);
        }
        for r in [0.0, 0.5] {
            for kind in kinds() {
                let want = solve_fault(&min, last, kind, r).unwrap().fault_current;
                let got = th.fault_current(kind, r).unwrap();
                for (a, b) in got.iter().zip(want) {
                    assert!(
                        (a - b).norm() <= 1e-6 * b.norm().max(1.0),
                        "{kind:?} {r}: {a} vs {b}"
                    );
                }
            }
        }
        let (far, close) = (th.least(0.0), near.unwrap().least(0.0));
        assert!(far.phase_a < close.phase_a && far.earth_a.is_finite());
        assert!(th.least(0.5).phase_a < far.phase_a);
    }
}
