//! About pprotect itself: `man` and `completions` (`version` is in the
//! dispatch).

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::env::EnvCompleter;

use super::super::term::out;
use super::super::{Cli, Fail};

/// `man`'s arguments.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Print this subcommand's page (`pprotect-<COMMAND>(1)`) instead of
    /// the main one.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write every page (`pprotect.1` and `pprotect-<command>.1`) into
    /// this directory instead of printing one.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// `completions`' argument.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// The environment variables pprotect reads, for the man pages.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "PPROTECT_USER",
        "The acting user's email, when -u/--user is not given (unless --ignore-env).",
    ),
    (
        "PPROTECT_PASSPHRASE",
        "The acting user's passphrase (unless --ignore-env).",
    ),
    (
        "PPROTECT_PASSPHRASE_CMD",
        "A command (sh -c, PPROTECT_USER set) that prints the passphrase, when none is given otherwise.",
    ),
    (
        "PPROTECT_PASSPHRASE_CMD_TIMEOUT",
        "Seconds a passphrase command may run (default 60).",
    ),
    (
        "PPROTECT_PASSPHRASE_FILE",
        "A file holding the passphrase, for the git merge driver's re-seal.",
    ),
    (
        "PPROTECT_ENV_PREFIX",
        "The prefix of the credential variables instead of PPROTECT (as --env-prefix).",
    ),
    (
        "PPROTECT_AGENT",
        "0, false, no or off: never ask the agent for a key (as --no-agent).",
    ),
    (
        "XDG_RUNTIME_DIR",
        "Where the agent's socket lives (pprotect/agent.sock); else a private directory in the temporary directory.",
    ),
    (
        "PPROTECT_TRUST_KDF_PARAMS",
        "1, true or yes: accept stored key-derivation costs beyond the usual bounds.",
    ),
    (
        "PPROTECT_PROGRESS_AFTER_MS",
        "Milliseconds before a progress line or spinner appears on a terminal.",
    ),
    (
        "PPROTECT_COMPLETE",
        "Set by the shell completion script to ask for completions.",
    ),
    ("VISUAL, EDITOR", "The editor edit runs (else vi)."),
    ("NO_COLOR", "Set: no colours in diffs and logs."),
    (
        "RUST_LOG",
        "Tracing filter for stderr (as -v); never a secret or passphrase.",
    ),
];

/// Exit statuses, for the man pages.
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "A refused operation, bad credentials, an invalid or hostile file, a usage error, or findings (check-audit-log, pre-commit, resolve).",
    ),
    (
        "2",
        "A missing protected file, init on an existing file, an I/O or git failure, or --non-interactive --ignore-env without --passphrase-file.",
    ),
    ("other", "exec passes its command's status through."),
];

/// Text as roff reads it: backslashes escaped, a leading `.` or `'`
/// guarded.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The examples in a command's `after_help`, one per line.
fn examples(cmd: &clap::Command) -> Vec<String> {
    cmd.get_after_help()
        .map(|h| {
            h.to_string()
                .lines()
                .filter(|l| !l.trim_end().ends_with(':'))
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// One man page: clap_mangen's sections, then ENVIRONMENT, EXIT STATUS,
/// EXAMPLES and SEE ALSO.
fn page(cmd: &clap::Command, main: bool, subs: &[String]) -> Result<Vec<u8>, Fail> {
    let fail = |e: std::io::Error| Fail::msg(2, format!("cannot render the man page: {e}"));
    let man = clap_mangen::Man::new(cmd.clone()).section("1");
    let mut w = Vec::new();
    man.render_title(&mut w).map_err(fail)?;
    man.render_name_section(&mut w).map_err(fail)?;
    man.render_synopsis_section(&mut w).map_err(fail)?;
    if !main {
        man.render_description_section(&mut w).map_err(fail)?;
    }
    man.render_options_section(&mut w).map_err(fail)?;
    if main {
        w.extend_from_slice(b".SH DESCRIPTION\n");
        for para in super::super::HELP.split("\n\n").skip(1).take(1) {
            w.extend_from_slice(format!(".PP\n{}\n", roff(para.trim())).as_bytes());
        }
        w.extend_from_slice(b".SH COMMANDS\n");
        for c in cmd.get_subcommands() {
            w.extend_from_slice(
                format!(
                    ".TP\n\\fBpprotect\\-{}\\fR(1)\n{}\n",
                    roff(c.get_name()),
                    roff(&c.get_about().map(|a| a.to_string()).unwrap_or_default())
                )
                .as_bytes(),
            );
        }
    }
    w.extend_from_slice(b".SH ENVIRONMENT\n");
    for (name, what) in ENVIRONMENT {
        w.extend_from_slice(format!(".TP\n\\fB{}\\fR\n{}\n", roff(name), roff(what)).as_bytes());
    }
    w.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (code, what) in EXIT_STATUS {
        w.extend_from_slice(format!(".TP\n\\fB{}\\fR\n{}\n", roff(code), roff(what)).as_bytes());
    }
    let ex = if main {
        vec![
            "pprotect init alice@example.com".to_string(),
            "pprotect add-domain dev".to_string(),
            "pprotect add-secret dev api-key".to_string(),
            "pprotect decrypt-domain dev".to_string(),
            "pprotect exec dev \\-\\- ./server".to_string(),
        ]
    } else {
        examples(cmd)
    };
    if !ex.is_empty() {
        w.extend_from_slice(b".SH EXAMPLES\n");
        for e in ex {
            w.extend_from_slice(format!(".PP\n.nf\n{}\n.fi\n", roff(&e)).as_bytes());
        }
    }
    w.extend_from_slice(b".SH \"SEE ALSO\"\n");
    let see: Vec<String> = if main {
        subs.iter()
            .map(|s| format!("\\fBpprotect\\-{}\\fR(1)", roff(s)))
            .collect()
    } else {
        vec!["\\fBpprotect\\fR(1)".to_string()]
    };
    w.extend_from_slice(format!("{}\n", see.join(", ")).as_bytes());
    Ok(w)
}

/// The pages named (`None`: the main one), each as `("pprotect", main)`
/// or `("pprotect-<cmd>", page)`, from one build of the definitions.
fn pages(only: Option<&str>, all: bool) -> Result<Vec<(String, Vec<u8>)>, Fail> {
    let mut cmd = Cli::command();
    cmd.build();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut out = Vec::new();
    if all || only.is_none() {
        out.push(("pprotect".to_string(), page(&cmd, true, &subs)?));
    }
    for sub in cmd.get_subcommands() {
        if !all && only != Some(sub.get_name()) {
            continue;
        }
        let name = format!("pprotect-{}", sub.get_name());
        let scoped = super::super::scoped(sub)
            .name(&name)
            .bin_name(format!("pprotect {}", sub.get_name()));
        out.push((name, page(&scoped, false, &subs)?));
    }
    Ok(out)
}

/// `pprotect man [COMMAND] [--dir DIR]`.
pub fn man(a: &ManArgs) -> Result<(), Fail> {
    if let Some(dir) = &a.dir {
        let all = pages(None, true)?;
        std::fs::create_dir_all(dir).map_err(|e| pprotect::Error::io("cannot create", dir, &e))?;
        for (name, text) in &all {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, text)
                .map_err(|e| pprotect::Error::io("cannot write", &path, &e))?;
        }
        return out(&format!(
            "wrote {} man pages to {}\n",
            all.len(),
            dir.display()
        ));
    }
    // An alias (`decrypt_domain`) names its subcommand's page.
    let only = match &a.command {
        None => None,
        Some(c) => match Cli::command().find_subcommand(c) {
            Some(sub) => Some(sub.get_name().to_string()),
            None => {
                return Err(Fail::msg(
                    1,
                    format!("no subcommand {c}: `pprotect man` lists them"),
                ));
            }
        },
    };
    let page = pages(only.as_deref(), false)?;
    out(&String::from_utf8_lossy(&page[0].1))
}

/// `pprotect completions SHELL`: the script that asks pprotect for
/// completions as you type (subcommands, flags, flag values, and the
/// names in the protected file).
pub fn completions(a: &CompletionsArgs) -> Result<(), Fail> {
    use clap_complete::Shell;
    use clap_complete::env as sh;
    let shell: &dyn EnvCompleter = match a.shell {
        Shell::Bash => &sh::Bash,
        Shell::Zsh => &sh::Zsh,
        Shell::Fish => &sh::Fish,
        Shell::Elvish => &sh::Elvish,
        Shell::PowerShell => &sh::Powershell,
        _ => {
            return Err(Fail::msg(
                1,
                "completions: use bash, zsh, fish, elvish or powershell",
            ));
        }
    };
    let mut buf = Vec::new();
    shell
        .write_registration(
            super::complete::VAR,
            "pprotect",
            "pprotect",
            "pprotect",
            &mut buf,
        )
        .map_err(|e| Fail::msg(2, format!("cannot write the completion script: {e}")))?;
    out(&String::from_utf8_lossy(&buf))
}
