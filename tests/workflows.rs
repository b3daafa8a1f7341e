//! Everyday workflows: `edit` with a scripted editor, `import` from
//! dotenv and JSON, passphrases from a command, and the `access` matrix.

use crate::git_operations::{A, B, dev, git, repo};
use crate::harness::{Env, bin};

/// An editor script: records the buffer's path and modes in `home/`,
/// then runs `body` with the buffer as `$f`.
fn editor(env: &mut Env, body: &str) {
    let script = env.path().join("home/editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nf=\"$1\"\necho \"$f\" > \"$HOME/buffer-path\"\nstat -c '%a' \"$(dirname \"$f\")\" \"$f\" | tr '\\n' ' ' > \"$HOME/buffer-modes\"\n{body}\n"
        ),
    )
    .unwrap();
    env.set("EDITOR", &format!("sh {}", script.display()));
    env.unset("VISUAL");
}

fn buffer_gone(env: &Env) {
    let p = std::fs::read_to_string(env.path().join("home/buffer-path")).unwrap();
    let p = std::path::Path::new(p.trim());
    assert!(!p.exists(), "buffer left behind: {}", p.display());
    assert!(
        !p.parent().unwrap().exists(),
        "private directory left behind"
    );
}

fn log(env: &Env) -> String {
    env.run(&["list-audit-log"], "").ok().stdout
}

#[test]
fn edit_adds_updates_and_removes() {
    let mut env = repo();
    env.run(&["add-secret"], "dev\nk1\none\n").ok();
    env.run(
        &[
            "add-secret",
            "--domain",
            "dev",
            "--secret-name",
            "pem",
            "--from-file",
            "-",
        ],
        "line1\n  line2\n",
    )
    .ok();
    editor(
        &mut env,
        "sed -i \"s/^base: .*/base: 'new base'/\" \"$f\"\nsed -i '/^k1:/d' \"$f\"\necho \"k3: three\" >> \"$f\"",
    );
    let o = env.run(&["edit", "dev"], "y\n").ok();
    assert_eq!(
        o.stdout.lines().take(3).collect::<Vec<_>>(),
        ["~ base", "- k1", "+ k3"]
    );
    let d = dev(&env);
    assert_eq!(d["base"], "new base");
    assert_eq!(d["k3"], "three");
    assert_eq!(
        d["pem"], "line1\n  line2\n",
        "a multi-line value survives untouched"
    );
    assert!(!d.contains_key("k1"));
    let l = log(&env);
    for e in [
        "added secret k3 in dev",
        "updated secret base in dev",
        "removed secret k1 from dev",
    ] {
        assert!(l.contains(e), "{l}");
    }
    buffer_gone(&env);
    let modes = std::fs::read_to_string(env.path().join("home/buffer-modes")).unwrap();
    assert_eq!(modes.trim(), "700 600");
    // Nothing changed: nothing written, no entry.
    editor(&mut env, "true");
    let before = env.read();
    let o = env.run(&["edit", "dev", "--yes"], "").ok();
    assert!(o.stderr.contains("No changes."), "{o:#?}");
    assert_eq!(env.read(), before);
    buffer_gone(&env);
}

#[test]
fn edit_aborts_leave_nothing_behind() {
    let mut env = repo();
    let before = env.read();
    // Declined.
    editor(&mut env, "echo \"k9: nine\" >> \"$f\"");
    let o = env.run(&["edit", "dev"], "n\n").ok();
    assert!(
        o.stdout.contains("+ k9") && o.stdout.contains("Aborting..."),
        "{o:#?}"
    );
    assert_eq!(env.read(), before);
    buffer_gone(&env);
    // A buffer that does not parse: without a terminal, an error naming
    // the line, nothing written.
    editor(&mut env, "printf 'a: ok\\nb: [unclosed\\n' > \"$f\"");
    let o = env.run(&["edit", "dev"], "").code(1);
    assert!(
        o.stderr.contains("line 2") || o.stderr.contains("line 3"),
        "{o:#?}"
    );
    assert!(o.stderr.contains("nothing written"), "{o:#?}");
    assert_eq!(env.read(), before);
    buffer_gone(&env);
    // An invalid or duplicate name.
    editor(&mut env, "echo \"bad name: x\" >> \"$f\"");
    let o = env.run(&["edit", "dev", "--yes"], "").code(1);
    assert!(o.stderr.contains("invalid secret name"), "{o:#?}");
    editor(&mut env, "echo \"base: again\" >> \"$f\"");
    let o = env.run(&["edit", "dev", "--yes"], "").code(1);
    assert!(o.stderr.contains("line 4"), "{o:#?}");
    assert_eq!(env.read(), before);
    buffer_gone(&env);
    // A failing editor.
    editor(&mut env, "echo \"k9: nine\" >> \"$f\"; exit 3");
    let o = env.run(&["edit", "dev", "--yes"], "").code(1);
    assert!(o.stderr.contains("failed with status 3"), "{o:#?}");
    assert_eq!(env.read(), before);
    buffer_gone(&env);
    // No value ever reaches the output.
    assert!(!o.stdout.contains("base-value") && !o.stderr.contains("base-value"));
}

#[test]
fn edit_under_concurrent_writers() {
    let mut env = repo();
    // Another writer adds a secret while the editor is open: both land.
    editor(
        &mut env,
        &format!(
            "printf 'dev\\nother\\nv\\n' | {} add-secret >/dev/null\necho \"mine: m\" >> \"$f\"",
            bin()
        ),
    );
    env.run(&["edit", "dev", "--yes"], "").ok();
    let d = dev(&env);
    assert_eq!((d["other"].as_str(), d["mine"].as_str()), ("v", "m"));
    // Another writer changes the same secret: an error, nothing written.
    editor(
        &mut env,
        &format!(
            "printf 'dev\\nbase\\ntheirs\\n' | {} update-secret >/dev/null\nsed -i \"s/^base: .*/base: mine/\" \"$f\"",
            bin()
        ),
    );
    let o = env.run(&["edit", "dev", "--yes"], "").code(1);
    assert!(
        o.stderr.contains("changed while it was being edited"),
        "{o:#?}"
    );
    assert_eq!(dev(&env)["base"], "theirs");
    buffer_gone(&env);
}

#[test]
fn import_dotenv_and_json() {
    let env = repo();
    env.write(
        "home/app.env",
        "# app settings\nexport DB_URL='postgres://u:p@db/app'\nAPI_KEY=\"k\\\"1\"\nPLAIN=value # comment\n",
    );
    let o = env
        .run(&["import", "dev", "home/app.env", "--dry-run"], "")
        .ok();
    assert_eq!(o.stdout, "+ DB_URL (add)\n+ API_KEY (add)\n+ PLAIN (add)\n");
    assert!(!dev(&env).contains_key("PLAIN"));
    env.run(&["import", "dev", "home/app.env"], "").ok();
    let d = dev(&env);
    assert_eq!(d["DB_URL"], "postgres://u:p@db/app");
    assert_eq!(d["API_KEY"], "k\"1");
    assert_eq!(d["PLAIN"], "value");
    assert_eq!(log(&env).matches("added secret").count(), 4);
    // Existing names are refused without --update; nothing is written.
    let before = env.read();
    let o = env.run(&["import", "dev", "home/app.env"], "").code(1);
    assert!(
        o.stderr.contains("line 2") && o.stderr.contains("--update"),
        "{o:#?}"
    );
    assert_eq!(env.read(), before);
    // JSON from stdin, with --update.
    env.run(
        &["import", "dev", "-", "--format", "json", "--update"],
        "{\"PLAIN\": \"new\", \"fresh\": \"f\"}",
    )
    .ok();
    let d = dev(&env);
    assert_eq!((d["PLAIN"].as_str(), d["fresh"].as_str()), ("new", "f"));
    assert!(log(&env).contains("updated secret PLAIN in dev"));
    // A malformed line: its number, nothing written.
    env.write("home/bad.env", "OK=1\nthis is not a line\n");
    let before = env.read();
    let o = env.run(&["import", "dev", "home/bad.env"], "").code(1);
    assert!(o.stderr.contains("line 2"), "{o:#?}");
    assert_eq!(env.read(), before);
}

#[test]
fn decrypt_domain_env_output_imports_back() {
    let env = repo();
    for (k, v) in [
        ("quote", "it's \"quoted\""),
        ("spaces", "  a b  "),
        ("dollar", "$HOME and `cmd`"),
        ("hash", "a # b"),
        ("unicode", "caf\u{e9}"),
    ] {
        env.run(&["add-secret"], &format!("dev\n{k}\n{v}\n")).ok();
    }
    env.run(
        &[
            "add-secret",
            "--domain",
            "dev",
            "--secret-name",
            "multi",
            "--from-file",
            "-",
        ],
        "l1\nl2\n",
    )
    .ok();
    let want = dev(&env);
    let out = env
        .run(&["decrypt-domain", "dev", "--output-format", "env"], "")
        .ok()
        .stdout;
    let other = repo();
    other.run(&["import", "dev", "-", "--update"], &out).ok();
    assert_eq!(dev(&other), want);
}

#[test]
fn passphrases_from_a_command() {
    let mut env = repo();
    env.unset("PPROTECT_PASSPHRASE");
    // Outside the work tree, so no commit or checkout touches it.
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("pass.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$PPROTECT_USER\" = a@example.com ] && printf 'pw-a\\n'\n",
    )
    .unwrap();
    let good = format!("sh {}", script.display());
    // --passphrase-cmd.
    let o = env
        .run(&["decrypt-domain", "dev", "--passphrase-cmd", &good], "")
        .ok();
    assert!(o.stdout.contains("base-value"));
    // A failing command is an error naming it, with no fallback to the
    // environment's passphrase.
    let o = env.run_with(
        bin(),
        &[
            "decrypt-domain",
            "dev",
            "--passphrase-cmd",
            "echo pw-a; exit 4",
        ],
        "",
        &[("PPROTECT_PASSPHRASE", "pw-a")],
    );
    assert_eq!(o.code, 1, "{o:#?}");
    assert!(
        o.stderr
            .contains("`echo pw-a; exit 4` exited with status 4"),
        "{}",
        o.stderr
    );
    assert!(!o.stdout.contains("base-value"));
    // Empty output, and a timeout.
    let o = env
        .run(&["decrypt-domain", "dev", "--passphrase-cmd", "true"], "")
        .code(1);
    assert!(o.stderr.contains("printed nothing"));
    let o = env.run_with(
        bin(),
        &["decrypt-domain", "dev", "--passphrase-cmd", "sleep 10"],
        "",
        &[("PPROTECT_PASSPHRASE_CMD_TIMEOUT", "0.3")],
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("timed out"), "{}", o.stderr);
    // Precedence: PPROTECT_PASSPHRASE over PPROTECT_PASSPHRASE_CMD over
    // git config pprotect.passphraseCommand.
    git(&env, &["config", "pprotect.passphraseCommand", "exit 9"]);
    let o = env.run(&["decrypt-domain", "dev"], "").code(1);
    assert!(
        o.stderr.contains("`exit 9` exited with status 9"),
        "{}",
        o.stderr
    );
    let o = env.run_with(
        bin(),
        &["decrypt-domain", "dev"],
        "",
        &[("PPROTECT_PASSPHRASE_CMD", &good)],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    let o = env.run_with(
        bin(),
        &["decrypt-domain", "dev"],
        "",
        &[
            ("PPROTECT_PASSPHRASE", "pw-a"),
            ("PPROTECT_PASSPHRASE_CMD", "exit 8"),
        ],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    git(&env, &["config", "pprotect.passphraseCommand", &good]);
    // With full tracing, the passphrase appears nowhere.
    let o = env.run_with(
        bin(),
        &["decrypt-domain", "dev", "--secret", "base"],
        "",
        &[("RUST_LOG", "trace")],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(!o.stderr.contains("pw-a"), "{}", o.stderr);
    assert_eq!(o.stdout, "base-value\n");
    // The merge driver uses it too: a stale secret is re-sealed in CI
    // without a plaintext passphrase in the environment.
    git(&env, &["checkout", "-q", "-b", "rot"]);
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.commit_all("rotate");
    git(&env, &["checkout", "-q", "main"]);
    env.run(&["add-secret"], "dev\nstale\ns\n").ok();
    env.commit_all("stale");
    let o = env.git(&["merge", "-q", "--no-edit", "rot"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(o.stderr.contains("re-sealed secret stale"), "{}", o.stderr);
    assert_eq!(dev(&env)["stale"], "s");
}

#[test]
fn access_matrix() {
    let env = repo();
    env.run(&["add-domain"], "production-europe-west\n").ok();
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    let wide = env
        .run_with(bin(), &["access"], "", &[("COLUMNS", "200")])
        .ok();
    assert_eq!(
        wide.stdout,
        format!(
            "custodian     key    dev  production-europe-west  total\n\
             {A} fast   x    x                           2\n\
             {B} fast   x    .                           1\n\
             total                2    1                           3\n"
        )
    );
    let narrow = env
        .run_with(bin(), &["access"], "", &[("COLUMNS", "30")])
        .ok();
    for line in narrow.stdout.lines() {
        assert!(line.chars().count() <= 30, "{line:?}");
    }
    assert!(narrow.stdout.contains('…'), "{}", narrow.stdout);
    let j = env.run(&["access", "--json"], "").ok();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["custodians"][0]["name"], A);
    assert_eq!(v["custodians"][0]["key_type"], "fast");
    assert_eq!(v["custodians"][1]["domains"], serde_json::json!(["dev"]));
    assert_eq!(v["domains"][1]["owners"], serde_json::json!([A]));
}

/// Ctrl-C while the editor is open kills the editor: the edit is
/// abandoned (exit 130), and the buffer is wiped and removed. (The editor
/// here dies of SIGINT by itself; pprotect leaves SIGINT to the editor
/// while it runs, and handles it itself at any other time.)
#[test]
fn edit_whose_editor_dies_of_ctrl_c() {
    let mut env = repo();
    editor(
        &mut env,
        "echo \"k9: nine\" >> \"$f\"\nkill -INT $$\nsleep 5",
    );
    let before = env.read();
    let o = env.run(&["edit", "dev", "--yes"], "");
    assert_eq!(o.code, 130, "{o:#?}");
    assert!(o.stderr.contains("nothing written"), "{o:#?}");
    assert_eq!(env.read(), before);
    buffer_gone(&env);
}
