//! The YAML codec: a strict parser and a ruamel.yaml-compatible emitter.

pub mod emit;
mod fast;
mod flow;
pub mod parse;
pub mod resolve;

pub use emit::{Node, emit};
pub use parse::{
    MAX_DEPTH, MAX_FILE_BYTES, Yaml, find_conflict_marker, parse_bytes, parse_fast, parse_str,
    parse_str_full, too_large,
};
