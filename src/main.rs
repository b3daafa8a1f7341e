//! The `pprotect` command-line tool: a thin adapter over the library.
// `unsafe` only in `tune_allocator`, one call setting an allocator option.
#![deny(unsafe_code)]

mod cli;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    #[cfg(feature = "mimalloc")]
    tune_allocator();
    harden();
    let code = cli::main();
    std::process::exit(code);
}

/// mimalloc's `purge_delay` option (index 15 of `mi_option_t`, which
/// libmimalloc-sys does not name), in milliseconds: how long freed memory
/// is kept before it goes back to the system. mimalloc 3's default (1 s)
/// kept check-audit-log above `git log -p`'s resident memory on repacked
/// histories; 10 ms (mimalloc 2's default) brings it well below at no
/// loss of speed, where 0 costs a tenth more time in page faults.
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn tune_allocator() {
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set stores an integer in mimalloc's option table;
    // it touches no memory of ours and is called before any thread starts.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
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
