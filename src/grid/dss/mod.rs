//! OpenDSS import: the subset of the language that the IEEE European LV test
//! feeder uses, read into typed definitions with SI units.
//!
//! Supported:
//! - elements: `Vsource` (`New circuit.NAME`, `Edit Vsource.Source`),
//!   `LineCode` (sequence or matrix form), `Line`, `Transformer`, `Load`,
//!   `LoadShape` (`mult`, `npts`, `interval`, `minterval`, `sinterval`,
//!   `useactual`, `mult=(file=…)`);
//! - commands: `New`, `Edit`, `Redirect`, `Compile`, `batchedit`, `set`,
//!   `clear`, `Calcvoltagebases`, `solve`, `buscoords`;
//! - comments (`!`, `//`) and continuation lines (`~`, `more`).
//!
//! `Monitor` and `EnergyMeter` definitions are ignored, each with a warning.
//! Anything else is an error, "unsupported element X at file:line", never a
//! silent skip. Paths in `Redirect`, `buscoords` and `file=` are relative to
//! the file they are written in.
//!
//! Units are converted on import: impedances to Ω/m ([`LineCodeDef`]), line
//! lengths to m, voltages to V, powers to W and var.

pub mod districts;
mod elements;
pub mod lex;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use elements::{
    BusRef, Conn, LengthUnit, LineCodeDef, LineDef, LoadDef, LoadShapeDef, TransformerDef,
    VsourceDef, WindingDef,
};
pub use lex::Location;

/// Why a feeder could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DssError {
    /// A file could not be read.
    #[error("cannot read {}{}: {source}", path.display(), at.as_ref().map(|a| format!(" (from {a})")).unwrap_or_default())]
    Io {
        /// The file.
        path: PathBuf,
        /// The command that named it, if any.
        at: Option<Location>,
        /// The cause.
        source: std::io::Error,
    },
    /// An element class or command outside the supported subset.
    #[error("unsupported {what} {name} at {at}")]
    Unsupported {
        /// `element` or `command`.
        what: &'static str,
        /// Its name as written.
        name: String,
        /// Where.
        at: Location,
    },
    /// Anything else wrong at a place in a script.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What.
        message: String,
    },
}

/// Something ignored on import, with where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DssWarning {
    /// Where.
    pub at: Location,
    /// What was ignored.
    pub message: String,
}

impl std::fmt::Display for DssWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// A feeder as its OpenDSS scripts define it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DssCircuit {
    /// The circuit's name (lower case).
    pub name: String,
    /// The source (`Vsource.source`).
    pub source: VsourceDef,
    /// Line codes by lower-case name.
    pub linecodes: BTreeMap<String, LineCodeDef>,
    /// Lines in definition order.
    pub lines: Vec<LineDef>,
    /// Transformers in definition order.
    pub transformers: Vec<TransformerDef>,
    /// Loads in definition order.
    pub loads: Vec<LoadDef>,
    /// Load shapes by lower-case name.
    pub loadshapes: BTreeMap<String, LoadShapeDef>,
    /// Bus coordinates by lower-case bus name [x, y in the file's units,
    /// metres for this feeder].
    pub buscoords: BTreeMap<String, (f64, f64)>,
    /// `set voltagebases`, line-to-line [V].
    pub voltage_bases_v: Vec<f64>,
    /// `set defaultbasefrequency` [Hz].
    pub base_frequency_hz: f64,
    /// What was ignored, with where.
    pub warnings: Vec<DssWarning>,
}

impl DssCircuit {
    /// Imports the feeder whose top script is `master` (e.g. `Master.dss`).
    pub fn load(master: &Path) -> Result<DssCircuit, DssError> {
        let mut c = DssCircuit {
            base_frequency_hz: 60.0,
            ..DssCircuit::default()
        };
        let mut state = State { circuit: false };
        c.run_file(master, None, &mut state)?;
        if !state.circuit {
            return Err(DssError::Invalid {
                at: Location {
                    file: master.display().to_string(),
                    line: 1,
                },
                message: "no `New circuit.NAME` in the script".into(),
            });
        }
        Ok(c)
    }

    fn run_file(
        &mut self,
        path: &Path,
        from: Option<&Location>,
        state: &mut State,
    ) -> Result<(), DssError> {
        let text = std::fs::read_to_string(path).map_err(|source| DssError::Io {
            path: path.to_path_buf(),
            at: from.cloned(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let cmds = lex::commands(path, &text).map_err(|e| DssError::Invalid {
            at: e.at,
            message: e.message,
        })?;
        for cmd in &cmds {
            self.run(cmd, &dir, state)?;
        }
        Ok(())
    }

    fn run(&mut self, cmd: &lex::Command, dir: &Path, state: &mut State) -> Result<(), DssError> {
        let at = &cmd.at;
        let invalid = |message: String| DssError::Invalid {
            at: at.clone(),
            message,
        };
        match cmd.verb.as_str() {
            "clear" => {
                let freq = self.base_frequency_hz;
                *self = DssCircuit {
                    base_frequency_hz: freq,
                    ..DssCircuit::default()
                };
                state.circuit = false;
            }
            "redirect" | "compile" => {
                let file = cmd
                    .params
                    .first()
                    .ok_or_else(|| invalid(format!("`{}` needs a file name", cmd.verb)))?;
                self.run_file(&dir.join(&file.value), Some(at), state)?;
            }
            "buscoords" => {
                let file = cmd
                    .params
                    .first()
                    .ok_or_else(|| invalid("`buscoords` needs a file name".into()))?;
                self.read_buscoords(&dir.join(&file.value), at)?;
            }
            "set" => {
                for p in &cmd.params {
                    let name = p.name.as_deref().unwrap_or("");
                    match name {
                        "voltagebases" => {
                            self.voltage_bases_v = elements::numbers(&p.value)
                                .map_err(|m| invalid(format!("voltagebases: {m}")))?
                                .into_iter()
                                .map(|kv| kv * 1e3)
                                .collect();
                        }
                        "defaultbasefrequency" | "defaultbasefreq" => {
                            self.base_frequency_hz = elements::number(&p.value)
                                .map_err(|m| invalid(format!("{name}: {m}")))?;
                        }
                        // Solution options (mode, number, stepsize, …) belong
                        // to the simulator's own time series, not the feeder.
                        _ => self.warnings.push(DssWarning {
                            at: at.clone(),
                            message: format!("ignored `set {name}`"),
                        }),
                    }
                }
            }
            "calcvoltagebases" | "solve" => {}
            "new" | "edit" => self.define(cmd, dir, state)?,
            "batchedit" => self.batchedit(cmd)?,
            other => {
                return Err(DssError::Unsupported {
                    what: "command",
                    name: other.to_string(),
                    at: at.clone(),
                });
            }
        }
        Ok(())
    }

    /// `New Class.Name props…` or `Edit Class.Name props…`.
    fn define(
        &mut self,
        cmd: &lex::Command,
        dir: &Path,
        state: &mut State,
    ) -> Result<(), DssError> {
        let at = &cmd.at;
        let mut params = cmd.params.iter();
        let target = match params.next() {
            Some(p) if p.name.is_none() || p.name.as_deref() == Some("object") => p.value.clone(),
            _ => {
                return Err(DssError::Invalid {
                    at: at.clone(),
                    message: format!("`{}` needs Class.Name", cmd.verb),
                });
            }
        };
        let (class, name) = target.split_once('.').ok_or_else(|| DssError::Invalid {
            at: at.clone(),
            message: format!("expected Class.Name, found `{target}`"),
        })?;
        let class = class.to_ascii_lowercase();
        let name = name.to_ascii_lowercase();
        let rest: Vec<lex::Param> = params.cloned().collect();
        let edit = cmd.verb == "edit";
        let ctx = elements::Ctx { at, dir };
        match class.as_str() {
            "circuit" => {
                self.name = name;
                self.source = VsourceDef::default();
                state.circuit = true;
                self.source.apply(&rest, &ctx)?;
            }
            "vsource" => {
                if name != "source" || !state.circuit {
                    return Err(DssError::Unsupported {
                        what: "element",
                        name: format!("Vsource.{name} (only the circuit's own Vsource.Source)"),
                        at: at.clone(),
                    });
                }
                self.source.apply(&rest, &ctx)?;
            }
            "linecode" => {
                let lc = self
                    .linecodes
                    .entry(name.clone())
                    .or_insert_with(|| LineCodeDef::new(&name));
                lc.apply(&rest, &ctx)?;
            }
            "line" => {
                let idx = edit_or_new(&mut self.lines, &name, edit, at, LineDef::new, |l| &l.name)?;
                let line = &mut self.lines[idx];
                line.apply(&rest, &ctx)?;
            }
            "transformer" => {
                let idx = edit_or_new(
                    &mut self.transformers,
                    &name,
                    edit,
                    at,
                    TransformerDef::new,
                    |t| &t.name,
                )?;
                self.transformers[idx].apply(&rest, &ctx)?;
            }
            "load" => {
                let idx = edit_or_new(&mut self.loads, &name, edit, at, LoadDef::new, |l| &l.name)?;
                self.loads[idx].apply(&rest, &ctx)?;
            }
            "loadshape" => {
                let s = self
                    .loadshapes
                    .entry(name.clone())
                    .or_insert_with(|| LoadShapeDef::new(&name));
                s.apply(&rest, &ctx)?;
            }
            "monitor" | "energymeter" => self.warnings.push(DssWarning {
                at: at.clone(),
                message: format!("ignored {class}.{name}: meters are the simulator's job"),
            }),
            _ => {
                return Err(unsupported_class(&target, at));
            }
        }
        Ok(())
    }

    /// `batchedit class..pattern props…`: edits every object of the class
    /// whose name matches the pattern: `*` (or the regular expression `.*`)
    /// matches any run of characters; anything else must match exactly.
    fn batchedit(&mut self, cmd: &lex::Command) -> Result<(), DssError> {
        let at = &cmd.at;
        let target = cmd
            .params
            .first()
            .map(|p| p.value.clone())
            .unwrap_or_default();
        let (class, pattern) = target.split_once("..").ok_or_else(|| DssError::Invalid {
            at: at.clone(),
            message: format!("batchedit expects class..pattern, found `{target}`"),
        })?;
        let class = class.to_ascii_lowercase();
        let pattern = pattern.to_ascii_lowercase();
        let matches = |name: &str| wildcard_match(&pattern, name);
        let rest = &cmd.params[1..];
        let ctx = elements::Ctx {
            at,
            dir: Path::new("."),
        };
        match class.as_str() {
            "loadshape" => {
                for s in self.loadshapes.values_mut().filter(|s| matches(&s.name)) {
                    s.apply(rest, &ctx)?;
                }
            }
            "load" => {
                for l in self.loads.iter_mut().filter(|l| matches(&l.name)) {
                    l.apply(rest, &ctx)?;
                }
            }
            "line" => {
                for l in self.lines.iter_mut().filter(|l| matches(&l.name)) {
                    l.apply(rest, &ctx)?;
                }
            }
            "linecode" => {
                for l in self.linecodes.values_mut().filter(|l| matches(&l.name)) {
                    l.apply(rest, &ctx)?;
                }
            }
            _ => {
                return Err(unsupported_class(&target, at));
            }
        }
        Ok(())
    }

    fn read_buscoords(&mut self, path: &Path, at: &Location) -> Result<(), DssError> {
        let text = std::fs::read_to_string(path).map_err(|source| DssError::Io {
            path: path.to_path_buf(),
            at: Some(at.clone()),
            source,
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('!').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .collect();
            let here = || Location {
                file: path.display().to_string(),
                line: i + 1,
            };
            let [bus, x, y, ..] = fields.as_slice() else {
                return Err(DssError::Invalid {
                    at: here(),
                    message: "expected `bus x y`".into(),
                });
            };
            let parse = |s: &str| {
                elements::number(s).map_err(|m| DssError::Invalid {
                    at: here(),
                    message: m,
                })
            };
            self.buscoords
                .insert(bus.to_ascii_lowercase(), (parse(x)?, parse(y)?));
        }
        Ok(())
    }
}

/// What `Load` survives across the commands of one import.
#[derive(Debug)]
struct State {
    circuit: bool,
}

/// The index of `name` in `items`: an existing one for `Edit` (an error if
/// absent), a new one for `New` (replacing any of the same name, as OpenDSS
/// does).
fn edit_or_new<T>(
    items: &mut Vec<T>,
    name: &str,
    edit: bool,
    at: &Location,
    make: fn(&str) -> T,
    name_of: fn(&T) -> &String,
) -> Result<usize, DssError> {
    let found = items.iter().position(|t| name_of(t) == name);
    match (found, edit) {
        (Some(i), true) => Ok(i),
        (None, true) => Err(DssError::Invalid {
            at: at.clone(),
            message: format!("`Edit` of `{name}`, which is not defined"),
        }),
        (Some(i), false) => {
            items[i] = make(name);
            Ok(i)
        }
        (None, false) => {
            items.push(make(name));
            Ok(items.len() - 1)
        }
    }
}

/// "unsupported element X at file:line" for the class of `Class.Name`, as
/// the user wrote it.
fn unsupported_class(target: &str, at: &Location) -> DssError {
    DssError::Unsupported {
        what: "element",
        name: target.split('.').next().unwrap_or(target).to_string(),
        at: at.clone(),
    }
}

/// `*` matches any run of characters; `.*` (a regular expression for "all"
/// in OpenDSS scripts) is treated the same.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let pattern = pattern.replace(".*", "*");
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
