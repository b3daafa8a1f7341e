//! Reading YAML into a small tree of strings, with every check a hostile
//! file calls for done before or while parsing: size, UTF-8, git conflict
//! markers, anchors and aliases, nesting depth, duplicate keys, tags and
//! non-string scalars. Every error names a line, never a value.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::resolve::resolves_to_non_string;
use crate::error::Error;

/// Largest protected file accepted, as in pocket_protector.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// Deepest nesting accepted, as in pocket_protector.
pub const MAX_DEPTH: usize = 100;

/// A parsed YAML node: strings, mappings and sequences only, each with the
/// line (1-based) it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Yaml {
    /// A string scalar.
    Str {
        /// The string.
        value: String,
        /// Its line.
        line: usize,
    },
    /// A mapping, in file order, keys unique.
    Map {
        /// `(key, key line, value)` in file order.
        entries: Vec<(String, usize, Yaml)>,
        /// Its line.
        line: usize,
    },
    /// A sequence.
    Seq {
        /// The items.
        items: Vec<Yaml>,
        /// Its line.
        line: usize,
    },
}

impl Yaml {
    /// The line this node starts on.
    pub fn line(&self) -> usize {
        match self {
            Yaml::Str { line, .. } | Yaml::Map { line, .. } | Yaml::Seq { line, .. } => *line,
        }
    }

    /// A word for the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Yaml::Str { .. } => "a string",
            Yaml::Map { .. } => "a mapping",
            Yaml::Seq { .. } => "a list",
        }
    }
}

/// The error for a file over [`MAX_FILE_BYTES`] (never loaded).
pub fn too_large() -> Error {
    Error::invalid(
        None,
        format!("file is larger than {MAX_FILE_BYTES} bytes; refusing to load it"),
    )
}

/// Decode raw file bytes: size limit, UTF-8, then [`parse_str`].
pub fn parse_bytes(bytes: &[u8]) -> Result<Yaml, Error> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = line_of_offset(bytes, e.valid_up_to());
        Error::invalid(Some(line), "invalid UTF-8".to_string())
    })?;
    parse_str(text)
}

fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count()
}

/// Find the first line that is a git conflict marker, if any.
pub fn find_conflict_marker(text: &str) -> Option<usize> {
    // Only lines starting with a marker character need a closer look.
    let bytes = text.as_bytes();
    let could = |at: usize| matches!(bytes.get(at), Some(b'<' | b'>' | b'|' | b'='));
    if !could(0) && !memchr::memchr_iter(b'\n', bytes).any(|i| could(i + 1)) {
        return None;
    }
    for (i, line) in text.lines().enumerate() {
        let marker = |c: char| {
            let n = line.chars().take_while(|&x| x == c).count();
            n >= 7 && (line.len() == n || line[n..].starts_with(' '))
        };
        if marker('<')
            || marker('>')
            || marker('|')
            || (marker('=') && line.trim_end() == "=".repeat(line.trim_end().len()))
        {
            return Some(i + 1);
        }
    }
    None
}

/// Parse YAML text into a [`Yaml`] tree.
pub fn parse_str(text: &str) -> Result<Yaml, Error> {
    check_text(text)?;
    // Files as pprotect and pocket_protector write them take the fast
    // path; it answers only where its tree is this parser's.
    if let Some(yaml) = super::fast::parse(text) {
        return Ok(yaml);
    }
    parse_events(text)
}

/// The fast path alone: `Some` only for canonical text, with the tree
/// [`parse_str_full`] gives (differential tests and fuzzing).
#[doc(hidden)]
pub fn parse_fast(text: &str) -> Option<Yaml> {
    super::fast::parse(text)
}

/// [`parse_str`] without the fast path (differential tests compare the
/// two).
#[doc(hidden)]
pub fn parse_str_full(text: &str) -> Result<Yaml, Error> {
    check_text(text)?;
    parse_events(text)
}

/// What is refused before any parsing: size and conflict markers.
fn check_text(text: &str) -> Result<(), Error> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    match find_conflict_marker(text) {
        Some(line) => Err(Error::conflict_marker(line)),
        None => Ok(()),
    }
}

/// The full parser: saphyr's events, with every check.
fn parse_events(text: &str) -> Result<Yaml, Error> {
    let mut parser = Parser::new_from_str(text);
    // Byte offset of each character, built only for a file holding a
    // character ruamel reads as a line break (see `flow`).
    let char_starts: Option<Vec<usize>> = super::flow::has_extra_breaks(text).then(|| {
        text.char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect()
    });
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Yaml> = None;
    let mut documents = 0usize;
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                return Err(Error::invalid(
                    Some(e.marker().line()),
                    format!("not valid YAML: {}", e.info()),
                ));
            }
        };
        let line = span_line(&span);
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Error::invalid(
                        Some(line),
                        "more than one YAML document".to_string(),
                    ));
                }
            }
            Event::Alias(_) => {
                return Err(Error::invalid(
                    Some(line),
                    "YAML aliases are not allowed in a protected file".to_string(),
                ));
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 {
                    return Err(anchor_error(line));
                }
                let is_str_tag = match &tag {
                    None => false,
                    Some(t) if t.handle == "!!" && t.suffix == "str" => true,
                    Some(t) if t.handle.is_empty() && t.suffix == "tag:yaml.org,2002:str" => true,
                    Some(_) => {
                        return Err(Error::invalid(
                            Some(line),
                            "YAML tags are not allowed in a protected file".to_string(),
                        ));
                    }
                };
                if style == ScalarStyle::Plain && !is_str_tag && resolves_to_non_string(&value) {
                    return Err(Error::invalid(
                        Some(line),
                        "expected a string, found a plain scalar of another type (quote it)"
                            .to_string(),
                    ));
                }
                let mut value = value.into_owned();
                if matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted)
                    && let Some(starts) = &char_starts
                {
                    let raw = starts
                        .get(span.start.index())
                        .zip(starts.get(span.end.index()))
                        .and_then(|(&a, &b)| text.get(a..b))
                        .unwrap_or("");
                    if super::flow::has_extra_breaks(raw) {
                        value = super::flow::decode(raw).map_err(|why| {
                            Error::invalid(Some(line), format!("not valid YAML: {why}"))
                        })?;
                    }
                }
                let node = Yaml::Str { value, line };
                attach(&mut stack, &mut root, node)?;
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection(anchor, tag.is_some(), stack.len(), line)?;
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    line,
                });
            }
            Event::MappingStart(anchor, tag) => {
                check_collection(anchor, tag.is_some(), stack.len(), line)?;
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    pending: None,
                    line,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else {
                    return Err(Error::invalid(Some(line), "unbalanced YAML".to_string()));
                };
                let node = frame.finish();
                if let Yaml::Map { entries, .. } = &node {
                    check_duplicates(entries)?;
                }
                attach(&mut stack, &mut root, node)?;
            }
        }
    }
    root.ok_or_else(|| Error::invalid(Some(1), "the file is empty".to_string()))
}

fn span_line(span: &Span) -> usize {
    span.start.line().max(1)
}

fn anchor_error(line: usize) -> Error {
    Error::invalid(
        Some(line),
        "YAML anchors are not allowed in a protected file".to_string(),
    )
}

fn check_collection(anchor: usize, tagged: bool, depth: usize, line: usize) -> Result<(), Error> {
    if anchor != 0 {
        return Err(anchor_error(line));
    }
    if tagged {
        return Err(Error::invalid(
            Some(line),
            "YAML tags are not allowed in a protected file".to_string(),
        ));
    }
    if depth >= MAX_DEPTH {
        return Err(Error::invalid(
            Some(line),
            format!("nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(())
}

enum Frame {
    Seq {
        items: Vec<Yaml>,
        line: usize,
    },
    Map {
        entries: Vec<(String, usize, Yaml)>,
        /// A key waiting for its value.
        pending: Option<(String, usize)>,
        line: usize,
    },
}

impl Frame {
    fn finish(self) -> Yaml {
        match self {
            Frame::Seq { items, line } => Yaml::Seq { items, line },
            Frame::Map { entries, line, .. } => Yaml::Map { entries, line },
        }
    }
}

fn attach(stack: &mut [Frame], root: &mut Option<Yaml>, node: Yaml) -> Result<(), Error> {
    match stack.last_mut() {
        None => {
            *root = Some(node);
            Ok(())
        }
        Some(Frame::Seq { items, .. }) => {
            items.push(node);
            Ok(())
        }
        Some(Frame::Map {
            entries, pending, ..
        }) => match pending.take() {
            Some((key, key_line)) => {
                entries.push((key, key_line, node));
                Ok(())
            }
            None => match node {
                Yaml::Str { value, line } => {
                    // Keys are few per mapping in a protected file except
                    // domains and secrets; a linear scan would be quadratic
                    // on large files, so duplicates are checked by sorting
                    // when the mapping is validated (see `check_duplicates`).
                    *pending = Some((value, line));
                    Ok(())
                }
                other => Err(Error::invalid(
                    Some(other.line()),
                    format!("expected a string key, found {}", other.kind()),
                )),
            },
        },
    }
}

/// Whether a mapping gives a key twice.
pub(super) fn has_duplicates(entries: &[(String, usize, Yaml)]) -> bool {
    // Canonical files list keys in order; check that first.
    if entries.windows(2).all(|w| w[0].0 < w[1].0) {
        return false;
    }
    check_duplicates(entries).is_err()
}

/// Refuse a mapping with a key given twice, naming the second occurrence.
fn check_duplicates(entries: &[(String, usize, Yaml)]) -> Result<(), Error> {
    let mut keys: Vec<(&str, usize)> = entries.iter().map(|(k, l, _)| (k.as_str(), *l)).collect();
    keys.sort_unstable();
    for pair in keys.windows(2) {
        if pair[0].0 == pair[1].0 {
            let line = pair[0].1.max(pair[1].1);
            return Err(Error::invalid(
                Some(line),
                format!("duplicate key {:?}", pair[0].0),
            ));
        }
    }
    Ok(())
}
