//! The coordinator's UART link to the gateway: a serial line with a baud
//! rate, 8N1 character framing, per-message framing overhead, and a FIFO
//! transmit queue bounded in bytes.
//!
//! A serial line carries one byte after another, so a message's arrival is
//! known when it is queued: it starts when the line is free and takes
//! `10 · bytes / baud` seconds (a start bit, 8 data bits, a stop bit). The
//! framing overhead is that of the HIL wire format (COBS, CRC-32C and two
//! zero delimiters: `⌈n/254⌉ + 4 + 2` bytes for an n-byte message). A
//! message that would overflow the queue is dropped and counted.

use crate::kernel::{SimDuration, SimTime};

/// UART settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UartSettings {
    /// Baud rate [bit/s].
    pub baud: u32,
    /// Largest backlog of bytes not yet on the line.
    pub queue_limit_bytes: usize,
}

impl Default for UartSettings {
    /// 115 200 baud, 8 KiB of queue.
    fn default() -> Self {
        UartSettings {
            baud: 115_200,
            queue_limit_bytes: 8 * 1024,
        }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UartStats {
    /// Messages sent.
    pub sent: u64,
    /// Messages dropped at a full queue.
    pub dropped: u64,
    /// Bytes on the line, framing included.
    pub bytes: u64,
}

/// One direction of a UART.
#[derive(Clone, Debug, PartialEq)]
pub struct Uart {
    settings: UartSettings,
    free_at: SimTime,
    stats: UartStats,
}

/// Bytes on the line for a message of `n` bytes.
pub fn framed_len(n: usize) -> usize {
    n + n.div_ceil(254).max(1) + 4 + 2
}

impl Uart {
    /// An idle line.
    pub fn new(settings: UartSettings) -> Uart {
        Uart {
            settings,
            free_at: SimTime::ZERO,
            stats: UartStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> UartStats {
        self.stats
    }

    fn duration(&self, bytes: usize) -> SimDuration {
        // 10 bits per byte; whole nanoseconds, rounded up.
        let bits = 10 * bytes as u64;
        SimDuration::from_nanos(
            (bits * 1_000_000_000).div_ceil(u64::from(self.settings.baud.max(1))),
        )
    }

    /// Bytes queued but not yet sent at `now`.
    pub fn backlog_bytes(&self, now: SimTime) -> usize {
        let left = self.free_at.saturating_since(now).as_nanos();
        (left * u64::from(self.settings.baud)).div_ceil(10 * 1_000_000_000) as usize
    }

    /// Queues a message of `n` bytes at `now`; returns when it has fully
    /// arrived, or `None` when the queue is full (dropped).
    pub fn send(&mut self, now: SimTime, n: usize) -> Option<SimTime> {
        let bytes = framed_len(n);
        if self.backlog_bytes(now) + bytes > self.settings.queue_limit_bytes {
            self.stats.dropped += 1;
            return None;
        }
        let start = self.free_at.max(now);
        let end = start.saturating_add(self.duration(bytes));
        self.free_at = end;
        self.stats.sent += 1;
        self.stats.bytes += bytes as u64;
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_takes_ten_bits_per_framed_byte() {
        let mut u = Uart::new(UartSettings::default());
        // 100 bytes → 100 + 1 + 4 + 2 = 107 framed bytes = 1070 bits.
        assert_eq!(framed_len(100), 107);
        let t = u.send(SimTime::ZERO, 100).unwrap();
        let want = (1070.0 / 115_200.0 * 1e9f64).ceil() as u64;
        assert_eq!(t.as_nanos(), want);
    }

    #[test]
    fn messages_queue_behind_each_other_and_overflow_is_counted() {
        let mut u = Uart::new(UartSettings {
            baud: 9600,
            queue_limit_bytes: 300,
        });
        let a = u.send(SimTime::ZERO, 100).unwrap();
        let b = u.send(SimTime::ZERO, 100).unwrap();
        // The second starts when the first ends.
        assert_eq!(b.as_nanos(), 2 * a.as_nanos());
        // 214 bytes waiting: another 107 would pass 300.
        assert!(u.backlog_bytes(SimTime::ZERO) >= 214);
        assert_eq!(u.send(SimTime::ZERO, 100), None);
        assert_eq!(u.stats().dropped, 1);
        // Once the line drains there is room again.
        assert!(u.send(b, 100).is_some());
        assert_eq!(u.stats().sent, 3);
    }
}
