//! Host files the supervisor writes on a jail's behalf: its output log and
//! its denial log.
//!
//! A jail may well be able to write the directory of its own log (a log
//! under the jail's tree, say), and plant a link there for the next `up` to
//! follow as root. So a log is opened by descriptor: its directory under the
//! host-path rule, the file itself with O_NOFOLLOW, and then
//! accepted only if it is a regular file of the caller's with no other name
//! (a hard link to /etc/shadow is a regular file too). The supervisor alone
//! holds the descriptor; the jail writes into a pipe.

use super::owner::Exposed;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::{Mode, fstat};

/// Why a log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The path names no file in a directory.
    #[error("log {0}: not an absolute path of a file")]
    Path(PathBuf),
    /// Its directory cannot be reached without following a link, or at all.
    #[error("log {path}: its directory {dir}: {error} (no symbolic link is followed on the way to a log)")]
    Dir {
        /// The log.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// What opening it said (ELOOP: a link on the way).
        error: io::Error,
    },
    /// The log is a symbolic link, dangling or not.
    #[error("log {0} is a symbolic link, which sysjail never follows for a log: remove it")]
    Link(PathBuf),
    /// Opening or creating it failed.
    #[error("log {path}: {error}")]
    Open {
        /// The log.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// A directory, a device, a FIFO...
    #[error("log {0} is not a regular file")]
    NotRegular(PathBuf),
    /// Someone else's file.
    #[error("log {path} is owned by uid {owner}, not by uid {euid} that runs sysjail")]
    Owner {
        /// The log.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The caller's effective uid.
        euid: u32,
    },
    /// A file with another name elsewhere.
    #[error("log {path} has {links} names (hard links): a log must be a file of its own")]
    Links {
        /// The log.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
}

/// An open log: appended to, and rotated once it reaches its cap.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    dir: OwnedFd,
    name: OsString,
    file: File,
    cap: u64,
}

/// Opens (and creates, mode 0640) the log at `path`, which is rotated when
/// it reaches `cap` bytes.
pub fn open_log(path: &Path, cap: u64) -> Result<LogFile, LogError> {
    let (parent, name) = match (path.parent(), path.components().next_back()) {
        (Some(parent), Some(Component::Normal(name))) if path.is_absolute() => (parent, name),
        _ => return Err(LogError::Path(path.to_path_buf())),
    };
    // The one place a log's directory is resolved.
    let dir = open_dir(parent).map_err(|error| LogError::Dir {
        path: path.to_path_buf(),
        dir: parent.to_path_buf(),
        error,
    })?;
    let file = open_in(&dir, name.as_bytes(), path)?;
    Ok(LogFile {
        path: path.to_path_buf(),
        dir,
        name: name.to_os_string(),
        file,
        cap,
    })
}

/// A log's directory, opened under the host-path rule ([`super::hostpath`]):
/// a link is followed only where root alone can have made it. Another user
/// who may rename its entries could move each rotated file away, and the
/// size cap would no longer hold: the directory must be root's or the
/// caller's, and writable by no one else (unless sticky, as /tmp is).
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let found = super::hostpath::open(dir).map_err(super::hostpath::HostPathError::into_io)?;
    let st = found.stat;
    if !st.is_dir() {
        return Err(io::Error::from(io::ErrorKind::NotADirectory));
    }
    match super::owner::exposed(st.uid, st.mode, nix::unistd::geteuid().as_raw(), true) {
        Some(Exposed::Owner(uid)) => Err(io::Error::other(format!(
            "owned by uid {uid}, which could rename the log away"
        ))),
        Some(Exposed::Writable(mode)) => Err(io::Error::other(format!(
            "writable by other users (mode {mode:o}), who could rename the log away"
        ))),
        None => Ok(found.fd),
    }
}

/// Opens `name` in `dir` for appending, never following a link, and checks
/// that it is a regular file of the caller's with one name.
fn open_in(dir: &OwnedFd, name: &[u8], path: &Path) -> Result<File, LogError> {
    // O_NONBLOCK: a FIFO planted there must not hang the supervisor; it is
    // refused below. O_NOCTTY: nor may a terminal become its own.
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK;
    let fd = nix::fcntl::openat(dir, name, flags, Mode::from_bits_truncate(0o640)).map_err(|e| match e {
        Errno::ELOOP => LogError::Link(path.to_path_buf()),
        e => LogError::Open {
            path: path.to_path_buf(),
            error: e.into(),
        },
    })?;
    let st = fstat(&fd).map_err(|e| LogError::Open {
        path: path.to_path_buf(),
        error: e.into(),
    })?;
    let euid = nix::unistd::geteuid().as_raw();
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(LogError::NotRegular(path.to_path_buf()));
    }
    if st.st_uid != euid {
        return Err(LogError::Owner {
            path: path.to_path_buf(),
            owner: st.st_uid,
            euid,
        });
    }
    if st.st_nlink != 1 {
        return Err(LogError::Links {
            path: path.to_path_buf(),
            links: st.st_nlink,
        });
    }
    Ok(File::from(fd))
}

impl LogFile {
    /// The log's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size at which it is rotated.
    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Appends `bytes`, first rotating the log if it has reached its cap.
    /// Returns true when it rotated: the log is then a new file, with a new
    /// descriptor. A log that cannot be rotated takes nothing more, so it
    /// exceeds its cap by at most one write.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<bool> {
        // Others may append too (a detached supervisor's own messages):
        // the file's size, not a count of ours.
        let rotated = self.file.metadata()?.len() >= self.cap;
        if rotated {
            self.rotate()?;
        }
        self.file.write_all(bytes)?;
        Ok(rotated)
    }

    /// Renames the log to NAME.1 (replacing the previous one) and opens a
    /// new one at NAME, both in the directory's descriptor.
    fn rotate(&mut self) -> io::Result<()> {
        let mut old = self.name.clone();
        old.push(".1");
        match renameat(&self.dir, self.name.as_bytes(), &self.dir, old.as_bytes()) {
            // Gone already: a new one is made all the same.
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        self.file = open_in(&self.dir, self.name.as_bytes(), &self.path).map_err(io::Error::other)?;
        Ok(())
    }
}

impl AsFd for LogFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        // Canonical: a link on the way to the temporary directory would be refused.
        let base = fs::canonicalize(std::env::temp_dir()).unwrap();
        let dir = base.join(format!("sysjail-logfile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn links_anywhere_on_the_way_are_refused() {
        let dir = scratch("links");
        let victim = dir.join("victim");
        fs::write(&victim, "precious\n").unwrap();
        // At the name, dangling or not.
        std::os::unix::fs::symlink(&victim, dir.join("a.log")).unwrap();
        assert!(matches!(open_log(&dir.join("a.log"), 1 << 20), Err(LogError::Link(_))));
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("b.log")).unwrap();
        assert!(matches!(open_log(&dir.join("b.log"), 1 << 20), Err(LogError::Link(_))));
        assert!(!dir.join("nowhere").exists());
        // At a directory on the way, where others write.
        fs::create_dir(dir.join("real")).unwrap();
        let open = dir.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), open.join("linked")).unwrap();
        let err = open_log(&open.join("linked/c.log"), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, LogError::Dir { .. }) && err.to_string().contains("is a symbolic link"),
            "{err}"
        );
        assert!(!dir.join("real/c.log").exists());
        // Another name of a file.
        fs::hard_link(&victim, dir.join("d.log")).unwrap();
        assert!(matches!(
            open_log(&dir.join("d.log"), 1 << 20),
            Err(LogError::Links { links: 2, .. })
        ));
        // Not a file.
        fs::create_dir(dir.join("e.log")).unwrap();
        assert!(open_log(&dir.join("e.log"), 1 << 20).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn appends_and_rotates_at_the_cap() {
        let dir = scratch("rotate");
        let path = dir.join("web.log");
        fs::write(&path, "earlier\n").unwrap();
        let mut log = open_log(&path, 100).unwrap();
        assert!(!log.write(b"one\n").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "earlier\none\n");
        let line = [b'x'; 60];
        assert!(!log.write(&line).unwrap());
        assert!(!log.write(&line).unwrap());
        // Over the cap now: the next write goes to a new file.
        assert!(log.write(b"two\n").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(fs::metadata(dir.join("web.log.1")).unwrap().len(), 8 + 4 + 120);
        for _ in 0..10 {
            log.write(&line).unwrap();
        }
        let total = fs::metadata(&path).unwrap().len() + fs::metadata(dir.join("web.log.1")).unwrap().len();
        assert!(total <= 2 * (100 + 60), "{total} bytes on disk");
        assert!(!dir.join("web.log.2").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
