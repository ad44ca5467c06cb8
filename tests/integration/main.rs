//! gridtwin's integration tests: one binary, one module per area.
//!
//! Tests drive the real `gridtwin` binary on the small scenarios in
//! `scenarios/tests/`, and the library on generated input.

mod cli;
mod data;
mod flisr;
mod flisr_campaign;
mod gateway;
mod golden;
mod grid_districts;
mod grid_dss;
mod grid_fault;
mod grid_pandapower;
mod grid_pf;
mod grid_series;
mod hil_qemu;
mod hil_run;
mod ledger;
mod loader_props;
mod mesh_phy;
mod mqtt_bridge;
mod outages;
mod report;
mod scenarios;
mod sweep;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A path relative to the workspace root.
pub fn at(rel: &str) -> PathBuf {
    root().join(rel)
}

/// Runs the `gridtwin` binary with `args`, in the workspace root.
pub fn gridtwin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gridtwin"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the gridtwin binary starts")
}

/// A number from a summary (integer or real).
pub fn num(s: &gridtwin::metrics::Summary, key: &str) -> f64 {
    match s.get(key) {
        Some(gridtwin::metrics::Value::F64(Some(x))) => *x,
        Some(gridtwin::metrics::Value::U64(x)) => *x as f64,
        other => panic!("{key}: {other:?}"),
    }
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A data set of the repository: `data/<name>`. The project reads nothing
/// outside the repository, so a missing set fails the test, naming it.
pub fn refdata(name: &str) -> PathBuf {
    let dir = root().join("data").join(name);
    assert!(
        dir.is_dir(),
        "data set {} is missing from the repository",
        dir.display()
    );
    dir
}

/// `loads_m566.csv` of the EU LV feeder: (p_kw, q_kvar) by lower-case name.
pub fn m566_loads(dir: &Path) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut r = csv::Reader::from_path(dir.join("loads_m566.csv")).unwrap();
    r.records()
        .map(|r| {
            let r = r.unwrap();
            let num = |i: usize| r[i].parse::<f64>().unwrap();
            (r[0].to_ascii_lowercase(), (num(1), num(2)))
        })
        .collect()
}
