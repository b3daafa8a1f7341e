//! Accepted findings: a committed, reviewed file that lists the
//! check-audit-log findings a team accepts as history (history is
//! permanent: a commit made with a wrong clock would otherwise fail every
//! later full check), as `.gitleaksignore` does for gitleaks.
//!
//! `.pprotect-baseline` at the top of the work tree, one line per accepted
//! finding: `COMMIT<TAB>KIND<TAB>ENTRY<TAB>REASON` (ENTRY is the audit
//! entry, or the finding's message when it has none); `#` starts a
//! comment line. `check-audit-log --accept COMMIT --reason TEXT` writes
//! it. An `invalid-file` finding cannot be accepted.

use super::history::{Finding, Kind};

/// The baseline's file name, at the top of the work tree.
pub const FILE: &str = ".pprotect-baseline";

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The full commit id.
    pub commit: String,
    /// The finding's kind (`future-dated`, ...).
    pub kind: String,
    /// The audit entry, or the finding's message.
    pub key: String,
    /// Why it is accepted.
    pub reason: String,
    /// 1-based line number in the file.
    pub line: usize,
}

/// What identifies a finding in the baseline.
pub fn key_of(f: &Finding) -> &str {
    f.entry.as_deref().unwrap_or(&f.message)
}

/// Whether `line` accepts `f`.
pub fn accepts(line: &Line, f: &Finding) -> bool {
    f.kind != Kind::InvalidFile
        && line.commit == f.commit
        && line.kind == f.kind.as_str()
        && line.key == key_of(f)
}

/// Parse a baseline file; malformed lines are returned as errors (line
/// number and why), never guessed at.
pub fn parse(text: &str) -> (Vec<Line>, Vec<(usize, String)>) {
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = l.splitn(4, '\t').collect();
        match parts[..] {
            [commit, kind, key, reason]
                if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                if kind == Kind::InvalidFile.as_str() {
                    bad.push((n, "an invalid-file finding cannot be accepted".into()));
                    continue;
                }
                lines.push(Line {
                    commit: commit.to_ascii_lowercase(),
                    kind: kind.to_string(),
                    key: unescape(key),
                    reason: reason.to_string(),
                    line: n,
                });
            }
            _ => bad.push((
                n,
                "expected COMMIT<TAB>KIND<TAB>ENTRY<TAB>REASON with a 40-hex commit".into(),
            )),
        }
    }
    (lines, bad)
}

/// One baseline line for `f`.
pub fn format_line(f: &Finding, reason: &str) -> String {
    format!(
        "{}\t{}\t{}\t{}\n",
        f.commit,
        f.kind.as_str(),
        escape(key_of(f)),
        reason.replace(['\n', '\r', '\t'], " ")
    )
}

/// The file's header, for a new baseline.
pub const HEADER: &str = "# Findings of `pprotect check-audit-log` accepted as history (review changes to this file).\n# COMMIT<TAB>KIND<TAB>ENTRY<TAB>REASON; written by `pprotect check-audit-log --accept COMMIT --reason TEXT`.\n";

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: Kind, entry: Option<&str>) -> Finding {
        Finding {
            commit: "a".repeat(40),
            summary: "s".into(),
            kind,
            domain: None,
            secret: None,
            custodian: None,
            entry: entry.map(String::from),
            message: "m".into(),
            accepted: false,
            reason: None,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let f = finding(Kind::FutureDated, Some("2030-01-01T00:00:00Z -- x\ty"));
        let text = format!("{HEADER}{}", format_line(&f, "clock was fast"));
        let (lines, bad) = parse(&text);
        assert!(bad.is_empty(), "{bad:?}");
        assert!(accepts(&lines[0], &f));
        assert_eq!(lines[0].reason, "clock was fast");
        let inv = finding(Kind::InvalidFile, None);
        let (_, bad) = parse(&format_line(&inv, "no"));
        assert_eq!(bad.len(), 1);
        let (_, bad) = parse("nope\n");
        assert_eq!(bad.len(), 1);
    }
}
