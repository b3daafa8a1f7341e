//! The library's error type.
//!
//! Messages say what failed and where (file line, domain, secret or
//! custodian name), never a secret value or passphrase. The CLI decides
//! exit codes from [`ErrorKind`].

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The protected file is malformed, hostile, or not a protected file.
    InvalidFile,
    /// The file still contains git conflict markers.
    ConflictMarkers,
    /// An operation was refused (unknown domain, duplicate name, last owner...).
    Refused,
    /// Credentials did not match the custodian's key material.
    BadCredentials,
    /// Decryption of stored data failed although credentials matched.
    Decrypt,
    /// Reading or writing a file failed.
    Io,
    /// A git repository could not be read or configured.
    Git,
    /// The agent could not be reached, started or trusted.
    Agent,
}

/// An error from the pprotect library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    line: Option<usize>,
    message: String,
}

impl Error {
    /// A malformed or hostile file, at an optional line.
    pub fn invalid(line: Option<usize>, message: String) -> Self {
        Error {
            kind: ErrorKind::InvalidFile,
            line,
            message,
        }
    }

    /// Unresolved git conflict markers at `line`.
    pub fn conflict_marker(line: usize) -> Self {
        Error {
            kind: ErrorKind::ConflictMarkers,
            line: None,
            message: format!(
                "unresolved merge conflict at line {line}: run `pprotect resolve` to list the conflicts and take a side (editing the blocks by hand can drop the other side's secrets)"
            ),
        }
    }

    /// A refused operation, with pocket_protector's wording.
    pub fn refused(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Refused,
            line: None,
            message: message.into(),
        }
    }

    /// Credentials that do not open a custodian's key.
    pub fn bad_credentials(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::BadCredentials,
            line: None,
            message: message.into(),
        }
    }

    /// Stored ciphertext that does not open.
    pub fn decrypt(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Decrypt,
            line: None,
            message: message.into(),
        }
    }

    /// An I/O failure on `path`.
    pub fn io(what: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Error {
            kind: ErrorKind::Io,
            line: None,
            message: format!("{what} {}: {}", path.display(), strerror(err)),
        }
    }

    /// A git failure: `what` failed, with the underlying error.
    pub fn git(what: impl fmt::Display, err: impl fmt::Display) -> Self {
        Error {
            kind: ErrorKind::Git,
            line: None,
            message: format!("{what}: {err}"),
        }
    }

    /// An agent failure.
    pub fn agent(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Agent,
            line: None,
            message: message.into(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The 1-based line of the file the error is about, if any.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The message without the line prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with a context prefix (such as the file path).
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = match self.line.take() {
            Some(line) => format!("{prefix}: line {line}: {}", self.message),
            None => format!("{prefix}: {}", self.message),
        };
        self
    }
}

/// C's `strerror` text for an I/O error ("No such file or directory"),
/// the wording Python, and so pocket_protector, reports.
pub fn strerror(err: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::NotFound => "No such file or directory".into(),
        K::PermissionDenied => "Permission denied".into(),
        K::IsADirectory => "Is a directory".into(),
        _ => {
            let s = err.to_string();
            // Strip Rust's " (os error N)" suffix.
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
