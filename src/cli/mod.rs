//! The command-line adapter: clap definitions, exit codes, and dispatch to
//! the library. The only place clap appears.

pub mod commands;
pub mod creds;
pub mod exec;
pub mod term;

use commands::{agent, audit, custodian, domain, git, meta, read, secret, workflows};

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Why the process ends early: an exit code and an optional message for
/// stderr (printed as `error: MESSAGE`).
#[derive(Debug)]
pub enum Fail {
    /// Exit with this code, printing nothing more.
    Quiet(i32),
    /// Print `error: MESSAGE` and exit with the code.
    Msg(i32, String),
}

impl Fail {
    /// An error message with an exit code.
    pub fn msg(code: i32, m: impl Into<String>) -> Fail {
        Fail::Msg(code, m.into())
    }
}

impl From<pprotect::Error> for Fail {
    fn from(e: pprotect::Error) -> Fail {
        use pprotect::ErrorKind as K;
        let code = match e.kind() {
            K::Io | K::Git | K::Agent => 2,
            _ => 1,
        };
        Fail::Msg(code, e.to_string())
    }
}

/// pocket_protector's top-level help, with pprotect's additions.
pub const HELP: &str = "\
Usage: pprotect subcommand [FLAGS]

  pprotect

  People-centric secret management system, built to work with modern
  distributed version control systems. A drop-in successor to
  pocket_protector that git understands.


Subcommands:

  init                  create a new protected
  version               print the PocketProtector version and exit
  list-audit-log        print audit log entries, one per line (informational;
                        git history is the authoritative record)
  truncate-audit-log    keep only the KEEP most recent audit log entries

  Access Management:
    add-key-custodian   add a new key custodian to the protected
    list-user-secrets   display domains and secrets accessible to the
                        authenticated user
    set-key-custodian-passphrase
                        update a key custodian passphrase
    rekey-custodian     change a custodian key type (hard/fast/raw) and
                        passphrase, re-encrypting all owned domains
    rm-key-custodian    remove a key custodian and all of their ownerships

  Domain Management:
    add-domain          add a new domain to the protected
    add-owner           add a key custodian to the owner list of a specific
                        domain
    list-domains        print a list of domain names, if any
    rotate-domain-keys  rotate the internal encryption keys for a given domain
    migrate-owner       grant a custodian ownership of all domains you own
    rm-owner            remove a key custodian from the owner list of a domain
    rm-domain           remove a domain and all of its keys from the protected

  Secret Management:
    add-secret          add a secret to a domain
    list-domain-secrets print a list of secret names for a given domain
    list-all-secrets    print a list of all secret names, along with the
                        domains that define each
    update-secret       update a secret value in a domain
    rm-secret           remove a secret from a domain

  Workflows:
    edit DOMAIN         edit a domain's secrets in $VISUAL/$EDITOR (--yes)
    import DOMAIN FILE  add secrets from a dotenv or JSON file, - for stdin
                        (--format dotenv|json, --update, --dry-run)
    access              who can read what: custodians x domains (--json)

  Secret Access:
    decrypt-domain      decrypt and display cleartext for a domain, with
                        optional format and secret filter
    exec                run a command with decrypted domain secrets injected
                        as environment variables

  Git Integration:
    setup-git           wire the merge driver, diff textconv and pre-commit
                        hook into this clone (--check, --uninstall)
    merge-driver O A B [PATH]
                        three-way merge of protected files (called by git)
    resolve [--ours|--theirs|--show|--reseal [--yes]] [DOMAIN [ENTRY]]
                        list or settle the protected file's merge conflicts
    log [DOMAIN [SECRET]]
                        the commits that changed them, with audit entries;
                        for an owner, whether values changed (--json)
    check-audit-log     cross-check the audit log against git history
                        (--range A..B, --json, --skew SECONDS, --no-cache,
                        --full, --accept COMMIT --reason TEXT)
    textconv FILE       print a protected file as names and fingerprints
                        (git diff textconv)
    pre-commit          check the staged change for plaintext secrets

  Agent (unlock once):
    unlock [EMAIL]      derive your key once and hand it to the agent
                        (--ttl DURATION, default 15m, at most 8h)
    lock                wipe every key and stop the agent
    agent status        the unlocked custodians and their time left (--json)

  completions           print a shell completion script (bash, zsh, fish)
  man                   print the man page (roff): pprotect man | man -l -


Flags:

  --file PATH           the protected file, relative to the current directory
                        (default: protected.yaml here, else the nearest one
                        above, up to the top of the git work tree)
  --confirm             show a diff and ask before writing changes
  --non-interactive     never prompt for credentials
  --ignore-env          ignore PPROTECT_USER / PPROTECT_PASSPHRASE
  -u, --user EMAIL      the acting user's email
  --passphrase-file P   read the passphrase from a file
  --passphrase-cmd CMD  run CMD (sh -c, PPROTECT_USER set) for the passphrase
  --key-type TYPE       hard (default), fast or raw
  --output-format F     json (default), env or shell (decrypt-domain)
  --secret NAME         one secret only (decrypt-domain)
  --domain NAME         domain (exec, add-secret, update-secret)
  --secret-name NAME    secret name (add-secret, update-secret)
  --from-file PATH|-    read the secret value from a file or stdin
  --prefix P            prefix for env var names (exec)
  --uppercase           UPPER_CASE env var names (exec)
  --no-passthrough      exec with a minimal environment
  --allow-env NAME      let a secret take a refused env var name (exec,
                        decrypt-domain env/shell); repeatable
  --env-prefix P        credential env var prefix (default PPROTECT)
  --no-agent            derive the key here, without asking the agent
                        (also PPROTECT_AGENT=0)
  --json                machine-readable output for list-* commands
  -v, --verbose         trace to stderr (never secrets)
  -h, --help            show this help message and exit
";

/// Command line, compatible with pocket_protector's: every flag is
/// accepted before or after the subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "pprotect",
    about = "People-centric, serverless secret management in a protected.yaml versioned by git; a successor to pocket_protector",
    disable_help_subcommand = true,
    disable_help_flag = true,
    override_help = HELP
)]
pub struct Cli {
    /// Show help.
    #[arg(short = 'h', long, global = true)]
    pub help: bool,
    /// Print the version (as the `version` subcommand does).
    #[arg(short = 'V', long, global = true)]
    pub version: bool,
    /// The protected file, relative to the current directory. Default:
    /// `protected.yaml` in the current directory, else the nearest one
    /// above it inside the git work tree.
    #[arg(long, global = true)]
    pub file: Option<PathBuf>,
    /// Show a diff and ask before writing.
    #[arg(long, global = true)]
    pub confirm: bool,
    /// Never prompt for credentials.
    #[arg(long, global = true)]
    pub non_interactive: bool,
    /// Ignore credential environment variables.
    #[arg(long, global = true)]
    pub ignore_env: bool,
    /// The acting user's email.
    #[arg(short = 'u', long, global = true, value_name = "EMAIL", add = commands::complete::custodians())]
    pub user: Option<String>,
    /// A file holding only the passphrase.
    #[arg(long, global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// A command that prints the passphrase (run with `sh -c`).
    #[arg(long, global = true, value_name = "CMD")]
    pub passphrase_cmd: Option<String>,
    /// The new key's type: hard (default), fast or raw.
    #[arg(long, global = true, value_name = "TYPE", add = commands::complete::values(&["hard", "fast", "raw"]))]
    pub key_type: Option<String>,
    /// json (default), env or shell.
    #[arg(long, global = true, value_name = "FORMAT", add = commands::complete::values(&["json", "env", "shell"]))]
    pub output_format: Option<String>,
    /// Print only this secret's value.
    #[arg(long, global = true, value_name = "NAME", add = commands::complete::secrets())]
    pub secret: Option<String>,
    /// The domain (exec: more than once for several).
    #[arg(long, global = true, value_name = "DOMAIN", action = clap::ArgAction::Append, add = commands::complete::domains())]
    pub domain: Vec<String>,
    /// The secret's name.
    #[arg(long, global = true, value_name = "NAME", add = commands::complete::secrets())]
    pub secret_name: Option<String>,
    /// Read the secret value from this file, or `-` for stdin.
    #[arg(long, global = true)]
    pub from_file: Option<String>,
    /// Prefix variable names, joined with `_` (`--prefix APP`: `APP_db_url`).
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    /// Variable names in upper case, non-alphanumerics as `_` (`db-url`: `DB_URL`).
    #[arg(long, global = true)]
    pub uppercase: bool,
    /// Minimal environment (exec).
    #[arg(long, global = true)]
    pub no_passthrough: bool,
    /// Allow a secret to take this refused environment variable name
    /// (exec, decrypt-domain env/shell); repeatable.
    #[arg(long = "allow-env", global = true, value_name = "NAME")]
    pub allow_env: Vec<String>,
    /// Credential env var prefix.
    #[arg(
        long,
        global = true,
        env = "PPROTECT_ENV_PREFIX",
        default_value = "PPROTECT"
    )]
    pub env_prefix: String,
    /// Derive the key in this process instead of asking the agent (also
    /// `PPROTECT_AGENT=0`).
    #[arg(long, global = true)]
    pub no_agent: bool,
    /// JSON output for list commands.
    #[arg(long, global = true)]
    pub json: bool,
    /// Tracing output on stderr.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Every subcommand; underscore spellings are accepted as aliases. Each
/// family's argument structs and code live in one module under
/// `commands/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new protected file with a first key custodian.
    #[command(after_help = "Example:\n  pprotect init alice@example.com --key-type fast")]
    Init(custodian::CustodianArgs),
    /// Print the version.
    #[command(after_help = "Example:\n  pprotect version")]
    Version,
    /// Print the audit log.
    #[command(
        alias = "list_audit_log",
        after_help = "Examples:\n  pprotect list-audit-log\n  pprotect list-audit-log --json"
    )]
    ListAuditLog,
    /// Keep only the KEEP most recent audit-log entries.
    #[command(
        alias = "truncate_audit_log",
        after_help = "Example:\n  pprotect truncate-audit-log 100"
    )]
    TruncateAuditLog(audit::TruncateArgs),
    /// Add a key custodian.
    #[command(
        alias = "add_key_custodian",
        after_help = "Examples:\n  pprotect add-key-custodian bob@example.com\n  pprotect add-key-custodian ci@example.com --key-type raw"
    )]
    AddKeyCustodian(custodian::CustodianArgs),
    /// List the domains and secrets the user can read.
    #[command(
        alias = "list_user_secrets",
        after_help = "Example:\n  pprotect list-user-secrets -u alice@example.com --json"
    )]
    ListUserSecrets,
    /// Change a custodian's passphrase.
    #[command(
        alias = "set_key_custodian_passphrase",
        after_help = "Example:\n  pprotect set-key-custodian-passphrase alice@example.com"
    )]
    SetKeyCustodianPassphrase(custodian::CustodianArgs),
    /// Change a custodian's key type and passphrase.
    #[command(
        alias = "rekey_custodian",
        after_help = "Example:\n  pprotect rekey-custodian alice@example.com --key-type fast"
    )]
    RekeyCustodian(custodian::CustodianArgs),
    /// Remove a key custodian and their ownerships.
    #[command(
        alias = "rm_key_custodian",
        after_help = "Example:\n  pprotect rm-key-custodian bob@example.com"
    )]
    RmKeyCustodian(custodian::CustodianArgs),
    /// Add a domain, owned by the acting user.
    #[command(
        alias = "add_domain",
        after_help = "Example:\n  pprotect add-domain staging"
    )]
    AddDomain(domain::DomainArgs),
    /// Add an owner to a domain.
    #[command(
        alias = "add_owner",
        after_help = "Example:\n  pprotect add-owner prod bob@example.com"
    )]
    AddOwner(domain::OwnerArgs),
    /// List domains.
    #[command(
        alias = "list_domains",
        after_help = "Examples:\n  pprotect list-domains\n  pprotect list-domains --json"
    )]
    ListDomains,
    /// Rotate a domain's keypair.
    #[command(
        alias = "rotate_domain_keys",
        after_help = "Example:\n  pprotect rotate-domain-keys prod"
    )]
    RotateDomainKeys(domain::DomainArgs),
    /// Add a custodian as owner of all your domains.
    #[command(
        alias = "migrate_owner",
        after_help = "Example:\n  pprotect migrate-owner bob@example.com"
    )]
    MigrateOwner(domain::MigrateArgs),
    /// Remove an owner from a domain.
    #[command(
        alias = "rm_owner",
        after_help = "Example:\n  pprotect rm-owner prod bob@example.com"
    )]
    RmOwner(domain::OwnerArgs),
    /// Remove a domain.
    #[command(
        alias = "rm_domain",
        after_help = "Example:\n  pprotect rm-domain staging"
    )]
    RmDomain(domain::DomainArgs),
    /// Add a secret: the value from a prompt, `--from-file PATH`, or
    /// `--from-file -` (stdin).
    #[command(
        alias = "add_secret",
        after_help = "Examples:\n  pprotect add-secret dev api-key\n  printf %s \"$TOKEN\" | pprotect add-secret dev api-key --from-file -"
    )]
    AddSecret(secret::SecretArgs),
    /// List a domain's secret names.
    #[command(
        alias = "list_domain_secrets",
        after_help = "Example:\n  pprotect list-domain-secrets dev --json"
    )]
    ListDomainSecrets(secret::DomainNameArg),
    /// List all secret names with their domains.
    #[command(
        alias = "list_all_secrets",
        after_help = "Example:\n  pprotect list-all-secrets --json"
    )]
    ListAllSecrets,
    /// Change a secret's value: from a prompt, `--from-file PATH`, or
    /// `--from-file -` (stdin).
    #[command(
        alias = "update_secret",
        after_help = "Example:\n  pprotect update-secret dev api-key --from-file new-key.txt"
    )]
    UpdateSecret(secret::SecretArgs),
    /// Remove a secret.
    #[command(
        alias = "rm_secret",
        after_help = "Example:\n  pprotect rm-secret dev api-key"
    )]
    RmSecret(secret::SecretArgs),
    /// Decrypt a domain: JSON, or `--output-format env|shell`, or one
    /// `--secret NAME`.
    #[command(
        alias = "decrypt_domain",
        after_help = "Examples:\n  pprotect decrypt-domain dev\n  pprotect decrypt-domain dev --output-format env --uppercase > .env\n  pprotect decrypt-domain dev --secret db-password"
    )]
    DecryptDomain(read::DecryptArgs),
    /// Run a command with a domain's secrets in its environment
    /// (`--domain` more than once: later domains win on a shared name).
    #[command(
        after_help = "Examples:\n  pprotect exec dev -- ./server --port 8080\n  pprotect exec --domain shared --domain prod --uppercase -- ./server"
    )]
    Exec(read::ExecArgs),
    /// Three-way merge of protected files (git merge driver).
    #[command(
        alias = "merge_driver",
        after_help = "Example (what `pprotect setup-git` writes into .git/config):\n  pprotect merge-driver %O %A %B %P --marker-size %L"
    )]
    MergeDriver(git::MergeDriverArgs),
    /// Wire the merge driver, textconv and pre-commit hook into this clone.
    #[command(
        alias = "setup_git",
        after_help = "Example:\n  pprotect setup-git --check"
    )]
    SetupGit(git::SetupGitArgs),
    /// Print the man pages (roff), generated from these definitions.
    #[command(
        after_help = "Examples:\n  pprotect man | man -l -\n  pprotect man exec | man -l -\n  pprotect man --dir ~/.local/share/man/man1"
    )]
    Man(meta::ManArgs),
    /// Edit a domain's secrets in $VISUAL / $EDITOR / vi.
    #[command(after_help = "Example:\n  pprotect edit dev")]
    Edit(workflows::EditArgs),
    /// Add or update many secrets from a dotenv or JSON file (`-`: stdin).
    #[command(
        after_help = "Examples:\n  pprotect import dev .env\n  pprotect import dev secrets.json --update --dry-run"
    )]
    Import(workflows::ImportArgs),
    /// Who can read what: the custodian x domain matrix.
    #[command(after_help = "Example:\n  pprotect access --json")]
    Access,
    /// Settle the protected file's merge conflicts, redoing the merge from
    /// git's index stages.
    #[command(
        after_help = "Examples:\n  pprotect resolve\n  pprotect resolve --theirs dev api-key\n  pprotect resolve --show dev"
    )]
    Resolve(git::ResolveArgs),
    /// Cross-check the audit log against git history.
    #[command(
        alias = "check_audit_log",
        after_help = "Examples:\n  pprotect check-audit-log\n  pprotect check-audit-log --range origin/main..HEAD --json"
    )]
    CheckAuditLog(audit::CheckArgs),
    /// The commits that changed the file's domains, secrets, owners or
    /// keys, with their audit entries; for an owner, whether values changed.
    #[command(
        after_help = "Examples:\n  pprotect log\n  pprotect log dev db-password --json\n  PPROTECT_USER=alice@example.com pprotect log dev"
    )]
    Log(audit::LogArgs),
    /// Print a protected file as names and fingerprints (git diff textconv).
    #[command(after_help = "Example:\n  pprotect textconv protected.yaml")]
    Textconv(git::TextconvArgs),
    /// Check the staged change for plaintext secrets (git pre-commit hook).
    #[command(
        alias = "pre_commit",
        after_help = "Example (the hook `pprotect setup-git` installs runs it):\n  pprotect pre-commit"
    )]
    PreCommit,
    /// Print a shell completion script (it completes subcommands, flags,
    /// flag values and the domain, secret and custodian names of the
    /// protected file).
    #[command(
        after_help = "Examples:\n  pprotect completions bash > ~/.local/share/bash-completion/completions/pprotect\n  echo 'source <(pprotect completions zsh)' >> ~/.zshrc"
    )]
    Completions(meta::CompletionsArgs),
    /// Derive your key once and hand it to the agent, which keeps it for
    /// --ttl (default 15m) so commands need no passphrase.
    #[command(
        after_help = "Examples:\n  pprotect unlock alice@example.com\n  pprotect unlock --ttl 1h\n  pprotect decrypt-domain dev     # asks the agent, no passphrase"
    )]
    Unlock(agent::UnlockArgs),
    /// Wipe every key the agent holds and stop it.
    #[command(after_help = "Example:\n  pprotect lock")]
    Lock,
    /// The agent: `status` lists unlocked custodians and their time left;
    /// `serve` runs it in the foreground (unlock starts it on demand).
    #[command(after_help = "Examples:\n  pprotect agent status\n  pprotect agent status --json")]
    Agent(agent::AgentArgs),
}

/// The arguments before `--` (after it they belong to exec's command).
fn args_before_dashes() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .collect()
}

/// The subcommand named on the command line, in its canonical spelling
/// (an alias such as `decrypt_domain` gives `decrypt-domain`).
pub fn subcommand_in_args() -> Option<String> {
    let cmd = <Cli as clap::CommandFactory>::command();
    args_before_dashes()
        .iter()
        .filter(|a| !a.starts_with('-'))
        .find_map(|a| {
            cmd.find_subcommand(a.as_str())
                .map(|s| s.get_name().to_string())
        })
}

/// The global flags that mean something to a subcommand (every flag is
/// accepted everywhere, as pocket_protector accepts them; a subcommand's
/// help and man page list only these). `-h` and `-v` are always listed.
pub fn flags_for(sub: &str) -> &'static [&'static str] {
    const CREDS: [&str; 7] = [
        "user",
        "passphrase_file",
        "passphrase_cmd",
        "non_interactive",
        "ignore_env",
        "env_prefix",
        "no_agent",
    ];
    macro_rules! with_creds {
        ($($f:literal),*) => {{
            const F: &[&str] = &[$($f,)* CREDS[0], CREDS[1], CREDS[2], CREDS[3], CREDS[4], CREDS[5], CREDS[6]];
            F
        }};
    }
    match sub {
        "init" | "add-key-custodian" | "set-key-custodian-passphrase" | "rekey-custodian" => {
            &["file", "confirm", "key_type"]
        }
        "rm-key-custodian" | "truncate-audit-log" => &["file", "confirm"],
        "rm-domain" | "rm-owner" => &["file", "confirm", "domain"],
        "add-domain" | "add-owner" | "rotate-domain-keys" => {
            with_creds!("file", "confirm", "domain")
        }
        "migrate-owner" => with_creds!("file", "confirm"),
        "add-secret" | "update-secret" => {
            &["file", "confirm", "domain", "secret_name", "from_file"]
        }
        "rm-secret" => &["file", "confirm", "domain", "secret_name"],
        "list-domains" | "list-all-secrets" | "list-audit-log" | "access" => &["file", "json"],
        "list-domain-secrets" => &["file", "json", "domain"],
        "list-user-secrets" => with_creds!("file", "json"),
        "decrypt-domain" => with_creds!(
            "file",
            "domain",
            "output_format",
            "secret",
            "prefix",
            "uppercase",
            "allow_env"
        ),
        "exec" => with_creds!(
            "file",
            "domain",
            "prefix",
            "uppercase",
            "no_passthrough",
            "allow_env"
        ),
        "edit" | "import" => with_creds!("file", "confirm"),
        "resolve" => with_creds!("file", "json"),
        "pre-commit" => with_creds!(),
        "check-audit-log" => &["file", "json"],
        "setup-git" => &["file"],
        "log" => with_creds!("file", "json"),
        // Credentials, but never the agent's.
        "unlock" => &[
            "file", CREDS[0], CREDS[1], CREDS[2], CREDS[3], CREDS[4], CREDS[5],
        ],
        "agent" | "status" => &["json"],
        _ => &[],
    }
}

/// A subcommand as its help and man page show it: the global flags it
/// does not use hidden. `sub` must come from a built command (globals
/// propagated).
pub fn scoped(sub: &clap::Command) -> clap::Command {
    let keep = flags_for(sub.get_name());
    let ids: Vec<String> = sub
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().to_string())
        .filter(|id| id != "help" && id != "verbose" && !keep.contains(&id.as_str()))
        .collect();
    let mut sub = sub.clone();
    for id in ids {
        sub = sub.mut_arg(id, |a| a.hide(true));
    }
    sub
}

/// `-h`/`--help` anywhere before `--` wins over everything else: with a
/// subcommand, that subcommand's help (usage, arguments, an example),
/// else the global help. Returns whether help was printed.
fn help_requested() -> bool {
    if !args_before_dashes()
        .iter()
        .any(|a| a == "-h" || a == "--help")
    {
        return false;
    }
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let text = match subcommand_in_args().and_then(|n| cmd.find_subcommand(&n)) {
        Some(sub) => scoped(sub)
            .bin_name(format!("pprotect {}", sub.get_name()))
            .render_help()
            .to_string(),
        None => HELP.to_string(),
    };
    let _ = term::out(&text);
    true
}

/// Parse argv, run, and return the process exit code.
pub fn main() -> i32 {
    // `PPROTECT_COMPLETE=SHELL pprotect -- WORDS`: the completion script
    // asking for candidates (nothing else runs).
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command)
        .var(commands::complete::VAR)
        .complete();
    if help_requested() {
        return 0;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            return match e.kind() {
                K::DisplayHelp | K::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                K::InvalidSubcommand => {
                    let bad = e
                        .get(clap::error::ContextKind::InvalidSubcommand)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    let names: Vec<String> = <Cli as clap::CommandFactory>::command()
                        .get_subcommands()
                        .filter(|s| !s.is_hide_set())
                        .map(|s| s.get_name().to_string())
                        .collect();
                    term::errln(&format!(
                        "error: pprotect: unknown subcommand \"{}\", choose from: {}",
                        term::sanitize(&bad),
                        names.join(", ")
                    ));
                    if let Some(best) = closest(&bad.replace('_', "-"), &names) {
                        term::errln(&format!("  tip: did you mean '{best}'?"));
                    }
                    1
                }
                _ => {
                    let rendered = e.render().to_string();
                    let first = rendered
                        .lines()
                        .next()
                        .unwrap_or("error: invalid arguments");
                    term::errln(first);
                    // clap's suggestions for a misspelt flag or value.
                    for tip in rendered
                        .lines()
                        .filter(|l| l.trim_start().starts_with("tip:"))
                    {
                        term::errln(&term::sanitize(tip));
                    }
                    term::errln("Run 'pprotect --help' for the list of subcommands and flags.");
                    1
                }
            };
        }
    };
    init_tracing(cli.verbose);
    match commands::run(cli) {
        Ok(()) => 0,
        Err(Fail::Quiet(code)) => code,
        Err(Fail::Msg(code, m)) => {
            term::errln(&format!("error: {}", term::sanitize(&m)));
            code
        }
    }
}

/// The subcommand nearest to a mistyped one (edit distance at most 3,
/// and less than half its length), for a "did you mean".
fn closest<'a>(typed: &str, names: &'a [String]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    names
        .iter()
        .map(|n| (distance(typed, n), n.as_str()))
        .filter(|(d, _)| *d <= 3 && *d * 2 < typed.chars().count().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn init_tracing(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = if verbose {
        EnvFilter::new("pprotect=debug")
    } else {
        match std::env::var("RUST_LOG") {
            Ok(v) if !v.is_empty() => EnvFilter::new(v),
            _ => return,
        }
    };
    // Colours only on a terminal, and never with NO_COLOR set.
    let ansi = term::stderr_is_tty() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
