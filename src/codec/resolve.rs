//! YAML 1.2 implicit typing, as ruamel.yaml resolves plain scalars.
//!
//! A plain scalar that looks like a boolean, number, null, timestamp or one
//! of YAML's special values is not a string. The emitter quotes such
//! strings, and the parser refuses such plain scalars where the format
//! wants strings, exactly as pocket_protector does.

use std::sync::LazyLock;

use regex::RegexSet;

static NON_STRING: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        // bool
        r"^(?:true|True|TRUE|false|False|FALSE)$",
        // float
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        // int
        r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$",
        // merge, null, value, yaml
        r"^(?:<<)$",
        r"^(?:~|null|Null|NULL|)$",
        r"^(?:=)$",
        r"^(?:!|&|\*)$",
        // timestamp
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    ])
    .expect("static regexes are valid")
});

/// Every byte any pattern above can match: a string holding any other
/// byte is a string (base64 values almost always hold one).
static TYPED: [bool; 256] = {
    let mut t = [false; 256];
    let set = b"0123456789abcdefABCDEFxXoOiInNtTrRuUlLsSzZ_.+-: \t~<=!&*";
    let mut i = 0;
    while i < set.len() {
        t[set[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `s`, written as a plain scalar, would be read as something other
/// than a string (YAML 1.2 as ruamel.yaml implements it).
pub fn resolves_to_non_string(s: &str) -> bool {
    // Every pattern above starts with one of these characters (or matches
    // the empty string); most strings are rejected without a regex.
    match s.chars().next() {
        None => true,
        Some(c) if "tTfF-+0123456789.<~nN=!&*".contains(c) => {
            s.bytes().all(|b| TYPED[b as usize]) && NON_STRING.is_match(s)
        }
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::resolves_to_non_string as r;

    /// The byte pre-filter never changes an answer.
    #[test]
    fn prefilter_agrees_with_the_patterns() {
        let samples = [
            "2026-1-2\t10:00:00",
            "2026-01-02 10:00:00.5 +01:00",
            "-.INF",
            "+0x_F",
            "0o17",
            "True",
            "NULL",
            "1_000.5e+3",
            "1e3x",
            "t1",
            "falsey",
            "AQIAAAAAAAAEIyBUK+6lSyODMTAwSUODUwZ8JGtT9ZmN6zwcJ11rT+Xdg6FKhJmPUA==",
        ];
        for s in samples {
            assert_eq!(r(s), super::NON_STRING.is_match(s) || s.is_empty(), "{s:?}");
        }
    }

    #[test]
    fn yaml_1_2_types() {
        for s in [
            "",
            "~",
            "null",
            "true",
            "FALSE",
            "123",
            "1.5",
            "0x1F",
            "0o17",
            "1e3",
            ".inf",
            ".nan",
            "2026-01-01",
            "<<",
            "=",
            "1_000",
        ] {
            assert!(r(s), "{s:?} is not a string");
        }
        for s in [
            "yes",
            "no",
            "on",
            "nulls",
            "1.2.3",
            "2026-11-28T09:12:00Z -- created",
            "e",
            "-",
            "x1",
        ] {
            assert!(!r(s), "{s:?} is a string");
        }
    }
}
