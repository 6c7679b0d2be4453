//! The janitor: a small process that outlives a supervisor killed with SIGKILL.
//!
//! The jail dies with its supervisor (init has PR_SET_PDEATHSIG), and so do
//! its network devices, with its network namespace, shortly after. What
//! remains are the cgroup directories and the registry record; the janitor
//! waits on a pipe from the supervisor and, when it closes without a word,
//! tears the jail down as its supervisor would have ([`state::teardown`]).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::state::{self, Record, Registry};

/// The janitor's pipe, kept by the supervisor.
pub struct Janitor {
    pipe: OwnedFd,
}

impl Janitor {
    /// The supervisor tore the jail down itself: the janitor has nothing to do.
    pub fn done(self) {
        let _ = nix::unistd::write(&self.pipe, &[DONE]);
    }
}

/// The byte a supervisor writes when it tore down the jail itself.
pub const DONE: u8 = b'd';

/// Starts the janitor of the jail `record` describes.
pub fn start(registry: Registry, record: Record) -> std::io::Result<Janitor> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the supervisor is single-threaded here; the child only reads a
    // pipe, removes files and exits.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => Ok(Janitor { pipe: write }),
        nix::unistd::ForkResult::Child => {
            drop(write);
            // Hold nothing of the supervisor's but the pipe and the state
            // directory (records are removed through its descriptor): a pipe
            // the janitor kept open would never tell its reader that all is done.
            // It _exits, so no Rust object closes them again.
            let _ = crate::sys::raw::close_all_but(&[read.as_raw_fd() as u32, registry.fd().as_raw_fd() as u32]);
            let _ = nix::unistd::setsid();
            for sig in [
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGHUP,
                libc::SIGQUIT,
                libc::SIGTSTP,
                libc::SIGTTIN,
                libc::SIGTTOU,
            ] {
                // SAFETY: ignoring signals; no handler runs.
                unsafe { libc::signal(sig, libc::SIG_IGN) };
            }
            // It waits, for as long as the jail lives: the launch's text is
            // not its to keep (its heap is still the supervisor's, untouched).
            crate::sys::memory::shed_text();
            let mut byte = [0u8; 1];
            let mut f = std::fs::File::from(read);
            let told = matches!(f.read(&mut byte), Ok(1) if byte[0] == DONE);
            if !told && let Ok(lock) = registry.lock() {
                // The record as the supervisor last wrote it (after a failed
                // step it names only what the launch made), and only while it
                // is still that supervisor's: a later command that found it
                // stale has torn the jail down already, and a new jail of the
                // same name may own the same cgroup and veth names by now.
                let own = registry.record_of(&lock, &record.name).filter(|r| {
                    r.supervisor_pid == record.supervisor_pid && r.supervisor_start == record.supervisor_start
                });
                if let Some(own) = own {
                    let _ = state::teardown_locked(&registry, &lock, &own);
                }
            }
            // SAFETY: the child of a fork exits without the parent's destructors.
            unsafe { libc::_exit(0) }
        }
    }
}
