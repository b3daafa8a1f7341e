//! The audit log's rules, one set shared by the merge driver
//! ([`crate::git::merge`]) and `check-audit-log` ([`crate::git::history`]).
//!
//! The log is a record that only grows. Git operations replay, reorder and
//! drop commits, so a version's log is compared with another as a
//! *multiset* of entries, not as a prefix:
//! - a version **keeps** its parent's log when every parent entry is still
//!   there (for the first parent, in order; other parents of a merge may
//!   be interleaved differently) — [`match_parent`];
//! - a **truncation** (`truncated N audit log entries` first) drops the
//!   parent's oldest entries;
//! - a three-way merge adds to ours the entries theirs added relative to
//!   the base, inserted by timestamp, and never deletes an entry theirs
//!   lacks (a revert) — [`merge_logs`];
//! - every structural change is explained by an entry whose operation
//!   covers it ([`meaning`], [`covers`], [`changes`]); the merge driver
//!   writes the entry pprotect would have written for a change it applies
//!   that no entry explains ([`explain`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::crypto::KeyType;
use crate::model::ProtectedFile;
use crate::ops::parse_timestamp;

/// An entry's timestamp (`YYYY-MM-DDTHH:MM:SSZ -- ...`), in seconds.
pub fn stamp(entry: &str) -> Option<i64> {
    entry.get(..20).and_then(parse_timestamp)
}

/// `N` of a `truncated N audit log entries` entry.
pub fn truncation_count(entry: &str) -> Option<usize> {
    entry
        .strip_prefix("truncated ")?
        .strip_suffix(" audit log entries")?
        .parse()
        .ok()
}

/// A thing in the file that can change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Obj {
    /// The file as a whole (its creation).
    File,
    /// A key custodian's key material.
    Custodian(String),
    /// A domain's existence.
    Domain(String),
    /// A domain's keypair.
    DomainKey(String),
    /// An owner entry: domain, custodian.
    Owner(String, String),
    /// A secret: domain, name.
    Secret(String, String),
}

impl Obj {
    /// A phrase naming the object, for messages.
    pub fn describe(&self) -> String {
        match self {
            Obj::File => "the file".into(),
            Obj::Custodian(c) => format!("key custodian {c}"),
            Obj::Domain(d) => format!("domain {d}"),
            Obj::DomainKey(d) => format!("the key of domain {d}"),
            Obj::Owner(d, o) => format!("owner {o} of domain {d}"),
            Obj::Secret(d, s) => format!("secret {s} of domain {d}"),
        }
    }

    /// Its (domain, secret, custodian), for structured output.
    pub fn fields(&self) -> (Option<String>, Option<String>, Option<String>) {
        match self {
            Obj::File => (None, None, None),
            Obj::Custodian(c) => (None, None, Some(c.clone())),
            Obj::Domain(d) | Obj::DomainKey(d) => (Some(d.clone()), None, None),
            Obj::Owner(d, o) => (Some(d.clone()), None, Some(o.clone())),
            Obj::Secret(d, s) => (Some(d.clone()), Some(s.clone()), None),
        }
    }
}

/// What an entry says happened: the object it is about, and what else its
/// operation changes as a side effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meaning {
    /// The object the entry is about.
    pub primary: Obj,
    /// Objects its operation also changes.
    pub covers: Vec<Cover>,
}

/// Something an operation changes besides its primary object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cover {
    /// One object.
    Obj(Obj),
    /// Every secret and owner of a domain (rotation, deletion).
    DomainContents(String),
    /// The custodian's owner entries in every domain (re-sealing).
    OwnerEverywhere(String),
}

/// Whether an entry's operation accounts for a change of `obj`.
pub fn covers(m: &Meaning, obj: &Obj) -> bool {
    if &m.primary == obj {
        return true;
    }
    m.covers.iter().any(|c| match (c, obj) {
        (Cover::Obj(o), _) => o == obj,
        (Cover::DomainContents(d), Obj::Secret(od, _) | Obj::Owner(od, _) | Obj::DomainKey(od)) => {
            d == od
        }
        (Cover::OwnerEverywhere(c), Obj::Owner(_, oc)) => c == oc,
        _ => false,
    })
}

/// Split `s` at an occurrence of `sep` such that `ok(left, right)`.
fn split_known<'a>(
    s: &'a str,
    sep: &str,
    ok: impl Fn(&str, &str) -> bool,
) -> Option<(&'a str, &'a str)> {
    let mut from = 0;
    let mut first = None;
    while let Some(i) = s[from..].find(sep) {
        let at = from + i;
        let (l, r) = (&s[..at], &s[at + sep.len()..]);
        first.get_or_insert((l, r));
        if ok(l, r) {
            return Some((l, r));
        }
        from = at + 1;
    }
    first
}

/// Interpret an audit entry (with or without its timestamp) using the
/// names known in the versions around it to split ambiguous text.
pub fn meaning(
    text: &str,
    domains: &BTreeSet<&str>,
    custodians: &BTreeSet<&str>,
) -> Option<Meaning> {
    let body = match text.get(..24) {
        Some(p) if p.len() == 24 && parse_timestamp(&p[..20]).is_some() && &p[20..] == " -- " => {
            &text[24..]
        }
        _ => text,
    };
    let m = |primary: Obj, covers: Vec<Cover>| Some(Meaning { primary, covers });
    let domain_list = |s: &str| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split(", ").map(String::from).collect()
        }
    };
    if body == "created" {
        return m(Obj::File, vec![]);
    }
    if body.starts_with("truncated ") && body.ends_with(" audit log entries") {
        return None;
    }
    if let Some(x) = body
        .strip_prefix("created raw-key custodian ")
        .or_else(|| body.strip_prefix("created key custodian "))
    {
        return m(Obj::Custodian(x.into()), vec![]);
    }
    if let Some(rest) = body.strip_prefix("created domain ") {
        let (d, x) = split_known(rest, " with owner ", |d, x| {
            domains.contains(d) && custodians.contains(x)
        })?;
        return m(
            Obj::Domain(d.into()),
            vec![
                Cover::Obj(Obj::DomainKey(d.into())),
                Cover::Obj(Obj::Owner(d.into(), x.into())),
            ],
        );
    }
    if let Some(d) = body.strip_prefix("deleted domain ") {
        return m(Obj::Domain(d.into()), vec![Cover::DomainContents(d.into())]);
    }
    for verb in ["added secret ", "updated secret ", "set secret "] {
        if let Some(rest) = body.strip_prefix(verb) {
            let (s, d) = rest.split_once(" in ")?;
            return m(Obj::Secret(d.into(), s.into()), vec![]);
        }
    }
    if let Some(rest) = body.strip_prefix("removed secret ") {
        let (s, d) = rest.split_once(" from ")?;
        return m(Obj::Secret(d.into(), s.into()), vec![]);
    }
    if let Some(rest) = body.strip_prefix("removed owner ") {
        let (y, d) = split_known(rest, " from ", |y, d| {
            custodians.contains(y) || domains.contains(d)
        })?;
        return m(Obj::Owner(d.into(), y.into()), vec![]);
    }
    if let Some(rest) = body.strip_prefix("removed key custodian ") {
        let (x, owned) = rest.strip_suffix(')')?.rsplit_once(" (was owner of ")?;
        let covers = domain_list(owned)
            .into_iter()
            .map(|d| Cover::Obj(Obj::Owner(d, x.into())))
            .collect();
        return m(Obj::Custodian(x.into()), covers);
    }
    for prefix in [
        "updated key custodian passphrase for ",
        "rekeyed custodian for ",
    ] {
        if let Some(rest) = body.strip_prefix(prefix) {
            let (x, _) = rest
                .strip_suffix(')')?
                .rsplit_once(" (updated domains -> ")?;
            return m(
                Obj::Custodian(x.into()),
                vec![Cover::OwnerEverywhere(x.into())],
            );
        }
    }
    if let Some(d) = body.strip_prefix("rotated key for domain ") {
        return m(
            Obj::DomainKey(d.into()),
            vec![Cover::DomainContents(d.into())],
        );
    }
    if let Some(i) = body.find(" added owner ") {
        let rest = &body[i + " added owner ".len()..];
        let (y, d) = split_known(rest, " to ", |y, d| {
            custodians.contains(y) && domains.contains(d)
        })?;
        return m(Obj::Owner(d.into(), y.into()), vec![]);
    }
    None
}

/// The structural changes from `a` to `b`.
pub fn changes(a: &ProtectedFile, b: &ProtectedFile) -> BTreeSet<Obj> {
    let mut out = BTreeSet::new();
    for_each_difference(&a.custodians, &b.custodians, |name, _, _| {
        out.insert(Obj::Custodian(name.clone()));
    });
    for_each_difference(&a.domains, &b.domains, |name, x, y| match (x, y) {
        (Some(_), None) => {
            out.insert(Obj::Domain(name.clone()));
        }
        (None, Some(new)) => {
            out.insert(Obj::Domain(name.clone()));
            for o in new.owners.keys() {
                out.insert(Obj::Owner(name.clone(), o.clone()));
            }
            for s in new.secrets.keys() {
                out.insert(Obj::Secret(name.clone(), s.clone()));
            }
        }
        (Some(x), Some(y)) => {
            if x.public_key != y.public_key {
                out.insert(Obj::DomainKey(name.clone()));
            }
            for_each_difference(&x.owners, &y.owners, |o, _, _| {
                out.insert(Obj::Owner(name.clone(), o.clone()));
            });
            for_each_difference(&x.secrets, &y.secrets, |s, _, _| {
                out.insert(Obj::Secret(name.clone(), s.clone()));
            });
        }
        (None, None) => {}
    });
    out
}

/// Call `f` for every key whose value differs between two maps (present
/// in one only, or unequal), in key order: one pass over both, as
/// consecutive versions of a file share almost every entry.
fn for_each_difference<'a, V: PartialEq>(
    a: &'a BTreeMap<String, V>,
    b: &'a BTreeMap<String, V>,
    mut f: impl FnMut(&'a String, Option<&'a V>, Option<&'a V>),
) {
    let (mut x, mut y) = (a.iter().peekable(), b.iter().peekable());
    loop {
        match (x.peek(), y.peek()) {
            (None, None) => break,
            (Some(&(k, v)), None) => {
                f(k, Some(v), None);
                x.next();
            }
            (None, Some(&(k, v))) => {
                f(k, None, Some(v));
                y.next();
            }
            (Some(&(kx, vx)), Some(&(ky, vy))) => match kx.cmp(ky) {
                std::cmp::Ordering::Less => {
                    f(kx, Some(vx), None);
                    x.next();
                }
                std::cmp::Ordering::Greater => {
                    f(ky, None, Some(vy));
                    y.next();
                }
                std::cmp::Ordering::Equal => {
                    if vx != vy {
                        f(kx, Some(vx), Some(vy));
                    }
                    x.next();
                    y.next();
                }
            },
        }
    }
}

/// How strictly a version must keep a parent's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The parent's entries in their order (the first parent of a commit).
    Ordered,
    /// The parent's entries in any order (the other parents of a merge).
    Unordered,
}

/// How many of the parent's oldest entries a truncation may drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Exactly `N` (the commit that ran `truncate-audit-log`).
    Exact,
    /// At most `N` (a merge: the truncating side may also have dropped
    /// entries this parent never had).
    AtMost,
}

fn counts<'a>(log: impl IntoIterator<Item = &'a String>) -> HashMap<&'a str, usize> {
    let mut c = HashMap::new();
    for e in log {
        *c.entry(e.as_str()).or_default() += 1;
    }
    c
}

/// The entries of `log` beyond those `other` holds (a multiset
/// difference, in `log`'s order).
pub fn beyond<'l>(log: &'l [String], other: &[String]) -> Vec<&'l str> {
    let mut have = counts(other);
    log.iter()
        .filter(|e| match have.get_mut(e.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .map(String::as_str)
        .collect()
}

/// Which entries of `new` match `parent[from..]`, or `None` when some do
/// not. `new_from` skips a leading truncation entry.
fn matched(parent: &[String], new: &[String], new_from: usize, keep: Keep) -> Option<Vec<bool>> {
    let mut mask = vec![false; new.len()];
    match keep {
        Keep::Ordered => {
            let mut j = 0;
            for (i, e) in new.iter().enumerate().skip(new_from) {
                if j < parent.len() && parent[j] == *e {
                    mask[i] = true;
                    j += 1;
                }
            }
            (j == parent.len()).then_some(mask)
        }
        Keep::Unordered => {
            let mut need = counts(parent);
            for (i, e) in new.iter().enumerate().skip(new_from) {
                if let Some(n) = need.get_mut(e.as_str())
                    && *n > 0
                {
                    *n -= 1;
                    mask[i] = true;
                }
            }
            need.values().all(|n| *n == 0).then_some(mask)
        }
    }
}

/// The longest suffix of `parent` that `new[1..]` keeps: its start.
fn kept_suffix(parent: &[String], new: &[String], keep: Keep) -> usize {
    let rest = &new[1..];
    match keep {
        Keep::Ordered => {
            let mut j = rest.len();
            let mut k = parent.len();
            while k > 0 {
                match rest[..j].iter().rposition(|e| *e == parent[k - 1]) {
                    Some(p) => {
                        j = p;
                        k -= 1;
                    }
                    None => break,
                }
            }
            k
        }
        Keep::Unordered => {
            let mut have = counts(rest);
            let mut k = parent.len();
            while k > 0 {
                match have.get_mut(parent[k - 1].as_str()) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        k -= 1;
                    }
                    _ => break,
                }
            }
            k
        }
    }
}

/// Match a parent's log inside a version's log: the positions of `new`
/// that the parent does not account for (appended entries; a new
/// truncation entry is not among them), or the parent's entries that are
/// missing (`(entries reordered)` when none is missing but the order is
/// not kept).
pub fn match_parent(
    parent: &[String],
    new: &[String],
    keep: Keep,
    truncation: Truncation,
) -> Result<Vec<usize>, Vec<String>> {
    let unmatched = |mask: Vec<bool>, from: usize| -> Vec<usize> {
        (from..new.len()).filter(|&i| !mask[i]).collect()
    };
    if let Some(mask) = matched(parent, new, 0, keep) {
        return Ok(unmatched(mask, 0));
    }
    // A truncation: `truncated N audit log entries`, then what is kept of
    // the parent's log (its newest entries), then what was appended.
    if let Some(n) = new.first().and_then(|f| truncation_count(f)) {
        let k = kept_suffix(parent, new, keep);
        let ok = match truncation {
            Truncation::Exact => k == n,
            Truncation::AtMost => k <= n,
        };
        if ok && let Some(mask) = matched(&parent[k..], new, 1, keep) {
            return Ok(unmatched(mask, 1));
        }
    }
    // Report what is missing.
    let mut missing: Vec<String> = beyond(parent, new).into_iter().map(String::from).collect();
    if missing.is_empty() {
        missing.push("(entries reordered)".into());
    }
    Err(missing)
}

/// Whether `side` truncated the log relative to `base` (a new truncation
/// entry first, and base entries gone).
fn truncated_from(base: &[String], side: &[String]) -> bool {
    side.first().and_then(|f| truncation_count(f)).is_some()
        && matched(base, side, 0, Keep::Unordered).is_none()
}

/// How a three-way log merge treats entries of the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMerge {
    /// For a commit on top of ours alone (rebase, cherry-pick, revert):
    /// only what theirs *added* relative to the base comes along; base
    /// entries ours never had (a cherry-pick's base) stay out.
    Replay,
    /// For a merge commit, which must keep both parents' entries: every
    /// entry of theirs that ours lacks comes along (also one ours lost to
    /// a revert git applied without the driver), except the entries a
    /// truncation dropped.
    Union,
}

/// Three-way merge of audit logs. The result is ours with theirs'
/// additions (see [`LogMerge`]) inserted by timestamp (ours first on ties,
/// in theirs' order among themselves). An entry added on both sides
/// appears once; an entry theirs lacks (a revert, a cherry-pick's base) is
/// never deleted from ours. A truncation on either side is kept; `Err`
/// when both sides truncated differently.
pub fn merge_logs(
    base: &[String],
    ours: &[String],
    theirs: &[String],
    mode: LogMerge,
) -> Result<Vec<String>, String> {
    let o_trunc = truncated_from(base, ours);
    let t_trunc = truncated_from(base, theirs);
    if o_trunc && t_trunc && ours.first() != theirs.first() {
        return Err("truncated differently on both sides".into());
    }
    let mut result: Vec<String> = ours.to_vec();
    let mut theirs_body = theirs;
    if t_trunc && !o_trunc {
        // Apply theirs' truncation: drop from ours the base entries theirs
        // dropped, and put its truncation entry first.
        theirs_body = &theirs[1..];
        let mut kept = counts(theirs_body);
        let mut dropped: HashMap<&str, usize> = HashMap::new();
        for e in base {
            match kept.get_mut(e.as_str()) {
                Some(n) if *n > 0 => *n -= 1,
                _ => *dropped.entry(e.as_str()).or_default() += 1,
            }
        }
        result.retain(|e| match dropped.get_mut(e.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        });
        result.insert(0, theirs[0].clone());
    }
    // Theirs' additions: occurrences beyond what base and ours both hold
    // (a merge without truncations: beyond what ours holds).
    let union = mode == LogMerge::Union && !o_trunc && !t_trunc;
    let (b, o) = (
        if union { HashMap::new() } else { counts(base) },
        counts(ours),
    );
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let additions: Vec<&String> = theirs_body
        .iter()
        .filter(|e| {
            let n = seen.entry(e.as_str()).or_default();
            *n += 1;
            let have = b
                .get(e.as_str())
                .copied()
                .unwrap_or(0)
                .max(o.get(e.as_str()).copied().unwrap_or(0));
            *n > have
        })
        .collect();
    Ok(insert_by_time(result, &additions))
}

/// The log when a conflicting truncation is settled by keeping `keep`'s:
/// `keep`, plus the entries `other` added relative to base (its own
/// truncation ignored).
pub fn merge_logs_keeping(base: &[String], keep: &[String], other: &[String]) -> Vec<String> {
    let other = match other.first().and_then(|f| truncation_count(f)) {
        Some(_) if truncated_from(base, other) => &other[1..],
        _ => other,
    };
    let (b, k) = (counts(base), counts(keep));
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let additions: Vec<&String> = other
        .iter()
        .filter(|e| {
            let n = seen.entry(e.as_str()).or_default();
            *n += 1;
            *n > b
                .get(e.as_str())
                .copied()
                .unwrap_or(0)
                .max(k.get(e.as_str()).copied().unwrap_or(0))
        })
        .collect();
    insert_by_time(keep.to_vec(), &additions)
}

/// Insert `add` into `log` by timestamp: a stable merge of the two runs
/// (log first on ties), keeping a leading truncation entry first.
fn insert_by_time(log: Vec<String>, add: &[&String]) -> Vec<String> {
    if add.is_empty() {
        return log;
    }
    let mut out = Vec::with_capacity(log.len() + add.len());
    let mut log = log.into_iter().peekable();
    if let Some(first) = log.peek()
        && truncation_count(first).is_some()
    {
        out.push(log.next().expect("peeked"));
    }
    let (mut last_l, mut last_a) = (i64::MIN, i64::MIN);
    let mut j = 0;
    loop {
        let next_l = log.peek().map(|e| stamp(e).unwrap_or(last_l));
        let next_a = add.get(j).map(|e| stamp(e).unwrap_or(last_a));
        match (next_l, next_a) {
            (Some(l), Some(a)) if a < l => {
                last_a = a;
                out.push(add[j].clone());
                j += 1;
            }
            (Some(l), _) => {
                last_l = l;
                out.push(log.next().expect("peeked"));
            }
            (None, Some(a)) => {
                last_a = a;
                out.push(add[j].clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The names of domains and custodians in either version, for reading
/// entries whose names contain separators.
pub fn names<'a>(
    a: &'a ProtectedFile,
    b: &'a ProtectedFile,
) -> (BTreeSet<&'a str>, BTreeSet<&'a str>) {
    let domains = a
        .domains
        .keys()
        .chain(b.domains.keys())
        .map(String::as_str)
        .collect();
    let custodians = a
        .custodians
        .keys()
        .chain(b.custodians.keys())
        .map(String::as_str)
        .collect();
    (domains, custodians)
}

/// The structural changes from `before` to `after` that none of `entries`
/// explains.
pub fn unexplained(before: &ProtectedFile, after: &ProtectedFile, entries: &[&str]) -> Vec<Obj> {
    let (domains, custodians) = names(before, after);
    let meanings: Vec<Meaning> = entries
        .iter()
        .filter_map(|e| meaning(e, &domains, &custodians))
        .collect();
    changes(before, after)
        .into_iter()
        .filter(|obj| !meanings.iter().any(|m| covers(m, obj)))
        .collect()
}

/// The entries (without timestamps) pprotect itself would write for the
/// changes from `before` to `after` that `entries` does not explain, in
/// pocket_protector's wording. `actor` names who added an owner.
pub fn explain(
    before: &ProtectedFile,
    after: &ProtectedFile,
    entries: &[&str],
    actor: &str,
) -> Vec<String> {
    let (domains, custodians) = names(before, after);
    let mut written: Vec<Meaning> = Vec::new();
    let mut out = Vec::new();
    for obj in unexplained(before, after, entries) {
        if written.iter().any(|m| covers(m, &obj)) {
            continue;
        }
        let Some(text) = describe_change(&obj, before, after, actor) else {
            continue;
        };
        if let Some(m) = meaning(&text, &domains, &custodians) {
            written.push(m);
        }
        out.push(text);
    }
    out
}

fn describe_change(
    obj: &Obj,
    before: &ProtectedFile,
    after: &ProtectedFile,
    actor: &str,
) -> Option<String> {
    let owned = |f: &ProtectedFile, c: &str| f.owned_domains(c).join(", ");
    Some(match obj {
        Obj::File => return None,
        Obj::Custodian(c) => match (before.custodians.get(c), after.custodians.get(c)) {
            (None, Some(p)) if p.key_type == KeyType::Raw => {
                format!("created raw-key custodian {c}")
            }
            (None, Some(_)) => format!("created key custodian {c}"),
            (Some(_), None) => format!(
                "removed key custodian {c} (was owner of {})",
                owned(before, c)
            ),
            _ => format!(
                "updated key custodian passphrase for {c} (updated domains -> {})",
                owned(after, c)
            ),
        },
        Obj::Domain(d) => match after.domains.get(d) {
            Some(dom) => {
                let owner = dom.owners.keys().next()?;
                format!("created domain {d} with owner {owner}")
            }
            None => format!("deleted domain {d}"),
        },
        Obj::DomainKey(d) => format!("rotated key for domain {d}"),
        Obj::Owner(d, o) => match after.domains.get(d).and_then(|x| x.owners.get(o)) {
            Some(_) => format!("{actor} added owner {o} to {d}"),
            None => format!("removed owner {o} from {d}"),
        },
        Obj::Secret(d, s) => {
            let get = |f: &ProtectedFile| f.domains.get(d).and_then(|x| x.secrets.get(s)).is_some();
            match (get(before), get(after)) {
                (false, true) => format!("added secret {s} in {d}"),
                (true, false) => format!("removed secret {s} from {d}"),
                _ => format!("updated secret {s} in {d}"),
            }
        }
    })
}

/// Whether a logged change has the structural shape its operation always
/// produces; `Some(problem)` when it does not. A rotation re-seals every
/// owner entry and secret the domain keeps; a passphrase change or rekey
/// re-seals the custodian's owner entry in every domain they keep.
pub fn shape_problem(m: &Meaning, before: &ProtectedFile, after: &ProtectedFile) -> Option<String> {
    match &m.primary {
        Obj::DomainKey(d) => {
            let (x, y) = (before.domains.get(d)?, after.domains.get(d)?);
            if x.public_key == y.public_key {
                return None;
            }
            let owner = x.owners.iter().find(|(o, v)| y.owners.get(*o) == Some(*v));
            let secret = x
                .secrets
                .iter()
                .find(|(s, v)| y.secrets.get(*s) == Some(*v));
            match (owner, secret) {
                (Some((o, _)), _) => Some(format!(
                    "key of domain {d} replaced, but owner {o} was not re-sealed to it"
                )),
                (_, Some((s, _))) => Some(format!(
                    "key of domain {d} replaced, but secret {s} was not re-sealed to it"
                )),
                _ => None,
            }
        }
        Obj::Custodian(c)
            if m.covers
                .iter()
                .any(|cv| matches!(cv, Cover::OwnerEverywhere(_))) =>
        {
            let (p, q) = (before.custodians.get(c)?, after.custodians.get(c)?);
            if p == q {
                return None;
            }
            after.domains.iter().find_map(|(d, dom)| {
                let now = dom.owners.get(c)?;
                let was = before.domains.get(d)?.owners.get(c)?;
                (now == was).then(|| {
                    format!("key of custodian {c} replaced, but their owner entry of domain {d} was not re-sealed")
                })
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(p: &[String], n: &[String]) -> Result<Vec<usize>, Vec<String>> {
        match_parent(p, n, Keep::Ordered, Truncation::Exact)
    }

    fn names<'a>(v: &[&'a str]) -> BTreeSet<&'a str> {
        v.iter().copied().collect()
    }

    #[test]
    fn grammar() {
        let d = names(&["dev", "a to b"]);
        let c = names(&["x@y", "z"]);
        let m = meaning(
            "2026-01-01T00:00:00Z -- x@y added owner z to a to b",
            &d,
            &c,
        )
        .unwrap();
        assert_eq!(m.primary, Obj::Owner("a to b".into(), "z".into()));
        let m = meaning("2026-01-01T00:00:00Z -- added secret k in dev", &d, &c).unwrap();
        assert_eq!(m.primary, Obj::Secret("dev".into(), "k".into()));
        let m = meaning(
            "2026-01-01T00:00:00Z -- removed key custodian z (was owner of dev)",
            &d,
            &c,
        )
        .unwrap();
        assert!(covers(&m, &Obj::Owner("dev".into(), "z".into())));
        assert!(meaning("2026-01-01T00:00:00Z -- something else", &d, &c).is_none());
    }

    #[test]
    fn append_only_with_interleaving_and_truncation() {
        // A second truncation may write the same text as the first.
        let t = "truncated 3 audit log entries";
        assert_eq!(ap(&s(&[t, "x", "y", "z"]), &s(&[t, "z", "w"])), Ok(vec![2]));
        // Deleting an entry from a truncated log is not a truncation.
        let t = "truncated 20 audit log entries";
        assert!(ap(&s(&[t, "a", "b", "c"]), &s(&[t, "a", "b"])).is_err());
        assert_eq!(
            ap(&s(&["a", "b"]), &s(&["a", "x", "b", "y"])),
            Ok(vec![1, 3])
        );
        assert_eq!(ap(&s(&["a", "b"]), &s(&["a", "c"])), Err(s(&["b"])));
        assert_eq!(
            ap(
                &s(&["a", "b", "c"]),
                &s(&["truncated 1 audit log entries", "b", "c", "d"])
            ),
            Ok(vec![3])
        );
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const T1: &str = "2026-01-01T00:00:01Z -- added secret a in dev";
    const T2: &str = "2026-01-01T00:00:02Z -- added secret b in dev";
    const T3: &str = "2026-01-01T00:00:03Z -- added secret c in dev";
    const T4: &str = "2026-01-01T00:00:04Z -- added secret d in dev";

    #[test]
    fn merge_adds_theirs_additions_by_time() {
        // Update a branch from main, then merge it back.
        let base = s(&[T2]);
        let main = s(&[T2, T3]);
        let feature = s(&[T1, T2]);
        assert_eq!(
            merge_logs(&base, &main, &feature, LogMerge::Replay).unwrap(),
            s(&[T1, T2, T3])
        );
        // Cherry-pick: base holds an entry ours never had; it stays out.
        assert_eq!(
            merge_logs(&s(&[T1]), &s(&[T3]), &s(&[T1, T2]), LogMerge::Replay).unwrap(),
            s(&[T2, T3])
        );
        // Revert: theirs lacks an entry; ours keeps it.
        assert_eq!(
            merge_logs(
                &s(&[T1, T2]),
                &s(&[T1, T2, T3]),
                &s(&[T1]),
                LogMerge::Replay
            )
            .unwrap(),
            s(&[T1, T2, T3])
        );
        // An entry added on both sides appears once; ties go to ours.
        assert_eq!(
            merge_logs(&s(&[]), &s(&[T2, T4]), &s(&[T2, T3]), LogMerge::Replay).unwrap(),
            s(&[T2, T3, T4])
        );
        // Rebase step 2: base is no prefix of ours.
        assert_eq!(
            merge_logs(&s(&[T1]), &s(&[T3, T1]), &s(&[T1, T4]), LogMerge::Replay).unwrap(),
            s(&[T3, T1, T4])
        );
    }

    #[test]
    fn a_merge_commit_keeps_both_parents_entries() {
        // Ours lost T1 to a revert git applied without the driver; a merge
        // commit still keeps it (theirs has it), a replay does not.
        let (base, ours, theirs) = (s(&[T1]), s(&[T3]), s(&[T1, T2]));
        assert_eq!(
            merge_logs(&base, &ours, &theirs, LogMerge::Union).unwrap(),
            s(&[T1, T2, T3])
        );
        assert_eq!(
            merge_logs(&base, &ours, &theirs, LogMerge::Replay).unwrap(),
            s(&[T2, T3])
        );
    }

    #[test]
    fn merge_keeps_truncations() {
        let tr = "truncated 2 audit log entries";
        let base = s(&[T1, T2, T3]);
        let theirs = s(&[tr, T3]);
        let ours = s(&[T1, T2, T3, T4]);
        assert_eq!(
            merge_logs(&base, &ours, &theirs, LogMerge::Replay).unwrap(),
            s(&[tr, T3, T4])
        );
        assert_eq!(
            merge_logs(&base, &theirs, &ours, LogMerge::Replay).unwrap(),
            s(&[tr, T3, T4])
        );
        let other = s(&["truncated 1 audit log entries", T2, T3]);
        assert!(merge_logs(&base, &theirs, &other, LogMerge::Replay).is_err());
        // The merge keeps both parents (a merge may drop at most N).
        let m = s(&[tr, T3, T4]);
        assert!(match_parent(&ours, &m, Keep::Unordered, Truncation::AtMost).is_ok());
        assert!(match_parent(&theirs, &m, Keep::Unordered, Truncation::AtMost).is_ok());
    }

    #[test]
    fn explains_what_a_revert_changes() {
        use crate::crypto::KeyType;
        use secrecy::SecretString;
        let pass = SecretString::from(format!("P{}P", "ab".repeat(32)));
        let mut a = ProtectedFile::create();
        a.add_key_custodian("c@x", &pass, KeyType::Raw).unwrap();
        let who = a.unlock("c@x", &pass).unwrap().unwrap();
        a.add_domain("dev", &who).unwrap();
        let mut b = a.clone();
        b.add_secret("dev", "k", &SecretString::from("v".to_string()))
            .unwrap();
        b.add_domain("prod", &who).unwrap();
        b.add_secret("prod", "p", &SecretString::from("v".to_string()))
            .unwrap();
        assert_eq!(
            explain(&b, &a, &[], "me"),
            s(&["deleted domain prod", "removed secret k from dev"])
        );
        assert_eq!(
            explain(&a, &b, &[], "me"),
            s(&[
                "created domain prod with owner c@x",
                "added secret k in dev",
                "added secret p in prod"
            ])
        );
        let mut c = b.clone();
        c.update_secret("dev", "k", &SecretString::from("w".to_string()))
            .unwrap();
        assert_eq!(explain(&c, &b, &[], "me"), s(&["updated secret k in dev"]));
        let logged: Vec<&str> = c.audit_log.iter().map(String::as_str).collect();
        assert!(explain(&b, &c, &logged, "me").is_empty());
    }
}
