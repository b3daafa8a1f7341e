//! The `pprotect` command-line tool: a thin adapter over the library.
#![forbid(unsafe_code)]

mod cli;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    harden();
    let code = cli::main();
    std::process::exit(code);
}

/// No core dumps: a crash must not write passphrases, keys or plaintext
/// to disk. (The limit is inherited by `exec`'s command, which holds the
/// secrets in its environment.)
fn harden() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let _ = setrlimit(
            Resource::Core,
            Rlimit {
                current: Some(0),
                maximum: Some(0),
            },
        );
        #[cfg(target_os = "linux")]
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
}
