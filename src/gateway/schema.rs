//! The JSON the gateway publishes and the commands it accepts: one schema
//! for the simulated cloud and the live bridge to a real broker.
//!
//! # Events: `gridtwin/<site>/<gateway>/events`
//! One message per published round (or late amendment to one):
//!
//! ```json
//! {
//!   "schema": "gridtwin.events/1",
//!   "site": "village", "gateway": "gw0",
//!   "round": 12, "late": false,
//!   "round_start_s": 3600.0, "published_s": 3630.25,
//!   "missing": [17],
//!   "records": [
//!     { "lmu": 3, "epoch": 0, "seq": 11, "generated_s": 3605.1,
//!       "v_min_v": [229.1, 230.0, 228.7], "v_max_v": [231.0, 231.4, 230.2],
//!       "v_mean_v": [230.2, 230.8, 229.5],
//!       "import_wh": 1520.5, "export_wh": 0.0,
//!       "dips": 0, "swells": 0, "interruptions": 0,
//!       "pq_intervals_compliant": 30, "pq_intervals": 30,
//!       "closed": true, "fault_latched": false }
//!   ]
//! }
//! ```
//!
//! Times are simulated seconds from the start of the run. Voltages are
//! phase-to-neutral RMS [V], 0 for a phase the LMU did not measure in the
//! interval. `missing` names the LMUs without a report when the round was
//! published (always empty in a late amendment).
//!
//! # Commands: `gridtwin/<site>/<gateway>/cmd/<lmu>`
//! ```json
//! {"action": "open"}
//! {"action": "close", "id": "op-7"}
//! {"action": "report"}
//! {"action": "set_report_interval", "secs": 60}
//! {"action": "limit_pv", "percent": 50}
//! {"action": "reduce_load", "percent": 20, "minutes": 30}
//! ```
//! `id` is optional and only echoed in the records of the run.

use gridtwin_lmu::Command;
use serde::{Deserialize, Serialize};

/// The schema tag of event messages.
pub const EVENTS_SCHEMA: &str = "gridtwin.events/1";

/// The events topic of a gateway.
pub fn events_topic(site: &str, gateway: &str) -> String {
    format!("gridtwin/{site}/{gateway}/events")
}

/// The command topic of one LMU.
pub fn command_topic(site: &str, gateway: &str, lmu: u32) -> String {
    format!("gridtwin/{site}/{gateway}/cmd/{lmu}")
}

/// The filter that matches every command of a gateway.
pub fn command_filter(site: &str, gateway: &str) -> String {
    format!("gridtwin/{site}/{gateway}/cmd/+")
}

/// The LMU a command topic names, if it is one of this gateway's.
pub fn lmu_of_topic(site: &str, gateway: &str, topic: &str) -> Option<u32> {
    topic
        .strip_prefix(&format!("gridtwin/{site}/{gateway}/cmd/"))?
        .parse()
        .ok()
}

/// One published round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMessage {
    /// [`EVENTS_SCHEMA`].
    pub schema: String,
    /// Site.
    pub site: String,
    /// Gateway id.
    pub gateway: String,
    /// Round index (round *r* covers `[r·T, (r+1)·T)`).
    pub round: u64,
    /// A late amendment to a round already published.
    pub late: bool,
    /// Start of the round [s].
    pub round_start_s: f64,
    /// When the gateway published it [s].
    pub published_s: f64,
    /// LMUs without a report at publication.
    pub missing: Vec<u32>,
    /// The reports, by LMU id.
    pub records: Vec<Record>,
}

/// One LMU report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// LMU id (mesh node index).
    pub lmu: u32,
    /// The LMU's boot epoch.
    pub epoch: u32,
    /// Report sequence number within the epoch.
    pub seq: u32,
    /// When the LMU generated it [s].
    pub generated_s: f64,
    /// Lowest phase voltage in the interval [V].
    pub v_min_v: [f64; 3],
    /// Highest [V].
    pub v_max_v: [f64; 3],
    /// Mean [V].
    pub v_mean_v: [f64; 3],
    /// Energy passed downstream since boot [Wh].
    pub import_wh: f64,
    /// Energy passed upstream since boot [Wh].
    pub export_wh: f64,
    /// Voltage dips since boot.
    pub dips: u16,
    /// Swells since boot.
    pub swells: u16,
    /// Interruptions since boot.
    pub interruptions: u16,
    /// EN 50160 10-minute intervals that complied.
    pub pq_intervals_compliant: u32,
    /// EN 50160 10-minute intervals.
    pub pq_intervals: u32,
    /// Contactor closed.
    pub closed: bool,
    /// A fault indication is latched.
    pub fault_latched: bool,
}

impl Record {
    /// A record from an LMU's telemetry.
    pub fn from_telemetry(lmu: u32, generated_s: f64, t: &gridtwin_lmu::node::Telemetry) -> Record {
        let v = |dv: [u16; 3]| dv.map(|x| f64::from(x) / 10.0);
        Record {
            lmu,
            epoch: t.epoch,
            seq: t.seq,
            generated_s,
            v_min_v: v(t.v_min_dv),
            v_max_v: v(t.v_max_dv),
            v_mean_v: v(t.v_mean_dv),
            import_wh: f64::from(t.import_wh),
            export_wh: f64::from(t.export_wh),
            dips: t.pq_events[0],
            swells: t.pq_events[1],
            interruptions: t.pq_events[2],
            pq_intervals_compliant: t.pq_intervals[0],
            pq_intervals: t.pq_intervals[1],
            closed: t.closed,
            fault_latched: t.fault_latched,
        }
    }
}

/// A command as JSON. (Unknown fields are ignored: serde cannot deny them
/// next to a flattened action.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandMessage {
    /// Optional id, echoed in the run's records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
}

/// A command's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Open the contactor.
    Open,
    /// Close the contactor.
    Close,
    /// Report now.
    Report,
    /// New report interval.
    SetReportInterval {
        /// [s], at least 1.
        secs: u32,
    },
    /// Limit the section's PV.
    LimitPv {
        /// Share of rating [%].
        percent: u8,
    },
    /// Reduce the section's load.
    ReduceLoad {
        /// Reduction [%].
        percent: u8,
        /// Duration [min].
        minutes: u16,
    },
}

impl Action {
    /// The LMU crate's command.
    pub fn to_lmu(self) -> Command {
        match self {
            Action::Open => Command::Open,
            Action::Close => Command::Close,
            Action::Report => Command::Report,
            Action::SetReportInterval { secs } => Command::SetReportInterval { secs },
            Action::LimitPv { percent } => Command::LimitPv { percent },
            Action::ReduceLoad { percent, minutes } => Command::ReduceLoad { percent, minutes },
        }
    }

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::Close => "close",
            Action::Report => "report",
            Action::SetReportInterval { .. } => "set_report_interval",
            Action::LimitPv { .. } => "limit_pv",
            Action::ReduceLoad { .. } => "reduce_load",
        }
    }
}

/// Why a command message was refused.
#[derive(Debug, thiserror::Error)]
#[error("not a gridtwin command: {0}")]
pub struct BadCommand(#[from] serde_json::Error);

/// Parses a command (untrusted bytes).
pub fn parse_command(bytes: &[u8]) -> Result<CommandMessage, BadCommand> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_bad_ones_are_errors() {
        for a in [
            Action::Open,
            Action::Close,
            Action::Report,
            Action::SetReportInterval { secs: 60 },
            Action::LimitPv { percent: 50 },
            Action::ReduceLoad {
                percent: 20,
                minutes: 30,
            },
        ] {
            let m = CommandMessage {
                id: Some("x".into()),
                action: a,
            };
            let json = serde_json::to_vec(&m).unwrap();
            assert_eq!(parse_command(&json).unwrap(), m);
        }
        assert_eq!(
            parse_command(br#"{"action":"open"}"#).unwrap().action,
            Action::Open
        );
        assert!(parse_command(br#"{"action":"explode"}"#).is_err());
        assert!(parse_command(br#"{"action":"limit_pv","percent":300}"#).is_err());
        assert!(parse_command(b"\xff\x00").is_err());
    }

    #[test]
    fn topics_name_the_site_gateway_and_lmu() {
        let t = command_topic("v", "g", 12);
        assert_eq!(t, "gridtwin/v/g/cmd/12");
        assert!(rumqttc::matches(&t, &command_filter("v", "g")));
        assert_eq!(lmu_of_topic("v", "g", &t), Some(12));
        assert_eq!(lmu_of_topic("v", "g", "gridtwin/v/g/cmd/x"), None);
        assert_eq!(lmu_of_topic("v", "h", &t), None);
    }
}
