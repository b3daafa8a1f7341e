//! A fast reader for the canonical files pprotect and pocket_protector
//! write: block mappings indented by two, indentless block sequences of
//! strings, plain scalars (folded over lines when long, or moved after
//! `key: `), one-line single-quoted scalars and empty flow collections.
//!
//! It is an accelerator, not a second parser: it answers only when the
//! text is inside that subset and otherwise returns `None`, leaving the
//! decision (and every error message) to the full parser. Inside the
//! subset it builds exactly the tree the full parser builds, lines
//! included; the differential tests below and the `codec` fuzz target hold
//! it to that. Anything unusual (comments, tags, anchors, double quotes,
//! blank lines, tabs, CR, markers, special characters, duplicate keys,
//! plain scalars of another type) falls back.

use super::parse::{MAX_DEPTH, Yaml, has_duplicates};
use super::resolve::resolves_to_non_string;

/// Keys longer than this are left to the full parser (ruamel writes long
/// keys in the explicit `? key` form, which the fast path does not read).
const MAX_KEY_BYTES: usize = 128;

/// Parse `text` if it is in the canonical subset.
pub(super) fn parse(text: &str) -> Option<Yaml> {
    if !text.ends_with('\n') {
        return None;
    }
    let mut p = Reader::new(text);
    if p.peek()?.indent != 0 {
        return None;
    }
    let root = p.mapping(0, 0)?;
    (p.pos == text.len()).then_some(root)
}

/// The line at byte offset `pos`. A blank line, a line of spaces or one
/// that could be a conflict marker ends the subset (`None`).
fn read_line(text: &str, pos: usize) -> Option<Line<'_>> {
    let rest = &text.as_bytes()[pos..];
    let end = memchr::memchr(b'\n', rest)?;
    let indent = rest[..end].iter().take_while(|&&b| b == b' ').count();
    if indent == end {
        return None;
    }
    if indent == 0 && matches!(rest[0], b'<' | b'>' | b'|' | b'=') {
        return None;
    }
    Some(Line {
        indent,
        // Both ends are at ASCII bytes, so on character boundaries.
        content: &text[pos + indent..pos + end],
        next: pos + end + 1,
    })
}

/// One line: its indentation and what follows it (without the newline).
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    content: &'a str,
    /// Byte offset of the next line.
    next: usize,
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    /// The line at `pos`, read once.
    cur: Option<Line<'a>>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            pos: 0,
            line: 1,
            cur: read_line(text, 0),
        }
    }

    /// The line at the cursor; `None` at the end, or where the subset ends
    /// (see [`read_line`]; the caller then sees leftover text).
    fn peek(&self) -> Option<Line<'a>> {
        self.cur
    }

    fn advance(&mut self, l: &Line<'_>) {
        self.pos = l.next;
        self.line += 1;
        self.cur = read_line(self.text, self.pos);
    }

    /// A block mapping whose keys are at indentation `n`.
    fn mapping(&mut self, n: usize, depth: usize) -> Option<Yaml> {
        if depth + 1 >= MAX_DEPTH {
            return None;
        }
        let line = self.line;
        let mut entries: Vec<(String, usize, Yaml)> = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent < n || l.content.starts_with('-') {
                break;
            }
            if l.indent > n {
                return None;
            }
            let (key, rest) = key(l.content)?;
            let key_line = self.line;
            self.advance(&l);
            let value = match rest {
                "" => {
                    // A block collection on the following lines.
                    let next = self.peek()?;
                    if next.content.starts_with("- ") && next.indent >= n {
                        self.sequence(next.indent, depth + 1)?
                    } else if next.indent > n {
                        self.mapping(next.indent, depth + 1)?
                    } else {
                        return None;
                    }
                }
                " " => {
                    // A value too long for its line, on the next one.
                    let next = self.peek()?;
                    if next.indent <= n {
                        return None;
                    }
                    let start = self.line;
                    self.advance(&next);
                    self.scalar(next.content, n, start)?
                }
                _ => {
                    let v = rest.strip_prefix(' ')?;
                    match v {
                        "{}" => Yaml::Map {
                            entries: Vec::new(),
                            line: key_line,
                        },
                        "[]" => Yaml::Seq {
                            items: Vec::new(),
                            line: key_line,
                        },
                        _ => self.scalar(v, n, key_line)?,
                    }
                }
            };
            entries.push((key, key_line, value));
        }
        if entries.is_empty() || has_duplicates(&entries) {
            return None;
        }
        Some(Yaml::Map { entries, line })
    }

    /// A block sequence of strings whose dashes are at indentation `n`.
    fn sequence(&mut self, n: usize, depth: usize) -> Option<Yaml> {
        if depth + 1 >= MAX_DEPTH {
            return None;
        }
        let line = self.line;
        let mut items = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent != n || !l.content.starts_with('-') {
                break;
            }
            let item = l.content.strip_prefix("- ")?;
            let start = self.line;
            self.advance(&l);
            items.push(self.scalar(item, n, start)?);
        }
        Some(Yaml::Seq { items, line })
    }

    /// A scalar whose first line holds `first`, inside a collection at
    /// indentation `n` (continuation lines are indented deeper).
    fn scalar(&mut self, first: &str, n: usize, line: usize) -> Option<Yaml> {
        let value = if first.starts_with('\'') {
            self.quoted(first, n)?
        } else {
            self.plain(first, n)?
        };
        Some(Yaml::Str { value, line })
    }

    /// A single-quoted scalar, on one line here.
    fn quoted(&mut self, first: &str, n: usize) -> Option<String> {
        let (value, rest) = single_quoted(first)?;
        let continued = self.peek().is_some_and(|l| l.indent > n);
        (rest.is_empty() && !continued).then_some(value)
    }

    /// A plain scalar. A long one folds over lines; ruamel leaves the
    /// space at each fold point at the end of the line, and reading drops
    /// it.
    fn plain(&mut self, first: &str, n: usize) -> Option<String> {
        let mut value = String::new();
        let mut segment = first;
        loop {
            let next = self.peek().filter(|l| l.indent > n);
            if next.is_some() {
                segment = segment.strip_suffix(' ').unwrap_or(segment);
            }
            if !plain_ok(segment, value.is_empty()) {
                return None;
            }
            value.push_str(segment);
            let Some(l) = next else { break };
            value.push(' ');
            segment = l.content;
            self.advance(&l);
        }
        (!resolves_to_non_string(&value)).then_some(value)
    }
}

/// A mapping key and what follows its colon.
fn key(content: &str) -> Option<(String, &str)> {
    let (key, rest) = if content.starts_with('\'') {
        let (key, rest) = single_quoted(content)?;
        (key, rest.strip_prefix(':')?)
    } else {
        let colon = memchr::memchr(b':', content.as_bytes())?;
        let key = &content[..colon];
        if !plain_ok(key, true) || resolves_to_non_string(key) {
            return None;
        }
        (key.to_string(), &content[colon + 1..])
    };
    if key.len() > MAX_KEY_BYTES || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((key, rest))
}

/// A single-quoted scalar at the start of `s` (closed on the same line),
/// and the text after it.
fn single_quoted(s: &str) -> Option<(String, &str)> {
    let body = &s[1..];
    let mut value = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if body[i + 1..].starts_with('\'') {
                value.push('\'');
                chars.next();
                continue;
            }
            return Some((value, &body[i + 1..]));
        }
        if !(c == ' ' || char_ok(c)) {
            return None;
        }
        value.push(c);
    }
    None
}

/// Characters the fast path accepts inside scalars (besides the space):
/// printable ASCII and printable non-ASCII other than the characters
/// ruamel treats as line breaks (U+0085, U+2028, U+2029) and the BOM.
fn char_ok(c: char) -> bool {
    match c {
        '!'..='~' => true,
        '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => {
            !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
        }
        _ => false,
    }
}

/// Whether `s` (one line of a plain scalar; `starts` when its first)
/// reads as exactly itself: it starts with a character no YAML indicator
/// uses (a continuation line may start with any but a comment's), has no
/// `: ` or ` #`, no trailing space or colon, and only accepted characters.
fn plain_ok(s: &str, starts: bool) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let first_ok = first.is_ascii_alphanumeric()
        || matches!(first, b'/' | b'+' | b'.' | b'_' | b'(')
        || (!starts && first.is_ascii_graphic() && first != b'#')
        || (first >= 0x80 && s.chars().next().is_some_and(char_ok));
    if !first_ok || matches!(bytes[bytes.len() - 1], b' ' | b':') {
        return false;
    }
    // Most values (base64, names) hold no space, colon, hash or
    // non-ASCII byte at all.
    if bytes.iter().all(|&b| PLAIN_SAFE[b as usize]) {
        return true;
    }
    let mut prev = first;
    let mut ascii = true;
    for &b in &bytes[1..] {
        match b {
            b' ' if prev == b':' => return false,
            b'#' if prev == b' ' => return false,
            b' '..=b'~' => {}
            0x80.. => ascii = false,
            _ => return false,
        }
        prev = b;
    }
    ascii || s.chars().all(|c| c == ' ' || char_ok(c))
}

/// Bytes that are always fine inside a plain scalar line: printable
/// ASCII but for the space, `:` and `#`.
static PLAIN_SAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b'!';
    while b <= b'~' {
        t[b as usize] = b != b':' && b != b'#';
        b += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::super::parse::parse_str_full;
    use super::parse;

    /// The fast path either declines or agrees with the full parser.
    pub(crate) fn agrees(text: &str) -> bool {
        match parse(text) {
            None => false,
            Some(fast) => {
                let full = parse_str_full(text);
                assert_eq!(
                    Ok(&fast),
                    full.as_ref(),
                    "fast and full parse differ on {text:?}"
                );
                true
            }
        }
    }

    #[test]
    fn canonical_shapes_take_the_fast_path() {
        for text in [
            "a: b\n",
            "dev:\n  secret-x: abc\n  meta:\n    public-key: AAA\n    owners:\n      a@b.c: XYZ\nkey-custodians:\n  a@b.c:\n    pwdkm: QQ==\naudit-log:\n- 2026-11-28T10:06:19Z -- created\n",
            "k: \n    long value on its own line\n",
            "k: first words\n  and more words\n",
            "k: first words \n  and more \n  words\n",
            "log:\n- one\n- two words\n  folded\nnext: x\n",
            "k: {}\nl: []\n",
            "'quoted key': 'it''s'\n",
            "'123': x\n",
            "k: caf\u{e9} \u{1F600}\n",
        ] {
            assert!(agrees(text), "declined {text:?}");
        }
    }

    /// A continuation line may start with an indicator character; the
    /// answer must still be the full parser's.
    #[test]
    fn continuation_lines_starting_with_indicators() {
        for c in "-?:,[]{}#&*!|>'\"%@`".chars() {
            for text in [
                format!("k: a\n  {c} b\n"),
                format!("k: a\n  {c}b\n"),
                format!("k:\n- a\n  {c} b\n"),
                format!("k: a\n  {c}{c}{c} b\nz: y\n"),
            ] {
                if parse(&text).is_some() {
                    assert!(agrees(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn anything_unusual_is_declined() {
        for text in [
            "",
            "a: b",
            "# c\na: b\n",
            "a: b # c\n",
            "a: 1\n",
            "1: a\n",
            "a: true\n",
            "a: \"b\"\n",
            "a: &x b\n",
            "a: !!str b\n",
            "a: *x\n",
            "a: |\n  b\n",
            "a: b\n\nc: d\n",
            "a: b\r\n",
            "a:\tb\n",
            "a: b\na: c\n",
            "---\na: b\n",
            "a: b: c\n",
            "a:b\n",
            "a: b \n",
            "a: b  \n  c\n",
            "a: b \n",
            "a: 'b\n  c'\n",
            "a: 'b'\n  c\n",
            "<<<<<<< ours\na: b\n",
            "a: x\u{2028}y\n",
            "a: 'x\u{2028}  y'\n",
            "a: x\u{85}y\n",
            "a:\n",
            "a:\nb: c\n",
            "- a\n",
            "a:\n  - b\n  -\n",
            "a:\n- b: c\n",
            "a: -b\n",
            "a: ~\n",
            "a: ''\n",
            "- a\n  - b\n",
            "k: a\n  - b\n",
            "k:\n- a\n  - b\n",
        ] {
            if let Some(y) = parse(text) {
                // Declining is not required for every one of these, but an
                // answer must be the full parser's.
                assert!(agrees(text), "{text:?} gave {y:?}");
            }
        }
        for text in [
            "a: b # c\n",
            "a: 1\n",
            "a: \"b\"\n",
            "a: b\na: c\n",
            "a: b\n\nc: d\n",
            "<<<<<<< ours\na: b\n",
            "a: 'x\u{2028}  y'\n",
        ] {
            assert!(parse(text).is_none(), "{text:?} should fall back");
        }
    }
}
