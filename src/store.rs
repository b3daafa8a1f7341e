//! Reading and writing protected files on disk: bounded reads, atomic
//! writes that keep permissions, and an exclusive lock so concurrent
//! writers never lose each other's changes.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::codec::MAX_FILE_BYTES;
use crate::error::{Error, Result};
use crate::model::ProtectedFile;

/// Refuse anything but a regular file (after following symlinks): a FIFO
/// would hang the read, a device never ends.
fn require_regular(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io("cannot read", path, &e))?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(Error::invalid(
            None,
            "not a regular file (a directory, FIFO or device); refusing to read it".into(),
        )
        .context(path.display()))
    }
}

/// Refuse to write through a symbolic link at `path`.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(symlink_refused(path)),
        _ => Ok(()),
    }
}

fn symlink_refused(path: &Path) -> Error {
    Error::invalid(
        None,
        "is a symbolic link; pprotect does not write through links".into(),
    )
    .context(path.display())
}

/// Read a small file that must be a regular file, not a symbolic link
/// (as git reads `.gitattributes`), of at most `limit` bytes. `Ok(None)`
/// when it does not exist.
pub fn read_regular_no_link(path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot read", path, &e)),
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::invalid(
                None,
                "is a symbolic link, which git ignores; replace it with a regular file".into(),
            )
            .context(path.display()));
        }
        Ok(m) if !m.is_file() => {
            return Err(
                Error::invalid(None, "is not a regular file".into()).context(path.display())
            );
        }
        Ok(_) => {}
    }
    read_limited(path, limit, "is larger than", "read").map(Some)
}

/// Read at most `limit` bytes of `path`, refusing a larger file without
/// reading it whole (`too_big` and `verb` word the error).
fn read_limited(path: &Path, limit: usize, too_big: &str, verb: &str) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io("cannot read", path, &e))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", path, &e))?;
    if bytes.len() > limit {
        return Err(Error::invalid(
            None,
            format!("{too_big} {limit} bytes; refusing to {verb} it"),
        )
        .context(path.display()));
    }
    Ok(bytes)
}

/// Read a file's bytes, refusing files over [`MAX_FILE_BYTES`] without
/// reading them whole, and anything but a regular file.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    require_regular(path)?;
    read_limited(path, MAX_FILE_BYTES, "file is larger than", "load")
}

/// Load and validate a protected file. Errors carry the path.
pub fn load(path: &Path) -> Result<ProtectedFile> {
    let bytes = read_bounded(path)?;
    ProtectedFile::from_bytes(&bytes).map_err(|e| e.context(path.display()))
}

/// Write `contents` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over the target, fsync the directory. The
/// target's permissions are kept (new files get the umask default).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    refuse_symlink(path)?;
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".pprotect-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| Error::io("cannot create a temporary file in", &dir, &e))?;
    // A new file gets the permissions the umask gives a created file: it
    // is created exclusively (`O_EXCL`, which never follows a link, so a
    // link raced in after the check above makes this fail, not write
    // elsewhere), then replaced.
    let perms = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(symlink_refused(path)),
        Ok(meta) => meta.permissions(),
        Err(_) => {
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            no_follow(&mut opts);
            opts.open(path)
                .and_then(|f| f.metadata())
                .map_err(|e| Error::io("cannot create", path, &e))?
                .permissions()
        }
    };
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", tmp.path(), &e))?;
    tmp.as_file()
        .set_permissions(perms)
        .map_err(|e| Error::io("cannot set permissions on", tmp.path(), &e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("cannot replace", path, &e.error))?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Make `opts` refuse to open through a symbolic link at the last path
/// component (`O_NOFOLLOW`), so a link raced in between a check and the
/// open cannot redirect it.
pub fn no_follow(opts: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    #[cfg(not(unix))]
    let _ = opts;
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Remove temporary files that writers of protected files in `path`'s
/// directory left behind when they were killed mid-write. Call it while
/// holding the [`FileLock`]: then no live writer owns such a file.
pub fn remove_stale_temps(path: &Path) {
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".pprotect-") && name.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The lock file guarding `path`: `.NAME.lock` beside it.
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "protected.yaml".into());
    parent_dir(path).join(format!(".{name}.lock"))
}

/// An exclusive lock on a protected file, released (and its lock file
/// removed) on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Block until this process holds the exclusive lock for `path`.
    ///
    /// The lock file is removed on release; to stay correct when another
    /// process removes it between our open and our lock, the lock is only
    /// taken as held once the path still names the file we locked.
    pub fn acquire(path: &Path) -> Result<FileLock> {
        let lpath = lock_path(path);
        loop {
            // Never open (and create through) a link planted as the lock.
            refuse_symlink(&lpath)?;
            let mut opts = OpenOptions::new();
            opts.create(true).truncate(false).write(true);
            no_follow(&mut opts);
            let file = opts
                .open(&lpath)
                .map_err(|e| Error::io("cannot create lock file", &lpath, &e))?;
            file.lock()
                .map_err(|e| Error::io("cannot lock", &lpath, &e))?;
            if same_file(&file, &lpath) {
                return Ok(FileLock { file, path: lpath });
            }
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Remove while still holding the lock, so a waiter that then locks
        // the old inode sees it is stale and retries.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("protected.yaml");
        fs::write(&p, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
            write_atomic(&p, b"new").unwrap();
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        assert_eq!(fs::read(&p).unwrap(), b"new");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn links_fifos_and_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("protected.yaml");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        assert!(write_atomic(&p, b"x").is_err());
        assert!(!target.exists(), "created through a dangling link");
        std::os::unix::fs::symlink(&target, lock_path(&p)).unwrap();
        assert!(FileLock::acquire(&p).is_err());
        assert!(!target.exists());
        assert!(read_bounded(Path::new("/dev/zero")).is_err());
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(read_bounded(&fifo).is_err(), "a FIFO must not hang");
        assert!(read_regular_no_link(&fifo, 10).is_err());
        let link = dir.path().join(".gitattributes");
        std::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
        assert!(read_regular_no_link(&link, 10).is_err());
    }

    /// The opens that create or lock files refuse a link at the last
    /// component outright (`O_NOFOLLOW`, `O_EXCL`): a link raced in after
    /// the check cannot redirect them.
    #[cfg(unix)]
    #[test]
    fn opens_never_follow_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        no_follow(&mut opts);
        assert!(opts.open(&link).is_err());
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        no_follow(&mut opts);
        assert!(opts.open(&link).is_err());
        assert!(!target.exists(), "created through a link");
    }

    #[test]
    fn lock_is_removed_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("protected.yaml");
        {
            let _l = FileLock::acquire(&p).unwrap();
            assert!(lock_path(&p).exists());
        }
        assert!(!lock_path(&p).exists());
    }
}
