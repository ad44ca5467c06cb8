//! The command-line contract: `run` and `check`, global flags, outputs.

use crate::{at, gridtwin, stderr};

fn read(dir: &std::path::Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn run_minimal_writes_summary_and_is_byte_identical_across_runs_and_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let scenario = at("scenarios/minimal.ron");
    let s = scenario.to_str().unwrap();
    let o = gridtwin(&[
        "run",
        s,
        "--out",
        a.to_str().unwrap(),
        "--threads",
        "1",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gridtwin(&[
        "--threads",
        "2",
        "run",
        s,
        "--out",
        b.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["summary.json", "timeseries.csv", "scenario.resolved.ron"] {
        assert_eq!(read(&a, f), read(&b, f), "{f} differs between runs");
    }
    let summary: serde_json::Value = serde_json::from_slice(&read(&a, "summary.json")).unwrap();
    assert_eq!(summary["sim.seed"], 1);
    assert_eq!(summary["sim.duration_s"], 3600.0);
    // One sample a minute from 0 to 60 min inclusive.
    assert_eq!(summary["kernel.events"], 61);
    let timing: serde_json::Value = serde_json::from_slice(&read(&a, "timing.json")).unwrap();
    assert!(timing["kernel.wall_s"].as_f64().unwrap() >= 0.0);
    assert!(timing.get("kernel.events_per_s").is_some());
    assert!(
        summary.get("kernel.wall_s").is_none(),
        "wall time leaked into summary.json"
    );
}

#[test]
fn seed_flag_overrides_and_is_recorded_in_the_resolved_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let o = gridtwin(&[
        "run",
        at("scenarios/minimal.ron").to_str().unwrap(),
        "--seed",
        "4242",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&read(&out, "summary.json")).unwrap();
    assert_eq!(summary["sim.seed"], 4242);
    let resolved = String::from_utf8(read(&out, "scenario.resolved.ron")).unwrap();
    assert!(resolved.contains("seed: 4242"), "{resolved}");

    // The results folder alone reproduces the run.
    let again = tmp.path().join("again");
    let o = gridtwin(&[
        "run",
        out.join("scenario.resolved.ron").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out, "summary.json"), read(&again, "summary.json"));
    assert_eq!(read(&out, "timeseries.csv"), read(&again, "timeseries.csv"));
}

#[test]
fn traced_run_writes_events_csv_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("short");
    let o = gridtwin(&[
        "run",
        at("scenarios/tests/short.ron").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let events = String::from_utf8(read(&out, "events.csv")).unwrap();
    let mut lines = events.lines();
    assert_eq!(lines.next(), Some("t_ns,seq,event"));
    let times: Vec<u64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 11);
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    // No temporary files are left behind by the atomic writes.
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(".tmp"), "left over: {name}");
    }
}

#[test]
fn check_accepts_every_shipped_scenario() {
    for entry in std::fs::read_dir(at("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ron") {
            let o = gridtwin(&["check", path.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
            let stdout = String::from_utf8_lossy(&o.stdout);
            assert!(stdout.contains(": ok"), "{stdout}");
        }
    }
}

#[test]
fn missing_file_is_a_clear_error_with_exit_code_2() {
    let o = gridtwin(&["check", "scenarios/does-not-exist.ron"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read scenario scenarios/does-not-exist.ron"));
}

#[test]
fn help_documents_every_subcommand_and_global_flag() {
    let o = gridtwin(&["--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for word in ["run", "check", "--seed", "--out", "--threads", "--quiet"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let o = gridtwin(&["run", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for word in [
        "summary.json",
        "timing.json",
        "scenario.resolved.ron",
        "--seed",
    ] {
        assert!(help.contains(word), "run --help lacks {word}:\n{help}");
    }
}
