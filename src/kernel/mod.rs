//! The deterministic discrete-event kernel: time, the future-event list,
//! random streams and the run loop.
//!
//! # Architecture invariant
//! The kernel knows no domain. Nothing here mentions grids, radios or ledgers:
//! models are plain structs driven through [`sim::Handler`], and the kernel
//! only orders their events.

pub mod queue;
pub mod rng;
pub mod sim;
pub mod time;

pub use queue::{EventId, EventQueue, ScheduleError};
pub use sim::{Context, Handler, Observer, RunLimits, RunStats, Simulation, StopReason};
pub use time::{ParseTimeError, SimDuration, SimTime};
