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

/// A town of three villages 3 km apart (each is about 1.1 km across), each with its LMUs on its
/// junctions and a coordinator at its transformer: three DODAGs of one
/// mesh, one per coordinator, beyond radio range of one another. Every
/// LMU's tree leads to its own district's coordinator, the reports of
/// every district reach the gateway (delivered at the coordinator they
/// climb to), and a fault in the third district is isolated minimally by
/// its own LMUs, peer to peer, before the breaker recloses.
#[test]
fn a_town_mesh_has_a_tree_per_district_and_isolates_a_fault_in_one() {
    let src = "(duration: \"1h\", seed: 5,
        grid: (feeder: Dss(\"village/Master.dss\"), loads: ConstantPq,
               districts: (count: 3, spacing_m: 3000.0), protection: (pickup_a: 300.0)),
        mesh: (nodes: GridJunctions, propagation: Calibrated, shadowing_sigma_db: 4.0,
               report_interval: \"5min\", dao_interval: \"60s\"),
        gateway: (site: \"town\", id: \"gw0\", aggregation: WaitForAll(deadline: \"60s\"),
                  cloud: (commands: [(at: \"20min\", lmu: 86, action: Report)])),
        faults: [Short((at: \"40min\", bus: \"d002_f2p34\", kind: \"slg-a\", r_ohm: 0.01))])";
    let s = Scenario::from_source("t.ron", src, &at("scenarios"), "t").unwrap();
    let out = world::run(&s, 1, &mut ()).unwrap();
    let sm = &out.summary;
    assert_eq!(num(sm, "mesh.nodes"), 3.0 + 3.0 * 39.0);
    assert_eq!(num(sm, "lmu.count"), 3.0 * 39.0);
    assert!(num(sm, "mesh.pdr") >= 0.99, "{}", num(sm, "mesh.pdr"));
    assert!(num(sm, "gateway.reports_received") >= 0.99 * num(sm, "lmu.reports"));
    assert_eq!(num(sm, "flisr.faults"), 1.0);
    assert_eq!(num(sm, "flisr.minimal_share"), 1.0);
    assert!(num(sm, "flisr.isolate_s_max") < 1.0);

    // Each LMU's parents lead to the coordinator of its own district.
    let csv = out
        .files
        .iter()
        .find(|(n, _)| n == "mesh_nodes.csv")
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
        .unwrap();
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let district = |bus: &str| bus[..4].to_string();
    for r in &rows[3..] {
        let mut x: usize = r[0].parse().unwrap();
        for _ in 0..rows.len() {
            if x < 3 {
                break;
            }
            x = rows[x][4]
                .parse()
                .unwrap_or_else(|_| panic!("{} detached", r[0]));
        }
        assert!(x < 3, "LMU {} has no route", r[0]);
        assert_eq!(district(&rows[x][1]), district(&r[1]), "LMU {}", r[0]);
    }

    // A gateway per coordinator, each aggregating its own district's 39
    // LMUs: every gateway publishes complete rounds of exactly 39 records
    // (one gateway for the town would wait for 117).
    assert_eq!(num(sm, "gateway.count"), 3.0);
    let gw = out
        .series
        .iter()
        .find(|t| t.name() == "gateway")
        .expect("gateway.csv");
    for g in 0..3 {
        let complete = gw
            .rows()
            .filter(|r| r[0] == f64::from(g) && r[3] == 39.0 && r[4] == 0.0)
            .count();
        assert!(complete >= 6, "gateway {g}: {complete} complete rounds");
    }
    assert!(gw.rows().all(|r| r[3] + r[4] <= 39.0 || r[5] == 1.0));
    // A command for an LMU of district 2 goes out through district 2's
    // gateway, and is carried out.
    assert_eq!(district(&rows[86][1]), "d002");
    assert_eq!(num(sm, "gateway.commands_issued"), 1.0);
    assert_eq!(num(sm, "gateway.commands_delivered"), 1.0);
}
