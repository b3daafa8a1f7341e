//! Dynamic shell completion (clap_complete's `PPROTECT_COMPLETE=SHELL
//! pprotect` protocol): flag values, and the domain, secret and custodian
//! names of the protected file the command line names (`--file`, else the
//! one a command would find). Completion never prompts, never decrypts and
//! never fails: a file that cannot be read completes nothing.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter, CompletionCandidate};
use pprotect::ProtectedFile;

/// The environment variable that turns a run into a completion request.
pub const VAR: &str = "PPROTECT_COMPLETE";

/// The flags that take a value (so the word after them is no
/// positional), read from the command definitions.
fn value_flags() -> Vec<String> {
    let mut cmd = <super::super::Cli as clap::CommandFactory>::command();
    cmd.build();
    let mut flags = Vec::new();
    let mut add = |c: &clap::Command| {
        for a in c.get_arguments().filter(|a| a.get_action().takes_values()) {
            flags.extend(a.get_long().map(|l| format!("--{l}")));
            flags.extend(a.get_short().map(|s| format!("-{s}")));
        }
    };
    add(&cmd);
    for sub in cmd.get_subcommands() {
        add(sub);
    }
    flags
}

/// The words of the command line being completed (after the `--` the
/// shell integration passes), without the program name and the word under
/// the cursor.
fn words() -> Vec<String> {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut words: Vec<String> = match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].iter().skip(1).cloned().collect(),
        None => Vec::new(),
    };
    words.pop();
    words
}

/// The value of `flag` on the command line (`--flag V` or `--flag=V`).
fn flag_value(words: &[String], flag: &str) -> Option<String> {
    let eq = format!("{flag}=");
    words.iter().enumerate().find_map(|(i, w)| {
        if w == flag {
            words.get(i + 1).cloned()
        } else {
            w.strip_prefix(&eq).map(str::to_string)
        }
    })
}

/// The positional words after the subcommand.
fn positionals(words: &[String]) -> Vec<String> {
    let value_flags = value_flags();
    let mut out = Vec::new();
    let mut skip = false;
    let mut seen_command = false;
    for w in words {
        if skip {
            skip = false;
            continue;
        }
        if w == "--" {
            break;
        }
        if w.starts_with('-') {
            skip = value_flags.iter().any(|f| f == w);
            continue;
        }
        if seen_command {
            out.push(w.clone());
        } else {
            seen_command = true;
        }
    }
    out
}

/// The protected file the command line names, parsed; `None` when it
/// cannot be read.
fn load() -> Option<ProtectedFile> {
    let words = words();
    let file = flag_value(&words, "--file").map(PathBuf::from);
    let path = super::protected_path_from(file.as_deref(), true);
    let bytes = pprotect::store::read_bounded(&path).ok()?;
    ProtectedFile::from_bytes(&bytes).ok()
}

/// The names that start with what was typed.
fn matching<'a>(current: &OsStr, names: impl Iterator<Item = &'a str>) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    names
        .filter(|n| n.starts_with(typed.as_ref()))
        .filter(|n| !n.chars().any(pprotect::model::is_display_unsafe))
        .map(CompletionCandidate::new)
        .collect()
}

/// Domain names.
pub fn domains() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| match load() {
        Some(f) => matching(current, f.domains.keys().map(String::as_str)),
        None => Vec::new(),
    })
}

/// Secret names: of the domain named earlier on the line (`--domain` or
/// the first argument), else of every domain.
pub fn secrets() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let Some(f) = load() else {
            return Vec::new();
        };
        let words = words();
        let domain =
            flag_value(&words, "--domain").or_else(|| positionals(&words).into_iter().next());
        match domain.and_then(|d| f.domains.get(&d)) {
            Some(d) => matching(current, d.secrets.keys().map(String::as_str)),
            None => {
                let all = f.all_secret_names();
                matching(current, all.keys().copied())
            }
        }
    })
}

/// Key custodian names.
pub fn custodians() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| match load() {
        Some(f) => matching(current, f.custodians.keys().map(String::as_str)),
        None => Vec::new(),
    })
}

/// A fixed set of values (the value is still checked by the command, with
/// pocket_protector's message).
pub fn values(set: &'static [&'static str]) -> ArgValueCandidates {
    ArgValueCandidates::new(move || set.iter().map(|v| CompletionCandidate::new(*v)).collect())
}
