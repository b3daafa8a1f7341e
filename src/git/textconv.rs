//! `pprotect textconv`: a protected file as one line per fact, for
//! `git diff`, `git log -p` and `git show`.
//!
//! Names and short fingerprints only: no base64, no plaintext, and the
//! same output with or without credentials, so git may cache it
//! (`diff.pprotect.cachetextconv`). A re-sealed value (changed secret,
//! rotation, passphrase change) shows as its line changing.

use sha2::{Digest, Sha256};

use crate::crypto::KeyType;
use crate::model::{ProtectedFile, is_control};

/// A short, stable fingerprint of some bytes: 12 hex digits of SHA-256.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Replace control characters so names cannot drive a terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if is_control(c) { '\u{FFFD}' } else { c })
        .collect()
}

/// Describe a key type the way textconv prints it.
pub fn describe_key_type(kt: KeyType) -> String {
    match kt {
        KeyType::Hard => "hard key".to_string(),
        KeyType::Costed { opslimit, memlimit } => format!(
            "fast key (opslimit {opslimit}, memlimit {} MiB)",
            memlimit / (1024 * 1024)
        ),
        KeyType::Raw => "raw key".to_string(),
    }
}

/// Render a parsed file, in file order.
pub fn render(file: &ProtectedFile) -> String {
    let mut out = String::with_capacity(64 * (file.domains.len() * 4 + file.audit_log.len() + 8));
    for (name, d) in &file.domains {
        let name = sanitize(name);
        for (secret, sealed) in &d.secrets {
            out.push_str(&format!(
                "domain {name}: secret {} (sealed {})\n",
                sanitize(secret),
                fingerprint(sealed)
            ));
        }
        out.push_str(&format!(
            "domain {name}: public key {}\n",
            fingerprint(&d.public_key)
        ));
        for (owner, sealed) in &d.owners {
            out.push_str(&format!(
                "domain {name}: owner {} (sealed {})\n",
                sanitize(owner),
                fingerprint(sealed)
            ));
        }
    }
    for (name, p) in &file.custodians {
        out.push_str(&format!(
            "custodian {}: {}, public key {}\n",
            sanitize(name),
            describe_key_type(p.key_type),
            fingerprint(&p.public_key)
        ));
    }
    for entry in &file.audit_log {
        out.push_str(&format!("audit: {}\n", sanitize(entry)));
    }
    out
}

/// Render raw file bytes. A file that does not parse (mid-conflict, hand
/// broken) still renders: a warning line, then its text.
pub fn render_bytes(bytes: &[u8]) -> String {
    match ProtectedFile::from_bytes(bytes) {
        Ok(file) => render(&file),
        Err(e) => {
            let mut out = format!(
                "pprotect textconv: warning: not a valid protected file ({}); showing it as text\n",
                sanitize(&e.to_string())
            );
            out.push_str(&String::from_utf8_lossy(bytes));
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_file_still_renders() {
        let out = render_bytes(b"<<<<<<< ours\nx\n");
        assert!(out.starts_with("pprotect textconv: warning: "));
        assert!(out.ends_with("<<<<<<< ours\nx\n"));
    }

    #[test]
    fn names_not_blobs() {
        let text = "key-custodians: {}\naudit-log:\n- 2026-11-28T09:12:00Z -- created\n";
        let out = render_bytes(text.as_bytes());
        assert_eq!(out, "audit: 2026-11-28T09:12:00Z -- created\n");
    }
}
