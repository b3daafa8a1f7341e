//! The diff textconv and the pre-commit check, in real temporary git
//! repositories.

use crate::harness::{Env, bin, has_blob};

const A: &str = "a@example.com";

/// A repository with a protected file (domain dev, secrets db-password,
/// api-key, token), committed, with textconv configured.
fn repo() -> Env {
    let mut env = Env::new();
    env.git_init();
    env.init_fast(A, "pw-a");
    env.run(&["add-domain"], "dev\n").ok();
    env.run(&["add-secret"], "dev\ndb-password\nhunter2-long-password\n")
        .ok();
    env.run(&["add-secret"], "dev\napi-key\nak-0123456789\n")
        .ok();
    env.run(&["add-secret"], "dev\ntoken\ntk-9876543210\n").ok();
    env.write(
        ".gitattributes",
        "protected.yaml merge=pprotect diff=pprotect\n",
    );
    env.git(&["config", "diff.pprotect.textconv", "pprotect textconv"])
        .ok();
    env.git(&[
        "config",
        "merge.pprotect.driver",
        "pprotect merge-driver %O %A %B %P --marker-size %L",
    ])
    .ok();
    env.commit_all("initial");
    env
}

#[test]
fn textconv_shows_names_not_blobs() {
    let env = repo();
    let o = env.run(&["textconv", "protected.yaml"], "").ok();
    assert!(o.stdout.contains("domain dev: secret db-password (sealed "));
    assert!(
        o.stdout
            .contains("domain dev: owner a@example.com (sealed ")
    );
    assert!(
        o.stdout.contains(
            "custodian a@example.com: fast key (opslimit 2, memlimit 64 MiB), public key "
        )
    );
    assert!(o.stdout.contains(" -- added secret token in dev\n"));
    assert!(!has_blob(&o.stdout));
    // Same output without credentials.
    let o2 = env
        .run_with(
            bin(),
            &["textconv", "protected.yaml"],
            "",
            &[("PPROTECT_PASSPHRASE", "")],
        )
        .ok();
    assert_eq!(o.stdout, o2.stdout);

    env.run(&["update-secret"], "dev\ntoken\nnew-token-value\n")
        .ok();
    let diff = env.git(&["diff"]).ok().stdout;
    assert!(!has_blob(&diff), "{diff}");
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') || l.starts_with('-'))
        .collect();
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with("-domain dev: secret token (sealed ")),
        "{diff}"
    );
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with("+domain dev: secret token (sealed ")),
        "{diff}"
    );
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with("+audit: ") && l.ends_with("-- updated secret token in dev"))
    );
    assert!(!diff.contains("new-token-value"));
    env.commit_all("update");
    let log = env.git(&["log", "-p"]).ok().stdout;
    assert!(log.contains("+domain dev: secret db-password (sealed "));
    assert!(!has_blob(&log));

    // A rotation changes every fingerprint of the domain.
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    let diff = env.git(&["diff"]).ok().stdout;
    for what in [
        "secret db-password",
        "secret api-key",
        "secret token",
        "public key",
        "owner a@example.com",
    ] {
        assert!(
            diff.contains(&format!("+domain dev: {what}")),
            "{what}: {diff}"
        );
    }
}

#[test]
fn textconv_of_a_broken_file_still_prints() {
    let env = Env::new();
    env.write(
        "broken.yaml",
        "<<<<<<< ours\nsecret-x: 1\n=======\n>>>>>>> theirs\n",
    );
    let o = env.run(&["textconv", "broken.yaml"], "").ok();
    assert!(o.stdout.starts_with("pprotect textconv: warning: "));
    assert!(o.stdout.contains("unresolved merge conflict at line 1"));
    assert!(o.stdout.ends_with(">>>>>>> theirs\n"));
}

fn pre_commit(env: &Env, extra: &[(&str, &str)]) -> crate::harness::Out {
    env.run_with(bin(), &["pre-commit"], "", extra)
}

#[test]
fn staged_plaintext_is_rejected_even_after_the_worktree_is_fixed() {
    let env = repo();
    let good = env.read();
    let re = regex::Regex::new(r"(?m)^  secret-token: .*$").unwrap();
    let bad = re
        .replace(&good, "  secret-token: tk-9876543210")
        .into_owned();
    std::fs::write(env.file(), &bad).unwrap();
    env.git(&["add", "protected.yaml"]).ok();
    std::fs::write(env.file(), &good).unwrap(); // fixed, not re-staged
    let o = pre_commit(&env, &[("PPROTECT_USER", ""), ("PPROTECT_PASSPHRASE", "")]).code(1);
    let line = bad
        .lines()
        .position(|l| l.starts_with("  secret-token:"))
        .unwrap()
        + 1;
    assert!(
        o.stderr.contains(&format!(
            "protected.yaml:{line}: secret \"token\" of domain \"dev\" is not valid base64"
        )),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("tk-9876543210"));
    // Re-staging the fix clears it.
    env.git(&["add", "protected.yaml"]).ok();
    pre_commit(&env, &[]).ok();
}

#[test]
fn truncated_values_and_conflict_markers_are_rejected() {
    let env = repo();
    let good = env.read();
    let re = regex::Regex::new(r"(?m)^  secret-token: .*$").unwrap();
    let short = re.replace(&good, "  secret-token: AAAA").into_owned();
    std::fs::write(env.file(), short).unwrap();
    env.git(&["add", "protected.yaml"]).ok();
    let o = pre_commit(&env, &[]).code(1);
    assert!(o.stderr.contains("is truncated"), "{}", o.stderr);

    let conflicted = format!("<<<<<<< HEAD\n{good}=======\n{good}>>>>>>> other\n");
    std::fs::write(env.file(), conflicted).unwrap();
    env.git(&["add", "protected.yaml"]).ok();
    let o = pre_commit(&env, &[]).code(1);
    assert!(
        o.stderr
            .contains("protected.yaml: unresolved merge conflict at line 1"),
        "{}",
        o.stderr
    );
}

#[test]
fn decrypted_value_with_credentials_is_rejected_without_showing_it() {
    let env = repo();
    env.write(
        "config/app.env",
        "# settings\nDATABASE_URL=postgres://u:hunter2-long-password@db/app\n",
    );
    env.write(
        "notes.txt",
        &format!("token in base64: {}\n", "dGstOTg3NjU0MzIxMA=="),
    );
    env.git(&["add", "-A"]).ok();
    let o = pre_commit(&env, &[]).code(1);
    assert!(
        o.stderr
            .contains("config/app.env:2: contains the value of secret db-password of domain dev"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(
            "notes.txt:1: contains the base64-encoded value of secret token of domain dev"
        )
    );
    assert!(!o.stderr.contains("hunter2"));
    assert!(!o.stderr.contains("dGstOTg3"));
    // Without credentials, a single value is not detectable.
    pre_commit(&env, &[("PPROTECT_USER", ""), ("PPROTECT_PASSPHRASE", "")]).ok();
    // The allow marker silences a line.
    env.write(
        "config/app.env",
        "DATABASE_URL=postgres://u:hunter2-long-password@db/app # pprotect: allow\n",
    );
    env.write("notes.txt", "nothing\n");
    env.git(&["add", "-A"]).ok();
    pre_commit(&env, &[]).ok();
}

#[test]
fn decrypt_domain_dump_is_rejected_without_credentials() {
    let env = repo();
    let dump = env.run(&["decrypt-domain", "dev"], "").ok().stdout;
    env.write("dump.json", &dump);
    // As `exec --prefix APP --uppercase` would name them.
    env.write(
        "env.sh",
        "export APP_API_KEY='x1'\nexport APP_DB_PASSWORD='x2'\nexport APP_TOKEN='x3'\n",
    );
    env.git(&["add", "-A"]).ok();
    let no_creds = [("PPROTECT_USER", ""), ("PPROTECT_PASSPHRASE", "")];
    let o = pre_commit(&env, &no_creds).code(1);
    assert!(
        o.stderr.contains("dump.json:2: looks like a decrypted dump of domain dev (sets api-key, db-password, token)"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("env.sh:1: looks like a decrypted dump of domain dev"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("hunter2"));
    // A path allowed in git config is not searched.
    env.git(&["config", "--add", "pprotect.allow", "dump.json"])
        .ok();
    env.git(&["config", "--add", "pprotect.allow", "env.sh"])
        .ok();
    pre_commit(&env, &no_creds).ok();
}

#[test]
fn clean_commits_pass_silently_and_no_verify_still_works() {
    let env = repo();
    let hooks = env.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/pre-commit"),
        hooks.join("pre-commit"),
    )
    .unwrap();
    env.write("README", "hello\n");
    env.git(&["add", "README"]).ok();
    let o = env.git(&["commit", "-q", "-m", "clean"]).ok();
    assert_eq!(o.stderr, "");
    let o = pre_commit(&env, &[]).ok();
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("", ""));
    // A dump is refused by the hook, and --no-verify skips it.
    let dump = env.run(&["decrypt-domain", "dev"], "").ok().stdout;
    env.write("dump.json", &dump);
    env.git(&["add", "dump.json"]).ok();
    let o = env.git(&["commit", "-q", "-m", "dump"]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("pprotect pre-commit: dump.json:"),
        "{}",
        o.stderr
    );
    env.git(&["commit", "-q", "--no-verify", "-m", "dump anyway"])
        .ok();
}

#[test]
fn outside_a_repository_it_cannot_check() {
    let env = Env::new();
    let o = pre_commit(&env, &[]).code(2);
    assert!(
        o.stderr.starts_with("error: not in a git repository"),
        "{}",
        o.stderr
    );
}

/// The pre-commit framework itself (`pre-commit` from PyPI, in the CI
/// virtualenv beside the Python tool) runs our hook from this repository:
/// it refuses a staged decrypted dump and passes a clean commit. The
/// `pprotect-system` hook always; the `pprotect` hook, which makes the
/// framework build pprotect with `cargo install` (minutes), only with
/// `PPROTECT_TEST_PRECOMMIT_RUST=1`.
#[test]
#[ignore = "needs the pre-commit framework"]
fn the_pre_commit_framework_runs_our_hooks() {
    let venv = crate::harness::require_python();
    let framework = venv.join("bin/pre-commit");
    assert!(
        framework.exists(),
        "needs the pre-commit framework: {}/bin/pip install pre-commit (.ci/run installs it)",
        venv.display()
    );
    let mut hooks = vec!["pprotect-system"];
    if std::env::var("PPROTECT_TEST_PRECOMMIT_RUST").is_ok_and(|v| v == "1") {
        hooks.push("pprotect");
    }
    let this_repo = env!("CARGO_MANIFEST_DIR");
    for hook in hooks {
        let mut env = repo();
        let cache = env.path().join("home/pre-commit-cache");
        env.set("PRE_COMMIT_HOME", cache.to_str().unwrap());
        // The `rust` hook builds with this machine's toolchain (rustup's
        // homes, which the private HOME would hide).
        if let Some(home) = std::env::var_os("HOME") {
            let home = std::path::PathBuf::from(home);
            for (var, dir) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
                let path = std::env::var_os(var)
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| home.join(dir));
                env.set(var, path.to_str().unwrap());
            }
        }
        let run = |env: &Env| {
            env.run_with(
                framework.to_str().unwrap(),
                &["try-repo", this_repo, hook, "--verbose"],
                "",
                &[],
            )
        };
        // A decrypted dump is refused.
        let dump = env.run(&["decrypt-domain", "dev"], "").ok().stdout;
        env.write("app.env", &dump);
        env.git(&["add", "app.env"]).ok();
        let o = run(&env);
        assert_eq!(o.code, 1, "{hook}: {o:#?}");
        assert!(o.stdout.contains("app.env"), "{hook}: {o:#?}");
        // A clean commit passes.
        env.git(&["rm", "-q", "--cached", "app.env"]).ok();
        std::fs::remove_file(env.path().join("app.env")).unwrap();
        env.write("README", "hello\n");
        env.git(&["add", "README"]).ok();
        let o = run(&env);
        assert_eq!(o.code, 0, "{hook}: {o:#?}");
    }
}
