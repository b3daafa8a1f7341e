//! Credential resolution, in pocket_protector's order and wording: the
//! `--user` flag, then `<PREFIX>_USER` / `<PREFIX>_PASSPHRASE` (unless
//! `--ignore-env`), then prompts (unless `--non-interactive`); a
//! `--passphrase-file` is read first and stripped.

use std::path::Path;

use pprotect::ProtectedFile;
use pprotect::ops::Unlocked;
use secrecy::{ExposeSecret, SecretString};

use super::term;
use super::{Cli, Fail};

/// Where each credential came from, for the error message.
struct Sourced {
    user: String,
    user_source: Option<String>,
    pass: SecretString,
    pass_source: Option<String>,
    /// The passphrase was typed at a terminal: a wrong one is asked again.
    typed: bool,
}

/// How a prompt's answer is named in a credential error: typed at a
/// terminal, or read from piped stdin (pocket_protector's wording).
fn prompt_source() -> String {
    if term::stdin_is_tty() {
        "typed at the prompt".to_string()
    } else {
        "from stdin".to_string()
    }
}

/// How many passphrases a terminal user may type before the command fails.
const TRIES: usize = 3;

/// Credentials gathered (flags, environment, prompts, a passphrase
/// command) but not yet verified: the command checks names and structure
/// before the one key derivation.
pub struct Pending(Sourced);

impl Pending {
    /// The user the credentials name (empty when none was given).
    pub fn user(&self) -> &str {
        &self.0.user
    }

    /// Verify against `file` (one key derivation; up to three passphrases
    /// when typed at a terminal).
    pub fn verify(self, file: &ProtectedFile) -> Result<Unlocked, Fail> {
        verify(file, self.0)
    }
}

/// Absolute, lexically normalized path (Python's `os.path.abspath`).
pub fn abspath(p: &Path) -> std::path::PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = std::path::PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Resolve credentials and verify them against `file` (one key derivation).
pub fn get(cli: &Cli, file: &ProtectedFile, display_path: &str) -> Result<Unlocked, Fail> {
    gather(cli, display_path)?.verify(file)
}

/// Resolve credentials (prompting for what is missing) without verifying
/// them.
pub fn gather(cli: &Cli, display_path: &str) -> Result<Pending, Fail> {
    let interactive = !cli.non_interactive;
    let check_env = !cli.ignore_env;
    if !interactive && !check_env && cli.passphrase_file.is_none() {
        return Err(Fail::msg(
            2,
            "--non-interactive with --ignore-env requires --passphrase-file (and --user) to supply credentials",
        ));
    }
    let user_var = format!("{}_USER", cli.env_prefix);
    let pass_var = format!("{}_PASSPHRASE", cli.env_prefix);
    let mut user = cli.user.clone();
    let mut user_source = "from argument".to_string();
    let mut typed = false;
    let mut pass: Option<SecretString> = None;
    let mut pass_source: Option<String> = None;
    // Passphrase sources, first found wins: --passphrase-file,
    // --passphrase-cmd, <PREFIX>_PASSPHRASE, <PREFIX>_PASSPHRASE_CMD, git
    // config pprotect.passphraseCommand, then the prompt.
    let mut cmd: Option<(String, String)> = None;
    if let Some(pf) = &cli.passphrase_file {
        let (p, abs) = read_passphrase_file(pf, 1)?;
        pass = Some(p);
        pass_source = Some(format!("from passphrase file: {}", abs.display()));
    } else if let Some(c) = &cli.passphrase_cmd {
        cmd = Some((c.clone(), "--passphrase-cmd".to_string()));
    }
    if check_env {
        if user.is_none() {
            user = std::env::var(&user_var).ok();
            user_source = format!("from env var: {user_var}");
        }
        if pass.is_none() && cmd.is_none() {
            pass = std::env::var(&pass_var).ok().map(SecretString::from);
            pass_source = Some(format!("from env var: {pass_var}"));
        }
    }
    if pass.as_ref().is_none_or(|p| p.expose_secret().is_empty()) && cmd.is_none() {
        cmd = pprotect::passcmd::configured(&cli.env_prefix, cli.ignore_env);
        if cmd.is_some() {
            pass = None;
        }
    }
    if interactive {
        match (&user, &pass) {
            (None, _) => term::errln(&format!("Verify credentials for {display_path}")),
            (Some(u), None) => term::errln(&format!(
                "Verify passphrase for {display_path} (Using user {u} {user_source})"
            )),
            _ => {}
        }
        if user.is_none() {
            user = Some(term::prompt("User email: ")?);
            user_source = prompt_source();
        }
        if pass.is_none() && cmd.is_none() {
            pass = Some(term::prompt_secret("Passphrase: ", false)?);
            pass_source = Some(prompt_source());
            typed = term::stdin_is_tty();
        }
    }
    if let Some((command, source)) = cmd {
        let who = user.clone().unwrap_or_default();
        pass = Some(run_passphrase_command(&command, &who)?);
        pass_source = Some(format!("from passphrase command from {source}"));
    }
    Ok(Pending(Sourced {
        user: user.unwrap_or_default(),
        user_source: Some(user_source),
        pass: pass.unwrap_or_else(|| SecretString::from(String::new())),
        pass_source,
        typed,
    }))
}

/// Read a passphrase file (stripped, as pocket_protector does). Errors
/// exit with `code` and name the file, never its contents.
fn read_passphrase_file(pf: &Path, code: i32) -> Result<(SecretString, std::path::PathBuf), Fail> {
    let abs = abspath(pf);
    let bytes = zeroize::Zeroizing::new(std::fs::read(&abs).map_err(|e| {
        Fail::msg(
            code,
            format!(
                "{} while reading passphrase from file at \"{}\"",
                pprotect::error::strerror(&e),
                abs.display()
            ),
        )
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Fail::msg(
            code,
            format!("passphrase file at \"{}\" is not UTF-8", abs.display()),
        )
    })?;
    Ok((SecretString::from(text.trim().to_string()), abs))
}

/// Verify explicit credentials (no sources in the message), as
/// `set-key-custodian-passphrase` and `rekey-custodian` do; `typed`: the
/// passphrase came from a terminal (a wrong one is asked again).
pub fn verify_plain(
    file: &ProtectedFile,
    user: String,
    pass: SecretString,
    typed: bool,
) -> Result<Unlocked, Fail> {
    verify(
        file,
        Sourced {
            user,
            user_source: None,
            pass,
            pass_source: None,
            typed,
        },
    )
}

fn verify(file: &ProtectedFile, mut c: Sourced) -> Result<Unlocked, Fail> {
    // A terminal user who mistypes gets three tries, as sudo and ssh give;
    // only a known custodian's passphrase is asked again.
    let tries = if c.typed && file.custodians.contains_key(&c.user) {
        TRIES
    } else {
        1
    };
    for attempt in 1..=tries {
        let spinner = file
            .custodians
            .get(&c.user)
            .and_then(|p| term::kdf_spinner(p.key_type));
        tracing::debug!(user = %c.user, attempt, "verifying credentials");
        let unlocked = file.unlock(&c.user, &c.pass)?;
        drop(spinner);
        if let Some(u) = unlocked {
            return Ok(u);
        }
        if attempt < tries {
            term::errln("Sorry, try again.");
            c.pass = term::prompt_secret("Passphrase: ", false)?;
        }
    }
    let mut msg = String::from("Invalid user email");
    if let Some(s) = &c.user_source {
        msg.push_str(&format!(" ({s})"));
    }
    msg.push_str(" or passphrase");
    if let Some(s) = &c.pass_source {
        msg.push_str(&format!(" ({s})"));
    }
    if tries > 1 {
        msg.push_str(&format!(" ({tries} tries)"));
    }
    msg.push_str(". Check credentials and try again.");
    let mut empty = Vec::new();
    if c.user.is_empty() {
        empty.push("user ID");
    }
    if c.pass.expose_secret().is_empty() {
        empty.push("passphrase");
    }
    if !empty.is_empty() {
        msg.push_str(&format!(" (Warning: Empty {}.)", empty.join(" and ")));
    }
    Err(Fail::msg(1, msg))
}

/// Credentials available without prompting (`--user` or `<PREFIX>_USER`,
/// and `--passphrase-file` or `<PREFIX>_PASSPHRASE`), for checks that must
/// never ask. `None` when either part is missing.
pub fn non_interactive(cli: &Cli) -> Result<Option<pprotect::Creds>, Fail> {
    let env = |suffix: &str| {
        if cli.ignore_env {
            None
        } else {
            std::env::var(format!("{}_{suffix}", cli.env_prefix)).ok()
        }
    };
    let Some(user) = cli
        .user
        .clone()
        .or_else(|| env("USER"))
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let pass = match &cli.passphrase_file {
        Some(pf) => Some(read_passphrase_file(pf, 2)?.0.expose_secret().to_string()),
        None => match &cli.passphrase_cmd {
            Some(command) => Some(
                run_passphrase_command(command, &user)?
                    .expose_secret()
                    .to_string(),
            ),
            None => match env("PASSPHRASE").filter(|p| !p.is_empty()) {
                Some(p) => Some(p),
                None => match pprotect::passcmd::configured(&cli.env_prefix, cli.ignore_env) {
                    Some((command, _)) => Some(
                        run_passphrase_command(&command, &user)?
                            .expose_secret()
                            .to_string(),
                    ),
                    None => None,
                },
            },
        },
    };
    Ok(pass
        .filter(|p| !p.is_empty())
        .map(|p| pprotect::Creds::new(user, p)))
}

/// Run a passphrase command (errors exit 1 and name the command, never
/// its output).
fn run_passphrase_command(command: &str, user: &str) -> Result<SecretString, Fail> {
    Ok(pprotect::passcmd::run(
        command,
        user,
        pprotect::passcmd::timeout(),
        term::stderr_is_tty(),
    )?)
}
