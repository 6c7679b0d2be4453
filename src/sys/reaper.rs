//! pid 1 of an exported OCI bundle (`sysjail oci-init`): sysjail's init
//! without a supervisor. It starts the jail's command, reaps every process
//! that ends in the jail (orphans included), forwards the signals the engine
//! sends it (`runc kill`, `ctr task kill`) to every process of the jail, and
//! lives until the last of them has exited, as the old manual promises.
//!
//! It installs no handler: it blocks the signals it forwards and reads them
//! from a signalfd. A blocked signal is queued whoever sends it, so init
//! itself drops those a jailed process sends, as the kernel drops them for an
//! init without handlers, and forwards those from outside the jail's pid
//! namespace (the engine's).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Signals forwarded to the jail.
const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Init's signals, taken before anything else so that none sent meanwhile
/// is lost.
pub struct Init {
    sigfd: SignalFd,
}

impl Init {
    /// Blocks the signals init reads (SIGCHLD and those it forwards).
    pub fn new() -> io::Result<Init> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        FORWARDED.iter().for_each(|&s| mask.add(s));
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        Ok(Init {
            sigfd: SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)?,
        })
    }

    /// Starts `command` and serves as init until no process of the jail is
    /// left; the command's exit status (128 + the signal that killed it).
    pub fn serve(self, command: &mut Command) -> io::Result<i32> {
        serve(self.sigfd, command)
    }
}

fn serve(sigfd: SignalFd, command: &mut Command) -> io::Result<i32> {
    // SAFETY: between fork and exec the child only calls sigprocmask(2),
    // which is async-signal-safe, on a mask of its own stack.
    unsafe {
        command
            .pre_exec(|| sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(io::Error::from));
    }
    let main = Pid::from_raw(command.spawn()?.id() as i32);
    let mut status = None;
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == main => status = Some(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => status = Some(128 + sig as i32),
                Ok(WaitStatus::StillAlive) => break,
                Err(nix::errno::Errno::ECHILD) => return Ok(status.unwrap_or(0)),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match sigfd.read_signal() {
            Ok(Some(info)) => {
                // A sender outside the jail's pid namespace has no pid in
                // it (0): the engine, or the kernel. A jailed sender's signal
                // is dropped, as the kernel drops it for an init without
                // handlers.
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
                    && sig != Signal::SIGCHLD
                    && info.ssi_pid == 0
                {
                    // -1: every process of the jail's pid namespace but init.
                    let _ = kill(Pid::from_raw(-1), sig);
                }
            }
            Ok(None) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
