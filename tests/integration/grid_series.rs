//! The grid as a time-series model inside a run: profiles, switching and
//! faults from the scheduler, re-solves only on change, energised state
//! and customers, and the summary keys.

use gridtwin::kernel::{RunLimits, SimTime};
use gridtwin::metrics::Summary;
use gridtwin::scenario::Scenario;
use gridtwin::world;

use crate::{at, gridtwin, num, refdata, stderr};

fn scenario(src: &str) -> Scenario {
    Scenario::from_source("t.ron", src, &at("scenarios"), "t").unwrap()
}

fn run(src: &str) -> Summary {
    world::run(&scenario(src), 1, &mut ()).unwrap().summary
}

/// A 300-bus synthetic feeder with flat loads.
const FLAT: &str = "grid: (feeder: Synthetic(buses: 300, seed: 4), profiles: Flat)";

#[test]
fn a_grid_with_nothing_changing_is_solved_once() {
    let s = run(&format!("(duration: \"2h\", {FLAT})"));
    assert_eq!(num(&s, "grid.solves"), 1.0);
    assert_eq!(num(&s, "grid.refactorizations"), 1.0);
    // Energy: a constant state held for two hours.
    let e_in = num(&s, "grid.energy_in_kwh");
    let e_load = num(&s, "grid.energy_load_kwh");
    let loss = num(&s, "grid.losses_kwh");
    assert!(e_in > 0.0 && loss > 0.0 && loss < 0.1 * e_in);
    assert!((e_in - e_load - loss).abs() < 1e-9 * e_in);
    let v_min = num(&s, "grid.v_min_pu");
    let v_max = num(&s, "grid.v_max_pu");
    assert!(
        0.9 < v_min && v_min < v_max && v_max < 1.06,
        "{v_min}..{v_max}"
    );
}

/// Opening the switch that feeds bus `b40` interrupts exactly the customers
/// below it, for exactly as long as it stays open.
#[test]
fn switching_interrupts_the_customers_downstream_for_as_long_as_it_is_open() {
    let src = |extra: &str| {
        format!(
            "(duration: \"3h\", grid: (feeder: Synthetic(buses: 300, seed: 4), profiles: Flat,
              switches: [(line: \"line.l40\")],
              switching: [{extra}]))"
        )
    };
    let base = run(&src(""));
    assert_eq!(num(&base, "grid.customer_interruptions"), 0.0);
    let s = run(&src(
        "(at: \"1h\", line: \"line.l40\", action: Open), (at: \"1h30min\", line: \"line.l40\", action: Close)",
    ));
    let off = num(&s, "grid.customer_interruptions");
    assert!(off >= 1.0, "no customer below line.l40?");
    // Each interrupted customer was off for 30 minutes.
    assert!((num(&s, "grid.customer_minutes_interrupted") - 30.0 * off).abs() < 1e-9);
    assert_eq!(num(&s, "grid.switch_operations"), 2.0);
    assert_eq!(num(&s, "grid.solves"), 3.0);
    assert_eq!(num(&s, "grid.refactorizations"), 3.0);
    // Less energy flows while part of the feeder is off.
    assert!(num(&s, "grid.energy_load_kwh") < num(&base, "grid.energy_load_kwh"));

    // The same count of customers sits below bus 40 in the network.
    let sc = scenario(&src(""));
    let (w, _) = world::build(&sc).unwrap();
    let g = w.grid().unwrap();
    let net = g.network();
    let mut parent = vec![usize::MAX; net.buses.len()];
    for b in &net.branches {
        parent[b.to] = b.from;
    }
    let below = |mut b: usize| loop {
        if b == net.bus_index["b40"] {
            return true;
        }
        if parent[b] == usize::MAX {
            return false;
        }
        b = parent[b];
    };
    let expected = g.customers().iter().filter(|c| below(c.bus)).count();
    assert_eq!(off, expected as f64);
}

#[test]
fn a_temporary_fault_dips_the_voltage_then_the_grid_recovers() {
    let s = run(&format!(
        "(duration: \"1h\", {FLAT}, faults: [Short((at: \"10min\", bus: \"b120\", kind: \"3ph\", duration: \"200ms\"))])"
    ));
    let base = run(&format!("(duration: \"1h\", {FLAT})"));
    assert_eq!(num(&s, "grid.faults_applied"), 1.0);
    // Initial state, fault on, fault cleared.
    assert_eq!(num(&s, "grid.solves"), 3.0);
    // A bolted three-phase fault collapses the voltage at the fault.
    assert!(
        num(&s, "grid.v_min_pu") < 0.01,
        "{}",
        num(&s, "grid.v_min_pu")
    );
    // 200 ms of fault barely changes the hour's energy: the state after
    // clearing is the state before.
    let (a, b) = (
        num(&s, "grid.energy_load_kwh"),
        num(&base, "grid.energy_load_kwh"),
    );
    assert!((a - b).abs() < 1e-3 * b, "{a} vs {b}");
    assert_eq!(num(&s, "grid.customer_interruptions"), 0.0);
}

#[test]
fn an_open_conductor_interrupts_the_customers_on_its_phase_below_it() {
    let s = run(&format!(
        "(duration: \"1h\", {FLAT}, faults: [OpenConductor((at: \"30min\", line: \"line.l2\", phases: \"a\"))])"
    ));
    let s3 = run(
        "(duration: \"1h\", grid: (feeder: Synthetic(buses: 300, seed: 4), profiles: Flat,
          switches: [(line: \"line.l2\")], switching: [(at: \"30min\", line: \"line.l2\", action: Open)]))",
    );
    let one = num(&s, "grid.customer_interruptions");
    let all = num(&s3, "grid.customer_interruptions");
    // Customers are single-phase, in turn on a, b, c: breaking phase a
    // cuts some but not all of those that opening the section cuts.
    assert!(one >= 1.0 && one < all, "{one} of {all}");
    assert!((num(&s, "grid.customer_minutes_interrupted") - 30.0 * one).abs() < 1e-9);
}

#[test]
fn a_fault_part_way_along_a_line_lies_between_its_end_faults() {
    let v_min = |loc: &str| {
        num(
            &run(&format!(
                "(duration: \"1min\", {FLAT}, faults: [Short((at: \"0s\", {loc}, kind: \"slg-a\", r_ohm: 0.05))])"
            )),
            "grid.v_min_pu",
        )
    };
    // The lowest voltage is the fault's own, I·R; further along the line
    // the fault current, and with it that voltage, is smaller.
    let v: Vec<f64> = [0.1, 0.5, 0.9]
        .iter()
        .map(|f| v_min(&format!("line: \"line.l40\", fraction: {f}")))
        .collect();
    let end = v_min("bus: \"b40\"");
    assert!(v[0] > v[1] && v[1] > v[2] && v[2] > end, "{v:?} {end}");
}

#[test]
fn closing_a_tie_into_a_loop_fails_the_run_naming_the_branch() {
    // Lines a–b and c join bus 1 to buses 3 and 4; the tie between them
    // is normally open, and closing it makes a loop.
    let dir = tempfile::tempdir().unwrap();
    let dss = dir.path().join("Master.dss");
    std::fs::write(
        &dss,
        "clear
New circuit.T
Edit Vsource.Source BasekV=11 pu=1.0 ISC3=3000 ISC1=5
New LineCode.lc nphases=3 R1=0.3 X1=0.08 R0=1.2 X0=0.3 Units=km
New Transformer.TR1 Buses=[SourceBus 1] Conns=[Delta Wye] kVs=[11 0.416] kVAs=[400 400] XHL=4
New Line.a Bus1=1 Bus2=2 Linecode=lc Length=100 Units=m
New Line.b Bus1=2 Bus2=3 Linecode=lc Length=100 Units=m
New Line.c Bus1=1 Bus2=4 Linecode=lc Length=100 Units=m
New Line.tie Bus1=3 Bus2=4 switch=y
New Load.l3 Bus1=3 kV=0.416 kW=20
Set voltagebases=[11 .416]
Calcvoltagebases
",
    )
    .unwrap();
    let src = format!(
        "(duration: \"1h\", grid: (feeder: Dss({dss:?}),
          switches: [(line: \"line.tie\", open: true)],
          switching: [(at: \"20min\", line: \"line.tie\", action: Close)]))"
    );
    let err = world::run(&scenario(&src), 1, &mut ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t = 20min") && err.contains("closes a loop"),
        "{err}"
    );
}

#[test]
fn a_wrong_bus_name_points_into_the_scenario_with_the_closest_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ron");
    std::fs::write(
        &path,
        "(\n  grid: (\n    feeder: Synthetic(buses: 30, seed: 1),\n    pv: [(name: \"p\", bus: \"b27x\", kw: 3.0)],\n  ),\n)\n",
    )
    .unwrap();
    for cmd in ["check", "run"] {
        let out = gridtwin(&[
            cmd,
            path.to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let e = stderr(&out);
        assert!(e.contains("s.ron:4:27"), "{cmd}: {e}");
        assert!(e.contains("grid.pv[0].bus"), "{e}");
        assert!(
            e.contains("no bus `b27x`") && e.contains("did you mean `b27`?"),
            "{e}"
        );
    }
}

#[test]
fn runs_are_identical_whatever_the_thread_count() {
    let sc = scenario(
        "(duration: \"6h\", grid: (feeder: Synthetic(buses: 200, seed: 9), profiles: Flat,
          pv: [(name: \"pv\", bus: \"b150\", kw: 30.0, profile: ClearSky(latitude_deg: 45.0), control: Ieee1547)]),
          faults: [Short((at: \"2h\", bus: \"b20\", kind: \"ll-bc\", r_ohm: 0.2, duration: \"1s\"))])",
    );
    let a = world::run(&sc, 1, &mut ()).unwrap();
    let b = world::run(&sc, 8, &mut ()).unwrap();
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.series, b.series);
    // PV follows the sun: it produced, and the grid re-solved every minute
    // of daylight only (from 0 to 6 h the sun is up from about 4:30).
    assert!(num(&a.summary, "grid.energy_pv_kwh") > 0.0);
    let solves = num(&a.summary, "grid.solves");
    assert!((60.0..=120.0).contains(&solves), "{solves} solves");
}

/// The time series reaches the IEEE's minute 566: with the feeder's own
/// one-minute shapes and constant-PQ loads, the state at t = 566 min is the
/// OpenDSS reference solution (tolerances as for the single solve).
#[test]
fn the_eu_lv_day_at_minute_566_is_the_reference_solution() {
    let dir = refdata("ieee_eu_lv");
    let master = dir.join("dss/Master.dss");
    let sc = scenario(&format!(
        "(duration: \"566min\", grid: (feeder: Dss({master:?}), loads: ConstantPq))"
    ));
    let (mut w, mut sim) = world::build(&sc).unwrap();
    let stats = sim.run(
        &mut w,
        RunLimits {
            stop_at: SimTime::from_nanos(566 * 60 * 1_000_000_000),
            max_events: None,
        },
        &mut (),
    );
    assert_eq!(stats.end.as_secs_f64(), 566.0 * 60.0);
    let g = w.grid().unwrap();
    let sol = g.solution().unwrap();
    let net = g.network();
    let mut r = csv::Reader::from_path(dir.join("voltages_m566.csv")).unwrap();
    let mut worst = (0.0f64, 0.0f64);
    for rec in r.records() {
        let rec = rec.unwrap();
        let b = net.bus_index[&rec[0].to_ascii_lowercase()];
        let k = (rec[1].as_bytes()[0] - b'a') as usize;
        let (vm, va): (f64, f64) = (rec[2].parse().unwrap(), rec[4].parse().unwrap());
        let v = sol.v[b][k];
        worst.0 = worst.0.max((v.norm() - vm).abs() / net.buses[b].v_base_ln);
        let mut da = (v.arg().to_degrees() - va).abs();
        da = da.min(360.0 - da);
        worst.1 = worst.1.max(da);
    }
    assert!(worst.0 <= 1e-5 && worst.1 <= 1e-3, "{worst:?}");
}

#[test]
fn grid_solve_takes_a_scenario_as_its_feeder() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("s.ron");
    std::fs::write(
        &sc,
        "(grid: (feeder: Synthetic(buses: 40, seed: 3), profiles: Flat,
           switches: [(line: \"line.l2\", open: true)]))",
    )
    .unwrap();
    let out = dir.path().join("v.csv");
    let o = gridtwin(&[
        "grid",
        "solve",
        sc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut r = csv::Reader::from_path(&out).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3 * 41);
    // The scenario's switch state applies: bus b2 is cut off.
    let b2: Vec<f64> = rows
        .iter()
        .filter(|r| &r[0] == "b2")
        .map(|r| r[2].parse().unwrap())
        .collect();
    assert_eq!(b2, vec![0.0; 3]);

    std::fs::write(&sc, "(duration: \"1h\")").unwrap();
    let o = gridtwin(&[
        "grid",
        "solve",
        sc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the scenario has no grid section"),
        "{}",
        stderr(&o)
    );
}

/// The mesh in a run: LMUs in a line report to the coordinator; the
/// contracted `mesh.*` keys are there, most reports arrive once the tree
/// has formed, and the run is the same at any thread count.
#[test]
fn a_mesh_carries_lmu_telemetry_to_the_coordinator() {
    let sc = scenario(
        "(duration: \"20min\", mesh: (nodes: Line(count: 15, spacing_m: 300.0), report_interval: \"1min\"))",
    );
    let a = world::run(&sc, 1, &mut ()).unwrap();
    let b = world::run(&sc, 4, &mut ()).unwrap();
    assert_eq!(a.summary, b.summary);
    let s = &a.summary;
    for key in [
        "mesh.frames_sent",
        "mesh.pdr",
        "mesh.latency_p50_s",
        "mesh.latency_p99_s",
        "mesh.route_repairs",
    ] {
        assert!(s.get(key).is_some(), "{key}");
    }
    // 14 LMUs power on at random instants within the first minute and
    // report one interval later, then every minute: 19 reports each in
    // 20 minutes.
    assert_eq!(num(s, "mesh.frames_sent"), 14.0 * 19.0);
    assert!(num(s, "mesh.pdr") > 0.9, "{}", num(s, "mesh.pdr"));
    // Up to 14 hops of ≈ 2–3 ms each.
    let (p50, p99) = (num(s, "mesh.latency_p50_s"), num(s, "mesh.latency_p99_s"));
    assert!(0.0 < p50 && p50 <= p99 && p99 < 1.0, "{p50} {p99}");
}

/// Mesh faults from the timeline: a jammer over the coordinator cuts the
/// telemetry while it lasts; a crashed relay and a degraded link are routed
/// around.
#[test]
fn the_mesh_honours_jammers_crashes_and_degraded_links() {
    let base = "(duration: \"30min\", mesh: (nodes: Line(count: 12, spacing_m: 300.0), report_interval: \"30s\", dao_interval: \"15s\")";
    let run_with = |faults: &str| run(&format!("{base}, faults: [{faults}])"));
    let clean = run_with("");
    let jammed = run_with(
        "Jammer((at: \"10min\", duration: \"10min\", x_m: 0.0, y_m: 30.0, power_dbm: 20.0))",
    );
    let (p0, pj) = (num(&clean, "mesh.pdr"), num(&jammed, "mesh.pdr"));
    // A third of the run jammed: about a third of the reports lost.
    assert!(p0 > 0.95 && pj < p0 - 0.2 && pj > 0.4, "{p0} vs {pj}");

    // Node 3 relays for the line beyond it; crashed for 10 minutes, the
    // others go round it (two-hop links of 600 m exist).
    let crashed = run_with("NodeCrash((at: \"10min\", node: 3, reboot_after: \"10min\"))");
    assert!(num(&crashed, "mesh.route_repairs") > num(&clean, "mesh.route_repairs"));
    assert!(
        num(&crashed, "mesh.pdr") > 0.85,
        "{}",
        num(&crashed, "mesh.pdr")
    );
    // Its own reports are not sent while it is down: 11 LMUs × 59 reports
    // (the first one interval after power-on) less its 20.
    assert_eq!(num(&crashed, "mesh.frames_sent"), 11.0 * 59.0 - 20.0);

    let degraded = run_with("LinkDegradation((at: \"5min\", a: 0, b: 1, extra_db: 60.0))");
    assert!(
        num(&degraded, "mesh.pdr") > 0.9,
        "{}",
        num(&degraded, "mesh.pdr")
    );
}

#[test]
fn mesh_fault_mistakes_are_positioned() {
    let e = Scenario::from_source(
        "t.ron",
        "(faults: [NodeCrash((at: \"1min\", node: 3))])",
        &at("scenarios"),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no `mesh` section") && e.contains("t.ron:1:"),
        "{e}"
    );
    let sc = scenario(
        "(mesh: (nodes: Line(count: 4, spacing_m: 300.0)), faults: [NodeCrash((at: \"1min\", node: 9))])",
    );
    let e = match world::build(&sc) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("node 9 of 4 accepted"),
    };
    assert!(
        e.contains("not node 9") && e.contains("faults[0].node"),
        "{e}"
    );
}

/// Set-points from an LMU: a PV limit caps the inverter at a share of its
/// rating, a load reduction scales the loads, both from the instant they
/// arrive and until they are lifted; energy follows.
#[test]
fn set_points_limit_pv_and_scale_loads_until_lifted() {
    let sc = scenario(
        "(grid: (feeder: Synthetic(buses: 30, seed: 2), profiles: Flat, \
           pv: [(name: \"pv1\", bus: \"b20\", kw: 9.0, kva: 10.0)]))",
    );
    let setup = gridtwin::world::grid::setup(&sc).unwrap().unwrap();
    let mut g = gridtwin::grid::model::GridModel::new(setup);
    let t = |m: u64| SimTime::from_nanos(m * 60_000_000_000);
    g.advance_to(t(0)).unwrap();
    let pv = |g: &gridtwin::grid::model::GridModel| g.network().pv[0].p_w;
    let load_w = |g: &gridtwin::grid::model::GridModel| -> f64 {
        g.network().loads.iter().map(|l| l.p_w).sum()
    };
    assert_eq!(pv(&g), 9000.0);
    let base_load = load_w(&g);
    // 50 % of the 10 kVA rating: 5 kW.
    let ev = g.set_pv_limit(t(10), &[0], 0.5);
    assert!(!ev.is_empty());
    g.advance_to(t(10)).unwrap();
    assert_eq!(pv(&g), 5000.0);
    // A limit above the available power changes nothing.
    g.set_pv_limit(t(20), &[0], 0.95);
    g.advance_to(t(20)).unwrap();
    assert_eq!(pv(&g), 9000.0);
    // 20 % demand response on every load, then lifted.
    let all: Vec<usize> = (0..g.network().loads.len()).collect();
    g.set_load_scale(t(30), &all, 0.8);
    g.advance_to(t(30)).unwrap();
    assert!((load_w(&g) - 0.8 * base_load).abs() < 1e-6 * base_load);
    g.set_load_scale(t(40), &all, 1.0);
    g.advance_to(t(40)).unwrap();
    assert_eq!(load_w(&g), base_load);
    // The same set-point again schedules nothing.
    assert!(g.set_load_scale(t(41), &all, 1.0).is_empty());
}
