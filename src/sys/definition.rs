//! Reading a definition file from the host: a regular file of bounded size,
//! checked and read through one descriptor.
//!
//! A definition may come from an untrusted pull request in CI, and so may the
//! path of every file it `extends`. Such a path may name a device that never
//! ends (`/dev/zero`), a FIFO that never answers, or a pseudo-file whose text is
//! the caller's own secrets (`/proc/self/environ`). None of these is a
//! definition; each is refused before a byte of it is read, so no diagnostic can
//! quote it.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};

use crate::sys::raw::resolve::{
    BENEATH as RESOLVE_BENEATH, NO_MAGICLINKS as RESOLVE_NO_MAGICLINKS, NO_SYMLINKS as RESOLVE_NO_SYMLINKS,
};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::sys::statfs::{self, FsType};

use crate::config::FileError;
use crate::sys::owner::{Exposed, exposed};

/// File systems whose files are made up by the kernel on reading: their size
/// says nothing and their text may be anyone's secrets.
const PSEUDO: &[(FsType, &str)] = &[
    (statfs::PROC_SUPER_MAGIC, "proc"),
    (statfs::SYSFS_MAGIC, "sysfs"),
    (statfs::DEBUGFS_MAGIC, "debugfs"),
    (statfs::TRACEFS_MAGIC, "tracefs"),
    (statfs::SECURITYFS_MAGIC, "securityfs"),
    (statfs::CGROUP_SUPER_MAGIC, "cgroup"),
    (statfs::CGROUP2_SUPER_MAGIC, "cgroup2"),
    (statfs::BPF_FS_MAGIC, "bpf"),
    (statfs::SELINUX_MAGIC, "selinuxfs"),
    (statfs::SMACK_MAGIC, "smackfs"),
];

/// Reads the regular file at `path`, at most `limit` bytes of it.
///
/// The path may be a symbolic link (a definition given by the user may
/// legitimately be one); what it leads to is judged by a descriptor, so that the
/// file checked is the file read. That first descriptor is an `O_PATH` one:
/// opening some devices for reading does something (a watchdog is armed, a
/// tape rewinds, a modem line rises), so nothing is opened for reading until
/// it is known to be a regular file. The file is then opened again through
/// that descriptor, non-blocking and never as our terminal, and must still be
/// the same file.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    read_as(path, limit, Trust::Any)
}

/// Whose files may be read: anyone's (`check` lints untrusted files), or only
/// files that no other user can change (what a launch runs as root).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Any owner.
    Any,
    /// The file and every directory above it owned by root or the caller and
    /// writable by neither group nor others; a directory writable by others is
    /// accepted when it is sticky, since then only the owner of an entry, root
    /// or the caller as checked, can rename or remove it.
    Owned,
}

/// [`read`], under the owner rule `trust`.
pub fn read_as(path: &Path, limit: u64, trust: Trust) -> Result<Vec<u8>, FileError> {
    // std adds O_CLOEXEC to every open.
    let located = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .map_err(FileError::Io)?;
    read_located(located, path, limit, trust)
}

/// Reads the regular file `rel` beneath the directory `root`, at most `limit`
/// bytes of it, as [`read`] does, but reached by a path that holds no
/// symbolic link and never leaves `root` (openat2 with `RESOLVE_BENEATH` and
/// `RESOLVE_NO_SYMLINKS`): the rule for a file that an untrusted definition
/// names (`extends`) or that a directory walk found. `root` itself is the
/// user's and may be reached through links.
pub fn read_beneath(root: &Path, rel: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    read_beneath_as(root, rel, limit, Trust::Any)
}

/// [`read_beneath`], under the owner rule `trust`.
pub fn read_beneath_as(root: &Path, rel: &Path, limit: u64, trust: Trust) -> Result<Vec<u8>, FileError> {
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)
        .map_err(FileError::Io)?;
    let located = crate::sys::raw::openat2(
        dir.as_fd(),
        rel,
        libc::O_PATH,
        0,
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => FileError::Link,
        Some(libc::EXDEV) => FileError::Outside,
        Some(libc::ENOSYS) => FileError::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "opening a definition without following links needs openat2(2), Linux 5.6",
        )),
        _ => FileError::Io(e),
    })?;
    read_located(File::from(located), &root.join(rel), limit, trust)
}

/// Reads through an `O_PATH` descriptor, once what it holds is judged.
fn read_located(located: File, path: &Path, limit: u64, trust: Trust) -> Result<Vec<u8>, FileError> {
    let checked = check(&located, limit)?;
    if trust == Trust::Owned {
        check_owner(&located, &checked, path)?;
    }
    let file = reopen(&located, path)?;
    let meta = file.metadata().map_err(FileError::Io)?;
    if (meta.dev(), meta.ino()) != (checked.dev(), checked.ino()) {
        return Err(FileError::Io(io::Error::other(
            "the file was replaced while it was read",
        )));
    }
    let mut text = Vec::new();
    // One byte more than the limit tells a file at the limit from a larger one,
    // even when the file grew after it was checked.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(FileError::Io)?;
    if text.len() as u64 > limit {
        return Err(FileError::TooLarge { limit });
    }
    Ok(text)
}

/// Opens for reading the file an `O_PATH` descriptor holds: through its
/// /proc/self/fd link, which names that very file; without /proc, by `path`
/// again, which the caller then compares with what was checked.
fn reopen(located: &File, path: &Path) -> Result<File, FileError> {
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
    };
    let link = format!("/proc/self/fd/{}", located.as_raw_fd());
    match open(Path::new(&link)) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => open(path).map_err(FileError::Io),
        Err(e) => Err(FileError::Io(e)),
    }
}

/// Refuses what the descriptor shows is not a regular file of a real file
/// system, or is larger than `limit`; gives its metadata otherwise.
fn check(file: &File, limit: u64) -> Result<Metadata, FileError> {
    // File::metadata is fstat(2) on the descriptor, not a second lookup of the path.
    let meta = file.metadata().map_err(FileError::Io)?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else {
        Some("not a regular file")
    };
    if let Some(what) = what {
        return Err(FileError::NotRegular(what));
    }
    let fs = statfs::fstatfs(file).map_err(|e| FileError::Io(e.into()))?;
    if let Some((_, name)) = PSEUDO.iter().find(|(t, _)| *t == fs.filesystem_type()) {
        return Err(FileError::PseudoFile(name));
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge { limit });
    }
    Ok(meta)
}

/// Whether `uid` may own a file that a launch reads: root or the caller.
/// Refuses the file the `O_PATH` descriptor `located` holds (its metadata
/// `meta`) unless it and every directory above it are safe from other users:
/// see [`Trust::Owned`]. The directories are walked from the file's own
/// directory up by `..` through descriptors; the file's directory is found by
/// the name the kernel gives the descriptor and must hold that very file.
fn check_owner(located: &File, meta: &Metadata, path: &Path) -> Result<(), FileError> {
    use std::os::unix::ffi::OsStrExt;
    let unsafe_owner = |what: String| Err(FileError::UnsafeOwner(what));
    let caller = nix::unistd::getuid().as_raw();
    match exposed(meta.uid(), meta.mode(), caller, false) {
        Some(Exposed::Owner(uid)) => {
            return unsafe_owner(format!("it is owned by uid {uid}, not by root or the caller"));
        }
        Some(Exposed::Writable(mode)) => {
            return unsafe_owner(format!("it is writable by group or others (mode {mode:o})"));
        }
        None => {}
    }
    let real = std::fs::read_link(format!("/proc/self/fd/{}", located.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
        .map_err(FileError::Io)?;
    let (Some(parent), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(FileError::Io(io::Error::other("the file has no directory")));
    };
    let mut dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(parent)
        .map_err(FileError::Io)?;
    let entry = nix::sys::stat::fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| FileError::Io(e.into()))?;
    if (entry.st_dev, entry.st_ino) != (meta.dev(), meta.ino()) {
        return Err(FileError::Io(io::Error::other("the file was moved while it was read")));
    }
    // Bounded: no real tree is this deep, and a loop must end.
    for _ in 0..4096 {
        let d = dir.metadata().map_err(FileError::Io)?;
        let shown = || {
            std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))
                .map(|p| String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned())
                .unwrap_or_else(|_| "a directory above it".into())
        };
        match exposed(d.uid(), d.mode(), caller, true) {
            Some(Exposed::Owner(uid)) => {
                return unsafe_owner(format!(
                    "its directory {} is owned by uid {uid}, not by root or the caller",
                    shown()
                ));
            }
            Some(Exposed::Writable(mode)) => {
                return unsafe_owner(format!(
                    "its directory {} is writable by group or others (mode {mode:o}) and not sticky",
                    shown()
                ));
            }
            None => {}
        }
        let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
        let up = nix::fcntl::openat(dir.as_fd(), "..", flags, nix::sys::stat::Mode::empty())
            .map(File::from)
            .map_err(|e| FileError::Io(e.into()))?;
        let u = up.metadata().map_err(FileError::Io)?;
        if (u.dev(), u.ino()) == (d.dev(), d.ino()) {
            return Ok(());
        }
        dir = up;
    }
    Err(FileError::Io(io::Error::other("the file is too deep in the tree")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("sysjail-def-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.toml");
        std::fs::write(&file, "name = \"a\"\n").unwrap();
        assert_eq!(read(&file, MIB).unwrap(), b"name = \"a\"\n");
        assert!(matches!(read(&file, 4), Err(FileError::TooLarge { limit: 4 })));
        let link = dir.join("link.toml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read(&link, MIB).is_ok(), "a link to a regular file is followed");
        assert!(matches!(read(&dir, MIB), Err(FileError::NotRegular("a directory"))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_fifos_and_pseudo_files_are_refused_unread() {
        assert!(matches!(
            read(Path::new("/dev/zero"), MIB),
            Err(FileError::NotRegular("a character device"))
        ));
        assert!(matches!(
            read(Path::new("/proc/self/environ"), MIB),
            Err(FileError::PseudoFile("proc"))
        ));
        if Path::new("/sys/kernel/mm").exists() {
            let sys = std::fs::read_dir("/sys/kernel/mm").unwrap();
            if let Some(f) = sys.filter_map(Result::ok).find(|e| e.path().is_file()) {
                assert!(matches!(read(&f.path(), MIB), Err(FileError::PseudoFile("sysfs"))));
            }
        }
        let fifo = std::env::temp_dir().join(format!("sysjail-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(read(&fifo, MIB), Err(FileError::NotRegular("a FIFO"))));
        std::fs::remove_file(&fifo).unwrap();
    }
}
