//! The HIL link over USB CDC-ACM (embassy-usb) on the chip's own USB
//! port: the nRF52840 dongle's USB plug, or the DK's "nRF USB" connector.
//! The host sees a serial port (`/dev/ttyACM*`); the baud rate it sets is
//! ignored, since USB full speed carries 64-byte packets at up to about
//! 1 MB/s.
//!
//! The device stack runs beside the session, and both stop when the
//! session ends. USB's own flow control gives the back-pressure that a
//! UART lacks.

use embassy_futures::select::select;
use embassy_nrf::usb::Driver;
use embassy_nrf::usb::vbus_detect::{self, HardwareVbusDetect};
use embassy_nrf::{Peripherals, bind_interrupts, peripherals, usb};
use embassy_usb::class::cdc_acm::{CdcAcmClass, State};
use embassy_usb::driver::EndpointError;
use embassy_usb::{Builder, Config};
use gridtwin_board::{AsyncLink, Session};

bind_interrupts!(struct Irqs {
    USBD => usb::InterruptHandler<peripherals::USBD>;
    CLOCK_POWER => vbus_detect::InterruptHandler;
});

/// Full-speed bulk packet [bytes].
const PACKET: usize = 64;

/// USB ids: pid.codes' open-source vendor id and its test product id.
/// Fine on a bench; a product needs ids of its own.
const VID: u16 = 0x1209;
const PID: u16 = 0x0001;

type UsbDriver = Driver<'static, HardwareVbusDetect>;

/// The HIL link over a CDC-ACM class.
struct Cdc {
    class: CdcAcmClass<'static, UsbDriver>,
    /// The last packet received, and how much of it was handed out.
    packet: [u8; PACKET],
    len: usize,
    pos: usize,
}

impl AsyncLink for Cdc {
    async fn read(&mut self, buf: &mut [u8]) -> usize {
        if self.pos == self.len {
            self.class.wait_connection().await;
            match self.class.read_packet(&mut self.packet).await {
                Ok(n) => (self.len, self.pos) = (n, 0),
                // Unplugged or reset by the host: nothing read; the next
                // read waits for the connection again.
                Err(EndpointError::Disabled | EndpointError::BufferOverflow) => return 0,
            }
        }
        let got = self.packet.get(self.pos..self.len).unwrap_or(&[]);
        let n = got.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), got.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        n
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.class.wait_connection().await;
        for chunk in bytes.chunks(PACKET) {
            if self.class.write_packet(chunk).await.is_err() {
                return;
            }
        }
        // A transfer that fills its last packet ends with a zero-length
        // one, or the host waits for more.
        if bytes.len().is_multiple_of(PACKET) {
            let _ = self.class.write_packet(&[]).await;
        }
    }
}

/// Serves `session` over USB CDC-ACM until the host's `Shutdown`.
pub(crate) async fn serve(p: Peripherals, session: &mut Session) {
    let driver = Driver::new(p.USBD, Irqs, HardwareVbusDetect::new(Irqs));
    let mut config = Config::new(VID, PID);
    config.manufacturer = Some("gridtwin");
    config.product = Some("gridtwin LMU HIL board");
    config.serial_number = Some("lmu-hil");
    config.max_power = 100;
    config.max_packet_size_0 = PACKET as u8;
    // Descriptors and the class state live in statics: the device holds
    // references to them for as long as it runs.
    let (Some(config_desc), Some(bos_desc), Some(msos_desc), Some(control), Some(state)) = (
        cortex_m::singleton!(: [u8; 256] = [0; 256]),
        cortex_m::singleton!(: [u8; 256] = [0; 256]),
        cortex_m::singleton!(: [u8; 0] = [0; 0]),
        cortex_m::singleton!(: [u8; 64] = [0; 64]),
        cortex_m::singleton!(: State<'static> = State::new()),
    ) else {
        defmt::panic!("statics taken twice");
    };
    let mut builder = Builder::new(driver, config, config_desc, bos_desc, msos_desc, control);
    let class = CdcAcmClass::new(&mut builder, state, PACKET as u16);
    let mut device = builder.build();
    defmt::info!("HIL link: USB CDC-ACM {=u16:04x}:{=u16:04x}", VID, PID);
    let mut link = Cdc {
        class,
        packet: [0; PACKET],
        len: 0,
        pos: 0,
    };
    select(device.run(), gridtwin_board::run_async(session, &mut link)).await;
}
