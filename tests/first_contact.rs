//! What people meet first: names as arguments (and the existing flags),
//! checks before any question or key derivation, three tries at a
//! terminal, a warning for a weak passphrase, per-subcommand help, name
//! mapping in env/shell output, several domains for exec, and shell
//! completion of the names in the file.

use crate::harness::Env;

const A: &str = "a@example.com";
const B: &str = "b@example.com";

/// A file with custodians A (owner of dev) and B, logged in as A.
fn setup() -> Env {
    let mut env = Env::new();
    env.init_fast(A, "pw-a");
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{B}\npw-b\npw-b\n"),
    )
    .ok();
    env.login(A, "pw-a");
    env.run(&["add-domain", "dev"], "").ok();
    env
}

/// A passphrase command that leaves a mark when it runs: a command
/// refused before it asks for credentials never runs it.
fn marking_passphrase(env: &mut Env) -> std::path::PathBuf {
    let mark = env.path().join("asked");
    env.unset("PPROTECT_PASSPHRASE");
    env.set(
        "PPROTECT_PASSPHRASE_CMD",
        &format!("touch '{}'; echo pw-a", mark.display()),
    );
    mark
}

fn decrypt(env: &Env, domain: &str) -> serde_json::Value {
    let o = env.run(&["decrypt-domain", domain], "").ok();
    serde_json::from_str(&o.stdout).unwrap()
}

#[test]
fn every_command_takes_its_names_as_arguments() {
    let env = setup();
    // Values: a prompt (piped), a file, stdin.
    env.run(&["add-secret", "dev", "api-key"], "k1\n").ok();
    std::fs::write(env.path().join("v.txt"), "from-file").unwrap();
    env.run(
        &["add-secret", "dev", "file-key", "--from-file", "v.txt"],
        "",
    )
    .ok();
    env.run(
        &["add-secret", "dev", "stdin-key", "--from-file", "-"],
        "piped",
    )
    .ok();
    env.run(&["update-secret", "dev", "api-key"], "k2\n").ok();
    // The existing flags still work, alone or agreeing with the argument.
    env.run(
        &["add-secret", "--domain", "dev", "--secret-name", "flag-key"],
        "f\n",
    )
    .ok();
    env.run(&["rm-secret", "dev", "flag-key", "--domain", "dev"], "")
        .ok();
    let o = env
        .run(&["rm-secret", "dev", "file-key", "--domain", "prod"], "")
        .code(1);
    assert!(o.stderr.contains("give it once"), "{o:#?}");
    // rm-secret honours --domain and --secret-name (it ignored them).
    env.run(
        &["rm-secret", "--domain", "dev", "--secret-name", "file-key"],
        "",
    )
    .ok();
    assert_eq!(
        decrypt(&env, "dev"),
        serde_json::json!({"api-key": "k2", "stdin-key": "piped"})
    );
    let o = env.run(&["decrypt-domain", "--domain", "dev"], "").ok();
    assert!(o.stdout.contains("api-key"));
    // Owners and domains.
    env.run(&["add-owner", "dev", B], "").ok();
    env.run(&["rotate-domain-keys", "dev"], "").ok();
    env.run(&["rm-owner", "dev", B], "").ok();
    env.run(&["migrate-owner", B], "y\n").ok();
    env.run(&["add-domain", "staging"], "").ok();
    env.run(&["rm-domain", "staging"], "").ok();
    let o = env.run(&["list-domain-secrets", "dev"], "").ok();
    assert_eq!(o.stdout, "api-key\nstdin-key\n");
    // exec with the domain as its argument.
    let o = env.run(&["exec", "dev", "--", "env"], "").ok();
    assert!(o.stdout.contains("stdin-key=piped"), "{}", o.stdout);
    // Custodians.
    env.run(
        &["add-key-custodian", "c@example.com", "--key-type", "fast"],
        "pw-c\npw-c\n",
    )
    .ok();
    env.run(&["rm-key-custodian", "c@example.com"], "").ok();
    env.run(
        &["set-key-custodian-passphrase", B, "--key-type", "fast"],
        "pw-b\npw-b2\npw-b2\n",
    )
    .ok();
    // Prompted as before: the same questions in the same order.
    let o = env.run(&["add-secret"], "dev\nprompted\nv\n").ok();
    assert_eq!(o.stderr, "Domain name: Secret name: Secret value: ");
    // The audit log reads as it would with prompts.
    let log = env.run(&["list-audit-log"], "").ok().stdout;
    for entry in [
        "added secret api-key in dev",
        "updated secret api-key in dev",
        "removed secret file-key from dev",
        &format!("{A} added owner {B} to dev"),
        "rotated key for domain dev",
        "created domain staging with owner a@example.com",
        "deleted domain staging",
    ] {
        assert!(log.contains(entry), "{entry}:\n{log}");
    }
}

/// Names and structure are checked before a value or passphrase is asked
/// for and before a key is derived: with stdin closed, the error is the
/// name's, and the passphrase command never runs.
#[test]
fn names_are_checked_before_any_question() {
    let mut env = setup();
    env.run(&["add-secret", "dev", "api-key"], "v\n").ok();
    let mark = marking_passphrase(&mut env);
    let o = env.run(&["add-secret", "dev", "9bad"], "").code(1);
    assert!(
        o.stderr
            .contains("valid secret names must begin with a letter"),
        "{o:#?}"
    );
    let o = env.run(&["add-secret", "dev", "api-key"], "").code(1);
    assert_eq!(o.stderr, "error: secret api-key already exists in dev\n");
    let o = env.run(&["add-secret", "nope", "x"], "").code(1);
    assert!(o.stderr.contains("no domain of name nope"), "{o:#?}");
    let o = env.run(&["update-secret", "dev", "missing"], "").code(1);
    assert!(o.stderr.contains("no secret of name missing"), "{o:#?}");
    let o = env.run(&["decrypt-domain", "nope"], "").code(1);
    assert!(o.stderr.contains("no domain of name nope"), "{o:#?}");
    let o = env
        .run(&["decrypt-domain", "dev", "--secret", "missing"], "")
        .code(1);
    assert!(o.stderr.contains("not found in domain"), "{o:#?}");
    let o = env.run(&["exec", "nope", "--", "true"], "").code(1);
    assert!(o.stderr.contains("no domain of name nope"), "{o:#?}");
    let o = env.run(&["add-domain", "dev"], "").code(1);
    assert!(o.stderr.contains("already exists: dev"), "{o:#?}");
    let o = env
        .run(&["add-owner", "dev", "nobody@example.com"], "")
        .code(1);
    assert!(o.stderr.contains("no key custodian of name"), "{o:#?}");
    let o = env.run(&["add-owner", "dev", A], "").code(1);
    assert!(o.stderr.contains("already an owner"), "{o:#?}");
    let o = env
        .run(&["add-key-custodian", A, "--key-type", "fast"], "")
        .code(1);
    assert!(o.stderr.contains("already exists"), "{o:#?}");
    assert!(
        !mark.exists(),
        "a passphrase was asked for before a refusal"
    );
    // A user who owns nothing is refused before the derivation too.
    env.set("PPROTECT_USER", B);
    let o = env.run(&["rotate-domain-keys", "dev"], "").code(1);
    assert!(o.stderr.contains("is not an owner of dev"), "{o:#?}");
    let o = env.run(&["decrypt-domain", "dev"], "").code(1);
    assert!(o.stderr.contains("is not an owner of dev"), "{o:#?}");
}

/// Run `pprotect ARGS` on a pseudo-terminal with `input`'s lines typed
/// one at a time (typed ahead, a no-echo prompt would discard them);
/// `None` where util-linux `script` is missing (CI has it).
fn on_a_terminal(env: &Env, args: &str, input: &str) -> Option<crate::harness::Out> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var("CI").is_err(), "CI needs script (util-linux)");
        eprintln!("notice: no `script` (util-linux) here: terminal test not run");
        return None;
    }
    let typing: String = input
        .lines()
        .map(|l| format!("sleep 0.4; printf '%s\\n' '{l}'; "))
        .collect();
    let pipeline = format!(
        "({typing} sleep 1) | script -qec '{} {args}' /dev/null",
        crate::harness::bin()
    );
    Some(env.run_with("sh", &["-c", &pipeline], "", &[]))
}

/// A wrong passphrase typed at a terminal is asked again, three times in
/// all, and the error says it was typed at the prompt; piped, one try and
/// pocket_protector's words.
#[test]
fn three_tries_at_a_terminal() {
    let mut env = setup();
    env.run(&["add-secret", "dev", "k"], "v\n").ok();
    env.unset("PPROTECT_PASSPHRASE");
    let Some(o) = on_a_terminal(&env, "decrypt-domain dev", "bad\nworse\npw-a\n") else {
        return;
    };
    assert_eq!(o.code, 0, "{o:#?}");
    assert_eq!(o.stdout.matches("Sorry, try again.").count(), 2, "{o:#?}");
    assert!(o.stdout.contains("\"k\": \"v\""), "{o:#?}");
    let o = on_a_terminal(&env, "decrypt-domain dev", "bad\nworse\nworst\n").unwrap();
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stdout
            .contains("or passphrase (typed at the prompt) (3 tries). Check credentials"),
        "{o:#?}"
    );
    let o = env.run(&["decrypt-domain", "dev"], "bad\n").code(1);
    assert!(
        o.stderr
            .contains("or passphrase (from stdin). Check credentials"),
        "{o:#?}"
    );
    assert!(!o.stderr.contains("Sorry"), "{o:#?}");
}

/// `init` and `add-key-custodian` at a terminal name an empty or weak
/// passphrase and ask before keeping it; piped, it is taken as given.
#[test]
fn weak_passphrases_are_named_at_a_terminal() {
    let env = Env::new();
    let strong = "correct-Horse-battery-staple-93!";
    let input = format!("password\npassword\nn\n{strong}\n{strong}\n");
    let Some(o) = on_a_terminal(&env, "init a@example.com --key-type fast", &input) else {
        return;
    };
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stdout.contains("warning: this passphrase is weak"),
        "{o:#?}"
    );
    assert!(o.stdout.contains("Use it anyway? [y/N]"), "{o:#?}");
    // The strong one was kept.
    env.run_with(
        crate::harness::bin(),
        &["list-user-secrets"],
        "",
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", strong)],
    )
    .ok();
    // Empty, kept after a yes.
    let o = on_a_terminal(
        &env,
        "add-key-custodian b@example.com --key-type fast",
        "\n\ny\n",
    )
    .unwrap();
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(
        o.stdout.contains("warning: the passphrase is empty"),
        "{o:#?}"
    );
    // Piped: no warning, no question.
    let o = env
        .run(
            &["add-key-custodian", "c@example.com", "--key-type", "fast"],
            "pw\npw\n",
        )
        .ok();
    assert!(!o.stderr.contains("warning"), "{o:#?}");
}

#[test]
fn env_and_shell_output_map_names_as_exec_does() {
    let env = setup();
    env.run(&["add-secret", "dev", "db-url"], "postgres://x\n")
        .ok();
    let o = env
        .run(
            &[
                "decrypt-domain",
                "dev",
                "--output-format",
                "shell",
                "--uppercase",
                "--prefix",
                "APP",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "export APP_DB_URL=postgres://x\n");
    let o = env
        .run(
            &[
                "decrypt-domain",
                "dev",
                "--output-format",
                "env",
                "--prefix",
                "APP",
            ],
            "",
        )
        .code(1);
    // `APP_db-url` is no shell identifier: the same refusal as without.
    assert!(
        o.stderr
            .contains("'APP_db-url' is not a valid shell identifier"),
        "{o:#?}"
    );
    // exec gives the same name.
    let o = env
        .run(
            &[
                "exec",
                "dev",
                "--uppercase",
                "--prefix",
                "APP",
                "--",
                "sh",
                "-c",
                "echo $APP_DB_URL",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "postgres://x\n");
}

#[test]
fn exec_takes_several_domains_later_ones_win() {
    let env = setup();
    env.run(&["add-domain", "prod"], "").ok();
    env.run(&["add-secret", "dev", "shared"], "from-dev\n").ok();
    env.run(&["add-secret", "dev", "only_dev"], "d\n").ok();
    env.run(&["add-secret", "prod", "shared"], "from-prod\n")
        .ok();
    let o = env
        .run(
            &[
                "exec",
                "--domain",
                "dev",
                "--domain",
                "prod",
                "--",
                "sh",
                "-c",
                "echo $shared $only_dev",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "from-prod d\n");
    let o = env
        .run(
            &[
                "exec",
                "prod",
                "--domain",
                "dev",
                "--",
                "sh",
                "-c",
                "echo $shared",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "from-dev\n");
    // Only exec takes several.
    let o = env
        .run(
            &["decrypt-domain", "--domain", "dev", "--domain", "prod"],
            "",
        )
        .code(1);
    assert!(o.stderr.contains("only exec takes several"), "{o:#?}");
}

/// Each subcommand's help lists its own arguments and only the flags it
/// uses.
#[test]
fn help_lists_each_subcommands_own_flags() {
    let env = Env::new();
    let o = env.run(&["add-domain", "-h"], "").ok();
    assert!(
        o.stdout
            .contains("Usage: pprotect add-domain [OPTIONS] [DOMAIN]"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("--passphrase-file"), "{}", o.stdout);
    assert!(!o.stdout.contains("--output-format"), "{}", o.stdout);
    let o = env.run(&["decrypt-domain", "--help"], "").ok();
    for flag in [
        "--output-format",
        "--secret <NAME>",
        "--prefix",
        "--uppercase",
        "--allow-env",
    ] {
        assert!(o.stdout.contains(flag), "{flag}: {}", o.stdout);
    }
    assert!(!o.stdout.contains("--key-type"), "{}", o.stdout);
    let o = env.run(&["list-domains", "-h"], "").ok();
    assert!(o.stdout.contains("--json"), "{}", o.stdout);
    assert!(!o.stdout.contains("--user"), "{}", o.stdout);
    // Every subcommand's help has its usage and an example.
    let names: Vec<String> = {
        let o = env.run(&["bogus"], "").code(1);
        let list = o
            .stderr
            .split("choose from: ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        list.split(", ").map(str::to_string).collect()
    };
    assert!(names.len() > 30, "{names:?}");
    for sub in &names {
        let o = env.run(&[sub, "-h"], "").ok();
        assert!(
            o.stdout.contains(&format!("Usage: pprotect {sub}")),
            "{sub}: {}",
            o.stdout
        );
        assert!(o.stdout.contains("Example"), "{sub}: {}", o.stdout);
    }
    let o = env.run(&["add-owner", "-h"], "").ok();
    assert!(o.stdout.contains("[DOMAIN] [EMAIL]"), "{}", o.stdout);
    assert!(
        o.stdout.contains("pprotect add-owner prod bob@example.com"),
        "{}",
        o.stdout
    );
}

/// The completion script asks pprotect; pprotect answers with
/// subcommands, flag values, and the names in the protected file.
#[test]
fn completion_offers_the_names_in_the_file() {
    let env = setup();
    env.run(&["add-domain", "prod"], "").ok();
    env.run(&["add-secret", "dev", "api-key"], "v\n").ok();
    env.run(&["add-secret", "dev", "db-url"], "v\n").ok();
    env.run(&["add-secret", "prod", "token"], "v\n").ok();
    let complete = |words: &[&str]| -> Vec<String> {
        let mut args = vec!["--", "pprotect"];
        args.extend_from_slice(words);
        let o = env
            .run_with(
                crate::harness::bin(),
                &args,
                "",
                &[("PPROTECT_COMPLETE", "fish")],
            )
            .ok();
        o.stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    assert!(complete(&["add-s"]).contains(&"add-secret".to_string()));
    assert_eq!(
        complete(&["decrypt-domain", ""])
            .iter()
            .filter(|c| !c.starts_with('-'))
            .cloned()
            .collect::<Vec<_>>(),
        ["dev", "prod"]
    );
    assert_eq!(
        complete(&["rm-secret", "dev", ""])
            .iter()
            .filter(|c| !c.starts_with('-'))
            .cloned()
            .collect::<Vec<_>>(),
        ["api-key", "db-url"]
    );
    assert_eq!(complete(&["rm-secret", "dev", "d"]), ["db-url"]);
    assert_eq!(
        complete(&["decrypt-domain", "dev", "--output-format", ""]),
        ["json", "env", "shell"]
    );
    assert_eq!(
        complete(&["add-key-custodian", "--key-type", "f"]),
        ["fast"]
    );
    assert_eq!(complete(&["add-owner", "dev", "b"]), [B]);
    assert_eq!(complete(&["exec", "--domain", "p"]), ["prod"]);
    // Another file, named with --file.
    std::fs::create_dir(env.path().join("sub")).unwrap();
    std::fs::rename(env.file(), env.path().join("sub/other.yaml")).unwrap();
    assert!(complete(&["decrypt-domain", "d"]).is_empty());
    assert_eq!(
        complete(&["--file", "sub/other.yaml", "decrypt-domain", "d"]),
        ["dev"]
    );
}
