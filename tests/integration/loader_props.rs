//! The loader never panics: arbitrary bytes and arbitrary RON trees give a
//! scenario or a positioned error, nothing else.

use std::path::Path;

use gridtwin::scenario::Scenario;
use proptest::prelude::*;

fn load(src: &str) -> Result<Scenario, gridtwin::scenario::ScenarioError> {
    Scenario::from_source("p.ron", src, Path::new("."), "p")
}

/// Whatever the input, an error points inside it and a success re-loads
/// from its resolved form to the same scenario.
fn assert_well_behaved(src: &str) -> Result<(), TestCaseError> {
    match load(src) {
        Ok(s) => {
            let again = load(&s.to_resolved_ron());
            prop_assert_eq!(again.ok(), Some(s));
        }
        Err(e) => {
            let d = e.diagnostic().expect("text errors carry a position");
            let lines = src.split('\n').count();
            prop_assert!(
                d.line >= 1 && d.line <= lines,
                "line {} of {}",
                d.line,
                lines
            );
            prop_assert!(d.col >= 1);
            prop_assert!(!d.message.is_empty());
        }
    }
    Ok(())
}

/// Field names the loader knows, plus near misses and junk.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name"),
        Just("seed"),
        Just("duration"),
        Just("max_events"),
        Just("outputs"),
        Just("sample_interval"),
        Just("trace"),
        Just("sed"),
        Just("r#trace"),
        Just("_"),
    ]
    .prop_map(str::to_string)
}

/// Arbitrary RON values: scalars of every kind, durations good and bad,
/// structs with plausible keys, lists, options, enum variants.
fn ron_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        any::<bool>().prop_map(|v| v.to_string()),
        "[0-9]{1,4}(ns|us|ms|s|min|h|d|x)?".prop_map(|s| format!("{s:?}")),
        "\\PC{0,8}".prop_map(|s| format!("{s:?}")),
        prop_oneof![Just("Off"), Just("Events"), Just("None"), Just("()")].prop_map(str::to_string),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((key(), inner.clone()), 0..6).prop_map(|fields| {
                let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("({})", body.join(", "))
            }),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            inner.clone().prop_map(|v| format!("Some({v})")),
            inner.prop_map(|v| format!("NodeDown({v})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        assert_well_behaved(&text)?;
    }

    #[test]
    fn arbitrary_ron_trees_never_panic(tree in ron_value(), ws in "[ \n\t]{0,3}") {
        assert_well_behaved(&format!("{ws}{tree}{ws}"))?;
    }

    #[test]
    fn scenario_shaped_trees_never_panic(
        fields in prop::collection::vec((key(), ron_value()), 0..6)
    ) {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("  {k}: {v},\n")).collect();
        assert_well_behaved(&format!("// generated\n(\n{}\n)", body.concat()))?;
    }
}
