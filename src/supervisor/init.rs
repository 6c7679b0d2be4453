//! The jail's pid 1: sysjail's own small init.
//!
//! It sets the jail up (the plan's jail steps), then starts processes when the
//! supervisor asks, reaps every process that ends in the jail (orphans
//! included), forwards signals, and lives until the last process of the jail
//! has exited, as the old manual promises: a daemon that double-forks keeps the
//! jail alive. Its exit status is the jail command's.
//!
//! It installs no signal handler: the kernel then ignores every signal that a
//! jailed process sends to pid 1, SIGKILL included. It learns of its children
//! through a signalfd and of requests through its channel to the supervisor.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::channel::Channel;
use super::proto::{FromInit, Status, ToInit};
use crate::plan::LaunchPlan;
use crate::sys::{jail, kernel::Real, raw, spawn};

/// Runs init; never returns.
pub fn run(plan: &LaunchPlan, chan: Channel) -> ! {
    let code = match main(plan, &chan) {
        Ok(code) => code,
        Err(error) => {
            let _ = chan.send(&FromInit::SetupFailed { error }, &[]);
            1
        }
    };
    // SAFETY: _exit: init never runs the destructors of the supervisor's copy.
    unsafe { libc::_exit(code) }
}

fn main(plan: &LaunchPlan, chan: &Channel) -> Result<i32, String> {
    // Die with the supervisor; and stay out of the jail's reach: not dumpable,
    // so jailed processes can neither ptrace init nor open its /proc files.
    raw::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64).map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    raw::prctl(libc::PR_SET_DUMPABLE, 0).map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))?;
    // Nothing of the supervisor's but the channel stays open.
    let keep = chan.fd().as_raw_fd();
    for fd in 3..keep {
        // SAFETY: closing descriptors this copy of the process does not use;
        // Rust objects holding them are never dropped here (init _exits).
        unsafe { libc::close(fd) };
    }
    raw::close_from(keep as u32 + 1).map_err(|e| format!("close_range: {e}"))?;

    let (prepared, fds) = match chan.recv::<ToInit>() {
        Ok(Some((ToInit::Go { prepared }, fds))) => (prepared, fds),
        // The supervisor died before the go-ahead.
        Ok(None) => return Ok(1),
        Ok(Some((other, _))) => return Err(format!("expected the go-ahead, got {other:?}")),
        Err(e) => return Err(format!("reading the go-ahead: {e}")),
    };
    if fds.len() != prepared {
        return Err(format!("expected {prepared} prepared mounts, got {}", fds.len()));
    }
    let mut prepared: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
    let outcome = jail::run(&plan.jail, &mut Real, &mut prepared).map_err(|e| e.to_string())?;
    let listener: Vec<i32> = outcome.listener.iter().map(|fd| fd.as_raw_fd()).collect();
    chan.send(
        &FromInit::Ready {
            notes: outcome.notes,
            listener: !listener.is_empty(),
        },
        &listener,
    )
    .map_err(|e| format!("reporting readiness: {e}"))?;
    drop(outcome.listener);
    serve(plan, chan)
}

/// Init's life after setup.
fn serve(plan: &LaunchPlan, chan: &Channel) -> Result<i32, String> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).map_err(|e| e.to_string())?;
    let sigfd =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| e.to_string())?;
    let rootless = plan.ids.single.is_some();
    // Spawned processes: pid -> (request id, is the jail's command).
    let mut spawned: BTreeMap<i32, (u64, bool)> = BTreeMap::new();
    let mut main_status: Option<Status> = None;
    let mut main_started = false;
    let mut supervisor_gone = false;
    loop {
        let mut fds = [
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(chan.fd().as_fd(), PollFlags::POLLIN),
        ];
        let n = if supervisor_gone { 1 } else { 2 };
        match poll(&mut fds[..n], PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.to_string()),
            Ok(_) => {}
        }
        let chan_ready = n == 2 && fds[1].revents().is_some_and(|r| !r.is_empty());
        if chan_ready {
            match chan.recv::<ToInit>() {
                Ok(Some((ToInit::Spawn { id, spawn: what, main }, stdio))) => {
                    let Ok(stdio) = <[OwnedFd; 3]>::try_from(stdio) else {
                        let _ = chan.send(
                            &FromInit::SpawnFailed {
                                id,
                                error: "stdio missing".into(),
                            },
                            &[],
                        );
                        continue;
                    };
                    match spawn::spawn(&what, stdio, &plan.ids, rootless) {
                        Ok(pid) => {
                            spawned.insert(pid, (id, main));
                            main_started |= main;
                            let _ = chan.send(&FromInit::Spawned { id, pid }, &[]);
                        }
                        Err(error) => {
                            if main {
                                main_started = true;
                                main_status = Some(Status::Code(127));
                            }
                            let _ = chan.send(&FromInit::SpawnFailed { id, error }, &[]);
                        }
                    }
                }
                Ok(Some((ToInit::Signal { id, signal }, _))) => {
                    let target = match id {
                        None => -1,
                        Some(id) => match spawned.iter().find(|(_, (i, _))| *i == id) {
                            Some((pid, _)) => *pid,
                            None => continue,
                        },
                    };
                    // SAFETY: kill(2) with integer arguments; -1 is every
                    // process of the jail's pid namespace but init.
                    unsafe { libc::kill(target, signal) };
                }
                Ok(Some((ToInit::Go { .. }, _))) => {}
                // The supervisor is gone: PR_SET_PDEATHSIG kills init anyway.
                Ok(None) | Err(_) => supervisor_gone = true,
            }
        }
        // Reap everything that ended, the jail's orphans included.
        while sigfd.read_signal().ok().flatten().is_some() {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    report(chan, &mut spawned, &mut main_status, pid.as_raw(), Status::Code(code))
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => report(
                    chan,
                    &mut spawned,
                    &mut main_status,
                    pid.as_raw(),
                    Status::Signal(sig as i32),
                ),
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => continue,
                Err(nix::errno::Errno::ECHILD) => {
                    if main_started || supervisor_gone {
                        return Ok(main_status.map_or(0, Status::exit_code));
                    }
                    break;
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

fn report(
    chan: &Channel,
    spawned: &mut BTreeMap<i32, (u64, bool)>,
    main_status: &mut Option<Status>,
    pid: i32,
    status: Status,
) {
    if let Some((id, main)) = spawned.remove(&pid) {
        if main {
            *main_status = Some(status);
        }
        let _ = chan.send(&FromInit::Exited { id, status }, &[]);
    }
}
