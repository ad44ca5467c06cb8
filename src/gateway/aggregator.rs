//! The gateway's aggregator: LMU reports grouped into rounds by LMU id.
//!
//! Round *r* holds the reports generated in `[r·T, (r+1)·T)`, `T` being the
//! LMU report interval. It is published:
//! - **wait-for-all** (the default): as soon as every LMU has a report in
//!   it, or at its deadline `(r+1)·T + D`, whichever is first;
//! - **fixed-deadline**: always at its deadline.
//!
//! A round published at its deadline names the LMUs missing from it. A
//! report that arrives after its round was published is attached to that
//! round and published as a late amendment, never dropped. The mesh may
//! deliver a report twice; duplicates are recognised by (LMU id, boot
//! epoch, report sequence) and counted.

use std::collections::{BTreeMap, BTreeSet};

use gridtwin_lmu::node::Telemetry;

use crate::kernel::{SimDuration, SimTime};

/// When a round is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// When every LMU has reported, or at the deadline.
    WaitForAll {
        /// After the round's end.
        deadline: SimDuration,
    },
    /// At the deadline.
    FixedDeadline {
        /// After the round's end.
        deadline: SimDuration,
    },
}

impl Policy {
    fn deadline(self) -> SimDuration {
        match self {
            Policy::WaitForAll { deadline } | Policy::FixedDeadline { deadline } => deadline,
        }
    }
}

/// An LMU report as the gateway receives it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// The LMU.
    pub lmu: u32,
    /// The LMU's boot epoch (sequence numbers restart at each boot).
    pub epoch: u32,
    /// Its report sequence number.
    pub seq: u32,
    /// When the LMU generated it.
    pub generated_at: SimTime,
    /// Payload size [octets].
    pub octets: usize,
    /// What it says.
    pub telemetry: Telemetry,
}

/// A published round (or a late amendment to one).
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// Round index.
    pub round: u64,
    /// When it was published.
    pub at: SimTime,
    /// The reports, by LMU id.
    pub reports: Vec<Report>,
    /// LMUs without a report when it was published (empty for amendments).
    pub missing: Vec<u32>,
    /// A late amendment to a round already published.
    pub late: bool,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggregatorStats {
    /// Rounds published.
    pub rounds: u64,
    /// Rounds published with every LMU.
    pub complete_rounds: u64,
    /// Reports received (duplicates excluded).
    pub reports: u64,
    /// Duplicates removed.
    pub duplicates: u64,
    /// Reports that came after their round was published.
    pub late: u64,
}

/// A round: its reports until it is published (by LMU, then boot epoch
/// and sequence, so that an LMU that reports twice in one round, after a
/// reboot or a changed interval, keeps both), and whether it is.
#[derive(Clone, Debug, Default)]
struct Round {
    reports: BTreeMap<(u32, u32, u32), Report>,
    /// How many of the aggregator's LMUs have a report in it.
    lmus_in: usize,
    published: bool,
}

impl Round {
    fn has(&self, lmu: u32) -> bool {
        self.reports
            .range((lmu, 0, 0)..=(lmu, u32::MAX, u32::MAX))
            .next()
            .is_some()
    }
}

/// The aggregator.
#[derive(Clone, Debug)]
pub struct Aggregator {
    lmus: BTreeSet<u32>,
    interval: SimDuration,
    policy: Policy,
    rounds: BTreeMap<u64, Round>,
    /// The sequence numbers received from each LMU in each of its boot
    /// epochs, as compressed bitmaps (a day's reports of an LMU are a few
    /// runs, not one tree node each).
    seen: BTreeMap<(u32, u32), roaring::RoaringBitmap>,
    /// Reports in rounds not yet published.
    held: u64,
    stats: AggregatorStats,
}

impl Aggregator {
    /// An aggregator for `lmus`, reporting every `interval`.
    pub fn new(
        lmus: impl IntoIterator<Item = u32>,
        interval: SimDuration,
        policy: Policy,
    ) -> Aggregator {
        Aggregator {
            lmus: lmus.into_iter().collect(),
            interval,
            policy,
            rounds: BTreeMap::new(),
            seen: BTreeMap::new(),
            held: 0,
            stats: AggregatorStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> AggregatorStats {
        self.stats
    }

    /// Reports received but not yet published: those of rounds still
    /// waiting for their LMUs or their deadline.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// The round a report generated at `t` belongs to.
    pub fn round_of(&self, t: SimTime) -> u64 {
        t.as_nanos() / self.interval.as_nanos().max(1)
    }

    /// When round `r` is due at the latest.
    pub fn deadline_of(&self, r: u64) -> SimTime {
        SimTime::from_nanos((r + 1).saturating_mul(self.interval.as_nanos()))
            .saturating_add(self.policy.deadline())
    }

    /// Takes a report at `now`. Returns what it causes to be published: a
    /// completed round (wait-for-all), a late amendment, or nothing.
    /// Whoever drives the aggregator calls [`Aggregator::deadline`] at
    /// [`Aggregator::deadline_of`] of every round it has seen.
    pub fn receive(&mut self, now: SimTime, report: Report) -> Option<Published> {
        let seen = self.seen.entry((report.lmu, report.epoch)).or_default();
        if !seen.insert(report.seq) {
            self.stats.duplicates += 1;
            return None;
        }
        self.stats.reports += 1;
        let r = self.round_of(report.generated_at);
        let all = self.lmus.len();
        let round = self.rounds.entry(r).or_default();
        if round.published {
            self.stats.late += 1;
            return Some(Published {
                round: r,
                at: now,
                reports: vec![report],
                missing: Vec::new(),
                late: true,
            });
        }
        if !round.has(report.lmu) && self.lmus.contains(&report.lmu) {
            round.lmus_in += 1;
        }
        round
            .reports
            .insert((report.lmu, report.epoch, report.seq), report);
        self.held += 1;
        let complete = round.lmus_in >= all;
        if complete && matches!(self.policy, Policy::WaitForAll { .. }) {
            return Some(self.publish(now, r));
        }
        None
    }

    /// The deadline of round `r` has come: publish it if it is not yet.
    pub fn deadline(&mut self, now: SimTime, r: u64) -> Option<Published> {
        if self.rounds.get(&r).is_some_and(|x| x.published) {
            return None;
        }
        Some(self.publish(now, r))
    }

    fn publish(&mut self, now: SimTime, r: u64) -> Published {
        let round = self.rounds.entry(r).or_default();
        round.published = true;
        let missing: Vec<u32> = self
            .lmus
            .iter()
            .copied()
            .filter(|&l| !round.has(l))
            .collect();
        self.stats.rounds += 1;
        if missing.is_empty() {
            self.stats.complete_rounds += 1;
        }
        // A published round keeps only its flag: late reports go out alone.
        let reports: Vec<Report> = std::mem::take(&mut round.reports).into_values().collect();
        self.held -= reports.len() as u64;
        Published {
            round: r,
            at: now,
            reports,
            missing,
            late: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SimTime {
        SimTime::from_nanos(s * 1_000_000_000)
    }

    fn min() -> SimDuration {
        SimDuration::from_mins(1).unwrap()
    }

    fn report(lmu: u32, seq: u32, at_s: u64) -> Report {
        Report {
            lmu,
            epoch: 0,
            seq,
            generated_at: t(at_s),
            octets: 40,
            telemetry: Telemetry::default(),
        }
    }

    fn wait_for_all() -> Aggregator {
        Aggregator::new(
            [1, 2, 3],
            min(),
            Policy::WaitForAll {
                deadline: SimDuration::from_secs(10).unwrap(),
            },
        )
    }

    #[test]
    fn a_round_is_published_when_every_lmu_has_reported() {
        let mut a = wait_for_all();
        assert_eq!(a.receive(t(5), report(1, 0, 3)), None);
        assert_eq!(a.receive(t(6), report(2, 0, 4)), None);
        let p = a.receive(t(7), report(3, 0, 5)).unwrap();
        assert_eq!((p.round, p.at, p.late), (0, t(7), false));
        assert!(p.missing.is_empty());
        assert_eq!(
            p.reports.iter().map(|r| r.lmu).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // Its deadline then publishes nothing more.
        assert_eq!(a.deadline(a.deadline_of(0), 0), None);
        assert_eq!(a.stats().complete_rounds, 1);
    }

    #[test]
    fn with_one_lmu_dead_every_round_goes_at_its_deadline_naming_it() {
        let mut a = wait_for_all();
        for r in 0..5u64 {
            for lmu in [1, 2] {
                assert_eq!(
                    a.receive(t(r * 60 + 20), report(lmu, r as u32, r * 60 + 10)),
                    None
                );
            }
            let due = a.deadline_of(r);
            assert_eq!(due, t(r * 60 + 70));
            let p = a.deadline(due, r).unwrap();
            assert_eq!(p.missing, vec![3]);
            assert_eq!(p.reports.len(), 2);
        }
        assert_eq!((a.stats().rounds, a.stats().complete_rounds), (5, 0));
    }

    #[test]
    fn late_reports_join_their_own_round_as_an_amendment() {
        let mut a = wait_for_all();
        a.receive(t(10), report(1, 0, 5));
        let p = a.deadline(a.deadline_of(0), 0).unwrap();
        assert_eq!(p.missing, vec![2, 3]);
        // LMU 2's report of round 0 arrives in round 2.
        let late = a.receive(t(130), report(2, 0, 30)).unwrap();
        assert_eq!((late.round, late.late, late.reports.len()), (0, true, 1));
        assert_eq!(a.stats().late, 1);
    }

    #[test]
    fn duplicates_are_removed_by_lmu_and_sequence() {
        let mut a = wait_for_all();
        a.receive(t(5), report(1, 7, 3));
        assert_eq!(a.receive(t(6), report(1, 7, 3)), None);
        assert_eq!((a.stats().reports, a.stats().duplicates), (1, 1));
        // The same sequence from another LMU is not a duplicate.
        a.receive(t(6), report(2, 7, 3));
        assert_eq!(a.stats().reports, 2);
    }

    #[test]
    fn fixed_deadline_waits_even_for_a_complete_round() {
        let mut a = Aggregator::new(
            [1, 2],
            min(),
            Policy::FixedDeadline {
                deadline: SimDuration::from_secs(5).unwrap(),
            },
        );
        assert_eq!(a.receive(t(1), report(1, 0, 1)), None);
        assert_eq!(a.receive(t(2), report(2, 0, 2)), None);
        let p = a.deadline(t(65), 0).unwrap();
        assert!(p.missing.is_empty());
        assert_eq!(p.at, t(65));
    }

    #[test]
    fn an_lmu_that_reports_twice_in_a_round_keeps_both_reports() {
        // An LMU rebooted within the round: its report of the old boot
        // epoch and the first of the new one both belong to round 0.
        let mut a = wait_for_all();
        a.receive(t(5), report(1, 4, 3));
        let mut again = report(1, 0, 40);
        again.epoch = 1;
        a.receive(t(41), again);
        a.receive(t(42), report(2, 9, 41));
        assert_eq!(a.held(), 3);
        let p = a.receive(t(43), report(3, 9, 42)).unwrap();
        assert_eq!(
            p.reports
                .iter()
                .map(|r| (r.lmu, r.epoch))
                .collect::<Vec<_>>(),
            vec![(1, 0), (1, 1), (2, 0), (3, 0)]
        );
        assert_eq!(a.held(), 0);
    }

    proptest::proptest! {
        /// Every report received is published exactly once (in its round,
        /// or as a late amendment) or still held: none is lost, whatever
        /// the order of reports, duplicates, reboots and deadlines.
        #[test]
        fn reports_are_conserved(
            events in proptest::collection::vec(
                (0u32..5, 0u32..2, 0u32..40, 0u64..600, proptest::bool::ANY), 0..200),
        ) {
            let mut a = wait_for_all();
            let mut published = 0u64;
            let mut keys = std::collections::BTreeSet::new();
            let mut now = 0u64;
            for (lmu, epoch, seq, at, deadline) in events {
                now += 1;
                let p = if deadline {
                    a.deadline(t(now), at / 60)
                } else {
                    let mut r = report(lmu, seq, at.min(now));
                    r.epoch = epoch;
                    a.receive(t(now), r)
                };
                if let Some(p) = p {
                    for r in &p.reports {
                        proptest::prop_assert!(keys.insert((r.lmu, r.epoch, r.seq)));
                    }
                    published += p.reports.len() as u64;
                }
            }
            proptest::prop_assert_eq!(a.stats().reports, published + a.held());
        }
    }
}
