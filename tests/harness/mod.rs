//! Shared helpers: paths to fixtures, and a sealed environment for running
//! the real `pprotect` binary.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's fixtures folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The Python tool's fixtures.
pub fn py_fixtures() -> PathBuf {
    fixtures().join("pocket_protector-26.4.3")
}
