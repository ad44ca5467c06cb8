//! gridtwin LMU firmware for the nRF52840: the HIL board.
//!
//! The HIL wire protocol (see `gridtwin_lmu::hil`) runs over one of two
//! links, chosen when building:
//!
//! - default ([`uarte`]): UARTE0 at 1 Mbaud, 8N1, no flow control, on the
//!   nRF52840-DK's interface-MCU serial port (TXD P0.06, RXD P0.08);
//! - feature `usb` ([`usb`]): USB CDC-ACM on the chip's own USB port, for
//!   the nRF52840 dongle (or the DK's "nRF USB" connector).
//!
//! The session and its loop are `gridtwin_board`'s; this crate only binds
//! them to a link. Logs go over defmt-RTT to the debug probe, never onto
//! the HIL link. On the host's `Shutdown` the board answers `Bye`, then
//! resets, and greets the next session with a fresh `Hello`. A panic
//! prints over RTT (panic-probe) and halts the core for the probe.
#![no_std]
#![no_main]

#[cfg(not(feature = "usb"))]
mod uarte;
#[cfg(feature = "usb")]
mod usb;

use defmt_rtt as _;
use embassy_executor::Spawner;
use gridtwin_board::{BUILD_ID, Session};
use panic_probe as _;

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let mut config = embassy_nrf::config::Config::default();
    if cfg!(feature = "usb") {
        // USB needs the crystal oscillator's accuracy.
        config.hfclk_source = embassy_nrf::config::HfclkSource::ExternalXtal;
    }
    let p = embassy_nrf::init(config);
    // A static, not the stack: its RAM shows in the image's size.
    let Some(session) = cortex_m::singleton!(: Session = Session::new(BUILD_ID)) else {
        defmt::panic!("the session is taken twice");
    };
    defmt::info!(
        "gridtwin LMU HIL board: wire {=u16}, build {=u32:08x}",
        gridtwin_board::lmu::hil::WIRE_VERSION,
        BUILD_ID
    );
    #[cfg(not(feature = "usb"))]
    uarte::serve(p, session).await;
    #[cfg(feature = "usb")]
    usb::serve(p, session).await;
    let s = session.wire_stats();
    defmt::info!(
        "session over: {=u32} steps, {=u32} frames accepted, dropped {=u32} framing {=u32} crc {=u32} decode {=u32} overflow; resetting",
        session.steps(),
        s.accepted,
        s.framing,
        s.crc,
        s.decode,
        s.overflow
    );
    cortex_m::peripheral::SCB::sys_reset();
}
