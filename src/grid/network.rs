//! The phase-frame network: buses with three nodes (a, b, c; ground is the
//! reference), branches as admittance blocks, loads, and the source.
//!
//! Built from an imported OpenDSS circuit by [`Network::from_dss`]. Every
//! quantity is in SI units: volts, amperes, siemens, watts.
//!
//! Branch models:
//! - **Line:** series impedance Z = z_per_m · length (3×3, neutral
//!   Kron-reduced in the line code), stamped as Y = Z⁻¹. Shunt capacitance
//!   is not modelled yet (the EU LV feeder has C = 0).
//! - **Transformer:** three single-phase two-winding units with the leakage
//!   impedance (%R of both windings + j·XHL) on each unit's rating, referred
//!   to the LV winding, and an ideal ratio. `Dyn` uses OpenDSS's default
//!   "lag" delta: LV phase k is driven by HV nodes k and k−1, so the LV side
//!   lags the HV side by 30°. `YNyn` connects each phase to ground on both
//!   sides. No magnetising branch or core loss (the feeder has none).
//! - **Source:** the Thevenin equivalent of `Vsource`, stamped as its Norton
//!   form: admittance Y = Z⁻¹ from the sequence impedances, and current
//!   Y·E into the source bus.
//! - **Single- and two-phase lines** map their conductors onto the bus's
//!   phase nodes (`bus.2`); the missing phases carry nothing
//!   ([`Branch::phases`], which is also how an open-conductor fault breaks
//!   one or two phases). A `switch=yes` line is 1 + j1 mΩ per phase.
//!
//! Loads are single-phase elements, wye (phase to ground) or delta (phase
//! to phase), with constant PQ, Z, I or ZIP voltage dependence
//! ([`LoadModel`]). PV systems ([`Pv`]) are current-limited inverters with
//! fixed or volt-var reactive power.

use std::collections::BTreeMap;

use num_complex::Complex64 as C;

use super::dss::{Conn, DssCircuit, LoadDef};
use super::mat3::{self, M3, V3};

/// Why a network could not be built from a circuit.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum NetworkError {
    /// A part of the circuit that the network model does not support yet.
    #[error("{element}: {reason}")]
    Unsupported {
        /// The element, e.g. `line.l1`.
        element: String,
        /// Why.
        reason: String,
    },
    /// A reference to something undefined.
    #[error("{element}: {reason}")]
    Invalid {
        /// The element.
        element: String,
        /// What is wrong.
        reason: String,
    },
}

/// A bus: three phase nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Bus {
    /// Lower-case name.
    pub name: String,
    /// Nominal line-to-neutral voltage [V].
    pub v_base_ln: f64,
    /// Coordinates, if known [m].
    pub xy: Option<(f64, f64)>,
}

/// What a branch is.
#[derive(Clone, Debug, PartialEq)]
pub enum BranchKind {
    /// A line section.
    Line {
        /// Series impedance [Ω].
        z: M3,
        /// Length [m]: the line's own, 0 for a switch without a linecode
        /// (used for distances along the feeder, not in the solve).
        length_m: f64,
    },
    /// A transformer; `from` is the HV side.
    Transformer {
        /// Series admittance of one unit, referred to the LV winding [S].
        y: C,
        /// Ratio of HV to LV winding voltage.
        n: f64,
        /// Winding connection, HV side.
        hv: Conn,
        /// Ratio of rated line-to-line voltages, HV/LV.
        ratio_ll: f64,
        /// Impedance base of one unit, referred to the LV winding [Ω]: the
        /// unit's relative impedance is (1/y)/z_base.
        z_base: f64,
        /// Three-phase rating [VA].
        s_rated_va: f64,
    },
}

/// A branch between two buses.
#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    /// Lower-case name, with its class (`line.l1`).
    pub name: String,
    /// From bus (index).
    pub from: usize,
    /// To bus (index).
    pub to: usize,
    /// Its model.
    pub kind: BranchKind,
    /// Closed (in service).
    pub closed: bool,
    /// Which phase conductors exist and are unbroken (a, b, c). A single-
    /// or two-phase line has the others `false`; an open-conductor fault
    /// clears one or two. Lines only: a transformer always has all three.
    pub phases: [bool; 3],
}

impl Branch {
    /// The admittance blocks `(Y_ff, Y_ft, Y_tf, Y_tt)` [S]: the current
    /// leaving the from-bus nodes is `Y_ff·V_f + Y_ft·V_t`.
    pub fn blocks(&self) -> (M3, M3, M3, M3) {
        match &self.kind {
            BranchKind::Line { z, .. } => {
                // `Network::from_dss` refuses singular line impedances, so
                // the zero fallback is reached only by hand-built networks,
                // where it leaves the section open.
                let y = inv_on(z, self.phases).unwrap_or(mat3::ZM);
                let neg = mat3::sub(&mat3::ZM, &y);
                (y, neg, neg, y)
            }
            BranchKind::Transformer { y, n, hv, .. } => {
                let (mut ff, mut ft, mut tt) = (mat3::ZM, mat3::ZM, mat3::ZM);
                for k in 0..3 {
                    // Incidence of the unit's HV winding on the HV nodes.
                    let mut a = [0.0; 3];
                    match hv {
                        Conn::Delta => {
                            a[k] = 1.0;
                            a[(k + 2) % 3] = -1.0;
                        }
                        Conn::Wye => a[k] = 1.0,
                    }
                    for i in 0..3 {
                        for j in 0..3 {
                            ff[i][j] += y * (a[i] * a[j]) / (n * n);
                        }
                        ft[i][k] -= y * a[i] / n;
                    }
                    tt[k][k] += y;
                }
                (ff, ft, mat3::transpose(&ft), tt)
            }
        }
    }
}

/// The inverse of `z` restricted to the phases in `mask`, zero in the rows
/// and columns of the others: the admittance of a line whose missing or
/// broken conductors carry no current.
pub fn inv_on(z: &M3, mask: [bool; 3]) -> Option<M3> {
    let mut idx = [0usize; 3];
    let mut n = 0;
    for (k, &m) in mask.iter().enumerate() {
        if m {
            idx[n] = k;
            n += 1;
        }
    }
    let mut y = mat3::ZM;
    match idx[..n] {
        [] => {}
        [i] => {
            if z[i][i].norm_sqr() == 0.0 {
                return None;
            }
            y[i][i] = 1.0 / z[i][i];
        }
        [i, j] => {
            let (a, b, c, d) = (z[i][i], z[i][j], z[j][i], z[j][j]);
            let det = a * d - b * c;
            if det.norm_sqr() == 0.0 {
                return None;
            }
            y[i][i] = d / det;
            y[i][j] = -b / det;
            y[j][i] = -c / det;
            y[j][j] = a / det;
        }
        _ => return mat3::inv(z),
    }
    Some(y)
}

/// How a load's current depends on its voltage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadModel {
    /// Constant power between `vmin` and `vmax` [pu]; constant impedance
    /// outside (OpenDSS model 1).
    Pq {
        /// Lower limit [pu].
        vmin: f64,
        /// Upper limit [pu].
        vmax: f64,
    },
    /// Constant impedance (model 2).
    Z,
    /// Constant current magnitude (model 5).
    I,
    /// ZIP (OpenDSS model 8): the nominal P and Q each split into
    /// constant-impedance, constant-current and constant-power fractions,
    /// `P(V) = P0·(zp·v² + ip·v + pp)` with `v` in pu. Below `vmin` the
    /// current and power parts turn constant impedance (as models 1 and 5
    /// do), and below `vcut` the load draws nothing.
    Zip {
        /// Fractions (Z, I, P) of the active power; they sum to 1.
        p: [f64; 3],
        /// Fractions (Z, I, P) of the reactive power; they sum to 1.
        q: [f64; 3],
        /// Constant-impedance threshold [pu].
        vmin: f64,
        /// Cut-off voltage [pu].
        vcut: f64,
    },
}

/// OpenDSS's `switch=yes` line: Z1 = Z0 = 1 + j1 mΩ.
pub const SWITCH_Z_OHM: C = C::new(1e-3, 1e-3);

/// The branch of a line: its conductors mapped onto the bus's phase nodes
/// (`bus.2` for a single-phase line on phase b), the linecode's matrix
/// (Kron-reduced, per metre) times the length, or a switch's fixed
/// impedance.
fn line_branch(
    c: &DssCircuit,
    l: &super::dss::LineDef,
    bus: &mut dyn FnMut(&str) -> usize,
) -> Result<Branch, NetworkError> {
    let element = format!("line.{}", l.name);
    let invalid = |reason: String| NetworkError::Invalid {
        element: element.clone(),
        reason,
    };
    let n = usize::from(l.phases);
    if !(1..=3).contains(&n) {
        return Err(NetworkError::Unsupported {
            element,
            reason: format!("{n} phases (1–3 are supported)"),
        });
    }
    // The phase node of each conductor, by bus1's node list (default 1,2,3).
    let mut nodes = [0usize; 3];
    for (i, slot) in nodes.iter_mut().enumerate().take(n) {
        *slot = match l.bus1.nodes.get(i).copied() {
            None => i,
            Some(k @ 1..=3) => usize::from(k - 1),
            Some(k) => return Err(invalid(format!("conductor {} on node {k}", i + 1))),
        };
    }
    if let Some(&k) = l
        .bus2
        .nodes
        .iter()
        .take(n)
        .find(|&&k| !(1..=3).contains(&k))
    {
        return Err(invalid(format!("bus2 node {k}")));
    }
    if !l.bus2.nodes.is_empty() && l.bus2.nodes.iter().take(n).ne(l.bus1.nodes.iter().take(n)) {
        return Err(NetworkError::Unsupported {
            element,
            reason: "different nodes at the two ends (phases must not cross)".into(),
        });
    }
    let mut z = mat3::ZM;
    let mut phases = [false; 3];
    let mut length_m = 0.0;
    if l.switch && l.linecode.is_none() {
        for i in 0..n {
            z[nodes[i]][nodes[i]] = SWITCH_Z_OHM;
            phases[nodes[i]] = true;
        }
    } else {
        let name = l
            .linecode
            .as_ref()
            .ok_or_else(|| NetworkError::Unsupported {
                element: element.clone(),
                reason: "a line without a linecode".into(),
            })?;
        let code = c
            .linecodes
            .get(name)
            .ok_or_else(|| invalid(format!("undefined linecode `{name}`")))?;
        if usize::from(code.nphases) != n {
            return Err(invalid(format!(
                "{n} phases on a {}-phase linecode `{name}`",
                code.nphases
            )));
        }
        let length = l
            .length_m(Some(code))
            .ok_or_else(|| invalid("neither the line nor its code gives length units".into()))?;
        length_m = length;
        let zpm = code.z_per_m(1.0);
        for i in 0..n {
            phases[nodes[i]] = true;
            for j in 0..n {
                z[nodes[i]][nodes[j]] = zpm[i * n + j] * length;
            }
        }
    }
    if inv_on(&z, phases).is_none() {
        return Err(invalid(
            "its impedance matrix is singular (zero length or zero impedance)".into(),
        ));
    }
    Ok(Branch {
        from: bus(&l.bus1.bus),
        to: bus(&l.bus2.bus),
        name: element,
        kind: BranchKind::Line { z, length_m },
        closed: l.enabled,
        phases,
    })
}

/// A single-phase load element: between one phase node and ground (wye) or
/// between two phase nodes (delta). Three-phase loads become three of
/// these.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// Lower-case name.
    pub name: String,
    /// Bus index.
    pub bus: usize,
    /// Phase (0 = a) the current is drawn from.
    pub phase: usize,
    /// The phase the current returns to (delta), or `None` for ground
    /// (wye). The load's voltage is `V[phase] − V[to_phase]`.
    pub to_phase: Option<usize>,
    /// Active power at nominal voltage [W].
    pub p_w: f64,
    /// Reactive power at nominal voltage [var].
    pub q_var: f64,
    /// Nominal voltage across the load [V].
    pub v_nom: f64,
    /// Voltage dependence.
    pub model: LoadModel,
}

impl Load {
    /// Current drawn from the node at voltage `v` [A].
    #[inline]
    pub fn current(&self, v: C) -> C {
        let s = C::new(self.p_w, self.q_var);
        let z_at = |vpu: f64| s.conj() / (vpu * self.v_nom).powi(2) * v;
        match self.model {
            LoadModel::Z => z_at(1.0),
            LoadModel::I => {
                let vm = v.norm();
                if vm == 0.0 {
                    C::new(0.0, 0.0)
                } else {
                    (s / v).conj() * (vm / self.v_nom)
                }
            }
            LoadModel::Zip { p, q, vmin, vcut } => {
                let pu = v.norm() / self.v_nom;
                if pu < vcut || pu == 0.0 {
                    return C::new(0.0, 0.0);
                }
                // Relative power of the Z, I and P parts at this voltage;
                // below vmin the I and P parts are impedances fixed at vmin.
                let k = if pu < vmin {
                    let r = pu / vmin;
                    [pu * pu, vmin * r * r, r * r]
                } else {
                    [pu * pu, pu, 1.0]
                };
                let dot = |f: [f64; 3]| f[0] * k[0] + f[1] * k[1] + f[2] * k[2];
                let s_v = C::new(self.p_w * dot(p), self.q_var * dot(q));
                (s_v / v).conj()
            }
            LoadModel::Pq { vmin, vmax } => {
                // Compare squared magnitudes: no square root per load.
                let pu2 = v.norm_sqr() / (self.v_nom * self.v_nom);
                if pu2 > vmax * vmax {
                    z_at(vmax)
                } else if pu2 < vmin * vmin {
                    z_at(vmin)
                } else {
                    (s / v).conj()
                }
            }
        }
    }
}

/// How an inverter sets its reactive power. Positive Q is injected into
/// the grid (capacitive, raising the voltage).
#[derive(Clone, Debug, PartialEq)]
pub enum QControl {
    /// Fixed reactive power, all phases together [var].
    Fixed {
        /// Reactive power [var].
        q_var: f64,
    },
    /// Volt-var droop: per phase, Q as a share of the phase's rating
    /// (`s_rated_va / phases`) from the phase's own voltage, linear between
    /// the points and flat beyond the ends (IEEE 1547-2018 §5.3.3).
    VoltVar {
        /// `(voltage [pu], Q [pu of rating])` points in increasing voltage.
        curve: Vec<(f64, f64)>,
    },
}

impl QControl {
    /// IEEE 1547-2018's default volt-var curve for category B:
    /// (0.92, +0.44), (0.98, 0), (1.02, 0), (1.08, −0.44).
    pub fn ieee1547_default() -> QControl {
        QControl::VoltVar {
            curve: vec![(0.92, 0.44), (0.98, 0.0), (1.02, 0.0), (1.08, -0.44)],
        }
    }
}

/// Interpolates a piecewise-linear curve, flat beyond its ends.
pub fn interpolate(curve: &[(f64, f64)], x: f64) -> f64 {
    match curve {
        [] => 0.0,
        [(_, y)] => *y,
        _ => {
            if x <= curve[0].0 {
                return curve[0].1;
            }
            for w in curve.windows(2) {
                let ((x0, y0), (x1, y1)) = (w[0], w[1]);
                if x <= x1 {
                    return if x1 > x0 {
                        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
                    } else {
                        y1
                    };
                }
            }
            curve[curve.len() - 1].1
        }
    }
}

/// Inverter current limit as a multiple of rated current: inverters feed
/// about 1.1–1.2 × rated current into a fault (IEEE 1547-2018 and the
/// usual grid-code figures), which is also what keeps a PV injection
/// bounded when its voltage collapses.
pub const PV_CURRENT_LIMIT_PU: f64 = 1.1;

/// Which angle an inverter's current keeps while a short circuit is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AngleReference {
    /// The current's own phasor before the fault: a grid-following
    /// inverter's current controller holds its reference while its
    /// phase-locked loop and its power and volt-var loops (tens of
    /// milliseconds to seconds) are far slower than the jump of a short
    /// circuit, so through the 0.1–0.5 s a breaker takes to clear an LV
    /// fault it keeps injecting its pre-fault current, magnitude and
    /// phase.
    #[default]
    PreFault,
    /// The terminal voltage's present angle: loops that track at once,
    /// the current `conj(S / V)` from the present voltage (up to the
    /// limit).
    Terminal,
}

/// How an inverter answers a fault at its terminals: the model of
/// gridtwin's PV during short circuits, which the grid-code work extends.
///
/// In every solve the inverter injects its power set-point `S = P + jQ`
/// per phase as the current `conj(S / V)`, with three named limits:
/// - **current limit:** the current is scaled down to at most
///   `current_limit_pu` × rated current (at a collapsed voltage it is the
///   limit, not the set-point, that decides);
/// - **angle reference:** while a short circuit is on, the current is the
///   one the [`AngleReference`] gives: by default its pre-fault phasor,
///   held;
/// - **cessation:** below `cessation_below_pu` of nominal terminal voltage
///   it injects nothing (momentary cessation, or EN 50549-1's zero-current
///   mode); 0 rides through at the current limit, which is the default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultResponse {
    /// Largest current [pu of rated current].
    pub current_limit_pu: f64,
    /// Below this terminal voltage the inverter injects nothing [pu of
    /// nominal]; 0: never.
    pub cessation_below_pu: f64,
    /// The angle its current keeps during a short circuit.
    pub angle: AngleReference,
}

impl Default for FaultResponse {
    /// 1.1 × rated current, riding through at the pre-fault angle.
    fn default() -> Self {
        FaultResponse {
            current_limit_pu: PV_CURRENT_LIMIT_PU,
            cessation_below_pu: 0.0,
            angle: AngleReference::PreFault,
        }
    }
}

/// A PV system: an inverter injecting active power shared evenly among its
/// phases (each phase to ground), with reactive power from its control and
/// the apparent power limited to the rating, active power first.
#[derive(Clone, Debug, PartialEq)]
pub struct Pv {
    /// Lower-case name.
    pub name: String,
    /// Bus index.
    pub bus: usize,
    /// Phases it feeds.
    pub phases: [bool; 3],
    /// Active power available now, all phases together [W].
    pub p_w: f64,
    /// Inverter rating, all phases together [VA].
    pub s_rated_va: f64,
    /// Nominal phase-to-ground voltage [V].
    pub v_nom: f64,
    /// Reactive power control.
    pub control: QControl,
    /// How it answers a fault.
    pub fault_response: FaultResponse,
    /// Its current per phase when the short circuits now on began [A];
    /// `None` while none is on.
    pub held_current: Option<[C; 3]>,
}

impl Pv {
    /// Number of phases it feeds.
    pub fn n_phases(&self) -> usize {
        self.phases.iter().filter(|&&p| p).count()
    }

    /// The current it injects into its phase node `k` at voltage `v` [A]:
    /// S = P + jQ per phase as `conj(S / V)`, shaped by its
    /// [`FaultResponse`]. With no active power (at night) the inverter is
    /// off and injects nothing.
    #[inline]
    pub fn injection(&self, k: usize, v: C) -> C {
        if self.p_w <= 0.0 {
            return C::new(0.0, 0.0);
        }
        let vm = v.norm();
        let fr = &self.fault_response;
        if vm == 0.0 || vm < fr.cessation_below_pu * self.v_nom {
            return C::new(0.0, 0.0);
        }
        let n = self.n_phases().max(1) as f64;
        let s_ph = self.s_rated_va / n;
        let p = self.p_w.min(self.s_rated_va) / n;
        let q_room = (s_ph * s_ph - p * p).max(0.0).sqrt();
        let q = match &self.control {
            QControl::Fixed { q_var } => q_var / n,
            QControl::VoltVar { curve } => interpolate(curve, vm / self.v_nom) * s_ph,
        }
        .clamp(-q_room, q_room);
        let mut i = (C::new(p, q) / v).conj();
        let i_max = fr.current_limit_pu * s_ph / self.v_nom;
        if i.norm() > i_max {
            i *= i_max / i.norm();
        }
        match (fr.angle, self.held_current) {
            (AngleReference::PreFault, Some(held)) => held[k.min(2)],
            _ => i,
        }
    }
}

/// The source: an ideal EMF behind a Thevenin impedance.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// Its bus.
    pub bus: usize,
    /// Open-circuit phase voltages [V].
    pub e: V3,
    /// Thevenin admittance matrix [S].
    pub y: M3,
}

/// A phase-frame network.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// Buses; index 0 is the source bus.
    pub buses: Vec<Bus>,
    /// Bus index by lower-case name.
    pub bus_index: BTreeMap<String, usize>,
    /// Branches.
    pub branches: Vec<Branch>,
    /// Loads.
    pub loads: Vec<Load>,
    /// PV systems.
    pub pv: Vec<Pv>,
    /// The source.
    pub source: Source,
}

impl Network {
    /// Builds the network of an imported circuit.
    pub fn from_dss(c: &DssCircuit) -> Result<Network, NetworkError> {
        let mut buses: Vec<Bus> = Vec::new();
        let mut bus_index: BTreeMap<String, usize> = BTreeMap::new();
        let mut bus = |name: &str, buses: &mut Vec<Bus>| -> usize {
            *bus_index.entry(name.to_string()).or_insert_with(|| {
                buses.push(Bus {
                    name: name.to_string(),
                    v_base_ln: 0.0,
                    xy: c.buscoords.get(name).copied(),
                });
                buses.len() - 1
            })
        };
        let src_bus = bus(&c.source.bus.bus, &mut buses);
        let mut branches = Vec::new();
        for t in &c.transformers {
            let element = format!("transformer.{}", t.name);
            let unsupported = |reason: String| NetworkError::Unsupported {
                element: element.clone(),
                reason,
            };
            if t.phases != 3 {
                return Err(unsupported(format!(
                    "{} phases (3 are supported)",
                    t.phases
                )));
            }
            let (hv, lv) = (&t.windings[0], &t.windings[1]);
            if lv.conn != Conn::Wye {
                return Err(unsupported(
                    "a delta LV winding (Dyn and YNyn are supported)".into(),
                ));
            }
            let v_lv_ln = lv.v_rated / 3f64.sqrt() * lv.tap;
            let v_hv_winding = match hv.conn {
                Conn::Delta => hv.v_rated,
                Conn::Wye => hv.v_rated / 3f64.sqrt(),
            } * hv.tap;
            let s_unit = hv.s_rated / 3.0;
            let z_base = v_lv_ln * v_lv_ln / s_unit;
            let z = C::new(hv.r_pct + lv.r_pct, t.xhl_pct) / 100.0 * z_base;
            let from = bus(&hv.bus.bus, &mut buses);
            let to = bus(&lv.bus.bus, &mut buses);
            branches.push(Branch {
                name: element.clone(),
                from,
                to,
                kind: BranchKind::Transformer {
                    y: 1.0 / z,
                    n: v_hv_winding / v_lv_ln,
                    hv: hv.conn,
                    ratio_ll: hv.v_rated / lv.v_rated,
                    z_base,
                    s_rated_va: hv.s_rated,
                },
                closed: true,
                phases: [true; 3],
            });
        }
        for l in &c.lines {
            branches.push(line_branch(c, l, &mut |name| bus(name, &mut buses))?);
        }
        let mut loads = Vec::new();
        for d in &c.loads {
            let b = bus(&d.bus.bus, &mut buses);
            loads.extend(split_load(d, b)?);
        }

        // Voltage bases: the source's, carried through transformers, then
        // snapped to the nearest declared base (as Calcvoltagebases does).
        let mut base_ll = vec![0.0f64; buses.len()];
        base_ll[src_bus] = c.source.base_v_ll;
        let mut changed = true;
        while changed {
            changed = false;
            for br in &branches {
                let ratio = match &br.kind {
                    BranchKind::Line { .. } => 1.0,
                    BranchKind::Transformer { ratio_ll, .. } => *ratio_ll,
                };
                let (f, t) = (br.from, br.to);
                if base_ll[f] > 0.0 && base_ll[t] == 0.0 {
                    base_ll[t] = base_ll[f] / ratio;
                    changed = true;
                } else if base_ll[t] > 0.0 && base_ll[f] == 0.0 {
                    base_ll[f] = base_ll[t] * ratio;
                    changed = true;
                }
            }
        }
        for (b, v) in buses.iter_mut().zip(&base_ll) {
            let snapped = c
                .voltage_bases_v
                .iter()
                .copied()
                .min_by(|x, y| (x - v).abs().total_cmp(&(y - v).abs()))
                .filter(|x| (x - v).abs() <= 0.1 * v)
                .unwrap_or(*v);
            b.v_base_ln = snapped / 3f64.sqrt();
        }

        let (z1, z0) = c.source.z1_z0_ohm();
        let (y1, y0) = (1.0 / z1, 1.0 / z0);
        let e_mag = c.source.pu * c.source.base_v_ll / 3f64.sqrt();
        let e = [0.0, -120.0, 120.0]
            .map(|shift: f64| C::from_polar(e_mag, (c.source.angle_deg + shift).to_radians()));
        let source = Source {
            bus: src_bus,
            e,
            y: mat3::sym((2.0 * y1 + y0) / 3.0, (y0 - y1) / 3.0),
        };
        Ok(Network {
            buses,
            bus_index,
            branches,
            loads,
            pv: Vec::new(),
            source,
        })
    }

    /// Replaces every load's power with `p_kw`/`q_kvar` by load name and
    /// makes every load constant PQ with no voltage limits: the IEEE test
    /// feeder's definition. Names not in the network are an error.
    pub fn set_constant_pq(
        &mut self,
        values: &BTreeMap<String, (f64, f64)>,
    ) -> Result<(), NetworkError> {
        let mut per_name: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &self.loads {
            *per_name.entry(l.name.as_str()).or_default() += 1;
        }
        for name in values.keys() {
            if !per_name.contains_key(name.as_str()) {
                return Err(NetworkError::Invalid {
                    element: format!("load.{name}"),
                    reason: "not in the feeder".into(),
                });
            }
        }
        let shares: Vec<f64> = self
            .loads
            .iter()
            .map(|l| 1.0 / per_name[l.name.as_str()] as f64)
            .collect();
        for (l, share) in self.loads.iter_mut().zip(shares) {
            if let Some(&(p_kw, q_kvar)) = values.get(&l.name) {
                // Split evenly when one definition became several phases.
                l.p_w = p_kw * 1e3 * share;
                l.q_var = q_kvar * 1e3 * share;
            }
            l.model = LoadModel::Pq {
                vmin: 0.0,
                vmax: f64::INFINITY,
            };
        }
        Ok(())
    }
}

/// A load definition as single-phase load elements, following OpenDSS's
/// conventions: a wye load's `kv` is line-to-line when it has two or three
/// phases and across the load when it has one; a delta load's is always
/// line-to-line. A one-phase load whose second node is another phase
/// (`bus.1.2`) sits between the two phases.
fn split_load(d: &LoadDef, bus: usize) -> Result<Vec<Load>, NetworkError> {
    let element = format!("load.{}", d.name);
    let unsupported = |reason: String| NetworkError::Unsupported {
        element: element.clone(),
        reason,
    };
    let model = match d.model {
        1 => LoadModel::Pq {
            vmin: d.vminpu,
            vmax: d.vmaxpu,
        },
        2 => LoadModel::Z,
        5 => LoadModel::I,
        8 => {
            let z = d
                .zipv
                .ok_or_else(|| unsupported("model 8 without zipv".into()))?;
            LoadModel::Zip {
                p: [z[0], z[1], z[2]],
                q: [z[3], z[4], z[5]],
                vmin: d.vminpu,
                vcut: z[6],
            }
        }
        m => return Err(unsupported(format!("load model {m}"))),
    };
    let q = d.q_nominal_var();
    let phases = usize::from(d.phases);
    // Node numbers 1–3 of the bus, defaulting to 1, 2, 3.
    let node = |i: usize| -> Result<Option<usize>, NetworkError> {
        match d.bus.nodes.get(i).copied() {
            None => Ok((i < 3).then_some(i)),
            Some(0) => Ok(None),
            Some(n @ 1..=3) => Ok(Some(usize::from(n - 1))),
            Some(n) => Err(unsupported(format!("node {n} (phases are 1–3)"))),
        }
    };
    let element = |from: usize, to: Option<usize>, share: f64, v_nom: f64| Load {
        name: d.name.clone(),
        bus,
        phase: from,
        to_phase: to,
        p_w: d.p_w * share,
        q_var: q * share,
        v_nom,
        model,
    };
    let sqrt3 = 3f64.sqrt();
    let need = |k: Option<usize>| k.ok_or_else(|| unsupported("a phase node of 0".into()));
    match (d.conn, phases) {
        (Conn::Wye, 1) => {
            let from = need(node(0)?)?;
            // The second node: ground unless another phase is named.
            let to = match d.bus.nodes.get(1) {
                None | Some(0) => None,
                Some(_) => node(1)?,
            };
            if to == Some(from) {
                return Err(unsupported("both ends on the same phase".into()));
            }
            Ok(vec![element(from, to, 1.0, d.v_rated)])
        }
        (Conn::Wye, 2 | 3) => (0..phases)
            .map(|i| {
                Ok(element(
                    need(node(i)?)?,
                    None,
                    1.0 / phases as f64,
                    d.v_rated / sqrt3,
                ))
            })
            .collect(),
        (Conn::Delta, 1) => {
            let (a, b) = (need(node(0)?)?, need(node(1)?)?);
            if a == b {
                return Err(unsupported("both ends on the same phase".into()));
            }
            Ok(vec![element(a, Some(b), 1.0, d.v_rated)])
        }
        (Conn::Delta, 3) => {
            let n: Vec<usize> = (0..3).map(|i| need(node(i)?)).collect::<Result<_, _>>()?;
            Ok((0..3)
                .map(|i| element(n[i], Some(n[(i + 1) % 3]), 1.0 / 3.0, d.v_rated))
                .collect())
        }
        (c, p) => Err(unsupported(format!("{p}-phase {c:?} loads"))),
    }
}

impl Network {
    /// A synthetic radial LV feeder for benchmarks and tests: `n` buses
    /// behind an 11/0.416 kV 800 kVA Dyn transformer, each new bus hung on
    /// a random earlier one (a random recursive tree, reproducible from
    /// `seed`), 30 m sections of the EU LV feeder's `4c_70` cable
    /// (R1 0.446, X1 0.071, R0 1.505, X0 0.083 Ω/km), and a 120 W,
    /// PF 0.95 single-phase load on every third bus, phases in turn (about
    /// 400 kW in all for 10 000 buses, half the transformer's rating).
    pub fn synthetic_radial(n: usize, seed: u64) -> Network {
        use rand::RngExt;
        let mut rng = crate::kernel::rng::stream(seed, "grid", 0, "synthetic-radial");
        let z1 = C::new(0.446, 0.071) / 1000.0 * 30.0;
        let z0 = C::new(1.505, 0.083) / 1000.0 * 30.0;
        let z_line = mat3::sym((2.0 * z1 + z0) / 3.0, (z0 - z1) / 3.0);
        let v_lv = 416.0 / 3f64.sqrt();
        let mut buses = vec![Bus {
            name: "sourcebus".into(),
            v_base_ln: 11e3 / 3f64.sqrt(),
            xy: None,
        }];
        let mut branches = Vec::new();
        let mut loads = Vec::new();
        let z_base = v_lv * v_lv / (800e3 / 3.0);
        for i in 1..=n {
            buses.push(Bus {
                name: format!("b{i}"),
                v_base_ln: v_lv,
                xy: None,
            });
            let (from, kind, name) = if i == 1 {
                (
                    0,
                    BranchKind::Transformer {
                        y: 1.0 / (C::new(0.4, 4.0) / 100.0 * z_base),
                        n: 11e3 / v_lv,
                        hv: Conn::Delta,
                        ratio_ll: 11e3 / 416.0,
                        z_base,
                        s_rated_va: 800e3,
                    },
                    "transformer.tr1".to_string(),
                )
            } else {
                (
                    rng.random_range(1..i),
                    BranchKind::Line {
                        z: z_line,
                        length_m: 30.0,
                    },
                    format!("line.l{i}"),
                )
            };
            branches.push(Branch {
                name,
                from,
                to: i,
                kind,
                closed: true,
                phases: [true; 3],
            });
            if i % 3 == 0 {
                loads.push(Load {
                    name: format!("load{i}"),
                    bus: i,
                    phase: (i / 3) % 3,
                    to_phase: None,
                    p_w: 120.0,
                    q_var: 120.0 * 0.328_684,
                    v_nom: 230.0,
                    model: LoadModel::Pq {
                        vmin: 0.0,
                        vmax: f64::INFINITY,
                    },
                });
            }
        }
        let bus_index = buses
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.clone(), i))
            .collect();
        let z1s = C::new(0.51344, 2.05374);
        let y1 = 1.0 / z1s;
        let e_mag = 1.05 * 11e3 / 3f64.sqrt();
        Network {
            buses,
            bus_index,
            branches,
            loads,
            pv: Vec::new(),
            source: Source {
                bus: 0,
                e: [0.0f64, -120.0, 120.0].map(|d| C::from_polar(e_mag, d.to_radians())),
                // A delta HV side carries no zero sequence: Y0 = Y1 is as
                // good as any value here.
                y: mat3::sym(y1, C::new(0.0, 0.0)),
            },
        }
    }
}

impl Network {
    /// Splits line `branch` at `fraction` of its length from its from end,
    /// adding a bus named `<line>@<fraction>` there (for a fault part-way
    /// along the line). Returns the new bus's index. The two sections carry
    /// `fraction` and `1 − fraction` of the line's impedance.
    pub fn split_line(&mut self, branch: usize, fraction: f64) -> Result<usize, NetworkError> {
        let br = self
            .branches
            .get(branch)
            .ok_or_else(|| NetworkError::Invalid {
                element: format!("branch #{branch}"),
                reason: "no such branch".into(),
            })?;
        let BranchKind::Line { z, length_m } = br.kind else {
            return Err(NetworkError::Invalid {
                element: br.name.clone(),
                reason: "only lines can be split".into(),
            });
        };
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(NetworkError::Invalid {
                element: br.name.clone(),
                reason: format!("split at {fraction}: must lie strictly between 0 and 1"),
            });
        }
        let scale = |m: &M3, f: f64| m.map(|row| row.map(|x| x * f));
        let (from, to) = (br.from, br.to);
        let name = format!("{}@{fraction}", br.name.trim_start_matches("line."));
        let xy = match (self.buses[from].xy, self.buses[to].xy) {
            (Some(a), Some(b)) => {
                Some((a.0 + fraction * (b.0 - a.0), a.1 + fraction * (b.1 - a.1)))
            }
            _ => None,
        };
        let mid = self.buses.len();
        self.buses.push(Bus {
            name: name.clone(),
            v_base_ln: self.buses[from].v_base_ln,
            xy,
        });
        self.bus_index.insert(name, mid);
        let closed = self.branches[branch].closed;
        let phases = self.branches[branch].phases;
        let second = Branch {
            name: format!("{}#2", self.branches[branch].name),
            from: mid,
            to,
            kind: BranchKind::Line {
                z: scale(&z, 1.0 - fraction),
                length_m: length_m * (1.0 - fraction),
            },
            closed,
            phases,
        };
        let first = &mut self.branches[branch];
        first.to = mid;
        first.kind = BranchKind::Line {
            z: scale(&z, fraction),
            length_m: length_m * fraction,
        };
        self.branches.push(second);
        Ok(mid)
    }
}
