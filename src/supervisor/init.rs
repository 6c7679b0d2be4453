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
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::channel::Channel;
use super::proto::{FromInit, Status, ToInit};
use crate::plan::{LaunchPlan, Spawn};
use crate::policy::MountOp;
use crate::sys::kernel::{HostSources, Real};
use crate::sys::{jail, raw, spawn};

/// Runs init; never returns.
pub fn run(plan: &LaunchPlan, chan: Channel, sources: &HostSources) -> ! {
    let code = match main(plan, &chan, sources) {
        Ok(code) => code,
        Err(error) => {
            let _ = chan.send(&FromInit::SetupFailed { error }, &[]);
            1
        }
    };
    // SAFETY: _exit: init never runs the destructors of the supervisor's copy.
    unsafe { libc::_exit(code) }
}

fn prctl(option: i32, value: u64, what: &str) -> Result<(), String> {
    raw::prctl(option, value)
        .map(drop)
        .map_err(|e| format!("prctl({what}): {e}"))
}

fn main(plan: &LaunchPlan, chan: &Channel, sources: &HostSources) -> Result<i32, String> {
    // Die with the supervisor.
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64, "PR_SET_PDEATHSIG")?;
    // Leave the caller's session: its terminal is never a jail process's
    // controlling terminal, init's included.
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // Nor does init keep the caller's descriptors 0-2 (a terminal, a log):
    // the command gets what the supervisor passes it, init reports through
    // its channel.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    for fd in 0..3 {
        // SAFETY: dup2 onto this process's own 0-2, which no Rust object owns.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
    }
    drop(null);
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
    // The supervisor has written the id maps, which needs /proc/PID files that
    // a non-dumpable process denies an unprivileged supervisor. Now stay out of
    // the jail's reach: not dumpable, jailed processes can neither ptrace init
    // nor open its /proc files.
    prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")?;
    // What jailed processes see of init: its role and the jail, no host path.
    crate::sys::privs::set_cmdline(&format!("sysjail-init {}", plan.name))
        .map_err(|e| format!("setting init's command line: {e}"))?;
    let mut prepared: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
    let mut kernel = Real::new(sources.clone());
    let outcome = jail::run(&plan.jail, &mut kernel, &mut prepared).map_err(|e| match plan.key_of(e.index - 1) {
        Some(key) => format!("{e} (the definition's {key})"),
        None => e.to_string(),
    })?;
    // Changing credentials cleared the parent-death signal (commit_creds does):
    // arm it again. If the supervisor died meanwhile, the report below fails.
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64, "PR_SET_PDEATHSIG")?;
    // The supervisor takes the listener with pidfd_getfd: a descriptor sent
    // over the channel would take a sendmsg(2), which the new filter may
    // hand to the supervisor, not yet listening. Taking it needs init
    // dumpable, for this moment only, before any process of the jail exists.
    let listener = outcome.listener;
    if listener.is_some() {
        prctl(libc::PR_SET_DUMPABLE, 1, "PR_SET_DUMPABLE")?;
    }
    let ready = FromInit::Ready {
        notes: outcome.notes,
        listener: listener.as_ref().map(|fd| fd.as_raw_fd()),
    };
    chan.send(&ready, &[])
        .map_err(|e| format!("reporting readiness: {e}"))?;
    if listener.is_some() {
        match chan.recv::<ToInit>() {
            Ok(Some((ToInit::ListenerTaken, _))) => {}
            Ok(None) => return Ok(1),
            other => return Err(format!("expected the listener to be taken, got {other:?}")),
        }
        prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")?;
        drop(listener);
    }
    serve(plan, chan)
}

/// Where the jail's devpts is mounted, inside the jail.
fn devpts(plan: &LaunchPlan) -> PathBuf {
    let dev = plan.policy.mounts.iter().find(|m| matches!(m.op, MountOp::Dev { .. }));
    dev.map_or(PathBuf::from("/dev/pts"), |m| m.target.as_path().join("pts"))
}

/// Starts a requested process. With a terminal and no descriptors, it gets a
/// terminal of the jail's own devpts, whose master goes back to the supervisor.
fn start(plan: &LaunchPlan, what: &Spawn, fds: Vec<OwnedFd>, devpts: &Path) -> Result<(i32, Option<OwnedFd>), String> {
    let (stdio, master) = if what.tty && fds.is_empty() {
        let (master, slave) = spawn::open_pty(devpts).map_err(|e| format!("opening a terminal of the jail: {e}"))?;
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("dup: {e}"));
        ([dup(&slave)?, dup(&slave)?, slave], Some(master))
    } else {
        (
            <[OwnedFd; 3]>::try_from(fds).map_err(|_| "stdin, stdout and stderr missing".to_string())?,
            None,
        )
    };
    let pid = spawn::spawn(what, stdio, &plan.ids, plan.ids.single.is_some())?;
    Ok((pid, master))
}

/// Init's life after setup.
fn serve(plan: &LaunchPlan, chan: &Channel) -> Result<i32, String> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None).map_err(|e| e.to_string())?;
    let sigfd =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| e.to_string())?;
    let devpts = devpts(plan);
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
        if n == 2 && fds[1].revents().is_some_and(|r| !r.is_empty()) {
            match chan.recv::<ToInit>() {
                Ok(Some((ToInit::Spawn { id, spawn: what, main }, fds))) => match start(plan, &what, fds, &devpts) {
                    Ok((pid, master)) => {
                        spawned.insert(pid, (id, main));
                        main_started |= main;
                        let fds: Vec<i32> = master.iter().map(|m| m.as_raw_fd()).collect();
                        let _ = chan.send(&FromInit::Spawned { id, pid }, &fds);
                    }
                    Err(error) => {
                        if main {
                            main_started = true;
                            main_status = Some(Status::Code(127));
                        }
                        let _ = chan.send(&FromInit::SpawnFailed { id, error }, &[]);
                    }
                },
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
                Ok(Some((ToInit::Go { .. } | ToInit::ListenerTaken, _))) => {}
                // The supervisor is gone: PR_SET_PDEATHSIG kills init anyway.
                Ok(None) | Err(_) => supervisor_gone = true,
            }
        }
        // Reap everything that ended, the jail's orphans included.
        while sigfd.read_signal().ok().flatten().is_some() {}
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Status::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Status::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECHILD) => {
                    if main_started || supervisor_gone {
                        return Ok(main_status.map_or(0, Status::exit_code));
                    }
                    break;
                }
                Err(e) => return Err(e.to_string()),
            };
            if let Some((id, main)) = spawned.remove(&pid.as_raw()) {
                if main {
                    main_status = Some(status);
                }
                let _ = chan.send(&FromInit::Exited { id, status }, &[]);
            }
        }
    }
}
