//! The second security review: each attack reproduced against the
//! release binary's behaviour before the fix (each test fails there):
//! configuration from a repository git would not trust, secret names that
//! control pprotect or run code, hostile audit logs that took quadratic
//! time, a planted check-audit-log cache, vim's files, bidirectional
//! names, and value copies in URLs and HTTP basic auth.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::git_operations::{A, repo};
use crate::harness::{Env, bin};

/// Run `pprotect ARGS` with a watchdog: killed after `limit`.
fn run_limited(env: &Env, args: &[&str], limit: Duration) -> (crate::harness::Out, Duration) {
    let start = Instant::now();
    let mut c = env.command(bin());
    c.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let id = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let watchdog = std::thread::spawn(move || {
        while start.elapsed() < limit {
            if d2.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &id.to_string()])
            .status();
    });
    let o = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.join().unwrap();
    (
        crate::harness::Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        start.elapsed(),
    )
}

/// A repository owned by another user: its `pprotect.passphraseCommand`
/// is never run (git itself refuses such a repository), and the message
/// says why; `setup-git` refuses to write into it. Needs root (to give the
/// repository away); elsewhere it says so and checks nothing.
#[test]
fn configuration_of_a_repository_git_would_not_trust_is_not_read() {
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "notice: not root; cannot give a repository to another user: untrusted-repository test not run"
        );
        return;
    }
    let mut env = Env::new();
    let repo_dir = env.path().join("work");
    std::fs::create_dir(&repo_dir).unwrap();
    let marker = env.path().join("ran");
    env.init_fast(A, "pw-a");
    std::fs::rename(
        env.path().join("protected.yaml"),
        repo_dir.join("protected.yaml"),
    )
    .unwrap();
    env.run(&["add-domain", "--file", "work/protected.yaml"], "dev\n")
        .ok();
    let git = |args: &[&str]| {
        let o = env.run_with("git", &[&["-C", "work"][..], args].concat(), "", &[]);
        assert_eq!(o.code, 0, "{o:#?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "init"]);
    git(&[
        "config",
        "pprotect.passphraseCommand",
        &format!("touch {}; echo pw-a", marker.display()),
    ]);
    let o = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&repo_dir)
        .status()
        .unwrap();
    assert!(o.success());
    env.unset("PPROTECT_PASSPHRASE");
    let o = env.run_with(bin(), &["decrypt-domain", "dev"], "", &[]);
    // Work from inside the repository, as a user would.
    let mut c = env.command(bin());
    c.current_dir(&repo_dir).args(["decrypt-domain", "dev"]);
    let inside = c.stdin(std::process::Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&inside.stderr);
    assert!(
        !marker.exists(),
        "the other user's command ran: {o:#?} {stderr}"
    );
    assert_ne!(inside.status.code(), Some(0));
    assert!(
        stderr.contains("ignoring pprotect.passphraseCommand from this repository's config: detected dubious ownership"),
        "{stderr}"
    );
    // Trusted explicitly (as git's safe.directory), it counts again.
    let mut c = env.command(bin());
    c.current_dir(&repo_dir)
        .env("GIT_CONFIG_GLOBAL", env.path().join("home/.gitconfig"))
        .args(["decrypt-domain", "dev"]);
    std::fs::write(
        env.path().join("home/.gitconfig"),
        format!("[safe]\n\tdirectory = {}\n", repo_dir.display()),
    )
    .unwrap();
    let trusted = c.stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(trusted.status.code(), Some(0), "{trusted:#?}");
    assert!(marker.exists());
    std::fs::remove_file(&marker).unwrap();
    // setup-git writes nothing into another user's repository.
    let mut c = env.command(bin());
    c.current_dir(&repo_dir).args(["setup-git"]);
    let o = c.stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:#?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("detected dubious ownership"));
    assert!(!repo_dir.join(".git/hooks/pre-commit").exists());
}

/// Secret names that steer pprotect itself, under any prefix, and names
/// that load code, are refused as environment names; `exec` never passes
/// the passphrase command on; a multi-line value in `env` format stays on
/// one line.
#[test]
fn secret_names_that_control_pprotect_or_run_code() {
    let env = repo();
    for name in [
        "PPROTECT_PASSPHRASE_CMD",
        "PPROTECT_TRUST_KDF_PARAMS",
        "PPROTECT_PASSPHRASE_CMD_TIMEOUT",
        "npm_config_script_shell",
        "PS0",
        "LUA_INIT",
        "ERL_AFLAGS",
        "PSQL_PAGER",
        "SYSTEMD_PAGER",
    ] {
        let e2 = repo();
        e2.run(&["add-secret"], &format!("dev\n{name}\nsh -c evil\n"))
            .ok();
        let o = e2.run(&["exec", "--domain", "dev", "--", "true"], "");
        assert_eq!(o.code, 1, "{name}: {o:#?}");
        for fmt in ["shell", "env"] {
            let o = e2.run(&["decrypt-domain", "dev", "--output-format", fmt], "");
            assert_eq!(o.code, 1, "{name} {fmt}: {o:#?}");
            assert!(o.stdout.is_empty(), "{o:#?}");
        }
    }
    // Under another prefix, its credential variables too; and pprotect's
    // own names cannot be allowed.
    let e2 = repo();
    e2.run(&["add-secret"], "dev\nACME_PASSPHRASE_CMD\nevil\n")
        .ok();
    let o = e2.run_with(
        bin(),
        &[
            "exec",
            "--domain",
            "dev",
            "--env-prefix",
            "ACME",
            "--passphrase-file",
            "/dev/null",
            "--",
            "true",
        ],
        "",
        &[("ACME_USER", A), ("ACME_PASSPHRASE", "pw-a")],
    );
    assert_eq!(o.code, 1, "{o:#?}");
    let e3 = repo();
    e3.run(&["add-secret"], "dev\nPPROTECT_PASSPHRASE_CMD\nevil\n")
        .ok();
    let o = e3.run(
        &[
            "exec",
            "--domain",
            "dev",
            "--allow-env",
            "PPROTECT_PASSPHRASE_CMD",
            "--",
            "true",
        ],
        "",
    );
    assert_eq!(o.code, 1, "{o:#?}");
    // The passphrase command does not reach the child.
    let o = env
        .run_with(
            bin(),
            &["exec", "--domain", "dev", "--", "env"],
            "",
            &[
                ("PPROTECT_PASSPHRASE", ""),
                ("PPROTECT_PASSPHRASE_CMD", "echo pw-a"),
            ],
        )
        .ok();
    assert!(o.stdout.contains("base=base-value"), "{}", o.stdout);
    assert!(!o.stdout.contains("PPROTECT_"), "{}", o.stdout);
    // A value with a line break, in env format: one line, as dotenv reads
    // it, and it imports back.
    env.run(&["add-secret"], "dev\nMULTI\nx\n").ok();
    env.run(
        &[
            "update-secret",
            "--from-file",
            "-",
            "--domain",
            "dev",
            "--secret-name",
            "MULTI",
        ],
        "line one\nEVIL=1",
    )
    .ok();
    let o = env
        .run(&["decrypt-domain", "dev", "--output-format", "env"], "")
        .ok();
    assert!(
        o.stdout.contains("MULTI=\"line one\\nEVIL=1\"\n"),
        "{}",
        o.stdout
    );
    assert!(
        !o.stdout.lines().any(|l| l.starts_with("EVIL=")),
        "{}",
        o.stdout
    );
    std::fs::write(env.path().join("dump.env"), &o.stdout).unwrap();
    env.run(&["add-domain"], "copy\n").ok();
    env.run(&["import", "copy", "dump.env"], "").ok();
    let o = env.run(&["decrypt-domain", "copy"], "").ok();
    assert!(
        o.stdout.contains("\"MULTI\": \"line one\\nEVIL=1\""),
        "{}",
        o.stdout
    );
}

/// 100,000 audit entries that no change backs: the merge driver (as git
/// runs it for a cherry-pick) and check-audit-log take linear time. (Under
/// the previous binary each took over a minute; the watchdog is generous,
/// the bench has the figures.)
#[test]
fn a_hostile_audit_log_is_linear() {
    let env = repo();
    let base = env.read();
    let ts = "2026-12-01T11:00:00Z";
    let mut theirs = base.clone();
    for i in 0..100_000 {
        theirs.push_str(&format!("- {ts} -- added secret ghost{i} in dev\n"));
    }
    env.write("base.yaml", &base);
    env.write("ours.yaml", &base);
    env.write("theirs.yaml", &theirs);
    let (o, took) = run_limited(
        &env,
        &[
            "merge-driver",
            "base.yaml",
            "ours.yaml",
            "theirs.yaml",
            "protected.yaml",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, 0, "{} after {took:?}", o.stderr);
    env.write("protected.yaml", &theirs);
    env.commit_all("ghosts");
    let (o, took) = run_limited(
        &env,
        &["check-audit-log", "--no-cache"],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, 1, "after {took:?}: {}", o.stderr);
    let last = o.stdout.lines().last().unwrap_or("");
    let n: usize = last.split(' ').next().unwrap_or("0").parse().unwrap_or(0);
    assert!(
        n >= 100_000 && last.ends_with("finding(s) in 2 commit(s) changing protected.yaml"),
        "{last}"
    );
}

/// A record of verified history planted in the repository (a `.git` from
/// a tarball or a CI cache) hides nothing: the record lives in the user's
/// cache directory.
#[test]
fn a_planted_cache_hides_nothing() {
    let env = repo();
    env.run(&["add-secret"], "dev\nk1\nv1\n").ok();
    env.commit_all("k1");
    let text = env
        .read()
        .replace("secret-k1:", "secret-copied: AAAA\n  secret-k1:");
    env.write("protected.yaml", &text);
    env.commit_all("sneaky");
    let tip = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    std::fs::create_dir_all(env.path().join(".git/pprotect")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let lines: String = (1..=9)
        .map(|r| format!("{version} rules-{r}\t600\tprotected.yaml\t{tip}\n"))
        .collect();
    std::fs::write(
        env.path().join(".git/pprotect/check-audit-log.cache"),
        lines,
    )
    .unwrap();
    let o = env.run(&["check-audit-log"], "");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(o.stdout.contains("sneaky"), "{}", o.stdout);
}

/// `edit` starts vim with the options that keep a secret out of viminfo,
/// swap, backup and undo files.
#[test]
fn edit_keeps_vim_from_writing_secrets_to_disk() {
    let mut env = repo();
    let bin_dir = env.path().join("fakebin");
    std::fs::create_dir(&bin_dir).unwrap();
    let args_file = env.path().join("vim-args");
    let script = bin_dir.join("vim");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            args_file.display()
        ),
    )
    .unwrap();
    make_executable(&script);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        env.vars.iter().find(|(k, _)| k == "PATH").unwrap().1
    );
    env.set("PATH", &path);
    env.set("EDITOR", "vim");
    env.run(&["edit", "dev", "--yes"], "").ok();
    let args = std::fs::read_to_string(&args_file).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert!(args.windows(2).any(|w| w == ["-i", "NONE"]), "{args:?}");
    assert!(args.contains(&"-n"), "{args:?}");
    assert!(
        args.iter()
            .any(|a| a.contains("noundofile") && a.contains("nobackup")),
        "{args:?}"
    );
}

#[cfg(unix)]
fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A name with bidirectional-text controls cannot display as another.
#[test]
fn bidirectional_controls_never_reach_the_terminal() {
    let env = repo();
    let name = "evil\u{202E}moc.elpmaxe@a";
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{name}\npw-x\npw-x\n"),
    )
    .ok();
    for args in [&["access"][..], &["list-audit-log"][..]] {
        let o = env.run(args, "").ok();
        assert!(!o.stdout.contains('\u{202E}'), "{args:?}: {}", o.stdout);
        assert!(
            o.stdout.contains("evil\u{FFFD}moc"),
            "{args:?}: {}",
            o.stdout
        );
    }
}

/// pre-commit finds a value percent-encoded in a URL and inside the
/// base64 of `user:VALUE` (HTTP basic auth).
#[test]
fn pre_commit_finds_values_in_urls_and_basic_auth() {
    use base64::Engine;
    let env = repo();
    let value = "s3cr3t/p@ss word!";
    env.run(&["add-secret"], &format!("dev\nweb\n{value}\n"))
        .ok();
    env.commit_all("web");
    let pct = "s3cr3t%2Fp%40ss%20word%21";
    for user in ["u", "us", "use", "deploy-bot"] {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{value}"));
        for (file, text) in [
            (
                "url.txt",
                format!("DATABASE_URL=https://{user}:{pct}@db.example.com/app\n"),
            ),
            ("auth.txt", format!("Authorization: Basic {basic}\n")),
        ] {
            env.write(file, &text);
            env.git(&["add", file]).ok();
            let o = env.run(&["pre-commit"], "");
            assert_eq!(o.code, 1, "{user} {file}: {o:#?}");
            assert!(
                o.stdout.contains("secret web") || o.stderr.contains("secret web"),
                "{o:#?}"
            );
            env.git(&["rm", "-q", "--cached", file]).ok();
        }
    }
}
