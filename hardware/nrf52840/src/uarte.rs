//! The HIL link over UARTE0 at 1 Mbaud (TXD P0.06, RXD P0.08: the
//! nRF52840-DK's interface-MCU serial port). embassy-nrf's
//! `BufferedUarte` has interrupt-fed ring buffers, which stand in for the
//! back-pressure the UART lacks: one request in flight always fits.

use embassy_nrf::buffered_uarte::{self, BufferedUarte};
use embassy_nrf::{Peripherals, bind_interrupts, peripherals, uarte};
use gridtwin_board::{AsyncLink, Session};

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

/// Serves `session` over UARTE0 until the host's `Shutdown`.
pub(crate) async fn serve(p: Peripherals, session: &mut Session) {
    let mut config = uarte::Config::default();
    config.baudrate = uarte::Baudrate::Baud1m;
    // Statics, not the stack: their RAM shows in the image's size.
    let (Some(rx), Some(tx)) = (
        cortex_m::singleton!(: [u8; RX_RING] = [0; RX_RING]),
        cortex_m::singleton!(: [u8; TX_RING] = [0; TX_RING]),
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
    defmt::info!("HIL link: UARTE0 at 1 Mbaud");
    let mut link = Uarte { uart, overruns: 0 };
    gridtwin_board::run_async(session, &mut link).await;
}
