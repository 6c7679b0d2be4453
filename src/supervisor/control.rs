//! The supervisor's control socket, and the clients of it (`exec`, `down`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};

use super::channel::Channel;

/// Listens on `path` (mode 0600: only the supervisor's user may connect).
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let _ = std::fs::remove_file(path);
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
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
    socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(Channel::new(fd))
}
