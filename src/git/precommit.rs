//! `pprotect pre-commit`: judge what is **staged** (the index), not the
//! work tree.
//!
//! - Every staged protected file must parse and validate: no plaintext or
//!   truncated values, no conflict markers.
//! - Decrypted secrets must not be committed anywhere else. With
//!   credentials, the added lines are searched for every value of 8 or
//!   more characters the user can decrypt, and for its base64 form. With
//!   or without them, a file whose added lines set at least three of a
//!   domain's secret names (all of them if the domain has fewer) as keys
//!   with values is a probable decrypted dump.
//!
//! Findings name file, line, domain and secret; never a value. A line
//! containing `pprotect: allow`, or a path listed in git config
//! `pprotect.allow`, is not searched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use base64::Engine as _;
use secrecy::ExposeSecret;

use super::repo::{Repo, path_matches};
use crate::error::Result;
use crate::git::merge::Keyring;
use crate::model::ProtectedFile;

/// Marker that exempts a line from the search.
pub const ALLOW_MARKER: &str = "pprotect: allow";
/// Shortest decrypted value searched for.
pub const MIN_VALUE_LEN: usize = 8;

/// One problem found in the staged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Repository path.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Domain involved, if any.
    pub domain: Option<String>,
    /// Secret involved, if any.
    pub secret: Option<String>,
    /// What is wrong (never a secret value).
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems found.
    pub findings: Vec<Finding>,
    /// Non-fatal notes (e.g. credentials that did not open a file).
    pub warnings: Vec<String>,
}

struct Staged {
    path: String,
    /// Lines added relative to HEAD, 1-based in the staged blob (empty for
    /// a binary file).
    added: Vec<(usize, String)>,
    /// The staged blob, searched whole for values (binary files too).
    bytes: Vec<u8>,
    /// The blob at HEAD, if any: occurrences already there are not new.
    head: Option<Vec<u8>>,
}

/// The most of a non-protected staged file the value search reads.
pub const MAX_SCANNED_BYTES: usize = 64 << 20;

fn added_lines(old: Option<&[u8]>, new: &[u8]) -> Vec<(usize, String)> {
    let new_text = String::from_utf8_lossy(new);
    match old {
        None => new_text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect(),
        Some(old) => {
            let old_text = String::from_utf8_lossy(old);
            let diff = similar::TextDiff::from_lines(old_text.as_ref(), new_text.as_ref());
            diff.iter_all_changes()
                .filter(|c| c.tag() == similar::ChangeTag::Insert)
                .filter_map(|c| {
                    let line = c.new_index()? + 1;
                    Some((line, c.value().trim_end_matches(['\n', '\r']).to_string()))
                })
                .collect()
        }
    }
}

/// Check the staged change of `repo`. `creds` enables the search for
/// decrypted values.
pub fn check(repo: &Repo, keys: Option<Keyring<'_>>) -> Result<Report> {
    let mut report = Report::default();
    let patterns = repo.protected_patterns();
    let allow = repo.config_strings("pprotect.allow");
    let head = repo.head_map()?;
    let is_protected = |p: &str| patterns.iter().any(|pat| path_matches(pat, p));
    // An allow entry is a pattern, or a directory ending in `/`.
    let is_allowed = |p: &str| {
        allow
            .iter()
            .any(|pat| path_matches(pat, p) || (pat.ends_with('/') && p.starts_with(pat.as_str())))
    };

    let mut protected: Vec<(String, ProtectedFile)> = Vec::new();
    let mut others: Vec<Staged> = Vec::new();
    for (path, id, stage) in repo.index_entries()? {
        if stage != 0 {
            report.findings.push(Finding {
                file: path.clone(),
                line: None,
                domain: None,
                secret: None,
                message: "is unmerged; resolve the conflict before committing".into(),
            });
            continue;
        }
        let changed = head.get(&path) != Some(&id);
        if is_protected(&path) {
            // Every protected file is read (its names and keys matter for
            // the search); only changed ones can carry new problems, but an
            // unchanged one parses as it did before.
            let Some(bytes) = repo.blob_bounded(id, crate::codec::MAX_FILE_BYTES)? else {
                report.findings.push(Finding {
                    file: path,
                    line: None,
                    domain: None,
                    secret: None,
                    message: format!(
                        "is larger than {} bytes; refusing to load it",
                        crate::codec::MAX_FILE_BYTES
                    ),
                });
                continue;
            };
            match ProtectedFile::from_bytes(&bytes) {
                Ok(f) => {
                    if changed {
                        stale_keys(repo, &path, &f, &mut report)?;
                    }
                    protected.push((path, f))
                }
                Err(e) => report.findings.push(Finding {
                    file: path,
                    line: e.line(),
                    domain: None,
                    secret: None,
                    message: e.message().to_string(),
                }),
            }
            continue;
        }
        if !changed || is_allowed(&path) {
            continue;
        }
        let Some(bytes) = repo.blob_bounded(id, MAX_SCANNED_BYTES)? else {
            report.warnings.push(format!(
                "{path} is larger than {MAX_SCANNED_BYTES} bytes; not searched"
            ));
            continue;
        };
        let old = match head.get(&path) {
            Some(old_id) => repo.blob_bounded(*old_id, MAX_SCANNED_BYTES)?,
            None => None,
        };
        // Binary files are searched for values, not read as lines.
        let added = if bytes.contains(&0) {
            Vec::new()
        } else {
            added_lines(old.as_deref(), &bytes)
        };
        others.push(Staged {
            path,
            added,
            bytes,
            head: old,
        });
    }

    // Unlocking costs a key derivation: only when there is something new.
    let anything = !others.is_empty();
    if let Some(mut keys) = keys.filter(|_| anything) {
        search_values(&protected, &others, &mut keys, &mut report);
    }
    search_dumps(&protected, &others, &mut report);
    Ok(report)
}

/// The versions a staged protected file is compared with for entries
/// sealed to a previous key: HEAD's, those of the commits git is merging
/// or replaying, and the stages of a conflict marked resolved.
const REFERENCE_HEADS: [&str; 5] = [
    "HEAD",
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "REBASE_HEAD",
];

/// Refuse a staged protected file holding an entry whose ciphertext a
/// reference version holds under another key of its domain (or of its
/// custodian): it was never re-sealed, and nobody can open it with the
/// domain's key.
fn stale_keys(repo: &Repo, path: &str, staged: &ProtectedFile, report: &mut Report) -> Result<()> {
    let mut refs: Vec<(String, Vec<u8>)> = Vec::new();
    for head in REFERENCE_HEADS {
        if let Some(b) = repo.blob_at_rev(head, path)? {
            refs.push((head.to_string(), b));
        }
    }
    if let Some((b, o, t)) = repo.resolve_undo(path)? {
        for (name, v) in [
            ("stage 1 (base)", b),
            ("stage 2 (ours)", o),
            ("stage 3 (theirs)", t),
        ] {
            if let Some(v) = v {
                refs.push((format!("the conflict's {name}"), v));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, bytes) in refs {
        let Ok(reference) = ProtectedFile::from_bytes(&bytes) else {
            continue;
        };
        for (s, first) in crate::provenance::stale_against(staged, &reference) {
            let message = s.describe_stale(&first);
            if !seen.insert(message.clone()) {
                continue;
            }
            report.findings.push(Finding {
                file: path.to_string(),
                line: None,
                domain: Some(s.domain.clone()),
                secret: (!s.owner).then(|| s.name.clone()),
                message: format!(
                    "{message} (its ciphertext is {name}'s, under another key): it does not open with the current key; an owner re-seals it with `pprotect resolve` during the merge, or sets it again with `pprotect update-secret`"
                ),
            });
        }
    }
    Ok(())
}

/// The forms a copy of a value takes, each with the words for a finding.
fn value_forms(v: &str) -> Vec<(zeroize::Zeroizing<Vec<u8>>, &'static str)> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let z = |b: Vec<u8>| zeroize::Zeroizing::new(b);
    let mut out = vec![(z(v.as_bytes().to_vec()), "")];
    // Each long line of a multi-line value (a PEM key written out).
    if v.contains('\n') {
        for line in v.lines() {
            let line = line.trim_end_matches('\r');
            if line.chars().count() >= MIN_VALUE_LEN {
                out.push((z(line.as_bytes().to_vec()), "a line of the "));
            }
        }
    }
    // JSON / YAML double-quoted escaping (as serde_json and json.dumps
    // write it, with and without ASCII escapes), YAML single quotes.
    let mut json = String::new();
    let mut ascii = String::new();
    for c in v.chars() {
        let esc = match c {
            '"' => Some("\\\"".to_string()),
            '\\' => Some("\\\\".to_string()),
            '\n' => Some("\\n".to_string()),
            '\r' => Some("\\r".to_string()),
            '\t' => Some("\\t".to_string()),
            c if (c as u32) < 0x20 => Some(format!("\\u{:04x}", c as u32)),
            _ => None,
        };
        match esc {
            Some(e) => {
                json.push_str(&e);
                ascii.push_str(&e);
            }
            None => {
                json.push(c);
                if c.is_ascii() {
                    ascii.push(c);
                } else {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        ascii.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
    }
    for escaped in [json, ascii, v.replace('\'', "''")] {
        if escaped != v {
            out.push((z(escaped.into_bytes()), "escaped "));
        }
    }
    let utf16: Vec<u16> = v.encode_utf16().collect();
    out.push((
        z(utf16.iter().flat_map(|u| u.to_le_bytes()).collect()),
        "UTF-16 ",
    ));
    out.push((
        z(utf16.iter().flat_map(|u| u.to_be_bytes()).collect()),
        "UTF-16 ",
    ));
    out.push((
        z(STANDARD.encode(v.as_bytes()).into_bytes()),
        "base64-encoded ",
    ));
    out.push((
        z(URL_SAFE_NO_PAD.encode(v.as_bytes()).into_bytes()),
        "base64-encoded ",
    ));
    // Inside base64 after other bytes (HTTP basic auth, `user:VALUE`):
    // for each alignment of what comes before, the characters that depend
    // on the value alone (whole groups, without the partial first one and
    // the last).
    for (pad, skip) in [(1usize, 2usize), (2, 3)] {
        let mut bytes = z(vec![0u8; pad]);
        bytes.extend_from_slice(v.as_bytes());
        let enc = z(STANDARD.encode(&bytes[..]).into_bytes());
        let full = bytes.len() / 3 * 4;
        if full >= skip + MIN_VALUE_LEN {
            out.push((z(enc[skip..full].to_vec()), "base64-encoded "));
        }
    }
    // Percent-encoded in a URL (`https://user:VALUE@host`, a query
    // string): unreserved characters kept, the rest `%XX`, in upper and
    // lower case hex, and form encoding's `+` for a space.
    let mut pct = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            pct.push(b as char);
        } else {
            pct.push_str(&format!("%{b:02X}"));
        }
    }
    if pct != v {
        let lower = lower_hex_escapes(&pct);
        let form = pct.replace("%20", "+");
        for p in [pct, lower, form] {
            out.push((z(p.into_bytes()), "percent-encoded "));
        }
    }
    let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
    out.push((z(hex.to_uppercase().into_bytes()), "hex-encoded "));
    out.push((z(hex.into_bytes()), "hex-encoded "));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// `%XX` escapes with lower-case hex digits.
fn lower_hex_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&esc.to_ascii_lowercase());
        rest = &rest[i + esc.len()..];
    }
    out.push_str(rest);
    out
}

/// `bytes` with line breaks, the indentation after them and shell
/// line continuations removed (a value split across lines reads whole
/// again), and for each kept byte its offset in `bytes`.
fn joined(bytes: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => {
                i += 1;
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
            }
            b => {
                out.push(b);
                at.push(i);
                i += 1;
            }
        }
    }
    (out, at)
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// With credentials: search staged files, whole, for decrypted values in
/// every form a copy takes. An occurrence already at HEAD is not new.
fn search_values(
    protected: &[(String, ProtectedFile)],
    others: &[Staged],
    keys: &mut Keyring<'_>,
    report: &mut Report,
) {
    let mut patterns: Vec<zeroize::Zeroizing<Vec<u8>>> = Vec::new();
    let mut labels: Vec<(String, String, &'static str)> = Vec::new();
    for (path, file) in protected {
        if !keys.settle(file) || !file.custodians.contains_key(keys.name()) {
            continue;
        }
        let name = keys.name().to_string();
        let Some(who) = keys.who(file) else {
            report.warnings.push(format!(
                "credentials for {name} do not open {path}; searching for decrypted values skipped there"
            ));
            continue;
        };
        for domain in file.owned_domains(&name) {
            let Ok(values) = file.decrypt_domain(domain, who) else {
                report.warnings.push(format!(
                    "domain {domain} of {path} does not decrypt; skipped"
                ));
                continue;
            };
            for (name, value) in values {
                let v = value.expose_secret();
                if v.chars().count() < MIN_VALUE_LEN {
                    continue;
                }
                for (form, words) in value_forms(v) {
                    if form.len() >= MIN_VALUE_LEN {
                        patterns.push(form);
                        labels.push((domain.to_string(), name.clone(), words));
                    }
                }
            }
        }
    }
    if patterns.is_empty() {
        return;
    }
    let Ok(ac) = aho_corasick::AhoCorasick::new(patterns.iter().map(|p| p.as_slice())) else {
        report
            .warnings
            .push("could not build the value search".into());
        return;
    };
    // Occurrences per pattern in a blob, each with its byte offset, in the
    // blob as it is and with lines joined.
    let find = |bytes: &[u8]| -> BTreeMap<usize, Vec<usize>> {
        let mut hits: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for m in ac.find_overlapping_iter(bytes) {
            hits.entry(m.pattern().as_usize())
                .or_default()
                .push(m.start());
        }
        let (j, at) = joined(bytes);
        for m in ac.find_overlapping_iter(&j) {
            let offs = hits.entry(m.pattern().as_usize()).or_default();
            let start = at[m.start()];
            if !offs.contains(&start) {
                offs.push(start);
            }
        }
        hits
    };
    for staged in others {
        let now = find(&staged.bytes);
        let before = staged.head.as_deref().map(find).unwrap_or_default();
        let lines: Vec<&[u8]> = staged.bytes.split(|b| *b == b'\n').collect();
        let allowed = |line: usize| {
            lines
                .get(line - 1)
                .is_some_and(|l| String::from_utf8_lossy(l).contains(ALLOW_MARKER))
        };
        let mut seen = BTreeSet::new();
        for (pat, offsets) in now {
            let had = before.get(&pat).map_or(0, Vec::len);
            let fresh: Vec<usize> = offsets
                .iter()
                .map(|o| line_of(&staged.bytes, *o))
                .filter(|l| !allowed(*l))
                .collect();
            if fresh.len() <= had {
                continue;
            }
            // The first occurrence on an added line, else the first.
            let line = fresh
                .iter()
                .copied()
                .find(|l| staged.added.iter().any(|(a, _)| a == l))
                .unwrap_or(fresh[0]);
            let (domain, secret, words) = &labels[pat];
            // One finding per secret and file (patterns come raw form
            // first).
            if !seen.insert((domain.clone(), secret.clone())) {
                continue;
            }
            report.findings.push(Finding {
                file: staged.path.clone(),
                line: Some(line),
                domain: Some(domain.clone()),
                secret: Some(secret.clone()),
                message: format!("contains the {words}value of secret {secret} of domain {domain}"),
            });
        }
    }
}

static KEY_LINE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"^\s*(?:export\s+|-\s+)?["']?([A-Za-z_][-A-Za-z0-9_.]*)["']?\s*[:=]\s*\S"#)
        .expect("static regex")
});

static JSON_KEY: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"[{,]\s*"([A-Za-z_][-A-Za-z0-9_.]*)"\s*:"#).expect("static regex")
});

fn key_names_secret(key: &str, secret: &str, secret_upper: &str) -> bool {
    key == secret
        || key == secret_upper
        || key.ends_with(&format!("_{secret_upper}"))
        || key.ends_with(&format!("_{secret}"))
}

/// Without credentials: files that set many of a domain's secret names.
fn search_dumps(protected: &[(String, ProtectedFile)], others: &[Staged], report: &mut Report) {
    for staged in others {
        let keys: Vec<(usize, String)> = staged
            .added
            .iter()
            .filter(|(_, t)| !t.contains(ALLOW_MARKER))
            .flat_map(|(l, t)| {
                // A key at the start of the line (YAML, dotenv, pretty
                // JSON), and every quoted key of one-line JSON (`jq -c`).
                let first = KEY_LINE.captures(t).map(|c| (*l, c[1].to_string()));
                let inline = JSON_KEY
                    .captures_iter(t)
                    .map(|c| (*l, c[1].to_string()))
                    .collect::<Vec<_>>();
                first.into_iter().chain(inline)
            })
            .collect();
        if keys.is_empty() {
            continue;
        }
        for (_, file) in protected {
            for (domain, d) in &file.domains {
                if d.secrets.is_empty() {
                    continue;
                }
                let mut hits: BTreeMap<&str, usize> = BTreeMap::new();
                for secret in d.secrets.keys() {
                    let up = crate::model::env_var_name(secret);
                    if let Some((line, _)) =
                        keys.iter().find(|(_, k)| key_names_secret(k, secret, &up))
                    {
                        hits.insert(secret, *line);
                    }
                }
                let needed = d.secrets.len().min(3);
                if hits.len() >= needed {
                    let first = hits.values().min().copied();
                    let names: Vec<&str> = hits.keys().copied().collect();
                    report.findings.push(Finding {
                        file: staged.path.clone(),
                        line: first,
                        domain: Some(domain.clone()),
                        secret: None,
                        message: format!(
                            "looks like a decrypted dump of domain {domain} (sets {})",
                            names.join(", ")
                        ),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_are_new_lines_only() {
        let got = added_lines(Some(b"a\nb\n"), b"a\nx\nb\ny\n");
        assert_eq!(got, vec![(2, "x".to_string()), (4, "y".to_string())]);
        assert_eq!(added_lines(None, b"q\n"), vec![(1, "q".to_string())]);
    }

    #[test]
    fn key_lines() {
        for (line, key) in [
            ("  \"db-password\": \"x\",", "db-password"),
            ("export DB_PASSWORD='x'", "DB_PASSWORD"),
            ("db-password=x", "db-password"),
            ("api_key: x", "api_key"),
        ] {
            assert_eq!(&KEY_LINE.captures(line).unwrap()[1], key);
        }
        assert!(KEY_LINE.captures("dev:").is_none());
        assert!(key_names_secret(
            "APP_DB_PASSWORD",
            "db-password",
            "DB_PASSWORD"
        ));
    }
}
