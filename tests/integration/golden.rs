//! Golden summaries: shipped scenarios at their default seed must reproduce
//! `results/golden/<name>.summary.json` byte for byte. A deliberate change is
//! accepted with `GRIDTWIN_BLESS=1 cargo test` and committed with its reason.

use crate::{at, gridtwin, refdata, stderr};

fn check_golden(scenario: &str, name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join(name);
    let o = gridtwin(&["run", scenario, "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fresh = std::fs::read_to_string(out.join("summary.json")).unwrap();
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
}

#[test]
fn minimal_matches_its_golden_summary() {
    check_golden("scenarios/minimal.ron", "minimal");
}

/// The default study runs the public EU LV feeder from the reference data.
#[test]
fn default_matches_its_golden_summary() {
    if refdata("ieee_eu_lv").is_none() {
        return;
    }
    check_golden("scenarios/default.ron", "default");
}
