//! Metrics: what a run measured, in memory, ready for the writers.
//!
//! Models and observers fill a [`Summary`] (headline numbers) and
//! [`TimeSeries`] (rows at the sample interval). Nothing here does IO: the
//! writers in [`crate::report`] turn them into files.
//!
//! # Architecture invariant
//! Keys are dotted names with the unit in the name (`grid.v_min_pu`,
//! `mesh.latency_p99_s`), stored sorted, so the same run always serialises to
//! the same bytes. Wall-clock figures never enter a [`Summary`]: they go to
//! [`Timing`], which is written to `timing.json`.

use std::collections::BTreeMap;

/// One headline value.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A count or an integer setting.
    U64(u64),
    /// A measured quantity; `None` when undefined (e.g. a mean of nothing),
    /// written as JSON `null`.
    F64(Option<f64>),
    /// A label, e.g. a stop reason.
    Text(String),
    /// A flag, e.g. whether the run stopped short (`sim.partial`).
    Bool(bool),
}

/// Headline metrics of one run: flat dotted keys, units in the names.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Summary {
    values: BTreeMap<String, Value>,
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Sets an integer metric.
    pub fn set_u64(&mut self, key: &str, v: u64) {
        self.values.insert(key.to_string(), Value::U64(v));
    }

    /// Sets a real-valued metric; a non-finite value is stored as undefined
    /// (`null`) rather than as a number JSON cannot hold.
    pub fn set_f64(&mut self, key: &str, v: f64) {
        self.values
            .insert(key.to_string(), Value::F64(v.is_finite().then_some(v)));
    }

    /// Sets a text metric.
    pub fn set_text(&mut self, key: &str, v: &str) {
        self.values
            .insert(key.to_string(), Value::Text(v.to_string()));
    }

    /// Sets a flag.
    pub fn set_bool(&mut self, key: &str, v: bool) {
        self.values.insert(key.to_string(), Value::Bool(v));
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// All metrics in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Pretty JSON with sorted keys and a trailing newline: byte-identical for
    /// identical summaries.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("summary values always serialize");
        s.push('\n');
        s
    }
}

/// Wall-clock figures of a run: kept apart so that `summary.json` is
/// reproducible byte for byte.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Timing {
    /// Wall time of the run loop [s].
    #[serde(rename = "kernel.wall_s")]
    pub wall_s: f64,
    /// Events handled per wall second [1/s].
    #[serde(rename = "kernel.events_per_s")]
    pub events_per_s: f64,
    /// Worker threads allowed for the run.
    pub threads: usize,
    /// Boards in the loop (HIL runs only).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub hil: Option<HilTiming>,
}

/// Wall-clock figures of the boards in the loop.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct HilTiming {
    /// Median round trip of a lock-step exchange [s].
    #[serde(rename = "hil.rtt_p50_s")]
    pub rtt_p50_s: f64,
    /// 99th percentile round trip [s].
    #[serde(rename = "hil.rtt_p99_s")]
    pub rtt_p99_s: f64,
    /// Lock-step exchanges per wall second of the run [1/s].
    #[serde(rename = "hil.steps_per_s")]
    pub steps_per_s: f64,
}

impl HilTiming {
    /// The figures from every step's round trip [s] over a run of
    /// `wall_s` [s]. Percentiles are nearest-rank.
    pub fn from_rtts(rtts_s: &[f64], wall_s: f64) -> HilTiming {
        let mut v = rtts_s.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            if v.is_empty() {
                return 0.0;
            }
            let k = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            v[k - 1]
        };
        HilTiming {
            rtt_p50_s: rank(0.50),
            rtt_p99_s: rank(0.99),
            steps_per_s: if wall_s > 0.0 {
                v.len() as f64 / wall_s
            } else {
                0.0
            },
        }
    }
}

impl Timing {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("timing always serializes");
        s.push('\n');
        s
    }
}

/// A table of numeric rows, one per sample, written as `<name>.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    name: String,
    columns: Vec<String>,
    /// Row-major values, `columns.len()` per row: one allocation, not one
    /// per row.
    values: Vec<f64>,
}

impl TimeSeries {
    /// An empty series named `name` (the file stem) with `columns`, each a
    /// dotted name with its unit, e.g. `t_s`, `kernel.events`.
    pub fn new(name: &str, columns: &[&str]) -> TimeSeries {
        TimeSeries {
            name: name.to_string(),
            columns: columns.iter().map(|c| (*c).to_string()).collect(),
            values: Vec::new(),
        }
    }

    /// The file stem.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows so far, each a slice of one value per column.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f64]> {
        self.values.chunks_exact(self.columns.len().max(1))
    }

    /// Number of rows so far.
    pub fn len(&self) -> usize {
        self.values.len() / self.columns.len().max(1)
    }

    /// Whether no row has been pushed.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends a row; it must have one value per column.
    pub fn push(&mut self, row: &[f64]) {
        assert_eq!(
            row.len(),
            self.columns.len(),
            "row width of series {}",
            self.name
        );
        self.values.extend_from_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_json_is_sorted_and_stable() {
        let mut a = Summary::new();
        a.set_u64("kernel.events", 3);
        a.set_f64("grid.v_min_pu", 0.95);
        a.set_text("kernel.stop_reason", "stop_time");
        let mut b = Summary::new();
        b.set_text("kernel.stop_reason", "stop_time");
        b.set_f64("grid.v_min_pu", 0.95);
        b.set_u64("kernel.events", 3);
        assert_eq!(a.to_json(), b.to_json());
        let json = a.to_json();
        let grid = json.find("grid.v_min_pu").unwrap();
        let kernel = json.find("kernel.events").unwrap();
        assert!(grid < kernel, "{json}");
    }

    #[test]
    fn non_finite_values_become_null() {
        let mut s = Summary::new();
        s.set_f64("x.mean_s", f64::NAN);
        assert_eq!(s.get("x.mean_s"), Some(&Value::F64(None)));
        assert!(s.to_json().contains("\"x.mean_s\": null"));
    }

    #[test]
    #[should_panic(expected = "row width")]
    fn rows_must_match_columns() {
        TimeSeries::new("t", &["a", "b"]).push(&[1.0]);
    }
}

/// The event trace: one row per handled event, in handling order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventTrace {
    rows: Vec<TraceRow>,
}

/// One handled event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRow {
    /// When it was handled [ns].
    pub t_ns: u64,
    /// Its insertion sequence: with `t_ns`, its place in the total order.
    pub seq: u64,
    /// What it was.
    pub event: String,
}

impl EventTrace {
    /// Appends a row.
    pub fn push(&mut self, row: TraceRow) {
        self.rows.push(row);
    }

    /// The rows in handling order.
    pub fn rows(&self) -> &[TraceRow] {
        &self.rows
    }
}

/// The `p`-quantile (0 < p ≤ 1) of sorted values by the nearest-rank
/// method, or `None` for no values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let k = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(k - 1).copied()
}
