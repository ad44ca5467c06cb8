//! `gridtwin grid …`: one-off grid studies on a feeder file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::grid::dss::{DssCircuit, DssError};
use crate::grid::fault::{FaultKind, solve_fault};
use crate::grid::network::{Network, NetworkError};
use crate::grid::powerflow::{self, PowerFlowError, Settings};
use crate::report::write_atomic;

/// Grid studies.
#[derive(Debug, Args)]
pub struct GridArgs {
    /// Which study.
    #[command(subcommand)]
    pub command: GridCommand,
}

/// The grid studies.
#[derive(Debug, Subcommand)]
pub enum GridCommand {
    /// Solve one three-phase unbalanced power flow and write the bus
    /// voltages.
    ///
    /// Writes the CSV given by --out with the columns bus,phase,vm_v,va_deg:
    /// one row per bus (the source bus included) and phase, bus names in
    /// lower case, phase a, b or c, the phase-to-neutral magnitude [V] and
    /// angle [deg].
    Solve(SolveArgs),
    /// Solve a short-circuit fault and write the current in every branch.
    ///
    /// Writes the CSV given by --out with the columns
    /// branch,from_bus,to_bus,ia_a,ib_a,ic_a: current magnitudes [A] at each
    /// branch's from end. The first row, with branch FAULT and to_bus
    /// ground, holds the fault currents. Loads below 0.7 pu become constant
    /// impedance during the fault, as in OpenDSS.
    Fault(FaultArgs),
}

/// Arguments of `grid fault`.
#[derive(Debug, Args)]
pub struct FaultArgs {
    /// The feeder: an OpenDSS Master.dss, or a scenario (.ron) whose grid
    /// section is used at t = 0.
    #[arg(value_name = "FEEDER")]
    pub feeder: PathBuf,
    /// The faulted bus (case-insensitive).
    #[arg(long, value_name = "B")]
    pub bus: String,
    /// The fault: slg-a|b|c (phase to ground), ll-ab|bc|ca (phase to
    /// phase), llg-ab|bc|ca (two phases to ground) or 3ph.
    #[arg(long, value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(FaultKind::NAMES))]
    pub kind: String,
    /// Fault resistance [Ω]; 0 is a bolted fault.
    #[arg(long = "r-ohm", value_name = "R", default_value_t = 0.0)]
    pub r_ohm: f64,
    /// Pre-fault loads as in `grid solve --loads`.
    #[arg(long, value_name = "CSV")]
    pub loads: Option<PathBuf>,
}

/// Arguments of `grid solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    /// The feeder: an OpenDSS Master.dss (paths inside are relative to it),
    /// or a scenario (.ron) whose grid section is used at t = 0.
    #[arg(value_name = "FEEDER")]
    pub feeder: PathBuf,
    /// Loads to use instead of the feeder's own, as a CSV with the columns
    /// load,p_kw,q_kvar (load names as in the feeder, case-insensitive).
    /// The loads are then pure constant PQ, as the IEEE test-feeder
    /// definition says. Without it the feeder's own load model applies,
    /// with OpenDSS's vminpu/vmaxpu switch to constant impedance.
    #[arg(long, value_name = "CSV")]
    pub loads: Option<PathBuf>,
}

/// Why a grid study failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GridCliError {
    /// The feeder could not be imported.
    #[error(transparent)]
    Dss(#[from] DssError),
    /// The feeder could not be modelled.
    #[error("{0}")]
    Network(#[from] NetworkError),
    /// The power flow failed.
    #[error("power flow: {0}")]
    PowerFlow(#[from] PowerFlowError),
    /// The loads file is wrong.
    #[error("{file}:{line}: {message}")]
    Loads {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A usage mistake.
    #[error("{0}")]
    Usage(String),
    /// The scenario given as the feeder is wrong.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// The scenario's grid could not be built.
    #[error(transparent)]
    GridBuild(#[from] crate::world::grid::GridBuildError),
    /// Writing the output failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl GridCliError {
    /// Bad input (exit 2) or a failed study (exit 1).
    pub fn is_input_error(&self) -> bool {
        !matches!(
            self,
            GridCliError::PowerFlow(_) | GridCliError::Write { .. }
        )
    }
}

/// Runs a grid subcommand; `out` is the global `--out`.
pub fn execute(args: &GridArgs, out: Option<&Path>) -> Result<(), GridCliError> {
    match &args.command {
        GridCommand::Solve(a) => solve(a, out),
        GridCommand::Fault(a) => fault(a, out),
    }
}

/// The feeder's network: an OpenDSS file as imported, or a scenario's grid
/// (PV, switch states and load models included) with its profiles at
/// t = 0.
fn load_network(feeder: &Path) -> Result<Network, GridCliError> {
    if feeder
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ron"))
    {
        let scenario = crate::scenario::Scenario::load(feeder)?;
        let setup = crate::world::grid::setup(&scenario)?.ok_or_else(|| {
            GridCliError::Usage(format!(
                "{}: the scenario has no grid section",
                feeder.display()
            ))
        })?;
        let mut model = crate::grid::model::GridModel::new(setup);
        model.advance_to(crate::kernel::SimTime::ZERO)?;
        return Ok(model.network().clone());
    }
    let circuit = DssCircuit::load(feeder)?;
    Ok(Network::from_dss(&circuit)?)
}

/// Reads `load,p_kw,q_kvar` rows, keyed by lower-case load name.
fn read_loads(path: &Path) -> Result<BTreeMap<String, (f64, f64)>, GridCliError> {
    let file = path.display().to_string();
    let err = |line: usize, message: String| GridCliError::Loads {
        file: file.clone(),
        line,
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(0, e.to_string()))?;
    let headers = reader.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let want = ["load", "p_kw", "q_kvar"];
    if headers.iter().map(str::trim).collect::<Vec<_>>() != want {
        return Err(err(
            1,
            format!(
                "expected the header load,p_kw,q_kvar, found {}",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(line, e.to_string()))?;
        let num = |k: usize| -> Result<f64, GridCliError> {
            rec.get(k)
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(line, format!("{} is not a number", want[k])))
        };
        let name = rec.get(0).unwrap_or("").trim().to_ascii_lowercase();
        if out.insert(name.clone(), (num(1)?, num(2)?)).is_some() {
            return Err(err(line, format!("load {name} is given twice")));
        }
    }
    Ok(out)
}

fn solve(a: &SolveArgs, out: Option<&Path>) -> Result<(), GridCliError> {
    let out = out.ok_or_else(|| GridCliError::Usage("grid solve needs --out FILE.csv".into()))?;
    let mut net = load_network(&a.feeder)?;
    if let Some(loads) = &a.loads {
        net.set_constant_pq(&read_loads(loads)?)?;
    }
    let sol = powerflow::solve(&net, Settings::default())?;
    let mut rows = vec![
        ["bus", "phase", "vm_v", "va_deg"]
            .map(str::to_string)
            .to_vec(),
    ];
    for (b, bus) in net.buses.iter().enumerate() {
        for (k, phase) in ["a", "b", "c"].iter().enumerate() {
            let (vm, va) = powerflow::polar_deg(sol.v[b][k]);
            rows.push(vec![
                bus.name.clone(),
                (*phase).to_string(),
                vm.to_string(),
                va.to_string(),
            ]);
        }
    }
    write_csv(out, &rows)
}

/// A CSV body, written atomically to `out`.
fn write_csv(out: &Path, rows: &[Vec<String>]) -> Result<(), GridCliError> {
    let err = |e: String| GridCliError::Write {
        path: out.to_path_buf(),
        source: std::io::Error::other(e),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r).map_err(|e| err(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| err(e.to_string()))?;
    write_atomic(out, &bytes).map_err(|source| GridCliError::Write {
        path: out.to_path_buf(),
        source,
    })
}

fn fault(a: &FaultArgs, out: Option<&Path>) -> Result<(), GridCliError> {
    let out = out.ok_or_else(|| GridCliError::Usage("grid fault needs --out FILE.csv".into()))?;
    if !(a.r_ohm >= 0.0 && a.r_ohm.is_finite()) {
        return Err(GridCliError::Usage(format!(
            "--r-ohm {} must be a resistance ≥ 0",
            a.r_ohm
        )));
    }
    let kind = FaultKind::parse(&a.kind)
        .ok_or_else(|| GridCliError::Usage(format!("unknown fault kind {}", a.kind)))?;
    let mut net = load_network(&a.feeder)?;
    if let Some(loads) = &a.loads {
        net.set_constant_pq(&read_loads(loads)?)?;
    }
    let bus_name = a.bus.to_ascii_lowercase();
    let bus = *net.bus_index.get(&bus_name).ok_or_else(|| {
        GridCliError::Usage(format!("no bus {} in {}", a.bus, a.feeder.display()))
    })?;
    let f = solve_fault(&net, bus, kind, a.r_ohm)?;
    let mag = |v: &[num_complex::Complex64; 3]| v.map(|z| z.norm().to_string());
    let mut rows = vec![
        ["branch", "from_bus", "to_bus", "ia_a", "ib_a", "ic_a"]
            .map(str::to_string)
            .to_vec(),
    ];
    let [ia, ib, ic] = mag(&f.fault_current);
    rows.push(vec!["FAULT".into(), bus_name, "ground".into(), ia, ib, ic]);
    for (br, i) in net.branches.iter().zip(&f.branch_currents) {
        let [ia, ib, ic] = mag(i);
        let name = br.name.split_once('.').map_or(br.name.as_str(), |(_, n)| n);
        rows.push(vec![
            name.to_string(),
            net.buses[br.from].name.clone(),
            net.buses[br.to].name.clone(),
            ia,
            ib,
            ic,
        ]);
    }
    write_csv(out, &rows)
}
