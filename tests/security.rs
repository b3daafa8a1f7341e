//! Attacks by someone with push rights who owns nothing, each reproduced
//! as it was found, through real git merges. Every one of these succeeded
//! against the shipped binary before the fixes.

use pprotect::ProtectedFile;
use pprotect::crypto::{self, KeyType, Pwdkm, SecretKey};

use crate::git_operations::{A, B, git, repo};
use crate::harness::{Env, bin};

fn load(env: &Env) -> ProtectedFile {
    ProtectedFile::from_bytes(env.read().as_bytes()).unwrap()
}

fn store(env: &Env, f: &ProtectedFile) {
    std::fs::write(env.file(), f.to_yaml_string()).unwrap();
}

/// Merge `branch` into the current branch as A, with A's credentials in
/// the driver's environment (as an owner who merges would have).
fn merge_as_owner(env: &Env, branch: &str) -> crate::harness::Out {
    env.run_with(
        "git",
        &["merge", "-q", "--no-edit", branch],
        "",
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
    )
}

#[test]
fn a_swapped_domain_key_is_never_sealed_to() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "attack"]);
    let attacker = SecretKey::generate();
    let mut f = load(&env);
    std::sync::Arc::make_mut(f.domains.get_mut("dev").unwrap()).public_key = attacker.public_key();
    store(&env, &f);
    env.commit_all("tidy");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["add-secret"], "dev\napi-token\ntop-secret\n")
        .ok();
    env.commit_all("api token");
    let o = merge_as_owner(&env, "attack");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr.contains(
            "secret api-token of domain dev: sealed to the old key of domain dev, which their side rotated; the new key of domain dev on their side does not prove it came from an owner (a@example.com cannot open it from their side's owner entry)"
        ),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("re-sealed secret"), "{}", o.stderr);
    // Nothing in the working file opens with the attacker's key.
    for line in env.read().lines() {
        if let Some((_, v)) = line.split_once(": ")
            && let Ok(bytes) = crypto::decode_v0(v.trim())
        {
            assert!(attacker.unseal(&bytes).is_none(), "sealed to the attacker");
        }
    }
}

#[test]
fn a_swapped_custodian_key_is_never_sealed_to() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "attack"]);
    let pass = format!("P{}P", "e".repeat(64));
    let (pwdkm, _) = Pwdkm::generate(KeyType::Raw, B, pass.as_bytes()).unwrap();
    let mut f = load(&env);
    f.custodians.insert(B.to_string(), pwdkm);
    store(&env, &f);
    env.commit_all("tidy");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.commit_all("grant b");
    for creds in [true, false] {
        let o = if creds {
            merge_as_owner(&env, "attack")
        } else {
            env.run_with(
                "git",
                &["merge", "-q", "--no-edit", "attack"],
                "",
                &[("PPROTECT_USER", ""), ("PPROTECT_PASSPHRASE", "")],
            )
        };
        assert_eq!(o.code, 1, "{o:#?}");
        assert!(
            o.stderr.contains(&format!(
                "owner {B} of domain dev: sealed to {B}'s old key, which their side replaced"
            )),
            "{}",
            o.stderr
        );
        git(&env, &["merge", "--abort"]);
    }
}

#[test]
fn a_revocation_is_not_undone_by_a_merge() {
    let mut env = repo();
    const C: &str = "c@example.com";
    const D: &str = "d@example.com";
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{C}\npw-c\npw-c\n"),
    )
    .ok();
    env.run(&["add-owner"], &format!("dev\n{C}\n")).ok();
    env.commit_all("c joins dev");
    // While still an owner, C grants a second identity on a branch.
    git(&env, &["checkout", "-q", "-b", "attack"]);
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{D}\npw-d\npw-d\n"),
    )
    .ok();
    env.login(C, "pw-c");
    env.run(&["add-owner"], &format!("dev\n{D}\n")).ok();
    env.commit_all("d");
    env.login(A, "pw-a");
    // Main revokes C: removes them, rotates dev, changes a value.
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["rm-owner"], &format!("dev\n{C}\n")).ok();
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.run(&["update-secret"], "dev\nbase\nrotated-value\n")
        .ok();
    env.commit_all("revoke c");
    let o = merge_as_owner(&env, "attack");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr.contains(&format!(
            "owner {D} of domain dev: owner {D} of domain dev was granted on their side, which our side's key rotation revokes"
        )),
        "{}",
        o.stderr
    );
    // Taking our side keeps the revocation; D reads nothing.
    env.run(&["resolve", "--ours"], "").ok();
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-edit"]);
    let o = env.run_with(
        bin(),
        &["decrypt-domain", "dev"],
        "",
        &[("PPROTECT_USER", D), ("PPROTECT_PASSPHRASE", "pw-d")],
    );
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(!o.stdout.contains("rotated-value"));
}

/// Re-sealing 20 stale secrets costs one key derivation, not 20.
#[test]
fn one_key_derivation_per_merge() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "many"]);
    for i in 0..20 {
        env.run(&["add-secret"], &format!("dev\ns{i}\nv{i}\n")).ok();
    }
    env.commit_all("many");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.commit_all("rotate");
    let o = env.run_with(
        "git",
        &["merge", "-q", "--no-edit", "many"],
        "",
        &[("RUST_LOG", "pprotect=debug")],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    assert_eq!(o.stderr.matches("re-sealed secret").count(), 20);
    assert_eq!(
        o.stderr.matches("argon2id derivation").count(),
        1,
        "{}",
        o.stderr
    );
    let o = env
        .run_with(
            bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
        )
        .ok();
    assert!(o.stdout.contains("\"s19\": \"v19\""), "{}", o.stdout);
}

/// With credentials, the pre-commit hook finds copies of a value in the
/// forms they take: a multi-line value written by `decrypt-domain
/// --secret`, JSON-escaped, UTF-16, after a NUL byte (a binary file), and
/// split across lines.
#[test]
fn pre_commit_finds_copies_in_every_form() {
    let env = repo();
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEAq7BFUpkGp3\nZ29vZC1rZXktbWF0ZXJpYWwtZm9yLXRlc3Rpbmctb25seQ==\n-----END PRIVATE KEY-----";
    env.run(
        &[
            "add-secret",
            "--from-file",
            "-",
            "--domain",
            "dev",
            "--secret-name",
            "pem",
        ],
        pem,
    )
    .ok();
    env.run(&["add-secret"], "dev\nquoted\npa\"ss\\word-1234\n")
        .ok();
    env.run(&["add-secret"], "dev\nplain\nplain-secret-1234567\n")
        .ok();
    env.commit_all("secrets");
    let written = env
        .run(&["decrypt-domain", "dev", "--secret", "pem"], "")
        .ok()
        .stdout;
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "plain-secret-1234567"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let mut nul = b"\x00\x01binary".to_vec();
    nul.extend_from_slice(b"plain-secret-1234567");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("key.pem", written.into_bytes(), "secret pem of domain dev"),
        (
            "config.json",
            br#"{"password": "pa\"ss\\word-1234"}"#.to_vec(),
            "secret quoted of domain dev",
        ),
        ("utf16.txt", utf16, "secret plain of domain dev"),
        ("blob.bin", nul, "secret plain of domain dev"),
        (
            "split.sh",
            b"TOKEN=\"plain-sec\\\nret-1234567\"\n".to_vec(),
            "secret plain of domain dev",
        ),
    ];
    for (name, bytes, needle) in cases {
        std::fs::write(env.path().join(name), &bytes).unwrap();
        git(&env, &["add", name]);
        let o = env.run(&["pre-commit"], "");
        assert_eq!(o.code, 1, "{name}: {o:#?}");
        assert!(
            o.stderr.contains(&format!("{name}:")) && o.stderr.contains(needle),
            "{name}: {}",
            o.stderr
        );
        assert!(!o.stderr.contains("plain-secret") && !o.stderr.contains("MIIB"));
        git(&env, &["rm", "-q", "--cached", name]);
        std::fs::remove_file(env.path().join(name)).unwrap();
    }
    // A clean commit passes.
    env.write("readme.txt", "nothing secret here\n");
    git(&env, &["add", "readme.txt"]);
    env.run(&["pre-commit"], "").ok();
}

/// `setup-git` refuses a committed `.gitattributes` symlink (git ignores
/// one), and never writes through links or over an existing chained hook.
#[cfg(unix)]
#[test]
fn setup_git_refuses_links() {
    let mut env = Env::new();
    env.git_init();
    env.init_fast(A, "pw-a");
    std::os::unix::fs::symlink("/proc/self/environ", env.path().join(".gitattributes")).unwrap();
    let o = env.run_with(
        bin(),
        &["setup-git"],
        "",
        &[("PPROTECT_PASSPHRASE", "leak-me")],
    );
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(o.stderr.contains("symbolic link"), "{}", o.stderr);
    let meta = std::fs::symlink_metadata(env.path().join(".gitattributes")).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    std::fs::remove_file(env.path().join(".gitattributes")).unwrap();
    // A foreign hook is kept as the chained hook; a second foreign hook
    // does not overwrite it.
    let hooks = env.path().join(".git/hooks");
    std::fs::write(hooks.join("pre-commit"), "#!/bin/sh\necho team hook\n").unwrap();
    env.run(&["setup-git"], "").ok();
    assert!(
        std::fs::read_to_string(hooks.join("pre-commit.pprotect-chained"))
            .unwrap()
            .contains("team hook")
    );
    env.run(&["setup-git", "--uninstall"], "").ok();
    std::fs::write(
        hooks.join("pre-commit.pprotect-chained"),
        "#!/bin/sh\necho precious\n",
    )
    .unwrap();
    let o = env.run(&["setup-git"], "");
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(o.stderr.contains("will not overwrite"), "{}", o.stderr);
    assert!(
        std::fs::read_to_string(hooks.join("pre-commit.pprotect-chained"))
            .unwrap()
            .contains("precious")
    );
    // A dangling link as the protected file, the lock file or init's new
    // file is never written through.
    let target = env.path().join("home/target");
    std::fs::remove_file(env.file()).unwrap();
    std::os::unix::fs::symlink(&target, env.file()).unwrap();
    let o = env.run(
        &["init", "--key-type", "fast"],
        &format!("{A}\npw-a\npw-a\n"),
    );
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(!target.exists());
    // A FIFO as the protected file is refused, not waited on.
    std::fs::remove_file(env.file()).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(env.file())
            .status()
            .unwrap()
            .success()
    );
    let t = std::time::Instant::now();
    let o = env.run(&["list-domains"], "");
    assert_ne!(o.code, 0);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

/// A committed attributes pattern built to make a backtracking matcher
/// take minutes is matched in linear time.
#[test]
fn hostile_attributes_patterns_are_fast() {
    let env = repo();
    env.write(
        ".gitattributes",
        &format!(
            "{}x merge=pprotect\nprotected.yaml merge=pprotect diff=pprotect\n",
            "*".repeat(60)
        ),
    );
    env.write(&format!("{}.txt", "a".repeat(200)), "hello\n");
    git(&env, &["add", "-A"]);
    let t = std::time::Instant::now();
    env.run(&["pre-commit"], "").ok();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}

/// Secrets named after code-loading or behavior-changing variables are
/// refused by `exec` and by `decrypt-domain --output-format env|shell`
/// (whose output users `eval`), unless allowed by name; `exec` never
/// passes the passphrase file variable on.
#[test]
fn environment_names_policy() {
    let mut env = repo();
    for (name, value) in [
        ("PERLLIB", "/tmp/evil"),
        ("RUBYOPT", "-r/tmp/evil"),
        ("JAVA_TOOL_OPTIONS", "-javaagent:/tmp/evil.jar"),
        ("LESSOPEN", "|/tmp/evil %s"),
        ("PAGER", "/tmp/evil"),
    ] {
        let e2 = repo();
        e2.run(&["add-secret"], &format!("dev\n{name}\n{value}\n"))
            .ok();
        let o = e2.run(&["exec", "--domain", "dev", "--", "true"], "");
        assert_eq!(o.code, 1, "{name}: {o:#?}");
        assert!(
            o.stderr.contains(name) && o.stderr.contains("--allow-env"),
            "{}",
            o.stderr
        );
        let o = e2.run(
            &["exec", "--domain", "dev", "--allow-env", name, "--", "true"],
            "",
        );
        assert_eq!(o.code, 0, "{name}: {o:#?}");
    }
    for name in ["PATH", "BASH_ENV"] {
        let e2 = repo();
        e2.run(&["add-secret"], &format!("dev\n{name}\n/tmp/evil\n"))
            .ok();
        for fmt in ["shell", "env"] {
            let o = e2.run(&["decrypt-domain", "dev", "--output-format", fmt], "");
            assert_eq!(o.code, 1, "{name} {fmt}: {o:#?}");
            assert!(
                o.stdout.is_empty() && !o.stderr.contains("/tmp/evil"),
                "{o:#?}"
            );
        }
        let o = e2
            .run(
                &[
                    "decrypt-domain",
                    "dev",
                    "--output-format",
                    "shell",
                    "--allow-env",
                    name,
                ],
                "",
            )
            .ok();
        assert!(
            o.stdout.contains(&format!("export {name}=")),
            "{}",
            o.stdout
        );
    }
    // The passphrase file variable does not reach the child.
    let pf = env.path().join("home/pass");
    std::fs::write(&pf, "pw-a\n").unwrap();
    env.unset("PPROTECT_PASSPHRASE");
    env.set("PPROTECT_PASSPHRASE_FILE", pf.to_str().unwrap());
    let o = env
        .run(
            &[
                "exec",
                "--domain",
                "dev",
                "--passphrase-file",
                pf.to_str().unwrap(),
                "--",
                "env",
            ],
            "",
        )
        .ok();
    assert!(o.stdout.contains("base=base-value"), "{}", o.stdout);
    assert!(!o.stdout.contains("PPROTECT_"), "{}", o.stdout);
}

/// check-audit-log: a key swap dressed up with a rotation entry is not a
/// rotation (no owner entry re-sealed), and an oversized version is
/// reported from its object header without being loaded.
#[test]
fn check_audit_log_holes() {
    let env = repo();
    let attacker = SecretKey::generate();
    let mut f = load(&env);
    std::sync::Arc::make_mut(f.domains.get_mut("dev").unwrap()).public_key = attacker.public_key();
    f.log("rotated key for domain dev".into());
    store(&env, &f);
    env.commit_all("rotate dev");
    let o = env.run(&["check-audit-log", "--json"], "").code(1);
    assert!(o.stdout.contains("\"misshapen-change\""), "{}", o.stdout);
    assert!(
        o.stdout.contains(
            "key of domain dev replaced, but owner a@example.com was not re-sealed to it"
        ),
        "{}",
        o.stdout
    );
    // A real rotation checks clean.
    git(&env, &["reset", "-q", "--hard", "HEAD~1"]);
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.commit_all("rotate dev for real");
    env.run(&["check-audit-log"], "").ok();
    // A version over 10 MiB.
    std::fs::write(env.file(), "x".repeat(11 << 20)).unwrap();
    env.commit_all("huge");
    let t = std::time::Instant::now();
    let o = env.run(&["check-audit-log"], "").code(1);
    assert!(
        o.stdout.contains("larger than 10485760 bytes"),
        "{}",
        o.stdout
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

/// The same swap done thoroughly: the attacker also seals their new key
/// to the owner (owners' public keys are public) and re-seals the secrets
/// with values of their own. The owner opens the new key from their own
/// entry, but the old values were not carried over: no re-sealing.
#[test]
fn a_swapped_key_sealed_to_the_owner_still_does_not_verify() {
    let env = repo();
    git(&env, &["checkout", "-q", "-b", "attack"]);
    let attacker = SecretKey::generate();
    let mut f = load(&env);
    let owner_pk = f.custodians[A].public_key;
    let d = std::sync::Arc::make_mut(f.domains.get_mut("dev").unwrap());
    d.public_key = attacker.public_key();
    d.owners.insert(
        A.to_string(),
        crypto::seal(&owner_pk, &attacker.to_bytes()[..]),
    );
    for v in d.secrets.values_mut() {
        *v = crypto::seal(&attacker.public_key(), b"guessed");
    }
    f.log("rotated key for domain dev".into());
    store(&env, &f);
    env.commit_all("rotate dev");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["add-secret"], "dev\napi-token\ntop-secret\n")
        .ok();
    env.commit_all("api token");
    let o = merge_as_owner(&env, "attack");
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr.contains(
            "does not prove it came from an owner (secret base does not carry its value over)"
        ),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("re-sealed secret"), "{}", o.stderr);
}
