//! JSON output byte-identical to Python's `json.dumps(obj, indent=2,
//! sort_keys=True)` (ASCII-only output, `\uXXXX` escapes, surrogate pairs).

use std::fmt::Write as _;

/// A JSON value to print.
pub enum Json<'a> {
    /// `null`.
    Null,
    /// A string.
    Str(&'a str),
    /// An array.
    Arr(Vec<Json<'a>>),
    /// An object; printed with its keys sorted.
    Obj(Vec<(&'a str, Json<'a>)>),
}

/// Python `json.dumps` string escaping with `ensure_ascii=True`.
pub fn escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Serialize with indent 2 and sorted keys.
pub fn dumps(v: &Json<'_>) -> String {
    let mut out = String::new();
    write_value(v, 0, &mut out);
    out
}

fn write_value(v: &Json<'_>, level: usize, out: &mut String) {
    let pad = |n: usize, out: &mut String| {
        out.push('\n');
        for _ in 0..n * 2 {
            out.push(' ');
        }
    };
    match v {
        Json::Null => out.push_str("null"),
        Json::Str(s) => escape(s, out),
        Json::Arr(items) if items.is_empty() => out.push_str("[]"),
        Json::Obj(items) if items.is_empty() => out.push_str("{}"),
        Json::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(level + 1, out);
                write_value(item, level + 1, out);
            }
            pad(level, out);
            out.push(']');
        }
        Json::Obj(items) => {
            let mut sorted: Vec<&(&str, Json<'_>)> = items.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(level + 1, out);
                escape(k, out);
                out.push_str(": ");
                write_value(item, level + 1, out);
            }
            pad(level, out);
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_python() {
        let v = Json::Obj(vec![
            ("b", Json::Str("x\u{e9}\u{1F600}\x01")),
            ("a", Json::Arr(vec![])),
        ]);
        assert_eq!(
            dumps(&v),
            "{\n  \"a\": [],\n  \"b\": \"x\\u00e9\\ud83d\\ude00\\u0001\"\n}"
        );
    }
}
