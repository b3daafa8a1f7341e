//! JSON output byte-identical to Python's `json.dumps(obj, indent=2,
//! sort_keys=True)`, through serde: keys sorted, two-space indent, `": "`
//! and `","` separators, and ASCII-only text (`\uXXXX` escapes, surrogate
//! pairs for characters outside the BMP, `\u007f` included).

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

/// Serialize `v` as Python's `json.dumps(v, indent=2, sort_keys=True)`
/// would (no trailing newline).
pub fn to_string<T: Serialize + ?Sized>(v: &T) -> String {
    // Through a `Value`, whose maps keep their keys sorted.
    let value = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter::default());
    if value.serialize(&mut ser).is_err() {
        return "null".to_string();
    }
    // Everything written is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// [`to_string`] for values holding secrets: serialized directly, never
/// through an intermediate copy, into a buffer zeroized on drop. Keys are
/// written in the value's own order (a `BTreeMap`'s is sorted).
pub fn to_secret_string<T: Serialize + ?Sized>(v: &T) -> zeroize::Zeroizing<String> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, PythonFormatter::default());
    if v.serialize(&mut ser).is_err() {
        return zeroize::Zeroizing::new("null".to_string());
    }
    zeroize::Zeroizing::new(String::from_utf8(std::mem::take(&mut *out)).unwrap_or_default())
}

/// serde_json's pretty printer, with Python's `ensure_ascii` escaping.
#[derive(Default)]
struct PythonFormatter {
    pretty: PrettyFormatter<'static>,
}

impl Formatter for PythonFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{u:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn like_python() {
        let mut m: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        m.insert("b", "x\u{e9}\u{1F600}\x01\x7f\"\\\n\t\x08\x0c".into());
        m.insert("a", serde_json::json!([]));
        m.insert("c", serde_json::json!({}));
        m.insert("d", serde_json::json!([null, ["z"]]));
        assert_eq!(
            super::to_string(&m),
            "{\n  \"a\": [],\n  \"b\": \"x\\u00e9\\ud83d\\ude00\\u0001\\u007f\\\"\\\\\\n\\t\\b\\f\",\n  \"c\": {},\n  \"d\": [\n    null,\n    [\n      \"z\"\n    ]\n  ]\n}"
        );
        #[derive(serde::Serialize)]
        struct Unsorted {
            zeta: u8,
            alpha: Option<&'static str>,
        }
        assert_eq!(
            super::to_string(&Unsorted {
                zeta: 1,
                alpha: None
            }),
            "{\n  \"alpha\": null,\n  \"zeta\": 1\n}"
        );
    }
}
