//! check-audit-log against histories built with the CLI, clean and
//! tampered.

use crate::harness::{Env, bin};

const A: &str = "a@example.com";
const B: &str = "b@example.com";

fn head(env: &Env) -> String {
    env.git(&["rev-parse", "--short=7", "HEAD"])
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// Run check-audit-log with `args`: clean, `commits` commits checked.
fn checks_clean(env: &Env, args: &[&str], commits: usize) {
    let o = env.run(args, "").ok();
    let total = format!("0 finding(s) in {commits} commit(s) changing protected.yaml\n");
    assert!(o.stdout.ends_with(&total), "{}", o.stdout);
}

/// A clean history: branches merged through the driver, a rotation, a
/// passphrase change, an owner change and a truncation.
fn clean_history() -> Env {
    let mut env = Env::new();
    env.git_init();
    env.init_fast(A, "pw-a");
    env.run(&["setup-git"], "").ok();
    env.commit_all("init");
    env.run(
        &["add-key-custodian", "--key-type", "fast"],
        &format!("{B}\npw-b\npw-b\n"),
    )
    .ok();
    env.run(&["add-domain"], "dev\n").ok();
    env.run(&["add-secret"], "dev\nk1\nv1\n").ok();
    env.commit_all("dev domain");
    env.git(&["checkout", "-q", "-b", "feature"]).ok();
    env.run(&["add-secret"], "dev\nfeature-key\nf\n").ok();
    env.run(&["add-owner"], &format!("dev\n{B}\n")).ok();
    env.commit_all("feature");
    env.git(&["checkout", "-q", "main"]).ok();
    env.run(&["add-domain"], "prod\n").ok();
    env.run(&["add-secret"], "prod\np1\npv\n").ok();
    env.commit_all("prod");
    let o = env.run_with(
        "git",
        &["merge", "--no-edit", "-q", "feature"],
        "",
        &[("PPROTECT_USER", "")],
    );
    assert_eq!(o.code, 0, "{o:#?}");
    env.run(&["rotate-domain-keys"], "dev\n").ok();
    env.commit_all("rotate dev");
    env.run(
        &["set-key-custodian-passphrase", "--key-type", "fast"],
        &format!("{B}\npw-b\npw-b2\npw-b2\n"),
    )
    .ok();
    env.commit_all("b passphrase");
    env.run(&["update-secret"], "dev\nk1\nv2\n").ok();
    env.run(&["rm-secret"], "prod\np1\n").ok();
    env.commit_all("update and remove");
    env.run(&["truncate-audit-log", "4"], "").ok();
    env.commit_all("truncate");
    env
}

#[test]
fn a_clean_history_checks_clean() {
    let env = clean_history();
    checks_clean(&env, &["check-audit-log"], 9);
    let o = env.run(&["check-audit-log", "--json"], "").ok();
    assert_eq!(o.stdout, "[]\n");
}

fn tamper(env: &Env, f: impl FnOnce(String) -> String, msg: &str) -> String {
    let text = env.read();
    std::fs::write(env.file(), f(text)).unwrap();
    env.commit_all(msg);
    head(env)
}

#[test]
fn tampering_is_caught_with_commit_and_kind() {
    let env = clean_history();
    env.run(&["add-domain"], "stage\n").ok();
    env.commit_all("stage");
    // 1. A secret copied in by hand, with no entry.
    let c1 = tamper(
        &env,
        |t| {
            let line = t
                .lines()
                .find(|l| l.starts_with("  secret-k1:"))
                .unwrap()
                .to_string();
            let mut cont = String::new();
            if line.ends_with(": ") {
                let next = t.lines().skip_while(|l| *l != line).nth(1).unwrap();
                cont = format!("{next}\n");
            }
            let copied = format!("{}\n{cont}", line.replace("secret-k1", "secret-copied"));
            t.replacen("stage:\n", &format!("stage:\n{copied}"), 1)
        },
        "hand edit",
    );
    // 2. An entry deleted.
    let c2 = tamper(
        &env,
        |t| {
            let victim = t
                .lines()
                .find(|l| l.contains("-- created domain stage"))
                .unwrap()
                .to_string();
            t.replace(&format!("{victim}\n"), "")
        },
        "delete entry",
    );
    // 3. A forged entry with no change.
    env.run(&["add-secret"], "dev\nreal\nr\n").ok();
    let c3 = tamper(
        &env,
        |t| {
            let ts = t.lines().last().unwrap()[2..22].to_string();
            format!("{t}- {ts} -- added secret ghost in dev\n")
        },
        "forge",
    );
    // 4. A back-dated entry (a real change, stamped in the past).
    env.run(&["add-secret"], "dev\nold\no\n").ok();
    let c4 = tamper(
        &env,
        |t| {
            let last = t.lines().last().unwrap().to_string();
            t.replace(
                &last,
                &format!(
                    "- 2020-01-01T00:00:00Z -- {}",
                    last.split(" -- ").nth(1).unwrap()
                ),
            )
        },
        "backdate",
    );
    // 5. A future-dated entry.
    env.run(&["add-secret"], "dev\nnew\nn\n").ok();
    let c5 = tamper(
        &env,
        |t| {
            let last = t.lines().last().unwrap().to_string();
            t.replace(
                &last,
                &format!(
                    "- 2099-01-01T00:00:00Z -- {}",
                    last.split(" -- ").nth(1).unwrap()
                ),
            )
        },
        "future",
    );
    let o = env.run(&["check-audit-log"], "").code(1);
    let out = o.stdout;
    for (c, summary, needle) in [
        (
            &c1,
            "hand edit",
            "secret copied of domain stage changed with no audit entry",
        ),
        // Copied from dev, it is sealed to dev's key, not stage's.
        (
            &c1,
            "hand edit",
            "secret copied of domain stage is sealed to the key of domain dev (from commit ",
        ),
        (&c2, "delete entry", "audit entry removed or altered: "),
        (&c3, "forge", "audit entry with no matching change: "),
        (
            &c4,
            "backdate",
            "audit entry stamped before entries already in the log: 2020-01-01T00:00:00Z -- added secret old in dev",
        ),
        (
            &c5,
            "future",
            "audit entry stamped after its commit: 2099-01-01T00:00:00Z -- added secret new in dev",
        ),
    ] {
        let line = format!("{c} {summary}: {needle}");
        assert!(out.contains(&line), "missing {line:?} in\n{out}");
    }
    assert!(
        out.lines().last().unwrap().starts_with("6 finding(s) in "),
        "{out}"
    );
    // The JSON form has the same findings with their kinds.
    let o = env.run(&["check-audit-log", "--json"], "").code(1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let kinds: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["commit"].as_str().unwrap()[..7].to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (c, k) in [
        (&c1, "unlogged-change"),
        (&c1, "stale-key"),
        (&c2, "log-rewritten"),
        (&c3, "unbacked-entry"),
        (&c4, "back-dated"),
        (&c5, "future-dated"),
    ] {
        assert!(kinds.contains(&(c.clone(), k.to_string())), "{kinds:?}");
    }
    let copied = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "unlogged-change")
        .unwrap();
    assert_eq!(
        (copied["domain"].as_str(), copied["secret"].as_str()),
        (Some("stage"), Some("copied"))
    );
    // A range limits the check.
    let o = env
        .run(&["check-audit-log", "--range", "HEAD~1..HEAD"], "")
        .code(1);
    assert!(
        o.stdout.contains(&c5) && !o.stdout.contains(&c4),
        "{}",
        o.stdout
    );
}

#[test]
fn invalid_versions_are_reported() {
    let env = clean_history();
    let c = tamper(
        &env,
        |t| {
            let re = regex::Regex::new(r"(?m)^  secret-k1: .*$").unwrap();
            re.replace(&t, "  secret-k1: plaintext-password")
                .into_owned()
        },
        "plaintext",
    );
    let o = env.run(&["check-audit-log"], "").code(1);
    assert!(
        o.stdout.contains(&format!(
            "{c} plaintext: protected.yaml is not a valid protected file: line "
        )),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("plaintext-password"));
}

#[test]
fn cannot_check_outside_history() {
    let env = Env::new();
    env.run(&["check-audit-log"], "").code(2);
    env.git_init();
    env.write("x", "x");
    env.commit_all("x");
    let o = env.run_with(bin(), &["check-audit-log"], "", &[]).code(2);
    assert!(
        o.stderr.contains("protected.yaml: was never committed"),
        "{}",
        o.stderr
    );
}

/// Re-checks are incremental: history verified clean before is skipped
/// (recorded in the git directory), a version change or `--no-cache`
/// checks it all again, and a commit the cache never saw verified is
/// always checked.
#[test]
fn rechecks_are_incremental_and_never_trust_unverified_commits() {
    let env = clean_history();
    checks_clean(&env, &["check-audit-log"], 9);
    env.run(&["add-secret"], "dev\nnew-one\nv\n").ok();
    env.commit_all("new one");
    let o = env.run(&["check-audit-log"], "").ok();
    assert!(
        o.stdout.contains("0 finding(s) in 1 commit(s) changing protected.yaml (earlier history verified clean before"),
        "{}",
        o.stdout
    );
    checks_clean(&env, &["check-audit-log", "--no-cache"], 10);
    // Another pprotect version (or rule set) does not reuse the record.
    // The record is in the user's cache directory, one file per
    // repository.
    let dir = env.path().join("home/.cache/pprotect/check-audit-log");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let cache = files[0].as_ref().unwrap().path();
    assert!(!env.path().join(".git/pprotect").exists());
    let text = std::fs::read_to_string(&cache).unwrap();
    std::fs::write(&cache, text.replace(env!("CARGO_PKG_VERSION"), "0.0.0")).unwrap();
    checks_clean(&env, &["check-audit-log"], 10);
    // A rewritten history: its new commits were never verified, and a
    // hand edit among them is reported, run after run.
    env.git(&["reset", "-q", "--hard", "HEAD~2"]).ok();
    let c = tamper(
        &env,
        |t| t.replace("secret-k1:", "secret-k1-copy: AAAA\n  secret-k1:"),
        "rewritten",
    );
    for _ in 0..2 {
        let o = env.run(&["check-audit-log"], "").code(1);
        assert!(o.stdout.contains(&c), "{}", o.stdout);
    }
}

/// The history reader (which keeps the objects delta chains pass through,
/// as git's delta base cache does) reads every version exactly as gix's
/// ordinary read does: packs written by fast-import and by repack, loose
/// objects, any read order, and a cache small enough to evict.
#[test]
fn version_reader_reads_what_gix_reads() {
    use std::io::Write;
    let env = Env::new();
    env.git_init();
    let mut stream = Vec::new();
    let mut text: Vec<String> = (0..400)
        .map(|i| format!("line {i} {}\n", "x".repeat(i % 40)))
        .collect();
    for v in 0..150usize {
        text[(v * 37) % 400] = format!("changed in version {v}\n");
        if v % 7 == 0 {
            text.push(format!("appended {v}\n"));
        }
        let body: String = text.concat();
        write!(
            stream,
            "blob\nmark :{}\ndata {}\n{body}\n",
            2 * v + 1,
            body.len()
        )
        .unwrap();
        let msg = format!("v{v}");
        write!(
            stream,
            "commit refs/heads/main\nmark :{}\ncommitter T <t@example.com> 1700000000 +0000\ndata {}\n{msg}\n",
            2 * v + 2,
            msg.len()
        )
        .unwrap();
        if v > 0 {
            writeln!(stream, "from :{}", 2 * v).unwrap();
        }
        writeln!(stream, "M 100644 :{} f.yaml\n", 2 * v + 1).unwrap();
    }
    let mut child = env
        .command("git")
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    env.git(&["checkout", "-q", "main"]).ok();
    // Some loose versions on top.
    for v in 0..3 {
        env.write("f.yaml", &format!("loose {v}\n{}", text.concat()));
        env.commit_all(&format!("loose {v}"));
    }
    let check = |what: &str, loose: usize| {
        let repo = gix::open(env.path()).unwrap();
        let head = repo.head_id().unwrap();
        let mut ids = Vec::new();
        for info in repo.rev_walk([head]).all().unwrap() {
            let c = repo.find_commit(info.unwrap().id).unwrap();
            let e = c
                .tree()
                .unwrap()
                .lookup_entry_by_path("f.yaml")
                .unwrap()
                .unwrap();
            ids.push(e.object_id());
        }
        assert_eq!(ids.len(), 153);
        let forward = ids.clone();
        let mut backward = ids.clone();
        backward.reverse();
        let mut mixed: Vec<_> = (0..ids.len()).map(|i| ids[(i * 61) % ids.len()]).collect();
        mixed.dedup();
        for (order, ids) in [
            ("newest first", forward),
            ("oldest first", backward),
            ("mixed", mixed),
        ] {
            for budget in [64 << 10, 64 << 20] {
                let mut reader = pprotect::git::packread::VersionReader::new(
                    gix::open(env.path()).unwrap(),
                    budget,
                );
                for id in &ids {
                    let want = repo.find_blob(*id).unwrap().data.clone();
                    assert_eq!(
                        reader.read(*id).unwrap(),
                        want,
                        "{what}, {order}, budget {budget}"
                    );
                }
                // Only loose objects take gix's ordinary read.
                assert_eq!(reader.fallbacks(), loose, "{what}, {order}");
            }
        }
    };
    check("fast-import pack", 3);
    env.git(&["repack", "-adfq"]).ok();
    check("repack -adf", 0);
    env.git(&["repack", "-adfq", "--depth=250", "--window=50"])
        .ok();
    check("deep repack", 0);
}

/// A repository without commits: nothing to check, said plainly.
#[test]
fn no_commits_yet() {
    let env = Env::new();
    env.git_init();
    let o = env.run(&["check-audit-log"], "").code(2);
    assert!(
        o.stderr.contains("there are no commits yet"),
        "{}",
        o.stderr
    );
}
