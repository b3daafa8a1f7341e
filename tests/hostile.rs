//! Every command that reads the protected file, against every file of the
//! hostile corpus (`fixtures/hostile/`) and a file over 10 MiB: exit 1 or
//! 2, a few lines naming the problem (and its line), within a second, no
//! panic, and the file left as it was.

use std::time::{Duration, Instant};

use crate::harness::{Env, bin, fixtures};

/// `(arguments, stdin)` of every reading command.
const COMMANDS: &[(&[&str], &str)] = &[
    (&["list-domains"], ""),
    (&["list-all-secrets"], ""),
    (&["list-domain-secrets", "dev"], ""),
    (&["list-audit-log"], ""),
    (&["list-user-secrets"], ""),
    (&["decrypt-domain", "dev"], ""),
    (&["exec", "--domain", "dev", "--", "true"], ""),
    (
        &[
            "add-secret",
            "--domain",
            "dev",
            "--secret-name",
            "x",
            "--from-file",
            "-",
        ],
        "v",
    ),
    (
        &[
            "update-secret",
            "--domain",
            "dev",
            "--secret-name",
            "x",
            "--from-file",
            "-",
        ],
        "v",
    ),
    (&["rm-secret"], "dev\nx\n"),
    (&["add-domain"], "d2\n"),
    (&["rm-domain"], "dev\n"),
    (&["add-owner"], "dev\nx@example.com\n"),
    (&["rm-owner"], "dev\nx@example.com\n"),
    (&["rotate-domain-keys"], "dev\n"),
    (&["migrate-owner"], "x@example.com\ny\n"),
    (
        &["add-key-custodian", "--key-type", "fast"],
        "x@example.com\np\np\n",
    ),
    (
        &["set-key-custodian-passphrase"],
        "demo@example.com\ndemo-passphrase\nn\nn\n",
    ),
    (
        &["rekey-custodian"],
        "demo@example.com\ndemo-passphrase\nn\nn\n",
    ),
    (&["rm-key-custodian"], "demo@example.com\n"),
    (&["truncate-audit-log", "1"], ""),
    (&["init"], "x\np\np\n"),
];

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures().join("hostile"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    // Over 10 MiB: built here rather than committed.
    let mut big = std::fs::read(fixtures().join("example/protected.yaml")).unwrap();
    let filler = format!("- {}\n", "x".repeat(90));
    while big.len() <= 10 * 1024 * 1024 {
        big.extend_from_slice(filler.as_bytes());
    }
    files.push(("over-10-mib.yaml".into(), big));
    files
}

#[test]
fn every_command_refuses_every_hostile_file_cleanly() {
    let mut env = Env::new();
    env.login("demo@example.com", "demo-passphrase");
    let corpus = corpus();
    assert!(corpus.len() >= 30);
    let mut failures = Vec::new();
    for (name, bytes) in &corpus {
        for (args, stdin) in COMMANDS {
            std::fs::write(env.file(), bytes).unwrap();
            let t = Instant::now();
            let o = env.run(args, stdin);
            let took = t.elapsed();
            let lines = o.stderr.lines().count();
            let problem = if !(o.code == 1 || o.code == 2) {
                Some(format!("exit {}", o.code))
            } else if lines == 0 || lines > 3 {
                Some(format!("{lines} lines of stderr"))
            } else if o.stderr.contains("panicked") || o.stderr.contains("RUST_BACKTRACE") {
                Some("panic".into())
            } else if took > Duration::from_secs(1) {
                Some(format!("took {took:?}"))
            } else if std::fs::read(env.file()).unwrap() != *bytes {
                Some("file changed".into())
            } else if *args != ["init"] && name != "over-10-mib.yaml" && !o.stderr.contains("line ")
            {
                Some("no line number".into())
            } else {
                None
            };
            if let Some(p) = problem {
                failures.push(format!(
                    "{name} / {}: {p}: {}",
                    args.join(" "),
                    o.stderr.trim()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn textconv_and_merge_driver_on_hostile_files() {
    let env = Env::new();
    let good = std::fs::read(fixtures().join("example/protected.yaml")).unwrap();
    for (name, bytes) in corpus() {
        std::fs::write(env.file(), &bytes).unwrap();
        // textconv never fails git diff: a warning and the text.
        let o = env.run(&["textconv", "protected.yaml"], "");
        assert_eq!(o.code, 0, "{name}: {}", o.stderr);
        // The merge driver refuses, leaving %A as it was.
        let a = env.path().join("a.yaml");
        let b = env.path().join("b.yaml");
        std::fs::write(&a, &bytes).unwrap();
        std::fs::write(&b, &good).unwrap();
        let o = env.run_with(
            bin(),
            &[
                "merge-driver",
                "protected.yaml",
                "a.yaml",
                "b.yaml",
                "protected.yaml",
            ],
            "",
            &[],
        );
        if name != "empty.yaml" {
            assert_eq!(o.code, 1, "{name}");
            assert_eq!(std::fs::read(&a).unwrap(), bytes, "{name}");
        }
    }
}
