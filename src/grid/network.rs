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
}

impl Branch {
    /// The admittance blocks `(Y_ff, Y_ft, Y_tf, Y_tt)` [S]: the current
    /// leaving the from-bus nodes is `Y_ff·V_f + Y_ft·V_t`.
    pub fn blocks(&self) -> (M3, M3, M3, M3) {
        match &self.kind {
            BranchKind::Line { z } => {
                // `Network::from_dss` refuses singular line impedances, so
                // the zero fallback is reached only by hand-built networks,
                // where it leaves the section open.
                let y = mat3::inv(z).unwrap_or(mat3::ZM);
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
}

/// A single-phase wye load between one node and ground. Three-phase wye
/// loads become three of these.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// Lower-case name.
    pub name: String,
    /// Bus index.
    pub bus: usize,
    /// Phase (0 = a).
    pub phase: usize,
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
                },
                closed: true,
            });
        }
        for l in &c.lines {
            let element = format!("line.{}", l.name);
            let code = match &l.linecode {
                Some(name) => c.linecodes.get(name).ok_or_else(|| NetworkError::Invalid {
                    element: element.clone(),
                    reason: format!("undefined linecode `{name}`"),
                })?,
                None => {
                    return Err(NetworkError::Unsupported {
                        element,
                        reason: "a line without a linecode".into(),
                    });
                }
            };
            if l.phases != 3 || code.nphases != 3 {
                return Err(NetworkError::Unsupported {
                    element,
                    reason: "single- and two-phase lines are not supported yet".into(),
                });
            }
            let length = l
                .length_m(Some(code))
                .ok_or_else(|| NetworkError::Invalid {
                    element: element.clone(),
                    reason: "neither the line nor its code gives length units".into(),
                })?;
            let zpm = code.z_per_m(1.0);
            let mut z = mat3::ZM;
            for i in 0..3 {
                for j in 0..3 {
                    z[i][j] = zpm[i * 3 + j] * length;
                }
            }
            if mat3::inv(&z).is_none() {
                return Err(NetworkError::Invalid {
                    element,
                    reason: "its impedance matrix is singular (zero length or zero impedance)"
                        .into(),
                });
            }
            let from = bus(&l.bus1.bus, &mut buses);
            let to = bus(&l.bus2.bus, &mut buses);
            branches.push(Branch {
                name: element,
                from,
                to,
                kind: BranchKind::Line { z },
                closed: l.enabled,
            });
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

/// A load definition as single-phase wye loads.
fn split_load(d: &LoadDef, bus: usize) -> Result<Vec<Load>, NetworkError> {
    let element = format!("load.{}", d.name);
    if d.conn != Conn::Wye {
        return Err(NetworkError::Unsupported {
            element,
            reason: "delta-connected loads are not supported yet".into(),
        });
    }
    let model = match d.model {
        1 => LoadModel::Pq {
            vmin: d.vminpu,
            vmax: d.vmaxpu,
        },
        2 => LoadModel::Z,
        5 => LoadModel::I,
        m => {
            return Err(NetworkError::Unsupported {
                element,
                reason: format!("load model {m}"),
            });
        }
    };
    let q = d.q_nominal_var();
    match d.phases {
        1 => {
            let node = d.bus.nodes.first().copied().unwrap_or(1);
            if !(1..=3).contains(&node) || d.bus.nodes.get(1).is_some_and(|&n| n != 0) {
                return Err(NetworkError::Unsupported {
                    element,
                    reason: format!("nodes {:?} (a phase 1–3 to ground)", d.bus.nodes),
                });
            }
            Ok(vec![Load {
                name: d.name.clone(),
                bus,
                phase: usize::from(node - 1),
                p_w: d.p_w,
                q_var: q,
                v_nom: d.v_rated,
                model,
            }])
        }
        3 => Ok((0..3)
            .map(|k| Load {
                name: d.name.clone(),
                bus,
                phase: k,
                p_w: d.p_w / 3.0,
                q_var: q / 3.0,
                v_nom: d.v_rated / 3f64.sqrt(),
                model,
            })
            .collect()),
        p => Err(NetworkError::Unsupported {
            element,
            reason: format!("{p}-phase loads"),
        }),
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
                    },
                    "transformer.tr1".to_string(),
                )
            } else {
                (
                    rng.random_range(1..i),
                    BranchKind::Line { z: z_line },
                    format!("line.l{i}"),
                )
            };
            branches.push(Branch {
                name,
                from,
                to: i,
                kind,
                closed: true,
            });
            if i % 3 == 0 {
                loads.push(Load {
                    name: format!("load{i}"),
                    bus: i,
                    phase: (i / 3) % 3,
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
        let BranchKind::Line { z } = br.kind else {
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
        let second = Branch {
            name: format!("{}#2", self.branches[branch].name),
            from: mid,
            to,
            kind: BranchKind::Line {
                z: scale(&z, 1.0 - fraction),
            },
            closed,
        };
        let first = &mut self.branches[branch];
        first.to = mid;
        first.kind = BranchKind::Line {
            z: scale(&z, fraction),
        };
        self.branches.push(second);
        Ok(mid)
    }
}
