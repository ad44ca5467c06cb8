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
//! Still to come: faults, switching, time series and power-quality
//! quantities.

pub mod dss;
pub mod mat3;
pub mod network;
pub mod powerflow;
