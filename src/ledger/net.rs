//! The validators' backhaul network: a full mesh of links with a base
//! latency, uniform jitter, loss, and partitions.
//!
//! Each directed link draws from its own random stream, so adding a
//! validator never changes another link's draws. A partition assigns each
//! validator to a group; messages between groups are dropped until it
//! heals.

use rand::RngExt;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::kernel::rng::stream;
use crate::kernel::{SimDuration, SimTime};

/// Link settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetSettings {
    /// Base one-way latency δ.
    pub latency: SimDuration,
    /// Extra latency, uniform in `[0, jitter]`.
    pub jitter: SimDuration,
    /// Probability that a message is lost.
    pub loss: f64,
}

impl Default for NetSettings {
    /// 20 ms, 5 ms of jitter, no loss: validators in one region over a
    /// wired backhaul.
    fn default() -> Self {
        NetSettings {
            latency: SimDuration::from_nanos(20_000_000),
            jitter: SimDuration::from_nanos(5_000_000),
            loss: 0.0,
        }
    }
}

/// A fault of the validators (of either consensus).
#[derive(Clone, Debug, PartialEq)]
pub enum ValidatorFault {
    /// A validator is down from `at` to `until` (if ever).
    Crash {
        /// Which.
        node: u32,
        /// When.
        at: SimTime,
        /// Back up.
        until: Option<SimTime>,
    },
    /// The backhaul splits into groups from `at` to `until` (if ever).
    Partition {
        /// Group of each validator ([`BRIDGE`] reaches all).
        groups: Vec<u32>,
        /// When.
        at: SimTime,
        /// Heal.
        until: Option<SimTime>,
    },
}

impl ValidatorFault {
    /// When it starts and ends.
    pub fn window(&self) -> (SimTime, Option<SimTime>) {
        match self {
            ValidatorFault::Crash { at, until, .. }
            | ValidatorFault::Partition { at, until, .. } => (*at, *until),
        }
    }
}

/// The group of a validator that a partition does not cut off: it reaches
/// every group (e.g. a Byzantine validator with links to both sides).
pub const BRIDGE: u32 = u32::MAX;

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages sent (per recipient).
    pub sent: u64,
    /// Lost to the loss rate.
    pub lost: u64,
    /// Dropped by a partition.
    pub partitioned: u64,
}

/// The backhaul.
#[derive(Clone, Debug)]
pub struct Backhaul {
    n: usize,
    settings: NetSettings,
    links: Vec<Xoshiro256PlusPlus>,
    groups: Option<Vec<u32>>,
    stats: NetStats,
}

impl Backhaul {
    /// `n` validators fully meshed.
    pub fn new(n: usize, settings: NetSettings, seed: u64) -> Backhaul {
        Backhaul {
            n,
            settings,
            links: (0..n * n)
                .map(|k| stream(seed, "backhaul", k as u64, "link"))
                .collect(),
            groups: None,
            stats: NetStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Splits the validators into groups (`groups[i]` is validator i's;
    /// [`BRIDGE`] reaches every group); `None` heals.
    pub fn partition(&mut self, groups: Option<Vec<u32>>) {
        self.groups = groups;
    }

    /// The delay of a message from `from` to `to`, or `None` if it is lost
    /// or cut by a partition. A validator's message to itself is immediate.
    pub fn delay(&mut self, from: usize, to: usize) -> Option<SimDuration> {
        if from == to {
            return Some(SimDuration::ZERO);
        }
        self.stats.sent += 1;
        if let Some(g) = &self.groups
            && g.get(from) != g.get(to)
            && g.get(from) != Some(&BRIDGE)
            && g.get(to) != Some(&BRIDGE)
        {
            self.stats.partitioned += 1;
            return None;
        }
        let rng = &mut self.links[from * self.n + to];
        let s = &self.settings;
        if s.loss > 0.0 && rng.random::<f64>() < s.loss {
            self.stats.lost += 1;
            return None;
        }
        let j = s.jitter.as_nanos();
        let extra = if j > 0 { rng.random_range(0..=j) } else { 0 };
        Some(SimDuration::from_nanos(s.latency.as_nanos() + extra))
    }
}
