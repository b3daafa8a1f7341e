//! Quoted scalars read as ruamel.yaml (and so pocket_protector) reads them.
//!
//! ruamel's scanner counts U+0085 (NEL), U+2028 (LS) and U+2029 (PS) as
//! line breaks, as YAML 1.1 did; YAML 1.2 parsers (saphyr included) read
//! them as content. ruamel also writes them raw into single-quoted scalars
//! (`'a<LS>  b'`: the break, then the indentation of the next "line"). To
//! read such a scalar the way the Python tool does, [`decode`] follows
//! ruamel's flow-scalar scanner on the scalar's source text: a break
//! drops the whitespace around it; NEL reads as `\n` (folded to a space
//! when alone); LS and PS stay as themselves, each followed by any further
//! breaks.
//!
//! The parser calls this only for quoted scalars whose source holds one of
//! the three characters; every other scalar reads as before.

/// Whether `c` is a line break to ruamel.
fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Whether `text` holds a character only ruamel counts as a line break.
pub(super) fn has_extra_breaks(text: &str) -> bool {
    text.contains(['\u{85}', '\u{2028}', '\u{2029}'])
}

/// Decode a quoted scalar's source (quotes included) as ruamel does, or
/// say why ruamel refuses it.
pub(super) fn decode(raw: &str) -> Result<String, &'static str> {
    let mut chars: Vec<char> = raw.chars().collect();
    let quote = chars.first().copied().ok_or("an empty quoted scalar")?;
    let double = quote == '"';
    if !(double || quote == '\'') || chars.len() < 2 || chars[chars.len() - 1] != quote {
        return Err("a quoted scalar without its quotes");
    }
    chars.pop();
    let mut s = Scanner {
        chars: &chars[1..],
        pos: 0,
        double,
        out: String::new(),
    };
    s.non_spaces()?;
    while s.pos < s.chars.len() {
        s.spaces()?;
        s.non_spaces()?;
    }
    Ok(s.out)
}

struct Scanner<'a> {
    chars: &'a [char],
    pos: usize,
    double: bool,
    out: String,
}

impl Scanner<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// Text up to whitespace or a break, with quotes and escapes resolved.
    fn non_spaces(&mut self) -> Result<(), &'static str> {
        loop {
            while let Some(c) = self.peek(0) {
                if matches!(c, '\'' | '"' | '\\' | ' ' | '\t') || is_break(c) {
                    break;
                }
                self.out.push(c);
                self.pos += 1;
            }
            match self.peek(0) {
                Some('\'') if !self.double && self.peek(1) == Some('\'') => {
                    self.out.push('\'');
                    self.pos += 2;
                }
                Some('\'') if self.double => {
                    self.out.push('\'');
                    self.pos += 1;
                }
                Some(c @ ('"' | '\\')) if !self.double => {
                    self.out.push(c);
                    self.pos += 1;
                }
                Some('\\') if self.double => {
                    self.pos += 1;
                    self.escape()?;
                }
                // A lone quote inside cannot happen: the scalar's source
                // ends at its closing quote.
                _ => return Ok(()),
            }
        }
    }

    fn escape(&mut self) -> Result<(), &'static str> {
        let c = self
            .peek(0)
            .ok_or("an escape at the end of a quoted scalar")?;
        let simple = match c {
            '0' => Some('\0'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            't' | '\t' => Some('\t'),
            'n' => Some('\n'),
            'v' => Some('\u{b}'),
            'f' => Some('\u{c}'),
            'r' => Some('\r'),
            'e' => Some('\u{1b}'),
            ' ' => Some(' '),
            '"' => Some('"'),
            '/' => Some('/'),
            '\\' => Some('\\'),
            'N' => Some('\u{85}'),
            '_' => Some('\u{a0}'),
            'L' => Some('\u{2028}'),
            'P' => Some('\u{2029}'),
            _ => None,
        };
        if let Some(r) = simple {
            self.out.push(r);
            self.pos += 1;
            return Ok(());
        }
        let digits = match c {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            c if is_break(c) => {
                // An escaped line break: the break and the indentation
                // after it vanish.
                self.line_break();
                let breaks = self.breaks()?;
                self.out.push_str(&breaks);
                return Ok(());
            }
            _ => return Err("an unknown escape in a double-quoted scalar"),
        };
        self.pos += 1;
        let hex: String = (0..digits).filter_map(|i| self.peek(i)).collect();
        if hex.chars().count() != digits || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
            return Err("a short hexadecimal escape in a double-quoted scalar");
        }
        let code = u32::from_str_radix(&hex, 16).map_err(|_| "a bad hexadecimal escape")?;
        let ch = char::from_u32(code).ok_or("an escape that is not a character")?;
        self.out.push(ch);
        self.pos += digits;
        Ok(())
    }

    /// Whitespace, and the line breaks it surrounds, folded.
    fn spaces(&mut self) -> Result<(), &'static str> {
        let start = self.pos;
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.pos += 1;
        }
        match self.peek(0) {
            Some(c) if is_break(c) => {
                let first = self.line_break();
                let breaks = self.breaks()?;
                if first != '\n' {
                    self.out.push(first);
                } else if breaks.is_empty() {
                    self.out.push(' ');
                }
                self.out.push_str(&breaks);
                Ok(())
            }
            // Whitespace before another character or the closing quote.
            _ => {
                self.out.extend(&self.chars[start..self.pos]);
                Ok(())
            }
        }
    }

    /// One line break: CR LF, CR, LF and NEL read as `\n`; LS and PS as
    /// themselves.
    fn line_break(&mut self) -> char {
        match self.peek(0) {
            Some('\r') if self.peek(1) == Some('\n') => {
                self.pos += 2;
                '\n'
            }
            Some('\r' | '\n' | '\u{85}') => {
                self.pos += 1;
                '\n'
            }
            Some(c @ ('\u{2028}' | '\u{2029}')) => {
                self.pos += 1;
                c
            }
            _ => '\0',
        }
    }

    /// Further line breaks (each kept), skipping indentation.
    fn breaks(&mut self) -> Result<String, &'static str> {
        let mut out = String::new();
        loop {
            let marker: String = (0..3).filter_map(|i| self.peek(i)).collect();
            if (marker == "---" || marker == "...")
                // (The closing quote, past the end here, does not count.)
                && self.peek(3).is_some_and(|c| c == ' ' || c == '\t' || is_break(c))
            {
                return Err("a document marker inside a quoted scalar");
            }
            while matches!(self.peek(0), Some(' ' | '\t')) {
                self.pos += 1;
            }
            match self.peek(0) {
                Some(c) if is_break(c) => out.push(self.line_break()),
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    /// What ruamel.yaml 0.18 reads for each source (checked with the
    /// Python tool's venv; the compat tests check it live).
    #[test]
    fn reads_as_ruamel() {
        for (raw, want) in [
            ("'a\u{2028}  b'", "a\u{2028}b"),
            ("'a\u{2029}  b'", "a\u{2029}b"),
            ("'a\u{85}  b'", "a b"),
            ("'a\u{2028}\u{2028}  b'", "a\u{2028}\u{2028}b"),
            ("'a\u{2028}  '", "a\u{2028}"),
            ("'\u{2028}  a'", "\u{2028}a"),
            ("'a \u{2028} b'", "a\u{2028}b"),
            ("'a\u{85}\u{85}b'", "a\nb"),
            ("'it''s\u{2028}  x'", "it's\u{2028}x"),
            ("\"a\\L b\u{2028}c\"", "a\u{2028} b\u{2028}c"),
            ("\"x\\\u{2028}  y\"", "xy"),
            ("'a\nb\u{2028}c'", "a b\u{2028}c"),
            ("'a\n\nb'", "a\nb"),
            ("'a\u{2028} '", "a\u{2028}"),
            ("'a  '", "a  "),
        ] {
            assert_eq!(decode(raw).as_deref(), Ok(want), "{raw:?}");
        }
        assert!(decode("'a\u{2028}--- b'").is_err());
        assert_eq!(decode("'a\u{2028}---'").as_deref(), Ok("a\u{2028}---"));
        assert!(decode("\"\\q\u{2028}\"").is_err());
    }
}
