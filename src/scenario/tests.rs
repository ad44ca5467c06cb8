use super::*;

fn load(src: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_source("t.ron", src, Path::new("/base"), "t")
}

fn diag(src: &str) -> String {
    load(src).unwrap_err().to_string()
}

#[test]
fn empty_struct_is_a_valid_scenario_with_defaults() {
    let s = load("()").unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.seed, 1);
    assert_eq!(s.duration.to_string(), "1h");
    assert_eq!(s.outputs.sample_interval.to_string(), "1min");
    assert_eq!(s.outputs.trace, Trace::Off);
    assert_eq!(s.max_events, None);
}

#[test]
fn two_lines_with_units_and_implicit_some() {
    let s = load("// study\n(duration: \"1h30min\", max_events: 500, outputs: ())").unwrap();
    assert_eq!(s.duration.as_nanos(), 5_400_000_000_000);
    assert_eq!(s.max_events, Some(500));
}

#[test]
fn misspelt_field_names_position_and_valid_names() {
    let src = "(\n    seed: 3,\n    outputs: (\n        sampel_interval: \"1min\",\n    ),\n)";
    let err = load(src).unwrap_err();
    let d = err.diagnostic().unwrap();
    assert_eq!((d.line, d.col), (4, 9), "{d}");
    assert!(d.message.contains("unknown field `sampel_interval`"), "{d}");
    let help = d.help.as_deref().unwrap();
    assert!(
        help.contains("valid fields: sample_interval, trace"),
        "{help}"
    );
    assert!(help.contains("did you mean `sample_interval`?"), "{help}");
}

#[test]
fn unknown_top_level_field() {
    let e = diag("(\n  sed: 3,\n)");
    assert!(e.starts_with("t.ron:2:3: unknown field `sed`"), "{e}");
}

#[test]
fn bad_duration_names_the_field_and_the_reason() {
    let err = load("(\n  duration: \"15 parsecs\",\n)").unwrap_err();
    let d = err.diagnostic().unwrap();
    assert_eq!(d.line, 2);
    assert_eq!(d.field.as_deref(), Some("duration"));
    assert!(d.message.contains("unknown or missing unit"), "{d}");
}

#[test]
fn duration_without_unit_is_refused() {
    let e = diag("(duration: 3600)");
    assert!(
        e.contains("not a duration: write it with a unit, e.g. \"3600s\""),
        "{e}"
    );
}

#[test]
fn wrong_type_names_the_nested_field() {
    let err = load("(\n  outputs: (trace: Loud),\n)").unwrap_err();
    let d = err.diagnostic().unwrap();
    assert_eq!(d.line, 2);
    assert!(d.message.contains("unknown variant `Loud`"), "{d}");
    assert!(d.help.as_deref().unwrap().contains("Off, Events"));
    assert_eq!(d.field.as_deref(), Some("outputs.trace"));
}

#[test]
fn syntax_errors_are_positioned() {
    let e = diag("(\n  seed: 3\n  duration: \"1h\",\n)");
    assert!(e.starts_with("t.ron:3:"), "{e}");
    let e = diag("(seed: 3) trailing");
    assert!(e.starts_with("t.ron:1:"), "{e}");
}

#[test]
fn cross_field_check_is_located_at_the_field() {
    let src = "(\n  duration: \"30s\",\n  outputs: (\n    sample_interval: \"1min\",\n  ),\n)";
    let err = load(src).unwrap_err();
    let d = err.diagnostic().unwrap();
    assert_eq!((d.line, d.col), (4, 22), "{d}");
    assert_eq!(d.field.as_deref(), Some("outputs.sample_interval"));
}

#[test]
fn cross_field_check_on_a_default_points_at_the_enclosing_field() {
    // The sample interval is the default (1 min); the file only says 30 s.
    let err = load("(\n  duration: \"30s\",\n)").unwrap_err();
    let d = err.diagnostic().unwrap();
    assert_eq!(d.line, 1, "{d}");
    assert!(d.message.contains("longer than the duration"), "{d}");
}

#[test]
fn zero_values_are_refused() {
    assert!(diag("(duration: \"0s\")").contains("longer than zero"));
    assert!(diag("(max_events: 0)").contains("at least 1"));
    assert!(diag("(outputs: (sample_interval: \"0\"))").contains("longer than zero"));
    assert!(diag("(name: \"a/b\")").contains("invalid scenario name"));
}

#[test]
fn resolved_form_round_trips_and_carries_the_seed() {
    let s = load("(duration: \"2h\", outputs: (trace: Events))")
        .unwrap()
        .with_seed(99);
    let text = s.to_resolved_ron();
    assert!(text.contains("seed: 99"), "{text}");
    assert!(text.contains("name: \"t\""), "{text}");
    let again = Scenario::from_source("r.ron", &text, Path::new("/base"), "other").unwrap();
    assert_eq!(again, s);
}

#[test]
fn paths_resolve_against_the_scenario_directory() {
    let s = load("()").unwrap();
    assert_eq!(
        s.resolve_path(Path::new("feeder/Master.dss")),
        Path::new("/base/feeder/Master.dss")
    );
    assert_eq!(
        s.resolve_path(Path::new("/abs/x.dss")),
        Path::new("/abs/x.dss")
    );
}

#[test]
fn unreadable_file_is_an_io_error() {
    let err = Scenario::load(Path::new("/nonexistent/dir/x.ron")).unwrap_err();
    assert!(matches!(err, ScenarioError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/dir/x.ron"));
}
