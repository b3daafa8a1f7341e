//! The subcommands, one module per family (cargo's and jj's `commands/`
//! layout): each module holds its commands' argument structs and code, a
//! thin layer of prompts and output over the library. This module holds
//! what they share: the protected file being worked on, the locked write,
//! and the dispatch.

pub mod agent;
pub mod audit;
pub mod complete;
pub mod custodian;
pub mod domain;
pub mod git;
pub mod meta;
pub mod read;
pub mod secret;
pub mod workflows;

use std::path::{Path, PathBuf};

use pprotect::ProtectedFile;
use pprotect::ops::{Unlocked, py_repr};
use pprotect::store::{self, FileLock};

use super::term::{self, errln, out, outln, prompt, sanitize};
use super::{Cli, Command, Fail, creds};

/// The Python tool's version this release is compatible with.
pub const COMPAT_VERSION: &str = "26.4.3";

/// The protected file being worked on.
pub struct Target {
    pub path: PathBuf,
    pub display: String,
    /// The bytes and parse of the last load, reused under the lock when
    /// the file has not changed in between (parsing is most of the cost
    /// of a write to a large file).
    loaded: std::cell::RefCell<Option<(Vec<u8>, ProtectedFile)>>,
}

/// The protected file, absolute. One rule for every command: `--file` is
/// relative to the current directory (as git takes paths); without it,
/// `protected.yaml` in the current directory, else (when `search`) the
/// nearest `protected.yaml` above it, up to the top of the git work tree.
pub fn protected_path(cli: &Cli, search: bool) -> PathBuf {
    protected_path_from(cli.file.as_deref(), search)
}

/// [`protected_path`] from the `--file` value alone.
pub fn protected_path_from(file: Option<&Path>, search: bool) -> PathBuf {
    if let Some(f) = file {
        return creds::abspath(f);
    }
    let here = creds::abspath(Path::new(DEFAULT_FILE));
    if !search || here.exists() {
        return here;
    }
    let Some(top) = std::env::current_dir()
        .ok()
        .and_then(|d| pprotect::git::repo::Repo::discover(&d).ok())
        .and_then(|r| r.workdir().ok())
    else {
        return here;
    };
    let top = creds::abspath(&top);
    let mut dir = here.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let candidate = d.join(DEFAULT_FILE);
        if candidate.exists() {
            return candidate;
        }
        if d == top || !d.starts_with(&top) {
            break;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    here
}

/// The default protected file name.
const DEFAULT_FILE: &str = "protected.yaml";

impl Target {
    pub fn new(cli: &Cli, search: bool) -> Target {
        let path = protected_path(cli, search);
        let display = path.display().to_string();
        Target {
            path,
            display,
            loaded: Default::default(),
        }
    }

    fn parse(&self, bytes: Vec<u8>) -> Result<ProtectedFile, Fail> {
        let file = ProtectedFile::from_bytes(&bytes).map_err(|e| e.context(&self.display))?;
        *self.loaded.borrow_mut() = Some((bytes, file.clone()));
        Ok(file)
    }

    /// Re-read the file (under the lock), reusing the earlier parse when
    /// the bytes are the same.
    fn reload(&self) -> Result<ProtectedFile, Fail> {
        let bytes = store::read_bounded(&self.path)?;
        if let Some((old, file)) = self.loaded.borrow().as_ref()
            && *old == bytes
        {
            return Ok(file.clone());
        }
        self.parse(bytes)
    }

    /// Load an existing file (exit 2 when missing).
    pub fn load(&self) -> Result<ProtectedFile, Fail> {
        if !self.path.exists() {
            return Err(Fail::msg(
                2,
                format!("Protected file not found: {}", self.display),
            ));
        }
        self.parse(store::read_bounded(&self.path)?)
    }

    /// Load a file the command will change, refusing early (before any
    /// prompt) when it cannot be written.
    pub fn load_for_write(&self) -> Result<ProtectedFile, Fail> {
        let file = self.load()?;
        self.check_writable()?;
        Ok(file)
    }

    fn check_writable(&self) -> Result<(), Fail> {
        let meta = std::fs::metadata(&self.path).map_err(|e| Fail::msg(2, e.to_string()))?;
        let writable = !meta.permissions().readonly()
            && std::fs::OpenOptions::new()
                .append(true)
                .open(&self.path)
                .is_ok();
        if !writable {
            return Err(Fail::msg(
                1,
                format!(
                    "expected {} to be a writable file. Check the permissions and try again.",
                    py_repr(&self.display)
                ),
            ));
        }
        Ok(())
    }
}

/// Apply a change under the file lock: re-read the file, apply `op`,
/// optionally show the diff and ask, then write atomically. Re-reading
/// under the lock is what makes concurrent writers all land.
pub fn commit(
    cli: &Cli,
    t: &Target,
    who: Option<&Unlocked>,
    op: impl FnOnce(&mut ProtectedFile) -> pprotect::Result<()>,
) -> Result<(), Fail> {
    let _lock = FileLock::acquire(&t.path)?;
    store::remove_stale_temps(&t.path);
    let mut file = t.reload()?;
    if let Some(who) = who
        && !who.is_current_in(&file)
    {
        return Err(Fail::msg(
            1,
            format!(
                "key custodian {} changed while this command ran; run it again",
                who.name()
            ),
        ));
    }
    let old = cli.confirm.then(|| file.to_yaml_string());
    op(&mut file)?;
    write_checked(t, old.as_deref(), &file.to_yaml_string())
}

/// Write `new`, first showing the diff from `old` and asking, under
/// `--confirm` (`old` is given exactly then).
fn write_checked(t: &Target, old: Option<&str>, new: &str) -> Result<(), Fail> {
    if let Some(old) = old {
        show_diff(t, old, new)?;
        if !term::confirm("Write changes? [y/N] ")? {
            outln("Aborting...")?;
            return Err(Fail::Quiet(0));
        }
    }
    // Keep the line endings of the file being rewritten: a CRLF working
    // copy (core.autocrlf) stays CRLF, so git sees no spurious change and
    // core.safecrlf does not refuse it. The repository content stays LF.
    let crlf = t
        .loaded
        .borrow()
        .as_ref()
        .is_some_and(|(bytes, _)| bytes.windows(2).any(|w| w == b"\r\n"));
    if crlf {
        store::write_atomic(&t.path, new.replace('\n', "\r\n").as_bytes())?;
    } else {
        store::write_atomic(&t.path, new.as_bytes())?;
    }
    Ok(())
}

fn show_diff(t: &Target, old: &str, new: &str) -> Result<(), Fail> {
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("{}.old", t.display), &format!("{}.new", t.display))
        .to_string();
    let color = term::stdout_is_tty();
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = sanitize(line);
        let colored = match line.chars().next() {
            Some('-') if color => format!("\x1b[31m{line}\x1b[0m"),
            Some('+') if color => format!("\x1b[32m{line}\x1b[0m"),
            _ => line,
        };
        lines.push(colored);
    }
    outln("Changes to be written:\n")?;
    outln(&format!("{}\n", lines.join("\n")))
}

fn key_type(cli: &Cli) -> Result<Option<&str>, Fail> {
    match cli.key_type.as_deref() {
        None | Some("") => Ok(None),
        Some(k @ ("hard" | "fast" | "raw")) => Ok(Some(k)),
        Some(_) => Err(Fail::msg(1, "--key-type must be one of: hard, fast, raw")),
    }
}

fn show_raw_key_and_confirm(pass: &str) -> Result<bool, Fail> {
    let bar = "=".repeat(72);
    out(&format!(
        "\n{bar}\n  GENERATED RAW KEY (copy this now, it will not be shown again):\n\n  {pass}\n\n  \
         Store this key securely. It is your passphrase.\n  LOSS OF THIS KEY MEANS LOSS OF CUSTODIAN ACCESS.\n{bar}\n\n"
    ))?;
    Ok(prompt("Have you saved the key? Type YES to confirm: ")?.trim() == "YES")
}

/// pprotect's own flags are refused where they mean nothing (every flag
/// pocket_protector has stays accepted everywhere, as it is there): a
/// silently ignored `--json` or `--allow-env` hides a mistake.
fn refuse_unused_flags(cli: &Cli) -> Result<(), Fail> {
    let Some(name) = super::subcommand_in_args() else {
        return Ok(());
    };
    let uses = super::flags_for(&name);
    let refuse = |flag: &str| {
        Err(Fail::msg(
            1,
            format!("{flag} does nothing for {name}; run `pprotect {name} -h` for its flags"),
        ))
    };
    if cli.json && !uses.contains(&"json") {
        return refuse("--json");
    }
    if !cli.allow_env.is_empty() && !uses.contains(&"allow_env") {
        return refuse("--allow-env");
    }
    Ok(())
}

/// In a clone whose committed `.gitattributes` asks for the pprotect merge
/// driver but whose config lacks it (`setup-git` never ran here), git
/// silently falls back to text merges: say so, in one line (one config
/// read).
fn setup_hint() {
    let Ok(cwd) = std::env::current_dir() else {
        return;
    };
    let Ok(repo) = pprotect::git::repo::Repo::discover(&cwd) else {
        return;
    };
    if repo.config_string("merge.pprotect.driver").is_none()
        && !repo.attribute_patterns().is_empty()
    {
        errln(
            "pprotect: this clone is not set up: git merges protected files as text here; run `pprotect setup-git`",
        );
    }
}

/// A name given as an argument or as pocket_protector's flag (both: they
/// must agree), else `None`.
fn given(arg: Option<&str>, flag: Option<&str>, flag_name: &str) -> Result<Option<String>, Fail> {
    match (
        arg.filter(|a| !a.is_empty()),
        flag.filter(|f| !f.is_empty()),
    ) {
        (Some(a), Some(f)) if a != f => Err(Fail::msg(
            1,
            format!(
                "{} given as an argument and {flag_name} {}: give it once",
                py_repr(&sanitize(a)),
                py_repr(&sanitize(f))
            ),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(Some(v.to_string())),
        (None, None) => Ok(None),
    }
}

/// A name given on the command line, else asked for with `label` (the
/// prompt pocket_protector shows, so piped answers keep working).
fn or_prompt(v: Option<String>, label: &str) -> Result<String, Fail> {
    match v {
        Some(v) => Ok(v),
        None => prompt(label),
    }
}

/// The one `--domain` of a command that takes one (`exec` takes several;
/// `run` refuses a second one for every other command).
fn one_domain(cli: &Cli) -> Option<&str> {
    cli.domain.first().map(String::as_str)
}

/// The domain from the argument or `--domain`, if given.
fn domain_given(cli: &Cli, arg: Option<&str>) -> Result<Option<String>, Fail> {
    given(arg, one_domain(cli), "--domain")
}

/// Credentials of an owner of every domain in `domains`: the domains and
/// the ownership are checked before the key is derived.
fn owner_of(
    cli: &Cli,
    t: &Target,
    f: &ProtectedFile,
    domains: &[&str],
) -> Result<pprotect::ops::Unlocked, Fail> {
    for d in domains {
        f.domain(d)?;
    }
    let pending = creds::gather(cli, f, &t.display)?;
    for d in domains {
        f.check_owner(d, pending.user())?;
    }
    pending.verify(f)
}

/// What `run` prints for `version`, `--version` and `-V`.
fn version_line() -> String {
    format!(
        "pocket_protector version {COMPAT_VERSION} (pprotect {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> Result<(), Fail> {
    if cli.help {
        return out(super::HELP);
    }
    if cli.version {
        return outln(&version_line());
    }
    let Some(command) = &cli.command else {
        out(super::HELP)?;
        return Err(Fail::msg(1, "pprotect: expected a subcommand"));
    };
    refuse_unused_flags(&cli)?;
    if cli.domain.len() > 1 && !matches!(command, Command::Exec(_)) {
        return Err(Fail::msg(
            1,
            "--domain given more than once; only exec takes several",
        ));
    }
    // Where merging is irrelevant, the hint is noise off a terminal (CI):
    // it is only for people who will merge in this clone.
    let reads_only = matches!(
        command,
        Command::CheckAuditLog(_)
            | Command::Log(_)
            | Command::DecryptDomain(_)
            | Command::Exec(_)
            | Command::ListAuditLog
            | Command::ListDomains
            | Command::ListDomainSecrets(_)
            | Command::ListAllSecrets
            | Command::ListUserSecrets
            | Command::Access
    );
    if !matches!(
        command,
        Command::SetupGit(_)
            | Command::MergeDriver(_)
            | Command::Textconv(_)
            | Command::Version
            | Command::Man(_)
            | Command::Completions(_)
    ) && (!reads_only || term::stderr_is_tty())
    {
        setup_hint();
    }
    // `init` creates the file here; every other command may find it above.
    let t = Target::new(&cli, !matches!(command, Command::Init(_)));
    match command {
        Command::Version => outln(&version_line()),
        Command::Completions(a) => meta::completions(a),
        Command::Man(a) => meta::man(a),
        Command::Init(a) => custodian::init(&cli, &t, a),
        Command::AddKeyCustodian(a) => custodian::add_key_custodian(&cli, &t, a),
        Command::SetKeyCustodianPassphrase(a) => custodian::change(&cli, &t, a, false),
        Command::RekeyCustodian(a) => custodian::change(&cli, &t, a, true),
        Command::RmKeyCustodian(a) => custodian::rm_key_custodian(&cli, &t, a),
        Command::ListUserSecrets => custodian::list_user_secrets(&cli, &t),
        Command::AddDomain(a) => domain::add_domain(&cli, &t, a),
        Command::RmDomain(a) => domain::rm_domain(&cli, &t, a),
        Command::RotateDomainKeys(a) => domain::rotate(&cli, &t, a),
        Command::AddOwner(a) => domain::add_owner(&cli, &t, a),
        Command::RmOwner(a) => domain::rm_owner(&cli, &t, a),
        Command::MigrateOwner(a) => domain::migrate_owner(&cli, &t, a),
        Command::ListDomains => domain::list_domains(&cli, &t),
        Command::AddSecret(a) => secret::change(&cli, &t, a, secret::Change::Add),
        Command::UpdateSecret(a) => secret::change(&cli, &t, a, secret::Change::Update),
        Command::RmSecret(a) => secret::rm_secret(&cli, &t, a),
        Command::ListDomainSecrets(a) => secret::list_domain_secrets(&cli, &t, a),
        Command::ListAllSecrets => secret::list_all_secrets(&cli, &t),
        Command::DecryptDomain(a) => read::decrypt_domain(&cli, &t, a),
        Command::Exec(a) => read::exec(&cli, &t, a),
        Command::Edit(a) => workflows::edit(&cli, &t, a),
        Command::Import(a) => workflows::import(&cli, &t, a),
        Command::Access => workflows::access(&cli, &t),
        Command::ListAuditLog => audit::list_audit_log(&cli, &t),
        Command::TruncateAuditLog(a) => audit::truncate_audit_log(&cli, &t, a),
        Command::CheckAuditLog(a) => audit::check_audit_log(&cli, a),
        Command::Log(a) => audit::log(&cli, a),
        Command::Textconv(a) => git::textconv(a),
        Command::PreCommit => git::pre_commit(&cli),
        Command::MergeDriver(a) => git::merge_driver(&cli, a),
        Command::Unlock(a) => agent::unlock(&cli, &t, a),
        Command::Lock => agent::lock(),
        Command::Agent(a) => agent::agent(&cli, a),
        Command::SetupGit(a) => git::setup_git(&cli, a),
        Command::Resolve(a) => git::resolve(&cli, a),
    }
}
