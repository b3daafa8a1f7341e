//! The real binary through every command, with piped input: outputs,
//! messages and exit codes as pocket_protector gives them.

use crate::harness::{Env, redact_ts};

const A: &str = "a@example.com";
const B: &str = "b@example.com";

fn setup() -> Env {
    let mut env = Env::new();
    env.init_fast(A, "pw-a");
    env.run(&["add-domain"], "dev\n").ok();
    env
}

#[test]
fn init_prompts_and_writes_two_entries() {
    let env = Env::new();
    let o = env
        .run(&["init", "--key-type", "fast"], "a@example.com\npw\npw\n")
        .ok();
    // Prompts go to stderr (a deliberate difference): stdout carries only
    // what the command says.
    assert_eq!(o.stdout, "Adding new key custodian.\n");
    assert_eq!(o.stderr, "User email: Passphrase: Retype passphrase: ");
    let log = env.run(&["list-audit-log"], "").ok();
    assert_eq!(
        redact_ts(&log.stdout),
        "TS -- created\nTS -- created key custodian a@example.com\n"
    );
    // A second init is refused with exit 2.
    let o = env.run(&["init"], "x\ny\ny\n").code(2);
    assert!(
        o.stderr
            .starts_with("error: Protected file already exists: "),
        "{}",
        o.stderr
    );
}

#[test]
fn failed_init_leaves_no_file() {
    let env = Env::new();
    let o = env
        .run(&["init", "--key-type", "fast"], "a@example.com\npw\nnope\n")
        .code(1);
    assert!(o.stderr.ends_with("error: Sorry, inputs did not match.\n"));
    assert!(!env.file().exists());
    // End of input also fails cleanly.
    env.run(&["init"], "a@example.com\n").code(1);
    assert!(!env.file().exists());
}

#[test]
fn missing_file_is_exit_2() {
    let env = Env::new();
    let o = env.run(&["list-domains"], "").code(2);
    assert!(o.stderr.starts_with("error: Protected file not found: "));
}

#[test]
fn secrets_add_update_decrypt_formats() {
    let env = setup();
    let o = env.run(&["add-secret"], "dev\nk1\nval1\n").ok();
    assert_eq!(o.stdout, "Adding secret value.\n");
    assert_eq!(o.stderr, "Domain name: Secret name: Secret value: ");
    env.run(&["update-secret"], "dev\nk1\nit's\n").ok();
    std::fs::write(env.path().join("v.txt"), "line1\nä\n").unwrap();
    env.run(
        &[
            "add-secret",
            "--domain",
            "dev",
            "--secret-name",
            "k2",
            "--from-file",
            "v.txt",
        ],
        "",
    )
    .ok();
    env.run(
        &[
            "add-secret",
            "--domain",
            "dev",
            "--secret-name",
            "k3",
            "--from-file",
            "-",
        ],
        "from stdin",
    )
    .ok();
    let o = env.run(&["decrypt-domain", "dev"], "").ok();
    assert_eq!(
        o.stdout,
        "{\n  \"k1\": \"it's\",\n  \"k2\": \"line1\\n\\u00e4\\n\",\n  \"k3\": \"from stdin\"\n}\n"
    );
    let o = env
        .run(&["decrypt-domain", "--output-format", "env", "dev"], "")
        .ok();
    // A value with a line break is written as dotenv readers take it (a
    // deliberate difference: one line per variable).
    assert_eq!(
        o.stdout,
        "k1='it'\"'\"'s'\nk2=\"line1\\nä\\n\"\nk3='from stdin'\n"
    );
    let o = env
        .run(
            &[
                "decrypt-domain",
                "dev",
                "--output-format",
                "shell",
                "--secret",
                "k3",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "export k3='from stdin'\n");
    let o = env
        .run(&["decrypt-domain", "--secret", "k1", "dev"], "")
        .ok();
    assert_eq!(o.stdout, "it's\n");
    let o = env
        .run(
            &[
                "decrypt-domain",
                "--output-format",
                "json",
                "--secret",
                "k1",
                "dev",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "{\n  \"k1\": \"it's\"\n}\n");
    let o = env
        .run(&["decrypt-domain", "--secret", "nope", "dev"], "")
        .code(1);
    assert_eq!(o.stderr, "error: secret 'nope' not found in domain 'dev'\n");
    let o = env
        .run(&["decrypt-domain", "--output-format", "xml", "dev"], "")
        .code(1);
    assert_eq!(
        o.stderr,
        "error: --output-format must be one of: json, env, shell\n"
    );
    let o = env.run(&["decrypt-domain", "nodom"], "").code(1);
    assert_eq!(
        o.stderr,
        "error: no domain of name nodom (known domains are dev)\n"
    );
    // Errors of the secret commands.
    let o = env.run(&["add-secret"], "dev\nk1\nv\n").code(1);
    assert!(
        o.stderr
            .ends_with("error: secret k1 already exists in dev\n")
    );
    let o = env.run(&["update-secret"], "dev\nnope\nv\n").code(1);
    assert!(
        o.stderr
            .ends_with("error: no secret of name nope (known secrets are k1, k2, k3)\n")
    );
    let o = env.run(&["add-secret"], "dev\n9bad\nv\n").code(1);
    assert!(
        o.stderr
            .contains("valid secret names must begin with a letter"),
        "{}",
        o.stderr
    );
    env.run(&["rm-secret"], "dev\nk3\n").ok();
    let o = env.run(&["rm-secret"], "dev\nk3\n").code(1);
    assert!(o.stderr.contains("no secret of name k3"));
    let o = env.run(&["list-domain-secrets", "dev"], "").ok();
    assert_eq!(o.stdout, "k1\nk2\n");
}

#[test]
fn credentials_sources_and_messages() {
    let mut env = setup();
    let o = env
        .run_with(
            crate::harness::bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_PASSPHRASE", "bad")],
        )
        .code(1);
    assert_eq!(
        o.stderr,
        "error: Invalid user email (from env var: PPROTECT_USER) or passphrase (from env var: PPROTECT_PASSPHRASE). Check credentials and try again.\n"
    );
    let o = env
        .run_with(
            crate::harness::bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_PASSPHRASE", "")],
        )
        .code(1);
    assert!(
        o.stderr
            .ends_with("try again. (Warning: Empty passphrase.)\n")
    );
    let o = env
        .run(
            &["decrypt-domain", "--ignore-env", "--user", A, "dev"],
            "pw-a\n",
        )
        .ok();
    assert!(
        o.stderr.starts_with("Verify passphrase for "),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains(&format!("(Using user {A} from argument)"))
    );
    let o = env
        .run(
            &["decrypt-domain", "--ignore-env", "dev"],
            &format!("{A}\npw-a\n"),
        )
        .ok();
    assert!(o.stderr.starts_with("Verify credentials for "));
    assert!(o.stderr.contains("\nUser email: Passphrase: "), "{o:#?}");
    assert!(o.stdout.starts_with("{"));
    let o = env
        .run(
            &["decrypt-domain", "--ignore-env", "--non-interactive", "dev"],
            "",
        )
        .code(2);
    assert!(o.stderr.contains("--passphrase-file"));
    std::fs::write(env.path().join("pf"), "pw-a\n").unwrap();
    env.run(
        &[
            "decrypt-domain",
            "--non-interactive",
            "--passphrase-file",
            "pf",
            "dev",
        ],
        "",
    )
    .ok();
    let o = env
        .run(
            &[
                "decrypt-domain",
                "--non-interactive",
                "--passphrase-file",
                "nope",
                "dev",
            ],
            "",
        )
        .code(1);
    assert!(
        o.stderr.starts_with(
            "error: No such file or directory while reading passphrase from file at \""
        )
    );
    env.unset("PPROTECT_PASSPHRASE");
    let o = env
        .run(&["decrypt-domain", "--non-interactive", "dev"], "")
        .code(1);
    assert!(o.stderr.ends_with("(Warning: Empty passphrase.)\n"));
    // A custom prefix.
    let o = env.run_with(
        crate::harness::bin(),
        &[
            "decrypt-domain",
            "--non-interactive",
            "--env-prefix",
            "APP",
            "dev",
        ],
        "",
        &[("APP_USER", A), ("APP_PASSPHRASE", "pw-a")],
    );
    o.ok();
}

#[test]
fn owners_custodians_rotation() {
    let env = setup();
    env.run(&["add-secret"], "dev\nk\nv\n").ok();
    let o = env
        .run(
            &["add-key-custodian", "--key-type", "fast"],
            &format!("{B}\npw-b\npw-b\n"),
        )
        .ok();
    assert_eq!(o.stdout, "Adding new key custodian.\n");
    let o = env
        .run(
            &["add-key-custodian", "--key-type", "fast"],
            &format!("{B}\npw-b\npw-b\n"),
        )
        .code(1);
    assert!(o.stderr.ends_with(&format!(
        "error: tried to add key custodian that already exists: {B}\n"
    )));
    let o = env
        .run(&["add-key-custodian", "--key-type", "weird"], "")
        .code(1);
    assert_eq!(
        o.stderr,
        "error: --key-type must be one of: hard, fast, raw\n"
    );
    let o = env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    assert_eq!(o.stdout, "Adding domain owner.\n");
    assert_eq!(o.stderr, "Domain name: New owner email: ");
    let o = env.run(&["add-owner"], "dev\nzz\n").code(1);
    assert!(o.stderr.ends_with(&format!(
        "error: no key custodian of name zz (known key custodians are {A}, {B})\n"
    )));
    // B reads.
    let o = env
        .run_with(
            crate::harness::bin(),
            &["decrypt-domain", "dev"],
            "",
            &[("PPROTECT_USER", B), ("PPROTECT_PASSPHRASE", "pw-b")],
        )
        .ok();
    assert!(o.stdout.contains("\"k\": \"v\""));
    // Rotation keeps everyone reading.
    let o = env.run(&["rotate-domain-keys"], "dev\n").ok();
    assert_eq!(o.stdout, "");
    assert!(o.stderr.starts_with("Domain name: "));
    env.run_with(
        crate::harness::bin(),
        &["decrypt-domain", "dev"],
        "",
        &[("PPROTECT_USER", B), ("PPROTECT_PASSPHRASE", "pw-b")],
    )
    .ok();
    // Removing owners.
    let o = env.run(&["rm-owner"], &format!("dev\n{B}\n")).ok();
    assert!(
        o.stderr.starts_with(
            "Domain name: Owner email: Note: the removed owner can still decrypt this domain"
        ),
        "{o:#?}"
    );
    let o = env.run(&["rm-owner"], &format!("dev\n{B}\n")).code(1);
    assert!(o.stderr.ends_with(&format!(
        "error: {B} not an owner of dev (owners are {A})\n"
    )));
    let o = env.run(&["rm-owner"], &format!("dev\n{A}\n")).code(1);
    assert!(o.stderr.ends_with(&format!(
        "error: cannot delete last owner {A} from dev (secrets would be irretrievable)\n"
    )));
    // migrate-owner.
    let o = env.run(&["migrate-owner"], &format!("{B}\nn\n")).ok();
    assert_eq!(
        o.stdout,
        format!("Will add {B} as owner to: dev\nAborting.\n")
    );
    assert!(o.stderr.starts_with("New owner email: "), "{o:#?}");
    assert!(o.stderr.contains("Proceed? [y/N] "), "{o:#?}");
    env.run(&["migrate-owner"], &format!("{B}\ny\n")).ok();
    // rm-key-custodian: B owns dev with A; removing B works, removing A then is refused.
    let o = env.run(&["rm-key-custodian"], &format!("{B}\n")).ok();
    assert_eq!(o.stdout, "Removing key custodian.\n");
    assert_eq!(o.stderr, "User email: ");
    let o = env.run(&["rm-key-custodian"], &format!("{A}\n")).code(1);
    assert!(o.stderr.contains("cannot delete last owner"));
    let log = redact_ts(&env.run(&["list-audit-log"], "").ok().stdout);
    assert!(
        log.contains(&format!("TS -- {A} added owner {B} to dev\n")),
        "{log}"
    );
    assert!(log.contains("TS -- rotated key for domain dev\n"));
    assert!(log.contains(&format!("TS -- removed owner {B} from dev\n")));
    assert!(log.contains(&format!(
        "TS -- removed key custodian {B} (was owner of dev)\n"
    )));
}

#[test]
fn passphrase_change_and_rekey() {
    let env = setup();
    env.run(&["add-secret"], "dev\nk\nv\n").ok();
    let o = env
        .run(
            &["set-key-custodian-passphrase", "--key-type", "fast"],
            &format!("{A}\nbad\nn\nn\n"),
        )
        .code(1);
    assert_eq!(
        o.stderr,
        "User email: Current passphrase: error: Invalid user email or passphrase. Check credentials and try again.\n"
    );
    let o = env
        .run(
            &["set-key-custodian-passphrase", "--key-type", "fast"],
            &format!("{A}\npw-a\nnew\nnew\n"),
        )
        .ok();
    assert_eq!(
        o.stderr,
        "User email: Current passphrase: New passphrase: Retype new passphrase: "
    );
    env.run(&["decrypt-domain", "dev"], "").code(1);
    fn with(p: &str) -> [(&str, &str); 2] {
        [("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", p)]
    }
    env.run_with(
        crate::harness::bin(),
        &["decrypt-domain", "dev"],
        "",
        &with("new"),
    )
    .ok();
    // Rekey to a raw key.
    let o = env
        .run(
            &["rekey-custodian", "--key-type", "raw"],
            &format!("{A}\nnew\nYES\n"),
        )
        .ok();
    let key = o
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with('P') && l.trim().len() == 66)
        .unwrap()
        .trim()
        .to_string();
    let o = env
        .run_with(
            crate::harness::bin(),
            &["decrypt-domain", "dev"],
            "",
            &with(&key),
        )
        .ok();
    assert!(o.stdout.contains("\"k\": \"v\""));
    let log = redact_ts(&env.run(&["list-audit-log"], "").ok().stdout);
    assert!(log.contains(&format!(
        "TS -- updated key custodian passphrase for {A} (updated domains -> dev)\n"
    )));
    assert!(log.contains(&format!(
        "TS -- rekeyed custodian for {A} (updated domains -> dev)\n"
    )));
}

#[test]
fn raw_custodian_framed_key() {
    let env = setup();
    let o = env
        .run(
            &["add-key-custodian", "--key-type", "raw"],
            "r@example.com\nno\n",
        )
        .code(1);
    assert!(o.stdout.ends_with("Aborting. Key was not confirmed.\n"));
    assert!(
        o.stderr
            .ends_with("Have you saved the key? Type YES to confirm: ")
    );
    let o = env
        .run(
            &["add-key-custodian", "--key-type", "raw"],
            "r@example.com\nYES\n",
        )
        .ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "Adding new key custodian.");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "=".repeat(72));
    assert_eq!(
        lines[3],
        "  GENERATED RAW KEY (copy this now, it will not be shown again):"
    );
    assert!(lines[5].starts_with("  P") && lines[5].len() == 68);
    let log = env.run(&["list-audit-log"], "").ok().stdout;
    assert!(log.ends_with("-- created raw-key custodian r@example.com\n"));
}

#[test]
fn domains_add_list_remove() {
    let env = setup();
    let o = env.run(&["add-domain"], "dev\n").code(1);
    assert!(
        o.stderr
            .ends_with("error: tried to add domain that already exists: dev\n")
    );
    let o = env.run(&["add-domain"], "metadata\n").code(1);
    assert!(o.stderr.contains("reserved"), "{}", o.stderr);
    env.run(&["add-domain"], "prod\n").ok();
    assert_eq!(env.run(&["list_domains"], "").ok().stdout, "dev\nprod\n");
    let o = env.run(&["rm-domain"], "prod\n").ok();
    assert_eq!(o.stdout, "Removing domain.\n");
    assert_eq!(o.stderr, "Domain name: ");
    let o = env.run(&["rm-domain"], "prod\n").code(1);
    assert!(
        o.stderr
            .ends_with("error: no domain of name prod (known domains are dev)\n")
    );
    env.run(&["rm-domain"], "dev\n").ok();
    let o = env.run(&["list-domains"], "").ok();
    assert_eq!(o.stdout, "");
    assert!(o.stderr.starts_with("(No domains in protected at "));
}

#[test]
fn listings_and_json() {
    let env = setup();
    env.run(&["add-domain"], "prod\n").ok();
    env.run(&["add-secret"], "dev\nk\nv\n").ok();
    env.run(&["add-secret"], "prod\nk\nv\n").ok();
    env.run(&["add-secret"], "prod\nz\nv\n").ok();
    assert_eq!(
        env.run(&["list-all-secrets"], "").ok().stdout,
        "k: dev, prod\nz: prod\n"
    );
    assert_eq!(
        env.run(&["list-user-secrets"], "").ok().stdout,
        "dev: k\nprod: k, z\n"
    );
    assert_eq!(
        env.run(&["list-domains", "--json"], "").ok().stdout,
        "[\n  \"dev\",\n  \"prod\"\n]\n"
    );
    assert_eq!(
        env.run(&["list-domain-secrets", "--json", "prod"], "")
            .ok()
            .stdout,
        "[\n  \"k\",\n  \"z\"\n]\n"
    );
    assert_eq!(
        env.run(&["list-all-secrets", "--json"], "").ok().stdout,
        "{\n  \"k\": [\n    \"dev\",\n    \"prod\"\n  ],\n  \"z\": [\n    \"prod\"\n  ]\n}\n"
    );
    assert_eq!(
        env.run(&["list-user-secrets", "--json"], "").ok().stdout,
        "{\n  \"dev\": [\n    \"k\"\n  ],\n  \"prod\": [\n    \"k\",\n    \"z\"\n  ]\n}\n"
    );
    let log = env.run(&["list-audit-log", "--json"], "").ok().stdout;
    assert!(log.starts_with("[\n  \"") && log.ends_with("\"\n]\n"));
}

#[test]
fn exec_environment() {
    let mut env = setup();
    env.run(&["add-secret"], "dev\ndb-pass\nsecret1\n").ok();
    env.set("FOO", "bar");
    let o = env
        .run(
            &[
                "exec",
                "--domain",
                "dev",
                "--",
                "sh",
                "-c",
                "echo \"$FOO|${PPROTECT_USER:-unset}|${PPROTECT_PASSPHRASE:-unset}\"; exit 7",
            ],
            "",
        )
        .code(7);
    assert_eq!(o.stdout, "bar|unset|unset\n");
    let o = env
        .run(
            &[
                "exec",
                "--domain",
                "dev",
                "--uppercase",
                "--prefix",
                "APP",
                "--",
                "sh",
                "-c",
                "echo $APP_DB_PASS",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "secret1\n");
    let o = env
        .run(
            &[
                "exec",
                "--domain",
                "dev",
                "--no-passthrough",
                "--uppercase",
                "--",
                "/usr/bin/env",
            ],
            "",
        )
        .ok();
    assert!(!o.stdout.contains("FOO="), "{}", o.stdout);
    assert!(o.stdout.contains("DB_PASS=secret1"));
    let o = env.run(&["exec", "--domain", "dev"], "").code(1);
    assert_eq!(
        o.stderr,
        "error: exec requires a command after -- (e.g. pprotect exec --domain prod -- ./myapp)\n"
    );
    let o = env.run(&["exec", "--", "true"], "").code(1);
    assert_eq!(o.stderr, "error: --domain is required for exec\n");
    env.run(&["add-secret"], "dev\nLD_PRELOAD\nx\n").ok();
    let o = env
        .run(&["exec", "--domain", "dev", "--", "true"], "")
        .code(1);
    assert!(
        o.stderr.starts_with(
            "error: refusing to inject secrets as reserved env var names (LD_PRELOAD)"
        )
    );
    env.run(
        &["exec", "--domain", "dev", "--prefix", "X", "--", "true"],
        "",
    )
    .ok();
}

#[test]
fn confirm_shows_diff_and_declining_changes_nothing() {
    let env = setup();
    let before = env.read();
    let o = env.run(&["add-secret", "--confirm"], "dev\nk\nv\nn\n").ok();
    assert!(
        o.stdout.contains("Changes to be written:\n\n--- "),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("\n+  secret-k: "));
    assert!(o.stdout.ends_with("Aborting...\n"));
    assert!(o.stderr.ends_with("Write changes? [y/N] "));
    assert!(!o.stdout.contains('\x1b'), "no color when not a terminal");
    assert_eq!(env.read(), before);
    env.run(&["add-secret", "--confirm"], "dev\nk\nv\ny\n").ok();
    assert_ne!(env.read(), before);
}

#[test]
fn read_only_file_reported_before_prompts() {
    let env = setup();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.file(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let o = env.run(&["add-secret"], "dev\nk\nv\n").code(1);
    assert_eq!(o.stdout, "");
    assert!(o.stderr.starts_with("error: expected '"), "{}", o.stderr);
    assert!(
        o.stderr
            .ends_with("' to be a writable file. Check the permissions and try again.\n")
    );
}

#[test]
fn file_permissions_are_kept() {
    let env = setup();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.file(), std::fs::Permissions::from_mode(0o640)).unwrap();
    env.run(&["add-secret"], "dev\nk\nv\n").ok();
    let mode = std::fs::metadata(env.file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn hostile_log_entries_are_sanitized() {
    let env = setup();
    let text = env
        .read()
        .replace("audit-log:\n", "audit-log:\n- \"\\e[31mred\\a\"\n");
    std::fs::write(env.file(), text).unwrap();
    let o = env.run(&["list-audit-log"], "").ok();
    assert!(
        o.stdout.starts_with("\u{FFFD}[31mred\u{FFFD}\n"),
        "{:?}",
        o.stdout
    );
    assert!(!o.stdout.contains('\x1b'));
}

#[test]
fn truncate_audit_log_keeps_recent_entries() {
    let env = setup();
    env.run(&["truncate-audit-log", "1"], "").ok();
    let log = redact_ts(&env.run(&["list-audit-log"], "").ok().stdout);
    assert_eq!(
        log,
        "truncated 2 audit log entries\nTS -- created domain dev with owner a@example.com\n"
    );
    env.run(&["truncate-audit-log", "10"], "").ok();
    assert_eq!(
        redact_ts(&env.run(&["list-audit-log"], "").ok().stdout),
        log
    );
}

#[test]
fn version_help_completions() {
    let env = Env::new();
    let o = env.run(&["version"], "").ok();
    assert!(o.stdout.starts_with("pocket_protector version 26.4.3"));
    let o = env.run(&["--help"], "").ok();
    assert!(o.stdout.contains("  Access Management:\n") && o.stdout.contains("  Secret Access:\n"));
    let o = env.run(&[], "").code(1);
    assert!(o.stdout.starts_with("Usage: pprotect"));
    assert_eq!(o.stderr, "error: pprotect: expected a subcommand\n");
    let o = env.run(&["bogus"], "").code(1);
    assert!(
        o.stderr
            .starts_with("error: pprotect: unknown subcommand \"bogus\", choose from: init,")
    );
    // The script calls pprotect back for candidates.
    let o = env.run(&["completions", "bash"], "").ok();
    assert!(o.stdout.contains("PPROTECT_COMPLETE"), "{}", o.stdout);
}

/// Mistakes get suggestions, every command is listed in its own spelling,
/// `--version`/`-V` work, and a prompt whose input is closed says what it
/// asked.
#[test]
fn mistakes_get_help() {
    let env = setup();
    let o = env.run(&["add-secert"], "").code(1);
    assert!(
        o.stderr.contains("\n  tip: did you mean 'add-secret'?\n"),
        "{o:#?}"
    );
    for name in [
        "edit",
        "import",
        "access",
        "setup-git",
        "resolve",
        "check-audit-log",
        "man",
    ] {
        assert!(
            o.stderr.contains(&format!(" {name},")) || o.stderr.contains(&format!(" {name}\n")),
            "{name}: {o:#?}"
        );
    }
    assert!(!o.stderr.contains("list_domains"), "{o:#?}");
    let o = env.run(&["list_domain"], "").code(1);
    assert!(o.stderr.contains("did you mean 'list-domains'?"), "{o:#?}");
    let o = env
        .run(&["decrypt-domain", "dev", "--ouput-format", "env"], "")
        .code(1);
    assert!(
        o.stderr
            .contains("tip: a similar argument exists: '--output-format'"),
        "{o:#?}"
    );
    for flag in ["--version", "-V"] {
        let o = env.run(&[flag], "").ok();
        assert!(
            o.stdout
                .starts_with("pocket_protector version 26.4.3 (pprotect "),
            "{o:#?}"
        );
    }
    let o = env.run(&["add-domain"], "").code(1);
    assert!(
        o.stderr
            .contains("error: no answer to \"Domain name\": standard input is closed"),
        "{o:#?}"
    );
    // `SUBCOMMAND -h` is that subcommand's help, even with its required
    // arguments missing; `-h` after `--` belongs to exec's command.
    for (sub, example) in [
        (
            "decrypt-domain",
            "pprotect decrypt-domain dev --output-format env",
        ),
        ("edit", "pprotect edit dev"),
        ("import", "pprotect import dev .env"),
        ("completions", "pprotect completions bash"),
        ("exec", "pprotect exec dev -- ./server"),
    ] {
        let o = env.run(&[sub, "-h"], "").ok();
        assert!(
            o.stdout.contains(&format!("Usage: pprotect {sub} ")),
            "{sub}: {o:#?}"
        );
        assert!(o.stdout.contains(example), "{sub}: {o:#?}");
        assert!(o.stderr.is_empty(), "{sub}: {o:#?}");
    }
    // pprotect's own flags are refused where they mean nothing.
    let o = env.run(&["add-domain", "--json"], "prod\n").code(1);
    assert!(
        o.stderr.contains("--json does nothing for add-domain"),
        "{o:#?}"
    );
    let o = env.run(&["list-domains", "--allow-env", "X"], "").code(1);
    assert!(
        o.stderr
            .contains("--allow-env does nothing for list-domains"),
        "{o:#?}"
    );
    env.run(&["list-domains", "--json"], "").ok();
    let o = env.run(&["-h", "decrypt_domain"], "").ok();
    assert!(
        o.stdout.contains("Usage: pprotect decrypt-domain "),
        "{o:#?}"
    );
    let o = env
        .run(
            &[
                "exec",
                "--domain",
                "dev",
                "--",
                "sh",
                "-c",
                "echo \"$0\"",
                "-h",
            ],
            "",
        )
        .ok();
    assert_eq!(o.stdout, "-h\n");
}

#[test]
fn verbose_tracing_never_shows_secrets() {
    let env = setup();
    env.run(&["add-secret"], "dev\nk\nsuper-secret-value\n")
        .ok();
    for args in [
        &["-v", "decrypt-domain", "dev"][..],
        &["decrypt-domain", "dev"][..],
    ] {
        let o = env
            .run_with(crate::harness::bin(), args, "", &[("RUST_LOG", "trace")])
            .ok();
        assert!(!o.stderr.is_empty(), "tracing prints something");
        assert!(!o.stderr.contains("super-secret-value"));
        assert!(!o.stderr.contains("pw-a"));
    }
}

#[test]
fn concurrent_writers_all_land() {
    let env = setup();
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let mut c = env.command(crate::harness::bin());
            c.args([
                "add-secret",
                "--domain",
                "dev",
                "--secret-name",
                &format!("s{i}"),
                "--from-file",
                "-",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("value{i}").as_bytes())
                .unwrap();
            child
        })
        .collect();
    for h in handles {
        let o = h.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let names = env.run(&["list-domain-secrets", "dev"], "").ok().stdout;
    assert_eq!(names.lines().count(), 16, "{names}");
    let o = env.run(&["decrypt-domain", "dev"], "").ok();
    for i in 0..16 {
        assert!(o.stdout.contains(&format!("\"s{i}\": \"value{i}\"")));
    }
    let leftovers: Vec<_> = std::fs::read_dir(env.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `pprotect man --dir` writes one page per subcommand, each with
/// ENVIRONMENT, EXIT STATUS and (with examples) EXAMPLES; `pprotect man`
/// prints the main page, which names them all; `pprotect man exec` one.
#[test]
fn man_pages_one_per_subcommand() {
    let env = Env::new();
    let o = env.run(&["man"], "").ok();
    assert!(o.stdout.contains(".TH pprotect 1"), "{}", o.stdout);
    let dir = env.path().join("man1");
    env.run(&["man", "--dir", dir.to_str().unwrap()], "").ok();
    let subs = [
        "init",
        "version",
        "list-audit-log",
        "truncate-audit-log",
        "add-key-custodian",
        "list-user-secrets",
        "set-key-custodian-passphrase",
        "rekey-custodian",
        "rm-key-custodian",
        "add-domain",
        "add-owner",
        "list-domains",
        "rotate-domain-keys",
        "migrate-owner",
        "rm-owner",
        "rm-domain",
        "add-secret",
        "list-domain-secrets",
        "list-all-secrets",
        "update-secret",
        "rm-secret",
        "decrypt-domain",
        "exec",
        "completions",
        "setup-git",
        "merge-driver",
        "textconv",
        "pre-commit",
        "check-audit-log",
        "resolve",
        "edit",
        "import",
        "access",
        "man",
    ];
    let main = std::fs::read_to_string(dir.join("pprotect.1")).unwrap();
    assert_eq!(main, o.stdout);
    for sub in subs {
        let page = std::fs::read_to_string(dir.join(format!("pprotect-{sub}.1")))
            .unwrap_or_else(|e| panic!("no page for {sub}: {e}"));
        assert!(page.contains(&format!(".TH pprotect-{sub} 1")), "{sub}");
        assert!(
            page.contains(".SH ENVIRONMENT") && page.contains("PPROTECT_PASSPHRASE"),
            "{sub}"
        );
        assert!(page.contains(".SH \"EXIT STATUS\""), "{sub}");
        assert!(
            main.contains(&format!("pprotect\\-{}", sub.replace('-', "\\-"))),
            "{sub}"
        );
    }
    // Every page's sub-page exists (the old single page named pages that
    // did not), and every page that has examples shows them.
    let exec = std::fs::read_to_string(dir.join("pprotect-exec.1")).unwrap();
    assert!(exec.contains(".SH EXAMPLES"), "{exec}");
    assert!(
        exec.contains("\\-\\-prefix") || exec.contains("prefix"),
        "{exec}"
    );
    // Only the flags exec uses.
    assert!(!exec.contains("key\\-type"), "{exec}");
    let o = env.run(&["man", "exec"], "").ok();
    assert_eq!(o.stdout, exec);
    env.run(&["man", "nope"], "").code(1);
}

/// Run `pprotect ARGS` under a pseudo-terminal (`script`), so stderr is a
/// terminal; `None` where `script` is not installed.
fn under_a_terminal(env: &Env, args: &str, extra: &[(&str, &str)]) -> Option<String> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(std::env::var("CI").is_err(), "CI needs script (util-linux)");
        eprintln!("notice: script not installed; skipping the terminal test");
        return None;
    }
    let cmd = format!("{} {args}", crate::harness::bin());
    let o = env.run_with("script", &["-qec", &cmd, "/dev/null"], "", extra);
    Some(o.stdout)
}

/// On a terminal, long work shows progress on stderr, with the same look
/// for the key derivation; never in `--json` output, and never when
/// stderr is not a terminal.
#[test]
fn progress_only_on_a_terminal() {
    let mut env = Env::new();
    env.git_init();
    env.init_fast("a@example.com", "pw-a");
    env.run(&["add-domain"], "dev\n").ok();
    for i in 0..3 {
        env.run(&["add-secret"], &format!("dev\ns{i}\nv\n")).ok();
        env.commit_all(&format!("s{i}"));
    }
    let now = [("PPROTECT_PROGRESS_AFTER_MS", "0"), ("TERM", "xterm")];
    let Some(out) = under_a_terminal(&env, "check-audit-log --no-cache", &now) else {
        return;
    };
    assert!(out.contains("checking commits"), "{out:?}");
    // Cleared before the total is printed.
    assert!(
        out.contains("\u{1b}[2K0 finding(s) in 3 commit(s)"),
        "{out:?}"
    );
    let out = under_a_terminal(&env, "check-audit-log --no-cache --json", &now).unwrap();
    assert!(!out.contains("checking commits"), "{out:?}");
    let o = env
        .run_with(
            crate::harness::bin(),
            &["check-audit-log", "--no-cache"],
            "",
            &now,
        )
        .ok();
    assert_eq!(o.stderr, "");
    // The key derivation's spinner.
    let out = under_a_terminal(&env, "decrypt-domain dev", &now).unwrap();
    assert!(out.contains("deriving key ... 64 MiB"), "{out:?}");
    let o = env
        .run_with(crate::harness::bin(), &["decrypt-domain", "dev"], "", &now)
        .ok();
    assert_eq!(o.stderr, "");
}

/// On a terminal (a pty, through `script`), the prompts reach the terminal
/// and stdout redirected to a file holds only the result.
#[test]
fn prompts_on_a_terminal_never_reach_redirected_stdout() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("notice: no `script` (util-linux) here: pty test not run");
        return;
    }
    let env = setup();
    let cmd = format!(
        "{} decrypt-domain --ignore-env dev > out.json",
        crate::harness::bin()
    );
    let o = env.run_with(
        "script",
        &["-qec", &cmd, "/dev/null"],
        &format!("{A}\npw-a\n"),
        &[],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    // What the terminal showed: the prompts.
    assert!(o.stdout.contains("User email: "), "{o:#?}");
    let json = std::fs::read_to_string(env.path().join("out.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.is_object(), "{json}");
    assert!(!json.contains("User email"), "{json}");
}
