//! Operations on a protected file, with pocket_protector's semantics, error
//! wording and audit-log texts.
//!
//! Credentialed operations take an [`Unlocked`] custodian: the one Argon2id
//! derivation happens in [`ProtectedFile::unlock`], which checks the
//! credentials with the derived key and keeps that key for the operation.
//! (pocket_protector derives the same key twice to decrypt a domain, and
//! N+2 times to rotate a domain with N owners.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{self, KeyType, Pwdkm, SecretKey};
use crate::error::{Error, Result};
use crate::model::{
    Domain, ProtectedFile, domain_name_problem, is_valid_custodian_name, is_valid_secret_name,
};

/// A custodian whose credentials were verified, holding their derived key
/// (or, through the agent, a handle to the key the agent holds).
#[derive(Debug)]
pub struct Unlocked {
    name: String,
    key: Opener,
    pwdkm: Pwdkm,
}

/// What opens entries sealed to a custodian.
#[derive(Debug)]
enum Opener {
    /// The key, derived in this process.
    Key(SecretKey),
    /// The agent, which holds the key and opens owner entries with it.
    #[cfg(unix)]
    Agent(crate::agent::Client),
}

impl Unlocked {
    /// A custodian whose key the agent holds (matched by name and public
    /// key before this is made).
    #[cfg(unix)]
    pub(crate) fn through_agent(name: &str, pwdkm: Pwdkm, agent: crate::agent::Client) -> Unlocked {
        Unlocked {
            name: name.to_string(),
            key: Opener::Agent(agent),
            pwdkm,
        }
    }

    /// Whether the key is the agent's (no derivation happened here).
    pub fn is_from_agent(&self) -> bool {
        !matches!(self.key, Opener::Key(_))
    }

    /// The key's bytes, when it was derived in this process (to hand to
    /// the agent).
    #[cfg(unix)]
    pub(crate) fn key_bytes(&self) -> Option<zeroize::Zeroizing<[u8; crypto::KEY_SIZE]>> {
        match &self.key {
            Opener::Key(k) => Some(k.to_bytes()),
            Opener::Agent(_) => None,
        }
    }

    /// Open an entry sealed to this custodian.
    fn unseal(&self, sealed: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        match &self.key {
            Opener::Key(k) => k.unseal(sealed),
            #[cfg(unix)]
            Opener::Agent(a) => a.open(&self.name, &self.pwdkm.public_key, sealed),
        }
    }

    /// The custodian's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key material this key was derived from.
    pub fn pwdkm(&self) -> &Pwdkm {
        &self.pwdkm
    }

    /// Whether `file` still holds the key material this key was derived
    /// from (it may have changed since, under a concurrent writer).
    pub fn is_current_in(&self, file: &ProtectedFile) -> bool {
        file.custodians.get(&self.name) == Some(&self.pwdkm)
    }
}

/// Decrypted secrets of one domain, by name. Values are zeroized on drop
/// and redacted in `Debug`.
pub type DecryptedDomain = BTreeMap<String, SecretString>;

/// The current time as an audit-log timestamp, `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn audit_timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_timestamp(secs)
}

/// Format Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parse `YYYY-MM-DDTHH:MM:SSZ` into Unix seconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn known<'a>(what: &str, name: &str, keys: impl Iterator<Item = &'a String>) -> Error {
    let list: Vec<&str> = keys.map(String::as_str).collect();
    Error::refused(format!(
        "no {what} of name {name} (known {what}s are {})",
        list.join(", ")
    ))
}

impl ProtectedFile {
    /// A new file whose log holds `created`.
    pub fn create() -> ProtectedFile {
        let mut f = ProtectedFile::default();
        f.log("created".to_string());
        f
    }

    /// Append a timestamped audit-log entry.
    pub fn log(&mut self, entry: String) {
        self.audit_log
            .push(format!("{} -- {entry}", audit_timestamp()));
    }

    /// A domain by name, or pocket_protector's "no domain of name" error.
    pub fn domain(&self, name: &str) -> Result<&Domain> {
        self.domains
            .get(name)
            .map(|d| &**d)
            .ok_or_else(|| known("domain", name, self.domains.keys()))
    }

    fn domain_mut(&mut self, name: &str) -> Result<&mut Domain> {
        if !self.domains.contains_key(name) {
            return Err(known("domain", name, self.domains.keys()));
        }
        Ok(Arc::make_mut(self.domains.get_mut(name).expect("checked")))
    }

    fn custodian(&self, name: &str) -> Result<&Pwdkm> {
        self.custodians
            .get(name)
            .ok_or_else(|| known("key custodian", name, self.custodians.keys()))
    }

    /// Verify credentials and derive the custodian's key (the one Argon2id
    /// derivation). `None` when the name is unknown or the passphrase wrong;
    /// the caller words the error, as where the credentials came from matters.
    pub fn unlock(&self, name: &str, passphrase: &SecretString) -> Result<Option<Unlocked>> {
        let Some(pwdkm) = self.custodians.get(name) else {
            return Ok(None);
        };
        let key = pwdkm.derive(name, passphrase.expose_secret().as_bytes())?;
        if key.public_key() != pwdkm.public_key {
            return Ok(None);
        }
        Ok(Some(Unlocked {
            name: name.to_string(),
            key: Opener::Key(key),
            pwdkm: pwdkm.clone(),
        }))
    }

    /// Add a key custodian (`created key custodian X` /
    /// `created raw-key custodian X`).
    pub fn add_key_custodian(
        &mut self,
        name: &str,
        passphrase: &SecretString,
        key_type: KeyType,
    ) -> Result<()> {
        self.check_add_key_custodian(name)?;
        let pass = passphrase.expose_secret().as_bytes();
        if key_type == KeyType::Raw && !crypto::is_raw_passphrase(pass) {
            return Err(Error::refused(
                "raw-key passphrase must match P<64 hex chars>P format",
            ));
        }
        let (pwdkm, _key) = Pwdkm::generate(key_type, name, pass)?;
        self.custodians.insert(name.to_string(), pwdkm);
        self.log(match key_type {
            KeyType::Raw => format!("created raw-key custodian {name}"),
            _ => format!("created key custodian {name}"),
        });
        Ok(())
    }

    /// Remove a key custodian and all their ownerships (refused when they
    /// are the last owner of a domain).
    pub fn rm_key_custodian(&mut self, name: &str) -> Result<()> {
        self.custodian(name)?;
        let owned: Vec<String> = self
            .owned_domains(name)
            .into_iter()
            .map(String::from)
            .collect();
        for d in &owned {
            if self.domains[d].owners.len() == 1 {
                return Err(last_owner(name, d));
            }
        }
        for d in &owned {
            Arc::make_mut(self.domains.get_mut(d).expect("owned"))
                .owners
                .remove(name);
        }
        self.custodians.remove(name);
        self.log(format!(
            "removed key custodian {name} (was owner of {})",
            owned.join(", ")
        ));
        Ok(())
    }

    /// Add a domain owned by `owner` (`created domain D with owner X`).
    pub fn add_domain(&mut self, domain: &str, owner: &Unlocked) -> Result<()> {
        self.check_add_domain(domain)?;
        let owner_pk = self.custodian(&owner.name)?.public_key;
        let sk = SecretKey::generate();
        let mut owners = BTreeMap::new();
        owners.insert(
            owner.name.clone(),
            crypto::seal(&owner_pk, &sk.to_bytes()[..]),
        );
        self.domains.insert(
            domain.to_string(),
            Arc::new(Domain {
                public_key: sk.public_key(),
                owners,
                secrets: BTreeMap::new(),
            }),
        );
        self.log(format!("created domain {domain} with owner {}", owner.name));
        Ok(())
    }

    /// Remove a domain and its secrets (`deleted domain D`).
    pub fn rm_domain(&mut self, domain: &str) -> Result<()> {
        self.domain(domain)?;
        self.domains.remove(domain);
        self.log(format!("deleted domain {domain}"));
        Ok(())
    }

    fn seal_secret(&mut self, domain: &str, name: &str, value: &SecretString) -> Result<()> {
        if !is_valid_secret_name(name) {
            return Err(invalid_secret_name(name));
        }
        let d = self.domain_mut(domain)?;
        let sealed = crypto::seal(&d.public_key, value.expose_secret().as_bytes());
        d.secrets.insert(name.to_string(), sealed);
        Ok(())
    }

    /// What [`add_secret`](Self::add_secret) would refuse (a missing
    /// domain, an existing secret, an invalid name), checked before a
    /// value is asked for.
    pub fn check_add_secret(&self, domain: &str, name: &str) -> Result<()> {
        if self.domain(domain)?.secrets.contains_key(name) {
            return Err(Error::refused(format!(
                "secret {name} already exists in {domain}"
            )));
        }
        if !is_valid_secret_name(name) {
            return Err(invalid_secret_name(name));
        }
        Ok(())
    }

    /// What [`update_secret`](Self::update_secret) and
    /// [`rm_secret`](Self::rm_secret) would refuse (a missing domain or
    /// secret), checked before a value is asked for.
    pub fn check_secret_exists(&self, domain: &str, name: &str) -> Result<()> {
        let d = self.domain(domain)?;
        if !d.secrets.contains_key(name) {
            return Err(known("secret", name, d.secrets.keys()));
        }
        Ok(())
    }

    /// What [`add_domain`](Self::add_domain) would refuse, checked before
    /// a key is derived.
    pub fn check_add_domain(&self, domain: &str) -> Result<()> {
        if self.domains.contains_key(domain) {
            return Err(Error::refused(format!(
                "tried to add domain that already exists: {domain}"
            )));
        }
        if let Some(problem) = domain_name_problem(domain) {
            return Err(Error::refused(format!(
                "invalid domain name {domain:?}: it {problem}"
            )));
        }
        Ok(())
    }

    /// What [`add_key_custodian`](Self::add_key_custodian) would refuse
    /// about the name, checked before a passphrase is asked for.
    pub fn check_add_key_custodian(&self, name: &str) -> Result<()> {
        if !is_valid_custodian_name(name) {
            return Err(Error::refused(
                "key custodian names must be non-empty and free of control characters",
            ));
        }
        if self.custodians.contains_key(name) {
            return Err(Error::refused(format!(
                "tried to add key custodian that already exists: {name}"
            )));
        }
        Ok(())
    }

    /// That `name` is a key custodian (pocket_protector's "no key
    /// custodian of name" error otherwise).
    pub fn check_custodian(&self, name: &str) -> Result<()> {
        self.custodian(name).map(|_| ())
    }

    /// That `user` owns `domain`, checked before their key is derived
    /// (nothing is checked for a name that is no custodian: the
    /// credential check words that).
    pub fn check_owner(&self, domain: &str, user: &str) -> Result<()> {
        let d = self.domain(domain)?;
        if self.custodians.contains_key(user) && !d.owners.contains_key(user) {
            return Err(Error::refused(format!(
                "{user} is not an owner of {domain}"
            )));
        }
        Ok(())
    }

    /// What [`add_owner`](Self::add_owner) would refuse about the names,
    /// checked before a key is derived.
    pub fn check_add_owner(&self, domain: &str, new_owner: &str) -> Result<()> {
        self.domain(domain)?;
        self.custodian(new_owner)?;
        if self.domains[domain].owners.contains_key(new_owner) {
            return Err(Error::refused(format!(
                "{new_owner} is already an owner of {domain}"
            )));
        }
        Ok(())
    }

    /// Add a secret that does not exist yet (`added secret S in D`).
    pub fn add_secret(&mut self, domain: &str, name: &str, value: &SecretString) -> Result<()> {
        self.check_add_secret(domain, name)?;
        self.seal_secret(domain, name, value)?;
        self.log(format!("added secret {name} in {domain}"));
        Ok(())
    }

    /// Change an existing secret (`updated secret S in D`).
    pub fn update_secret(&mut self, domain: &str, name: &str, value: &SecretString) -> Result<()> {
        self.check_secret_exists(domain, name)?;
        self.seal_secret(domain, name, value)?;
        self.log(format!("updated secret {name} in {domain}"));
        Ok(())
    }

    /// Add or change a secret (`set secret S in D`).
    pub fn set_secret(&mut self, domain: &str, name: &str, value: &SecretString) -> Result<()> {
        self.seal_secret(domain, name, value)?;
        self.log(format!("set secret {name} in {domain}"));
        Ok(())
    }

    /// Remove a secret (`removed secret S from D`).
    pub fn rm_secret(&mut self, domain: &str, name: &str) -> Result<()> {
        let d = self.domain_mut(domain)?;
        if d.secrets.remove(name).is_none() {
            return Err(known("secret", name, d.secrets.keys()));
        }
        self.log(format!("removed secret {name} from {domain}"));
        Ok(())
    }

    /// Open the domain private key with an owner's key.
    fn domain_key(&self, domain: &str, who: &Unlocked) -> Result<SecretKey> {
        let d = self.domain(domain)?;
        let Some(sealed) = d.owners.get(&who.name) else {
            return Err(Error::refused(format!(
                "{} is not an owner of {domain}",
                who.name
            )));
        };
        let bytes = who.unseal(sealed).ok_or_else(|| {
            Error::decrypt(format!(
                "the key of domain {domain} sealed to {} does not open with their key",
                who.name
            ))
        })?;
        let arr: [u8; crypto::KEY_SIZE] = bytes[..].try_into().map_err(|_| {
            Error::decrypt(format!(
                "the key of domain {domain} sealed to {} has the wrong length",
                who.name
            ))
        })?;
        let sk = SecretKey::from_bytes(arr);
        if sk.public_key() != d.public_key {
            return Err(Error::decrypt(format!(
                "the key of domain {domain} sealed to {} does not match the domain's public key",
                who.name
            )));
        }
        Ok(sk)
    }

    /// Decrypt every secret of a domain.
    pub fn decrypt_domain(&self, domain: &str, who: &Unlocked) -> Result<DecryptedDomain> {
        let sk = self.domain_key(domain, who)?;
        let d = self.domain(domain)?;
        let _span =
            tracing::debug_span!("decrypt_domain", domain, secrets = d.secrets.len()).entered();
        let mut out = BTreeMap::new();
        for (name, sealed) in &d.secrets {
            let plain = sk.unseal(sealed).ok_or_else(|| {
                Error::decrypt(format!("secret {name} in domain {domain} does not decrypt"))
            })?;
            let text = String::from_utf8(plain.to_vec()).map_err(|_| {
                Error::decrypt(format!("secret {name} in domain {domain} is not UTF-8"))
            })?;
            out.insert(name.clone(), SecretString::from(text));
        }
        Ok(out)
    }

    /// Make `new_owner` an owner of `domain`, using an owner's key
    /// (`U added owner X to D`).
    pub fn add_owner(&mut self, domain: &str, new_owner: &str, by: &Unlocked) -> Result<()> {
        self.check_add_owner(domain, new_owner)?;
        let pk = self.custodian(new_owner)?.public_key;
        let sk = self.domain_key(domain, by)?;
        let sealed = crypto::seal(&pk, &sk.to_bytes()[..]);
        self.domain_mut(domain)?
            .owners
            .insert(new_owner.to_string(), sealed);
        self.log(format!("{} added owner {new_owner} to {domain}", by.name));
        Ok(())
    }

    /// Remove an owner (refused for the last one) (`removed owner X from D`).
    pub fn rm_owner(&mut self, domain: &str, owner: &str) -> Result<()> {
        let d = self.domain_mut(domain)?;
        if !d.owners.contains_key(owner) {
            let names: Vec<&str> = d.owners.keys().map(String::as_str).collect();
            return Err(Error::refused(format!(
                "{owner} not an owner of {domain} (owners are {})",
                names.join(", ")
            )));
        }
        if d.owners.len() == 1 {
            return Err(last_owner(owner, domain));
        }
        d.owners.remove(owner);
        self.log(format!("removed owner {owner} from {domain}"));
        Ok(())
    }

    /// Make `new_owner` an owner of every domain `by` owns that they do not
    /// own yet, one audit entry per domain. Returns those domains.
    pub fn migrate_owner(&mut self, new_owner: &str, by: &Unlocked) -> Result<Vec<String>> {
        if !self.custodians.contains_key(new_owner) {
            return Err(Error::refused(format!(
                "no key custodian named {new_owner}"
            )));
        }
        let owned: Vec<String> = self
            .owned_domains(&by.name)
            .into_iter()
            .map(String::from)
            .collect();
        if owned.is_empty() {
            return Err(Error::refused(format!(
                "{} does not own any domains",
                by.name
            )));
        }
        let todo: Vec<String> = owned
            .into_iter()
            .filter(|d| !self.domains[d].owners.contains_key(new_owner))
            .collect();
        for d in &todo {
            self.add_owner(d, new_owner, by)?;
        }
        Ok(todo)
    }

    /// Replace a custodian's key material, re-sealing their domain keys.
    fn replace_custodian(
        &mut self,
        who: &Unlocked,
        new_pass: &SecretString,
        key_type: KeyType,
        action: &str,
    ) -> Result<()> {
        let pass = new_pass.expose_secret().as_bytes();
        if key_type == KeyType::Raw && !crypto::is_raw_passphrase(pass) {
            return Err(Error::refused(
                "raw-key passphrase must match P<64 hex chars>P format",
            ));
        }
        let owned: Vec<String> = self
            .owned_domains(&who.name)
            .into_iter()
            .map(String::from)
            .collect();
        let keys: Vec<(String, SecretKey)> = owned
            .iter()
            .map(|d| Ok((d.clone(), self.domain_key(d, who)?)))
            .collect::<Result<_>>()?;
        let (pwdkm, _) = Pwdkm::generate(key_type, &who.name, pass)?;
        for (d, sk) in &keys {
            let sealed = crypto::seal(&pwdkm.public_key, &sk.to_bytes()[..]);
            Arc::make_mut(self.domains.get_mut(d).expect("owned"))
                .owners
                .insert(who.name.clone(), sealed);
        }
        self.custodians.insert(who.name.clone(), pwdkm);
        self.log(format!(
            "{action} for {} (updated domains -> {})",
            who.name,
            owned.join(", ")
        ));
        Ok(())
    }

    /// Change a custodian's passphrase (hard or fast key)
    /// (`updated key custodian passphrase for X (updated domains -> ...)`).
    pub fn set_key_custodian_passphrase(
        &mut self,
        who: &Unlocked,
        new_pass: &SecretString,
        key_type: KeyType,
    ) -> Result<()> {
        self.replace_custodian(who, new_pass, key_type, "updated key custodian passphrase")
    }

    /// Change a custodian's key type and passphrase
    /// (`rekeyed custodian for X (updated domains -> ...)`).
    pub fn rekey_custodian(
        &mut self,
        who: &Unlocked,
        new_pass: &SecretString,
        key_type: KeyType,
    ) -> Result<()> {
        self.replace_custodian(who, new_pass, key_type, "rekeyed custodian")
    }

    /// Give a domain a new keypair, re-sealing its secrets and owner entries
    /// (`rotated key for domain D`).
    pub fn rotate_domain_key(&mut self, domain: &str, by: &Unlocked) -> Result<()> {
        let values = self.decrypt_domain(domain, by)?;
        let owner_pks: Vec<(String, [u8; crypto::KEY_SIZE])> = self
            .domain(domain)?
            .owners
            .keys()
            .map(|o| Ok((o.clone(), self.custodian(o)?.public_key)))
            .collect::<Result<_>>()?;
        let sk = SecretKey::generate();
        let pk = sk.public_key();
        let key_bytes = sk.to_bytes();
        let d = self.domain_mut(domain)?;
        d.public_key = pk;
        d.secrets = values
            .iter()
            .map(|(n, v)| (n.clone(), crypto::seal(&pk, v.expose_secret().as_bytes())))
            .collect();
        d.owners = owner_pks
            .iter()
            .map(|(o, opk)| (o.clone(), crypto::seal(opk, &key_bytes[..])))
            .collect();
        self.log(format!("rotated key for domain {domain}"));
        Ok(())
    }

    /// Keep the `keep` most recent entries behind a first entry
    /// `truncated N audit log entries`. Returns whether anything changed.
    pub fn truncate_audit_log(&mut self, keep: usize) -> bool {
        let len = self.audit_log.len();
        if len <= keep {
            return false;
        }
        let removed = len - keep;
        let mut log = Vec::with_capacity(keep + 1);
        log.push(format!("truncated {removed} audit log entries"));
        log.extend(self.audit_log.drain(removed..));
        self.audit_log = log;
        true
    }
}

fn invalid_secret_name(name: &str) -> Error {
    Error::refused(format!(
        "valid secret names must begin with a letter, and consist only of ASCII letters, \
         digits, hyphens, and underscores, not: {}",
        py_repr(name)
    ))
}

fn last_owner(owner: &str, domain: &str) -> Error {
    Error::refused(format!(
        "cannot delete last owner {owner} from {domain} (secrets would be irretrievable)"
    ))
}

/// Open a domain private key sealed to `who` (an owner entry), checking
/// nothing else; `None` when it does not open or has the wrong length.
pub fn open_sealed_key(who: &Unlocked, sealed: &[u8]) -> Option<SecretKey> {
    let bytes = who.unseal(sealed)?;
    let arr: [u8; crypto::KEY_SIZE] = bytes[..].try_into().ok()?;
    Some(SecretKey::from_bytes(arr))
}

/// Python's `repr()` of a string, for messages that quote names the way
/// pocket_protector does.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(1_795_857_114), "2026-11-28T09:11:54Z");
        assert_eq!(parse_timestamp("2026-11-28T09:11:54Z"), Some(1_795_857_114));
        assert_eq!(parse_timestamp("2026-11-28 09:11:54"), None);
    }

    #[test]
    fn repr_like_python() {
        assert_eq!(py_repr("a b"), "'a b'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\nb"), "'a\\nb'");
    }

    fn raw_pass() -> SecretString {
        SecretString::from(format!("P{}P", "ab".repeat(32)))
    }

    #[test]
    fn lifecycle_with_raw_keys() {
        let mut f = ProtectedFile::create();
        f.add_key_custodian("a@x", &raw_pass(), KeyType::Raw)
            .unwrap();
        f.add_key_custodian("b@x", &raw_pass(), KeyType::Raw)
            .unwrap();
        let a = f.unlock("a@x", &raw_pass()).unwrap().unwrap();
        assert!(
            f.unlock("a@x", &SecretString::from("nope".to_string()))
                .unwrap()
                .is_none()
        );
        assert!(f.unlock("zz", &raw_pass()).unwrap().is_none());
        f.add_domain("dev", &a).unwrap();
        f.add_secret("dev", "k", &SecretString::from("v".to_string()))
            .unwrap();
        assert!(
            f.add_secret("dev", "k", &SecretString::from("v".to_string()))
                .is_err()
        );
        assert!(
            f.add_secret("dev", "9k", &SecretString::from("v".to_string()))
                .is_err()
        );
        f.add_owner("dev", "b@x", &a).unwrap();
        assert!(f.add_owner("dev", "b@x", &a).is_err());
        let b = f.unlock("b@x", &raw_pass()).unwrap().unwrap();
        assert_eq!(
            f.decrypt_domain("dev", &b).unwrap()["k"].expose_secret(),
            "v"
        );
        f.rotate_domain_key("dev", &b).unwrap();
        assert_eq!(
            f.decrypt_domain("dev", &a).unwrap()["k"].expose_secret(),
            "v"
        );
        f.rm_owner("dev", "a@x").unwrap();
        assert!(
            f.rm_owner("dev", "b@x")
                .unwrap_err()
                .message()
                .contains("last owner")
        );
        assert!(f.rm_key_custodian("b@x").is_err());
        f.rm_key_custodian("a@x").unwrap();
        let text = f.to_yaml_string();
        let g = ProtectedFile::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(f, g);
        assert!(f.truncate_audit_log(2));
        assert_eq!(f.audit_log.len(), 3);
        assert!(f.audit_log[0].starts_with("truncated "));
    }
}
