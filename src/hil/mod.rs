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

pub mod board;
pub mod link;
pub mod qemu;

pub use board::{Board, BoardStats, HilError};
pub use link::{BoardSpec, Link};
