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
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::channel::Channel;
use super::proto::{Awaited, Cause, FromInit, InitError, Status, StepFailure, ToInit, step_path};
use crate::plan::{LaunchPlan, Spawn};
use crate::policy::MountOp;
use crate::sys::jail::{Outcome, StepError};
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

/// Init's life: detach from the caller, await the go-ahead, set the jail up,
/// hand over the seccomp listener, then serve. `Ok(1)` when the supervisor
/// died on the way.
fn main(plan: &LaunchPlan, chan: &Channel, sources: &HostSources) -> Result<i32, InitError> {
    detach(chan)?;
    let Some(prepared) = await_go(chan)? else {
        return Ok(1);
    };
    let outcome = set_up(plan, chan, sources, prepared)?;
    // Changing credentials cleared the parent-death signal (commit_creds does):
    // arm it again. If the supervisor died meanwhile, the report below fails.
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64, "PR_SET_PDEATHSIG")?;
    if !report_ready(chan, outcome)? {
        return Ok(1);
    }
    serve(plan, chan)
}

fn prctl(option: i32, value: u64, name: &str) -> Result<(), InitError> {
    raw::prctl(option, value).map(drop).map_err(|e| InitError::Prctl {
        option: name.to_string(),
        cause: Cause::from(&e),
    })
}

fn detached(call: &str) -> impl FnOnce(Cause) -> InitError + '_ {
    move |cause| InitError::Detach {
        call: call.to_string(),
        cause,
    }
}

/// Dies with the supervisor, and keeps nothing of the caller's: not its
/// session, not its descriptors.
fn detach(chan: &Channel) -> Result<(), InitError> {
    prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64, "PR_SET_PDEATHSIG")?;
    // Leave the caller's session: its terminal is never a jail process's
    // controlling terminal, init's included.
    nix::unistd::setsid().map_err(|e| detached("setsid")(e.into()))?;
    // Nor does init keep the caller's descriptors 0-2 (a terminal, a log):
    // the command gets what the supervisor passes it, init reports through
    // its channel.
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| detached("/dev/null")((&e).into()))?;
    for fd in 0..3 {
        // SAFETY: dup2 onto this process's own 0-2, which no Rust object owns.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(detached("dup2")((&std::io::Error::last_os_error()).into()));
        }
    }
    drop(null);
    // Nothing of the supervisor's but the channel stays open.
    // Rust objects holding them are never dropped here (init _exits).
    raw::close_all_but(&[0, 1, 2, chan.fd().as_raw_fd() as u32]).map_err(|e| detached("close_range")((&e).into()))
}

/// The go-ahead and the prepared mounts; `None` if the supervisor died first.
fn await_go(chan: &Channel) -> Result<Option<Vec<OwnedFd>>, InitError> {
    let (prepared, fds) = match chan.recv::<ToInit>() {
        Ok(Some((ToInit::Go { prepared }, fds))) => (prepared, fds),
        Ok(None) => return Ok(None),
        Ok(Some((other, _))) => {
            return Err(InitError::OutOfTurn {
                awaited: Awaited::GoAhead,
                got: other.name().to_string(),
            });
        }
        Err(e) => {
            return Err(InitError::Channel {
                awaited: Awaited::GoAhead,
                cause: Cause::from(&e),
            });
        }
    };
    if fds.len() != prepared {
        return Err(InitError::PreparedMissing {
            expected: prepared,
            got: fds.len(),
        });
    }
    Ok(Some(fds))
}

/// Carries out the plan's jail steps.
fn set_up(
    plan: &LaunchPlan,
    chan: &Channel,
    sources: &HostSources,
    fds: Vec<OwnedFd>,
) -> Result<Outcome<OwnedFd>, InitError> {
    // The supervisor has written the id maps, which needs /proc/PID files that
    // a non-dumpable process denies an unprivileged supervisor. Now stay out of
    // the jail's reach: not dumpable, jailed processes can neither ptrace init
    // nor open its /proc files.
    prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")?;
    // What jailed processes see of init: its role and the jail, no host path.
    crate::sys::privs::set_cmdline(&format!("sysjail-init {}", plan.name))
        .map_err(|e| InitError::Cmdline(Cause::from(&e)))?;
    let mut prepared: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
    let mut kernel = Real::new(sources.clone(), || cgroups_joined(chan));
    jail::run(&plan.jail, &mut kernel, &mut prepared).map_err(|e| step_failed(plan, e))
}

/// The supervisor's word that init is in the jail's v1 cgroups.
fn cgroups_joined(chan: &Channel) -> io::Result<()> {
    match chan.recv::<ToInit>()? {
        Some((ToInit::CgroupsJoined, _)) => Ok(()),
        Some((other, _)) => Err(io::Error::other(format!(
            "expected the supervisor's cgroup moves, got {}",
            other.name()
        ))),
        None => Err(io::Error::from_raw_os_error(libc::EPIPE)),
    }
}

/// The failed step as init reports it, typed by the kind of step.
fn step_failed(plan: &LaunchPlan, e: StepError) -> InitError {
    let step = &plan.jail[e.index - 1];
    StepFailure {
        index: e.index,
        total: e.total,
        path: step_path(step),
        cause: Cause::from(&e.error),
        key: plan.key_of(e.index - 1).map(str::to_string),
        step: e.step,
    }
    .into_error(step)
}

/// Tells the supervisor the jail is set up, and lets it take the seccomp
/// listener; `false` if the supervisor died meanwhile.
fn report_ready(chan: &Channel, outcome: Outcome<OwnedFd>) -> Result<bool, InitError> {
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
    chan.send(&ready, &[]).map_err(|e| InitError::Report(Cause::from(&e)))?;
    if listener.is_some() {
        match chan.recv::<ToInit>() {
            Ok(Some((ToInit::ListenerTaken, _))) => {}
            Ok(None) => return Ok(false),
            Ok(Some((other, _))) => {
                return Err(InitError::OutOfTurn {
                    awaited: Awaited::ListenerTaken,
                    got: other.name().to_string(),
                });
            }
            Err(e) => {
                return Err(InitError::Channel {
                    awaited: Awaited::ListenerTaken,
                    cause: Cause::from(&e),
                });
            }
        }
        prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")?;
        drop(listener);
    }
    Ok(true)
}

/// Where the jail's devpts is mounted, inside the jail.
fn devpts(plan: &LaunchPlan) -> PathBuf {
    let dev = plan.policy.mounts.iter().find(|m| matches!(m.op, MountOp::Dev { .. }));
    dev.map_or(PathBuf::from("/dev/pts"), |m| m.target.as_path().join("pts"))
}

/// Starts a requested process. With a terminal and no descriptors, it gets a
/// terminal of the jail's own devpts, whose master goes back to the supervisor.
fn start(
    plan: &LaunchPlan,
    what: &Spawn,
    fds: Vec<OwnedFd>,
    devpts: &Path,
) -> Result<(i32, Option<OwnedFd>), InitError> {
    let (stdio, master) = if what.tty && fds.is_empty() {
        let terminal = |e: std::io::Error| InitError::Terminal(Cause::from(&e));
        let (master, slave) = spawn::open_pty(devpts).map_err(terminal)?;
        let dup = |fd: &OwnedFd| fd.try_clone().map_err(terminal);
        ([dup(&slave)?, dup(&slave)?, slave], Some(master))
    } else {
        (
            <[OwnedFd; 3]>::try_from(fds).map_err(|_| InitError::StdioMissing)?,
            None,
        )
    };
    let pid = spawn::spawn(what, stdio, &plan.ids, plan.ids.single.is_some()).map_err(InitError::Spawn)?;
    Ok((pid, master))
}

fn reaper(call: &str) -> impl FnOnce(nix::errno::Errno) -> InitError + '_ {
    move |e| InitError::Reaper {
        call: call.to_string(),
        cause: e.into(),
    }
}

/// Init's life after setup: start what the supervisor asks, reap what ends,
/// until the last process of the jail has exited.
fn serve(plan: &LaunchPlan, chan: &Channel) -> Result<i32, InitError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None).map_err(reaper("sigprocmask"))?;
    let sigfd =
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(reaper("signalfd"))?;
    let mut jail = Processes {
        devpts: devpts(plan),
        ..Processes::default()
    };
    loop {
        let mut fds = [
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(chan.fd().as_fd(), PollFlags::POLLIN),
        ];
        let n = if jail.supervisor_gone { 1 } else { 2 };
        match poll(&mut fds[..n], PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(reaper("poll")(e)),
            Ok(_) => {}
        }
        if n == 2 && fds[1].revents().is_some_and(|r| !r.is_empty()) {
            jail.on_request(plan, chan);
        }
        // Reap everything that ended, the jail's orphans included.
        while sigfd.read_signal().ok().flatten().is_some() {}
        if let Some(code) = jail.reap(chan)? {
            return Ok(code);
        }
    }
}

/// What init knows of the jail's processes.
#[derive(Default)]
struct Processes {
    /// Where the jail's devpts is.
    devpts: PathBuf,
    /// Spawned processes: pid -> (request id, is the jail's command).
    spawned: BTreeMap<i32, (u64, bool)>,
    main_status: Option<Status>,
    main_started: bool,
    supervisor_gone: bool,
}

impl Processes {
    /// Handles one message of the supervisor.
    fn on_request(&mut self, plan: &LaunchPlan, chan: &Channel) {
        match chan.recv::<ToInit>() {
            Ok(Some((ToInit::Spawn { id, spawn: what, main }, fds))) => {
                self.spawn(plan, chan, id, &what, main, fds);
            }
            Ok(Some((ToInit::Signal { id, signal }, _))) => self.signal(id, signal),
            Ok(Some((ToInit::Go { .. } | ToInit::ListenerTaken | ToInit::CgroupsJoined, _))) => {}
            // The supervisor is gone: PR_SET_PDEATHSIG kills init anyway.
            Ok(None) | Err(_) => self.supervisor_gone = true,
        }
    }

    fn spawn(&mut self, plan: &LaunchPlan, chan: &Channel, id: u64, what: &Spawn, main: bool, fds: Vec<OwnedFd>) {
        let first = !self.main_started;
        self.start(plan, chan, id, what, main, fds);
        if first && self.main_started {
            // Setup is over: from here init only reaps and starts processes.
            crate::sys::memory::shed_text();
            crate::sys::memory::trim_heap();
        }
    }

    fn start(&mut self, plan: &LaunchPlan, chan: &Channel, id: u64, what: &Spawn, main: bool, fds: Vec<OwnedFd>) {
        match start(plan, what, fds, &self.devpts) {
            Ok((pid, master)) => {
                self.spawned.insert(pid, (id, main));
                self.main_started |= main;
                let fds: Vec<i32> = master.iter().map(|m| m.as_raw_fd()).collect();
                let _ = chan.send(&FromInit::Spawned { id, pid }, &fds);
            }
            Err(error) => {
                if main {
                    self.main_started = true;
                    self.main_status = Some(Status::Code(127));
                }
                let _ = chan.send(&FromInit::SpawnFailed { id, error }, &[]);
            }
        }
    }

    /// Signals a spawned process, or with no id every process of the jail.
    fn signal(&self, id: Option<u64>, signal: i32) {
        let target = match id {
            None => -1,
            Some(id) => match self.spawned.iter().find(|(_, (i, _))| *i == id) {
                Some((pid, _)) => *pid,
                None => return,
            },
        };
        // SAFETY: kill(2) with integer arguments; -1 is every
        // process of the jail's pid namespace but init.
        unsafe { libc::kill(target, signal) };
    }

    /// Reaps every process that ended; `Some(status)` once none is left and
    /// init's work is done.
    fn reap(&mut self, chan: &Channel) -> Result<Option<i32>, InitError> {
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Status::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Status::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) => return Ok(None),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECHILD) => {
                    if self.main_started || self.supervisor_gone {
                        return Ok(Some(self.main_status.map_or(0, Status::exit_code)));
                    }
                    return Ok(None);
                }
                Err(e) => return Err(reaper("waitpid")(e)),
            };
            if let Some((id, main)) = self.spawned.remove(&pid.as_raw()) {
                if main {
                    self.main_status = Some(status);
                }
                let _ = chan.send(&FromInit::Exited { id, status }, &[]);
            }
        }
    }
}
