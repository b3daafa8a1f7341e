//! Three arbitrary inputs to the merge driver: it never panics, and a
//! clean merge is a valid file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pprotect::ProtectedFile;
use pprotect::git::merge::merge_bytes;

fuzz_target!(|data: &[u8]| {
    // Inputs separated by NUL bytes (which no valid file contains).
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(base), Some(ours), Some(theirs)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(merged) = merge_bytes(base, ours, theirs, None, 7, false) else { return };
    if merged.conflicts.is_empty() {
        ProtectedFile::from_bytes(merged.text.as_bytes())
            .unwrap_or_else(|e| panic!("a clean merge does not parse: {e}\n{}", merged.text));
    } else {
        assert!(ProtectedFile::from_bytes(merged.text.as_bytes()).is_err(), "a conflicted merge parses");
    }
});
