//! Performance harness: builds large protected files, times each command
//! of the release binary, and prints the figures with their ratios against
//! the Python tool and against one libsodium (PyNaCl) Argon2id derivation,
//! all in one run.
//!
//! `cargo bench --bench perf` (set `PPROTECT_PYTHON_VENV` to a virtualenv
//! with `pocket-protector==26.4.3` for the Python columns; `~/ppref` is
//! tried too). `PPROTECT_BENCH_QUICK=1` runs fewer repetitions and skips
//! the slow Python measurements at scale.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pprotect::{KeyType, ProtectedFile};
use secrecy::SecretString;

const BIN: &str = env!("CARGO_BIN_EXE_pprotect");
const RAW: &str = "P0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefP";
const HARD_PASS: &str = "correct horse battery staple";

fn raw() -> SecretString {
    SecretString::from(RAW.to_string())
}

/// A file with `domains` domains of `secrets` secrets each, owned by a raw
/// custodian `bench@example.com`.
fn build(domains: usize, secrets: usize) -> String {
    let mut f = ProtectedFile::create();
    f.add_key_custodian("bench@example.com", &raw(), KeyType::Raw)
        .unwrap();
    let who = f.unlock("bench@example.com", &raw()).unwrap().unwrap();
    for d in 0..domains {
        let name = format!("domain-{d:04}");
        f.add_domain(&name, &who).unwrap();
        for s in 0..secrets {
            let v = SecretString::from(format!("value-{d}-{s}"));
            f.add_secret(&name, &format!("secret-{s:02}"), &v).unwrap();
        }
    }
    // A long-lived file's log is usually truncated; keep the size about
    // the 2.2 MB for 1,000 x 20.
    f.truncate_audit_log(100);
    f.to_yaml_string()
}

fn python() -> Option<PathBuf> {
    [
        std::env::var_os("PPROTECT_PYTHON_VENV").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("ppref")),
    ]
    .into_iter()
    .flatten()
    .find(|v| v.join("bin/pprotect").exists())
}

/// Median wall time of `n` runs of `setup` then `cmd`.
fn time(n: usize, mut setup: impl FnMut(), mut cmd: impl FnMut() -> Command) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            setup();
            let mut c = cmd();
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .stdin(Stdio::null());
            let t = Instant::now();
            let status = c.status().expect("runs");
            let e = t.elapsed();
            assert!(status.success(), "{c:?} failed");
            e
        })
        .collect();
    times.sort();
    times[n / 2]
}

fn cmd(bin: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(bin);
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let quick = std::env::var("PPROTECT_BENCH_QUICK").is_ok();
    let reps = if quick { 3 } else { 5 };
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // PPROTECT_BENCH_ONLY=history (or =scale, the at-scale table) runs one
    // section; PPROTECT_BENCH_KEEP
    // keeps the generated files (their folder is printed).
    let only = std::env::var("PPROTECT_BENCH_ONLY").ok();
    if std::env::var("PPROTECT_BENCH_KEEP").is_ok() {
        println!("files in {}", d.display());
    }
    if only.as_deref() == Some("agent") {
        agent_bench(d, reps);
        return;
    }
    if only.as_deref() == Some("hostile") {
        hostile_bench(d, reps);
        return;
    }
    if only.as_deref() == Some("history") {
        let sizes: Vec<usize> = std::env::var("PPROTECT_BENCH_COMMITS")
            .ok()
            .and_then(|c| c.parse().ok())
            .map_or_else(|| vec![2_000, 10_000], |n| vec![n]);
        history_bench(d, &sizes);
        if std::env::var("PPROTECT_BENCH_KEEP").is_ok() {
            std::mem::forget(dir);
        }
        return;
    }
    let env = [
        ("PPROTECT_USER", "bench@example.com"),
        ("PPROTECT_PASSPHRASE", RAW),
    ];

    println!("pprotect performance (median of {reps} runs; release binary)\n");

    // --- At scale -----------------------------------------------------
    println!("## At scale: file size vs command time (raw custodian)\n");
    println!(
        "| domains x secrets | size | list-all-secrets | add-secret | textconv | merge-driver | python list-all-secrets | python add-secret |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (domains, secrets) in [(100usize, 20usize), (1000, 20), (4000, 20)] {
        let text = build(domains, secrets);
        let file = d.join(format!("big-{domains}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let work = d.join("work.yaml");
        let f = file.to_str().unwrap();
        let w = work.to_str().unwrap();
        let list = time(
            reps,
            || {},
            || cmd(BIN, d, &["list-all-secrets", "--file", f], &[]),
        );
        let add = time(
            reps,
            || {
                std::fs::copy(&file, &work).unwrap();
            },
            || {
                cmd(
                    BIN,
                    d,
                    &[
                        "add-secret",
                        "--file",
                        w,
                        "--domain",
                        "domain-0000",
                        "--secret-name",
                        "new-one",
                        "--from-file",
                        "/etc/hostname",
                    ],
                    &[],
                )
            },
        );
        let tc = time(reps, || {}, || cmd(BIN, d, &["textconv", f], &[]));
        let merge = merge_time(d, &file, &text, reps);
        let (pl, pa) = match &py {
            Some(v) if !(quick && domains > 100) && domains <= 1000 => {
                let pb = v.join("bin/pprotect");
                let pb = pb.to_str().unwrap();
                let pl = time(
                    1,
                    || {},
                    || cmd(pb, d, &["list-all-secrets", "--file", f], &[]),
                );
                let pa = time(
                    1,
                    || {
                        std::fs::copy(&file, &work).unwrap();
                    },
                    || {
                        cmd(
                            pb,
                            d,
                            &[
                                "add-secret",
                                "--file",
                                w,
                                "--domain",
                                "domain-0000",
                                "--secret-name",
                                "new-one",
                                "--from-file",
                                "/etc/hostname",
                            ],
                            &[],
                        )
                    },
                );
                (
                    format!(
                        "{} ({:.0}x)",
                        secs(pl),
                        pl.as_secs_f64() / list.as_secs_f64()
                    ),
                    format!(
                        "{} ({:.0}x)",
                        secs(pa),
                        pa.as_secs_f64() / add.as_secs_f64()
                    ),
                )
            }
            _ => ("-".into(), "-".into()),
        };
        println!(
            "| {domains} x {secrets} | {:.2} MB | {} | {} | {} | {} | {pl} | {pa} |",
            text.len() as f64 / 1e6,
            secs(list),
            secs(add),
            secs(tc),
            merge.map(secs).unwrap_or_else(|| "-".into()),
        );
    }

    if only.as_deref() == Some("scale") {
        if std::env::var("PPROTECT_BENCH_KEEP").is_ok() {
            std::mem::forget(dir);
        }
        return;
    }

    // --- Key derivation -------------------------------------------------
    println!(
        "\n## One credentialed command vs one libsodium Argon2id derivation (hard: opslimit 4, 256 MiB)\n"
    );
    let small = d.join("hard.yaml");
    let mut f = ProtectedFile::create();
    let hard = SecretString::from(HARD_PASS.to_string());
    f.add_key_custodian("hard@example.com", &hard, KeyType::Hard)
        .unwrap();
    for i in 0..3 {
        f.add_key_custodian(&format!("o{i}@example.com"), &raw(), KeyType::Raw)
            .unwrap();
    }
    let who = f.unlock("hard@example.com", &hard).unwrap().unwrap();
    f.add_domain("prod", &who).unwrap();
    for i in 0..3 {
        f.add_owner("prod", &format!("o{i}@example.com"), &who)
            .unwrap();
    }
    for s in 0..20 {
        f.add_secret(
            "prod",
            &format!("s{s}"),
            &SecretString::from(format!("v{s}")),
        )
        .unwrap();
    }
    std::fs::write(&small, f.to_yaml_string()).unwrap();
    let s = small.to_str().unwrap();
    let henv = [
        ("PPROTECT_USER", "hard@example.com"),
        ("PPROTECT_PASSPHRASE", HARD_PASS),
    ];
    // Interleaved rounds: each round measures every line once, so machine
    // drift affects all of them alike; medians are taken per line.
    let rot_file = d.join("rot.yaml");
    let pyb = py.as_ref().map(|v| v.join("bin/python"));
    let run_py = |code: &str| -> Duration {
        let mut c = Command::new(pyb.as_ref().expect("python"));
        c.args(["-c", code])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t = Instant::now();
        assert!(c.status().unwrap().success());
        t.elapsed()
    };
    let (mut t_dec, mut t_rot, mut t_kdf, mut t_pykdf, mut t_pystart) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..reps {
        t_dec.push(time(
            1,
            || {},
            || cmd(BIN, d, &["decrypt-domain", "--file", s, "prod"], &henv),
        ));
        // rotate-domain-keys reads the domain name from stdin.
        t_rot.push(time_stdin(1, &small, &rot_file, BIN, d, &henv));
        // Our Argon2id in-process, the same derivation as the PyNaCl line.
        let mut out = [0u8; 32];
        let t = Instant::now();
        pprotect::crypto::argon2id(&[b'x'; 64], &[b'y'; 16], 4, 256 << 20, &mut out).unwrap();
        t_kdf.push(t.elapsed());
        if pyb.is_some() {
            t_pykdf.push(run_py(
                "import nacl.pwhash as p; p.argon2id.kdf(32, b'x'*64, b'y'*16, opslimit=4, memlimit=268435456)",
            ));
            t_pystart.push(run_py("import nacl.pwhash"));
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let decrypt = median(t_dec);
    let rotate = median(t_rot);
    let ours_kdf = median(t_kdf);
    match &py {
        Some(v) => {
            let one = median(t_pykdf).saturating_sub(median(t_pystart));
            println!("| measurement | time | ratio to one PyNaCl derivation |");
            println!("|---|---|---|");
            println!(
                "| PyNaCl argon2id.kdf (interpreter start-up subtracted) | {} | 1.00 |",
                secs(one)
            );
            println!(
                "| pprotect Argon2id alone (in-process) | {} | {:.2} |",
                secs(ours_kdf),
                ours_kdf.as_secs_f64() / one.as_secs_f64()
            );
            println!(
                "| pprotect decrypt-domain (hard custodian) | {} | {:.2} |",
                secs(decrypt),
                decrypt.as_secs_f64() / one.as_secs_f64()
            );
            println!(
                "| pprotect rotate-domain-keys (4 owners) | {} | {:.2} |",
                secs(rotate),
                rotate.as_secs_f64() / one.as_secs_f64()
            );
            if !quick {
                let pb = v.join("bin/pprotect");
                let pb = pb.to_str().unwrap();
                let pd = time(
                    3,
                    || {},
                    || cmd(pb, d, &["decrypt-domain", "--file", s, "prod"], &henv),
                );
                let pr = time_stdin(3, &small, &rot_file, pb, d, &henv);
                println!(
                    "| python decrypt-domain | {} | {:.2} |",
                    secs(pd),
                    pd.as_secs_f64() / one.as_secs_f64()
                );
                println!(
                    "| python rotate-domain-keys (4 owners) | {} | {:.2} |",
                    secs(pr),
                    pr.as_secs_f64() / one.as_secs_f64()
                );
            }
        }
        None => {
            println!("(Python tool not found: ratios against PyNaCl skipped)");
            println!("| pprotect Argon2id alone | {} |", secs(ours_kdf));
            println!(
                "| pprotect decrypt-domain (hard custodian) | {} |",
                secs(decrypt)
            );
            println!(
                "| pprotect rotate-domain-keys (4 owners) | {} |",
                secs(rotate)
            );
        }
    }

    agent_bench(d, reps);

    // --- History ------------------------------------------------------
    history_bench(d, if quick { &[1_000] } else { &[1_000, 10_000] });

    // --- Start-up -------------------------------------------------------
    let tiny = d.join("tiny.yaml");
    std::fs::write(&tiny, build(3, 5)).unwrap();
    let t = tiny.to_str().unwrap();
    let lst = time(
        reps * 2,
        || {},
        || cmd(BIN, d, &["list-domains", "--file", t], &env),
    );
    println!(
        "\n## Commands that need no key, typical file\n\nlist-domains on a 3-domain file: {:.1} ms",
        lst.as_secs_f64() * 1e3
    );
    hostile_bench(d, reps);
}

/// A hostile audit log: 100,000 entries no change backs, through the merge
/// driver as a cherry-pick runs it and through `check-audit-log` (both
/// linear; the previous rules took over a minute each).
fn hostile_bench(d: &Path, reps: usize) {
    let base = build(3, 5);
    let mut theirs = base.clone();
    for i in 0..100_000 {
        theirs.push_str(&format!(
            "- 2026-12-01T11:00:00Z -- added secret ghost{i} in d0\n"
        ));
    }
    let (b, o, t) = (
        d.join("h-base.yaml"),
        d.join("h-ours.yaml"),
        d.join("h-theirs.yaml"),
    );
    std::fs::write(&b, &base).unwrap();
    std::fs::write(&t, &theirs).unwrap();
    let merge = time(
        reps,
        || std::fs::write(&o, &base).unwrap(),
        || {
            let mut c = cmd(
                BIN,
                d,
                &[
                    "merge-driver",
                    b.to_str().unwrap(),
                    o.to_str().unwrap(),
                    t.to_str().unwrap(),
                    "protected.yaml",
                ],
                &[],
            );
            c.env_remove("GIT_REFLOG_ACTION");
            c
        },
    );
    let repo = d.join("hostile-repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let s = Command::new("git")
            .args([
                "-c",
                "user.name=b",
                "-c",
                "user.email=b@x",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&repo)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(s.success());
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("protected.yaml"), &base).unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "base"]);
    std::fs::write(repo.join("protected.yaml"), &theirs).unwrap();
    git(&["commit", "-q", "-am", "ghosts"]);
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            let s = cmd(BIN, &repo, &["check-audit-log", "--no-cache"], &[])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert_eq!(s.code(), Some(1), "findings expected");
            t0.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "\n## Hostile audit log: 100,000 unbacked entries ({:.1} MB)\n\n| merge-driver (cherry-pick) | check-audit-log |\n|---|---|\n| {} | {} |",
        theirs.len() as f64 / 1e6,
        secs(merge),
        secs(times[reps / 2])
    );
}

fn time_stdin(
    n: usize,
    src: &Path,
    work: &Path,
    bin: &str,
    d: &Path,
    env: &[(&str, &str)],
) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            std::fs::copy(src, work).unwrap();
            let mut c = cmd(
                bin,
                d,
                &["rotate-domain-keys", "--file", work.to_str().unwrap()],
                env,
            );
            c.stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let t = Instant::now();
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"prod\n").unwrap();
            assert!(child.wait().unwrap().success());
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

/// Time `merge-driver` on two branches that each add a secret to the file.
fn merge_time(d: &Path, base: &Path, text: &str, reps: usize) -> Option<Duration> {
    let mut ours = ProtectedFile::from_bytes(text.as_bytes()).unwrap();
    ours.add_secret(
        "domain-0000",
        "ours-new",
        &SecretString::from("o".to_string()),
    )
    .unwrap();
    let mut theirs = ProtectedFile::from_bytes(text.as_bytes()).unwrap();
    theirs
        .add_secret(
            "domain-0001",
            "theirs-new",
            &SecretString::from("t".to_string()),
        )
        .unwrap();
    let (o, t) = (d.join("ours.yaml"), d.join("theirs.yaml"));
    let ours_text = ours.to_yaml_string();
    std::fs::write(&t, theirs.to_yaml_string()).unwrap();
    Some(time(
        reps,
        || std::fs::write(&o, &ours_text).unwrap(),
        || {
            cmd(
                BIN,
                d,
                &[
                    "merge-driver",
                    base.to_str().unwrap(),
                    o.to_str().unwrap(),
                    t.to_str().unwrap(),
                ],
                &[],
            )
        },
    ))
}

/// A repository of `commits` commits, each updating one secret of a
/// ~100 KB file (built with `git fast-import`), then `check-audit-log`
/// against `git log -p -- protected.yaml` on it.
/// check-audit-log against `git log -p` on histories of each size.
/// Run `c` once: its wall time, and its peak resident memory in KiB when
/// GNU time is installed (`/usr/bin/time -f %M`).
fn measure(c: Command) -> (Duration, Option<u64>) {
    let gnu_time = Path::new("/usr/bin/time");
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut run = if gnu_time.exists() {
        let mut r = Command::new(gnu_time);
        r.arg("-f").arg("%M").arg("-o").arg(out.path());
        r.arg(c.get_program()).args(c.get_args());
        r
    } else {
        let mut r = Command::new(c.get_program());
        r.args(c.get_args());
        r
    };
    if let Some(d) = c.get_current_dir() {
        run.current_dir(d);
    }
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => run.env(k, v),
            None => run.env_remove(k),
        };
    }
    run.stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let t = Instant::now();
    let status = run.status().expect("runs");
    let e = t.elapsed();
    assert!(status.success(), "{run:?} failed");
    let kb = std::fs::read_to_string(out.path())
        .ok()
        .and_then(|s| s.trim().lines().last().and_then(|l| l.trim().parse().ok()));
    (e, kb)
}

fn history_bench(d: &Path, sizes: &[usize]) {
    println!("\n## check-audit-log vs git log -p -- protected.yaml (whole history, --no-cache)\n");
    println!(
        "| commits | file | check-audit-log (peak RSS) | git log -p (peak RSS) | time ratio | after repack: check-audit-log | git log -p | time ratio | re-check after one new commit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &commits in sizes {
        history_run(d, commits);
    }
}

fn history_run(d: &Path, commits: usize) {
    use std::io::Write;
    let repo = d.join(format!("history-{commits}"));
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    let mut f = ProtectedFile::create();
    f.add_key_custodian("bench@example.com", &raw(), KeyType::Raw)
        .unwrap();
    let who = f.unlock("bench@example.com", &raw()).unwrap().unwrap();
    for dn in 0..90 {
        f.add_domain(&format!("domain-{dn:02}"), &who).unwrap();
        for sn in 0..10 {
            f.add_secret(
                &format!("domain-{dn:02}"),
                &format!("s{sn}"),
                &SecretString::from("v".to_string()),
            )
            .unwrap();
        }
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&repo)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::io::BufWriter::new(child.stdin.take().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut size = 0;
    for i in 0..commits {
        // Keep the file near 100 KB, as a team that truncates its log does.
        if i > 0 && i % 50 == 0 {
            f.truncate_audit_log(50);
        }
        if i > 0 {
            let dn = format!("domain-{:02}", i % 90);
            f.update_secret(
                &dn,
                &format!("s{}", i % 10),
                &SecretString::from(format!("v{i}")),
            )
            .unwrap();
        }
        let text = f.to_yaml_string();
        size = text.len();
        write!(
            w,
            "blob\nmark :{}\ndata {}\n{text}\n",
            2 * i + 1,
            text.len()
        )
        .unwrap();
        let msg = format!("change {i}");
        write!(w, "commit refs/heads/main\nmark :{}\ncommitter Bench <b@example.com> {now} +0000\ndata {}\n{msg}\n", 2 * i + 2, msg.len()).unwrap();
        if i > 0 {
            writeln!(w, "from :{}", 2 * i).unwrap();
        }
        writeln!(w, "M 100644 :{} protected.yaml\n", 2 * i + 1).unwrap();
    }
    drop(w);
    assert!(child.wait().unwrap().success());
    git(&["checkout", "-q", "main"]);
    // The generated history must check clean; show why if not.
    let first = Command::new(BIN)
        .arg("check-audit-log")
        .current_dir(&repo)
        .output()
        .unwrap();
    if !first.status.success() {
        let out = String::from_utf8_lossy(&first.stdout);
        let lines: Vec<&str> = out.lines().collect();
        panic!(
            "the generated history does not check clean:\n{}\n...\n{}\n{}",
            lines.iter().take(8).copied().collect::<Vec<_>>().join("\n"),
            lines.last().unwrap_or(&""),
            String::from_utf8_lossy(&first.stderr)
        );
    }
    // The full check (the record of verified history bypassed), beside
    // `git log -p`; then the same after `git repack -adf`, which stores
    // the newest version whole and older ones as deltas (as `git gc` does
    // for pushed history), the other way round from fast-import's pack.
    let check = || {
        let mut c = Command::new(BIN);
        c.args(["check-audit-log", "--no-cache"]).current_dir(&repo);
        measure(c)
    };
    let log_p = || {
        let mut c = Command::new("git");
        c.args(["log", "-p", "--", "protected.yaml"])
            .current_dir(&repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null");
        measure(c)
    };
    let (ours, theirs) = (check(), log_p());
    git(&["repack", "-adfq"]);
    let (ours_gc, theirs_gc) = (check(), log_p());
    // A re-check after one new commit: the first run recorded the
    // verified history, so only the new commit is checked.
    f.update_secret(
        "domain-00",
        "s0",
        &SecretString::from("recheck".to_string()),
    )
    .unwrap();
    std::fs::write(repo.join("protected.yaml"), f.to_yaml_string()).unwrap();
    git(&[
        "-c",
        "user.name=Bench",
        "-c",
        "user.email=b@example.com",
        "commit",
        "-q",
        "-am",
        "one more",
    ]);
    let recheck = time(
        1,
        || {},
        || {
            let mut c = Command::new(BIN);
            c.arg("check-audit-log").current_dir(&repo);
            c
        },
    );
    let with_peak = |m: &(Duration, Option<u64>)| match m.1 {
        Some(kb) => format!("{} ({:.0} MB)", secs(m.0), kb as f64 / 1024.0),
        None => secs(m.0),
    };
    println!(
        "| {commits} | {:.0} KB | {} | {} | {:.2} | {} | {} | {:.2} | {} |",
        size as f64 / 1e3,
        with_peak(&ours),
        with_peak(&theirs),
        ours.0.as_secs_f64() / theirs.0.as_secs_f64(),
        with_peak(&ours_gc),
        with_peak(&theirs_gc),
        ours_gc.0.as_secs_f64() / theirs_gc.0.as_secs_f64(),
        secs(recheck)
    );
}

/// The agent: `decrypt-domain` and `exec` with a `hard` custodian as whole
/// processes, deriving the key each time against asking the unlocked
/// agent; and 100 consecutive commands after one `unlock`, with the number
/// of key derivations they made (counted from the trace, which logs each).
fn agent_bench(d: &Path, reps: usize) {
    println!("\n## The agent: a hard custodian, whole processes\n");
    let file = d.join("agent.yaml");
    let mut f = ProtectedFile::create();
    let hard = SecretString::from(HARD_PASS.to_string());
    f.add_key_custodian("hard@example.com", &hard, KeyType::Hard)
        .unwrap();
    let who = f.unlock("hard@example.com", &hard).unwrap().unwrap();
    f.add_domain("prod", &who).unwrap();
    for s in 0..20 {
        f.add_secret(
            "prod",
            &format!("s{s}"),
            &SecretString::from(format!("v{s}")),
        )
        .unwrap();
    }
    std::fs::write(&file, f.to_yaml_string()).unwrap();
    let fp = file.to_str().unwrap();
    let run = d.join("run");
    std::fs::create_dir_all(&run).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let run_s = run.to_str().unwrap();
    let derive_env = [
        ("XDG_RUNTIME_DIR", run_s),
        ("PPROTECT_USER", "hard@example.com"),
        ("PPROTECT_PASSPHRASE", HARD_PASS),
    ];
    let agent_env = [
        ("XDG_RUNTIME_DIR", run_s),
        ("PPROTECT_USER", "hard@example.com"),
        ("PPROTECT_PASSPHRASE", ""),
    ];
    let dec = ["decrypt-domain", "--file", fp, "prod"];
    let exe = ["exec", "--file", fp, "prod", "--", "true"];
    // Unlock once (one derivation), timed.
    let t = Instant::now();
    let o = cmd(
        BIN,
        d,
        &["unlock", "--file", fp, "--ttl", "30m"],
        &derive_env,
    )
    .output()
    .unwrap();
    let unlock = t.elapsed();
    assert!(
        o.status.success(),
        "unlock: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut lines: Vec<(&str, Duration, Duration)> = Vec::new();
    for (label, args) in [("decrypt-domain", &dec[..]), ("exec -- true", &exe[..])] {
        let derived = time(
            reps,
            || {},
            || {
                let mut c = cmd(BIN, d, args, &derive_env);
                c.arg("--no-agent");
                c
            },
        );
        let agent = time(reps * 4, || {}, || cmd(BIN, d, args, &agent_env));
        lines.push((label, derived, agent));
    }
    println!("| command | deriving (--no-agent) | through the agent | speed-up |");
    println!("|---|---|---|---|");
    for (label, derived, agent) in &lines {
        println!(
            "| {label} | {} | {:.1} ms | {:.0}x |",
            secs(*derived),
            agent.as_secs_f64() * 1e3,
            derived.as_secs_f64() / agent.as_secs_f64()
        );
    }
    // 100 consecutive commands: time in all, and derivations counted from
    // the trace (`-v` logs "verifying credentials" before each).
    let t = Instant::now();
    let mut derivations = 0;
    for _ in 0..100 {
        let mut c = cmd(BIN, d, &dec, &agent_env);
        c.arg("-v");
        let o = c.output().unwrap();
        assert!(o.status.success());
        derivations += String::from_utf8_lossy(&o.stderr)
            .matches("verifying credentials")
            .count();
    }
    let hundred = t.elapsed();
    println!(
        "\n`unlock` (one derivation): {}; then 100 consecutive decrypt-domain: {} in all ({:.1} ms each), {} derivation(s) among them: {} in all with the unlock.",
        secs(unlock),
        secs(hundred),
        hundred.as_secs_f64() * 10.0,
        derivations,
        derivations + 1
    );
    let _ = cmd(BIN, d, &["lock"], &agent_env).output();
}
