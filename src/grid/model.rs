//! The grid as a simulation model: a feeder whose loads and PV follow
//! their profiles, whose switches and faults come from the event scheduler,
//! and which re-solves only when something electrical changed.
//!
//! # Events and causal order
//! The world routes [`GridEvent`]s here. A change (a switching action, a
//! fault applied or cleared) is applied at once and marks the state dirty;
//! the first change at an instant also schedules a [`GridEvent::Resolve`]
//! at that instant, so several changes at one instant cost one solve. A
//! [`GridEvent::ProfileStep`] every `profile_step` evaluates every load and
//! PV profile and re-solves only if a value changed. Readers (the sampler,
//! and later the LMUs) call [`GridModel::advance_to`] first, which applies
//! a due profile step and a pending solve, so a reading at `t` always sees
//! every change at `t` scheduled before it.
//!
//! # Time
//! Simulation time zero is midnight at the start of the feeder's load
//! shapes. A shape of `npts` points at `interval` gives, at time t, the
//! point that covers `(t − interval, t]`, repeating after its length (as
//! OpenDSS's yearly mode does with a day-long shape).
//!
//! # Energised state and customers
//! Every load definition of the feeder is one customer at its bus. A
//! customer is interrupted while any of its phase nodes is dead (no closed
//! conducting path to the source), and each interruption is logged with its
//! start and end for the reliability indices.
//!
//! # Faults
//! A short circuit adds its admittance at the faulted bus (a line fault
//! part-way along splits the line at build time); while any short is on,
//! constant-PQ loads below 0.7 pu become constant impedance, as in OpenDSS.
//! An open conductor breaks one or two phases of a line. Clearing a fault
//! restores the state it changed.

use std::collections::BTreeMap;

use num_complex::Complex64 as C;

use super::dss::LoadShapeDef;
use super::fault::{FAULT_VMIN_PU, FaultKind};
use super::mat3::{self, M3};
use super::network::{BranchKind, LoadModel, Network};
use super::powerflow::{PowerFlowError, Settings, Solution, Solver, branch_flow};
use super::protection::{Breaker, BreakerAction, BreakerState, RecloserSettings};
use super::quality;
use super::solar::ClearSky;
use crate::kernel::{SimDuration, SimTime};
use crate::metrics::{Summary, TimeSeries};

/// An event of the grid model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GridEvent {
    /// Evaluate the profiles and re-solve if anything changed.
    ProfileStep,
    /// Open or close a switch (branch index).
    Switch {
        /// Branch index.
        branch: usize,
        /// Close (true) or open (false).
        close: bool,
    },
    /// Apply fault `n` (index into the model's fault list).
    FaultOn(usize),
    /// Clear fault `n`.
    FaultOff(usize),
    /// Solve the state if it changed.
    Resolve,
    /// Breaker `n`'s definite time after pick-up has run.
    BreakerTrip(usize),
    /// Breaker `n`'s dead time has run: reclose.
    BreakerReclose(usize),
}

impl GridEvent {
    /// A short stable label for the event trace.
    pub fn label(&self) -> &'static str {
        match self {
            GridEvent::ProfileStep => "grid.profile_step",
            GridEvent::Switch { .. } => "grid.switch",
            GridEvent::FaultOn(_) => "grid.fault_on",
            GridEvent::FaultOff(_) => "grid.fault_off",
            GridEvent::Resolve => "grid.resolve",
            GridEvent::BreakerTrip(_) => "grid.breaker_trip",
            GridEvent::BreakerReclose(_) => "grid.breaker_reclose",
        }
    }
}

/// What a fault does to the network.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultEffect {
    /// A shunt admittance [S] at a bus.
    Short {
        /// Bus index.
        bus: usize,
        /// Fault admittance [S].
        y: M3,
    },
    /// Broken phases of a line.
    Open {
        /// Branch index.
        branch: usize,
        /// Which phases break.
        broken: [bool; 3],
    },
}

/// A scheduled fault.
#[derive(Clone, Debug, PartialEq)]
pub struct GridFault {
    /// When it starts.
    pub at: SimTime,
    /// When it clears, if it does.
    pub clear_at: Option<SimTime>,
    /// Its effect.
    pub effect: FaultEffect,
}

/// A load or PV output profile: a share of nominal power over time.
#[derive(Clone, Debug, PartialEq)]
pub enum Profile {
    /// Always 1.
    Flat,
    /// A load shape's multipliers.
    Shape(LoadShapeDef),
    /// Clear-sky PV output.
    ClearSky(ClearSky),
}

impl Profile {
    /// The multiplier at `t_s` seconds.
    pub fn at(&self, t_s: f64) -> f64 {
        match self {
            Profile::Flat => 1.0,
            Profile::Shape(s) => s.at(t_s).unwrap_or(1.0),
            Profile::ClearSky(c) => c.share(t_s),
        }
    }
}

/// An interruption of one customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interruption {
    /// Customer index.
    pub customer: usize,
    /// When it started.
    pub start: SimTime,
    /// When supply returned, if it did before the end of the run.
    pub end: Option<SimTime>,
}

/// A customer: one load definition of the feeder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The load's name.
    pub name: String,
    /// Its bus.
    pub bus: usize,
    /// The phase nodes it needs.
    pub phases: [bool; 3],
}

/// The phase voltages of every bus at one sampled instant.
#[derive(Clone, Debug, PartialEq)]
pub struct VoltageSnapshot {
    /// When it was sampled.
    pub at: SimTime,
    /// The extreme live-node voltage that made it the snapshot [pu].
    pub extreme_pu: f64,
    /// Each bus's phase-to-neutral voltages (a, b, c) [pu of the bus's
    /// nominal L-N voltage]; NaN for a dead or absent phase, or a bus
    /// without a nominal voltage.
    pub v_pu: Vec<[f64; 3]>,
}

/// What a feeder-head breaker did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerOp {
    /// It opened, to reclose after its dead time.
    Trip,
    /// It opened for good: the reclose sequence was used up.
    Lockout,
    /// It reclosed.
    Reclose,
}

impl BreakerOp {
    /// Its name in `breakers.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerOp::Trip => "trip",
            BreakerOp::Lockout => "lockout",
            BreakerOp::Reclose => "reclose",
        }
    }
}

/// One operation of a feeder-head breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerRecord {
    /// When.
    pub at: SimTime,
    /// Breaker index (order of the scenario's feeder heads).
    pub breaker: usize,
    /// The branch it opens.
    pub branch: usize,
    /// What it did.
    pub op: BreakerOp,
}

/// One sampled row of a watched bus: (time, watch label, bus, phase
/// voltages a, b, c [pu], NaN when dead).
pub type WatchRow = (SimTime, u32, usize, [f64; 3]);

/// Everything the model is built from.
#[derive(Clone, Debug)]
pub struct GridSetup {
    /// The network, PV included, lines already split for faults.
    pub net: Network,
    /// Profile of each load element (index as `net.loads`).
    pub load_profiles: Vec<Profile>,
    /// Profile of each PV system (index as `net.pv`), as a share of its
    /// peak power.
    pub pv_profiles: Vec<Profile>,
    /// Peak power of each PV system [W].
    pub pv_peak_w: Vec<f64>,
    /// Interval between profile evaluations.
    pub profile_step: SimDuration,
    /// Time of day at simulated time zero: profiles are read at this
    /// offset plus the simulated time.
    pub clock_start: SimDuration,
    /// Solver settings.
    pub settings: Settings,
    /// Scheduled switching: (time, branch, close).
    pub switching: Vec<(SimTime, usize, bool)>,
    /// Faults.
    pub faults: Vec<GridFault>,
    /// Feeder-head breakers (branch indices) and their recloser settings;
    /// none without protection.
    pub breakers: Vec<usize>,
    /// The recloser settings of every breaker.
    pub protection: RecloserSettings,
}

/// Running totals and extremes.
#[derive(Clone, Debug, Default)]
struct Stats {
    solves: u64,
    refactorizations: u64,
    iterations_max: usize,
    v_min_pu: f64,
    v_max_pu: f64,
    loading_max_pct: f64,
    unbalance_max_pct: f64,
    energy_in_wh: f64,
    energy_load_wh: f64,
    energy_pv_wh: f64,
    faults_applied: u64,
    switch_operations: u64,
    /// Load energy while its customer was interrupted [Wh].
    energy_not_supplied_wh: f64,
}

/// The extremes of the current solution.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Extremes {
    /// Lowest live-node voltage [pu].
    v_min_pu: f64,
    /// Highest live-node voltage [pu].
    v_max_pu: f64,
    /// Largest transformer loading [%].
    loading_max_pct: f64,
    /// Largest voltage unbalance factor [%].
    unbalance_max_pct: f64,
}

/// Powers of one solved state [W].
#[derive(Clone, Debug, Default, PartialEq)]
struct Powers {
    source: C,
    load: f64,
    pv: f64,
    /// Drawn by each customer.
    customer: Vec<f64>,
    /// Injected by each PV system.
    pv_each: Vec<f64>,
    /// Scheduled demand of interrupted customers.
    not_supplied: f64,
}

/// The grid model.
#[derive(Debug)]
pub struct GridModel {
    net: Network,
    nominal: Vec<(f64, f64)>,
    base_vmin: Vec<Option<f64>>,
    base_phases: Vec<[bool; 3]>,
    load_profiles: Vec<Profile>,
    pv_profiles: Vec<Profile>,
    pv_peak_w: Vec<f64>,
    /// Active-power limit of each PV, as a share of its rating (set-points).
    pv_limit: Vec<f64>,
    /// Scale of each load (demand response), 1 when none.
    load_scale: Vec<f64>,
    step: SimDuration,
    clock_start: SimDuration,
    settings: Settings,
    switching: Vec<(SimTime, usize, bool)>,
    faults: Vec<GridFault>,
    active: Vec<bool>,
    solver: Option<Solver>,
    solution: Option<Solution>,
    /// The extremes of `solution`.
    extremes: Extremes,
    /// 1/base² of each bus's phase voltage [1/V²] (0 without a base).
    inv_base2: Vec<f64>,
    /// The transformer branches.
    transformers: Vec<usize>,
    /// Needs a new factorisation.
    topology_dirty: bool,
    /// Needs a new solve.
    dirty: bool,
    resolve_pending: bool,
    /// The profile time last applied.
    profile_at: Option<SimTime>,
    last_solve: SimTime,
    powers: Powers,
    customers: Vec<Customer>,
    off_since: Vec<Option<SimTime>>,
    interruptions: Vec<Interruption>,
    stats: Stats,
    series: TimeSeries,
    breakers: Vec<Breaker>,
    protection: RecloserSettings,
    /// Each branch's switch (or contactor) state; a branch conducts when
    /// its switch is closed and no breaker holds it open.
    switch_closed: Vec<bool>,
    /// Customer of each load element.
    load_customer: Vec<usize>,
    /// Energy each customer drew [Wh].
    customer_wh: Vec<f64>,
    /// Energy each PV system injected [Wh].
    pv_wh: Vec<f64>,
    /// The sampled state with the lowest and the highest live-node voltage
    /// so far (the first sample that reached it), short circuits still fed
    /// excepted.
    lowest: Option<VoltageSnapshot>,
    highest: Option<VoltageSnapshot>,
    /// Buses whose phase voltages every sample records: (label, bus).
    watch: Vec<(u32, usize)>,
    watch_rows: Vec<WatchRow>,
    /// Every breaker operation, in order.
    breaker_log: Vec<BreakerRecord>,
}

/// Sets `values[i] = v` for every index given; whether any changed.
fn set_all(values: &mut [f64], indices: &[usize], v: f64) -> bool {
    let mut any = false;
    for &i in indices {
        if let Some(x) = values.get_mut(i)
            && *x != v
        {
            *x = v;
            any = true;
        }
    }
    any
}

/// Columns of `grid.csv`.
pub const SERIES_COLUMNS: &[&str] = &[
    "t_s",
    "v_min_pu",
    "v_max_pu",
    "p_source_kw",
    "q_source_kvar",
    "p_load_kw",
    "p_pv_kw",
    "losses_kw",
    "transformer_loading_pct",
    "unbalance_max_pct",
    "buses_energized",
    "customers_off",
];

impl GridModel {
    /// A model from its setup; nothing is solved until the first event.
    pub fn new(setup: GridSetup) -> GridModel {
        let net = setup.net;
        let nominal = net.loads.iter().map(|l| (l.p_w, l.q_var)).collect();
        let base_vmin = net
            .loads
            .iter()
            .map(|l| match l.model {
                LoadModel::Pq { vmin, .. } => Some(vmin),
                _ => None,
            })
            .collect();
        let base_phases = net.branches.iter().map(|b| b.phases).collect();
        let mut by_name: BTreeMap<&str, Customer> = BTreeMap::new();
        for l in &net.loads {
            let c = by_name.entry(l.name.as_str()).or_insert_with(|| Customer {
                name: l.name.clone(),
                bus: l.bus,
                phases: [false; 3],
            });
            c.phases[l.phase] = true;
            if let Some(j) = l.to_phase {
                c.phases[j] = true;
            }
        }
        let customers: Vec<Customer> = by_name.into_values().collect();
        let load_customer = net
            .loads
            .iter()
            .map(|l| {
                customers
                    .binary_search_by(|c| c.name.as_str().cmp(l.name.as_str()))
                    .unwrap_or(0)
            })
            .collect();
        let n_faults = setup.faults.len();
        GridModel {
            nominal,
            base_vmin,
            base_phases,
            load_profiles: setup.load_profiles,
            pv_profiles: setup.pv_profiles,
            pv_limit: vec![1.0; net.pv.len()],
            load_scale: vec![1.0; net.loads.len()],
            pv_peak_w: setup.pv_peak_w,
            step: setup.profile_step,
            clock_start: setup.clock_start,
            settings: setup.settings,
            switching: setup.switching,
            faults: setup.faults,
            active: vec![false; n_faults],
            solver: None,
            solution: None,
            extremes: Extremes::default(),
            inv_base2: net
                .buses
                .iter()
                .map(|b| {
                    let base = b.v_base_ln;
                    if base > 0.0 { 1.0 / (base * base) } else { 0.0 }
                })
                .collect(),
            transformers: (0..net.branches.len())
                .filter(|&k| matches!(net.branches[k].kind, BranchKind::Transformer { .. }))
                .collect(),
            topology_dirty: true,
            dirty: true,
            resolve_pending: false,
            profile_at: None,
            last_solve: SimTime::ZERO,
            powers: Powers::default(),
            off_since: vec![None; customers.len()],
            customer_wh: vec![0.0; customers.len()],
            pv_wh: vec![0.0; net.pv.len()],
            customers,
            interruptions: Vec::new(),
            stats: Stats {
                v_min_pu: f64::INFINITY,
                v_max_pu: 0.0,
                ..Stats::default()
            },
            series: TimeSeries::new("grid", SERIES_COLUMNS),
            breakers: setup.breakers.iter().map(|&b| Breaker::new(b)).collect(),
            protection: setup.protection,
            switch_closed: net.branches.iter().map(|b| b.closed).collect(),
            load_customer,
            net,
            lowest: None,
            highest: None,
            watch: Vec::new(),
            watch_rows: Vec::new(),
            breaker_log: Vec::new(),
        }
    }

    /// The events to schedule before the run: the first profile step at
    /// zero, every switching action, and every fault's start and end. In
    /// this order, which fixes their order among same-instant events.
    pub fn initial_events(&self) -> Vec<(SimTime, GridEvent)> {
        let mut ev = vec![(SimTime::ZERO, GridEvent::ProfileStep)];
        for &(t, branch, close) in &self.switching {
            ev.push((t, GridEvent::Switch { branch, close }));
        }
        for (i, f) in self.faults.iter().enumerate() {
            ev.push((f.at, GridEvent::FaultOn(i)));
            if let Some(c) = f.clear_at {
                ev.push((c, GridEvent::FaultOff(i)));
            }
        }
        ev
    }

    /// Power-flow solves so far.
    pub fn solves(&self) -> u64 {
        self.stats.solves
    }

    /// Limits the active power of PV systems `pvs` to `share` of their
    /// rating (1 lifts the limit) from `now`; returns the events it
    /// schedules (a re-solve).
    pub fn set_pv_limit(
        &mut self,
        now: SimTime,
        pvs: &[usize],
        share: f64,
    ) -> Vec<(SimTime, GridEvent)> {
        let changed = set_all(&mut self.pv_limit, pvs, share.clamp(0.0, 1.0));
        self.reapply(now, changed)
    }

    /// Scales loads `loads` by `factor` (demand response; 1 restores them)
    /// from `now`; returns the events it schedules.
    pub fn set_load_scale(
        &mut self,
        now: SimTime,
        loads: &[usize],
        factor: f64,
    ) -> Vec<(SimTime, GridEvent)> {
        let changed = set_all(&mut self.load_scale, loads, factor.max(0.0));
        self.reapply(now, changed)
    }

    /// If a set-point `changed`, has the profiles re-applied at once with
    /// it (energy up to now is integrated at the old powers first);
    /// returns the events that schedules.
    fn reapply(&mut self, now: SimTime, changed: bool) -> Vec<(SimTime, GridEvent)> {
        let mut next = Vec::new();
        if changed {
            self.profile_at = None;
            self.changed(false, now, &mut next);
        }
        next
    }

    /// Handles one event at `now`; returns the events it schedules.
    pub fn handle(
        &mut self,
        now: SimTime,
        event: GridEvent,
    ) -> Result<Vec<(SimTime, GridEvent)>, PowerFlowError> {
        let mut next = Vec::new();
        match event {
            GridEvent::ProfileStep => {
                self.advance_to(now)?;
                if let Some(t) = now.checked_add(self.step) {
                    next.push((t, GridEvent::ProfileStep));
                }
            }
            GridEvent::Resolve => {
                self.resolve_pending = false;
                self.advance_to(now)?;
            }
            GridEvent::Switch { branch, close } => {
                if let Some(s) = self.switch_closed.get_mut(branch)
                    && *s != close
                {
                    *s = close;
                    self.stats.switch_operations += 1;
                    self.conduct(branch, now, &mut next);
                }
            }
            GridEvent::BreakerTrip(i) => {
                self.advance_to(now)?;
                let current = self.breaker_current(i);
                let s = &self.protection;
                if let Some(b) = self.breakers.get_mut(i)
                    && let BreakerAction::Open(reclose) = b.trip_due(s, now, current)
                {
                    let branch = b.branch;
                    if let Some(t) = reclose {
                        next.push((t, GridEvent::BreakerReclose(i)));
                    }
                    self.breaker_log.push(BreakerRecord {
                        at: now,
                        breaker: i,
                        branch,
                        op: if reclose.is_some() {
                            BreakerOp::Trip
                        } else {
                            BreakerOp::Lockout
                        },
                    });
                    self.conduct(branch, now, &mut next);
                }
            }
            GridEvent::BreakerReclose(i) => {
                if let Some(b) = self.breakers.get_mut(i)
                    && b.reclose_due(now) == BreakerAction::Close
                {
                    let branch = b.branch;
                    self.breaker_log.push(BreakerRecord {
                        at: now,
                        breaker: i,
                        branch,
                        op: BreakerOp::Reclose,
                    });
                    self.conduct(branch, now, &mut next);
                }
            }
            GridEvent::FaultOn(i) => {
                if !self.active[i] {
                    self.active[i] = true;
                    self.stats.faults_applied += 1;
                    self.apply_faults();
                    self.changed(true, now, &mut next);
                }
            }
            GridEvent::FaultOff(i) => {
                if self.active[i] {
                    self.active[i] = false;
                    self.apply_faults();
                    self.changed(true, now, &mut next);
                }
            }
        }
        self.check_breakers(now, &mut next);
        Ok(next)
    }

    /// Sets a branch's conduction from its switch and any breaker on it.
    fn conduct(&mut self, branch: usize, now: SimTime, next: &mut Vec<(SimTime, GridEvent)>) {
        let held = self
            .breakers
            .iter()
            .any(|b| b.branch == branch && b.state != BreakerState::Closed);
        let on = self.switch_closed.get(branch).copied().unwrap_or(false) && !held;
        if let Some(br) = self.net.branches.get_mut(branch)
            && br.closed != on
        {
            br.closed = on;
            self.changed(true, now, next);
        }
    }

    /// The largest phase current through breaker `i` [A] (zero unsolved).
    fn breaker_current(&self, i: usize) -> f64 {
        let (Some(sol), Some(b)) = (&self.solution, self.breakers.get(i)) else {
            return 0.0;
        };
        let f = branch_flow(&self.net.branches[b.branch], &sol.v);
        f.i_from.iter().map(|c| c.norm()).fold(0.0, f64::max)
    }

    /// After a solve: breakers whose current passed pick-up arm their trip.
    fn check_breakers(&mut self, now: SimTime, next: &mut Vec<(SimTime, GridEvent)>) {
        if self.dirty || self.solution.is_none() {
            return;
        }
        for i in 0..self.breakers.len() {
            let current = self.breaker_current(i);
            if let BreakerAction::Arm(t) = self.breakers[i].solved(&self.protection, now, current) {
                next.push((t, GridEvent::BreakerTrip(i)));
            }
        }
    }

    /// The feeder-head breakers.
    pub fn breakers(&self) -> &[Breaker] {
        &self.breakers
    }

    /// What the meters read at `now` (after [`GridModel::advance_to`]):
    /// the energy each customer drew and each PV system injected since the
    /// start [Wh], the state since the last solve included.
    pub fn meters_at(&self, now: SimTime) -> (Vec<f64>, Vec<f64>) {
        let dt_h = now.saturating_since(self.last_solve).as_secs_f64() / 3600.0;
        let on = self.solution.is_some();
        let add = |e: &[f64], p: &[f64]| -> Vec<f64> {
            e.iter()
                .zip(p.iter().chain(std::iter::repeat(&0.0)))
                .map(|(e, p)| if on { e + p * dt_h } else { *e })
                .collect()
        };
        (
            add(&self.customer_wh, &self.powers.customer),
            add(&self.pv_wh, &self.powers.pv_each),
        )
    }

    /// Power drawn from the source now [kW] (what loads the transformer).
    pub fn source_kw(&self) -> f64 {
        self.powers.source.re / 1e3
    }

    /// The load elements of customer `c`.
    pub fn customer_loads(&self, c: usize) -> Vec<usize> {
        (0..self.load_customer.len())
            .filter(|&l| self.load_customer[l] == c)
            .collect()
    }

    fn changed(&mut self, topology: bool, now: SimTime, next: &mut Vec<(SimTime, GridEvent)>) {
        self.dirty = true;
        self.topology_dirty |= topology;
        if !self.resolve_pending {
            self.resolve_pending = true;
            next.push((now, GridEvent::Resolve));
        }
    }

    /// Re-derives the network's conductors and load limits from the active
    /// faults.
    fn apply_faults(&mut self) {
        for (br, base) in self.net.branches.iter_mut().zip(&self.base_phases) {
            br.phases = *base;
        }
        let mut any_short = false;
        for (f, on) in self.faults.iter().zip(&self.active) {
            if !on {
                continue;
            }
            match &f.effect {
                FaultEffect::Short { .. } => any_short = true,
                FaultEffect::Open { branch, broken } => {
                    let br = &mut self.net.branches[*branch];
                    for (ph, b) in br.phases.iter_mut().zip(broken) {
                        *ph &= !b;
                    }
                }
            }
        }
        for (l, base) in self.net.loads.iter_mut().zip(&self.base_vmin) {
            if let (LoadModel::Pq { vmin, .. }, Some(b)) = (&mut l.model, base) {
                *vmin = if any_short { b.max(FAULT_VMIN_PU) } else { *b };
            }
        }
        // Inverters hold their current from before the first short circuit
        // until the last one clears.
        for g in &mut self.net.pv {
            if !any_short {
                g.held_current = None;
            } else if g.held_current.is_none() {
                let held = self.solution.as_ref().map(|sol| {
                    let v = sol.v[g.bus];
                    [0, 1, 2].map(|k| {
                        if g.phases[k] {
                            g.injection(k, v[k])
                        } else {
                            C::new(0.0, 0.0)
                        }
                    })
                });
                g.held_current = held;
            }
        }
    }

    /// Brings the model up to `now`: applies the profile step due at or
    /// before `now` if it was not yet applied, then solves if anything
    /// changed.
    pub fn advance_to(&mut self, now: SimTime) -> Result<(), PowerFlowError> {
        let step_ns = self.step.as_nanos().max(1);
        let due = SimTime::from_nanos(now.as_nanos() / step_ns * step_ns);
        if self.profile_at != Some(due) {
            self.profile_at = Some(due);
            if self.apply_profiles(due) {
                self.dirty = true;
            }
        }
        if self.dirty {
            self.solve(now)?;
        }
        Ok(())
    }

    /// Sets every load and PV to its profile value at `t`; whether any
    /// changed.
    fn apply_profiles(&mut self, t: SimTime) -> bool {
        let t_s = t.saturating_add(self.clock_start).as_secs_f64();
        let mut changed = false;
        for (((l, p), &(p0, q0)), &k) in self
            .net
            .loads
            .iter_mut()
            .zip(&self.load_profiles)
            .zip(&self.nominal)
            .zip(&self.load_scale)
        {
            let m = p.at(t_s) * k;
            let (pw, qv) = (p0 * m, q0 * m);
            if pw != l.p_w || qv != l.q_var {
                l.p_w = pw;
                l.q_var = qv;
                changed = true;
            }
        }
        for (((g, p), peak), &lim) in self
            .net
            .pv
            .iter_mut()
            .zip(&self.pv_profiles)
            .zip(&self.pv_peak_w)
            .zip(&self.pv_limit)
        {
            let pw = (peak * p.at(t_s)).min(lim * g.s_rated_va);
            if pw != g.p_w {
                g.p_w = pw;
                changed = true;
            }
        }
        changed
    }

    fn shunts(&self) -> Vec<(usize, M3)> {
        self.faults
            .iter()
            .zip(&self.active)
            .filter_map(|(f, on)| match f.effect {
                FaultEffect::Short { bus, y } if *on => Some((bus, y)),
                _ => None,
            })
            .collect()
    }

    fn solve(&mut self, now: SimTime) -> Result<(), PowerFlowError> {
        if self.topology_dirty || self.solver.is_none() {
            self.solver = Some(Solver::with_shunts(&self.net, &self.shunts())?);
            self.stats.refactorizations += 1;
            self.topology_dirty = false;
        }
        let solver = self.solver.as_ref().expect("factorised above");
        let start = self.solution.as_ref().map(|s| s.v.as_slice());
        let sol = solver.solve(&self.net, self.settings, start)?;
        // Energy of the state that held until now.
        let dt_h = now.saturating_since(self.last_solve).as_secs_f64() / 3600.0;
        self.accumulate(dt_h);
        self.last_solve = now;
        self.stats.solves += 1;
        self.stats.iterations_max = self.stats.iterations_max.max(sol.iterations);
        self.powers = self.powers_of(&sol);
        self.track_extremes(&sol);
        self.track_customers(&sol, now);
        self.solution = Some(sol);
        self.dirty = false;
        Ok(())
    }

    fn accumulate(&mut self, dt_h: f64) {
        if self.solution.is_none() {
            return;
        }
        self.stats.energy_in_wh += self.powers.source.re * dt_h;
        self.stats.energy_load_wh += self.powers.load * dt_h;
        self.stats.energy_pv_wh += self.powers.pv * dt_h;
        self.stats.energy_not_supplied_wh += self.powers.not_supplied * dt_h;
        for (e, p) in self.customer_wh.iter_mut().zip(&self.powers.customer) {
            *e += p * dt_h;
        }
        for (e, p) in self.pv_wh.iter_mut().zip(&self.powers.pv_each) {
            *e += p * dt_h;
        }
    }

    fn powers_of(&self, sol: &Solution) -> Powers {
        let v = &sol.v;
        let src = &self.net.source;
        let dv = [0, 1, 2].map(|k| src.e[k] - v[src.bus][k]);
        let i = mat3::mulv(&src.y, &dv);
        let source = (0..3).map(|k| v[src.bus][k] * i[k].conj()).sum();
        let mut load = 0.0;
        let mut customer = vec![0.0; self.customers.len()];
        let on: Vec<bool> = self
            .customers
            .iter()
            .map(|c| (0..3).all(|k| !c.phases[k] || sol.live[c.bus][k]))
            .collect();
        let mut not_supplied = 0.0;
        for (li, l) in self.net.loads.iter().enumerate() {
            let c = self.load_customer[li];
            let live = sol.live[l.bus][l.phase] && l.to_phase.is_none_or(|j| sol.live[l.bus][j]);
            if live {
                let u = v[l.bus][l.phase] - l.to_phase.map_or(C::new(0.0, 0.0), |j| v[l.bus][j]);
                let p = (u * l.current(u).conj()).re;
                load += p;
                customer[c] += p;
            }
            if !on[c] {
                not_supplied += l.p_w;
            }
        }
        let mut pv = 0.0;
        let mut pv_each = vec![0.0; self.net.pv.len()];
        for (gi, g) in self.net.pv.iter().enumerate() {
            for k in (0..3).filter(|&k| g.phases[k] && sol.live[g.bus][k]) {
                let p = (v[g.bus][k] * g.injection(k, v[g.bus][k]).conj()).re;
                pv += p;
                pv_each[gi] += p;
            }
        }
        Powers {
            source,
            load,
            pv_each,
            pv,
            customer,
            not_supplied,
        }
    }

    /// Lowest and highest live-node voltage [pu] of a solution.
    ///
    /// The extreme nodes are found on squared magnitudes (no square root
    /// per node), and only their two voltages are taken to pu.
    fn v_range_pu(&self, sol: &Solution) -> (f64, f64) {
        let (mut lo, mut hi) = ((f64::INFINITY, 0, 0), (0.0f64, usize::MAX, 0));
        for (b, &w) in self.inv_base2.iter().enumerate() {
            if w <= 0.0 {
                continue;
            }
            for k in (0..3).filter(|&k| sol.live[b][k]) {
                let q = sol.v[b][k].norm_sqr() * w;
                if q < lo.0 {
                    lo = (q, b, k);
                }
                if q > hi.0 {
                    hi = (q, b, k);
                }
            }
        }
        let pu = |(_, b, k): (f64, usize, usize)| sol.v[b][k].norm() / self.net.buses[b].v_base_ln;
        (
            if lo.0.is_finite() {
                pu(lo)
            } else {
                f64::INFINITY
            },
            if hi.1 == usize::MAX { 0.0 } else { pu(hi) },
        )
    }

    /// The largest voltage unbalance factor of a bus with three live
    /// phases [%] (0 when none), found on squared ratios.
    fn unbalance_max_pct(&self, sol: &Solution) -> f64 {
        let worst = (0..self.net.buses.len())
            .filter(|&b| sol.live[b] == [true; 3])
            .filter_map(|b| quality::unbalance_ratio_sq(&sol.v[b]).map(|r| (r, b)))
            .fold((0.0, usize::MAX), |a, x| if x.0 > a.0 { x } else { a });
        if worst.1 == usize::MAX {
            0.0
        } else {
            quality::unbalance_pct(&sol.v[worst.1]).unwrap_or(0.0)
        }
    }

    fn loading_max_pct(&self, sol: &Solution) -> f64 {
        let mut worst = 0.0f64;
        for br in self.transformers.iter().map(|&k| &self.net.branches[k]) {
            if !br.closed {
                continue;
            }
            if let BranchKind::Transformer {
                z_base, s_rated_va, ..
            } = br.kind
            {
                let (_, _, tf, tt) = br.blocks();
                let (a, b) = (
                    mat3::mulv(&tf, &sol.v[br.from]),
                    mat3::mulv(&tt, &sol.v[br.to]),
                );
                let s_unit = s_rated_va / 3.0;
                let i_rated = s_unit / (z_base * s_unit).sqrt();
                for k in 0..3 {
                    worst = worst.max(100.0 * (a[k] + b[k]).norm() / i_rated);
                }
            }
        }
        worst
    }

    /// The extremes of a solution: (lowest, highest voltage [pu], largest
    /// transformer loading [%], largest unbalance [%]).
    fn extremes_of(&self, sol: &Solution) -> Extremes {
        let (lo, hi) = self.v_range_pu(sol);
        Extremes {
            v_min_pu: lo,
            v_max_pu: hi,
            loading_max_pct: self.loading_max_pct(sol),
            unbalance_max_pct: self.unbalance_max_pct(sol),
        }
    }

    fn track_extremes(&mut self, sol: &Solution) {
        let x = self.extremes_of(sol);
        self.stats.v_min_pu = self.stats.v_min_pu.min(x.v_min_pu);
        self.stats.v_max_pu = self.stats.v_max_pu.max(x.v_max_pu);
        self.stats.loading_max_pct = self.stats.loading_max_pct.max(x.loading_max_pct);
        self.stats.unbalance_max_pct = self.stats.unbalance_max_pct.max(x.unbalance_max_pct);
        self.extremes = x;
    }

    fn track_customers(&mut self, sol: &Solution, now: SimTime) {
        for (i, c) in self.customers.iter().enumerate() {
            let on = (0..3).all(|k| !c.phases[k] || sol.live[c.bus][k]);
            match (on, self.off_since[i]) {
                (false, None) => {
                    self.off_since[i] = Some(now);
                    self.interruptions.push(Interruption {
                        customer: i,
                        start: now,
                        end: None,
                    });
                }
                (true, Some(_)) => {
                    self.off_since[i] = None;
                    if let Some(int) = self
                        .interruptions
                        .iter_mut()
                        .rev()
                        .find(|x| x.customer == i && x.end.is_none())
                    {
                        int.end = Some(now);
                    }
                }
                _ => {}
            }
        }
    }

    /// Records one row of `grid.csv` at `now` (after [`GridModel::advance_to`]).
    pub fn record(&mut self, now: SimTime) {
        let Some(sol) = &self.solution else { return };
        let (lo, hi) = (self.extremes.v_min_pu, self.extremes.v_max_pu);
        let row = [
            now.as_secs_f64(),
            lo,
            hi,
            self.powers.source.re / 1e3,
            self.powers.source.im / 1e3,
            self.powers.load / 1e3,
            self.powers.pv / 1e3,
            (self.powers.source.re + self.powers.pv - self.powers.load) / 1e3,
            self.extremes.loading_max_pct,
            self.extremes.unbalance_max_pct,
            sol.energized.iter().filter(|&&e| e).count() as f64,
            self.off_since.iter().filter(|o| o.is_some()).count() as f64,
        ];
        self.series.push(&row);
        // The profile snapshots show operation, not a short circuit still
        // fed (its voltages are the fault's, not the feeder's).
        let fed_short = self.faults.iter().zip(&self.active).any(|(f, on)| {
            *on && matches!(f.effect, FaultEffect::Short { bus, .. } if sol.energized[bus])
        });
        if !fed_short && lo.is_finite() && self.lowest.as_ref().is_none_or(|s| lo < s.extreme_pu) {
            self.lowest = Some(self.snapshot(now, lo));
        }
        if !fed_short && hi > 0.0 && self.highest.as_ref().is_none_or(|s| hi > s.extreme_pu) {
            self.highest = Some(self.snapshot(now, hi));
        }
        for &(label, bus) in &self.watch {
            let v = self.bus_pu(bus);
            self.watch_rows.push((now, label, bus, v));
        }
    }

    /// A bus's phase voltages now [pu], NaN for a dead or absent phase (or
    /// a bus without a nominal voltage, or before the first solve).
    pub fn bus_pu(&self, bus: usize) -> [f64; 3] {
        let (Some(sol), Some(b)) = (&self.solution, self.net.buses.get(bus)) else {
            return [f64::NAN; 3];
        };
        std::array::from_fn(|k| {
            if b.v_base_ln > 0.0 && sol.live[bus][k] {
                sol.v[bus][k].norm() / b.v_base_ln
            } else {
                f64::NAN
            }
        })
    }

    fn snapshot(&self, at: SimTime, extreme_pu: f64) -> VoltageSnapshot {
        VoltageSnapshot {
            at,
            extreme_pu,
            v_pu: (0..self.net.buses.len()).map(|b| self.bus_pu(b)).collect(),
        }
    }

    /// Has every sample from now on record the phase voltages of `buses`:
    /// (label, bus index), e.g. an LMU's node id and its bus. Indices past
    /// the network's buses are ignored.
    pub fn watch(&mut self, buses: &[(u32, usize)]) {
        let n = self.net.buses.len();
        self.watch = buses.iter().copied().filter(|&(_, b)| b < n).collect();
    }

    /// The samples of the watched buses, in order of time, then of the
    /// watch list.
    pub fn watch_rows(&self) -> &[WatchRow] {
        &self.watch_rows
    }

    /// The sampled states with the lowest and the highest live-node
    /// voltage of the run (none before the first solved sample).
    pub fn extreme_snapshots(&self) -> (Option<&VoltageSnapshot>, Option<&VoltageSnapshot>) {
        (self.lowest.as_ref(), self.highest.as_ref())
    }

    /// Every trip, lockout and reclose of the feeder-head breakers, in
    /// order.
    pub fn breaker_log(&self) -> &[BreakerRecord] {
        &self.breaker_log
    }

    /// The current solution, if solved.
    pub fn solution(&self) -> Option<&Solution> {
        self.solution.as_ref()
    }

    /// The network in its current state.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Customers, by index.
    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    /// The scheduled faults.
    pub fn faults(&self) -> &[GridFault] {
        &self.faults
    }

    /// Every interruption so far.
    pub fn interruptions(&self) -> &[Interruption] {
        &self.interruptions
    }

    /// Closes the books at `end`: integrates energy to `end`, writes the
    /// headline metrics (grid and reliability) into `summary`, and hands
    /// over the time series.
    pub fn finish(mut self, end: SimTime, summary: &mut Summary) -> TimeSeries {
        let dt_h = end.saturating_since(self.last_solve).as_secs_f64() / 3600.0;
        self.accumulate(dt_h);
        let s = &self.stats;
        summary.set_u64("grid.buses", self.net.buses.len() as u64);
        summary.set_u64("grid.branches", self.net.branches.len() as u64);
        summary.set_u64("grid.pv_systems", self.net.pv.len() as u64);
        summary.set_u64("grid.solves", s.solves);
        summary.set_u64("grid.refactorizations", s.refactorizations);
        summary.set_u64("grid.iterations_max", s.iterations_max as u64);
        if s.solves > 0 {
            summary.set_f64("grid.v_min_pu", s.v_min_pu);
            summary.set_f64("grid.v_max_pu", s.v_max_pu);
        }
        summary.set_f64("grid.energy_in_kwh", s.energy_in_wh / 1e3);
        summary.set_f64("grid.energy_load_kwh", s.energy_load_wh / 1e3);
        summary.set_f64("grid.energy_pv_kwh", s.energy_pv_wh / 1e3);
        summary.set_f64(
            "grid.losses_kwh",
            (s.energy_in_wh + s.energy_pv_wh - s.energy_load_wh) / 1e3,
        );
        summary.set_f64("grid.transformer_loading_max_pct", s.loading_max_pct);
        summary.set_f64("grid.unbalance_max_pct", s.unbalance_max_pct);
        summary.set_u64("grid.faults_applied", s.faults_applied);
        summary.set_u64("grid.switch_operations", s.switch_operations);
        summary.set_u64("grid.customers", self.customers.len() as u64);
        summary.set_u64(
            "grid.customer_interruptions",
            self.interruptions.len() as u64,
        );
        let minutes: f64 = self
            .interruptions
            .iter()
            .map(|i| i.end.unwrap_or(end).saturating_since(i.start).as_secs_f64() / 60.0)
            .fold(0.0, |a, b| a + b);
        summary.set_f64("grid.customer_minutes_interrupted", minutes);
        let trips: u64 = self.breakers.iter().map(|b| b.trips).sum();
        let lockouts = self
            .breakers
            .iter()
            .filter(|b| b.state == BreakerState::Lockout)
            .count();
        if !self.breakers.is_empty() {
            summary.set_u64("grid.breaker_trips", trips);
            summary.set_u64(
                "grid.breaker_recloses",
                self.breakers.iter().map(|b| b.recloses).sum(),
            );
            summary.set_u64("grid.breaker_lockouts", lockouts as u64);
        }
        let r = Reliability::of(&self.interruptions, self.customers.len(), end);
        summary.set_u64("reliability.customers", self.customers.len() as u64);
        summary.set_f64("reliability.saifi", r.saifi);
        summary.set_f64("reliability.saidi_min", r.saidi_min);
        if let Some(c) = r.caidi_min {
            summary.set_f64("reliability.caidi_min", c);
        }
        summary.set_f64("reliability.maifi", r.maifi);
        summary.set_u64("reliability.customers_interrupted", r.customers_interrupted);
        summary.set_f64("reliability.cml", r.cml);
        summary.set_f64(
            "reliability.ens_kwh",
            self.stats.energy_not_supplied_wh / 1e3,
        );
        self.series
    }

    /// `customers.csv`: one row per customer.
    /// Each customer's record at `end`: interruptions and energy.
    pub fn customer_records(&self, end: SimTime) -> Vec<CustomerRecord> {
        let (energy, pv) = self.meters_at(end);
        self.customers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut r = CustomerRecord {
                    name: c.name.clone(),
                    bus: c.bus,
                    energy_kwh: energy[i] / 1e3,
                    pv_kwh: self
                        .net
                        .pv
                        .iter()
                        .zip(&pv)
                        .filter(|(g, _)| g.bus == c.bus)
                        .fold(0.0, |a, (_, e)| a + e / 1e3),
                    ..CustomerRecord::default()
                };
                for x in self.interruptions.iter().filter(|x| x.customer == i) {
                    let d = x.end.unwrap_or(end).saturating_since(x.start);
                    r.minutes_off += d.as_secs_f64() / 60.0;
                    if d > SUSTAINED {
                        r.interruptions += 1;
                    } else {
                        r.momentary += 1;
                    }
                }
                r
            })
            .collect()
    }
}

/// One customer's record over a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerRecord {
    /// The load's name.
    pub name: String,
    /// Its bus.
    pub bus: usize,
    /// Sustained interruptions (longer than [`SUSTAINED`]).
    pub interruptions: u64,
    /// Momentary interruptions.
    pub momentary: u64,
    /// Minutes without supply [min].
    pub minutes_off: f64,
    /// Energy its loads drew [kWh].
    pub energy_kwh: f64,
    /// Energy PV at its bus injected [kWh].
    pub pv_kwh: f64,
}

/// Interruptions longer than this are sustained (IEEE 1366, EN 50160: more
/// than 3 minutes); shorter ones are momentary.
pub const SUSTAINED: SimDuration = SimDuration::from_nanos(180_000_000_000);

/// Reliability indices of a run (IEEE 1366 definitions; sustained
/// interruptions are those longer than [`SUSTAINED`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reliability {
    /// Sustained interruptions per customer served.
    pub saifi: f64,
    /// Sustained interruption minutes per customer served [min].
    pub saidi_min: f64,
    /// Minutes per sustained interruption, SAIDI / SAIFI [min]; none
    /// without one.
    pub caidi_min: Option<f64>,
    /// Momentary interruptions per customer served.
    pub maifi: f64,
    /// Customers with at least one sustained interruption.
    pub customers_interrupted: u64,
    /// Customer minutes lost to sustained interruptions [min].
    pub cml: f64,
}

impl Reliability {
    /// The indices of `interruptions` among `customers`, open ones ending
    /// at `end`.
    pub fn of(interruptions: &[Interruption], customers: usize, end: SimTime) -> Reliability {
        if customers == 0 {
            return Reliability::default();
        }
        let n = customers as f64;
        let (mut sustained, mut momentary, mut cml) = (0u64, 0u64, 0.0);
        let mut hit = vec![false; customers];
        for x in interruptions {
            let d = x.end.unwrap_or(end).saturating_since(x.start);
            if d > SUSTAINED {
                sustained += 1;
                cml += d.as_secs_f64() / 60.0;
                if let Some(h) = hit.get_mut(x.customer) {
                    *h = true;
                }
            } else {
                momentary += 1;
            }
        }
        let saifi = sustained as f64 / n;
        let saidi_min = cml / n;
        Reliability {
            saifi,
            saidi_min,
            caidi_min: (sustained > 0).then(|| saidi_min / saifi),
            maifi: momentary as f64 / n,
            customers_interrupted: hit.iter().filter(|&&h| h).count() as u64,
            cml,
        }
    }
}

/// The shunt fault of `kind` through `r_ohm` [Ω], as a [`FaultEffect`].
pub fn short(bus: usize, kind: FaultKind, r_ohm: f64) -> FaultEffect {
    FaultEffect::Short {
        bus,
        y: kind.admittance(r_ohm),
    }
}
