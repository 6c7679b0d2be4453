//! How definition files are read: from the host, bounded and refusing what is
//! not a regular file, or from memory in tests and fuzzing.

use std::io;
use std::path::{Path, PathBuf};

/// The largest definition read: far above any real jail file, far below what
/// would let a hostile one cost memory or time.
pub const MAX_DEFINITION: u64 = 1 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A directory, device, FIFO or socket: only regular files are definitions.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// A file of a pseudo file system (proc, sysfs...), whose text the kernel
    /// makes up on reading and may hold the caller's secrets.
    #[error("it is on the {0} pseudo file system, not a regular file")]
    PseudoFile(&'static str),
    /// Larger than the limit.
    #[error("it is larger than {}", human_size(*limit))]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A symbolic link, or a path through one, where links are not followed
    /// (a file that `extends` names or that a directory walk found).
    #[error("it is a symbolic link or is reached through one, and such a file is not followed")]
    Link,
    /// A path that leaves the directory it must stay beneath.
    #[error("it is outside the directory of the definition")]
    Outside,
    /// A file that a launch would read, but that a user other than root or
    /// the caller owns or can change, or whose directory such a user can change.
    #[error("{0}; a file a launch reads must be safe from other users")]
    UnsafeOwner(String),
    /// Not UTF-8, so not TOML.
    #[error("it is not UTF-8 text")]
    NotUtf8,
}

/// "1 MiB", "64 KiB" or "100 bytes", for messages.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// How files are read: the real file system, or a map in tests.
pub trait Files {
    /// Reads a whole file as UTF-8, if it is a regular file of at most `limit` bytes.
    fn read(&self, path: &Path, limit: u64) -> Result<String, FileError>;
    /// Reads `rel` beneath the directory `root` without following any link
    /// and without leaving `root`, like [`Files::read`] otherwise.
    fn read_beneath(&self, root: &Path, rel: &Path, limit: u64) -> Result<String, FileError>;
    /// The canonical form of a path, used to detect `extends` cycles.
    fn canonical(&self, path: &Path) -> io::Result<PathBuf>;
    /// Reads a file that a jail or an unprivileged user may have written (a
    /// jail's /etc/passwd): on the host, under the host-path rule.
    fn read_untrusted(&self, path: &Path) -> Result<String, FileError> {
        self.read(path, super::USER_DATABASE_LIMIT)
    }
}

/// The host's file system.
pub struct HostFiles;

impl Files for HostFiles {
    fn read(&self, path: &Path, limit: u64) -> Result<String, FileError> {
        let bytes = crate::sys::definition::read(path, limit)?;
        String::from_utf8(bytes).map_err(|_| FileError::NotUtf8)
    }
    fn read_beneath(&self, root: &Path, rel: &Path, limit: u64) -> Result<String, FileError> {
        let bytes = crate::sys::definition::read_beneath(root, rel, limit)?;
        String::from_utf8(bytes).map_err(|_| FileError::NotUtf8)
    }
    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn read_untrusted(&self, path: &Path) -> Result<String, FileError> {
        crate::sys::hostpath::read_small(path, super::USER_DATABASE_LIMIT).map_err(|e| FileError::Io(e.into_io()))
    }
}

/// The host's file system for a launch (`up`, `selftest`): as [`HostFiles`],
/// but a file, and every directory above it, must be owned by root or the
/// caller and writable by no one else (a sticky directory excepted), since
/// what a definition says (hooks, writable binds) is done as the caller.
pub struct LaunchFiles;

impl Files for LaunchFiles {
    fn read(&self, path: &Path, limit: u64) -> Result<String, FileError> {
        let bytes = crate::sys::definition::read_as(path, limit, crate::sys::definition::Trust::Owned)?;
        String::from_utf8(bytes).map_err(|_| FileError::NotUtf8)
    }
    fn read_beneath(&self, root: &Path, rel: &Path, limit: u64) -> Result<String, FileError> {
        let bytes = crate::sys::definition::read_beneath_as(root, rel, limit, crate::sys::definition::Trust::Owned)?;
        String::from_utf8(bytes).map_err(|_| FileError::NotUtf8)
    }
    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        HostFiles.canonical(path)
    }
    fn read_untrusted(&self, path: &Path) -> Result<String, FileError> {
        HostFiles.read_untrusted(path)
    }
}

/// Files held in memory, for tests and fuzzing.
#[derive(Default)]
pub struct MemFiles(pub std::collections::BTreeMap<PathBuf, String>);

impl MemFiles {
    /// Adds a file.
    pub fn with(mut self, path: &str, text: &str) -> Self {
        self.0.insert(PathBuf::from(path), text.to_string());
        self
    }
}

impl Files for MemFiles {
    fn read(&self, path: &Path, limit: u64) -> Result<String, FileError> {
        let text = self
            .0
            .get(&normalize(path))
            .ok_or_else(|| FileError::Io(io::Error::from(io::ErrorKind::NotFound)))?;
        if text.len() as u64 > limit {
            return Err(FileError::TooLarge { limit });
        }
        Ok(text.clone())
    }
    fn read_beneath(&self, root: &Path, rel: &Path, limit: u64) -> Result<String, FileError> {
        if leaves(rel) {
            return Err(FileError::Outside);
        }
        self.read(&root.join(rel), limit)
    }
    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        let p = normalize(path);
        if self.0.contains_key(&p) {
            Ok(p)
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }
}

/// Lexical normalization for [`MemFiles`]: drops `.` and resolves `..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether the relative path `rel` leaves the directory it is relative to,
/// read lexically (an absolute path always does): what openat2's
/// `RESOLVE_BENEATH` refuses of a path that holds no link.
pub fn leaves(rel: &Path) -> bool {
    let mut depth = 0usize;
    for c in rel.components() {
        match c {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return true,
        }
    }
    false
}
