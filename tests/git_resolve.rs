//! `pprotect resolve`: list the true conflicts a merge leaves, show both
//! decrypted values to an owner, take a side for all or named entries, and
//! redo a plain text merge structurally, in merges, rebases and
//! cherry-picks.

use crate::git_operations::{A, add, assert_good, dev, git, repo, secret};
use crate::harness::{Env, bin};

/// main and feature both change `base`; each also adds its own secret.
fn conflicted(env: &Env) {
    git(env, &["checkout", "-q", "-b", "feature"]);
    secret(env, "base", "theirs-value", true);
    add(env, "f1");
    git(env, &["checkout", "-q", "main"]);
    secret(env, "base", "ours-value", true);
    add(env, "m1");
}

fn merge_conflicts(env: &Env) {
    let o = env.git(&["merge", "-q", "--no-edit", "feature"]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        env.read()
            .contains("<<<<<<< ours: secret base of domain dev")
    );
}

#[test]
fn lists_shows_and_takes_theirs_for_a_named_entry() {
    let env = repo();
    conflicted(&env);
    merge_conflicts(&env);
    // The file with markers is refused with advice that keeps both sides.
    let o = env.run(&["list-domains"], "").code(1);
    assert!(o.stderr.contains("run `pprotect resolve`"), "{}", o.stderr);
    // Listing: one line per conflict, exit 1.
    let o = env.run(&["resolve"], "").code(1);
    assert_eq!(
        o.stdout,
        "secret base of domain dev: changed differently on both sides\n"
    );
    let o = env.run(&["resolve", "--json"], "").code(1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v[0]["kind"], "secret");
    assert_eq!(v[0]["domain"], "dev");
    assert_eq!(v[0]["entry"], "base");
    // --show: both values, for an owner.
    let o = env.run(&["resolve", "--show"], "").code(1);
    assert_eq!(
        o.stdout,
        "secret base of domain dev: changed differently on both sides\n  ours:   'ours-value'\n  theirs: 'theirs-value'\n"
    );
    // Without valid credentials: nothing secret, exit 1.
    let o = env.run_with(
        bin(),
        &["resolve", "--show", "--non-interactive"],
        "",
        &[("PPROTECT_PASSPHRASE", "wrong")],
    );
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        !o.stdout.contains("value") && !o.stderr.contains("value"),
        "{o:#?}"
    );
    // Take theirs for that secret.
    let o = env.run(&["resolve", "--theirs", "dev", "base"], "").ok();
    assert!(
        o.stderr
            .contains("took their side for secret base of domain dev")
    );
    assert!(o.stderr.contains("git add protected.yaml"), "{}", o.stderr);
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-edit"]);
    assert_good(&env, &["base=theirs-value", "f1", "m1"]);
    // Nothing left to resolve.
    let o = env.run(&["resolve"], "").ok();
    assert_eq!(o.stdout, "no merge conflict in protected.yaml\n");
}

#[test]
fn takes_ours_for_everything() {
    let env = repo();
    conflicted(&env);
    merge_conflicts(&env);
    env.run(&["resolve", "--ours"], "").ok();
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-edit"]);
    assert_good(&env, &["base=ours-value", "f1", "m1"]);
}

#[test]
fn a_named_entry_that_does_not_match_leaves_the_conflict() {
    let env = repo();
    conflicted(&env);
    merge_conflicts(&env);
    let o = env
        .run(&["resolve", "--theirs", "dev", "other"], "")
        .code(1);
    assert!(o.stdout.contains("secret base of domain dev"), "{o:#?}");
    assert!(env.read().contains("<<<<<<<"));
}

#[test]
fn during_a_rebase_and_a_cherry_pick() {
    let env = repo();
    conflicted(&env);
    // Rebase feature onto main: stage 2 (ours) is main's side.
    git(&env, &["checkout", "-q", "feature"]);
    let o = env.git(&["rebase", "-q", "main"]);
    assert_ne!(o.code, 0);
    env.run(&["resolve", "--theirs"], "").ok();
    git(&env, &["add", "protected.yaml"]);
    let o = env.run_with(
        "git",
        &["rebase", "--continue"],
        "",
        &[("GIT_EDITOR", "true")],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    assert_good(&env, &["base=theirs-value", "f1", "m1"]);
    // Cherry-pick main's update onto a fresh branch from the start.
    git(&env, &["checkout", "-q", "-b", "other", "main~2"]);
    secret(&env, "base", "other-value", true);
    let o = env.git(&["cherry-pick", "main~1"]);
    assert_ne!(o.code, 0);
    env.run(&["resolve", "--ours", "dev"], "").ok();
    git(&env, &["add", "protected.yaml"]);
    // Keeping ours rejects the picked change and its entry: the pick is
    // empty, as git says, and is skipped.
    let o = env.run_with(
        "git",
        &["cherry-pick", "--continue"],
        "",
        &[("GIT_EDITOR", "true")],
    );
    assert!(o.stdout.contains("nothing to commit"), "{o:#?}");
    git(&env, &["cherry-pick", "--skip"]);
    assert_good(&env, &["base=other-value"]);
}

/// In a clone where `setup-git` was never run, git merges the file as
/// text and conflicts; `resolve` redoes the merge structurally from the
/// index stages and keeps both sides' secrets.
#[test]
fn redoes_a_text_merge_structurally() {
    let mut env = Env::new();
    env.git_init();
    env.init_fast(A, "pw-a");
    env.run(&["add-domain"], "dev\n").ok();
    env.run(&["add-secret"], "dev\nbase\nbase-value\n").ok();
    env.commit_all("initial");
    git(&env, &["checkout", "-q", "-b", "feature"]);
    add(&env, "f1");
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    let o = env.git(&["merge", "-q", "--no-edit", "feature"]);
    assert_eq!(o.code, 1, "a text merge conflicts: {o:#?}");
    // Keeping one side of a text block would lose a secret; resolve does not.
    let o = env.run(&["resolve"], "").ok();
    assert!(o.stderr.contains("resolved"), "{o:#?}");
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-edit"]);
    assert_eq!(dev(&env).len(), 3);
    assert_good(&env, &["base", "f1", "m1"]);
}
