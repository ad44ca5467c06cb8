//! The radio mesh: propagation, the IEEE 802.15.4 PHY, the CSMA-CA MAC on a
//! shared channel (with jammers and degraded links), RPL-like routing to
//! the coordinator, and the coordinator's UART to the gateway.
//!
//! ```text
//!  Position ──propagation (PathLoss + Shadowing + Fading)──► received power
//!                                                              │
//!                       phy: SINR over segments, Annex E BER ──► frame success
//! ```
//!
//! The default calibration is an nRF52840 (+8 dBm, −100 dBm sensitivity,
//! 0 dBi) over log-distance path loss referenced to Friis at 1 m and
//! 2.4 GHz, with σ = 4 dB log-normal shadowing, the exponent solved so that
//! 20-octet frames have a mean delivery ratio of 50 % at exactly 750 m
//! ([`phy::calibrate_exponent`]).

pub mod curve;
pub mod phy;
pub mod propagation;
pub mod radio;
pub mod routing;
pub mod uart;
