//! The grid: the physical half of the twin.
//!
//! Today this holds the OpenDSS importer ([`dss`]): the subset of the
//! OpenDSS language used by the IEEE European LV test feeder, read into typed
//! element definitions with units converted to SI. The phase-frame network
//! model, the three-phase unbalanced power flow, faults and time series build
//! on it.

pub mod dss;
