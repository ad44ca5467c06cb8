//! OpenDSS text → commands: comments, line continuations and parameter
//! tokens.
//!
//! OpenDSS scripts are line-based. `!` and `//` start a comment outside a
//! quoted value. A line that starts with `~` or `more` continues the previous
//! command. A command is a verb followed by parameters, each `name=value` or a
//! bare positional `value`, separated by spaces or commas. A value may be
//! quoted with `"…"`, `'…'`, `(…)`, `[…]` or `{…}`; the quotes are removed
//! and the inside kept verbatim.

use std::path::Path;

/// Where a command came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as it was named to the importer.
    pub file: String,
    /// 1-based line of the command's first line.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One parameter: `name=value`, or a positional `value` (name `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Lower-cased property name, if given.
    pub name: Option<String>,
    /// The value with its outer quotes removed.
    pub value: String,
}

/// One command: its verb (lower-cased) and parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Lower-cased verb: `new`, `edit`, `redirect`, `set`…
    pub verb: String,
    /// Parameters after the verb.
    pub params: Vec<Param>,
    /// Where the command starts.
    pub at: Location,
}

/// Why a script could not be tokenised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    /// Where.
    pub at: Location,
    /// What.
    pub message: String,
}

/// Splits a script into commands.
pub fn commands(file: &Path, text: &str) -> Result<Vec<Command>, LexError> {
    let name = file.display().to_string();
    let mut out: Vec<Command> = Vec::new();
    // Joined logical lines: (first line number, text).
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        // `~ …` or `more …` continues the previous command. `get` keeps the
        // slicing on character boundaries whatever the text.
        let more = trimmed
            .get(..4)
            .filter(|w| w.eq_ignore_ascii_case("more"))
            .and_then(|_| trimmed.get(4..))
            .filter(|r| r.starts_with(char::is_whitespace));
        let continuation = trimmed.strip_prefix('~').or(more);
        if let Some(rest) = continuation {
            match logical.last_mut() {
                Some((_, prev)) => {
                    prev.push(' ');
                    prev.push_str(rest);
                }
                None => {
                    return Err(LexError {
                        at: Location {
                            file: name,
                            line: i + 1,
                        },
                        message: "a continuation line (`~` or `more`) with no command before it"
                            .into(),
                    });
                }
            }
        } else {
            logical.push((i + 1, trimmed.to_string()));
        }
    }
    for (line, text) in logical {
        let at = Location {
            file: name.clone(),
            line,
        };
        let mut tokens = tokenize(&text).map_err(|message| LexError {
            at: at.clone(),
            message,
        })?;
        if tokens.is_empty() {
            continue;
        }
        let first = tokens.remove(0);
        // The verb is always bare; `name=value` as the first token is an
        // implicit `set` in OpenDSS, which this subset does not use.
        let verb = match first.name {
            None if first.value.trim().is_empty() => {
                return Err(LexError {
                    at,
                    message: "expected a command, found an empty value".into(),
                });
            }
            None => first.value.to_ascii_lowercase(),
            Some(n) => {
                return Err(LexError {
                    at,
                    message: format!("expected a command, found the parameter `{n}=`"),
                });
            }
        };
        out.push(Command {
            verb,
            params: tokens,
            at,
        });
    }
    Ok(out)
}

/// The line without its `!` or `//` comment (outside quotes).
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'!' => return &line[..i],
                b'/' if b.get(i + 1) == Some(&b'/') => return &line[..i],
                b'"' | b'\'' => quote = Some(c),
                _ => {}
            },
        }
        i += 1;
    }
    line
}

/// The closing delimiter of an opening quote.
fn closer(c: char) -> Option<char> {
    match c {
        '"' => Some('"'),
        '\'' => Some('\''),
        '(' => Some(')'),
        '[' => Some(']'),
        '{' => Some('}'),
        _ => None,
    }
}

/// Reads one value starting at `chars[i]`: quoted or bare.
fn read_value(chars: &[char], i: &mut usize) -> Result<String, String> {
    if let Some(close) = chars.get(*i).copied().and_then(closer) {
        let open = chars[*i];
        *i += 1;
        let start = *i;
        let mut depth = 1;
        while *i < chars.len() {
            let c = chars[*i];
            if c == close && (open == close || depth == 1) {
                let v: String = chars[start..*i].iter().collect();
                *i += 1;
                return Ok(v);
            }
            if open != close && c == open {
                depth += 1;
            } else if open != close && c == close {
                depth -= 1;
            }
            *i += 1;
        }
        return Err(format!("unclosed `{open}`"));
    }
    let start = *i;
    while *i < chars.len() && !chars[*i].is_whitespace() && chars[*i] != ',' && chars[*i] != '=' {
        *i += 1;
    }
    Ok(chars[start..*i].iter().collect())
}

/// Splits a logical line into parameters.
fn tokenize(text: &str) -> Result<Vec<Param>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_sep = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    loop {
        skip_sep(&mut i);
        if i >= chars.len() {
            break;
        }
        let first = read_value(&chars, &mut i)?;
        // `name = value`, spaces around `=` allowed.
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' {
            j += 1;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            i = j;
            let value = if i < chars.len() {
                read_value(&chars, &mut i)?
            } else {
                String::new()
            };
            out.push(Param {
                name: Some(first.to_ascii_lowercase()),
                value,
            });
        } else {
            out.push(Param {
                name: None,
                value: first,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(text: &str) -> Vec<Command> {
        commands(Path::new("t.dss"), text).unwrap()
    }

    #[test]
    fn comments_continuations_and_quotes() {
        let c = cmds(
            "// header\nNew Line.L1 Bus1=1 bus2 = 2 ! trailing\n~ length=0.5, units=m\n\
             more phases=3\nNew Loadshape.S mult=(file=a b.txt) name=\"x!y\"\n",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].verb, "new");
        assert_eq!(c[0].at.line, 2);
        let names: Vec<_> = c[0].params.iter().map(|p| p.name.clone()).collect();
        assert_eq!(
            names,
            vec![
                None,
                Some("bus1".into()),
                Some("bus2".into()),
                Some("length".into()),
                Some("units".into()),
                Some("phases".into())
            ]
        );
        assert_eq!(c[0].params[0].value, "Line.L1");
        assert_eq!(c[1].params[1].value, "file=a b.txt");
        assert_eq!(c[1].params[2].value, "x!y");
    }

    #[test]
    fn nested_brackets_and_arrays() {
        let c = cmds("New Transformer.T Buses=[SourceBus 1] kVs=[11 0.416] rmatrix=(1 | 2 3)");
        assert_eq!(c[0].params[1].value, "SourceBus 1");
        assert_eq!(c[0].params[2].value, "11 0.416");
        assert_eq!(c[0].params[3].value, "1 | 2 3");
    }

    #[test]
    fn errors_name_the_line() {
        let e = commands(Path::new("t.dss"), "\n~ length=1").unwrap_err();
        assert_eq!(e.at.to_string(), "t.dss:2");
        let e = commands(Path::new("t.dss"), "New Line.L bus1=(1 2").unwrap_err();
        assert!(e.message.contains("unclosed"), "{}", e.message);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text gives commands or a located error, never a panic, and
        /// every command's line lies within the text.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}|[a-z=~!/ ()\\[\\]\"'.,\n0-9]{0,200}") {
            match commands(Path::new("p.dss"), &text) {
                Ok(cmds) => {
                    let lines = text.lines().count();
                    for c in cmds {
                        prop_assert!(c.at.line >= 1 && c.at.line <= lines);
                        prop_assert!(!c.verb.is_empty());
                    }
                }
                Err(e) => prop_assert!(e.at.line >= 1 && !e.message.is_empty()),
            }
        }
    }
}
