//! Which key each sealed entry is sealed to, as far as history tells.
//!
//! A sealed box cannot say whom it is sealed to without the private key,
//! but it is randomized: sealing twice never gives the same bytes. So a
//! ciphertext that appears under one public key of its domain and later
//! under another was never re-sealed: it is still sealed to the first key,
//! and nobody holding the second can open it. The same holds for owner
//! entries, which hold a domain key sealed to a custodian: one that
//! appears again after its domain was rotated or its custodian's key
//! changed holds the old domain key, or is sealed to the old custodian key.
//!
//! `check-audit-log` ([`crate::git::history`]) and `pre-commit` use this to
//! find such entries without any key.

use std::collections::{HashMap, HashSet};

use crate::model::{Domain, ProtectedFile};

/// A short identity for a ciphertext or key: its first 16 bytes. A sealed
/// box starts with the 32-byte ephemeral public key drawn for that one
/// sealing, and keys are random, so no hashing is needed.
pub type Digest16 = [u8; 16];

fn id(bytes: &[u8]) -> Digest16 {
    let mut out = [0u8; 16];
    let n = bytes.len().min(16);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// One sealed entry of a version, with the keys it is sealed under there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealing {
    /// The domain.
    pub domain: String,
    /// The secret's or owner's name.
    pub name: String,
    /// Whether it is an owner entry (else a secret).
    pub owner: bool,
    /// The ciphertext's digest.
    pub cipher: Digest16,
    /// The domain public key's digest in that version.
    pub domain_key: Digest16,
    /// For an owner entry: the custodian key material's digest there.
    pub custodian_key: Option<Digest16>,
}

impl Sealing {
    /// Whether `self`, the same ciphertext as `first`, is under other keys.
    pub fn keys_differ(&self, first: &Sealing) -> bool {
        self.domain != first.domain
            || self.domain_key != first.domain_key
            || (self.owner && self.custodian_key != first.custodian_key)
    }

    /// What a stale entry is, for a message: "secret NAME of domain D is
    /// sealed to a previous key of D", or the owner's equivalent.
    pub fn describe_stale(&self, first: &Sealing) -> String {
        let (d, n) = (&self.domain, &self.name);
        if self.domain != first.domain {
            let what = if self.owner { "owner entry" } else { "secret" };
            let fd = &first.domain;
            format!("{what} {n} of domain {d} is sealed to the key of domain {fd}")
        } else if !self.owner {
            format!("secret {n} of domain {d} is sealed to a previous key of {d}")
        } else if self.domain_key != first.domain_key {
            format!("owner entry {n} of domain {d} holds a previous key of {d}")
        } else {
            format!("owner entry {n} of domain {d} is sealed to a previous key of custodian {n}")
        }
    }
}

/// Every sealed entry of `f`.
pub fn sealings(f: &ProtectedFile) -> Vec<Sealing> {
    let mut out = Vec::new();
    for (dname, d) in &f.domains {
        domain_sealings(f, dname, d, &mut out);
    }
    out
}

fn domain_sealings(f: &ProtectedFile, dname: &str, d: &Domain, out: &mut Vec<Sealing>) {
    let dk = id(&d.public_key);
    for (s, v) in &d.secrets {
        out.push(Sealing {
            domain: dname.to_string(),
            name: s.clone(),
            owner: false,
            cipher: id(v),
            domain_key: dk,
            custodian_key: None,
        });
    }
    for (o, v) in &d.owners {
        out.push(Sealing {
            domain: dname.to_string(),
            name: o.clone(),
            owner: true,
            cipher: id(v),
            domain_key: dk,
            custodian_key: f.custodians.get(o).map(|p| id(&p.public_key)),
        });
    }
}

/// The entries of `file` whose ciphertext appears in `reference` under
/// other keys (a previous key of its domain, or of its custodian): each
/// with the reference's sealing.
pub fn stale_against(file: &ProtectedFile, reference: &ProtectedFile) -> Vec<(Sealing, Sealing)> {
    let known: HashMap<Digest16, Sealing> = sealings(reference)
        .into_iter()
        .map(|s| (s.cipher, s))
        .collect();
    sealings(file)
        .into_iter()
        .filter_map(|s| {
            let first = known.get(&s.cipher)?;
            s.keys_differ(first).then(|| (s, first.clone()))
        })
        .collect()
}

/// The sealings of `new` that no parent holds under the same keys: what
/// this version introduced (a fresh seal, or a ciphertext moved under
/// other keys). A domain a parent holds identically (its owners'
/// custodian keys unchanged) introduces nothing, so an ordinary commit
/// costs a comparison per domain.
pub fn introduced(new: &ProtectedFile, parents: &[&ProtectedFile]) -> Vec<Sealing> {
    let mut out = Vec::new();
    let same_custodians = |p: &ProtectedFile, d: &Domain| {
        d.owners.keys().all(|o| {
            p.custodians.get(o).map(|x| x.public_key) == new.custodians.get(o).map(|x| x.public_key)
        })
    };
    for (dname, d) in &new.domains {
        if parents
            .iter()
            .any(|p| p.domains.get(dname) == Some(d) && same_custodians(p, d))
        {
            continue;
        }
        // What the parents hold in this domain, under which keys.
        let mut have: HashSet<(Digest16, Digest16, Option<Digest16>)> = HashSet::new();
        for p in parents {
            if let Some(pd) = p.domains.get(dname) {
                let mut v = Vec::new();
                domain_sealings(p, dname, pd, &mut v);
                have.extend(
                    v.into_iter()
                        .map(|s| (s.cipher, s.domain_key, s.custodian_key)),
                );
            }
        }
        let mut here = Vec::new();
        domain_sealings(new, dname, d, &mut here);
        out.extend(
            here.into_iter()
                .filter(|s| !have.contains(&(s.cipher, s.domain_key, s.custodian_key))),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyType;
    use secrecy::SecretString;

    const RAW: &str = "P0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefP";

    #[test]
    fn a_secret_kept_across_a_rotation_is_stale() {
        let pass = SecretString::from(RAW.to_string());
        let mut f = ProtectedFile::create();
        f.add_key_custodian("c@x", &pass, KeyType::Raw).unwrap();
        let who = f.unlock("c@x", &pass).unwrap().unwrap();
        f.add_domain("dev", &who).unwrap();
        f.add_secret("dev", "db", &SecretString::from("v".to_string()))
            .unwrap();
        let before = f.clone();
        f.rotate_domain_key("dev", &who).unwrap();
        assert!(stale_against(&f, &before).is_empty());
        // Put the pre-rotation ciphertext back by hand.
        let old = before.domains["dev"].secrets["db"].clone();
        std::sync::Arc::make_mut(f.domains.get_mut("dev").unwrap())
            .secrets
            .insert("db".into(), old);
        let stale = stale_against(&f, &before);
        assert_eq!(stale.len(), 1);
        assert_eq!(
            stale[0].0.describe_stale(&stale[0].1),
            "secret db of domain dev is sealed to a previous key of dev"
        );
        assert_eq!(
            introduced(&f, &[&before])
                .iter()
                .filter(|s| s.cipher == stale[0].0.cipher)
                .count(),
            1
        );
    }
}
