//! The client side of `sysjail exec`: asks the supervisor to start a command
//! in the jail, relays its terminal or its signals, and returns its status.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

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

/// Why the command did not start.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct NotStarted {
    /// The reason, with its code.
    pub error: String,
    /// The exit status for it: 127 when the program was not found, 126 when
    /// it could not be executed, 125 when sysjail failed before that.
    pub status: i32,
}

fn stdio(fd: i32) -> BorrowedFd<'static> {
    // SAFETY: 0, 1 and 2 are open for the life of the process.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Runs `exec` through the supervisor at the other end of `chan`; returns the
/// command's exit status (128 + N for a signal).
pub fn exec(chan: Channel, exec: Exec) -> io::Result<Result<i32, NotStarted>> {
    let mut relay = Relay::default();
    let master = match start(&chan, exec, &mut relay)? {
        Started::Running(master) => master,
        Started::Finished(outcome) => return Ok(outcome),
    };
    let sigfd = relayed_signals()?;
    let raw = master.as_ref().and_then(|_| tty::RawMode::enter(stdio(0)));
    if let (Some(m), Some((rows, cols))) = (&master, tty::winsize(stdio(0))) {
        tty::set_winsize(m.as_fd(), rows, cols);
    }
    let mut session = Session {
        chan: &chan,
        stdin_open: master.is_some(),
        master,
        raw,
        sigfd,
        relay,
    };
    loop {
        if let Some(outcome) = session.step()? {
            return Ok(outcome);
        }
    }
}

/// What the supervisor answered to the request.
enum Started {
    /// The command runs; with the master end of its terminal if it has one.
    Running(Option<OwnedFd>),
    /// It failed to start, or has already exited.
    Finished(Result<i32, NotStarted>),
}

/// Sends the request with the command's stdio and waits for it to start.
fn start(chan: &Channel, exec: Exec, relay: &mut Relay) -> io::Result<Started> {
    let tty = exec.tty;
    let request = Request::Exec {
        argv: exec.argv,
        user: exec.user,
        tty: exec.tty,
        term: std::env::var("TERM").ok(),
        workdir: exec.workdir,
    };
    // Never a descriptor of the caller's terminal, nor one of a file the jail
    // could overwrite: with a terminal the jail gets one of its own; without,
    // each such descriptor of 0-2 becomes a pipe this client relays, and the
    // others (pipes, sockets, /dev/null) are passed as they are.
    let passed: Vec<OwnedFd> = if tty {
        Vec::new()
    } else {
        (0..3).map(|fd| relay.stdio(fd)).collect::<io::Result<_>>()?
    };
    let raw: Vec<i32> = passed.iter().map(|f| f.as_raw_fd()).collect();
    chan.send(&request, &raw)?;
    drop(passed);
    match chan.recv::<Reply>()? {
        Some((Reply::Started { .. }, mut fds)) => Ok(Started::Running(fds.pop())),
        Some((Reply::Failed { error, status }, _)) => Ok(Started::Finished(Err(NotStarted { error, status }))),
        Some((Reply::Exited { status }, _)) => Ok(Started::Finished(Ok(status.exit_code()))),
        Some((other, _)) => Err(io::Error::other(format!("unexpected reply {other:?}"))),
        None => Err(io::Error::other("the supervisor closed the connection")),
    }
}

/// Blocks the signals the client passes on to the command and returns a
/// descriptor that reads them.
fn relayed_signals() -> io::Result<SignalFd> {
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
    Ok(SignalFd::with_flags(
        &signals,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// A started command: what the client relays until it exits.
struct Session<'a> {
    chan: &'a Channel,
    /// The master end of the command's terminal, while it is open.
    master: Option<OwnedFd>,
    /// The caller's terminal in raw mode, restored on drop.
    raw: Option<tty::RawMode>,
    sigfd: SignalFd,
    /// Whether the caller's stdin is still copied to the terminal.
    stdin_open: bool,
    relay: Relay,
}

/// Which of the descriptors a poll found ready.
struct Ready {
    reply: bool,
    signal: bool,
    master: bool,
    input: bool,
    /// One per open output pipe of the relay, in order.
    outputs: Vec<bool>,
}

impl Session<'_> {
    /// One round: waits for any descriptor and handles what is ready; the
    /// command's outcome once it has exited.
    fn step(&mut self) -> io::Result<Option<Result<i32, NotStarted>>> {
        let Some(ready) = self.poll()? else {
            return Ok(None);
        };
        if ready.master && !copy_to(self.master.as_ref().map(|m| m.as_fd()).expect("present"), 1, None) {
            self.master = None;
        }
        if ready.input {
            self.forward_input();
        }
        self.relay.copy_ready(&ready.outputs);
        if ready.signal {
            self.forward_signals();
        }
        if ready.reply {
            return self.on_reply();
        }
        Ok(None)
    }

    fn reads_stdin(&self) -> bool {
        self.stdin_open || self.relay.input.is_some()
    }

    /// Polls the channel, the signals, the terminal, stdin and the output
    /// pipes; None when interrupted.
    fn poll(&self) -> io::Result<Option<Ready>> {
        let mut fds = vec![
            PollFd::new(self.chan.fd().as_fd(), PollFlags::POLLIN),
            PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = &self.master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if self.reads_stdin() {
            fds.push(PollFd::new(stdio(0), PollFlags::POLLIN));
        }
        for out in self.relay.outputs.iter().flatten() {
            fds.push(PollFd::new(out.0.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let mut ready = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty()));
        let mut next = |polled: bool| polled && ready.next().unwrap_or(false);
        let (reply, signal) = (next(true), next(true));
        let master = next(self.master.is_some());
        let input = next(self.reads_stdin());
        Ok(Some(Ready {
            reply,
            signal,
            master,
            input,
            outputs: ready.collect(),
        }))
    }

    /// Copies what the caller typed to the terminal or the stdin pipe.
    fn forward_input(&mut self) {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(stdio(0), &mut buf) {
            Ok(0) | Err(_) => {
                self.stdin_open = false;
                // End of input: the jail's side of the pipe sees EOF.
                self.relay.input = None;
            }
            Ok(n) => {
                if let Some(m) = &self.master {
                    let _ = nix::unistd::write(m, &buf[..n]);
                }
                if let Some(p) = &self.relay.input
                    && write_all(p.as_fd(), &buf[..n]).is_err()
                {
                    self.relay.input = None;
                }
            }
        }
    }

    /// Passes the caller's signals on: a resize as the new window size, the
    /// others to the command.
    fn forward_signals(&self) {
        while let Ok(Some(info)) = self.sigfd.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGWINCH | libc::SIGCONT => {
                    if let Some(r) = &self.raw {
                        r.reapply();
                    }
                    if let Some((rows, cols)) = tty::winsize(stdio(0)) {
                        let _ = self.chan.send(&Request::Resize { rows, cols }, &[]);
                    }
                }
                sig => {
                    let _ = self.chan.send(&Request::Signal { signal: sig }, &[]);
                }
            }
        }
    }

    /// Handles a reply of the supervisor; the outcome once the command has
    /// exited or failed.
    fn on_reply(&mut self) -> io::Result<Option<Result<i32, NotStarted>>> {
        match self.chan.recv::<Reply>()? {
            Some((Reply::Exited { status }, _)) => {
                // The rest of the output.
                if let Some(m) = &self.master {
                    while copy_to(m.as_fd(), 1, Some(PollTimeout::ZERO)) {}
                }
                self.relay.drain();
                drop(self.raw.take());
                Ok(Some(Ok(status.exit_code())))
            }
            Some((Reply::Failed { error, status }, _)) => Ok(Some(Err(NotStarted { error, status }))),
            Some(_) => Ok(None),
            None => Err(io::Error::other("the jail stopped")),
        }
    }
}

/// The pipes that stand in for the caller's terminal when the command gets
/// none: the client copies between them and its own descriptors.
#[derive(Default)]
struct Relay {
    /// Write end of the command's stdin pipe.
    input: Option<OwnedFd>,
    /// Read ends of the command's stdout and stderr pipes, with the caller's
    /// descriptor each is copied to.
    outputs: [Option<(OwnedFd, i32)>; 2],
}

impl Relay {
    /// What the command gets as descriptor `fd`: a copy of the caller's,
    /// unless it is a terminal or a file the jail could overwrite; then the
    /// jail's end of a pipe (or, for input, a new read-only opening).
    fn stdio(&mut self, fd: i32) -> io::Result<OwnedFd> {
        match tty::stdio(stdio(fd)) {
            tty::Stdio::Pass => return stdio(fd).try_clone_to_owned(),
            tty::Stdio::Writable if fd == 0 => return tty::reopen_read_only(stdio(0)),
            tty::Stdio::Writable | tty::Stdio::Terminal => {}
        }
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        if fd == 0 {
            self.input = Some(write);
            Ok(read)
        } else {
            self.outputs[fd as usize - 1] = Some((read, fd));
            Ok(write)
        }
    }

    /// Copies each output pipe that `ready` marks; a closed one is dropped.
    fn copy_ready(&mut self, ready: &[bool]) {
        let mut ready = ready.iter();
        for slot in &mut self.outputs {
            if slot.is_some() && ready.next().copied().unwrap_or(false) {
                let (pipe, to) = slot.as_ref().expect("present");
                if !copy_to(pipe.as_fd(), *to, None) {
                    *slot = None;
                }
            }
        }
    }

    /// What is left in the output pipes once the command has exited.
    fn drain(&mut self) {
        for (pipe, to) in self.outputs.iter().flatten() {
            while copy_to(pipe.as_fd(), *to, Some(PollTimeout::ZERO)) {}
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = nix::unistd::write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// Copies what `from` (the jail's terminal or a pipe) has to the caller's
/// descriptor `to`; false when `from` is closed. What the caller no longer
/// takes is dropped, so that the jail never blocks on a full buffer.
fn copy_to(from: BorrowedFd<'_>, to: i32, wait: Option<PollTimeout>) -> bool {
    if let Some(t) = wait {
        let mut fds = [PollFd::new(from, PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, t), Ok(n) if n > 0) {
            return false;
        }
    }
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let _ = write_all(stdio(to), &buf[..n]);
            true
        }
    }
}
