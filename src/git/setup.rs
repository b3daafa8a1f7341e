//! `pprotect setup-git`: wire the merge driver, the diff textconv and the
//! pre-commit hook into one clone. Idempotent; `--check` reports what is
//! missing; `--uninstall` removes exactly what it added.

use std::path::{Path, PathBuf};

use super::repo::Repo;
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
    /// Whether it is present.
    pub present: bool,
}

/// The repository and paths setup-git works on.
pub struct Setup {
    root: PathBuf,
    config_path: PathBuf,
    hooks_dir: PathBuf,
    path: String,
}

impl Setup {
    /// For the protected file `file` (relative to the repository root),
    /// in the repository containing `cwd`.
    pub fn new(cwd: &Path, file: &str) -> Result<Setup> {
        let repo = Repo::discover(cwd)?;
        let root = repo.workdir()?;
        let git_dir = repo.git_dir();
        let hooks_dir = match repo.config_string("core.hooksPath") {
            Some(p) if !p.is_empty() => {
                let p = PathBuf::from(p);
                if p.is_absolute() { p } else { root.join(p) }
            }
            _ => git_dir.join("hooks"),
        };
        Ok(Setup {
            root,
            config_path: git_dir.join("config"),
            hooks_dir,
            path: file.trim_start_matches("./").to_string(),
        })
    }

    fn attributes_path(&self) -> PathBuf {
        self.root.join(".gitattributes")
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

    /// `.gitattributes` as git reads it: a regular file (a symlink is
    /// refused, as git ignores it), bounded.
    fn read_attributes(&self) -> Result<Option<String>> {
        Ok(crate::store::read_regular_no_link(
            &self.attributes_path(),
            super::repo::ATTRIBUTES_LIMIT,
        )?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn has_attributes(&self) -> bool {
        let want = attributes_line(&self.path);
        self.read_attributes()
            .ok()
            .flatten()
            .is_some_and(|t| t.lines().any(|l| l.trim() == want))
    }

    fn hook_path(&self) -> PathBuf {
        self.hooks_dir.join("pre-commit")
    }

    fn has_hook(&self) -> bool {
        crate::store::read_regular_no_link(&self.hook_path(), 1 << 20)
            .ok()
            .flatten()
            .is_some_and(|t| String::from_utf8_lossy(&t).contains(HOOK_MARKER))
    }

    /// What is and is not in place.
    pub fn status(&self) -> Result<Vec<Item>> {
        let cfg = self.read_config()?;
        let mut items = vec![Item {
            what: format!(".gitattributes line `{}`", attributes_line(&self.path)),
            present: self.has_attributes(),
        }];
        for (section, sub, key, value) in CONFIG {
            let now = cfg
                .raw_value_by(section, Some(sub.into()), key)
                .ok()
                .map(|v| v.to_string());
            items.push(Item {
                what: format!("git config {section}.{sub}.{key} = {value}"),
                present: now.as_deref() == Some(value),
            });
        }
        items.push(Item {
            what: format!("pre-commit hook in {}", self.hooks_dir.display()),
            present: self.has_hook(),
        });
        Ok(items)
    }

    /// Install everything (idempotent). Returns what was added.
    pub fn install(&self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        if !self.has_attributes() {
            let p = self.attributes_path();
            let mut text = self.read_attributes()?.unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&attributes_line(&self.path));
            text.push('\n');
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

    /// Remove exactly what [`Setup::install`] adds.
    pub fn uninstall(&self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let p = self.attributes_path();
        if let Ok(Some(text)) = self.read_attributes() {
            let want = attributes_line(&self.path);
            if text.lines().any(|l| l.trim() == want) {
                let kept: Vec<&str> = text.lines().filter(|l| l.trim() != want).collect();
                if kept.iter().all(|l| l.trim().is_empty()) {
                    std::fs::remove_file(&p).map_err(|e| Error::io("cannot remove", &p, &e))?;
                } else {
                    let mut t = kept.join("\n");
                    t.push('\n');
                    crate::store::write_atomic(&p, t.as_bytes())?;
                }
                done.push(format!("removed `{want}` from .gitattributes"));
            }
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
        if self.has_hook() {
            let hook = self.hook_path();
            std::fs::remove_file(&hook).map_err(|e| Error::io("cannot remove", &hook, &e))?;
            done.push("removed the pre-commit hook".into());
            let chained = self.hooks_dir.join(CHAINED);
            if chained.exists() {
                std::fs::rename(&chained, &hook)
                    .map_err(|e| Error::io("cannot restore", &hook, &e))?;
                done.push("restored the previous pre-commit hook".into());
            }
        }
        Ok(done)
    }
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
