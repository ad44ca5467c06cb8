//! gridtwin LMU firmware for the nRF52840: the HIL board.
//!
//! UARTE0 at 1 Mbaud, 8N1, no flow control, carries the HIL wire protocol
//! (see `gridtwin_lmu::hil`) on the nRF52840-DK's interface-MCU serial
//! port: TXD P0.06, RXD P0.08. The session and its loop are
//! `gridtwin_board`'s; this crate only binds them to embassy-nrf's
//! `BufferedUarte`, whose interrupt-fed ring buffers stand in for the
//! back-pressure the UART lacks (one request in flight always fits).
//!
//! Logs go over defmt-RTT to the debug probe, never onto the HIL link. On
//! the host's `Shutdown` the board answers `Bye`, then resets, and greets
//! the next session with a fresh `Hello`. A panic prints over RTT
//! (panic-probe) and halts the core for the probe.
#![no_std]
#![no_main]

use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_nrf::buffered_uarte::{self, BufferedUarte};
use embassy_nrf::{bind_interrupts, peripherals, uarte};
use gridtwin_board::{AsyncLink, BUILD_ID, Session};
use panic_probe as _;

bind_interrupts!(struct Irqs {
    UARTE0 => buffered_uarte::InterruptHandler<peripherals::UARTE0>;
});

/// Receive ring [bytes]: two of the largest wire messages.
const RX_RING: usize = 4096;
/// Transmit ring [bytes]: one of the largest answers, and room to spare.
const TX_RING: usize = 2048;

/// The HIL link over the buffered UARTE.
struct Uarte<'d> {
    uart: BufferedUarte<'d>,
    /// Times the receive ring overflowed (bytes were lost; the frame they
    /// belonged to is dropped and counted by the session).
    overruns: u32,
}

impl AsyncLink for Uarte<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> usize {
        match self.uart.read(buf).await {
            Ok(n) => n,
            // Overrun, the only error so far.
            Err(_) => {
                self.overruns = self.overruns.saturating_add(1);
                defmt::warn!("HIL link: receive overrun ({=u32} so far)", self.overruns);
                0
            }
        }
    }

    async fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.uart.write(bytes).await {
                Ok(n) => bytes = bytes.get(n..).unwrap_or(&[]),
                Err(_) => return,
            }
        }
        let _ = self.uart.flush().await;
    }
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_nrf::init(Default::default());
    let mut config = uarte::Config::default();
    config.baudrate = uarte::Baudrate::Baud1m;
    // Statics, not the stack: their RAM shows in the image's size.
    let (Some(rx), Some(tx), Some(session)) = (
        cortex_m::singleton!(: [u8; RX_RING] = [0; RX_RING]),
        cortex_m::singleton!(: [u8; TX_RING] = [0; TX_RING]),
        cortex_m::singleton!(: Session = Session::new(BUILD_ID)),
    ) else {
        defmt::panic!("statics taken twice");
    };
    let uart = BufferedUarte::new(
        p.UARTE0,
        p.TIMER0,
        p.PPI_CH0,
        p.PPI_CH1,
        p.PPI_GROUP0,
        p.P0_08,
        p.P0_06,
        Irqs,
        config,
        rx,
        tx,
    );
    let mut link = Uarte { uart, overruns: 0 };
    defmt::info!(
        "gridtwin LMU HIL board: UARTE0 at 1 Mbaud, wire {=u16}, build {=u32:08x}",
        gridtwin_board::lmu::hil::WIRE_VERSION,
        BUILD_ID
    );
    gridtwin_board::run_async(session, &mut link).await;
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
