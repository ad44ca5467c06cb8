//! Feeder-head protection: a breaker with an auto-recloser on each feeder
//! leaving the LV board.
//!
//! Contactors are not breakers (see the LMU crate): the feeder-head breaker
//! interrupts fault current, and the LMUs isolate the faulted section in its
//! dead time. The model is a definite-time overcurrent element and a
//! reclosing sequence, as on an LV recloser:
//!
//! - **Pick-up.** After every solve, a closed breaker whose current exceeds
//!   `pickup_a` on any phase arms a trip `trip_delay` later (the element's
//!   definite time, which also stands for the fuse or relay curve at fault
//!   level).
//! - **Trip.** At the trip instant the current is checked again: a fault
//!   that cleared meanwhile (or was isolated) resets the element; otherwise
//!   the breaker opens.
//! - **Reclose.** Shot *k* recloses `reclose[k]` after the *k*-th trip of a
//!   sequence. A trip after the last shot locks the breaker out (open until
//!   the end of the run). A sequence resets after `reset` without a trip
//!   since the last reclose (the reclaim time).

use crate::kernel::{SimDuration, SimTime};

/// The protection settings of every feeder-head breaker (the scenario's
/// `grid.protection`): a breaker with a definite-time overcurrent element
/// and an auto-recloser on every line leaving the LV board.
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `pickup_a` | pick-up current, per phase [A] | `400.0` |
/// | `trip_delay` | definite time from pick-up to trip | `"100ms"` |
/// | `reclose` | dead time before each reclose shot; a trip after the last locks out | `["3s", "15s"]` |
/// | `reset` | reclaim time after which a sequence starts afresh | `"60s"` |
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecloserSettings {
    /// Pick-up current [A], per phase.
    pub pickup_a: f64,
    /// From pick-up to trip (definite time).
    pub trip_delay: SimDuration,
    /// Dead time before each reclose shot, in order.
    pub reclose: Vec<SimDuration>,
    /// Reclaim time: a sequence resets after this long closed without a
    /// trip.
    pub reset: SimDuration,
}

impl Default for RecloserSettings {
    /// 400 A pick-up, 100 ms, shots after 3 s and 15 s, 60 s reclaim.
    fn default() -> Self {
        RecloserSettings {
            pickup_a: 400.0,
            trip_delay: SimDuration::from_millis(100).expect("fits"),
            reclose: vec![
                SimDuration::from_secs(3).expect("fits"),
                SimDuration::from_secs(15).expect("fits"),
            ],
            reset: SimDuration::from_secs(60).expect("fits"),
        }
    }
}

/// A breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Closed, conducting.
    Closed,
    /// Open in its dead time, a reclose due.
    Open,
    /// Open for good.
    Lockout,
}

/// What the grid model must do for a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerAction {
    /// Nothing.
    None,
    /// Arm: check again at this time.
    Arm(SimTime),
    /// Open the branch; reclose at this time, or never (lockout).
    Open(Option<SimTime>),
    /// Close the branch.
    Close,
}

/// One feeder-head breaker and its recloser.
#[derive(Clone, Debug, PartialEq)]
pub struct Breaker {
    /// The branch it opens.
    pub branch: usize,
    /// Its state.
    pub state: BreakerState,
    armed: bool,
    /// Trips so far in this sequence.
    shot: usize,
    last_reclose: Option<SimTime>,
    /// Trips over the run.
    pub trips: u64,
    /// Recloses over the run.
    pub recloses: u64,
}

impl Breaker {
    /// A closed breaker on `branch`.
    pub fn new(branch: usize) -> Breaker {
        Breaker {
            branch,
            state: BreakerState::Closed,
            armed: false,
            shot: 0,
            last_reclose: None,
            trips: 0,
            recloses: 0,
        }
    }

    /// After a solve at `now`, with `current_a` the largest phase current
    /// through the breaker [A].
    pub fn solved(&mut self, s: &RecloserSettings, now: SimTime, current_a: f64) -> BreakerAction {
        if self.state == BreakerState::Closed && !self.armed && current_a > s.pickup_a {
            self.armed = true;
            return BreakerAction::Arm(now.saturating_add(s.trip_delay));
        }
        BreakerAction::None
    }

    /// The trip instant, with the current through the breaker now [A].
    pub fn trip_due(
        &mut self,
        s: &RecloserSettings,
        now: SimTime,
        current_a: f64,
    ) -> BreakerAction {
        if !self.armed || self.state != BreakerState::Closed {
            return BreakerAction::None;
        }
        self.armed = false;
        if current_a <= s.pickup_a {
            return BreakerAction::None;
        }
        let reclaimed = self
            .last_reclose
            .is_some_and(|t| now.saturating_since(t) >= s.reset);
        if reclaimed {
            self.shot = 0;
        }
        self.trips += 1;
        match s.reclose.get(self.shot) {
            Some(&dead) => {
                self.shot += 1;
                self.state = BreakerState::Open;
                BreakerAction::Open(Some(now.saturating_add(dead)))
            }
            None => {
                self.state = BreakerState::Lockout;
                BreakerAction::Open(None)
            }
        }
    }

    /// The reclose instant.
    pub fn reclose_due(&mut self, now: SimTime) -> BreakerAction {
        if self.state != BreakerState::Open {
            return BreakerAction::None;
        }
        self.state = BreakerState::Closed;
        self.last_reclose = Some(now);
        self.recloses += 1;
        BreakerAction::Close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn a_permanent_fault_trips_recloses_twice_then_locks_out() {
        let s = RecloserSettings::default();
        let mut b = Breaker::new(7);
        assert_eq!(b.solved(&s, t(0), 100.0), BreakerAction::None);
        // Fault at 1 s: armed, trips 100 ms later, recloses after 3 s.
        assert_eq!(b.solved(&s, t(1000), 2000.0), BreakerAction::Arm(t(1100)));
        // A second solve while armed does not re-arm.
        assert_eq!(b.solved(&s, t(1050), 2000.0), BreakerAction::None);
        assert_eq!(
            b.trip_due(&s, t(1100), 2000.0),
            BreakerAction::Open(Some(t(4100)))
        );
        assert_eq!(b.reclose_due(t(4100)), BreakerAction::Close);
        // Still faulted: second shot after 15 s.
        assert_eq!(b.solved(&s, t(4100), 2000.0), BreakerAction::Arm(t(4200)));
        assert_eq!(
            b.trip_due(&s, t(4200), 2000.0),
            BreakerAction::Open(Some(t(19200)))
        );
        assert_eq!(b.reclose_due(t(19200)), BreakerAction::Close);
        assert_eq!(b.solved(&s, t(19200), 2000.0), BreakerAction::Arm(t(19300)));
        // Third trip within the reclaim time: lockout.
        assert_eq!(b.trip_due(&s, t(19300), 2000.0), BreakerAction::Open(None));
        assert_eq!(b.state, BreakerState::Lockout);
        assert_eq!(b.reclose_due(t(30000)), BreakerAction::None);
        assert_eq!((b.trips, b.recloses), (3, 2));
    }

    #[test]
    fn an_isolated_or_cleared_fault_resets_the_element_and_the_sequence() {
        let s = RecloserSettings::default();
        let mut b = Breaker::new(0);
        b.solved(&s, t(0), 900.0);
        // The fault is gone by the trip instant: no trip.
        assert_eq!(b.trip_due(&s, t(100), 50.0), BreakerAction::None);
        assert_eq!(b.state, BreakerState::Closed);
        // A later fault trips; the reclose holds (the section was isolated
        // meanwhile).
        b.solved(&s, t(10_000), 900.0);
        b.trip_due(&s, t(10_100), 900.0);
        b.reclose_due(t(13_100));
        assert_eq!(b.solved(&s, t(13_100), 50.0), BreakerAction::None);
        // After the reclaim time a new fault starts a fresh sequence: the
        // first shot again.
        b.solved(&s, t(100_000), 900.0);
        assert_eq!(
            b.trip_due(&s, t(100_100), 900.0),
            BreakerAction::Open(Some(t(103_100)))
        );
    }
}
