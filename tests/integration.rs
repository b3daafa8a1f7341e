//! The one integration test binary: topic modules share the harness.

mod harness;

mod compat_fixtures;
