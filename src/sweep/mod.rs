//! Sweeps: seeded replications of a scenario over a grid of parameters,
//! run in parallel, summarised with Student-t confidence intervals.
//!
//! A sweep is a list of runs, numbered from 0 in a fixed order: the
//! combinations of the `--vary` values (the Cartesian product, the first
//! `--vary` varying slowest), and within each, replications 0 to N − 1.
//! Replication `i` runs with the seed [`replication_seed`]`(base, i)` in
//! every combination (common random numbers: the comparisons between
//! combinations are sharper than with independent seeds).
//!
//! Each finished run is written atomically to `DIR/runs/<index>.json`
//! (its headline metrics, no wall-clock figure). A sweep that is stopped
//! and started again skips the runs already there. `DIR/runs.csv` and
//! `DIR/summary.csv` are then assembled from those files alone, in run
//! order, so they are byte-identical whatever the number of jobs, and
//! whether the runs came from one process or from shards merged with
//! [`merge`].
//!
//! With `draw_faults`, each replication's faults are replaced by one short
//! circuit drawn from the replication's own stream ([`crate::campaign`]),
//! the run starting shortly before it: a fault campaign. The draw is the
//! same in every combination (common random numbers again), and
//! `runs.csv` names it in a `fault` column, as a `Short` to paste into a
//! scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::metrics::Value;
use crate::report::write_atomic;
use crate::scenario::{Scenario, VaryError};
use crate::world;

/// One `--vary PATH=V1,V2,…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vary {
    /// Dotted path into the scenario.
    pub path: String,
    /// The values, as written (RON).
    pub values: Vec<String>,
}

impl std::str::FromStr for Vary {
    type Err = String;

    /// `PATH=V1,V2,…` (values are split at commas, so a value cannot hold
    /// one).
    fn from_str(s: &str) -> Result<Vary, String> {
        let (path, values) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: write PATH=V1,V2,…"))?;
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if path.trim().is_empty() || values.iter().any(String::is_empty) {
            return Err(format!("`{s}`: write PATH=V1,V2,… with no empty value"));
        }
        Ok(Vary {
            path: path.trim().to_string(),
            values,
        })
    }
}

/// A slice of a sweep for one array task: `I/N`, I from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which slice.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}`: write I/N with 0 ≤ I < N");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The contiguous range of run indices this shard runs, out of
    /// `total`: shard I of N takes `[I·total/N, (I+1)·total/N)`.
    pub fn range(self, total: usize) -> std::ops::Range<usize> {
        (self.index * total / self.count)..((self.index + 1) * total / self.count)
    }
}

/// The seed of replication `i` of a sweep whose scenario has seed `base`:
/// the first 8 bytes of the kernel's stream seed for it, so replications
/// are independent streams, the same in every combination.
pub fn replication_seed(base: u64, i: usize) -> u64 {
    let s = crate::kernel::rng::stream_seed(base, "sweep", i as u64, "replication");
    u64::from_le_bytes(s[..8].try_into().expect("8 bytes"))
}

/// What a sweep is: stored as `DIR/sweep.json`, so that a resumed sweep or
/// a merge can check that its runs belong together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario's seed (the base of the replications' seeds).
    pub base_seed: u64,
    /// Replications per combination.
    pub replications: usize,
    /// The varied parameters.
    pub vary: Vec<Vary>,
    /// Runs in all.
    pub runs: usize,
    /// Each replication's faults replaced by one drawn short circuit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draw_faults: bool,
}

impl Plan {
    /// Combinations of the varied values, in order: each a list of
    /// (path, value).
    pub fn combinations(&self) -> Vec<Vec<(String, String)>> {
        let mut out = vec![Vec::new()];
        for v in &self.vary {
            out = out
                .into_iter()
                .flat_map(|c| {
                    v.values.iter().map(move |x| {
                        let mut c = c.clone();
                        c.push((v.path.clone(), x.clone()));
                        c
                    })
                })
                .collect();
        }
        out
    }
}

/// One finished run, as `DIR/runs/<index>.json` holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its index in the sweep.
    pub run: usize,
    /// Its combination's index.
    pub combination: usize,
    /// Its replication within the combination.
    pub replication: usize,
    /// Its seed.
    pub seed: u64,
    /// The varied values, in `--vary` order.
    pub params: Vec<String>,
    /// The drawn short circuit, with `draw_faults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Its numeric headline metrics (`null` where undefined).
    pub metrics: BTreeMap<String, Option<f64>>,
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum SweepError {
    /// A varied scenario could not be made.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Vary(#[from] VaryError),
    /// A combination's world could not be built.
    #[error("combination {combination} ({params}): {source}")]
    Build {
        /// Its index.
        combination: usize,
        /// Its values.
        params: String,
        /// The cause.
        source: world::WorldError,
    },
    /// A run failed.
    #[error("run {run} (combination {params}, seed {seed}): {source}")]
    Run {
        /// Its index.
        run: usize,
        /// Its values.
        params: String,
        /// Its seed.
        seed: u64,
        /// The cause.
        source: world::WorldError,
    },
    /// The folder holds another sweep, or shards of different sweeps.
    #[error("{0}")]
    Mismatch(String),
    /// Runs are missing (a merge without every shard).
    #[error(
        "{missing} of {total} runs are missing in {dir} (first: run {first}); merge every shard"
    )]
    Incomplete {
        /// The folder.
        dir: PathBuf,
        /// How many.
        missing: usize,
        /// Of how many.
        total: usize,
        /// The first missing.
        first: usize,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A run file is corrupt.
    #[error("{}: {why}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The sweep to run.
#[derive(Debug)]
pub struct Sweep {
    /// The plan.
    pub plan: Plan,
    /// Each combination's scenario.
    pub scenarios: Vec<Scenario>,
    /// With `draw_faults`: where faults are drawn (buses, lines).
    places: Option<(Vec<String>, Vec<String>)>,
}

impl Sweep {
    /// Plans `replications` runs of each combination of `vary` over
    /// `scenario`, checking that every combination builds.
    pub fn new(
        scenario: &Scenario,
        replications: usize,
        vary: Vec<Vary>,
        draw_faults: bool,
    ) -> Result<Sweep, SweepError> {
        let mut plan = Plan {
            scenario: scenario.name.clone(),
            base_seed: scenario.seed,
            replications,
            vary,
            runs: 0,
            draw_faults,
        };
        let places = if draw_faults {
            let setup = world::grid::setup(scenario)
                .map_err(|e| SweepError::Mismatch(format!("drawing faults: {e}")))?
                .ok_or_else(|| {
                    SweepError::Mismatch("--draw-faults needs a scenario with a grid".into())
                })?;
            Some(crate::campaign::candidates(&setup.net, &setup.breakers))
        } else {
            None
        };
        let combos = plan.combinations();
        plan.runs = combos.len() * replications;
        let mut scenarios = Vec::with_capacity(combos.len());
        for (i, c) in combos.iter().enumerate() {
            let sc = if c.is_empty() {
                scenario.clone()
            } else {
                let label = format!("{} [{}]", scenario.name, params_text(c));
                scenario.varied(&label, c)?
            };
            world::build(&sc).map_err(|source| SweepError::Build {
                combination: i,
                params: params_text(c),
                source,
            })?;
            scenarios.push(sc);
        }
        Ok(Sweep {
            plan,
            scenarios,
            places,
        })
    }

    /// Runs the runs in `range` that `dir` does not hold yet, on `jobs`
    /// threads, calling `done` after each; writes each run's file, then
    /// `runs.csv` and `summary.csv` of every run the folder holds.
    pub fn run(
        &self,
        dir: &Path,
        range: std::ops::Range<usize>,
        jobs: usize,
        done: &(dyn Fn() + Sync),
    ) -> Result<(), SweepError> {
        check_plan(dir, &self.plan)?;
        let combos = self.plan.combinations();
        let todo: Vec<usize> = range.filter(|&i| !run_path(dir, i).is_file()).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build()
            .expect("a thread pool");
        pool.install(|| {
            todo.par_iter().try_for_each(|&i| {
                let r = self.run_one(&combos, i)?;
                let path = run_path(dir, i);
                let json = serde_json::to_vec_pretty(&r).expect("records serialize");
                write_atomic(&path, &json).map_err(io(&path))?;
                done();
                Ok::<(), SweepError>(())
            })
        })?;
        assemble(dir, &self.plan, false)
    }

    fn run_one(&self, combos: &[Vec<(String, String)>], i: usize) -> Result<RunRecord, SweepError> {
        let reps = self.plan.replications.max(1);
        let (combination, replication) = (i / reps, i % reps);
        let seed = replication_seed(self.plan.base_seed, replication);
        let mut sc = self.scenarios[combination].clone().with_seed(seed);
        let mut fault = None;
        if let Some((buses, lines)) = &self.places {
            let settings = crate::campaign::Settings::default();
            let d = crate::campaign::draw(
                self.plan.base_seed,
                replication as u64,
                buses,
                lines,
                &settings,
            );
            let file =
                crate::campaign::scenario(&sc.to_file_in(None), &d, replication as u64, &settings);
            let label = format!("{} [replication {replication}]", sc.name);
            sc = Scenario::from_file(&label, &file, &sc.base_dir, &sc.name)
                .map_err(|e| SweepError::Vary(VaryError::Invalid(Box::new(e))))?
                .with_seed(seed);
            fault = Some(d.describe());
        }
        let out = world::run(&sc, 1, &mut ()).map_err(|source| SweepError::Run {
            run: i,
            params: params_text(&combos[combination]),
            seed,
            source,
        })?;
        let metrics = out
            .summary
            .iter()
            .filter_map(|(k, v)| match v {
                Value::U64(x) => Some((k.to_string(), Some(*x as f64))),
                Value::F64(x) => Some((k.to_string(), *x)),
                Value::Text(_) | Value::Bool(_) => None,
            })
            .collect();
        Ok(RunRecord {
            run: i,
            combination,
            replication,
            seed,
            params: combos[combination].iter().map(|(_, v)| v.clone()).collect(),
            fault,
            metrics,
        })
    }
}

fn params_text(c: &[(String, String)]) -> String {
    if c.is_empty() {
        return "the scenario as written".into();
    }
    c.iter()
        .map(|(p, v)| format!("{p}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_path(dir: &Path, i: usize) -> PathBuf {
    dir.join("runs").join(format!("{i:06}.json"))
}

/// Writes `DIR/sweep.json`, or checks that the one there is `plan`.
fn check_plan(dir: &Path, plan: &Plan) -> Result<(), SweepError> {
    let path = dir.join("sweep.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let there: Plan = serde_json::from_slice(&bytes).map_err(|e| SweepError::Corrupt {
                path: path.clone(),
                why: e.to_string(),
            })?;
            if &there != plan {
                return Err(SweepError::Mismatch(format!(
                    "{} holds another sweep ({} runs of `{}`); use another --out",
                    dir.display(),
                    there.runs,
                    there.scenario
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let json = serde_json::to_vec_pretty(plan).expect("plans serialize");
            write_atomic(&path, &json).map_err(io(&path))
        }
        Err(e) => Err(SweepError::Io { path, source: e }),
    }
}

/// Reads every run file of `dir`.
fn read_runs(dir: &Path) -> Result<BTreeMap<usize, RunRecord>, SweepError> {
    let runs = dir.join("runs");
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(&runs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(SweepError::Io {
                path: runs,
                source: e,
            });
        }
    };
    for e in entries {
        let path = e.map_err(io(&runs))?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let r: RunRecord = serde_json::from_slice(&bytes).map_err(|e| SweepError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        out.insert(r.run, r);
    }
    Ok(out)
}

/// Writes `runs.csv` and `summary.csv` from the run files of `dir`;
/// with `complete`, fails unless every run of the plan is there.
fn assemble(dir: &Path, plan: &Plan, complete: bool) -> Result<(), SweepError> {
    let runs = read_runs(dir)?;
    if complete && runs.len() < plan.runs {
        let first = (0..plan.runs).find(|i| !runs.contains_key(i)).unwrap_or(0);
        return Err(SweepError::Incomplete {
            dir: dir.to_path_buf(),
            missing: plan.runs - runs.len(),
            total: plan.runs,
            first,
        });
    }
    let keys: BTreeSet<&str> = runs
        .values()
        .flat_map(|r| r.metrics.keys().map(String::as_str))
        .collect();
    let io_mem = "writing CSV to memory cannot fail";
    let num = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["run", "combination", "replication", "seed"];
    header.extend(plan.vary.iter().map(|v| v.path.as_str()));
    if plan.draw_faults {
        header.push("fault");
    }
    header.extend(keys.iter().copied());
    w.write_record(&header).expect(io_mem);
    for r in runs.values() {
        let mut row = vec![
            r.run.to_string(),
            r.combination.to_string(),
            r.replication.to_string(),
            r.seed.to_string(),
        ];
        row.extend(r.params.iter().cloned());
        if plan.draw_faults {
            row.push(r.fault.clone().unwrap_or_default());
        }
        row.extend(
            keys.iter()
                .map(|k| num(r.metrics.get(*k).copied().flatten())),
        );
        w.write_record(&row).expect(io_mem);
    }
    let path = dir.join("runs.csv");
    write_atomic(&path, &w.into_inner().expect(io_mem)).map_err(io(&path))?;

    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["combination"];
    header.extend(plan.vary.iter().map(|v| v.path.as_str()));
    header.extend(["metric", "n", "mean", "std", "ci95_low", "ci95_high"]);
    w.write_record(&header).expect(io_mem);
    let mut by_combo: BTreeMap<usize, Vec<&RunRecord>> = BTreeMap::new();
    for r in runs.values() {
        by_combo.entry(r.combination).or_default().push(r);
    }
    for (c, rs) in &by_combo {
        for k in &keys {
            let xs: Vec<f64> = rs
                .iter()
                .filter_map(|r| r.metrics.get(*k).copied().flatten())
                .collect();
            let s = Stats::of(&xs);
            let mut row = vec![c.to_string()];
            row.extend(rs[0].params.iter().cloned());
            row.extend([
                (*k).to_string(),
                xs.len().to_string(),
                num(s.mean),
                num(s.std),
                num(s.ci95.map(|c| c.0)),
                num(s.ci95.map(|c| c.1)),
            ]);
            w.write_record(&row).expect(io_mem);
        }
    }
    let path = dir.join("summary.csv");
    write_atomic(&path, &w.into_inner().expect(io_mem)).map_err(io(&path))?;
    plots(dir, plan, &by_combo)
}

/// Headline metrics drawn against each varied parameter, where the runs
/// have them: (key, axis title).
const KEY_METRICS: [(&str, &str); 8] = [
    ("reliability.saidi_min", "SAIDI [min]"),
    ("reliability.ens_kwh", "energy not supplied [kWh]"),
    ("flisr.isolate_s_max", "time to isolate [s]"),
    (
        "pq.en50160_compliant_share",
        "LMUs meeting EN 50160 [share]",
    ),
    ("mesh.pdr", "mesh packet delivery ratio"),
    (
        "gateway.e2e_latency_p50_s",
        "median LMU-to-cloud latency [s]",
    ),
    ("gateway.rounds_complete_share", "complete rounds [share]"),
    ("ledger.finality_p50_s", "median block finality [s]"),
];

/// `DIR/plots/<metric>__<path>.svg` and `.png`: each key metric's mean
/// with its 95 % interval against each parameter varied over two values
/// or more, one line per combination of the other parameters.
fn plots(
    dir: &Path,
    plan: &Plan,
    by_combo: &BTreeMap<usize, Vec<&RunRecord>>,
) -> Result<(), SweepError> {
    // A parameter held at one value is a setting, not an axis.
    for (p, vary) in plan
        .vary
        .iter()
        .enumerate()
        .filter(|(_, v)| v.values.len() > 1)
    {
        for (key, y_desc) in KEY_METRICS {
            // Series: the other parameters' values → points by value index.
            let mut series: BTreeMap<Vec<String>, Vec<crate::report::html::CiPoint>> =
                BTreeMap::new();
            for rs in by_combo.values() {
                let xs: Vec<f64> = rs
                    .iter()
                    .filter_map(|r| r.metrics.get(key).copied().flatten())
                    .collect();
                let (Some(mean), params) = (Stats::of(&xs).mean, &rs[0].params) else {
                    continue;
                };
                let Some(at) = vary.values.iter().position(|v| Some(v) == params.get(p)) else {
                    continue;
                };
                let others: Vec<String> = params
                    .iter()
                    .enumerate()
                    .filter(|&(q, _)| q != p && plan.vary[q].values.len() > 1)
                    .map(|(q, v)| format!("{}={v}", plan.vary[q].path))
                    .collect();
                series
                    .entry(others)
                    .or_default()
                    .push((at, mean, Stats::of(&xs).ci95));
            }
            if series.is_empty() {
                continue;
            }
            let series: Vec<crate::report::html::CiSeries> = series
                .into_iter()
                .map(|(k, pts)| {
                    let label = if k.is_empty() {
                        format!("mean, 95 % CI ({} replications)", plan.replications)
                    } else {
                        k.join(", ")
                    };
                    (label, pts)
                })
                .collect();
            let name = format!("{key}__{}", vary.path);
            let title = format!("{key} against {}", vary.path);
            let plot = crate::report::html::ci_plot(
                &name,
                &title,
                (&vary.path, &vary.values),
                y_desc,
                &series,
            )
            .map_err(|e| SweepError::Mismatch(e.to_string()))?;
            if let Some(plot) = plot {
                for (ext, bytes) in [("svg", plot.svg.as_bytes()), ("png", plot.png.as_slice())] {
                    let path = dir.join("plots").join(format!("{name}.{ext}"));
                    write_atomic(&path, bytes).map_err(io(&path))?;
                }
            }
        }
    }
    Ok(())
}

/// Sample statistics of one metric over replications.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Mean (none without samples).
    pub mean: Option<f64>,
    /// Sample standard deviation (n − 1; none below two samples).
    pub std: Option<f64>,
    /// 95 % confidence interval of the mean, Student t with n − 1 degrees
    /// of freedom (none below two samples).
    pub ci95: Option<(f64, f64)>,
}

impl Stats {
    /// The statistics of `xs`.
    pub fn of(xs: &[f64]) -> Stats {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let n = xs.len();
        if n == 0 {
            return Stats {
                mean: None,
                std: None,
                ci95: None,
            };
        }
        let mean = xs.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Stats {
                mean: Some(mean),
                std: None,
                ci95: None,
            };
        }
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let std = var.sqrt();
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .expect("n − 1 ≥ 1 degrees of freedom")
            .inverse_cdf(0.975);
        let half = t * std / (n as f64).sqrt();
        Stats {
            mean: Some(mean),
            std: Some(std),
            ci95: Some((mean - half, mean + half)),
        }
    }
}

/// Merges the shard folders `dirs` into `out`: every run file, checked to
/// belong to one sweep, then `runs.csv` and `summary.csv`, byte-identical
/// to those of the same sweep run in one piece. Fails if runs are missing.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(), SweepError> {
    let mut plan: Option<Plan> = None;
    for d in dirs {
        let path = d.join("sweep.json");
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let p: Plan = serde_json::from_slice(&bytes).map_err(|e| SweepError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        match &plan {
            Some(q) if q != &p => {
                return Err(SweepError::Mismatch(format!(
                    "{} holds another sweep than {}",
                    d.display(),
                    dirs[0].display()
                )));
            }
            _ => plan = Some(p),
        }
    }
    let Some(plan) = plan else {
        return Err(SweepError::Mismatch("no shard folder given".into()));
    };
    check_plan(out, &plan)?;
    for d in dirs {
        for (i, r) in read_runs(d)? {
            let path = run_path(out, i);
            let json = serde_json::to_vec_pretty(&r).expect("records serialize");
            match std::fs::read(&path) {
                Ok(there) if there != json => {
                    return Err(SweepError::Mismatch(format!(
                        "run {i} differs between shards ({})",
                        d.display()
                    )));
                }
                Ok(_) => {}
                Err(_) => write_atomic(&path, &json).map_err(io(&path))?,
            }
        }
    }
    assemble(out, &plan, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-worked: 2, 4, 4, 4, 5, 5, 7, 9 has mean 5, sample standard
    /// deviation √(32/7) = 2.138…, and t(0.975, 7) = 2.364624…, so the
    /// interval is 5 ± 2.364624·2.138090/√8 = 5 ± 1.787488.
    #[test]
    fn statistics_match_a_hand_worked_example() {
        let s = Stats::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(s.mean, Some(5.0));
        assert!((s.std.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let (lo, hi) = s.ci95.unwrap();
        assert!((hi - 5.0 - 1.787_488).abs() < 1e-5, "{hi}");
        assert!((5.0 - lo - 1.787_488).abs() < 1e-5, "{lo}");
        assert_eq!(Stats::of(&[3.0]).ci95, None);
        assert_eq!(Stats::of(&[]).mean, None);
    }

    #[test]
    fn shards_partition_the_runs_into_contiguous_ranges() {
        for total in [0usize, 1, 7, 8, 100] {
            for count in 1..=9 {
                let mut next = 0;
                for index in 0..count {
                    let r = Shard { index, count }.range(total);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
        assert!("2/2".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
    }

    #[test]
    fn combinations_are_the_cartesian_product_first_vary_slowest() {
        let plan = Plan {
            scenario: "s".into(),
            base_seed: 1,
            replications: 2,
            vary: vec!["a=1,2".parse().unwrap(), "b=x,y,z".parse().unwrap()],
            runs: 12,
            draw_faults: false,
        };
        let c = plan.combinations();
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[0],
            vec![("a".into(), "1".into()), ("b".into(), "x".into())]
        );
        assert_eq!(
            c[1],
            vec![("a".into(), "1".into()), ("b".into(), "y".into())]
        );
        assert_eq!(
            c[5],
            vec![("a".into(), "2".into()), ("b".into(), "z".into())]
        );
        assert!("a".parse::<Vary>().is_err());
        assert!("a=1,,2".parse::<Vary>().is_err());
    }

    #[test]
    fn replication_seeds_are_distinct_and_reproducible() {
        let s: BTreeSet<u64> = (0..1000).map(|i| replication_seed(7, i)).collect();
        assert_eq!(s.len(), 1000);
        assert_eq!(replication_seed(7, 3), replication_seed(7, 3));
        assert_ne!(replication_seed(7, 3), replication_seed(8, 3));
    }
}
