//! A small driver for the CMSDK APB UART0 of `mps2-an386`: polled
//! transmit, interrupt-driven receive into a ring buffer.
//!
//! Registers (base `0x4000_4000`): DATA `0x00`, STATE `0x04` (bit 0
//! TXFULL, bit 1 RXFULL), CTRL `0x08` (bit 0 TXEN, bit 1 RXEN, bit 3
//! RXINTEN), INTSTATUS/INTCLEAR `0x0C`, BAUDDIV `0x10` (at least 16). The
//! receive interrupt is IRQ 0.
//!
//! QEMU quirk: the handler must write INTCLEAR *before* draining DATA, or
//! an interrupt raised by a byte that arrives while draining is lost and
//! the firmware sleeps for ever.

use core::cell::RefCell;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use critical_section::Mutex;
use heapless::Deque;

const BASE: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTCLEAR: usize = 0x0C;
const BAUDDIV: usize = 0x10;

const STATE_TXFULL: u32 = 1 << 0;
const STATE_RXFULL: u32 = 1 << 1;
const CTRL_TXEN: u32 = 1 << 0;
const CTRL_RXEN: u32 = 1 << 1;
const CTRL_RXINTEN: u32 = 1 << 3;
/// RX and RX-overrun interrupt bits of INTCLEAR.
const INT_RX: u32 = (1 << 1) | (1 << 3);

/// Receive ring capacity [bytes]: two of the largest wire messages, so a
/// whole request fits while the previous answer is still being written.
pub const RX_RING: usize = 4096;

/// UART0's receive interrupt.
#[derive(Clone, Copy, Debug)]
pub struct Uart0Rx;

// SAFETY: 0 is UART0's RX line on mps2-an386, a valid external interrupt.
unsafe impl InterruptNumber for Uart0Rx {
    fn number(self) -> u16 {
        0
    }
}

/// Received bytes not yet read. A byte that finds it full is dropped: the
/// frame it belonged to then fails its CRC, and the session counts it.
static RX: Mutex<RefCell<Deque<u8, RX_RING>>> = Mutex::new(RefCell::new(Deque::new()));

fn reg(offset: usize) -> *mut u32 {
    (BASE + offset) as *mut u32
}

fn read(offset: usize) -> u32 {
    // SAFETY: an aligned UART0 register, always mapped on this machine.
    unsafe { reg(offset).read_volatile() }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as above.
    unsafe { reg(offset).write_volatile(value) }
}

/// UART0, set up for the HIL link.
#[derive(Debug)]
pub struct Uart0 {
    _private: (),
}

impl Uart0 {
    /// Enables transmit, receive and the receive interrupt. Call once.
    pub fn init() -> Uart0 {
        // The emulated UART ignores the rate, but the divider must be at
        // least 16 for it to run.
        write(BAUDDIV, 16);
        write(INTCLEAR, INT_RX);
        write(CTRL, CTRL_TXEN | CTRL_RXEN | CTRL_RXINTEN);
        // SAFETY: the handler only touches the ring through its mutex.
        unsafe { NVIC::unmask(Uart0Rx) };
        Uart0 { _private: () }
    }
}

/// The receive interrupt: clear it first, then drain DATA into the ring.
pub fn on_rx_interrupt() {
    write(INTCLEAR, INT_RX);
    critical_section::with(|cs| {
        let mut ring = RX.borrow_ref_mut(cs);
        while read(STATE) & STATE_RXFULL != 0 {
            let b = read(DATA) as u8;
            let _ = ring.push_back(b);
        }
    });
}

impl gridtwin_board::Link for Uart0 {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        critical_section::with(|cs| {
            let mut ring = RX.borrow_ref_mut(cs);
            let mut n = 0;
            for slot in buf.iter_mut() {
                match ring.pop_front() {
                    Some(b) => {
                        *slot = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            n
        })
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while read(STATE) & STATE_TXFULL != 0 {}
            write(DATA, u32::from(b));
        }
    }

    fn wait(&mut self) {
        // cpsid; ring empty? wfi; cpsie: a byte that arrives after the
        // check still pends its interrupt, and WFI wakes on a pending
        // interrupt even while they are masked.
        cortex_m::interrupt::disable();
        let empty = critical_section::with(|cs| RX.borrow_ref(cs).is_empty());
        if empty {
            cortex_m::asm::wfi();
        }
        // SAFETY: not inside a critical section (the one above has ended).
        unsafe { cortex_m::interrupt::enable() };
    }
}
