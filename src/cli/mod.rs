//! The command-line adapter: clap definitions, exit codes, and dispatch to
//! the library. The only place clap appears.

pub mod commands;
pub mod creds;
pub mod exec;
pub mod term;
pub mod workflows;

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
            K::Io | K::Git => 2,
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
    check-audit-log     cross-check the audit log against git history
                        (--range A..B, --json, --skew SECONDS, --no-cache,
                        --full, --accept COMMIT --reason TEXT)
    textconv FILE       print a protected file as names and fingerprints
                        (git diff textconv)
    pre-commit          check the staged change for plaintext secrets

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
    #[arg(short = 'u', long, global = true)]
    pub user: Option<String>,
    /// A file holding only the passphrase.
    #[arg(long, global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// A command that prints the passphrase (run with `sh -c`).
    #[arg(long, global = true, value_name = "CMD")]
    pub passphrase_cmd: Option<String>,
    /// hard, fast or raw.
    #[arg(long, global = true)]
    pub key_type: Option<String>,
    /// json, env or shell.
    #[arg(long, global = true)]
    pub output_format: Option<String>,
    /// One secret (decrypt-domain).
    #[arg(long, global = true)]
    pub secret: Option<String>,
    /// Domain name.
    #[arg(long, global = true)]
    pub domain: Option<String>,
    /// Secret name.
    #[arg(long, global = true)]
    pub secret_name: Option<String>,
    /// Read the secret value from this file, or `-` for stdin.
    #[arg(long, global = true)]
    pub from_file: Option<String>,
    /// Env var name prefix (exec).
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    /// Upper-case env var names (exec).
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

/// Every subcommand; underscore spellings are accepted as aliases.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new protected file with a first key custodian.
    Init,
    /// Print the version.
    Version,
    /// Print the audit log.
    #[command(alias = "list_audit_log")]
    ListAuditLog,
    /// Keep only the KEEP most recent audit-log entries.
    #[command(alias = "truncate_audit_log")]
    TruncateAuditLog {
        /// How many entries to keep.
        keep: usize,
    },
    /// Add a key custodian.
    #[command(alias = "add_key_custodian")]
    AddKeyCustodian,
    /// List the domains and secrets the user can read.
    #[command(alias = "list_user_secrets")]
    ListUserSecrets,
    /// Change a custodian's passphrase.
    #[command(alias = "set_key_custodian_passphrase")]
    SetKeyCustodianPassphrase,
    /// Change a custodian's key type and passphrase.
    #[command(alias = "rekey_custodian")]
    RekeyCustodian,
    /// Remove a key custodian and their ownerships.
    #[command(alias = "rm_key_custodian")]
    RmKeyCustodian,
    /// Add a domain.
    #[command(alias = "add_domain")]
    AddDomain,
    /// Add an owner to a domain.
    #[command(alias = "add_owner")]
    AddOwner,
    /// List domains.
    #[command(alias = "list_domains")]
    ListDomains,
    /// Rotate a domain's keypair.
    #[command(alias = "rotate_domain_keys")]
    RotateDomainKeys,
    /// Add a custodian as owner of all your domains.
    #[command(alias = "migrate_owner")]
    MigrateOwner,
    /// Remove an owner from a domain.
    #[command(alias = "rm_owner")]
    RmOwner,
    /// Remove a domain.
    #[command(alias = "rm_domain")]
    RmDomain,
    /// Add a secret.
    #[command(alias = "add_secret")]
    AddSecret,
    /// List a domain's secret names.
    #[command(alias = "list_domain_secrets")]
    ListDomainSecrets {
        /// The domain.
        domain_name: String,
    },
    /// List all secret names with their domains.
    #[command(alias = "list_all_secrets")]
    ListAllSecrets,
    /// Change a secret.
    #[command(alias = "update_secret")]
    UpdateSecret,
    /// Remove a secret.
    #[command(alias = "rm_secret")]
    RmSecret,
    /// Decrypt a domain: JSON, or `--output-format env|shell`, or one
    /// `--secret NAME`.
    #[command(
        alias = "decrypt_domain",
        after_help = "Examples:\n  pprotect decrypt-domain dev\n  pprotect decrypt-domain dev --output-format env > .env\n  pprotect decrypt-domain dev --secret db-password"
    )]
    DecryptDomain {
        /// The domain.
        domain_name: String,
    },
    /// Run a command with a domain's secrets in its environment.
    #[command(
        after_help = "Example:\n  pprotect exec --domain dev --uppercase -- ./server --port 8080"
    )]
    Exec {
        /// The command and its arguments, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Three-way merge of protected files (git merge driver).
    #[command(alias = "merge_driver")]
    MergeDriver {
        /// The common ancestor (`%O`).
        base: PathBuf,
        /// Our version (`%A`); receives the result.
        current: PathBuf,
        /// Their version (`%B`).
        other: PathBuf,
        /// The path in the repository (`%P`), for messages.
        path: Option<String>,
        /// Conflict marker length (`%L`).
        #[arg(long, default_value_t = 7)]
        marker_size: usize,
    },
    /// Wire the merge driver, textconv and pre-commit hook into this clone.
    #[command(alias = "setup_git")]
    SetupGit {
        /// Report what is missing; exit 1 if anything is.
        #[arg(long)]
        check: bool,
        /// Remove this clone's setup (config and hook, while no other
        /// protected file uses them).
        #[arg(long, conflicts_with = "check")]
        uninstall: bool,
        /// With --uninstall: also remove the committed `.gitattributes`
        /// line (shared with every clone).
        #[arg(long, requires = "uninstall")]
        attributes: bool,
    },
    /// Print the man page (roff), generated from these definitions.
    Man,
    /// Edit a domain's secrets in $VISUAL / $EDITOR / vi.
    #[command(after_help = "Example:\n  pprotect edit dev")]
    Edit {
        /// The domain.
        domain: String,
        /// Apply without asking; a buffer that does not parse is an error.
        #[arg(long)]
        yes: bool,
    },
    /// Add or update many secrets from a dotenv or JSON file (`-`: stdin).
    #[command(
        after_help = "Examples:\n  pprotect import dev .env\n  pprotect import dev secrets.json --update --dry-run"
    )]
    Import {
        /// The domain.
        domain: String,
        /// The file, or `-` for standard input.
        source: String,
        /// dotenv or json (default: by extension, else dotenv).
        #[arg(long)]
        format: Option<String>,
        /// Update secrets that exist (otherwise they are refused).
        #[arg(long)]
        update: bool,
        /// Print what would happen; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Who can read what: the custodian x domain matrix.
    Access,
    /// Settle the protected file's merge conflicts, redoing the merge from
    /// git's index stages.
    Resolve {
        /// Take our side (git's stage 2) for the named conflicts, or all.
        #[arg(long, conflicts_with_all = ["theirs", "show"])]
        ours: bool,
        /// Take their side (git's stage 3) for the named conflicts, or all.
        #[arg(long, conflicts_with = "show")]
        theirs: bool,
        /// Print both decrypted values of each conflicting secret (owners).
        #[arg(long)]
        show: bool,
        /// Re-seal entries sealed to a domain's old key to its rotated key
        /// although the rotation does not prove it came from an owner
        /// (shows who rotated it and asks first); for DOMAIN, or every
        /// such domain.
        #[arg(long, conflicts_with = "show")]
        reseal: bool,
        /// With --reseal: do not ask for confirmation.
        #[arg(long, requires = "reseal")]
        yes: bool,
        /// A domain (or a custodian, or `audit-log`).
        scope: Option<String>,
        /// A secret or owner of that domain.
        entry: Option<String>,
    },
    /// Cross-check the audit log against git history.
    #[command(alias = "check_audit_log")]
    CheckAuditLog {
        /// Only commits in this range (`A..B`) or reachable from a revision.
        #[arg(long)]
        range: Option<String>,
        /// Allowed clock skew, in seconds.
        #[arg(long, default_value_t = 600)]
        skew: i64,
        /// Check all history again, ignoring (and not updating) the record
        /// of commits verified clean before.
        #[arg(long)]
        no_cache: bool,
        /// Make a shallow clone's missing history an error (exit 2)
        /// instead of a note.
        #[arg(long)]
        full: bool,
        /// Accept the findings of this commit as history: append them to
        /// `.pprotect-baseline` (commit it), with --reason.
        #[arg(long, value_name = "COMMIT", requires = "reason")]
        accept: Option<String>,
        /// Why the findings are accepted (with --accept).
        #[arg(long, value_name = "TEXT", requires = "accept")]
        reason: Option<String>,
    },
    /// Print a protected file as names and fingerprints (git diff textconv).
    Textconv {
        /// The file git passes.
        path: PathBuf,
    },
    /// Check the staged change for plaintext secrets (git pre-commit hook).
    #[command(alias = "pre_commit")]
    PreCommit,
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  pprotect completions bash > ~/.local/share/bash-completion/completions/pprotect"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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
    let text = match subcommand_in_args().and_then(|n| cmd.find_subcommand_mut(&n)) {
        Some(sub) => sub.render_help().to_string(),
        None => HELP.to_string(),
    };
    let _ = term::out(&text);
    true
}

/// Parse argv, run, and return the process exit code.
pub fn main() -> i32 {
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
