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
//! - `slg-a`: phase a to ground through R;
//! - `ll-ab`: phases a and b joined through R;
//! - `llg-ab`: phases a and b each to ground through R;
//! - `3ph`: all three phases to ground through R.

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

/// A shunt fault type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Phase a to ground.
    SlgA,
    /// Phase a to phase b.
    LlAb,
    /// Phases a and b to ground.
    LlgAb,
    /// All three phases.
    ThreePhase,
}

impl FaultKind {
    /// Parses `slg-a`, `ll-ab`, `llg-ab` or `3ph`.
    pub fn parse(s: &str) -> Option<FaultKind> {
        Some(match s {
            "slg-a" => FaultKind::SlgA,
            "ll-ab" => FaultKind::LlAb,
            "llg-ab" => FaultKind::LlgAb,
            "3ph" => FaultKind::ThreePhase,
            _ => return None,
        })
    }

    /// The fault's admittance matrix [S] for fault resistance `r_ohm`.
    pub fn admittance(self, r_ohm: f64) -> M3 {
        let g = C::new(1.0 / r_ohm.max(BOLTED_R_OHM), 0.0);
        let mut y = mat3::ZM;
        match self {
            FaultKind::SlgA => y[0][0] = g,
            FaultKind::LlAb => {
                y[0][0] = g;
                y[1][1] = g;
                y[0][1] = -g;
                y[1][0] = -g;
            }
            FaultKind::LlgAb => {
                y[0][0] = g;
                y[1][1] = g;
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
