//! A small, high-level API for applications: open a file, take
//! credentials, decrypt a domain, add or update a secret.

use std::collections::BTreeMap;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::KeyType;
use crate::error::{Error, Result};
use crate::model::ProtectedFile;
use crate::ops::Unlocked;
use crate::store;

/// A custodian's credentials. The passphrase is zeroized on drop and
/// redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct Creds {
    name: String,
    passphrase: SecretString,
}

impl Creds {
    /// Credentials from a name and passphrase.
    pub fn new(name: impl Into<String>, passphrase: impl Into<String>) -> Creds {
        Creds {
            name: name.into(),
            passphrase: SecretString::from(passphrase.into()),
        }
    }

    /// Credentials from `<PREFIX>_USER` and `<PREFIX>_PASSPHRASE`; the
    /// prefix defaults to `PPROTECT_ENV_PREFIX`, else `PPROTECT`. Unset
    /// variables read as empty strings.
    pub fn from_env(prefix: Option<&str>) -> Creds {
        let prefix = prefix
            .map(str::to_string)
            .or_else(|| std::env::var("PPROTECT_ENV_PREFIX").ok())
            .unwrap_or_else(|| "PPROTECT".to_string());
        Creds::new(
            std::env::var(format!("{prefix}_USER")).unwrap_or_default(),
            std::env::var(format!("{prefix}_PASSPHRASE")).unwrap_or_default(),
        )
    }

    /// The custodian name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The passphrase, kept secret.
    pub fn passphrase(&self) -> &SecretString {
        &self.passphrase
    }
}

/// Decrypted secrets of a domain. Values are zeroized on drop and never
/// printed by `Debug`.
#[derive(Debug)]
pub struct Decrypted(BTreeMap<String, SecretString>);

impl Decrypted {
    /// One secret's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.expose_secret())
    }

    /// Secret names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The underlying map.
    pub fn into_inner(self) -> BTreeMap<String, SecretString> {
        self.0
    }
}

/// A protected file in memory.
#[derive(Debug, Clone)]
pub struct KeyFile {
    file: ProtectedFile,
}

impl KeyFile {
    /// A new, empty file (its log says `created`).
    pub fn create() -> KeyFile {
        KeyFile {
            file: ProtectedFile::create(),
        }
    }

    /// Read and validate a file.
    pub fn open(path: impl AsRef<Path>) -> Result<KeyFile> {
        Ok(KeyFile {
            file: store::load(path.as_ref())?,
        })
    }

    /// Write the file atomically, in pocket_protector's exact format.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        store::write_atomic(path.as_ref(), self.file.to_yaml_string().as_bytes())
    }

    /// The underlying model.
    pub fn file(&self) -> &ProtectedFile {
        &self.file
    }

    /// Mutable access to the underlying model.
    pub fn file_mut(&mut self) -> &mut ProtectedFile {
        &mut self.file
    }

    fn unlock(&self, creds: &Creds) -> Result<Unlocked> {
        self.file
            .unlock(&creds.name, &creds.passphrase)?
            .ok_or_else(|| {
                Error::bad_credentials(format!(
                    "invalid user email or passphrase for {}",
                    creds.name
                ))
            })
    }

    /// Decrypt all secrets of `domain` with an owner's credentials.
    pub fn decrypt_domain(&self, domain: &str, creds: &Creds) -> Result<Decrypted> {
        let who = self.unlock(creds)?;
        Ok(Decrypted(self.file.decrypt_domain(domain, &who)?))
    }

    /// Add a secret that does not exist yet. Needs no credentials.
    pub fn add_secret(&mut self, domain: &str, name: &str, value: &str) -> Result<()> {
        self.file
            .add_secret(domain, name, &SecretString::from(value.to_string()))
    }

    /// Change an existing secret. Needs no credentials.
    pub fn update_secret(&mut self, domain: &str, name: &str, value: &str) -> Result<()> {
        self.file
            .update_secret(domain, name, &SecretString::from(value.to_string()))
    }

    /// Add a key custodian.
    pub fn add_key_custodian(&mut self, creds: &Creds, key_type: KeyType) -> Result<()> {
        self.file
            .add_key_custodian(&creds.name, &creds.passphrase, key_type)
    }

    /// Add a domain owned by the custodian with these credentials.
    pub fn add_domain(&mut self, domain: &str, creds: &Creds) -> Result<()> {
        let who = self.unlock(creds)?;
        self.file.add_domain(domain, &who)
    }
}
