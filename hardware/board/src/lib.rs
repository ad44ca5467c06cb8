//! Board glue shared by the gridtwin LMU firmware binaries
//! (`hardware/qemu-m4`, `hardware/nrf52840`): the hardware-in-the-loop
//! session that runs one [`Lmu`] behind the wire protocol of
//! [`gridtwin_lmu::hil`], and the loops that drive it over a byte link.
//!
//! ```text
//!   UART / socket ──► Link::read ──► Session::push ──► Decoder ──► HostMsg
//!                                        │                            │
//!                                        │      Hello ─► Hello        │
//!                                        │  Configure ─► Lmu::new     │
//!                                        │       Step ─► Lmu::handle  │
//!                                        │   Shutdown ─► Bye, halt    │
//!                                        ▼
//!   UART / socket ◄── Link::write ◄── Reply (one framed BoardMsg)
//! ```
//!
//! The [`Session`] is sans-IO: bytes go in, at most one framed answer comes
//! out per byte. [`run`] drives it over a blocking [`Link`] (the emulated
//! board's interrupt-fed ring buffer), [`run_async`] over an [`AsyncLink`]
//! (embassy's buffered UARTE). A board crate only implements its link,
//! keeps the session in a static, and decides what halting means.
//!
//! # No heap, no panics
//! The session holds the LMU, the decoder's buffer and the transmit buffer
//! inline: about 6 KiB, meant for a `static`. Bad input never panics: a
//! frame that is not valid COBS, fails its CRC, is not a [`HostMsg`] or
//! overflows the buffer is dropped and counted ([`Session::wire_stats`]),
//! and the next zero byte resynchronises the link.
//!
//! # Build id
//! [`BUILD_ID`] is the LMU crate's: a hash of its sources, computed when it
//! is built, so the host (which links the same crate) accepts a board only
//! when both were built from the same LMU source.
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

#[cfg(test)]
mod tests;

use gridtwin_lmu::frame::{BROADCAST, GATEWAY};
use gridtwin_lmu::hil::{BoardMsg, Decoder, HostMsg, MAX_WIRE, Refusal, WireStats, encode};
use gridtwin_lmu::{Instant, Lmu, Outputs};

/// The LMU crate, for board crates that need its types.
pub use gridtwin_lmu as lmu;

pub use gridtwin_lmu::hil::BUILD_ID;

/// Largest chunk the loops read from a link at once [bytes].
pub const READ_CHUNK: usize = 64;

/// One HIL session: the board's LMU (once configured), the frame decoder
/// and the transmit buffer.
#[derive(Debug)]
pub struct Session {
    lmu: Option<Lmu>,
    decoder: Decoder<MAX_WIRE>,
    tx: [u8; MAX_WIRE],
    build_id: u32,
    steps: u32,
    refused: u32,
    /// The last step's sequence number and framed answer, re-sent as it
    /// was if the host retries that step (its answer was lost): a retried
    /// step is never carried out twice.
    last_seq: Option<u32>,
    last: [u8; MAX_WIRE],
    last_len: usize,
    retries: u32,
}

/// One framed answer to send, and whether the board halts after it.
#[derive(Debug)]
pub struct Reply<'a> {
    /// The framed [`BoardMsg`] (`0x00 ‖ COBS(…) ‖ 0x00`).
    pub bytes: &'a [u8],
    /// The host asked the board to halt ([`HostMsg::Shutdown`]): send
    /// `bytes`, then stop.
    pub halt: bool,
}

impl Session {
    /// A session with no LMU yet, reporting `build_id` in its `Hello`.
    pub fn new(build_id: u32) -> Session {
        Session {
            lmu: None,
            decoder: Decoder::new(),
            tx: [0; MAX_WIRE],
            build_id,
            steps: 0,
            refused: 0,
            last_seq: None,
            last: [0; MAX_WIRE],
            last_len: 0,
            retries: 0,
        }
    }

    /// The unsolicited `Hello` a board sends when it (re)boots, so that a
    /// host mid-session learns that its LMU is gone.
    pub fn announce(&mut self) -> &[u8] {
        self.frame(&BoardMsg::hello(self.build_id))
    }

    /// Takes one received byte; returns the answer when it completes a
    /// request.
    pub fn push(&mut self, byte: u8) -> Option<Reply<'_>> {
        let msg = self.decoder.push::<HostMsg>(byte)?;
        Some(self.answer(msg))
    }

    /// Frames accepted and dropped so far, by reason.
    pub fn wire_stats(&self) -> WireStats {
        self.decoder.stats()
    }

    /// Steps carried out so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Requests refused so far.
    pub fn refused(&self) -> u32 {
        self.refused
    }

    /// Retried steps answered again from the cached answer.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The LMU, once configured.
    pub fn lmu(&self) -> Option<&Lmu> {
        self.lmu.as_ref()
    }

    fn answer(&mut self, msg: HostMsg) -> Reply<'_> {
        if let HostMsg::Step { seq, .. } = msg
            && self.last_seq == Some(seq)
        {
            self.retries = self.retries.saturating_add(1);
            return Reply {
                bytes: self.last.get(..self.last_len).unwrap_or(&[]),
                halt: false,
            };
        }
        let mut halt = false;
        let answer = match msg {
            // The host's version is its to check against ours.
            HostMsg::Hello { wire: _ } => BoardMsg::hello(self.build_id),
            HostMsg::Configure { config, keys } => {
                if config.id == GATEWAY || config.id == BROADCAST {
                    self.refuse(0, Refusal::ReservedId)
                } else {
                    let id = config.id;
                    self.lmu = Some(Lmu::new(config, keys));
                    self.last_seq = None;
                    BoardMsg::Configured { id }
                }
            }
            HostMsg::Step { seq, now_us, input } => match self.lmu.as_mut() {
                None => self.refuse(seq, Refusal::NotConfigured),
                Some(lmu) => {
                    let mut outputs = Outputs::default();
                    lmu.handle(Instant::from_micros(now_us), input.as_input(), &mut outputs);
                    self.steps = self.steps.saturating_add(1);
                    BoardMsg::stepped(seq, outputs, lmu.poll_at())
                }
            },
            HostMsg::Shutdown => {
                halt = true;
                BoardMsg::Bye {
                    stats: self.decoder.stats(),
                }
            }
        };
        let seq = match answer {
            BoardMsg::Stepped { seq, .. } => Some(seq),
            _ => None,
        };
        let mut n = encode(&answer, &mut self.tx).unwrap_or(0);
        if n == 0 {
            // Only an oversized step answer can fail (see the crate's
            // `the_largest_answer_fits_the_wire` test); say so instead.
            let refusal = self.refuse(seq.unwrap_or(0), Refusal::AnswerTooLarge);
            n = encode(&refusal, &mut self.tx).unwrap_or(0);
        }
        if let Some(seq) = seq
            && let (Some(dst), Some(src)) = (self.last.get_mut(..n), self.tx.get(..n))
        {
            dst.copy_from_slice(src);
            self.last_len = n;
            self.last_seq = Some(seq);
        }
        Reply {
            bytes: self.tx.get(..n).unwrap_or(&[]),
            halt,
        }
    }

    fn refuse(&mut self, seq: u32, reason: Refusal) -> BoardMsg {
        self.refused = self.refused.saturating_add(1);
        BoardMsg::Refused { seq, reason }
    }

    fn frame(&mut self, msg: &BoardMsg) -> &[u8] {
        let n = encode(msg, &mut self.tx).unwrap_or(0);
        self.tx.get(..n).unwrap_or(&[])
    }
}

/// A blocking byte link to the host (the emulated board's UART).
pub trait Link {
    /// Moves the bytes received so far, up to `buf.len()`, into `buf`
    /// without blocking; returns how many (0: none yet).
    fn read(&mut self, buf: &mut [u8]) -> usize;
    /// Sends all of `bytes`, blocking until the link has taken them.
    fn write(&mut self, bytes: &[u8]);
    /// Sleeps until [`Link::read`] may have bytes; returns at once if it
    /// already has some. It must not miss a byte that arrives while it
    /// decides to sleep (on Cortex-M: `cpsid; empty? wfi; cpsie`).
    fn wait(&mut self);
}

/// An async byte link to the host (embassy's buffered UARTE).
// The boards run one single-threaded executor: no `Send` bound is needed
// on the futures.
#[allow(async_fn_in_trait)]
pub trait AsyncLink {
    /// Waits for at least one byte and moves what has arrived, up to
    /// `buf.len()`, into `buf`; returns how many (0 on a link error).
    async fn read(&mut self, buf: &mut [u8]) -> usize;
    /// Sends all of `bytes`.
    async fn write(&mut self, bytes: &[u8]);
}

/// Runs `session` over a blocking link: announces itself with `Hello`, then
/// answers requests until the host sends `Shutdown`, whose `Bye` it sends
/// before returning.
pub fn run<L: Link>(session: &mut Session, link: &mut L) {
    link.write(session.announce());
    let mut buf = [0u8; READ_CHUNK];
    loop {
        let n = link.read(&mut buf);
        if n == 0 {
            link.wait();
            continue;
        }
        for &b in buf.get(..n).unwrap_or(&[]) {
            if let Some(reply) = session.push(b) {
                link.write(reply.bytes);
                if reply.halt {
                    return;
                }
            }
        }
    }
}

/// [`run`] over an async link.
pub async fn run_async<L: AsyncLink>(session: &mut Session, link: &mut L) {
    link.write(session.announce()).await;
    let mut buf = [0u8; READ_CHUNK];
    loop {
        let n = link.read(&mut buf).await;
        for &b in buf.get(..n).unwrap_or(&[]) {
            if let Some(reply) = session.push(b) {
                link.write(reply.bytes).await;
                if reply.halt {
                    return;
                }
            }
        }
    }
}
