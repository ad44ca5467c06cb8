//! Short-circuit faults: a fault is a shunt admittance at a bus, solved with
//! the same network and solver as the power flow, so the solution gives the
//! current in every branch and each LMU sees fault current if and only if it
//! lies on the fault path.
//!
//! During a fault, loads below 0.7 pu become constant impedance, as in
//! OpenDSS, so that the solution exists however deep the voltage dip.
//!
//! Fault kinds and their admittance at the faulted bus, with fault
//! resistance R (a bolted fault uses [`BOLTED_R_OHM`]):
//! - `slg-a` (or `-b`, `-c`): the phase to ground through R;
//! - `ll-ab` (or `-bc`, `-ca`): the two phases joined through R;
//! - `llg-ab` (or `-bc`, `-ca`): the two phases each to ground through R;
//! - `3ph`: all three phases to ground through R.
//!
//! Open-conductor (series) faults break one or two phases of a line
//! ([`solve_open_conductor`]): the phases beyond the break go dead.

use num_complex::Complex64 as C;

use super::mat3::{self, M3, V3};
use super::network::{BranchKind, LoadModel, Network};
use super::powerflow::{PowerFlowError, Settings, Solution, Solver};

/// Resistance standing in for a bolted fault [Ω]: small enough that its
/// effect on LV fault currents (network impedances of milliohms) is below
/// 1e-6 relative, large enough to keep the admittance matrix well
/// conditioned in double precision.
pub const BOLTED_R_OHM: f64 = 1e-9;

/// Below this voltage [pu] loads become constant impedance during a fault.
pub const FAULT_VMIN_PU: f64 = 0.7;

/// A shunt fault type. Phases are 0 = a, 1 = b, 2 = c.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// One phase to ground.
    Slg(usize),
    /// Two phases joined.
    Ll(usize, usize),
    /// Two phases, each to ground.
    Llg(usize, usize),
    /// All three phases, each to ground.
    ThreePhase,
}

impl FaultKind {
    /// Phase a to ground.
    pub const SLG_A: FaultKind = FaultKind::Slg(0);
    /// Phases a and b joined.
    pub const LL_AB: FaultKind = FaultKind::Ll(0, 1);
    /// Phases a and b to ground.
    pub const LLG_AB: FaultKind = FaultKind::Llg(0, 1);

    /// Every form [`FaultKind::parse`] accepts.
    pub const NAMES: &[&str] = &[
        "slg-a", "slg-b", "slg-c", "ll-ab", "ll-bc", "ll-ca", "llg-ab", "llg-bc", "llg-ca", "3ph",
    ];

    /// Parses `slg-a|b|c`, `ll-ab|bc|ca`, `llg-ab|bc|ca` or `3ph`.
    pub fn parse(s: &str) -> Option<FaultKind> {
        let phase = |c: u8| match c {
            b'a' => Some(0),
            b'b' => Some(1),
            b'c' => Some(2),
            _ => None,
        };
        let pair = |p: &str| match p.as_bytes() {
            [x, y] if x != y => Some((phase(*x)?, phase(*y)?)),
            _ => None,
        };
        if s == "3ph" {
            return Some(FaultKind::ThreePhase);
        }
        if let Some(p) = s.strip_prefix("slg-") {
            return match p.as_bytes() {
                [x] => Some(FaultKind::Slg(phase(*x)?)),
                _ => None,
            };
        }
        if let Some(p) = s.strip_prefix("llg-") {
            let (x, y) = pair(p)?;
            return Some(FaultKind::Llg(x, y));
        }
        if let Some(p) = s.strip_prefix("ll-") {
            let (x, y) = pair(p)?;
            return Some(FaultKind::Ll(x, y));
        }
        None
    }

    /// The fault's admittance matrix [S] for fault resistance `r_ohm`.
    pub fn admittance(self, r_ohm: f64) -> M3 {
        let g = C::new(1.0 / r_ohm.max(BOLTED_R_OHM), 0.0);
        let mut y = mat3::ZM;
        match self {
            FaultKind::Slg(p) => y[p][p] = g,
            FaultKind::Ll(p, q) => {
                y[p][p] = g;
                y[q][q] = g;
                y[p][q] = -g;
                y[q][p] = -g;
            }
            FaultKind::Llg(p, q) => {
                y[p][p] = g;
                y[q][q] = g;
            }
            FaultKind::ThreePhase => {
                for (k, row) in y.iter_mut().enumerate() {
                    row[k] = g;
                }
            }
        }
        y
    }
}

/// A solved fault.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSolution {
    /// The network state during the fault.
    pub solution: Solution,
    /// Current from the bus into the fault, per phase [A].
    pub fault_current: V3,
    /// Current entering each branch at its from end, per phase [A].
    pub branch_currents: Vec<V3>,
}

/// Currents entering each branch at its from end [A].
pub fn branch_currents(net: &Network, v: &[V3]) -> Vec<V3> {
    super::powerflow::branch_flows(net, v)
        .into_iter()
        .map(|f| f.i_from)
        .collect()
}

/// Solves a fault of `kind` through `r_ohm` at bus index `bus`.
pub fn solve_fault(
    net: &Network,
    bus: usize,
    kind: FaultKind,
    r_ohm: f64,
) -> Result<FaultSolution, PowerFlowError> {
    let y = kind.admittance(r_ohm);
    let mut faulted = net.clone();
    for l in &mut faulted.loads {
        if let LoadModel::Pq { vmin, .. } = &mut l.model {
            *vmin = vmin.max(FAULT_VMIN_PU);
        }
    }
    let solver = Solver::with_shunts(&faulted, &[(bus, y)])?;
    let solution = solver.solve(&faulted, Settings::default(), None)?;
    let fault_current = mat3::mulv(&y, &solution.v[bus]);
    let branch_currents = branch_currents(net, &solution.v);
    Ok(FaultSolution {
        solution,
        fault_current,
        branch_currents,
    })
}

/// The network as IEC 60909 computes maximum short-circuit currents: loads
/// removed, the source EMF at `c_max`·Un/√3 (Un the source's nominal
/// line-to-line voltage), the source impedance scaled by `c_max`
/// (Z_Q = c·Un/(√3·I″kQ)), and each transformer's impedance, positive and
/// zero sequence alike, corrected by K_T = 0.95·c_max/(1 + 0.6·x_T) with
/// x_T its relative reactance. Lines are taken at their given (20 °C)
/// resistance.
pub fn iec60909_max_network(net: &Network, c_max: f64) -> Network {
    let mut n = net.clone();
    n.loads.clear();
    n.pv.clear();
    let nominal = net.buses[net.source.bus].v_base_ln;
    for e in &mut n.source.e {
        *e = C::from_polar(c_max * nominal, e.arg());
    }
    for row in &mut n.source.y {
        for y in row.iter_mut() {
            *y /= c_max;
        }
    }
    for br in &mut n.branches {
        if let BranchKind::Transformer { y, z_base, .. } = &mut br.kind {
            let x_t = (1.0 / *y).im / *z_base;
            let k_t = 0.95 * c_max / (1.0 + 0.6 * x_t);
            *y /= k_t;
        }
    }
    n
}

/// Solves an open-conductor fault: the phases of line `branch` where
/// `broken` is true are cut. Returns the state during the fault; the
/// fault current is zero.
pub fn solve_open_conductor(
    net: &Network,
    branch: usize,
    broken: [bool; 3],
) -> Result<FaultSolution, PowerFlowError> {
    let mut faulted = net.clone();
    if let Some(br) = faulted.branches.get_mut(branch) {
        for (k, b) in broken.iter().enumerate() {
            if *b {
                br.phases[k] = false;
            }
        }
    }
    let solution = Solver::new(&faulted)?.solve(&faulted, Settings::default(), None)?;
    let branch_currents = branch_currents(&faulted, &solution.v);
    Ok(FaultSolution {
        solution,
        fault_current: mat3::ZV,
        branch_currents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_kind_parses_and_others_do_not() {
        for name in FaultKind::NAMES {
            assert!(FaultKind::parse(name).is_some(), "{name}");
        }
        for bad in ["slg-d", "ll-aa", "llg-a", "3p", "slg-ab", ""] {
            assert_eq!(FaultKind::parse(bad), None, "{bad}");
        }
        assert_eq!(FaultKind::parse("ll-ca"), Some(FaultKind::Ll(2, 0)));
    }

    #[test]
    fn a_line_to_line_fault_joins_its_two_phases_only() {
        let y = FaultKind::parse("ll-bc").unwrap().admittance(1.0);
        assert_eq!(y[1][2], C::new(-1.0, 0.0));
        assert_eq!(y[0], [C::new(0.0, 0.0); 3]);
        // No current to ground: each row sums to zero.
        for row in &y {
            assert_eq!(row.iter().sum::<C>(), C::new(0.0, 0.0));
        }
    }
}
