//! The command line: raw flags (clap) → validated settings → library calls.
//!
//! `main.rs` only parses and maps the outcome to an exit code; everything
//! else is here. Exit codes: `0` success, `1` a run failed, `2` bad input
//! (an invalid scenario, or a usage error reported by clap).

pub mod grid;
mod progress;
pub mod radio;

use std::io::IsTerminal;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::report::{RunFiles, write_run};
use crate::scenario::{Scenario, ScenarioError};
use crate::world;

/// gridtwin: a deterministic discrete-event simulator and digital twin of a
/// low-voltage electricity system: the grid, the LMUs on its poles, their
/// radio mesh, the gateway to the cloud and the kWh ledger.
///
/// The same scenario and seed always give byte-identical results
/// (summary.json, CSVs), whatever the thread count.
#[derive(Debug, Parser)]
#[command(
    name = "gridtwin",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Flags every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes, before or after its name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Seed for every random stream, overriding the scenario's `seed`.
    #[arg(long, global = true, value_name = "N")]
    pub seed: Option<u64>,
    /// Directory for the results [default: results/<scenario name>/].
    #[arg(long, global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Worker threads [default: all cores]. Results never depend on it.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
    /// Silence progress output (never errors).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write its results.
    ///
    /// Writes DIR/summary.json (headline metrics, units in the key names),
    /// DIR/timing.json (wall-clock figures, kept apart so that summary.json
    /// is reproducible byte for byte), DIR/timeseries.csv, DIR/events.csv
    /// when the scenario traces events, and DIR/scenario.resolved.ron (the
    /// scenario with every default filled in and the seed used, so the
    /// folder alone reproduces the run). Every file is written atomically.
    ///
    /// With --mqtt, every event message the simulated gateway publishes
    /// also goes to a real broker, and commands published to it are
    /// injected into the run (and recorded in DIR/bridge_commands.csv for
    /// --replay-commands).
    Run(RunArgs),
    /// Validate a scenario without running it.
    ///
    /// On a mistake, prints file:line:col, the field at fault, the line
    /// with a caret, and (for a misspelt field) the valid names; exits 2.
    Check(ScenarioArg),
    /// Grid studies on a feeder file: `grid solve`.
    Grid(grid::GridArgs),
    /// Radio model inspection: `radio curve`.
    Radio(radio::RadioArgs),
    /// Seeded replications of a scenario over a grid of parameters, on
    /// every core, with 95 % confidence intervals.
    ///
    /// Replication i runs with a seed derived from (the scenario's seed,
    /// i), the same in every combination (common random numbers). Writes
    /// DIR/runs/NNNNNN.json per finished run (atomically: an interrupted
    /// sweep resumes, re-running only the missing runs), DIR/runs.csv (one
    /// row per run, every numeric headline metric) and DIR/summary.csv
    /// (per combination and metric: n, mean, sample standard deviation
    /// and the Student-t 95 % interval of the mean). Both CSVs are
    /// byte-identical for any --jobs, and for shards merged with `merge`.
    Sweep(SweepArgs),
    /// Merge the folders of a sharded sweep (`sweep --shard I/N`) into one,
    /// byte-identical to the same sweep run unsharded.
    Merge(MergeArgs),
    /// Run a scenario with LMUs on boards in the loop: real nRF52840s over
    /// a serial port, or emulated Cortex-M4s under QEMU.
    ///
    /// Each board-driven LMU is fed its inputs over the wire, in lock-step
    /// with simulated time, and its outputs are carried out. An in-process
    /// twin runs in its shadow on the same inputs; every step on which the
    /// two differ, bit for bit, is written with its input to
    /// DIR/hil_divergences.csv. Writes the same files as `run`, with
    /// hil.* metrics in summary.json and the round trips in timing.json.
    Hil(HilArgs),
}

/// `hil`'s arguments.
#[derive(Debug, Args)]
pub struct HilArgs {
    /// The scenario.
    #[command(flatten)]
    pub scenario: ScenarioArg,
    /// A board: serial:PATH[@BAUD] (default 1000000 baud), tcp:HOST:PORT,
    /// unix:PATH, qemu (an emulated board per LMU, its UART on a Unix
    /// socket), qemu:pty (on a pseudo-terminal, through the serial port
    /// code as a real board) or qemu:tcp (on a TCP socket). One per --lmu,
    /// in the same order, or one qemu spec for all.
    #[arg(long, value_name = "SPEC", required = true)]
    pub board: Vec<crate::hil::BoardSpec>,
    /// An LMU (mesh node index, as in lmus.csv) to run on a board
    /// [default: 1].
    #[arg(long, value_name = "ID")]
    pub lmu: Vec<u32>,
    /// The emulated board's firmware image [default:
    /// hardware/qemu-m4/target/thumbv7em-none-eabihf/release/gridtwin-qemu-m4].
    #[arg(long, value_name = "PATH")]
    pub firmware: Option<PathBuf>,
    /// When a board is reset mid-run: fail the run, or boot its LMU again
    /// (board and shadow, next boot epoch) and go on, recording the reset
    /// in DIR/hil_resets.csv.
    #[arg(long, value_enum, default_value_t = crate::hil::OnReset::Fail)]
    pub on_reset: crate::hil::OnReset,
    /// How long to wait for each answer from a board [ms].
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// How many times a request is sent again after a timeout.
    #[arg(long, value_name = "N", default_value_t = crate::hil::rig::DEFAULT_RETRIES)]
    pub retries: u32,
}

/// `sweep`'s arguments.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The scenario.
    #[command(flatten)]
    pub scenario: ScenarioArg,
    /// Replications per combination.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub replications: u32,
    /// A parameter to vary: a dotted path into the scenario and its values
    /// (RON), e.g. `mesh.report_interval=1min,5min`,
    /// `ledger.validators=4,7,10` or, into a list,
    /// `faults[1].Short.bus=f1p7,f2p37`. Repeats form the Cartesian
    /// product.
    #[arg(long, value_name = "PATH=V1,V2,...")]
    pub vary: Vec<crate::sweep::Vary>,
    /// A fault campaign: in each replication, replace the scenario's faults
    /// by one short circuit drawn from the replication's own stream (a bus
    /// or a point along a line below a feeder-head breaker, 06:00 to
    /// 22:00, any kind, 0 to 0.5 Ω), the run starting 8 min before it and
    /// ending 90 s after it. `runs.csv` names each in a `fault` column.
    #[arg(long)]
    pub draw_faults: bool,
    /// Runs at once [default: --threads, else all cores]. Results never
    /// depend on it.
    #[arg(long, value_name = "J")]
    pub jobs: Option<NonZeroUsize>,
    /// Run only the I-th of N contiguous slices of the runs (I from 0),
    /// for one task of an array job; merge the folders with `merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::sweep::Shard>,
}

/// `merge`'s arguments.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard folders.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
}

/// `run`'s arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario.
    #[command(flatten)]
    pub scenario: ScenarioArg,
    /// Bridge to a real MQTT broker: mqtt://USER:PASS@HOST:PORT (mqtts://
    /// with the `tls` feature). Topics gridtwin/<site>/<gateway>/events and
    /// .../cmd/<lmu>.
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// Carry on without the bridge when the broker refuses or cannot be
    /// reached at the start (a warning instead of an error).
    #[arg(long, requires = "mqtt")]
    pub mqtt_optional: bool,
    /// How long the broker may stay away during the run, in wall-clock
    /// time, before the run fails (writing what it has): e.g. 300s, 5min.
    /// Meanwhile the bridge reconnects with back-off and buffers.
    #[arg(long, value_name = "DURATION", default_value = "5min", requires = "mqtt", value_parser = wall_duration)]
    pub mqtt_outage_limit: std::time::Duration,
    /// The bound of the bridge's store-and-forward buffer, in bytes; when
    /// full, the oldest event messages are dropped and counted
    /// (bridge.messages_dropped).
    #[arg(long, value_name = "BYTES", default_value_t = crate::bridge::DEFAULT_BUFFER_BYTES, requires = "mqtt")]
    pub mqtt_buffer_bytes: usize,
    /// Pace the simulation at X times wall-clock (e.g. 1 for real time,
    /// 60 for a minute per second).
    #[arg(long, value_name = "X", value_parser = positive_f64)]
    pub realtime: Option<f64>,
    /// Replay the commands of a bridged run (its bridge_commands.csv) at
    /// the same simulated instants, reproducing it.
    #[arg(long, value_name = "FILE", conflicts_with = "mqtt")]
    pub replay_commands: Option<PathBuf>,
}

/// A wall-clock duration in the scenarios' form (`300s`, `5min`).
fn wall_duration(s: &str) -> Result<std::time::Duration, String> {
    let d: crate::kernel::SimDuration = s.parse().map_err(|e| format!("{e}"))?;
    Ok(std::time::Duration::from_nanos(d.as_nanos()))
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// A scenario file argument.
#[derive(Debug, Args)]
pub struct ScenarioArg {
    /// The scenario file (RON). Paths inside it are relative to it.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
}

/// A failure, with the exit code it maps to.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum CliError {
    /// The scenario is invalid or unreadable (exit 2).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Scenario(#[from] ScenarioError),
    /// The run failed (exit 1).
    #[error(transparent)]
    World(#[from] world::WorldError),
    /// A grid study failed (exit 2 on bad input, else 1).
    #[error(transparent)]
    Grid(#[from] grid::GridCliError),
    /// A radio inspection failed (exit 2 on bad input, else 1).
    #[error(transparent)]
    Radio(#[from] radio::RadioCliError),
    /// The boards of a HIL run could not be set up (exit 2 for bad flags,
    /// else 1).
    #[error(transparent)]
    Rig(#[from] crate::hil::RigError),
    /// A sweep or a merge failed (exit 2 for a bad --vary, else 1).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sweep(#[from] crate::sweep::SweepError),
    /// The live bridge or a replay failed before the run (exit 1, or 2
    /// for a bad replay file or URL).
    #[error(transparent)]
    Bridge(#[from] crate::bridge::BridgeError),
    /// A model's invariant broke: a bug (exit 1, after the results were
    /// written).
    #[error("{0} (a bug: the results were written; please report it)")]
    Invariant(String),
    /// Writing results failed (exit 1).
    #[error("cannot write results to {}: {source}", dir.display())]
    Write {
        /// The results directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Scenario(_) => 2,
            CliError::Sweep(crate::sweep::SweepError::Vary(_)) => 2,
            CliError::Sweep(crate::sweep::SweepError::Build { source, .. })
                if source.is_input_error() =>
            {
                2
            }
            CliError::Sweep(_) => 1,
            CliError::Rig(crate::hil::RigError::Usage(_)) => 2,
            CliError::Rig(_) => 1,
            CliError::Grid(e) if e.is_input_error() => 2,
            CliError::Grid(_) => 1,
            CliError::Radio(e) if e.is_input_error() => 2,
            CliError::Radio(_) => 1,
            CliError::World(e) if e.is_input_error() => 2,
            CliError::Bridge(
                crate::bridge::BridgeError::Replay { .. } | crate::bridge::BridgeError::Url { .. },
            ) => 2,
            CliError::World(_)
            | CliError::Write { .. }
            | CliError::Bridge(_)
            | CliError::Invariant(_) => 1,
        }
    }
}

/// A world error, with scenario mistakes lifted out so that they render
/// as positioned diagnostics.
fn world_error(e: world::WorldError) -> CliError {
    match e {
        world::WorldError::GridBuild(world::grid::GridBuildError::Scenario(e)) => {
            CliError::Scenario(*e)
        }
        e => CliError::World(e),
    }
}

/// Carries out a parsed command line.
pub fn execute(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Run(args) => run(&cli.global, args),
        Command::Check(arg) => check(&cli.global, &arg.scenario),
        Command::Grid(args) => Ok(grid::execute(args, cli.global.out.as_deref())?),
        Command::Radio(args) => Ok(radio::execute(args, cli.global.out.as_deref())?),
        Command::Sweep(args) => sweep(&cli.global, args),
        Command::Merge(args) => merge(&cli.global, args),
        Command::Hil(args) => hil(&cli.global, args),
    }
}

fn hil(global: &GlobalArgs, args: &HilArgs) -> Result<(), CliError> {
    let scenario = load(global, &args.scenario.scenario)?;
    let opts = crate::hil::RigOptions {
        boards: args.board.clone(),
        lmus: args.lmu.clone(),
        firmware: crate::hil::rig::firmware_image(args.firmware.as_deref()),
        on_reset: args.on_reset,
        timeout: std::time::Duration::from_millis(args.timeout_ms),
        retries: args.retries,
    };
    let mut rig = crate::hil::Rig::connect(&opts)?;
    let result = simulate(global, &scenario, &mut rig);
    // Every board's session ended with the run; the emulated ones exit.
    for (k, code) in rig
        .finish(std::time::Duration::from_secs(5))
        .iter()
        .enumerate()
    {
        if *code != Some(0) && result.is_ok() {
            eprintln!("warning: emulated board {k} exited with {code:?}");
        }
    }
    result
}

fn sweep(global: &GlobalArgs, args: &SweepArgs) -> Result<(), CliError> {
    let scenario = load(global, &args.scenario.scenario)?;
    let plan = crate::sweep::Sweep::new(
        &scenario,
        args.replications as usize,
        args.vary.clone(),
        args.draw_faults,
    )?;
    let jobs = args
        .jobs
        .or(global.threads)
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let dir = global
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(format!("{}_sweep", scenario.name)));
    let range = match args.shard {
        Some(s) => s.range(plan.plan.runs),
        None => 0..plan.plan.runs,
    };
    let show = !global.quiet && std::io::stderr().is_terminal();
    let bar = progress::runs_bar(range.len() as u64, show);
    plan.run(&dir, range, jobs, &|| bar.inc(1))?;
    bar.finish_and_clear();
    if !global.quiet {
        eprintln!("wrote {}", dir.display());
    }
    Ok(())
}

fn merge(global: &GlobalArgs, args: &MergeArgs) -> Result<(), CliError> {
    let Some(out) = global.out.clone() else {
        return Err(CliError::Sweep(crate::sweep::SweepError::Mismatch(
            "merge needs --out DIR for the merged sweep".into(),
        )));
    };
    crate::sweep::merge(&args.dirs, &out)?;
    if !global.quiet {
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn load(global: &GlobalArgs, path: &Path) -> Result<Scenario, CliError> {
    let scenario = Scenario::load(path)?;
    Ok(match global.seed {
        Some(seed) => scenario.with_seed(seed),
        None => scenario,
    })
}

fn check(global: &GlobalArgs, path: &Path) -> Result<(), CliError> {
    let s = load(global, path)?;
    // Names in model sections are checked against what they name (buses
    // of the feeder, nodes of the mesh) by building the world, as a run
    // would, without running it.
    let (w, _) = world::build(&s).map_err(world_error)?;
    for x in w.coverage_warnings() {
        eprintln!("warning: {x}");
    }
    if !global.quiet {
        println!(
            "{}: ok (scenario `{}`, duration {}, seed {})",
            path.display(),
            s.name,
            s.duration,
            s.seed
        );
    }
    Ok(())
}

fn run(global: &GlobalArgs, args: &RunArgs) -> Result<(), CliError> {
    let scenario = load(global, &args.scenario.scenario)?;
    let replay = match &args.replay_commands {
        Some(p) => crate::bridge::read_replay(p)?,
        None => Vec::new(),
    };
    let mut driver = crate::bridge::LiveDriver::new(crate::bridge::BridgeOptions {
        mqtt: args.mqtt.clone(),
        optional: args.mqtt_optional,
        outage_limit: args.mqtt_outage_limit,
        buffer_bytes: args.mqtt_buffer_bytes,
        realtime: args.realtime,
        replay,
    });
    let result = simulate(global, &scenario, &mut driver);
    for w in driver.warnings() {
        eprintln!("warning: {w}");
    }
    result
}

/// Runs `scenario` beside `driver` and writes its results.
fn simulate(
    global: &GlobalArgs,
    scenario: &Scenario,
    driver: &mut dyn world::Driver,
) -> Result<(), CliError> {
    let threads = global
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let dir = global
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(&scenario.name));
    let show = !global.quiet && std::io::stderr().is_terminal();
    let mut bar = progress::SimProgress::new(scenario.duration, show);
    let mut out = world::run_driven(scenario, threads, &mut bar, driver).map_err(world_error)?;
    bar.finish();
    for x in &out.coverage_warnings {
        eprintln!("warning: {x}");
    }
    // A run that failed part-way writes what it had (`sim.partial: true`),
    // then fails with its reason.
    // The scenario as run, its paths relative to where it is written.
    std::fs::create_dir_all(&dir).map_err(|source| CliError::Write {
        dir: dir.clone(),
        source,
    })?;
    let resolved = scenario.to_resolved_ron_in(Some(&dir));
    write_run(
        &dir,
        &RunFiles {
            summary: &out.summary,
            timing: &out.timing,
            series: &out.series,
            trace: out.trace.as_ref(),
            resolved_scenario: &resolved,
            files: &out.files,
        },
    )
    .map_err(|source| CliError::Write {
        dir: dir.clone(),
        source,
    })?;
    if !global.quiet || out.failure.is_some() {
        let partial = if out.failure.is_some() || out.violation.is_some() {
            " (partial results: the run failed)"
        } else {
            ""
        };
        eprintln!("wrote {}{partial}", dir.display());
    }
    if let Some(e) = out.failure.take() {
        return Err(world_error(e));
    }
    if let Some(v) = out.violation {
        return Err(CliError::Invariant(v));
    }
    Ok(())
}
