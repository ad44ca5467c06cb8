//! The OpenDSS importer against the IEEE European LV test feeder, checked
//! field by field against the feeder's neutral CSV form in the reference
//! data (written by others, from the same source files).

use std::collections::BTreeMap;

use gridtwin::grid::dss::DssCircuit;

use crate::refdata;

/// Rows of a CSV file as maps from column to text.
fn rows(path: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?}", row[col]))
}

/// Relative closeness, for values printed with 6 significant digits.
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
}

fn feeder() -> (DssCircuit, std::path::PathBuf) {
    let dir = refdata("ieee_eu_lv");
    let c = DssCircuit::load(&dir.join("dss/Master.dss")).expect("the EU LV feeder imports");
    (c, dir)
}

#[test]
fn eu_lv_topology_matches_the_csv_form() {
    let (c, dir) = feeder();
    assert_eq!(c.name, "lvtest");
    assert_eq!(c.base_frequency_hz, 50.0);
    assert_eq!(c.voltage_bases_v, vec![11_000.0, 416.0]);

    // Lines: same order, ends, codes; lengths exact to 1e-9 m.
    let lines = rows(&dir.join("lines.csv"));
    assert_eq!(c.lines.len(), 905);
    assert_eq!(lines.len(), c.lines.len());
    for (l, row) in c.lines.iter().zip(&lines) {
        assert_eq!(l.name, row["line"].to_ascii_lowercase());
        assert_eq!(l.bus1.bus, row["from_bus"]);
        assert_eq!(l.bus2.bus, row["to_bus"]);
        assert_eq!(
            l.linecode.as_deref(),
            Some(row["linecode"].to_ascii_lowercase().as_str())
        );
        let code = &c.linecodes[l.linecode.as_ref().unwrap()];
        let len = l.length_m(Some(code)).expect("metres");
        assert!(
            (len - num(row, "length_m")).abs() < 1e-9,
            "{}: {len}",
            l.name
        );
    }

    // Bus coordinates: every LV bus, exact to the file's 1 mm.
    let buses = rows(&dir.join("buses.csv"));
    let mut lv = 0;
    for row in &buses {
        if row["x"].is_empty() {
            continue;
        }
        lv += 1;
        let (x, y) = c.buscoords[&row["bus"]];
        assert!((x - num(row, "x")).abs() < 1e-6 && (y - num(row, "y")).abs() < 1e-6);
    }
    assert_eq!(lv, 906);
    assert_eq!(c.buscoords.len(), 906);

    // The transformer: 800 kVA, 11/0.416 kV, Dyn, XHL 4 %, R 0.4 % in total.
    let t = &c.transformers[0];
    assert_eq!(
        (
            t.windings[0].bus.bus.as_str(),
            t.windings[1].bus.bus.as_str()
        ),
        ("sourcebus", "1")
    );
    assert_eq!(t.windings[0].v_rated, 11e3);
    assert_eq!(t.windings[1].v_rated, 416.0);
    assert_eq!(t.windings[0].s_rated, 800e3);
    assert_eq!(t.xhl_pct, 4.0);
    assert!((t.windings[0].r_pct + t.windings[1].r_pct - 0.4).abs() < 1e-12);

    // Ignored, each with a warning at its line: the energy meter and the
    // two monitors that the source files leave uncommented.
    let ignored: Vec<String> = c
        .warnings
        .iter()
        .map(|w| {
            format!(
                "{}:{} {}",
                w.at.file.rsplit('/').next().unwrap(),
                w.at.line,
                w.message
            )
        })
        .collect();
    assert_eq!(ignored.len(), 3, "{ignored:?}");
    assert!(ignored[0].starts_with("Monitors.txt:1116 ignored monitor.line558_vi_vs_time"));
    assert!(ignored[1].starts_with("Monitors.txt:1650 ignored monitor.line825_vi_vs_time"));
    assert!(ignored[2].starts_with("Master.dss:16 ignored energymeter.m1"));
}

#[test]
fn eu_lv_linecodes_give_the_published_phase_frame_impedances() {
    let (c, dir) = feeder();
    let codes = rows(&dir.join("linecodes.csv"));
    assert_eq!(codes.len(), c.linecodes.len());
    for row in &codes {
        let code = &c.linecodes[&row["linecode"].to_ascii_lowercase()];
        let (z1, z0) = code.sequence.expect("sequence form");
        assert_eq!(
            [z1.re, z1.im, z0.re, z0.im],
            [
                num(row, "r1_ohm_per_km"),
                num(row, "x1_ohm_per_km"),
                num(row, "r0_ohm_per_km"),
                num(row, "x0_ohm_per_km")
            ]
        );
        // Kron-reduced phase frame [Ω/km]; the CSV prints 6 significant
        // digits, so agree to 1e-5 relative.
        let z = code.z_per_m(1.0);
        let km = |v: f64| v * 1e3;
        assert!(
            close(km(z[0].re), num(row, "rs_ohm_per_km"), 1e-5),
            "{}",
            row["linecode"]
        );
        assert!(
            close(km(z[0].im), num(row, "xs_ohm_per_km"), 1e-5),
            "{}",
            row["linecode"]
        );
        assert!(
            close(km(z[1].re), num(row, "rm_ohm_per_km"), 1e-5),
            "{}",
            row["linecode"]
        );
        assert!(
            close(km(z[1].im), num(row, "xm_ohm_per_km"), 1e-5),
            "{}",
            row["linecode"]
        );
    }
}

#[test]
fn eu_lv_loads_and_shapes_give_the_reference_demand() {
    let (c, dir) = feeder();
    let loads = rows(&dir.join("loads.csv"));
    let profiles = rows(&dir.join("load_profiles.csv"));
    assert_eq!(c.loads.len(), 55);
    assert_eq!(profiles.len(), 1440);
    for (l, row) in c.loads.iter().zip(&loads) {
        assert_eq!(l.name, row["load"].to_ascii_lowercase());
        assert_eq!(l.bus.bus, row["bus"]);
        let phase = ["a", "b", "c"][usize::from(l.bus.nodes[0]) - 1];
        assert_eq!(phase, row["phase"], "{}", l.name);
        assert_eq!(l.phases, 1);
        assert!((l.v_rated - num(row, "kv_ln") * 1e3).abs() < 1e-9);
        assert!((l.p_w - num(row, "kw_nom") * 1e3).abs() < 1e-9);
        assert_eq!(l.pf, num(row, "pf"));

        let shape_name = row["loadshape"].to_ascii_lowercase();
        assert_eq!(l.yearly.as_deref(), Some(shape_name.as_str()));
        let shape = &c.loadshapes[&shape_name];
        assert!(!shape.use_actual, "batchedit useactual=no");
        assert_eq!(shape.interval_s, 60.0);
        assert_eq!(shape.mult.len(), 1440);
        // Every minute of the shape equals the CSV's profile.
        for (m, prow) in profiles.iter().enumerate() {
            assert_eq!(
                shape.mult[m],
                num(prow, &row["loadshape"]),
                "{shape_name} minute {}",
                m + 1
            );
        }
        // Demand at minutes 1, 566 and 1440: P = kW·mult exactly (the CSV
        // prints it exactly), Q = P·tan(acos pf) to the CSV's 6 digits.
        for minute in [1u32, 566, 1440] {
            let mult = shape.at(f64::from(minute) * 60.0).unwrap();
            let p_kw = l.p_w / 1e3 * mult;
            let q_kvar = l.q_nominal_var() / 1e3 * mult;
            assert!(
                (p_kw - num(row, &format!("p_kw_m{minute}"))).abs() < 1e-12,
                "{} m{minute}",
                l.name
            );
            assert!(
                close(q_kvar, num(row, &format!("q_kvar_m{minute}")), 1e-5),
                "{} m{minute}",
                l.name
            );
        }
    }
}

#[test]
fn eu_lv_source_is_the_readme_thevenin_equivalent() {
    let (c, _) = feeder();
    let (z1, _) = c.source.z1_z0_ohm();
    // 11 kV, ISC3 = 3000 A, X/R = 4: Z1 = 0.51344 + j2.05374 Ω (5 digits).
    assert!((z1.re - 0.51344).abs() < 5e-6, "{z1}");
    assert!((z1.im - 2.05374).abs() < 5e-6, "{z1}");
    assert_eq!(c.source.pu, 1.05);
    assert_eq!(c.source.bus.bus, "sourcebus");
}
