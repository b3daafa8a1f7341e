//! Which commits put a domain key into the protected file: when a merge
//! re-seals entries to a rotated key, the merging owner is told whose key
//! it trusted.

use std::collections::HashMap;

use gix::ObjectId;

use super::repo::Repo;
use crate::crypto;

/// A commit that introduced a domain key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCommit {
    /// The commit's abbreviated id.
    pub id: String,
    /// Its author, `Name <email>`.
    pub author: String,
    /// Its subject line.
    pub summary: String,
}

impl std::fmt::Display for KeyCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} by {} ({})", self.id, self.author, self.summary)
    }
}

/// The most commits walked: a rotation being merged is recent.
const WALK_LIMIT: usize = 20_000;

/// The commits, in the history of HEAD, of the heads git is merging
/// (`MERGE_HEAD`, `CHERRY_PICK_HEAD`, `REBASE_HEAD`, `REVERT_HEAD`,
/// `ORIG_HEAD`, `FETCH_HEAD`) and of the local and remote branches, whose
/// version of `path` holds the domain public key `pk` while none of their
/// parents' versions does. Newest first; empty when none is found.
pub fn key_commits(repo: &Repo, path: &str, pk: &[u8; 32]) -> Vec<KeyCommit> {
    let r = &repo.repo;
    let mut tips: Vec<ObjectId> = Vec::new();
    for name in [
        "HEAD",
        "MERGE_HEAD",
        "CHERRY_PICK_HEAD",
        "REBASE_HEAD",
        "REVERT_HEAD",
        "ORIG_HEAD",
        "FETCH_HEAD",
    ] {
        if let Ok(id) = r.rev_parse_single(name) {
            tips.push(id.detach());
        }
    }
    if let Ok(refs) = r.references() {
        for iter in [refs.local_branches(), refs.remote_branches()]
            .into_iter()
            .flatten()
        {
            for mut reference in iter.flatten() {
                if let Ok(id) = reference.peel_to_id() {
                    tips.push(id.detach());
                }
            }
        }
    }
    tips.sort();
    tips.dedup();
    let needle = crypto::encode_v0(pk);
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut holds: HashMap<ObjectId, bool> = HashMap::new();
    let mut holds_key = |blob: Option<ObjectId>| -> bool {
        let Some(b) = blob else { return false };
        *holds.entry(b).or_insert_with(|| {
            repo.blob_bounded(b, crate::codec::MAX_FILE_BYTES)
                .ok()
                .flatten()
                .is_some_and(|bytes| finder.find(&bytes).is_some())
        })
    };
    let blob_at = |id: ObjectId| repo.blob_id_at(id, path).ok().flatten();
    let Ok(walk) = r.rev_walk(tips).all() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for info in walk.take(WALK_LIMIT).flatten() {
        if !holds_key(blob_at(info.id)) {
            continue;
        }
        let parents: Vec<ObjectId> = info.parent_ids().map(|p| p.detach()).collect();
        if parents.iter().any(|p| holds_key(blob_at(*p))) {
            continue;
        }
        let Ok(commit) = r.find_commit(info.id) else {
            continue;
        };
        let author = super::author_of(&commit).unwrap_or_else(|| "an unknown author".into());
        let summary = super::summary_of(&commit);
        let id = info.id.to_hex_with_len(7).to_string();
        out.push(KeyCommit {
            id,
            author,
            summary,
        });
    }
    out
}
