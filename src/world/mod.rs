//! The world: every model of a scenario, wired together by the builder and
//! driven by the kernel through one [`Handler`].
//!
//! ```text
//!  Scenario ──build()──► World { sampler, … models as they land … }
//!                        + Simulation<Event> seeded with initial events
//!                               │
//!                     run() ────┴──► RunOutput { summary, series, trace, timing }
//! ```
//!
//! Models are plain structs that hold no reference to one another. The world
//! owns them all and routes each [`Event`] to its model; whatever one model
//! tells another travels as a scheduled event, so the kernel's total order is
//! the only order there is.
//!
//! # Causal order of same-instant events
//! Events at the same simulated time run in the order they were scheduled
//! (see [`crate::kernel::sim`]). The builder schedules initial events in a
//! fixed order: the sampler's first tick, the grid's (profile step,
//! switching, faults), the mesh's routing timers and faults, the LMUs'
//! power-on instants, then the gateway's (link up, round deadlines,
//! outages, operator commands). So at `t = 0` the sampler records the state
//! before any model has acted.
//!
//! Within one event, effects follow cause immediately: when the grid
//! solves, every LMU measures the new solution in that same event, in node
//! order; an LMU's frames enter the mesh at once; its contactor switching
//! is scheduled at the same instant (after what is already pending), and
//! its set-points change the grid at once, with the re-solve scheduled at
//! the same instant.
//!
//! A fault's effect reaches the LMUs at the fault instant: `FaultOn`
//! schedules a `Resolve` at the same instant, whose solve every LMU
//! measures at once (fault current, direction). The breaker's pick-up is
//! checked after that solve and arms its trip `trip_delay` later; the trip
//! opens the breaker and re-solves at that instant, so the LMUs see the
//! feeder die at the trip instant; a reclose does the same at its instant.
//! LMUs also measure every [`MEASURE_INTERVAL`] between grid changes.
//!
//! With a grid and a ledger, the end of a metering interval reads the
//! grid's meters at that instant (the grid brought up to it first), hands
//! the readings to the ledger, and then applies the DR enrolments of the
//! next interval to the grid's loads at the same instant (their re-solve
//! scheduled there too), so the interval's energy is metered before the
//! shedding starts.

pub mod coverage;
pub mod customers;
pub mod flisr;
pub mod gateway;
pub mod grid;
pub mod ledger;
pub mod lmu;
pub mod mesh;
pub mod outputs;

use std::collections::BTreeMap;
use std::time::Instant;

use gridtwin_lmu::node::{Input, Setpoint};

use crate::grid::model::{FaultEffect, GridEvent, GridModel};
use crate::grid::powerflow::PowerFlowError;
use crate::kernel::{
    Context, EventId, Handler, Observer, RunLimits, ScheduleError, SimDuration, SimTime,
    Simulation, StopReason,
};
use crate::mesh::routing::MeshEvent;
use crate::metrics::{EventTrace, Summary, TimeSeries, Timing, TraceRow};
use crate::scenario::dto::{FaultFile, SensorFile, SensorModeFile};
use crate::scenario::locate::Seg;
use crate::scenario::{Scenario, Trace};

/// Every event of the world, routed to the model that handles it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Record one row of the time series.
    Sample,
    /// An event of the grid model.
    Grid(GridEvent),
    /// An event of the mesh.
    Mesh(MeshEvent),
    /// A mesh fault starts (`true`) or ends.
    MeshFault(usize, bool),
    /// An LMU boots (its first power-up).
    LmuBoot(u32),
    /// An LMU's timer is due.
    LmuTimer(u32),
    /// Every LMU measures the grid as it stands (between grid changes, so
    /// that their 10-minute aggregates and faulty sensors see time pass).
    LmuMeasure,
    /// A demand-response reduction of an LMU's section ends (the number
    /// tells the reductions apart).
    LoadRestore(u32, u64),
    /// An event of a gateway (by index) or the cloud. Boxed, as are the
    /// ledger's and command frames, so that every event in the queue is
    /// as small as the mesh's (32 bytes rather than 176).
    Gateway(u32, Box<gateway::GatewayEvent>),
    /// An event of the ledger.
    Ledger(Box<crate::ledger::chain::LedgerEvent>),
    /// A command frame has crossed the UART to the coordinator, for an LMU.
    CommandFrame(Box<CommandFrame>),
}

// Events are moved as the queue sorts them: keep them small.
const _: () = assert!(std::mem::size_of::<Event>() <= 32);

/// A command frame for an LMU, at the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandFrame {
    /// The LMU.
    pub lmu: u32,
    /// The sealed frame.
    pub frame: Vec<u8>,
    /// The command's id.
    pub id: String,
}

impl Event {
    /// A short stable description for the event trace.
    pub fn label(&self) -> &'static str {
        match self {
            Event::Sample => "sample",
            Event::Grid(g) => g.label(),
            Event::Mesh(_) => "mesh",
            Event::MeshFault(..) => "mesh.fault",
            Event::LmuBoot(_) => "lmu.boot",
            Event::LmuTimer(_) => "lmu.timer",
            Event::LmuMeasure => "lmu.measure",
            Event::LoadRestore(..) => "lmu.load_restore",
            Event::Gateway(_, g) => g.label(),
            Event::CommandFrame(_) => "gateway.command_frame",
            Event::Ledger(_) => "ledger",
        }
    }
}

/// The time-series recorder: a model like any other, ticking at the sample
/// interval.
#[derive(Debug)]
struct Sampler {
    interval: SimDuration,
    end: SimTime,
    series: TimeSeries,
}

impl Sampler {
    fn tick(&mut self, cx: &mut Context<'_, Event>) -> Result<(), ScheduleError> {
        let now = cx.now();
        self.series.push(&[
            now.as_secs_f64(),
            cx.events_handled() as f64,
            cx.pending() as f64,
        ]);
        if let Some(next) = now.checked_add(self.interval)
            && next <= self.end
        {
            cx.schedule_at(next, Event::Sample)?;
        }
        Ok(())
    }
}

/// Every model of a scenario.
#[derive(Debug)]
pub struct World {
    sampler: Sampler,
    /// The grid, if the scenario has one.
    grid: Option<GridModel>,
    /// The mesh, if the scenario has one.
    mesh: Option<mesh::MeshApp>,
    /// The LMUs (with the mesh).
    lmus: Option<lmu::LmuHost>,
    /// The gateways and the cloud, if the scenario has them.
    gateway: Option<gateway::Gateways>,
    /// The ledger, if the scenario has one.
    ledger: Option<crate::ledger::chain::ChainModel>,
    /// The grid's meters feeding the ledger (with a grid and a ledger).
    meters: Option<ledger::GridMeters>,
    /// Mesh frames that carry commands: tag → command id.
    command_tags: BTreeMap<u64, String>,
    /// Short circuits that struck before every LMU had booted and had its
    /// routes.
    faults_in_warm_up: u64,
    /// The coverage warnings of the LMUs' and breakers' pickups.
    coverage_warnings: Vec<String>,
    /// The grid solves the LMUs have measured.
    solves_seen: u64,
    /// The latest demand-response reduction of each LMU's section.
    dr_generation: BTreeMap<u32, u64>,
    /// Event messages published so far (kept only when asked for, for the
    /// live bridge): (time, topic, JSON).
    published: Option<Vec<(SimTime, String, Vec<u8>)>>,
    /// The first failure inside a handler, if any: handlers cannot return
    /// errors through the kernel, so the world keeps it for `run` and halts
    /// the run.
    failure: Option<WorldError>,
}

impl World {
    /// The grid model, if the scenario has one.
    pub fn grid(&self) -> Option<&GridModel> {
        self.grid.as_ref()
    }

    /// The gateways and the cloud, if the scenario has them.
    pub fn gateway(&self) -> Option<&gateway::Gateways> {
        self.gateway.as_ref()
    }

    /// The LMUs, if the scenario has a mesh.
    pub fn lmus(&self) -> Option<&lmu::LmuHost> {
        self.lmus.as_ref()
    }

    /// Hands LMU `n` to a board in the loop (see [`lmu::LmuHost::attach`]).
    /// Before the run starts.
    pub fn attach_board(
        &mut self,
        n: u32,
        board: crate::hil::Board,
        on_reset: crate::hil::OnReset,
    ) -> Result<(), WorldError> {
        let host = self.lmus.as_mut().ok_or_else(|| {
            WorldError::HilSetup("the scenario has no mesh, so no LMUs for a board to run".into())
        })?;
        host.attach(n, board, on_reset)
            .map_err(WorldError::HilSetup)
    }

    /// Keeps every event message the gateway publishes from now on, for
    /// [`World::published`].
    pub fn keep_published(&mut self) {
        self.published.get_or_insert_with(Vec::new);
    }

    /// The event messages published so far (with [`World::keep_published`]):
    /// (time, topic, JSON).
    pub fn published(&self) -> &[(SimTime, String, Vec<u8>)] {
        self.published.as_deref().unwrap_or(&[])
    }

    fn sample(&mut self, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        if let Some(g) = &mut self.grid {
            g.advance_to(now).map_err(|e| WorldError::grid(now, e))?;
            g.record(now);
        }
        self.after_grid(cx)?;
        Ok(self.sampler.tick(cx)?)
    }

    fn grid_event(&mut self, ev: GridEvent, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        let Some(g) = &mut self.grid else {
            return Ok(());
        };
        // The warm-up rule: a short circuit strikes only once every LMU
        // has booted and has its routes.
        if let (GridEvent::FaultOn(i), Some(h), Some(m)) = (&ev, &self.lmus, &self.mesh)
            && g.faults()
                .get(*i)
                .is_some_and(|f| matches!(f.effect, FaultEffect::Short { .. }))
            && h.unready(|n| m.routed(n)) > 0
        {
            self.faults_in_warm_up += 1;
        }
        for (t, e) in g.handle(now, ev).map_err(|e| WorldError::grid(now, e))? {
            cx.schedule_at(t, Event::Grid(e))?;
        }
        self.after_grid(cx)
    }

    /// The periodic measurement: the grid brought up to now, every LMU
    /// measures it; the next in [`MEASURE_INTERVAL`].
    fn lmu_measure(&mut self, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        let (Some(g), Some(host)) = (&mut self.grid, &mut self.lmus) else {
            return Ok(());
        };
        g.advance_to(now).map_err(|e| WorldError::grid(now, e))?;
        self.solves_seen = g.solves();
        if let Some(t) = now.checked_add(MEASURE_INTERVAL) {
            cx.schedule_at(t, Event::LmuMeasure)?;
        }
        let Some(sol) = g.solution() else {
            return Ok(());
        };
        for (n, e) in host.measure(now, g.network(), sol) {
            self.lmu_effects(n, e, None, cx)?;
        }
        Ok(())
    }

    /// After the grid may have solved: a new solution reaches every LMU at
    /// once, as their measurement.
    fn after_grid(&mut self, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let (Some(g), Some(host)) = (&self.grid, &mut self.lmus) else {
            return Ok(());
        };
        if g.solves() == self.solves_seen {
            return Ok(());
        }
        self.solves_seen = g.solves();
        let Some(sol) = g.solution() else {
            return Ok(());
        };
        let now = cx.now();
        for (n, e) in host.measure(now, g.network(), sol) {
            self.lmu_effects(n, e, None, cx)?;
        }
        Ok(())
    }
}

impl World {
    fn mesh_event(&mut self, e: MeshEvent, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        if let Some(m) = &mut self.mesh {
            let (ev, arrivals) = m.handle(now, e);
            for (t, e) in ev {
                cx.schedule_at(t, Event::Mesh(e))?;
            }
            self.arrivals(arrivals, cx)?;
        }
        Ok(())
    }

    fn mesh_fault(
        &mut self,
        i: usize,
        on: bool,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        let now = cx.now();
        let Some(m) = &mut self.mesh else {
            return Ok(());
        };
        for (t, e) in m.fault(now, i, on) {
            cx.schedule_at(t, Event::Mesh(e))?;
        }
        if let (Some(n), Some(host)) = (m.crashed_by(i), &mut self.lmus) {
            if on {
                if let Some((_, id)) = host.timer(n) {
                    cx.cancel(id);
                }
                host.set_timer(n, None);
                host.crash(n);
            } else {
                host.reboot(n);
                // Its first call after the reboot, as at a timer.
                return self.lmu_input(n, false, cx);
            }
        }
        Ok(())
    }

    /// Sends a frame over the mesh and handles what arrives at once.
    fn mesh_send(
        &mut self,
        src: u32,
        dst: u32,
        bytes: Vec<u8>,
        command: Option<String>,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        let now = cx.now();
        let Some(m) = &mut self.mesh else {
            return Ok(());
        };
        if dst != crate::mesh::routing::ANY_ROOT && dst as usize >= m.len() {
            return Ok(());
        }
        let (ev, arrivals) = m.send(now, src, dst, bytes);
        if let (Some(id), Some(tag)) = (command, m.last_tag()) {
            self.command_tags.insert(tag, id);
        }
        for (t, e) in ev {
            cx.schedule_at(t, Event::Mesh(e))?;
        }
        self.arrivals(arrivals, cx)
    }

    /// Frames that reached their node: the coordinator hands them to the
    /// gateway; an LMU takes them as input.
    fn arrivals(
        &mut self,
        arrivals: Vec<mesh::Arrival>,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        for a in arrivals {
            let command = self.command_tags.remove(&a.tag);
            if self.mesh.as_ref().is_some_and(|m| m.is_root(a.dst)) {
                if let Some(g) = &mut self.gateway {
                    let step = g.from_mesh(a.dst, a.at.max(cx.now()), a.bytes);
                    self.gateway_step(step, cx)?;
                }
                continue;
            }
            let now = cx.now();
            let effects = self
                .lmus
                .as_mut()
                .and_then(|h| h.call(now, a.dst, Input::Frame(&a.bytes)));
            if let Some(e) = effects {
                self.lmu_effects(a.dst, e, command, cx)?;
            }
        }
        Ok(())
    }

    /// Carries out what an LMU asked for: frames onto the mesh, contactor
    /// switching onto the grid, set-points onto its section, and the
    /// command it carried out back to the cloud's records. Then its timer.
    fn lmu_effects(
        &mut self,
        n: u32,
        e: lmu::Effects,
        command: Option<String>,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        let now = cx.now();
        if !e.executed.is_empty()
            && let (Some(id), Some(g)) = (&command, &mut self.gateway)
        {
            g.executed(id, now);
        }
        if let Some((branch, close)) = e.switch {
            cx.schedule_at(now, Event::Grid(GridEvent::Switch { branch, close }))?;
        }
        if let (Some(sp), Some(host), Some(g)) = (e.setpoint, &self.lmus, &mut self.grid)
            && let Some(place) = host.place(n)
        {
            let ev = match sp {
                Setpoint::PvLimit { percent } => {
                    g.set_pv_limit(now, &place.pvs, f64::from(percent) / 100.0)
                }
                Setpoint::LoadReduction { percent, minutes } => {
                    let gen_ = self.dr_generation.entry(n).or_default();
                    *gen_ += 1;
                    if minutes > 0 {
                        let end = now.saturating_add(
                            SimDuration::from_mins(u64::from(minutes)).unwrap_or(SimDuration::MAX),
                        );
                        cx.schedule_at(end, Event::LoadRestore(n, *gen_))?;
                    }
                    g.set_load_scale(now, &place.loads, 1.0 - f64::from(percent) / 100.0)
                }
            };
            for (t, e) in ev {
                cx.schedule_at(t, Event::Grid(e))?;
            }
        }
        for (dst, bytes) in e.frames {
            // To the gateway: up to whichever coordinator the frame reaches.
            let dst = if dst == lmu::GATEWAY_NODE {
                crate::mesh::routing::ANY_ROOT
            } else {
                dst
            };
            self.mesh_send(n, dst, bytes, None, cx)?;
        }
        self.lmu_timer(n, cx)
    }

    /// Keeps one pending timer event per LMU, at its `poll_at`.
    fn lmu_timer(&mut self, n: u32, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let Some(host) = &mut self.lmus else {
            return Ok(());
        };
        let want = host.poll_at(n).map(|t| t.max(cx.now()));
        let have = host.timer(n);
        if want == have.map(|h| h.0) {
            return Ok(());
        }
        if let Some((_, id)) = have {
            cx.cancel(id);
        }
        let next = match want {
            Some(t) => Some((t, cx.schedule_at(t, Event::LmuTimer(n))?)),
            None => None,
        };
        host.set_timer(n, next);
        Ok(())
    }

    fn lmu_input(
        &mut self,
        n: u32,
        boot: bool,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        let now = cx.now();
        let up = self.mesh.as_ref().is_some_and(|m| m.is_up(n));
        let Some(host) = &mut self.lmus else {
            return Ok(());
        };
        if boot {
            if !up {
                // Crashed before its first boot: it comes up at its reboot.
                return Ok(());
            }
            host.power_on(n);
        } else {
            host.set_timer(n, None);
        }
        if let Some(e) = host.call(now, n, Input::Timer) {
            self.lmu_effects(n, e, None, cx)?;
        }
        Ok(())
    }

    fn load_restore(
        &mut self,
        n: u32,
        gen_: u64,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        if self.dr_generation.get(&n) != Some(&gen_) {
            return Ok(());
        }
        let now = cx.now();
        if let (Some(host), Some(g)) = (&self.lmus, &mut self.grid)
            && let Some(place) = host.place(n)
        {
            for (t, e) in g.set_load_scale(now, &place.loads, 1.0) {
                cx.schedule_at(t, Event::Grid(e))?;
            }
        }
        Ok(())
    }

    fn gateway_event(
        &mut self,
        gw: u32,
        e: gateway::GatewayEvent,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        let now = cx.now();
        if let Some(g) = &mut self.gateway {
            let step = g.handle(gw, now, e);
            self.gateway_step(step, cx)?;
        }
        Ok(())
    }

    fn gateway_step(
        &mut self,
        step: gateway::Step,
        cx: &mut Context<'_, Event>,
    ) -> Result<(), WorldError> {
        let now = cx.now();
        for (t, gw, e) in step.events {
            cx.schedule_at(t, Event::Gateway(gw, Box::new(e)))?;
        }
        for d in step.downlink {
            cx.schedule_at(
                d.at,
                Event::CommandFrame(Box::new(CommandFrame {
                    lmu: d.lmu,
                    frame: d.frame,
                    id: d.id,
                })),
            )?;
        }
        if let Some(log) = &mut self.published {
            log.extend(step.published.into_iter().map(|(t, p)| (now, t, p)));
        }
        Ok(())
    }
}

impl Handler for World {
    type Event = Event;

    fn handle(&mut self, event: Event, cx: &mut Context<'_, Event>) {
        let result = match event {
            Event::Sample => self.sample(cx),
            Event::Grid(g) => self.grid_event(g, cx),
            Event::Mesh(m) => self.mesh_event(m, cx),
            Event::MeshFault(i, on) => self.mesh_fault(i, on, cx),
            Event::LmuBoot(n) => self.lmu_input(n, true, cx),
            Event::LmuTimer(n) => self.lmu_input(n, false, cx),
            Event::LmuMeasure => self.lmu_measure(cx),
            Event::LoadRestore(n, g) => self.load_restore(n, g, cx),
            Event::Gateway(gw, e) => self.gateway_event(gw, *e, cx),
            Event::Ledger(e) => {
                let now = cx.now();
                let mut r = Ok(());
                if let (crate::ledger::chain::LedgerEvent::Meter(k), Some(l), Some(m), Some(g)) =
                    (&*e, &mut self.ledger, &mut self.meters, &mut self.grid)
                {
                    // The grid's meters read the interval, and DR enrolments
                    // shed loads from now.
                    let k = *k;
                    let res = g.advance_to(now).map_err(|e| WorldError::grid(now, e));
                    let readings = m.read(g, now, l.interval().as_secs_f64() / 3600.0);
                    let mut ev: Vec<Event> = Vec::new();
                    let mut at = Vec::new();
                    for (t, e) in l.meter_with(now, k, &readings) {
                        at.push(t);
                        ev.push(Event::Ledger(Box::new(e)));
                    }
                    for (t, e) in m.demand_response(g, l, now, k) {
                        at.push(t);
                        ev.push(Event::Grid(e));
                    }
                    r = res.and_then(|()| {
                        for (t, e) in at.into_iter().zip(ev) {
                            cx.schedule_at(t, e)?;
                        }
                        Ok(())
                    });
                } else if let Some(l) = &mut self.ledger {
                    for (t, e) in l.handle(now, *e) {
                        if let Err(err) = cx.schedule_at(t, Event::Ledger(Box::new(e))) {
                            r = Err(WorldError::from(err));
                            break;
                        }
                    }
                }
                r
            }
            Event::CommandFrame(c) => {
                let CommandFrame { lmu, frame, id } = *c;
                let root = self.mesh.as_ref().map_or(0, |m| m.root_for(lmu));
                self.mesh_send(root, lmu, frame, Some(id), cx)
            }
        };
        let result = result.and_then(|()| {
            match self.lmus.as_mut().and_then(lmu::LmuHost::take_hil_failure) {
                Some(e) => Err(WorldError::Hil(e)),
                None => Ok(()),
            }
        });
        if let Err(e) = result {
            self.failure.get_or_insert(e);
            cx.halt();
        }
    }
}

/// Why a world could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// An event could not be scheduled (e.g. beyond the end of time).
    #[error("scheduling failed: {0}")]
    Schedule(#[from] ScheduleError),
    /// The grid could not be built from the scenario.
    #[error(transparent)]
    GridBuild(#[from] grid::GridBuildError),
    /// An edge adapter beside the run (the live MQTT bridge) failed.
    #[error("{0}")]
    Edge(String),
    /// A board in the loop failed (the cause is in the message).
    #[error("board in the loop: {0}")]
    Hil(crate::hil::HilError),
    /// A board could not be given its LMU (e.g. no such LMU).
    #[error("{0}")]
    HilSetup(String),
    /// A power flow failed during the run.
    #[error("grid at t = {at}: {source}")]
    Grid {
        /// When.
        at: SimTime,
        /// Why.
        source: PowerFlowError,
    },
}

impl WorldError {
    fn grid(at: SimTime, source: PowerFlowError) -> WorldError {
        WorldError::Grid { at, source }
    }

    /// Whether the scenario (or a file it names) is at fault rather than
    /// the run.
    pub fn is_input_error(&self) -> bool {
        matches!(self, WorldError::GridBuild(_) | WorldError::HilSetup(_))
    }
}

/// The builder: a scenario's world and its simulation, seeded with the
/// initial events.
pub fn build(scenario: &Scenario) -> Result<(World, Simulation<Event>), WorldError> {
    let end = SimTime::ZERO
        .checked_add(scenario.duration)
        .ok_or(ScheduleError::Overflow {
            now: SimTime::ZERO,
            delay: scenario.duration,
        })?;
    let mut sim = Simulation::new();
    let setup = grid::setup(scenario)?;
    let mut mesh = match &scenario.mesh {
        Some(m) => Some(mesh::MeshApp::build(
            scenario,
            m,
            setup.as_ref().map(|s| &s.net),
        )?),
        None => None,
    };
    let mut coverage_warnings = Vec::new();
    let lmus = match mesh.as_ref() {
        None => None,
        Some(m) => Some({
            let buses: Vec<Option<usize>> = (0..m.len() as u32).map(|n| m.bus_of(n)).collect();
            let places = match &setup {
                Some(s) => lmu::place(&s.net, &buses, m.coordinators()),
                None => vec![None; buses.len()],
            };
            let prot = scenario
                .mesh
                .as_ref()
                .map(|mf| mf.lmu_protection.clone())
                .unwrap_or_default();
            // The settings, and the coverage of the LMUs' and the breakers'
            // pickups, from the feeder.
            let settings = match &setup {
                Some(s) => {
                    let plan = coverage::plan(&prot, s, &places, m.coordinators())
                        .map_err(|e| WorldError::grid(SimTime::ZERO, e))?;
                    coverage_warnings = plan.warnings;
                    plan.settings
                }
                None => coverage::fixed(&prot, places.len()),
            };
            let mut host = lmu::LmuHost::new(places, m.report_interval(), m.coordinators());
            host.set_protection(settings);
            if let Some(mf) = &scenario.mesh {
                host.set_waveform_lmus(&mf.waveform_lmus);
            }
            let t = |d: SimDuration| SimTime::ZERO.saturating_add(d);
            host.set_sensor_faults(
                scenario
                    .faults
                    .iter()
                    .filter_map(|f| match f {
                        FaultFile::SensorFault(s) => Some(lmu::SensorFault::new(
                            s.node,
                            s.sensor == SensorFile::Current,
                            match s.mode {
                                SensorModeFile::Stuck => None,
                                SensorModeFile::Drift { pct_per_h } => Some(pct_per_h / 100.0),
                            },
                            t(s.at),
                            s.duration.map(|d| t(s.at).saturating_add(d)),
                        )),
                        _ => None,
                    })
                    .collect(),
            );
            host
        }),
    };
    let mut gateway = match (&scenario.gateway, &mesh) {
        (Some(g), Some(m)) => {
            let buses: Vec<Option<usize>> = (0..m.len() as u32).map(|n| m.bus_of(n)).collect();
            let homes = lmu::homes(setup.as_ref().map(|s| &s.net), &buses, m.coordinators());
            Some(gateway::Gateways::build(
                scenario,
                g,
                m.coordinators(),
                homes,
                m.report_interval(),
            )?)
        }
        _ => None,
    };
    let mut grid = setup.map(GridModel::new);
    if let (Some(g), Some(m)) = (&mut grid, &mesh) {
        let buses: Vec<Option<usize>> = (0..m.len() as u32).map(|n| m.bus_of(n)).collect();
        let watch = watched(scenario, g, &buses)?;
        g.watch(&watch);
    }
    // The sampler's first tick goes first; models it reads (the grid) bring
    // themselves up to the sampled instant on demand.
    sim.schedule_at(SimTime::ZERO, Event::Sample)?;
    if let Some(g) = &grid {
        for (t, e) in g.initial_events() {
            if t <= end {
                sim.schedule_at(t, Event::Grid(e))?;
            }
        }
    }
    if let Some(m) = &mut mesh {
        for (t, e) in m.start() {
            sim.schedule_at(t, Event::Mesh(e))?;
        }
        for (t, i, on) in m.fault_events() {
            if t <= end {
                sim.schedule_at(t, Event::MeshFault(i, on))?;
            }
        }
    }
    if lmus.is_some() && grid.is_some() {
        sim.schedule_at(
            SimTime::ZERO.saturating_add(MEASURE_INTERVAL),
            Event::LmuMeasure,
        )?;
    }
    if let Some(host) = &lmus {
        for (t, n) in host.start(scenario.seed) {
            if t <= end {
                sim.schedule_at(t, Event::LmuBoot(n))?;
            }
        }
    }
    if let Some(g) = &mut gateway {
        for (t, gw, e) in g.start().events {
            sim.schedule_at(t, Event::Gateway(gw, Box::new(e)))?;
        }
    }
    let (ledger, meters) = match &scenario.ledger {
        Some(l) => {
            let (c, m) = ledger::build(scenario, l, grid.as_ref());
            (Some(c), m)
        }
        None => (None, None),
    };
    if let Some(l) = &ledger {
        for (t, e) in l.start() {
            if t <= end {
                sim.schedule_at(t, Event::Ledger(Box::new(e)))?;
            }
        }
    }
    let world = World {
        coverage_warnings,
        sampler: Sampler {
            interval: scenario.outputs.sample_interval,
            end,
            series: TimeSeries::new("timeseries", &["t_s", "kernel.events", "kernel.pending"]),
        },
        grid,
        mesh,
        lmus,
        gateway,
        ledger,
        meters,
        command_tags: BTreeMap::new(),
        faults_in_warm_up: 0,
        solves_seen: 0,
        dr_generation: BTreeMap::new(),
        published: None,
        failure: None,
    };
    Ok((world, sim))
}

/// Between the LMUs' periodic measurements of the grid (they also measure
/// every new grid solution at once).
pub const MEASURE_INTERVAL: SimDuration = SimDuration::from_nanos(60_000_000_000);

/// The (node, bus) pairs whose phase voltages every sample records: the
/// scenario's `outputs.watch_lmus` (nodes off the grid skipped), or
/// [`outputs::default_watch`] when it names none.
fn watched(
    scenario: &Scenario,
    g: &GridModel,
    buses: &[Option<usize>],
) -> Result<Vec<(u32, usize)>, WorldError> {
    if scenario.outputs.watch_lmus.is_empty() {
        return Ok(outputs::default_watch(g.network(), g.faults(), buses));
    }
    let mut w = Vec::new();
    for (i, &n) in scenario.outputs.watch_lmus.iter().enumerate() {
        let Some(b) = buses.get(n as usize) else {
            let err = scenario.error_at(
                &[
                    Seg::Field("outputs".into()),
                    Seg::Field("watch_lmus".into()),
                    Seg::Index(i),
                ],
                format!(
                    "the mesh has {} nodes (0 to {}), not node {n}",
                    buses.len(),
                    buses.len().saturating_sub(1)
                ),
                None,
            );
            return Err(grid::GridBuildError::Scenario(Box::new(err)).into());
        };
        if let Some(b) = b {
            w.push((n, *b));
        }
    }
    Ok(w)
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Headline metrics (`summary.json`).
    pub summary: Summary,
    /// Wall-clock figures (`timing.json`).
    pub timing: Timing,
    /// Time series (one CSV each).
    pub series: Vec<TimeSeries>,
    /// Other files: (name in the results folder, contents).
    pub files: Vec<(String, Vec<u8>)>,
    /// The first broken invariant (a bug): the results are written, then
    /// the run fails with it.
    pub violation: Option<String>,
    /// Why the run stopped before its end, if it did: a failed power flow,
    /// a board in the loop, an edge adapter (the live bridge). The results
    /// hold what the run had up to then, and `summary.json` says
    /// `sim.partial: true` with the reason in `sim.failure`.
    pub failure: Option<WorldError>,
    /// The event trace, if the scenario asked for one.
    pub trace: Option<EventTrace>,
    /// Sections that the LMUs' or the breakers' pickups would not see, and
    /// insecure pickups ([`coverage`]), one sentence each.
    pub coverage_warnings: Vec<String>,
    /// Every short circuit's FLISR outcome, in inception order (the rows
    /// of `flisr.csv`).
    pub flisr: Vec<flisr::FaultOutcome>,
}

/// Records every event into an [`EventTrace`].
#[derive(Debug, Default)]
struct TraceSink {
    trace: Option<EventTrace>,
}

impl Observer<World> for TraceSink {
    fn on_event(&mut self, id: EventId, event: &Event) {
        if let Some(t) = &mut self.trace {
            t.push(TraceRow {
                t_ns: id.time().as_nanos(),
                seq: id.seq(),
                event: event.label().to_string(),
            });
        }
    }
}

/// Something outside the simulation that runs beside it (the live MQTT
/// bridge, a command replay): it decides how far the simulation may go
/// next, and between steps it may read the world and inject events. The
/// world stays free of IO; a driver is an edge adapter.
pub trait Driver {
    /// Before the first step.
    fn start(
        &mut self,
        _world: &mut World,
        _sim: &mut Simulation<Event>,
    ) -> Result<(), WorldError> {
        Ok(())
    }
    /// The simulated time to run up to (inclusive) from `now`; at most
    /// `end`.
    fn next_stop(&mut self, _now: SimTime, end: SimTime) -> SimTime {
        end
    }
    /// After each step, with every event up to `sim.now()` handled.
    fn after_step(
        &mut self,
        _world: &mut World,
        _sim: &mut Simulation<Event>,
    ) -> Result<(), WorldError> {
        Ok(())
    }
    /// After the last step (or a failure): headline metrics and files of
    /// its own. An error (e.g. the live bridge could not deliver what it
    /// holds) fails the run, whose results are still written.
    fn finish(
        &mut self,
        _summary: &mut Summary,
        _files: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), WorldError> {
        Ok(())
    }
}

/// The driver that runs to the end in one step.
#[derive(Debug, Default)]
pub struct Unattended;

impl Driver for Unattended {}

impl World {
    /// Sections that the LMUs' or the breakers' pickups would not see, and
    /// insecure pickups, one sentence each.
    pub fn coverage_warnings(&self) -> &[String] {
        &self.coverage_warnings
    }
}

impl RunOutput {
    /// The output of a run that reached its end; the failure that stopped
    /// it short otherwise (its partial results dropped).
    pub fn complete(self) -> Result<RunOutput, WorldError> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

/// Builds and runs a scenario to its end; `observer` watches (e.g. a
/// progress bar). `threads` is recorded in the timing only: the kernel is
/// single-threaded and results never depend on it. A run that fails is an
/// error here; [`run_driven`] keeps its partial results.
pub fn run<O: Observer<World>>(
    scenario: &Scenario,
    threads: usize,
    observer: &mut O,
) -> Result<RunOutput, WorldError> {
    run_driven(scenario, threads, observer, &mut Unattended)?.complete()
}

/// [`run`] with a [`Driver`] beside the simulation. An error only when the
/// world cannot be built; a run that fails once started returns what it
/// had, with the reason in [`RunOutput::failure`] and `sim.partial: true`
/// in its summary.
pub fn run_driven<O: Observer<World>>(
    scenario: &Scenario,
    threads: usize,
    observer: &mut O,
    driver: &mut dyn Driver,
) -> Result<RunOutput, WorldError> {
    let (mut world, mut sim) = build(scenario)?;
    let end = SimTime::ZERO.saturating_add(scenario.duration);
    let mut sinks = (
        TraceSink {
            trace: (scenario.outputs.trace == Trace::Events).then(EventTrace::default),
        },
        observer,
    );
    let wall = Instant::now();
    let mut failure = driver.start(&mut world, &mut sim).err();
    let mut events = 0u64;
    // The last step's clock and stop reason (a run whose start failed
    // stops at zero, halted).
    let (mut reason, mut stopped_at) = (StopReason::Halted, sim.now());
    while failure.is_none() {
        let stop_at = driver.next_stop(sim.now(), end).min(end);
        let limits = RunLimits {
            stop_at,
            max_events: scenario.max_events.map(|m| m.saturating_sub(events)),
        };
        let step = sim.run(&mut world, limits, &mut sinks);
        events += step.events;
        (reason, stopped_at) = (step.reason, step.end);
        if let Some(e) = world.failure.take() {
            failure = Some(e);
            break;
        }
        if let Err(e) = driver.after_step(&mut world, &mut sim) {
            failure = Some(e);
            break;
        }
        let done = match step.reason {
            StopReason::StopTime | StopReason::Exhausted => stop_at >= end,
            _ => true,
        };
        if done {
            break;
        }
    }
    let stats = crate::kernel::RunStats {
        events,
        end: stopped_at,
        reason,
    };
    let wall_s = wall.elapsed().as_secs_f64();

    let mut summary = Summary::new();
    summary.set_u64("sim.seed", scenario.seed);
    summary.set_f64("sim.duration_s", scenario.duration.as_secs_f64());
    summary.set_f64("sim.end_s", stats.end.as_secs_f64());
    summary.set_u64("kernel.events", events);
    summary.set_u64("kernel.pending_at_end", sim.pending() as u64);
    summary.set_text("kernel.stop_reason", stats.reason.as_str());
    let mut series = vec![world.sampler.series];
    let mut files = Vec::new();
    let mut flisr_outcomes = Vec::new();
    if let (Some(g), Some(h)) = (&world.grid, &world.lmus) {
        files.push((
            "lmus.csv".to_string(),
            h.pq_finish(g.network(), &mut summary),
        ));
        let o = flisr::outcomes(
            g.network(),
            g.faults(),
            h,
            g.customers(),
            g.interruptions(),
            stats.end,
            &flisr::Context {
                breakers: g.breaker_log(),
                mesh: world.mesh.as_ref(),
            },
        );
        let spurious = flisr::spurious_detections(g.faults(), h, stats.end);
        summary.set_u64("flisr.faults_in_warm_up", world.faults_in_warm_up);
        summary.set_u64(
            "protection.coverage_warnings",
            world.coverage_warnings.len() as u64,
        );
        files.push((
            "flisr.csv".to_string(),
            flisr::finish(&o, spurious, g.network(), &mut summary),
        ));
        files.push((
            "flisr_marks.csv".to_string(),
            flisr::marks_csv(h, stats.end),
        ));
        flisr_outcomes = o;
    }
    if let Some(g) = &world.grid {
        let net = g.network();
        let (lo, hi) = g.extreme_snapshots();
        files.push(("profile.csv".to_string(), outputs::profile_csv(net, lo, hi)));
        if world.mesh.is_some() {
            files.push((
                "lmu_voltages.csv".to_string(),
                outputs::lmu_voltages_csv(net, g.watch_rows()),
            ));
        }
        if !g.breakers().is_empty() {
            files.push((
                "breakers.csv".to_string(),
                outputs::breakers_csv(net, g.breaker_log()),
            ));
        }
        files.push((
            "interruptions.csv".to_string(),
            outputs::interruptions_csv(net, g.customers(), g.interruptions(), stats.end),
        ));
    }
    if let Some(m) = world.mesh {
        files.extend(m.finish(world.grid.as_ref().map(GridModel::network), &mut summary));
    }
    if let Some(g) = &world.grid {
        let records = g.customer_records(stats.end);
        let ledger = match (&world.ledger, &world.meters) {
            (Some(l), Some(m)) => Some((l, m)),
            _ => None,
        };
        files.push((
            "customers.csv".to_string(),
            customers::csv(g.network(), &records, world.lmus.as_ref(), ledger),
        ));
    }
    if let Some(g) = world.grid {
        series.push(g.finish(stats.end, &mut summary));
    }
    if let Some(h) = &world.lmus {
        let s = h.stats();
        summary.set_u64(
            "lmu.count",
            h.len().saturating_sub(h.first() as usize) as u64,
        );
        summary.set_u64("lmu.reports", s.reports);
        summary.set_u64("lmu.contactor_operations", s.contactor_ops);
        summary.set_u64("lmu.commands_executed", s.commands_executed);
        summary.set_u64("lmu.frames_rejected", s.frames_rejected);
        summary.set_u64("lmu.reboots", s.reboots);
        summary.set_u64("lmu.waveform_inputs", s.waveform_inputs);
        summary.set_u64("lmu.isolations", s.isolations);
        summary.set_u64("lmu.isolations_downstream", s.isolations_downstream);
    }
    let mut hil_timing = None;
    if let Some(h) = &mut world.lmus
        && let Some(r) = h.hil_finish()
    {
        match r {
            Ok(r) => {
                summary.set_u64("hil.boards", r.boards);
                summary.set_u64("hil.steps", r.steps);
                summary.set_u64("hil.divergences", r.divergences);
                summary.set_u64("hil.retries", r.retries);
                summary.set_u64("hil.resyncs", r.resyncs);
                summary.set_u64("hil.board_resyncs", r.board_resyncs);
                summary.set_u64("hil.resets", r.resets);
                summary.set_u64("hil.reinits", r.reinits.len() as u64);
                files.push(("hil_divergences.csv".to_string(), r.divergences_csv));
                files.push(("hil_resets.csv".to_string(), lmu::resets_csv(&r.reinits)));
                hil_timing = Some(crate::metrics::HilTiming::from_rtts(&r.rtts_s, wall_s));
            }
            Err(e) => {
                failure.get_or_insert(WorldError::Hil(e));
            }
        }
    }
    let mut violation = None;
    if let Some(g) = world.gateway {
        files.push(("commands.csv".to_string(), g.commands_csv()));
        let (rounds, broken) = g.finish(&mut summary);
        series.push(rounds);
        violation = broken;
    }
    if let Some(l) = world.ledger {
        files.push(("market.csv".to_string(), l.market_csv()));
        files.push(("blocks.csv".to_string(), l.blocks_csv()));
        let (wallets, first) = l.finish(stats.end, &mut summary);
        files.push(("wallets.csv".to_string(), wallets));
        violation = violation.or(first);
    }
    if let Err(e) = driver.finish(&mut summary, &mut files) {
        failure.get_or_insert(e);
    }
    summary.set_bool("sim.partial", failure.is_some() || violation.is_some());
    if let Some(why) = failure
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| violation.clone())
    {
        summary.set_text("sim.failure", &why);
    }

    Ok(RunOutput {
        flisr: flisr_outcomes,
        coverage_warnings: world.coverage_warnings.clone(),
        summary,
        timing: Timing {
            wall_s,
            events_per_s: if wall_s > 0.0 {
                events as f64 / wall_s
            } else {
                0.0
            },
            threads,
            hil: hil_timing,
        },
        series,
        files,
        violation,
        failure,
        trace: sinks.0.trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(src: &str) -> Scenario {
        Scenario::from_source("t.ron", src, Path::new("."), "t").unwrap()
    }

    #[test]
    fn sampler_ticks_from_zero_to_the_end_inclusive() {
        let out = run(
            &scenario("(duration: \"1h\", outputs: (sample_interval: \"15min\"))"),
            1,
            &mut (),
        )
        .unwrap();
        let ts = &out.series[0];
        let times: Vec<f64> = ts.rows().map(|r| r[0]).collect();
        assert_eq!(times, vec![0.0, 900.0, 1800.0, 2700.0, 3600.0]);
        assert_eq!(
            out.summary.get("kernel.events"),
            Some(&crate::metrics::Value::U64(5))
        );
        assert_eq!(
            out.summary.get("kernel.stop_reason"),
            Some(&crate::metrics::Value::Text("exhausted".into()))
        );
    }

    #[test]
    fn event_budget_cuts_the_run_short() {
        let out = run(&scenario("(duration: \"1h\", max_events: 3)"), 1, &mut ()).unwrap();
        assert_eq!(
            out.summary.get("kernel.events"),
            Some(&crate::metrics::Value::U64(3))
        );
        assert_eq!(out.series[0].len(), 3);
    }

    #[test]
    fn trace_records_every_event_in_order() {
        let out = run(
            &scenario("(duration: \"2min\", outputs: (trace: Events))"),
            1,
            &mut (),
        )
        .unwrap();
        let trace = out.trace.unwrap();
        let t: Vec<u64> = trace.rows().iter().map(|r| r.t_ns).collect();
        assert_eq!(t, vec![0, 60_000_000_000, 120_000_000_000]);
        assert!(trace.rows().iter().all(|r| r.event == "sample"));
    }

    /// A driver that loses a record in the gateway once, mid-run.
    struct Saboteur(bool);

    impl Driver for Saboteur {
        fn next_stop(&mut self, now: SimTime, end: SimTime) -> SimTime {
            end.min(now.saturating_add(SimDuration::from_secs(300).unwrap()))
        }
        fn after_step(
            &mut self,
            world: &mut World,
            _: &mut Simulation<Event>,
        ) -> Result<(), WorldError> {
            if !self.0 && world.gateway().is_some_and(|g| g.cloud().stored() > 0) {
                world.gateway.as_mut().unwrap().lose_a_record();
                self.0 = true;
            }
            Ok(())
        }
    }

    /// A gateway whose records do not add up fails the run, which still
    /// returns every result with `sim.partial: true` and the reason.
    #[test]
    fn a_broken_conservation_of_records_fails_the_run_with_its_results() {
        let sc = Scenario::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/tests/gateway.ron"
        )))
        .unwrap();
        let clean = run(&sc, 1, &mut ()).unwrap();
        assert_eq!(clean.violation, None);
        assert_eq!(
            clean.summary.get("sim.partial"),
            Some(&crate::metrics::Value::Bool(false))
        );
        let out = run_driven(&sc, 1, &mut (), &mut Saboteur(false)).unwrap();
        let v = out.violation.clone().expect("the lost record is found");
        assert!(v.contains("gw1") && v.contains("not conserved"), "{v}");
        assert_eq!(
            out.summary.get("sim.partial"),
            Some(&crate::metrics::Value::Bool(true))
        );
        assert_eq!(
            out.summary.get("sim.failure"),
            Some(&crate::metrics::Value::Text(v))
        );
        // Every result is still there: the same files as the clean run's.
        let names = |o: &RunOutput| o.files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&out), names(&clean));
        assert_eq!(out.series.len(), clean.series.len());
    }

    /// A run that fails part-way (here its edge adapter gives up at 2 h of
    /// the default day) keeps what it had up to then, and counts only
    /// what happened by then: the noon fault never did.
    #[test]
    fn a_run_that_fails_part_way_returns_its_partial_results() {
        let sc = Scenario::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/default.ron"
        )))
        .unwrap();
        struct FailAt(SimTime);
        impl Driver for FailAt {
            fn next_stop(&mut self, _now: SimTime, end: SimTime) -> SimTime {
                self.0.min(end)
            }
            fn after_step(
                &mut self,
                _: &mut World,
                sim: &mut Simulation<Event>,
            ) -> Result<(), WorldError> {
                if sim.now() >= self.0 {
                    return Err(WorldError::Edge("the edge gave up".into()));
                }
                Ok(())
            }
        }
        let at = SimTime::ZERO.saturating_add(SimDuration::from_secs(7200).unwrap());
        let out = run_driven(&sc, 1, &mut (), &mut FailAt(at)).unwrap();
        assert!(matches!(out.failure, Some(WorldError::Edge(_))));
        let s = &out.summary;
        assert_eq!(
            s.get("sim.partial"),
            Some(&crate::metrics::Value::Bool(true))
        );
        assert_eq!(
            s.get("sim.failure"),
            Some(&crate::metrics::Value::Text("the edge gave up".into()))
        );
        assert_eq!(
            s.get("sim.end_s"),
            Some(&crate::metrics::Value::F64(Some(7200.0)))
        );
        assert_eq!(s.get("flisr.faults"), Some(&crate::metrics::Value::U64(0)));
        // The samples up to the failure: every 15 minutes from 0 to 2 h.
        assert_eq!(out.series[0].len(), 9);
        assert!(out.files.iter().any(|(n, _)| n == "customers.csv"));
        assert!(out.complete().is_err());
    }
}
