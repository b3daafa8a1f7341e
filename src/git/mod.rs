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
