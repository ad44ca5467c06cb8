//! Golden summaries: shipped scenarios at their default seed must reproduce
//! `results/golden/<name>.summary.json` byte for byte, and every other
//! output file (but `timing.json`) its SHA-256 in
//! `results/golden/hashes.txt`. A deliberate change is accepted with
//! `GRIDTWIN_BLESS=1 cargo test` (the summaries) and
//! `results/golden/hashes.sh` (the hashes; CI runs it with `--check`, the
//! city's two hours included), and committed with its reason.

use crate::{at, gridtwin, stderr};

/// Runs `scenario` with the CLI, checks its summary against the golden
/// file, and returns the summary's JSON.
fn check_golden(scenario: &str, name: &str) -> serde_json::Value {
    // Two levels below the checkout, as results/golden/hashes.sh writes
    // them: the resolved scenario's path to data/ is then the same.
    std::fs::create_dir_all(at("target")).unwrap();
    let tmp = tempfile::tempdir_in(at("target")).unwrap();
    let out = tmp.path().join(name);
    let o = gridtwin(&["run", scenario, "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fresh = std::fs::read_to_string(out.join("summary.json")).unwrap();
    check_report(&out);
    check_hashes(&out, name);
    let golden_path = at(&format!("results/golden/{name}.summary.json"));
    if std::env::var_os("GRIDTWIN_BLESS").is_some() {
        std::fs::write(&golden_path, &fresh).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; bless it with GRIDTWIN_BLESS=1",
            golden_path.display()
        )
    });
    assert_eq!(
        fresh, golden,
        "{name}: summary.json differs from its golden file"
    );
    serde_json::from_str(&fresh).unwrap()
}

/// Every output file of study `name` in `out` but `timing.json` has the
/// SHA-256 that `results/golden/hashes.txt` lists for it, and no listed
/// file is missing.
fn check_hashes(out: &std::path::Path, name: &str) {
    use sha2::{Digest, Sha256};
    let list = std::fs::read_to_string(at("results/golden/hashes.txt")).unwrap();
    let golden: std::collections::BTreeMap<&str, &str> = list
        .lines()
        .filter_map(|l| l.split_once("  "))
        .filter_map(|(h, f)| Some((f.strip_prefix(name)?.strip_prefix('/')?, h)))
        .collect();
    assert!(!golden.is_empty(), "hashes.txt lists nothing for {name}");
    let mut fresh = std::collections::BTreeMap::new();
    for dir in [out.to_path_buf(), out.join("plots")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if !p.is_file() || p.file_name().unwrap() == "timing.json" {
                continue;
            }
            let rel = p.strip_prefix(out).unwrap().to_string_lossy().into_owned();
            let sum: String = Sha256::digest(std::fs::read(&p).unwrap())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            fresh.insert(rel, sum);
        }
    }
    let differ: Vec<String> = golden
        .keys()
        .map(|k| k.to_string())
        .chain(fresh.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|f| golden.get(f.as_str()).copied() != fresh.get(f).map(String::as_str))
        .collect();
    assert!(
        differ.is_empty(),
        "{name}: these output files differ from results/golden/hashes.txt \
         (re-bless on purpose with results/golden/hashes.sh): {differ:?}"
    );
}

/// `report.html` is one self-contained page: a complete document that
/// references no external resource (no `src` or `href` attribute, no
/// script, stylesheet link, image or CSS `url(...)`), with every SVG plot
/// of `plots/` inlined in a figure named after it, and each plot also a
/// PNG next to its SVG that decodes to an image of the SVG's size.
/// Returns the plots' names, sorted.
pub fn check_report(out: &std::path::Path) -> Vec<String> {
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    for external in [
        " src=", " href=", "<script", "<link", "<img", "url(", "@import",
    ] {
        assert!(!page.contains(external), "report.html contains {external}");
    }
    let mut names: Vec<String> = std::fs::read_dir(out.join("plots"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter_map(|n| n.strip_suffix(".svg").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert_eq!(page.matches("<svg ").count(), names.len());
    assert_eq!(page.matches("</svg>").count(), names.len());
    for name in &names {
        assert!(
            page.contains(&format!("<figure id=\"plot-{name}\">")),
            "{name} is not in report.html"
        );
        let svg = std::fs::read_to_string(out.join(format!("plots/{name}.svg"))).unwrap();
        let png = std::fs::read(out.join(format!("plots/{name}.png")))
            .unwrap_or_else(|e| panic!("plots/{name}.png: {e}"));
        let (w, h) = png_size(&png);
        assert!(
            svg.contains(&format!("width=\"{w}\" height=\"{h}\"")),
            "{name}: PNG {w}×{h} differs from the SVG"
        );
    }
    // Balanced tags.
    for tag in ["table", "figure", "tr", "pre", "h2", "svg"] {
        assert_eq!(
            page.matches(&format!("<{tag}>")).count() + page.matches(&format!("<{tag} ")).count(),
            page.matches(&format!("</{tag}>")).count(),
            "<{tag}>"
        );
    }
    names
}

/// A PNG's width and height [px], after decoding the whole image.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; r.output_buffer_size().expect("a sane size")];
    let info = r.next_frame(&mut buf).expect("the image decodes");
    assert!(buf.iter().any(|&b| b != 255), "the image is not blank");
    (info.width, info.height)
}

#[test]
fn minimal_matches_its_golden_summary() {
    let _ = check_golden("scenarios/minimal.ron", "minimal");
}

/// The default study: the village (its load profiles are the public EU LV
/// feeder's, from the reference data).
#[test]
fn default_matches_its_golden_summary() {
    let s = check_golden("scenarios/default.ron", "default");
    let n = |k: &str| {
        s[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing or null"))
    };
    // The noon fault is detected at once, its section alone is isolated
    // within 1 s, and the breaker's reclose restores everyone else: only
    // the faulted section's customers stay off.
    assert_eq!(n("flisr.faults"), 1.0);
    assert_eq!(n("flisr.detect_s_max"), 0.0);
    assert!(n("flisr.isolate_s_max") < 1.0);
    assert_eq!(n("flisr.minimal_share"), 1.0);
    assert!(n("flisr.restore_s_max") < 5.0);
    assert!(n("reliability.customers_interrupted") < n("reliability.customers") / 10.0);
    // The village: 39 LMUs, one of which crashed and rebooted.
    assert_eq!(n("pq.lmus_judged"), 39.0);
    assert_eq!(n("lmu.reboots"), 1.0);
    // The 4G outage: no record accepted by the gateway is lost, and none
    // is stored twice. Every one is stored by the end but those of the
    // last round, which still waits at midnight for a late LMU (until its
    // 60 s deadline).
    assert_eq!(n("gateway.cellular_outages"), 1.0);
    assert_eq!(n("gateway.records_dropped"), 0.0);
    assert_eq!(
        n("gateway.records_stored") + n("gateway.records_pending_at_end"),
        n("gateway.reports_received")
    );
    assert!(n("gateway.records_pending_at_end") < n("pq.lmus_judged"));
    assert_eq!(n("gateway.records_duplicate_in_cloud"), 0.0);
    assert_eq!(n("gateway.records_stored"), n("gateway.records_published"));
    // The ledger is sound, with 4 validators.
    assert_eq!(n("ledger.validators"), 4.0);
    assert_eq!(n("ledger.invariant_violations"), 0.0);
    assert_eq!(n("ledger.conflicting_finals"), 0.0);
}

/// The whole twin is deterministic: the default study run with one thread
/// and with two writes the same bytes in every file (summary, every CSV,
/// the plots as SVG and PNG, the report, the resolved scenario), all but
/// `timing.json`, which holds the wall clock.
#[test]
fn the_default_study_is_byte_identical_at_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |threads: &str| {
        let out = tmp.path().join(format!("t{threads}"));
        let o = gridtwin(&[
            "run",
            "scenarios/default.ron",
            "--out",
            out.to_str().unwrap(),
            "--threads",
            threads,
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let (a, b) = (run("1"), run("2"));
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(a.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            } else if r != std::path::Path::new("timing.json") {
                files.push(r);
            }
        }
    }
    files.sort();
    assert!(files.len() > 30, "{files:?}");
    for f in &files {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)));
        assert_eq!(Some(&x), y.as_ref().ok(), "{} differs", f.display());
    }
}

/// The scenario library's studies (the slow ones in their short variants
/// from `scenarios/tests/`): any change in behaviour is a visible diff.
#[test]
fn the_scenario_library_matches_its_golden_summaries() {
    let _ = check_golden("scenarios/ledger_byzantine.ron", "ledger_byzantine");
    let d = check_golden("scenarios/demand_response.ron", "demand_response");
    assert!(d["dr.reduced_kwh"].as_f64().unwrap() > 0.0);
    let e = check_golden("scenarios/tests/ieee_eu_lv_short.ron", "ieee_eu_lv_short");
    assert_eq!(e["flisr.faults"].as_f64(), Some(2.0));
    assert_eq!(e["flisr.minimal_share"].as_f64(), Some(1.0));
    let m = check_golden(
        "scenarios/tests/mesh_degradation_short.ron",
        "mesh_degradation_short",
    );
    assert_eq!(m["gateway.records_dropped"].as_f64(), Some(0.0));
    assert_eq!(m["gateway.records_pending_at_end"].as_f64(), Some(0.0));
    // The gateway outage lost one round's frames (97 LMUs, 5 minutes).
    assert_eq!(m["gateway.outages"].as_f64(), Some(1.0));
    assert!(m["gateway.frames_lost_down"].as_f64().unwrap() > 0.0);
}
