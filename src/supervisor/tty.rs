//! Pseudo-terminals for jailed processes, and the caller's terminal.
//!
//! A jailed process never gets the caller's terminal: with one, it could push
//! input into the caller's shell (TIOCSTI, CVE-2017-5226). It gets a terminal
//! of the jail's own devpts instead, whose master the supervisor (or the
//! `exec` client) relays.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

/// True for a terminal master or slave of a devpts file system: what the
/// supervisor accepts from init as a terminal.
pub fn is_devpts(fd: &OwnedFd) -> bool {
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fs is written by the kernel before being read.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), fs.as_mut_ptr()) } < 0 {
        return false;
    }
    // SAFETY: fstatfs succeeded.
    unsafe { fs.assume_init() }.f_type == DEVPTS_SUPER_MAGIC
}

/// Copies the window size of `from` to `to`.
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    // SAFETY: winsize is plain data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ take a winsize pointer.
    if unsafe { libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0 {
        unsafe { libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

/// Sets a window size.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ takes a winsize pointer.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// The window size of a terminal.
pub fn winsize(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    (unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0).then_some((ws.ws_row, ws.ws_col))
}

/// The caller's terminal in raw mode, restored when dropped.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts `fd` in raw mode when it is a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw_mode = saved.clone();
        termios::cfmakeraw(&mut raw_mode);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw_mode).ok()?;
        Some(RawMode {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }

    /// Applies raw mode again (after the caller's shell resumed us).
    pub fn reapply(&self) {
        let mut raw_mode = self.saved.clone();
        termios::cfmakeraw(&mut raw_mode);
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &raw_mode);
    }

    /// Restores the saved mode (before stopping ourselves, say).
    pub fn restore(&self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

/// True when the descriptor is a terminal.
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// What the jail may be given of one of the caller's descriptors 0-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdio {
    /// The caller's terminal: never; a pty of the jail's, or a pipe.
    Terminal,
    /// A file the jail could truncate or overwrite (a regular file or a block
    /// device open for writing, say the administrator's log): for output, a
    /// pipe relayed by the supervisor or the client; for input, a new opening
    /// for reading only.
    Writable,
    /// A pipe, a socket, a character device such as /dev/null, or a file open
    /// for reading only: as it is.
    Pass,
}

/// Classifies the caller's descriptor `fd`.
pub fn stdio(fd: BorrowedFd<'_>) -> Stdio {
    if is_tty(fd) {
        return Stdio::Terminal;
    }
    let Ok(st) = nix::sys::stat::fstat(fd) else {
        return Stdio::Pass;
    };
    let kind = st.st_mode & libc::S_IFMT;
    if matches!(kind, libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR) {
        return Stdio::Pass;
    }
    let writable = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
        .map(|fl| fl & libc::O_ACCMODE != libc::O_RDONLY)
        .unwrap_or(true);
    if writable { Stdio::Writable } else { Stdio::Pass }
}

/// A new opening of the file `fd` refers to, for reading only: the jail can
/// neither write nor truncate it through this one.
pub fn reopen_read_only(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    crate::sys::hostpath::reopen(fd, libc::O_RDONLY | libc::O_NOCTTY)
}
