//! Terminal I/O with pocket_protector's conventions: plain prompts on
//! stdout, secret prompts on stderr, one line of stdin per prompt when
//! stdin is not a terminal, and file-sourced text sanitized before display.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::Fail;

/// Replace C0/C1 control characters and bidirectional-text controls with
/// U+FFFD, so a hostile file cannot send escape sequences to a terminal or
/// make one name display as another.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if pprotect::model::is_display_unsafe(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Write to stdout, treating a closed pipe as success.
pub fn out(text: &str) -> Result<(), Fail> {
    let mut o = io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Fail::Quiet(0)),
        Err(e) => Err(Fail::msg(2, format!("cannot write to stdout: {e}"))),
    }
}

/// Write a line to stdout.
pub fn outln(text: &str) -> Result<(), Fail> {
    out(&format!("{text}\n"))
}

/// Write a line to stderr.
pub fn errln(text: &str) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{text}");
}

fn read_line(secret_tty: bool) -> Result<Zeroizing<String>, Fail> {
    if secret_tty {
        return match rpassword::read_password() {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(eof()),
            Err(e) => Err(Fail::msg(1, format!("cannot read from the terminal: {e}"))),
        };
    }
    let mut line = Zeroizing::new(String::new());
    match io::stdin().lock().read_line(&mut line) {
        Ok(0) => Err(eof()),
        Ok(_) => {
            if line.ends_with('\n') {
                line.pop();
                if line.ends_with('\r') {
                    line.pop();
                }
            }
            Ok(line)
        }
        Err(e) => Err(Fail::msg(1, format!("cannot read from stdin: {e}"))),
    }
}

/// End of input at a prompt: end the prompt's line, exit 1.
fn eof() -> Fail {
    let mut e = io::stderr().lock();
    let _ = e.write_all(b"\n");
    Fail::Quiet(1)
}

/// Ask on stderr, read a line. Prompts never go to stdout, which carries
/// only results (`pprotect decrypt-domain dev > out.json`, `eval
/// "$(pprotect decrypt-domain dev --output-format shell)"`), as git, ssh
/// and sops do; pocket_protector prompts on stdout.
pub fn prompt(label: &str) -> Result<String, Fail> {
    {
        let mut e = io::stderr().lock();
        let _ = e.write_all(label.as_bytes());
        let _ = e.flush();
    }
    Ok(read_line(false).map_err(|e| closed(e, label))?.to_string())
}

/// End of input at a prompt: say what was being asked (pocket_protector
/// exits 1 silently).
fn closed(e: Fail, label: &str) -> Fail {
    match e {
        Fail::Quiet(1) => Fail::msg(
            1,
            format!(
                "no answer to \"{}\": standard input is closed",
                label.trim_end().trim_end_matches(':')
            ),
        ),
        other => other,
    }
}

/// Ask on stderr, read a line without echo (from the terminal when stdin
/// is one), optionally asking again to confirm.
pub fn prompt_secret(label: &str, confirm: bool) -> Result<SecretString, Fail> {
    let tty = io::stdin().is_terminal();
    let ask = |l: &str| -> Result<Zeroizing<String>, Fail> {
        let mut e = io::stderr().lock();
        let _ = e.write_all(l.as_bytes());
        let _ = e.flush();
        drop(e);
        read_line(tty)
    };
    let first = ask(label).map_err(|e| closed(e, label))?;
    if confirm {
        let again_label = format!("Retype {}", label.to_lowercase());
        let again = ask(&again_label).map_err(|e| closed(e, &again_label))?;
        if *first != *again {
            return Err(Fail::msg(1, "Sorry, inputs did not match."));
        }
    }
    Ok(SecretString::from(first.to_string()))
}

/// Ask a yes/no question on stderr; anything starting with `y` is yes.
pub fn confirm(label: &str) -> Result<bool, Fail> {
    Ok(prompt(label)?.to_lowercase().starts_with('y'))
}

/// Whether stdout is a terminal (colors are used only then).
pub fn stdout_is_tty() -> bool {
    io::stdout().is_terminal()
}

/// Whether stderr is a terminal.
pub fn stderr_is_tty() -> bool {
    io::stderr().is_terminal()
}

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    io::stdin().is_terminal()
}

/// The terminal's width in columns: `COLUMNS`, else the terminal's, else 80.
pub fn width() -> usize {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
    {
        return w;
    }
    #[cfg(unix)]
    if let Ok(ws) = rustix::termios::tcgetwinsize(io::stdout())
        && ws.ws_col > 0
    {
        return ws.ws_col as usize;
    }
    80
}

/// How long work runs before progress shows, in milliseconds:
/// `PPROTECT_PROGRESS_AFTER_MS`, else 1000 (a spinner for the key
/// derivation: 150).
fn progress_after(default_ms: u64) -> Duration {
    Duration::from_millis(
        std::env::var("PPROTECT_PROGRESS_AFTER_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default_ms),
    )
}

/// The look shared by every progress display: cyan spinner, then text.
fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
        .progress_chars("=> ")
}

/// A spinner on stderr while the key derivation runs, shown only when
/// stderr is a terminal (after a short delay, so fast derivations print
/// nothing), gone when dropped.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Spinner {
    /// Start spinning with `message`.
    pub fn start(message: String) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        if !io::stderr().is_terminal() {
            return Spinner { stop, handle: None };
        }
        let s = stop.clone();
        let after = progress_after(150);
        let handle = thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < after {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
            let bar = indicatif::ProgressBar::new_spinner()
                .with_style(style("{spinner:.cyan} {msg}"))
                .with_message(message);
            bar.enable_steady_tick(Duration::from_millis(100));
            while !s.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(20));
            }
            bar.finish_and_clear();
        });
        Spinner {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The spinner shown while deriving a key of this type (none for raw keys).
pub fn kdf_spinner(key_type: pprotect::KeyType) -> Option<Spinner> {
    key_type
        .cost()
        .map(|(_, mem)| Spinner::start(format!("deriving key ... {} MiB", mem / (1024 * 1024))))
}

/// A progress bar for long work on stderr (`checked of total, rate`):
/// only on a terminal, only once the work has run a while (about a
/// second), gone when finished.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    start: Instant,
    after: Duration,
    enabled: bool,
    label: &'static str,
}

impl Progress {
    /// Progress of `label` (e.g. "commits"), shown only if `enabled` and
    /// stderr is a terminal.
    pub fn new(label: &'static str, enabled: bool) -> Progress {
        Progress {
            bar: None,
            start: Instant::now(),
            after: progress_after(1000),
            enabled: enabled && io::stderr().is_terminal(),
            label,
        }
    }

    /// `done` of `total` so far.
    pub fn update(&mut self, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.start.elapsed() >= self.after {
            let bar = indicatif::ProgressBar::new(total as u64).with_style(style(&format!(
                "{{spinner:.cyan}} checking {} {{pos}}/{{len}} [{{bar:30}}] {{msg}}",
                self.label
            )));
            bar.enable_steady_tick(Duration::from_millis(100));
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            let secs = self.start.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{:.0}/s", done as f64 / secs));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Python's `shlex.quote`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// Expose a secret for output. Kept in one place so every use is easy to
/// find.
pub fn expose(s: &SecretString) -> &str {
    s.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_like_shlex() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("val2"), "val2");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
    }

    #[test]
    fn sanitizes_controls() {
        assert_eq!(sanitize("a\x1b[31mb\u{85}"), "a\u{FFFD}[31mb\u{FFFD}");
    }
}
