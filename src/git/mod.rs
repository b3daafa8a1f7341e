//! Git integration: reading repositories with `gix`, the diff textconv and
//! the pre-commit check.

pub mod baseline;
pub mod history;
pub mod keys;
pub mod log;
pub mod merge;
pub mod packread;
pub mod precommit;
pub mod promisor;
pub mod repo;
pub mod setup;
pub mod textconv;

/// A commit's author as `Name <email>`, if it parses.
pub(crate) fn author_of(commit: &gix::Commit<'_>) -> Option<String> {
    commit
        .author()
        .ok()
        .map(|a| format!("{} <{}>", a.name, a.email))
}

/// The first line of a commit's message.
pub(crate) fn summary_of(commit: &gix::Commit<'_>) -> String {
    commit
        .message_raw_sloppy()
        .to_string()
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}
