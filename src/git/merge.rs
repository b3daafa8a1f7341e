//! The git merge driver: a three-way merge of protected files by
//! structure, needing no keys.
//!
//! Every map (custodians, domains, owners, secrets) merges key by key: a
//! key changed on one side takes that side; the same change on both sides
//! is taken once; anything else is a conflict. On top of that, keys that
//! went **stale** are never merged silently: a secret or owner entry that
//! one side sealed to a domain key the other side rotated, or an owner
//! entry sealed to a custodian key the other side replaced, or an owner
//! added for a custodian the other side removed. With an owner's
//! credentials (non-interactive), stale entries are re-sealed instead.
//!
//! The audit log merges as a record that only grows ([`audit::merge_logs`]):
//! the entries theirs added relative to the base are inserted into ours by
//! timestamp, an entry added on both sides appears once, and nothing is
//! deleted (a revert's missing entry stays). A truncation is kept. A change
//! the merge applies that no entry explains (a revert removing a secret)
//! gets the entry pprotect would have written, stamped now.
//!
//! A conflicted result is the merged file in which each conflicting entry
//! alone is wrapped in git-style markers; it does not parse until they are
//! resolved, and keeping one side of each block leaves a valid file.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::Creds;
use crate::audit;
use crate::codec::{Node, emit};
use crate::crypto::{self, Pwdkm, SecretKey};
use crate::error::Result;
use crate::model::{Domain, ProtectedFile};

/// One side of a merge, for labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The current branch (`%A`).
    Ours,
    /// The branch being merged (`%B`).
    Theirs,
}

/// Where a conflict is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A key custodian's key material.
    Custodian(String),
    /// A whole domain (changed on one side, removed on the other).
    Domain(String),
    /// A domain's public key.
    PublicKey(String),
    /// An owner entry of a domain.
    Owner(String, String),
    /// A secret of a domain.
    Secret(String, String),
    /// The audit log.
    AuditLog,
}

impl Place {
    /// The kind of entry, for machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            Place::Custodian(_) => "custodian",
            Place::Domain(_) => "domain",
            Place::PublicKey(_) => "public-key",
            Place::Owner(..) => "owner",
            Place::Secret(..) => "secret",
            Place::AuditLog => "audit-log",
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Custodian(c) => write!(f, "key custodian {c}"),
            Place::Domain(d) => write!(f, "domain {d}"),
            Place::PublicKey(d) => write!(f, "public key of domain {d}"),
            Place::Owner(d, o) => write!(f, "owner {o} of domain {d}"),
            Place::Secret(d, s) => write!(f, "secret {s} of domain {d}"),
            Place::AuditLog => write!(f, "audit log"),
        }
    }
}

/// A conflict: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The conflicting entry.
    pub place: Place,
    /// Why it could not be merged.
    pub reason: String,
}

/// The result of a merge.
#[derive(Debug)]
pub struct Merged {
    /// The file to write into `%A`: canonical when clean, with conflict
    /// markers otherwise.
    pub text: String,
    /// The conflicts (empty when clean).
    pub conflicts: Vec<Conflict>,
    /// What was resolved with credentials (re-sealed entries).
    pub notes: Vec<String>,
}

/// Parse a merge input; an empty file (no common ancestor) is an empty
/// protected file.
pub fn parse_input(bytes: &[u8], what: &str) -> Result<ProtectedFile> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(ProtectedFile::default());
    }
    ProtectedFile::from_bytes(bytes).map_err(|e| e.context(what))
}

/// Outcome of merging one value.
enum Pick<V> {
    Take(Option<V>),
    Conflict,
}

fn pick<V: Clone + PartialEq>(b: Option<&V>, o: Option<&V>, t: Option<&V>) -> Pick<V> {
    if o == t {
        Pick::Take(o.cloned())
    } else if o == b {
        Pick::Take(t.cloned())
    } else if t == b {
        Pick::Take(o.cloned())
    } else {
        Pick::Conflict
    }
}

fn why<V>(b: Option<&V>, o: Option<&V>, t: Option<&V>) -> String {
    match (b.is_some(), o.is_some(), t.is_some()) {
        (false, true, true) => "added differently on both sides".into(),
        (true, true, false) => "changed on our side, removed on theirs".into(),
        (true, false, true) => "removed on our side, changed on theirs".into(),
        _ => "changed differently on both sides".into(),
    }
}

/// A conflict's two sides, to render between the markers.
#[derive(Clone)]
enum Versions {
    Custodian(Option<Pwdkm>, Option<Pwdkm>),
    Domain(Option<Domain>, Option<Domain>),
    PublicKey([u8; 32], [u8; 32]),
    Sealed(Option<Vec<u8>>, Option<Vec<u8>>),
    Log(Vec<String>, Vec<String>),
}

struct State<'a> {
    base: &'a ProtectedFile,
    ours: &'a ProtectedFile,
    theirs: &'a ProtectedFile,
    merged: ProtectedFile,
    conflicts: Vec<(Conflict, Versions)>,
    /// Conflicts on entries sealed to a stale key: index, and the side
    /// whose entry is stale.
    stale: Vec<(usize, Side)>,
    notes: Vec<String>,
    keys: Option<Keyring<'a>>,
    single_parent: bool,
}

/// The merging owner's keys: the custodian key derived once per distinct
/// key material (one Argon2id derivation per merge, not per entry), and
/// domain keys opened from it.
pub struct Keyring<'c> {
    name: String,
    creds: Option<&'c Creds>,
    unlocked: Vec<(Pwdkm, Option<crate::ops::Unlocked>)>,
}

impl<'c> Keyring<'c> {
    /// Keys derived from `creds` as needed.
    pub fn new(creds: &'c Creds) -> Self {
        Keyring {
            name: creds.name().to_string(),
            creds: Some(creds),
            unlocked: Vec::new(),
        }
    }

    /// Keys from a custodian already unlocked (no further derivation).
    pub fn from_unlocked(who: crate::ops::Unlocked) -> Keyring<'static> {
        Keyring {
            name: who.name().to_string(),
            creds: None,
            unlocked: vec![(who.pwdkm().clone(), Some(who))],
        }
    }

    /// The merging owner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The merging owner, unlocked against `file`'s key material for them.
    fn who(&mut self, file: &ProtectedFile) -> Option<&crate::ops::Unlocked> {
        let pwdkm = file.custodians.get(&self.name)?;
        let i = match self.unlocked.iter().position(|(p, _)| p == pwdkm) {
            Some(i) => i,
            None => {
                let creds = self.creds?;
                let u = file.unlock(creds.name(), creds.passphrase()).ok().flatten();
                self.unlocked.push((pwdkm.clone(), u));
                self.unlocked.len() - 1
            }
        };
        self.unlocked[i].1.as_ref()
    }

    /// The private key of `domain` in `file`, verified: opened from the
    /// merging owner's own entry in that file, and matching that file's
    /// public key for the domain.
    pub fn domain_key(&mut self, file: &ProtectedFile, domain: &str) -> Option<SecretKey> {
        let d = file.domains.get(domain)?;
        let sealed = d.owners.get(&self.name)?;
        let who = self.who(file)?;
        let sk = crate::ops::open_sealed_key(who, sealed)?;
        (sk.public_key() == d.public_key).then_some(sk)
    }

    /// A secret's value in `file`, if the merging owner can read it.
    pub fn secret(&mut self, file: &ProtectedFile, domain: &str, name: &str) -> Shown {
        let Some(sealed) = file.domains.get(domain).and_then(|d| d.secrets.get(name)) else {
            return Shown::Absent;
        };
        let Some(sk) = self.domain_key(file, domain) else {
            return Shown::Unreadable;
        };
        match sk.unseal(sealed).map(|v| String::from_utf8(v.to_vec())) {
            Some(Ok(v)) => Shown::Value(secrecy::SecretString::from(v)),
            _ => Shown::Unreadable,
        }
    }
}

/// One side's value of a conflicting secret, for `pprotect resolve --show`.
#[derive(Debug)]
pub enum Shown {
    /// The side has no such secret (it removed it).
    Absent,
    /// The decrypted value (redacted in `Debug`, zeroized on drop).
    Value(secrecy::SecretString),
    /// The merging owner cannot open it on that side.
    Unreadable,
}

/// Merge `base`, `ours` and `theirs`. `creds`, when given, resolves stale
/// keys by re-sealing; nothing is ever decrypted without them.
pub fn merge(
    base: &ProtectedFile,
    ours: &ProtectedFile,
    theirs: &ProtectedFile,
    creds: Option<&Creds>,
    marker_size: usize,
) -> Merged {
    merge_with(base, ours, theirs, creds, marker_size, &[], false)
}

/// Which side `pprotect resolve` takes, and for which conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The side to take.
    pub side: Side,
    /// A domain (or, for a custodian's conflict, the custodian; or
    /// `audit-log`); `None` for every conflict.
    pub scope: Option<String>,
    /// A secret or owner of that domain; `None` for all of its conflicts.
    pub entry: Option<String>,
}

impl Choice {
    fn matches(&self, place: &Place) -> bool {
        let Some(scope) = &self.scope else {
            return true;
        };
        let (s, e) = match place {
            Place::Custodian(c) => (c.as_str(), None),
            Place::Domain(d) | Place::PublicKey(d) => (d.as_str(), None),
            Place::Owner(d, x) | Place::Secret(d, x) => (d.as_str(), Some(x.as_str())),
            Place::AuditLog => ("audit-log", None),
        };
        s == scope
            && match (&self.entry, e) {
                (None, _) => true,
                (Some(want), Some(e)) => want == e,
                (Some(_), None) => false,
            }
    }
}

/// [`merge`], taking a side for the conflicts `choices` name (the first
/// matching choice wins). A side whose entry is sealed to a key the other
/// side rotated cannot be taken; that conflict stays, with the reason.
///
/// `single_parent`: the result is committed on top of ours alone (a
/// rebase, cherry-pick, revert or squash, not a merge commit). Taking ours
/// then also leaves out theirs' entries about the change it rejected, which
/// would otherwise describe a change the commit does not make.
pub fn merge_with(
    base: &ProtectedFile,
    ours: &ProtectedFile,
    theirs: &ProtectedFile,
    creds: Option<&Creds>,
    marker_size: usize,
    choices: &[Choice],
    single_parent: bool,
) -> Merged {
    let mut st = State {
        base,
        ours,
        theirs,
        merged: ProtectedFile::default(),
        conflicts: Vec::new(),
        stale: Vec::new(),
        notes: Vec::new(),
        keys: creds.map(Keyring::new),
        single_parent,
    };
    st.merge_custodians();
    st.merge_domains();
    st.check_stale();
    st.merge_log();
    st.apply_choices(choices);
    st.find_orphans();
    st.apply_choices(choices);
    let actor = creds.map_or("pprotect merge-driver", Creds::name);
    st.finish(marker_size, actor)
}

impl<'a> State<'a> {
    fn conflict(&mut self, place: Place, reason: String, versions: Versions) {
        self.conflicts.push((Conflict { place, reason }, versions));
    }

    fn merge_custodians(&mut self) {
        let names: BTreeSet<&String> = self
            .base
            .custodians
            .keys()
            .chain(self.ours.custodians.keys())
            .chain(self.theirs.custodians.keys())
            .collect();
        for name in names {
            let (b, o, t) = (
                self.base.custodians.get(name),
                self.ours.custodians.get(name),
                self.theirs.custodians.get(name),
            );
            match pick(b, o, t) {
                Pick::Take(Some(v)) => {
                    self.merged.custodians.insert(name.clone(), v);
                }
                Pick::Take(None) => {}
                Pick::Conflict => {
                    // Keep a placeholder so the entry renders in place.
                    let keep = o.or(t).cloned().expect("one side has it");
                    self.merged.custodians.insert(name.clone(), keep);
                    self.conflict(
                        Place::Custodian(name.clone()),
                        why(b, o, t),
                        Versions::Custodian(o.cloned(), t.cloned()),
                    );
                }
            }
        }
    }

    fn merge_domains(&mut self) {
        let names: BTreeSet<&String> = self
            .base
            .domains
            .keys()
            .chain(self.ours.domains.keys())
            .chain(self.theirs.domains.keys())
            .collect();
        for name in names {
            let (b, o, t) = (
                self.base.domains.get(name),
                self.ours.domains.get(name),
                self.theirs.domains.get(name),
            );
            match (pick(b, o, t), o, t) {
                (Pick::Take(Some(d)), ..) => {
                    self.merged.domains.insert(name.clone(), d);
                }
                (Pick::Take(None), ..) => {}
                (Pick::Conflict, Some(o), Some(t)) => {
                    let d = self.merge_domain(name, b, o, t);
                    self.merged.domains.insert(name.clone(), d);
                }
                (Pick::Conflict, ..) => {
                    let keep = o.or(t).cloned().expect("one side has it");
                    self.merged.domains.insert(name.clone(), keep);
                    self.conflict(
                        Place::Domain(name.clone()),
                        why(b, o, t),
                        Versions::Domain(o.cloned(), t.cloned()),
                    );
                }
            }
        }
    }

    fn merge_domain(&mut self, name: &str, b: Option<&Domain>, o: &Domain, t: &Domain) -> Domain {
        let public_key = match pick(
            b.map(|d| &d.public_key),
            Some(&o.public_key),
            Some(&t.public_key),
        ) {
            Pick::Take(Some(pk)) => pk,
            _ => {
                self.conflict(
                    Place::PublicKey(name.to_string()),
                    if b.is_some() {
                        "keys rotated on both sides".into()
                    } else {
                        "domain added on both sides with different keys".into()
                    },
                    Versions::PublicKey(o.public_key, t.public_key),
                );
                o.public_key
            }
        };
        let empty = BTreeMap::new();
        let owners =
            self.merge_sealed(b.map_or(&empty, |d| &d.owners), &o.owners, &t.owners, |n| {
                Place::Owner(name.to_string(), n.to_string())
            });
        let secrets = self.merge_sealed(
            b.map_or(&empty, |d| &d.secrets),
            &o.secrets,
            &t.secrets,
            |n| Place::Secret(name.to_string(), n.to_string()),
        );
        Domain {
            public_key,
            owners,
            secrets,
        }
    }

    fn merge_sealed(
        &mut self,
        b: &BTreeMap<String, Vec<u8>>,
        o: &BTreeMap<String, Vec<u8>>,
        t: &BTreeMap<String, Vec<u8>>,
        place: impl Fn(&str) -> Place,
    ) -> BTreeMap<String, Vec<u8>> {
        let keys: BTreeSet<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
        let mut out = BTreeMap::new();
        for k in keys {
            let (bv, ov, tv) = (b.get(k), o.get(k), t.get(k));
            match pick(bv, ov, tv) {
                Pick::Take(Some(v)) => {
                    out.insert(k.clone(), v);
                }
                Pick::Take(None) => {}
                Pick::Conflict => {
                    out.insert(k.clone(), ov.or(tv).cloned().expect("one side has it"));
                    self.conflict(
                        place(k),
                        why(bv, ov, tv),
                        Versions::Sealed(ov.cloned(), tv.cloned()),
                    );
                }
            }
        }
        out
    }

    fn has_conflict(&self, place: &Place) -> bool {
        self.conflicts.iter().any(|(c, _)| &c.place == place)
    }

    /// Entries one side added or changed in a domain (relative to base).
    fn changed_entries<'f>(
        base: Option<&Domain>,
        side: &'f Domain,
    ) -> (Vec<&'f String>, Vec<&'f String>) {
        let secrets = side
            .secrets
            .iter()
            .filter(|(k, v)| base.and_then(|b| b.secrets.get(*k)) != Some(v))
            .map(|(k, _)| k)
            .collect();
        let owners = side
            .owners
            .iter()
            .filter(|(k, v)| base.and_then(|b| b.owners.get(*k)) != Some(v))
            .map(|(k, _)| k)
            .collect();
        (secrets, owners)
    }

    fn check_stale(&mut self) {
        let domains: Vec<String> = self.merged.domains.keys().cloned().collect();
        for name in domains {
            let b = self.base.domains.get(&name);
            let (Some(o), Some(t)) = (self.ours.domains.get(&name), self.theirs.domains.get(&name))
            else {
                continue;
            };
            let Some(b) = b else { continue };
            // One side rotated: the other side's new entries are sealed to
            // the old key.
            for (rotated, other, side) in [(o, t, Side::Theirs), (t, o, Side::Ours)] {
                if rotated.public_key == b.public_key || other.public_key != b.public_key {
                    continue;
                }
                let (secrets, owners) = Self::changed_entries(Some(b), other);
                // A new key is only ever sealed to after it verifies: the
                // merging owner opens it from the rotating side's own owner
                // entry, it matches that side's public key, and the rotation
                // carried the old values over (which only someone holding
                // the old key can do; anyone can seal a key of their own to
                // an owner's public key).
                let rotated_file = self.file(other_side(side));
                let verified =
                    !secrets.is_empty() && self.rotation_verifies(&name, b, rotated, rotated_file);
                for s in secrets {
                    let place = Place::Secret(name.clone(), s.clone());
                    if self.has_conflict(&place) {
                        continue;
                    }
                    let resealed = if verified {
                        self.reseal_secret(&name, s, other, rotated, side)
                    } else {
                        None
                    };
                    match resealed {
                        Some(v) => {
                            self.merged
                                .domains
                                .get_mut(&name)
                                .expect("merged")
                                .secrets
                                .insert(s.clone(), v);
                            self.notes.push(format!(
                                "re-sealed secret {s} of domain {name} (from {}) to the rotated domain key",
                                side_name(side)
                            ));
                        }
                        None if self.keys.is_some() && !verified => {
                            let reason = format!(
                                "sealed to the old key of domain {name}; the new key on {} side does not verify for {}, so nothing was re-sealed to it",
                                possessive(other_side(side)),
                                self.keys.as_ref().map_or("", |k| k.name())
                            );
                            self.stale_conflict_with(place, side, rotated, other, true, reason);
                        }
                        None => self.stale_conflict(place, side, &name, rotated, other, true),
                    }
                }
                // An owner entry added on one side is never re-sealed to a
                // key the other side rotated: a rotation is how owners
                // revoke, and re-sealing would undo it.
                for owner in owners {
                    let place = Place::Owner(name.clone(), owner.clone());
                    if self.has_conflict(&place) {
                        continue;
                    }
                    let reason = format!(
                        "owner {owner} of domain {name} was granted on {} side, which {} side's key rotation revokes; grant it again after the merge",
                        possessive(side),
                        possessive(other_side(side))
                    );
                    self.stale_conflict_with(place, side, rotated, other, false, reason);
                }
            }
        }
        // Owner entries sealed to a custodian key the other side replaced
        // or removed: never re-sealed to a custodian key that changed on
        // the other side (it may be a key someone else knows the
        // passphrase of).
        let names: Vec<String> = self.base.custodians.keys().cloned().collect();
        for cname in names {
            let b = &self.base.custodians[&cname];
            for (side, this, other) in [
                (Side::Theirs, self.theirs, self.ours),
                (Side::Ours, self.ours, self.theirs),
            ] {
                let other_pwdkm = other.custodians.get(&cname);
                if other_pwdkm == Some(b) || this.custodians.get(&cname) != Some(b) {
                    continue;
                }
                for (dname, d) in &this.domains {
                    let Some(entry) = d.owners.get(&cname) else {
                        continue;
                    };
                    let base_entry = self
                        .base
                        .domains
                        .get(dname)
                        .and_then(|bd| bd.owners.get(&cname));
                    if base_entry == Some(entry) {
                        continue;
                    }
                    let place = Place::Owner(dname.clone(), cname.clone());
                    if self.has_conflict(&place) || !self.merged.domains.contains_key(dname) {
                        continue;
                    }
                    let reason = if other_pwdkm.is_none() {
                        format!(
                            "{cname} was removed on {} side",
                            possessive(other_side(side))
                        )
                    } else {
                        format!(
                            "sealed to {cname}'s old key, which {} side replaced; pprotect never re-seals to a key changed on the other side: grant it again after the merge",
                            possessive(other_side(side))
                        )
                    };
                    let entry = Some(entry.clone());
                    let versions = match side {
                        Side::Theirs => Versions::Sealed(None, entry),
                        Side::Ours => Versions::Sealed(entry, None),
                    };
                    self.conflict(place, reason, versions);
                }
            }
        }
    }

    fn file(&self, side: Side) -> &'a ProtectedFile {
        match side {
            Side::Ours => self.ours,
            Side::Theirs => self.theirs,
        }
    }

    fn stale_conflict(
        &mut self,
        place: Place,
        side: Side,
        domain: &str,
        rotated: &Domain,
        other: &Domain,
        secret: bool,
    ) {
        let reason = format!(
            "sealed to the old key of domain {domain}, which {} side rotated",
            possessive(other_side(side))
        );
        self.stale_conflict_with(place, side, rotated, other, secret, reason);
    }

    fn stale_conflict_with(
        &mut self,
        place: Place,
        side: Side,
        rotated: &Domain,
        other: &Domain,
        secret: bool,
        reason: String,
    ) {
        let key = match &place {
            Place::Secret(_, k) | Place::Owner(_, k) => k.clone(),
            _ => unreachable!("stale conflicts are on entries"),
        };
        let pick_map = |d: &Domain| {
            if secret {
                d.secrets.get(&key).cloned()
            } else {
                d.owners.get(&key).cloned()
            }
        };
        let (rv, ov) = (pick_map(rotated), pick_map(other));
        let versions = match side {
            Side::Theirs => Versions::Sealed(rv, ov),
            Side::Ours => Versions::Sealed(ov, rv),
        };
        self.conflict(place, reason, versions);
        self.stale.push((self.conflicts.len() - 1, side));
    }

    /// Whether the rotated key of `domain` verifies for the merging owner:
    /// it opens from `rotated_file`'s own owner entry and matches its
    /// public key, and every secret base had that the rotation kept (and
    /// its log does not say it updated) decrypts under the new key to the
    /// value it had under the old one, at least one of them.
    fn rotation_verifies(
        &mut self,
        domain: &str,
        base: &Domain,
        rotated: &Domain,
        rotated_file: &ProtectedFile,
    ) -> bool {
        let base_file = self.base;
        let Some(keys) = self.keys.as_mut() else {
            return false;
        };
        let Some(new_sk) = keys.domain_key(rotated_file, domain) else {
            return false;
        };
        let Some(old_sk) = keys.domain_key(base_file, domain) else {
            return false;
        };
        let (domains, custodians) = audit::names(base_file, rotated_file);
        let updated: BTreeSet<String> =
            audit::beyond(&rotated_file.audit_log, &base_file.audit_log)
                .into_iter()
                .filter_map(|e| audit::meaning(e, &domains, &custodians))
                .filter_map(|m| match m.primary {
                    audit::Obj::Secret(d, s) if d == domain => Some(s),
                    _ => None,
                })
                .collect();
        let mut compared = 0;
        for (name, old) in &base.secrets {
            let Some(new) = rotated.secrets.get(name) else {
                continue;
            };
            if updated.contains(name) {
                continue;
            }
            match (old_sk.unseal(old), new_sk.unseal(new)) {
                (Some(a), Some(b)) if a == b => compared += 1,
                _ => return false,
            }
        }
        compared > 0
    }

    /// Re-seal a secret that `side` sealed to the old domain key, to the
    /// rotated key (which the caller verified).
    fn reseal_secret(
        &mut self,
        domain: &str,
        secret: &str,
        old: &Domain,
        new: &Domain,
        side: Side,
    ) -> Option<Vec<u8>> {
        let old_file = self.file(side);
        let base = self.base;
        let keys = self.keys.as_mut()?;
        let old_sk = keys
            .domain_key(old_file, domain)
            .or_else(|| keys.domain_key(base, domain))?;
        if old_sk.public_key() != old.public_key {
            return None;
        }
        let plain = zeroize::Zeroizing::new(old_sk.unseal(old.secrets.get(secret)?)?);
        Some(crypto::seal(&new.public_key, &plain))
    }

    fn merge_log(&mut self) {
        let mode = if self.single_parent {
            audit::LogMerge::Replay
        } else {
            audit::LogMerge::Union
        };
        match audit::merge_logs(
            &self.base.audit_log,
            &self.ours.audit_log,
            &self.theirs.audit_log,
            mode,
        ) {
            Ok(log) => self.merged.audit_log = log,
            Err(why) => self.log_conflict(&why),
        }
    }

    /// Append the entries pprotect would have written for the changes the
    /// merge applies to ours that no entry explains (a revert removing a
    /// secret, restoring an older value), stamped now.
    fn explain_changes(&mut self, actor: &str) {
        let added = audit::beyond(&self.merged.audit_log, &self.ours.audit_log);
        let mut texts = audit::explain(self.ours, &self.merged, &added, actor);
        // A merge commit answers to theirs too: a change from theirs'
        // version that no entry theirs lacks explains gets its entry. (Two
        // updates of one secret in the same second write the same text,
        // which merges as one; a revert git applied without the driver
        // dropped its entries.) A single-parent result answers to ours.
        let from_theirs = if self.single_parent {
            Vec::new()
        } else {
            let not_in_theirs = audit::beyond(&self.merged.audit_log, &self.theirs.audit_log);
            audit::explain(self.theirs, &self.merged, &not_in_theirs, actor)
        };
        for text in from_theirs {
            if !texts.contains(&text) {
                texts.push(text);
            }
        }
        for text in texts {
            self.notes.push(format!("logged: {text}"));
            self.merged.log(text);
        }
    }

    fn log_conflict(&mut self, why: &str) {
        self.merged.audit_log = self.ours.audit_log.clone();
        self.conflict(
            Place::AuditLog,
            why.to_string(),
            Versions::Log(self.ours.audit_log.clone(), self.theirs.audit_log.clone()),
        );
    }

    /// An owner whose custodian is gone cannot stay.
    fn find_orphans(&mut self) {
        let orphans: Vec<(String, String)> = self
            .merged
            .domains
            .iter()
            .flat_map(|(d, dom)| dom.owners.keys().map(move |o| (d.clone(), o.clone())))
            .filter(|(_, o)| !self.merged.custodians.contains_key(o))
            .collect();
        for (d, o) in orphans {
            let place = Place::Owner(d.clone(), o.clone());
            if !self.has_conflict(&place) && !self.has_conflict(&Place::Custodian(o.clone())) {
                let ov = self
                    .ours
                    .domains
                    .get(&d)
                    .and_then(|x| x.owners.get(&o))
                    .cloned();
                let tv = self
                    .theirs
                    .domains
                    .get(&d)
                    .and_then(|x| x.owners.get(&o))
                    .cloned();
                self.conflict(
                    place,
                    format!("{o} is not a key custodian after the merge"),
                    Versions::Sealed(ov, tv),
                );
            }
        }
    }

    /// Take a side for each conflict a choice names.
    fn apply_choices(&mut self, choices: &[Choice]) {
        if choices.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.conflicts.len() {
            let place = self.conflicts[i].0.place.clone();
            let Some(choice) = choices.iter().find(|c| c.matches(&place)) else {
                i += 1;
                continue;
            };
            let side = choice.side;
            if let Some(&(_, stale_side)) = self.stale.iter().find(|(k, _)| *k == i)
                && stale_side == side
            {
                let c = &mut self.conflicts[i].0;
                if !c.reason.starts_with("cannot take ") {
                    c.reason = format!(
                        "cannot take {} side: its entry is sealed to a key that is no longer the domain's ({})",
                        possessive(side),
                        c.reason
                    );
                }
                i += 1;
                continue;
            }
            let (conflict, versions) = self.conflicts.remove(i);
            self.stale.retain(|(k, _)| *k != i);
            for (k, _) in self.stale.iter_mut() {
                if *k > i {
                    *k -= 1;
                }
            }
            self.take(&conflict.place, &versions, side);
            if side == Side::Ours && self.single_parent {
                self.drop_rejected_entries(&conflict.place);
            }
            self.notes.push(format!(
                "took {} side for {}",
                possessive(side),
                conflict.place
            ));
            if let Place::PublicKey(d) = &conflict.place {
                // The whole domain came from that side: its other
                // conflicts are settled with it.
                let d = d.clone();
                let mut k = 0;
                while k < self.conflicts.len() {
                    let same = matches!(&self.conflicts[k].0.place,
                        Place::Owner(x, _) | Place::Secret(x, _) if *x == d);
                    if same {
                        self.conflicts.remove(k);
                        self.stale.retain(|(s, _)| *s != k);
                        for (s, _) in self.stale.iter_mut() {
                            if *s > k {
                                *s -= 1;
                            }
                        }
                    } else {
                        k += 1;
                    }
                }
            }
        }
    }

    /// Leave out of the log the entries theirs added about `place`, a
    /// change of theirs that was not taken.
    fn drop_rejected_entries(&mut self, place: &Place) {
        let obj = match place {
            Place::Custodian(c) => audit::Obj::Custodian(c.clone()),
            Place::Domain(d) => audit::Obj::Domain(d.clone()),
            Place::PublicKey(d) => audit::Obj::DomainKey(d.clone()),
            Place::Owner(d, o) => audit::Obj::Owner(d.clone(), o.clone()),
            Place::Secret(d, s) => audit::Obj::Secret(d.clone(), s.clone()),
            Place::AuditLog => return,
        };
        let (domains, custodians) = audit::names(self.ours, self.theirs);
        let rejected: Vec<String> = audit::beyond(&self.merged.audit_log, &self.ours.audit_log)
            .into_iter()
            .filter(|e| audit::meaning(e, &domains, &custodians).is_some_and(|m| m.primary == obj))
            .map(String::from)
            .collect();
        for e in rejected {
            if let Some(i) = self.merged.audit_log.iter().rposition(|x| *x == e) {
                self.merged.audit_log.remove(i);
            }
        }
    }

    /// Put `side`'s version of a conflicting entry into the merge.
    fn take(&mut self, place: &Place, versions: &Versions, side: Side) {
        fn pick<T>(side: Side, o: T, t: T) -> T {
            if side == Side::Ours { o } else { t }
        }
        match (place, versions) {
            (Place::Custodian(c), Versions::Custodian(o, t)) => match pick(side, o, t) {
                Some(p) => {
                    self.merged.custodians.insert(c.clone(), p.clone());
                }
                None => {
                    self.merged.custodians.remove(c);
                }
            },
            (Place::Domain(d), Versions::Domain(o, t)) => match pick(side, o, t) {
                Some(dom) => {
                    self.merged.domains.insert(d.clone(), dom.clone());
                }
                None => {
                    self.merged.domains.remove(d);
                }
            },
            (Place::PublicKey(d), _) => {
                if let Some(dom) = self.file(side).domains.get(d) {
                    self.merged.domains.insert(d.clone(), dom.clone());
                }
            }
            (Place::Owner(d, x), Versions::Sealed(o, t)) => {
                let v = pick(side, o, t).clone();
                if v.is_some()
                    && !self.merged.custodians.contains_key(x)
                    && let Some(p) = self.file(side).custodians.get(x)
                {
                    self.merged.custodians.insert(x.clone(), p.clone());
                }
                if let Some(dom) = self.merged.domains.get_mut(d) {
                    match v {
                        Some(v) => dom.owners.insert(x.clone(), v),
                        None => dom.owners.remove(x),
                    };
                }
            }
            (Place::Secret(d, x), Versions::Sealed(o, t)) => {
                if let Some(dom) = self.merged.domains.get_mut(d) {
                    match pick(side, o, t).clone() {
                        Some(v) => dom.secrets.insert(x.clone(), v),
                        None => dom.secrets.remove(x),
                    };
                }
            }
            (Place::AuditLog, _) => {
                let (keep, other) = match side {
                    Side::Ours => (&self.ours.audit_log, &self.theirs.audit_log),
                    Side::Theirs => (&self.theirs.audit_log, &self.ours.audit_log),
                };
                self.merged.audit_log =
                    audit::merge_logs_keeping(&self.base.audit_log, keep, other);
            }
            _ => {}
        }
    }

    /// For a single-parent result: leave out theirs' added entries about a
    /// change the result does not make relative to ours (a cherry-picked
    /// removal of a secret ours never had). An entry with another added
    /// entry about the same thing stays (an addition then a removal).
    fn drop_unbacked_additions(&mut self) {
        let (domains, custodians) = audit::names(self.ours, &self.merged);
        let changed = audit::changes(self.ours, &self.merged);
        let added: Vec<(String, Option<audit::Obj>)> =
            audit::beyond(&self.merged.audit_log, &self.ours.audit_log)
                .into_iter()
                .map(|e| {
                    let obj = audit::meaning(e, &domains, &custodians).map(|m| m.primary);
                    (e.to_string(), obj)
                })
                .collect();
        for (i, (e, obj)) in added.iter().enumerate() {
            let Some(obj) = obj else { continue };
            if *obj == audit::Obj::File || changed.contains(obj) {
                continue;
            }
            let paired = added
                .iter()
                .enumerate()
                .any(|(j, (other, o))| j != i && other != e && o.as_ref() == Some(obj));
            if !paired && let Some(at) = self.merged.audit_log.iter().rposition(|x| x == e) {
                self.merged.audit_log.remove(at);
            }
        }
    }

    fn finish(mut self, marker_size: usize, actor: &str) -> Merged {
        if self.conflicts.is_empty() {
            if self.single_parent {
                self.drop_unbacked_additions();
            }
            self.explain_changes(actor);
            return Merged {
                text: self.merged.to_yaml_string(),
                conflicts: Vec::new(),
                notes: self.notes,
            };
        }
        let text = self.render_conflicts(marker_size);
        Merged {
            text,
            conflicts: self.conflicts.into_iter().map(|(c, _)| c).collect(),
            notes: self.notes,
        }
    }

    /// The merged file with each conflicting entry replaced by a marker
    /// block holding both sides' lines.
    fn render_conflicts(&self, size: usize) -> String {
        let mut text = self.merged.to_yaml_string();
        for (c, versions) in &self.conflicts {
            let placeholder = self.placeholder_lines(&c.place);
            let (ours, theirs) = entry_lines(&c.place, versions);
            let block = format!(
                "{} ours: {}\n{ours}{}\n{theirs}{} theirs\n",
                "<".repeat(size),
                c.place,
                "=".repeat(size),
                ">".repeat(size)
            );
            if let Some(at) = find_block(&text, &placeholder) {
                text.replace_range(at..at + placeholder.len(), &block);
            } else {
                // Not found (should not happen): append, so the file
                // still fails to parse until someone looks.
                text.push_str(&block);
            }
        }
        text
    }

    fn placeholder_lines(&self, place: &Place) -> String {
        let m = &self.merged;
        match place {
            Place::Custodian(c) => {
                entry_lines(
                    place,
                    &Versions::Custodian(m.custodians.get(c).cloned(), None),
                )
                .0
            }
            Place::Domain(d) => {
                entry_lines(place, &Versions::Domain(m.domains.get(d).cloned(), None)).0
            }
            Place::PublicKey(d) => {
                let pk = m.domains[d].public_key;
                entry_lines(place, &Versions::PublicKey(pk, pk)).0
            }
            Place::Owner(d, o) => {
                entry_lines(
                    place,
                    &Versions::Sealed(m.domains[d].owners.get(o).cloned(), None),
                )
                .0
            }
            Place::Secret(d, s) => {
                entry_lines(
                    place,
                    &Versions::Sealed(m.domains[d].secrets.get(s).cloned(), None),
                )
                .0
            }
            Place::AuditLog => {
                entry_lines(place, &Versions::Log(m.audit_log.clone(), Vec::new())).0
            }
        }
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Ours => "ours",
        Side::Theirs => "theirs",
    }
}

fn other_side(s: Side) -> Side {
    match s {
        Side::Ours => Side::Theirs,
        Side::Theirs => Side::Ours,
    }
}

fn possessive(s: Side) -> &'static str {
    match s {
        Side::Ours => "our",
        Side::Theirs => "their",
    }
}

/// Find `block` at a line start in `text`.
fn find_block(text: &str, block: &str) -> Option<usize> {
    if block.is_empty() {
        return None;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find(block) {
        let at = from + i;
        if at == 0 || text.as_bytes()[at - 1] == b'\n' {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The lines an entry occupies in the canonical file, for each side:
/// emit the entry inside its ancestors and drop the ancestors' lines.
fn entry_lines(place: &Place, v: &Versions) -> (String, String) {
    fn lines_without(doc: &str, ancestors: usize) -> String {
        doc.split_inclusive('\n').skip(ancestors).collect()
    }
    let side = |which: usize| -> String {
        match (place, v) {
            (Place::Custodian(c), Versions::Custodian(o, t)) => {
                let Some(p) = (if which == 0 { o } else { t }) else {
                    return String::new();
                };
                let enc = p.encode();
                let doc = emit(&Node::Map(vec![(
                    "key-custodians",
                    Node::Map(vec![(
                        c.as_str(),
                        Node::Map(vec![("pwdkm", Node::Str(&enc))]),
                    )]),
                )]));
                lines_without(&doc, 1)
            }
            (Place::Domain(d), Versions::Domain(o, t)) => {
                let Some(dom) = (if which == 0 { o } else { t }) else {
                    return String::new();
                };
                let mut f = ProtectedFile::default();
                f.domains.insert(d.clone(), dom.clone());
                let doc = f.to_yaml_string();
                // Drop the trailing `key-custodians: {}` and `audit-log: []`.
                let lines: Vec<&str> = doc.split_inclusive('\n').collect();
                lines[..lines.len() - 2].concat()
            }
            (Place::PublicKey(d), Versions::PublicKey(o, t)) => {
                let enc = crypto::encode_v0(if which == 0 { o } else { t });
                let doc = emit(&Node::Map(vec![(
                    d.as_str(),
                    Node::Map(vec![(
                        "meta",
                        Node::Map(vec![("public-key", Node::Str(&enc))]),
                    )]),
                )]));
                lines_without(&doc, 2)
            }
            (Place::Owner(d, name), Versions::Sealed(o, t)) => {
                let Some(val) = (if which == 0 { o } else { t }) else {
                    return String::new();
                };
                let enc = crypto::encode_v0(val);
                let doc = emit(&Node::Map(vec![(
                    d.as_str(),
                    Node::Map(vec![(
                        "meta",
                        Node::Map(vec![(
                            "owners",
                            Node::Map(vec![(name.as_str(), Node::Str(&enc))]),
                        )]),
                    )]),
                )]));
                lines_without(&doc, 3)
            }
            (Place::Secret(d, name), Versions::Sealed(o, t)) => {
                let Some(val) = (if which == 0 { o } else { t }) else {
                    return String::new();
                };
                let enc = crypto::encode_v0(val);
                let key = format!("secret-{name}");
                let doc = emit(&Node::Map(vec![(
                    d.as_str(),
                    Node::Map(vec![(key.as_str(), Node::Str(&enc))]),
                )]));
                lines_without(&doc, 1)
            }
            (Place::AuditLog, Versions::Log(o, t)) => {
                let log = if which == 0 { o } else { t };
                emit(&Node::Map(vec![(
                    "audit-log",
                    Node::Seq(log.iter().map(String::as_str).collect()),
                )]))
            }
            _ => String::new(),
        }
    };
    (side(0), side(1))
}

/// Credentials usable by the merge driver without prompting, from
/// `<PREFIX>_USER` and `<PREFIX>_PASSPHRASE` (prefix `PPROTECT_ENV_PREFIX`
/// or `PPROTECT`) or `PPROTECT_PASSPHRASE_FILE`.
pub fn env_creds() -> Option<Creds> {
    let prefix = std::env::var("PPROTECT_ENV_PREFIX").unwrap_or_else(|_| "PPROTECT".into());
    let user = std::env::var(format!("{prefix}_USER"))
        .ok()
        .filter(|u| !u.is_empty())?;
    let pass = match std::env::var(format!("{prefix}_PASSPHRASE")) {
        Ok(p) if !p.is_empty() => p,
        _ => match std::env::var_os("PPROTECT_PASSPHRASE_FILE") {
            Some(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).ok()?);
                text.trim().to_string()
            }
            None => {
                // A configured passphrase command (a key-management
                // system in CI). Its failure is reported, and the merge
                // goes on without credentials.
                let (cmd, _) = crate::passcmd::configured(&prefix, false)?;
                match crate::passcmd::run(&cmd, &user, crate::passcmd::timeout(), false) {
                    Ok(p) => secrecy::ExposeSecret::expose_secret(&p).to_string(),
                    Err(e) => {
                        eprintln!("pprotect merge-driver: {e}");
                        return None;
                    }
                }
            }
        },
    };
    Some(Creds::new(user, pass))
}

/// Run the driver on file contents; `Err` when an input is not a valid
/// protected file (the caller leaves `%A` untouched).
pub fn merge_bytes(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    creds: Option<&Creds>,
    marker_size: usize,
    single_parent: bool,
) -> Result<Merged> {
    // The three parses are independent: run them side by side.
    let (b, o, t) = std::thread::scope(|s| {
        let b = s.spawn(|| parse_input(base, "base (%O)"));
        let o = s.spawn(|| ProtectedFile::from_bytes(ours).map_err(|e| e.context("ours (%A)")));
        let t = ProtectedFile::from_bytes(theirs).map_err(|e| e.context("theirs (%B)"));
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<ProtectedFile>>| {
            h.join().unwrap_or_else(|_| {
                Err(crate::error::Error::invalid(
                    None,
                    "parser thread failed".into(),
                ))
            })
        };
        (join(b), join(o), t)
    });
    let (b, o, t) = (b?, o?, t?);
    Ok(merge_with(
        &b,
        &o,
        &t,
        creds,
        marker_size,
        &[],
        single_parent,
    ))
}

/// Whether git is running the driver for a merge commit (`git merge`,
/// `git pull` without rebase), from `GIT_REFLOG_ACTION` and the git
/// directory's state; anything else (rebase, cherry-pick, revert, am,
/// stash) commits the result on top of ours alone.
pub fn git_is_merging(git_dir: Option<&std::path::Path>) -> bool {
    if let Some(d) = git_dir
        && (d.join("rebase-merge").exists() || d.join("rebase-apply").exists())
    {
        return false;
    }
    let action = std::env::var("GIT_REFLOG_ACTION").unwrap_or_default();
    action.starts_with("merge") || (action.starts_with("pull") && !action.contains("--rebase"))
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::crypto::KeyType;
    use proptest::prelude::*;
    use secrecy::SecretString;

    const RAW: &str = "P0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefP";

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize, usize),
        Update(usize, usize),
        Remove(usize, usize),
        AddDomain(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, 0..6usize).prop_map(|(d, s)| Op::Add(d, s)),
            (0..3usize, 0..6usize).prop_map(|(d, s)| Op::Update(d, s)),
            (0..3usize, 0..6usize).prop_map(|(d, s)| Op::Remove(d, s)),
            (2..5usize).prop_map(Op::AddDomain),
        ]
    }

    fn base() -> ProtectedFile {
        let mut f = ProtectedFile::create();
        let pass = SecretString::from(RAW.to_string());
        f.add_key_custodian("c@x", &pass, KeyType::Raw).unwrap();
        let who = f.unlock("c@x", &pass).unwrap().unwrap();
        for d in ["d0", "d1"] {
            f.add_domain(d, &who).unwrap();
        }
        f.add_secret("d0", "s0", &SecretString::from("v".to_string()))
            .unwrap();
        f
    }

    fn apply(f: &mut ProtectedFile, ops: &[Op]) {
        let pass = SecretString::from(RAW.to_string());
        let who = f.unlock("c@x", &pass).unwrap().unwrap();
        for op in ops {
            let v = SecretString::from(format!("{op:?}"));
            // Refused operations (missing domain, existing secret) are skipped.
            let _ = match op {
                Op::Add(d, s) => f.add_secret(&format!("d{d}"), &format!("s{s}"), &v),
                Op::Update(d, s) => f.update_secret(&format!("d{d}"), &format!("s{s}"), &v),
                Op::Remove(d, s) => f.rm_secret(&format!("d{d}"), &format!("s{s}")),
                Op::AddDomain(d) => f.add_domain(&format!("d{d}"), &who),
            };
        }
    }

    fn sorted_log(text: &str) -> (ProtectedFile, Vec<String>) {
        let mut f = ProtectedFile::from_bytes(text.as_bytes()).unwrap();
        let mut log = std::mem::take(&mut f.audit_log);
        log.sort();
        (f, log)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn unchanged_side_gives_the_other(ops in prop::collection::vec(op(), 0..8)) {
            let b = base();
            let mut t = b.clone();
            apply(&mut t, &ops);
            let m = merge(&b, &b, &t, None, 7);
            prop_assert!(m.conflicts.is_empty());
            prop_assert_eq!(&m.text, &t.to_yaml_string());
            let m = merge(&b, &t, &b, None, 7);
            prop_assert_eq!(&m.text, &t.to_yaml_string());
        }

        #[test]
        fn symmetric_up_to_tied_log_order(
            ours in prop::collection::vec(op(), 0..8),
            theirs in prop::collection::vec(op(), 0..8),
        ) {
            let b = base();
            let (mut o, mut t) = (b.clone(), b.clone());
            apply(&mut o, &ours);
            apply(&mut t, &theirs);
            let ot = merge(&b, &o, &t, None, 7);
            let to = merge(&b, &t, &o, None, 7);
            let places = |m: &Merged| {
                let mut v: Vec<String> = m.conflicts.iter().map(|c| c.place.to_string()).collect();
                v.sort();
                v
            };
            prop_assert_eq!(places(&ot), places(&to));
            if ot.conflicts.is_empty() {
                prop_assert_eq!(sorted_log(&ot.text), sorted_log(&to.text));
            } else {
                // A conflicted file never parses.
                prop_assert!(ProtectedFile::from_bytes(ot.text.as_bytes()).is_err());
            }
        }
    }
}
