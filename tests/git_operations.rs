//! Every git command that merges protected.yaml, in real repositories set
//! up with `setup-git`: merge, updating a branch from main and merging it
//! back, rebase (same-second stamps, twice, interactive reordering,
//! `--autostash`), cherry-pick (one commit, a range), revert (an addition,
//! an update, an owner change), `pull --rebase` between clones, `am -3`,
//! `stash pop` and `merge --squash`. After each: no conflict markers, the
//! secrets decrypt to what the user expects, the file is canonical (Python
//! re-serializes it byte for byte) and `check-audit-log` over the whole
//! history is clean.

use std::collections::BTreeMap;

use crate::harness::{Env, bin, python_reserialize};

pub const A: &str = "a@example.com";
pub const B: &str = "b@example.com";

/// A repository with the driver installed: custodians A (owner of dev)
/// and B, secret `base` in dev, on branch main; A logged in.
pub fn repo() -> Env {
    let mut env = Env::new();
    env.git_init();
    env.init_fast(A, "pw-a");
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{B}\npw-b\npw-b\n"),
    )
    .ok();
    env.run(&["add-domain"], "dev\n").ok();
    env.run(&["add-secret"], "dev\nbase\nbase-value\n").ok();
    env.run(&["setup-git"], "").ok();
    env.commit_all("initial");
    env
}

pub fn git(env: &Env, args: &[&str]) {
    let o = env.git(args);
    assert_eq!(o.code, 0, "git {args:?}: {o:#?}\nfile:\n{}", env.read());
}

/// `add-secret` (or `update-secret` when `update`), then commit.
pub fn secret(env: &Env, name: &str, value: &str, update: bool) {
    let cmd = if update {
        "update-secret"
    } else {
        "add-secret"
    };
    env.run(&[cmd], &format!("dev\n{name}\n{value}\n")).ok();
    env.commit_all(&format!("{cmd} {name}"));
}

pub fn add(env: &Env, name: &str) {
    secret(env, name, &format!("{name}-value"), false);
}

/// dev's secrets as A reads them.
pub fn dev(env: &Env) -> BTreeMap<String, String> {
    let o = env
        .run_with(
            bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
        )
        .ok();
    serde_json::from_str(&o.stdout).unwrap()
}

/// The checks every operation must pass: no markers, the expected
/// secrets (name → value; a name alone means `NAME-value`), canonical
/// bytes, and a clean `check-audit-log` over the whole history.
#[track_caller]
pub fn assert_good(env: &Env, expect: &[&str]) {
    let text = env.read();
    assert!(!text.contains("<<<<<<<"), "markers left:\n{text}");
    let want: BTreeMap<String, String> = expect
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.to_string(), format!("{e}-value")),
        })
        .collect();
    assert_eq!(dev(env), want);
    if let Some(py) = python_reserialize(&env.file()) {
        assert_eq!(py, text, "Python re-serializes differently");
    }
    let o = env.run(&["check-audit-log"], "");
    assert_eq!(
        o.code,
        0,
        "check-audit-log: {o:#?}\nhistory:\n{}\nfile:\n{text}",
        env.git(&["log", "--graph", "--format=%h %s"]).stdout
    );
    assert!(o.stdout.contains("0 finding(s)"), "{}", o.stdout);
}

fn log(env: &Env) -> String {
    env.run(&["list-audit-log"], "").ok().stdout
}

#[test]
fn merge_both_ways() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "feature"]);
    add(&env, "f1");
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    git(&env, &["merge", "-q", "--no-edit", "feature"]);
    assert_good(&env, &["base", "f1", "m1"]);
}

#[test]
fn update_a_branch_from_main_then_merge_it_back() {
    let env = repo();
    let pause = || std::thread::sleep(std::time::Duration::from_millis(1100));
    git(&env, &["checkout", "-q", "-b", "feature"]);
    for round in 1..=3 {
        add(&env, &format!("f{round}"));
        pause();
        git(&env, &["checkout", "-q", "main"]);
        add(&env, &format!("ok{round}"));
        pause();
        // GitHub's "Update branch": main into feature.
        git(&env, &["checkout", "-q", "feature"]);
        git(&env, &["merge", "-q", "--no-edit", "main"]);
        git(&env, &["checkout", "-q", "main"]);
        add(&env, &format!("x{round}"));
        pause();
        git(&env, &["merge", "-q", "--no-edit", "feature"]);
        git(&env, &["checkout", "-q", "feature"]);
    }
    git(&env, &["checkout", "-q", "main"]);
    let mut want = vec!["base".to_string()];
    for r in 1..=3 {
        for p in ["f", "ok", "x"] {
            want.push(format!("{p}{r}"));
        }
    }
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_good(&env, &want);
}

#[test]
fn rebase_several_commits_same_second_and_twice() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "feature"]);
    for n in ["f1", "f2", "f3", "f4", "f5"] {
        add(&env, n);
    }
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    git(&env, &["checkout", "-q", "feature"]);
    git(&env, &["rebase", "-q", "main"]);
    assert_good(&env, &["base", "f1", "f2", "f3", "f4", "f5", "m1"]);
    // Main moves on; rebase again.
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m2");
    git(&env, &["checkout", "-q", "feature"]);
    git(&env, &["rebase", "-q", "main"]);
    assert_good(&env, &["base", "f1", "f2", "f3", "f4", "f5", "m1", "m2"]);
    // Fast-forward main: the linear history checks clean too.
    git(&env, &["checkout", "-q", "main"]);
    git(&env, &["merge", "-q", "--ff-only", "feature"]);
    assert_good(&env, &["base", "f1", "f2", "f3", "f4", "f5", "m1", "m2"]);
}

#[test]
fn interactive_rebase_reordering() {
    let mut env = repo();
    git(&env, &["checkout", "-q", "-b", "feature"]);
    add(&env, "f1");
    add(&env, "f2");
    add(&env, "f3");
    // A sequence editor that reverses the picks.
    env.write(
        "home/reverse.sh",
        "#!/bin/sh\ngrep '^pick' \"$1\" | tac > \"$1.new\" && mv \"$1.new\" \"$1\"\n",
    );
    let script = env.path().join("home/reverse.sh");
    env.set("GIT_SEQUENCE_EDITOR", &format!("sh {}", script.display()));
    git(&env, &["rebase", "-q", "-i", "main"]);
    std::fs::remove_file(&script).unwrap();
    let subjects = env.git(&["log", "--format=%s", "-3"]).ok().stdout;
    assert_eq!(
        subjects, "add-secret f1\nadd-secret f2\nadd-secret f3\n",
        "reordered"
    );
    assert_good(&env, &["base", "f1", "f2", "f3"]);
}

#[test]
fn cherry_pick_one_commit_and_a_range() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "feature"]);
    for n in ["f1", "f2", "f3", "f4"] {
        add(&env, n);
    }
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    git(&env, &["cherry-pick", "feature~2"]);
    assert_good(&env, &["base", "f2", "m1"]);
    git(&env, &["cherry-pick", "feature~1..feature"]);
    assert_good(&env, &["base", "f2", "f4", "m1"]);
    // And back the other way later: merging the feature brings the rest.
    git(&env, &["merge", "-q", "--no-edit", "feature"]);
    assert_good(&env, &["base", "f1", "f2", "f3", "f4", "m1"]);
}

#[test]
fn revert_an_addition_an_update_and_an_owner_change() {
    let env = repo();
    add(&env, "k1");
    secret(&env, "base", "changed", true);
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.commit_all("grant b");
    add(&env, "k2");
    // Revert the owner change: B can no longer read dev.
    git(&env, &["revert", "--no-edit", ":/^grant b"]);
    assert!(log(&env).contains(&format!("removed owner {B} from dev")));
    let o = env.run_with(
        bin(),
        &["decrypt-domain", "dev"],
        "",
        &[("PPROTECT_USER", B), ("PPROTECT_PASSPHRASE", "pw-b")],
    );
    assert_ne!(o.code, 0, "{o:#?}");
    assert_good(&env, &["base=changed", "k1", "k2"]);
    // Revert the update: the old value is back, logged as an update.
    git(&env, &["revert", "--no-edit", ":/^update-secret base"]);
    assert_good(&env, &["base=base-value", "k1", "k2"]);
    assert!(
        log(&env).ends_with("updated secret base in dev\n"),
        "{}",
        log(&env)
    );
    // Revert the addition: logged as a removal.
    git(&env, &["revert", "--no-edit", ":/^add-secret k1"]);
    assert!(log(&env).ends_with("removed secret k1 from dev\n"));
    assert_good(&env, &["base=base-value", "k2"]);
    // Reverting the revert adds it back.
    let before = env.git(&["show", "HEAD~1:protected.yaml"]).ok().stdout;
    git(&env, &["revert", "--no-edit", "HEAD"]);
    assert_good(&env, &["base=base-value", "k1", "k2"]);
    // That last revert undid the file's latest change, so git took the
    // older file as it was, without calling the driver: check-audit-log
    // accepts it as the exact inverse of the reverted commit, and says so.
    assert_eq!(env.read(), before);
    let o = env.run(&["check-audit-log", "--no-cache"], "").ok();
    assert!(
        o.stderr.contains("reverts ") && o.stderr.contains("exactly"),
        "{o:#?}"
    );
}

#[test]
fn pull_rebase_between_two_clones() {
    let env = repo();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("remote.git");
    git(
        &env,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().unwrap(),
        ],
    );
    git(&env, &["push", "-q", remote.to_str().unwrap(), "main"]);
    // A second clone beside the first, set up the same way.
    let mut other = Env::new();
    other.vars = env.vars.clone();
    std::fs::remove_dir(other.path().join("home")).unwrap();
    std::fs::remove_dir(other.path().join("run")).unwrap();
    let o = other.git(&["clone", "-q", remote.to_str().unwrap(), "."]);
    assert_eq!(o.code, 0, "{o:#?}");
    other.git(&["config", "commit.gpgsign", "false"]).ok();
    other.run(&["setup-git"], "").ok();
    git(&env, &["remote", "add", "origin", remote.to_str().unwrap()]);
    git(&env, &["fetch", "-q", "origin"]);
    git(&env, &["branch", "-q", "-u", "origin/main"]);
    add(&other, "from-other");
    git(&other, &["push", "-q", "origin", "main"]);
    add(&env, "from-here");
    add(&env, "from-here-2");
    git(&env, &["pull", "-q", "--rebase"]);
    assert_good(&env, &["base", "from-here", "from-here-2", "from-other"]);
    git(&env, &["push", "-q", "origin", "main"]);
    git(&other, &["pull", "-q", "--rebase"]);
    assert_good(&other, &["base", "from-here", "from-here-2", "from-other"]);
}

#[test]
fn am_three_way() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "feature"]);
    add(&env, "f1");
    add(&env, "f2");
    let patches = env.path().join("patches");
    git(
        &env,
        &[
            "format-patch",
            "-q",
            "-o",
            patches.to_str().unwrap(),
            "main",
        ],
    );
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    let mut files: Vec<_> = std::fs::read_dir(&patches)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["am", "-q", "-3"];
    args.extend(files.iter().map(String::as_str));
    git(&env, &args);
    std::fs::remove_dir_all(&patches).unwrap();
    assert_good(&env, &["base", "f1", "f2", "m1"]);
}

#[test]
fn stash_pop_and_rebase_autostash() {
    let env = repo();
    // Work in progress, stashed while main moves on.
    env.run(&["add-secret"], "dev\nwip\nwip-value\n").ok();
    git(&env, &["stash", "-q"]);
    add(&env, "m1");
    git(&env, &["stash", "pop", "-q"]);
    env.commit_all("wip");
    assert_good(&env, &["base", "m1", "wip"]);
    // rebase --autostash with a dirty protected file.
    git(&env, &["checkout", "-q", "-b", "feature"]);
    add(&env, "f1");
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m2");
    git(&env, &["checkout", "-q", "feature"]);
    env.run(&["add-secret"], "dev\nwip2\nwip2-value\n").ok();
    git(&env, &["rebase", "-q", "--autostash", "main"]);
    env.commit_all("wip2");
    assert_good(&env, &["base", "f1", "m1", "m2", "wip", "wip2"]);
}

#[test]
fn merge_squash() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "feature"]);
    add(&env, "f1");
    add(&env, "f2");
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    git(&env, &["merge", "-q", "--squash", "feature"]);
    env.commit_all("squashed feature");
    assert_good(&env, &["base", "f1", "f2", "m1"]);
}

/// check-audit-log flags a merge that keeps one side's file and drops the
/// other's secrets and entries, however it was made.
#[test]
fn a_merge_that_discards_a_side_is_flagged() {
    for how in ["-s ours", "checkout --ours"] {
        let env = repo();
        git(&env, &["checkout", "-q", "-b", "feature"]);
        add(&env, "f1");
        git(&env, &["checkout", "-q", "main"]);
        add(&env, "m1");
        if how == "-s ours" {
            git(&env, &["merge", "-q", "--no-edit", "-s", "ours", "feature"]);
        } else {
            // A conflict on another file, resolved by keeping ours
            // everywhere.
            git(&env, &["merge", "-q", "--no-commit", "feature"]);
            git(&env, &["checkout", "HEAD", "--", "protected.yaml"]);
            git(&env, &["commit", "-q", "--no-edit"]);
        }
        let o = env.run(&["check-audit-log"], "").code(1);
        assert!(
            o.stdout.contains("audit entry removed or altered:")
                && o.stdout.contains("added secret f1 in dev"),
            "{how}: {}",
            o.stdout
        );
        // A range over the merge alone checks it too.
        let o = env.run(&["check-audit-log", "--range", "HEAD~1..HEAD"], "");
        assert_eq!(o.code, 1, "{how}: {o:#?}");
    }
}

/// A merge commit is not blamed for entries its parents brought in: a
/// branch whose clock ran two hours ahead is flagged at its own commit
/// only if its commit time disagrees, never at the merge.
#[test]
fn a_merge_is_not_blamed_for_a_parents_entries() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "feature"]);
    env.run(&["add-secret"], "dev\nahead\nv\n").ok();
    // Stamp the entry two hours ahead, and commit with that clock too.
    let text = env.read();
    let last = text.lines().last().unwrap().to_string();
    let ts = &last[2..22];
    let secs = pprotect::ops::parse_timestamp(ts).unwrap() + 7200;
    let ahead = pprotect::ops::format_timestamp(secs);
    std::fs::write(env.file(), text.replace(&last, &last.replace(ts, &ahead))).unwrap();
    git(&env, &["add", "-A"]);
    let date = format!("@{secs} +0000");
    let o = env.run_with(
        "git",
        &["commit", "-q", "--no-verify", "-m", "ahead"],
        "",
        &[("GIT_COMMITTER_DATE", &date), ("GIT_AUTHOR_DATE", &date)],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    git(&env, &["merge", "-q", "--no-edit", "feature"]);
    let o = env.run(&["check-audit-log"], "");
    assert_eq!(o.code, 0, "{o:#?}");
}

/// git's octopus strategy never calls merge drivers; with the protected
/// file changed on two branches it fails and leaves the tree untouched.
#[test]
fn octopus_fails_cleanly() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "a"]);
    add(&env, "a1");
    git(&env, &["checkout", "-q", "main"]);
    git(&env, &["checkout", "-q", "-b", "b"]);
    add(&env, "b1");
    git(&env, &["checkout", "-q", "main"]);
    add(&env, "m1");
    let before = env.read();
    let o = env.git(&["merge", "--no-edit", "a", "b"]);
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(
        o.stderr.contains("octopus failed") || o.stdout.contains("octopus failed"),
        "{o:#?}"
    );
    assert_eq!(env.read(), before);
    // One at a time works.
    git(&env, &["merge", "-q", "--no-edit", "a"]);
    git(&env, &["merge", "-q", "--no-edit", "b"]);
    assert_good(&env, &["a1", "b1", "base", "m1"]);
}
