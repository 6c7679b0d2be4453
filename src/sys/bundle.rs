//! An OCI bundle directory as `sysjail export oci` writes it and `sysjail
//! check --bundle` reads it: by descriptor, never through a link.
//!
//! Export runs as root and the engine later runs the bundle's binary as
//! root in hooks. A bundle directory another user can write lets that user
//! plant a link for export to write through (config.json -> /etc/passwd), or
//! swap the binary afterwards. So the directory, and its `sysjail/`, must be
//! the caller's (or root's) and writable by no one else, and every file is
//! made anew in the directory's descriptor with `O_EXCL | O_NOFOLLOW`.

use super::owner::Exposed;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Mode of the bundle's directories as export makes them.
pub const DIR_MODE: u32 = 0o755;
/// Mode of the bundle's data files.
pub const FILE_MODE: u32 = 0o644;
/// Mode of the bundle's binary.
pub const EXEC_MODE: u32 = 0o755;

/// A bundle directory, opened and checked.
#[derive(Debug)]
pub struct BundleDir {
    path: PathBuf,
    fd: OwnedFd,
}

/// What export demands of a directory it writes in: the caller's or root's,
/// and writable by no one else. `None` when it holds.
pub fn distrust(uid: u32, mode: u32) -> Option<String> {
    let euid = nix::unistd::geteuid().as_raw();
    super::owner::exposed(uid, mode, euid, false).map(|e| match e {
        Exposed::Owner(uid) => format!(
            "owned by uid {uid}, not by uid {euid} that runs sysjail or root: its owner could plant links there or replace the binary the engine runs as root"
        ),
        Exposed::Writable(mode) => format!(
            "writable by {} (mode {mode:o}): they could plant links there or replace the binary the engine runs as root",
            Exposed::writers(mode)
        ),
    })
}

fn other(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {why}", path.display()))
}

fn at(path: &Path, e: Errno) -> io::Error {
    let e = io::Error::from(e);
    if e.raw_os_error() == Some(libc::ELOOP) {
        other(path, "is a symbolic link, which sysjail never follows in a bundle")
    } else {
        other(path, e)
    }
}

/// Opens the directory `name` in `parent` (no link followed), and with
/// `enforce` refuses it unless [`distrust`] finds nothing.
fn open_checked_dir(parent: &impl AsFd, name: &OsStr, path: &Path, enforce: bool) -> io::Result<OwnedFd> {
    let fd = openat(
        parent,
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // O_DIRECTORY | O_NOFOLLOW on a link says ENOTDIR.
        Errno::ENOTDIR | Errno::ELOOP => other(
            path,
            "is not a directory (a symbolic link is never followed in a bundle)",
        ),
        e => at(path, e),
    })?;
    let st = fstat(&fd).map_err(|e| at(path, e))?;
    if let Some(why) = distrust(st.st_uid, st.st_mode).filter(|_| enforce) {
        return Err(other(path, why));
    }
    Ok(fd)
}

/// How a bundle directory is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// To write: made if missing, refused unless trusted.
    Create,
    /// To read what may be anyone's (`check`): never refused for its owner
    /// or mode, which the caller reports.
    Inspect,
}

impl BundleDir {
    /// Opens the bundle directory at `path`, and with `create` makes it
    /// (mode 0755, the caller's) when it is missing. Its parent is resolved
    /// under the host-path rule ([`super::hostpath`]); the directory itself
    /// is never a link.
    pub fn open(path: &Path, access: Access) -> io::Result<BundleDir> {
        let create = access == Access::Create;
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()?.join(path)
        };
        let (parent, name) = super::hostpath::open_parent(&path).map_err(super::hostpath::HostPathError::into_io)?;
        if create {
            match mkdirat(&parent, name.as_os_str(), Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(at(&path, e)),
            }
        }
        let fd = open_checked_dir(&parent, &name, &path, create)?;
        Ok(BundleDir { path, fd })
    }

    /// Owner and mode of the directory itself.
    pub fn own_stat(&self) -> io::Result<nix::sys::stat::FileStat> {
        fstat(&self.fd).map_err(|e| at(&self.path, e))
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path that names this very directory while the descriptor is open,
    /// whatever happens to `path`: for code that takes paths.
    pub fn proc_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The subdirectory `name`, made (0755) if missing, never a link, and
    /// held to the same rule as the bundle.
    pub fn subdir(&self, name: &str, access: Access) -> io::Result<BundleDir> {
        let create = access == Access::Create;
        let path = self.path.join(name);
        if create {
            match mkdirat(&self.fd, name, Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(at(&path, e)),
            }
        }
        let fd = open_checked_dir(&self.fd, OsStr::new(name), &path, create)?;
        Ok(BundleDir { path, fd })
    }

    /// Makes the file `name` anew (whatever was there, a link included, is
    /// unlinked, not followed), mode `mode`, with `bytes` in it.
    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
        let mut f = self.create(name, mode)?;
        f.write_all(bytes).map_err(|e| other(&self.path.join(name), e))
    }

    /// Makes the file `name` anew, empty, mode `mode`.
    fn create(&self, name: &str, mode: u32) -> io::Result<File> {
        let path = self.path.join(name);
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(at(&path, e)),
        }
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| at(&path, e))?;
        // The umask must not decide what check compares.
        fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(|e| at(&path, e))?;
        Ok(File::from(fd))
    }

    /// Copies `from` (already open) to `name` by way of a temporary name in
    /// this directory, renamed over `name` once complete.
    pub fn install(&self, name: &str, from: &mut File, mode: u32) -> io::Result<()> {
        let tmp = format!(".{name}.new");
        let mut f = self.create(&tmp, mode)?;
        io::copy(from, &mut f).map_err(|e| other(&self.path.join(&tmp), e))?;
        f.sync_all().map_err(|e| other(&self.path.join(&tmp), e))?;
        renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(|e| at(&self.path.join(name), e))
    }

    /// Opens `name` for reading, refusing a link and anything but a regular
    /// file (a FIFO never blocks the open).
    pub fn open_file(&self, name: &str) -> io::Result<(File, nix::sys::stat::FileStat)> {
        let path = self.path.join(name);
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| at(&path, e))?;
        let st = fstat(&fd).map_err(|e| at(&path, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(other(&path, "is not a regular file"));
        }
        Ok((File::from(fd), st))
    }

    /// Reads the regular file `name`, at most `limit` bytes, through no link.
    pub fn read_small(&self, name: &str, limit: u64) -> io::Result<Vec<u8>> {
        let (f, _) = self.open_file(name)?;
        let mut out = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| other(&self.path.join(name), e))?;
        if out.len() as u64 > limit {
            return Err(other(&self.path.join(name), format!("larger than {limit} bytes")));
        }
        Ok(out)
    }

    /// Owner and mode of the entry `name` (or the directory itself for
    /// "."), not following a link.
    pub fn stat(&self, name: &str) -> io::Result<nix::sys::stat::FileStat> {
        nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| at(&self.path.join(name), e))
    }
}

/// Whether two readers yield the same bytes.
pub fn same_content(mut a: impl Read, mut b: impl Read) -> io::Result<bool> {
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
