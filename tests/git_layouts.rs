//! Git integration in the repository layouts teams have: linked
//! worktrees, a bare repository with worktrees, husky's hooks, a
//! `core.hooksPath` with `~` or a relative path, two protected files,
//! commands from a subdirectory, a submodule, a clone where `setup-git`
//! never ran, CRLF working copies, and a renamed protected file. Each
//! `setup-git --check` is shown to fail where git would not run the
//! driver, textconv or hook.

use std::path::Path;

use crate::git_operations::{A, add, assert_good, git, repo};
use crate::harness::{Env, bin};

/// Run pprotect in `dir` with the env's variables.
fn run_in(env: &Env, dir: &Path, args: &[&str], stdin: &str) -> crate::harness::Out {
    let mut c = env.command(bin());
    c.current_dir(dir);
    c.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        let _ = i.write_all(stdin.as_bytes());
    }
    let o = child.wait_with_output().unwrap();
    crate::harness::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn git_in(env: &Env, dir: &Path, args: &[&str]) -> crate::harness::Out {
    let mut full = vec!["-C", dir.to_str().unwrap()];
    full.extend_from_slice(args);
    let o = env.git(&full);
    assert_eq!(o.code, 0, "git {args:?} in {}: {o:#?}", dir.display());
    o
}

#[test]
fn linked_worktree() {
    let env = repo();
    let wt = env.path().join("home/wt");
    git(
        &env,
        &["worktree", "add", "-q", wt.to_str().unwrap(), "-b", "wt"],
    );
    // The clone's setup covers the worktree: config and hooks are shared.
    run_in(&env, &wt, &["setup-git", "--check"], "").ok();
    run_in(&env, &wt, &["setup-git"], "").ok();
    run_in(&env, &wt, &["add-secret"], "dev\nfrom-wt\nw\n").ok();
    git_in(&env, &wt, &["commit", "-q", "-am", "from wt"]);
    add(&env, "from-main");
    git(&env, &["merge", "-q", "--no-edit", "wt"]);
    assert_good(&env, &["base", "from-main", "from-wt=w"]);
}

#[test]
fn bare_repository_with_a_worktree() {
    let env = repo();
    let bare = env.path().join("home/bare.git");
    git(
        &env,
        &["clone", "-q", "--bare", ".", bare.to_str().unwrap()],
    );
    let wt = env.path().join("home/bare-wt");
    git_in(
        &env,
        &bare,
        &["worktree", "add", "-q", wt.to_str().unwrap(), "main"],
    );
    let o = run_in(&env, &wt, &["setup-git", "--check"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    run_in(&env, &wt, &["setup-git"], "").ok();
    run_in(&env, &wt, &["setup-git", "--check"], "").ok();
    assert!(bare.join("hooks/pre-commit").exists());
    // Merges in the worktree use the driver.
    git_in(&env, &wt, &["checkout", "-q", "-b", "topic"]);
    run_in(&env, &wt, &["add-secret"], "dev\nt1\nv\n").ok();
    git_in(&env, &wt, &["commit", "-q", "-am", "t1"]);
    git_in(&env, &wt, &["checkout", "-q", "main"]);
    run_in(&env, &wt, &["add-secret"], "dev\nm1\nv\n").ok();
    git_in(&env, &wt, &["commit", "-q", "-am", "m1"]);
    git_in(&env, &wt, &["merge", "-q", "--no-edit", "topic"]);
    let o = run_in(&env, &wt, &["list-domain-secrets", "dev"], "").ok();
    assert_eq!(o.stdout, "base\nm1\nt1\n");
    run_in(&env, &wt, &["check-audit-log"], "").ok();
}

/// husky v9: `core.hooksPath=.husky/_`, whose scripts dispatch on their
/// own name through `h`; the team's hook is `.husky/pre-commit`.
#[test]
fn husky_hooks_keep_running() {
    let env = repo();
    env.write(
        ".husky/_/h",
        "#!/usr/bin/env sh\nn=$(basename \"$0\")\ns=$(dirname \"$(dirname \"$0\")\")/$n\n[ ! -f \"$s\" ] && exit 0\nsh -e \"$s\" \"$@\"\nc=$?\n[ $c != 0 ] && echo \"husky - $n script failed (code $c)\"\nexit $c\n",
    );
    let dispatcher = "#!/usr/bin/env sh\n. \"${0%/*}/h\"\n";
    env.write(".husky/_/pre-commit", dispatcher);
    env.write(".husky/pre-commit", "echo team-hook-ran\n");
    for f in [".husky/_/h", ".husky/_/pre-commit"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(env.path().join(f), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    git(&env, &["config", "core.hooksPath", ".husky/_"]);
    let o = env.run(&["setup-git", "--check"], "").code(1);
    assert!(o.stdout.contains("pre-commit hook in"), "{}", o.stdout);
    env.run(&["setup-git"], "").ok();
    env.run(&["setup-git", "--check"], "").ok();
    // A commit runs pprotect's check, then the team's hook through husky.
    env.write("README", "hi\n");
    git(&env, &["add", "README"]);
    let o = env.git(&["commit", "-q", "-m", "readme"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stdout.contains("team-hook-ran") || o.stderr.contains("team-hook-ran"),
        "{o:#?}"
    );
    // And pprotect's check still refuses a dump.
    let dump = env.run(&["decrypt-domain", "dev"], "").ok().stdout;
    env.write("dump.json", &dump.replace("base", "base-2"));
    env.write("dump.env", "base=base-value\n");
    git(&env, &["add", "dump.env"]);
    let o = env.git(&["commit", "-q", "-m", "dump"]);
    assert_ne!(o.code, 0, "{o:#?}");
    git(&env, &["reset", "-q"]);
    // husky reinstalls its dispatcher over ours: --check notices, and
    // --uninstall drops the kept copy, which is the same.
    env.write(".husky/_/pre-commit", dispatcher);
    env.run(&["setup-git", "--check"], "").code(1);
    let o = env.run(&["setup-git", "--uninstall"], "").ok();
    assert!(
        o.stdout.contains("the current hook is the same"),
        "{}",
        o.stdout
    );
    assert!(
        !env.path()
            .join(".husky/_/pre-commit.pprotect-chained")
            .exists()
    );
}

#[test]
fn hooks_path_with_tilde_and_relative() {
    let env = repo();
    for (value, dir) in [
        ("~/githooks", env.path().join("home/githooks")),
        ("relhooks", env.path().join("relhooks")),
    ] {
        git(&env, &["config", "core.hooksPath", value]);
        env.run(&["setup-git", "--check"], "").code(1);
        env.run(&["setup-git"], "").ok();
        assert!(dir.join("pre-commit").exists(), "{value}");
        assert!(!env.path().join("~").exists());
        env.run(&["setup-git", "--check"], "").ok();
        // git really runs it: a dump is refused.
        env.write("dump.env", "base=base-value\n");
        git(&env, &["add", "dump.env"]);
        let o = env.git(&["commit", "-q", "-m", "dump"]);
        assert_ne!(o.code, 0, "{value}: {o:#?}");
        git(&env, &["reset", "-q"]);
        std::fs::remove_file(env.path().join("dump.env")).unwrap();
    }
}

/// `--check` fails wherever git would not run the driver, textconv or
/// hook, whatever was written.
#[test]
fn check_verifies_what_git_will_do() {
    let env = repo();
    env.run(&["setup-git", "--check"], "").ok();
    // The hook is not executable.
    let hook = env.path().join(".git/hooks/pre-commit");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
        env.run(&["setup-git", "--check"], "").code(1);
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // info/attributes unsets the driver.
    env.write(".git/info/attributes", "protected.yaml -merge\n");
    let o = env.run(&["setup-git", "--check"], "").code(1);
    assert!(o.stdout.contains("missing: attributes"), "{}", o.stdout);
    std::fs::remove_file(env.path().join(".git/info/attributes")).unwrap();
    // A deeper .gitattributes, or `binary`, overrides the root's.
    env.write("sub/.gitattributes", "protected.yaml binary\n");
    std::fs::create_dir_all(env.path().join("sub")).unwrap();
    std::fs::copy(env.file(), env.path().join("sub/protected.yaml")).unwrap();
    let o = run_in(&env, &env.path().join("sub"), &["setup-git", "--check"], "").code(1);
    assert!(o.stdout.contains("missing: attributes"), "{}", o.stdout);
    // The config comes from the effective configuration.
    git(&env, &["config", "--unset", "diff.pprotect.textconv"]);
    env.run(&["setup-git", "--check"], "").code(1);
    env.run(&["setup-git"], "").ok();
    env.run(&["setup-git", "--check"], "").ok();
    // An absolute --file is written relative to the work tree.
    let abs = env.file().display().to_string();
    env.run(&["setup-git", "--file", &abs], "").ok();
    let attrs = std::fs::read_to_string(env.path().join(".gitattributes")).unwrap();
    assert!(!attrs.contains(&abs), "{attrs}");
    env.run(&["setup-git", "--check", "--file", &abs], "").ok();
}

#[test]
fn two_protected_files_uninstall_one() {
    let env = repo();
    std::fs::create_dir_all(env.path().join("svc")).unwrap();
    std::fs::copy(env.file(), env.path().join("svc/protected.yaml")).unwrap();
    env.run(&["setup-git", "--file", "svc/protected.yaml"], "")
        .ok();
    env.commit_all("svc");
    let o = env.run(&["setup-git", "--uninstall"], "").ok();
    assert!(
        o.stdout.contains("still used by svc/protected.yaml"),
        "{}",
        o.stdout
    );
    // The other file still merges structurally.
    env.run(
        &["setup-git", "--check", "--file", "svc/protected.yaml"],
        "",
    )
    .ok();
    git(&env, &["checkout", "-q", "-b", "f"]);
    env.run(
        &["add-secret", "--file", "svc/protected.yaml"],
        "dev\nf1\nv\n",
    )
    .ok();
    env.commit_all("f1");
    git(&env, &["checkout", "-q", "main"]);
    env.run(
        &["add-secret", "--file", "svc/protected.yaml"],
        "dev\nm1\nv\n",
    )
    .ok();
    env.commit_all("m1");
    git(&env, &["merge", "-q", "--no-edit", "f"]);
    // The committed .gitattributes was left alone without --attributes.
    let attrs = std::fs::read_to_string(env.path().join(".gitattributes")).unwrap();
    assert!(attrs.contains("protected.yaml merge=pprotect"));
}

/// One rule everywhere: `--file` relative to the current directory; the
/// default found the same way by every command.
#[test]
fn commands_from_a_subdirectory() {
    let env = repo();
    let sub = env.path().join("svc/api");
    std::fs::create_dir_all(&sub).unwrap();
    for args in [
        vec!["list-domains"],
        vec!["check-audit-log"],
        vec!["setup-git", "--check"],
        vec!["list-domains", "--file", "../../protected.yaml"],
        vec!["check-audit-log", "--file", "../../protected.yaml"],
        vec!["setup-git", "--check", "--file", "../../protected.yaml"],
    ] {
        let o = run_in(&env, &sub, &args, "");
        assert_eq!(o.code, 0, "{args:?}: {o:#?}");
    }
    let o = run_in(&env, &sub, &["decrypt-domain", "dev"], "").ok();
    assert!(o.stdout.contains("base-value"));
    // A missing --file is named as the user gave it, relative to here.
    let o = run_in(
        &env,
        &sub,
        &["list-domains", "--file", "protected.yaml"],
        "",
    )
    .code(2);
    assert!(o.stderr.contains("svc/api/protected.yaml"), "{}", o.stderr);
}

#[test]
fn a_protected_file_in_a_submodule() {
    let sub_env = repo();
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        vars: sub_env.vars.clone(),
    };
    env.git_init();
    env.write("README", "super\n");
    env.commit_all("super");
    let o = env.run_with(
        "git",
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            sub_env.path().to_str().unwrap(),
            "secrets",
        ],
        "",
        &[],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    env.commit_all("submodule");
    for args in [
        vec!["setup-git", "--file", "secrets/protected.yaml"],
        vec!["setup-git", "--check", "--file", "secrets/protected.yaml"],
        vec!["check-audit-log", "--file", "secrets/protected.yaml"],
    ] {
        let o = env.run(&args, "");
        assert_eq!(o.code, 1, "{args:?}: {o:#?}");
        assert!(o.stderr.contains("inside the submodule"), "{}", o.stderr);
        assert!(o.stderr.contains("run pprotect there"), "{}", o.stderr);
    }
    // Inside the submodule it all works.
    let inner = env.path().join("secrets");
    run_in(&env, &inner, &["setup-git"], "").ok();
    run_in(&env, &inner, &["check-audit-log"], "").ok();
}

#[test]
fn a_clone_without_setup_says_so() {
    let env = repo();
    let clone = env.path().join("home/clone");
    git(&env, &["clone", "-q", ".", clone.to_str().unwrap()]);
    for args in [vec!["add-domain"], vec!["pre-commit"]] {
        let o = run_in(&env, &clone, &args, "prod\n");
        assert!(
            o.stderr.contains("run `pprotect setup-git`"),
            "{args:?}: {o:#?}"
        );
    }
    // Where merging is irrelevant, off a terminal (CI), no hint.
    for args in [vec!["list-domains"], vec!["check-audit-log"]] {
        let o = run_in(&env, &clone, &args, "");
        assert!(!o.stderr.contains("setup-git"), "{args:?}: {o:#?}");
    }
    run_in(&env, &clone, &["setup-git"], "").ok();
    let o = run_in(&env, &clone, &["list-domains"], "").ok();
    assert_eq!(o.stderr, "");
}

#[test]
fn crlf_working_copy_with_safecrlf() {
    let env = repo();
    git(&env, &["config", "core.autocrlf", "true"]);
    git(&env, &["config", "core.safecrlf", "true"]);
    std::fs::remove_file(env.file()).unwrap();
    git(&env, &["checkout", "--", "protected.yaml"]);
    assert!(env.read().contains("\r\n"));
    git(&env, &["checkout", "-q", "-b", "f"]);
    env.run(&["add-secret"], "dev\nf1\nv1\n").ok();
    let text = env.read();
    assert!(
        text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'),
        "CRLF kept"
    );
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "-m", "f1"]);
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["add-secret"], "dev\nm1\nv2\n").ok();
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "-m", "m1"]);
    git(&env, &["merge", "-q", "--no-edit", "f"]);
    let blob = env.git(&["show", "HEAD:protected.yaml"]).ok().stdout;
    assert!(!blob.contains('\r'), "the blob stays LF");
    // setup-git keeps a CRLF .gitattributes CRLF.
    std::fs::write(env.path().join(".gitattributes"), "*.png binary\r\n").unwrap();
    env.run(&["setup-git"], "").ok();
    let attrs = std::fs::read_to_string(env.path().join(".gitattributes")).unwrap();
    assert_eq!(
        attrs,
        "*.png binary\r\nprotected.yaml merge=pprotect diff=pprotect\r\n"
    );
    let o = env.run(&["list-domain-secrets", "dev"], "").ok();
    assert_eq!(o.stdout, "base\nf1\nm1\n");
}

#[test]
fn check_audit_log_follows_a_rename() {
    let mut env = repo();
    add(&env, "k1");
    git(&env, &["mv", "protected.yaml", "secrets.yaml"]);
    env.write(
        ".gitattributes",
        "secrets.yaml merge=pprotect diff=pprotect\n",
    );
    env.commit_all("rename");
    env.set("PPROTECT_USER", A);
    env.run(&["add-secret", "--file", "secrets.yaml"], "dev\nk2\nv\n")
        .ok();
    env.commit_all("k2");
    // A rename with a change in the same commit is followed too.
    git(&env, &["mv", "secrets.yaml", "vault.yaml"]);
    env.run(&["add-secret", "--file", "vault.yaml"], "dev\nk3\nv\n")
        .ok();
    env.commit_all("rename and k3");
    // (initial, k1, k2, the rename with k3: a pure rename changes nothing)
    let o = env
        .run(&["check-audit-log", "--file", "vault.yaml"], "")
        .ok();
    assert!(
        o.stdout.contains("0 finding(s) in 4 commit(s)"),
        "{}",
        o.stdout
    );
}
