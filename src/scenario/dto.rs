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
//! | `start` | time of day at which the run begins, e.g. `"11h58min"`; every other time in the scenario counts from the run's start | `"0s"` (midnight) |
//! | `duration` | duration, e.g. `"24h"` | `"1h"` |
//! | `max_events` | integer event budget | none |
//! | `outputs.sample_interval` | duration between time-series rows | `"1min"` |
//! | `outputs.trace` | `Off` or `Events` (every event to `events.csv`) | `Off` |
//! | `outputs.watch_lmus` | mesh node ids whose bus phase voltages every sample records (`lmu_voltages.csv`) | `[]`: the two LMUs nearest the first short circuit, or nodes 1 and 2 |
//! | `grid` | the grid model, see [`GridFile`] | absent |
//! | `faults` | a timeline of injections, see [`FaultFile`] | `[]` |

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::grid::protection::RecloserSettings;
pub use crate::ledger::workload::{DrSettings, WorkloadSettings};

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
    /// Time of day at which the run begins (under 24 h): the load and PV
    /// profiles are read at `start` + the simulated time. Every other time
    /// in the scenario (faults, commands, outages) counts from the run's
    /// start.
    #[serde(skip_serializing_if = "is_zero")]
    pub start: SimDuration,
    /// Simulated time to run.
    pub duration: SimDuration,
    /// Event budget: the run stops after this many events, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
    /// What the run records.
    pub outputs: OutputsFile,
    /// The grid model, if the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridFile>,
    /// The radio mesh, if the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh: Option<MeshFile>,
    /// The gateway and the cloud, if the scenario has them (needs `mesh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayFile>,
    /// The ledger, if the scenario has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerFile>,
    /// Injected faults, in any order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultFile>,
}

impl Default for ScenarioFile {
    fn default() -> Self {
        ScenarioFile {
            name: None,
            seed: 1,
            start: SimDuration::ZERO,
            duration: SimDuration::from_hours(1).expect("1 h fits"),
            max_events: None,
            outputs: OutputsFile::default(),
            grid: None,
            mesh: None,
            gateway: None,
            ledger: None,
            faults: Vec::new(),
        }
    }
}

/// The `outputs` section.
///
/// ```ron
/// outputs: (sample_interval: "1min", trace: Off, watch_lmus: [3, 7])
/// ```
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `sample_interval` | duration between time-series rows (`timeseries.csv`, `grid.csv`, `lmu_voltages.csv`) | `"1min"` |
/// | `trace` | `Off` or `Events` (every event to `events.csv`) | `Off` |
/// | `watch_lmus` | mesh node ids (0 is the coordinator) whose bus's per-phase voltages [pu] every sample writes to `lmu_voltages.csv` and the report plots; needs a grid and a mesh on it | `[]`: the two LMUs nearest (along the network) the first short circuit, or nodes 1 and 2 without one |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsFile {
    /// Interval between rows of `timeseries.csv`.
    pub sample_interval: SimDuration,
    /// How much of the event trace to write.
    pub trace: TraceFile,
    /// Mesh node ids whose bus phase voltages every sample records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch_lmus: Vec<u32>,
}

impl Default for OutputsFile {
    fn default() -> Self {
        OutputsFile {
            sample_interval: SimDuration::from_mins(1).expect("1 min fits"),
            trace: TraceFile::Off,
            watch_lmus: Vec::new(),
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

/// The `grid` section.
///
/// ```ron
/// grid: (
///     feeder: Dss("../feeders/ieee_eu_lv/Master.dss"),
///     loads: ConstantPq,
///     profile_step: "1min",
///     pv: [(name: "pv34", bus: "34", kw: 5.0, profile: ClearSky(latitude_deg: 52.0))],
///     switches: [(line: "line.line12")],
///     switching: [(at: "6h", line: "line.line12", action: Open)],
/// )
/// ```
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `feeder` | `Dss("Master.dss")` (relative to the scenario) or `Synthetic(buses, seed)` | required |
/// | `loads` | `Feeder` (the feeder's own load models) or `ConstantPq` (the IEEE definition) | `Feeder` |
/// | `profiles` | `Feeder` (each load's yearly, else daily shape) or `Flat` (nominal power) | `Feeder` |
/// | `profile_step` | duration between profile evaluations | `"1min"` |
/// | `pv` | PV systems, see [`PvFile`] | `[]` |
/// | `rooftop_pv` | rooftop PV on a share of the customers, see [`RooftopPvFile`] | none |
/// | `districts` | a town of copies of the feeder under one source, see [`DistrictsFile`] | none (the feeder alone) |
/// | `switches` | lines that act as switches, see [`SwitchFile`] | `[]` |
/// | `switching` | scheduled switching actions, see [`SwitchingFile`] | `[]` |
/// | `solver.tol_pu` | convergence tolerance [pu] | `1e-10` |
/// | `solver.max_iter` | iteration limit | `100` |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridFile {
    /// The feeder.
    pub feeder: FeederFile,
    /// Which load model applies.
    #[serde(default)]
    pub loads: LoadsFile,
    /// Where load profiles come from.
    #[serde(default)]
    pub profiles: ProfilesFile,
    /// Interval at which profiles are evaluated; the grid re-solves only
    /// when a value changed.
    #[serde(default = "one_minute")]
    pub profile_step: SimDuration,
    /// PV systems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pv: Vec<PvFile>,
    /// Rooftop PV on a share of the customers, besides `pv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooftop_pv: Option<RooftopPvFile>,
    /// Lines that are switches (or contactors) and their normal state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switches: Vec<SwitchFile>,
    /// Scheduled switching actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub switching: Vec<SwitchingFile>,
    /// Solver settings.
    #[serde(default)]
    pub solver: SolverFile,
    /// Feeder-head breakers with auto-reclosers (see
    /// [`RecloserSettings`]); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection: Option<RecloserSettings>,
    /// A town of copies of the feeder (an OpenDSS feeder only); absent:
    /// the feeder alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub districts: Option<DistrictsFile>,
}

/// A town of `count` districts, each a copy of the feeder, renamed
/// `dNNN_<name>` (so bus `f2p34` of district 7 is `d007_f2p34`), placed
/// row by row on a square grid `spacing_m` apart, every district's
/// transformer on the one source bus, the source `count` times as strong
/// (a stiff MV busbar: each district sees the source it had alone).
/// District *k* gives its loads the load shapes of the loads *k* places
/// further on in the feeder (cyclically), so districts do not peak in
/// step.
///
/// ```ron
/// districts: (count: 100, spacing_m: 1500.0),
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictsFile {
    /// How many districts, 1 to 10 000.
    pub count: u32,
    /// Districts per row; default ⌈√count⌉.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<u32>,
    /// Distance between neighbouring districts [m].
    #[serde(default = "district_spacing")]
    pub spacing_m: f64,
}

fn district_spacing() -> f64 {
    2000.0
}

impl DistrictsFile {
    /// The layout it asks for.
    pub fn layout(&self) -> crate::grid::dss::districts::Layout {
        crate::grid::dss::districts::Layout {
            count: self.count,
            columns: self
                .columns
                .unwrap_or_else(|| (f64::from(self.count)).sqrt().ceil() as u32)
                .max(1),
            spacing_m: self.spacing_m,
        }
    }
}

fn one_minute() -> SimDuration {
    SimDuration::from_mins(1).expect("1 min fits")
}

/// Where the feeder comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FeederFile {
    /// An OpenDSS `Master.dss`, relative to the scenario file.
    Dss(PathBuf),
    /// A synthetic radial LV feeder (random recursive tree of 30 m cable
    /// sections behind an 800 kVA transformer).
    Synthetic {
        /// LV buses.
        buses: usize,
        /// Seed of its layout.
        seed: u64,
    },
}

/// Which load model applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadsFile {
    /// Each load's own model from the feeder, with its vminpu/vmaxpu.
    #[default]
    Feeder,
    /// Pure constant PQ at every voltage: the IEEE test feeders' definition.
    ConstantPq,
}

/// Where load profiles come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProfilesFile {
    /// Each load's yearly shape, else its daily shape, else flat.
    #[default]
    Feeder,
    /// Every load at its nominal power throughout.
    Flat,
}

/// Solver settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolverFile {
    /// Convergence tolerance on the largest voltage change [pu].
    pub tol_pu: f64,
    /// Iteration limit.
    pub max_iter: usize,
}

impl Default for SolverFile {
    fn default() -> Self {
        SolverFile {
            tol_pu: 1e-10,
            max_iter: 100,
        }
    }
}

/// A PV system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PvFile {
    /// Name, unique among PV systems.
    pub name: String,
    /// Bus name in the feeder.
    pub bus: String,
    /// Phases it feeds: `"abc"`, `"a"`, `"bc"`, …
    #[serde(default = "abc")]
    pub phases: String,
    /// Peak active power, when the profile is 1 [kW].
    pub kw: f64,
    /// Inverter rating [kVA]; defaults to 1.1 × `kw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kva: Option<f64>,
    /// Output over time, as a share of `kw`.
    #[serde(default)]
    pub profile: PvProfileFile,
    /// Reactive power control.
    #[serde(default)]
    pub control: QControlFile,
    /// How the inverter answers a fault.
    #[serde(default, skip_serializing_if = "FaultResponseFile::is_default")]
    pub fault_response: FaultResponseFile,
}

/// How an inverter answers a short circuit (see
/// `gridtwin::grid::network::FaultResponse`).
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `current_limit_pu` | largest current, pu of rated | `1.1` |
/// | `cessation_below_pu` | no current below this terminal voltage, pu; 0: rides through | `0.0` |
/// | `angle` | `PreFault` (the current keeps the pre-fault voltage angle) or `Terminal` | `PreFault` |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultResponseFile {
    /// Largest current [pu of rated current].
    pub current_limit_pu: f64,
    /// No current below this terminal voltage [pu of nominal].
    pub cessation_below_pu: f64,
    /// The angle its current keeps during a short circuit.
    pub angle: AngleReferenceFile,
}

impl Default for FaultResponseFile {
    fn default() -> Self {
        FaultResponseFile {
            current_limit_pu: crate::grid::network::PV_CURRENT_LIMIT_PU,
            cessation_below_pu: 0.0,
            angle: AngleReferenceFile::PreFault,
        }
    }
}

impl FaultResponseFile {
    fn is_default(&self) -> bool {
        *self == FaultResponseFile::default()
    }
}

/// The angle an inverter's current keeps during a short circuit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AngleReferenceFile {
    /// The pre-fault terminal voltage's.
    #[default]
    PreFault,
    /// The terminal voltage's, as it is.
    Terminal,
}

/// Rooftop PV on a share of the feeder's customers (loads), named
/// `pv_<load>`, chosen by its `placement`:
/// - `Balanced` (the default): the loads are grouped by their (first)
///   phase, a then b then c, in the feeder's order within each group;
///   load `i` (from 0) of that order has a system when
///   `⌊(i + 1)·share⌋ > ⌊i·share⌋`, on the load's own phases. So each
///   phase has its share of the systems, whatever order the feeder lists
///   its houses in.
/// - `OnePhase("b")`: the same rule over all the loads in the feeder's
///   order, and every system connected to that one phase at its load's
///   bus: the stress case of an LV feeder whose PV all sits on one phase.
/// - `Stride`: the same rule over all the loads, each system on its
///   load's phases. Where the feeder rotates its houses over the phases
///   in step with the share (a third of the houses of a feeder listed a,
///   b, c, a, …), this puts them all on one phase.
///
/// ```ron
/// rooftop_pv: (share: 0.333, kw: 4.0, profile: ClearSky(latitude_deg: 52.0), control: Ieee1547),
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RooftopPvFile {
    /// Share of the customers with a system, in [0, 1].
    pub share: f64,
    /// Peak active power of each, when the profile is 1 [kW].
    pub kw: f64,
    /// Inverter rating of each [kVA]; defaults to 1.1 × `kw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kva: Option<f64>,
    /// Output over time, as a share of `kw`.
    #[serde(default)]
    pub profile: PvProfileFile,
    /// Reactive power control.
    #[serde(default)]
    pub control: QControlFile,
    /// Which customers have a system, on which phase.
    #[serde(default, skip_serializing_if = "PvPlacementFile::is_balanced")]
    pub placement: PvPlacementFile,
    /// How the inverters answer a fault.
    #[serde(default, skip_serializing_if = "FaultResponseFile::is_default")]
    pub fault_response: FaultResponseFile,
}

/// How rooftop PV is placed (see [`RooftopPvFile`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PvPlacementFile {
    /// The share taken phase by phase.
    #[default]
    Balanced,
    /// Every system on this phase (`"a"`, `"b"` or `"c"`).
    OnePhase(String),
    /// Every k-th load, on its own phases.
    Stride,
}

impl PvPlacementFile {
    fn is_balanced(&self) -> bool {
        *self == PvPlacementFile::Balanced
    }
}

fn abc() -> String {
    "abc".into()
}

/// A PV output profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum PvProfileFile {
    /// Always at `kw`.
    #[default]
    Constant,
    /// A load shape of the feeder, by name (its multipliers scale `kw`).
    Shape(String),
    /// Clear-sky output at a site: the Haurwitz clear-sky irradiance on a
    /// horizontal panel, over 1000 W/m².
    ClearSky {
        /// Latitude [deg], north positive.
        latitude_deg: f64,
        /// Longitude [deg], east positive.
        #[serde(default)]
        longitude_deg: f64,
        /// Offset of the simulation's clock from UTC [h].
        #[serde(default)]
        utc_offset_h: f64,
        /// Day of the year (1–366) at time zero.
        #[serde(default = "midsummer")]
        day_of_year: u16,
    },
}

fn midsummer() -> u16 {
    172
}

/// Reactive power control of an inverter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum QControlFile {
    /// No reactive power.
    #[default]
    UnityPf,
    /// Fixed reactive power, positive injecting [kvar].
    FixedKvar(f64),
    /// IEEE 1547-2018 category B default volt-var curve.
    Ieee1547,
    /// A volt-var curve: `(voltage [pu], Q [pu of rating])` points in
    /// increasing voltage.
    VoltVar(Vec<(f64, f64)>),
}

/// A line that is a switch or contactor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchFile {
    /// The line, `line.<name>`.
    pub line: String,
    /// Normally open (a tie).
    #[serde(default)]
    pub open: bool,
}

/// A scheduled switching action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchingFile {
    /// When, from the start.
    pub at: SimDuration,
    /// The switch, `line.<name>` (listed in `switches`).
    pub line: String,
    /// What to do.
    pub action: SwitchAction,
}

/// A switching action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SwitchAction {
    /// Open all three phases.
    Open,
    /// Close all three phases.
    Close,
}

/// One injected fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FaultFile {
    /// A short circuit: a shunt fault at a bus or part-way along a line.
    Short(ShortFile),
    /// One or two conductors of a line broken.
    OpenConductor(OpenConductorFile),
    /// A radio jammer (or any continuous interferer).
    Jammer(JammerFile),
    /// Extra loss on one radio link, both ways.
    LinkDegradation(LinkDegradationFile),
    /// A mesh node crashes, and reboots if `reboot_after` is given.
    NodeCrash(NodeCrashFile),
    /// An LMU's voltage or current sensor sticks or drifts.
    SensorFault(SensorFaultFile),
    /// The coordinator (mesh node 0: the radio at the transformer that
    /// bridges the mesh to the gateway over UART) is down: the mesh loses
    /// its root, and frames to and from the gateway are lost. LMU-to-LMU
    /// traffic (FLISR) goes on where the links allow.
    CoordinatorOutage(OutageFile),
    /// The gateway itself is down (power or software): frames from the
    /// coordinator are lost (counted), its MQTT session drops, and its
    /// round deadlines wait until it is back. Its store-and-forward buffer
    /// and the reports it had already accepted survive (non-volatile), so
    /// nothing accepted is lost.
    GatewayOutage(OutageFile),
    /// The gateway's 3G/4G link is down.
    CellularOutage(OutageFile),
    /// The cloud's MQTT broker is down.
    BrokerOutage(OutageFile),
    /// A ledger validator crashes, and recovers after `duration` if given.
    ValidatorCrash(ValidatorCrashFile),
    /// The validators' backhaul splits into groups.
    ValidatorPartition(ValidatorPartitionFile),
}

/// A validator crash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorCrashFile {
    /// When.
    pub at: SimDuration,
    /// Which validator (0-based).
    pub validator: u32,
    /// Down for this long; absent: to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
}

/// A backhaul partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorPartitionFile {
    /// When.
    pub at: SimDuration,
    /// The group of each validator, e.g. `[0, 0, 0, 1, 1, 1, 1]`.
    pub groups: Vec<u32>,
    /// Validators that still reach every group (e.g. a malicious one with
    /// links on both sides).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bridges: Vec<u32>,
    /// How long; absent: to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
}

/// An outage of a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageFile {
    /// When it starts.
    pub at: SimDuration,
    /// How long it lasts; absent: to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
}

/// A jammer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JammerFile {
    /// When it starts.
    pub at: SimDuration,
    /// How long it lasts; absent: to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
    /// Position, east [m] (the mesh's coordinates).
    pub x_m: f64,
    /// Position, north [m].
    pub y_m: f64,
    /// Antenna height [m].
    #[serde(default = "pole_height")]
    pub height_m: f64,
    /// Transmit power [dBm].
    pub power_dbm: f64,
}

fn pole_height() -> f64 {
    8.0
}

/// Link degradation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDegradationFile {
    /// When it starts.
    pub at: SimDuration,
    /// How long it lasts; absent: to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
    /// One end: a mesh node index (0 is the coordinator).
    pub a: u32,
    /// The other end.
    pub b: u32,
    /// Extra loss [dB].
    pub extra_db: f64,
}

/// A mesh node crash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCrashFile {
    /// When it crashes.
    pub at: SimDuration,
    /// The mesh node index (0 is the coordinator).
    pub node: u32,
    /// Reboot after this long; absent: stays down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_after: Option<SimDuration>,
}

/// A faulty LMU sensor: `SensorFault((at: "2h", node: 12, sensor: Current,
/// mode: Stuck))` or `mode: Drift(pct_per_h: 5.0)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorFaultFile {
    /// When it starts.
    pub at: SimDuration,
    /// The LMU's mesh node index (not 0, the coordinator).
    pub node: u32,
    /// Which sensor.
    pub sensor: SensorFile,
    /// How it fails.
    pub mode: SensorModeFile,
    /// How long; absent: to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
}

/// An LMU's sensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SensorFile {
    /// The phase voltages.
    Voltage,
    /// The phase currents.
    Current,
}

/// How a sensor fails.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum SensorModeFile {
    /// Its reading freezes at its value when the fault starts.
    Stuck,
    /// Its gain drifts linearly from the fault's start [% per hour].
    Drift {
        /// Drift rate [%/h], either sign.
        pct_per_h: f64,
    },
}

/// A short-circuit fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShortFile {
    /// When, from the start.
    pub at: SimDuration,
    /// The faulted bus (or give `line`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// The faulted line, `line.<name>` (or give `bus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// Where along `line`, from its from end (0 < f < 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// `slg-a|b|c`, `ll-ab|bc|ca`, `llg-ab|bc|ca` or `3ph`.
    pub kind: String,
    /// Fault resistance [Ω]; 0 is a bolted fault, large values a
    /// high-impedance fault.
    #[serde(default)]
    pub r_ohm: f64,
    /// How long it lasts; absent: permanent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
}

/// An open-conductor fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenConductorFile {
    /// When, from the start.
    pub at: SimDuration,
    /// The line, `line.<name>`.
    pub line: String,
    /// The broken phases: one or two of `a`, `b`, `c`.
    pub phases: String,
    /// How long it lasts; absent: permanent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
}

/// The `mesh` section: the LMUs' radios, their routing, and the telemetry
/// they send to the coordinator.
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `nodes` | `GridJunctions` (an LMU at every feeder bus with three or more branches, at its coordinates; the coordinator at the transformer's LV bus) or `Line(count, spacing_m)` (the coordinator first) | `GridJunctions` |
/// | `pole_height_m` | antenna height [m] | `8.0` |
/// | `propagation` | `Calibrated` (log-distance, 50 % PDR at 750 m), `LogDistance(exponent)`, `Friis`, `TwoRay`, `TwoRayExact` | `Calibrated` |
/// | `shadowing_sigma_db` | log-normal shadowing per link [dB] | `4.0` |
/// | `fading` | `None`, `Rayleigh` or `Nakagami(m)` per packet | `None` |
/// | `tx_dbm`, `sensitivity_dbm` | radio [dBm] | `8.0`, `-100.0` (nRF52840) |
/// | `cutoff_margin_db` | links this far below the noise floor are ignored [dB] | `20.0` |
/// | `report_interval` | telemetry period of each LMU (its frames are the LMU firmware's own: sealed postcard telemetry, ≤ 116 octets) | `"1min"` |
/// | `trickle_imin`, `trickle_doublings` | DIO timing | `"1s"`, `8` |
/// | `dao_interval` | downward-route refresh | `"60s"` |
/// | `waveform_lmus` | LMUs (node indices) fed one cycle of sampled waveforms through a 12-bit ADC model per measurement, instead of phasors | `[]` |
/// | `lmu_protection` | the LMUs' fault starts: `Fixed((delta_phase_a, delta_earth_a, fault_detect_a, r_fault_ohm))` or `Derived((r_fault_ohm, margin))`, see [`LmuProtectionFile`] | `Fixed` with the firmware's defaults (150 A, 150 A, 800 A; coverage checked to 0.5 Ω) |
/// | `channels` | 802.15.4 channels (1 to 16) shared out among a town's districts: each district's coordinator and LMUs use one, the districts on a channel as far apart as can be; radios on different channels do not hear one another | `1` |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeshFile {
    /// Where the nodes are.
    pub nodes: MeshNodesFile,
    /// Antenna height [m].
    pub pole_height_m: f64,
    /// Path-loss model.
    pub propagation: PropagationFile,
    /// Shadowing standard deviation [dB].
    pub shadowing_sigma_db: f64,
    /// Per-packet fading.
    pub fading: FadingFile,
    /// Transmit power [dBm].
    pub tx_dbm: f64,
    /// Receiver sensitivity [dBm].
    pub sensitivity_dbm: f64,
    /// Link cut-off below the noise floor [dB].
    pub cutoff_margin_db: f64,
    /// Telemetry period of each LMU.
    pub report_interval: SimDuration,
    /// Trickle Imin.
    pub trickle_imin: SimDuration,
    /// Trickle doublings.
    pub trickle_doublings: u32,
    /// DAO refresh interval.
    pub dao_interval: SimDuration,
    /// LMUs (mesh node indices, not 0) whose measurement inputs are
    /// sampled waveforms (one cycle of 64 samples per phase through the
    /// ADC model) rather than phasors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waveform_lmus: Vec<u32>,
    /// 802.15.4 channels shared out among the districts, 1 to 16.
    #[serde(skip_serializing_if = "is_one")]
    pub channels: u8,
    /// The LMUs' fault-start settings, and the fault resistance up to
    /// which their coverage is checked.
    #[serde(skip_serializing_if = "LmuProtectionFile::is_default")]
    pub lmu_protection: LmuProtectionFile,
}

/// The LMUs' fault starts (see `gridtwin_lmu::protection`).
///
/// ```ron
/// lmu_protection: Fixed((delta_phase_a: 150.0, delta_earth_a: 150.0, fault_detect_a: 800.0, r_fault_ohm: 0.5)),
/// lmu_protection: Derived((r_fault_ohm: 0.5, margin: 1.5)),
/// ```
///
/// - `Fixed`: the same pickups at every LMU [A]; `r_fault_ohm` is the
///   fault resistance up to which coverage is checked.
/// - `Derived`: each LMU's pickups from its feeder, as a protection
///   engineer sets them. Below the pickup lies `margin` × the largest
///   healthy value (the change of a phase current, or of the residual,
///   between two profile steps over the day, at least 20 A; the phase
///   current itself for the total-current start); above it `1 / margin` × the least fault
///   current at the far ends of the LMU's zone (IEC 60909 minimum
///   conditions, through up to `r_fault_ohm`, over every kind of fault).
///   The pickup is the geometric mean of the two, the same margin both
///   ways; where they cross, the lower bound (security first), and the
///   section is reported uncovered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LmuProtectionFile {
    /// The same pickups everywhere.
    Fixed(FixedProtectionFile),
    /// Pickups from the feeder.
    Derived(DerivedProtectionFile),
}

impl Default for LmuProtectionFile {
    fn default() -> Self {
        LmuProtectionFile::Fixed(FixedProtectionFile::default())
    }
}

impl LmuProtectionFile {
    fn is_default(&self) -> bool {
        *self == LmuProtectionFile::default()
    }

    /// The fault resistance up to which coverage is checked [Ω].
    pub fn r_fault_ohm(&self) -> f64 {
        match self {
            LmuProtectionFile::Fixed(f) => f.r_fault_ohm,
            LmuProtectionFile::Derived(d) => d.r_fault_ohm,
        }
    }
}

/// Fixed LMU pickups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixedProtectionFile {
    /// Superimposed phase-current start [A].
    pub delta_phase_a: f64,
    /// Superimposed residual-current start [A].
    pub delta_earth_a: f64,
    /// Total phase-current start [A].
    pub fault_detect_a: f64,
    /// Coverage is checked for faults through up to this resistance [Ω].
    pub r_fault_ohm: f64,
}

impl Default for FixedProtectionFile {
    /// The firmware's defaults; coverage checked up to 0.5 Ω.
    fn default() -> Self {
        let d = gridtwin_lmu::protection::ProtectionSettings::default();
        FixedProtectionFile {
            delta_phase_a: f64::from(d.delta_phase_a),
            delta_earth_a: f64::from(d.delta_earth_a),
            fault_detect_a: f64::from(d.fault_detect_a),
            r_fault_ohm: 0.5,
        }
    }
}

/// LMU pickups derived from the feeder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedProtectionFile {
    /// Faults through up to this resistance must be seen [Ω].
    pub r_fault_ohm: f64,
    /// Security and dependability factor (≥ 1).
    pub margin: f64,
}

/// Whether a duration is zero (serde's skip test).
fn is_zero(d: &SimDuration) -> bool {
    d.is_zero()
}

fn is_one(n: &u8) -> bool {
    *n == 1
}

impl Default for MeshFile {
    fn default() -> Self {
        MeshFile {
            nodes: MeshNodesFile::GridJunctions,
            pole_height_m: 8.0,
            propagation: PropagationFile::Calibrated,
            shadowing_sigma_db: 4.0,
            fading: FadingFile::None,
            tx_dbm: 8.0,
            sensitivity_dbm: -100.0,
            cutoff_margin_db: 20.0,
            report_interval: one_minute(),
            trickle_imin: SimDuration::from_secs(1).expect("fits"),
            trickle_doublings: 8,
            dao_interval: SimDuration::from_secs(60).expect("fits"),
            waveform_lmus: Vec::new(),
            channels: 1,
            lmu_protection: LmuProtectionFile::default(),
        }
    }
}

/// Where the mesh nodes are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MeshNodesFile {
    /// An LMU at every junction bus of the grid, the coordinator at the
    /// transformer's LV bus.
    GridJunctions,
    /// A straight line, the coordinator first.
    Line {
        /// Nodes, the coordinator included.
        count: u32,
        /// Spacing [m].
        spacing_m: f64,
    },
}

/// Path-loss model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PropagationFile {
    /// Log-distance with the exponent that gives 50 % PDR at 750 m.
    Calibrated,
    /// Log-distance with a given exponent (PL0 = Friis at 1 m).
    LogDistance(f64),
    /// Free space.
    Friis,
    /// ns-3 two-ray ground.
    TwoRay,
    /// Exact two-ray over a perfect reflector.
    TwoRayExact,
}

/// Per-packet fading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FadingFile {
    /// None.
    None,
    /// Rayleigh.
    Rayleigh,
    /// Nakagami-m.
    Nakagami(f64),
}

/// The `gateway` section: the gateway (aggregator, store-and-forward
/// buffer, MQTT client over 3G/4G) and the cloud (broker, store, command
/// sources). It needs a `mesh`, whose coordinator hands it the LMUs'
/// traffic; rounds follow `mesh.report_interval`.
///
/// ```ron
/// gateway: (
///     site: "village",
///     id: "gw0",
///     aggregation: WaitForAll(deadline: "30s"),
///     uplink: Lte,
///     buffer_bytes: 1048576,
///     overflow: DropOldest,
///     mqtt: (username: "gateway", password: "secret", qos: 1),
///     cloud: (
///         users: [("gateway", "secret")],
///         commands: [(at: "2h", lmu: 5, action: Open)],
///         rules: [(when: VoltageAbove(1.10), then: LimitPv(percent: 50))],
///     ),
/// )
/// ```
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `site` | text, the `<site>` of the MQTT topics | `"site"` |
/// | `id` | text, the `<gateway>` of the topics | `"gw0"` |
/// | `aggregation` | `WaitForAll(deadline: D)` (publish when every LMU reported, or at the round's end + D) or `FixedDeadline(deadline: D)` | `WaitForAll(deadline: "30s")` |
/// | `uart_baud` | coordinator-to-gateway UART [bit/s] | `115200` |
/// | `uplink` | `Lte` (4G) or `Umts` (3G), see [`crate::gateway::cellular`] | `Lte` |
/// | `buffer_bytes` | store-and-forward buffer [bytes] | `1048576` |
/// | `overflow` | `DropOldest` or `DropNewest` | `DropOldest` |
/// | `mqtt` | the session, see [`MqttFile`] | defaults |
/// | `cloud` | broker users, store, command sources, see [`CloudFile`] | defaults |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayFile {
    /// The site, in topic names.
    pub site: String,
    /// The gateway's id, in topic names.
    pub id: String,
    /// When rounds are published.
    pub aggregation: AggregationFile,
    /// Coordinator UART rate [bit/s].
    pub uart_baud: u32,
    /// The cellular technology.
    pub uplink: UplinkFile,
    /// Store-and-forward buffer [bytes].
    pub buffer_bytes: usize,
    /// Overflow policy.
    pub overflow: OverflowFile,
    /// The MQTT session.
    pub mqtt: MqttFile,
    /// The cloud.
    pub cloud: CloudFile,
}

impl Default for GatewayFile {
    fn default() -> Self {
        GatewayFile {
            site: "site".into(),
            id: "gw0".into(),
            aggregation: AggregationFile::WaitForAll {
                deadline: SimDuration::from_secs(30).expect("fits"),
            },
            uart_baud: 115_200,
            uplink: UplinkFile::Lte,
            buffer_bytes: 1 << 20,
            overflow: OverflowFile::DropOldest,
            mqtt: MqttFile::default(),
            cloud: CloudFile::default(),
        }
    }
}

/// Aggregation policy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum AggregationFile {
    /// Publish a round when every LMU has reported, or at its deadline.
    WaitForAll {
        /// After the round's end.
        deadline: SimDuration,
    },
    /// Publish every round at its deadline.
    FixedDeadline {
        /// After the round's end.
        deadline: SimDuration,
    },
}

/// Cellular technology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UplinkFile {
    /// 4G (LTE category 1).
    Lte,
    /// 3G (HSUPA).
    Umts,
}

/// Store-and-forward overflow policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverflowFile {
    /// Evict the oldest rounds.
    DropOldest,
    /// Refuse the new round.
    DropNewest,
}

/// The gateway's MQTT session.
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `client_id` | text | the gateway's `id` |
/// | `username`, `password` | credentials sent in CONNECT | `"gateway"`, `"secret"` |
/// | `keep_alive` | duration | `"60s"` |
/// | `ping_timeout` | wait for PINGRESP | `"10s"` |
/// | `connect_timeout` | wait for CONNACK | `"10s"` |
/// | `backoff_min`, `backoff_max` | reconnection back-off, doubling | `"1s"`, `"2min"` |
/// | `qos` | `0` or `1` for published rounds | `1` |
/// | `max_inflight` | unacknowledged QoS 1 messages | `16` |
/// | `retransmit_after` | re-send an unacknowledged message | `"20s"` |
/// | `clean_session` | `false` keeps a persistent session | `false` |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttFile {
    /// Client id; empty: the gateway's id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Keep-alive.
    pub keep_alive: SimDuration,
    /// PINGRESP timeout.
    pub ping_timeout: SimDuration,
    /// CONNACK timeout.
    pub connect_timeout: SimDuration,
    /// First back-off.
    pub backoff_min: SimDuration,
    /// Longest back-off.
    pub backoff_max: SimDuration,
    /// QoS of rounds: 0 or 1.
    pub qos: u8,
    /// In-flight window.
    pub max_inflight: u16,
    /// Re-send period of unacknowledged messages.
    pub retransmit_after: SimDuration,
    /// Fresh session at each connection.
    pub clean_session: bool,
}

impl Default for MqttFile {
    fn default() -> Self {
        let s = |x| SimDuration::from_secs(x).expect("fits");
        MqttFile {
            client_id: String::new(),
            username: "gateway".into(),
            password: "secret".into(),
            keep_alive: s(60),
            ping_timeout: s(10),
            connect_timeout: s(10),
            backoff_min: s(1),
            backoff_max: s(120),
            qos: 1,
            max_inflight: 16,
            retransmit_after: s(20),
            clean_session: false,
        }
    }
}

/// The cloud: broker accounts, the store, command sources.
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `users` | `[(user, password)]` the broker accepts | `[("gateway", "secret")]` |
/// | `ingest_latency` | median broker-to-store latency | `"20ms"` |
/// | `ingest_sigma_ln` | its log-normal σ | `0.5` |
/// | `v_nominal_v` | declared phase voltage for rules [V] | `230.0` |
/// | `commands` | scheduled operator commands, see [`CommandFile`] | `[]` |
/// | `rules` | automation, see [`RuleFile`] | `[]` |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudFile {
    /// Accounts the broker accepts.
    pub users: Vec<(String, String)>,
    /// Median ingestion latency, broker to store.
    pub ingest_latency: SimDuration,
    /// Log-normal σ of the ingestion latency.
    pub ingest_sigma_ln: f64,
    /// Declared phase voltage [V].
    pub v_nominal_v: f64,
    /// Scheduled operator commands.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandFile>,
    /// Automation rules.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleFile>,
}

impl Default for CloudFile {
    fn default() -> Self {
        CloudFile {
            users: vec![("gateway".into(), "secret".into())],
            ingest_latency: SimDuration::from_millis(20).expect("fits"),
            ingest_sigma_ln: 0.5,
            v_nominal_v: 230.0,
            commands: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// An operator command at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandFile {
    /// When the operator issues it.
    pub at: SimDuration,
    /// The LMU (mesh node index, 1 and up).
    pub lmu: u32,
    /// What to do.
    pub action: ActionFile,
}

/// A command's action.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ActionFile {
    /// Open the contactor.
    Open,
    /// Close the contactor.
    Close,
    /// Report now.
    Report,
    /// A new report interval.
    SetReportInterval(SimDuration),
    /// Limit the section's PV [% of rating].
    LimitPv {
        /// Share of rating [%].
        percent: u8,
    },
    /// Demand response: reduce the section's load.
    ReduceLoad {
        /// Reduction [%].
        percent: u8,
        /// For how long.
        duration: SimDuration,
    },
}

/// An automation rule: when an LMU's report meets the condition, send it
/// the command, at most once per `cooldown`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The condition.
    pub when: ConditionFile,
    /// The command.
    pub then: ActionFile,
    /// Least time between two firings for one LMU.
    #[serde(default = "fifteen_minutes")]
    pub cooldown: SimDuration,
}

fn fifteen_minutes() -> SimDuration {
    SimDuration::from_mins(15).expect("fits")
}

/// A rule's condition on one LMU report.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ConditionFile {
    /// The highest phase voltage in the report is above this [pu].
    VoltageAbove(f64),
    /// The lowest phase voltage in the report is below this [pu] (and not 0,
    /// which means no supply).
    VoltageBelow(f64),
}

/// The `ledger` section: a private, permissioned chain of kWh
/// certificates, its validators and consensus, and (without a grid) a
/// synthetic workload.
///
/// ```ron
/// ledger: (
///     validators: 7,
///     consensus: Bft,
///     block_interval: "2s",
///     byzantine: [(validator: 2, mode: Equivocate), (validator: 5, mode: Silent)],
///     workload: (plants: 8, consumers: 24, interval: "15min"),
/// )
/// ```
///
/// | field | unit / form | default |
/// |---|---|---|
/// | `validators` | count, 1 to 64 | `4` |
/// | `consensus` | `Bft` (Tendermint-style; tolerates f < n/3 Byzantine) or `Aura` (round robin; crash-tolerant only; `byzantine` takes only `Equivocate`, which can break it) | `Bft` |
/// | `block_interval` | from a block's decision to the next height | `"2s"` |
/// | `timeout_propose`, `timeout_vote`, `timeout_delta` | BFT timeouts (prevote and precommit share `timeout_vote`), growing by `timeout_delta` per round | `"1s"`, `"500ms"`, `"500ms"` |
/// | `max_block_txs` | transactions per block | `1000` |
/// | `wait_for_txs` | BFT only: a validator starts a height only once transactions are pending, or this long after the block interval (CometBFT's `create_empty_blocks = false`) | absent: a block every interval, empty or not |
/// | `backhaul` | `(latency: "20ms", jitter: "5ms", loss: 0.0)` | those |
/// | `byzantine` | `[(validator: i, mode: Equivocate \| Silent \| Delay("1500ms"))]` | `[]` |
/// | `workload` | the participants, see [`WorkloadSettings`] | defaults |
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerFile {
    /// Validators.
    pub validators: u32,
    /// Consensus protocol.
    pub consensus: ConsensusFile,
    /// Block interval.
    pub block_interval: SimDuration,
    /// Propose timeout (round 0).
    pub timeout_propose: SimDuration,
    /// Prevote and precommit timeouts (round 0).
    pub timeout_vote: SimDuration,
    /// Growth of every timeout per round.
    pub timeout_delta: SimDuration,
    /// Most transactions in a block.
    pub max_block_txs: usize,
    /// Wait for transactions before a height, at most this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for_txs: Option<SimDuration>,
    /// The validators' network.
    pub backhaul: BackhaulFile,
    /// Misbehaving validators.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub byzantine: Vec<ByzantineFile>,
    /// The participants (see [`WorkloadSettings`]).
    pub workload: WorkloadSettings,
}

impl Default for LedgerFile {
    fn default() -> Self {
        let ms = |x| SimDuration::from_millis(x).expect("fits");
        LedgerFile {
            validators: 4,
            consensus: ConsensusFile::Bft,
            block_interval: ms(2000),
            timeout_propose: ms(1000),
            timeout_vote: ms(500),
            timeout_delta: ms(500),
            max_block_txs: 1000,
            wait_for_txs: None,
            backhaul: BackhaulFile::default(),
            byzantine: Vec::new(),
            workload: WorkloadSettings::default(),
        }
    }
}

/// The consensus protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusFile {
    /// Tendermint-style BFT.
    Bft,
    /// Proof-of-authority round robin: slot = `block_interval`, final once
    /// more than n/2 distinct validators built on a block. Safe under
    /// crashes and partitions, not under equivocation.
    Aura,
}

/// The validators' backhaul.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackhaulFile {
    /// One-way latency.
    pub latency: SimDuration,
    /// Uniform extra latency, up to.
    pub jitter: SimDuration,
    /// Loss probability.
    pub loss: f64,
}

impl Default for BackhaulFile {
    fn default() -> Self {
        BackhaulFile {
            latency: SimDuration::from_millis(20).expect("fits"),
            jitter: SimDuration::from_millis(5).expect("fits"),
            loss: 0.0,
        }
    }
}

/// A misbehaving validator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByzantineFile {
    /// Which (0-based).
    pub validator: u32,
    /// How.
    pub mode: ByzantineModeFile,
}

/// How a validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ByzantineModeFile {
    /// Double proposals and double votes.
    Equivocate,
    /// Sends nothing.
    Silent,
    /// Delays every message it sends.
    Delay(SimDuration),
}
