//! The grid: the physical half of the twin.
//!
//! ```text
//!  Master.dss ──dss::DssCircuit::load──► DssCircuit (typed elements, SI units)
//!                                             │ Network::from_dss
//!                                             ▼
//!                                   Network (phase frame: buses × 3 nodes,
//!                                            branch admittance blocks, loads)
//!                                             │ powerflow::Solver (factorise once)
//!                                             ▼
//!                                   Solution (phase voltages per bus)
//! ```
//!
//! [`fault`] solves short circuits with the same network and solver;
//! [`quality`] gives sequence components and unbalance.
//!
//! Still to come: open-conductor faults, faults part-way along a line,
//! scheduler-driven time series, PV, and the scenario's grid section.

pub mod dss;
pub mod fault;
pub mod mat3;
pub mod model;
pub mod network;
pub mod powerflow;
pub mod quality;
pub mod solar;

#[cfg(test)]
mod model_tests;
