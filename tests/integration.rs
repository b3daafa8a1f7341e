//! The one integration test binary: topic modules share the harness.

mod harness;

mod agent;
mod cli;
mod codec_differential;
mod compat_fixtures;
mod compat_python;
mod first_contact;
mod fuzz_regressions;
mod git_audit_log;
mod git_ci_clones;
mod git_layouts;
mod git_log;
mod git_merge;
mod git_operations;
mod git_property;
mod git_resolve;
mod git_rotation;
mod git_textconv_precommit;
mod hostile;
mod reliability;
mod security;
mod security_review;
mod workflows;
