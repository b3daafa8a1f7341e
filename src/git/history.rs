//! `pprotect check-audit-log`: cross-check the audit log inside the
//! protected file against git history, the authoritative record.
//!
//! For every commit that changes the file, against each parent:
//! - the log is append-only: the parent's entries are all still there, in
//!   order (new entries may be interleaved, as the merge driver and
//!   rebases do), or the log was truncated;
//! - every structural change is explained by an appended entry, and every
//!   appended entry by a change (or by another entry about the same thing
//!   in the same commit, such as an add then a remove);
//! - every version of the file is valid (hooks can be skipped);
//! - appended entries are in timestamp order and not stamped after the
//!   commit (beyond a clock skew).
//!
//! Each distinct blob is parsed once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use gix::ObjectId;

use super::repo::Repo;
use crate::error::{Error, Result};
use crate::model::ProtectedFile;
use crate::ops::parse_timestamp;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A version of the file does not parse or validate.
    InvalidFile,
    /// Entries of the parent's log were removed or altered.
    LogRewritten,
    /// A structural change no appended entry explains.
    UnloggedChange,
    /// An appended entry no change backs.
    UnbackedEntry,
    /// The same entry appended twice in one commit.
    DuplicateEntry,
    /// An appended entry stamped after its commit.
    FutureDated,
    /// An appended entry stamped before entries already in the log.
    BackDated,
    /// Appended entries out of timestamp order within one commit.
    OutOfOrder,
    /// An appended entry that is not in the audit-log grammar.
    UnrecognizedEntry,
}

impl Kind {
    /// The kebab-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InvalidFile => "invalid-file",
            Kind::LogRewritten => "log-rewritten",
            Kind::UnloggedChange => "unlogged-change",
            Kind::UnbackedEntry => "unbacked-entry",
            Kind::DuplicateEntry => "duplicate-entry",
            Kind::FutureDated => "future-dated",
            Kind::BackDated => "back-dated",
            Kind::OutOfOrder => "out-of-order",
            Kind::UnrecognizedEntry => "unrecognized-entry",
        }
    }
}

/// One inconsistency between the log and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Full commit id.
    pub commit: String,
    /// The commit's summary line.
    pub summary: String,
    /// What kind of problem.
    pub kind: Kind,
    /// Domain involved.
    pub domain: Option<String>,
    /// Secret involved.
    pub secret: Option<String>,
    /// Custodian involved.
    pub custodian: Option<String>,
    /// Audit entry involved.
    pub entry: Option<String>,
    /// Human-readable description.
    pub message: String,
}

/// The result of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// Findings, oldest commit first.
    pub findings: Vec<Finding>,
    /// Commits that change the file.
    pub commits_checked: usize,
}

/// A thing in the file that can change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Obj {
    File,
    Custodian(String),
    Domain(String),
    DomainKey(String),
    Owner(String, String),
    Secret(String, String),
}

impl Obj {
    fn describe(&self) -> String {
        match self {
            Obj::File => "the file".into(),
            Obj::Custodian(c) => format!("key custodian {c}"),
            Obj::Domain(d) => format!("domain {d}"),
            Obj::DomainKey(d) => format!("the key of domain {d}"),
            Obj::Owner(d, o) => format!("owner {o} of domain {d}"),
            Obj::Secret(d, s) => format!("secret {s} of domain {d}"),
        }
    }

    fn fields(&self) -> (Option<String>, Option<String>, Option<String>) {
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
struct Meaning {
    primary: Obj,
    /// Objects covered besides the primary (`None` domain = any domain).
    covers: Vec<Cover>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cover {
    Obj(Obj),
    /// Every secret and owner of a domain (rotation, deletion).
    DomainContents(String),
    /// The custodian's owner entries in every domain (re-sealing).
    OwnerEverywhere(String),
}

fn covers(m: &Meaning, obj: &Obj) -> bool {
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
fn meaning(text: &str, domains: &BTreeSet<&str>, custodians: &BTreeSet<&str>) -> Option<Meaning> {
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
fn changes(a: &ProtectedFile, b: &ProtectedFile) -> BTreeSet<Obj> {
    let mut out = BTreeSet::new();
    for name in a.custodians.keys().chain(b.custodians.keys()) {
        if a.custodians.get(name) != b.custodians.get(name) {
            out.insert(Obj::Custodian(name.clone()));
        }
    }
    for name in a.domains.keys().chain(b.domains.keys()) {
        match (a.domains.get(name), b.domains.get(name)) {
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
                for o in x.owners.keys().chain(y.owners.keys()) {
                    if x.owners.get(o) != y.owners.get(o) {
                        out.insert(Obj::Owner(name.clone(), o.clone()));
                    }
                }
                for s in x.secrets.keys().chain(y.secrets.keys()) {
                    if x.secrets.get(s) != y.secrets.get(s) {
                        out.insert(Obj::Secret(name.clone(), s.clone()));
                    }
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// Match the parent's log inside the new one (order kept); the positions
/// of `new` that are appended, or `None` when entries were removed or
/// altered. A truncation (first entry `truncated N audit log entries`)
/// keeps a suffix of the parent's log.
fn appended_positions(
    parent: &[String],
    new: &[String],
) -> std::result::Result<Vec<usize>, Vec<String>> {
    // An append, possibly interleaved (merges, rebases).
    let mut j = 0;
    let mut appended = Vec::new();
    for (i, e) in new.iter().enumerate() {
        if j < parent.len() && parent[j] == *e {
            j += 1;
        } else {
            appended.push(i);
        }
    }
    // Otherwise a truncation: `truncated N audit log entries`, then a
    // suffix of the parent's log (possibly empty), then what was appended.
    if j < parent.len()
        && let Some(count) = new.first().and_then(|f| truncation_count(f))
    {
        let rest = &new[1..];
        let kept = (0..=parent.len().min(rest.len()))
            .rev()
            .find(|&k| rest[..k] == parent[parent.len() - k..])
            .unwrap_or(0);
        // `truncate-audit-log` writes N = entries dropped: the parent's
        // entries it did not keep. (Entries appended and dropped within the
        // same commit would make N larger; that rare case is reported.)
        if count == parent.len() - kept {
            return Ok((1 + kept..new.len()).collect());
        }
    }
    if j == parent.len() {
        Ok(appended)
    } else {
        // Report what is missing (multiset difference).
        let mut counts: HashMap<&String, isize> = HashMap::new();
        for e in new {
            *counts.entry(e).or_default() += 1;
        }
        let mut missing = Vec::new();
        for e in parent {
            let c = counts.entry(e).or_default();
            if *c > 0 {
                *c -= 1;
            } else {
                missing.push(e.clone());
            }
        }
        if missing.is_empty() {
            missing.push("(entries reordered)".into());
        }
        Err(missing)
    }
}

/// `N` of a `truncated N audit log entries` entry.
fn truncation_count(entry: &str) -> Option<usize> {
    entry
        .strip_prefix("truncated ")?
        .strip_suffix(" audit log entries")?
        .parse()
        .ok()
}

/// Builds a finding for the commit being checked.
type MakeFinding<'a> = dyn Fn(Kind, Option<&Obj>, Option<&str>, String) -> Finding + 'a;

type Parsed = Arc<std::result::Result<ProtectedFile, Error>>;

/// A commit that changes the file: its blob, and each parent's.
struct Task {
    id: ObjectId,
    summary: String,
    time: i64,
    blob: Option<ObjectId>,
    parents: Vec<Option<ObjectId>>,
}

fn blob_at(commit: &gix::Commit<'_>, path: &str) -> Result<Option<ObjectId>> {
    let tree = commit
        .tree()
        .map_err(|e| Error::git(format!("cannot read the tree of {}", commit.id), e))?;
    let entry = tree
        .lookup_entry_by_path(path)
        .map_err(|e| Error::git(format!("cannot look up {path} in {}", commit.id), e))?;
    Ok(entry.filter(|e| e.mode().is_blob()).map(|e| e.object_id()))
}

/// Read blobs (here) and parse them on all cores.
fn parse_all(repo: &gix::Repository, ids: &[ObjectId]) -> Result<Vec<(ObjectId, Parsed)>> {
    let blobs: Vec<(ObjectId, Vec<u8>)> = ids
        .iter()
        .map(|id| {
            let blob = repo
                .find_blob(*id)
                .map_err(|e| Error::git(format!("cannot read object {id}"), e))?;
            Ok((*id, blob.data.clone()))
        })
        .collect::<Result<_>>()?;
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = blobs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = blobs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(id, bytes)| (*id, Arc::new(ProtectedFile::from_bytes(bytes))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(blobs.len());
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| Error::git("parsing", "a worker thread failed"))?,
            );
        }
        Ok(out)
    })
}

/// Commits are checked in chunks; each chunk's blobs are parsed in
/// parallel, and a parse is dropped once no later check needs it.
const CHUNK: usize = 256;

/// Check the history of `path` (relative to the repository root) in the
/// commits reachable from `range`'s tip (`A..B`, or a single revision;
/// HEAD by default).
pub fn check(repo: &Repo, path: &str, range: Option<&str>, skew: i64) -> Result<Report> {
    let r = &repo.repo;
    let (tip, hidden) = match range {
        None => ("HEAD", None),
        Some(spec) => match spec.split_once("..") {
            Some((a, b)) => (if b.is_empty() { "HEAD" } else { b }, Some(a)),
            None => (spec, None),
        },
    };
    let resolve = |s: &str| -> Result<ObjectId> {
        r.rev_parse_single(s)
            .map(|id| id.detach())
            .map_err(|e| Error::git(format!("cannot resolve {s}"), e))
    };
    let tip = resolve(tip)?;
    let mut walk = r.rev_walk([tip]);
    if let Some(a) = hidden {
        walk = walk.with_hidden([resolve(a)?]);
    }
    let walk = walk
        .all()
        .map_err(|e| Error::git("cannot walk history", e))?;

    // Pass 1: every commit's blob, then which commits change the file.
    struct Seen {
        id: ObjectId,
        parents: Vec<ObjectId>,
        summary: String,
        time: i64,
        blob: Option<ObjectId>,
    }
    let mut seen = Vec::new();
    let mut blob_of: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
    for info in walk {
        let info = info.map_err(|e| Error::git("cannot walk history", e))?;
        let commit = r
            .find_commit(info.id)
            .map_err(|e| Error::git(format!("cannot read commit {}", info.id), e))?;
        let blob = blob_at(&commit, path)?;
        blob_of.insert(info.id, blob);
        seen.push(Seen {
            id: info.id,
            parents: commit.parent_ids().map(|p| p.detach()).collect(),
            summary: commit
                .message_raw_sloppy()
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            time: commit.time().map(|t| t.seconds).unwrap_or(i64::MAX),
            blob,
        });
    }
    let ever_present = blob_of.values().any(Option::is_some);
    let mut tasks = Vec::new();
    for c in seen {
        let mut parents = Vec::new();
        for pid in &c.parents {
            let pb = match blob_of.get(pid) {
                Some(b) => *b,
                // A parent outside the range (hidden).
                None => {
                    let parent = r
                        .find_commit(*pid)
                        .map_err(|e| Error::git(format!("cannot read commit {pid}"), e))?;
                    blob_at(&parent, path)?
                }
            };
            parents.push(pb);
        }
        if parents.is_empty() {
            parents.push(None);
        }
        if parents.contains(&c.blob) {
            continue; // the file came unchanged from a parent
        }
        tasks.push(Task {
            id: c.id,
            summary: c.summary,
            time: c.time,
            blob: c.blob,
            parents,
        });
    }
    if !ever_present {
        return Err(Error::git(path, "was never committed in this history"));
    }

    // Pass 2: parse each distinct blob once, check, and drop parses no
    // later check needs.
    let mut uses: HashMap<ObjectId, usize> = HashMap::new();
    for t in &tasks {
        for b in std::iter::once(&t.blob).chain(&t.parents).flatten() {
            *uses.entry(*b).or_default() += 1;
        }
    }
    let empty: Parsed = Arc::new(Ok(ProtectedFile::default()));
    let mut cache: HashMap<ObjectId, Parsed> = HashMap::new();
    let mut per_commit: Vec<Vec<Finding>> = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(CHUNK) {
        let mut need: Vec<ObjectId> = chunk
            .iter()
            .flat_map(|t| std::iter::once(&t.blob).chain(&t.parents).flatten())
            .filter(|b| !cache.contains_key(*b))
            .copied()
            .collect();
        need.sort();
        need.dedup();
        cache.extend(parse_all(r, &need)?);
        for task in chunk {
            let get =
                |b: &Option<ObjectId>| b.map_or_else(|| empty.clone(), |id| cache[&id].clone());
            let new = get(&task.blob);
            let parents: Vec<(bool, Parsed)> =
                task.parents.iter().map(|p| (p.is_none(), get(p))).collect();
            per_commit.push(check_commit(task, path, skew, &new, &parents));
            for b in std::iter::once(&task.blob).chain(&task.parents).flatten() {
                let n = uses.get_mut(b).expect("counted");
                *n -= 1;
                if *n == 0 {
                    cache.remove(b);
                }
            }
        }
    }
    per_commit.reverse();
    Ok(Report {
        commits_checked: tasks.len(),
        findings: per_commit.into_iter().flatten().collect(),
    })
}

fn check_commit(
    task: &Task,
    path: &str,
    skew: i64,
    new: &Parsed,
    parents: &[(bool, Parsed)],
) -> Vec<Finding> {
    let id = task.id.to_string();
    let finding = |kind: Kind, obj: Option<&Obj>, entry: Option<&str>, message: String| {
        let (domain, secret, custodian) = obj.map(Obj::fields).unwrap_or((None, None, None));
        Finding {
            commit: id.clone(),
            summary: task.summary.clone(),
            kind,
            domain,
            secret,
            custodian,
            entry: entry.map(String::from),
            message,
        }
    };
    let mut findings = Vec::new();
    let new = match new.as_ref() {
        Ok(f) => f,
        Err(e) => {
            if task.blob.is_some() {
                findings.push(finding(
                    Kind::InvalidFile,
                    None,
                    None,
                    format!("{path} is not a valid protected file: {e}"),
                ));
            }
            return findings;
        }
    };
    let mut seen_bad_log = false;
    for (missing, parent) in parents {
        let Ok(parent) = parent.as_ref() else {
            continue; // reported at that commit
        };
        check_against(
            parent,
            new,
            *missing,
            task.time,
            skew,
            &finding,
            &mut findings,
            &mut seen_bad_log,
        );
    }
    dedupe(&mut findings);
    findings
}

fn dedupe(f: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    f.retain(|x| seen.insert((x.kind, x.message.clone())));
}

#[allow(clippy::too_many_arguments)]
fn check_against(
    parent: &ProtectedFile,
    new: &ProtectedFile,
    parent_missing: bool,
    commit_time: i64,
    skew: i64,
    finding: &MakeFinding<'_>,
    out: &mut Vec<Finding>,
    seen_bad_log: &mut bool,
) {
    let positions = match appended_positions(&parent.audit_log, &new.audit_log) {
        Ok(p) => p,
        Err(missing) => {
            if !*seen_bad_log {
                for e in missing {
                    out.push(finding(
                        Kind::LogRewritten,
                        None,
                        Some(&e),
                        format!("audit entry removed or altered: {e}"),
                    ));
                }
                *seen_bad_log = true;
            }
            return;
        }
    };
    let names = |f: &ProtectedFile| -> (Vec<String>, Vec<String>) {
        (
            f.domains.keys().cloned().collect(),
            f.custodians.keys().cloned().collect(),
        )
    };
    let (pd, pc) = names(parent);
    let (nd, nc) = names(new);
    let domains: BTreeSet<&str> = pd.iter().chain(nd.iter()).map(String::as_str).collect();
    let custodians: BTreeSet<&str> = pc.iter().chain(nc.iter()).map(String::as_str).collect();

    let mut entries: Vec<(usize, &str, Option<Meaning>)> = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in &positions {
        let e = new.audit_log[i].as_str();
        *counts.entry(e).or_default() += 1;
        let is_truncation = e.starts_with("truncated ") && e.ends_with(" audit log entries");
        let m = meaning(e, &domains, &custodians);
        if m.is_none() && !is_truncation {
            out.push(finding(
                Kind::UnrecognizedEntry,
                None,
                Some(e),
                format!("unrecognized audit entry: {e}"),
            ));
        }
        entries.push((i, e, m));
    }
    for (e, n) in &counts {
        if *n > 1 {
            out.push(finding(
                Kind::DuplicateEntry,
                None,
                Some(e),
                format!("audit entry appended {n} times: {e}"),
            ));
        }
    }
    // Time: after the commit, or out of order with what precedes it.
    let appended: BTreeSet<usize> = positions.iter().copied().collect();
    for &(i, e, _) in &entries {
        let Some(ts) = e.get(..20).and_then(parse_timestamp) else {
            continue;
        };
        if ts > commit_time.saturating_add(skew) {
            out.push(finding(
                Kind::FutureDated,
                None,
                Some(e),
                format!("audit entry stamped after its commit: {e}"),
            ));
        }
        let prev = (0..i).rev().find_map(|j| {
            new.audit_log[j]
                .get(..20)
                .and_then(parse_timestamp)
                .map(|t| (j, t))
        });
        if let Some((j, pts)) = prev
            && ts < pts - skew
        {
            let kind = if appended.contains(&j) {
                Kind::OutOfOrder
            } else {
                Kind::BackDated
            };
            let what = if kind == Kind::OutOfOrder {
                "audit entry out of timestamp order within the commit"
            } else {
                "audit entry stamped before entries already in the log"
            };
            out.push(finding(kind, None, Some(e), format!("{what}: {e}")));
        }
    }
    // Changes and entries must explain each other.
    let changed = changes(parent, new);
    let meanings: Vec<&Meaning> = entries.iter().filter_map(|(_, _, m)| m.as_ref()).collect();
    for obj in &changed {
        if !meanings.iter().any(|m| covers(m, obj)) {
            out.push(finding(
                Kind::UnloggedChange,
                Some(obj),
                None,
                format!("{} changed with no audit entry", obj.describe()),
            ));
        }
    }
    for (k, (_, e, m)) in entries.iter().enumerate() {
        let Some(m) = m else { continue };
        let backed = match &m.primary {
            Obj::File => parent_missing || parent.audit_log.is_empty(),
            obj => {
                changed.contains(obj)
                    || entries.iter().enumerate().any(|(o, (_, other, om))| {
                        o != k && *other != *e && om.as_ref().is_some_and(|om| om.primary == *obj)
                    })
            }
        };
        if !backed {
            out.push(finding(
                Kind::UnbackedEntry,
                Some(&m.primary),
                Some(e),
                format!("audit entry with no matching change: {e}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // A second truncation may write the same text as the first.
        let t = "truncated 3 audit log entries";
        assert_eq!(
            appended_positions(&s(&[t, "x", "y", "z"]), &s(&[t, "z", "w"])),
            Ok(vec![2])
        );
        // Deleting an entry from a truncated log is not a truncation.
        let t = "truncated 20 audit log entries";
        assert!(appended_positions(&s(&[t, "a", "b", "c"]), &s(&[t, "a", "b"])).is_err());
        assert_eq!(
            appended_positions(&s(&["a", "b"]), &s(&["a", "x", "b", "y"])),
            Ok(vec![1, 3])
        );
        assert_eq!(
            appended_positions(&s(&["a", "b"]), &s(&["a", "c"])),
            Err(s(&["b"]))
        );
        assert_eq!(
            appended_positions(
                &s(&["a", "b", "c"]),
                &s(&["truncated 1 audit log entries", "b", "c", "d"])
            ),
            Ok(vec![3])
        );
    }
}
