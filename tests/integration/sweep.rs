//! Sweeps: seeded replications in parallel, byte-identical outputs for any
//! number of jobs and for merged shards, resumption, and clear errors.

use std::path::{Path, PathBuf};

use crate::{gridtwin, stderr};

fn sweep(args: &[&str], out: &Path) {
    let mut a = vec!["sweep"];
    a.extend_from_slice(args);
    a.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    let o = gridtwin(&a);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn read(dir: &Path, f: &str) -> Vec<u8> {
    std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()))
}

/// The village's first three hours (noon's fault left out), four
/// replications of two report intervals: the same bytes with one job or
/// two, and from shards 0/2 and 1/2 merged.
#[test]
fn sweeps_are_byte_identical_for_any_jobs_and_for_merged_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let d = |n: &str| -> PathBuf { tmp.path().join(n) };
    let base = [
        "scenarios/default.ron",
        "--replications",
        "3",
        "--vary",
        "duration=2h",
        "--vary",
        "faults=[]",
        "--vary",
        "mesh.report_interval=1min,5min",
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    }
    sweep(&with(&base, &["--jobs", "1"]), &d("j1"));
    sweep(&with(&base, &["--jobs", "2"]), &d("j2"));
    sweep(&with(&base, &["--shard", "0/2"]), &d("s0"));
    sweep(&with(&base, &["--shard", "1/2"]), &d("s1"));
    let o = gridtwin(&[
        "merge",
        d("s0").to_str().unwrap(),
        d("s1").to_str().unwrap(),
        "--out",
        d("m").to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["runs.csv", "summary.csv"] {
        assert_eq!(read(&d("j1"), f), read(&d("j2"), f), "{f}: jobs 1 vs 2");
        assert_eq!(read(&d("j1"), f), read(&d("m"), f), "{f}: merged shards");
    }
    // Six runs, the replications' seeds the same in both combinations.
    let runs = String::from_utf8(read(&d("j1"), "runs.csv")).unwrap();
    let rows: Vec<Vec<&str>> = runs
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 6);
    for r in 0..3 {
        assert_eq!(rows[r][3], rows[r + 3][3], "seed of replication {r}");
        assert_eq!((rows[r][6], rows[r + 3][6]), ("1min", "5min"));
    }
    assert_ne!(rows[0][3], rows[1][3]);
    // No wall clock in either CSV.
    assert!(!runs.contains("wall"));
    let summary = String::from_utf8(read(&d("j1"), "summary.csv")).unwrap();
    assert!(!summary.contains("wall"));
    // Five times as many reports at 1 min as at 5 min, within a round.
    let mean = |combo: &str| -> f64 {
        let row: Vec<&str> = summary
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|r| r[0] == combo && r[4] == "lmu.reports")
            .unwrap()
            .to_vec();
        row[6].parse().unwrap()
    };
    let ratio = mean("0") / mean("1");
    assert!((4.5..5.5).contains(&ratio), "{ratio}");
    // Key metrics against the one parameter varied over two values, as
    // SVG and PNG, and none against those held at one value.
    let plots: Vec<String> = std::fs::read_dir(d("j1").join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        plots.contains(&"mesh.pdr__mesh.report_interval.svg".to_string()),
        "{plots:?}"
    );
    assert!(plots.contains(&"mesh.pdr__mesh.report_interval.png".to_string()));
    assert!(
        plots.iter().all(|p| p.contains("__mesh.report_interval.")),
        "{plots:?}"
    );
    assert_eq!(
        read(&d("j1"), "plots/mesh.pdr__mesh.report_interval.svg"),
        read(&d("m"), "plots/mesh.pdr__mesh.report_interval.svg")
    );
}

/// A sweep stopped part-way resumes: the runs already written are kept
/// (not run again: their files are untouched) and only the missing ones
/// run; the result is the same as in one go.
#[test]
fn an_interrupted_sweep_resumes_with_only_the_missing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "scenarios/tests/gateway.ron",
        "--replications",
        "4",
        "--jobs",
        "2",
    ];
    let full = tmp.path().join("full");
    sweep(&args, &full);
    let part = tmp.path().join("part");
    sweep(&args, &part);
    // "Interrupt": runs 1 and 3 never finished, nor the CSVs.
    for f in [
        "runs/000001.json",
        "runs/000003.json",
        "runs.csv",
        "summary.csv",
    ] {
        std::fs::remove_file(part.join(f)).unwrap();
    }
    let kept = std::fs::metadata(part.join("runs/000002.json"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    sweep(&args, &part);
    let after = std::fs::metadata(part.join("runs/000002.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(kept, after, "a finished run was run again");
    for f in ["runs.csv", "summary.csv", "runs/000001.json"] {
        assert_eq!(read(&full, f), read(&part, f), "{f}");
    }
    // Another sweep into the same folder is refused.
    let o = gridtwin(&[
        "sweep",
        "scenarios/tests/gateway.ron",
        "--replications",
        "5",
        "--out",
        part.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("holds another sweep"), "{}", stderr(&o));
}

/// A path that leads nowhere, or a value its field cannot take, is a usage
/// error (exit 2) that names it.
#[test]
fn a_bad_vary_names_the_path_or_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let run = |vary: &str| {
        gridtwin(&[
            "sweep",
            "scenarios/tests/gateway.ron",
            "--replications",
            "1",
            "--vary",
            vary,
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
    };
    let o = run("mesh.range_m=500,750");
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("mesh.range_m") || e.contains("range_m"), "{e}");
    let o = run("mesh.report_interval=soon");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("soon"), "{}", stderr(&o));
    let o = run("mesh.nodes.count=2");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// A fault campaign as a sweep: `--draw-faults` gives each replication its
/// own drawn short circuit, the same in every combination, named in
/// `runs.csv`; `--vary` reaches into lists with brackets (here the
/// breakers' reclose sequence, `grid.protection.reclose[1]`). Every run
/// reports its FLISR outcome; the same sweep with one job or two holds the
/// same bytes.
#[test]
fn a_fault_campaign_runs_as_a_sweep_with_a_drawn_fault_per_replication() {
    let tmp = tempfile::tempdir().unwrap();
    let args = |jobs: &'static str| {
        vec![
            "scenarios/tests/village_one_phase_pv.ron",
            "--replications",
            "4",
            "--draw-faults",
            "--vary",
            "grid.protection.reclose[1]=\"15s\",\"30s\"",
            "--jobs",
            jobs,
        ]
    };
    sweep(&args("1"), &tmp.path().join("a"));
    sweep(&args("2"), &tmp.path().join("b"));
    let runs = read(&tmp.path().join("a"), "runs.csv");
    assert_eq!(runs, read(&tmp.path().join("b"), "runs.csv"));
    let text = String::from_utf8(runs).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let head = rows.headers().unwrap().clone();
    let col = |name: &str| {
        head.iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}: {head:?}"))
    };
    let (fault, combo, rep) = (col("fault"), col("combination"), col("replication"));
    let (faults, unsafe_) = (col("flisr.faults"), col("flisr.unsafe_isolations"));
    assert!(
        head.iter().any(|h| h == "grid.protection.reclose[1]"),
        "{head:?}"
    );
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 8);
    let mut by_rep = std::collections::BTreeMap::new();
    for r in &rows {
        assert!(r[fault].starts_with("Short((at: "), "{r:?}");
        assert_eq!(&r[faults], "1");
        assert_eq!(&r[unsafe_], "0");
        let prev = by_rep.insert(
            (r[rep].to_string(), r[combo].to_string()),
            r[fault].to_string(),
        );
        assert!(prev.is_none());
    }
    // The same draw for a replication in both combinations, a new one per
    // replication.
    for k in 0..4 {
        assert_eq!(
            by_rep[&(k.to_string(), "0".into())],
            by_rep[&(k.to_string(), "1".into())]
        );
    }
    let distinct: std::collections::BTreeSet<&String> = by_rep.values().collect();
    assert_eq!(distinct.len(), 4);
}
