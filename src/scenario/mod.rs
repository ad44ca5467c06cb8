//! Scenarios: RON files in, a validated [`Scenario`] out.
//!
//! Loading has two stages, so that only one layer knows about text:
//!
//! ```text
//!  file.ron ──ron+serde──► ScenarioFile (DTOs, dto.rs) ──validate──► Scenario
//!            (syntax, unknown fields,        (cross-field checks,      (plain types,
//!             units, with positions)          positions located)        units checked)
//! ```
//!
//! Every mistake becomes a [`ScenarioError`] that names `file:line:col` and
//! the field at fault, and renders the offending line with a caret. Paths
//! written inside a scenario are relative to the scenario file
//! ([`Scenario::resolve_path`]).
//!
//! RON is read with the `implicit_some` extension on, so optional values are
//! written plainly (`max_events: 1000`, not `Some(1000)`).

pub mod dto;
mod error;
pub mod locate;
mod validate;

use std::path::{Path, PathBuf};

use ron::extensions::Extensions;

pub use error::{ScenarioDiagnostic, ScenarioError};
pub(crate) use validate::parse_phases;

use crate::kernel::SimDuration;
use dto::ScenarioFile;

/// A validated scenario: one study, ready to build into a world.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Directory against which paths in the scenario are resolved: the
    /// scenario file's directory.
    pub base_dir: PathBuf,
    /// Name of the study (letters, digits, `_`, `-`, `.`).
    pub name: String,
    /// Seed of every random stream.
    pub seed: u64,
    /// Time of day at which the run begins [ns since midnight]: the grid's
    /// profiles are read at `start` + the simulated time.
    pub start: SimDuration,
    /// Simulated time to run [ns, as a duration].
    pub duration: SimDuration,
    /// Event budget, if any [events].
    pub max_events: Option<u64>,
    /// What the run records.
    pub outputs: OutputSettings,
    /// The grid model's section, checked for everything that does not need
    /// the feeder itself (names are checked when the world is built).
    pub grid: Option<dto::GridFile>,
    /// The mesh section.
    pub mesh: Option<dto::MeshFile>,
    /// The gateway section (needs the mesh).
    pub gateway: Option<dto::GatewayFile>,
    /// The ledger section.
    pub ledger: Option<dto::LedgerFile>,
    /// The fault timeline, checked likewise.
    pub faults: Vec<dto::FaultFile>,
    /// The file name and text the scenario came from, so that mistakes
    /// found when building the world still point into the file.
    origin: Origin,
}

/// Where a scenario came from.
#[derive(Clone, Debug, Default)]
struct Origin {
    file: String,
    src: String,
}

/// Where a scenario came from does not change what it is: two scenarios
/// are equal when their settings are.
impl PartialEq for Origin {
    fn eq(&self, _: &Origin) -> bool {
        true
    }
}

/// What a run records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSettings {
    /// Interval between time-series rows.
    pub sample_interval: SimDuration,
    /// Event trace level.
    pub trace: Trace,
    /// Mesh node ids whose bus phase voltages every sample records (empty:
    /// a default choice, see [`dto::OutputsFile`]).
    pub watch_lmus: Vec<u32>,
}

/// How much of the event trace a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// None.
    Off,
    /// Every handled event, to `events.csv`.
    Events,
}

impl Scenario {
    /// Reads, parses and validates the scenario at `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        Scenario::from_source(&path.display().to_string(), &src, &base_dir, &stem)
    }

    /// Parses and validates scenario text. `file` labels errors, `base_dir`
    /// resolves relative paths, and `default_name` is used when the text
    /// gives no `name`.
    pub fn from_source(
        file: &str,
        src: &str,
        base_dir: &Path,
        default_name: &str,
    ) -> Result<Scenario, ScenarioError> {
        let dto = parse(file, src)?;
        validate::validate(dto, file, src, base_dir, default_name)
    }

    /// An error at `path` in the scenario file, for mistakes found after
    /// validation (e.g. a bus name that the feeder does not have).
    pub fn error_at(
        &self,
        path: &[locate::Seg],
        message: impl Into<String>,
        help: Option<String>,
    ) -> ScenarioError {
        validate::invalid_at(
            &self.origin.file,
            &self.origin.src,
            validate::Invalid {
                path: path.to_vec(),
                message: message.into(),
                help,
            },
        )
    }

    /// The same scenario with another seed.
    pub fn with_seed(mut self, seed: u64) -> Scenario {
        self.seed = seed;
        self
    }

    /// A path written in the scenario, resolved against the scenario's
    /// directory (absolute paths are kept as they are).
    pub fn resolve_path(&self, written: &Path) -> PathBuf {
        self.base_dir.join(written)
    }

    /// The scenario as a file with every default filled in, including the
    /// seed: running this file reproduces the run.
    pub fn to_file(&self) -> ScenarioFile {
        self.to_file_in(None)
    }

    /// [`Scenario::to_file`] for a file to be written in `dir`: paths
    /// relative to `dir` (a scenario's paths are relative to its file),
    /// so that the same run written anywhere in a checkout holds the same
    /// bytes; absolute where no relative path exists.
    pub fn to_file_in(&self, dir: Option<&Path>) -> ScenarioFile {
        let dir = dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()));
        ScenarioFile {
            name: Some(self.name.clone()),
            seed: self.seed,
            start: self.start,
            duration: self.duration,
            max_events: self.max_events,
            outputs: dto::OutputsFile {
                sample_interval: self.outputs.sample_interval,
                trace: match self.outputs.trace {
                    Trace::Off => dto::TraceFile::Off,
                    Trace::Events => dto::TraceFile::Events,
                },
                watch_lmus: self.outputs.watch_lmus.clone(),
            },
            grid: self.grid.clone().map(|mut g| {
                // Paths become absolute, so that the resolved file runs the
                // same wherever it is written.
                if let dto::FeederFile::Dss(p) = &mut g.feeder {
                    let full = self.resolve_path(p);
                    let full = std::fs::canonicalize(&full).unwrap_or(full);
                    *p = dir
                        .as_deref()
                        .and_then(|d| pathdiff::diff_paths(&full, d))
                        .unwrap_or(full);
                }
                g
            }),
            mesh: self.mesh.clone(),
            gateway: self.gateway.clone(),
            ledger: self.ledger.clone(),
            faults: self.faults.clone(),
        }
    }

    /// [`Scenario::to_file`] as pretty RON text, with a header comment.
    pub fn to_resolved_ron(&self) -> String {
        self.to_resolved_ron_in(None)
    }

    /// [`Scenario::to_resolved_ron`] for a file written in `dir`, its
    /// paths relative to `dir` ([`Scenario::to_file_in`]).
    pub fn to_resolved_ron_in(&self, dir: Option<&Path>) -> String {
        let config = ron::ser::PrettyConfig::new()
            .struct_names(false)
            .extensions(Extensions::IMPLICIT_SOME);
        let body = ron::ser::to_string_pretty(&self.to_file_in(dir), config)
            .expect("scenario DTOs always serialize");
        format!(
            "// The scenario `{}` as run: every default filled in, seed included.\n\
             // `gridtwin run` on this file reproduces the run.\n{body}\n",
            self.name
        )
    }
}

impl Scenario {
    /// The scenario with `changes` made to it: each a dotted path into
    /// the scenario as a file (`mesh.report_interval`,
    /// `ledger.validators`, `faults.0.at` or `faults[0].Short.at`:
    /// numbers index lists) and a value
    /// in RON (`7`, `"5min"`, `true`; a bare word such as `5min` or `Bft`
    /// is taken as a string, which is how durations and unit variants are
    /// written). The result is validated as any scenario is; its errors
    /// point into the changed text, labelled `label`.
    pub fn varied(&self, label: &str, changes: &[(String, String)]) -> Result<Scenario, VaryError> {
        let mut v = serde_json::to_value(self.to_file()).expect("scenario DTOs always serialize");
        for (path, text) in changes {
            let value: serde_json::Value =
                ron::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.clone()));
            set_path(&mut v, path, value).map_err(|why| VaryError::Path {
                path: path.clone(),
                why,
            })?;
        }
        let file: ScenarioFile = serde_json::from_value(v).map_err(|e| VaryError::Value {
            changes: describe(changes),
            why: e.to_string(),
        })?;
        Scenario::from_file(label, &file, &self.base_dir, &self.name)
            .map_err(|e| VaryError::Invalid(Box::new(e)))
    }

    /// Validates a scenario given as a file value: it is written out as
    /// RON and read back, so that its errors point into that text,
    /// labelled `label`.
    pub fn from_file(
        label: &str,
        file: &ScenarioFile,
        base_dir: &Path,
        default_name: &str,
    ) -> Result<Scenario, ScenarioError> {
        let config = ron::ser::PrettyConfig::new()
            .struct_names(false)
            .extensions(Extensions::IMPLICIT_SOME);
        let text =
            ron::ser::to_string_pretty(file, config).expect("scenario DTOs always serialize");
        Scenario::from_source(label, &text, base_dir, default_name)
    }
}

/// `a=1, b=2`.
fn describe(changes: &[(String, String)]) -> String {
    changes
        .iter()
        .map(|(p, v)| format!("{p}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets the value at dotted `path` in `root`; the last key may be new (an
/// optional field left out), every other must exist.
fn set_path(
    root: &mut serde_json::Value,
    path: &str,
    value: serde_json::Value,
) -> Result<(), String> {
    // `faults[1].Short.bus` is `faults.1.Short.bus`.
    let dotted = path.replace('[', ".").replace(']', "");
    let segs: Vec<&str> = dotted.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err("an empty segment".into());
    }
    let mut at = root;
    let mut walked = String::new();
    for (k, seg) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        let here = if walked.is_empty() {
            "the scenario".to_string()
        } else {
            format!("`{walked}`")
        };
        at = match at {
            serde_json::Value::Object(map) => {
                if last {
                    map.insert((*seg).to_string(), value);
                    return Ok(());
                }
                if !map.contains_key(*seg) {
                    let names: Vec<&str> = map.keys().map(String::as_str).collect();
                    return Err(format!(
                        "{here} has no `{seg}` here (it has: {})",
                        names.join(", ")
                    ));
                }
                map.get_mut(*seg).expect("checked above")
            }
            serde_json::Value::Array(items) => {
                let len = items.len();
                let i: usize = seg.parse().map_err(|_| {
                    format!("{here} is a list: index it with a number, not `{seg}`")
                })?;
                let Some(item) = items.get_mut(i) else {
                    return Err(format!("{here} has {len} entries, not an entry {i}"));
                };
                if last {
                    *item = value;
                    return Ok(());
                }
                item
            }
            _ => return Err(format!("{here} is a value, with no field `{seg}`")),
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(seg);
    }
    Ok(())
}

/// Why a varied scenario could not be made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum VaryError {
    /// The path does not lead to a field.
    #[error("cannot vary `{path}`: {why}")]
    Path {
        /// The dotted path.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// A value does not fit its field.
    #[error("{changes}: {why}")]
    Value {
        /// The changes, `path=value, …`.
        changes: String,
        /// What is wrong.
        why: String,
    },
    /// The varied scenario is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<ScenarioError>),
}

/// RON text → DTOs, with positioned errors.
fn parse(file: &str, src: &str) -> Result<ScenarioFile, ScenarioError> {
    let options = ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME);
    let mut de = match ron::Deserializer::from_str_with_options(src, &options) {
        Ok(de) => de,
        Err(e) => return Err(validate::ron_error(file, src, e, None)),
    };
    match serde_path_to_error::deserialize::<_, ScenarioFile>(&mut de) {
        Ok(dto) => match de.end() {
            Ok(()) => Ok(dto),
            Err(e) => Err(validate::ron_error(file, src, de.span_error(e), None)),
        },
        Err(e) => {
            let path = e.path().to_string();
            let spanned = de.span_error(e.into_inner());
            let field = (path != "." && path != "?").then_some(path);
            Err(validate::ron_error(file, src, spanned, field))
        }
    }
}

#[cfg(test)]
mod tests;
