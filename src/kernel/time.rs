//! Simulated time: integer nanoseconds.
//!
//! [`SimTime`] is a point on the simulation clock, in nanoseconds since the
//! start of the run. [`SimDuration`] is a non-negative span in nanoseconds.
//! Both wrap a `u64`, which covers about 584 years: far beyond any study, so
//! time never wraps, and every arithmetic operation that could overflow has a
//! `checked_*` form. The plain operators panic on overflow like
//! `std::time::Instant` does; code paths fed by user input (scenario loading)
//! use the checked forms and report an error instead.
//!
//! # Human forms
//! Both types parse and print compound human forms:
//!
//! ```
//! use gridtwin::kernel::SimDuration;
//! let d: SimDuration = "1h30min".parse().unwrap();
//! assert_eq!(d.as_nanos(), 5_400_000_000_000);
//! assert_eq!(d.to_string(), "1h30min");
//! assert_eq!("1.5s".parse::<SimDuration>().unwrap().to_string(), "1s500ms");
//! assert_eq!("24h".parse::<SimDuration>().unwrap().to_string(), "24h");
//! ```
//!
//! The grammar is one or more `NUMBER UNIT` components, largest unit first,
//! optionally separated by spaces. `NUMBER` is a decimal with an optional
//! fraction; `UNIT` is one of `d`, `h`, `min`, `s`, `ms`, `us` (or `µs`),
//! `ns`. The bare string `"0"` is zero. Conversion is exact integer
//! arithmetic: a value that is not a whole number of nanoseconds is refused,
//! never rounded. Printing uses `h`, `min`, `s`, `ms`, `us`, `ns` (no days, so
//! `"24h"` prints as `24h`) and round-trips through parsing.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;

/// Nanoseconds in one microsecond, millisecond, second, minute, hour and day.
const NS_PER_US: u64 = 1_000;
const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MIN: u64 = 60 * NS_PER_S;
const NS_PER_H: u64 = 60 * NS_PER_MIN;
const NS_PER_D: u64 = 24 * NS_PER_H;

/// A point on the simulation clock [ns since the start of the run].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

/// A non-negative span of simulated time [ns].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(u64);

impl SimTime {
    /// The start of the run.
    pub const ZERO: SimTime = SimTime(0);
    /// The latest representable time; used as "never".
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// The time `ns` nanoseconds after the start [ns].
    pub const fn from_nanos(ns: u64) -> SimTime {
        SimTime(ns)
    }

    /// Nanoseconds since the start of the run [ns].
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the start of the run [s], as a float for reporting only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }

    /// The span since the start of the run.
    pub const fn since_start(self) -> SimDuration {
        SimDuration(self.0)
    }

    /// `self + d`, or `None` on overflow.
    pub const fn checked_add(self, d: SimDuration) -> Option<SimTime> {
        match self.0.checked_add(d.0) {
            Some(t) => Some(SimTime(t)),
            None => None,
        }
    }

    /// `self + d`, clamped to [`SimTime::MAX`].
    pub const fn saturating_add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// `self - d`, or `None` if that would precede the start.
    pub const fn checked_sub(self, d: SimDuration) -> Option<SimTime> {
        match self.0.checked_sub(d.0) {
            Some(t) => Some(SimTime(t)),
            None => None,
        }
    }

    /// The span from `earlier` to `self`, or `None` if `earlier` is later.
    pub const fn checked_since(self, earlier: SimTime) -> Option<SimDuration> {
        match self.0.checked_sub(earlier.0) {
            Some(d) => Some(SimDuration(d)),
            None => None,
        }
    }

    /// The span from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// The empty span.
    pub const ZERO: SimDuration = SimDuration(0);
    /// The longest representable span.
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    /// A span of `ns` nanoseconds.
    pub const fn from_nanos(ns: u64) -> SimDuration {
        SimDuration(ns)
    }

    /// A span of `us` microseconds, or `None` on overflow.
    pub const fn from_micros(us: u64) -> Option<SimDuration> {
        Self::scaled(us, NS_PER_US)
    }

    /// A span of `ms` milliseconds, or `None` on overflow.
    pub const fn from_millis(ms: u64) -> Option<SimDuration> {
        Self::scaled(ms, NS_PER_MS)
    }

    /// A span of `s` seconds, or `None` on overflow.
    pub const fn from_secs(s: u64) -> Option<SimDuration> {
        Self::scaled(s, NS_PER_S)
    }

    /// A span of `min` minutes, or `None` on overflow.
    pub const fn from_mins(min: u64) -> Option<SimDuration> {
        Self::scaled(min, NS_PER_MIN)
    }

    /// A span of `h` hours, or `None` on overflow.
    pub const fn from_hours(h: u64) -> Option<SimDuration> {
        Self::scaled(h, NS_PER_H)
    }

    const fn scaled(v: u64, unit: u64) -> Option<SimDuration> {
        match v.checked_mul(unit) {
            Some(ns) => Some(SimDuration(ns)),
            None => None,
        }
    }

    /// Length of the span [ns].
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Length of the span [s], as a float for reporting only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }

    /// Whether the span is empty.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: SimDuration) -> Option<SimDuration> {
        match self.0.checked_add(other.0) {
            Some(d) => Some(SimDuration(d)),
            None => None,
        }
    }

    /// `self - other`, or `None` if `other` is longer.
    pub const fn checked_sub(self, other: SimDuration) -> Option<SimDuration> {
        match self.0.checked_sub(other.0) {
            Some(d) => Some(SimDuration(d)),
            None => None,
        }
    }

    /// `self * k`, or `None` on overflow.
    pub const fn checked_mul(self, k: u64) -> Option<SimDuration> {
        match self.0.checked_mul(k) {
            Some(d) => Some(SimDuration(d)),
            None => None,
        }
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    /// Panics on overflow; use [`SimTime::checked_add`] where the operands
    /// come from user input.
    fn add(self, rhs: SimDuration) -> SimTime {
        self.checked_add(rhs)
            .expect("SimTime + SimDuration overflowed")
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}

impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    /// Panics if `rhs` is later than `self`.
    fn sub(self, rhs: SimTime) -> SimDuration {
        self.checked_since(rhs)
            .expect("SimTime - SimTime: rhs is later than lhs")
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    /// Panics on overflow.
    fn add(self, rhs: SimDuration) -> SimDuration {
        self.checked_add(rhs)
            .expect("SimDuration + SimDuration overflowed")
    }
}

impl AddAssign for SimDuration {
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}

/// Why a human duration string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseTimeError {
    /// The string was empty or only spaces.
    #[error("empty duration; write e.g. \"750ms\", \"15min\" or \"1h30min\"")]
    Empty,
    /// A component had no digits where a number was expected.
    #[error("expected a number at byte {at} of {input:?}")]
    ExpectedNumber {
        /// The whole input.
        input: String,
        /// Byte offset of the problem.
        at: usize,
    },
    /// A number had no unit, or the unit is not known.
    #[error("unknown or missing unit {unit:?} in {input:?}; use d, h, min, s, ms, us (µs) or ns")]
    BadUnit {
        /// The whole input.
        input: String,
        /// The unit text found.
        unit: String,
    },
    /// Units were not written largest first, or one repeated.
    #[error("units must go from largest to smallest, each at most once, in {input:?}")]
    UnitOrder {
        /// The whole input.
        input: String,
    },
    /// The value is not a whole number of nanoseconds.
    #[error("{input:?} is finer than the 1 ns resolution of simulated time")]
    SubNanosecond {
        /// The whole input.
        input: String,
    },
    /// The value does not fit in 64-bit nanoseconds (about 584 years).
    #[error("{input:?} is longer than the longest representable span (about 584 years)")]
    Overflow {
        /// The whole input.
        input: String,
    },
}

/// Units in parsing order, largest first: (text, nanoseconds).
const UNITS: [(&str, u64); 8] = [
    ("d", NS_PER_D),
    ("h", NS_PER_H),
    ("min", NS_PER_MIN),
    ("s", NS_PER_S),
    ("ms", NS_PER_MS),
    ("us", NS_PER_US),
    ("µs", NS_PER_US),
    ("ns", 1),
];

impl FromStr for SimDuration {
    type Err = ParseTimeError;

    fn from_str(input: &str) -> Result<SimDuration, ParseTimeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseTimeError::Empty);
        }
        if s == "0" {
            return Ok(SimDuration::ZERO);
        }
        let owned = || input.to_string();
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut total: u64 = 0;
        let mut last_unit = u64::MAX;
        while i < bytes.len() {
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            // Integer part.
            let int_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let int_digits = &s[int_start..i];
            // Optional fraction.
            let mut frac_digits = "";
            if i < bytes.len() && bytes[i] == b'.' {
                i += 1;
                let frac_start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                frac_digits = &s[frac_start..i];
            }
            if int_digits.is_empty() && frac_digits.is_empty() {
                return Err(ParseTimeError::ExpectedNumber {
                    input: owned(),
                    at: int_start,
                });
            }
            // Unit: the longest run of letters (and µ).
            let unit_start = i;
            while i < s.len()
                && !s.as_bytes()[i].is_ascii_digit()
                && bytes[i] != b' '
                && bytes[i] != b'.'
            {
                i += s[i..].chars().next().map_or(1, char::len_utf8);
            }
            let unit_text = &s[unit_start..i];
            let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| *name == unit_text) else {
                return Err(ParseTimeError::BadUnit {
                    input: owned(),
                    unit: unit_text.to_string(),
                });
            };
            if unit >= last_unit {
                return Err(ParseTimeError::UnitOrder { input: owned() });
            }
            last_unit = unit;
            let component =
                component_nanos(int_digits, frac_digits, unit).map_err(|e| match e {
                    ComponentError::Overflow => ParseTimeError::Overflow { input: owned() },
                    ComponentError::SubNanosecond => {
                        ParseTimeError::SubNanosecond { input: owned() }
                    }
                })?;
            total = total
                .checked_add(component)
                .ok_or_else(|| ParseTimeError::Overflow { input: owned() })?;
        }
        Ok(SimDuration(total))
    }
}

enum ComponentError {
    Overflow,
    SubNanosecond,
}

/// `int.frac × unit` in exact integer nanoseconds.
fn component_nanos(int_digits: &str, frac_digits: &str, unit: u64) -> Result<u64, ComponentError> {
    let mut int: u64 = 0;
    for d in int_digits.bytes() {
        int = int
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(ComponentError::Overflow)?;
    }
    let mut ns = int.checked_mul(unit).ok_or(ComponentError::Overflow)?;
    // Fraction: digits beyond the unit's resolution must be zero.
    let mut scale = unit;
    for d in frac_digits.bytes() {
        let digit = u64::from(d - b'0');
        if !scale.is_multiple_of(10) {
            if digit != 0 {
                return Err(ComponentError::SubNanosecond);
            }
            continue;
        }
        scale /= 10;
        ns = ns
            .checked_add(digit * scale)
            .ok_or(ComponentError::Overflow)?;
    }
    Ok(ns)
}

impl FromStr for SimTime {
    type Err = ParseTimeError;
    /// A time is written as the span since the start of the run.
    fn from_str(s: &str) -> Result<SimTime, ParseTimeError> {
        s.parse::<SimDuration>().map(|d| SimTime(d.0))
    }
}

/// Printed units, largest first. Days are not printed, so `24h` stays `24h`.
const PRINT_UNITS: [(&str, u64); 6] = [
    ("h", NS_PER_H),
    ("min", NS_PER_MIN),
    ("s", NS_PER_S),
    ("ms", NS_PER_MS),
    ("us", NS_PER_US),
    ("ns", 1),
];

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (name, unit) in PRINT_UNITS {
            let n = rest / unit;
            rest %= unit;
            if n > 0 {
                write!(f, "{n}{name}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&SimDuration(self.0), f)
    }
}

impl serde::Serialize for SimDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SimDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SimDuration, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SimDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with units, e.g. \"750ms\", \"15min\" or \"1h30min\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SimDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SimDuration, E> {
                Err(E::custom(format_args!(
                    "a bare number ({v}) is not a duration: write it with a unit, \
                     e.g. \"{v}s\" or \"{v}ms\""
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SimDuration, E> {
                Err(E::custom(format_args!(
                    "a bare number ({v}) is not a duration: write a non-negative \
                     value with a unit, e.g. \"15min\""
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SimDuration, E> {
                Err(E::custom(format_args!(
                    "a bare number ({v}) is not a duration: write it with a unit, \
                     e.g. \"{v}s\""
                )))
            }
        }
        // `deserialize_any`, so that a bare number reaches the visitor and
        // gets the specific message above rather than "expected a string".
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> SimDuration {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_human_forms() {
        assert_eq!(d("750ms").as_nanos(), 750 * NS_PER_MS);
        assert_eq!(d("15min").as_nanos(), 15 * NS_PER_MIN);
        assert_eq!(d("24h").as_nanos(), 24 * NS_PER_H);
        assert_eq!(d("1h30min").as_nanos(), 90 * NS_PER_MIN);
        assert_eq!(d("1h 30min").as_nanos(), 90 * NS_PER_MIN);
        assert_eq!(d("2d").as_nanos(), 48 * NS_PER_H);
        assert_eq!(d("1.5s").as_nanos(), 1_500 * NS_PER_MS);
        assert_eq!(d(".25s").as_nanos(), 250 * NS_PER_MS);
        assert_eq!(d("3us").as_nanos(), 3_000);
        assert_eq!(d("3µs").as_nanos(), 3_000);
        assert_eq!(d("7ns").as_nanos(), 7);
        assert_eq!(d("0").as_nanos(), 0);
        assert_eq!(d("0s").as_nanos(), 0);
        assert_eq!(d(" 5s ").as_nanos(), 5 * NS_PER_S);
    }

    #[test]
    fn refuses_bad_forms_with_a_reason() {
        assert_eq!("".parse::<SimDuration>(), Err(ParseTimeError::Empty));
        assert!(matches!(
            "15".parse::<SimDuration>(),
            Err(ParseTimeError::BadUnit { .. })
        ));
        assert!(matches!(
            "15 parsecs".parse::<SimDuration>(),
            Err(ParseTimeError::BadUnit { .. })
        ));
        assert!(matches!(
            "30min1h".parse::<SimDuration>(),
            Err(ParseTimeError::UnitOrder { .. })
        ));
        assert!(matches!(
            "1s1s".parse::<SimDuration>(),
            Err(ParseTimeError::UnitOrder { .. })
        ));
        assert!(matches!(
            "1.5ns".parse::<SimDuration>(),
            Err(ParseTimeError::SubNanosecond { .. })
        ));
        assert!(matches!(
            "-1s".parse::<SimDuration>(),
            Err(ParseTimeError::ExpectedNumber { .. })
        ));
        assert!(matches!(
            "600000d".parse::<SimDuration>(),
            Err(ParseTimeError::Overflow { .. })
        ));
        assert!(matches!(
            "99999999999999999999999ns".parse::<SimDuration>(),
            Err(ParseTimeError::Overflow { .. })
        ));
        // Trailing zeros below a nanosecond are exact and therefore fine.
        assert_eq!(d("1.000ns").as_nanos(), 1);
    }

    #[test]
    fn prints_compound_forms() {
        assert_eq!(d("1h30min").to_string(), "1h30min");
        assert_eq!(d("750ms").to_string(), "750ms");
        assert_eq!(d("90s").to_string(), "1min30s");
        assert_eq!(d("1d").to_string(), "24h");
        assert_eq!(SimDuration::ZERO.to_string(), "0s");
        assert_eq!(SimTime::from_nanos(1_001).to_string(), "1us1ns");
    }

    #[test]
    fn checked_arithmetic() {
        assert_eq!(SimTime::MAX.checked_add(SimDuration::from_nanos(1)), None);
        assert_eq!(SimTime::ZERO.checked_since(SimTime::from_nanos(1)), None);
        assert_eq!(SimDuration::from_secs(u64::MAX), None);
        assert_eq!(
            SimTime::from_nanos(5) - SimTime::from_nanos(2),
            SimDuration::from_nanos(3)
        );
        assert_eq!(
            SimTime::MAX.saturating_add(SimDuration::from_nanos(9)),
            SimTime::MAX
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(ns in any::<u64>()) {
            let d = SimDuration::from_nanos(ns);
            prop_assert_eq!(d.to_string().parse::<SimDuration>(), Ok(d));
        }

        #[test]
        fn whatever_parses_round_trips(s in "\\PC{0,24}|[0-9. µsmhdinu]{0,16}") {
            if let Ok(d) = s.parse::<SimDuration>() {
                // Whatever parses prints to something that parses back equal.
                prop_assert_eq!(d.to_string().parse::<SimDuration>(), Ok(d));
            }
        }
    }
}
