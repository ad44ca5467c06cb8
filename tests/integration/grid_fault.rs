//! Faults on the IEEE European LV feeder, against IEC 60909 network
//! impedances computed by pandapower (reference data) and against the
//! physics of the fault path.

use gridtwin::grid::dss::DssCircuit;
use gridtwin::grid::fault::{FaultKind, branch_currents, solve_fault};
use gridtwin::grid::network::Network;
use gridtwin::grid::powerflow::{self, Settings};
use num_complex::Complex64 as C;

use crate::refdata;

/// The feeder with minute 566's loads, keeping the feeder's own load model
/// (OpenDSS model 1: constant PQ between 0.95 and 1.05 pu, constant Z
/// outside), which is how loads behave through a voltage dip.
fn feeder(dir: &std::path::Path) -> Network {
    let c = DssCircuit::load(&dir.join("dss/Master.dss")).unwrap();
    let mut net = Network::from_dss(&c).unwrap();
    let loads = crate::m566_loads(dir);
    for l in &mut net.loads {
        let (p_kw, q_kvar) = loads[&l.name];
        l.p_w = p_kw * 1e3;
        l.q_var = q_kvar * 1e3;
    }
    net
}

/// Every 75th LV bus (13 buses) of the IEC 60909 reference, with its row.
fn sample_buses(dir: &std::path::Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(dir.join("short_circuit_iec60909.csv")).unwrap();
    r.records()
        .map(Result::unwrap)
        .filter(|r| !r[10].is_empty())
        .step_by(75)
        .collect()
}

/// Bolted 3-phase and single-phase faults at every 75th bus (13 buses)
/// match I3 = c·U/(√3·|Z1|) and I1 = √3·c·U/|2·Z1 + Z0| from the reference's
/// pure network impedances within 1 %, with c = 1.05: the source's set
/// point, the pre-fault EMF of this model. As in IEC 60909, loads are
/// neglected (the network is unloaded).
#[test]
fn bolted_fault_currents_match_the_network_impedances() {
    let dir = refdata("ieee_eu_lv");
    let mut net = feeder(&dir);
    net.loads.clear();
    let rows = sample_buses(&dir);
    let (u, c) = (416.0, 1.05);
    let mut checked = 0;
    for row in &rows {
        let f = |i: usize| row[i].parse::<f64>().unwrap();
        let z1 = C::new(f(10), f(11));
        let z0 = C::new(f(12), f(13));
        let i3 = c * u / (3f64.sqrt() * z1.norm());
        let i1 = 3f64.sqrt() * c * u / (2.0 * z1 + z0).norm();
        let bus = net.bus_index[&row[0]];

        let f3 = solve_fault(&net, bus, FaultKind::ThreePhase, 0.0).unwrap();
        for k in 0..3 {
            let got = f3.fault_current[k].norm();
            assert!(
                (got - i3).abs() / i3 < 0.01,
                "bus {} 3ph phase {k}: {got:.1} A vs {i3:.1} A",
                &row[0]
            );
        }
        let f1 = solve_fault(&net, bus, FaultKind::SLG_A, 0.0).unwrap();
        let got = f1.fault_current[0].norm();
        assert!(
            (got - i1).abs() / i1 < 0.01,
            "bus {} slg: {got:.1} A vs {i1:.1} A",
            &row[0]
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} buses checked");
}

/// With a fault at a far bus, every branch on the path from the source
/// carries at least 5× its pre-fault current, and every branch off the path
/// at most 1.2× its own.
#[test]
fn fault_current_flows_on_the_fault_path_only() {
    let dir = refdata("ieee_eu_lv");
    let net = feeder(&dir);
    let pre = powerflow::solve(&net, Settings::default()).unwrap();
    let pre_i = branch_currents(&net, &pre.v);
    // The path: walk from the fault bus towards the source bus.
    let target = net.bus_index["34"];
    let mut on_path = vec![false; net.branches.len()];
    let mut at = target;
    while at != net.source.bus {
        let k = net
            .branches
            .iter()
            .position(|b| b.to == at)
            .expect("radial, from upstream");
        on_path[k] = true;
        at = net.branches[k].from;
    }
    for kind in [
        FaultKind::ThreePhase,
        FaultKind::SLG_A,
        FaultKind::LL_AB,
        FaultKind::LLG_AB,
    ] {
        let f = solve_fault(&net, target, kind, 0.0).unwrap();
        // The faulted phases: those carrying fault current at the bus.
        let faulted: Vec<usize> = (0..3)
            .filter(|&k| f.fault_current[k].norm() > 1.0)
            .collect();
        assert!(!faulted.is_empty());
        for (k, br) in net.branches.iter().enumerate() {
            if matches!(
                br.kind,
                gridtwin::grid::network::BranchKind::Transformer { .. }
            ) {
                continue; // its HV currents are on another voltage level
            }
            for &p in &faulted {
                let (before, during) = (pre_i[k][p].norm(), f.branch_currents[k][p].norm());
                if on_path[k] {
                    assert!(
                        during >= 5.0 * before,
                        "{kind:?}: {} phase {p}: {during} vs {before}",
                        br.name
                    );
                } else {
                    assert!(
                        during <= 1.2 * before + 1e-6,
                        "{kind:?}: {} phase {p}: {during} vs {before}",
                        br.name
                    );
                }
            }
        }
    }
}

/// The `grid fault` command line and its CSV contract.
#[test]
fn grid_fault_cli_writes_the_fault_row_then_every_branch() {
    let dir = refdata("ieee_eu_lv");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f.csv");
    let o = crate::gridtwin(&[
        "grid",
        "fault",
        dir.join("dss/Master.dss").to_str().unwrap(),
        "--bus",
        "34",
        "--kind",
        "ll-ab",
        "--r-ohm",
        "0.01",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", crate::stderr(&o));
    let mut r = csv::Reader::from_path(&out).unwrap();
    assert_eq!(
        r.headers().unwrap(),
        vec!["branch", "from_bus", "to_bus", "ia_a", "ib_a", "ic_a"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        1 + 906,
        "the fault row, 905 lines and the transformer"
    );
    assert_eq!(
        (&rows[0][0], &rows[0][1], &rows[0][2]),
        ("FAULT", "34", "ground")
    );
    let i: Vec<f64> = (3..6).map(|k| rows[0][k].parse().unwrap()).collect();
    // A line-to-line fault: equal and opposite currents in a and b, none in c.
    assert!(
        i[0] > 1000.0 && (i[0] - i[1]).abs() < 1e-6 * i[0] && i[2] == 0.0,
        "{i:?}"
    );

    let o = crate::gridtwin(&[
        "grid",
        "fault",
        dir.join("dss/Master.dss").to_str().unwrap(),
        "--bus",
        "nope",
        "--kind",
        "3ph",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(crate::stderr(&o).contains("no bus nope"));
}

/// IEC 60909 maximum currents (c_max = 1.10, K_T applied, loads neglected)
/// at every 75th bus match pandapower's `ikss_3ph_max_ka` and
/// `ikss_1ph_max_ka` within 2 %.
#[test]
fn iec60909_max_currents_match_pandapower() {
    let dir = refdata("ieee_eu_lv");
    let net = gridtwin::grid::fault::iec60909_max_network(&feeder(&dir), 1.10);
    let rows = sample_buses(&dir);
    let mut worst: f64 = 0.0;
    for row in &rows {
        let bus = net.bus_index[&row[0]];
        let i3_ref = row[1].parse::<f64>().unwrap() * 1e3;
        let i1_ref = row[5].parse::<f64>().unwrap() * 1e3;
        let i3 = solve_fault(&net, bus, FaultKind::ThreePhase, 0.0)
            .unwrap()
            .fault_current[0]
            .norm();
        let i1 = solve_fault(&net, bus, FaultKind::SLG_A, 0.0)
            .unwrap()
            .fault_current[0]
            .norm();
        for (got, want, what) in [(i3, i3_ref, "3ph"), (i1, i1_ref, "1ph")] {
            let rel = (got - want).abs() / want;
            worst = worst.max(rel);
            assert!(
                rel < 0.02,
                "bus {} {what}: {got:.1} A vs {want:.1} A",
                &row[0]
            );
        }
    }
    eprintln!("IEC 60909 max: worst relative difference {worst:.2e}");
}
