//! gridtwin LMU firmware for QEMU's `mps2-an386` (Cortex-M4F): the
//! emulated HIL board.
//!
//! UART0 carries the HIL wire protocol (see `gridtwin_lmu::hil`); the
//! session and its loop are `gridtwin_board`'s. On the host's `Shutdown`
//! the firmware answers `Bye` and exits QEMU with success through
//! semihosting, after printing the stack's high-water mark on QEMU's
//! stdout; a panic exits it with failure. Nothing else is ever
//! written to UART0, and semihosting output (QEMU's stdout) is kept off
//! the link.
//!
//! Run it as `hardware/README.md` shows: QEMU must be started with
//! `-semihosting-config enable=on`, or the exit call hangs.
#![no_std]
#![no_main]

mod stack;
mod uart;

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use gridtwin_board::{BUILD_ID, Session};
use panic_semihosting as _;

#[entry]
fn main() -> ! {
    // The session (LMU, decoder, buffers) lives in a static: no heap, and
    // its RAM shows in the image's size.
    let Some(session) = cortex_m::singleton!(: Session = Session::new(BUILD_ID)) else {
        fail()
    };
    let mut link = uart::Uart0::init();
    gridtwin_board::run(session, &mut link);
    // On QEMU's stdout (never the link), for the budget in the README.
    hprintln!("stack high-water mark: {} bytes", stack::high_water());
    debug::exit(debug::EXIT_SUCCESS);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Exits QEMU with failure.
fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Every external interrupt lands here (no device crate): only UART0's
/// receive interrupt is enabled.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == 0 {
        uart::on_rx_interrupt();
    }
}
