//! The merge driver through real `git merge` and `git rebase`, and
//! `setup-git`.

use crate::harness::{Env, bin};

const A: &str = "a@example.com";
const B: &str = "b@example.com";

/// A repository with the driver installed by `setup-git`: custodians A
/// (owner of dev and prod) and B, secret `base` in dev, on branch main.
fn repo() -> Env {
    let mut env = Env::new();
    env.git_init();
    env.init_fast(A, "pw-a");
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{B}\npw-b\npw-b\n"),
    )
    .ok();
    env.run(&["add-domain"], "dev\n").ok();
    env.run(&["add-domain"], "prod\n").ok();
    env.run(&["add-secret"], "dev\nbase\nbase-value\n").ok();
    env.run(&["setup-git"], "").ok();
    env.commit_all("initial");
    env
}

fn decrypt(env: &Env, user: &str, pass: &str, domain: &str) -> serde_json::Value {
    let o = env
        .run_with(
            bin(),
            &["decrypt-domain", domain],
            "",
            &[("PPROTECT_USER", user), ("PPROTECT_PASSPHRASE", pass)],
        )
        .ok();
    serde_json::from_str(&o.stdout).unwrap()
}

fn branch(env: &Env, name: &str) {
    env.git(&["checkout", "-q", "-b", name]).ok();
}

fn checkout(env: &Env, name: &str) {
    env.git(&["checkout", "-q", name]).ok();
}

/// Run `git merge` without credentials in the driver's environment.
fn merge_no_creds(env: &Env, other: &str) -> crate::harness::Out {
    env.run_with(
        "git",
        &["merge", "--no-edit", "-q", other],
        "",
        &[("PPROTECT_USER", ""), ("PPROTECT_PASSPHRASE", "")],
    )
}

#[test]
fn concurrent_additions_merge_cleanly() {
    let env = repo();
    branch(&env, "feature");
    env.run(&["add-secret"], "dev\nfrom-feature\nf-value\n")
        .ok();
    env.run(&["add-secret"], "prod\nprod-feature\npf\n").ok();
    env.commit_all("feature secrets");
    checkout(&env, "main");
    env.run(&["add-secret"], "dev\nfrom-main\nm-value\n").ok();
    env.commit_all("main secret");
    let o = merge_no_creds(&env, "feature");
    assert_eq!(o.code, 0, "{o:#?}");
    let dev = decrypt(&env, A, "pw-a", "dev");
    assert_eq!(dev["from-feature"], "f-value");
    assert_eq!(dev["from-main"], "m-value");
    assert_eq!(dev["base"], "base-value");
    assert_eq!(decrypt(&env, A, "pw-a", "prod")["prod-feature"], "pf");
    // Both sides' log entries are there.
    let log = env.run(&["list-audit-log"], "").ok().stdout;
    assert!(
        log.contains("added secret from-feature in dev")
            && log.contains("added secret from-main in dev")
    );
    // The merged file is canonical: re-serializing changes nothing.
    let text = env.read();
    env.run(&["truncate-audit-log", "100000"], "").ok();
    assert_eq!(env.read(), text);
}

#[test]
fn owner_added_on_one_side_reads_secret_added_on_the_other() {
    let env = repo();
    branch(&env, "grant");
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.commit_all("grant b");
    checkout(&env, "main");
    env.run(&["add-secret"], "dev\nnew-one\nn1\n").ok();
    env.commit_all("new secret");
    assert_eq!(merge_no_creds(&env, "grant").code, 0);
    assert_eq!(decrypt(&env, B, "pw-b", "dev")["new-one"], "n1");
}

#[test]
fn rebase_uses_the_driver_too() {
    let env = repo();
    branch(&env, "topic");
    env.run(&["add-secret"], "dev\ntopic\nt\n").ok();
    env.commit_all("topic");
    checkout(&env, "main");
    env.run(&["add-secret"], "dev\nmainline\nm\n").ok();
    env.commit_all("main");
    checkout(&env, "topic");
    let o = env.git(&["rebase", "-q", "main"]);
    assert_eq!(o.code, 0, "{o:#?}");
    let dev = decrypt(&env, A, "pw-a", "dev");
    assert_eq!(
        (dev["topic"].as_str(), dev["mainline"].as_str()),
        (Some("t"), Some("m"))
    );
}

#[test]
fn a_true_conflict_marks_only_the_entry() {
    let env = repo();
    branch(&env, "other");
    env.run(&["update-secret"], "dev\nbase\ntheirs-plaintext\n")
        .ok();
    env.run(&["add-secret"], "prod\nclean-add\nok\n").ok();
    env.commit_all("theirs");
    checkout(&env, "main");
    env.run(&["update-secret"], "dev\nbase\nours-plaintext\n")
        .ok();
    env.commit_all("ours");
    let o = merge_no_creds(&env, "other");
    assert_ne!(o.code, 0);
    let status = env.git(&["status", "--porcelain"]).ok().stdout;
    assert_eq!(
        status.trim(),
        "UU protected.yaml",
        "only the protected file is unmerged"
    );
    let text = env.read();
    assert_eq!(text.matches("<<<<<<< ").count(), 1, "{text}");
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("<<<<<<< "))
        .take_while(|l| !l.starts_with(">>>>>>>"))
        .collect();
    assert!(block[0].contains("secret base of domain dev"));
    // Between the markers: only the secret-base entry of each side (a long
    // value continues on its own line).
    assert!(block.contains(&"======="), "{block:?}");
    for line in &block[1..] {
        assert!(
            *line == "=======" || line.starts_with("  secret-base: ") || line.starts_with("    A"),
            "{block:?}"
        );
    }
    assert!(text.contains("secret-clean-add:"), "clean parts merged");
    // The codec refuses it until resolved.
    let o = env.run(&["list-domains"], "").code(1);
    assert!(
        o.stderr.contains("unresolved merge conflict at line "),
        "{}",
        o.stderr
    );
    // Keeping one side gives a valid file.
    let resolved: String = text
        .split_inclusive('\n')
        .scan(0, |state, l| {
            let keep = if l.starts_with("<<<<<<< ") {
                *state = 1;
                false
            } else if l.starts_with("=======") {
                *state = 2;
                false
            } else if l.starts_with(">>>>>>> ") {
                *state = 0;
                false
            } else {
                *state != 2
            };
            Some(if keep { l.to_string() } else { String::new() })
        })
        .collect();
    std::fs::write(env.file(), resolved).unwrap();
    assert_eq!(decrypt(&env, A, "pw-a", "dev")["base"], "ours-plaintext");
    // No plaintext in any git object.
    let objects = env
        .git(&["cat-file", "--batch-all-objects", "--batch"])
        .ok()
        .stdout;
    for secret in ["ours-plaintext", "theirs-plaintext", "base-value"] {
        assert!(!objects.contains(secret), "{secret} leaked into git");
    }
}

#[test]
fn rotation_never_merges_a_secret_its_owners_cannot_read() {
    let env = repo();
    branch(&env, "rotate");
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.commit_all("rotate");
    checkout(&env, "main");
    env.run(&["add-secret"], "dev\nstale\ns-value\n").ok();
    env.commit_all("add");
    // Without credentials: a conflict naming the domain and secret.
    let o = merge_no_creds(&env, "rotate");
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("conflict in protected.yaml: secret stale of domain dev: sealed to the old key of domain dev, which their side rotated"),
        "{}",
        o.stderr
    );
    env.git(&["merge", "--abort"]).ok();
    // With an owner's credentials: re-sealed, and it decrypts.
    let o = env.git(&["merge", "--no-edit", "-q", "rotate"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stderr.contains("re-sealed secret stale of domain dev"),
        "{}",
        o.stderr
    );
    let dev = decrypt(&env, A, "pw-a", "dev");
    assert_eq!(dev["stale"], "s-value");
}

#[test]
fn passphrase_change_against_new_ownership() {
    let env = repo();
    branch(&env, "newpass");
    env.run(
        &["set-key-custodian-passphrase", "--key-type", "fast"],
        &format!("{B}\npw-b\npw-b2\npw-b2\n"),
    )
    .ok();
    env.commit_all("b changes passphrase");
    checkout(&env, "main");
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.commit_all("grant b");
    let o = merge_no_creds(&env, "newpass");
    assert_ne!(o.code, 0);
    assert!(
        o.stderr
            .contains("owner b@example.com of domain dev: sealed to b@example.com's old key"),
        "{}",
        o.stderr
    );
    env.git(&["merge", "--abort"]).ok();
    // Even with an owner's credentials, the driver never re-seals to a
    // custodian key the other side changed: still a conflict.
    let o = env.git(&["merge", "--no-edit", "-q", "newpass"]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr.contains("owner b@example.com of domain dev: sealed to b@example.com's old key, which their side replaced; pprotect never re-seals"),
        "{}",
        o.stderr
    );
    // Taking their side drops the stale grant; A grants B again after
    // the merge, sealed to B's new key.
    env.run(&["resolve", "--theirs"], "").ok();
    env.git(&["add", "protected.yaml"]).ok();
    env.git(&["commit", "-q", "--no-edit"]).ok();
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.commit_all("grant b again");
    assert_eq!(decrypt(&env, B, "pw-b2", "dev")["base"], "base-value");
    let o = env.run(&["check-audit-log"], "");
    assert_eq!(o.code, 0, "{o:#?}");
}

#[test]
fn invalid_input_leaves_current_untouched() {
    let env = Env::new();
    env.write("base.yaml", "key-custodians: {}\naudit-log: []\n");
    env.write("ours.yaml", "not: [valid\n");
    env.write("theirs.yaml", "key-custodians: {}\naudit-log: []\n");
    let o = env
        .run(
            &[
                "merge-driver",
                "base.yaml",
                "ours.yaml",
                "theirs.yaml",
                "protected.yaml",
            ],
            "",
        )
        .code(1);
    assert!(
        o.stderr
            .starts_with("pprotect merge-driver: cannot merge protected.yaml: ours (%A): line "),
        "{}",
        o.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.path().join("ours.yaml")).unwrap(),
        "not: [valid\n"
    );
}

#[test]
fn setup_git_is_idempotent_checkable_and_removable() {
    let env = Env::new();
    env.git_init();
    env.write(".gitattributes", "*.png binary\n");
    env.write(
        ".git/hooks/pre-commit",
        "#!/bin/sh\necho previous-hook-ran\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        env.path().join(".git/hooks/pre-commit"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let o = env.run(&["setup-git", "--check"], "").code(1);
    assert!(
        o.stdout
            .contains("missing: attributes merge=pprotect diff=pprotect for protected.yaml (as git resolves them; `protected.yaml merge=pprotect diff=pprotect` in .gitattributes)"),
        "{}",
        o.stdout
    );
    let o = env.run(&["setup-git"], "").ok();
    assert!(
        o.stdout.contains("kept the existing pre-commit hook"),
        "{}",
        o.stdout
    );
    env.run(&["setup-git", "--check"], "").ok();
    let o = env.run(&["setup-git"], "").ok();
    assert_eq!(o.stdout, "pprotect: git integration already set up\n");
    let attrs = std::fs::read_to_string(env.path().join(".gitattributes")).unwrap();
    assert_eq!(
        attrs,
        "*.png binary\nprotected.yaml merge=pprotect diff=pprotect\n"
    );
    assert_eq!(
        env.git(&["config", "merge.pprotect.driver"])
            .ok()
            .stdout
            .trim(),
        "pprotect merge-driver %O %A %B %P --marker-size %L"
    );
    assert_eq!(
        env.git(&["config", "diff.pprotect.textconv"])
            .ok()
            .stdout
            .trim(),
        "pprotect textconv"
    );
    // The previous hook still runs.
    env.write("x", "x\n");
    env.git(&["add", "x"]).ok();
    let o = env.git(&["commit", "-m", "x"]).ok();
    assert!(
        o.stdout.contains("previous-hook-ran") || o.stderr.contains("previous-hook-ran"),
        "{o:#?}"
    );
    // A fresh clone has the attributes but not the config: --check says so.
    env.git(&["add", "-A"]).ok();
    env.git(&["commit", "-q", "--no-verify", "-m", "attrs"])
        .ok();
    let clone = env.path().join("clone");
    env.git(&["clone", "-q", ".", clone.to_str().unwrap()]).ok();
    let o = env.run_with(bin(), &["setup-git", "--check"], "", &[]);
    assert_eq!(o.code, 0);
    let mut c = env.command(bin());
    let out = c
        .args(["setup-git", "--check"])
        .current_dir(&clone)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("missing: git config merge.pprotect.driver")
    );
    // Uninstall removes this clone's setup; the committed attributes
    // line (shared with every clone) only with --attributes.
    let o = env.run(&["setup-git", "--uninstall"], "").ok();
    assert!(o.stdout.contains("restored the previous pre-commit hook"));
    assert_eq!(
        std::fs::read_to_string(env.path().join(".gitattributes")).unwrap(),
        "*.png binary\nprotected.yaml merge=pprotect diff=pprotect\n"
    );
    let o = env
        .run(&["setup-git", "--uninstall", "--attributes"], "")
        .ok();
    assert!(
        o.stdout
            .contains("removed `protected.yaml merge=pprotect diff=pprotect` from .gitattributes"),
        "{}",
        o.stdout
    );
    assert_eq!(
        std::fs::read_to_string(env.path().join(".gitattributes")).unwrap(),
        "*.png binary\n"
    );
    assert_eq!(env.git(&["config", "merge.pprotect.driver"]).code, 1);
    assert!(
        std::fs::read_to_string(env.path().join(".git/hooks/pre-commit"))
            .unwrap()
            .contains("previous-hook-ran")
    );
}
