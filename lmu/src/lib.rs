//! Firmware logic of a gridtwin **line monitoring unit** (LMU).
//!
//! This crate is the firmware. It decides everything an LMU does, and the very
//! same code runs inside the simulator, on an nRF52840 board and on an
//! emulated Cortex-M4. To make that possible it is:
//!
//! - `#![no_std]` with **no `alloc`**: every buffer has a `const` capacity;
//! - **sans-IO**: time, samples, received frames and timer expiries go in;
//!   frames to send, contactor commands, timer requests and reports come out.
//!   It never reads a clock and never touches hardware.
//!
//! ```text
//!   now: Instant ──┐
//!   input ─────────┼──► Lmu::handle ──► outputs (frames, contactor, reports)
//!                  │         │
//!                  └─────────┴──► Lmu::poll_at ──► next Instant to be polled
//! ```
//!
//! Time is kept in integer microseconds ([`Instant`], [`Duration`]): the
//! resolution of the board's RTC-derived timers, and exact on every target.
//!
//! # Modules
//! - [`dsp`]: one cycle of ADC samples (or phasors) → RMS, P, Q, S, PF,
//!   frequency, fundamental phasors, THD, unbalance;
//! - [`pq`]: EN 50160 10-minute compliance, dips, swells, interruptions;
//! - [`protection`]: IEC 60255-151 overcurrent and earth-fault elements,
//!   under/over-voltage, direction with memory polarisation;
//! - [`node`]: the [`Lmu`] itself: FLISR, contactor, telemetry;
//! - [`frame`]: authenticated mesh frames (Packet/Repr, HMAC-SHA256-128,
//!   epoch counters against replay);
//! - [`hil`]: the wire format the host and a board speak in HIL mode;
//! - [`math`]: `libm`-only arithmetic, so results are bit-identical on the
//!   Cortex-M4F and on x86-64.
//!
//! # No panics
//! Outside tests the crate denies `unwrap`, `expect`, `panic!` and
//! indexing that could go out of bounds; time arithmetic saturates; every
//! buffer overflow is an error value or a counter.
//!
//! # Architecture invariant
//! This crate never depends on `std` or `alloc`. CI builds it for
//! `thumbv7em-none-eabihf`, and where a nightly toolchain is available, with
//! `-Zbuild-std=core`, which fails if anything reaches for `alloc`.
#![no_std]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(test)]
extern crate std;

pub mod dsp;
pub mod frame;
pub mod hil;
pub mod math;
pub mod node;
pub mod pq;
pub mod protection;
pub mod time;

#[cfg(test)]
mod flisr_tests;

pub use node::{Command, Config, Input, Lmu, Outputs};
pub use time::{Duration, Instant};
