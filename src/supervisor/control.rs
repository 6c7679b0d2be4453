//! The supervisor's control socket, and the clients of it (`exec`, `down`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
use nix::sys::stat::{FchmodatFlags, Mode, fchmodat, fstat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::channel::Channel;

/// The address of `name` in the directory `dir`: through /proc/self/fd, so
/// that the kernel reaches the directory by its descriptor (no link on the
/// way to it is followed) and the address fits sun_path however long the
/// directory's path.
fn address(dir: BorrowedFd<'_>, name: &str) -> io::Result<UnixAddr> {
    if name.contains('/') {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    Ok(UnixAddr::new(
        format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()).as_str(),
    )?)
}

/// Listens on `name` in the state directory `dir` (mode 0600: only the
/// supervisor's user may connect).
pub fn listen(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    // Whatever holds the name (a socket a dead supervisor left, a link)
    // goes; bind(2) then makes a new socket and never follows a link.
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket::socket(AddressFamily::Unix, SockType::SeqPacket, flags, None)?;
    socket::bind(fd.as_raw_fd(), &address(dir, name)?)?;
    // The directory is the caller's alone (state::Registry::open checks it):
    // nobody can have replaced the socket since bind.
    fchmodat(dir, name, Mode::from_bits_truncate(0o600), FchmodatFlags::FollowSymlink)?;
    socket::listen(&fd, socket::Backlog::new(16).expect("small backlog"))?;
    Ok(fd)
}

/// Accepts a client whose uid is the supervisor's or root's.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<Option<Channel>> {
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

/// Connects to a jail's supervisor at `name` in the state directory `dir`.
/// The name is opened first without following a link and must be a socket;
/// the connection goes to that very socket, through its descriptor.
pub fn connect(dir: BorrowedFd<'_>, name: &str) -> io::Result<Channel> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let node = nix::fcntl::openat(dir, name, flags, Mode::empty())?;
    if fstat(&node)?.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a socket (a link is never followed)",
        ));
    }
    let fd = socket::socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
    let addr = UnixAddr::new(format!("/proc/self/fd/{}", node.as_raw_fd()).as_str())?;
    socket::connect(fd.as_raw_fd(), &addr)?;
    Ok(Channel::new(fd))
}
