//! `pprotect check-audit-log`: cross-check the audit log inside the
//! protected file against git history, the authoritative record.
//!
//! With the rules of [`crate::audit`] (the merge driver's), for every
//! commit that changes the file:
//! - the log keeps each parent's entries (in order for one parent, in any
//!   order for a merge), or was truncated;
//! - every structural change relative to each parent is explained by an
//!   entry that parent lacks;
//! - the commit's own entries (a merge's: those no parent has) are in the
//!   grammar, backed by a change (or by another own entry about the same
//!   thing, such as an add then a remove), shaped like their operation,
//!   and not stamped after the commit or before the entry they follow;
//! - every version of the file is valid (hooks can be skipped).
//!
//! Every merge is checked against every parent. A `git revert` of the
//! file's latest change, which git applies without the driver, is accepted
//! when it restores the reverted commit's parent's file exactly. Each
//! distinct blob is parsed once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use gix::ObjectId;

use super::packread::VersionReader;
use super::repo::Repo;
use crate::audit::{self, Keep, Meaning, Obj, Truncation, meaning};
use crate::error::{Error, Result};
use crate::model::ProtectedFile;

/// What a finding is about (`--json`: its kebab-case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A version of the file does not parse or validate.
    InvalidFile,
    /// Entries of the parent's log were removed or altered.
    LogRewritten,
    /// A structural change no appended entry explains.
    UnloggedChange,
    /// An appended entry no change backs.
    UnbackedEntry,
    /// An appended entry stamped after its commit.
    FutureDated,
    /// An appended entry stamped before entries already in the log.
    BackDated,
    /// Appended entries out of timestamp order within one commit.
    OutOfOrder,
    /// An appended entry that is not in the audit-log grammar.
    UnrecognizedEntry,
    /// A logged change without the shape its operation always has (a
    /// domain key replaced with no owner entry re-sealed).
    MisshapenChange,
    /// An entry whose ciphertext appeared before under another key of its
    /// domain (or of its custodian): it was never re-sealed, so it is
    /// sealed to a key that is no longer the domain's.
    StaleKey,
    /// A baseline line (`.pprotect-baseline`) that accepts a finding the
    /// checked commit no longer has.
    StaleBaseline,
}

impl Kind {
    /// The kebab-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InvalidFile => "invalid-file",
            Kind::LogRewritten => "log-rewritten",
            Kind::UnloggedChange => "unlogged-change",
            Kind::UnbackedEntry => "unbacked-entry",
            Kind::FutureDated => "future-dated",
            Kind::BackDated => "back-dated",
            Kind::OutOfOrder => "out-of-order",
            Kind::UnrecognizedEntry => "unrecognized-entry",
            Kind::MisshapenChange => "misshapen-change",
            Kind::StaleKey => "stale-key",
            Kind::StaleBaseline => "stale-baseline",
        }
    }
}

/// One inconsistency between the log and history (`--json`: an object
/// with these fields but the summary, keys sorted).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Full commit id.
    pub commit: String,
    /// The commit's summary line.
    #[serde(skip)]
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
    /// Whether the baseline ([`super::baseline`]) accepts this finding.
    pub accepted: bool,
    /// Why, when it is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The result of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// Findings, oldest commit first.
    pub findings: Vec<Finding>,
    /// Commits that change the file.
    pub commits_checked: usize,
    /// Notes for the reader: `git revert`s of the file's latest change,
    /// which git applies without calling the merge driver (the file goes
    /// back to the reverted commit's parent, entries and all), accepted as
    /// the exact inverse of a commit in the checked history.
    pub notes: Vec<String>,
    /// Whether history verified clean by an earlier run was skipped.
    pub cached: bool,
    /// In a shallow clone: the boundary commits (their parents were not
    /// fetched) whose files were taken as given; history before them was
    /// not checked.
    pub shallow_boundary: usize,
}

/// The rules version: bump it whenever what check-audit-log accepts or
/// reports changes, so earlier verdicts are not reused.
const RULES: &str = "rules-4";

/// Commits an earlier run verified clean (with all their history), kept
/// where only this user writes: the user's cache directory
/// (`$XDG_CACHE_HOME`, else `~/.cache`), under
/// `pprotect/check-audit-log/`, one file per repository (named by a digest
/// of its git directory's canonical path). Never in the repository: a
/// `.git` unpacked from a tarball or restored from a CI cache could carry
/// a record of a tip it never verified here. One line per verified tip,
/// keyed by pprotect's version and rules, the file's path and the skew.
/// Only this code writes it, after a clean check; `--no-cache` bypasses
/// it. Without a home or cache directory there is no record.
struct Cache {
    file: Option<std::path::PathBuf>,
    key: String,
}

/// The user's cache directory for pprotect.
fn user_cache_dir() -> Option<std::path::PathBuf> {
    let from = |v: &str| {
        std::env::var_os(v)
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("pprotect"))
}

impl Cache {
    fn new(repo: &Repo, path: &str, skew: i64, baseline: &str) -> Cache {
        use sha2::{Digest, Sha256};
        let common = repo.repo.common_dir();
        let common = std::fs::canonicalize(common).unwrap_or_else(|_| common.to_path_buf());
        let digest = Sha256::digest(common.as_os_str().as_encoded_bytes());
        let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Cache {
            file: user_cache_dir().map(|d| d.join("check-audit-log").join(format!("{name}.cache"))),
            key: format!(
                "{} {RULES}\t{skew}\t{path}\t{}\t",
                env!("CARGO_PKG_VERSION"),
                if baseline.is_empty() {
                    "-".to_string()
                } else {
                    Sha256::digest(baseline.as_bytes())[..8]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                }
            ),
        }
    }

    /// The verified tips that still exist here.
    fn load(&self, r: &gix::Repository) -> Vec<ObjectId> {
        let Some(file) = &self.file else {
            return Vec::new();
        };
        let Ok(Some(bytes)) = crate::store::read_regular_no_link(file, 1 << 20) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| l.strip_prefix(&self.key))
            .filter_map(|id| ObjectId::from_hex(id.trim().as_bytes()).ok())
            .filter(|id| r.find_commit(*id).is_ok())
            .collect()
    }

    /// Remember `tip` (best effort: a cache that cannot be written only
    /// costs time).
    fn add(&self, tip: ObjectId) {
        let Some(file) = &self.file else {
            return;
        };
        let Some(dir) = file.parent() else {
            return;
        };
        if create_private_dir(dir).is_err() {
            return;
        }
        let mut text = crate::store::read_regular_no_link(file, 1 << 20)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        // Keep the file small: the newest 64 lines.
        let mut lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(63);
        lines.drain(..start);
        let mut out = lines.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{}{tip}\n", self.key));
        text = out;
        let _ = crate::store::write_atomic(file, text.as_bytes());
    }
}

/// Create `dir` (and its parents) readable and writable by this user only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// The commit a `git revert` commit message names (`This reverts commit
/// X.`).
fn reverted_commit(message: &str) -> Option<ObjectId> {
    let at = message.find("This reverts commit ")?;
    let hex: String = message[at + 20..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    ObjectId::from_hex(hex.as_bytes()).ok()
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

/// Whether reverting `x` (the file `before` at its child, `after` now)
/// restores exactly the file of `x`'s parent: `x`'s file is `before` and
/// `x`'s parent's is `after`. `x` may lie outside the walked history (an
/// earlier run verified it): then it is read here.
#[allow(clippy::too_many_arguments)]
fn reverts_exactly(
    r: &gix::Repository,
    blob_of: &HashMap<ObjectId, Option<ObjectId>>,
    first_parent: &HashMap<ObjectId, ObjectId>,
    path_of: &HashMap<ObjectId, String>,
    path: &str,
    x: ObjectId,
    before: Option<ObjectId>,
    after: Option<ObjectId>,
) -> bool {
    let at = |id: ObjectId| -> Option<Option<ObjectId>> {
        if let Some(b) = blob_of.get(&id) {
            return Some(*b);
        }
        let commit = r.find_commit(id).ok()?;
        blob_at(&commit, path_of.get(&id).map_or(path, String::as_str)).ok()
    };
    let Some(x_blob) = at(x) else { return false };
    let xp = match first_parent.get(&x) {
        Some(p) => *p,
        None => match r
            .find_commit(x)
            .ok()
            .and_then(|c| c.parent_ids().next().map(|p| p.detach()))
        {
            Some(p) => p,
            None => return false,
        },
    };
    x_blob == before && at(xp) == Some(after)
}

/// Where a child's file (blob `id`) was in `commit`, which has nothing at
/// the child's path: the path of the same blob (a rename), else of a
/// protected file whose whole audit log the child's keeps (a rename with
/// changes). `None` when there is none (the file was created here).
pub(crate) fn renamed_from(
    repo: &Repo,
    commit: &gix::Commit<'_>,
    id: ObjectId,
) -> Result<Option<String>> {
    let r = &repo.repo;
    let parent = commit.id;
    let tree_id = commit
        .tree_id()
        .map_err(|e| Error::git(format!("cannot read the tree of {parent}"), e))?
        .detach();
    let blobs: Vec<(String, ObjectId)> = repo.tree_map(tree_id)?.into_iter().collect();
    if let Some((p, _)) = blobs.iter().find(|(_, oid)| *oid == id) {
        return Ok(Some(p.clone()));
    }
    let size_ok = |oid: &ObjectId| {
        r.find_header(*oid)
            .is_ok_and(|h| h.size() <= crate::codec::MAX_FILE_BYTES as u64)
    };
    if !size_ok(&id) {
        return Ok(None);
    }
    let read = |oid: ObjectId| -> Option<ProtectedFile> {
        let blob = r.find_blob(oid).ok()?;
        ProtectedFile::from_bytes(&blob.data).ok()
    };
    let Some(child) = read(id) else {
        return Ok(None);
    };
    for (p, oid) in &blobs {
        if !(p.ends_with(".yaml") || p.ends_with(".yml")) || !size_ok(oid) {
            continue;
        }
        if let Some(old) = read(*oid)
            && !old.audit_log.is_empty()
            && audit::match_parent(
                &old.audit_log,
                &child.audit_log,
                Keep::Unordered,
                Truncation::AtMost,
            )
            .is_ok()
        {
            return Ok(Some(p.clone()));
        }
    }
    Ok(None)
}

pub(crate) fn blob_at(commit: &gix::Commit<'_>, path: &str) -> Result<Option<ObjectId>> {
    let tree = commit
        .tree()
        .map_err(|e| Error::git(format!("cannot read the tree of {}", commit.id), e))?;
    let entry = tree
        .lookup_entry_by_path(path)
        .map_err(|e| Error::git(format!("cannot look up {path} in {}", commit.id), e))?;
    Ok(entry.filter(|e| e.mode().is_blob()).map(|e| e.object_id()))
}

/// Versions read and parsed ahead of the checks, in the order the
/// checks need them: one thread reads the blobs (through a
/// [`VersionReader`]), the others parse them, and the checks run on the
/// caller's thread meanwhile. Bounded channels keep at most a few dozen
/// versions in flight, so memory stays bounded whatever the history's
/// length.
struct Pipeline {
    results: std::sync::mpsc::Receiver<Result<(ObjectId, Parsed)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Versions in flight between reading, parsing and checking.
const LOOKAHEAD: usize = 32;

impl Pipeline {
    fn start(repo: &gix::Repository, reads: Vec<ObjectId>) -> Result<Pipeline> {
        let spawn = |f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name("pprotect-history".into())
                .spawn(f)
                .map_err(|e| Error::git("cannot start a thread to read history", e))
        };
        use std::sync::mpsc::sync_channel;
        use std::sync::{Arc, Mutex};
        let (jobs_tx, jobs_rx) = sync_channel::<(ObjectId, Vec<u8>)>(LOOKAHEAD);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (results_tx, results) = sync_channel(LOOKAHEAD);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let mut threads = Vec::with_capacity(workers + 1);
        // Consecutive versions share most of their blocks: each distinct
        // block is parsed once, and versions share its domain.
        let memo = Arc::new(crate::model::BlockMemo::default());
        for _ in 0..workers {
            let jobs = Arc::clone(&jobs_rx);
            let results = results_tx.clone();
            let memo = Arc::clone(&memo);
            threads.push(spawn(Box::new(move || {
                loop {
                    // The lock is held only to take a job, not to parse.
                    let job = jobs.lock().map(|rx| rx.recv());
                    let Ok(Ok((id, bytes))) = job else { return };
                    let parsed = Arc::new(ProtectedFile::from_bytes_memo(&bytes, &memo));
                    if results.send(Ok((id, parsed))).is_err() {
                        return;
                    }
                }
            }))?);
        }
        // gix handles stay on their thread: the reader opens its own.
        let git_dir = repo.git_dir().to_owned();
        let options = repo.open_options().clone();
        threads.push(spawn(Box::new(move || {
            let mut reader = match gix::open_opts(git_dir, options) {
                Ok(repo) => {
                    let budget = pack_cache_bytes(&repo);
                    VersionReader::new(repo, budget)
                }
                Err(e) => {
                    let _ = results_tx.send(Err(Error::git("cannot open the repository", e)));
                    return;
                }
            };
            reader.plan(&reads);
            for id in reads {
                match read_version(&mut reader, id) {
                    Ok(Ok(bytes)) => {
                        if jobs_tx.send((id, bytes)).is_err() {
                            return;
                        }
                    }
                    // Too large: reported, never loaded.
                    Ok(Err(e)) => {
                        if results_tx.send(Ok((id, Arc::new(Err(e))))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = results_tx.send(Err(e));
                        return;
                    }
                }
            }
        }))?);
        Ok(Pipeline { results, threads })
    }

    /// The next version parsed (in about the order asked for).
    fn next(&mut self) -> Result<(ObjectId, Parsed)> {
        self.results
            .recv()
            .map_err(|_| Error::git("reading history", "a worker thread failed"))?
    }

    /// Wait for the threads (all done once every version was taken).
    fn finish(self) -> Result<()> {
        drop(self.results);
        for t in self.threads {
            t.join()
                .map_err(|_| Error::git("reading history", "a worker thread failed"))?;
        }
        Ok(())
    }
}

/// A version's bytes, or (inner error) why it is not loaded: its size
/// comes from the object header first, so a version over the limit is
/// reported without being read.
fn read_version(reader: &mut VersionReader, id: ObjectId) -> Result<Result<Vec<u8>>> {
    // Through the reader's own mapping of the pack: asking gix's object
    // store would map the pack a second time, and touch every version's
    // pages in both.
    let size = reader.size(id)?;
    if size > crate::codec::MAX_FILE_BYTES as u64 {
        return Ok(Err(crate::codec::too_large()));
    }
    Ok(Ok(reader.read(id)?))
}

/// Memory for decoded pack objects kept while reading versions, unless
/// `core.deltaBaseCacheLimit` says otherwise. A third of git's default:
/// the cache keeps only entries a planned read still passes through, and
/// on a repacked 10,000-commit history a smaller budget cost no time
/// until 16 MiB and saved memory (see the README's performance section).
const PACK_CACHE_BYTES: usize = 32 << 20;

/// The budget for decoded pack objects: `core.deltaBaseCacheLimit`, as
/// git reads it, or [`PACK_CACHE_BYTES`].
pub(crate) fn pack_cache_bytes(repo: &gix::Repository) -> usize {
    repo.config_snapshot()
        .integer("core.deltaBaseCacheLimit")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(PACK_CACHE_BYTES)
}

/// Which end of the history to read first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    NewestFirst,
    OldestFirst,
}

/// The direction in which the file's versions are cheapest to read.
///
/// A pack stores a version either whole or as a delta against another, in
/// chains. `git gc` mostly keeps newer versions whole and older ones as
/// deltas on them; `git fast-import` (and some servers) the other way
/// round. The reader keeps what the chains pass through, within a budget;
/// reading along the chains makes each version one delta from the last.
/// Consecutive versions' delta depths tell the direction: depth grows
/// towards the end to read last.
fn read_order(repo: &gix::Repository, tasks: &[Task]) -> Order {
    const SAMPLE: usize = 256;
    let depth = |b: &Option<ObjectId>| {
        b.and_then(|id| repo.find_header(id).ok())
            .and_then(|h| h.num_deltas())
            .map(i64::from)
    };
    let (mut toward_older, mut sampled) = (0i64, 0i64);
    for t in tasks.iter().take(SAMPLE) {
        if let (Some(new), Some(old)) = (depth(&t.blob), depth(&t.parents[0])) {
            toward_older += (old - new).signum();
            sampled += 1;
        }
    }
    // Only a clear majority turns the order round: `git repack` and
    // `git gc` mix directions, and git itself reads newest first.
    if toward_older < -(sampled / 2) {
        Order::OldestFirst
    } else {
        Order::NewestFirst
    }
}

/// Check the history of `path` (relative to the repository root) in the
/// commits reachable from `range`'s tip (`A..B`, or a single revision;
/// HEAD by default).
pub fn check(
    repo: &Repo,
    path: &str,
    range: Option<&str>,
    skew: i64,
    use_cache: bool,
) -> Result<Report> {
    check_with_progress(repo, path, range, skew, use_cache, &mut |_, _| {})
}

/// [`check`], calling `progress(checked, total)` as commits are checked.
pub fn check_with_progress(
    repo: &Repo,
    path: &str,
    range: Option<&str>,
    skew: i64,
    use_cache: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
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
    if tip == "HEAD" && r.head().is_ok_and(|h| h.is_unborn()) {
        return Err(Error::git(
            "HEAD",
            "there are no commits yet; commit the protected file, then check",
        ));
    }
    let tip = resolve(tip)?;
    // Findings the team accepted (a committed, reviewed baseline).
    let baseline_text = repo
        .workdir()
        .ok()
        .and_then(|w| {
            crate::store::read_regular_no_link(&w.join(super::baseline::FILE), 1 << 20)
                .ok()
                .flatten()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (accepted, bad) = super::baseline::parse(&baseline_text);
    if let Some((line, why)) = bad.first() {
        return Err(Error::git(
            format!("{}: line {line}", super::baseline::FILE),
            format!("{why}; fix or remove the line"),
        ));
    }
    // Commits verified clean by an earlier run, with all their history.
    let record = use_cache.then(|| Cache::new(repo, path, skew, &baseline_text));
    let verified = record.as_ref().map(|c| c.load(r)).unwrap_or_default();
    if verified.contains(&tip) {
        return Ok(Report {
            cached: true,
            ..Report::default()
        });
    }
    let mut hide: Vec<ObjectId> = verified.clone();
    if let Some(a) = hidden {
        hide.push(resolve(a)?);
    }
    // Commits and trees are read through a repository handle of their
    // own, closed before the versions are read: trees sit among the
    // versions in the pack, and this handle's mapping of the pack would
    // otherwise keep the pages it touched resident beside the reader's.
    let outer = repo;
    let walker = Repo {
        repo: gix::open_opts(r.git_dir(), r.open_options().clone())
            .map_err(|e| Error::git("cannot open the repository", e))?,
    };
    let repo = &walker;
    let r = &walker.repo;
    // A partial clone: the trees of the commits to check come from the
    // promisor remote in one batch first (blobs follow, below).
    let partial = super::promisor::promisor_remote(repo).is_some();
    if partial {
        let mut walk = r.rev_walk([tip]);
        if !hide.is_empty() {
            walk = walk.with_hidden(hide.clone());
        }
        let mut trees = Vec::new();
        for info in walk
            .all()
            .map_err(|e| Error::git("cannot walk history", e))?
        {
            let info = info.map_err(|e| Error::git("cannot walk history", e))?;
            if let Ok(c) = r.find_commit(info.id)
                && let Ok(t) = c.tree_id()
            {
                trees.push(t.detach());
            }
        }
        super::promisor::ensure(repo, &trees, "trees")?;
    }
    let mut walk = r.rev_walk([tip]);
    if !hide.is_empty() {
        walk = walk.with_hidden(hide);
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
        reverts: Option<ObjectId>,
    }
    let mut seen = Vec::new();
    let mut first_parent: HashMap<ObjectId, ObjectId> = HashMap::new();
    let mut blob_of: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
    let mut path_of: HashMap<ObjectId, String> = HashMap::new();
    let mut child_blob: HashMap<ObjectId, ObjectId> = HashMap::new();
    for info in walk {
        let info = info.map_err(|e| Error::git("cannot walk history", e))?;
        let commit = r
            .find_commit(info.id)
            .map_err(|e| Error::git(format!("cannot read commit {}", info.id), e))?;
        // The file's path here: as a child saw it, and where a child had
        // the file but this commit has nothing there, where it was renamed
        // from.
        let mut here = path_of
            .get(&info.id)
            .cloned()
            .unwrap_or_else(|| path.to_string());
        let mut blob = blob_at(&commit, &here)?;
        if blob.is_none()
            && let Some(child) = child_blob.get(&info.id)
            && let Some(old) = renamed_from(repo, &commit, *child)?
        {
            blob = blob_at(&commit, &old)?;
            here = old;
        }
        blob_of.insert(info.id, blob);
        let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
        for pid in &parents {
            if !path_of.contains_key(pid) {
                path_of.insert(*pid, here.clone());
                if let Some(b) = blob {
                    child_blob.insert(*pid, b);
                }
            }
        }
        if let Some(p) = parents.first() {
            first_parent.insert(info.id, *p);
        }
        let message = commit.message_raw_sloppy().to_string();
        seen.push(Seen {
            id: info.id,
            reverts: if parents.len() == 1 {
                reverted_commit(&message)
            } else {
                None
            },
            parents,
            summary: message.lines().next().unwrap_or("").to_string(),
            time: commit.time().map(|t| t.seconds).unwrap_or(i64::MAX),
            blob,
        });
    }
    let ever_present = blob_of.values().any(Option::is_some);
    let mut tasks = Vec::new();
    let mut notes = Vec::new();
    // A shallow clone's boundary commits: their parents are not here, so
    // their files are taken as given (as a range's start is) and only the
    // commits after them are checked.
    let shallow: Vec<ObjectId> = r
        .shallow_commits()
        .ok()
        .flatten()
        .map(|s| {
            let mut v: Vec<ObjectId> = s.iter().copied().collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let mut shallow_boundary = 0;
    for c in seen {
        if shallow.binary_search(&c.id).is_ok() {
            shallow_boundary += 1;
            continue;
        }
        let mut parents = Vec::new();
        for pid in &c.parents {
            let pb = match blob_of.get(pid) {
                Some(b) => *b,
                // A parent outside the range (hidden).
                None => {
                    let parent = r
                        .find_commit(*pid)
                        .map_err(|e| Error::git(format!("cannot read commit {pid}"), e))?;
                    blob_at(&parent, path_of.get(pid).map_or(path, String::as_str))?
                }
            };
            parents.push(pb);
        }
        if parents.is_empty() {
            parents.push(None);
        }
        // A commit whose file came unchanged from its parent changes
        // nothing. A merge is checked against every parent unless all of
        // them hold its file: keeping one side's file can discard the
        // other's secrets and entries (`-s ours`, `checkout --ours`).
        if parents.iter().all(|p| *p == c.blob) {
            continue;
        }
        // `git revert X` where X made the file's latest change: git takes
        // X's parent's file as it is (no driver runs). Accepted when it is
        // exactly that: the parent's file is X's, the new one X's parent's.
        if let Some(x) = c.reverts
            && reverts_exactly(
                r,
                &blob_of,
                &first_parent,
                &path_of,
                path,
                x,
                parents[0],
                c.blob,
            )
        {
            notes.push(format!(
                "{} {}: reverts {} exactly (git ran no merge driver, so its audit entries went with it)",
                &c.id.to_string()[..7],
                c.summary,
                &x.to_string()[..7]
            ));
            continue;
        }
        tasks.push(Task {
            id: c.id,
            summary: c.summary,
            time: c.time,
            blob: c.blob,
            parents,
        });
    }
    if !ever_present && verified.is_empty() {
        return Err(Error::git(path, "was never committed in this history"));
    }

    // Pass 2: parse each distinct blob once, check, and drop parses no
    // later check needs. Versions are read in the direction their pack
    // stores them (see `read_order`), so each costs the reader about one
    // delta.
    if partial {
        let mut blobs: Vec<ObjectId> = tasks
            .iter()
            .flat_map(|t| {
                std::iter::once(&t.blob)
                    .chain(&t.parents)
                    .flatten()
                    .copied()
            })
            .collect();
        blobs.sort();
        blobs.dedup();
        super::promisor::ensure(repo, &blobs, "versions of the protected file")?;
    }
    let mut uses: HashMap<ObjectId, usize> = HashMap::new();
    for t in &tasks {
        for b in std::iter::once(&t.blob).chain(&t.parents).flatten() {
            *uses.entry(*b).or_default() += 1;
        }
    }
    let order: Vec<usize> = if read_order(r, &tasks) == Order::OldestFirst {
        (0..tasks.len()).rev().collect()
    } else {
        (0..tasks.len()).collect()
    };
    let repo = outer;
    let r = &repo.repo;
    drop(walker);
    // Every version, in the order the checks first need it.
    let mut reads = Vec::new();
    let mut once = std::collections::HashSet::new();
    for &i in &order {
        let t = &tasks[i];
        for b in t.parents.iter().chain(std::iter::once(&t.blob)).flatten() {
            if once.insert(*b) {
                reads.push(*b);
            }
        }
    }
    drop(once);
    let mut per_commit: Vec<Vec<Finding>> = vec![Vec::new(); tasks.len()];
    let mut checked: Vec<Checked> = (0..tasks.len()).map(|_| Checked::default()).collect();
    // What each version sealed (or moved) that its parents do not hold
    // under the same keys, for the stale-key check.
    let mut intro: Vec<Vec<crate::provenance::Sealing>> = vec![Vec::new(); tasks.len()];
    let mut pipeline = Pipeline::start(r, reads)?;
    let empty: Parsed = Arc::new(Ok(ProtectedFile::default()));
    let mut cache: HashMap<ObjectId, Parsed> = HashMap::new();
    for (done, &i) in order.iter().enumerate() {
        let task = &tasks[i];
        for b in std::iter::once(&task.blob).chain(&task.parents).flatten() {
            while !cache.contains_key(b) {
                let (id, parsed) = pipeline.next()?;
                cache.insert(id, parsed);
            }
        }
        let get = |b: &Option<ObjectId>| b.map_or_else(|| empty.clone(), |id| cache[&id].clone());
        let new = get(&task.blob);
        let parents: Vec<(bool, Parsed)> =
            task.parents.iter().map(|p| (p.is_none(), get(p))).collect();
        let mut c = check_commit(task, path, skew, &new, &parents);
        per_commit[i] = std::mem::take(&mut c.findings);
        checked[i] = c;
        if let Ok(nf) = new.as_ref() {
            let ps: Vec<&ProtectedFile> = parents
                .iter()
                .filter_map(|(_, p)| p.as_ref().as_ref().ok())
                .collect();
            intro[i] = crate::provenance::introduced(nf, &ps);
        }
        progress(done + 1, tasks.len());
        for b in std::iter::once(&task.blob).chain(&task.parents).flatten() {
            let n = uses.get_mut(b).expect("counted");
            *n -= 1;
            if *n == 0 {
                cache.remove(b);
            }
        }
    }
    pipeline.finish()?;
    check_stale_keys(&tasks, &intro, &mut per_commit);
    blame_outliers(&tasks, &checked, &mut per_commit);
    // Oldest first, as the log reads.
    per_commit.reverse();
    notes.reverse();
    let mut findings: Vec<Finding> = per_commit.into_iter().flatten().collect();
    apply_baseline(&accepted, &tasks, &mut findings);
    // A clean check of a whole history (no range start) is remembered.
    if findings.iter().all(|f| f.accepted)
        && hidden.is_none()
        && shallow_boundary == 0
        && let Some(c) = &record
    {
        c.add(tip);
    }
    Ok(Report {
        commits_checked: tasks.len(),
        findings,
        notes,
        cached: !verified.is_empty(),
        shallow_boundary,
    })
}

fn check_commit(
    task: &Task,
    path: &str,
    skew: i64,
    new: &Parsed,
    parents: &[(bool, Parsed)],
) -> Checked {
    let mut checked = Checked::default();
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
            accepted: false,
            reason: None,
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
            checked.findings = findings;
            return checked;
        }
    };
    let merge = parents.len() > 1;
    // The entries this commit itself appended: those no parent accounts
    // for. A merge is never blamed for what a parent brought in.
    let mut own: Option<BTreeSet<usize>> = None;
    for (_, parent) in parents {
        let Ok(parent) = parent.as_ref() else {
            continue; // reported at that commit
        };
        // A merge may interleave its parents' entries in any order; a
        // commit with one parent keeps its parent's order.
        let (keep, truncation) = if merge {
            (Keep::Unordered, Truncation::AtMost)
        } else {
            (Keep::Ordered, Truncation::Exact)
        };
        let positions =
            match audit::match_parent(&parent.audit_log, &new.audit_log, keep, truncation) {
                Ok(p) => p,
                Err(missing) => {
                    for e in missing {
                        findings.push(finding(
                            Kind::LogRewritten,
                            None,
                            Some(&e),
                            format!("audit entry removed or altered: {e}"),
                        ));
                    }
                    own = Some(BTreeSet::new());
                    continue;
                }
            };
        check_unlogged(parent, new, &positions, &finding, &mut findings);
        let set: BTreeSet<usize> = positions.into_iter().collect();
        own = Some(match own {
            None => set,
            Some(o) => o.intersection(&set).copied().collect(),
        });
    }
    if let Some(own) = own {
        let parents: Vec<(bool, &ProtectedFile)> = parents
            .iter()
            .filter_map(|(missing, p)| p.as_ref().as_ref().ok().map(|p| (*missing, p)))
            .collect();
        check_own_entries(&parents, new, &own, &finding, &mut findings);
        check_stamps(
            new,
            &own,
            task.time,
            skew,
            &finding,
            &mut findings,
            &mut checked.outliers,
        );
        checked.own = own.iter().map(|&i| new.audit_log[i].clone()).collect();
    }
    dedupe(&mut findings);
    checked.findings = findings;
    checked
}

/// Mark the findings the baseline accepts, and report each baseline line
/// about a checked commit that accepts no finding (the finding is gone, or
/// the line was edited).
fn apply_baseline(lines: &[super::baseline::Line], tasks: &[Task], findings: &mut Vec<Finding>) {
    if lines.is_empty() {
        return;
    }
    for f in findings.iter_mut() {
        if let Some(l) = lines.iter().find(|l| super::baseline::accepts(l, f)) {
            f.accepted = true;
            f.reason = Some(l.reason.clone());
        }
    }
    let checked: std::collections::HashMap<String, &Task> =
        tasks.iter().map(|t| (t.id.to_string(), t)).collect();
    for l in lines {
        let Some(t) = checked.get(&l.commit) else {
            continue; // not checked here (a range, a shallow clone, the cache)
        };
        if findings.iter().any(|f| super::baseline::accepts(l, f)) {
            continue;
        }
        findings.push(Finding {
            commit: l.commit.clone(),
            summary: t.summary.clone(),
            kind: Kind::StaleBaseline,
            domain: None,
            secret: None,
            custodian: None,
            entry: None,
            message: format!(
                "{} line {} accepts a finding this commit does not have: {} {}",
                super::baseline::FILE,
                l.line,
                l.kind,
                l.key
            ),
            accepted: false,
            reason: None,
        });
    }
}

/// What checking one commit found, and what the post-passes need.
#[derive(Default)]
struct Checked {
    findings: Vec<Finding>,
    /// The entries this commit itself appended.
    own: Vec<String>,
    /// Earlier entries stamped after this commit (a clock running ahead
    /// when they were written).
    outliers: Vec<String>,
}

/// Blame each outlier entry (stamped after a commit that follows it) on
/// the commit that appended it, when that commit was checked; else on the
/// commit that revealed it. The honest entry after it is no finding.
fn blame_outliers(tasks: &[Task], checked: &[Checked], per_commit: &mut [Vec<Finding>]) {
    let mut appended: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in checked.iter().enumerate() {
        for e in &c.own {
            appended.entry(e.as_str()).or_default().push(i);
        }
    }
    let mut seen = BTreeSet::new();
    for (i, c) in checked.iter().enumerate() {
        for e in &c.outliers {
            // Tasks are newest first: the appending commit is older.
            let at = appended
                .get(e.as_str())
                .and_then(|v| v.iter().copied().filter(|&k| k > i).min())
                .unwrap_or(i);
            if !seen.insert((at, e.clone())) {
                continue;
            }
            per_commit[at].push(Finding {
                commit: tasks[at].id.to_string(),
                summary: tasks[at].summary.clone(),
                kind: Kind::FutureDated,
                domain: None,
                secret: None,
                custodian: None,
                entry: Some(e.clone()),
                message: format!(
                    "audit entry stamped after commit {} that follows it (a clock running ahead?): {e}",
                    &tasks[i].id.to_string()[..7]
                ),
                accepted: false,
                reason: None,
            });
        }
    }
}

/// Report entries whose ciphertext first appeared under other keys: the
/// first appearance (earliest commit time; on a tie, the commit the walk
/// reached later, an ancestor) is where it was sealed.
fn check_stale_keys(
    tasks: &[Task],
    intro: &[Vec<crate::provenance::Sealing>],
    per_commit: &mut [Vec<Finding>],
) {
    use crate::provenance::Digest16;
    let mut first: HashMap<Digest16, (i64, usize, &crate::provenance::Sealing)> = HashMap::new();
    for (i, list) in intro.iter().enumerate() {
        let t = tasks[i].time;
        for s in list {
            let better = match first.get(&s.cipher) {
                None => true,
                Some((ft, fi, _)) => t < *ft || (t == *ft && i > *fi),
            };
            if better {
                first.insert(s.cipher, (t, i, s));
            }
        }
    }
    for (i, list) in intro.iter().enumerate() {
        for s in list {
            let Some((_, fi, f)) = first.get(&s.cipher) else {
                continue;
            };
            if *fi == i || !s.keys_differ(f) {
                continue;
            }
            let obj = if s.owner {
                Obj::Owner(s.domain.clone(), s.name.clone())
            } else {
                Obj::Secret(s.domain.clone(), s.name.clone())
            };
            let (domain, secret, custodian) = obj.fields();
            per_commit[i].push(Finding {
                commit: tasks[i].id.to_string(),
                summary: tasks[i].summary.clone(),
                kind: Kind::StaleKey,
                domain,
                secret,
                custodian,
                entry: None,
                message: format!(
                    "{} (from commit {})",
                    s.describe_stale(f),
                    &tasks[*fi].id.to_string()[..7]
                ),
                accepted: false,
                reason: None,
            });
        }
    }
}

fn dedupe(f: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    f.retain(|x| seen.insert((x.kind, x.message.clone())));
}

/// Stamp and grammar checks on the entries a commit itself appended.
fn check_stamps(
    new: &ProtectedFile,
    own: &BTreeSet<usize>,
    commit_time: i64,
    skew: i64,
    finding: &MakeFinding<'_>,
    out: &mut Vec<Finding>,
    outliers: &mut Vec<String>,
) {
    // The same text twice is no finding: the same change made twice in
    // one second (a script, a squash of such commits) writes it twice.
    // One pass over the log, keeping the nearest stamped entry before.
    let mut prev: Option<(usize, i64)> = None;
    for (i, e) in new.audit_log.iter().enumerate() {
        let Some(ts) = audit::stamp(e) else {
            continue;
        };
        let before = prev.replace((i, ts));
        if !own.contains(&i) {
            continue;
        }
        if ts > commit_time.saturating_add(skew) {
            out.push(finding(
                Kind::FutureDated,
                None,
                Some(e),
                format!("audit entry stamped after its commit: {e}"),
            ));
        }
        if let Some((j, pts)) = before
            && ts < pts - skew
        {
            // The entry before is stamped after this very commit, which
            // follows it: that entry is the outlier (written with a clock
            // running ahead), not this one.
            if !own.contains(&j) && pts > commit_time.saturating_add(skew) {
                outliers.push(new.audit_log[j].clone());
                continue;
            }
            let kind = if own.contains(&j) {
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
}

/// Every structural change relative to a parent is explained by an entry
/// that parent does not have (the commit's own, or one another parent of a
/// merge brought in).
fn check_unlogged(
    parent: &ProtectedFile,
    new: &ProtectedFile,
    positions: &[usize],
    finding: &MakeFinding<'_>,
    out: &mut Vec<Finding>,
) {
    let entries: Vec<&str> = positions
        .iter()
        .map(|&i| new.audit_log[i].as_str())
        .collect();
    for obj in audit::unexplained(parent, new, &entries) {
        out.push(finding(
            Kind::UnloggedChange,
            Some(&obj),
            None,
            format!("{} changed with no audit entry", obj.describe()),
        ));
    }
}

/// The entries a commit itself appended (for a merge, those no parent
/// has): in the grammar, backed by a change relative to some parent (or by
/// another own entry about the same thing), and shaped like their
/// operation.
fn check_own_entries(
    parents: &[(bool, &ProtectedFile)],
    new: &ProtectedFile,
    own: &BTreeSet<usize>,
    finding: &MakeFinding<'_>,
    out: &mut Vec<Finding>,
) {
    let mut domains: BTreeSet<&str> = new.domains.keys().map(String::as_str).collect();
    let mut custodians: BTreeSet<&str> = new.custodians.keys().map(String::as_str).collect();
    for (_, p) in parents {
        domains.extend(p.domains.keys().map(String::as_str));
        custodians.extend(p.custodians.keys().map(String::as_str));
    }
    let changed: Vec<BTreeSet<Obj>> = parents
        .iter()
        .map(|(_, p)| audit::changes(p, new))
        .collect();
    let mut entries: Vec<(&str, Option<Meaning>)> = Vec::new();
    for &i in own {
        let e = new.audit_log[i].as_str();
        let m = meaning(e, &domains, &custodians);
        if m.is_none() && audit::truncation_count(e).is_none() {
            out.push(finding(
                Kind::UnrecognizedEntry,
                None,
                Some(e),
                format!("unrecognized audit entry: {e}"),
            ));
        }
        entries.push((e, m));
    }
    // Per object, the distinct texts of the own entries about it (two are
    // enough to know): an entry is backed by another own entry about the
    // same thing with another text (an add then a remove). One pass, so a
    // log of many unbacked entries costs linear time.
    let mut texts: HashMap<&Obj, (&str, bool)> = HashMap::new();
    for (e, m) in &entries {
        if let Some(m) = m {
            let t = texts.entry(&m.primary).or_insert((e, false));
            if t.0 != *e {
                t.1 = true;
            }
        }
    }
    for (e, m) in &entries {
        let Some(m) = m else { continue };
        let backed = match &m.primary {
            Obj::File => parents
                .iter()
                .any(|(missing, p)| *missing || p.audit_log.is_empty()),
            obj => {
                changed.iter().any(|c| c.contains(obj))
                    || texts
                        .get(obj)
                        .is_some_and(|(first, two)| *two || first != e)
            }
        };
        if !backed {
            out.push(finding(
                Kind::UnbackedEntry,
                Some(&m.primary),
                Some(e),
                format!("audit entry with no matching change: {e}"),
            ));
            continue;
        }
        let problem = parents
            .iter()
            .zip(&changed)
            .filter(|(_, c)| c.contains(&m.primary))
            .find_map(|((_, p), _)| audit::shape_problem(m, p, new));
        if let Some(problem) = problem {
            out.push(finding(
                Kind::MisshapenChange,
                Some(&m.primary),
                Some(e),
                format!("{problem}: {e}"),
            ));
        }
    }
}
