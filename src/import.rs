//! Reading many secrets at once for `pprotect import`: dotenv files
//! (`NAME=value`, `export NAME=value`, quoted values, `#` comments, as
//! dotenv parsers accept them, and the shell quoting `decrypt-domain
//! --output-format env|shell` writes) and JSON objects of strings.
//!
//! Errors name the line, never a value.

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::model::is_valid_secret_name;

/// The format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `NAME=value` lines.
    Dotenv,
    /// `{"name": "value"}`.
    Json,
}

impl Format {
    /// From `--format`, else the file's extension (`.json`), else dotenv.
    pub fn choose(flag: Option<&str>, path: &str) -> Result<Format> {
        match flag {
            Some("dotenv") | Some("env") => Ok(Format::Dotenv),
            Some("json") => Ok(Format::Json),
            Some(_) => Err(Error::refused("--format must be one of: dotenv, json")),
            None if path.to_ascii_lowercase().ends_with(".json") => Ok(Format::Json),
            None => Ok(Format::Dotenv),
        }
    }
}

/// One secret read: name, value, and the line it is on.
#[derive(Debug)]
pub struct Item {
    /// The secret name.
    pub name: String,
    /// The value (zeroized on drop, redacted in `Debug`).
    pub value: SecretString,
    /// Its line (1-based).
    pub line: usize,
}

fn bad(line: usize, what: impl Into<String>) -> Error {
    Error::invalid(Some(line), what.into())
}

/// Parse `text` as `format`. Names must be valid secret names and appear
/// once; values are strings.
pub fn parse(text: &str, format: Format) -> Result<Vec<Item>> {
    let items = match format {
        Format::Dotenv => parse_dotenv(text)?,
        Format::Json => parse_json(text)?,
    };
    let mut seen = std::collections::BTreeMap::new();
    for it in &items {
        if !is_valid_secret_name(&it.name) {
            return Err(bad(
                it.line,
                format!(
                    "invalid secret name {}: names begin with a letter and hold only ASCII letters, digits, '-' and '_'",
                    crate::ops::py_repr(&it.name)
                ),
            ));
        }
        if let Some(first) = seen.insert(it.name.clone(), it.line) {
            return Err(bad(
                it.line,
                format!("secret {} is set twice (first at line {first})", it.name),
            ));
        }
    }
    Ok(items)
}

fn parse_json(text: &str) -> Result<Vec<Item>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| bad(e.line(), format!("not valid JSON: {}", json_reason(&e))))?;
    let serde_json::Value::Object(map) = value else {
        return Err(bad(1, "expected a JSON object of names to string values"));
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, v) in map {
        let line = key_line(text, &name);
        let serde_json::Value::String(s) = v else {
            return Err(bad(line, format!("the value of {name} is not a string")));
        };
        out.push(Item {
            name,
            value: SecretString::from(s),
            line,
        });
    }
    out.sort_by_key(|i| i.line);
    Ok(out)
}

/// serde_json's message without the value it may quote.
fn json_reason(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "cannot read",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Eof => "unexpected end of input",
    }
}

/// The line where `"name"` first appears as a key.
fn key_line(text: &str, name: &str) -> usize {
    let quoted = serde_json::to_string(name).unwrap_or_default();
    text.find(&quoted)
        .map_or(1, |at| text[..at].matches('\n').count() + 1)
}

fn parse_dotenv(text: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        // Skip blank space and comments between entries.
        match chars[i] {
            '\n' => {
                line += 1;
                i += 1;
                continue;
            }
            ' ' | '\t' | '\r' => {
                i += 1;
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let start_line = line;
        let mut name = String::new();
        while i < chars.len() && !matches!(chars[i], '=' | '\n' | ' ' | '\t' | ':') {
            name.push(chars[i]);
            i += 1;
        }
        if name == "export" && i < chars.len() && matches!(chars[i], ' ' | '\t') {
            while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                i += 1;
            }
            name.clear();
            while i < chars.len() && !matches!(chars[i], '=' | '\n' | ' ' | '\t' | ':') {
                name.push(chars[i]);
                i += 1;
            }
        }
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        if i >= chars.len() || !matches!(chars[i], '=' | ':') {
            return Err(bad(start_line, "expected NAME=value"));
        }
        i += 1;
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        let mut value = Zeroizing::new(String::new());
        if i < chars.len() && chars[i] == '"' && whole_double_quoted(&chars, i) {
            // dotenv double quotes: escapes, may span lines.
            i += 1;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(bad(start_line, "unterminated double-quoted value"));
                };
                i += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else {
                            return Err(bad(line, "unterminated double-quoted value"));
                        };
                        i += 1;
                        match e {
                            'n' => value.push('\n'),
                            'r' => value.push('\r'),
                            't' => value.push('\t'),
                            '\n' => line += 1,
                            other => value.push(other),
                        }
                    }
                    '\n' => {
                        line += 1;
                        value.push('\n');
                    }
                    c => value.push(c),
                }
            }
        } else {
            // Shell words: unquoted text, '...' (literal) and "..." runs,
            // as shell quoting writes them (`'it'"'"'s'`); an unquoted
            // ` #` starts a comment. Trailing blanks are trimmed only
            // outside quotes.
            let mut quoted_len = 0;
            while let Some(&c) = chars.get(i) {
                match c {
                    '\n' => break,
                    '\'' => {
                        i += 1;
                        loop {
                            let Some(&q) = chars.get(i) else {
                                return Err(bad(start_line, "unterminated single-quoted value"));
                            };
                            i += 1;
                            if q == '\'' {
                                break;
                            }
                            if q == '\n' {
                                line += 1;
                            }
                            value.push(q);
                        }
                        quoted_len = value.len();
                    }
                    '"' => {
                        i += 1;
                        loop {
                            let Some(&q) = chars.get(i) else {
                                return Err(bad(start_line, "unterminated double-quoted value"));
                            };
                            i += 1;
                            match q {
                                '"' => break,
                                '\\' if matches!(chars.get(i), Some('"' | '\\' | '$' | '`')) => {
                                    value.push(chars[i]);
                                    i += 1;
                                }
                                '\n' => {
                                    line += 1;
                                    value.push('\n');
                                }
                                q => value.push(q),
                            }
                        }
                        quoted_len = value.len();
                    }
                    '#' if value.is_empty() || value.ends_with(' ') || value.ends_with('\t') => {
                        while i < chars.len() && chars[i] != '\n' {
                            i += 1;
                        }
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            let trimmed = value.trim_end().len().max(quoted_len);
            value.truncate(trimmed);
        }
        // Only blank space or a comment may follow on the line.
        while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\r') {
            i += 1;
        }
        if i < chars.len() && chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        }
        if i < chars.len() && chars[i] != '\n' {
            return Err(bad(line, "unexpected text after the value"));
        }
        out.push(Item {
            name,
            value: SecretString::from(value.to_string()),
            line: start_line,
        });
    }
    Ok(out)
}

/// Whether the double-quoted string at `at` is the whole value (dotenv's
/// form), not the start of shell words.
fn whole_double_quoted(chars: &[char], at: usize) -> bool {
    let mut i = at + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => {
                let mut j = i + 1;
                while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\r') {
                    j += 1;
                }
                return j >= chars.len() || chars[j] == '\n' || chars[j] == '#';
            }
            _ => i += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn pairs(items: &[Item]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|i| (i.name.clone(), i.value.expose_secret().to_string()))
            .collect()
    }

    #[test]
    fn dotenv_forms() {
        let text = "# comment\nA=plain\nexport B='single # not a comment'\nC=\"dq\\nline\"\nD=unquoted # comment\n\nE='it'\"'\"'s'\nF=\"multi\nline\"\nG=\n";
        let got = pairs(&parse(text, Format::Dotenv).unwrap());
        assert_eq!(
            got,
            vec![
                ("A".into(), "plain".into()),
                ("B".into(), "single # not a comment".into()),
                ("C".into(), "dq\nline".into()),
                ("D".into(), "unquoted".into()),
                ("E".into(), "it's".into()),
                ("F".into(), "multi\nline".into()),
                ("G".into(), String::new()),
            ]
        );
        let items = parse(text, Format::Dotenv).unwrap();
        assert_eq!(items[4].line, 7);
        assert_eq!(items[6].line, 10);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("A=1\nnot a line\n", Format::Dotenv).unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = parse("A=1\nB='open\n", Format::Dotenv).unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = parse("A=1\nA=2\n", Format::Dotenv).unwrap_err();
        assert!(e.to_string().contains("set twice"));
        let e = parse("A=1\nbad name!=2\n", Format::Dotenv).unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = parse("{\n\"ok\": \"1\",\n\"n\": 2\n}", Format::Json).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(!e.to_string().contains('2') || e.to_string().contains("line 3"));
        let got = pairs(&parse("{\"a\": \"x\", \"b\": \"y\\n\"}", Format::Json).unwrap());
        assert_eq!(
            got,
            vec![("a".into(), "x".into()), ("b".into(), "y\n".into())]
        );
    }
}
