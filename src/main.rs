//! The `pprotect` command-line tool: a thin adapter over the library.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    let code = cli::main();
    std::process::exit(code);
}
