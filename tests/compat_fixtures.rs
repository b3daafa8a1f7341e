//! Files written by pocket_protector 26.4.3 parse, re-serialize byte for
//! byte, and decrypt to their manifest with every owner's credentials.

use std::collections::BTreeMap;

use pprotect::{Creds, KeyFile, ProtectedFile};

use crate::harness::py_fixtures;

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(py_fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn fixtures_round_trip_byte_for_byte() {
    for name in [
        "basic.yaml",
        "empty.yaml",
        "wrapping.yaml",
        "audit-quoting.yaml",
    ] {
        let bytes = std::fs::read(py_fixtures().join(name)).unwrap();
        let file = ProtectedFile::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = file.to_yaml_string();
        assert_eq!(
            out,
            String::from_utf8(bytes).unwrap(),
            "{name} re-serializes differently"
        );
    }
}

#[test]
fn fixtures_decrypt_to_manifest() {
    let manifest = manifest();
    for (name, spec) in manifest.as_object().unwrap() {
        let kf = KeyFile::open(py_fixtures().join(name)).unwrap();
        let mut creds: BTreeMap<String, String> = BTreeMap::new();
        for c in spec["custodians"].as_array().unwrap() {
            creds.insert(
                c["user"].as_str().unwrap().into(),
                c["passphrase"].as_str().unwrap().into(),
            );
        }
        for (domain, owners) in spec["owners"].as_object().unwrap() {
            let expected = spec["domains"][domain].as_object().unwrap();
            for owner in owners.as_array().unwrap() {
                let owner = owner.as_str().unwrap();
                let c = Creds::new(owner, creds[owner].clone());
                let got = kf
                    .decrypt_domain(domain, &c)
                    .unwrap_or_else(|e| panic!("{name} {domain} {owner}: {e}"));
                let names: Vec<&str> = got.names().collect();
                let want: Vec<&str> = expected.keys().map(String::as_str).collect();
                assert_eq!(names, want, "{name} {domain}");
                for (k, v) in expected {
                    assert_eq!(got.get(k), v.as_str(), "{name} {domain} {k}");
                }
            }
        }
    }
}
