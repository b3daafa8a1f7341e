//! `pprotect textconv`: a protected file as one line per fact, for
//! `git diff`, `git log -p` and `git show`.
//!
//! Names and short fingerprints only: no base64, no plaintext, and the
//! same output with or without credentials, so git may cache it
//! (`diff.pprotect.cachetextconv`). A re-sealed value (changed secret,
//! rotation, passphrase change) shows as its line changing.

use sha2::{Digest, Sha256};

use crate::crypto::KeyType;
use crate::model::{ProtectedFile, is_display_unsafe};

/// A short, stable fingerprint of some bytes: 12 hex digits of SHA-256.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Replace control characters so names cannot drive a terminal.
pub fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_display_unsafe) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| if is_display_unsafe(c) { '\u{FFFD}' } else { c })
            .collect(),
    )
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
    use std::fmt::Write as _;
    let mut out = String::with_capacity(80 * (file.domains.len() * 4 + file.audit_log.len() + 8));
    let fp = |bytes: &[u8], out: &mut String| {
        let digest = Sha256::digest(bytes);
        for b in &digest[..6] {
            let _ = write!(out, "{b:02x}");
        }
    };
    for (name, d) in &file.domains {
        let name = sanitize(name);
        for (secret, sealed) in &d.secrets {
            let _ = write!(out, "domain {name}: secret {} (sealed ", sanitize(secret));
            fp(sealed, &mut out);
            out.push_str(")\n");
        }
        let _ = write!(out, "domain {name}: public key ");
        fp(&d.public_key, &mut out);
        out.push('\n');
        for (owner, sealed) in &d.owners {
            let _ = write!(out, "domain {name}: owner {} (sealed ", sanitize(owner));
            fp(sealed, &mut out);
            out.push_str(")\n");
        }
    }
    for (name, p) in &file.custodians {
        let _ = write!(
            out,
            "custodian {}: {}, public key ",
            sanitize(name),
            describe_key_type(p.key_type)
        );
        fp(&p.public_key, &mut out);
        out.push('\n');
    }
    for entry in &file.audit_log {
        out.push_str("audit: ");
        out.push_str(&sanitize(entry));
        out.push('\n');
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
