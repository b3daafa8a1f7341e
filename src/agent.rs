//! The agent: unlock once, then let commands use a custodian's key without
//! deriving it again.
//!
//! `pprotect unlock` derives a custodian key (the one Argon2id derivation)
//! and hands it to a per-user agent process, started on demand, which
//! keeps it for an absolute time to live. Commands then ask the agent to
//! open an owner entry sealed to that custodian (the step gpg-agent
//! performs for a session key); the agent returns the domain's private key
//! for that one command. The custodian key never leaves the agent.
//!
//! The threat model (also in the README):
//! - The socket lives in a directory only its owner can enter (mode 0700,
//!   under `$XDG_RUNTIME_DIR`, else a private directory in the temporary
//!   directory); both ends refuse a directory that is not private to them.
//! - Both ends check the other's uid (`SO_PEERCRED` on Linux,
//!   `getpeereid` on the BSDs and macOS) and refuse any other user.
//! - Keys are held in memory locked against swapping (`mlock`) and
//!   zeroized when they expire, on `lock`, and before the agent exits. The
//!   agent is not dumpable (Linux `PR_SET_DUMPABLE`, which also stops
//!   another process of the same user from attaching a debugger) and has
//!   core dumps off. It never holds a passphrase.
//! - A key is answered only for the custodian name *and* public key it
//!   was unlocked with: a file whose custodian key differs gets nothing.
//!   The agent answers only 32-byte plaintexts (domain keys).
//! - The agent exits when its last key expires, on `lock`, and when its
//!   socket is removed (the runtime directory goes at logout); it holds
//!   nothing on disk, so nothing survives a reboot.
//!
//! The wire format is private to this version of pprotect: a magic and
//! version, an operation byte, and length-prefixed fields.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{KEY_SIZE, SecretKey};
use crate::error::{Error, Result};
use crate::model::ProtectedFile;
use crate::ops::Unlocked;

/// How long an unlocked key is kept when `--ttl` is not given.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// The longest time to live `unlock` accepts.
pub const MAX_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// How many custodian keys one agent holds at most.
const SLOTS: usize = 64;

/// How long a new agent waits for its first key before it exits.
const FIRST_KEY_GRACE: Duration = Duration::from_secs(20);

/// The longest request or response accepted.
const MAX_MESSAGE: usize = 1 << 20;

const MAGIC: &[u8; 4] = b"PPA1";
const OP_ADD: u8 = 1;
const OP_OPEN: u8 = 2;
const OP_HOLDS: u8 = 3;
const OP_STATUS: u8 = 4;
const OP_LOCK: u8 = 5;
const OK: u8 = 0;
const REFUSED: u8 = 1;

/// The directory the agent's socket lives in: `$XDG_RUNTIME_DIR/pprotect`,
/// else `pprotect-agent-<uid>` in the temporary directory.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d.join("pprotect"),
        _ => std::env::temp_dir().join(format!(
            "pprotect-agent-{}",
            rustix::process::getuid().as_raw()
        )),
    }
}

/// The agent's socket: `agent.sock` in [`socket_dir`].
pub fn socket_path() -> PathBuf {
    socket_dir().join("agent.sock")
}

fn agent_err(msg: impl Into<String>) -> Error {
    Error::agent(msg)
}

/// Check that `dir` is a real directory (not a link) owned by this user
/// and closed to everyone else.
fn check_private_dir(dir: &Path) -> Result<()> {
    let md = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::io("cannot read the agent's directory", dir, &e))?;
    let me = rustix::process::getuid().as_raw();
    if !md.file_type().is_dir() || md.uid() != me || md.mode() & 0o077 != 0 {
        return Err(agent_err(format!(
            "the agent's directory {} is not private to you (owner uid {}, mode {:o}): remove it, or set XDG_RUNTIME_DIR to a private directory",
            dir.display(),
            md.uid(),
            md.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The uid of the process at the other end of `s`.
fn peer_uid(s: &UnixStream) -> std::io::Result<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::net::sockopt::socket_peercred(s)
            .map(|c| c.uid.as_raw())
            .map_err(Into::into)
    }
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))]
    {
        nix::unistd::getpeereid(s)
            .map(|(u, _)| u.as_raw())
            .map_err(std::io::Error::from)
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    )))]
    {
        let _ = s;
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "peer credentials are not supported on this system",
        ))
    }
}

// --- Wire format -------------------------------------------------------

/// A message under construction: fields are length-prefixed. Zeroized on
/// drop, as it may hold a key.
struct Message(Zeroizing<Vec<u8>>);

impl Message {
    fn request(op: u8) -> Message {
        let mut v = Zeroizing::new(Vec::with_capacity(128));
        v.extend_from_slice(MAGIC);
        v.push(op);
        Message(v)
    }

    fn response(status: u8) -> Message {
        Message(Zeroizing::new(vec![status]))
    }

    fn field(mut self, bytes: &[u8]) -> Message {
        self.0
            .extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(0).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    fn number(self, n: u64) -> Message {
        self.field(&n.to_be_bytes())
    }
}

/// Fields read back from a message.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let field = self.0.get(4..4 + len)?;
        self.0 = &self.0[4 + len..];
        Some(field)
    }

    fn key(&mut self) -> Option<[u8; KEY_SIZE]> {
        self.next()?.try_into().ok()
    }

    fn number(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.next()?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.next()?).ok()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn read_message(s: &mut UnixStream) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    s.take(MAX_MESSAGE as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "message too long",
        ));
    }
    Ok(buf)
}

// --- Client ------------------------------------------------------------

/// What the agent holds, for `pprotect agent status`: names and time
/// left, never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The custodian's name.
    pub name: String,
    /// Time left before the key is wiped.
    pub remaining: Duration,
}

/// A connection point to the agent (one connection per request).
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// The agent at [`socket_path`].
    pub fn new() -> Client {
        Client {
            path: socket_path(),
        }
    }

    /// The socket this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Send one request; `Ok(None)` when no agent is running.
    fn call(&self, req: &Message) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(dir) = self.path.parent() else {
            return Ok(None);
        };
        match std::fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read the agent's socket", &self.path, &e)),
            Ok(_) => {}
        }
        check_private_dir(dir)?;
        let mut s = match UnixStream::connect(&self.path) {
            Ok(s) => s,
            // A socket left by an agent that is gone.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::io("cannot connect to the agent at", &self.path, &e)),
        };
        let me = rustix::process::getuid().as_raw();
        match peer_uid(&s) {
            Ok(uid) if uid == me => {}
            Ok(uid) => {
                return Err(agent_err(format!(
                    "the agent at {} runs as uid {uid}, not as you: refusing it",
                    self.path.display()
                )));
            }
            Err(e) => return Err(Error::io("cannot check the agent at", &self.path, &e)),
        }
        let io = |e: std::io::Error| Error::io("cannot talk to the agent at", &self.path, &e);
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io)?;
        s.set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(io)?;
        s.write_all(&req.0).map_err(io)?;
        s.shutdown(std::net::Shutdown::Write).map_err(io)?;
        let resp = read_message(&mut s).map_err(io)?;
        Ok(Some(resp))
    }

    /// Like `call`, for requests that need an agent; the answer's fields
    /// when it said yes, its reason when it refused.
    fn ask(&self, req: &Message) -> Result<std::result::Result<Zeroizing<Vec<u8>>, String>> {
        let Some(resp) = self.call(req)? else {
            return Err(agent_err(
                "no agent is running: run `pprotect unlock` first",
            ));
        };
        match resp.first() {
            Some(&OK) => Ok(Ok(Zeroizing::new(resp[1..].to_vec()))),
            Some(&REFUSED) => Ok(Err(Fields(&resp[1..])
                .text()
                .unwrap_or("refused")
                .to_string())),
            _ => Err(agent_err(format!(
                "the agent at {} gave no answer (it may be another version: run `pprotect lock`, then unlock again)",
                self.path.display()
            ))),
        }
    }

    /// Whether an agent answers.
    pub fn running(&self) -> bool {
        matches!(self.call(&Message::request(OP_STATUS)), Ok(Some(r)) if r.first() == Some(&OK))
    }

    /// Hand `who`'s key to the agent for `ttl`.
    pub fn add(&self, who: &Unlocked, ttl: Duration) -> Result<()> {
        let Some(key) = who.key_bytes() else {
            return Err(agent_err(format!(
                "the key of {} is held by the agent already",
                who.name()
            )));
        };
        let req = Message::request(OP_ADD)
            .field(who.name().as_bytes())
            .field(&who.pwdkm().public_key)
            .field(&key[..])
            .number(ttl.as_secs());
        match self.ask(&req)? {
            Ok(_) => Ok(()),
            Err(why) => Err(agent_err(format!("the agent refused the key: {why}"))),
        }
    }

    /// The custodians of `file` (or only `user`) whose key the agent holds,
    /// matched by name and public key; empty when no agent runs.
    pub fn holds(&self, file: &ProtectedFile, user: Option<&str>) -> Result<Vec<String>> {
        let mut req = Message::request(OP_HOLDS);
        for (name, pwdkm) in &file.custodians {
            if user.is_none_or(|u| u == name) {
                req = req.field(name.as_bytes()).field(&pwdkm.public_key);
            }
        }
        let Some(resp) = self.call(&req)? else {
            return Ok(Vec::new());
        };
        if resp.first() != Some(&OK) {
            return Ok(Vec::new());
        }
        let mut f = Fields(&resp[1..]);
        let mut out = Vec::new();
        while let Some(name) = f.text() {
            out.push(name.to_string());
        }
        Ok(out)
    }

    /// The custodian of `file` the agent holds (same name and public
    /// key), unlocked through it: `user` when given, else the only one it
    /// holds for this file. One request.
    pub fn find(&self, file: &ProtectedFile, user: Option<&str>) -> Result<Option<Unlocked>> {
        let held = self.holds(file, user)?;
        let name = match (user, held.as_slice()) {
            (Some(u), _) if held.iter().any(|n| n == u) => u,
            (None, [one]) => one.as_str(),
            _ => return Ok(None),
        };
        Ok(file
            .custodians
            .get(name)
            .map(|pwdkm| Unlocked::through_agent(name, pwdkm.clone(), self.clone())))
    }

    /// Ask the agent to open `sealed` with the key of `name` / `public`.
    pub(crate) fn open(
        &self,
        name: &str,
        public: &[u8; KEY_SIZE],
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let req = Message::request(OP_OPEN)
            .field(name.as_bytes())
            .field(public)
            .field(sealed);
        match self.ask(&req) {
            Ok(Ok(fields)) => {
                let mut f = Fields(&fields);
                f.next().map(|k| Zeroizing::new(k.to_vec()))
            }
            Ok(Err(why)) => {
                tracing::debug!(reason = %why, "the agent did not open an owner entry");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "the agent did not answer");
                None
            }
        }
    }

    /// What the agent holds; `None` when no agent runs.
    pub fn status(&self) -> Result<Option<Vec<Held>>> {
        let Some(resp) = self.call(&Message::request(OP_STATUS))? else {
            return Ok(None);
        };
        if resp.first() != Some(&OK) {
            return Ok(None);
        }
        let mut f = Fields(&resp[1..]);
        let mut out = Vec::new();
        while let (Some(name), Some(secs)) = (f.text(), f.number()) {
            out.push(Held {
                name: name.to_string(),
                remaining: Duration::from_secs(secs),
            });
        }
        Ok(Some(out))
    }

    /// The agent's process id, from its lock file (while it runs).
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.path.parent()?.join("agent.lock")).ok()?;
        text.trim().parse().ok()
    }

    /// Wipe every key and stop the agent; `false` when none was running.
    pub fn lock(&self) -> Result<bool> {
        Ok(self.call(&Message::request(OP_LOCK))?.is_some())
    }

    /// Start an agent (`exe agent serve`, detached) unless one runs, and
    /// wait until it answers.
    pub fn start(&self, exe: &Path) -> Result<()> {
        if self.running() {
            return Ok(());
        }
        let mut cmd = std::process::Command::new(exe);
        // A clean environment: the agent must not inherit a passphrase
        // (PPROTECT_PASSPHRASE) or anything else it does not need; it
        // keeps only what places its socket.
        cmd.env_clear();
        for var in ["XDG_RUNTIME_DIR", "TMPDIR", "RUST_LOG"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.args(["agent", "serve"])
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io("cannot start the agent", exe, &e))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.running() {
                // The agent runs on in its own session; nothing waits for it.
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                // It exited: another agent may have won the race.
                if self.running() {
                    return Ok(());
                }
                return Err(agent_err(format!(
                    "the agent exited at start ({status}): run `pprotect agent serve` to see why"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(agent_err(format!(
            "the agent did not answer at {} within 5 seconds",
            self.path.display()
        )))
    }
}

// --- Server ------------------------------------------------------------

/// One custodian key's record; the key itself is in the locked arena.
struct Slot {
    name: String,
    public: [u8; KEY_SIZE],
    /// Expiry on the monotonic clock and on the wall clock: whichever
    /// comes first (a suspended laptop's monotonic clock stops).
    until: Instant,
    until_wall: SystemTime,
}

impl Slot {
    fn expired(&self, now: Instant) -> bool {
        now >= self.until || SystemTime::now() >= self.until_wall
    }

    fn remaining(&self, now: Instant) -> Duration {
        let mono = self.until.saturating_duration_since(now);
        let wall = self
            .until_wall
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        mono.min(wall)
    }
}

/// The keys, in memory locked against swapping and zeroized when freed.
struct Store {
    arena: Box<[u8; SLOTS * KEY_SIZE]>,
    slots: Vec<Option<Slot>>,
    /// A key was ever added (before that, the start-up grace applies).
    started: bool,
}

#[allow(unsafe_code)]
fn lock_memory(buf: &mut [u8]) -> std::io::Result<()> {
    // SAFETY: `buf` is a live allocation this process owns for the
    // agent's whole life; mlock only pins its pages in RAM and neither
    // reads nor writes them.
    unsafe { rustix::mm::mlock(buf.as_mut_ptr().cast(), buf.len()) }.map_err(Into::into)
}

impl Store {
    fn new() -> Result<Store> {
        let mut arena = Box::new([0u8; SLOTS * KEY_SIZE]);
        lock_memory(&mut arena[..]).map_err(|e| {
            agent_err(format!(
                "cannot lock the agent's key memory against swapping ({}): raise the locked-memory limit (`ulimit -l`)",
                crate::error::strerror(&e)
            ))
        })?;
        Ok(Store {
            arena,
            slots: (0..SLOTS).map(|_| None).collect(),
            started: false,
        })
    }

    fn key(&self, i: usize) -> SecretKey {
        let mut k = [0u8; KEY_SIZE];
        k.copy_from_slice(&self.arena[i * KEY_SIZE..(i + 1) * KEY_SIZE]);
        SecretKey::from_bytes(k)
    }

    fn wipe(&mut self, i: usize) {
        self.arena[i * KEY_SIZE..(i + 1) * KEY_SIZE].zeroize();
        self.slots[i] = None;
    }

    fn wipe_all(&mut self) {
        self.arena.zeroize();
        for s in &mut self.slots {
            *s = None;
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        for i in 0..SLOTS {
            if self.slots[i].as_ref().is_some_and(|s| s.expired(now)) {
                self.wipe(i);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    fn find(&self, name: &str, public: &[u8; KEY_SIZE]) -> Option<usize> {
        let now = Instant::now();
        self.slots.iter().position(|s| {
            s.as_ref()
                .is_some_and(|s| s.name == name && &s.public == public && !s.expired(now))
        })
    }

    fn handle(&mut self, req: &[u8]) -> (Message, bool) {
        let refuse = |why: &str| (Message::response(REFUSED).field(why.as_bytes()), false);
        let Some(body) = req.strip_prefix(&MAGIC[..]) else {
            return refuse("not a pprotect agent request of this version");
        };
        let Some((&op, rest)) = body.split_first() else {
            return refuse("empty request");
        };
        self.expire();
        let mut f = Fields(rest);
        match op {
            OP_ADD => {
                let (Some(name), Some(public), Some(mut secret), Some(ttl)) =
                    (f.text(), f.key(), f.key(), f.number())
                else {
                    return refuse("malformed request");
                };
                let ttl = Duration::from_secs(ttl).min(MAX_TTL);
                let key = SecretKey::from_bytes(secret);
                secret.zeroize();
                if key.public_key() != public {
                    return refuse("the key does not match its public key");
                }
                let slot = self
                    .slots
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|s| s.name == name))
                    .or_else(|| self.slots.iter().position(Option::is_none));
                let Some(i) = slot else {
                    return refuse("the agent holds as many keys as it can");
                };
                self.arena[i * KEY_SIZE..(i + 1) * KEY_SIZE].copy_from_slice(&key.to_bytes()[..]);
                self.slots[i] = Some(Slot {
                    name: name.to_string(),
                    public,
                    until: Instant::now() + ttl,
                    until_wall: SystemTime::now() + ttl,
                });
                self.started = true;
                (Message::response(OK), false)
            }
            OP_OPEN => {
                let (Some(name), Some(public), Some(sealed)) = (f.text(), f.key(), f.next()) else {
                    return refuse("malformed request");
                };
                let Some(i) = self.find(name, &public) else {
                    return refuse("no key held for that custodian and public key");
                };
                match self.key(i).unseal(sealed) {
                    Some(plain) if plain.len() == KEY_SIZE => {
                        (Message::response(OK).field(&plain), false)
                    }
                    Some(_) => refuse("that is not an owner entry"),
                    None => refuse("the entry does not open with that key"),
                }
            }
            OP_HOLDS => {
                let mut resp = Message::response(OK);
                while let (Some(name), Some(public)) = (f.text(), f.key()) {
                    if self.find(name, &public).is_some() {
                        resp = resp.field(name.as_bytes());
                    }
                }
                (resp, false)
            }
            OP_STATUS => {
                let now = Instant::now();
                let mut resp = Message::response(OK);
                for s in self.slots.iter().flatten() {
                    resp = resp
                        .field(s.name.as_bytes())
                        .number(s.remaining(now).as_secs());
                }
                (resp, false)
            }
            OP_LOCK if f.is_empty() => {
                self.wipe_all();
                (Message::response(OK), true)
            }
            _ => refuse("unknown request"),
        }
    }
}

/// Make this process hard to read from outside: no core dumps, and on
/// Linux not dumpable (no ptrace attach, no /proc/PID/mem by the same
/// user).
fn harden() -> Result<()> {
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| agent_err(format!("cannot make the agent non-dumpable: {e}")))?;
    Ok(())
}

/// The socket file's identity, to notice when it is removed or replaced.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Run the agent in this process until its last key expires, `lock`, or
/// its socket is removed. Returns at once (`Ok(false)`) when another agent
/// already serves the socket.
pub fn serve() -> Result<bool> {
    let path = socket_path();
    let dir = socket_dir();
    harden()?;
    // Its own session: a closed terminal does not end it.
    let _ = rustix::process::setsid();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("cannot create the agent's directory", &dir, &e)),
    }
    check_private_dir(&dir)?;
    // One agent per directory: the lock is held for the agent's life.
    let lock_path = dir.join("agent.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| Error::io("cannot open", &lock_path, &e))?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(false);
    }
    // The lock file names the agent's process, for `agent status`.
    {
        let mut l = &lock;
        let _ = l.set_len(0);
        let _ = writeln!(l, "{}", std::process::id());
    }
    let store = Store::new()?;
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove the old socket", &path, &e)),
    }
    let listener =
        UnixListener::bind(&path).map_err(|e| Error::io("cannot listen at", &path, &e))?;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    let ours = identity(&path);
    let store = Arc::new(Mutex::new(store));
    let born = Instant::now();

    // The reaper: wipes expired keys and ends the agent when nothing is
    // left to serve.
    {
        let store = Arc::clone(&store);
        let path = path.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let mut s = match store.lock() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                s.expire();
                let gone = identity(&path) != ours;
                let idle = if s.started {
                    s.is_empty()
                } else {
                    born.elapsed() > FIRST_KEY_GRACE
                };
                if gone || idle {
                    s.wipe_all();
                    if !gone {
                        let _ = std::fs::remove_file(&path);
                    }
                    std::process::exit(0);
                }
            }
        });
    }

    let me = rustix::process::getuid().as_raw();
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        if peer_uid(&s).ok() != Some(me) {
            tracing::warn!("refused a connection from another user");
            // Read (and drop) the request first, so the refusal arrives
            // instead of a reset.
            drop(read_message(&mut s));
            let _ = s.write_all(
                &Message::response(REFUSED)
                    .field(b"this agent serves only its own user")
                    .0,
            );
            continue;
        }
        let Ok(req) = read_message(&mut s) else {
            continue;
        };
        let mut st = match store.lock() {
            Ok(st) => st,
            Err(p) => p.into_inner(),
        };
        let (resp, stop) = st.handle(&req);
        drop(req);
        let _ = s.write_all(&resp.0);
        if stop {
            st.wipe_all();
            let _ = std::fs::remove_file(&path);
            drop(lock);
            std::process::exit(0);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store {
            arena: Box::new([0u8; SLOTS * KEY_SIZE]),
            slots: (0..SLOTS).map(|_| None).collect(),
            started: false,
        }
    }

    fn add(st: &mut Store, name: &str, key: &SecretKey, ttl: u64) -> u8 {
        let req = Message::request(OP_ADD)
            .field(name.as_bytes())
            .field(&key.public_key())
            .field(&key.to_bytes()[..])
            .number(ttl);
        st.handle(&req.0).0.0[0]
    }

    #[test]
    fn opens_only_for_the_matching_name_and_public_key() {
        let mut st = store();
        let custodian = SecretKey::generate();
        assert_eq!(add(&mut st, "a@x", &custodian, 60), OK);
        let domain_key = SecretKey::generate();
        let sealed = crate::crypto::seal(&custodian.public_key(), &domain_key.to_bytes()[..]);
        let open = |st: &mut Store, name: &str, public: [u8; 32], sealed: &[u8]| {
            let req = Message::request(OP_OPEN)
                .field(name.as_bytes())
                .field(&public)
                .field(sealed);
            let resp = st.handle(&req.0).0;
            (resp.0[0], resp.0[1..].to_vec())
        };
        let (status, fields) = open(&mut st, "a@x", custodian.public_key(), &sealed);
        assert_eq!(status, OK);
        assert_eq!(Fields(&fields).next().unwrap(), &domain_key.to_bytes()[..]);
        // Another name, another public key: refused.
        assert_eq!(
            open(&mut st, "b@x", custodian.public_key(), &sealed).0,
            REFUSED
        );
        let other = SecretKey::generate();
        assert_eq!(open(&mut st, "a@x", other.public_key(), &sealed).0, REFUSED);
        // Not a 32-byte plaintext: refused.
        let long = crate::crypto::seal(&custodian.public_key(), b"not a key, something longer");
        assert_eq!(
            open(&mut st, "a@x", custodian.public_key(), &long).0,
            REFUSED
        );
    }

    #[test]
    fn a_key_that_does_not_match_its_public_key_is_refused() {
        let mut st = store();
        let k = SecretKey::generate();
        let other = SecretKey::generate();
        let req = Message::request(OP_ADD)
            .field(b"a@x")
            .field(&other.public_key())
            .field(&k.to_bytes()[..])
            .number(60);
        assert_eq!(st.handle(&req.0).0.0[0], REFUSED);
        assert!(st.is_empty());
    }

    #[test]
    fn expiry_wipes_the_key() {
        let mut st = store();
        let k = SecretKey::generate();
        assert_eq!(add(&mut st, "a@x", &k, 0), OK);
        st.expire();
        assert!(st.is_empty());
        assert!(st.arena.iter().all(|b| *b == 0));
    }

    #[test]
    fn malformed_requests_are_refused_not_panics() {
        let mut st = store();
        for req in [
            &b""[..],
            b"PPA1",
            b"PPA1\x01",
            b"PPA1\x02\xff\xff\xff\xff",
            b"PPA2\x04",
            b"PPA1\x09",
            b"PPA1\x05extra",
        ] {
            assert_eq!(st.handle(req).0.0[0], REFUSED, "{req:?}");
        }
    }
}
