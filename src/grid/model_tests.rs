//! Tests of the network elements beyond the three-phase wye PQ loads of the
//! EU LV feeder: single-phase laterals, delta and ZIP loads, PV inverters
//! with volt-var, open conductors, switches and transformer loading. Every
//! solution is checked against Kirchhoff's current law computed from the
//! element models directly, not through the solver.

use num_complex::Complex64 as C;

use super::dss::{DssCircuit, DssError};
use super::mat3::{self, V3, ZV};
use super::network::{LoadModel, Network, Pv, QControl};
use super::powerflow::{self, Settings, Solution, Solver};

/// Writes `master` into a temp dir and imports it.
fn import(master: &str) -> Result<DssCircuit, DssError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Master.dss"), master).unwrap();
    DssCircuit::load(&dir.path().join("Master.dss"))
}

/// A small 11/0.416 kV feeder; `extra` adds elements after the trunk
/// `sourcebus → 1 → 2`.
fn feeder(extra: &str) -> Network {
    let text = format!(
        "clear
New circuit.T
Edit Vsource.Source BasekV=11 pu=1.0 ISC3=3000 ISC1=5
New LineCode.lc3 nphases=3 R1=0.3 X1=0.08 R0=1.2 X0=0.3 Units=km
New LineCode.lc1 nphases=1 R1=0.6 X1=0.09 R0=0.6 X0=0.09 Units=km
New Transformer.TR1 Buses=[SourceBus 1] Conns=[Delta Wye] kVs=[11 0.416] kVAs=[400 400] XHL=4 %Rs=[0.5 0.5]
New Line.trunk Bus1=1 Bus2=2 phases=3 Linecode=lc3 Length=200 Units=m
{extra}
Set voltagebases=[11 .416]
Calcvoltagebases
"
    );
    Network::from_dss(&import(&text).unwrap()).unwrap()
}

/// The largest KCL residual over live nodes [A], and whether every dead
/// node sits at zero volts.
fn kcl_worst(net: &Network, sol: &Solution) -> f64 {
    let v = &sol.v;
    let mut out: Vec<V3> = vec![ZV; net.buses.len()];
    let add = |out: &mut Vec<V3>, b: usize, i: &V3| {
        for k in 0..3 {
            out[b][k] += i[k];
        }
    };
    for br in net.branches.iter().filter(|b| b.closed) {
        let (ff, ft, tf, tt) = br.blocks();
        let i_f = mat3::mulv(&ff, &v[br.from]);
        let i_f2 = mat3::mulv(&ft, &v[br.to]);
        let i_t = mat3::mulv(&tf, &v[br.from]);
        let i_t2 = mat3::mulv(&tt, &v[br.to]);
        add(&mut out, br.from, &[0, 1, 2].map(|k| i_f[k] + i_f2[k]));
        add(&mut out, br.to, &[0, 1, 2].map(|k| i_t[k] + i_t2[k]));
    }
    let src = &net.source;
    let dv: V3 = [0, 1, 2].map(|k| v[src.bus][k] - src.e[k]);
    add(&mut out, src.bus, &mat3::mulv(&src.y, &dv));
    for l in &net.loads {
        let live = sol.live[l.bus][l.phase] && l.to_phase.is_none_or(|j| sol.live[l.bus][j]);
        if !live {
            continue;
        }
        let across = v[l.bus][l.phase] - l.to_phase.map_or(C::new(0.0, 0.0), |j| v[l.bus][j]);
        let i = l.current(across);
        out[l.bus][l.phase] += i;
        if let Some(j) = l.to_phase {
            out[l.bus][j] -= i;
        }
    }
    for g in &net.pv {
        for k in (0..3).filter(|&k| g.phases[k] && sol.live[g.bus][k]) {
            out[g.bus][k] -= g.injection(k, v[g.bus][k]);
        }
    }
    let mut worst = 0.0f64;
    for b in 0..net.buses.len() {
        for k in 0..3 {
            if sol.live[b][k] {
                worst = worst.max(out[b][k].norm());
            } else {
                assert_eq!(v[b][k], C::new(0.0, 0.0), "dead node {b}.{k} has voltage");
            }
        }
    }
    worst
}

fn solve(net: &Network) -> Solution {
    powerflow::solve(net, Settings::default()).unwrap()
}

fn bus(net: &Network, name: &str) -> usize {
    net.bus_index[name]
}

/// Tolerance of the KCL checks [A]: the solver stops when voltages change
/// by less than 1e-10 pu, which leaves residual currents far below a mA.
const KCL_TOL_A: f64 = 1e-6;

#[test]
fn a_single_phase_lateral_energises_its_phase_only() {
    let net = feeder(
        "New Line.lat Bus1=2.2 Bus2=3.2 phases=1 Linecode=lc1 Length=100 Units=m
New Load.house phases=1 Bus1=3.2 kV=0.23 kW=5 PF=0.95 vminpu=0.6 vmaxpu=1.4",
    );
    let sol = solve(&net);
    let b3 = bus(&net, "3");
    assert_eq!(sol.live[b3], [false, true, false]);
    assert!(sol.energized[b3]);
    assert!(kcl_worst(&net, &sol) < KCL_TOL_A);
    // The lateral's drop is its own Z1 times the load current.
    let b2 = bus(&net, "2");
    let i = (C::new(5e3, 5e3 * 0.328_684) / sol.v[b3][1]).conj();
    let z = C::new(0.6, 0.09) * 0.1;
    let drop = sol.v[b2][1] - sol.v[b3][1];
    assert!((drop - z * i).norm() < 1e-6, "{drop} vs {}", z * i);
}

#[test]
fn a_balanced_delta_load_draws_what_its_wye_equivalent_draws() {
    // Δ–Y equivalence: a balanced delta of S per phase pair at U_LL draws
    // the same currents as a wye of S per phase at U_LN.
    let delta = feeder("New Load.m phases=3 conn=delta Bus1=2 kV=0.416 kW=60 PF=0.9 model=2");
    let wye = feeder("New Load.m phases=3 conn=wye Bus1=2 kV=0.416 kW=60 PF=0.9 model=2");
    assert_eq!(delta.loads.len(), 3);
    assert!(delta.loads.iter().all(|l| l.to_phase.is_some()));
    let (sd, sw) = (solve(&delta), solve(&wye));
    assert!(kcl_worst(&delta, &sd) < KCL_TOL_A);
    let b2 = bus(&delta, "2");
    for k in 0..3 {
        let d = (sd.v[b2][k] - sw.v[b2][k]).norm() / 240.0;
        assert!(d < 1e-9, "phase {k}: {d} pu apart");
    }
}

#[test]
fn a_single_phase_load_between_two_phases_sits_across_them() {
    let net = feeder("New Load.ab phases=1 Bus1=2.1.2 kV=0.416 kW=10 PF=1 vminpu=0.6 vmaxpu=1.4");
    let l = &net.loads[0];
    assert_eq!((l.phase, l.to_phase), (0, Some(1)));
    let sol = solve(&net);
    assert!(kcl_worst(&net, &sol) < KCL_TOL_A);
    // The load draws its 10 kW from the voltage across it.
    let b2 = bus(&net, "2");
    let u = sol.v[b2][0] - sol.v[b2][1];
    let s = u * l.current(u).conj();
    assert!((s - C::new(10e3, 0.0)).norm() < 1e-6, "{s}");
}

#[test]
fn zip_loads_split_their_power_by_voltage_dependence() {
    let net = feeder(
        "New Load.z phases=1 Bus1=2.1 kV=0.24 kW=3 kvar=1 model=8 zipv=[0.2 0.3 0.5 0.1 0.1 0.8 0.5] vminpu=0.7",
    );
    let l = &net.loads[0];
    assert!(matches!(l.model, LoadModel::Zip { .. }));
    let s_at = |pu: f64| {
        let v = C::from_polar(pu * 240.0, 0.3);
        v * l.current(v).conj()
    };
    for pu in [0.8, 0.95, 1.0, 1.1] {
        let s = s_at(pu);
        let p = 3e3 * (0.2 * pu * pu + 0.3 * pu + 0.5);
        let q = 1e3 * (0.1 * pu * pu + 0.1 * pu + 0.8);
        assert!(
            (s.re - p).abs() < 1e-9 && (s.im - q).abs() < 1e-9,
            "{pu}: {s}"
        );
    }
    // Below vmin every part is an impedance (S ∝ V²), and below the cut-off
    // the load is off.
    let (a, b) = (s_at(0.6), s_at(0.65));
    assert!((a / b - C::new((0.6f64 / 0.65).powi(2), 0.0)).norm() < 1e-12);
    assert_eq!(s_at(0.4), C::new(0.0, 0.0));
    let sol = solve(&net);
    assert!(kcl_worst(&net, &sol) < KCL_TOL_A);
}

#[test]
fn zip_extremes_reduce_to_the_pure_models() {
    let pq = feeder("New Load.x phases=1 Bus1=2.1 kV=0.24 kW=3 kvar=1 model=1 vminpu=0.5");
    let z = feeder("New Load.x phases=1 Bus1=2.1 kV=0.24 kW=3 kvar=1 model=2");
    let zip_p = feeder(
        "New Load.x phases=1 Bus1=2.1 kV=0.24 kW=3 kvar=1 model=8 zipv=[0 0 1 0 0 1 0] vminpu=0.5",
    );
    let zip_z = feeder(
        "New Load.x phases=1 Bus1=2.1 kV=0.24 kW=3 kvar=1 model=8 zipv=[1 0 0 1 0 0 0] vminpu=0.5",
    );
    for v in [
        C::new(200.0, -30.0),
        C::new(251.0, 10.0),
        C::new(100.0, 0.0),
    ] {
        assert!((pq.loads[0].current(v) - zip_p.loads[0].current(v)).norm() < 1e-12);
        assert!((z.loads[0].current(v) - zip_z.loads[0].current(v)).norm() < 1e-12);
    }
}

#[test]
fn a_switch_line_is_a_milliohm_and_opening_it_de_energises_the_lateral() {
    let mut net = feeder(
        "New Line.sw1 Bus1=2 Bus2=3 switch=y
New Line.after Bus1=3 Bus2=4 phases=3 Linecode=lc3 Length=100 Units=m
New Load.l4 phases=3 Bus1=4 kV=0.416 kW=30 PF=0.95 vminpu=0.6 vmaxpu=1.4",
    );
    let k = net
        .branches
        .iter()
        .position(|b| b.name == "line.sw1")
        .unwrap();
    let sol = solve(&net);
    let (b2, b3, b4) = (bus(&net, "2"), bus(&net, "3"), bus(&net, "4"));
    for ph in 0..3 {
        // ≈ 43 A through 1.4 mΩ: a drop of well under 0.1 V.
        assert!((sol.v[b2][ph] - sol.v[b3][ph]).norm() < 0.1);
    }
    assert!(kcl_worst(&net, &sol) < KCL_TOL_A);
    net.branches[k].closed = false;
    let sol = solve(&net);
    assert!(sol.energized[b2] && !sol.energized[b3] && !sol.energized[b4]);
    assert_eq!(sol.v[b4], ZV);
}

#[test]
fn an_open_conductor_kills_its_phase_downstream_and_nothing_else() {
    let mut net = Network::synthetic_radial(300, 5);
    let sol0 = solve(&net);
    let k = net.branches.iter().position(|b| b.to == 40).unwrap();
    net.branches[k].phases = [false, true, true];
    let sol = solve(&net);
    assert!(kcl_worst(&net, &sol) < KCL_TOL_A);
    // The buses below bus 40, by walking parents.
    let parent: Vec<usize> = {
        let mut p = vec![usize::MAX; net.buses.len()];
        for b in &net.branches {
            p[b.to] = b.from;
        }
        p
    };
    let below = |mut b: usize| loop {
        if b == 40 {
            return true;
        }
        if parent[b] == usize::MAX {
            return false;
        }
        b = parent[b];
    };
    let mut dead = 0;
    for b in 0..net.buses.len() {
        let down = below(b);
        assert_eq!(sol.live[b], [!down, true, true], "bus {b}");
        assert!(sol.energized[b]);
        dead += usize::from(down);
    }
    assert!(dead >= 1);
    // Phase a upstream loses the load it fed: the source delivers less.
    let p = |s: &Solution| -> f64 {
        let b = net.source.bus;
        let dv: V3 = [0, 1, 2].map(|k| net.source.e[k] - s.v[b][k]);
        let i = mat3::mulv(&net.source.y, &dv);
        (0..3).map(|k| (s.v[b][k] * i[k].conj()).re).sum()
    };
    assert!(p(&sol) < p(&sol0));
}

#[test]
fn an_open_conductor_on_the_hv_side_still_feeds_every_lv_phase_through_the_delta() {
    // With one HV phase of a Dyn transformer open upstream, each LV phase
    // is still driven by at least one live HV node: nothing goes dead, but
    // the LV voltages become badly unbalanced.
    let mut net = feeder("New Load.m phases=3 Bus1=2 kV=0.416 kW=30 PF=0.95 model=2");
    // Move the transformer behind a new HV line whose phase a is open.
    let hv_line = super::network::Branch {
        name: "line.hv".into(),
        from: net.source.bus,
        to: net.buses.len(),
        kind: super::network::BranchKind::Line {
            z: mat3::sym(C::new(0.1, 0.1), C::new(0.0, 0.0)),
            length_m: 0.0,
        },
        closed: true,
        phases: [false, true, true],
    };
    net.buses.push(super::network::Bus {
        name: "hv2".into(),
        v_base_ln: net.buses[net.source.bus].v_base_ln,
        xy: None,
    });
    let tr = net
        .branches
        .iter()
        .position(|b| b.name == "transformer.tr1")
        .unwrap();
    net.branches[tr].from = hv_line.to;
    net.branches.push(hv_line);
    let sol = solve(&net);
    assert!(kcl_worst(&net, &sol) < KCL_TOL_A);
    let b2 = bus(&net, "2");
    assert_eq!(sol.live[b2], [true; 3]);
    let u = super::quality::unbalance_pct(&sol.v[b2]).unwrap();
    assert!(u > 20.0, "unbalance {u} %");
}

/// A PV system on the far end of the synthetic feeder.
fn pv_feeder(control: QControl, p_w: f64) -> (Network, usize) {
    let mut net = Network::synthetic_radial(200, 11);
    let far = net.buses.len() - 1;
    net.pv.push(Pv {
        name: "pv1".into(),
        bus: far,
        phases: [true; 3],
        p_w,
        s_rated_va: 1.1 * p_w,
        v_nom: 240.0,
        control,
        fault_response: super::network::FaultResponse::default(),
        held_current: None,
    });
    (net, far)
}

#[test]
fn pv_injects_its_power_and_volt_var_holds_the_voltage_down() {
    let p = 150e3;
    let (fixed, far) = pv_feeder(QControl::Fixed { q_var: 0.0 }, p);
    let (vv, _) = pv_feeder(QControl::ieee1547_default(), p);
    let (s_fixed, s_vv) = (solve(&fixed), solve(&vv));
    assert!(kcl_worst(&fixed, &s_fixed) < KCL_TOL_A);
    assert!(kcl_worst(&vv, &s_vv) < KCL_TOL_A);
    let g = &vv.pv[0];
    let mut vmax = [0.0f64; 2];
    for k in 0..3 {
        // The unity-PF inverter delivers P/3 per phase.
        let v = s_fixed.v[far][k];
        let s = v * fixed.pv[0].injection(k, v).conj();
        assert!((s - C::new(p / 3.0, 0.0)).norm() < 1e-6, "{s}");
        // Volt-var: Q at the converged voltage is the curve's.
        let v = s_vv.v[far][k];
        let s = v * g.injection(k, v).conj();
        let pu = v.norm() / 240.0;
        let q_curve = super::network::interpolate(&[(1.02, 0.0), (1.08, -0.44)], pu);
        let room = ((g.s_rated_va / 3.0).powi(2) - (p / 3.0).powi(2)).sqrt();
        let want = (q_curve * g.s_rated_va / 3.0).clamp(-room, room);
        assert!((s.im - want).abs() < 1e-3, "phase {k}: {} vs {want}", s.im);
        assert!(s.im < 0.0, "absorbing at {pu} pu");
        vmax[0] = vmax[0].max(s_fixed.v[far][k].norm());
        vmax[1] = vmax[1].max(s_vv.v[far][k].norm());
    }
    assert!(vmax[1] < vmax[0] - 0.5, "{vmax:?}");
}

#[test]
fn pv_current_is_limited_when_its_voltage_collapses() {
    let (net, _) = pv_feeder(QControl::Fixed { q_var: 0.0 }, 10e3);
    let g = &net.pv[0];
    let i_max = super::network::PV_CURRENT_LIMIT_PU * g.s_rated_va / 3.0 / g.v_nom;
    let i = g.injection(0, C::new(5.0, 0.0));
    assert!((i.norm() - i_max).abs() < 1e-9);
    assert_eq!(g.injection(0, C::new(0.0, 0.0)), C::new(0.0, 0.0));
}

/// The fault response's three parameters, one at a time: during a short
/// circuit the current keeps the pre-fault voltage angle (or follows the
/// terminal, if so set), and below the cessation threshold it stops.
#[test]
fn pv_fault_response_holds_the_angle_and_ceases_below_its_threshold() {
    use super::network::{AngleReference, FaultResponse};
    let (net, _) = pv_feeder(QControl::Fixed { q_var: 0.0 }, 10e3);
    let mut g = net.pv[0].clone();
    // A collapsed voltage, rotated by 50° from the pre-fault 0°: the
    // pre-fault current is held, phasor for phasor.
    let v = C::from_polar(60.0, 50f64.to_radians());
    let pre = g.injection(0, C::new(240.0, 0.0));
    g.held_current = Some([pre, pre, pre]);
    assert_eq!(g.injection(0, v), pre);
    let i_max = super::network::PV_CURRENT_LIMIT_PU * g.s_rated_va / 3.0 / g.v_nom;
    // Tracking at once: at the present angle, at the limit.
    g.fault_response.angle = AngleReference::Terminal;
    let i = g.injection(0, v);
    assert!((i.arg() - 50f64.to_radians()).abs() < 1e-12);
    assert!((i.norm() - i_max).abs() < 1e-9);
    // Zero-current mode below 0.3 pu: 60 V of 240 V is 0.25 pu.
    g.fault_response = FaultResponse {
        cessation_below_pu: 0.3,
        ..FaultResponse::default()
    };
    assert_eq!(g.injection(0, v), C::new(0.0, 0.0));
    assert!(g.injection(0, C::from_polar(80.0, 0.0)).norm() > 0.0);
}

#[test]
fn transformer_loading_is_the_worst_phase_current_over_rated() {
    let net = feeder(
        "New Load.a phases=1 Bus1=2.1 kV=0.24 kW=40 PF=1 model=2
New Load.b phases=1 Bus1=2.2 kV=0.24 kW=10 PF=1 model=2",
    );
    let sol = solve(&net);
    let flows = powerflow::branch_flows(&net, &sol.v);
    let loading = powerflow::transformer_loading_pct(&net, &flows);
    let tr = net
        .branches
        .iter()
        .position(|b| b.name == "transformer.tr1")
        .unwrap();
    // Phase a carries ≈ 40 kW/240 V ≈ 167 A (a little less: the load is a
    // constant impedance below its nominal voltage); rated 400 kVA/(3·240 V)
    // ≈ 555 A.
    let i_a = flows[tr].i_to[0].norm();
    let i_rated = 400e3 / 3.0 / (416.0 / 3f64.sqrt());
    assert!((loading[tr].unwrap() - 100.0 * i_a / i_rated).abs() < 1e-9);
    assert!((25.0..32.0).contains(&loading[tr].unwrap()), "{loading:?}");
    assert!(
        loading
            .iter()
            .enumerate()
            .all(|(k, l)| l.is_some() == (k == tr))
    );
}

#[test]
fn solver_reports_dead_nodes_it_was_built_with() {
    let mut net = Network::synthetic_radial(50, 2);
    net.branches[10].phases = [true, false, true];
    let s = Solver::new(&net).unwrap();
    let b = net.branches[10].to;
    assert_eq!(s.live()[b], [true, false, true]);
}

#[test]
fn phase_and_zip_mistakes_are_clear_errors() {
    let net_err = |extra: &str| -> String {
        let text = format!(
            "clear
New circuit.T
New LineCode.lc3 nphases=3 R1=0.3 X1=0.08 R0=1.2 X0=0.3 Units=km
{extra}
"
        );
        match import(&text) {
            Err(e) => e.to_string(),
            Ok(c) => Network::from_dss(&c).unwrap_err().to_string(),
        }
    };
    let e = net_err("New Line.x Bus1=sourcebus.1 Bus2=2.1 phases=1 Linecode=lc3 Length=1");
    assert!(
        e.contains("line.x") && e.contains("1 phases on a 3-phase linecode"),
        "{e}"
    );
    let e = net_err("New Load.z Bus1=sourcebus kW=1 model=8 zipv=[1 0 0 1 0]");
    assert!(e.contains("zipv takes 7 numbers, got 5"), "{e}");
    let e = net_err("New Load.z Bus1=sourcebus kW=1 model=8 zipv=[1 1 0 1 0 0 0]");
    assert!(e.contains("fractions of P sum to 2"), "{e}");
    let e = net_err("New Load.z Bus1=sourcebus kW=1 model=8");
    assert!(
        e.contains("load.z") && e.contains("model 8 without zipv"),
        "{e}"
    );
    let e = net_err("New Load.d Bus1=sourcebus.1.1 phases=1 conn=delta kW=1");
    assert!(e.contains("both ends on the same phase"), "{e}");
}
