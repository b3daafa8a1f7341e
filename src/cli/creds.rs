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
pub struct Pending(Inner);

enum Inner {
    /// A user and passphrase, to derive from.
    Given(Sourced),
    /// A custodian whose key the agent holds (no derivation).
    Agent(Unlocked),
}

impl Pending {
    /// The user the credentials name (empty when none was given).
    pub fn user(&self) -> &str {
        match &self.0 {
            Inner::Given(s) => &s.user,
            Inner::Agent(u) => u.name(),
        }
    }

    /// Verify against `file` (one key derivation; up to three passphrases
    /// when typed at a terminal). The agent's key was matched against
    /// `file` when it was found.
    pub fn verify(self, file: &ProtectedFile) -> Result<Unlocked, Fail> {
        match self.0 {
            Inner::Given(s) => verify(file, s),
            Inner::Agent(u) => Ok(u),
        }
    }
}

/// Whether `PPROTECT_AGENT` turns the agent off (`0`, `false`, `no`, `off`).
pub fn agent_disabled_by_env() -> bool {
    matches!(
        std::env::var("PPROTECT_AGENT").as_deref(),
        Ok("0" | "false" | "no" | "off")
    )
}

/// The agent, unless bypassed (`--no-agent`, `PPROTECT_AGENT=0`).
#[cfg(unix)]
pub fn agent(cli: &Cli) -> Option<pprotect::agent::Client> {
    (!cli.no_agent && !agent_disabled_by_env()).then(pprotect::agent::Client::new)
}

/// The custodian of `file` whose key the agent holds: `user` when given,
/// else the only one it holds for this file. A problem with the agent is
/// a warning: the command goes on without it.
#[cfg(unix)]
pub fn from_agent(cli: &Cli, file: &ProtectedFile, user: Option<&str>) -> Option<Unlocked> {
    let agent = agent(cli)?;
    let warn = |e: pprotect::Error| {
        term::errln(&format!("pprotect: warning: {e}; not using the agent"));
    };
    let who = agent.find(file, user).map_err(warn).ok()??;
    tracing::debug!(user = %who.name(), "using the key the agent holds");
    Some(who)
}

/// The keys the merge driver and the pre-commit hook use without
/// prompting: `creds` when given, else the agent's key for `user` (or for
/// the one custodian of the file it holds).
pub fn keyring<'c>(
    no_agent: bool,
    creds: Option<&'c pprotect::Creds>,
    user: Option<String>,
) -> Option<pprotect::git::merge::Keyring<'c>> {
    if let Some(c) = creds {
        return Some(pprotect::git::merge::Keyring::new(c));
    }
    if no_agent || agent_disabled_by_env() {
        return None;
    }
    #[cfg(unix)]
    {
        Some(pprotect::git::merge::Keyring::from_agent(
            user.filter(|u| !u.is_empty()),
            pprotect::agent::Client::new(),
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = user;
        None
    }
}

/// The user named by `--user` or `<PREFIX>_USER` (unless `--ignore-env`).
pub fn named_user(cli: &Cli) -> Option<String> {
    cli.user.clone().or_else(|| {
        (!cli.ignore_env)
            .then(|| std::env::var(format!("{}_USER", cli.env_prefix)).ok())
            .flatten()
    })
}

/// Without the agent (not a Unix system), nothing is held.
#[cfg(not(unix))]
pub fn from_agent(_cli: &Cli, _file: &ProtectedFile, _user: Option<&str>) -> Option<Unlocked> {
    None
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

/// Resolve credentials and verify them against `file` (one key derivation,
/// or none when the agent holds the key).
pub fn get(cli: &Cli, file: &ProtectedFile, display_path: &str) -> Result<Unlocked, Fail> {
    gather(cli, file, display_path)?.verify(file)
}

/// Resolve credentials (prompting for what is missing) without verifying
/// them. With no passphrase given (flag, environment, passphrase command),
/// the agent is asked first for a custodian of `file` it holds.
pub fn gather(cli: &Cli, file: &ProtectedFile, display_path: &str) -> Result<Pending, Fail> {
    gather_opts(cli, file, display_path, None, true)
}

/// Resolve credentials for `user` (instead of `--user`) and derive the
/// key in this process, never asking the agent (what `unlock` does).
#[cfg_attr(not(unix), allow(dead_code))]
pub fn derive_here(
    cli: &Cli,
    file: &ProtectedFile,
    display_path: &str,
    user: Option<String>,
) -> Result<Unlocked, Fail> {
    gather_opts(cli, file, display_path, user, false)?.verify(file)
}

fn gather_opts(
    cli: &Cli,
    file: &ProtectedFile,
    display_path: &str,
    user_arg: Option<String>,
    agent_allowed: bool,
) -> Result<Pending, Fail> {
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
    let mut user = user_arg.or_else(|| cli.user.clone());
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
    // No passphrase was given: the agent, if it holds the key.
    let from_agent_ok = agent_allowed
        && cmd.is_none()
        && pass.as_ref().is_none_or(|p| p.expose_secret().is_empty());
    if from_agent_ok && let Some(u) = from_agent(cli, file, user.as_deref()) {
        return Ok(Pending(Inner::Agent(u)));
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
            let typed = term::prompt("User email: ")?;
            if from_agent_ok && let Some(u) = from_agent(cli, file, Some(&typed)) {
                return Ok(Pending(Inner::Agent(u)));
            }
            user = Some(typed);
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
    Ok(Pending(Inner::Given(Sourced {
        user: user.unwrap_or_default(),
        user_source: Some(user_source),
        pass: pass.unwrap_or_else(|| SecretString::from(String::new())),
        pass_source,
        typed,
    })))
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
