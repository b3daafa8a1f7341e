//! A YAML emitter that writes exactly the bytes ruamel.yaml (width 100,
//! YAML 1.2, unicode allowed) writes for the shapes a protected file has:
//! block mappings, block sequences of strings, string scalars, and empty
//! flow collections.
//!
//! Byte compatibility with pocket_protector is a hard requirement, and no
//! serde YAML emitter reproduces ruamel's choices (scalar style, folding at
//! width 100, a value too long for its line moved after `key: `). This
//! module therefore follows ruamel's emitter state machine step by step:
//! the same column/whitespace/indention bookkeeping, the same scalar
//! analysis and the same writers. Columns count Unicode scalar values, as
//! Python string indexing does.

use super::resolve::resolves_to_non_string;

/// A node of the document to emit. Strings are the only scalars a
/// protected file holds.
#[derive(Debug, Clone)]
pub enum Node<'a> {
    /// A string scalar.
    Str(&'a str),
    /// A mapping, emitted in the given order.
    Map(Vec<(&'a str, Node<'a>)>),
    /// A sequence of strings.
    Seq(Vec<&'a str>),
}

const BEST_WIDTH: usize = 100;
const BEST_INDENT: usize = 2;
const MAX_SIMPLE_KEY_LENGTH: usize = 128;

/// Emit `root` as a YAML document, as ruamel.yaml's round-trip dumper does.
pub fn emit(root: &Node<'_>) -> String {
    let mut e = Emitter::default();
    e.expect_node(root, Ctx::root());
    // Document end: finish the last line.
    e.write_indent();
    e.out
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    sequence: bool,
    mapping: bool,
    simple_key: bool,
}

impl Ctx {
    fn root() -> Self {
        Ctx::default()
    }
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: Option<usize>,
    indents: Vec<(Option<usize>, bool)>,
    no_newline: bool,
    ctx: Ctx,
}

impl Default for Emitter {
    fn default() -> Self {
        Emitter {
            out: String::new(),
            column: 0,
            whitespace: true,
            indention: true,
            indent: None,
            indents: Vec::new(),
            no_newline: false,
            ctx: Ctx::default(),
        }
    }
}

/// ruamel's scalar analysis, reduced to the fields its style choice reads.
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_ws_or_nul(c: char) -> bool {
    matches!(
        c,
        '\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn analyze(s: &[char]) -> Analysis {
    if s.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let mut block_indicators = false;
    let mut line_breaks = false;
    let mut special_characters = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let starts = |p: &str| s.len() >= 3 && s[..3].iter().copied().eq(p.chars());
    if starts("---") || starts("...") {
        block_indicators = true;
    }
    let mut preceded_by_ws = true;
    let mut followed_by_ws = s.len() == 1 || is_ws_or_nul(s[1]);
    let mut previous_space = false;
    let mut previous_break = false;
    let n = s.len();
    for (index, &ch) in s.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_indicators = true;
            }
            if (ch == '?' || ch == ':') && followed_by_ws {
                block_indicators = true;
            }
            if ch == '-' && followed_by_ws {
                block_indicators = true;
            }
        } else {
            if ch == ':' && followed_by_ws {
                block_indicators = true;
            }
            if ch == '#' && preceded_by_ws {
                block_indicators = true;
            }
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch)) {
            let printable_unicode = ch == '\u{85}'
                || ('\u{A0}'..='\u{D7FF}').contains(&ch)
                || ('\u{E000}'..='\u{FFFD}').contains(&ch)
                || ('\u{10000}'..='\u{10FFFF}').contains(&ch);
            if !printable_unicode || ch == '\u{FEFF}' {
                special_characters = true;
            }
        }
        if ch == ' ' {
            if index == 0 {
                leading_space = true;
            }
            if index == n - 1 {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(ch) {
            if index == 0 {
                leading_break = true;
            }
            if index == n - 1 {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = is_ws_or_nul(ch);
        followed_by_ws = index + 2 >= n || is_ws_or_nul(s[index + 2]);
    }
    let mut allow_block_plain = true;
    let mut allow_single_quoted = true;
    if leading_space || leading_break || trailing_space || trailing_break {
        allow_block_plain = false;
    }
    if break_space {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if special_characters || space_break {
        allow_block_plain = false;
        allow_single_quoted = false;
    }
    if line_breaks || block_indicators {
        allow_block_plain = false;
    }
    Analysis {
        empty: false,
        multiline: line_breaks,
        allow_block_plain,
        allow_single_quoted,
    }
}

impl Emitter {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn push_chars(&mut self, s: &[char]) {
        self.column += s.len();
        self.out.extend(s.iter());
    }

    fn increase_indent(&mut self, flow: bool, sequence: bool, indentless: bool) {
        self.indents.push((self.indent, sequence));
        match self.indent {
            None => self.indent = if flow { None } else { Some(0) },
            Some(i) if !indentless => self.indent = Some(i + BEST_INDENT),
            Some(_) => {}
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().and_then(|(i, _)| i);
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, whitespace: bool, indention: bool) {
        if !self.whitespace && need_ws {
            self.push(" ");
            self.column += 1;
        }
        self.push(ind);
        self.column += ind.chars().count();
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            if self.no_newline {
                self.no_newline = false;
            } else {
                self.write_line_break(None);
            }
        }
        if self.column < indent {
            self.whitespace = true;
            for _ in self.column..indent {
                self.out.push(' ');
            }
            self.column = indent;
        }
    }

    fn write_line_break(&mut self, data: Option<char>) {
        self.out.push(data.unwrap_or('\n'));
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    fn expect_node(&mut self, node: &Node<'_>, ctx: Ctx) {
        self.ctx = ctx;
        match node {
            Node::Str(s) => self.expect_scalar(s),
            Node::Seq(items) if items.is_empty() => self.empty_flow("[", "]"),
            Node::Map(entries) if entries.is_empty() => self.empty_flow("{", "}"),
            Node::Seq(items) => self.expect_block_sequence(items),
            Node::Map(entries) => self.expect_block_mapping(entries),
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false, false);
        self.pop_indent();
        self.write_indicator(close, false, false, false);
        self.write_line_break(None);
    }

    fn expect_scalar(&mut self, s: &str) {
        self.increase_indent(true, false, false);
        self.process_scalar(s);
        self.pop_indent();
    }

    fn expect_block_sequence(&mut self, items: &[&str]) {
        let indentless = self.ctx.mapping && !self.indention;
        self.increase_indent(false, true, indentless);
        for item in items {
            let nonl = if self.column == 0 {
                self.no_newline
            } else {
                false
            };
            self.write_indent();
            self.write_indicator("-", true, false, true);
            if nonl {
                self.no_newline = true;
            }
            self.expect_node(
                &Node::Str(item),
                Ctx {
                    sequence: true,
                    ..Ctx::default()
                },
            );
        }
        self.pop_indent();
        self.no_newline = false;
    }

    fn expect_block_mapping(&mut self, entries: &[(&str, Node<'_>)]) {
        self.increase_indent(false, false, false);
        let key_ctx = Ctx {
            mapping: true,
            simple_key: true,
            ..Ctx::default()
        };
        let value_ctx = Ctx {
            mapping: true,
            ..Ctx::default()
        };
        for (key, value) in entries {
            self.write_indent();
            let chars: Vec<char> = key.chars().collect();
            let a = analyze(&chars);
            let simple = chars.len() < MAX_SIMPLE_KEY_LENGTH && !a.multiline;
            if simple {
                self.expect_node(&Node::Str(key), key_ctx);
                self.write_indicator(":", false, false, false);
                self.expect_node(value, value_ctx);
            } else {
                self.write_indicator("?", true, false, true);
                self.expect_node(&Node::Str(key), value_ctx);
                self.write_indent();
                self.write_indicator(":", true, false, true);
                self.expect_node(value, value_ctx);
            }
        }
        self.pop_indent();
    }

    fn choose_style(&self, s: &str, a: &Analysis) -> Style {
        let implicit_plain = !resolves_to_non_string(s);
        if implicit_plain
            && !(self.ctx.simple_key && (a.empty || a.multiline))
            && a.allow_block_plain
        {
            return Style::Plain;
        }
        if s.contains('\'') || s.contains('\n') {
            return Style::Double;
        }
        if a.allow_single_quoted && !(self.ctx.simple_key && a.multiline) {
            return Style::Single;
        }
        Style::Double
    }

    fn process_scalar(&mut self, s: &str) {
        let chars: Vec<char> = s.chars().collect();
        let a = analyze(&chars);
        let style = self.choose_style(s, &a);
        let split = !self.ctx.simple_key;
        if self.ctx.sequence {
            self.write_indent();
        }
        match style {
            Style::Plain => self.write_plain(&chars, split),
            Style::Single => self.write_single_quoted(&chars, split),
            Style::Double => self.write_double_quoted(&chars, split),
        }
    }

    fn write_breaks(&mut self, text: &[char]) {
        if text[0] == '\n' {
            self.write_line_break(None);
        }
        for &br in text {
            self.write_line_break(Some(br));
        }
        self.write_indent();
    }

    fn write_plain(&mut self, text: &[char], split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.push(" ");
            self.column += 1;
        }
        self.whitespace = false;
        self.indention = false;
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        while end <= text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column >= BEST_WIDTH && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        self.push_chars(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_breaks(&text[start..end]);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                let len = end - start;
                // Words longer than the line get a line of their own, except
                // in a key: ruamel wraps there too and writes YAML that no
                // parser (ruamel included) reads back, so no existing file
                // has it and keeping the key whole is safe.
                if let Some(indent) = self.indent
                    && split
                    && len + self.column > BEST_WIDTH
                    && self.column > indent
                {
                    self.write_indent();
                }
                self.push_chars(&text[start..end]);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
    }

    fn write_single_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0usize, 0usize);
        while end <= text.len() {
            let ch = text.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > BEST_WIDTH
                        && split
                        && start != 0
                        && end != text.len()
                    {
                        self.write_indent();
                    } else {
                        self.push_chars(&text[start..end]);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_breaks(&text[start..end]);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                self.push_chars(&text[start..end]);
                start = end;
            }
            if ch == Some('\'') {
                self.push("''");
                self.column += 2;
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
            end += 1;
        }
        self.write_indicator("'", false, false, false);
    }

    fn write_double_quoted(&mut self, text: &[char], split: bool) {
        self.write_indicator("\"", true, false, false);
        let (mut start, mut end) = (0usize, 0usize);
        while end <= text.len() {
            let ch = text.get(end).copied();
            let needs_escape = match ch {
                None => true,
                Some(c) => {
                    matches!(
                        c,
                        '"' | '\\' | '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
                    ) || !((' '..='~').contains(&c)
                        || ('\u{A0}'..='\u{D7FF}').contains(&c)
                        || ('\u{E000}'..='\u{FFFD}').contains(&c)
                        || ('\u{10000}'..='\u{10FFFF}').contains(&c))
                }
            };
            if needs_escape {
                if start < end {
                    self.push_chars(&text[start..end]);
                    start = end;
                }
                if let Some(c) = ch {
                    let data = escape_double(c);
                    self.column += data.chars().count();
                    self.push(&data);
                    start = end + 1;
                }
            }
            if 0 < end
                && end + 1 < text.len()
                && (ch == Some(' ') || start >= end)
                && (self.column + end) as isize - start as isize > BEST_WIDTH as isize
                && split
            {
                let need_backslash = double_needs_backslash(text, start, end);
                let mut data: String = text[start.min(end)..end].iter().collect();
                if need_backslash {
                    data.push('\\');
                }
                if start < end {
                    start = end;
                }
                self.column += data.chars().count();
                self.push(&data);
                self.write_indent();
                self.whitespace = false;
                self.indention = false;
                if text[start] == ' ' {
                    if !need_backslash {
                        start += 1;
                    }
                    if need_backslash {
                        self.push("\\");
                        self.column += 1;
                    }
                }
            }
            end += 1;
        }
        self.write_indicator("\"", false, false, false);
    }
}

/// ruamel's decision whether a folded double-quoted line needs a trailing
/// backslash (it does unless the fold point is a plain word boundary).
fn double_needs_backslash(text: &[char], start: usize, end: usize) -> bool {
    let Some(mut space_pos) = text[end..].iter().position(|&c| c == ' ').map(|p| p + end) else {
        return true;
    };
    if let Some(nl) = text[end..space_pos].iter().position(|&c| c == '\n') {
        space_pos = nl + end;
    }
    let Some(&next) = text.get(space_pos + 1) else {
        // Python raises IndexError here, which ruamel treats as "keep it".
        return true;
    };
    if text[space_pos] == '\n' && next != ' ' {
        return true;
    }
    let segment = &text[end..space_pos];
    let double_space = end >= 1 && text[end - 1] == ' ' && text[end] == ' ';
    segment.contains(&'"')
        || segment.contains(&'\'')
        || next == ' '
        || next == '\n'
        || double_space
        || start == end
}

fn escape_double(c: char) -> String {
    let short = match c {
        '\0' => Some('0'),
        '\x07' => Some('a'),
        '\x08' => Some('b'),
        '\t' => Some('t'),
        '\n' => Some('n'),
        '\x0B' => Some('v'),
        '\x0C' => Some('f'),
        '\r' => Some('r'),
        '\x1B' => Some('e'),
        '"' => Some('"'),
        '\\' => Some('\\'),
        '\u{85}' => Some('N'),
        '\u{A0}' => Some('_'),
        '\u{2028}' => Some('L'),
        '\u{2029}' => Some('P'),
        _ => None,
    };
    match short {
        Some(s) => format!("\\{s}"),
        None if (c as u32) <= 0xFF => format!("\\x{:02X}", c as u32),
        None if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
        None => format!("\\U{:08X}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(items: &[&str]) -> String {
        let items: Vec<&str> = items.to_vec();
        emit(&Node::Map(vec![("audit-log", Node::Seq(items))]))
    }

    #[test]
    fn empty_collections() {
        let doc = Node::Map(vec![
            ("key-custodians", Node::Map(vec![])),
            ("audit-log", Node::Seq(vec![])),
        ]);
        assert_eq!(emit(&doc), "key-custodians: {}\naudit-log: []\n");
    }

    #[test]
    fn scalar_styles() {
        assert_eq!(seq(&["yes"]), "audit-log:\n- yes\n");
        assert_eq!(seq(&["null"]), "audit-log:\n- 'null'\n");
        assert_eq!(seq(&[""]), "audit-log:\n- ''\n");
        assert_eq!(seq(&["tab\there"]), "audit-log:\n- \"tab\\there\"\n");
        assert_eq!(seq(&["it's"]), "audit-log:\n- it's\n");
        assert_eq!(seq(&["'q"]), "audit-log:\n- \"'q\"\n");
    }

    #[test]
    fn long_keys_with_spaces_stay_on_one_line() {
        let k = format!("{}    {}", "a".repeat(50), "b".repeat(60));
        let doc = Node::Map(vec![(k.as_str(), Node::Str("v"))]);
        assert_eq!(emit(&doc), format!("{k}: \n  v\n"));
    }

    #[test]
    fn long_value_moves_to_next_line() {
        let v = "A".repeat(90);
        let doc = Node::Map(vec![("dev", Node::Map(vec![("secret-x", Node::Str(&v))]))]);
        assert_eq!(emit(&doc), format!("dev:\n  secret-x: \n    {v}\n"));
    }
}
