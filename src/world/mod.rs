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
//! fixed order: the sampler's first tick is scheduled first, so at `t = 0`
//! it records the state before any model has acted.

pub mod grid;
pub mod mesh;

use std::time::Instant;

use crate::grid::model::{GridEvent, GridModel};
use crate::grid::powerflow::PowerFlowError;
use crate::kernel::{
    Context, EventId, Handler, Observer, RunLimits, ScheduleError, SimDuration, SimTime, Simulation,
};
use crate::mesh::routing::MeshEvent;
use crate::metrics::{EventTrace, Summary, TimeSeries, Timing, TraceRow};
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
    /// An LMU's telemetry report is due.
    MeshReport(u32),
    /// A mesh fault starts (`true`) or ends.
    MeshFault(usize, bool),
}

impl Event {
    /// A short stable description for the event trace.
    pub fn label(&self) -> &'static str {
        match self {
            Event::Sample => "sample",
            Event::Grid(g) => g.label(),
            Event::Mesh(_) => "mesh",
            Event::MeshReport(_) => "mesh.report",
            Event::MeshFault(..) => "mesh.fault",
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

    fn sample(&mut self, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        if let Some(g) = &mut self.grid {
            g.advance_to(now).map_err(|e| WorldError::grid(now, e))?;
            g.record(now);
        }
        Ok(self.sampler.tick(cx)?)
    }

    fn grid_event(&mut self, ev: GridEvent, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        let Some(g) = &mut self.grid else {
            return Ok(());
        };
        for (t, e) in g.handle(now, ev).map_err(|e| WorldError::grid(now, e))? {
            cx.schedule_at(t, Event::Grid(e))?;
        }
        Ok(())
    }
}

impl World {
    fn mesh_event(&mut self, e: MeshEvent, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        if let Some(m) = &mut self.mesh {
            for (t, e) in m.handle(now, e) {
                cx.schedule_at(t, Event::Mesh(e))?;
            }
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
        if let Some(m) = &mut self.mesh {
            for (t, e) in m.fault(now, i, on) {
                cx.schedule_at(t, Event::Mesh(e))?;
            }
        }
        Ok(())
    }

    fn mesh_report(&mut self, n: u32, cx: &mut Context<'_, Event>) -> Result<(), WorldError> {
        let now = cx.now();
        if let Some(m) = &mut self.mesh {
            let (ev, next) = m.report(now, n);
            for (t, e) in ev {
                cx.schedule_at(t, Event::Mesh(e))?;
            }
            cx.schedule_at(next, Event::MeshReport(n))?;
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
            Event::MeshReport(n) => self.mesh_report(n, cx),
            Event::MeshFault(i, on) => self.mesh_fault(i, on, cx),
        };
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
        matches!(self, WorldError::GridBuild(_))
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
    let grid = setup.map(GridModel::new);
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
        let (ev, reports) = m.start(scenario.seed);
        for (t, e) in ev {
            sim.schedule_at(t, Event::Mesh(e))?;
        }
        for (t, n) in reports {
            sim.schedule_at(t, Event::MeshReport(n))?;
        }
        for (t, i, on) in m.fault_events() {
            if t <= end {
                sim.schedule_at(t, Event::MeshFault(i, on))?;
            }
        }
    }
    let world = World {
        sampler: Sampler {
            interval: scenario.outputs.sample_interval,
            end,
            series: TimeSeries::new("timeseries", &["t_s", "kernel.events", "kernel.pending"]),
        },
        grid,
        mesh,
        failure: None,
    };
    Ok((world, sim))
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
    /// The event trace, if the scenario asked for one.
    pub trace: Option<EventTrace>,
    /// The scenario as run, every default filled in.
    pub resolved_scenario: String,
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

/// Builds and runs a scenario to its end; `observer` watches (e.g. a
/// progress bar). `threads` is recorded in the timing only: the kernel is
/// single-threaded and results never depend on it.
pub fn run<O: Observer<World>>(
    scenario: &Scenario,
    threads: usize,
    observer: &mut O,
) -> Result<RunOutput, WorldError> {
    let (mut world, mut sim) = build(scenario)?;
    let limits = RunLimits {
        stop_at: SimTime::ZERO.saturating_add(scenario.duration),
        max_events: scenario.max_events,
    };
    let mut sinks = (
        TraceSink {
            trace: (scenario.outputs.trace == Trace::Events).then(EventTrace::default),
        },
        observer,
    );
    let wall = Instant::now();
    let stats = sim.run(&mut world, limits, &mut sinks);
    let wall_s = wall.elapsed().as_secs_f64();
    if let Some(e) = world.failure {
        return Err(e);
    }

    let mut summary = Summary::new();
    summary.set_u64("sim.seed", scenario.seed);
    summary.set_f64("sim.duration_s", scenario.duration.as_secs_f64());
    summary.set_f64("sim.end_s", stats.end.as_secs_f64());
    summary.set_u64("kernel.events", stats.events);
    summary.set_u64("kernel.pending_at_end", sim.pending() as u64);
    summary.set_text("kernel.stop_reason", stats.reason.as_str());
    let mut series = vec![world.sampler.series];
    if let Some(g) = world.grid {
        series.push(g.finish(stats.end, &mut summary));
    }
    if let Some(m) = world.mesh {
        m.finish(&mut summary);
    }

    Ok(RunOutput {
        summary,
        timing: Timing {
            wall_s,
            events_per_s: if wall_s > 0.0 {
                stats.events as f64 / wall_s
            } else {
                0.0
            },
            threads,
        },
        series,
        trace: sinks.0.trace,
        resolved_scenario: scenario.to_resolved_ron(),
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
}
