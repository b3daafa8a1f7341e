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
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .env("PPROTECT_USER", user)
        // A terminal is the command's to use (a password manager asking to
        // unlock); piped input is pprotect's own (prompt answers), so the
        // command gets none of it.
        .stdin(if on_terminal {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(if show_stderr {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    // Off a terminal the command gets a process group of its own, so a
    // timeout ends everything it started. (On a terminal it stays in the
    // foreground group, where it may read the terminal; Ctrl-C reaches
    // it.)
    #[cfg(unix)]
    if !on_terminal {
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("could not start: {}", crate::error::strerror(&e))))?;
    let group = !on_terminal;
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Zeroizing::new(Vec::new());
        let _ = (&mut stdout).take(MAX_OUTPUT).read_to_end(&mut buf);
        // Drain the rest so the command never blocks on a full pipe.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        let _ = tx.send(buf);
    });
    let timed_out = |child: &mut std::process::Child| {
        end(child, group);
        fail(format!(
            "timed out after {} s (set {TIMEOUT_ENV} to wait longer)",
            limit.as_secs_f64()
        ))
    };
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= limit => return Err(timed_out(&mut child)),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(fail(format!("failed: {}", crate::error::strerror(&e)))),
        }
    };
    // The output ends when every process holding the pipe is done: a
    // background child of the command must not hold pprotect past the
    // limit either. (On a timeout the reader is left behind, not waited
    // for.)
    let out = match rx.recv_timeout(limit.saturating_sub(start.elapsed())) {
        Ok(out) => out,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Err(timed_out(&mut child)),
        Err(_) => return Err(fail("could not be read".into())),
    };
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

/// End a timed-out command: its whole process group when it has one (sh
/// and everything it started), else sh itself.
fn end(child: &mut std::process::Child, group: bool) {
    #[cfg(unix)]
    if group
        && let Ok(id) = i32::try_from(child.id())
        && let Some(pid) = rustix::process::Pid::from_raw(id)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    let _ = group;
    let _ = child.kill();
    let _ = child.wait();
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
    // A command from a repository git would not use (another user's) is
    // never run: only global and system config count there.
    if let Some(note) = repo.untrusted_note("pprotect.passphraseCommand") {
        eprintln!("pprotect: {note}");
    }
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

    /// A timeout ends the command's children too, and pprotect does not
    /// wait for output they hold open.
    #[test]
    fn a_timeout_ends_the_whole_command() {
        let start = Instant::now();
        let e = run("sleep 10; echo pw", "a", Duration::from_millis(300), false).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        let e = run(
            "(sleep 10; echo late) & echo pw",
            "a",
            Duration::from_millis(300),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}
