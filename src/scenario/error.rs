//! Scenario errors: every mistake names `file:line:col` and the field at
//! fault, and renders like a compiler error (miette).

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not a valid scenario: a syntax error, an unknown field, a
    /// bad value or a failed cross-field check.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<ScenarioDiagnostic>),
}

impl ScenarioError {
    /// The positioned diagnostic, if this is a mistake in the text.
    pub fn diagnostic(&self) -> Option<&ScenarioDiagnostic> {
        match self {
            ScenarioError::Invalid(d) => Some(d),
            ScenarioError::Io { .. } => None,
        }
    }
}

/// A mistake at a place in a scenario file.
///
/// Its `Display` is one line, `file:line:col: message (at field)`; rendered
/// through miette it also shows the offending line with the span underlined
/// and a help text (for a misspelt field: the valid names).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{col}: {message}{}", field.as_ref().map(|f| format!(" (at {f})")).unwrap_or_default())]
pub struct ScenarioDiagnostic {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line of the mistake.
    pub line: usize,
    /// 1-based column (in characters) of the mistake.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// Dotted path of the field at fault, e.g. `outputs.sample_interval`.
    pub field: Option<String>,
    /// What to do about it: valid names, a suggestion, the expected form.
    #[help]
    pub help: Option<String>,
    #[source_code]
    src: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
}

impl ScenarioDiagnostic {
    /// A diagnostic at byte range `span` of `src`.
    pub(crate) fn new(
        file: &str,
        src: &str,
        span: (usize, usize),
        message: String,
        field: Option<String>,
        label: &str,
        help: Option<String>,
    ) -> ScenarioDiagnostic {
        let (start, end) = clamp_span(src, span);
        let (line, col) = line_col(src, start);
        ScenarioDiagnostic {
            file: file.to_string(),
            line,
            col,
            message,
            field,
            help,
            src: NamedSource::new(file, src.to_string()),
            span: SourceSpan::new(start.into(), end - start),
            label: label.to_string(),
        }
    }
}

/// Keeps a span inside the text and on character boundaries.
fn clamp_span(src: &str, (start, end): (usize, usize)) -> (usize, usize) {
    let mut s = start.min(src.len());
    while !src.is_char_boundary(s) {
        s -= 1;
    }
    let mut e = end.clamp(s, src.len());
    while !src.is_char_boundary(e) {
        e += 1;
    }
    (s, e)
}

/// 1-based line and character column of byte offset `at`.
pub(crate) fn line_col(src: &str, at: usize) -> (usize, usize) {
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Byte offset of 1-based `line` and character column `col`, clamped to the
/// text.
pub(crate) fn offset_of(src: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (n, text) in src.split_inclusive('\n').enumerate() {
        if n + 1 == line {
            let within = text
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(text.trim_end_matches('\n').len(), |(i, _)| i);
            return offset + within;
        }
        offset += text.len();
    }
    src.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_positions_agree() {
        let src = "ab\nµcd\n\nx";
        for (line, col) in [(1, 1), (1, 3), (2, 1), (2, 2), (2, 3), (3, 1), (4, 1)] {
            assert_eq!(line_col(src, offset_of(src, line, col)), (line, col));
        }
        assert_eq!(offset_of(src, 99, 1), src.len());
    }

    #[test]
    fn display_is_one_line_with_position_and_field() {
        let d = ScenarioDiagnostic::new(
            "s.ron",
            "(\n  seed: x,\n)",
            (10, 11),
            "expected an integer".into(),
            Some("seed".into()),
            "here",
            None,
        );
        assert_eq!(d.to_string(), "s.ron:2:9: expected an integer (at seed)");
    }
}
