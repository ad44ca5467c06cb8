//! Every invalid file in `scenarios/tests/invalid/` is refused by
//! `gridtwin check` with exit code 2 and the message its first line
//! promises, at `file:line:col`.

use crate::{at, gridtwin, stderr};

#[test]
fn invalid_scenarios_print_their_expected_messages() {
    let dir = at("scenarios/tests/invalid");
    let mut n = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `// expect:` line", path.display()));
        let rel = format!(
            "scenarios/tests/invalid/{}",
            path.file_name().unwrap().to_str().unwrap()
        );
        let o = gridtwin(&["check", &rel]);
        assert_eq!(o.status.code(), Some(2), "{rel} was accepted");
        let err = stderr(&o);
        let wanted = format!("{rel}:{expect}");
        assert!(
            err.contains(&wanted),
            "{rel}: expected `{wanted}` in:\n{err}"
        );
        // miette shows the offending line with its number.
        assert!(err.contains('│'), "no source snippet for {rel}:\n{err}");
        n += 1;
    }
    assert!(n >= 6, "only {n} invalid scenarios found");
}

#[test]
fn misspelt_field_lists_valid_names_and_a_suggestion() {
    let o = gridtwin(&["check", "scenarios/tests/invalid/misspelt_field.ron"]);
    let err = stderr(&o);
    assert!(
        err.contains("valid fields: sample_interval, trace"),
        "{err}"
    );
    assert!(err.contains("did you mean `sample_interval`?"), "{err}");
    assert!(
        err.contains("sampel_interval: \"1min\""),
        "no offending line:\n{err}"
    );
}
