//! DTOs → [`Scenario`]: cross-field checks, and turning ron's errors into
//! positioned diagnostics with help.

use std::path::Path;

use super::dto::{ScenarioFile, TraceFile};
use super::error::{ScenarioDiagnostic, ScenarioError, offset_of};
use super::locate::{Seg, locate, path_to_string};
use super::{OutputSettings, Scenario, Trace};

/// A mistake found after parsing, at a path in the file.
struct Invalid {
    path: Vec<Seg>,
    message: String,
    help: Option<String>,
}

fn field(path: &[&str]) -> Vec<Seg> {
    path.iter().map(|s| Seg::Field((*s).to_string())).collect()
}

pub(super) fn validate(
    dto: ScenarioFile,
    file: &str,
    src: &str,
    base_dir: &Path,
    default_name: &str,
) -> Result<Scenario, ScenarioError> {
    check(&dto, default_name).map_err(|inv| invalid_at(file, src, inv))?;
    Ok(Scenario {
        base_dir: base_dir.to_path_buf(),
        name: dto.name.unwrap_or_else(|| default_name.to_string()),
        seed: dto.seed,
        duration: dto.duration,
        max_events: dto.max_events,
        outputs: OutputSettings {
            sample_interval: dto.outputs.sample_interval,
            trace: match dto.outputs.trace {
                TraceFile::Off => Trace::Off,
                TraceFile::Events => Trace::Events,
            },
        },
    })
}

fn check(dto: &ScenarioFile, default_name: &str) -> Result<(), Invalid> {
    let name = dto.name.as_deref().unwrap_or(default_name);
    let name_ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return Err(Invalid {
            path: field(&["name"]),
            message: format!("invalid scenario name {name:?}"),
            help: Some(
                "the name becomes a folder name: use letters, digits, `_`, `-` and `.`".into(),
            ),
        });
    }
    if dto.duration.is_zero() {
        return Err(Invalid {
            path: field(&["duration"]),
            message: "the duration must be longer than zero".into(),
            help: Some("write e.g. \"1h\" or \"24h\"".into()),
        });
    }
    if dto.max_events == Some(0) {
        return Err(Invalid {
            path: field(&["max_events"]),
            message: "the event budget must be at least 1".into(),
            help: Some("leave `max_events` out for no budget".into()),
        });
    }
    let sample = dto.outputs.sample_interval;
    if sample.is_zero() {
        return Err(Invalid {
            path: field(&["outputs", "sample_interval"]),
            message: "the sample interval must be longer than zero".into(),
            help: None,
        });
    }
    if sample > dto.duration {
        return Err(Invalid {
            path: field(&["outputs", "sample_interval"]),
            message: format!(
                "the sample interval {sample} is longer than the duration {}",
                dto.duration
            ),
            help: Some("shorten `outputs.sample_interval` or lengthen `duration`".into()),
        });
    }
    Ok(())
}

/// Positions a post-parse mistake at its field, or at the nearest enclosing
/// field that is written, or at the start of the file.
fn invalid_at(file: &str, src: &str, inv: Invalid) -> ScenarioError {
    let span = (0..=inv.path.len())
        .rev()
        .find_map(|n| locate(src, &inv.path[..n]))
        .unwrap_or_else(|| first_token(src));
    ScenarioError::Invalid(Box::new(ScenarioDiagnostic::new(
        file,
        src,
        span,
        inv.message,
        Some(path_to_string(&inv.path)),
        "here",
        inv.help,
    )))
}

/// The span of the first non-comment, non-space character.
fn first_token(src: &str) -> (usize, usize) {
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with("//") {
            let at = offset + (line.len() - t.len());
            return (at, at + 1);
        }
        offset += line.len();
    }
    (0, 0)
}

/// Turns a ron error (syntax, unknown field, bad value) into a diagnostic.
pub(super) fn ron_error(
    file: &str,
    src: &str,
    e: ron::error::SpannedError,
    field: Option<String>,
) -> ScenarioError {
    use ron::error::Error as E;
    let start = offset_of(src, e.span.start.line, e.span.start.col);
    let end = offset_of(src, e.span.end.line, e.span.end.col).max(start);
    let (message, label, help) = match &e.code {
        // ron's `outer` names the Rust type, which means nothing to the
        // user; the field path (`at outputs.x`) says where instead.
        E::NoSuchStructField {
            expected, found, ..
        } => (
            format!("unknown field `{found}`"),
            "unknown field",
            Some(choices_help("fields", expected, found)),
        ),
        E::NoSuchEnumVariant {
            expected, found, ..
        } => (
            format!("unknown variant `{found}`"),
            "unknown variant",
            Some(choices_help("variants", expected, found)),
        ),
        E::DuplicateStructField { field, .. } => (
            format!("field `{field}` is given twice"),
            "second time",
            Some("remove one of them".to_string()),
        ),
        E::Message(m) => (m.clone(), "here", None),
        other => (other.to_string(), "here", None),
    };
    // A field name alone is not a useful path for a syntax error at the top.
    let field = field.filter(|f| !f.is_empty());
    ScenarioError::Invalid(Box::new(ScenarioDiagnostic::new(
        file,
        src,
        (start, end),
        message,
        field,
        label,
        help,
    )))
}

/// "valid fields: a, b, c; did you mean `b`?"
fn choices_help(what: &str, expected: &[&str], found: &str) -> String {
    let mut help = if expected.is_empty() {
        format!("no {what} are allowed here")
    } else {
        format!("valid {what}: {}", expected.join(", "))
    };
    let best = expected
        .iter()
        .map(|c| (strsim::jaro_winkler(c, found), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, suggestion)) = best {
        help.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    help
}
