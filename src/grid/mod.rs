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
//! [`fault`] solves short circuits with the same network and solver.
//!
//! Still to come: open-conductor faults, faults part-way along a line,
//! switching, time series, and power-quality quantities.

pub mod dss;
pub mod fault;
pub mod mat3;
pub mod network;
pub mod powerflow;
