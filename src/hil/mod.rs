//! Hardware in the loop, host side: a board (an nRF52840 on a serial
//! port, or the emulated Cortex-M4 under QEMU) runs the LMU firmware crate
//! and answers the host's steps over the wire format of
//! [`gridtwin_lmu::hil`].
//!
//! - [`link`]: the byte links to a board (serial port, TCP, Unix socket)
//!   and the `--board` specification that names one.
//! - [`qemu`]: starting the emulated board, and stopping it by its pid.
//! - [`board`]: one board session: the handshake (wire version, crate
//!   version, build id), the LMU's configuration, and lock-step steps with
//!   timeouts and bounded retries (a retried step is answered again from
//!   the board's cache, never carried out twice), garbled frames dropped
//!   and counted, and a board reset detected by its unsolicited hello.
//! - [`rig`]: the boards of one run, paired with their LMUs and handed to
//!   the world, which steps each in lock-step and runs the in-process LMU
//!   in its shadow, comparing every step bit for bit
//!   ([`crate::world::lmu::LmuHost::attach`]).

pub mod board;
pub mod link;
pub mod qemu;
pub mod rig;

pub use board::{Board, BoardStats, HilError};
pub use link::{BoardSpec, Link};
pub use rig::{Rig, RigError, RigOptions};

/// What to do when a board in the loop is reset mid-run (it announces
/// itself again, its LMU gone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnReset {
    /// Fail the run, naming the board and the step.
    #[default]
    Fail,
    /// Boot the LMU again on the board and in its shadow (the next boot
    /// epoch, as after a crash), feed them the interrupted input, and go
    /// on; the reset is recorded.
    Reinit,
}
