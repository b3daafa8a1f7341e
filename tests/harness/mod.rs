//! Shared helpers: paths to fixtures, and a sealed environment for running
//! the real `pprotect` binary (private HOME, no global or system git
//! config, fixed locale, cleared environment).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository's fixtures folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The Python tool's fixtures.
pub fn py_fixtures() -> PathBuf {
    fixtures().join("pocket_protector-26.4.3")
}

/// The built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pprotect")
}

/// What a run printed and returned.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }
    #[track_caller]
    pub fn code(self, code: i32) -> Out {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        self
    }
}

/// A temporary working directory with a sealed environment.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        // A private runtime directory: the agent's socket of this test
        // only (never the user's own agent).
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let vars = vec![
            ("HOME".into(), dir.path().join("home").display().to_string()),
            // The built binary first, so git finds `pprotect` for hooks,
            // the merge driver and textconv.
            (
                "PATH".into(),
                format!(
                    "{}:{}",
                    Path::new(bin()).parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
            ("LANG".into(), "C.UTF-8".into()),
            ("XDG_RUNTIME_DIR".into(), run.display().to_string()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_AUTHOR_NAME".into(), "Test".into()),
            ("GIT_AUTHOR_EMAIL".into(), "test@example.com".into()),
            ("GIT_COMMITTER_NAME".into(), "Test".into()),
            ("GIT_COMMITTER_EMAIL".into(), "test@example.com".into()),
        ];
        Env { dir, vars }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("protected.yaml")
    }

    pub fn read(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap()
    }

    /// Set a variable for every later run.
    pub fn set(&mut self, k: &str, v: &str) {
        self.vars.retain(|(key, _)| key != k);
        self.vars.push((k.into(), v.into()));
    }

    pub fn unset(&mut self, k: &str) {
        self.vars.retain(|(key, _)| key != k);
    }

    /// Act as `user` with `pass` through the environment.
    pub fn login(&mut self, user: &str, pass: &str) {
        self.set("PPROTECT_USER", user);
        self.set("PPROTECT_PASSPHRASE", pass);
    }

    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear().current_dir(self.path());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Run `pprotect ARGS` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Out {
        self.run_with(bin(), args, stdin, &[])
    }

    /// Run a program with extra environment variables.
    pub fn run_with(
        &self,
        program: &str,
        args: &[&str],
        stdin: &str,
        extra: &[(&str, &str)],
    ) -> Out {
        let mut c = self.command(program);
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.as_bytes().to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let o = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Run git in the directory.
    pub fn git(&self, args: &[&str]) -> Out {
        self.run_with("git", args, "", &[])
    }

    /// `init` with a fast custodian `user`/`pass`, then log in as them.
    pub fn init_fast(&mut self, user: &str, pass: &str) {
        self.run(
            &["init", "--key-type", "fast"],
            &format!("{user}\n{pass}\n{pass}\n"),
        )
        .ok();
        self.login(user, pass);
    }
}

/// Replace audit timestamps with `TS`.
pub fn redact_ts(s: &str) -> String {
    let re = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").unwrap();
    re.replace_all(s, "TS").into_owned()
}

impl Env {
    /// A git repository in the directory, with one commit of everything
    /// present (if anything).
    pub fn git_init(&self) {
        self.git(&["init", "-q", "-b", "main"]).ok();
        self.git(&["config", "user.name", "Test"]).ok();
        self.git(&["config", "user.email", "test@example.com"]).ok();
        self.git(&["config", "commit.gpgsign", "false"]).ok();
    }

    /// `git add -A && git commit -m MSG`.
    pub fn commit_all(&self, msg: &str) {
        self.git(&["add", "-A"]).ok();
        self.git(&["commit", "-q", "--no-verify", "-m", msg]).ok();
    }

    /// Write a file relative to the directory.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }
}

/// Whether `s` contains a base64 run as long as a stored key or sealed
/// value (at least 44 characters, with upper case: hex hashes are not).
pub fn has_blob(s: &str) -> bool {
    regex::Regex::new(r"[A-Za-z0-9+/]{44,}={0,2}")
        .unwrap()
        .find_iter(s)
        .any(|m| m.as_str().chars().any(|c| c.is_ascii_uppercase()))
}

/// The Python tool's virtualenv (`PPROTECT_PYTHON_VENV`, or `~/ppref`).
/// Without it, tests that need it print a notice and pass, except under
/// CI, where they fail: CI must run them.
pub fn python_venv() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("PPROTECT_PYTHON_VENV").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("ppref")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|v| v.join("bin/pprotect").exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install pocket-protector==26.4.3 and set PPROTECT_PYTHON_VENV"
        );
        eprintln!("notice: Python pocket_protector not installed; skipping comparison");
    }
    found
}

/// The Python tool's virtualenv, for a test that needs it (marked
/// `#[ignore = "needs pocket_protector"]`, run by `--include-ignored`):
/// fails, saying how to install it, when it is missing.
pub fn require_python() -> PathBuf {
    python_venv().unwrap_or_else(|| {
        panic!(
            "needs pocket_protector 26.4.3: python3 -m venv ~/ppref && ~/ppref/bin/pip install \
             pocket-protector==26.4.3 pre-commit (or set PPROTECT_PYTHON_VENV); .ci/run installs it"
        )
    })
}

/// Python's re-serialization of a protected file (`None` without the
/// Python tool).
pub fn python_reserialize(path: &Path) -> Option<String> {
    let venv = python_venv()?;
    let o = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sys\nfrom pocket_protector.file_keys import KeyFile\nsys.stdout.buffer.write(KeyFile.from_file(sys.argv[1]).get_contents().encode('utf8'))",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(String::from_utf8(o.stdout).unwrap())
}
