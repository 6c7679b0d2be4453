//! Host id ranges of jails, claimed host-wide.
//!
//! Jail ids (JIDs) are numbered per state directory, but the host uids a
//! jail's range maps to must be unique on the host: two jails sharing a range
//! would share every per-user counter the kernel keeps, and own each other's
//! files. A root supervisor claims range N by holding an exclusive lock on
//! the file N in one root-only directory for the jail's life; the kernel
//! drops the lock when the supervisor is gone.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Where the claims are kept.
pub const DIR: &str = "/run/sysjail-ranges";

/// How many ranges there are to claim.
pub const COUNT: u32 = 4096;

/// A claimed range: its number, held while this lives. Its file goes with
/// it: removed while the lock is still held, so that a claimer that opened
/// it meanwhile finds, once it has the lock, that the name is no longer its
/// file, and tries again.
#[derive(Debug)]
pub struct Claim {
    /// The range's number.
    pub number: u32,
    _lock: File,
    dir: OwnedFd,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = nix::unistd::unlinkat(
            self.dir.as_fd(),
            self.number.to_string().as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        // The fields drop after this: the lock goes after the name.
    }
}

/// Whether `name` in `dir` is still the file `file` is open on.
fn still_named(dir: &OwnedFd, name: &str, file: &File) -> io::Result<bool> {
    let mine = nix::sys::stat::fstat(file.as_fd()).map_err(io::Error::from)?;
    match nix::sys::stat::fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(st.st_dev == mine.st_dev && st.st_ino == mine.st_ino),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Why no range could be claimed.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    /// The directory of claims is unsafe or unusable.
    #[error("{DIR}: {0}")]
    Dir(String),
    /// Every range is in use.
    #[error("all {COUNT} jail id ranges of this host are in use")]
    Exhausted,
    /// A system call failed.
    #[error("{DIR}: {0}")]
    Io(#[from] io::Error),
}

/// Claims a range, `preferred` first (the JID, so that ranges are stable for
/// a jail while nothing else claims them), then the lowest free one.
pub fn claim(preferred: u32) -> Result<Claim, RangeError> {
    claim_among(std::iter::once(preferred).chain((1..COUNT).filter(move |n| *n != preferred)))
}

/// Claims the first free range of `candidates`, in their order; numbers
/// outside the ranges are skipped. Each number is tried once (a lock
/// attempt, no wait), so the search costs at most one try per range.
pub fn claim_among(candidates: impl IntoIterator<Item = u32>) -> Result<Claim, RangeError> {
    let dir = open_dir()?;
    for number in candidates.into_iter().filter(|n| (1..COUNT).contains(n)) {
        // A file removed by its last holder between our open and our lock
        // is tried again, a few times.
        for _ in 0..8 {
            match try_claim(&dir, number)? {
                Try::Claimed(lock) => {
                    return Ok(Claim {
                        number,
                        _lock: lock,
                        dir,
                    });
                }
                Try::Held => break,
                Try::Removed => continue,
            }
        }
    }
    Err(RangeError::Exhausted)
}

enum Try {
    Claimed(File),
    Held,
    Removed,
}

fn try_claim(dir: &OwnedFd, number: u32) -> Result<Try, RangeError> {
    let name = number.to_string();
    // O_NOFOLLOW, and the directory is root's alone.
    let flags = OFlag::O_CREAT | OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let fd = nix::fcntl::openat(dir.as_fd(), name.as_str(), flags, Mode::from_bits_truncate(0o600))
        .map_err(io::Error::from)?;
    let file = File::from(fd);
    // SAFETY: flock(2) on our descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(e.into());
        }
        return Ok(Try::Held);
    }
    Ok(if still_named(dir, &name, &file)? {
        Try::Claimed(file)
    } else {
        Try::Removed
    })
}

/// The directory of claims: made 0700 by root, and refused unless it is
/// root's directory, not a link, writable by no one else.
fn open_dir() -> Result<OwnedFd, RangeError> {
    match std::fs::DirBuilder::new().mode(0o700).create(DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    let dir = nix::fcntl::open(
        Path::new(DIR),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| RangeError::Dir(format!("{e} (it must be root's directory, not a link)")))?;
    let st = nix::sys::stat::fstat(dir.as_fd()).map_err(io::Error::from)?;
    if st.st_uid != 0 || st.st_mode & 0o077 != 0 {
        return Err(RangeError::Dir(format!(
            "owned by uid {} with mode {:o}: it must be root's, mode 0700; remove it",
            st.st_uid,
            st.st_mode & 0o7777
        )));
    }
    Ok(dir)
}
