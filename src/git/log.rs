//! `pprotect log`: the commits that changed a protected file's domains,
//! secrets, owners or keys, read from git history (following renames),
//! with the audit entries each added. For an owner, whether each changed
//! secret's *value* changed: every distinct sealed value is opened once
//! (the domain keys from the owner's entries, one derivation in all), and
//! only the answer, never a value or a fingerprint of one, leaves this
//! module.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use gix::ObjectId;
use sha2::{Digest, Sha256};

use super::repo::Repo;
use crate::ProtectedFile;
use crate::crypto::SecretKey;
use crate::error::{Error, Result};
use crate::ops::{Unlocked, open_sealed_key};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The protected file appeared at this path.
    FileAdded,
    /// The protected file was removed.
    FileRemoved,
    /// The file was renamed (the path is in `name`: old path).
    Renamed,
    /// A key custodian was added.
    CustodianAdded,
    /// A key custodian was removed.
    CustodianRemoved,
    /// A custodian's key changed (passphrase or key type).
    CustodianKeyChanged,
    /// A domain was added.
    DomainAdded,
    /// A domain was removed.
    DomainRemoved,
    /// A domain got a new keypair.
    DomainKeyRotated,
    /// An owner was added to a domain.
    OwnerAdded,
    /// An owner was removed from a domain.
    OwnerRemoved,
    /// An owner's entry was sealed again (rotation, key change).
    OwnerResealed,
    /// A secret was added.
    SecretAdded,
    /// A secret was removed.
    SecretRemoved,
    /// A secret's sealed value changed (a new value, or the same one
    /// sealed again: see [`Change::value_changed`]).
    SecretUpdated,
}

impl Kind {
    /// The kind's name in `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FileAdded => "file-added",
            Kind::FileRemoved => "file-removed",
            Kind::Renamed => "renamed",
            Kind::CustodianAdded => "custodian-added",
            Kind::CustodianRemoved => "custodian-removed",
            Kind::CustodianKeyChanged => "custodian-key-changed",
            Kind::DomainAdded => "domain-added",
            Kind::DomainRemoved => "domain-removed",
            Kind::DomainKeyRotated => "domain-key-rotated",
            Kind::OwnerAdded => "owner-added",
            Kind::OwnerRemoved => "owner-removed",
            Kind::OwnerResealed => "owner-resealed",
            Kind::SecretAdded => "secret-added",
            Kind::SecretRemoved => "secret-removed",
            Kind::SecretUpdated => "secret-updated",
        }
    }
}

/// One change a commit made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed.
    pub kind: Kind,
    /// The domain, for domain, owner and secret changes.
    pub domain: Option<String>,
    /// The secret, owner or custodian (or the old path, for a rename).
    pub name: Option<String>,
    /// For [`Kind::SecretUpdated`] with an owner's credentials: whether
    /// the value changed (`Some(false)`: sealed again, same value);
    /// `None` when unknown.
    pub value_changed: Option<bool>,
}

/// A commit that changed the file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The commit.
    pub commit: ObjectId,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    /// The author, `Name <email>`.
    pub author: String,
    /// The first line of the message.
    pub summary: String,
    /// The file's path in this commit.
    pub path: String,
    /// Audit-log entries this commit added.
    pub audit: Vec<String>,
    /// What it changed.
    pub changes: Vec<Change>,
}

/// `pprotect log`'s result, newest commit first.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// The commits, newest first.
    pub entries: Vec<Entry>,
    /// Shallow-clone boundary commits met (history before them is not
    /// here).
    pub shallow_boundary: usize,
}

/// What to show: a domain, or one secret of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Only this domain's changes.
    pub domain: Option<&'a str>,
    /// Only this secret's changes (with `domain`).
    pub secret: Option<&'a str>,
}

impl Filter<'_> {
    fn keeps(&self, c: &Change) -> bool {
        let Some(d) = self.domain else { return true };
        if c.domain.as_deref() != Some(d) {
            return false;
        }
        match self.secret {
            None => true,
            Some(s) => {
                matches!(
                    c.kind,
                    Kind::SecretAdded | Kind::SecretRemoved | Kind::SecretUpdated
                ) && c.name.as_deref() == Some(s)
            }
        }
    }

    fn keeps_entry(&self, e: &str) -> bool {
        let Some(d) = self.domain else { return true };
        let words: Vec<&str> = e.split_whitespace().collect();
        let mentions_domain = words.iter().any(|w| w.trim_end_matches(',') == d);
        // For a secret: entries about it, and the domain's own (a
        // rotation), not those about another secret.
        let secret_named = words.windows(2).find(|w| w[0] == "secret").map(|w| w[1]);
        match (self.secret, secret_named) {
            (None, _) | (Some(_), None) => mentions_domain,
            (Some(s), Some(named)) => mentions_domain && named == s,
        }
    }
}

/// Opens sealed values for an owner, each distinct one once.
struct Values<'a> {
    who: Option<&'a Unlocked>,
    /// Domain private keys by public key (`None`: cannot be opened).
    keys: HashMap<[u8; 32], Option<SecretKey>>,
    /// A sealed value's plaintext digest (kept here only, to compare).
    opened: HashMap<Vec<u8>, Option<[u8; 32]>>,
}

impl Values<'_> {
    /// The domain key for `domain` of `file`, from the owner's entry.
    fn key(&mut self, file: &ProtectedFile, domain: &str) -> Option<&SecretKey> {
        let who = self.who?;
        let d = file.domains.get(domain)?;
        if !self.keys.get(&d.public_key).is_some_and(Option::is_some) {
            let opened = d
                .owners
                .get(who.name())
                .and_then(|sealed| open_sealed_key(who, sealed))
                .filter(|k| k.public_key() == d.public_key);
            if opened.is_some() || !self.keys.contains_key(&d.public_key) {
                self.keys.insert(d.public_key, opened);
            }
        }
        self.keys.get(&d.public_key)?.as_ref()
    }

    /// The digest of a secret's value in `file`, if it can be opened.
    fn digest(&mut self, file: &ProtectedFile, domain: &str, secret: &str) -> Option<[u8; 32]> {
        let sealed = file.domains.get(domain)?.secrets.get(secret)?;
        if let Some(d) = self.opened.get(sealed) {
            return *d;
        }
        let digest = self.key(file, domain).and_then(|k| {
            k.unseal(sealed)
                .map(|plain| Sha256::digest(&plain[..]).into())
        });
        self.opened.insert(sealed.clone(), digest);
        digest
    }

    /// Whether a secret's value differs between two versions.
    fn changed(
        &mut self,
        old: &ProtectedFile,
        new: &ProtectedFile,
        domain: &str,
        secret: &str,
    ) -> Option<bool> {
        self.who?;
        let a = self.digest(old, domain, secret)?;
        let b = self.digest(new, domain, secret)?;
        Some(a != b)
    }
}

/// The changes from `old` to `new` (`None`: no file there).
fn diff(
    old: Option<&ProtectedFile>,
    new: Option<&ProtectedFile>,
    values: &mut Values<'_>,
) -> Vec<Change> {
    let change = |kind, domain: Option<&str>, name: Option<&str>| Change {
        kind,
        domain: domain.map(str::to_string),
        name: name.map(str::to_string),
        value_changed: None,
    };
    let mut out = Vec::new();
    let empty = ProtectedFile::default();
    match (old, new) {
        (None, None) => return out,
        (None, Some(_)) => out.push(change(Kind::FileAdded, None, None)),
        (Some(_), None) => out.push(change(Kind::FileRemoved, None, None)),
        _ => {}
    }
    let (o, n) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    for (name, pk) in &n.custodians {
        match o.custodians.get(name) {
            None => out.push(change(Kind::CustodianAdded, None, Some(name))),
            Some(old_pk) if old_pk != pk => {
                out.push(change(Kind::CustodianKeyChanged, None, Some(name)));
            }
            _ => {}
        }
    }
    for name in o.custodians.keys() {
        if !n.custodians.contains_key(name) {
            out.push(change(Kind::CustodianRemoved, None, Some(name)));
        }
    }
    for (dname, nd) in &n.domains {
        let Some(od) = o.domains.get(dname) else {
            out.push(change(Kind::DomainAdded, Some(dname), None));
            for s in nd.secrets.keys() {
                out.push(change(Kind::SecretAdded, Some(dname), Some(s)));
            }
            for w in nd.owners.keys() {
                out.push(change(Kind::OwnerAdded, Some(dname), Some(w)));
            }
            continue;
        };
        if od.public_key != nd.public_key {
            out.push(change(Kind::DomainKeyRotated, Some(dname), None));
        }
        for (w, sealed) in &nd.owners {
            match od.owners.get(w) {
                None => out.push(change(Kind::OwnerAdded, Some(dname), Some(w))),
                Some(old) if old != sealed => {
                    out.push(change(Kind::OwnerResealed, Some(dname), Some(w)));
                }
                _ => {}
            }
        }
        for w in od.owners.keys() {
            if !nd.owners.contains_key(w) {
                out.push(change(Kind::OwnerRemoved, Some(dname), Some(w)));
            }
        }
        for (s, sealed) in &nd.secrets {
            match od.secrets.get(s) {
                None => out.push(change(Kind::SecretAdded, Some(dname), Some(s))),
                Some(old) if old != sealed => {
                    let mut c = change(Kind::SecretUpdated, Some(dname), Some(s));
                    c.value_changed = values.changed(o, n, dname, s);
                    out.push(c);
                }
                _ => {}
            }
        }
        for s in od.secrets.keys() {
            if !nd.secrets.contains_key(s) {
                out.push(change(Kind::SecretRemoved, Some(dname), Some(s)));
            }
        }
    }
    for (dname, od) in &o.domains {
        if !n.domains.contains_key(dname) {
            out.push(change(Kind::DomainRemoved, Some(dname), None));
            for s in od.secrets.keys() {
                out.push(change(Kind::SecretRemoved, Some(dname), Some(s)));
            }
        }
    }
    out
}

/// Audit entries in `new` beyond those of `old` (as a multiset).
fn added_entries(old: Option<&ProtectedFile>, new: Option<&ProtectedFile>) -> Vec<String> {
    let Some(new) = new else { return Vec::new() };
    let mut have: HashMap<&str, usize> = HashMap::new();
    for e in old.map(|o| o.audit_log.as_slice()).unwrap_or_default() {
        *have.entry(e.as_str()).or_default() += 1;
    }
    new.audit_log
        .iter()
        .filter(|e| match have.get_mut(e.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// Parsed versions by blob, read once each.
/// Parsed versions by blob, read once each (through check-audit-log's
/// pack reader, along the delta chains) and dropped after their last use.
struct Versions {
    reader: super::packread::VersionReader,
    parsed: HashMap<ObjectId, Option<Rc<ProtectedFile>>>,
    /// How many more times each blob is asked for.
    uses: HashMap<ObjectId, usize>,
    /// Blocks shared by consecutive versions, parsed once.
    memo: crate::model::BlockMemo,
}

impl Versions {
    fn get(&mut self, id: Option<ObjectId>) -> Result<Option<Rc<ProtectedFile>>> {
        let Some(id) = id else { return Ok(None) };
        let file = match self.parsed.get(&id) {
            Some(file) => file.clone(),
            None => {
                let file = if self.reader.size(id)? > crate::codec::MAX_FILE_BYTES as u64 {
                    None
                } else {
                    let bytes = self.reader.read(id)?;
                    ProtectedFile::from_bytes_memo(&bytes, &self.memo)
                        .ok()
                        .map(Rc::new)
                };
                self.parsed.insert(id, file.clone());
                file
            }
        };
        if let Some(n) = self.uses.get_mut(&id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.uses.remove(&id);
                self.parsed.remove(&id);
            }
        }
        Ok(file)
    }
}

/// The history of the protected file at `path` (relative to the
/// repository root), from HEAD: every commit that changed what `filter`
/// selects, newest first. A merge lists only what it changed against
/// every parent (what it brought from a branch is listed at the branch's
/// commits). `who`: an owner's key, to tell whether values changed.
pub fn log(repo: &Repo, path: &str, filter: Filter<'_>, who: Option<&Unlocked>) -> Result<Log> {
    let r = &repo.repo;
    let head = r
        .head_id()
        .map_err(|e| Error::git("HEAD", format!("there are no commits yet ({e})")))?
        .detach();
    let shallow: HashSet<ObjectId> = r
        .shallow_commits()
        .ok()
        .flatten()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    let walk = || -> Result<Vec<ObjectId>> {
        r.rev_walk([head])
            .all()
            .map_err(|e| Error::git("cannot walk history", e))?
            .map(|info| {
                info.map(|i| i.id)
                    .map_err(|e| Error::git("cannot walk history", e))
            })
            .collect()
    };
    let commits = walk()?;
    // A partial clone: the trees come from the promisor remote in one
    // batch first, the versions of the file in another below.
    let partial = super::promisor::promisor_remote(repo).is_some();
    if partial {
        let trees: Vec<ObjectId> = commits
            .iter()
            .filter_map(|id| r.find_commit(*id).ok()?.tree_id().ok().map(|t| t.detach()))
            .collect();
        super::promisor::ensure(repo, &trees, "trees")?;
    }
    // Pass 1: each commit's version of the file and its parents', by
    // blob id (following renames), without reading them.
    struct Step {
        id: ObjectId,
        time: i64,
        author: String,
        summary: String,
        here: String,
        blob: Option<ObjectId>,
        sides: Vec<(Option<ObjectId>, String)>,
    }
    let mut steps = Vec::new();
    // The file's path in a commit as its first-visited child saw it, and
    // its blob there (looked up once, as that child's parent).
    let mut path_of: HashMap<ObjectId, (String, Option<ObjectId>)> = HashMap::new();
    let mut shallow_boundary = 0;
    for id in commits {
        let commit = r
            .find_commit(id)
            .map_err(|e| Error::git(format!("cannot read commit {id}"), e))?;
        let (here, blob) = match path_of.remove(&id) {
            Some(known) => known,
            None => (path.to_string(), super::history::blob_at(&commit, path)?),
        };
        if shallow.contains(&id) {
            shallow_boundary += 1;
            continue;
        }
        // Each parent's file: at this path, else where it was renamed from.
        let mut sides = Vec::new();
        for pid in commit.parent_ids().map(|p| p.detach()) {
            let parent = r
                .find_commit(pid)
                .map_err(|e| Error::git(format!("cannot read commit {pid}"), e))?;
            let mut ppath = here.clone();
            let mut pblob = super::history::blob_at(&parent, &ppath)?;
            if pblob.is_none()
                && let Some(b) = blob
                && let Some(old) = super::history::renamed_from(repo, &parent, b)?
            {
                pblob = super::history::blob_at(&parent, &old)?;
                ppath = old;
            }
            path_of.entry(pid).or_insert_with(|| (ppath.clone(), pblob));
            sides.push((pblob, ppath));
        }
        if sides.is_empty() {
            sides.push((None, here.clone()));
        }
        if sides.iter().any(|(b, p)| *b == blob && *p == here) {
            continue;
        }
        steps.push(Step {
            id,
            time: commit.time().map(|t| t.seconds).unwrap_or(0),
            author: super::author_of(&commit).unwrap_or_default(),
            summary: super::summary_of(&commit),
            here,
            blob,
            sides,
        });
    }
    if partial {
        let mut blobs: Vec<ObjectId> = steps
            .iter()
            .flat_map(|s| std::iter::once(s.blob).chain(s.sides.iter().map(|(b, _)| *b)))
            .flatten()
            .collect();
        blobs.sort();
        blobs.dedup();
        super::promisor::ensure(repo, &blobs, "versions of the protected file")?;
    }
    // Pass 2: what each commit changed.
    let mut uses: HashMap<ObjectId, usize> = HashMap::new();
    let mut reads = Vec::new();
    for s in &steps {
        for b in std::iter::once(s.blob)
            .chain(s.sides.iter().map(|(b, _)| *b))
            .flatten()
        {
            let n = uses.entry(b).or_default();
            if *n == 0 {
                reads.push(b);
            }
            *n += 1;
        }
    }
    let mut reader = super::packread::VersionReader::new(
        repo.repo.clone(),
        super::history::pack_cache_bytes(&repo.repo),
    );
    reader.plan(&reads);
    let mut versions = Versions {
        reader,
        parsed: HashMap::new(),
        uses,
        memo: crate::model::BlockMemo::default(),
    };
    let mut values = Values {
        who,
        keys: HashMap::new(),
        opened: HashMap::new(),
    };
    let mut out = Log {
        shallow_boundary,
        ..Log::default()
    };
    for step in steps {
        let new = versions.get(step.blob)?;
        let mut per_parent = Vec::new();
        for (pblob, ppath) in &step.sides {
            let old = versions.get(*pblob)?;
            let mut changes = diff(old.as_deref(), new.as_deref(), &mut values);
            if *ppath != step.here && pblob.is_some() && step.blob.is_some() {
                changes.insert(
                    0,
                    Change {
                        kind: Kind::Renamed,
                        domain: None,
                        name: Some(ppath.clone()),
                        value_changed: None,
                    },
                );
            }
            let audit = added_entries(old.as_deref(), new.as_deref());
            per_parent.push((changes, audit));
        }
        // A merge: what differs from every parent.
        let (mut changes, mut audit) = per_parent.remove(0);
        for (other, other_audit) in &per_parent {
            changes.retain(|c| {
                other
                    .iter()
                    .any(|o| o.kind == c.kind && o.domain == c.domain && o.name == c.name)
            });
            audit.retain(|e| other_audit.contains(e));
        }
        changes.retain(|c| filter.keeps(c));
        audit.retain(|e| filter.keeps_entry(e));
        if changes.is_empty() && (filter.domain.is_some() || audit.is_empty()) {
            continue;
        }
        out.entries.push(Entry {
            commit: step.id,
            time: step.time,
            author: step.author,
            summary: step.summary,
            path: step.here,
            audit,
            changes,
        });
    }
    Ok(out)
}

/// The log as JSON (`--json`), in pocket_protector's JSON style.
pub fn to_json(log: &Log) -> String {
    #[derive(serde::Serialize)]
    struct JChange<'a> {
        kind: &'a str,
        domain: Option<&'a str>,
        name: Option<&'a str>,
        value_changed: Option<bool>,
    }
    #[derive(serde::Serialize)]
    struct JEntry<'a> {
        commit: String,
        date: String,
        author: &'a str,
        summary: &'a str,
        path: &'a str,
        audit: &'a [String],
        changes: Vec<JChange<'a>>,
    }
    let entries: Vec<JEntry<'_>> = log
        .entries
        .iter()
        .map(|e| JEntry {
            commit: e.commit.to_string(),
            date: crate::ops::format_timestamp(e.time),
            author: &e.author,
            summary: &e.summary,
            path: &e.path,
            audit: &e.audit,
            changes: e
                .changes
                .iter()
                .map(|c| JChange {
                    kind: c.kind.as_str(),
                    domain: c.domain.as_deref(),
                    name: c.name.as_deref(),
                    value_changed: c.value_changed,
                })
                .collect(),
        })
        .collect();
    crate::json::to_string(&entries)
}

/// One change as a line of the human output.
pub fn describe(c: &Change) -> String {
    let d = c.domain.as_deref().unwrap_or("");
    let n = c.name.as_deref().unwrap_or("");
    match c.kind {
        Kind::FileAdded => "+ file created".to_string(),
        Kind::FileRemoved => "- file removed".to_string(),
        Kind::Renamed => format!("> renamed from {n}"),
        Kind::CustodianAdded => format!("+ custodian {n}"),
        Kind::CustodianRemoved => format!("- custodian {n}"),
        Kind::CustodianKeyChanged => format!("~ custodian {n}: key changed"),
        Kind::DomainAdded => format!("+ domain {d}"),
        Kind::DomainRemoved => format!("- domain {d}"),
        Kind::DomainKeyRotated => format!("~ domain {d}: key rotated"),
        Kind::OwnerAdded => format!("+ owner {n} of {d}"),
        Kind::OwnerRemoved => format!("- owner {n} of {d}"),
        Kind::OwnerResealed => format!("~ owner {n} of {d}: sealed again"),
        Kind::SecretAdded => format!("+ secret {n} in {d}"),
        Kind::SecretRemoved => format!("- secret {n} from {d}"),
        Kind::SecretUpdated => match c.value_changed {
            Some(true) => format!("~ secret {n} in {d}: value changed"),
            Some(false) => format!("~ secret {n} in {d}: sealed again, value unchanged"),
            None => format!("~ secret {n} in {d}: sealed value changed"),
        },
    }
}

/// Changes grouped for display, stable order: by domain, then kind.
pub fn sorted(changes: &[Change]) -> Vec<&Change> {
    let mut v: Vec<&Change> = changes.iter().collect();
    v.sort_by(|a, b| {
        (a.domain.as_deref(), a.kind, a.name.as_deref()).cmp(&(
            b.domain.as_deref(),
            b.kind,
            b.name.as_deref(),
        ))
    });
    v
}
