//! A town of districts (`grid.districts`): copies of the village feeder
//! under one source made as many times as strong. With every load at its
//! nominal power, each district is electrically the village alone, so its
//! voltages must be the village's, and the town's energy the village's
//! times the count.

use gridtwin::grid::powerflow::{Settings, solve};
use gridtwin::scenario::Scenario;
use gridtwin::world;

use crate::{at, num};

fn scenario(extra: &str) -> Scenario {
    let src = format!(
        "(duration: \"1h\", grid: (feeder: Dss(\"village/Master.dss\"), profiles: Flat, loads: ConstantPq{extra}))"
    );
    Scenario::from_source("t.ron", &src, &at("scenarios"), "t").unwrap()
}

/// Every bus of every district has the voltages of the same bus in the
/// village alone, to 1e-9 pu (the solver converges to 1e-10 pu), and the
/// source bus too: the strengthened source drops the same voltage under
/// `count` times the current.
#[test]
fn each_district_of_a_town_of_flat_loads_is_the_village_alone() {
    let one = world::grid::setup(&scenario("")).unwrap().unwrap();
    let town = world::grid::setup(&scenario(", districts: (count: 4, columns: 3)"))
        .unwrap()
        .unwrap();
    assert_eq!(town.net.loads.len(), 4 * one.net.loads.len());
    assert_eq!(town.net.buses.len(), 4 * (one.net.buses.len() - 1) + 1);
    let settings = Settings::default();
    let (a, b) = (
        solve(&one.net, settings).unwrap(),
        solve(&town.net, settings).unwrap(),
    );
    let base = |net: &gridtwin::grid::network::Network, i: usize| net.buses[i].v_base_ln;
    let src = one.net.source.bus;
    for (i, bus) in one.net.buses.iter().enumerate() {
        for k in 0..4 {
            let name = if i == src {
                bus.name.clone()
            } else {
                format!("d{k:03}_{}", bus.name)
            };
            let j = town.net.bus_index[&name];
            for p in 0..3 {
                let d = (a.v[i][p] - b.v[j][p]).norm() / base(&one.net, i);
                assert!(d < 1e-9, "{name} phase {p}: {d} pu apart");
            }
        }
    }
    // Placed on a 3-wide grid 2 km apart: district 3 starts a second row.
    let xy = |net: &gridtwin::grid::network::Network, name: &str| {
        net.buses[net.bus_index[name]].xy.unwrap()
    };
    let some = one
        .net
        .buses
        .iter()
        .find(|b| b.xy.is_some() && b.name != one.net.buses[src].name)
        .unwrap();
    let (x0, y0) = some.xy.unwrap();
    let (x3, y3) = xy(&town.net, &format!("d003_{}", some.name));
    assert!((x3 - x0).abs() < 1e-9 && (y3 - y0 - 2000.0).abs() < 1e-9);
    let (x2, _) = xy(&town.net, &format!("d002_{}", some.name));
    assert!((x2 - x0 - 4000.0).abs() < 1e-9);
}

/// Over a run the town draws the village's energy times the count, and
/// has its voltage extremes. Tolerances: 1e-9 relative on energies and
/// 1e-9 pu on voltages (the solver converges to 1e-10 pu); 1e-6 relative
/// on losses, which are a small difference of two large flows.
#[test]
fn a_town_run_sums_its_districts() {
    let one = world::run(&scenario(""), 1, &mut ()).unwrap().summary;
    let town = world::run(&scenario(", districts: (count: 3)"), 1, &mut ())
        .unwrap()
        .summary;
    for (key, tol) in [
        ("grid.energy_in_kwh", 1e-9),
        ("grid.energy_load_kwh", 1e-9),
        ("grid.losses_kwh", 1e-6),
    ] {
        let (a, b) = (num(&one, key), num(&town, key));
        assert!((b - 3.0 * a).abs() <= tol * b, "{key}: {a} × 3 ≠ {b}");
    }
    for key in ["grid.v_min_pu", "grid.v_max_pu"] {
        assert!((num(&one, key) - num(&town, key)).abs() < 1e-9, "{key}");
    }
}

/// Mistakes in `districts` name the field.
#[test]
fn bad_districts_are_refused_with_their_field() {
    for (extra, field) in [
        (", districts: (count: 0)", "grid.districts.count"),
        (
            ", districts: (count: 2, columns: 0)",
            "grid.districts.columns",
        ),
        (
            ", districts: (count: 2, spacing_m: -1.0)",
            "grid.districts.spacing_m",
        ),
    ] {
        let src = format!(
            "(duration: \"1h\", grid: (feeder: Dss(\"village/Master.dss\"), profiles: Flat{extra}))"
        );
        let e = Scenario::from_source("t.ron", &src, &at("scenarios"), "t").unwrap_err();
        assert!(e.to_string().contains(field), "{extra}: {e}");
    }
    let e = Scenario::from_source(
        "t.ron",
        "(duration: \"1h\", grid: (feeder: Synthetic(buses: 30, seed: 1), districts: (count: 2)))",
        &at("scenarios"),
        "t",
    )
    .unwrap_err();
    assert!(e.to_string().contains("OpenDSS"), "{e}");
}
