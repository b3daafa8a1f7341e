//! Crash safety, concurrent readers, and secret hygiene under full
//! tracing.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use pprotect::ProtectedFile;

use crate::harness::{Env, bin};

fn setup() -> Env {
    let mut env = Env::new();
    env.init_fast("a@example.com", "pw-a");
    env.run(&["add-domain"], "dev\n").ok();
    env
}

fn leftovers(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn writers_killed_at_random_moments_leave_old_or_new_file() {
    let env = setup();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut killed = 0;
    for i in 0..40 {
        let before = std::fs::read(env.file()).unwrap();
        let mut c = env.command(bin());
        c.args([
            "add-secret",
            "--domain",
            "dev",
            "--secret-name",
            &format!("k{i}"),
            "--from-file",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"value").unwrap();
        std::thread::sleep(Duration::from_micros(rand() % 12_000));
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            killed += 1;
        }
        let _ = child.wait();
        let after = std::fs::read(env.file()).unwrap();
        let parsed = ProtectedFile::from_bytes(&after);
        assert!(
            parsed.is_ok(),
            "iteration {i}: the file does not parse: {parsed:?}"
        );
        let before_f = ProtectedFile::from_bytes(&before).unwrap();
        let after_f = parsed.unwrap();
        let grew =
            after_f.domains["dev"].secrets.len() == before_f.domains["dev"].secrets.len() + 1;
        assert!(
            after == before || grew,
            "iteration {i}: neither the old nor the new file"
        );
    }
    assert!(
        killed > 0,
        "no writer was killed mid-run; the test proves nothing"
    );
    // The next successful writer cleans what killed ones left.
    env.run(
        &[
            "add-secret",
            "--domain",
            "dev",
            "--secret-name",
            "final",
            "--from-file",
            "-",
        ],
        "v",
    )
    .ok();
    assert_eq!(leftovers(&env), Vec::<String>::new());
}

#[test]
fn readers_never_see_a_partial_file() {
    let env = setup();
    let path = env.file();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    ProtectedFile::from_bytes(&bytes).is_ok(),
                    "a reader saw a partial file"
                );
                reads += 1;
            }
            reads
        })
    };
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let mut c = env.command(bin());
            c.args([
                "add-secret",
                "--domain",
                "dev",
                "--secret-name",
                &format!("w{i}"),
                "--from-file",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            let mut child = c.spawn().unwrap();
            child.stdin.take().unwrap().write_all(b"v").unwrap();
            child
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().unwrap().success());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let f = ProtectedFile::from_bytes(&std::fs::read(env.file()).unwrap()).unwrap();
    assert_eq!(f.domains["dev"].secrets.len(), 8);
}

#[test]
fn full_tracing_never_shows_passphrases_or_values() {
    let env = setup();
    let secrets = ["plain-value-one", "passphrase-new-2"];
    let trace = [("RUST_LOG", "trace")];
    let runs: Vec<(Vec<&str>, String)> = vec![
        (vec!["add-secret"], format!("dev\nk\n{}\n", secrets[0])),
        (vec!["decrypt-domain", "dev"], String::new()),
        (vec!["-v", "rotate-domain-keys"], "dev\n".into()),
        (vec!["exec", "--domain", "dev", "--", "true"], String::new()),
        (
            vec!["set-key-custodian-passphrase", "--key-type", "fast"],
            format!("a@example.com\npw-a\n{0}\n{0}\n", secrets[1]),
        ),
    ];
    for (args, stdin) in runs {
        let o = env.run_with(bin(), &args, &stdin, &trace);
        assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
        for s in secrets.iter().chain(["pw-a"].iter()) {
            assert!(
                !o.stderr.contains(s),
                "{args:?} leaked {s:?} in: {}",
                o.stderr
            );
            assert!(
                !o.stdout.contains(s) || args[0] == "decrypt-domain",
                "{args:?} printed {s:?}"
            );
        }
    }
}

#[test]
fn debug_output_of_secret_types_is_redacted() {
    let creds = pprotect::Creds::new("a@example.com", "super-secret-passphrase");
    assert!(!format!("{creds:?}").contains("super-secret-passphrase"));
    let key = pprotect::crypto::SecretKey::generate();
    assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
}
