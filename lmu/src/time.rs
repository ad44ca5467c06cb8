//! Integer-microsecond time for the firmware.
//!
//! [`Instant`] is a point on the node's monotonic clock in microseconds since
//! an arbitrary epoch (boot, or the start of a simulation). [`Duration`] is a
//! non-negative span in microseconds. Both are `u64`: 2⁶⁴ µs is about 584 000
//! years, so the clock never wraps in practice, and every operation that could
//! overflow has a `checked_*` form. The plain operators panic on overflow,
//! exactly as `core::time::Duration` does; firmware code on untrusted input
//! uses the checked forms.
//!
//! ```
//! use gridtwin_lmu::{Duration, Instant};
//!
//! let boot = Instant::ZERO;
//! let sample = boot + Duration::from_millis(20);
//! assert_eq!(sample.total_micros(), 20_000);
//! assert_eq!(sample - boot, Duration::from_micros(20_000));
//! // Untrusted arithmetic: no panic, a `None`.
//! assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
//! ```

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A point in time on the node's monotonic clock [µs since epoch].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    micros: u64,
}

/// A non-negative span of time [µs]. On the wire (postcard) it is its
/// microsecond count.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Duration {
    micros: u64,
}

impl Instant {
    /// The epoch: time zero.
    pub const ZERO: Instant = Instant { micros: 0 };
    /// The latest representable instant.
    pub const MAX: Instant = Instant { micros: u64::MAX };

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    /// An instant `millis` milliseconds after the epoch, saturating at [`Instant::MAX`].
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// An instant `secs` seconds after the epoch, saturating at [`Instant::MAX`].
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// Microseconds since the epoch [µs].
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// Whole milliseconds since the epoch [ms], rounded down.
    pub const fn total_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// `self + d`, or `None` on overflow.
    pub const fn checked_add(self, d: Duration) -> Option<Instant> {
        match self.micros.checked_add(d.micros) {
            Some(micros) => Some(Instant { micros }),
            None => None,
        }
    }

    /// `self - d`, or `None` if that would precede the epoch.
    pub const fn checked_sub(self, d: Duration) -> Option<Instant> {
        match self.micros.checked_sub(d.micros) {
            Some(micros) => Some(Instant { micros }),
            None => None,
        }
    }

    /// The span from `earlier` to `self`, or `None` if `earlier` is later.
    pub const fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        match self.micros.checked_sub(earlier.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// The span from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros),
        }
    }
}

impl Duration {
    /// The empty span.
    pub const ZERO: Duration = Duration { micros: 0 };
    /// The longest representable span.
    pub const MAX: Duration = Duration { micros: u64::MAX };

    /// A span of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Duration {
        Duration { micros }
    }

    /// A span of `millis` milliseconds, saturating at [`Duration::MAX`].
    pub const fn from_millis(millis: u64) -> Duration {
        Duration {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// A span of `secs` seconds, saturating at [`Duration::MAX`].
    pub const fn from_secs(secs: u64) -> Duration {
        Duration {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// Length of the span [µs].
    pub const fn total_micros(self) -> u64 {
        self.micros
    }

    /// Length of the span in whole milliseconds [ms], rounded down.
    pub const fn total_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: Duration) -> Option<Duration> {
        match self.micros.checked_add(other.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self - other`, or `None` if `other` is longer.
    pub const fn checked_sub(self, other: Duration) -> Option<Duration> {
        match self.micros.checked_sub(other.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self * k`, or `None` on overflow.
    pub const fn checked_mul(self, k: u64) -> Option<Duration> {
        match self.micros.checked_mul(k) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at the end of time (2⁶⁴ µs); use
    /// [`Instant::checked_add`] to detect that.
    fn add(self, rhs: Duration) -> Instant {
        Instant::from_micros(self.total_micros().saturating_add(rhs.total_micros()))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at the epoch; use [`Instant::checked_sub`] to detect that.
    fn sub(self, rhs: Duration) -> Instant {
        Instant::from_micros(self.total_micros().saturating_sub(rhs.total_micros()))
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Zero if `rhs` is later than `self` (as
    /// [`Instant::saturating_duration_since`]).
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl Add for Duration {
    type Output = Duration;
    /// Saturates at the longest duration; use [`Duration::checked_add`] to
    /// detect that.
    fn add(self, rhs: Duration) -> Duration {
        Duration::from_micros(self.total_micros().saturating_add(rhs.total_micros()))
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub for Duration {
    type Output = Duration;
    /// Zero if `rhs` is longer than `self`; use [`Duration::checked_sub`]
    /// to detect that.
    fn sub(self, rhs: Duration) -> Duration {
        Duration::from_micros(self.total_micros().saturating_sub(rhs.total_micros()))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros / 1_000_000,
            self.micros % 1_000_000
        )
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros / 1_000_000,
            self.micros % 1_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_round_trips() {
        let t = Instant::from_millis(1_500);
        let d = Duration::from_micros(250);
        assert_eq!((t + d).total_micros(), 1_500_250);
        assert_eq!((t + d) - t, d);
        assert_eq!((t + d) - d, t);
        assert_eq!(Duration::from_secs(2).total_millis(), 2_000);
    }

    #[test]
    fn checked_forms_catch_overflow() {
        assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(Instant::ZERO.checked_sub(Duration::from_micros(1)), None);
        assert_eq!(
            Instant::ZERO.checked_duration_since(Instant::from_micros(1)),
            None
        );
        assert_eq!(
            Instant::ZERO.saturating_duration_since(Instant::from_micros(1)),
            Duration::ZERO
        );
        assert_eq!(Duration::MAX.checked_mul(2), None);
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
    }

    #[test]
    fn display_is_seconds_with_micro_fraction() {
        use core::fmt::Write;
        let mut s: heapless::String<32> = heapless::String::new();
        write!(s, "{}", Instant::from_micros(12_000_345)).unwrap();
        assert_eq!(s.as_str(), "12.000345s");
    }
}
