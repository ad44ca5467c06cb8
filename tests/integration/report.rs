//! The run's plot data files and `report.html`: every CSV the report draws
//! from holds what the run did, the report shows a plot of each (SVG
//! inline, PNG beside it), the same seed gives the same bytes, and the page
//! renders in a real browser without console errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::golden::{check_report, png_size};
use crate::{gridtwin, refdata, stderr};

/// Runs `scenario` into `out` with the CLI.
fn run(scenario: &str, out: &Path) {
    let o = gridtwin(&["run", scenario, "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A CSV file's rows as maps from column to cell.
fn rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let head: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            head.iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

fn f(row: &BTreeMap<String, String>, k: &str) -> f64 {
    row[k]
        .parse()
        .unwrap_or_else(|_| panic!("{k} = {:?}", row[k]))
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// The plots a grid-and-mesh run must show.
const GRID_MESH_PLOTS: [&str; 7] = [
    "customers_off",
    "interruption_timeline",
    "latency_cdf",
    "lmu_voltages",
    "mesh_map",
    "voltage_envelope",
    "voltage_profile",
];

/// The EU LV feeder's short study (two faults in 40 minutes): every plot
/// data file holds the run, and the report shows each plot.
#[test]
fn plot_data_files_hold_the_run_and_the_report_shows_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a");
    run("scenarios/tests/ieee_eu_lv_short.ron", &out);
    let s = summary(&out);
    let n = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k}"));

    // The profile: both snapshots, one feeder from the LV board (bus 1) at
    // 0 m, every bus once per snapshot, distances growing away from the
    // board, live voltages near nominal.
    let profile = rows(&out.join("profile.csv"));
    for snap in ["lowest", "highest"] {
        let p: Vec<_> = profile.iter().filter(|r| r["snapshot"] == snap).collect();
        assert_eq!(p[0]["bus"], "1");
        assert_eq!(f(p[0], "distance_m"), 0.0);
        assert_eq!(p[0]["parent"], "");
        // 907 buses less the HV source bus.
        assert_eq!(p.len(), n("grid.buses") as usize - 1, "{snap}");
        let dist: BTreeMap<&str, f64> = p
            .iter()
            .map(|r| (r["bus"].as_str(), f(r, "distance_m")))
            .collect();
        for r in &p[1..] {
            assert!(dist[r["parent"].as_str()] <= f(r, "distance_m"), "{r:?}");
            for ph in ["va_pu", "vb_pu", "vc_pu"] {
                if !r[ph].is_empty() {
                    assert!((0.9..1.1).contains(&f(r, ph)), "{r:?}");
                }
            }
        }
        assert!(p.iter().map(|r| f(r, "distance_m")).fold(0.0, f64::max) > 100.0);
    }

    // The watched LMUs (by default the two nearest the first fault): one
    // row each per 15-minute sample of the 40 minutes.
    let lmu = rows(&out.join("lmu_voltages.csv"));
    assert_eq!(lmu.len(), 3 * 2);
    let watched: Vec<&str> = lmu[..2].iter().map(|r| r["lmu"].as_str()).collect();
    assert_ne!(watched[0], watched[1]);
    for (i, r) in lmu.iter().enumerate() {
        assert_eq!(f(r, "t_s"), (i / 2) as f64 * 900.0);
        assert_eq!(r["lmu"], watched[i % 2]);
    }

    // Breakers: a trip and a reclose for each of the two faults.
    let brk = rows(&out.join("breakers.csv"));
    let ops: Vec<&str> = brk.iter().map(|r| r["op"].as_str()).collect();
    assert_eq!(ops, ["trip", "reclose", "trip", "reclose"]);
    assert_eq!(
        brk.iter().filter(|r| r["op"] == "trip").count() as f64,
        n("grid.breaker_trips")
    );
    assert!((f(&brk[0], "t_s") - 600.1).abs() < 1e-9);

    // Interruptions: as many as the grid counted, sustained ones as the
    // reliability indices do.
    let ints = rows(&out.join("interruptions.csv"));
    assert_eq!(ints.len() as f64, n("grid.customer_interruptions"));
    let momentary = ints.iter().filter(|r| r["sustained"] == "false").count() as f64;
    assert!((momentary / n("reliability.customers") - n("reliability.maifi")).abs() < 1e-9);

    // The mesh: every node with its pole and parent, links with their
    // delivery ratio, a latency per delivered frame.
    let nodes = rows(&out.join("mesh_nodes.csv"));
    assert_eq!(nodes.len() as f64, n("mesh.nodes"));
    assert_eq!(nodes[0]["parent"], "");
    let ids: Vec<&str> = nodes.iter().map(|r| r["node"].as_str()).collect();
    for r in &nodes[1..] {
        assert!(r["parent"].is_empty() || ids.contains(&r["parent"].as_str()));
        assert!(!r["bus"].is_empty());
    }
    let links = rows(&out.join("mesh_links.csv"));
    assert!(!links.is_empty());
    for r in &links {
        let (sent, got) = (f(r, "sent"), f(r, "delivered"));
        assert!(f(r, "a") < f(r, "b") && got <= sent && sent > 0.0);
        assert_eq!(f(r, "pdr"), got / sent);
    }
    let lat = rows(&out.join("latencies.csv"));
    assert_eq!(lat.len() as f64, n("mesh.frames_delivered"));
    assert!(lat.iter().all(|r| f(r, "latency_s") > 0.0));

    // The report shows every plot, each also a PNG.
    let plots = check_report(&out);
    for p in GRID_MESH_PLOTS {
        assert!(plots.iter().any(|x| x == p), "{p} missing from {plots:?}");
    }
    let png = std::fs::read(out.join("plots/voltage_profile.png")).unwrap();
    assert_eq!(png_size(&png), (800, 640));

    // The same seed gives the same bytes, plots included.
    let again = tmp.path().join("b");
    run("scenarios/tests/ieee_eu_lv_short.ron", &again);
    let mut files = vec![PathBuf::from("report.html")];
    for e in std::fs::read_dir(&out).unwrap() {
        let name = PathBuf::from(e.unwrap().file_name());
        if name.extension().is_some_and(|x| x == "csv") {
            files.push(name);
        }
    }
    for p in &plots {
        files.push(PathBuf::from(format!("plots/{p}.svg")));
        files.push(PathBuf::from(format!("plots/{p}.png")));
    }
    for name in files {
        assert!(
            std::fs::read(out.join(&name)).unwrap() == std::fs::read(again.join(&name)).unwrap(),
            "{} differs between two runs of the same seed",
            name.display()
        );
    }
}

/// `outputs.watch_lmus` names the LMUs whose phase voltages every sample
/// records, in the order given.
#[test]
fn watched_lmus_are_the_ones_the_scenario_names() {
    let dir = refdata("ieee_eu_lv");
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("watch.ron");
    std::fs::write(
        &scenario,
        format!(
            "(duration: \"20min\", grid: (feeder: Dss({:?}), profile_step: \"1min\"), \
             mesh: (nodes: GridJunctions), \
             outputs: (sample_interval: \"5min\", watch_lmus: [3, 0, 7]))",
            dir.join("dss/Master.dss")
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    run(scenario.to_str().unwrap(), &out);
    let nodes = rows(&out.join("mesh_nodes.csv"));
    let lmu = rows(&out.join("lmu_voltages.csv"));
    assert_eq!(lmu.len(), 5 * 3);
    for (i, r) in lmu.iter().enumerate() {
        let node = ["3", "0", "7"][i % 3];
        assert_eq!(r["lmu"], node);
        assert_eq!(f(r, "t_s"), (i / 3) as f64 * 300.0);
        let at = nodes.iter().find(|n| n["node"] == node).unwrap();
        assert_eq!(r["bus"], at["bus"]);
        for ph in ["va_pu", "vb_pu", "vc_pu"] {
            assert!((0.95..1.1).contains(&f(r, ph)), "{r:?}");
        }
    }
    // No faults and no protection: no breaker log; no interruption.
    assert!(!out.join("breakers.csv").exists());
    assert_eq!(rows(&out.join("interruptions.csv")).len(), 0);
    let plots = check_report(&out);
    assert!(plots.iter().any(|p| p == "lmu_voltages"));
    assert!(!plots.iter().any(|p| p == "interruption_timeline"));
}

/// The first of the usual names of Chromium on the PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// `report.html` loads in headless Chromium without a console message
/// (an error, a blocked resource) and its DOM holds every plot.
#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    let Some(browser) = chromium() else {
        let msg = "chromium not found (Debian: apt-get install --no-install-recommends chromium)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("notice: skipping: {msg}");
        return;
    };
    let scenario = "scenarios/tests/ieee_eu_lv_short.ron";
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run(scenario, &out);
    let plots = check_report(&out);
    assert!(!plots.is_empty());
    let page = out.join("report.html");
    let o = Command::new("timeout")
        .arg("120")
        .arg(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    let err = stderr(&o);
    assert!(o.status.success(), "chromium failed: {err}");
    let console: Vec<&str> = err.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        dom.matches("<svg ").count(),
        plots.len(),
        "plots in the DOM"
    );
    for p in &plots {
        assert!(
            dom.contains(&format!("id=\"plot-{p}\"")),
            "{p} not in the DOM"
        );
    }
}

/// With `GRIDTWIN_FONT` naming a file that is missing, the run writes its
/// data files, then fails with a message that says so; a run with nothing
/// to plot needs no font; without `GRIDTWIN_FONT` the built-in font draws
/// the plots whatever fonts the machine has.
#[test]
fn a_font_that_cannot_be_read_fails_the_run_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let gridtwin_font = |scenario: &str, out: &Path, font: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gridtwin"));
        c.args(["run", scenario, "--out", out.to_str().unwrap(), "--quiet"])
            .current_dir(crate::root())
            .env("NO_COLOR", "1")
            .env_remove("GRIDTWIN_FONT");
        if let Some(f) = font {
            c.env("GRIDTWIN_FONT", f);
        }
        c.output().unwrap()
    };
    let missing = tmp.path().join("missing.ttf");
    let out = tmp.path().join("ledger");
    let o = gridtwin_font("scenarios/ledger_byzantine.ron", &out, Some(&missing));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no font for the report's plots") && err.contains("missing.ttf"),
        "{err}"
    );
    assert!(out.join("summary.json").is_file() && out.join("blocks.csv").is_file());
    let out = tmp.path().join("minimal");
    let o = gridtwin_font("scenarios/minimal.ron", &out, Some(&missing));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("report.html").is_file());
    let out = tmp.path().join("builtin");
    let o = gridtwin_font("scenarios/ledger_byzantine.ron", &out, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("plots/finality_histogram.png").is_file());
}
