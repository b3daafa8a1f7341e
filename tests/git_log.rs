//! `pprotect log`: the history of a domain or secret from git, with and
//! without an owner's credentials; a rotation's re-seals are told apart
//! from value changes only for an owner, and never by printing a value.

use crate::git_operations::{A, B, git, repo};
use crate::harness::{Env, bin};

/// A history: base (initial), `db` added, `db` updated, a rotation (every
/// secret sealed again, values unchanged), B made an owner, `api` added
/// in prod, the file renamed, `db` removed.
fn history() -> Env {
    let env = repo();
    env.run(&["add-secret", "dev", "db"], "v1\n").ok();
    env.commit_all("add db");
    env.run(&["update-secret", "dev", "db"], "v2\n").ok();
    env.commit_all("update db");
    env.run(&["rotate-domain-keys", "dev"], "").ok();
    env.commit_all("rotate dev");
    env.run(&["add-owner", "dev", B], "").ok();
    env.commit_all("B owns dev");
    env.run(&["add-domain", "prod"], "").ok();
    env.run(&["add-secret", "prod", "api"], "a\n").ok();
    env.commit_all("prod");
    std::fs::create_dir(env.path().join("secrets")).unwrap();
    git(&env, &["mv", "protected.yaml", "secrets/protected.yaml"]);
    env.commit_all("move the file");
    env.run(
        &["--file", "secrets/protected.yaml", "rm-secret", "dev", "db"],
        "",
    )
    .ok();
    env.commit_all("remove db");
    env
}

fn log_json(env: &Env, args: &[&str], creds: bool) -> serde_json::Value {
    let mut all = vec!["--file", "secrets/protected.yaml", "log", "--json"];
    all.extend_from_slice(args);
    let extra: &[(&str, &str)] = if creds {
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")]
    } else {
        &[]
    };
    let mut env_vars = vec![("PPROTECT_USER", ""), ("PPROTECT_PASSPHRASE", "")];
    env_vars.extend_from_slice(extra);
    let o = env.run_with(bin(), &all, "", &env_vars).ok();
    serde_json::from_str(&o.stdout).unwrap()
}

fn summaries(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap().to_string())
        .collect()
}

fn changes(e: &serde_json::Value) -> Vec<(String, Option<String>, Option<bool>)> {
    e["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["name"].as_str().map(str::to_string),
                c["value_changed"].as_bool(),
            )
        })
        .collect()
}

#[test]
fn log_of_a_secret_tells_updates_from_reseals_for_an_owner() {
    let env = history();
    // Without credentials: every commit that touched db, newest first,
    // across the rename; the rotation is a change of sealed value.
    let v = log_json(&env, &["dev", "db"], false);
    assert_eq!(
        summaries(&v),
        ["remove db", "rotate dev", "update db", "add db"],
        "{v:#}"
    );
    let e = &v[1];
    assert_eq!(
        changes(e),
        [("secret-updated".to_string(), Some("db".to_string()), None)]
    );
    assert!(
        e["audit"][0]
            .as_str()
            .unwrap()
            .ends_with(" -- rotated key for domain dev"),
        "{e:#}"
    );
    assert!(e["author"].as_str().unwrap().contains('@'), "{e:#}");
    assert_eq!(e["commit"].as_str().unwrap().len(), 40);
    // With an owner's credentials: the update changed the value, the
    // rotation did not.
    let v = log_json(&env, &["dev", "db"], true);
    assert_eq!(changes(&v[1])[0].2, Some(false), "{v:#}");
    assert_eq!(changes(&v[2])[0].2, Some(true), "{v:#}");
    // No value, nor a fingerprint of one, is printed.
    let text = serde_json::to_string(&v).unwrap();
    for value in ["v1", "v2", "base-value"] {
        assert!(!text.contains(&format!("\"{value}\"")), "{text}");
    }
}

#[test]
fn log_of_a_domain_and_of_the_file() {
    let env = history();
    let v = log_json(&env, &["dev"], true);
    assert_eq!(
        summaries(&v),
        [
            "remove db",
            "B owns dev",
            "rotate dev",
            "update db",
            "add db",
            "initial"
        ],
        "{v:#}"
    );
    // The rotation: the key, every owner entry and secret sealed again,
    // values unchanged.
    let rot = changes(&v[2]);
    assert!(
        rot.contains(&("domain-key-rotated".to_string(), None, None)),
        "{rot:?}"
    );
    assert!(rot.contains(&(
        "secret-updated".to_string(),
        Some("base".to_string()),
        Some(false)
    )));
    assert!(rot.contains(&("owner-resealed".to_string(), Some(A.to_string()), None)));
    assert_eq!(
        changes(&v[1]),
        [("owner-added".to_string(), Some(B.to_string()), None)]
    );
    // The whole file: the rename is listed, and prod's commit.
    let v = log_json(&env, &[], false);
    let all = summaries(&v);
    assert!(all.contains(&"prod".to_string()), "{all:?}");
    let moved = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["summary"] == "move the file")
        .expect("the rename is listed");
    assert_eq!(
        changes(moved),
        [(
            "renamed".to_string(),
            Some("protected.yaml".to_string()),
            None
        )]
    );
    assert_eq!(moved["path"], "secrets/protected.yaml");
    // Human output names the changes.
    let o = env
        .run_with(
            bin(),
            &["--file", "secrets/protected.yaml", "log", "dev", "db"],
            "",
            &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
        )
        .ok();
    assert!(
        o.stdout.contains("\n    rotate dev\n    audit: "),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("\n    ~ secret db in dev: sealed again, value unchanged\n"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("~ secret db in dev: value changed"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("- secret db from dev"), "{}", o.stdout);
    // Wrong credentials are an error, not a quiet "unknown".
    let o = env
        .run_with(
            bin(),
            &["--file", "secrets/protected.yaml", "log", "dev"],
            "",
            &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "wrong")],
        )
        .code(1);
    assert!(
        o.stderr.contains("Invalid user email or passphrase"),
        "{o:#?}"
    );
    // A name no commit changed: nothing, and a note saying so.
    let o = env
        .run_with(
            bin(),
            &["--file", "secrets/protected.yaml", "log", "nope"],
            "",
            &[],
        )
        .ok();
    assert_eq!(o.stdout, "");
    assert!(
        o.stderr.contains("(no commit changed domain nope)"),
        "{o:#?}"
    );
}

/// A merge lists only what it changed against both parents; a shallow
/// clone says what history is missing.
#[test]
fn log_through_merges_and_shallow_clones() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "side"]);
    env.run(&["add-secret", "dev", "side-key"], "s\n").ok();
    env.commit_all("side key");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["add-secret", "dev", "main-key"], "m\n").ok();
    env.commit_all("main key");
    git(&env, &["merge", "-q", "--no-edit", "side"]);
    let o = env.run(&["log", "dev", "--json"], "").ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let s = summaries(&v);
    assert!(!s.iter().any(|m| m.starts_with("Merge")), "{s:?}");
    assert!(
        s.contains(&"side key".to_string()) && s.contains(&"main key".to_string()),
        "{s:?}"
    );
    // A shallow clone of depth 2.
    let clone = env.path().join("shallow");
    let url = format!("file://{}", env.path().display());
    let o = env.git(&["clone", "-q", "--depth", "2", &url, clone.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{o:#?}");
    let o = env
        .command(bin())
        .current_dir(&clone)
        .arg("log")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("shallow clone"), "{stderr}");
}
