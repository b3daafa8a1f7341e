//! Reading a git repository with `gix`: discovery, the index, trees,
//! blobs and config. No `git` subprocess.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gix::ObjectId;

use crate::error::{Error, Result};

/// An opened repository.
pub struct Repo {
    /// The gix repository.
    pub repo: gix::Repository,
}

/// The most of a `.gitattributes` file pprotect reads.
pub const ATTRIBUTES_LIMIT: usize = 1 << 20;

/// Default path of the protected file, relative to the repository root.
pub const DEFAULT_PROTECTED: &str = "protected.yaml";

impl Repo {
    /// Find the repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<Repo> {
        let repo = gix::discover(dir).map_err(|e| Error::git("not in a git repository", e))?;
        Ok(Repo { repo })
    }

    /// The work tree root (the repository root for bare-less repositories).
    pub fn workdir(&self) -> Result<PathBuf> {
        self.repo
            .workdir()
            .map(Path::to_path_buf)
            .ok_or_else(|| Error::git("repository", "has no work tree"))
    }

    /// The git directory.
    pub fn git_dir(&self) -> PathBuf {
        self.repo.git_dir().to_path_buf()
    }

    /// Read a blob's bytes.
    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>> {
        let blob = self
            .repo
            .find_blob(id)
            .map_err(|e| Error::git(format!("cannot read object {id}"), e))?;
        Ok(blob.data.clone())
    }

    /// An object's size from its header, without reading it.
    pub fn object_size(&self, id: ObjectId) -> Result<u64> {
        let h = self
            .repo
            .find_header(id)
            .map_err(|e| Error::git(format!("cannot read object {id}"), e))?;
        Ok(h.size())
    }

    /// Read a blob of at most `limit` bytes; `Ok(None)` when it is larger
    /// (checked from the object header, before reading).
    pub fn blob_bounded(&self, id: ObjectId, limit: usize) -> Result<Option<Vec<u8>>> {
        if self.object_size(id)? > limit as u64 {
            return Ok(None);
        }
        self.blob(id).map(Some)
    }

    /// Every blob path of a tree, with its object id.
    pub fn tree_map(&self, tree_id: ObjectId) -> Result<HashMap<String, ObjectId>> {
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| Error::git(format!("cannot read tree {tree_id}"), e))?;
        let mut rec = gix::traverse::tree::Recorder::default();
        tree.traverse()
            .breadthfirst(&mut rec)
            .map_err(|e| Error::git(format!("cannot walk tree {tree_id}"), e))?;
        Ok(rec
            .records
            .into_iter()
            .filter(|e| e.mode.is_blob())
            .map(|e| (e.filepath.to_string(), e.oid))
            .collect())
    }

    /// The blob paths of HEAD's tree (empty when HEAD is unborn).
    pub fn head_map(&self) -> Result<HashMap<String, ObjectId>> {
        match self.repo.head_tree_id() {
            Ok(id) => self.tree_map(id.detach()),
            Err(_) => Ok(HashMap::new()),
        }
    }

    /// The index entries: path, object id, and merge stage (0 unless the
    /// path is unmerged). Submodules and symlinks are left out.
    pub fn index_entries(&self) -> Result<Vec<(String, ObjectId, u32)>> {
        let index = self
            .repo
            .index_or_empty()
            .map_err(|e| Error::git("cannot read the index", e))?;
        Ok(index
            .entries()
            .iter()
            .filter(|e| {
                matches!(
                    e.mode,
                    gix::index::entry::Mode::FILE | gix::index::entry::Mode::FILE_EXECUTABLE
                )
            })
            .map(|e| (e.path(&index).to_string(), e.id, e.stage_raw()))
            .collect())
    }

    /// The blobs of an unmerged path's index stages: base (`:1:`), ours
    /// (`:2:`) and theirs (`:3:`); `None` when the path is not unmerged.
    #[allow(clippy::type_complexity)]
    pub fn stages(
        &self,
        path: &str,
    ) -> Result<Option<(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>)>> {
        let mut found: [Option<ObjectId>; 3] = [None; 3];
        for (p, id, stage) in self.index_entries()? {
            if p == path && (1..=3).contains(&stage) {
                found[stage as usize - 1] = Some(id);
            }
        }
        if found.iter().all(Option::is_none) {
            return Ok(None);
        }
        let read = |id: Option<ObjectId>| id.map(|id| self.blob(id)).transpose();
        Ok(Some((read(found[0])?, read(found[1])?, read(found[2])?)))
    }

    /// The stages git recorded for `path` when it was marked resolved
    /// (`git add` of a conflicted file): the index's resolve-undo record,
    /// which `git checkout -m` restores from. `None` without one.
    #[allow(clippy::type_complexity)]
    pub fn resolve_undo(
        &self,
        path: &str,
    ) -> Result<Option<(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>)>> {
        let index_path = self.repo.index_path();
        let bytes = match std::fs::read(&index_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", &index_path, &e)),
        };
        let hash_len = self.repo.object_hash().len_in_bytes();
        let Some(ids) = resolve_undo_stages(&bytes, hash_len, path) else {
            return Ok(None);
        };
        let read = |id: Option<ObjectId>| id.map(|id| self.blob(id)).transpose();
        Ok(Some((read(ids[0])?, read(ids[1])?, read(ids[2])?)))
    }

    /// `path`'s blob at a revision (`HEAD`, `MERGE_HEAD`, ...); `None` when
    /// the revision does not exist or has no such file.
    pub fn blob_at_rev(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>> {
        match self.repo.rev_parse_single(rev) {
            Ok(id) => self.blob_in_commit(id.detach(), path),
            Err(_) => Ok(None),
        }
    }

    /// `path`'s blob (at most the protected-file size limit) in a commit;
    /// `None` without such a commit or file.
    fn blob_in_commit(&self, id: ObjectId, path: &str) -> Result<Option<Vec<u8>>> {
        match self.blob_id_at(id, path)? {
            Some(blob) => self.blob_bounded(blob, crate::codec::MAX_FILE_BYTES),
            None => Ok(None),
        }
    }

    /// The id of `path`'s blob in commit `id`; `None` without such a
    /// commit or file.
    pub fn blob_id_at(&self, id: ObjectId, path: &str) -> Result<Option<ObjectId>> {
        let Ok(commit) = self.repo.find_commit(id) else {
            return Ok(None);
        };
        let tree = commit
            .tree()
            .map_err(|e| Error::git(format!("cannot read the tree of {id}"), e))?;
        let entry = tree
            .lookup_entry_by_path(path)
            .map_err(|e| Error::git(format!("cannot look up {path} in {id}"), e))?;
        Ok(entry.filter(|e| e.mode().is_blob()).map(|e| e.object_id()))
    }

    /// The stages of a merge commit's file: the merge base's, the first
    /// parent's and the second parent's versions of `path`. `None` when
    /// `commit` is not a two-parent merge.
    #[allow(clippy::type_complexity)]
    pub fn merge_commit_stages(
        &self,
        commit: &str,
        path: &str,
    ) -> Result<Option<(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>)>> {
        let r = &self.repo;
        let Ok(id) = r.rev_parse_single(commit) else {
            return Ok(None);
        };
        let c = r
            .find_commit(id)
            .map_err(|e| Error::git(format!("cannot read commit {id}"), e))?;
        let parents: Vec<ObjectId> = c.parent_ids().map(|p| p.detach()).collect();
        let [one, two] = parents[..] else {
            return Ok(None);
        };
        let base = r
            .merge_base(one, two)
            .map_err(|e| Error::git("cannot find the merge base", e))?
            .map(|b| b.detach());
        let blob = |commit: Option<ObjectId>| -> Result<Option<Vec<u8>>> {
            commit.map_or(Ok(None), |c| self.blob_in_commit(c, path))
        };
        Ok(Some((blob(base)?, blob(Some(one))?, blob(Some(two))?)))
    }

    /// A path as the index names it: `path` (relative to the current
    /// directory, or absolute) relative to the work tree root.
    pub fn rel_path(&self, path: &Path) -> Result<String> {
        let root = self.workdir()?;
        let root = std::fs::canonicalize(&root).unwrap_or(root);
        let abs = std::path::absolute(path).map_err(|e| Error::io("cannot resolve", path, &e))?;
        let parent = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let parent = std::fs::canonicalize(&parent).unwrap_or(parent);
        let full = match abs.file_name() {
            Some(name) => parent.join(name),
            None => parent,
        };
        let rel = full.strip_prefix(&root).map_err(|_| {
            Error::git(
                path.display().to_string(),
                "is outside this repository's work tree",
            )
        })?;
        Ok(rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"))
    }

    /// Whether git would use this repository as it is: it belongs to the
    /// current user, or `safe.directory` (global or system config) lists
    /// it. Otherwise git refuses it (`detected dubious ownership`) and
    /// pprotect reads none of its own configuration ([`Repo::config_string`]).
    pub fn is_trusted(&self) -> bool {
        self.repo.git_dir_trust() == gix::sec::Trust::Full
    }

    /// All values of a multi-valued config key (`section.key`), from
    /// trusted configuration only: in a repository git would not use, its
    /// own config files are left out (global and system config still
    /// count), as git leaves the whole repository alone.
    pub fn config_strings(&self, key: &str) -> Vec<String> {
        self.repo
            .config_snapshot()
            .plumbing()
            .strings_filter(key, &mut gix::config::section::is_trusted)
            .map(|v| v.into_iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    }

    /// One config value, from trusted configuration only (see
    /// [`Repo::config_strings`]).
    pub fn config_string(&self, key: &str) -> Option<String> {
        self.repo
            .config_snapshot()
            .plumbing()
            .string_filter(key, &mut gix::config::section::is_trusted)
            .map(|s| s.to_string())
    }

    /// When this repository is not trusted and its own configuration sets
    /// `key`, the line that says it was ignored and why (as git says it).
    pub fn untrusted_note(&self, key: &str) -> Option<String> {
        if self.is_trusted() || self.repo.config_snapshot().string(key).is_none() {
            return None;
        }
        if self.config_string(key).is_some() {
            return None;
        }
        let dir = self
            .workdir()
            .unwrap_or_else(|_| self.git_dir())
            .display()
            .to_string();
        Some(format!(
            "ignoring {key} from this repository's config: detected dubious ownership in repository at '{dir}' (it belongs to another user, and git would not use it); to trust it, run `git config --global --add safe.directory {dir}`"
        ))
    }

    /// The patterns with `merge=pprotect` in the root `.gitattributes`
    /// (none without one). As git does, a symlinked `.gitattributes` is
    /// ignored; it is read bounded, and only as a regular file.
    pub fn attribute_patterns(&self) -> Vec<String> {
        let Ok(root) = self.workdir() else {
            return Vec::new();
        };
        let text =
            crate::store::read_regular_no_link(&root.join(".gitattributes"), ATTRIBUTES_LIMIT)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
        protected_patterns_in(&text)
    }

    /// The protected file paths: [`Repo::attribute_patterns`], else
    /// `protected.yaml`.
    pub fn protected_patterns(&self) -> Vec<String> {
        let pats = self.attribute_patterns();
        if pats.is_empty() {
            vec![DEFAULT_PROTECTED.to_string()]
        } else {
            pats
        }
    }
}

/// Patterns of `.gitattributes` lines that carry `merge=pprotect`.
pub fn protected_patterns_in(gitattributes: &str) -> Vec<String> {
    gitattributes
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let pat = words.next()?;
            if pat.starts_with('#') {
                return None;
            }
            words
                .any(|w| w == "merge=pprotect")
                .then(|| pat.to_string())
        })
        .collect()
}

/// Whether repository path `path` matches a `.gitattributes` pattern: a
/// pattern without `/` matches the file name anywhere; otherwise the whole
/// path from the root. `*` matches within one path component.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_start_matches('/');
    if pattern.contains('/') {
        glob(pattern.as_bytes(), path.as_bytes())
    } else {
        let name = path.rsplit('/').next().unwrap_or(path);
        glob(pattern.as_bytes(), name.as_bytes())
    }
}

/// Match a glob where `*` and `?` never match `/`, in O(len(p) x len(s))
/// time at worst (a pattern like `************x` cannot blow up): the
/// classic greedy match that backtracks only to the last `*`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi + 1, si));
            pi += 1;
        } else if pi < p.len() && ((p[pi] == b'?' && s[si] != b'/') || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if let Some((after, from)) = star {
            // Let the last `*` take one more byte, never a `/` (an
            // earlier `*` could not take it either).
            if s[from] == b'/' {
                return false;
            }
            star = Some((after, from + 1));
            pi = after;
            si = from + 1;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Find `path`'s entry in the resolve-undo (`REUC`) extension of an index
/// file: its stage 1, 2 and 3 object ids. The extension is found by its
/// signature where the chain of extensions from there ends exactly at the
/// trailing checksum (entries before it need no parsing).
fn resolve_undo_stages(index: &[u8], hash_len: usize, path: &str) -> Option<[Option<ObjectId>; 3]> {
    let end = index.len().checked_sub(hash_len)?;
    let be32 = |at: usize| -> Option<usize> {
        let b: [u8; 4] = index.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b) as usize)
    };
    let chain_ends = |mut at: usize| -> bool {
        while at < end {
            let Some(sig) = index.get(at..at + 4) else {
                return false;
            };
            if !sig.iter().all(u8::is_ascii_alphabetic) {
                return false;
            }
            let Some(size) = be32(at + 4) else {
                return false;
            };
            at = at + 8 + size;
        }
        at == end
    };
    let finder = memchr::memmem::Finder::new(b"REUC");
    let mut data = None;
    for at in finder.find_iter(index.get(..end)?) {
        if at < 12 || !chain_ends(at) {
            continue;
        }
        let size = be32(at + 4)?;
        data = index.get(at + 8..at + 8 + size);
    }
    let mut data = data?;
    while !data.is_empty() {
        let nul = memchr::memchr(0, data)?;
        let name = &data[..nul];
        data = &data[nul + 1..];
        let mut modes = [0u32; 3];
        for m in &mut modes {
            let nul = memchr::memchr(0, data)?;
            *m = u32::from_str_radix(std::str::from_utf8(&data[..nul]).ok()?, 8).ok()?;
            data = &data[nul + 1..];
        }
        let mut ids = [None; 3];
        for (i, m) in modes.iter().enumerate() {
            if *m != 0 {
                let raw = data.get(..hash_len)?;
                ids[i] = Some(ObjectId::try_from(raw).ok()?);
                data = &data[hash_len..];
            }
        }
        if name == path.as_bytes() {
            return Some(ids);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_and_matching() {
        let pats = protected_patterns_in(
            "*.txt text\nprotected.yaml merge=pprotect diff=pprotect\n# x merge=pprotect\nconf/*.yaml merge=pprotect\n",
        );
        assert_eq!(pats, ["protected.yaml", "conf/*.yaml"]);
        assert!(path_matches("protected.yaml", "a/b/protected.yaml"));
        assert!(path_matches("/protected.yaml", "protected.yaml"));
        assert!(path_matches("conf/*.yaml", "conf/x.yaml"));
        assert!(!path_matches("conf/*.yaml", "conf/a/x.yaml"));
        assert!(!path_matches("protected.yaml", "protected.yml"));
        assert!(path_matches("*.yaml", "a/x.yaml"));
        assert!(path_matches("a/*/p?.yaml", "a/b/p1.yaml"));
        assert!(!path_matches("a/*.yaml", "a/b/c.yaml"));
        assert!(path_matches("*a*b*", "xaybz"));
        assert!(!path_matches("*a*b*", "xbya"));
        // Linear, not exponential.
        let t = std::time::Instant::now();
        let pat = format!("{}x", "*".repeat(40));
        assert!(!path_matches(&pat, &"a".repeat(4000)));
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
    }
}
