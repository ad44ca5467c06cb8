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
//! [`fault`] solves short circuits and open conductors with the same
//! network and solver; [`quality`] gives sequence components and
//! unbalance; [`solar`] clear-sky PV output; [`model`] runs the grid inside
//! a simulation (profiles, switching and faults as events, re-solves only
//! on change, customers and their interruptions).
//!
//! Harmonics are not modelled in the network: the power flow is at the
//! fundamental. Power-quality harmonic figures (THD) belong to the LMU's
//! measurement of waveforms.

pub mod coverage;
pub mod dss;
pub mod fault;
pub mod mat3;
pub mod model;
pub mod network;
pub mod powerflow;
pub mod protection;
pub mod quality;
pub mod solar;

#[cfg(test)]
mod model_tests;
