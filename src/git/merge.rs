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
use std::sync::Arc;

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
    /// The rotated domain keys entries were re-sealed to: domain and
    /// public key (to name the commits that rotated them).
    pub resealed_to: Vec<(String, [u8; 32])>,
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
    Domain(Option<Arc<Domain>>, Option<Arc<Domain>>),
    PublicKey([u8; 32], [u8; 32]),
    Sealed(Option<Vec<u8>>, Option<Vec<u8>>),
    Log(Vec<String>, Vec<String>),
}

/// Who a sealed entry is sealed to, as far as the merge can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The base holds this exact ciphertext under this name.
    Base,
    /// Ours introduced it.
    Ours,
    /// Theirs introduced it.
    Theirs,
    /// The merge sealed it (to the merged key).
    Merge,
}

struct State<'a> {
    base: &'a ProtectedFile,
    ours: &'a ProtectedFile,
    theirs: &'a ProtectedFile,
    merged: ProtectedFile,
    conflicts: Vec<(Conflict, Versions)>,
    notes: Vec<String>,
    keys: Option<Keyring<'a>>,
    single_parent: bool,
    /// Domains whose merged key the merging owner trusts explicitly
    /// (`pprotect resolve --reseal`).
    trust: Vec<String>,
    /// Per domain: whether its merged key may be sealed to (`Err` says
    /// why not), decided once.
    key_ok: BTreeMap<String, std::result::Result<(), String>>,
    /// Rotated keys the merge re-sealed entries to.
    resealed_to: BTreeSet<(String, [u8; 32])>,
}

/// The merging owner's keys: the custodian key derived once per distinct
/// key material (one Argon2id derivation per merge, not per entry), and
/// domain keys opened from it.
pub struct Keyring<'c> {
    name: String,
    creds: Option<&'c Creds>,
    /// The agent, which opens entries with the keys it holds.
    #[cfg(unix)]
    agent: Option<crate::agent::Client>,
    unlocked: Vec<(Pwdkm, Option<crate::ops::Unlocked>)>,
}

impl<'c> Keyring<'c> {
    /// Keys derived from `creds` as needed.
    pub fn new(creds: &'c Creds) -> Self {
        Keyring {
            name: creds.name().to_string(),
            creds: Some(creds),
            #[cfg(unix)]
            agent: None,
            unlocked: Vec::new(),
        }
    }

    /// Keys the agent holds, for custodian `name`; with no name, the one
    /// custodian of the file it is settled on (see [`Keyring::settle`])
    /// whose key the agent holds.
    #[cfg(unix)]
    pub fn from_agent(name: Option<String>, agent: crate::agent::Client) -> Keyring<'static> {
        Keyring {
            name: name.unwrap_or_default(),
            creds: None,
            agent: Some(agent),
            unlocked: Vec::new(),
        }
    }

    /// Fix the owner's name from `file` when none was given: the one
    /// custodian of `file` whose key the agent holds. `false` when there
    /// is no such single custodian (the keyring is then of no use).
    ///
    /// Keys from the agent are of use only for a file whose key for the
    /// owner the agent holds (name and public key); without it the
    /// keyring is `false` here, so the merge goes on as without
    /// credentials.
    pub fn settle(&mut self, file: &ProtectedFile) -> bool {
        #[cfg(unix)]
        if self.creds.is_none()
            && let Some(agent) = &self.agent
        {
            let want = (!self.name.is_empty()).then_some(self.name.as_str());
            let Ok(Some(who)) = agent.find(file, want) else {
                return false;
            };
            // Kept, so that `who` asks the agent no second time.
            self.name = who.name().to_string();
            if !self.unlocked.iter().any(|(p, _)| p == who.pwdkm()) {
                self.unlocked.push((who.pwdkm().clone(), Some(who)));
            }
            return true;
        }
        let _ = file;
        !self.name.is_empty()
    }

    /// Keys from a custodian already unlocked (no further derivation).
    pub fn from_unlocked(who: crate::ops::Unlocked) -> Keyring<'static> {
        Keyring {
            name: who.name().to_string(),
            creds: None,
            #[cfg(unix)]
            agent: None,
            unlocked: vec![(who.pwdkm().clone(), Some(who))],
        }
    }

    /// The merging owner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The merging owner, unlocked against `file`'s key material for them.
    pub(crate) fn who(&mut self, file: &ProtectedFile) -> Option<&crate::ops::Unlocked> {
        let pwdkm = file.custodians.get(&self.name)?;
        let i = match self.unlocked.iter().position(|(p, _)| p == pwdkm) {
            Some(i) => i,
            None => {
                let u = match self.creds {
                    Some(creds) => file.unlock(creds.name(), creds.passphrase()).ok().flatten(),
                    #[cfg(unix)]
                    None => self
                        .agent
                        .as_ref()?
                        .find(file, Some(&self.name))
                        .ok()
                        .flatten(),
                    #[cfg(not(unix))]
                    None => return None,
                };
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
/// matching choice wins). A side whose entry is sealed to a key that is not
/// the domain's (or custodian's) after the merge cannot be taken; that
/// conflict stays, with the reason.
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
    merge_opts(
        base,
        ours,
        theirs,
        Options {
            keys: creds.map(Keyring::new),
            marker_size,
            choices: choices.to_vec(),
            single_parent,
            trust: Vec::new(),
        },
    )
}

/// How to merge: the merging owner's keys, conflict choices, and which
/// rotated keys the owner trusts explicitly.
pub struct Options<'c> {
    /// The merging owner's keys, when credentials are available.
    pub keys: Option<Keyring<'c>>,
    /// git's conflict marker size.
    pub marker_size: usize,
    /// Sides to take for conflicts.
    pub choices: Vec<Choice>,
    /// Whether the result is committed on top of ours alone.
    pub single_parent: bool,
    /// Domains whose merged (rotated) key the owner trusts without the
    /// proof a rotation normally gives (`pprotect resolve --reseal`).
    pub trust: Vec<String>,
}

/// The general merge: see [`merge_with`].
pub fn merge_opts<'c>(
    base: &'c ProtectedFile,
    ours: &'c ProtectedFile,
    theirs: &'c ProtectedFile,
    mut opts: Options<'c>,
) -> Merged {
    if let Some(k) = opts.keys.as_mut()
        && !k.settle(ours)
    {
        opts.keys = None;
    }
    let actor = opts
        .keys
        .as_ref()
        .map_or("pprotect merge-driver", |k| k.name())
        .to_string();
    let mut st = State {
        base,
        ours,
        theirs,
        merged: ProtectedFile::default(),
        conflicts: Vec::new(),
        notes: Vec::new(),
        keys: opts.keys,
        single_parent: opts.single_parent,
        trust: opts.trust,
        key_ok: BTreeMap::new(),
        resealed_to: BTreeSet::new(),
    };
    let choices = &opts.choices;
    st.merge_custodians();
    st.merge_domains();
    st.enforce_keys();
    st.merge_log();
    st.apply_choices(choices);
    st.find_orphans();
    st.apply_choices(choices);
    st.enforce_keys();
    st.apply_choices(choices);
    st.finish(opts.marker_size, &actor)
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
                    let d = self.merge_domain(name, b.map(|d| &**d), o, t);
                    self.merged.domains.insert(name.clone(), Arc::new(d));
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
        let owners = self.merge_sealed(
            name,
            false,
            b.map_or(&empty, |d| &d.owners),
            &o.owners,
            &t.owners,
            None,
            &public_key,
        );
        // A logged rotation on one side re-sealed the base's secrets: that
        // side's re-seal is not a change of value, so an update or a
        // removal on the other side is no conflict.
        let resealed = b.and_then(|b| self.resealed_by_rotation(name, b, o, t));
        let secrets = self.merge_sealed(
            name,
            true,
            b.map_or(&empty, |d| &d.secrets),
            &o.secrets,
            &t.secrets,
            resealed.as_ref(),
            &public_key,
        );
        Domain {
            public_key,
            owners,
            secrets,
        }
    }

    /// The side that rotated the domain's key (and logged it), with the
    /// base secrets it re-sealed without logging an update.
    fn resealed_by_rotation(
        &self,
        name: &str,
        b: &Domain,
        o: &Domain,
        t: &Domain,
    ) -> Option<(Side, BTreeSet<String>)> {
        let (side, r, file) = if o.public_key != b.public_key && t.public_key == b.public_key {
            (Side::Ours, o, self.ours)
        } else if t.public_key != b.public_key && o.public_key == b.public_key {
            (Side::Theirs, t, self.theirs)
        } else {
            return None;
        };
        let (logged, updated) = logged_rotation(self.base, file, name);
        if !logged {
            return None;
        }
        let names = b
            .secrets
            .iter()
            .filter(|(k, v)| r.secrets.get(*k).is_some_and(|rv| rv != *v) && !updated.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        Some((side, names))
    }

    #[allow(clippy::too_many_arguments)]
    fn merge_sealed(
        &mut self,
        domain: &str,
        secrets: bool,
        b: &BTreeMap<String, Vec<u8>>,
        o: &BTreeMap<String, Vec<u8>>,
        t: &BTreeMap<String, Vec<u8>>,
        resealed: Option<&(Side, BTreeSet<String>)>,
        merged_pk: &[u8; 32],
    ) -> BTreeMap<String, Vec<u8>> {
        let place = |n: &str| {
            if secrets {
                Place::Secret(domain.to_string(), n.to_string())
            } else {
                Place::Owner(domain.to_string(), n.to_string())
            }
        };
        let keys: BTreeSet<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
        let mut out = BTreeMap::new();
        for k in keys {
            let (bv, ov, tv) = (b.get(k), o.get(k), t.get(k));
            // A side that only re-sealed this entry in a rotation counts
            // as unchanged; if the other side left it alone too, the
            // re-sealed version is taken.
            let reseal_side = resealed
                .filter(|(_, names)| names.contains(k))
                .map(|(side, _)| *side);
            let picked = match reseal_side {
                Some(Side::Ours) => match pick(bv, bv, tv) {
                    Pick::Take(v) if v.as_ref() == bv => Pick::Take(ov.cloned()),
                    p => p,
                },
                Some(Side::Theirs) => match pick(bv, ov, bv) {
                    Pick::Take(v) if v.as_ref() == bv => Pick::Take(tv.cloned()),
                    p => p,
                },
                None => pick(bv, ov, tv),
            };
            match picked {
                Pick::Take(Some(v)) => {
                    out.insert(k.clone(), v);
                }
                Pick::Take(None) => {}
                Pick::Conflict => {
                    if let Some((v, note)) =
                        self.same_on_both_sides(domain, secrets, k, ov, tv, merged_pk)
                    {
                        self.notes.push(note);
                        out.insert(k.clone(), v);
                        continue;
                    }
                    out.insert(k.clone(), ov.or(tv).cloned().expect("one side has it"));
                    let mut reason = why(bv, ov, tv);
                    if secrets && ov.is_some() && tv.is_some() && self.keys.is_none() {
                        reason.push_str(
                            "; the values may be equal: `pprotect resolve --show` tells (an owner)",
                        );
                    }
                    self.conflict(place(k), reason, Versions::Sealed(ov.cloned(), tv.cloned()));
                }
            }
        }
        out
    }

    /// Both sides changed an entry to something that may be the same:
    /// a secret set to the same value (which the merging owner can tell),
    /// or an owner granted on both sides (one entry is taken, the one
    /// sealed to the merged key, deterministically). `None` when it is a
    /// true conflict.
    fn same_on_both_sides(
        &mut self,
        domain: &str,
        secret: bool,
        name: &str,
        ov: Option<&Vec<u8>>,
        tv: Option<&Vec<u8>>,
        merged_pk: &[u8; 32],
    ) -> Option<(Vec<u8>, String)> {
        let (ov, tv) = (ov?, tv?);
        let (ours, theirs) = (self.ours, self.theirs);
        let (od, td) = (ours.domains.get(domain)?, theirs.domains.get(domain)?);
        if secret {
            let keys = self.keys.as_mut()?;
            let (Shown::Value(a), Shown::Value(b)) = (
                keys.secret(ours, domain, name),
                keys.secret(theirs, domain, name),
            ) else {
                return None;
            };
            use secrecy::ExposeSecret;
            if a.expose_secret() != b.expose_secret() {
                return None;
            }
            let (side, v) = if od.public_key == *merged_pk {
                (Side::Ours, ov)
            } else if td.public_key == *merged_pk {
                (Side::Theirs, tv)
            } else {
                return None;
            };
            return Some((
                v.clone(),
                format!(
                    "secret {name} of domain {domain}: both sides set the same value; took {} entry",
                    possessive(side)
                ),
            ));
        }
        // An owner granted on both sides: both entries must be sealed to
        // the same custodian key and hold the merged domain key.
        let (oc, tc) = (ours.custodians.get(name)?, theirs.custodians.get(name)?);
        if oc != tc || od.public_key != *merged_pk || td.public_key != *merged_pk {
            return None;
        }
        let verified = self.keys.as_mut().filter(|k| k.name() == name).map(|keys| {
            keys.domain_key(ours, domain).is_some() && keys.domain_key(theirs, domain).is_some()
        });
        match verified {
            Some(false) => None,
            Some(true) => Some((
                ov.clone(),
                format!(
                    "owner {name} of domain {domain}: granted on both sides, both entries verified; took our entry"
                ),
            )),
            None => {
                let (side, v) = if ov <= tv {
                    (Side::Ours, ov)
                } else {
                    (Side::Theirs, tv)
                };
                Some((
                    v.clone(),
                    format!(
                        "owner {name} of domain {domain}: granted on both sides; took {} entry (the first in byte order; only {name} can open either)",
                        possessive(side)
                    ),
                ))
            }
        }
    }

    fn has_conflict(&self, place: &Place) -> bool {
        self.conflicts.iter().any(|(c, _)| &c.place == place)
    }

    fn file(&self, side: Side) -> &'a ProtectedFile {
        match side {
            Side::Ours => self.ours,
            Side::Theirs => self.theirs,
        }
    }

    /// The version an entry's ciphertext comes from: the first of base,
    /// ours and theirs holding these exact bytes under this name (sealed
    /// boxes are randomized, so equal bytes are one sealing), or the merge
    /// itself.
    fn origin(&self, domain: &str, secret: bool, name: &str, v: &[u8]) -> Origin {
        let holds = |f: &ProtectedFile| entry_of(f, domain, secret, name).is_some_and(|x| x == v);
        if holds(self.base) {
            Origin::Base
        } else if holds(self.ours) {
            Origin::Ours
        } else if holds(self.theirs) {
            Origin::Theirs
        } else {
            Origin::Merge
        }
    }

    fn origin_file(&self, o: Origin) -> Option<&'a ProtectedFile> {
        match o {
            Origin::Base => Some(self.base),
            Origin::Ours => Some(self.ours),
            Origin::Theirs => Some(self.theirs),
            Origin::Merge => None,
        }
    }

    /// The side whose key for `domain` is the merged one, where it differs
    /// from the base's (the side that rotated it).
    fn rotating_side(&self, domain: &str) -> Option<Side> {
        let pk = self.merged.domains.get(domain)?.public_key;
        let base_pk = self.base.domains.get(domain).map(|d| d.public_key);
        [Side::Ours, Side::Theirs].into_iter().find(|s| {
            let k = self.file(*s).domains.get(domain).map(|d| d.public_key);
            k == Some(pk) && base_pk != Some(pk)
        })
    }

    /// Whether a secret entry is sealed to `domain`'s merged key; `Some`
    /// with the version it comes from when it is not.
    fn stale_secret(&self, domain: &str, name: &str, v: &[u8]) -> Option<Origin> {
        let pk = self.merged.domains.get(domain)?.public_key;
        let origin = self.origin(domain, true, name, v);
        let from = self.origin_file(origin)?;
        (from.domains.get(domain).map(|d| d.public_key) != Some(pk)).then_some(origin)
    }

    /// Why an owner entry is not sealed to the merged keys (the domain's,
    /// and the custodian's: `custodian` is the key material it will have),
    /// or `None` when it is.
    fn stale_owner(
        &self,
        domain: &str,
        owner: &str,
        v: &[u8],
        custodian: Option<&Pwdkm>,
    ) -> Option<String> {
        let pk = self.merged.domains.get(domain)?.public_key;
        let origin = self.origin(domain, false, owner, v);
        let from = self.origin_file(origin)?;
        let where_from = match origin {
            Origin::Base => "kept from the base".to_string(),
            Origin::Ours => format!("granted on {} side", possessive(Side::Ours)),
            Origin::Theirs => format!("granted on {} side", possessive(Side::Theirs)),
            Origin::Merge => return None,
        };
        if from.domains.get(domain).map(|d| d.public_key) != Some(pk) {
            let by = self
                .rotating_side(domain)
                .map_or("the other".to_string(), |s| {
                    format!("{} side's", possessive(s))
                });
            return Some(format!(
                "owner {owner} of domain {domain} was {where_from}, which {by} key rotation revokes; grant it again after the merge"
            ));
        }
        if custodian.is_some() && from.custodians.get(owner) != custodian {
            let replaced = [Side::Ours, Side::Theirs]
                .into_iter()
                .find(|s| self.file(*s).custodians.get(owner) == custodian)
                .map_or("the other", |s| possessive(s));
            return Some(format!(
                "sealed to {owner}'s old key, which {replaced} side replaced; pprotect never re-seals to a key changed on the other side: grant it again after the merge"
            ));
        }
        None
    }

    /// Each side's version of an entry, for a conflict's markers.
    fn side_versions(&self, domain: &str, secret: bool, name: &str) -> Versions {
        let get = |f: &ProtectedFile| entry_of(f, domain, secret, name).cloned();
        Versions::Sealed(get(self.ours), get(self.theirs))
    }

    /// Why a secret sealed to an old key of its domain cannot stay.
    fn stale_secret_reason(&self, domain: &str, name: &str, origin: Origin) -> String {
        let rotated = self
            .rotating_side(domain)
            .map_or("the other".to_string(), |s| possessive(s).to_string());
        let in_base = self
            .base
            .domains
            .get(domain)
            .is_some_and(|d| d.secrets.contains_key(name));
        match origin {
            Origin::Ours | Origin::Theirs if in_base => {
                let s = if origin == Origin::Ours {
                    Side::Ours
                } else {
                    Side::Theirs
                };
                format!(
                    "updated on {} side, sealed to the old key of domain {domain}, which {rotated} side rotated",
                    possessive(s)
                )
            }
            Origin::Base => format!(
                "kept from the base, sealed to the old key of domain {domain}, which {rotated} side rotated without re-sealing it"
            ),
            _ => format!("sealed to the old key of domain {domain}, which {rotated} side rotated"),
        }
    }

    /// Every entry of the merged file must be sealed to its domain's (and
    /// custodian's) merged key. A secret that is not is re-sealed when the
    /// merging owner can do it to a key that is proven (or trusted);
    /// anything else is a conflict.
    fn enforce_keys(&mut self) {
        let domains: Vec<String> = self.merged.domains.keys().cloned().collect();
        for d in domains {
            if self.has_conflict(&Place::PublicKey(d.clone()))
                || self.has_conflict(&Place::Domain(d.clone()))
            {
                continue;
            }
            // The stale entries first (a read-only pass), then the changes.
            let dom = &self.merged.domains[&d];
            let stale_secrets: Vec<(String, Vec<u8>, Origin)> = dom
                .secrets
                .iter()
                .filter(|(s, _)| !self.has_conflict(&Place::Secret(d.clone(), (*s).clone())))
                .filter_map(|(s, v)| {
                    let origin = self.stale_secret(&d, s, v)?;
                    Some((s.clone(), v.clone(), origin))
                })
                .collect();
            let stale_owners: Vec<(String, String)> = dom
                .owners
                .iter()
                .filter_map(|(o, v)| {
                    // An orphan is find_orphans' to report.
                    let c = self.merged.custodians.get(o)?;
                    if self.has_conflict(&Place::Owner(d.clone(), o.clone()))
                        || self.has_conflict(&Place::Custodian(o.clone()))
                    {
                        return None;
                    }
                    Some((o.clone(), self.stale_owner(&d, o, v, Some(c))?))
                })
                .collect();
            for (s, v, origin) in stale_secrets {
                match self.reseal(&d, &s, &v, origin) {
                    Ok(new) => {
                        self.merged
                            .domains
                            .get_mut(&d)
                            .map(Arc::make_mut)
                            .expect("merged")
                            .secrets
                            .insert(s, new);
                    }
                    Err(reason) => {
                        let versions = self.side_versions(&d, true, &s);
                        self.conflict(Place::Secret(d.clone(), s), reason, versions);
                    }
                }
            }
            for (o, reason) in stale_owners {
                let versions = self.side_versions(&d, false, &o);
                self.conflict(Place::Owner(d.clone(), o), reason, versions);
            }
        }
    }

    /// Re-seal a secret that is sealed to an old key of `domain` (it comes
    /// from `origin`) to the merged key: only with the merging owner's
    /// keys, and only to a key that is the base's, proven by the rotation,
    /// or trusted explicitly. `Err` is the conflict's reason.
    fn reseal(
        &mut self,
        domain: &str,
        name: &str,
        v: &[u8],
        origin: Origin,
    ) -> std::result::Result<Vec<u8>, String> {
        let reason = self.stale_secret_reason(domain, name, origin);
        if self.keys.is_none() {
            return Err(format!(
                "{reason}; an owner re-seals it: run `pprotect resolve` with an owner's credentials"
            ));
        }
        if let Err(why) = self.key_usable(domain) {
            return Err(format!("{reason}; {why}"));
        }
        let merged_pk = self.merged.domains[domain].public_key;
        let origin_pk = self
            .origin_file(origin)
            .and_then(|f| f.domains.get(domain))
            .map(|d| d.public_key);
        let files = [self.base, self.ours, self.theirs];
        let keys = self.keys.as_mut().expect("checked");
        let who = keys.name().to_string();
        let sk = files.into_iter().find_map(|f| {
            f.domains
                .get(domain)
                .filter(|x| Some(x.public_key) == origin_pk)
                .and_then(|_| keys.domain_key(f, domain))
        });
        let Some(sk) = sk else {
            return Err(format!(
                "{reason}; {who} cannot open that old key, so nothing was re-sealed"
            ));
        };
        let Some(plain) = sk.unseal(v) else {
            return Err(format!(
                "{reason}; it does not open under that old key, so nothing was re-sealed"
            ));
        };
        let from = match origin {
            Origin::Base => "base",
            Origin::Ours => "ours",
            Origin::Theirs => "theirs",
            Origin::Merge => "merge",
        };
        if self.base.domains.get(domain).map(|d| d.public_key) != Some(merged_pk) {
            self.resealed_to.insert((domain.to_string(), merged_pk));
        }
        self.notes.push(format!(
            "re-sealed secret {name} of domain {domain} (from {from}) to the rotated domain key"
        ));
        Ok(crypto::seal(&merged_pk, &plain))
    }

    /// Whether the merged key of `domain` may be sealed to (decided once
    /// per domain): the base's own key; or a rotated key that the merging
    /// owner opens from the rotating side's own owner entry and that the
    /// rotation proves (see [`rotation_proof`]) or the owner trusts
    /// explicitly.
    fn key_usable(&mut self, domain: &str) -> std::result::Result<(), String> {
        if let Some(r) = self.key_ok.get(domain) {
            return r.clone();
        }
        let r = self.decide_key(domain);
        self.key_ok.insert(domain.to_string(), r.clone());
        r
    }

    fn decide_key(&mut self, domain: &str) -> std::result::Result<(), String> {
        let merged_pk = self.merged.domains[domain].public_key;
        let Some(base) = self.base.domains.get(domain) else {
            return Ok(());
        };
        if base.public_key == merged_pk {
            return Ok(());
        }
        let Some(side) = self.rotating_side(domain) else {
            return Err(format!(
                "the merged key of domain {domain} is on neither side"
            ));
        };
        let rotated_file = self.file(side);
        let not_proven = |detail: String| {
            format!(
                "the new key of domain {domain} on {} side does not prove it came from an owner ({detail}): an owner who trusts it runs `pprotect resolve --reseal {domain}`",
                possessive(side)
            )
        };
        let keys = self
            .keys
            .as_mut()
            .ok_or_else(|| not_proven("no credentials".into()))?;
        let who = keys.name().to_string();
        let Some(new_sk) = keys.domain_key(rotated_file, domain) else {
            return Err(not_proven(format!(
                "{who} cannot open it from {} side's owner entry",
                possessive(side)
            )));
        };
        if self.trust.iter().any(|t| t == domain) {
            return Ok(());
        }
        let Some(old_sk) = keys.domain_key(self.base, domain) else {
            return Err(not_proven(format!("{who} cannot open the base's key")));
        };
        rotation_proof(self.base, rotated_file, domain, &old_sk, &new_sk).map_err(not_proven)
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
            let resealed = match self.refusal(&place, &self.conflicts[i].1.clone(), side) {
                Ok(v) => v,
                Err(why) if self.can_drop_owner(&place) => {
                    // An owner entry neither side can give sealed to the
                    // merged keys (a rotation on one side, the custodian's
                    // new key on the other): the owner is left out, to be
                    // granted again; the domain keeps its other owners.
                    let (conflict, _) = self.conflicts.remove(i);
                    if let Place::Owner(d, o) = &conflict.place {
                        if let Some(dom) = self.merged.domains.get_mut(d).map(Arc::make_mut) {
                            dom.owners.remove(o);
                        }
                        self.notes.push(format!(
                            "left out owner {o} of domain {d}: {} side's entry is sealed to a key that is no longer the domain's or the custodian's ({why}); grant it again with `pprotect add-owner` after the merge",
                            possessive(side)
                        ));
                    }
                    continue;
                }
                Err(why) => {
                    let c = &mut self.conflicts[i].0;
                    if !c.reason.starts_with("cannot take ") {
                        c.reason = format!("cannot take {} side: {why}", possessive(side));
                    }
                    i += 1;
                    continue;
                }
            };
            let (conflict, versions) = self.conflicts.remove(i);
            self.take(&conflict.place, &versions, side);
            if let (Some(v), Place::Secret(d, s)) = (resealed, &conflict.place)
                && let Some(dom) = self.merged.domains.get_mut(d).map(Arc::make_mut)
            {
                dom.secrets.insert(s.clone(), v);
            }
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
                    } else {
                        k += 1;
                    }
                }
            }
        }
    }

    /// Whether an owner conflict may be settled by leaving the owner out:
    /// the domain keeps at least one other owner that no conflict touches.
    fn can_drop_owner(&self, place: &Place) -> bool {
        let Place::Owner(d, o) = place else {
            return false;
        };
        self.merged.domains.get(d).is_some_and(|dom| {
            dom.owners.keys().any(|other| {
                other != o
                    && !self.has_conflict(&Place::Owner(d.clone(), other.clone()))
                    && self.merged.custodians.contains_key(other)
            })
        })
    }

    /// Whether `side`'s version of a conflicting entry may be taken: an
    /// entry sealed to a key that is not the domain's (or custodian's)
    /// merged one cannot, unless the merging owner re-seals it (`Ok(Some)`,
    /// the re-sealed value). `Err` says why not.
    fn refusal(
        &mut self,
        place: &Place,
        versions: &Versions,
        side: Side,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        let Versions::Sealed(o, t) = versions else {
            return Ok(None);
        };
        let Some(v) = (if side == Side::Ours { o } else { t }) else {
            return Ok(None);
        };
        let (Place::Secret(d, name) | Place::Owner(d, name)) = place else {
            return Ok(None);
        };
        if self.has_conflict(&Place::PublicKey(d.clone()))
            || self.has_conflict(&Place::Domain(d.clone()))
        {
            return Ok(None);
        }
        let stale_msg = |why: String| {
            format!("its entry is sealed to a key that is no longer the domain's ({why})")
        };
        match place {
            Place::Secret(..) => match self.stale_secret(d, name, v) {
                None => Ok(None),
                Some(origin) => self.reseal(d, name, v, origin).map(Some).map_err(stale_msg),
            },
            _ => {
                let custodian = self
                    .merged
                    .custodians
                    .get(name)
                    .or_else(|| self.file(side).custodians.get(name))
                    .cloned();
                match self.stale_owner(d, name, v, custodian.as_ref()) {
                    None => Ok(None),
                    Some(why) => Err(stale_msg(why)),
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
        let mut rejected: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for e in audit::beyond(&self.merged.audit_log, &self.ours.audit_log) {
            if audit::meaning(e, &domains, &custodians).is_some_and(|m| m.primary == obj) {
                *rejected.entry(e.to_string()).or_default() += 1;
            }
        }
        remove_last_occurrences(&mut self.merged.audit_log, rejected);
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
                if let Some(dom) = self.merged.domains.get_mut(d).map(Arc::make_mut) {
                    match v {
                        Some(v) => dom.owners.insert(x.clone(), v),
                        None => dom.owners.remove(x),
                    };
                }
            }
            (Place::Secret(d, x), Versions::Sealed(o, t)) => {
                if let Some(dom) = self.merged.domains.get_mut(d).map(Arc::make_mut) {
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
        // Per object, whether the added entries about it have two distinct
        // texts (an addition then a removal pair up): one pass, so many
        // unbacked entries cost linear time.
        let mut texts: std::collections::HashMap<&audit::Obj, (&str, bool)> =
            std::collections::HashMap::new();
        for (e, obj) in &added {
            if let Some(obj) = obj {
                let t = texts.entry(obj).or_insert((e.as_str(), false));
                if t.0 != e {
                    t.1 = true;
                }
            }
        }
        // The texts to drop, each once (its last occurrence).
        let mut drop: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (e, obj) in &added {
            let Some(obj) = obj else { continue };
            if *obj == audit::Obj::File || changed.contains(obj) {
                continue;
            }
            if !texts.get(obj).is_some_and(|t| t.1) {
                *drop.entry(e.clone()).or_default() += 1;
            }
        }
        remove_last_occurrences(&mut self.merged.audit_log, drop);
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
                resealed_to: self.resealed_to.into_iter().collect(),
            };
        }
        let text = self.render_conflicts(marker_size);
        Merged {
            text,
            conflicts: self.conflicts.into_iter().map(|(c, _)| c).collect(),
            notes: self.notes,
            resealed_to: self.resealed_to.into_iter().collect(),
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

fn possessive(s: Side) -> &'static str {
    match s {
        Side::Ours => "our",
        Side::Theirs => "their",
    }
}

/// A secret's (or, with `secret` false, an owner's) sealed entry in `f`.
fn entry_of<'f>(
    f: &'f ProtectedFile,
    domain: &str,
    secret: bool,
    name: &str,
) -> Option<&'f Vec<u8>> {
    let d = f.domains.get(domain)?;
    if secret {
        d.secrets.get(name)
    } else {
        d.owners.get(name)
    }
}

/// Whether `rotated`'s log, beyond `base`'s, says `domain`'s key was
/// rotated, and which of the domain's secrets it says were added, updated
/// or removed.
fn logged_rotation(
    base: &ProtectedFile,
    rotated: &ProtectedFile,
    domain: &str,
) -> (bool, BTreeSet<String>) {
    let (domains, custodians) = audit::names(base, rotated);
    let mut logged = false;
    let mut changed = BTreeSet::new();
    for e in audit::beyond(&rotated.audit_log, &base.audit_log) {
        match audit::meaning(e, &domains, &custodians).map(|m| m.primary) {
            Some(audit::Obj::DomainKey(d)) if d == domain => logged = true,
            Some(audit::Obj::Secret(d, s)) if d == domain => {
                changed.insert(s);
            }
            _ => {}
        }
    }
    (logged, changed)
}

/// Whether a rotation of `domain` from `base` to `rotated` proves that it
/// was made by a holder of the old key: the base held at least one secret,
/// and every one of them is on the rotated side, not logged as changed
/// there, and opens under the new key to its value under the old one.
/// Anyone can seal a key of their own to the owners' public keys; only a
/// holder of the old key can carry *every* value over. `Err` says which
/// part fails (names only).
pub fn rotation_proof(
    base: &ProtectedFile,
    rotated: &ProtectedFile,
    domain: &str,
    old_sk: &SecretKey,
    new_sk: &SecretKey,
) -> std::result::Result<(), String> {
    let (Some(b), Some(r)) = (base.domains.get(domain), rotated.domains.get(domain)) else {
        return Err(format!("domain {domain} is missing"));
    };
    if b.secrets.is_empty() {
        return Err("the domain held no secret to carry over".into());
    }
    let (_, changed) = logged_rotation(base, rotated, domain);
    for (name, old) in &b.secrets {
        let Some(new) = r.secrets.get(name) else {
            return Err(format!("secret {name} is gone there"));
        };
        if changed.contains(name) {
            return Err(format!("secret {name} was changed there"));
        }
        match (old_sk.unseal(old), new_sk.unseal(new)) {
            (Some(a), Some(b)) if a == b => {}
            _ => return Err(format!("secret {name} does not carry its value over")),
        }
    }
    Ok(())
}

/// Remove, for each text in `drop`, its last `n` occurrences from `log`,
/// in one pass from the end.
fn remove_last_occurrences(
    log: &mut Vec<String>,
    mut drop: std::collections::HashMap<String, usize>,
) {
    if drop.is_empty() {
        return;
    }
    let mut keep = vec![true; log.len()];
    for (i, e) in log.iter().enumerate().rev() {
        if let Some(n) = drop.get_mut(e)
            && *n > 0
        {
            *n -= 1;
            keep[i] = false;
        }
    }
    let mut k = keep.into_iter();
    log.retain(|_| k.next().unwrap_or(true));
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
    keys: Option<Keyring<'_>>,
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
    Ok(merge_opts(
        &b,
        &o,
        &t,
        Options {
            keys,
            marker_size,
            choices: Vec::new(),
            single_parent,
            trust: Vec::new(),
        },
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
