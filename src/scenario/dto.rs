//! The scenario file as written: serde DTOs, the only serde types of a
//! scenario.
//!
//! Every struct denies unknown fields and has a default for every field, so
//! a two-line file is a valid scenario and a misspelt field is an error, not
//! a silently ignored setting. Validation into plain types happens in
//! [`super::validate`]. Each model's section is added here by the issue that
//! lands the model; an omitted section means the model is absent.
//!
//! | field | unit / form | default |
//! |---|---|---|
//! | `name` | text: letters, digits, `_`, `-`, `.` | the file's stem |
//! | `seed` | integer | `1` |
//! | `duration` | duration, e.g. `"24h"` | `"1h"` |
//! | `max_events` | integer event budget | none |
//! | `outputs.sample_interval` | duration between time-series rows | `"1min"` |
//! | `outputs.trace` | `Off` or `Events` (every event to `events.csv`) | `Off` |

use serde::{Deserialize, Serialize};

use crate::kernel::SimDuration;

/// The top level of a scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScenarioFile {
    /// Name of the study; names the default results folder. Defaults to the
    /// file's stem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seed from which every random stream is derived.
    pub seed: u64,
    /// Simulated time to run.
    pub duration: SimDuration,
    /// Event budget: the run stops after this many events, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
    /// What the run records.
    pub outputs: OutputsFile,
}

impl Default for ScenarioFile {
    fn default() -> Self {
        ScenarioFile {
            name: None,
            seed: 1,
            duration: SimDuration::from_hours(1).expect("1 h fits"),
            max_events: None,
            outputs: OutputsFile::default(),
        }
    }
}

/// The `outputs` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsFile {
    /// Interval between rows of `timeseries.csv`.
    pub sample_interval: SimDuration,
    /// How much of the event trace to write.
    pub trace: TraceFile,
}

impl Default for OutputsFile {
    fn default() -> Self {
        OutputsFile {
            sample_interval: SimDuration::from_mins(1).expect("1 min fits"),
            trace: TraceFile::Off,
        }
    }
}

/// Trace level, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceFile {
    /// No event trace.
    Off,
    /// Every handled event, one row each, in `events.csv`.
    Events,
}
