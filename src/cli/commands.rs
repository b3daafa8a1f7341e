//! One function per subcommand, each a thin layer of prompts and output
//! over the library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pprotect::ProtectedFile;
use pprotect::crypto::{self, KeyType};
use pprotect::ops::{Unlocked, py_repr};
use pprotect::store::{self, FileLock};
use secrecy::SecretString;

use super::term::{self, errln, out, outln, prompt, prompt_secret, sanitize};
use super::{Cli, Command, Fail, creds, exec};
use pprotect::json;

/// The Python tool's version this release is compatible with.
pub const COMPAT_VERSION: &str = "26.4.3";

/// The protected file being worked on.
pub(super) struct Target {
    pub(super) path: PathBuf,
    pub(super) display: String,
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
    if let Some(f) = &cli.file {
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
    fn new(cli: &Cli, search: bool) -> Target {
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
    pub(super) fn load(&self) -> Result<ProtectedFile, Fail> {
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
    pub(super) fn load_for_write(&self) -> Result<ProtectedFile, Fail> {
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
pub(super) fn commit(
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
fn refuse_unused_flags(cli: &Cli, command: &Command) -> Result<(), Fail> {
    let json_ok = matches!(
        command,
        Command::ListAuditLog
            | Command::ListDomains
            | Command::ListDomainSecrets { .. }
            | Command::ListAllSecrets
            | Command::ListUserSecrets
            | Command::Access
            | Command::CheckAuditLog { .. }
            | Command::Resolve { .. }
    );
    let allow_env_ok = matches!(
        command,
        Command::Exec { .. } | Command::DecryptDomain { .. }
    );
    let name = super::subcommand_in_args().unwrap_or_else(|| "this subcommand".to_string());
    let refuse = |flag: &str| {
        Err(Fail::msg(
            1,
            format!("{flag} does nothing for {name}; run `pprotect {name} -h` for its flags"),
        ))
    };
    if cli.json && !json_ok {
        return refuse("--json");
    }
    if !cli.allow_env.is_empty() && !allow_env_ok {
        return refuse("--allow-env");
    }
    Ok(())
}

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> Result<(), Fail> {
    if cli.help {
        return out(super::HELP);
    }
    if cli.version {
        return outln(&format!(
            "pocket_protector version {COMPAT_VERSION} (pprotect {})",
            env!("CARGO_PKG_VERSION")
        ));
    }
    let Some(command) = &cli.command else {
        out(super::HELP)?;
        return Err(Fail::msg(1, "pprotect: expected a subcommand"));
    };
    refuse_unused_flags(&cli, command)?;
    // Where merging is irrelevant, the hint is noise off a terminal (CI):
    // it is only for people who will merge in this clone.
    let reads_only = matches!(
        command,
        Command::CheckAuditLog { .. }
            | Command::DecryptDomain { .. }
            | Command::Exec { .. }
            | Command::ListAuditLog
            | Command::ListDomains
            | Command::ListDomainSecrets { .. }
            | Command::ListAllSecrets
            | Command::ListUserSecrets
            | Command::Access
    );
    if !matches!(
        command,
        Command::SetupGit { .. }
            | Command::MergeDriver { .. }
            | Command::Textconv { .. }
            | Command::Version
            | Command::Man
            | Command::Completions { .. }
    ) && (!reads_only || term::stderr_is_tty())
    {
        setup_hint();
    }
    // `init` creates the file here; every other command may find it above.
    let t = Target::new(&cli, !matches!(command, Command::Init));
    match command {
        Command::Version => outln(&format!(
            "pocket_protector version {COMPAT_VERSION} (pprotect {})",
            env!("CARGO_PKG_VERSION")
        )),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "pprotect", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            // The pages of every subcommand, after the main one, so
            // `man pprotect` says what each `--help` says.
            let cmd = Cli::command();
            let mut page = Vec::new();
            let render = |c: &clap::Command, page: &mut Vec<u8>| {
                clap_mangen::Man::new(c.clone())
                    .render(page)
                    .map_err(|e| Fail::msg(2, format!("cannot render the man page: {e}")))
            };
            render(&cmd, &mut page)?;
            for sub in cmd.get_subcommands() {
                let name = format!("pprotect-{}", sub.get_name());
                render(&sub.clone().name(name), &mut page)?;
            }
            out(&String::from_utf8_lossy(&page))
        }
        Command::Init => init(&cli, &t),
        Command::Textconv { path } => {
            // Read it whole even when over the size limit: textconv must
            // never fail `git diff` (the parse error becomes a warning).
            let bytes =
                std::fs::read(path).map_err(|e| pprotect::Error::io("cannot read", path, &e))?;
            out(&pprotect::git::textconv::render_bytes(&bytes))
        }
        Command::PreCommit => pre_commit(&cli),
        Command::MergeDriver {
            base,
            current,
            other,
            path,
            marker_size,
        } => merge_driver(base, current, other, path.as_deref(), *marker_size),
        Command::SetupGit {
            check,
            uninstall,
            attributes,
        } => setup_git(&cli, *check, *uninstall, *attributes),
        Command::Resolve {
            ours,
            theirs,
            show,
            reseal,
            yes,
            scope,
            entry,
        } => {
            let side = match (*ours, *theirs) {
                (true, _) => Some(pprotect::git::merge::Side::Ours),
                (_, true) => Some(pprotect::git::merge::Side::Theirs),
                _ => None,
            };
            let reseal = reseal.then_some(*yes);
            resolve(&cli, side, *show, reseal, scope.clone(), entry.clone())
        }
        Command::Edit { domain, yes } => super::workflows::edit(&cli, &t, domain, *yes),
        Command::Import {
            domain,
            source,
            format,
            update,
            dry_run,
        } => super::workflows::import(
            &cli,
            &t,
            domain,
            source,
            format.as_deref(),
            *update,
            *dry_run,
        ),
        Command::Access => super::workflows::access(&cli, &t),
        Command::CheckAuditLog {
            range,
            skew,
            no_cache,
            full,
            accept,
            reason,
        } => match (accept, reason) {
            (Some(commit), Some(reason)) => accept_findings(&cli, commit, reason, *skew),
            _ => check_audit_log(&cli, range.as_deref(), *skew, *no_cache, *full),
        },
        Command::AddKeyCustodian => {
            t.load_for_write()?;
            add_key_custodian(&cli, &t, false)
        }
        Command::ListAuditLog => {
            let f = t.load()?;
            if cli.json {
                return outln(&json::to_string(&f.audit_log));
            }
            let lines: Vec<String> = f.audit_log.iter().map(|e| sanitize(e)).collect();
            outln(&lines.join("\n"))
        }
        Command::TruncateAuditLog { keep } => {
            t.load_for_write()?;
            let keep = *keep;
            commit(&cli, &t, None, |f| {
                f.truncate_audit_log(keep);
                Ok(())
            })
        }
        Command::ListDomains => {
            let f = t.load()?;
            let names: Vec<&str> = f.domains.keys().map(String::as_str).collect();
            if cli.json {
                return outln(&json::to_string(&names));
            }
            if names.is_empty() {
                errln(&format!("(No domains in protected at {})", t.display));
                return Ok(());
            }
            outln(
                &names
                    .iter()
                    .map(|n| sanitize(n))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        Command::ListDomainSecrets { domain_name } => {
            let f = t.load()?;
            let d = f.domain(domain_name)?;
            let names: Vec<&str> = d.secrets.keys().map(String::as_str).collect();
            if cli.json {
                return outln(&json::to_string(&names));
            }
            if names.is_empty() {
                errln(&format!(
                    "(No secrets in domain {} of protected at {})",
                    py_repr(&sanitize(domain_name)),
                    t.display
                ));
                return Ok(());
            }
            outln(&names.join("\n"))
        }
        Command::ListAllSecrets => {
            let f = t.load()?;
            let map = f.all_secret_names();
            if cli.json {
                return outln(&json::to_string(&map));
            }
            if map.is_empty() {
                errln(&format!("(No secrets in protected at {})", t.display));
                return Ok(());
            }
            let lines: Vec<String> = map
                .iter()
                .map(|(k, ds)| sanitize(&format!("{k}: {}", ds.join(", "))))
                .collect();
            outln(&lines.join("\n"))
        }
        Command::ListUserSecrets => {
            let f = t.load()?;
            let who = creds::get(&cli, &f, &t.display)?;
            let owned = f.owned_domains(who.name());
            if cli.json {
                let obj: BTreeMap<&str, Vec<&String>> = owned
                    .iter()
                    .map(|d| (*d, f.domains[*d].secrets.keys().collect()))
                    .collect();
                return outln(&json::to_string(&obj));
            }
            if owned.is_empty() {
                errln(&format!(
                    "User {} does not own any domains.",
                    sanitize(who.name())
                ));
                return Ok(());
            }
            let lines: Vec<String> = owned
                .iter()
                .map(|d| {
                    let names: Vec<&str> =
                        f.domains[*d].secrets.keys().map(String::as_str).collect();
                    let list = if names.is_empty() {
                        "(no secrets)".to_string()
                    } else {
                        names.join(", ")
                    };
                    sanitize(&format!("{d}: {list}"))
                })
                .collect();
            outln(&lines.join("\n"))
        }
        Command::SetKeyCustodianPassphrase => change_custodian(&cli, &t, false),
        Command::RekeyCustodian => change_custodian(&cli, &t, true),
        Command::RmKeyCustodian => {
            t.load_for_write()?;
            outln("Removing key custodian.")?;
            let name = prompt("User email: ")?;
            commit(&cli, &t, None, |f| f.rm_key_custodian(&name))
        }
        Command::AddDomain => {
            let f = t.load_for_write()?;
            let who = creds::get(&cli, &f, &t.display)?;
            outln("Adding new domain.")?;
            let domain = prompt("Domain name: ")?;
            commit(&cli, &t, Some(&who), |f| f.add_domain(&domain, &who))
        }
        Command::RmDomain => {
            t.load_for_write()?;
            outln("Removing domain.")?;
            let domain = prompt("Domain name: ")?;
            commit(&cli, &t, None, |f| f.rm_domain(&domain))
        }
        Command::AddOwner => {
            let f = t.load_for_write()?;
            let who = creds::get(&cli, &f, &t.display)?;
            outln("Adding domain owner.")?;
            let domain = prompt("Domain name: ")?;
            let new_owner = prompt("New owner email: ")?;
            commit(&cli, &t, Some(&who), |f| {
                f.add_owner(&domain, &new_owner, &who)
            })
        }
        Command::RmOwner => {
            t.load_for_write()?;
            outln("Removing domain owner.")?;
            let domain = prompt("Domain name: ")?;
            let owner = prompt("Owner email: ")?;
            commit(&cli, &t, None, |f| f.rm_owner(&domain, &owner))?;
            errln(
                "Note: the removed owner can still decrypt this domain (from this file revision and all \
                 earlier ones) until you run rotate-domain-keys and change the secret values.",
            );
            Ok(())
        }
        Command::RotateDomainKeys => {
            let f = t.load_for_write()?;
            let who = creds::get(&cli, &f, &t.display)?;
            let domain = prompt("Domain name: ")?;
            commit(&cli, &t, Some(&who), |f| f.rotate_domain_key(&domain, &who))
        }
        Command::MigrateOwner => {
            let f = t.load_for_write()?;
            let who = creds::get(&cli, &f, &t.display)?;
            let new_owner = prompt("New owner email: ")?;
            let owned = f.owned_domains(who.name());
            if owned.is_empty() {
                return outln("You do not own any domains.");
            }
            outln(&sanitize(&format!(
                "Will add {new_owner} as owner to: {}",
                owned.join(", ")
            )))?;
            if !term::confirm("Proceed? [y/N] ")? {
                return outln("Aborting.");
            }
            commit(&cli, &t, Some(&who), |f| {
                f.migrate_owner(&new_owner, &who).map(|_| ())
            })
        }
        Command::AddSecret => secret_change(&cli, &t, false),
        Command::UpdateSecret => secret_change(&cli, &t, true),
        Command::RmSecret => {
            t.load_for_write()?;
            outln("Updating secret value.")?;
            let domain = prompt("Domain name: ")?;
            let name = prompt("Secret name: ")?;
            commit(&cli, &t, None, |f| f.rm_secret(&domain, &name))
        }
        Command::DecryptDomain { domain_name } => decrypt_domain(&cli, &t, domain_name),
        Command::Exec { command } => {
            let Some(domain) = cli.domain.as_deref().filter(|d| !d.is_empty()) else {
                return Err(Fail::msg(1, "--domain is required for exec"));
            };
            if command.is_empty() {
                return Err(Fail::msg(
                    1,
                    "exec requires a command after -- (e.g. pprotect exec --domain prod -- ./myapp)",
                ));
            }
            let f = t.load()?;
            let who = creds::get(&cli, &f, &t.display)?;
            let secrets = f.decrypt_domain(domain, &who)?;
            let env = exec::build_env(
                &secrets,
                cli.prefix.as_deref(),
                cli.uppercase,
                cli.no_passthrough,
                std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
                &cli.env_prefix,
                &cli.allow_env,
            )?;
            drop(secrets);
            Err(exec::exec(command, &env))
        }
    }
}

fn init(cli: &Cli, t: &Target) -> Result<(), Fail> {
    if t.path.exists() {
        return Err(Fail::msg(
            2,
            format!("Protected file already exists: {}", t.display),
        ));
    }
    add_key_custodian(cli, t, true)
}

fn add_key_custodian(cli: &Cli, t: &Target, init: bool) -> Result<(), Fail> {
    let kt = key_type(cli)?;
    outln("Adding new key custodian.")?;
    let (name, pass, key_type) = if kt == Some("raw") {
        let name = prompt("User email: ")?;
        let pass = crypto::generate_raw_passphrase();
        if !show_raw_key_and_confirm(&pass)? {
            // pocket_protector exits 0 here; an abort is a failure.
            outln("Aborting. Key was not confirmed.")?;
            return Err(Fail::Quiet(1));
        }
        (name, SecretString::from(pass.to_string()), KeyType::Raw)
    } else {
        let name = prompt("User email: ")?;
        let pass = prompt_secret("Passphrase: ", true)?;
        let kt = if kt == Some("fast") {
            KeyType::FAST
        } else {
            KeyType::Hard
        };
        (name, pass, kt)
    };
    let derive = |f: &mut ProtectedFile| {
        let _spinner = term::kdf_spinner(key_type);
        f.add_key_custodian(&name, &pass, key_type)
    };
    if init {
        let mut f = ProtectedFile::create();
        derive(&mut f)?;
        let _lock = FileLock::acquire(&t.path)?;
        if t.path.exists() {
            return Err(Fail::msg(
                2,
                format!("Protected file already exists: {}", t.display),
            ));
        }
        return write_checked(t, cli.confirm.then_some(""), &f.to_yaml_string());
    }
    commit(cli, t, None, derive)
}

fn change_custodian(cli: &Cli, t: &Target, rekey: bool) -> Result<(), Fail> {
    let f = t.load_for_write()?;
    let kt = key_type(cli)?;
    let user = prompt("User email: ")?;
    let pass = prompt_secret("Current passphrase: ", false)?;
    let who = creds::verify_plain(&f, user, pass)?;
    let (new_pass, key_type) = if rekey && kt == Some("raw") {
        let p = crypto::generate_raw_passphrase();
        if !show_raw_key_and_confirm(&p)? {
            // pocket_protector exits 0 here; an abort is a failure.
            outln("Aborting. Key was not confirmed.")?;
            return Err(Fail::Quiet(1));
        }
        (SecretString::from(p.to_string()), KeyType::Raw)
    } else {
        let p = prompt_secret("New passphrase: ", true)?;
        (
            p,
            if kt == Some("fast") {
                KeyType::FAST
            } else {
                KeyType::Hard
            },
        )
    };
    commit(cli, t, Some(&who), |f| {
        let _spinner = term::kdf_spinner(key_type);
        if rekey {
            f.rekey_custodian(&who, &new_pass, key_type)
        } else {
            f.set_key_custodian_passphrase(&who, &new_pass, key_type)
        }
    })
}

fn read_secret_value(from: &str) -> Result<SecretString, Fail> {
    use std::io::Read;
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    if from == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| Fail::msg(1, format!("unable to read secret value from stdin: {e}")))?;
    } else {
        let path = Path::new(from);
        let mut file = std::fs::File::open(path).map_err(|e| {
            Fail::msg(
                1,
                format!(
                    "unable to read secret value from {}: {}",
                    py_repr(from),
                    pprotect::error::strerror(&e)
                ),
            )
        })?;
        file.read_to_end(&mut buf).map_err(|e| {
            Fail::msg(
                1,
                format!(
                    "unable to read secret value from {}: {}",
                    py_repr(from),
                    pprotect::error::strerror(&e)
                ),
            )
        })?;
    }
    let text = String::from_utf8(buf.to_vec()).map_err(|_| {
        Fail::msg(
            1,
            format!("secret value from {} is not UTF-8", py_repr(from)),
        )
    })?;
    Ok(SecretString::from(text))
}

fn secret_change(cli: &Cli, t: &Target, update: bool) -> Result<(), Fail> {
    t.load_for_write()?;
    outln(if update {
        "Updating secret value."
    } else {
        "Adding secret value."
    })?;
    let domain = match cli.domain.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => d.to_string(),
        None => prompt("Domain name: ")?,
    };
    let name = match cli.secret_name.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => d.to_string(),
        None => prompt("Secret name: ")?,
    };
    let value = match &cli.from_file {
        Some(from) => read_secret_value(from)?,
        None => SecretString::from(prompt("Secret value: ")?),
    };
    commit(cli, t, None, |f| {
        if update {
            f.update_secret(&domain, &name, &value)
        } else {
            f.add_secret(&domain, &name, &value)
        }
    })
}

fn is_shell_identifier(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn decrypt_domain(cli: &Cli, t: &Target, domain: &str) -> Result<(), Fail> {
    let format = match cli.output_format.as_deref() {
        None => None,
        Some(f @ ("json" | "env" | "shell")) => Some(f),
        Some(_) => {
            return Err(Fail::msg(
                1,
                "--output-format must be one of: json, env, shell",
            ));
        }
    };
    let f = t.load()?;
    let who = creds::get(cli, &f, &t.display)?;
    let secrets = f.decrypt_domain(domain, &who)?;
    let secret = cli.secret.as_deref();
    if let Some(s) = secret
        && !secrets.contains_key(s)
    {
        return Err(Fail::msg(
            1,
            format!(
                "secret {} not found in domain {}",
                py_repr(s),
                py_repr(domain)
            ),
        ));
    }
    let selected: Vec<(&str, &SecretString)> = match secret {
        Some(s) => vec![(s, &secrets[s])],
        None => secrets.iter().map(|(k, v)| (k.as_str(), v)).collect(),
    };
    match (format, secret) {
        (None, Some(s)) => {
            let v = zeroize::Zeroizing::new(format!("{}\n", term::expose(&secrets[s])));
            out(&v)
        }
        (None | Some("json"), _) => {
            let obj: BTreeMap<&str, &str> = selected
                .iter()
                .map(|(k, v)| (*k, term::expose(v)))
                .collect();
            let mut text = json::to_secret_string(&obj);
            text.push('\n');
            out(&text)
        }
        (Some(fmt), _) => {
            // Users `eval` this output: the same name policy as exec.
            let refused = pprotect::envnames::refused_with(
                selected.iter().map(|(n, _)| *n),
                &cli.allow_env,
                &cli.env_prefix,
            );
            if !refused.is_empty() {
                return Err(Fail::msg(
                    1,
                    format!(
                        "refusing to print secrets as reserved env var names ({}); such names can turn a \
                         protected.yaml write into code execution when the output is evaluated. \
                         Use --allow-env NAME to allow one.",
                        refused.join(", ")
                    ),
                ));
            }
            let export = if fmt == "shell" { "export " } else { "" };
            let mut text = zeroize::Zeroizing::new(String::new());
            for (name, value) in &selected {
                if !is_shell_identifier(name) {
                    return Err(Fail::msg(
                        1,
                        format!(
                            "{} is not a valid shell identifier; cannot safely represent in env/shell format",
                            py_repr(name)
                        ),
                    ));
                }
                let v = term::expose(value);
                // One `NAME=value` per line: a value with a line break is
                // written as dotenv readers take it (double quotes, `\n`),
                // so a line-based reader never sees a second variable.
                let quoted = if fmt == "env" && v.contains(['\n', '\r']) {
                    zeroize::Zeroizing::new(dotenv_double_quote(v))
                } else {
                    zeroize::Zeroizing::new(term::shell_quote(v))
                };
                text.push_str(&format!("{export}{name}={}\n", quoted.as_str()));
            }
            out(&text)
        }
    }
}

/// A value in dotenv's double quotes: `\\`, `"`, line feed and carriage
/// return escaped (what `pprotect import` and dotenv readers undo).
fn dotenv_double_quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() * 2 + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn pre_commit(cli: &Cli) -> Result<(), Fail> {
    let cwd = std::env::current_dir().map_err(|e| Fail::msg(2, e.to_string()))?;
    let repo = pprotect::git::repo::Repo::discover(&cwd)?;
    let creds = creds::non_interactive(cli)?;
    let report = pprotect::git::precommit::check(&repo, creds.as_ref())?;
    for w in &report.warnings {
        errln(&format!("pprotect pre-commit: warning: {}", sanitize(w)));
    }
    if report.findings.is_empty() {
        return Ok(());
    }
    for f in &report.findings {
        errln(&format!(
            "pprotect pre-commit: {}",
            sanitize(&f.to_string())
        ));
    }
    errln(&format!(
        "pprotect pre-commit: {} problem(s) in the staged change. Fix and re-stage them; silence a false \
         positive with a `pprotect: allow` comment on the line or `git config --add pprotect.allow PATH`.",
        report.findings.len()
    ));
    Err(Fail::Quiet(1))
}

fn merge_driver(
    base: &Path,
    current: &Path,
    other: &Path,
    path: Option<&str>,
    marker_size: usize,
) -> Result<(), Fail> {
    let label = path.unwrap_or("protected file");
    let read = |p: &Path| store::read_bounded(p);
    let (b, o, t) = (read(base)?, read(current)?, read(other)?);
    let creds = pprotect::git::merge::env_creds();
    let git_dir = std::env::current_dir()
        .ok()
        .and_then(|d| pprotect::git::repo::Repo::discover(&d).ok())
        .map(|r| r.git_dir());
    let single_parent = !pprotect::git::merge::git_is_merging(git_dir.as_deref());
    let merged = match pprotect::git::merge::merge_bytes(
        &b,
        &o,
        &t,
        creds.as_ref(),
        marker_size,
        single_parent,
    ) {
        Ok(m) => m,
        Err(e) => {
            // Leave %A as it is: git reports an ordinary conflict.
            errln(&format!(
                "pprotect merge-driver: cannot merge {}: {}",
                sanitize(label),
                sanitize(&e.to_string())
            ));
            return Err(Fail::Quiet(1));
        }
    };
    for note in &merged.notes {
        errln(&format!(
            "pprotect merge-driver: {}: {}",
            sanitize(label),
            sanitize(note)
        ));
    }
    if !merged.resealed_to.is_empty()
        && let Some(repo) = std::env::current_dir()
            .ok()
            .and_then(|d| pprotect::git::repo::Repo::discover(&d).ok())
    {
        for line in rotation_lines(&repo, path.unwrap_or(label), &merged.resealed_to) {
            errln(&format!(
                "pprotect merge-driver: {}: {}",
                sanitize(label),
                sanitize(&line)
            ));
        }
    }
    store::write_atomic(current, merged.text.as_bytes())?;
    if merged.conflicts.is_empty() {
        return Ok(());
    }
    for c in &merged.conflicts {
        errln(&format!(
            "pprotect merge-driver: conflict in {}: {}: {}",
            sanitize(label),
            sanitize(&c.place.to_string()),
            sanitize(&c.reason)
        ));
    }
    Err(Fail::Quiet(1))
}

/// The stages of a conflict git no longer records as unmerged: after
/// `git add` of the file with its markers, from the index's resolve-undo
/// record; after committing it, from the merge commit's parents. `None`
/// when the file has no markers; an error saying what to run when the
/// stages cannot be found.
#[allow(clippy::type_complexity)]
fn recover_stages(
    repo: &pprotect::git::repo::Repo,
    rel: &str,
    path: &Path,
    shown: &str,
) -> Result<Option<(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>)>, Fail> {
    let text = match store::read_bounded(path) {
        Ok(t) => t,
        Err(_) => return Ok(None),
    };
    let Ok(text) = std::str::from_utf8(&text) else {
        return Ok(None);
    };
    if pprotect::codec::find_conflict_marker(text).is_none() {
        return Ok(None);
    }
    // Committed with its markers in a merge commit: redo that merge.
    let committed_markers = repo
        .blob_at_rev("HEAD", rel)?
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|t| pprotect::codec::find_conflict_marker(&t).is_some());
    if committed_markers && let Some(s) = repo.merge_commit_stages("HEAD", rel)? {
        errln(&format!(
            "pprotect resolve: {shown} was committed with conflict markers in merge commit HEAD; redoing the merge from its parents (commit the result with `git commit --amend`)"
        ));
        return Ok(Some(s));
    }
    if let Some(s) = repo.resolve_undo(rel)? {
        errln(&format!(
            "pprotect resolve: {shown} was added with conflict markers; redoing the merge from the stages git recorded then"
        ));
        return Ok(Some(s));
    }
    Err(Fail::msg(
        1,
        format!(
            "{shown} has conflict markers but git has no record of the merge: restore the conflict with `git checkout -m -- {shown}` if the merge is still in progress, else take the last good version with `git checkout HEAD -- {shown}` (or an earlier commit) and redo the change"
        ),
    ))
}

/// Whether recovered stages come from a merge commit (two parents kept).
fn recovered_merge(repo: &pprotect::git::repo::Repo, recovered: bool) -> bool {
    recovered
        && repo
            .repo
            .head_commit()
            .is_ok_and(|c| c.parent_ids().count() > 1)
}

/// One line per rotated key entries were (or would be) re-sealed to,
/// naming the commits that introduced it and their authors: the merging
/// owner sees whose key they trusted.
fn rotation_lines(
    repo: &pprotect::git::repo::Repo,
    path: &str,
    keys: &[(String, [u8; 32])],
) -> Vec<String> {
    keys.iter()
        .map(|(domain, pk)| {
            let commits = pprotect::git::keys::key_commits(repo, path, pk);
            if commits.is_empty() {
                format!(
                    "the new key of domain {domain} comes from no commit found in the merged histories"
                )
            } else {
                let list: Vec<String> = commits.iter().map(ToString::to_string).collect();
                format!(
                    "the new key of domain {domain} was introduced by commit {}",
                    list.join(", commit ")
                )
            }
        })
        .collect()
}

/// The repository of the current directory and the protected file's path
/// in it (relative to its work tree root), for the git commands. A file
/// inside a submodule (or any nested repository) is refused with where to
/// run the command instead.
fn repo_target(cli: &Cli) -> Result<(pprotect::git::repo::Repo, String), Fail> {
    let cwd = std::env::current_dir().map_err(|e| Fail::msg(2, e.to_string()))?;
    let repo = pprotect::git::repo::Repo::discover(&cwd)?;
    let file = protected_path(cli, true);
    let top = creds::abspath(&repo.workdir()?);
    let file_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Ok(inner) = pprotect::git::repo::Repo::discover(&file_dir)
        && let Ok(inner_top) = inner.workdir()
        && creds::abspath(&inner_top) != top
        && creds::abspath(&inner_top).starts_with(&top)
    {
        let inner_top = creds::abspath(&inner_top);
        return Err(Fail::msg(
            1,
            format!(
                "{} is inside the submodule (nested repository) at {}: run pprotect there (cd {})",
                sanitize(&file.display().to_string()),
                sanitize(&inner_top.display().to_string()),
                sanitize(&inner_top.display().to_string()),
            ),
        ));
    }
    let rel = repo.rel_path(&file)?;
    Ok((repo, rel))
}

fn setup_git(cli: &Cli, check: bool, uninstall: bool, attributes: bool) -> Result<(), Fail> {
    let (repo, file) = repo_target(cli)?;
    if !check && !repo.is_trusted() {
        // Writing hooks and config into another user's repository (as
        // git would not even use it) is how their config would run code
        // as us.
        let dir = repo.workdir().unwrap_or_else(|_| repo.git_dir());
        return Err(Fail::msg(
            1,
            format!(
                "detected dubious ownership in repository at '{}': it belongs to another user, so pprotect does not set it up; to trust it, run `git config --global --add safe.directory {}`",
                sanitize(&dir.display().to_string()),
                sanitize(&dir.display().to_string())
            ),
        ));
    }
    let setup = pprotect::git::setup::Setup::new(repo, &file)?;
    if check {
        let missing: Vec<String> = setup
            .status()?
            .into_iter()
            .filter(|i| !i.present)
            .map(|i| i.what)
            .collect();
        if missing.is_empty() {
            return outln(&format!(
                "pprotect: git integration is set up for {}",
                sanitize(&file)
            ));
        }
        for m in &missing {
            outln(&format!("missing: {}", sanitize(m)))?;
        }
        outln("Run `pprotect setup-git` in this clone to fix it.")?;
        return Err(Fail::Quiet(1));
    }
    let done = if uninstall {
        setup.uninstall(attributes)?
    } else {
        setup.install()?
    };
    if done.is_empty() {
        return outln(if uninstall {
            "pprotect: nothing to remove"
        } else {
            "pprotect: git integration already set up"
        });
    }
    for d in done {
        outln(&format!("pprotect: {}", sanitize(&d)))?;
    }
    Ok(())
}

fn check_audit_log(
    cli: &Cli,
    range: Option<&str>,
    skew: i64,
    no_cache: bool,
    full: bool,
) -> Result<(), Fail> {
    use pprotect::git::history;
    let (repo, path) = repo_target(cli)?;
    // Never in --json output, and only on a terminal (see term::Progress).
    let mut progress = term::Progress::new("commits", !cli.json);
    let report =
        history::check_with_progress(&repo, &path, range, skew, !no_cache, &mut |done, total| {
            progress.update(done, total)
        })?;
    drop(progress);
    if report.shallow_boundary > 0 {
        let advice = "fetch it with `git fetch --unshallow` (GitHub Actions: `fetch-depth: 0` in actions/checkout; GitLab CI: `GIT_DEPTH: 0`)";
        if full {
            return Err(Fail::msg(
                2,
                format!(
                    "this is a shallow clone: history before {} boundary commit(s) is not here, and --full checks the whole history; {advice}",
                    report.shallow_boundary
                ),
            ));
        }
        errln(&format!(
            "note: shallow clone: history before {} boundary commit(s) was not checked (their files are taken as given); {advice}, or use --full to make this an error",
            report.shallow_boundary
        ));
    }
    for note in &report.notes {
        errln(&format!("note: {}", sanitize(note)));
    }
    let accepted = report.findings.iter().filter(|f| f.accepted).count();
    let open = report.findings.len() - accepted;
    if cli.json {
        outln(&json::to_string(&report.findings))?;
    } else {
        for f in &report.findings {
            outln(&sanitize(&format!(
                "{} {}: {}{}",
                &f.commit[..f.commit.len().min(7)],
                f.summary,
                f.message,
                f.reason
                    .as_ref()
                    .map(|r| format!(" (accepted: {r})"))
                    .unwrap_or_default()
            )))?;
        }
        outln(&format!(
            "{open} finding(s){} in {} commit(s) changing {}{}",
            if accepted > 0 {
                format!(" and {accepted} accepted")
            } else {
                String::new()
            },
            report.commits_checked,
            sanitize(&path),
            if report.cached {
                " (earlier history verified clean before; --no-cache checks it again)"
            } else {
                ""
            }
        ))?;
    }
    if open == 0 {
        Ok(())
    } else {
        Err(Fail::Quiet(1))
    }
}

/// `check-audit-log --accept COMMIT --reason TEXT`: append the commit's
/// current findings to the baseline, for review and commit.
fn accept_findings(cli: &Cli, commit: &str, reason: &str, skew: i64) -> Result<(), Fail> {
    use pprotect::git::{baseline, history};
    let (repo, path) = repo_target(cli)?;
    let id = repo
        .repo
        .rev_parse_single(commit)
        .map_err(|e| Fail::msg(2, format!("cannot resolve {}: {e}", sanitize(commit))))?
        .detach()
        .to_string();
    if reason.trim().is_empty() {
        return Err(Fail::msg(
            1,
            "--reason must say why the findings are accepted",
        ));
    }
    let report = history::check(&repo, &path, None, skew, false)?;
    let here: Vec<&history::Finding> = report
        .findings
        .iter()
        .filter(|f| f.commit == id && !f.accepted)
        .collect();
    if here.iter().any(|f| f.kind == history::Kind::InvalidFile) {
        return Err(Fail::msg(
            1,
            format!(
                "commit {} has an invalid-file finding, which cannot be accepted: fix the file in a new commit",
                &id[..7]
            ),
        ));
    }
    let here: Vec<&history::Finding> = here
        .into_iter()
        .filter(|f| f.kind != history::Kind::StaleBaseline)
        .collect();
    if here.is_empty() {
        return Err(Fail::msg(
            1,
            format!("commit {} has no finding to accept", &id[..7]),
        ));
    }
    let file = repo.workdir()?.join(baseline::FILE);
    let mut text = match pprotect::store::read_regular_no_link(&file, 1 << 20)? {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => baseline::HEADER.to_string(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for f in &here {
        text.push_str(&baseline::format_line(f, reason));
        outln(&sanitize(&format!(
            "accepted: {} {}: {}",
            &f.commit[..7],
            f.summary,
            f.message
        )))?;
    }
    store::write_atomic(&file, text.as_bytes())?;
    errln(&format!(
        "{} finding(s) of commit {} accepted in {}: review and commit it",
        here.len(),
        &id[..7],
        baseline::FILE
    ));
    Ok(())
}

fn resolve(
    cli: &Cli,
    side: Option<pprotect::git::merge::Side>,
    show: bool,
    reseal: Option<bool>,
    scope: Option<String>,
    entry: Option<String>,
) -> Result<(), Fail> {
    use pprotect::git::merge::{self, Choice, Keyring, Shown};
    let (repo, rel) = repo_target(cli)?;
    let shown = sanitize(&rel);
    let path = repo.workdir()?.join(&rel);
    let (stages, recovered) = match repo.stages(&rel)? {
        Some(s) => (s, false),
        None => match recover_stages(&repo, &rel, &path, &shown)? {
            Some(s) => (s, true),
            None => {
                outln(&format!("no merge conflict in {shown}"))?;
                return Ok(());
            }
        },
    };
    let (base, ours, theirs) = stages;
    let (Some(ours), Some(theirs)) = (ours, theirs) else {
        return Err(Fail::msg(
            1,
            format!(
                "{shown} was deleted on one side: keep it with `git checkout --ours|--theirs -- {shown}` or drop it with `git rm {shown}`"
            ),
        ));
    };
    let base = base.unwrap_or_default();
    let parse = |b: &[u8], what: &str| merge::parse_input(b, what);
    let (b, o, t) = (
        parse(&base, "base (:1:)")?,
        parse(&ours, "ours (:2:)")?,
        parse(&theirs, "theirs (:3:)")?,
    );
    let creds = creds::non_interactive(cli)?;
    let choices: Vec<Choice> = side
        .map(|side| Choice {
            side,
            scope: scope.clone(),
            entry: entry.clone(),
        })
        .into_iter()
        .collect();
    // A merge commit keeps both parents' entries; anything else (rebase,
    // cherry-pick, revert, squash) is committed on top of ours alone.
    let single_parent =
        !repo.git_dir().join("MERGE_HEAD").exists() && !recovered_merge(&repo, recovered);
    // --reseal is an owner's explicit decision: credentials are asked for
    // when none are given, and each rotated key is shown before it is
    // trusted.
    let mut trust = Vec::new();
    let keys = match (&creds, reseal) {
        (Some(c), _) => Some(Keyring::new(c)),
        (None, Some(_)) => Some(Keyring::from_unlocked(creds::get(cli, &o, &shown)?)),
        (None, None) => None,
    };
    let keys = if let Some(yes) = reseal {
        let probe = merge::merge_opts(
            &b,
            &o,
            &t,
            merge::Options {
                keys: None,
                marker_size: 7,
                choices: Vec::new(),
                single_parent,
                trust: Vec::new(),
            },
        );
        let mut rotated: Vec<(String, [u8; 32])> = Vec::new();
        for c in &probe.conflicts {
            let merge::Place::Secret(d, _) = &c.place else {
                continue;
            };
            if scope.as_ref().is_some_and(|s| s != d) || rotated.iter().any(|(x, _)| x == d) {
                continue;
            }
            let base_pk = b.domains.get(d).map(|x| x.public_key);
            let new_pk = [&o, &t]
                .into_iter()
                .filter_map(|f| f.domains.get(d).map(|x| x.public_key))
                .find(|pk| Some(*pk) != base_pk);
            if let (Some(_), Some(pk)) = (base_pk, new_pk) {
                rotated.push((d.clone(), pk));
            }
        }
        if rotated.is_empty() {
            return Err(Fail::msg(
                1,
                format!(
                    "nothing to re-seal in {shown}{}: no conflicting secret is sealed to the old key of a rotated domain",
                    scope
                        .as_ref()
                        .map(|s| format!(" for domain {}", sanitize(s)))
                        .unwrap_or_default()
                ),
            ));
        }
        for line in rotation_lines(&repo, &rel, &rotated) {
            outln(&sanitize(&line))?;
        }
        let names: Vec<String> = rotated.iter().map(|(d, _)| sanitize(d)).collect();
        if !yes {
            if !term::stdin_is_tty() {
                return Err(Fail::msg(
                    1,
                    "resolve --reseal asks before trusting a key: run it on a terminal, or add --yes"
                        .to_string(),
                ));
            }
            if !term::confirm(&format!(
                "Re-seal to the new key of domain {}? [y/N] ",
                names.join(", ")
            ))? {
                outln("Aborting...")?;
                return Err(Fail::Quiet(1));
            }
        }
        trust = rotated.into_iter().map(|(d, _)| d).collect();
        keys
    } else {
        keys
    };
    let merged = merge::merge_opts(
        &b,
        &o,
        &t,
        merge::Options {
            keys,
            marker_size: 7,
            choices,
            single_parent,
            trust,
        },
    );
    if show {
        let mut keys = match &creds {
            Some(c) => Keyring::new(c),
            None => Keyring::from_unlocked(creds::get(cli, &o, &shown)?),
        };
        let mut any = false;
        let mut lines = Vec::new();
        for c in &merged.conflicts {
            let merge::Place::Secret(d, s) = &c.place else {
                continue;
            };
            let render = |v: Shown| match v {
                Shown::Absent => Some("(removed)".to_string()),
                Shown::Value(v) => Some(pprotect::ops::py_repr(
                    secrecy::ExposeSecret::expose_secret(&v),
                )),
                Shown::Unreadable => None,
            };
            let (ov, tv) = (render(keys.secret(&o, d, s)), render(keys.secret(&t, d, s)));
            if ov.is_none() && tv.is_none() {
                return Err(Fail::msg(
                    1,
                    format!(
                        "cannot show secret {} of domain {}: {} cannot open it on either side",
                        sanitize(s),
                        sanitize(d),
                        sanitize(keys.name())
                    ),
                ));
            }
            any = true;
            let unreadable = || "(cannot open)".to_string();
            lines.push(sanitize(&format!("{}: {}", c.place, c.reason)));
            lines.push(format!("  ours:   {}", ov.unwrap_or_else(unreadable)));
            lines.push(format!("  theirs: {}", tv.unwrap_or_else(unreadable)));
        }
        if !lines.is_empty() {
            outln(&lines.join("\n"))?;
        }
        if !any {
            errln(&format!("no conflicting secret in {shown}"));
        }
        return if merged.conflicts.is_empty() {
            Ok(())
        } else {
            Err(Fail::Quiet(1))
        };
    }
    // Listing only: report, and write only a clean structural merge (git
    // did a text merge where setup-git was never run).
    if side.is_none() && !merged.conflicts.is_empty() {
        if cli.json {
            /// One conflict, for `resolve --json`.
            #[derive(serde::Serialize)]
            struct ConflictJson<'a> {
                domain: Option<&'a str>,
                entry: Option<&'a str>,
                kind: &'a str,
                reason: &'a str,
            }
            let items: Vec<ConflictJson<'_>> = merged
                .conflicts
                .iter()
                .map(|c| {
                    let (domain, entry) = match &c.place {
                        merge::Place::Custodian(x) => (None, Some(x.as_str())),
                        merge::Place::Domain(d) | merge::Place::PublicKey(d) => {
                            (Some(d.as_str()), None)
                        }
                        merge::Place::Owner(d, x) | merge::Place::Secret(d, x) => {
                            (Some(d.as_str()), Some(x.as_str()))
                        }
                        merge::Place::AuditLog => (None, None),
                    };
                    ConflictJson {
                        domain,
                        entry,
                        kind: c.place.kind(),
                        reason: &c.reason,
                    }
                })
                .collect();
            outln(&json::to_string(&items))?;
        } else {
            for c in &merged.conflicts {
                outln(&sanitize(&format!("{}: {}", c.place, c.reason)))?;
            }
        }
        errln(&format!(
            "{} conflict(s) in {shown}: take a side with `pprotect resolve --ours|--theirs [DOMAIN [ENTRY]]` (during a rebase, ours is the branch being rebased onto)",
            merged.conflicts.len()
        ));
        return Err(Fail::Quiet(1));
    }
    for note in &merged.notes {
        errln(&format!("pprotect resolve: {}", sanitize(note)));
    }
    if reseal.is_none() {
        for line in rotation_lines(&repo, &rel, &merged.resealed_to) {
            errln(&format!("pprotect resolve: {}", sanitize(&line)));
        }
    }
    store::write_atomic(&path, merged.text.as_bytes())?;
    if merged.conflicts.is_empty() {
        errln(&format!(
            "{shown} resolved: `git add {shown}`, then continue (git merge --continue, git rebase --continue, ...)"
        ));
        Ok(())
    } else {
        for c in &merged.conflicts {
            outln(&sanitize(&format!("{}: {}", c.place, c.reason)))?;
        }
        errln(&format!(
            "{} conflict(s) remain in {shown}",
            merged.conflicts.len()
        ));
        Err(Fail::Quiet(1))
    }
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
