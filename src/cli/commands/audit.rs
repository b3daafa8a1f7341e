//! The audit log: `list-audit-log`, `truncate-audit-log`,
//! `check-audit-log`.

use clap::Args;
use pprotect::json;
use pprotect::store;

use super::super::term::{self, errln, outln, sanitize};
use super::super::{Cli, Fail};
use super::git::repo_target;
use super::{Target, commit};

/// `truncate-audit-log`'s argument.
#[derive(Debug, Args)]
pub struct TruncateArgs {
    /// How many entries to keep.
    pub keep: usize,
}

/// `check-audit-log`'s arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only commits in this range (`A..B`) or reachable from a revision.
    #[arg(long)]
    pub range: Option<String>,
    /// Allowed clock skew, in seconds.
    #[arg(long, default_value_t = 600)]
    pub skew: i64,
    /// Check all history again, ignoring (and not updating) the record
    /// of commits verified clean before.
    #[arg(long)]
    pub no_cache: bool,
    /// Make a shallow clone's missing history an error (exit 2)
    /// instead of a note.
    #[arg(long)]
    pub full: bool,
    /// Accept the findings of this commit as history: append them to
    /// `.pprotect-baseline` (commit it), with --reason.
    #[arg(long, value_name = "COMMIT", requires = "reason")]
    pub accept: Option<String>,
    /// Why the findings are accepted (with --accept).
    #[arg(long, value_name = "TEXT", requires = "accept")]
    pub reason: Option<String>,
}

/// `log`'s arguments.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this domain's changes.
    #[arg(value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: Option<String>,
    /// Only this secret's changes (with DOMAIN).
    #[arg(value_name = "SECRET", add = super::complete::secrets())]
    pub secret: Option<String>,
}

/// `pprotect log [DOMAIN [SECRET]]`: every commit that changed the
/// domain, secret, owners or keys, newest first. With an owner's
/// credentials (flags, environment, passphrase command; a prompt only
/// with `-u`), whether each re-sealed secret's value changed.
pub fn log(cli: &Cli, a: &LogArgs) -> Result<(), Fail> {
    use pprotect::git::log as glog;
    let (repo, path) = repo_target(cli)?;
    let t = super::Target::new(cli, true);
    // A domain or secret removed since is history too: names are not
    // checked against the current file, which is read only for the
    // credentials.
    use super::super::creds;
    let who = if cli.user.is_some() {
        Some(creds::get(cli, &t.load()?, &t.display)?)
    } else {
        match creds::non_interactive(cli)? {
            Some(c) => Some(creds::verify_plain(
                &t.load()?,
                c.name().to_string(),
                c.passphrase().clone(),
                false,
            )?),
            // An owner who unlocked: the agent's key, never a prompt.
            None => t
                .load()
                .ok()
                .and_then(|f| creds::from_agent(cli, &f, creds::named_user(cli).as_deref())),
        }
    };
    let filter = glog::Filter {
        domain: a.domain.as_deref(),
        secret: a.secret.as_deref(),
    };
    let log = glog::log(&repo, &path, filter, who.as_ref())?;
    if log.shallow_boundary > 0 {
        errln(&format!(
            "note: shallow clone: history before {} boundary commit(s) is not here; fetch it with `git fetch --unshallow`",
            log.shallow_boundary
        ));
    }
    if log.entries.is_empty()
        && let Some(d) = &a.domain
    {
        let what = match &a.secret {
            Some(s) => format!("secret {s} of domain {d}"),
            None => format!("domain {d}"),
        };
        errln(&sanitize(&format!("(no commit changed {what})")));
    }
    if cli.json {
        return outln(&glog::to_json(&log));
    }
    // Every line sanitized on its own (names and messages come from the
    // file and from commits).
    let mut lines: Vec<String> = Vec::new();
    for e in &log.entries {
        lines.push(format!(
            "commit {} {} {}",
            e.commit,
            pprotect::ops::format_timestamp(e.time),
            e.author
        ));
        lines.push(format!("    {}", e.summary));
        for entry in &e.audit {
            lines.push(format!("    audit: {entry}"));
        }
        for c in glog::sorted(&e.changes) {
            lines.push(format!("    {}", glog::describe(c)));
        }
        lines.push(String::new());
    }
    let text: String = lines.iter().map(|l| sanitize(l) + "\n").collect();
    term::out(&text)
}

/// `pprotect list-audit-log`.
pub fn list_audit_log(cli: &Cli, t: &Target) -> Result<(), Fail> {
    let f = t.load()?;
    if cli.json {
        return outln(&json::to_string(&f.audit_log));
    }
    let lines: Vec<String> = f.audit_log.iter().map(|e| sanitize(e)).collect();
    outln(&lines.join("\n"))
}

/// `pprotect truncate-audit-log KEEP`.
pub fn truncate_audit_log(cli: &Cli, t: &Target, a: &TruncateArgs) -> Result<(), Fail> {
    t.load_for_write()?;
    let keep = a.keep;
    commit(cli, t, None, |f| {
        f.truncate_audit_log(keep);
        Ok(())
    })
}

/// `pprotect check-audit-log`, or `--accept COMMIT --reason TEXT`.
pub fn check_audit_log(cli: &Cli, a: &CheckArgs) -> Result<(), Fail> {
    match (&a.accept, &a.reason) {
        (Some(commit), Some(reason)) => accept_findings(cli, commit, reason, a.skew),
        _ => check(cli, a.range.as_deref(), a.skew, a.no_cache, a.full),
    }
}

fn check(
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
