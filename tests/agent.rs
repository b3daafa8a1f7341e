//! The agent: unlock once, then commands (and git's merge driver and the
//! pre-commit hook) use the key without a passphrase or a derivation;
//! TTL expiry, lock, a changed custodian key, another uid, `--no-agent`.
#![cfg(unix)]

use crate::git_operations::{A, B, git};
use crate::harness::{Env, Out, bin};

/// Custodians A (owner of dev) and B; dev holds `base`; git set up; no
/// credentials in the environment.
fn repo() -> Env {
    let mut env = crate::git_operations::repo();
    env.unset("PPROTECT_USER");
    env.unset("PPROTECT_PASSPHRASE");
    env
}

fn unlock(env: &Env, user: &str, pass: &str, ttl: &str) -> Out {
    env.run(&["unlock", user, "--ttl", ttl], &format!("{pass}\n"))
}

/// Run without credentials and without prompts: only the agent can help.
fn bare(env: &Env, args: &[&str]) -> Out {
    let mut all = vec!["--non-interactive"];
    all.extend_from_slice(args);
    env.run(&all, "")
}

fn socket_dir(env: &Env) -> std::path::PathBuf {
    env.path().join("run/pprotect")
}

#[test]
fn unlocked_commands_need_no_passphrase_and_no_derivation() {
    let env = repo();
    // Without the agent, nothing opens.
    bare(&env, &["decrypt-domain", "dev"]).code(1);
    let o = unlock(&env, A, "pw-a", "5m").ok();
    assert!(
        o.stderr.contains(&format!("Unlocked {A} for 5m 0s")),
        "{o:#?}"
    );
    let o = env.run(&["agent", "status"], "").ok();
    assert!(o.stdout.starts_with(&format!("{A}\t")), "{o:#?}");
    let o = env.run(&["agent", "status", "--json"], "").ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["keys"][0]["name"], A);
    assert!(v["keys"][0]["remaining_seconds"].as_u64().unwrap() > 250);
    // No key material in the status.
    assert!(!o.stdout.contains("pw-a"));

    // decrypt-domain: no passphrase, no derivation (the trace says
    // "verifying credentials" at every derivation).
    let o = bare(&env, &["-v", "decrypt-domain", "dev"]).ok();
    assert!(o.stdout.contains("\"base\": \"base-value\""), "{o:#?}");
    assert!(!o.stderr.contains("verifying credentials"), "{}", o.stderr);
    // exec, add-owner, rotate-domain-keys, then read again.
    let o = bare(
        &env,
        &["exec", "dev", "--", "sh", "-c", "printf %s \"$base\""],
    )
    .ok();
    assert_eq!(o.stdout, "base-value");
    // edit opens the domain through the agent (an editor that changes
    // nothing: nothing is written).
    let before = env.read();
    let o = env.run_with(
        bin(),
        &["--non-interactive", "edit", "dev"],
        "",
        &[("EDITOR", "true"), ("VISUAL", "true")],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    assert_eq!(env.read(), before);
    bare(&env, &["add-owner", "dev", B]).ok();
    bare(&env, &["rotate-domain-keys", "dev"]).ok();
    env.commit_all("B owns dev, rotated");
    env.run(
        &["update-secret", "dev", "base", "--from-file", "-"],
        "base-2",
    )
    .ok();
    env.commit_all("update base");
    let o = bare(&env, &["decrypt-domain", "dev", "--secret", "base"]).ok();
    assert_eq!(o.stdout.trim(), "base-2");
    // log: the owner's view (values compared) is the same through the
    // agent as with a passphrase.
    let through_agent = env.run(&["log", "dev", "--json"], "").ok().stdout;
    let with_creds = env
        .run_with(
            bin(),
            &["log", "dev", "--json", "--no-agent"],
            "",
            &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
        )
        .ok()
        .stdout;
    assert_eq!(through_agent, with_creds);
    assert!(through_agent.contains("value_changed"), "{through_agent}");
    let no_owner = env
        .run(&["log", "dev", "--json", "--no-agent"], "")
        .ok()
        .stdout;
    assert_ne!(through_agent, no_owner);

    // Bypassed: --no-agent and PPROTECT_AGENT=0.
    let o = bare(&env, &["--no-agent", "decrypt-domain", "dev"]).code(1);
    assert!(o.stderr.contains("Invalid user email"), "{o:#?}");
    let o = env.run_with(
        bin(),
        &["--non-interactive", "decrypt-domain", "dev"],
        "",
        &[("PPROTECT_AGENT", "0")],
    );
    assert_eq!(o.code, 1, "{o:#?}");
    // B was not unlocked: the agent does not answer for B.
    bare(&env, &["-u", B, "decrypt-domain", "dev"]).code(1);
    // Explicit credentials still win over the agent.
    let o = env.run_with(
        bin(),
        &["decrypt-domain", "dev"],
        "",
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "wrong")],
    );
    assert_eq!(o.code, 1, "{o:#?}");

    // lock wipes every key and stops the agent.
    let o = env.run(&["lock"], "").ok();
    assert!(o.stderr.contains("Locked"), "{o:#?}");
    env.run(&["agent", "status"], "").code(1);
    bare(&env, &["decrypt-domain", "dev"]).code(1);
    assert!(!socket_dir(&env).join("agent.sock").exists());
    let o = env.run(&["lock"], "").ok();
    assert!(o.stderr.contains("No agent is running"), "{o:#?}");
}

#[test]
fn the_merge_driver_and_pre_commit_use_the_agent() {
    let env = repo();
    env.run_with(
        bin(),
        &["add-owner", "dev", B],
        "",
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
    )
    .ok();
    env.run(&["add-secret", "dev", "db"], "db-value\n").ok();
    env.commit_all("B owns dev; db");
    // Work updates db while main rotates dev.
    git(&env, &["checkout", "-q", "-b", "work"]);
    env.run(&["update-secret", "dev", "db"], "db-new\n").ok();
    env.commit_all("update db");
    git(&env, &["checkout", "-q", "main"]);
    env.run_with(
        bin(),
        &["rotate-domain-keys", "dev"],
        "",
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
    )
    .ok();
    env.commit_all("rotate dev");
    // Without credentials and without an agent, the driver cannot
    // re-seal: a conflict. `resolve` re-seals it through the agent.
    let o = env.git(&["merge", "-q", "--no-edit", "work"]);
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(o.stderr.contains("an owner re-seals it"), "{}", o.stderr);
    unlock(&env, A, "pw-a", "5m").ok();
    let o = bare(&env, &["resolve"]);
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(o.stderr.contains("re-sealed secret db"), "{o:#?}");
    git(&env, &["add", "protected.yaml"]);
    git(&env, &["commit", "-q", "--no-edit"]);
    // Again, and this time the driver re-seals through the agent.
    git(&env, &["checkout", "-q", "work"]);
    git(&env, &["merge", "-q", "--no-edit", "main"]);
    env.run(&["update-secret", "dev", "db"], "db-newer\n").ok();
    env.commit_all("update db again");
    git(&env, &["checkout", "-q", "main"]);
    env.run_with(
        bin(),
        &["rotate-domain-keys", "dev", "--no-agent"],
        "",
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
    )
    .ok();
    env.commit_all("rotate dev again");
    let o = env.git(&["merge", "-q", "--no-edit", "work"]);
    assert_eq!(o.code, 0, "{o:#?}\n{}", env.read());
    assert!(
        o.stderr.contains("re-sealed secret db of domain dev"),
        "{}",
        o.stderr
    );
    for (user, pass) in [(A, "pw-a"), (B, "pw-b")] {
        let o = env
            .run_with(
                bin(),
                &["decrypt-domain", "dev", "--no-agent"],
                "",
                &[("PPROTECT_USER", user), ("PPROTECT_PASSPHRASE", pass)],
            )
            .ok();
        assert!(o.stdout.contains("\"db\": \"db-newer\""), "{user}: {o:#?}");
    }
    env.run(&["check-audit-log", "--no-cache"], "").ok();

    // pre-commit's value scan: a decrypted value in a staged file.
    env.run(&["add-secret", "dev", "token"], "tk-9876543210\n")
        .ok();
    env.commit_all("token");
    env.write("notes.txt", "the token is tk-9876543210\n");
    git(&env, &["add", "notes.txt"]);
    let o = env.run(&["pre-commit"], "").code(1);
    assert!(
        o.stderr
            .contains("notes.txt:1: contains the value of secret token of domain dev"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("tk-9876543210"));
    // Without the agent, a single value is not detectable.
    env.run(&["pre-commit", "--no-agent"], "").ok();
    env.run_with(bin(), &["pre-commit"], "", &[("PPROTECT_AGENT", "0")])
        .ok();
    env.run(&["lock"], "").ok();
}

#[test]
fn keys_expire_after_their_ttl() {
    let env = repo();
    let o = unlock(&env, A, "pw-a", "9h").code(2);
    assert!(o.stderr.contains("the longest is 8h"), "{o:#?}");
    let o = unlock(&env, A, "pw-a", "soon").code(2);
    assert!(o.stderr.contains("not a duration"), "{o:#?}");
    // A wrong passphrase hands nothing over.
    unlock(&env, A, "wrong", "1m").code(1);
    env.run(&["agent", "status"], "").code(1);

    unlock(&env, A, "pw-a", "2s").ok();
    bare(&env, &["decrypt-domain", "dev"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(3500));
    // The key is gone, and so is the agent (its last key expired).
    bare(&env, &["decrypt-domain", "dev"]).code(1);
    env.run(&["agent", "status"], "").code(1);
    assert!(!socket_dir(&env).join("agent.sock").exists());
}

#[test]
fn a_custodian_whose_key_changed_in_the_file_is_not_answered() {
    let env = repo();
    unlock(&env, A, "pw-a", "5m").ok();
    bare(&env, &["decrypt-domain", "dev"]).ok();
    // A's key material changes (a new passphrase): the agent's key no
    // longer matches the file's public key for A.
    env.run(
        &["set-key-custodian-passphrase", A, "--key-type", "fast"],
        "pw-a\npw-a2\npw-a2\n",
    )
    .ok();
    let o = bare(&env, &["decrypt-domain", "dev"]).code(1);
    assert!(o.stderr.contains("Invalid user email"), "{o:#?}");
    let o = env.run(&["agent", "status"], "").ok();
    assert!(o.stdout.contains(A), "the key is still held: {o:#?}");
    // Unlocking again with the new passphrase replaces it.
    unlock(&env, A, "pw-a2", "5m").ok();
    bare(&env, &["decrypt-domain", "dev"]).ok();
    let o = env.run(&["agent", "status"], "").ok();
    assert_eq!(o.stdout.lines().count(), 1, "{o:#?}");
    env.run(&["lock"], "").ok();
}

#[test]
fn a_directory_open_to_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = repo();
    unlock(&env, A, "pw-a", "5m").ok();
    let dir = socket_dir(&env);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = env.run(&["agent", "status"], "").code(2);
    assert!(o.stderr.contains("is not private to you"), "{o:#?}");
    // A command goes on without the agent, and says why.
    let o = bare(&env, &["decrypt-domain", "dev"]).code(1);
    assert!(o.stderr.contains("not using the agent"), "{o:#?}");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    bare(&env, &["decrypt-domain", "dev"]).ok();
    env.run(&["lock"], "").ok();
}

/// A client of another uid is refused by the agent itself (its peer
/// check), even when it can reach the socket. Needs root (to run a client
/// as `nobody` that can still enter the private directory); elsewhere the
/// README gives the manual check.
#[test]
fn another_uid_is_refused() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !root || !setpriv {
        eprintln!(
            "another_uid_is_refused: not root or no setpriv here; this is the README's manual check"
        );
        return;
    }
    let env = repo();
    unlock(&env, A, "pw-a", "5m").ok();
    let sock = socket_dir(&env).join("agent.sock");
    // As uid 65534, with only the capability to pass the directory's
    // permissions, ask for the status.
    const CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b"PPA1\x04")
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass  # the agent may have answered and closed already
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.hex())
"#;
    let o = env.run_with(
        "setpriv",
        &[
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps",
            "+dac_override",
            "--ambient-caps",
            "+dac_override",
            "python3",
            "-c",
            CLIENT,
            sock.to_str().unwrap(),
        ],
        "",
        &[],
    );
    assert_eq!(o.code, 0, "the other uid could not connect: {o:#?}");
    let bytes: Vec<u8> = (0..o.stdout.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&o.stdout[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes.first(), Some(&1), "not refused: {o:#?}");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("serves only its own user"), "{text}");
    assert!(
        !text.contains(A),
        "the status leaked to another uid: {text}"
    );
    // The owner still gets an answer.
    env.run(&["agent", "status"], "").ok();
    env.run(&["lock"], "").ok();
}

/// The agent holds no passphrase (not even in its environment) and its
/// key memory is locked against swapping. Reads /proc: Linux only.
#[cfg(target_os = "linux")]
#[test]
fn the_agent_holds_no_passphrase_and_locks_its_memory() {
    let env = repo();
    env.run_with(
        bin(),
        &["unlock", "--ttl", "5m"],
        "",
        &[("PPROTECT_USER", A), ("PPROTECT_PASSPHRASE", "pw-a")],
    )
    .ok();
    let o = env.run(&["agent", "status", "--json"], "").ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let pid = v["pid"].as_u64().expect("the agent's pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmLck");
    assert!(locked_kb >= 4, "no locked memory: {status}");
    // Its environment (readable here only as root: the agent is not
    // dumpable) has no passphrase.
    if let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) {
        let environ = String::from_utf8_lossy(&environ);
        assert!(!environ.contains("PPROTECT_PASSPHRASE"), "{environ}");
        assert!(!environ.contains("pw-a"), "{environ}");
        assert!(!environ.contains("PPROTECT_USER"), "{environ}");
    }
    env.run(&["lock"], "").ok();
}

/// A logout removes `$XDG_RUNTIME_DIR`: the agent notices its socket is
/// gone, wipes its keys and exits. Reads /proc: Linux only.
#[cfg(target_os = "linux")]
#[test]
fn the_agent_exits_when_its_socket_is_removed() {
    let env = repo();
    unlock(&env, A, "pw-a", "5m").ok();
    let o = env.run(&["agent", "status", "--json"], "").ok();
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let pid = v["pid"].as_u64().expect("the agent's pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    std::fs::remove_dir_all(socket_dir(&env)).unwrap();
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // Exited (reaped by init, or a zombie whose parent is gone).
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| s.contains("State:\tZ"))
            .unwrap_or(true)
    });
    assert!(gone, "the agent {pid} still runs without its socket");
}
