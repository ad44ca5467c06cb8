//! gridtwin: a deterministic discrete-event simulator and digital twin of a
//! low-voltage electricity system.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view and the invariants, and
//! `README.md` for usage.
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod bridge;
pub mod campaign;
pub mod cli;
pub mod gateway;
pub mod grid;
pub mod hil;
pub mod kernel;
pub mod ledger;
pub mod mesh;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod sweep;
pub mod world;
