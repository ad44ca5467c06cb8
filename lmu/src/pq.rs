//! Power quality against EN 50160 (public LV networks).
//!
//! Measurements are aggregated, as IEC 61000-4-30 class S prescribes, into
//! 10-minute values aligned to the clock: the RMS of the RMS voltages per
//! phase, and the RMS of THD and of unbalance. Each measurement holds until
//! the next and weighs by that time, so the aggregate is the same whether
//! measurements come every cycle (on a board) or only when the grid
//! changes (in a simulation); an interval with no measurement of its own
//! holds the last one. Each 10-minute interval is
//! compliant when, against the declared voltage `Un` (230 V by default):
//!
//! | quantity | EN 50160 limit |
//! |---|---|
//! | supply voltage, every phase | `Un` ± 10 % |
//! | voltage THD (orders to the 40th; here to the 25th), every phase | ≤ 8 % |
//! | voltage unbalance (negative / positive sequence) | ≤ 2 % |
//!
//! EN 50160 asks these of 95 % of a week's intervals; [`PqSummary`] gives the
//! counts so the share can be judged over any period. Events are classified
//! from the per-cycle RMS of any phase: a **dip** below 90 % of `Un`, an
//! **interruption** when every phase is below 5 %, a **swell** above
//! 110 %. An event ends when every phase is back inside the band with a 2 %
//! hysteresis (IEC 61000-4-30 §5.4).

use crate::dsp::Measurement;
use crate::time::{Duration, Instant};

/// Aggregation interval.
pub const INTERVAL: Duration = Duration::from_secs(600);
/// Dip threshold [pu].
pub const DIP_PU: f32 = 0.90;
/// Interruption threshold [pu].
pub const INTERRUPTION_PU: f32 = 0.05;
/// Swell threshold [pu].
pub const SWELL_PU: f32 = 1.10;
/// Hysteresis for the end of an event [pu].
pub const HYSTERESIS_PU: f32 = 0.02;
/// Voltage band of the 10-minute values [pu around 1].
pub const BAND_PU: f32 = 0.10;
/// THD limit [%].
pub const THD_LIMIT_PCT: f32 = 8.0;
/// Unbalance limit [%].
pub const UNBALANCE_LIMIT_PCT: f32 = 2.0;

/// A voltage event in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PqEvent {
    /// Dip.
    Dip,
    /// Swell.
    Swell,
    /// Interruption.
    Interruption,
}

/// Counts so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PqSummary {
    /// Completed 10-minute intervals.
    pub intervals: u32,
    /// Of which compliant.
    pub compliant_intervals: u32,
    /// Dips begun.
    pub dips: u16,
    /// Swells begun.
    pub swells: u16,
    /// Interruptions begun.
    pub interruptions: u16,
}

/// The EN 50160 monitor of one LMU.
#[derive(Clone, Debug)]
pub struct PqMonitor {
    un: f32,
    /// The last measurement: (time [µs], v², THD², unbalance²).
    held: Option<(u64, [f32; 3], [f32; 3], f32)>,
    /// Time-weighted sums of the interval so far [·s].
    v2_sum: [f32; 3],
    thd2_sum: [f32; 3],
    unb2_sum: f32,
    /// Time covered so far in the interval [s].
    covered_s: f32,
    event: Option<PqEvent>,
    summary: PqSummary,
}

impl PqMonitor {
    /// A monitor for declared voltage `un` [V].
    pub fn new(un: f32) -> PqMonitor {
        PqMonitor {
            un,
            held: None,
            v2_sum: [0.0; 3],
            thd2_sum: [0.0; 3],
            unb2_sum: 0.0,
            covered_s: 0.0,
            event: None,
            summary: PqSummary::default(),
        }
    }

    /// Counts so far.
    pub fn summary(&self) -> PqSummary {
        self.summary
    }

    /// The event in progress, if any.
    pub fn event(&self) -> Option<PqEvent> {
        self.event
    }

    /// Closes the current interval into the counts.
    fn close_interval(&mut self) {
        if self.covered_s <= 0.0 {
            return;
        }
        let n = self.covered_s;
        let band = |v2: f32| {
            let pu = libm::sqrtf(v2 / n) / self.un;
            (1.0 - BAND_PU..=1.0 + BAND_PU).contains(&pu)
        };
        let ok = self.v2_sum.iter().all(|&s| band(s))
            && self
                .thd2_sum
                .iter()
                .all(|&s| libm::sqrtf(s / n) <= THD_LIMIT_PCT)
            && libm::sqrtf(self.unb2_sum / n) <= UNBALANCE_LIMIT_PCT;
        self.summary.intervals = self.summary.intervals.saturating_add(1);
        if ok {
            self.summary.compliant_intervals = self.summary.compliant_intervals.saturating_add(1);
        }
        self.v2_sum = [0.0; 3];
        self.thd2_sum = [0.0; 3];
        self.unb2_sum = 0.0;
        self.covered_s = 0.0;
    }

    /// Takes one measurement at `now`; returns an event that began with it.
    pub fn update(&mut self, now: Instant, m: &Measurement) -> Option<PqEvent> {
        let t = now.total_micros();
        let w = INTERVAL.total_micros();
        // The last measurement held from its time until now, interval by
        // interval.
        if let Some((mut a, v2, thd2, unb2)) = self.held {
            while a < t {
                let boundary = (a / w + 1) * w;
                let b = if boundary < t { boundary } else { t };
                let dt = (b - a) as f32 / 1e6;
                for (sum, x) in self.v2_sum.iter_mut().zip(v2) {
                    *sum += x * dt;
                }
                for (sum, x) in self.thd2_sum.iter_mut().zip(thd2) {
                    *sum += x * dt;
                }
                self.unb2_sum += unb2 * dt;
                self.covered_s += dt;
                if b == boundary {
                    self.close_interval();
                }
                a = b;
            }
        }
        self.held = Some((
            t,
            m.phases.map(|p| p.v_rms * p.v_rms),
            m.phases.map(|p| p.thd_v_pct * p.thd_v_pct),
            m.v_unbalance_pct * m.v_unbalance_pct,
        ));

        let pu = m.phases.map(|p| p.v_rms / self.un);
        let lowest = pu.iter().copied().fold(f32::INFINITY, f32::min);
        let highest = pu.iter().copied().fold(0.0f32, f32::max);
        let now_event = if highest < INTERRUPTION_PU {
            Some(PqEvent::Interruption)
        } else if lowest < DIP_PU {
            Some(PqEvent::Dip)
        } else if highest > SWELL_PU {
            Some(PqEvent::Swell)
        } else {
            None
        };
        let inside = lowest >= DIP_PU + HYSTERESIS_PU && highest <= SWELL_PU - HYSTERESIS_PU;
        match (self.event, now_event) {
            // An interruption outranks the dip it began as.
            (Some(PqEvent::Dip), Some(PqEvent::Interruption)) | (None, Some(_)) => {
                let e = now_event?;
                self.event = Some(e);
                let s = &mut self.summary;
                match e {
                    PqEvent::Dip => s.dips = s.dips.saturating_add(1),
                    PqEvent::Swell => s.swells = s.swells.saturating_add(1),
                    PqEvent::Interruption => s.interruptions = s.interruptions.saturating_add(1),
                }
                Some(e)
            }
            (Some(_), _) if inside => {
                self.event = None;
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{Analyzer, PhasorFrame};
    use crate::math;

    fn m(pu: [f32; 3], thd: f32) -> Measurement {
        let mut v = [math::Complex32::new(0.0, 0.0); 3];
        for ((slot, p), d) in v.iter_mut().zip(pu).zip([0.0f32, -120.0, 120.0]) {
            *slot = math::polar(230.0 * p, d.to_radians());
        }
        let h = [[0.0f32; crate::dsp::MAX_HARMONIC - 1]; 3].map(|mut h| {
            h[4] = 230.0 * thd / 100.0;
            h
        });
        Analyzer::new().phasors(&PhasorFrame {
            v,
            i: [math::Complex32::new(0.0, 0.0); 3],
            frequency_hz: 50.0,
            v_harmonics: Some(h),
            i_harmonics: None,
        })
    }

    fn at_s(s: u64) -> Instant {
        Instant::from_secs(s)
    }

    #[test]
    fn intervals_inside_the_limits_are_compliant_and_others_not() {
        let mut pq = PqMonitor::new(230.0);
        // Interval 0: nominal. Interval 1: 4 % THD but 12 % low on phase b.
        // Interval 2: 9 % THD. Interval 3 opens and closes interval 2.
        for s in 0..600 {
            pq.update(at_s(s), &m([1.0; 3], 1.0));
        }
        for s in 600..1200 {
            pq.update(at_s(s), &m([1.0, 0.88, 1.0], 4.0));
        }
        for s in 1200..1800 {
            pq.update(at_s(s), &m([1.0; 3], 9.0));
        }
        pq.update(at_s(1800), &m([1.0; 3], 1.0));
        let s = pq.summary();
        assert_eq!((s.intervals, s.compliant_intervals), (3, 1));
    }

    /// Sparse measurements weigh by the time they hold: 590 s at nominal
    /// and 10 s dead make an interval at √(590/600) ≈ 0.992 pu, compliant
    /// (weighing the two samples alike would give 0.71 pu); intervals with
    /// no measurement of their own hold the last one.
    #[test]
    fn measurements_weigh_by_the_time_they_hold() {
        let mut pq = PqMonitor::new(230.0);
        pq.update(at_s(0), &m([1.0; 3], 1.0));
        pq.update(at_s(590), &m([0.0; 3], 0.0));
        pq.update(at_s(600), &m([1.0; 3], 1.0));
        assert_eq!(pq.summary().intervals, 1);
        assert_eq!(pq.summary().compliant_intervals, 1);
        pq.update(at_s(2400), &m([1.0; 3], 1.0));
        let s = pq.summary();
        assert_eq!((s.intervals, s.compliant_intervals), (4, 4));
    }

    #[test]
    fn an_unbalanced_interval_fails() {
        let mut pq = PqMonitor::new(230.0);
        // 1.06/1.0/0.94 pu: unbalance ≈ 3.5 %, magnitudes inside the band.
        for s in 0..=600 {
            pq.update(at_s(s), &m([1.06, 1.0, 0.94], 0.0));
        }
        assert_eq!(pq.summary().intervals, 1);
        assert_eq!(pq.summary().compliant_intervals, 0);
    }

    #[test]
    fn dips_swells_and_interruptions_are_counted_once_each() {
        let mut pq = PqMonitor::new(230.0);
        let seq: &[([f32; 3], Option<PqEvent>)] = &[
            ([1.0; 3], None),
            ([0.7, 1.0, 1.0], Some(PqEvent::Dip)),
            ([0.6, 1.0, 1.0], None),
            // Inside the hysteresis: still the same dip.
            ([0.91, 1.0, 1.0], None),
            ([1.0; 3], None),
            ([1.0, 1.0, 1.15], Some(PqEvent::Swell)),
            ([1.0; 3], None),
            ([0.5; 3], Some(PqEvent::Dip)),
            ([0.01; 3], Some(PqEvent::Interruption)),
            ([1.0; 3], None),
        ];
        for (k, (pu, want)) in seq.iter().enumerate() {
            let got = pq.update(at_s(k as u64), &m(*pu, 0.0));
            assert_eq!(got, *want, "step {k}");
        }
        let s = pq.summary();
        assert_eq!((s.dips, s.swells, s.interruptions), (2, 1, 1));
        assert_eq!(pq.event(), None);
    }
}
