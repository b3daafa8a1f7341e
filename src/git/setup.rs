//! `pprotect setup-git`: wire the merge driver, the diff textconv and the
//! pre-commit hook into one clone. Idempotent; `--check` reports what git
//! would actually do (attributes as git resolves them for the path, the
//! effective config, the hook where git looks for it and executable);
//! `--uninstall` removes this clone's part (config and hook, while no other
//! protected file needs them), and the committed `.gitattributes` line
//! only when asked.
//!
//! Works in plain clones, linked worktrees (`git worktree add`) and
//! worktrees of bare repositories: the config and hooks live in the common
//! git directory, as git reads them.

use std::path::{Path, PathBuf};

use super::repo::{ATTRIBUTES_LIMIT, Repo};
use crate::error::{Error, Result};

/// The hook installed as `pre-commit` (from `hooks/pre-commit`).
pub const HOOK: &str = include_str!("../../hooks/pre-commit");
/// A line every hook we install contains.
pub const HOOK_MARKER: &str = "pprotect pre-commit hook";
/// Where an existing, foreign hook is kept; ours runs it afterwards.
pub const CHAINED: &str = "pre-commit.pprotect-chained";

/// The local config this sets: `(section, subsection, key, value)`.
pub const CONFIG: [(&str, &str, &str, &str); 3] = [
    (
        "merge",
        "pprotect",
        "name",
        "pprotect structural merge of protected files",
    ),
    (
        "merge",
        "pprotect",
        "driver",
        "pprotect merge-driver %O %A %B %P --marker-size %L",
    ),
    ("diff", "pprotect", "textconv", "pprotect textconv"),
];

/// The `.gitattributes` line for a protected file.
pub fn attributes_line(path: &str) -> String {
    format!("{path} merge=pprotect diff=pprotect")
}

/// One thing setup-git manages, and whether it is in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What it is, for people.
    pub what: String,
    /// Whether it is present (and effective).
    pub present: bool,
}

/// The repository and paths setup-git works on.
pub struct Setup {
    repo: Repo,
    root: PathBuf,
    common_dir: PathBuf,
    config_path: PathBuf,
    hooks_dir: PathBuf,
    path: String,
}

impl Setup {
    /// For the protected file `rel` (relative to the work tree root) in
    /// `repo`.
    pub fn new(repo: Repo, rel: &str) -> Result<Setup> {
        let root = repo.workdir()?;
        let common_dir = repo.repo.common_dir().to_path_buf();
        let hooks_dir = hooks_dir(&repo, &root, &common_dir)?;
        Ok(Setup {
            config_path: common_dir.join("config"),
            repo,
            root,
            common_dir,
            hooks_dir,
            path: rel.trim_start_matches("./").to_string(),
        })
    }

    fn attributes_path(&self) -> PathBuf {
        self.root.join(".gitattributes")
    }

    /// `.gitattributes` as git reads it: a regular file (a symlink is
    /// refused, as git ignores it), bounded.
    fn read_attributes(&self) -> Result<Option<String>> {
        Ok(
            crate::store::read_regular_no_link(&self.attributes_path(), ATTRIBUTES_LIMIT)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        )
    }

    fn has_attributes_line(&self) -> bool {
        let want = attributes_line(&self.path);
        self.read_attributes()
            .ok()
            .flatten()
            .is_some_and(|t| t.lines().any(|l| l.trim() == want))
    }

    /// Protected files other than ours that the root `.gitattributes`
    /// names: they still need the shared config and hook.
    fn other_protected(&self) -> Vec<String> {
        self.repo
            .attribute_patterns()
            .into_iter()
            .filter(|p| p.trim_start_matches('/') != self.path)
            .collect()
    }

    fn read_config(&self) -> Result<gix::config::File> {
        gix::config::File::from_path_no_includes(
            self.config_path.clone(),
            gix::config::Source::Local,
        )
        .map_err(|e| Error::git(format!("cannot read {}", self.config_path.display()), e))
    }

    fn write_config(&self, cfg: &gix::config::File) -> Result<()> {
        let mut out = Vec::new();
        cfg.write_to(&mut out)
            .map_err(|e| Error::io("cannot write", &self.config_path, &e))?;
        crate::store::write_atomic(&self.config_path, &out)
    }

    fn hook_path(&self) -> PathBuf {
        self.hooks_dir.join("pre-commit")
    }

    fn hook_text(&self) -> Option<String> {
        crate::store::read_regular_no_link(&self.hook_path(), 1 << 20)
            .ok()
            .flatten()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
    }

    fn has_hook(&self) -> bool {
        self.hook_text().is_some_and(|t| t.contains(HOOK_MARKER))
    }

    /// What is and is not in place, as git will see it.
    pub fn status(&self) -> Result<Vec<Item>> {
        let (merge, diff) = effective_attributes(&self.repo, &self.root, &self.path);
        let mut items = vec![Item {
            what: format!(
                "attributes merge=pprotect diff=pprotect for {} (as git resolves them; `{}` in .gitattributes)",
                self.path,
                attributes_line(&self.path)
            ),
            present: merge.as_deref() == Some("pprotect") && diff.as_deref() == Some("pprotect"),
        }];
        let snapshot = self.repo.repo.config_snapshot();
        for (section, sub, key, value) in CONFIG {
            let now = snapshot
                .string(format!("{section}.{sub}.{key}").as_str())
                .map(|v| v.to_string());
            items.push(Item {
                what: format!("git config {section}.{sub}.{key} = {value}"),
                present: now.as_deref() == Some(value),
            });
        }
        items.push(Item {
            what: format!(
                "executable pre-commit hook in {} (where git looks for hooks)",
                self.hooks_dir.display()
            ),
            present: self.has_hook() && is_executable(&self.hook_path()),
        });
        Ok(items)
    }

    /// Install everything (idempotent). Returns what was added.
    pub fn install(&self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        if !self.has_attributes_line() {
            let p = self.attributes_path();
            let mut text = self.read_attributes()?.unwrap_or_default();
            // Keep the file's line endings.
            let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
            if !text.is_empty() && !text.ends_with('\n') {
                text.push_str(eol);
            }
            text.push_str(&attributes_line(&self.path));
            text.push_str(eol);
            crate::store::write_atomic(&p, text.as_bytes())?;
            done.push(format!(
                "added `{}` to .gitattributes",
                attributes_line(&self.path)
            ));
        }
        let mut cfg = self.read_config()?;
        let mut changed = false;
        for (section, sub, key, value) in CONFIG {
            let now = cfg
                .raw_value_by(section, Some(sub.into()), key)
                .ok()
                .map(|v| v.to_string());
            if now.as_deref() != Some(value) {
                cfg.set_raw_value_by(section, Some(sub.into()), key, value)
                    .map_err(|e| Error::git("cannot set config", e))?;
                done.push(format!("set git config {section}.{sub}.{key}"));
                changed = true;
            }
        }
        if changed {
            self.write_config(&cfg)?;
        }
        if !self.has_hook() {
            std::fs::create_dir_all(&self.hooks_dir)
                .map_err(|e| Error::io("cannot create", &self.hooks_dir, &e))?;
            let hook = self.hook_path();
            // `symlink_metadata`: a hook that is a link (even a dangling
            // one) is moved aside as it is, never written through.
            if std::fs::symlink_metadata(&hook).is_ok() {
                let chained = self.hooks_dir.join(CHAINED);
                if std::fs::symlink_metadata(&chained).is_ok() {
                    return Err(Error::git(
                        chained.display().to_string(),
                        "already exists; pprotect will not overwrite it: move it away, then run setup-git again",
                    ));
                }
                std::fs::rename(&hook, &chained)
                    .map_err(|e| Error::io("cannot move", &hook, &e))?;
                done.push(format!("kept the existing pre-commit hook as {CHAINED}"));
            }
            // A new file only: never through a link planted meanwhile.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&hook)
                .and_then(|mut f| std::io::Write::write_all(&mut f, HOOK.as_bytes()))
                .map_err(|e| Error::io("cannot write", &hook, &e))?;
            make_executable(&hook)?;
            done.push(format!(
                "installed the pre-commit hook in {}",
                self.hooks_dir.display()
            ));
        }
        Ok(done)
    }

    /// Remove this clone's setup: the config and the hook, unless another
    /// protected file still uses them; the committed `.gitattributes`
    /// line only with `attributes`.
    pub fn uninstall(&self, attributes: bool) -> Result<Vec<String>> {
        let mut done = Vec::new();
        if attributes && let Some(text) = self.read_attributes()? {
            let p = self.attributes_path();
            let want = attributes_line(&self.path);
            if text.lines().any(|l| l.trim() == want) {
                let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
                let kept: Vec<&str> = text.lines().filter(|l| l.trim() != want).collect();
                if kept.iter().all(|l| l.trim().is_empty()) {
                    std::fs::remove_file(&p).map_err(|e| Error::io("cannot remove", &p, &e))?;
                } else {
                    let mut t = kept.join(eol);
                    t.push_str(eol);
                    crate::store::write_atomic(&p, t.as_bytes())?;
                }
                done.push(format!("removed `{want}` from .gitattributes"));
            }
        }
        let others = self.other_protected();
        if !others.is_empty() {
            done.push(format!(
                "kept the merge driver config and the hook: still used by {}",
                others.join(", ")
            ));
            return Ok(done);
        }
        let mut cfg = self.read_config()?;
        let mut changed = false;
        for section in ["merge", "diff"] {
            if cfg
                .remove_section(section, Some("pprotect".into()))
                .is_some()
            {
                done.push(format!("removed git config section {section}.pprotect"));
                changed = true;
            }
        }
        if changed {
            self.write_config(&cfg)?;
        }
        let hook = self.hook_path();
        let chained = self.hooks_dir.join(CHAINED);
        let chained_exists = std::fs::symlink_metadata(&chained).is_ok();
        if self.has_hook() {
            std::fs::remove_file(&hook).map_err(|e| Error::io("cannot remove", &hook, &e))?;
            done.push("removed the pre-commit hook".into());
            if chained_exists {
                std::fs::rename(&chained, &hook)
                    .map_err(|e| Error::io("cannot restore", &hook, &e))?;
                done.push("restored the previous pre-commit hook".into());
            }
        } else if chained_exists {
            // Another tool replaced our hook since. If it wrote back what
            // we had kept, the kept copy is redundant; otherwise say so.
            let same = std::fs::read(&chained).ok() == std::fs::read(&hook).ok();
            if same || std::fs::symlink_metadata(&hook).is_err() {
                if same {
                    std::fs::remove_file(&chained)
                        .map_err(|e| Error::io("cannot remove", &chained, &e))?;
                    done.push(format!("removed {CHAINED} (the current hook is the same)"));
                } else {
                    std::fs::rename(&chained, &hook)
                        .map_err(|e| Error::io("cannot restore", &hook, &e))?;
                    done.push("restored the previous pre-commit hook".into());
                }
            } else {
                done.push(format!(
                    "left {} in place: the pre-commit hook is no longer pprotect's (another tool replaced it), so the hook kept there was not restored over it",
                    chained.display()
                ));
            }
        }
        Ok(done)
    }

    /// The common git directory (config and hooks live there).
    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }
}

/// Where git runs hooks from: `core.hooksPath` (with `~` expanded,
/// relative to the work tree root), else the common git dir's `hooks`.
fn hooks_dir(repo: &Repo, root: &Path, common_dir: &Path) -> Result<PathBuf> {
    let snapshot = repo.repo.config_snapshot();
    match snapshot.trusted_path("core.hooksPath") {
        Ok(Some(p)) if !p.as_os_str().is_empty() => {
            Ok(if p.is_absolute() { p } else { root.join(p) })
        }
        Err(e) => Err(Error::git("cannot expand core.hooksPath", e)),
        _ => Ok(common_dir.join("hooks")),
    }
}

/// The `merge` and `diff` attributes git gives `path`: the root's and each
/// directory's `.gitattributes` down to the file (deeper wins, later lines
/// win), then `$GIT_DIR/info/attributes` over all. `None` when unset.
pub fn effective_attributes(
    repo: &Repo,
    root: &Path,
    path: &str,
) -> (Option<String>, Option<String>) {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if let Some(p) = repo
        .repo
        .config_snapshot()
        .trusted_path("core.attributesFile")
        .ok()
        .flatten()
    {
        files.push((String::new(), p));
    }
    let dirs: Vec<&str> = path.split('/').collect();
    for depth in 0..dirs.len() {
        let prefix = dirs[..depth].join("/");
        let dir = if prefix.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&prefix)
        };
        files.push((prefix, dir.join(".gitattributes")));
    }
    files.push((
        String::new(),
        repo.repo.common_dir().join("info").join("attributes"),
    ));
    let (mut merge, mut diff) = (None, None);
    for (prefix, file) in files {
        let Ok(Some(bytes)) = crate::store::read_regular_no_link(&file, ATTRIBUTES_LIMIT) else {
            continue;
        };
        let rel = if prefix.is_empty() {
            path.to_string()
        } else {
            path[prefix.len() + 1..].to_string()
        };
        for line in String::from_utf8_lossy(&bytes).lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let Some(pattern) = parts.next() else {
                continue;
            };
            if !super::repo::path_matches(pattern, &rel) {
                continue;
            }
            for attr in parts {
                match attr {
                    "binary" => {
                        merge = None;
                        diff = None;
                    }
                    a => {
                        let (name, value) = match a.split_once('=') {
                            Some((n, v)) => (n, Some(v.to_string())),
                            None => (a.trim_start_matches(['-', '!']), None),
                        };
                        match name {
                            "merge" => merge = value,
                            "diff" => diff = value,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    (merge, diff)
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

#[cfg(unix)]
fn make_executable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("cannot chmod", p, &e))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<()> {
    Ok(())
}
