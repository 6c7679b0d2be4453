//! The supervisor's control socket, and the clients of it (`exec`, `down`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};

use super::channel::Channel;

/// A unix socket address for `path`, even when `path` is longer than sun_path
/// holds (108 bytes): then through /proc/self/fd of its directory, which the
/// returned descriptor keeps open.
fn address(path: &Path) -> io::Result<(UnixAddr, Option<OwnedFd>)> {
    if path.as_os_str().len() < 100 {
        return Ok((UnixAddr::new(path)?, None));
    }
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dirfd = OwnedFd::from(std::fs::File::open(dir)?);
    let short = Path::new("/proc/self/fd")
        .join(dirfd.as_raw_fd().to_string())
        .join(name);
    Ok((UnixAddr::new(&short)?, Some(dirfd)))
}

/// Listens on `path` (mode 0600: only the supervisor's user may connect).
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let _ = std::fs::remove_file(path);
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket::socket(AddressFamily::Unix, SockType::SeqPacket, flags, None)?;
    let (addr, _dir) = address(path)?;
    socket::bind(fd.as_raw_fd(), &addr)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    socket::listen(&fd, socket::Backlog::new(16).expect("small backlog"))?;
    Ok(fd)
}

/// Accepts a client whose uid is the supervisor's or root's.
pub fn accept(listener: &OwnedFd) -> io::Result<Option<Channel>> {
    let fd = match socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // SAFETY: accept4 returned a new descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let cred = socket::getsockopt(&fd, sockopt::PeerCredentials)?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() != me && cred.uid() != 0 {
        return Ok(None);
    }
    Ok(Some(Channel::new(fd)))
}

/// Connects to a jail's supervisor.
pub fn connect(path: &Path) -> io::Result<Channel> {
    let fd = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
    let (addr, _dir) = address(path)?;
    socket::connect(fd.as_raw_fd(), &addr)?;
    Ok(Channel::new(fd))
}
