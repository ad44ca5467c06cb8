use super::*;

/// Writes `files` into a temp dir and imports `Master.dss` from it.
fn import(files: &[(&str, &str)]) -> Result<DssCircuit, DssError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    DssCircuit::load(&dir.path().join("Master.dss"))
}

const SMALL: &str = "clear
Set DefaultBaseFrequency=50
New circuit.Test
Edit Vsource.Source BasekV=11 pu=1.05 ISC3=3000 ISC1=5
New LineCode.lc nphases=3 R1=0.5 X1=0.1 R0=1.5 X0=0.4 C1=0 C0=0 Units=km
Redirect sub/Lines.txt
New Transformer.TR1 Buses=[SourceBus 1] Conns=[Delta Wye] kVs=[11 0.416] kVAs=[800 800] XHL=4 sub=y
New Loadshape.S1 npts=4 minterval=15 mult=(file=sub/s1.txt) useactual=true
batchedit loadshape..* useactual=no
New Load.LOAD1 Phases=1 Bus1=2.3 kV=0.23 kW=2 PF=0.95 Yearly=S1
New Monitor.M1 Line.L1 2
Set voltagebases=[11 .416]
Calcvoltagebases
buscoords sub/xy.txt
solve
";

fn small() -> DssCircuit {
    import(&[
        ("Master.dss", SMALL),
        (
            "sub/Lines.txt",
            "New Line.L1 Bus1=1 Bus2=2 phases=3 Linecode=lc Length=250 Units=m\n\
             New Line.L2 2 3 lc 0.1 ! positional: bus1 bus2 linecode length\n~ units=km\n",
        ),
        ("sub/s1.txt", "0.5\n1.0\n1.5\n2.0\n"),
        ("sub/xy.txt", "1 10 20\n2, 30, 40\n3\t50\t60\n"),
    ])
    .unwrap()
}

#[test]
fn imports_every_supported_element_with_si_units() {
    let c = small();
    assert_eq!(c.name, "test");
    assert_eq!(c.base_frequency_hz, 50.0);
    assert_eq!(c.voltage_bases_v, vec![11_000.0, 416.0]);
    assert_eq!(c.lines.len(), 2);
    let l2 = &c.lines[1];
    assert_eq!((l2.bus1.bus.as_str(), l2.bus2.bus.as_str()), ("2", "3"));
    assert_eq!(l2.linecode.as_deref(), Some("lc"));
    let code = &c.linecodes["lc"];
    assert!((l2.length_m(Some(code)).unwrap() - 100.0).abs() < 1e-9);
    assert!((c.lines[0].length_m(Some(code)).unwrap() - 250.0).abs() < 1e-9);
    let t = &c.transformers[0];
    assert_eq!(t.windings[0].conn, Conn::Delta);
    assert_eq!(t.windings[1].v_rated, 416.0);
    assert_eq!(t.windings[1].s_rated, 800e3);
    assert_eq!(t.xhl_pct, 4.0);
    // OpenDSS's default: 0.2 % per winding, 0.4 % in total.
    assert_eq!(t.windings[0].r_pct + t.windings[1].r_pct, 0.4);
    assert!(t.sub);
    let load = &c.loads[0];
    assert_eq!(load.bus.nodes, vec![3]);
    assert_eq!(load.v_rated, 230.0);
    assert_eq!(load.p_w, 2000.0);
    // Q = P·tan(acos 0.95) = 0.328684·P.
    assert!((load.q_nominal_var() - 657.3684).abs() < 1e-3);
    assert_eq!(c.buscoords["2"], (30.0, 40.0));
    assert_eq!(c.buscoords.len(), 3);
}

#[test]
fn loadshapes_read_files_batchedit_and_step_by_interval() {
    let c = small();
    let s = &c.loadshapes["s1"];
    assert!(!s.use_actual, "batchedit useactual=no applied");
    assert_eq!(s.interval_s, 900.0);
    assert_eq!(s.mult, vec![0.5, 1.0, 1.5, 2.0]);
    // Point k covers (k·15 min, (k+1)·15 min].
    assert_eq!(s.at(900.0), Some(0.5));
    assert_eq!(s.at(901.0), Some(1.0));
    assert_eq!(s.at(3600.0), Some(2.0));
    assert_eq!(s.at(3601.0), Some(0.5), "wraps around a day of 4 points");
}

#[test]
fn linecode_phase_matrix_is_the_kron_reduced_sequence_form() {
    let c = small();
    let z = c.linecodes["lc"].z_per_m(1.0);
    // Zs = (2·Z1 + Z0)/3 = (2.5 + j0.6)/3 Ω/km; Zm = (Z0 − Z1)/3 = (1 + j0.3)/3 Ω/km.
    let zs = num_complex::Complex64::new(2.5 / 3.0, 0.6 / 3.0) / 1000.0;
    let zm = num_complex::Complex64::new(1.0 / 3.0, 0.3 / 3.0) / 1000.0;
    for i in 0..3 {
        for j in 0..3 {
            let want = if i == j { zs } else { zm };
            assert!((z[i * 3 + j] - want).norm() < 1e-15, "({i},{j})");
        }
    }
}

#[test]
fn source_impedance_follows_opendss() {
    let c = small();
    let (z1, _z0) = c.source.z1_z0_ohm();
    // README of the EU LV feeder: ISC3 = 3000 A at 11 kV, X/R = 4.
    assert!((z1.re - 0.51344).abs() < 1e-5, "{z1}");
    assert!((z1.im - 2.05374).abs() < 1e-5, "{z1}");
    assert_eq!(c.source.base_v_ll, 11_000.0);
    assert_eq!(c.source.pu, 1.05);
}

#[test]
fn meters_are_ignored_with_a_warning_naming_the_line() {
    let c = small();
    let w: Vec<_> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("Master.dss:11") && w.contains("monitor.m1")),
        "{w:?}"
    );
}

#[test]
fn unsupported_elements_and_commands_are_errors_at_file_line() {
    let e = import(&[(
        "Master.dss",
        "New circuit.x\nNew Capacitor.C1 bus1=2 kvar=50\n",
    )])
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("unsupported element Capacitor at "),
        "{msg}"
    );
    assert!(msg.ends_with("Master.dss:2"), "{msg}");

    let e = import(&[("Master.dss", "New circuit.x\nplot circuit\n")]).unwrap_err();
    assert!(
        e.to_string().starts_with("unsupported command plot at "),
        "{e}"
    );
}

#[test]
fn bad_values_name_the_property_and_line() {
    let e = import(&[("Master.dss", "New circuit.x\n\nNew LineCode.a R1=abc\n")]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("Master.dss:3: r1: expected a number, found `abc`"),
        "{msg}"
    );

    let e = import(&[("Master.dss", "New circuit.x\nNew Line.l bogus=1\n")]).unwrap_err();
    assert!(
        e.to_string()
            .contains("unsupported property `bogus` of Line"),
        "{e}"
    );

    let e = import(&[("Master.dss", "New circuit.x\nRedirect nowhere.txt\n")]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("nowhere.txt") && msg.contains("Master.dss:2"),
        "{msg}"
    );

    let e = import(&[("Master.dss", "New Line.l bus1=1\n")]).unwrap_err();
    assert!(e.to_string().contains("no `New circuit.NAME`"), "{e}");

    let e = import(&[("Master.dss", "New circuit.x\nEdit Line.ghost length=3\n")]).unwrap_err();
    assert!(e.to_string().contains("not defined"), "{e}");
}

#[test]
fn matrix_linecodes_accept_lower_triangles() {
    let c = import(&[(
        "Master.dss",
        "New circuit.x\nNew LineCode.m nphases=3 units=km rmatrix=(1 | 0.1 1 | 0.1 0.1 1) \
         xmatrix=(2 | 0.2 2 | 0.2 0.2 2)\n",
    )])
    .unwrap();
    let z = c.linecodes["m"].z_per_m(1.0);
    assert!((z[0] - num_complex::Complex64::new(1e-3, 2e-3)).norm() < 1e-15);
    assert!((z[5] - num_complex::Complex64::new(1e-4, 2e-4)).norm() < 1e-15);
    assert_eq!(z[5], z[7], "symmetric");
}

#[test]
fn wildcards() {
    assert!(wildcard_match("*", "anything"));
    assert!(wildcard_match(".*", "anything"));
    assert!(wildcard_match("shape_*", "shape_12"));
    assert!(!wildcard_match("shape_*", "load_12"));
    assert!(wildcard_match("a*c", "abc"));
    assert!(wildcard_match("exact", "exact"));
    assert!(!wildcard_match("exact", "exactly"));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Script lines from the supported vocabulary with arbitrary values.
    fn script_line() -> impl Strategy<Value = String> {
        let class = prop_oneof![
            Just("circuit"),
            Just("Vsource"),
            Just("LineCode"),
            Just("Line"),
            Just("Transformer"),
            Just("Load"),
            Just("Loadshape"),
            Just("Monitor"),
            Just("Bogus"),
        ];
        let prop = prop_oneof![
            Just("bus1"),
            Just("bus2"),
            Just("phases"),
            Just("nphases"),
            Just("length"),
            Just("units"),
            Just("kV"),
            Just("kW"),
            Just("pf"),
            Just("kvar"),
            Just("model"),
            Just("buses"),
            Just("conns"),
            Just("kvs"),
            Just("kvas"),
            Just("wdg"),
            Just("windings"),
            Just("r1"),
            Just("x1"),
            Just("rmatrix"),
            Just("xmatrix"),
            Just("npts"),
            Just("mult"),
            Just("minterval"),
            Just("useactual"),
            Just("isc3"),
            Just("basekv"),
            Just("x"),
        ];
        let value = prop_oneof![
            "-?[0-9]{0,4}(\\.[0-9]{1,3})?",
            "[a-z_]{1,6}(\\.[0-9]){0,3}",
            "\\[[0-9. a-z]{0,12}\\]",
            "\\([0-9. |]{0,16}\\)",
            Just("(file=nothere.txt)".to_string()),
            "\\PC{0,6}",
        ];
        (
            prop_oneof![
                Just("New"),
                Just("Edit"),
                Just("batchedit"),
                Just("set"),
                Just("~")
            ],
            class,
            "[a-z0-9_]{1,4}",
            prop::collection::vec((prop, value), 0..5),
        )
            .prop_map(|(verb, class, name, props)| {
                let body: Vec<String> = props.iter().map(|(p, v)| format!("{p}={v}")).collect();
                let sep = if verb == "batchedit" { ".." } else { "." };
                format!("{verb} {class}{sep}{name} {}", body.join(" "))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any script of supported words with arbitrary values imports or
        /// fails with an error that names a place; it never panics.
        #[test]
        fn arbitrary_scripts_never_panic(lines in prop::collection::vec(script_line(), 0..12)) {
            let text = format!("New circuit.p\n{}\n", lines.join("\n"));
            match import(&[("Master.dss", &text)]) {
                // A later `New circuit.X` may rename it, but one always exists.
                Ok(c) => prop_assert!(!c.name.is_empty()),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.contains("Master.dss") || msg.contains("nothere.txt"), "{}", msg);
                }
            }
        }
    }
}

#[test]
fn zero_length_lines_are_refused_by_the_network_builder() {
    let c = import(&[(
        "Master.dss",
        "New circuit.x\nNew LineCode.lc R1=1 X1=1 R0=1 X0=1 units=km\n\
         New Line.l bus1=sourcebus bus2=b linecode=lc length=0 units=m\n",
    )])
    .unwrap();
    let err = crate::grid::network::Network::from_dss(&c).unwrap_err();
    assert!(
        err.to_string()
            .contains("line.l: its impedance matrix is singular"),
        "{err}"
    );
}
