//! The cloud behind the broker: a time-stamped store of every LMU record,
//! and the sources of commands (scheduled operator commands, rule-based
//! automation, and commands from outside through the live bridge).
//!
//! The broker hands each event message to the store, which parses it (the
//! JSON of [`super::schema`]) and writes its records after an ingestion
//! latency drawn from a log-normal distribution (the store's write path:
//! a queue and a database insert). Records are keyed by (LMU, boot epoch,
//! sequence): QoS 1 is at-least-once, so a re-sent message stores nothing
//! twice, and duplicates are counted. End-to-end latency is measured per
//! record, from the LMU's generation time to its storage.
//!
//! Rules look at every newly stored record. A rule fires for an LMU when
//! its condition holds and it has not fired for that LMU within its
//! cool-down; the command goes out at the store time.

use std::collections::BTreeMap;

use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::schema::{Action, CommandMessage, EventMessage};
use crate::kernel::rng::stream;
use crate::kernel::{SimDuration, SimTime};

/// A rule's condition on one record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Condition {
    /// The highest phase voltage is above this [pu].
    VoltageAbove(f64),
    /// The lowest measured phase voltage is below this [pu] (0 V, no
    /// supply, is not a low voltage).
    VoltageBelow(f64),
}

/// An automation rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    /// When.
    pub when: Condition,
    /// What to send the LMU.
    pub then: Action,
    /// Least time between two firings for one LMU.
    pub cooldown: SimDuration,
}

/// Where a command came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Scheduled in the scenario.
    Operator,
    /// Rule number n.
    Rule(usize),
    /// From outside, through the live bridge.
    Bridge,
}

impl Source {
    /// A name for tables.
    pub fn name(self) -> String {
        match self {
            Source::Operator => "operator".into(),
            Source::Rule(n) => format!("rule{n}"),
            Source::Bridge => "bridge".into(),
        }
    }
}

/// The cloud's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudSettings {
    /// Median ingestion latency.
    pub ingest_median: SimDuration,
    /// Its log-normal σ.
    pub ingest_sigma_ln: f64,
    /// Declared phase voltage [V].
    pub v_nominal_v: f64,
    /// Automation.
    pub rules: Vec<Rule>,
}

/// One command's life.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandRecord {
    /// Its id (in the JSON).
    pub id: String,
    /// Where it came from.
    pub source: Source,
    /// The LMU.
    pub lmu: u32,
    /// What.
    pub action: Action,
    /// When the cloud issued it.
    pub issued_at: SimTime,
    /// When the LMU carried it out.
    pub executed_at: Option<SimTime>,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloudStats {
    /// Event messages received.
    pub messages: u64,
    /// Messages that were not valid events.
    pub malformed: u64,
    /// Records stored.
    pub stored: u64,
    /// Records received again (QoS 1 duplicates).
    pub duplicates: u64,
    /// Rule firings.
    pub rule_firings: u64,
}

/// The cloud.
#[derive(Debug)]
pub struct Cloud {
    settings: CloudSettings,
    latency: LogNormal<f64>,
    rng: Xoshiro256PlusPlus,
    /// Stored records: (LMU, epoch, seq) → stored at.
    store: BTreeMap<(u32, u32, u32), SimTime>,
    /// End-to-end latency of each stored record [s].
    e2e_s: Vec<f64>,
    last_fired: BTreeMap<(usize, u32), SimTime>,
    commands: Vec<CommandRecord>,
    by_id: BTreeMap<String, usize>,
    stats: CloudStats,
}

/// A command the cloud wants sent: to the broker on the LMU's topic.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// The LMU.
    pub lmu: u32,
    /// The JSON.
    pub payload: Vec<u8>,
}

impl Cloud {
    /// An empty store with its own random stream.
    pub fn new(settings: CloudSettings, seed: u64) -> Cloud {
        let median_s = settings.ingest_median.as_secs_f64().max(1e-9);
        Cloud {
            latency: LogNormal::new(median_s.ln(), settings.ingest_sigma_ln.max(0.0))
                .expect("σ ≥ 0 and a finite median"),
            rng: stream(seed, "cloud", 0, "ingest"),
            settings,
            store: BTreeMap::new(),
            e2e_s: Vec::new(),
            last_fired: BTreeMap::new(),
            commands: Vec::new(),
            by_id: BTreeMap::new(),
            stats: CloudStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CloudStats {
        self.stats
    }

    /// Whether a record is stored.
    pub fn has(&self, lmu: u32, epoch: u32, seq: u32) -> bool {
        self.store.contains_key(&(lmu, epoch, seq))
    }

    /// Records stored.
    pub fn stored(&self) -> usize {
        self.store.len()
    }

    /// End-to-end latencies of the stored records, in store order [s].
    pub fn e2e_latencies_s(&self) -> &[f64] {
        &self.e2e_s
    }

    /// Every command so far, in issue order.
    pub fn commands(&self) -> &[CommandRecord] {
        &self.commands
    }

    /// An event message reaches the store at `now`. Returns the rule
    /// firings, (when, LMU, action, rule index), and calls `each` with
    /// the key (LMU, boot epoch, sequence) of every record the message
    /// carries, stored now or before.
    pub fn ingest(
        &mut self,
        now: SimTime,
        payload: &[u8],
        mut each: impl FnMut((u32, u32, u32)),
    ) -> Vec<(SimTime, u32, Action, usize)> {
        self.stats.messages += 1;
        let Ok(msg) = serde_json::from_slice::<EventMessage>(payload) else {
            self.stats.malformed += 1;
            return Vec::new();
        };
        let delay = self.latency.sample(&mut self.rng);
        let at = now.saturating_add(SimDuration::from_nanos((delay * 1e9).round() as u64));
        let mut fired = Vec::new();
        for r in &msg.records {
            each((r.lmu, r.epoch, r.seq));
            if self.store.insert((r.lmu, r.epoch, r.seq), at).is_some() {
                self.stats.duplicates += 1;
                continue;
            }
            self.stats.stored += 1;
            self.e2e_s.push((at.as_secs_f64() - r.generated_s).max(0.0));
            let vn = self.settings.v_nominal_v;
            for (k, rule) in self.settings.rules.iter().enumerate() {
                let hit = match rule.when {
                    Condition::VoltageAbove(pu) => r.v_max_v.iter().any(|&v| v > pu * vn),
                    Condition::VoltageBelow(pu) => {
                        r.v_min_v.iter().any(|&v| v > 0.0 && v < pu * vn)
                    }
                };
                if !hit {
                    continue;
                }
                let last = self.last_fired.get(&(k, r.lmu)).copied();
                if last.is_some_and(|l| at < l.saturating_add(rule.cooldown)) {
                    continue;
                }
                self.last_fired.insert((k, r.lmu), at);
                self.stats.rule_firings += 1;
                fired.push((at, r.lmu, rule.then, k));
            }
        }
        fired
    }

    /// Issues a command at `now`: records it and returns the JSON for the
    /// broker. `id` is the caller's, if it has one; else the cloud names it.
    pub fn issue(
        &mut self,
        now: SimTime,
        lmu: u32,
        action: Action,
        source: Source,
        id: Option<String>,
    ) -> Outgoing {
        let n = self.commands.len();
        let id = id.unwrap_or_else(|| format!("c{n}"));
        let msg = CommandMessage {
            id: Some(id.clone()),
            action,
        };
        self.by_id.insert(id.clone(), n);
        self.commands.push(CommandRecord {
            id,
            source,
            lmu,
            action,
            issued_at: now,
            executed_at: None,
        });
        Outgoing {
            lmu,
            payload: serde_json::to_vec(&msg).expect("a command serialises"),
        }
    }

    /// The LMU carried out the command with this id (the first time
    /// counts).
    pub fn executed(&mut self, id: &str, now: SimTime) {
        if let Some(&n) = self.by_id.get(id)
            && let Some(c) = self.commands.get_mut(n)
        {
            c.executed_at.get_or_insert(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::{EVENTS_SCHEMA, Record};
    use super::*;

    fn record(lmu: u32, seq: u32, v_max: f64) -> Record {
        Record {
            lmu,
            epoch: 0,
            seq,
            generated_s: 10.0,
            v_min_v: [230.0; 3],
            v_max_v: [v_max, 230.0, 230.0],
            v_mean_v: [230.0; 3],
            import_wh: 0.0,
            export_wh: 0.0,
            dips: 0,
            swells: 0,
            interruptions: 0,
            pq_intervals_compliant: 0,
            pq_intervals: 0,
            closed: true,
            fault_latched: false,
        }
    }

    fn event(records: Vec<Record>) -> Vec<u8> {
        serde_json::to_vec(&EventMessage {
            schema: EVENTS_SCHEMA.into(),
            site: "s".into(),
            gateway: "g".into(),
            round: 0,
            late: false,
            round_start_s: 0.0,
            published_s: 60.0,
            missing: vec![],
            records,
        })
        .unwrap()
    }

    fn cloud(rules: Vec<Rule>) -> Cloud {
        Cloud::new(
            CloudSettings {
                ingest_median: SimDuration::from_millis(20).unwrap(),
                ingest_sigma_ln: 0.0,
                v_nominal_v: 230.0,
                rules,
            },
            1,
        )
    }

    #[test]
    fn records_are_stored_once_with_their_latency() {
        let mut c = cloud(vec![]);
        let t = SimTime::from_nanos(12_000_000_000);
        c.ingest(
            t,
            &event(vec![record(1, 0, 231.0), record(2, 0, 231.0)]),
            |_| {},
        );
        // A QoS 1 re-send stores nothing new.
        c.ingest(t, &event(vec![record(1, 0, 231.0)]), |_| {});
        assert_eq!((c.stored(), c.stats().duplicates), (2, 1));
        // Generated at 10 s, stored at 12.02 s.
        assert!((c.e2e_latencies_s()[0] - 2.02).abs() < 1e-9);
        assert!(c.has(2, 0, 0) && !c.has(3, 0, 0));
        c.ingest(t, b"not json", |_| {});
        assert_eq!(c.stats().malformed, 1);
    }

    #[test]
    fn an_overvoltage_rule_fires_once_per_cooldown_per_lmu() {
        let rule = Rule {
            when: Condition::VoltageAbove(1.10),
            then: Action::LimitPv { percent: 50 },
            cooldown: SimDuration::from_mins(15).unwrap(),
        };
        let mut c = cloud(vec![rule]);
        let min = |m: u64| SimTime::from_nanos(m * 60_000_000_000);
        // 254 V > 1.10 × 230 V = 253 V; 252 V is not.
        let f = c.ingest(
            min(1),
            &event(vec![record(1, 0, 254.0), record(2, 0, 252.0)]),
            |_| {},
        );
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].1, f[0].2), (1, Action::LimitPv { percent: 50 }));
        // Within the cool-down: nothing; after it: again.
        assert!(
            c.ingest(min(5), &event(vec![record(1, 1, 254.0)]), |_| {})
                .is_empty()
        );
        assert_eq!(
            c.ingest(min(17), &event(vec![record(1, 2, 254.0)]), |_| {})
                .len(),
            1
        );
    }

    #[test]
    fn commands_are_tracked_from_issue_to_execution() {
        let mut c = cloud(vec![]);
        let o = c.issue(SimTime::ZERO, 4, Action::Open, Source::Operator, None);
        let m = super::super::schema::parse_command(&o.payload).unwrap();
        assert_eq!(m.action, Action::Open);
        let id = m.id.unwrap();
        c.executed(&id, SimTime::from_nanos(5));
        c.executed(&id, SimTime::from_nanos(9));
        assert_eq!(c.commands()[0].executed_at, Some(SimTime::from_nanos(5)));
    }
}
