//! Passphrases from a command: a key-management system, a password
//! manager or a keychain (`aws secretsmanager get-secret-value ...`,
//! `op read ...`, `security find-generic-password -w ...`).
//!
//! The command runs through `sh -c` with the custodian's email in
//! `PPROTECT_USER`; its standard output, with one trailing newline
//! stripped, is the passphrase. A failing command, a timeout or empty
//! output is an error that names the command, never its output, and no
//! other source is tried instead.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The environment variable that sets the timeout, in seconds.
pub const TIMEOUT_ENV: &str = "PPROTECT_PASSPHRASE_CMD_TIMEOUT";
/// The default timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a command's output read as a passphrase.
const MAX_OUTPUT: u64 = 64 * 1024;

/// The timeout from [`TIMEOUT_ENV`], else [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

/// Run `cmd` for custodian `user` and return the passphrase it prints.
/// `show_stderr`: let the command talk to the terminal on stderr (a
/// password manager asking to unlock); otherwise its stderr is discarded.
pub fn run(cmd: &str, user: &str, limit: Duration, show_stderr: bool) -> Result<SecretString> {
    let fail = |why: String| {
        Error::refused(format!(
            "passphrase command `{cmd}` {why}; no other passphrase source was tried"
        ))
    };
    let _span = tracing::debug_span!("passphrase_command").entered();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("PPROTECT_USER", user)
        // A terminal is the command's to use (a password manager asking to
        // unlock); piped input is pprotect's own (prompt answers), so the
        // command gets none of it.
        .stdin(if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(if show_stderr {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .map_err(|e| fail(format!("could not start: {}", crate::error::strerror(&e))))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        let _ = (&mut stdout).take(MAX_OUTPUT).read_to_end(&mut buf);
        // Drain the rest so the command never blocks on a full pipe.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        buf
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(fail(format!(
                    "timed out after {} s (set {TIMEOUT_ENV} to wait longer)",
                    limit.as_secs_f64()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(fail(format!("failed: {}", crate::error::strerror(&e)))),
        }
    };
    let out = reader
        .join()
        .map_err(|_| fail("could not be read".into()))?;
    if !status.success() {
        return Err(fail(match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".into(),
        }));
    }
    let mut text = Zeroizing::new(
        String::from_utf8(out.to_vec())
            .map_err(|_| fail("printed something that is not UTF-8".into()))?,
    );
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(fail("printed nothing".into()));
    }
    Ok(SecretString::from(text.to_string()))
}

/// The passphrase command configured outside the command line:
/// `<PREFIX>_PASSPHRASE_CMD` (unless `ignore_env`), else git config
/// `pprotect.passphraseCommand` (this repository's, or the global one).
/// Returns the command and where it came from.
pub fn configured(prefix: &str, ignore_env: bool) -> Option<(String, String)> {
    let var = format!("{prefix}_PASSPHRASE_CMD");
    if !ignore_env
        && let Ok(c) = std::env::var(&var)
        && !c.trim().is_empty()
    {
        return Some((c, format!("env var: {var}")));
    }
    let cwd = std::env::current_dir().ok()?;
    let repo = crate::git::repo::Repo::discover(&cwd).ok()?;
    repo.config_string("pprotect.passphraseCommand")
        .filter(|c| !c.trim().is_empty())
        .map(|c| (c, "git config pprotect.passphraseCommand".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn output_status_timeout_and_empty() {
        let t = Duration::from_secs(5);
        let p = run("printf 'pw-%s\\n' \"$PPROTECT_USER\"", "a@x", t, false).unwrap();
        assert_eq!(p.expose_secret(), "pw-a@x");
        // Only one trailing newline is stripped.
        let p = run("printf 'x\\n\\n'", "a", t, false).unwrap();
        assert_eq!(p.expose_secret(), "x\n");
        let e = run("printf 'X%sY' middle; exit 3", "a", t, false).unwrap_err();
        assert!(e.to_string().contains("exited with status 3"), "{e}");
        assert!(!e.to_string().contains("XmiddleY"), "{e}");
        let e = run("true", "a", t, false).unwrap_err();
        assert!(e.to_string().contains("printed nothing"));
        let e = run("sleep 5", "a", Duration::from_millis(200), false).unwrap_err();
        assert!(e.to_string().contains("timed out"));
    }
}
