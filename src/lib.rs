// `unsafe` only in `crypto::sodium`, the libsodium FFI call, and in
// `agent`, locking the key memory (mlock).
#![deny(unsafe_code)]
#![deny(missing_docs)]
//! # pprotect
//!
//! People-centric, serverless secret management in a `protected.yaml`
//! beside your code, byte-compatible with pocket_protector 26.4.3.
//!
//! A file holds *domains* (dev, prod, ...). Each domain has an X25519
//! keypair: anyone can add a secret with the public key; the private key is
//! sealed to each *owner*, a key custodian whose key comes from their
//! passphrase. Only owners read.
//!
//! Applications read their secrets at start-up without shelling out:
//!
//! ```
//! use pprotect::{Creds, KeyFile, KeyType};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("protected.yaml");
//! // A raw-key custodian: no Argon2 derivation, for the example's speed.
//! let pass = format!("P{}P", "0123456789abcdef".repeat(4));
//! let creds = Creds::new("alice@example.com", pass);
//! let mut kf = KeyFile::create();
//! kf.add_key_custodian(&creds, KeyType::Raw).unwrap();
//! kf.add_domain("prod", &creds).unwrap();
//! kf.add_secret("prod", "db-password", "hunter2").unwrap();
//! kf.write(&path).unwrap();
//!
//! let kf = KeyFile::open(&path).unwrap();
//! let secrets = kf.decrypt_domain("prod", &creds).unwrap();
//! assert_eq!(secrets.get("db-password"), Some("hunter2"));
//! ```
//!
//! [`Creds::from_env`] reads `PPROTECT_USER` and `PPROTECT_PASSPHRASE` (or
//! another prefix) as the command-line tool does.

#[cfg(unix)]
pub mod agent;
pub mod api;
pub mod audit;
pub mod codec;
pub mod crypto;
pub mod envnames;
pub mod error;
pub mod git;
pub mod import;
pub mod json;
pub mod model;
pub mod ops;
pub mod passcmd;
pub mod provenance;
pub mod store;

pub use api::{Creds, Decrypted, KeyFile};
pub use crypto::KeyType;
pub use error::{Error, ErrorKind, Result};
pub use model::ProtectedFile;
