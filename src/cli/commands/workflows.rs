//! Everyday workflows beyond pocket_protector: `edit` (a domain's secrets
//! in `$EDITOR`), `import` (many secrets from a dotenv or JSON file) and
//! `access` (who can read what).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pprotect::ProtectedFile;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use clap::Args;

use super::super::term::{self, errln, outln, sanitize};
use super::super::{Cli, Fail, creds};
use super::{Target, commit};

/// `edit`'s arguments.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The domain.
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: String,
    /// Apply without asking; a buffer that does not parse is an error.
    #[arg(long)]
    pub yes: bool,
}

/// `import`'s arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The domain.
    #[arg(id = "domain_arg", value_name = "DOMAIN", add = super::complete::domains())]
    pub domain: String,
    /// The file, or `-` for standard input.
    #[arg(value_name = "FILE")]
    pub source: String,
    /// dotenv or json (default: by extension, else dotenv).
    #[arg(long, add = super::complete::values(&["dotenv", "json"]))]
    pub format: Option<String>,
    /// Update secrets that exist (otherwise they are refused).
    #[arg(long)]
    pub update: bool,
    /// Print what would happen; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One change an edit or import makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Update,
    Remove,
}

impl Change {
    fn mark(self) -> char {
        match self {
            Change::Add => '+',
            Change::Update => '~',
            Change::Remove => '-',
        }
    }
}

// ---------------------------------------------------------------- edit

/// The temporary file an edit happens in: a private directory (0700) on a
/// memory-backed filesystem where there is one, the file 0600, overwritten
/// and removed on drop (errors and aborts included; Ctrl-C is handled by
/// [`Interrupts`]).
struct Buffer {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Buffer {
    fn create(domain: &str) -> Result<Buffer, Fail> {
        let base = [
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            Some(PathBuf::from("/dev/shm")),
        ]
        .into_iter()
        .flatten()
        .find(|d| d.is_dir() && tempfile::Builder::new().tempdir_in(d).is_ok())
        .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("pprotect-edit-")
            .tempdir_in(&base)
            .map_err(|e| {
                Fail::msg(
                    2,
                    format!(
                        "cannot create a private directory in {}: {e}",
                        base.display()
                    ),
                )
            })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Fail::msg(2, e.to_string()))?;
        }
        let safe: String = domain
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.path().join(format!("{safe}.yaml"));
        Ok(Buffer {
            dir: Some(dir),
            path,
        })
    }

    fn write(&self, text: &str) -> Result<(), Fail> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&self.path)
            .map_err(|e| Fail::msg(2, format!("cannot write the edit buffer: {e}")))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Fail::msg(2, format!("cannot write the edit buffer: {e}")))
    }

    fn read(&self) -> Result<Zeroizing<String>, Fail> {
        let bytes =
            Zeroizing::new(pprotect::store::read_bounded(&self.path).map_err(|e| {
                Fail::msg(1, format!("cannot read the edited file: {}", e.message()))
            })?);
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| Fail::msg(1, "the edited file is not UTF-8; nothing written"))
    }
}

/// Overwrite `path` with zeros, then remove it.
fn wipe(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path)
        && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path)
    {
        let zeros = vec![0u8; meta.len() as usize];
        let _ = f.write_all(&zeros);
        let _ = f.sync_all();
    }
    let _ = std::fs::remove_file(path);
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            // Editors leave swap and backup files beside it: wipe them all.
            if let Ok(entries) = std::fs::read_dir(dir.path()) {
                for e in entries.flatten() {
                    wipe(&e.path());
                }
            }
            let _ = dir.close();
        }
    }
}

/// Ctrl-C during an edit: while the editor runs it is the editor's to
/// handle (if it dies, the edit is aborted and the buffer wiped); at any
/// other time the buffer is wiped and pprotect exits 130.
struct Interrupts {
    editing: Arc<AtomicBool>,
    buffer_dir: SharedDir,
}

/// The buffer's directory, shared with the Ctrl-C handler.
type SharedDir = Arc<Mutex<Option<PathBuf>>>;

impl Interrupts {
    fn install() -> Interrupts {
        static STATE: std::sync::OnceLock<(Arc<AtomicBool>, SharedDir)> =
            std::sync::OnceLock::new();
        let (editing, dir) = STATE.get_or_init(|| {
            let editing = Arc::new(AtomicBool::new(false));
            let dir: SharedDir = Arc::new(Mutex::new(None));
            let (e, d) = (editing.clone(), dir.clone());
            let _ = ctrlc::set_handler(move || {
                if e.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(guard) = d.lock()
                    && let Some(dir) = guard.as_ref()
                {
                    if let Ok(entries) = std::fs::read_dir(dir) {
                        for entry in entries.flatten() {
                            wipe(&entry.path());
                        }
                    }
                    let _ = std::fs::remove_dir_all(dir);
                }
                errln("\ninterrupted; nothing written");
                std::process::exit(130);
            });
            (editing, dir)
        });
        Interrupts {
            editing: editing.clone(),
            buffer_dir: dir.clone(),
        }
    }
}

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi`.
fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string())
}

/// Options that keep a secret out of vi's files on disk, for the vi
/// family that takes them (vim, neovim, and `vi` when it is vim): no swap
/// file (`-n`), no viminfo/shada (`-i NONE`, where a deleted line would be
/// stored), no backup and no undo file. Other editors get nothing: see
/// the README for theirs.
fn vim_options(editor: &str) -> &'static str {
    const OPTS: &str = " -n -i NONE -c 'set nobackup nowritebackup noundofile noswapfile'";
    let Some(program) = editor.split_whitespace().next() else {
        return "";
    };
    let is_vim = |p: &Path| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with("vim") || n.starts_with("nvim") || n.starts_with("gvim") || n == "view"
        })
    };
    let path = Path::new(program);
    if is_vim(path) {
        return OPTS;
    }
    // `vi` (or another name) that is vim behind a link.
    let found = if program.contains('/') {
        Some(path.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
    };
    match found.and_then(|p| std::fs::canonicalize(p).ok()) {
        Some(real) if is_vim(&real) => OPTS,
        _ => "",
    }
}

/// A value in the edit buffer: single-quoted on one line, a literal block
/// scalar when it has line breaks, double-quoted with escapes when it has
/// other control characters.
fn render_value(v: &str) -> String {
    let controls = v
        .chars()
        .any(|c| pprotect::model::is_control(c) && c != '\n' && c != '\t');
    if controls || v.contains('\r') || (v.contains('\n') && v.contains('\t')) {
        let mut out = String::from("\"");
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if pprotect::model::is_control(c) => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        return out;
    }
    if v.contains('\n') {
        let body = v.trim_end_matches('\n');
        let trailing = v.len() - body.len();
        let chomp = match trailing {
            0 => "-",
            1 => "",
            _ => "+",
        };
        let indent = if body.starts_with(' ') || body.is_empty() {
            "2"
        } else {
            ""
        };
        let mut out = format!("|{indent}{chomp}\n");
        for line in body.split('\n') {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        for _ in 1..trailing {
            out.push('\n');
        }
        return out.trim_end_matches('\n').to_string();
    }
    format!("'{}'", v.replace('\'', "''"))
}

fn render_buffer(domain: &str, values: &BTreeMap<String, SecretString>) -> Zeroizing<String> {
    let mut text = Zeroizing::new(format!(
        "# Secrets of domain {domain}: one `name: value` per line. Save and quit to apply;\n\
         # add, change or delete lines. Quote values YAML would read otherwise (numbers, true).\n"
    ));
    if values.is_empty() {
        text.push_str("{}\n");
    }
    for (name, value) in values {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(&Zeroizing::new(render_value(value.expose_secret())));
        text.push('\n');
    }
    text
}

/// Parse the edited buffer: a mapping of valid, unique names to strings.
fn parse_buffer(text: &str) -> Result<BTreeMap<String, SecretString>, String> {
    let yaml = pprotect::codec::parse_str(text).map_err(|e| e.to_string())?;
    let entries = match yaml {
        pprotect::codec::Yaml::Map { entries, .. } => entries,
        other => {
            return Err(format!(
                "line {}: expected `name: value` lines, found {}",
                other.line(),
                other.kind()
            ));
        }
    };
    let mut out = BTreeMap::new();
    for (name, line, value) in entries {
        if !pprotect::model::is_valid_secret_name(&name) {
            return Err(format!(
                "line {line}: invalid secret name {}: names begin with a letter and hold only ASCII letters, digits, '-' and '_'",
                pprotect::ops::py_repr(&name)
            ));
        }
        let pprotect::codec::Yaml::Str { value, .. } = value else {
            return Err(format!(
                "line {line}: the value of {name} must be a string, found {}",
                value.kind()
            ));
        };
        out.insert(name, SecretString::from(value));
    }
    Ok(out)
}

fn changes(
    before: &BTreeMap<String, SecretString>,
    after: &BTreeMap<String, SecretString>,
) -> Vec<(Change, String)> {
    let mut out = Vec::new();
    for (name, v) in after {
        match before.get(name) {
            None => out.push((Change::Add, name.clone())),
            Some(old) if old.expose_secret() != v.expose_secret() => {
                out.push((Change::Update, name.clone()))
            }
            _ => {}
        }
    }
    for name in before.keys() {
        if !after.contains_key(name) {
            out.push((Change::Remove, name.clone()));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// `pprotect edit DOMAIN`.
pub fn edit(cli: &Cli, t: &Target, a: &EditArgs) -> Result<(), Fail> {
    let (domain, yes) = (a.domain.as_str(), a.yes);
    let f = t.load_for_write()?;
    f.domain(domain)?;
    let pending = creds::gather(cli, &f, &t.display)?;
    f.check_owner(domain, pending.user())?;
    let who = pending.verify(&f)?;
    let before = f.decrypt_domain(domain, &who)?;
    let sealed_before = f.domain(domain)?.secrets.clone();
    let interrupts = Interrupts::install();
    let buffer = Buffer::create(domain)?;
    if let Ok(mut d) = interrupts.buffer_dir.lock() {
        *d = buffer.path.parent().map(Path::to_path_buf);
    }
    buffer.write(&render_buffer(domain, &before))?;
    let interactive = !yes && term::stdin_is_tty() && term::stderr_is_tty();
    let after = loop {
        interrupts.editing.store(true, Ordering::SeqCst);
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{}{} \"$@\"", editor(), vim_options(&editor())))
            .arg("sh")
            .arg(&buffer.path)
            .status();
        interrupts.editing.store(false, Ordering::SeqCst);
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                // Killed by a signal, or its shell reporting SIGINT (130):
                // an interrupted edit exits as the shell would.
                let interrupted = matches!(s.code(), None | Some(130));
                return Err(Fail::msg(
                    if interrupted { 130 } else { 1 },
                    format!(
                        "the editor ({}) failed{}; nothing written",
                        editor(),
                        s.code()
                            .map(|c| format!(" with status {c}"))
                            .unwrap_or_default()
                    ),
                ));
            }
            Err(e) => {
                return Err(Fail::msg(
                    1,
                    format!("cannot run the editor ({}): {e}; nothing written", editor()),
                ));
            }
        }
        let text = buffer.read()?;
        match parse_buffer(&text) {
            Ok(after) => break after,
            Err(problem) if interactive => {
                errln(&format!("error: {}", sanitize(&problem)));
                let answer = term::prompt("Re-open the editor? [Y/n] ")?;
                if answer.trim().to_lowercase().starts_with('n') {
                    return Err(Fail::msg(1, "edit abandoned; nothing written"));
                }
            }
            Err(problem) => {
                return Err(Fail::msg(
                    1,
                    format!("{}; nothing written", sanitize(&problem)),
                ));
            }
        }
    };
    let list = changes(&before, &after);
    if list.is_empty() {
        errln("No changes.");
        return Ok(());
    }
    for (c, name) in &list {
        outln(&format!("{} {}", c.mark(), sanitize(name)))?;
    }
    if !yes && !term::confirm("Apply? [y/N] ")? {
        outln("Aborting...")?;
        return Ok(());
    }
    commit(cli, t, Some(&who), |file| {
        let d = file.domain(domain)?;
        // Concurrent writers: an added secret must still be new, and an
        // updated or removed one unchanged since it was decrypted.
        for (c, name) in &list {
            let now = d.secrets.get(name);
            let ok = match c {
                Change::Add => now.is_none(),
                _ => now.is_some() && now == sealed_before.get(name),
            };
            if !ok {
                return Err(pprotect::Error::refused(format!(
                    "secret {name} of domain {domain} changed while it was being edited; nothing written, run edit again"
                )));
            }
        }
        for (c, name) in &list {
            match c {
                Change::Add => file.add_secret(domain, name, &after[name])?,
                Change::Update => file.update_secret(domain, name, &after[name])?,
                Change::Remove => file.rm_secret(domain, name)?,
            }
        }
        Ok(())
    })?;
    drop(buffer);
    Ok(())
}

// -------------------------------------------------------------- import

/// `pprotect import DOMAIN FILE|-`.
pub fn import(cli: &Cli, t: &Target, a: &ImportArgs) -> Result<(), Fail> {
    let (domain, source, format) = (a.domain.as_str(), a.source.as_str(), a.format.as_deref());
    let (update, dry_run) = (a.update, a.dry_run);
    let f = t.load_for_write()?;
    f.domain(domain)?;
    let format = pprotect::import::Format::choose(format, source)?;
    let text = Zeroizing::new(if source == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| Fail::msg(2, format!("cannot read standard input: {e}")))?;
        s
    } else {
        let bytes = pprotect::store::read_bounded(Path::new(source))?;
        String::from_utf8(bytes).map_err(|_| Fail::msg(1, format!("{source}: not UTF-8")))?
    });
    let shown = if source == "-" { "stdin" } else { source };
    let items = pprotect::import::parse(&text, format).map_err(|e| e.context(shown))?;
    let plan = |file: &ProtectedFile| -> Result<Vec<(Change, usize)>, pprotect::Error> {
        let d = file.domain(domain)?;
        items
            .iter()
            .enumerate()
            .map(|(i, it)| match (d.secrets.contains_key(&it.name), update) {
                (false, _) => Ok((Change::Add, i)),
                (true, true) => Ok((Change::Update, i)),
                (true, false) => Err(pprotect::Error::refused(format!(
                    "{shown}: line {}: secret {} already exists in domain {domain}; use --update to replace it",
                    it.line, it.name
                ))),
            })
            .collect()
    };
    let steps = plan(&f)?;
    if dry_run {
        for (c, i) in &steps {
            let what = if *c == Change::Add { "add" } else { "update" };
            outln(&format!(
                "{} {} ({what})",
                c.mark(),
                sanitize(&items[*i].name)
            ))?;
        }
        errln(&format!(
            "dry run: {} secret(s), nothing written",
            steps.len()
        ));
        return Ok(());
    }
    commit(cli, t, None, |file| {
        for (c, i) in plan(file)? {
            let it = &items[i];
            match c {
                Change::Add => file.add_secret(domain, &it.name, &it.value)?,
                _ => file.update_secret(domain, &it.name, &it.value)?,
            }
        }
        Ok(())
    })
}

// -------------------------------------------------------------- access

fn key_type_name(kt: pprotect::KeyType) -> &'static str {
    match kt {
        pprotect::KeyType::Hard => "hard",
        pprotect::KeyType::Raw => "raw",
        k if k == pprotect::KeyType::FAST => "fast",
        _ => "costed",
    }
}

/// Cut `s` to `w` columns, ending in `…` when cut.
fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return format!("{s}{}", " ".repeat(w - n));
    }
    if w == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push('…');
    out
}

/// `pprotect access`: the custodian x domain matrix.
pub fn access(cli: &Cli, t: &Target) -> Result<(), Fail> {
    let f = t.load()?;
    let custodians: Vec<&String> = f.custodians.keys().collect();
    let domains: Vec<&String> = f.domains.keys().collect();
    if cli.json {
        /// A custodian, for `access --json`.
        #[derive(serde::Serialize)]
        struct CustodianJson<'a> {
            name: &'a str,
            key_type: &'a str,
            domains: Vec<&'a str>,
        }
        /// A domain, for `access --json`.
        #[derive(serde::Serialize)]
        struct DomainJson<'a> {
            name: &'a str,
            owners: Vec<&'a str>,
        }
        /// The whole matrix.
        #[derive(serde::Serialize)]
        struct AccessJson<'a> {
            custodians: Vec<CustodianJson<'a>>,
            domains: Vec<DomainJson<'a>>,
        }
        let v = AccessJson {
            custodians: custodians
                .iter()
                .map(|c| CustodianJson {
                    name: c,
                    key_type: key_type_name(f.custodians[*c].key_type),
                    domains: f.owned_domains(c),
                })
                .collect(),
            domains: domains
                .iter()
                .map(|d| DomainJson {
                    name: d,
                    owners: f.domains[*d].owners.keys().map(String::as_str).collect(),
                })
                .collect(),
        };
        return outln(&pprotect::json::to_string(&v));
    }
    let width = term::width();
    let names: Vec<String> = custodians.iter().map(|c| sanitize(c)).collect();
    let dnames: Vec<String> = domains.iter().map(|d| sanitize(d)).collect();
    let total_w = 5;
    let key_w = 6;
    // Domain columns at their names' width (at least 3), then everything
    // shrinks to the terminal: domain columns first, then the names.
    let mut dw: Vec<usize> = dnames.iter().map(|d| d.chars().count().max(3)).collect();
    let mut name_w = names
        .iter()
        .map(|n| n.chars().count())
        .chain([9])
        .max()
        .unwrap_or(9);
    let used = |name_w: usize, dw: &[usize]| {
        name_w + key_w + dw.iter().map(|w| w + 2).sum::<usize>() + total_w + 2
    };
    while used(name_w, &dw) > width {
        if let Some((i, _)) = dw
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > 2)
            .max_by_key(|(_, w)| **w)
        {
            dw[i] -= 1;
        } else if name_w > 4 {
            name_w -= 1;
        } else {
            break;
        }
    }
    let mut lines = Vec::new();
    let mut header = format!("{} {}", fit("custodian", name_w), fit("key", key_w - 1));
    for (d, w) in dnames.iter().zip(&dw) {
        header.push_str("  ");
        header.push_str(&fit(d, *w));
    }
    header.push_str(&format!("  {:>total_w$}", "total"));
    lines.push(header.trim_end().to_string());
    let mut col_totals = vec![0usize; domains.len()];
    for (c, name) in custodians.iter().zip(&names) {
        let mut row = format!(
            "{} {}",
            fit(name, name_w),
            fit(key_type_name(f.custodians[*c].key_type), key_w - 1)
        );
        let mut n = 0;
        for (i, (d, w)) in domains.iter().zip(&dw).enumerate() {
            let owns = f.domains[*d].owners.contains_key(*c);
            if owns {
                n += 1;
                col_totals[i] += 1;
            }
            row.push_str("  ");
            row.push_str(&fit(if owns { "x" } else { "." }, *w));
        }
        row.push_str(&format!("  {n:>total_w$}"));
        lines.push(row);
    }
    let mut foot = format!("{} {}", fit("total", name_w), fit("", key_w - 1));
    for (t, w) in col_totals.iter().zip(&dw) {
        foot.push_str("  ");
        foot.push_str(&fit(&t.to_string(), *w));
    }
    foot.push_str(&format!("  {:>total_w$}", col_totals.iter().sum::<usize>()));
    lines.push(foot);
    outln(&lines.join("\n"))
}
