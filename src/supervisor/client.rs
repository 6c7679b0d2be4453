//! The client side of `sysjail exec`: asks the supervisor to start a command
//! in the jail, relays its terminal or its signals, and returns its status.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::channel::Channel;
use super::proto::{Reply, Request};
use super::tty;
use crate::model::IdRef;

/// What to run.
pub struct Exec {
    /// argv.
    pub argv: Vec<String>,
    /// A user of the jail's /etc/passwd.
    pub user: Option<IdRef>,
    /// Give it a terminal.
    pub tty: bool,
    /// Working directory.
    pub workdir: Option<String>,
}

fn stdio(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: 0, 1 and 2 are open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Runs `exec` through the supervisor at the other end of `chan`; returns the
/// command's exit status (128 + N for a signal).
pub fn exec(chan: Channel, exec: Exec) -> io::Result<Result<i32, String>> {
    let request = Request::Exec {
        argv: exec.argv,
        user: exec.user,
        tty: exec.tty,
        term: std::env::var("TERM").ok(),
        workdir: exec.workdir,
    };
    let fds: Vec<i32> = if exec.tty { vec![] } else { vec![0, 1, 2] };
    chan.send(&request, &fds)?;
    let master: Option<OwnedFd> = match chan.recv::<Reply>()? {
        Some((Reply::Started { .. }, mut fds)) => fds.pop(),
        Some((Reply::Failed { error }, _)) => return Ok(Err(error)),
        Some((Reply::Exited { status }, _)) => return Ok(Ok(status.exit_code())),
        Some((other, _)) => return Err(io::Error::other(format!("unexpected reply {other:?}"))),
        None => return Err(io::Error::other("the supervisor closed the connection")),
    };
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGWINCH,
        Signal::SIGCONT,
    ] {
        signals.add(s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)?;
    let sigfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let raw = master.as_ref().and_then(|_| tty::RawMode::enter(stdio(0)));
    if let (Some(m), Some((rows, cols))) = (&master, tty::winsize(stdio(0))) {
        tty::set_winsize(m.as_fd(), rows, cols);
    }
    let mut master = master;
    let mut stdin_open = master.is_some();
    loop {
        let mut fds = vec![
            PollFd::new(chan.fd().as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdio(0), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut i = 2;
        if master.is_some() {
            if ready[i] && !copy(master.as_ref().map(|m| m.as_fd()).expect("present"), None) {
                master = None;
            }
            i += 1;
        }
        if stdin_open && ready[i] {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(stdio(0), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(m) = &master {
                        let _ = nix::unistd::write(m, &buf[..n]);
                    }
                }
            }
        }
        if ready[1] {
            while let Ok(Some(info)) = sigfd.read_signal() {
                match info.ssi_signo as i32 {
                    libc::SIGWINCH | libc::SIGCONT => {
                        if let Some(r) = &raw {
                            r.reapply();
                        }
                        if let Some((rows, cols)) = tty::winsize(stdio(0)) {
                            let _ = chan.send(&Request::Resize { rows, cols }, &[]);
                        }
                    }
                    sig => {
                        let _ = chan.send(&Request::Signal { signal: sig }, &[]);
                    }
                }
            }
        }
        if ready[0] {
            match chan.recv::<Reply>()? {
                Some((Reply::Exited { status }, _)) => {
                    // The rest of the output.
                    if let Some(m) = &master {
                        while copy(m.as_fd(), Some(PollTimeout::ZERO)) {}
                    }
                    drop(raw);
                    return Ok(Ok(status.exit_code()));
                }
                Some((Reply::Failed { error }, _)) => return Ok(Err(error)),
                Some(_) => {}
                None => return Err(io::Error::other("the jail stopped")),
            }
        }
    }
}

/// Copies what the terminal has to stdout; false when it is closed.
fn copy(master: BorrowedFd<'_>, wait: Option<PollTimeout>) -> bool {
    if let Some(t) = wait {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, t), Ok(n) if n > 0) {
            return false;
        }
    }
    let mut buf = [0u8; 8192];
    match nix::unistd::read(master, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
            true
        }
    }
}
