//! Inputs the fuzzers once crashed on (`fixtures/fuzz-regressions/`):
//! `codec-*` files must parse-write-parse; `merge-*` files are three
//! NUL-separated inputs to the merge driver.

use pprotect::ProtectedFile;
use pprotect::git::merge::merge_bytes;

use crate::harness::fixtures;

#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = fixtures().join("fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        n += 1;
        if name.starts_with("codec-") {
            if let Ok(f) = ProtectedFile::from_bytes(&data) {
                let text = f.to_yaml_string();
                let again = ProtectedFile::from_bytes(text.as_bytes())
                    .unwrap_or_else(|e| panic!("{name}: a file we wrote does not parse: {e}"));
                assert_eq!(f.custodians, again.custodians, "{name}");
                assert_eq!(f.domains, again.domains, "{name}");
            }
        } else if name.starts_with("merge-") {
            let mut parts = data.splitn(3, |b| *b == 0);
            if let (Some(b), Some(o), Some(t)) = (parts.next(), parts.next(), parts.next())
                && let Ok(m) = merge_bytes(b, o, t, None, 7, false)
                && m.conflicts.is_empty()
            {
                ProtectedFile::from_bytes(m.text.as_bytes())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
    }
    assert!(n > 0);
}
