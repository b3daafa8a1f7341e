//! Git integration: `merge-driver`, `resolve`, `setup-git`, `textconv`,
//! `pre-commit`.

use std::path::{Path, PathBuf};

use clap::Args;
use pprotect::json;
use pprotect::store;

use super::super::term::{self, errln, out, outln, sanitize};
use super::super::{Cli, Fail, creds};
use super::protected_path;

/// `merge-driver`'s arguments (git's `%O %A %B %P --marker-size %L`).
#[derive(Debug, Args)]
pub struct MergeDriverArgs {
    /// The common ancestor (`%O`).
    pub base: PathBuf,
    /// Our version (`%A`); receives the result.
    pub current: PathBuf,
    /// Their version (`%B`).
    pub other: PathBuf,
    /// The path in the repository (`%P`), for messages.
    pub path: Option<String>,
    /// Conflict marker length (`%L`).
    #[arg(long, default_value_t = 7)]
    pub marker_size: usize,
}

/// `setup-git`'s arguments.
#[derive(Debug, Args)]
pub struct SetupGitArgs {
    /// Report what is missing; exit 1 if anything is.
    #[arg(long)]
    pub check: bool,
    /// Remove this clone's setup (config and hook, while no other
    /// protected file uses them).
    #[arg(long, conflicts_with = "check")]
    pub uninstall: bool,
    /// With --uninstall: also remove the committed `.gitattributes`
    /// line (shared with every clone).
    #[arg(long, requires = "uninstall")]
    pub attributes: bool,
}

/// `resolve`'s arguments.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Take our side (git's stage 2) for the named conflicts, or all.
    #[arg(long, conflicts_with_all = ["theirs", "show"])]
    pub ours: bool,
    /// Take their side (git's stage 3) for the named conflicts, or all.
    #[arg(long, conflicts_with = "show")]
    pub theirs: bool,
    /// Print both decrypted values of each conflicting secret (owners).
    #[arg(long)]
    pub show: bool,
    /// Re-seal entries sealed to a domain's old key to its rotated key
    /// although the rotation does not prove it came from an owner
    /// (shows who rotated it and asks first); for DOMAIN, or every
    /// such domain.
    #[arg(long, conflicts_with = "show")]
    pub reseal: bool,
    /// With --reseal: do not ask for confirmation.
    #[arg(long, requires = "reseal")]
    pub yes: bool,
    /// A domain (or a custodian, or `audit-log`).
    #[arg(add = super::complete::domains())]
    pub scope: Option<String>,
    /// A secret or owner of that domain.
    #[arg(add = super::complete::secrets())]
    pub entry: Option<String>,
}

/// `textconv`'s argument.
#[derive(Debug, Args)]
pub struct TextconvArgs {
    /// The file git passes.
    pub path: PathBuf,
}

/// `pprotect merge-driver O A B [P]`.
pub fn merge_driver(cli: &Cli, a: &MergeDriverArgs) -> Result<(), Fail> {
    merge_files(
        cli.no_agent,
        &a.base,
        &a.current,
        &a.other,
        a.path.as_deref(),
        a.marker_size,
    )
}

/// `pprotect setup-git`.
pub fn setup_git(cli: &Cli, a: &SetupGitArgs) -> Result<(), Fail> {
    setup(cli, a.check, a.uninstall, a.attributes)
}

/// `pprotect resolve`.
pub fn resolve(cli: &Cli, a: &ResolveArgs) -> Result<(), Fail> {
    let side = match (a.ours, a.theirs) {
        (true, _) => Some(pprotect::git::merge::Side::Ours),
        (_, true) => Some(pprotect::git::merge::Side::Theirs),
        _ => None,
    };
    let reseal = a.reseal.then_some(a.yes);
    resolve_with(cli, side, a.show, reseal, a.scope.clone(), a.entry.clone())
}

/// `pprotect textconv FILE`: read it whole even when over the size
/// limit, as textconv must never fail `git diff` (a parse error becomes
/// a warning).
pub fn textconv(a: &TextconvArgs) -> Result<(), Fail> {
    let bytes =
        std::fs::read(&a.path).map_err(|e| pprotect::Error::io("cannot read", &a.path, &e))?;
    out(&pprotect::git::textconv::render_bytes(&bytes))
}

/// `pprotect pre-commit` (the hook git runs).
pub fn pre_commit(cli: &Cli) -> Result<(), Fail> {
    let cwd = std::env::current_dir().map_err(|e| Fail::msg(2, e.to_string()))?;
    let repo = pprotect::git::repo::Repo::discover(&cwd)?;
    let creds = creds::non_interactive(cli)?;
    let keys = creds::keyring(cli.no_agent, creds.as_ref(), creds::named_user(cli));
    let report = pprotect::git::precommit::check(&repo, keys)?;
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

fn merge_files(
    no_agent: bool,
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
    let prefix = std::env::var("PPROTECT_ENV_PREFIX").unwrap_or_else(|_| "PPROTECT".into());
    let keys = creds::keyring(
        no_agent,
        creds.as_ref(),
        std::env::var(format!("{prefix}_USER")).ok(),
    );
    let git_dir = std::env::current_dir()
        .ok()
        .and_then(|d| pprotect::git::repo::Repo::discover(&d).ok())
        .map(|r| r.git_dir());
    let single_parent = !pprotect::git::merge::git_is_merging(git_dir.as_deref());
    let merged =
        match pprotect::git::merge::merge_bytes(&b, &o, &t, keys, marker_size, single_parent) {
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
pub(super) fn repo_target(cli: &Cli) -> Result<(pprotect::git::repo::Repo, String), Fail> {
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

fn setup(cli: &Cli, check: bool, uninstall: bool, attributes: bool) -> Result<(), Fail> {
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

fn resolve_with(
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
        (None, None) => creds::from_agent(cli, &o, creds::named_user(cli).as_deref())
            .map(Keyring::from_unlocked),
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
