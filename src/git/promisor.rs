//! Partial clones (`git clone --filter=blob:none`, `--filter=tree:0`):
//! versions of the protected file, and the trees that lead to them, may
//! not be here yet. `git log -p` fetches each missing object from the
//! promisor remote as it needs it; check-audit-log fetches all of them in
//! one batch instead, through git itself (the only network step pprotect
//! takes, and only in a partial clone).

use std::io::Write;
use std::process::{Command, Stdio};

use gix::ObjectId;

use super::repo::Repo;
use crate::error::{Error, Result};

/// The promisor remote of a partial clone (`extensions.partialClone`, else
/// a remote with `promisor = true`); `None` in an ordinary clone.
pub fn promisor_remote(repo: &Repo) -> Option<String> {
    if let Some(r) = repo.config_string("extensions.partialClone") {
        return Some(r);
    }
    let snapshot = repo.repo.config_snapshot();
    let file = snapshot.plumbing();
    file.sections_by_name("remote")?
        .filter(|s| gix::config::section::is_trusted(s.meta()))
        .find(|s| {
            s.value("promisor")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"true"))
        })
        .and_then(|s| s.header().subsection_name().map(|n| n.to_string()))
}

/// Make sure every object of `ids` is here: fetch the missing ones from
/// the promisor remote in one `git fetch` (trees come with their subtrees,
/// blobs are left out unless asked for). Without a promisor remote, or
/// when the fetch fails, an error names the missing objects and what to
/// run.
pub fn ensure(repo: &Repo, ids: &[ObjectId], what: &str) -> Result<()> {
    let missing: Vec<ObjectId> = ids
        .iter()
        .copied()
        .filter(|id| !repo.repo.has_object(*id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = |n: usize| {
        let mut s: Vec<String> = missing.iter().take(n).map(ToString::to_string).collect();
        if missing.len() > n {
            s.push(format!("and {} more", missing.len() - n));
        }
        s.join(", ")
    };
    let Some(remote) = promisor_remote(repo) else {
        return Err(Error::git(
            format!("{} {what} are missing ({})", missing.len(), list(3)),
            "this is not a partial clone with a promisor remote to fetch them from; run `git fetch --refetch` (or clone again without --filter)",
        ));
    };
    tracing::debug!(
        count = missing.len(),
        what,
        "fetching from the promisor remote"
    );
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(repo.git_dir())
        .args([
            "-c",
            "fetch.negotiationAlgorithm=noop",
            "fetch",
            &remote,
            "--no-tags",
            "--no-write-fetch-head",
            "--recurse-submodules=no",
            "--filter=blob:none",
            "--stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::git(format!("cannot run git to fetch {what}"), e))?;
    let mut input = String::new();
    for id in &missing {
        input.push_str(&format!("{id}\n"));
    }
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::git(format!("cannot run git to fetch {what}"), e))?;
    let still: Vec<ObjectId> = missing
        .iter()
        .copied()
        .filter(|id| !repo.repo.has_object(*id))
        .collect();
    if out.status.success() && still.is_empty() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    Err(Error::git(
        format!(
            "{} {what} are missing ({}) and could not be fetched from remote {remote}{}",
            still.len().max(1),
            list(3),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        ),
        format!(
            "fetch them with `git fetch {remote}` when the remote is reachable, or run `git fetch --refetch`"
        ),
    ))
}
