//! Three-phase unbalanced power flow on radial networks.
//!
//! # Method
//! Fixed-point current injection on the nodal admittance matrix, the method
//! of OpenDSS's normal solution:
//!
//! ```text
//!   Y · V(k+1) = I_source − I_load(V(k))
//! ```
//!
//! `Y` holds every branch's admittance blocks, the source's Norton
//! admittance and each load's admittance at its nominal power (as OpenDSS
//! stamps load Yprims); loads inject the difference between their current
//! and that admittance's, and PV inverters their current, both evaluated at
//! the previous iterate. Load and PV profile changes therefore never
//! refactor `Y`. Iteration stops when the largest voltage change is below
//! `tol_pu` of its bus's base voltage; otherwise the solve fails with the
//! worst bus named, never a silent result.
//!
//! # Factorisation
//! On a radial network `Y` is a tree of 3×3 blocks. Eliminating buses from
//! the leaves up (a post-order of the tree rooted at the source bus) gives a
//! block LDLᵀ factorisation with **no fill-in**: O(buses) to factor and to
//! solve. `Y` is complex symmetric (every stamp is), so only one
//! off-diagonal block per branch is kept. The factorisation depends only on
//! topology and impedances, so it is computed once and reused by every
//! iteration and every re-solve after a load change ([`Solver`]).
//!
//! # Meshes
//! Closing a normally-open tie may create a loop. This solver refuses it
//! with [`PowerFlowError::Meshed`], naming the branch that closes the loop;
//! the rule is that a feeder must be operated radially (open one switch of
//! the loop first). Buses with no closed path to the source are
//! de-energised: zero voltage, loads drawing nothing
//! ([`Solution::energized`]). Per phase, a node that no conductor joins to
//! the source (behind a single-phase lateral on another phase, or an open
//! conductor) is dead: cut out of `Y` and held at zero volts, its loads
//! drawing nothing ([`Solution::live`]). Transformer windings join nodes,
//! so an open HV phase of a Dyn transformer leaves every LV phase live.

use num_complex::Complex64 as C;

use super::mat3::{self, M3, V3, ZV};
use super::network::{Branch, BranchKind, LoadModel, Network};

/// Solver settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Convergence tolerance on the largest voltage change [pu].
    pub tol_pu: f64,
    /// Most iterations before giving up.
    pub max_iter: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tol_pu: 1e-10,
            max_iter: 100,
        }
    }
}

/// Why a power flow failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum PowerFlowError {
    /// The closed branches form a loop.
    #[error(
        "branch {branch} closes a loop: the solver needs a radial network (open a switch of the loop)"
    )]
    Meshed {
        /// The branch that closes the loop.
        branch: String,
    },
    /// A pivot block is singular (e.g. a zero-impedance branch).
    #[error("singular admittance block at bus {bus}")]
    Singular {
        /// The bus.
        bus: String,
    },
    /// No convergence within the iteration limit.
    #[error(
        "no convergence after {iterations} iterations: largest change {mismatch_pu:.3e} pu at bus {worst_bus}"
    )]
    NotConverged {
        /// Iterations run.
        iterations: usize,
        /// Largest voltage change in the last iteration [pu].
        mismatch_pu: f64,
        /// Where it was.
        worst_bus: String,
    },
}

/// A solved operating point.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// Phase-to-ground voltages per bus (index as in the network) [V].
    pub v: Vec<V3>,
    /// Iterations taken.
    pub iterations: usize,
    /// Largest voltage change in the last iteration [pu].
    pub mismatch_pu: f64,
    /// Whether each bus is energised (has a closed path to the source);
    /// de-energised buses have zero voltage and their loads draw nothing.
    pub energized: Vec<bool>,
    /// Whether each phase node is energised: a node whose conductor is
    /// missing or broken on every path to the source is dead (zero voltage,
    /// loads on it draw nothing) even on an energised bus.
    pub live: Vec<[bool; 3]>,
}

/// A block LDLᵀ factor of a radial network's admittance matrix, by
/// position in its elimination order (leaves first, root last).
#[derive(Clone, Debug, Default)]
struct Factor {
    /// Position of each position's parent (`usize::MAX` for the root).
    parent: Vec<usize>,
    /// `Y[p][b] · D_b⁻¹` for each bus `b` with parent `p`: the forward
    /// elimination multiplier.
    fwd: Vec<M3>,
    /// Inverse of each bus's eliminated diagonal block.
    dinv: Vec<M3>,
}

impl Factor {
    /// Solves `Y·x = r` in place (`r` becomes `x`), both by position.
    fn solve_in_place(&self, r: &mut [V3]) {
        for i in 0..r.len() {
            let p = self.parent[i];
            if p != usize::MAX {
                let t = mat3::mulv(&self.fwd[i], &r[i]);
                r[p] = mat3::subv(&r[p], &t);
            }
        }
        for i in (0..r.len()).rev() {
            let p = self.parent[i];
            let x = mat3::mulv(&self.dinv[i], &r[i]);
            r[i] = if p == usize::MAX {
                x
            } else {
                mat3::subv(&x, &mat3::mulv_t(&self.fwd[i], &r[p]))
            };
        }
    }

    /// The factor reduced to the positions where current is injected
    /// (`injects`, the root among them), with `Y`'s other nodes eliminated
    /// exactly; returns it and the full position of each reduced one.
    ///
    /// A node that injects nothing and has no reduced descendant is left
    /// out: its right-hand side stays zero, so it changes nothing above
    /// it. A node that injects nothing and has exactly one child chain
    /// (a point along a line, a junction whose other branches lead to
    /// nothing) is folded into that chain: with `c` its child's
    /// representative (multiplier `F_c`, pivot inverse `D_c⁻¹`) and `b`
    /// the node, the forward pass gives `r_b = −F_c·r_c`, so `c` joins
    /// `b`'s parent directly with
    ///
    /// ```text
    ///   F_c' = −F_b·F_c,    D_c'⁻¹ = D_c⁻¹ + F_cᵀ·D_b⁻¹·F_c
    /// ```
    ///
    /// (from `x_c = D_c⁻¹·r_c − F_cᵀ·x_b` and `x_b = D_b⁻¹·r_b − F_bᵀ·x_p`).
    /// The reduced factor's solution equals the full one's at every kept
    /// node, up to rounding.
    fn reduced(&self, injects: &[bool]) -> (Factor, Vec<usize>) {
        let m = self.parent.len();
        // For each position: how many kept or folded child chains report
        // to it, and the representative of the last one.
        let mut chains = vec![0u32; m];
        let mut last = vec![usize::MAX; m];
        // A kept position's effective factor entries, and its effective
        // parent (by full position).
        let mut fwd = self.fwd.clone();
        let mut dinv = self.dinv.clone();
        let mut up = self.parent.clone();
        let mut keep = vec![false; m];
        for i in 0..m {
            let p = self.parent[i];
            let rep = if injects[i] || p == usize::MAX || chains[i] > 1 {
                keep[i] = true;
                i
            } else if chains[i] == 1 {
                let c = last[i];
                let fc = fwd[c];
                let g = mat3::mul(&self.fwd[i], &fc);
                fwd[c] = mat3::sub(&mat3::ZM, &g);
                let t = mat3::mul(&mat3::transpose(&fc), &mat3::mul(&self.dinv[i], &fc));
                dinv[c] = mat3::add(&dinv[c], &t);
                up[c] = p;
                c
            } else {
                continue;
            };
            if p != usize::MAX {
                chains[p] += 1;
                last[p] = rep;
            }
        }
        let pos: Vec<usize> = (0..m).filter(|&i| keep[i]).collect();
        let mut index = vec![usize::MAX; m];
        for (r, &i) in pos.iter().enumerate() {
            index[i] = r;
        }
        let factor = Factor {
            parent: pos
                .iter()
                .map(|&i| {
                    if up[i] == usize::MAX {
                        usize::MAX
                    } else {
                        index[up[i]]
                    }
                })
                .collect(),
            fwd: pos.iter().map(|&i| fwd[i]).collect(),
            dinv: pos.iter().map(|&i| dinv[i]).collect(),
        };
        (factor, pos)
    }
}

/// A factorised network, ready to solve many times.
///
/// Every per-bus array is stored by *position* in the elimination order
/// (leaves first, source last), so both passes of a solve stream through
/// memory instead of hopping between buses. The iterations run on the
/// factor reduced to the buses with loads, PV or the source (and the
/// junctions between them; see `Factor::reduced`): on a LV feeder most
/// buses are points along a cable, which inject nothing. One pass of the
/// full factor then gives every bus's voltage.
#[derive(Clone, Debug)]
pub struct Solver {
    /// Bus index at each position.
    bus_at: Vec<usize>,
    /// Position of each bus (`usize::MAX` when de-energised).
    pos_of: Vec<usize>,
    /// The factor over every energised bus.
    full: Factor,
    /// The factor reduced to the injecting buses and their junctions.
    reduced: Factor,
    /// Full position of each reduced one.
    reduced_pos: Vec<usize>,
    /// Source Norton current into the source bus [A].
    i_source: V3,
    /// Whether each bus has a closed path to the source.
    energized: Vec<bool>,
    /// Whether each phase node has a conducting path to the source.
    live: Vec<[bool; 3]>,
    /// The admittance stamped into Y for each load (by load index) [S].
    load_y: Vec<C>,
}

impl Solver {
    /// Whether each bus has a closed path to the source.
    pub fn energized(&self) -> &[bool] {
        &self.energized
    }

    /// Whether each phase node has a conducting path to the source.
    pub fn live(&self) -> &[[bool; 3]] {
        &self.live
    }
}

/// Which load admittances go into `Y`.
///
/// A constant-impedance load (or the Z part of a ZIP load) is exactly its
/// admittance, so stamping it leaves nothing to iterate on. A constant-power
/// load's current responds to the conjugate of the voltage, which no
/// admittance can mimic: stamping it (as OpenDSS does with every load)
/// doubles the error a fixed-point step leaves, so it costs iterations (8 →
/// 10 on the EU LV feeder). It is done only when the network alone leaves a
/// node without a pivot: an LV winding behind an open HV phase is held to
/// ground by its loads and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoadStamp {
    /// Constant-impedance loads and ZIP Z parts only.
    Linear,
    /// Every load at its nominal power.
    All,
}

/// Whether a branch conducts at all: closed, with at least one conductor.
fn conducts(br: &super::network::Branch) -> bool {
    br.closed && br.phases.iter().any(|&p| p)
}

/// Union-find over phase nodes (`3·bus + phase`).
fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // The smaller root wins: the result does not depend on the order
        // of the unions.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi] = lo;
    }
}

/// Which phase nodes are electrically joined to the source, through line
/// conductors, transformer windings and the couplings of `shunts`.
/// `energized` is the bus-level answer; when every conducting branch has all
/// three conductors and no shunt couples phases, every node of an energised
/// bus is live and no search is needed.
fn live_nodes(net: &Network, shunts: &[(usize, M3)], energized: &[bool]) -> Vec<[bool; 3]> {
    let couples = |y: &M3| (0..3).any(|i| (0..3).any(|j| i != j && y[i][j].norm_sqr() > 0.0));
    let all_three = net
        .branches
        .iter()
        .all(|b| !conducts(b) || b.phases == [true; 3])
        && !shunts.iter().any(|(_, y)| couples(y));
    if all_three {
        return energized.iter().map(|&e| [e; 3]).collect();
    }
    let n = net.buses.len();
    let mut parent: Vec<usize> = (0..3 * n).collect();
    let root = net.source.bus;
    union(&mut parent, 3 * root, 3 * root + 1);
    union(&mut parent, 3 * root, 3 * root + 2);
    for br in net.branches.iter().filter(|b| conducts(b)) {
        let (f, t) = (3 * br.from, 3 * br.to);
        match &br.kind {
            BranchKind::Line { .. } => {
                for k in (0..3).filter(|&k| br.phases[k]) {
                    union(&mut parent, f + k, t + k);
                }
            }
            BranchKind::Transformer { hv, .. } => {
                for k in 0..3 {
                    union(&mut parent, f + k, t + k);
                    if *hv == super::dss::Conn::Delta {
                        union(&mut parent, f + (k + 2) % 3, t + k);
                    }
                }
            }
        }
    }
    for (b, y) in shunts {
        for (i, row) in y.iter().enumerate() {
            for (j, yij) in row.iter().enumerate() {
                if i != j && yij.norm_sqr() > 0.0 {
                    union(&mut parent, 3 * b + i, 3 * b + j);
                }
            }
        }
    }
    let src = find(&mut parent, 3 * root);
    (0..n)
        .map(|b| {
            let mut l = [false; 3];
            for (k, slot) in l.iter_mut().enumerate() {
                *slot = energized[b] && find(&mut parent, 3 * b + k) == src;
            }
            l
        })
        .collect()
}

impl Solver {
    /// Factorises `net`'s admittance matrix.
    pub fn new(net: &Network) -> Result<Solver, PowerFlowError> {
        Solver::with_shunts(net, &[])
    }

    /// Factorises `net`'s admittance matrix with extra shunt admittances
    /// `(bus, Y [S])` to ground, e.g. a fault.
    pub fn with_shunts(net: &Network, shunts: &[(usize, M3)]) -> Result<Solver, PowerFlowError> {
        match Solver::factor(net, shunts, LoadStamp::Linear) {
            Err(PowerFlowError::Singular { .. }) => Solver::factor(net, shunts, LoadStamp::All),
            other => other,
        }
    }

    fn factor(
        net: &Network,
        shunts: &[(usize, M3)],
        stamp: LoadStamp,
    ) -> Result<Solver, PowerFlowError> {
        let n = net.buses.len();
        let mut diag = vec![mat3::ZM; n];
        for (b, y) in shunts {
            diag[*b] = mat3::add(&diag[*b], y);
        }
        // Compressed adjacency over closed branches: for bus b, entries
        // start[b]..start[b+1] of `nbr` hold (neighbour, branch).
        let closed: Vec<usize> = (0..net.branches.len())
            .filter(|&k| conducts(&net.branches[k]))
            .collect();
        let mut start = vec![0usize; n + 1];
        for &k in &closed {
            let br = &net.branches[k];
            start[br.from + 1] += 1;
            start[br.to + 1] += 1;
        }
        for b in 0..n {
            start[b + 1] += start[b];
        }
        let mut fill = start.clone();
        let mut nbr = vec![(0usize, 0usize); start[n]];
        // Y[from][to] of each branch, by branch index; Y[to][from] is its
        // transpose (every stamp is complex symmetric).
        let mut y_from_to = vec![mat3::ZM; net.branches.len()];
        for &k in &closed {
            let br = &net.branches[k];
            let (ff, ft, _, tt) = br.blocks();
            diag[br.from] = mat3::add(&diag[br.from], &ff);
            diag[br.to] = mat3::add(&diag[br.to], &tt);
            y_from_to[k] = ft;
            nbr[fill[br.from]] = (br.to, k);
            fill[br.from] += 1;
            nbr[fill[br.to]] = (br.from, k);
            fill[br.to] += 1;
        }
        let root = net.source.bus;
        diag[root] = mat3::add(&diag[root], &net.source.y);

        // Depth-first from the source: parents, and a pre-order whose
        // reverse eliminates children before parents.
        let mut parent = vec![usize::MAX; n];
        let mut via = vec![usize::MAX; n];
        let mut seen = vec![false; n];
        let mut pre = Vec::with_capacity(n);
        let mut stack = vec![root];
        seen[root] = true;
        while let Some(b) = stack.pop() {
            pre.push(b);
            for &(nb, k) in &nbr[start[b]..start[b + 1]] {
                if k == via[b] {
                    continue;
                }
                if seen[nb] {
                    return Err(PowerFlowError::Meshed {
                        branch: net.branches[k].name.clone(),
                    });
                }
                seen[nb] = true;
                parent[nb] = b;
                via[nb] = k;
                stack.push(nb);
            }
        }
        // Buses that no closed path joins to the source are de-energised:
        // they stay out of the elimination order, so their voltage is zero.
        let order: Vec<usize> = pre.into_iter().rev().collect();
        let m = order.len();
        let mut pos_of = vec![usize::MAX; n];
        for (i, &b) in order.iter().enumerate() {
            pos_of[b] = i;
        }
        let live = live_nodes(net, shunts, &seen);
        // Load admittances in Y (see [`LoadStamp`]): the iteration then
        // injects only the difference between each load's current and its
        // stamped admittance's.
        let mut load_y = vec![C::new(0.0, 0.0); net.loads.len()];
        for (i, l) in net.loads.iter().enumerate() {
            let on =
                seen[l.bus] && live[l.bus][l.phase] && l.to_phase.is_none_or(|j| live[l.bus][j]);
            if !on || l.v_nom <= 0.0 {
                continue;
            }
            let share = match (stamp, l.model) {
                (LoadStamp::All, _) | (_, LoadModel::Z) => C::new(1.0, 0.0),
                (LoadStamp::Linear, LoadModel::Zip { p, q, .. }) => C::new(p[0], q[0]),
                (LoadStamp::Linear, _) => continue,
            };
            // Z fractions of P and Q scale the conductance and susceptance.
            let y = C::new(l.p_w * share.re, -l.q_var * share.im) / (l.v_nom * l.v_nom);
            load_y[i] = y;
            let d = &mut diag[l.bus];
            d[l.phase][l.phase] += y;
            if let Some(j) = l.to_phase {
                d[j][j] += y;
                d[l.phase][j] -= y;
                d[j][l.phase] -= y;
            }
        }
        // A dead phase node (no conductor joins it to the source) is cut out
        // of Y: its row and column are cleared and a unit pivot pins it to
        // zero volts. Voltages induced on a cut-off conductor by its live
        // neighbours are neglected.
        for &b in &order {
            for k in (0..3).filter(|&k| !live[b][k]) {
                let d = &mut diag[b];
                d[k] = [C::new(0.0, 0.0); 3];
                for row in d.iter_mut() {
                    row[k] = C::new(0.0, 0.0);
                }
                d[k][k] = C::new(1.0, 0.0);
            }
        }
        for &k in &closed {
            let br = &net.branches[k];
            for i in 0..3 {
                for j in 0..3 {
                    if !live[br.from][i] || !live[br.to][j] {
                        y_from_to[k][i][j] = C::new(0.0, 0.0);
                    }
                }
            }
        }
        // Eliminate leaves first, writing the factors by position.
        let mut dinv = Vec::with_capacity(m);
        let mut fwd = Vec::with_capacity(m);
        let mut parent_pos = Vec::with_capacity(m);
        for &b in &order {
            let inv = mat3::inv(&diag[b]).ok_or_else(|| PowerFlowError::Singular {
                bus: net.buses[b].name.clone(),
            })?;
            let p = parent[b];
            if p == usize::MAX {
                fwd.push(mat3::ZM);
                parent_pos.push(usize::MAX);
            } else {
                let k = via[b];
                // Y[b][p] and Y[p][b] = Y[b][p]ᵀ.
                let ft = &y_from_to[k];
                let (y_bp, y_pb) = if net.branches[k].to == b {
                    (mat3::transpose(ft), *ft)
                } else {
                    (*ft, mat3::transpose(ft))
                };
                // The back-substitution coupling D_b⁻¹·Y[b][p] is fᵀ: D_b
                // and so D_b⁻¹ are symmetric, and Y[b][p] = Y[p][b]ᵀ.
                let f = mat3::mul(&y_pb, &inv);
                // D_p -= Y[p][b] · D_b⁻¹ · Y[b][p].
                diag[p] = mat3::sub(&diag[p], &mat3::mul(&f, &y_bp));
                fwd.push(f);
                parent_pos.push(pos_of[p]);
            }
            dinv.push(inv);
        }
        let full = Factor {
            parent: parent_pos,
            fwd,
            dinv,
        };
        // Current is injected at the source and at every bus with a load or
        // PV (live or not: the reduction must hold for every solve).
        let mut injects = vec![false; m];
        injects[m - 1] = true;
        let buses = net.loads.iter().map(|l| l.bus);
        for b in buses.chain(net.pv.iter().map(|g| g.bus)) {
            if pos_of[b] != usize::MAX {
                injects[pos_of[b]] = true;
            }
        }
        let (reduced, reduced_pos) = full.reduced(&injects);
        Ok(Solver {
            full,
            reduced,
            reduced_pos,
            bus_at: order,
            pos_of,
            i_source: mat3::mulv(&net.source.y, &net.source.e),
            energized: seen,
            live,
            load_y,
        })
    }

    /// The power flow of `net` (whose topology, impedances, loads and PV
    /// this solver was built from), starting from `start` or from the
    /// no-load voltages.
    pub fn solve(
        &self,
        net: &Network,
        settings: Settings,
        start: Option<&[V3]>,
    ) -> Result<Solution, PowerFlowError> {
        let n = net.buses.len();
        let m = self.bus_at.len();
        // The reduced factor, unless a load or PV sits on a bus it left out
        // (added after the factorisation): then the full one.
        let mut index = vec![usize::MAX; m];
        for (r, &i) in self.reduced_pos.iter().enumerate() {
            index[i] = r;
        }
        let injecting = net.loads.iter().map(|l| l.bus);
        let covered = injecting
            .chain(net.pv.iter().map(|g| g.bus))
            .all(|b| self.pos_of[b] == usize::MAX || index[self.pos_of[b]] != usize::MAX);
        let identity: Vec<usize>;
        let (factor, at) = if covered {
            (&self.reduced, self.reduced_pos.as_slice())
        } else {
            identity = (0..m).collect();
            index = identity.clone();
            (&self.full, identity.as_slice())
        };
        let k = at.len();
        let root = k - 1;
        let no_load = || {
            let mut rhs = vec![ZV; k];
            rhs[root] = self.i_source;
            factor.solve_in_place(&mut rhs);
            rhs
        };
        let bus_of = |r: usize| self.bus_at[at[r]];
        let mut v: Vec<V3> = match start {
            Some(s) if s.len() == n => {
                let mut v: Vec<V3> = (0..k).map(|r| s[bus_of(r)]).collect();
                // Nodes that were dead in the start (re-energised since)
                // start from the no-load voltages instead of zero, where
                // constant-power loads are undefined.
                let cold = |(r, x): (usize, &V3)| {
                    (0..3).any(|p| self.live[bus_of(r)][p] && x[p].norm_sqr() == 0.0)
                };
                if v.iter().enumerate().any(cold) {
                    let nl = no_load();
                    for (r, x) in v.iter_mut().enumerate() {
                        for p in 0..3 {
                            if x[p].norm_sqr() == 0.0 {
                                x[p] = nl[r][p];
                            }
                        }
                    }
                }
                v
            }
            _ => no_load(),
        };
        // Loads and PV on live nodes, by reduced index; 1/base² per index.
        let live = |b: usize, p: usize| self.live[b][p];
        let loads: Vec<(usize, C, &super::network::Load)> = net
            .loads
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let p = self.pos_of[l.bus];
                let on = live(l.bus, l.phase) && l.to_phase.is_none_or(|j| live(l.bus, j));
                let y = self.load_y.get(i).copied().unwrap_or_default();
                (p != usize::MAX && on).then(|| (index[p], y, l))
            })
            .collect();
        let pv: Vec<(usize, usize, &super::network::Pv)> = net
            .pv
            .iter()
            .filter(|g| self.pos_of[g.bus] != usize::MAX)
            .flat_map(|g| {
                let r = index[self.pos_of[g.bus]];
                (0..3)
                    .filter(|&p| g.phases[p] && live(g.bus, p))
                    .map(move |p| (r, p, g))
            })
            .collect();
        // The right-hand side at voltages `v` (by reduced index), into
        // `rhs` through `place` (reduced index to slot).
        let inject = |v: &[V3], rhs: &mut [V3], place: &dyn Fn(usize) -> usize| {
            rhs.fill(ZV);
            rhs[place(root)] = self.i_source;
            // Each load injects minus its current, plus what its stamped
            // admittance already draws.
            for &(r, y, l) in &loads {
                let s = place(r);
                match l.to_phase {
                    None => {
                        let u = v[r][l.phase];
                        rhs[s][l.phase] -= l.current(u) - y * u;
                    }
                    Some(j) => {
                        let u = v[r][l.phase] - v[r][j];
                        let i = l.current(u) - y * u;
                        rhs[s][l.phase] -= i;
                        rhs[s][j] += i;
                    }
                }
            }
            for &(r, p, g) in &pv {
                rhs[place(r)][p] += g.injection(p, v[r][p]);
            }
        };
        let inv_base2: Vec<f64> = (0..k)
            .map(|r| {
                let base = net.buses[bus_of(r)].v_base_ln.max(1e-9);
                1.0 / (base * base)
            })
            .collect();
        let mut rhs = vec![ZV; k];
        let mut last = (f64::INFINITY, 0usize);
        for it in 1..=settings.max_iter {
            inject(&v, &mut rhs, &|r| r);
            factor.solve_in_place(&mut rhs);
            // Squared changes relative to the squared base: no square root
            // per node on this hot path.
            let mut worst = (0.0f64, 0usize);
            for r in 0..k {
                for p in 0..3 {
                    let d2 = (rhs[r][p] - v[r][p]).norm_sqr() * inv_base2[r];
                    if d2 > worst.0 {
                        worst = (d2, r);
                    }
                }
            }
            let worst = (worst.0.sqrt(), worst.1);
            std::mem::swap(&mut v, &mut rhs);
            last = worst;
            if worst.0 < settings.tol_pu {
                // Every bus from one pass of the full factor at the
                // converged injections.
                let mut full = vec![ZV; m];
                inject(&v, &mut full, &|r| at[r]);
                self.full.solve_in_place(&mut full);
                let mut by_bus = vec![ZV; n];
                for (i, &b) in self.bus_at.iter().enumerate() {
                    by_bus[b] = full[i];
                }
                return Ok(Solution {
                    v: by_bus,
                    iterations: it,
                    mismatch_pu: worst.0,
                    energized: self.energized.clone(),
                    live: self.live.clone(),
                });
            }
        }
        Err(PowerFlowError::NotConverged {
            iterations: settings.max_iter,
            mismatch_pu: last.0,
            worst_bus: net.buses[bus_of(last.1)].name.clone(),
        })
    }
}

impl Solver {
    /// The bus voltages [V] that the currents `inj` (bus, phase currents
    /// injected [A]) alone cause, every source shorted: one linear solve
    /// with the full factor, `V = Y⁻¹·I`. With unit currents it gives
    /// columns of the network's impedance matrix (Thévenin impedances).
    /// Buses the factor left out (dead) read zero.
    pub fn response(&self, n_buses: usize, inj: &[(usize, V3)]) -> Vec<V3> {
        let mut rhs = vec![ZV; self.bus_at.len()];
        for &(b, i) in inj {
            if let Some(&pos) = self.pos_of.get(b).filter(|&&p| p != usize::MAX) {
                for k in 0..3 {
                    rhs[pos][k] += i[k];
                }
            }
        }
        self.full.solve_in_place(&mut rhs);
        let mut by_bus = vec![ZV; n_buses];
        for (i, &b) in self.bus_at.iter().enumerate() {
            by_bus[b] = rhs[i];
        }
        by_bus
    }
}

/// Factorises and solves `net` once.
pub fn solve(net: &Network, settings: Settings) -> Result<Solution, PowerFlowError> {
    Solver::new(net)?.solve(net, settings, None)
}

/// A phasor's magnitude [V] and angle [deg].
pub fn polar_deg(v: C) -> (f64, f64) {
    (v.norm(), v.arg().to_degrees())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::network::{Branch, BranchKind};

    /// Kirchhoff's current law at every node, checked from the branch
    /// blocks directly (not through the factorisation): the current leaving
    /// each node into branches, the source and loads sums to zero.
    #[test]
    fn solution_satisfies_kcl_at_every_node() {
        let net = Network::synthetic_radial(300, 7);
        let sol = solve(&net, Settings::default()).unwrap();
        let n = net.buses.len();
        let mut out = vec![ZV; n];
        for br in &net.branches {
            let (ff, ft, tf, tt) = br.blocks();
            let (vf, vt) = (sol.v[br.from], sol.v[br.to]);
            let a = mat3::mulv(&ff, &vf);
            let b = mat3::mulv(&ft, &vt);
            let c = mat3::mulv(&tf, &vf);
            let d = mat3::mulv(&tt, &vt);
            for k in 0..3 {
                out[br.from][k] += a[k] + b[k];
                out[br.to][k] += c[k] + d[k];
            }
        }
        // The source: I_in = Y·(E − V).
        let i_src = mat3::mulv(
            &net.source.y,
            &mat3::subv(&net.source.e, &sol.v[net.source.bus]),
        );
        for k in 0..3 {
            out[net.source.bus][k] -= i_src[k];
        }
        for l in &net.loads {
            out[l.bus][l.phase] += l.current(sol.v[l.bus][l.phase]);
        }
        // Load currents are about 0.5 A; the tolerance of 1e-10 pu on
        // voltages bounds the residual far below 1 mA.
        let worst = out.iter().flatten().map(|z| z.norm()).fold(0.0, f64::max);
        assert!(worst < 1e-3, "largest KCL residual {worst} A");
        assert!(sol.iterations >= 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The reduced factor solves `Y·x = r` exactly like the full one
        /// at every kept node, for any right-hand side on the injecting
        /// nodes, on random radial feeders (some with an open conductor
        /// and a fault shunt). Tolerance: 1e-9 of the largest voltage,
        /// about a million times the rounding of a 300-bus solve.
        #[test]
        fn the_reduced_factor_solves_like_the_full_one(
            buses in 5usize..300,
            seed in 0u64..1000,
            every in 1usize..12,
            open in proptest::option::of(0usize..300),
            fault in proptest::option::of(0usize..300),
        ) {
            let mut net = Network::synthetic_radial(buses, seed);
            if let Some(k) = open.map(|k| 1 + k % (net.branches.len() - 1)) {
                net.branches[k].phases[1] = false;
            }
            let shunts: Vec<(usize, M3)> = fault
                .map(|b| (1 + b % buses, mat3::sym(C::new(50.0, 0.0), C::new(0.0, 0.0))))
                .into_iter()
                .collect();
            let solver = Solver::with_shunts(&net, &shunts).unwrap();
            let m = solver.bus_at.len();
            let mut rng = crate::kernel::rng::stream(seed, "test", 0, "rhs");
            let injects: Vec<bool> = (0..m).map(|i| i == m - 1 || i % every == 0).collect();
            let (red, at) = solver.full.reduced(&injects);
            use rand::RngExt;
            let mut full = vec![ZV; m];
            for (i, x) in full.iter_mut().enumerate().filter(|(i, _)| injects[*i]) {
                *x = [0, 1, 2].map(|p| {
                    let on = solver.live[solver.bus_at[i]][p];
                    let z = C::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
                    if on { z } else { C::new(0.0, 0.0) }
                });
            }
            let mut short: Vec<V3> = at.iter().map(|&i| full[i]).collect();
            solver.full.solve_in_place(&mut full);
            red.solve_in_place(&mut short);
            let scale = full.iter().flatten().map(|z| z.norm()).fold(1e-300, f64::max);
            for (r, &i) in at.iter().enumerate() {
                for p in 0..3 {
                    let d = (short[r][p] - full[i][p]).norm();
                    proptest::prop_assert!(d <= 1e-9 * scale, "position {i} phase {p}: {d} of {scale}");
                }
            }
            // Every injecting node is kept, and a node that injects nothing
            // is kept only as a junction of two or more kept chains.
            for (i, &inj) in injects.iter().enumerate() {
                proptest::prop_assert!(!inj || at.contains(&i));
            }
            let kept_children = |i: usize| {
                at.iter().filter(|&&c| {
                    let mut a = solver.full.parent[c];
                    while a != usize::MAX && !at.contains(&a) {
                        a = solver.full.parent[a];
                    }
                    a == i
                }).count()
            };
            for &i in &at {
                proptest::prop_assert!(injects[i] || kept_children(i) >= 2, "position {i} kept for nothing");
            }
        }
    }

    /// On a feeder where only every third bus has a load, the iterations
    /// run on fewer nodes than the network has. A load added afterwards on
    /// a bus the reduction folded away is still served: the solve falls
    /// back to the full factor and matches a fresh factorisation's to
    /// 1 µV.
    #[test]
    fn a_load_added_after_factorising_falls_back_to_the_full_factor() {
        let mut net = Network::synthetic_radial(120, 4);
        let solver = Solver::new(&net).unwrap();
        assert!(solver.reduced_pos.len() < solver.bus_at.len());
        let before = solver.solve(&net, Settings::default(), None).unwrap();
        // A bus with no load of its own and a single child: folded away.
        let passive = (0..solver.bus_at.len())
            .find(|i| !solver.reduced_pos.contains(i))
            .map(|i| solver.bus_at[i])
            .expect("some bus is folded");
        let mut extra = net.loads[0].clone();
        extra.bus = passive;
        extra.p_w = 2000.0;
        net.loads.push(extra);
        let after = solver.solve(&net, Settings::default(), None).unwrap();
        let fresh = solve(&net, Settings::default()).unwrap();
        let worst = (0..net.buses.len())
            .flat_map(|b| (0..3).map(move |p| (b, p)))
            .map(|(b, p)| (after.v[b][p] - fresh.v[b][p]).norm())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "{worst} V");
        // The load drew current: the voltage at its bus fell.
        let p = net.loads[0].phase;
        assert!(after.v[passive][p].norm() < before.v[passive][p].norm());
    }

    #[test]
    fn a_loop_is_refused_naming_the_branch_that_closes_it() {
        let mut net = Network::synthetic_radial(20, 1);
        let z = match &net.branches[1].kind {
            BranchKind::Line { z, .. } => *z,
            BranchKind::Transformer { .. } => unreachable!("branch 1 is a line"),
        };
        net.branches.push(Branch {
            name: "line.tie".into(),
            from: 5,
            to: 17,
            kind: BranchKind::Line { z, length_m: 0.0 },
            closed: true,
            phases: [true; 3],
        });
        let err = Solver::new(&net).unwrap_err();
        assert!(matches!(err, PowerFlowError::Meshed { .. }), "{err}");
        // Open, the tie is harmless.
        net.branches.last_mut().unwrap().closed = false;
        assert!(Solver::new(&net).is_ok());
    }

    #[test]
    fn opening_a_branch_de_energises_exactly_the_buses_below_it() {
        let mut net = Network::synthetic_radial(200, 3);
        // Open the branch feeding bus 40.
        let k = net.branches.iter().position(|b| b.to == 40).unwrap();
        net.branches[k].closed = false;
        // The buses below 40: those whose path to the source passes it.
        let parent: Vec<usize> = (0..net.buses.len())
            .map(|b| {
                net.branches
                    .iter()
                    .find(|br| br.to == b)
                    .map_or(usize::MAX, |br| br.from)
            })
            .collect();
        let below = |mut b: usize| {
            while b != usize::MAX {
                if b == 40 {
                    return true;
                }
                b = parent[b];
            }
            false
        };
        let sol = solve(&net, Settings::default()).unwrap();
        for b in 0..net.buses.len() {
            assert_eq!(sol.energized[b], !below(b), "bus {b}");
            let vmax = sol.v[b].iter().map(|z| z.norm()).fold(0.0, f64::max);
            if below(b) {
                assert_eq!(vmax, 0.0, "bus {b} should be dead");
            } else {
                assert!(vmax > 200.0, "bus {b} should be live: {vmax} V");
            }
        }
        assert!((0..net.buses.len()).filter(|&b| below(b)).count() >= 1);
    }

    #[test]
    fn non_convergence_names_the_worst_bus() {
        let mut net = Network::synthetic_radial(50, 1);
        // 200 kW per load on a 50-bus feeder: far past voltage collapse.
        for l in &mut net.loads {
            l.p_w = 2e5;
        }
        let err = solve(&net, Settings::default()).unwrap_err();
        match err {
            PowerFlowError::NotConverged {
                iterations,
                worst_bus,
                ..
            } => {
                assert_eq!(iterations, 100);
                assert!(net.bus_index.contains_key(&worst_bus));
            }
            other => panic!("expected NotConverged, got {other}"),
        }
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use crate::grid::fault::{FaultKind, solve_fault};

    /// A bolted fault part-way along a line draws a current between those
    /// of faults at its two ends, falling monotonically along the line, and
    /// splitting leaves the pre-fault solution unchanged.
    #[test]
    fn mid_line_faults_lie_between_the_end_faults() {
        let base = Network::synthetic_radial(60, 5);
        let k = base.branches.iter().position(|b| b.to == 45).unwrap();
        let (f_bus, t_bus) = (base.branches[k].from, base.branches[k].to);
        let at = |net: &Network, b: usize| {
            solve_fault(net, b, FaultKind::ThreePhase, 0.0)
                .unwrap()
                .fault_current[0]
                .norm()
        };
        let (i_from, i_to) = (at(&base, f_bus), at(&base, t_bus));
        let mut last = i_from;
        for fraction in [0.1, 0.5, 0.9] {
            let mut net = base.clone();
            let mid = net.split_line(k, fraction).unwrap();
            let i = at(&net, mid);
            assert!(
                i < last && i > i_to,
                "{fraction}: {i} not in ({i_to}, {last})"
            );
            last = i;
            // Without a fault, the split changes nothing upstream or below.
            let a = solve(&base, Settings::default()).unwrap();
            let b = solve(&net, Settings::default()).unwrap();
            for bus in 0..base.buses.len() {
                for p in 0..3 {
                    assert!((a.v[bus][p] - b.v[bus][p]).norm() < 1e-6);
                }
            }
        }
        let mut net = base.clone();
        assert!(net.split_line(k, 1.0).is_err());
        assert!(
            net.split_line(0, 0.5).is_err(),
            "the transformer cannot be split"
        );
    }
}

/// Power flows of one branch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BranchFlow {
    /// Current entering at the from end, per phase [A].
    pub i_from: V3,
    /// Current entering at the to end, per phase [A].
    pub i_to: V3,
    /// Complex power entering at the from end, per phase [VA].
    pub s_from: V3,
    /// Complex power entering at the to end, per phase [VA] (negative real
    /// part when power flows from → to).
    pub s_to: V3,
}

impl BranchFlow {
    /// Active power lost in the branch, all phases [W].
    pub fn loss_w(&self) -> f64 {
        (0..3).map(|k| self.s_from[k].re + self.s_to[k].re).sum()
    }
}

/// The flows of every branch at voltages `v` (zero for open branches).
pub fn branch_flows(net: &Network, v: &[V3]) -> Vec<BranchFlow> {
    net.branches.iter().map(|br| branch_flow(br, v)).collect()
}

/// A branch's admittance blocks `(Y_ff, Y_ft, Y_tf, Y_tt)` [S], as
/// [`Branch::blocks`] gives them.
pub type Blocks = (M3, M3, M3, M3);

/// The flow of one branch at voltages `v` (zero when open).
pub fn branch_flow(br: &Branch, v: &[V3]) -> BranchFlow {
    if !br.closed {
        return BranchFlow {
            i_from: ZV,
            i_to: ZV,
            s_from: ZV,
            s_to: ZV,
        };
    }
    branch_flow_with(br, &br.blocks(), v)
}

/// The flow of one closed branch at voltages `v`, from its admittance
/// blocks (for a caller that keeps them between solves).
pub fn branch_flow_with(br: &Branch, blocks: &Blocks, v: &[V3]) -> BranchFlow {
    let (ff, ft, tf, tt) = blocks;
    let (vf, vt) = (v[br.from], v[br.to]);
    let i_from = {
        let (a, b) = (mat3::mulv(ff, &vf), mat3::mulv(ft, &vt));
        [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
    };
    let i_to = {
        let (a, b) = (mat3::mulv(tf, &vf), mat3::mulv(tt, &vt));
        [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
    };
    BranchFlow {
        i_from,
        i_to,
        s_from: [0, 1, 2].map(|k| vf[k] * i_from[k].conj()),
        s_to: [0, 1, 2].map(|k| vt[k] * i_to[k].conj()),
    }
}

/// Each transformer's loading [%]: its largest LV phase current over the
/// rated current `S_rated / (3·U_LV,LN)`, `None` for lines. `flows` are the
/// network's [`branch_flows`].
pub fn transformer_loading_pct(net: &Network, flows: &[BranchFlow]) -> Vec<Option<f64>> {
    net.branches
        .iter()
        .zip(flows)
        .map(|(br, f)| match br.kind {
            BranchKind::Transformer {
                z_base, s_rated_va, ..
            } => {
                let s_unit = s_rated_va / 3.0;
                // z_base = U_LV,LN² / S_unit.
                let i_rated = s_unit / (z_base * s_unit).sqrt();
                let i_max = f.i_to.iter().map(|i| i.norm()).fold(0.0, f64::max);
                Some(100.0 * i_max / i_rated)
            }
            BranchKind::Line { .. } => None,
        })
        .collect()
}
