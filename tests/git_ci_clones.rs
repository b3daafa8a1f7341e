//! check-audit-log where teams run it: shallow clones (depth 1, depth N,
//! a pull request's merge ref at depth 1), single-branch clones, partial
//! clones (`blob:none`, `tree:0`) from a local remote, `--full`; a commit
//! made with a clock running ahead blamed as the outlier; and the
//! baseline of accepted findings.

use std::path::{Path, PathBuf};

use crate::git_operations::{git, repo};
use crate::harness::{Env, Out, bin};

/// The origin: a history of several commits changing the file, served
/// with filters and any object on request (as hosting services do).
fn origin() -> Env {
    let env = repo();
    for i in 0..6 {
        env.run(&["add-secret"], &format!("dev\nk{i}\nv{i}\n")).ok();
        env.commit_all(&format!("add k{i}"));
    }
    git(&env, &["config", "uploadpack.allowFilter", "true"]);
    git(&env, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
    env
}

fn url(env: &Env) -> String {
    format!("file://{}", env.path().display())
}

/// Run `pprotect ARGS` in `dir`, with `env`'s sealed environment.
fn run_in(env: &Env, dir: &Path, args: &[&str]) -> Out {
    let mut c = env.command(bin());
    c.current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null());
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn git_in(env: &Env, dir: &Path, args: &[&str]) {
    let mut c = env.command("git");
    c.current_dir(dir).args(args);
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn clone(env: &Env, from: &Env, name: &str, args: &[&str]) -> PathBuf {
    let dest = env.path().join(name);
    let mut a = vec!["clone", "-q"];
    a.extend_from_slice(args);
    let u = url(from);
    a.push(&u);
    let d = dest.to_str().unwrap().to_string();
    a.push(&d);
    git_in(env, env.path(), &a);
    dest
}

#[test]
fn shallow_clones_check_what_is_there() {
    let origin = origin();
    let env = Env::new();
    for (depth, checked) in [("1", 0), ("5", 4)] {
        let dir = clone(&env, &origin, &format!("depth{depth}"), &["--depth", depth]);
        let o = run_in(&env, &dir, &["check-audit-log"]);
        assert_eq!(o.code, 0, "depth {depth}: {o:#?}");
        assert!(
            o.stdout
                .contains(&format!("0 finding(s) in {checked} commit(s)")),
            "depth {depth}: {o:#?}"
        );
        assert!(
            o.stderr.contains(
                "note: shallow clone: history before 1 boundary commit(s) was not checked"
            ) && o.stderr.contains("git fetch --unshallow")
                && o.stderr.contains("fetch-depth: 0")
                && o.stderr.contains("GIT_DEPTH: 0"),
            "{o:#?}"
        );
        // Never the "not set up" hint off a terminal, for a read-only check.
        assert!(!o.stderr.contains("not set up"), "{o:#?}");
        let o = run_in(&env, &dir, &["check-audit-log", "--json"]);
        assert_eq!(o.code, 0, "{o:#?}");
        assert_eq!(o.stdout.trim(), "[]");
        assert!(o.stderr.contains("shallow clone"), "{o:#?}");
        // --full: the whole history, or an error that says how to get it.
        let o = run_in(&env, &dir, &["check-audit-log", "--full"]);
        assert_eq!(o.code, 2, "{o:#?}");
        assert!(o.stderr.contains("git fetch --unshallow"), "{o:#?}");
        // And once unshallowed, the whole history checks.
        git_in(&env, &dir, &["fetch", "-q", "--unshallow"]);
        let o = run_in(&env, &dir, &["check-audit-log", "--full"]);
        assert_eq!(o.code, 0, "{o:#?}");
        assert!(!o.stderr.contains("shallow"), "{o:#?}");
    }
    // A tampered commit after the boundary is still found.
    let dir = clone(&env, &origin, "tampered", &["--depth", "2"]);
    let text = std::fs::read_to_string(dir.join("protected.yaml")).unwrap();
    std::fs::write(
        dir.join("protected.yaml"),
        text.replace("secret-k1:", "secret-copied: AAAA\n  secret-k1:"),
    )
    .unwrap();
    git_in(
        &env,
        &dir,
        &["commit", "-q", "-a", "--no-verify", "-m", "sneaky"],
    );
    let o = run_in(&env, &dir, &["check-audit-log"]);
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stdout.contains("sneaky"), "{o:#?}");
}

/// What actions/checkout does for a pull request: the merge ref at depth 1.
#[test]
fn a_pull_request_merge_ref_at_depth_one() {
    let origin = origin();
    git(&origin, &["checkout", "-q", "-b", "feature", "HEAD~2"]);
    origin.run(&["add-secret"], "dev\nf1\nfv\n").ok();
    origin.commit_all("feature");
    git(&origin, &["checkout", "-q", "-b", "pr-merge", "main"]);
    git(&origin, &["merge", "-q", "--no-edit", "feature"]);
    git(&origin, &["update-ref", "refs/pull/1/merge", "pr-merge"]);
    git(&origin, &["checkout", "-q", "main"]);
    let env = Env::new();
    let dir = env.path().join("pr");
    std::fs::create_dir(&dir).unwrap();
    git_in(&env, &dir, &["init", "-q"]);
    git_in(
        &env,
        &dir,
        &[
            "fetch",
            "-q",
            "--depth",
            "1",
            &url(&origin),
            "+refs/pull/1/merge:refs/remotes/pull/1/merge",
        ],
    );
    git_in(&env, &dir, &["checkout", "-q", "refs/remotes/pull/1/merge"]);
    let o = run_in(&env, &dir, &["check-audit-log"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(o.stderr.contains("shallow clone"), "{o:#?}");
    // Single-branch clones have all of their branch's history.
    let dir = clone(
        &env,
        &origin,
        "single",
        &["--single-branch", "--branch", "main"],
    );
    let o = run_in(&env, &dir, &["check-audit-log"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(o.stdout.contains("0 finding(s) in 7 commit(s)"), "{o:#?}");
    assert!(!o.stderr.contains("shallow"), "{o:#?}");
}

#[test]
fn partial_clones_fetch_what_they_need_in_one_batch() {
    let origin = origin();
    let env = Env::new();
    for filter in ["blob:none", "tree:0"] {
        let name = filter.replace(':', "-");
        let dir = clone(&env, &origin, &name, &[&format!("--filter={filter}")]);
        let o = run_in(&env, &dir, &["check-audit-log", "--no-cache"]);
        assert_eq!(o.code, 0, "{filter}: {o:#?}");
        assert!(
            o.stdout.contains("0 finding(s) in 7 commit(s)"),
            "{filter}: {o:#?}"
        );
    }
    // Without the remote: the missing objects are named, with what to run.
    let dir = clone(&env, &origin, "offline", &["--filter=blob:none"]);
    let moved = origin.path().with_extension("gone");
    std::fs::rename(origin.path(), &moved).unwrap();
    let o = run_in(&env, &dir, &["check-audit-log", "--no-cache"]);
    std::fs::rename(&moved, origin.path()).unwrap();
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(
        o.stderr
            .contains("versions of the protected file are missing")
            && o.stderr.contains("could not be fetched from remote origin")
            && o.stderr.contains("git fetch"),
        "{o:#?}"
    );
}

/// `pprotect log` in a partial clone gets what it reads from the promisor
/// remote in batches, as check-audit-log does.
#[test]
fn log_works_in_partial_clones() {
    let origin = origin();
    let env = Env::new();
    for filter in ["blob:none", "tree:0"] {
        let name = format!("log-{}", filter.replace(':', "-"));
        let dir = clone(&env, &origin, &name, &[&format!("--filter={filter}")]);
        let o = run_in(&env, &dir, &["log", "dev", "--json"]);
        assert_eq!(o.code, 0, "{filter}: {o:#?}");
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        // The six additions and the initial commit.
        assert_eq!(v.as_array().unwrap().len(), 7, "{filter}: {v:#}");
        assert_eq!(v[0]["summary"], "add k5", "{filter}: {v:#}");
    }
}

/// Commit `f`'s text as it is, with dates.
fn commit_at(env: &Env, msg: &str, when: i64) {
    let date = format!("@{when} +0000");
    let o = env.run_with(
        "git",
        &["commit", "-q", "-a", "--no-verify", "-m", msg],
        "",
        &[("GIT_AUTHOR_DATE", &date), ("GIT_COMMITTER_DATE", &date)],
    );
    assert_eq!(o.code, 0, "{o:#?}");
}

fn stamp(t: i64) -> String {
    pprotect::ops::format_timestamp(t)
}

/// A commit made with a clock a day fast, then honest ones: the outlier
/// is the finding, not the honest commit after it. The team accepts it in
/// the baseline; an edited baseline line is reported.
#[test]
fn a_fast_clock_is_blamed_on_the_outlier_and_can_be_accepted() {
    let env = repo();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = 86_400;
    // The outlier: its clock a day fast (entries and commit alike).
    let mut f = pprotect::ProtectedFile::from_bytes(env.read().as_bytes()).unwrap();
    f.add_secret("dev", "fast", &secrecy::SecretString::from("x".to_string()))
        .unwrap();
    let last = f.audit_log.pop().unwrap();
    f.audit_log
        .push(format!("{} -- {}", stamp(now + day), &last[24..]));
    std::fs::write(env.file(), f.to_yaml_string()).unwrap();
    commit_at(&env, "fast clock", now + day);
    let outlier = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    // Honest commits after it.
    for (i, name) in ["honest1", "honest2"].iter().enumerate() {
        env.run(&["add-secret"], &format!("dev\n{name}\nv\n")).ok();
        commit_at(&env, name, now + 60 * (i as i64 + 1));
    }
    let o = env.run(&["check-audit-log", "--no-cache"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{o:#?}");
    assert!(
        lines[0].starts_with(&format!(
            "{} fast clock: audit entry stamped after commit ",
            &outlier[..7]
        )) && lines[0].contains("that follows it (a clock running ahead?)"),
        "{o:#?}"
    );
    assert!(
        !o.stdout.contains("honest"),
        "the honest commit is blamed: {o:#?}"
    );
    // Accept it, as history.
    let o = env.run(
        &[
            "check-audit-log",
            "--accept",
            &outlier[..10],
            "--reason",
            "laptop clock was a day fast",
        ],
        "",
    );
    assert_eq!(o.code, 0, "{o:#?}");
    let baseline = std::fs::read_to_string(env.path().join(".pprotect-baseline")).unwrap();
    assert!(
        baseline.contains(&format!("{outlier}\tfuture-dated\t")),
        "{baseline}"
    );
    env.commit_all("accept the fast clock");
    let o = env.run(&["check-audit-log"], "");
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stdout.contains("(accepted: laptop clock was a day fast)"),
        "{o:#?}"
    );
    assert!(
        o.stdout.contains("0 finding(s) and 1 accepted in "),
        "{o:#?}"
    );
    // (A history whose findings are all accepted is recorded as verified:
    // the JSON run checks again.)
    let o = env.run(&["check-audit-log", "--json", "--no-cache"], "");
    assert_eq!(o.code, 0, "{o:#?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v[0]["accepted"], true);
    assert_eq!(v[0]["reason"], "laptop clock was a day fast");
    // A line that no longer matches a finding is reported.
    let edited = baseline.replace("future-dated", "back-dated");
    std::fs::write(env.path().join(".pprotect-baseline"), edited).unwrap();
    let o = env.run(&["check-audit-log"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stdout
            .contains("accepts a finding this commit does not have"),
        "{o:#?}"
    );
    assert!(
        o.stdout.contains("1 finding(s)") || o.stdout.contains("2 finding(s)"),
        "{o:#?}"
    );
    // An invalid file cannot be accepted.
    std::fs::write(env.file(), "not: [a, protected file\n").unwrap();
    commit_at(&env, "broken", now + 600);
    let broken = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    let o = env.run(
        &["check-audit-log", "--accept", &broken, "--reason", "x"],
        "",
    );
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stderr.contains("cannot be accepted"), "{o:#?}");
}

/// The README's CI jobs, command for command, in the clone actions/checkout
/// makes with `fetch-depth: 0` (and GitLab with `GIT_DEPTH: 0`): a good
/// pull request passes, one that stages a decrypted dump fails.
#[test]
fn the_readme_ci_jobs() {
    let origin = origin();
    for (branch, dump) in [("good", false), ("bad", true)] {
        git(&origin, &["checkout", "-q", "-b", branch, "main"]);
        origin
            .run(&["add-secret"], &format!("dev\n{branch}\nv\n"))
            .ok();
        if dump {
            origin.write(
                "dev.json",
                // One-line JSON, as `jq -c` writes a dump.
                "{\"base\": \"x\", \"k0\": \"y\", \"k1\": \"z\", \"k2\": \"w\"}\n",
            );
        }
        origin.commit_all(branch);
        git(&origin, &["checkout", "-q", "main"]);
    }
    let env = Env::new();
    for (branch, ok) in [("good", true), ("bad", false)] {
        let dir = clone(&env, &origin, &format!("ci-{branch}"), &[]);
        git_in(
            &env,
            &dir,
            &["checkout", "-q", "-b", "pr", &format!("origin/{branch}")],
        );
        let o = run_in(&env, &dir, &["check-audit-log"]);
        assert_eq!(o.code, 0, "{o:#?}");
        let o = run_in(
            &env,
            &dir,
            &["check-audit-log", "--range", "origin/main..HEAD"],
        );
        assert_eq!(o.code, 0, "{o:#?}");
        // (The full check recorded the history as verified; checked again:)
        let o = run_in(
            &env,
            &dir,
            &[
                "check-audit-log",
                "--range",
                "origin/main..HEAD",
                "--no-cache",
            ],
        );
        assert!(o.stdout.contains("0 finding(s) in 1 commit(s)"), "{o:#?}");
        git_in(&env, &dir, &["reset", "-q", "--soft", "origin/main"]);
        let o = run_in(&env, &dir, &["pre-commit"]);
        assert_eq!(o.code == 0, ok, "{branch}: {o:#?}");
        if !ok {
            assert!(
                o.stdout.contains("dev.json") || o.stderr.contains("dev.json"),
                "{o:#?}"
            );
        }
    }
}
