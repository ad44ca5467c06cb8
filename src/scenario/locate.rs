//! Finds where a field sits in RON source text, for errors that are found
//! after parsing (cross-field validation) and so carry no position of their
//! own.
//!
//! A small scanner walks the text once, skipping comments and strings, and
//! tracks the path of struct fields and list indices to each value.

/// One step of a path to a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A named field of a struct (or of a struct-like enum variant).
    Field(String),
    /// The n-th element of a list (from 0).
    Index(usize),
}

impl std::fmt::Display for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seg::Field(name) => f.write_str(name),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Renders a path as `outputs.sample_interval` or `faults[1].node`.
pub fn path_to_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        if matches!(seg, Seg::Field(_)) && !s.is_empty() {
            s.push('.');
        }
        s.push_str(&seg.to_string());
    }
    s
}

/// One open bracket while scanning.
struct Frame {
    /// `(` or `[`.
    kind: u8,
    /// For `[`: index of the current element.
    index: usize,
    /// For `(`: the field name whose value we are in, if any.
    field: Option<String>,
}

/// The byte range of the value of `path` (or of its key when the value is
/// empty), or `None` if the path is not written in the source.
pub fn locate(src: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let b = src.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                continue;
            }
            b'"' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' => stack.push(Frame {
                kind: c,
                index: 0,
                field: None,
            }),
            b')' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(top) = stack.last_mut() {
                    top.index += 1;
                    top.field = None;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let ident = &src[start..i];
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let is_key = b.get(j) == Some(&b':') && b.get(j + 1) != Some(&b':');
                if is_key && stack.last().is_some_and(|f| f.kind == b'(') {
                    if let Some(top) = stack.last_mut() {
                        top.field = Some(ident.to_string());
                    }
                    if current_path(&stack).as_slice() == path {
                        return Some(value_span(src, j + 1).unwrap_or((start, i)));
                    }
                    i = j + 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The path of fields and indices to the innermost open value.
fn current_path(stack: &[Frame]) -> Vec<Seg> {
    // The outermost `(` is the scenario itself and contributes no segment.
    let mut path = Vec::new();
    for frame in stack {
        match frame.kind {
            b'(' => {
                if let Some(f) = &frame.field {
                    path.push(Seg::Field(f.clone()));
                }
            }
            _ => path.push(Seg::Index(frame.index)),
        }
    }
    path
}

/// Skips a `"…"` string starting at `i`; returns the index after it.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The span of the value starting at or after `from`: up to the next `,` or
/// closing bracket at the same depth, trimmed.
fn value_span(src: &str, from: usize) -> Option<(usize, usize)> {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => break,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => break,
            b'\n' if depth == 0 => break,
            _ => {}
        }
        i += 1;
    }
    let end = start + src[start..i].trim_end().len();
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Seg {
        Seg::Field(s.into())
    }

    const SRC: &str = r#"// a comment with outputs: ( inside
(
    name: "x, y",   /* duration: "9h" */
    duration: "1h",
    outputs: (sample_interval: "2h", trace: Off),
    faults: [
        (at: "1s"),
        (at: "5s", kind: NodeDown(node: 3)),
    ],
)"#;

    fn text(path: &[Seg]) -> Option<&'static str> {
        locate(SRC, path).map(|(a, b)| &SRC[a..b])
    }

    #[test]
    fn finds_fields_nested_and_in_lists() {
        assert_eq!(text(&[f("duration")]), Some("\"1h\""));
        assert_eq!(text(&[f("outputs"), f("sample_interval")]), Some("\"2h\""));
        assert_eq!(text(&[f("outputs"), f("trace")]), Some("Off"));
        assert_eq!(text(&[f("faults"), Seg::Index(1), f("at")]), Some("\"5s\""));
        assert_eq!(
            text(&[f("faults"), Seg::Index(1), f("kind"), f("node")]),
            Some("3")
        );
    }

    #[test]
    fn ignores_comments_and_strings_and_misses_cleanly() {
        assert_eq!(text(&[f("name")]), Some("\"x, y\""));
        assert_eq!(text(&[f("seed")]), None);
        assert_eq!(text(&[f("faults"), Seg::Index(2), f("at")]), None);
    }

    #[test]
    fn renders_paths() {
        assert_eq!(
            path_to_string(&[f("faults"), Seg::Index(1), f("node")]),
            "faults[1].node"
        );
    }
}
