//! Key rotation across branches: a rotation on one side and ordinary work
//! on the other, through every git operation that merges, with and without
//! an owner's credentials. After each, every owner decrypts the whole
//! domain, pocket_protector reads it, and `check-audit-log` is clean; a
//! secret is never left sealed to a key that is not its domain's, and
//! never re-sealed to a key nobody proved.

use std::collections::BTreeMap;

use pprotect::crypto::{self, SecretKey};
use pprotect::model::ProtectedFile;

use crate::git_operations::{A, B, git};
use crate::harness::{Env, bin, python_reserialize, python_venv};

const C: &str = "c@example.com";

/// The shared repository: custodians A and B (both owners of dev) and C
/// (owner of nothing); dev holds `base` and `db`; on branch main, with the
/// driver set up; A logged in.
fn repo() -> Env {
    let env = crate::git_operations::repo();
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{C}\npw-c\npw-c\n"),
    )
    .ok();
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.run(&["add-secret"], "dev\ndb\ndb-value\n").ok();
    env.commit_all("owners and db");
    env
}

fn pass(user: &str) -> &'static str {
    match user {
        A => "pw-a",
        B => "pw-b",
        _ => "pw-c",
    }
}

fn decrypt_as(env: &Env, user: &str) -> BTreeMap<String, String> {
    let o = env
        .run_with(
            bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_USER", user), ("PPROTECT_PASSPHRASE", pass(user))],
        )
        .ok();
    serde_json::from_str(&o.stdout).unwrap()
}

const PY_DECRYPT: &str = r#"
import sys, json
from pocket_protector.file_keys import KeyFile, Creds
kf = KeyFile.from_file(sys.argv[1])
print(json.dumps(dict(kf.decrypt_domain(sys.argv[2], Creds(sys.argv[3], sys.argv[4]))), sort_keys=True))
"#;

/// Every owner (A and B) decrypts all of dev to `want`, with pprotect and
/// with pocket_protector; the file is canonical; `check-audit-log` over the
/// whole history is clean.
#[track_caller]
fn assert_domain_good(env: &Env, want: &[(&str, &str)]) {
    let text = env.read();
    assert!(!text.contains("<<<<<<<"), "markers left:\n{text}");
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for user in [A, B] {
        assert_eq!(decrypt_as(env, user), want, "{user} decrypts dev");
        if let Some(venv) = python_venv() {
            let o = env.run_with(
                venv.join("bin/python").to_str().unwrap(),
                &[
                    "-c",
                    PY_DECRYPT,
                    env.file().to_str().unwrap(),
                    "dev",
                    user,
                    pass(user),
                ],
                "",
                &[],
            );
            assert_eq!(o.code, 0, "pocket_protector cannot decrypt: {o:#?}");
            let py: BTreeMap<String, String> = serde_json::from_str(&o.stdout).unwrap();
            assert_eq!(py, want, "pocket_protector decrypts dev for {user}");
        }
    }
    if let Some(py) = python_reserialize(&env.file()) {
        assert_eq!(py, text, "Python re-serializes differently");
    }
    let o = env.run(&["check-audit-log", "--no-cache"], "");
    assert_eq!(
        o.code,
        0,
        "check-audit-log: {o:#?}\nhistory:\n{}",
        env.git(&["log", "--graph", "--format=%h %s"]).stdout
    );
}

fn no_creds<'a>() -> [(&'a str, &'a str); 2] {
    [("PPROTECT_USER", ""), ("PPROTECT_PASSPHRASE", "")]
}

fn rotate(env: &Env) {
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.commit_all("rotate dev");
}

fn update(env: &Env, name: &str, value: &str) {
    env.run(&["update-secret"], &format!("dev\n{name}\n{value}\n"))
        .ok();
    env.commit_all(&format!("update {name}"));
}

/// Main rotates dev; branch `work`, made before, runs `change`.
fn diverge(env: &Env, change: impl Fn(&Env)) {
    git(env, &["checkout", "-q", "-b", "work"]);
    change(env);
    git(env, &["checkout", "-q", "main"]);
    rotate(env);
}

#[test]
fn rotation_against_an_update_merges_with_credentials_both_ways() {
    for rotated_is_ours in [true, false] {
        let env = repo();
        diverge(&env, |e| update(e, "db", "db-new"));
        if !rotated_is_ours {
            git(&env, &["checkout", "-q", "work"]);
        }
        let other = if rotated_is_ours { "work" } else { "main" };
        let o = env.git(&["merge", "-q", "--no-edit", other]);
        assert_eq!(o.code, 0, "{o:#?}\n{}", env.read());
        assert!(
            o.stderr.contains("re-sealed secret db of domain dev"),
            "{}",
            o.stderr
        );
        // The merging owner is told whose key they trusted.
        assert!(
            o.stderr
                .contains("the new key of domain dev was introduced by commit")
                && o.stderr.contains("Test <test@example.com> (rotate dev)"),
            "{}",
            o.stderr
        );
        assert_domain_good(&env, &[("base", "base-value"), ("db", "db-new")]);
    }
}

#[test]
fn rotation_against_an_update_without_credentials_cannot_take_the_stale_side() {
    for rotated_is_ours in [true, false] {
        let env = repo();
        diverge(&env, |e| update(e, "db", "db-new"));
        if !rotated_is_ours {
            git(&env, &["checkout", "-q", "work"]);
        }
        let (other, stale_side, rotating) = if rotated_is_ours {
            ("work", "theirs", "our")
        } else {
            ("main", "ours", "their")
        };
        let o = env.run_with("git", &["merge", "-q", "--no-edit", other], "", &no_creds());
        assert_ne!(o.code, 0);
        let upd = if rotated_is_ours { "their" } else { "our" };
        assert!(
            o.stderr.contains(&format!(
                "secret db of domain dev: updated on {upd} side, sealed to the old key of domain dev, which {rotating} side rotated; an owner re-seals it"
            )),
            "{}",
            o.stderr
        );
        // The stale side cannot be taken without an owner.
        let o = env.run_with(
            bin(),
            &["resolve", &format!("--{stale_side}"), "dev", "db"],
            "",
            &no_creds(),
        );
        assert_eq!(o.code, 1, "{o:#?}");
        assert!(
            o.stdout.contains(&format!("cannot take {upd} side: its entry is sealed to a key that is no longer the domain's")),
            "{o:#?}"
        );
        // An owner's resolve re-seals it.
        let o = env.run(&["resolve"], "");
        assert_eq!(o.code, 0, "{o:#?}");
        assert!(o.stderr.contains("re-sealed secret db"), "{}", o.stderr);
        git(&env, &["add", "protected.yaml"]);
        git(&env, &["commit", "-q", "--no-edit"]);
        assert_domain_good(&env, &[("base", "base-value"), ("db", "db-new")]);
    }
}

#[test]
fn rotation_against_a_removal_is_no_conflict() {
    for creds in [true, false] {
        let env = repo();
        diverge(&env, |e| {
            e.run(&["rm-secret"], "dev\ndb\n").ok();
            e.commit_all("rm db");
        });
        let extra: &[(&str, &str)] = if creds { &[] } else { &no_creds() };
        let o = env.run_with("git", &["merge", "-q", "--no-edit", "work"], "", extra);
        assert_eq!(o.code, 0, "{o:#?}");
        assert_domain_good(&env, &[("base", "base-value")]);
    }
}

#[test]
fn rotation_against_an_addition() {
    let env = repo();
    diverge(&env, |e| {
        e.run(&["add-secret"], "dev\nnew\nnew-value\n").ok();
        e.commit_all("add new");
    });
    let o = env.run_with(
        "git",
        &["merge", "-q", "--no-edit", "work"],
        "",
        &no_creds(),
    );
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("secret new of domain dev: sealed to the old key of domain dev, which our side rotated; an owner re-seals it"),
        "{}",
        o.stderr
    );
    git(&env, &["merge", "--abort"]);
    let o = env.git(&["merge", "-q", "--no-edit", "work"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert_domain_good(
        &env,
        &[
            ("base", "base-value"),
            ("db", "db-value"),
            ("new", "new-value"),
        ],
    );
}

#[test]
fn rotation_against_updates_in_rebase_rebase_r_and_cherry_pick() {
    for op in ["rebase", "rebase-r", "cherry-pick"] {
        let env = repo();
        diverge(&env, |e| {
            update(e, "db", "db-new");
            e.run(&["add-secret"], "dev\nnew\nnew-value\n").ok();
            e.commit_all("add new");
        });
        match op {
            "rebase" | "rebase-r" => {
                git(&env, &["checkout", "-q", "work"]);
                let mut args = vec!["rebase", "-q"];
                if op == "rebase-r" {
                    args.push("-r");
                }
                args.push("main");
                let o = env.git(&args);
                assert_eq!(o.code, 0, "{op}: {o:#?}");
            }
            _ => {
                let o = env.git(&["cherry-pick", "main..work"]);
                assert_eq!(o.code, 0, "{op}: {o:#?}");
            }
        }
        assert_domain_good(
            &env,
            &[
                ("base", "base-value"),
                ("db", "db-new"),
                ("new", "new-value"),
            ],
        );
    }
}

#[test]
fn rebase_without_credentials_stops_and_an_owner_resolves() {
    let env = repo();
    diverge(&env, |e| update(e, "db", "db-new"));
    git(&env, &["checkout", "-q", "work"]);
    let o = env.run_with("git", &["rebase", "-q", "main"], "", &no_creds());
    assert_ne!(o.code, 0);
    // During a rebase the replayed commit is theirs.
    let o = env.run_with(bin(), &["resolve", "--theirs"], "", &no_creds());
    assert_eq!(o.code, 1, "{o:#?}");
    let o = env.run(&["resolve"], "");
    assert_eq!(o.code, 0, "{o:#?}");
    git(&env, &["add", "protected.yaml"]);
    let o = env.run_with(
        "git",
        &["-c", "core.editor=true", "rebase", "--continue"],
        "",
        &[],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    assert_domain_good(&env, &[("base", "base-value"), ("db", "db-new")]);
}

/// The bypass: a pusher who owns nothing adds a secret whose value they
/// know, then on a branch replaces dev's key with their own (sealed to the
/// owners' public keys, which are public), re-seals their own secret and
/// removes the others (each logged). An owner merging with credentials
/// must not re-seal main's new secret to the pusher's key.
#[test]
fn a_key_swap_carrying_only_the_pushers_own_secret_is_not_proof() {
    let env = repo();
    env.run(&["add-secret"], "dev\nmine\npusher-knows\n").ok();
    env.commit_all("add mine");
    git(&env, &["checkout", "-q", "-b", "attack"]);
    for s in ["base", "db"] {
        env.run(&["rm-secret"], &format!("dev\n{s}\n")).ok();
    }
    let attacker = SecretKey::generate();
    let mut f = ProtectedFile::from_bytes(env.read().as_bytes()).unwrap();
    let owner_pks: Vec<(String, [u8; 32])> = [A, B]
        .iter()
        .map(|o| (o.to_string(), f.custodians[*o].public_key))
        .collect();
    let d = std::sync::Arc::make_mut(f.domains.get_mut("dev").unwrap());
    d.public_key = attacker.public_key();
    for (o, pk) in owner_pks {
        d.owners
            .insert(o, crypto::seal(&pk, &attacker.to_bytes()[..]));
    }
    d.secrets.insert(
        "mine".into(),
        crypto::seal(&attacker.public_key(), b"pusher-knows"),
    );
    f.log("rotated key for domain dev".into());
    std::fs::write(env.file(), f.to_yaml_string()).unwrap();
    let o = env.run_with(
        "git",
        &["commit", "-q", "-a", "--no-verify", "-m", "rotate dev"],
        "",
        &[
            ("GIT_AUTHOR_NAME", "Mallory"),
            ("GIT_AUTHOR_EMAIL", "m@example.com"),
        ],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["add-secret"], "dev\napi-token\ntop-secret\n")
        .ok();
    env.commit_all("api token");
    let o = env.git(&["merge", "-q", "--no-edit", "attack"]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr.contains(
            "the new key of domain dev on their side does not prove it came from an owner (secret base is gone there)"
        ),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("re-sealed secret"), "{}", o.stderr);
    let sealed_to_attacker = |text: &str| {
        text.lines().any(|line| {
            line.split_once(": ")
                .and_then(|(_, v)| crypto::decode_v0(v.trim()).ok())
                .is_some_and(|b| {
                    attacker
                        .unseal(&b)
                        .is_some_and(|p| p.as_slice() == b"top-secret")
                })
        })
    };
    assert!(!sealed_to_attacker(&env.read()));
    // An owner's resolve, as in a clone that did a text merge, neither.
    let o = env.run(&["resolve"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(!sealed_to_attacker(&env.read()));
    // The explicit path shows who made the key, and asks (no terminal
    // here: --yes is required).
    let o = env.run(&["resolve", "--reseal", "dev"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("add --yes"), "{o:#?}");
    assert!(
        o.stdout.contains("introduced by commit")
            && o.stdout.contains("Mallory <m@example.com> (rotate dev)"),
        "{o:#?}"
    );
    let o = env.run(&["resolve", "--reseal", "dev", "--yes"], "");
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        sealed_to_attacker(&env.read()),
        "the owner chose to trust it"
    );
}

/// A proper revocation (rotate, then change a value) does not prove the
/// key on other branches: it takes the explicit path.
#[test]
fn a_revocation_that_changes_values_needs_resolve_reseal() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "work"]);
    env.run(&["add-secret"], "dev\nnew\nnew-value\n").ok();
    env.commit_all("add new");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.run(&["update-secret"], "dev\ndb\ndb-rotated\n").ok();
    env.commit_all("revoke: rotate dev, change db");
    let o = env.git(&["merge", "-q", "--no-edit", "work"]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr
            .contains("does not prove it came from an owner (secret db was changed there)"),
        "{}",
        o.stderr
    );
    let o = env.run(&["resolve", "--reseal", "--yes"], "");
    assert_eq!(o.code, 0, "{o:#?}");
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-edit"]);
    assert_domain_good(
        &env,
        &[
            ("base", "base-value"),
            ("db", "db-rotated"),
            ("new", "new-value"),
        ],
    );
}

/// A stale entry put in by hand during a merge: pre-commit refuses it,
/// and check-audit-log reports it once committed.
#[test]
fn a_stale_entry_committed_by_hand_is_found() {
    let env = repo();
    diverge(&env, |e| update(e, "db", "db-new"));
    let o = env.run_with(
        "git",
        &["merge", "-q", "--no-edit", "work"],
        "",
        &no_creds(),
    );
    assert_ne!(o.code, 0);
    // By hand: our rotated file, with their line for db.
    let ours = ProtectedFile::from_bytes(env.git(&["show", ":2:protected.yaml"]).stdout.as_bytes())
        .unwrap();
    let theirs =
        ProtectedFile::from_bytes(env.git(&["show", ":3:protected.yaml"]).stdout.as_bytes())
            .unwrap();
    let mut f = ours.clone();
    let stale = theirs.domains["dev"].secrets["db"].clone();
    std::sync::Arc::make_mut(f.domains.get_mut("dev").unwrap())
        .secrets
        .insert("db".into(), stale);
    f.audit_log = {
        let mut log = ours.audit_log.clone();
        for e in &theirs.audit_log {
            if !log.contains(e) {
                log.push(e.clone());
            }
        }
        log
    };
    std::fs::write(env.file(), f.to_yaml_string()).unwrap();
    git(&env, &["add", "protected.yaml"]);
    let o = env.run(&["pre-commit"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stdout
            .contains("secret db of domain dev is sealed to a previous key of dev")
            || o.stderr
                .contains("secret db of domain dev is sealed to a previous key of dev"),
        "{o:#?}"
    );
    git(&env, &["commit", "-q", "--no-verify", "--no-edit"]);
    let o = env.run(&["check-audit-log", "--no-cache", "--json"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let stale: Vec<&serde_json::Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "stale-key")
        .collect();
    assert_eq!(stale.len(), 1, "{v:#}");
    assert_eq!(stale[0]["secret"], "db");
    let msg = stale[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("secret db of domain dev is sealed to a previous key of dev (from commit "),
        "{msg}"
    );
    // And a copy of a pre-rotation ciphertext from history, on one branch.
    let env = repo();
    let before = ProtectedFile::from_bytes(env.read().as_bytes()).unwrap();
    rotate(&env);
    let mut f = ProtectedFile::from_bytes(env.read().as_bytes()).unwrap();
    std::sync::Arc::make_mut(f.domains.get_mut("dev").unwrap())
        .secrets
        .insert("base".into(), before.domains["dev"].secrets["base"].clone());
    f.log("updated secret base in dev".into());
    std::fs::write(env.file(), f.to_yaml_string()).unwrap();
    env.commit_all("put base back");
    let o = env.run(&["check-audit-log", "--no-cache"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stdout
            .contains("secret base of domain dev is sealed to a previous key of dev (from commit"),
        "{o:#?}"
    );
}

/// `git add` of a file with markers (any conflict style), then
/// `pprotect resolve`: the stages come back from the index's resolve-undo
/// record. A committed file with markers in a merge commit is redone from
/// its parents.
#[test]
fn resolve_after_git_add_and_after_commit() {
    for style in ["merge", "diff3", "zdiff3"] {
        let env = repo();
        git(&env, &["config", "merge.conflictStyle", style]);
        diverge(&env, |e| update(e, "db", "db-new"));
        let o = env.run_with(
            "git",
            &["merge", "-q", "--no-edit", "work"],
            "",
            &no_creds(),
        );
        assert_ne!(o.code, 0);
        git(&env, &["add", "protected.yaml"]);
        let o = env.run(&["resolve"], "");
        assert_eq!(o.code, 0, "{style}: {o:#?}");
        assert!(
            o.stderr.contains("was added with conflict markers"),
            "{o:#?}"
        );
        git(&env, &["add", "protected.yaml"]);
        git(&env, &["commit", "-q", "--no-edit"]);
        assert_domain_good(&env, &[("base", "base-value"), ("db", "db-new")]);
    }
    let env = repo();
    diverge(&env, |e| update(e, "db", "db-new"));
    let o = env.run_with(
        "git",
        &["merge", "-q", "--no-edit", "work"],
        "",
        &no_creds(),
    );
    assert_ne!(o.code, 0);
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-verify", "--no-edit"]);
    let o = env.run(&["resolve"], "");
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stderr
            .contains("committed with conflict markers in merge commit HEAD"),
        "{o:#?}"
    );
    git(&env, &["commit", "-q", "-a", "--amend", "--no-edit"]);
    assert_domain_good(&env, &[("base", "base-value"), ("db", "db-new")]);
}

#[test]
fn the_same_change_on_both_sides() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "work"]);
    update(&env, "db", "same-value");
    env.run(&["add-owner"], &format!("dev\n{C}\n")).ok();
    env.commit_all("grant C");
    git(&env, &["checkout", "-q", "main"]);
    update(&env, "db", "same-value");
    env.run(&["add-owner"], &format!("dev\n{C}\n")).ok();
    env.commit_all("grant C");
    // Without credentials: the values may be equal; the grant is taken
    // from one side, deterministically, and said.
    let o = env.run_with(
        "git",
        &["merge", "-q", "--no-edit", "work"],
        "",
        &no_creds(),
    );
    assert_ne!(o.code, 0);
    assert!(
        o.stderr
            .contains("the values may be equal: `pprotect resolve --show` tells"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("owner c@example.com of domain dev: granted on both sides; took"),
        "{}",
        o.stderr
    );
    assert!(
        !o.stderr.contains("conflict in protected.yaml: owner"),
        "{}",
        o.stderr
    );
    git(&env, &["merge", "--abort"]);
    // With an owner's credentials: no conflict.
    let o = env.git(&["merge", "-q", "--no-edit", "work"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stderr.contains("both sides set the same value"),
        "{}",
        o.stderr
    );
    assert_domain_good(&env, &[("base", "base-value"), ("db", "same-value")]);
    let o = env
        .run_with(
            bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_USER", C), ("PPROTECT_PASSPHRASE", "pw-c")],
        )
        .ok();
    assert!(o.stdout.contains("same-value"));
}

/// The whole matrix: a rotation on main against an update, a removal or an
/// addition on a branch, through merge, rebase, `rebase -r` and
/// cherry-pick, without and with an owner's credentials. Where git stops
/// (no credentials: the stale side cannot be taken), an owner's `pprotect
/// resolve` settles it and the operation continues. Every owner then
/// decrypts the whole domain, pocket_protector reads it, and the history
/// checks clean.
#[test]
fn rotation_matrix() {
    let changes: [(&str, &[(&str, &str)]); 3] = [
        ("update", &[("base", "base-value"), ("db", "db-new")]),
        ("removal", &[("base", "base-value")]),
        (
            "addition",
            &[
                ("base", "base-value"),
                ("db", "db-value"),
                ("new", "new-value"),
            ],
        ),
    ];
    for (change, want) in changes {
        for op in ["merge", "rebase", "rebase-r", "cherry-pick"] {
            for creds in [false, true] {
                let env = repo();
                diverge(&env, |e| match change {
                    "update" => update(e, "db", "db-new"),
                    "removal" => {
                        e.run(&["rm-secret"], "dev\ndb\n").ok();
                        e.commit_all("rm db");
                    }
                    _ => {
                        e.run(&["add-secret"], "dev\nnew\nnew-value\n").ok();
                        e.commit_all("add new");
                    }
                });
                let (args, cont): (Vec<&str>, &[&str]) = match op {
                    "merge" => (
                        vec!["merge", "-q", "--no-edit", "work"],
                        &["commit", "-q", "--no-edit"],
                    ),
                    "rebase" | "rebase-r" => {
                        git(&env, &["checkout", "-q", "work"]);
                        let mut a = vec!["rebase", "-q"];
                        if op == "rebase-r" {
                            a.push("-r");
                        }
                        a.push("main");
                        (a, &["-c", "core.editor=true", "rebase", "--continue"])
                    }
                    _ => (
                        vec!["cherry-pick", "main..work"],
                        &["-c", "core.editor=true", "cherry-pick", "--continue"],
                    ),
                };
                let extra: &[(&str, &str)] = if creds { &[] } else { &no_creds() };
                let what = format!("{change} / {op} / creds {creds}");
                let o = env.run_with("git", &args, "", extra);
                if o.code != 0 {
                    assert!(
                        !creds && change != "removal",
                        "{what}: git stopped: {o:#?}\n{}",
                        env.read()
                    );
                    let r = env.run(&["resolve"], "");
                    assert_eq!(r.code, 0, "{what}: {r:#?}");
                    git(&env, &["add", "protected.yaml"]);
                    let o = env.run_with("git", cont, "", &[]);
                    assert_eq!(o.code, 0, "{what}: {o:#?}");
                }
                assert_domain_good(&env, want);
            }
        }
    }
}

/// A rotation on one side, the owner's passphrase change on the other:
/// neither side's owner entry is sealed to both merged keys. Taking a side
/// leaves that owner out (the domain keeps its other owners) instead of a
/// dead end, and says to grant it again.
#[test]
fn rotation_against_a_passphrase_change_leaves_the_owner_out() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "work"]);
    env.run(
        &["set-key-custodian-passphrase"],
        &format!("{B}\npw-b\npw-b2\npw-b2\n"),
    )
    .ok();
    env.commit_all("B's new passphrase");
    git(&env, &["checkout", "-q", "main"]);
    rotate(&env);
    let o = env.git(&["merge", "-q", "--no-edit", "work"]);
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(
        o.stderr.contains(&format!("owner {B} of domain dev")),
        "{}",
        o.stderr
    );
    for side in ["--ours", "--theirs"] {
        let o = env.run(&["resolve", side], "");
        assert_eq!(o.code, 0, "{side}: {o:#?}");
        assert!(
            o.stderr
                .contains(&format!("left out owner {B} of domain dev")),
            "{side}: {o:#?}"
        );
    }
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-edit"]);
    // A still reads everything; B is granted again and reads it too.
    assert_eq!(decrypt_as(&env, A).len(), 2);
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.commit_all("grant B again");
    let o = env
        .run_with(
            bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_USER", B), ("PPROTECT_PASSPHRASE", "pw-b2")],
        )
        .ok();
    assert!(o.stdout.contains("db-value"), "{o:#?}");
    let o = env.run(&["check-audit-log", "--no-cache"], "");
    assert_eq!(o.code, 0, "{o:#?}");
}
