//! Stage 6, the supervisor: creates the jail from its launch plan and keeps it.
//!
//! `sysjail up` is the supervisor. It makes the jail's cgroups, creates init
//! in new namespaces (clone3), maps its ids, hands it id-mapped mounts, lets
//! it set the jail up, starts the jail's command through it, and then serves:
//! signals, `exec` and `down` requests on the control socket, the seccomp
//! listener, and the terminal. When init exits the jail is over; the supervisor
//! removes what is left and exits with the command's status.

pub mod channel;
pub mod client;
pub mod control;
pub mod hooks;
mod init;
mod jail_hooks;
pub mod janitor;
pub mod journal;
pub mod lifecycle;
mod notify;
pub mod proto;
mod sockets;
pub mod tty;

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use channel::Channel;
use lifecycle::{Outcome, Pending, StopCause};
pub use lifecycle::{Report, pause, sd_notify};
use proto::{FromInit, InitError, Reply, Request, Status, ToInit};

pub use crate::launch::{Awaiting, Launch, UpError};
use crate::plan::{LaunchPlan, Spawn, SpawnUser};
use crate::state::{JailState, Record, Registry};
use crate::sys::logfile::{self, LogFile};
use crate::sys::{raw, setup};

/// Init ended, or said something out of turn, where it had to answer.
fn silent_init(received: io::Result<Option<(FromInit, Vec<OwnedFd>)>>, awaiting: Awaiting) -> UpError {
    match received {
        Ok(None) => UpError::InitExited,
        Ok(Some((msg, _))) => UpError::InitOutOfTurn {
            awaiting,
            got: msg.name(),
        },
        Err(error) => UpError::InitUnreadable { awaiting, error },
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> UpError {
    let what = what.into();
    move |error| UpError::Io { what, error }
}

/// The host files a supervisor writes for its jail, opened before anything
/// else is made (sys::logfile: no link followed, a regular file of the
/// caller's own).
pub struct Logs {
    /// A background jail's output (`log`).
    pub output: Option<Sink>,
    /// Denied calls (`log-denials`, `--log-denials`).
    pub denials: Option<LogFile>,
}

/// Where the supervisor puts a background jail's output.
#[derive(Debug)]
pub enum Sink {
    /// A log file, rotated at its cap.
    File(LogFile),
    /// The journal, through systemd-cat.
    Journal(journal::JournalCat),
}

impl Sink {
    /// Appends `bytes`; true when a log file rotated (a new descriptor).
    fn write(&mut self, bytes: &[u8]) -> io::Result<bool> {
        match self {
            Sink::File(log) => log.write(bytes),
            Sink::Journal(cat) => cat.write(bytes).map(|()| false),
        }
    }

    /// The descriptor the supervisor's own messages go to.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Sink::File(log) => log.as_fd(),
            Sink::Journal(cat) => cat.as_fd(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Sink::File(log) => format!("log {}", log.path().display()),
            Sink::Journal(_) => "the journal".to_string(),
        }
    }
}

impl Logs {
    /// Where a background jail's output goes: `log`, or NAME.log in the
    /// state directory for the jail's `name`; `None` for the journal or a
    /// jail in the foreground, and for the default log of a jail named by a
    /// JID not yet given (`name` empty).
    pub fn output_path(launch: &Launch, name: &str) -> Option<std::path::PathBuf> {
        if !launch.background {
            return None;
        }
        match &launch.jail.log {
            Some(crate::model::LogTarget::File(path)) => Some(path.as_path().to_path_buf()),
            Some(crate::model::LogTarget::Journal) => None,
            None if name.is_empty() => None,
            None => std::path::absolute(launch.registry.dir().join(Registry::log_name(name))).ok(),
        }
    }

    /// Opens the background output of jail `name` ([`Logs::output_path`]).
    pub fn output(launch: &Launch, name: &str) -> Result<Option<Sink>, UpError> {
        if launch.background && launch.jail.log == Some(crate::model::LogTarget::Journal) {
            // Its identifier is the name: none yet, none opened yet.
            return Ok(match name.is_empty() {
                true => None,
                false => Some(Sink::Journal(journal::JournalCat::start(name)?)),
            });
        }
        Ok(match Logs::output_path(launch, name) {
            Some(path) => Some(Sink::File(logfile::open_log(&path, launch.jail.log_size.0)?)),
            None => None,
        })
    }

    /// Opens the logs `launch` asks for, for jail `name` (empty for a jail
    /// named by a JID not yet given: its default output log is opened once
    /// the JID is known).
    pub fn open(launch: &Launch, name: &str) -> Result<Logs, UpError> {
        let cap = launch.jail.log_size.0;
        let output = Logs::output(launch, name)?;
        let denials = match (&launch.log_denials, &launch.jail.log_denials) {
            // Relative to the working directory, whose path getcwd(3) gives
            // without links.
            (Some(path), _) => {
                let path = std::path::absolute(path).map_err(io_err(format!("{}", path.display())))?;
                Some(logfile::open_log(&path, cap)?)
            }
            (None, Some(path)) => Some(logfile::open_log(path.as_path(), cap)?),
            (None, None) => None,
        };
        Ok(Logs { output, denials })
    }
}

/// A pipe this supervisor relays from: (read end, write end), the read end
/// non-blocking, since the event loop reads what is there and never waits.
fn relay_pipe() -> Result<(OwnedFd, OwnedFd), UpError> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("pipe")(e.into()))?;
    nix::fcntl::fcntl(&read, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
        .map_err(|e| io_err("pipe")(e.into()))?;
    Ok((read, write))
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: 0, 1 and 2 stay open for the process's life.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Which side of the fork of a background launch this is.
pub enum Detach {
    /// The waiting command, with its exit status.
    Parent(i32),
    /// The detached supervisor.
    Child(Report),
}

/// Forks: the parent waits until the jail runs (or fails) and returns; the
/// child becomes the detached supervisor.
pub fn background(print_id: bool) -> Result<Detach, UpError> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| UpError::Io {
        what: "pipe".into(),
        error: e.into(),
    })?;
    // SAFETY: single-threaded; the child continues as the supervisor.
    match unsafe { nix::unistd::fork() }.map_err(|e| UpError::Io {
        what: "fork".into(),
        error: e.into(),
    })? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(write);
            match lifecycle::read_report(read) {
                Ok(jid) => {
                    if print_id {
                        crate::println_lossy!("{jid}");
                    }
                    Ok(Detach::Parent(0))
                }
                Err((status, why)) => {
                    crate::eprintln_lossy!("sysjail: {why}");
                    Ok(Detach::Parent(status))
                }
            }
        }
        nix::unistd::ForkResult::Child => {
            drop(read);
            let _ = nix::unistd::setsid();
            Ok(Detach::Child(Report { pipe: Some(write) }))
        }
    }
}

/// A detached supervisor reads nothing and writes its messages to the jail's
/// log, or nowhere (the old manual: standard input and output to /dev/null).
pub fn detach_stdio(log: Option<BorrowedFd<'_>>) {
    let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") else {
        return;
    };
    // SAFETY: dup2 onto 0 of a descriptor we hold.
    unsafe { libc::dup2(null.as_raw_fd(), 0) };
    stdout_to(log.unwrap_or(null.as_fd()));
}

/// Points the supervisor's stdout and stderr at `fd` (the log, again after
/// it rotated).
fn stdout_to(fd: BorrowedFd<'_>) {
    // SAFETY: dup2 onto 1 and 2 of a descriptor we hold.
    unsafe {
        libc::dup2(fd.as_raw_fd(), 1);
        libc::dup2(fd.as_raw_fd(), 2);
    }
}

/// The signals the supervisor handles, read through a signalfd.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGTSTP,
        Signal::SIGCHLD,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    set
}

/// Writes the record, as far as the registry lets it.
fn persist(registry: &crate::state::Registry, record: &Record) {
    if let Ok(lock) = registry.lock() {
        let _ = registry.write(&lock, record);
    }
}

/// Runs the jail the plan describes until it ends; returns the exit status
/// of `sysjail up`. The supervisor's steps go through [`setup::run`], init's
/// through [`init::run`]; then the event loop serves the jail.
pub fn run(
    launch: &Launch,
    plan: &LaunchPlan,
    record: &mut Record,
    control: OwnedFd,
    logs: Logs,
    detached: Option<&mut Report>,
) -> Result<Outcome, UpError> {
    let sigfd = block_signals()?;
    let sources = resolve_sources(plan)?;
    let (chan, init_chan) = Channel::pair().map_err(io_err("socketpair"))?;
    let mut host = setup::Real::new(move || init::run(plan, init_chan, &sources));
    let started = match setup::run(&plan.host, &plan.ids, &mut host) {
        Ok(started) => started,
        Err(e) => {
            // Teardown removes what this launch made, never a cgroup or a
            // veth of the same name that was there before.
            record.cgroups.clone_from(&e.created.cgroups);
            record.veth.clone_from(&e.created.veth);
            persist(&launch.registry, record);
            return Err(e.into());
        }
    };
    drop(host);
    let hooks = launch.jail.lifecycle.hooks.clone();
    let mut jail = Running::new(plan, chan, started.init.pidfd, sigfd, control, logs, hooks);
    jail.go(started.prepared, started.joins)?;
    record.init_pid = Some(started.init.pid);
    let registry = &launch.registry;
    // -i in the foreground: the JID comes first on our standard output,
    // before anything the command writes there.
    if launch.print_id && !launch.background {
        let _ = writeln!(std::io::stdout(), "{}", record.id);
    }
    jail.start_main(launch)?;
    record.run.command_pid = jail.command_pid(started.init.pid);
    record.state = JailState::Running;
    if let Ok(lock) = registry.lock() {
        registry.write(&lock, record)?;
    }
    match detached {
        Some(report) => {
            let window = launch.jail.lifecycle.start_window;
            jail.pending = Some(Pending {
                report: report.take(),
                jid: record.id,
                deadline: Instant::now() + window,
                window,
                early: Vec::new(),
            });
            jail.start_poststart();
            jail.settle(false);
        }
        // Ready once the command runs and its poststart hooks succeeded.
        None if jail.main_error.is_none() && !jail.start_poststart() => sd_notify("READY=1"),
        None => {}
    }
    // The launch is done: the event loop is a small part of the program.
    crate::sys::memory::shed_text();
    crate::sys::memory::trim_heap();
    Ok(jail.serve(registry, record))
}

fn block_signals() -> Result<SignalFd, UpError> {
    let signals = handled_signals();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).map_err(|e| UpError::io("sigprocmask", e))?;
    SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| UpError::io("signalfd", e))
}

/// Resolves every host tree the jail mounts under the host-path rule, before
/// anything of the jail exists: the root and bind sources, each to the
/// link-free path the jail's init opens it by.
fn resolve_sources(plan: &LaunchPlan) -> Result<crate::sys::kernel::HostSources, UpError> {
    let mut sources = crate::sys::kernel::HostSources::new();
    for (source, root) in plan.host_paths() {
        let found = crate::sys::hostpath::open(source.as_path())?;
        if root && !found.stat.is_dir() {
            return Err(crate::sys::hostpath::HostPathError::NotADirectory {
                path: source.as_path().to_path_buf(),
                at: found.path,
            }
            .into());
        }
        sources.insert(source.clone(), found.path);
    }
    Ok(sources)
}

/// An `exec` client.
struct Client {
    chan: Channel,
    /// The spawn it asked for, once sent.
    id: Option<u64>,
    /// The terminal's master, kept to resize it.
    master: Option<OwnedFd>,
}

/// A background jail's output: the jail writes into a pipe, and the
/// supervisor copies it to the log. Holding the log itself, the jail could
/// truncate or seek it, or fill the host's disk.
struct Output {
    log: Sink,
    /// The pipe's read end, once the command runs, until every writer is gone.
    pipe: Option<OwnedFd>,
    /// A write to the log failed: said once.
    failed: bool,
}

/// A running jail, from the supervisor's side.
struct Running<'p> {
    plan: &'p LaunchPlan,
    chan: Channel,
    init_pidfd: OwnedFd,
    sigfd: SignalFd,
    control: OwnedFd,
    listener: Option<OwnedFd>,
    clients: Vec<Client>,
    next_id: u64,
    main_status: Option<Status>,
    main_error: Option<InitError>,
    /// The main command's terminal, relayed to ours.
    master: Option<OwnedFd>,
    raw_mode: Option<tty::RawMode>,
    stdin_open: bool,
    stop_deadline: Option<Instant>,
    /// Jail root's reboot(2) halted the jail, with the signal the kernel
    /// would have given a pid namespace's init.
    halted: Option<i32>,
    /// Read ends of the pipes that stand for our stdout and stderr where
    /// those are files the jail must not hold.
    file_pipes: [Option<OwnedFd>; 2],
    stop_timeout: Duration,
    stop_signal: i32,
    notifier: notify::Notifier,
    output: Option<Output>,
    /// A background start not yet reported to `up -b`.
    pending: Option<Pending>,
    /// A background start that failed, to report after teardown.
    failed_start: Option<lifecycle::FailedStart>,
    /// Why a stop was asked, and whether the stop timeout ran out.
    stop_cause: Option<(StopCause, bool)>,
    /// `[hooks]`: poststart and prestop run here.
    hook_commands: crate::model::Hooks,
    /// The hooks running now.
    hooks: Option<jail_hooks::JailHooks>,
    /// Where hooks in the jail write: the command's output.
    hook_out: Option<OwnedFd>,
    /// A poststart hook failed: the jail stops, with its status.
    hook_failure: Option<hooks::HookError>,
    /// The prestop hooks ran (or must not).
    prestop_done: bool,
}

impl<'p> Running<'p> {
    fn new(
        plan: &'p LaunchPlan,
        chan: Channel,
        init_pidfd: OwnedFd,
        sigfd: SignalFd,
        control: OwnedFd,
        logs: Logs,
        hook_commands: crate::model::Hooks,
    ) -> Self {
        Running {
            plan,
            chan,
            init_pidfd,
            sigfd,
            control,
            listener: None,
            clients: Vec::new(),
            next_id: 1,
            main_status: None,
            main_error: None,
            master: None,
            raw_mode: None,
            stdin_open: false,
            stop_deadline: None,
            halted: None,
            file_pipes: [None, None],
            stop_timeout: Duration::from_millis(plan.policy.process.stop_timeout_ms),
            stop_signal: plan.policy.process.stop_signal.number(),
            notifier: notify::Notifier::new(plan, logs.denials),
            output: logs.output.map(|log| Output {
                log,
                pipe: None,
                failed: false,
            }),
            pending: None,
            failed_start: None,
            stop_cause: None,
            hook_commands,
            hooks: None,
            hook_out: None,
            hook_failure: None,
            prestop_done: false,
        }
    }

    /// The command's pid on the host: init's only child right after the
    /// spawn (/proc/PID/task/PID/children; `None` where the kernel lacks it).
    fn command_pid(&self, init: i32) -> Option<i32> {
        if self.main_error.is_some() {
            return None;
        }
        let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// Starts the poststart hooks once the command runs; false if none started.
    fn start_poststart(&mut self) -> bool {
        self.main_error.is_none() && self.start_hooks(hooks::Phase::Poststart)
    }

    /// Reports a background start once it is decided: the command could not
    /// be executed, ended within the start window (a failure unless it
    /// exited 0), or lasted the window. `done`: the jail is over.
    fn settle(&mut self, done: bool) {
        let Some(pending) = &mut self.pending else { return };
        let name = &self.plan.name;
        let poststart = self.hooks.as_ref().is_some_and(|h| h.phase == hooks::Phase::Poststart);
        let failure = if let Some(e) = &self.hook_failure {
            Some((e.status(), format!("{name}: {e}")))
        } else if poststart && !done {
            return;
        } else if let Some(e) = &self.main_error {
            Some((e.exit_status(), format!("{name}: {e}")))
        } else {
            match self.main_status {
                Some(proto::Status::Code(0)) => None,
                Some(status) => Some((status.exit_code(), pending.died(name, status))),
                None if done => Some((1, format!("{name}: the jail ended within its start window"))),
                None if Instant::now() < pending.deadline => return,
                None => None,
            }
        };
        let mut pending = self.pending.take().expect("checked above");
        match failure {
            // Reported once the jail is torn down: when `up -b` fails,
            // only the history record is left. Whatever the command left
            // running goes with the jail.
            Some((status, why)) => {
                let _ = raw::pidfd_send_signal(self.init_pidfd.as_fd(), libc::SIGKILL);
                self.failed_start = Some(lifecycle::FailedStart {
                    report: pending.report,
                    status,
                    why,
                });
            }
            None => {
                pending.report.running(pending.jid);
                sd_notify("READY=1");
            }
        }
    }

    /// Sends init its go-ahead with the prepared mounts, tells it when its
    /// cgroup moves are done, and waits until it has set the jail up; takes
    /// its seccomp listener.
    fn go(&mut self, prepared: Vec<OwnedFd>, joins: setup::Joins<setup::Moving>) -> Result<(), UpError> {
        let raw_fds: Vec<RawFd> = prepared.iter().map(|fd| fd.as_raw_fd()).collect();
        let sent = self.chan.send(
            &ToInit::Go {
                prepared: prepared.len(),
            },
            &raw_fds,
        );
        drop(prepared);
        if let Err(e) = sent {
            drop(joins.finish());
            self.kill();
            return Err(UpError::io("sending the go-ahead", e));
        }
        if joins.any() {
            if let Err(e) = joins.finish() {
                self.kill();
                return Err(e.into());
            }
            // If init failed on the way, its report follows: read below.
            let _ = self.chan.send(&ToInit::CgroupsJoined, &[]);
        }
        match self.chan.recv::<FromInit>() {
            Ok(Some((FromInit::Ready { notes, listener }, _))) => {
                for n in notes {
                    // What the kernel could not enforce is a warning; the rest, notes.
                    if n.contains("partially") || n.contains("not enforced") {
                        tracing::warn!("{n}");
                    } else {
                        tracing::debug!("{n}");
                    }
                }
                match listener.map(|fd| self.take_listener(fd)).transpose() {
                    Ok(l) => self.listener = l,
                    Err(e) => {
                        self.kill();
                        return Err(e);
                    }
                }
                Ok(())
            }
            Ok(Some((FromInit::SetupFailed { error }, _))) => {
                self.wait_init();
                Err(UpError::Init(error))
            }
            other => {
                self.kill();
                Err(silent_init(other, Awaiting::Setup))
            }
        }
    }

    /// Takes the seccomp listener from init rather than having it sent:
    /// sending a descriptor is a sendmsg(2), which the new filter may hand to
    /// this very supervisor, not yet listening.
    fn take_listener(&mut self, fd: RawFd) -> Result<OwnedFd, UpError> {
        let l = raw::pidfd_getfd(self.init_pidfd.as_fd(), fd).map_err(io_err("taking the seccomp listener"))?;
        self.chan
            .send(&ToInit::ListenerTaken, &[])
            .map_err(io_err("telling init the listener is taken"))?;
        // Each notification blocks a jailed thread until answered: wake the
        // supervisor on the caller's CPU (Linux 6.6; best effort, as older
        // kernels lack the flag).
        let _ = raw::seccomp_notify_sync_wakeup(l.as_fd());
        Ok(l)
    }

    fn kill(&mut self) {
        let _ = raw::pidfd_send_signal(self.init_pidfd.as_fd(), libc::SIGKILL);
        self.wait_init();
    }

    /// Reaps init; returns its wait status as (code, signal).
    fn wait_init(&mut self) -> (i32, i32) {
        setup::reap(&self.init_pidfd)
    }

    /// The jail's stdio: /dev/null and a pipe to the log (or /dev/null) in the
    /// background, a terminal of the jail's own when the caller has one (none
    /// is passed: init makes it), else the caller's descriptors.
    fn main_stdio(&mut self, launch: &Launch, tty: bool) -> Result<Vec<OwnedFd>, UpError> {
        let null = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(io_err("/dev/null"))
        };
        if let Some(stdio) = &launch.stdio {
            stdio.iter().map(|fd| fd.try_clone().map_err(io_err("dup"))).collect()
        } else if launch.background {
            let out = match &mut self.output {
                Some(output) => {
                    let (read, write) = relay_pipe()?;
                    output.pipe = Some(read);
                    write
                }
                None => null()?,
            };
            let err = out.try_clone().map_err(io_err("dup"))?;
            Ok(vec![null()?, out, err])
        } else if tty {
            Ok(Vec::new())
        } else {
            // The caller's descriptors, but never one of a file the jail could
            // truncate or overwrite (an administrator's log): output to such
            // a file goes through a pipe this supervisor relays, input from
            // it is opened anew, for reading only.
            [0, 1, 2]
                .into_iter()
                .map(|fd| match (fd, tty::stdio(borrow(fd))) {
                    (0, tty::Stdio::Writable) => tty::reopen_read_only(borrow(0)).map_err(io_err("reopening stdin")),
                    (1 | 2, tty::Stdio::Writable) => {
                        let (read, write) = relay_pipe()?;
                        self.file_pipes[fd as usize - 1] = Some(read);
                        Ok(write)
                    }
                    _ => borrow(fd).try_clone_to_owned().map_err(io_err("dup")),
                })
                .collect()
        }
    }

    fn start_main(&mut self, launch: &Launch) -> Result<(), UpError> {
        let mut spawn = self.plan.spawn.clone();
        spawn.tty = spawn.tty && !launch.background;
        let stdio = self.main_stdio(launch, spawn.tty)?;
        if !(self.hook_commands.poststart.is_empty() && self.hook_commands.prestop.is_empty()) {
            self.hook_out = Some(self.hook_output(&stdio)?);
        }
        let fds: Vec<RawFd> = stdio.iter().map(|f| f.as_raw_fd()).collect();
        let request = ToInit::Spawn {
            id: 0,
            spawn: Box::new(spawn),
            main: true,
        };
        self.chan.send(&request, &fds).map_err(io_err("starting the command"))?;
        drop(stdio);
        // The answer comes before anything else the command could cause.
        match self.chan.recv::<FromInit>() {
            Ok(Some((FromInit::Spawned { .. }, mut fds))) => {
                if let Some(master) = fds.pop().filter(tty::is_devpts) {
                    let caller = [0, 1, 2].into_iter().map(borrow).find(|fd| tty::is_tty(*fd));
                    if let Some(caller) = caller {
                        tty::copy_winsize(caller, master.as_fd());
                    }
                    self.raw_mode = tty::RawMode::enter(borrow(0));
                    self.stdin_open = tty::is_tty(borrow(0));
                    self.master = Some(master);
                }
                Ok(())
            }
            Ok(Some((FromInit::SpawnFailed { error, .. }, _))) => {
                self.main_error = Some(error);
                Ok(())
            }
            // Init is gone before it could answer: the command may have run
            // and ended the jail at once (jail root's reboot(2) kills init).
            // The event loop reports how init ended.
            Ok(None) => Ok(()),
            other => Err(silent_init(other, Awaiting::Spawn)),
        }
    }

    /// Where the jail's hooks write: where the command does, or with a
    /// terminal (which hooks never get) a pipe this supervisor relays to
    /// its own output.
    fn hook_output(&mut self, stdio: &[OwnedFd]) -> Result<OwnedFd, UpError> {
        if let Some(out) = stdio.get(1) {
            return out.try_clone().map_err(io_err("dup"));
        }
        let (read, write) = relay_pipe()?;
        self.file_pipes[0] = Some(read);
        Ok(write)
    }

    /// The event loop; returns the exit status once init has exited.
    fn serve(mut self, registry: &Registry, record: &mut Record) -> Outcome {
        let mut init_alive = true;
        while init_alive {
            let next = [
                self.stop_deadline,
                self.pending.as_ref().map(|p| p.deadline),
                self.hooks.as_ref().and_then(|h| h.deadline()),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = match next {
                Some(d) => {
                    PollTimeout::try_from(d.saturating_duration_since(Instant::now())).unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            let (events, n_fixed) = self.poll(timeout);
            init_alive = self.dispatch(&events, n_fixed, registry, record);
            if let Some(d) = self.stop_deadline
                && Instant::now() >= d
            {
                let _ = raw::pidfd_send_signal(self.init_pidfd.as_fd(), libc::SIGKILL);
                self.stop_deadline = None;
                if let Some((_, timed_out)) = &mut self.stop_cause {
                    *timed_out = true;
                }
            }
            self.hook_timeouts();
            self.settle(false);
        }
        self.drain();
        let (code, signal) = self.wait_init();
        self.settle(true);
        drop(self.raw_mode.take());
        self.tell_clients_killed();
        self.report_denials();
        let status = self.exit_status(code, signal);
        let mut ended = lifecycle::ended(
            status,
            self.main_status,
            signal,
            self.main_error.is_some(),
            self.halted.is_some(),
            self.stop_cause,
        );
        if self.hook_failure.is_some() {
            ended.reason = crate::state::EndReason::HookFailed;
        }
        Outcome {
            status,
            ended,
            by_down: self.stop_cause.is_some_and(|(c, _)| c == StopCause::Down),
            failed_start: self.failed_start.take(),
            restart: self.stop_cause.is_some_and(|(c, _)| c == StopCause::Restart),
        }
    }

    /// Handles each ready source, by the slots of [`Running::poll`]; returns
    /// whether init is still alive.
    fn dispatch(&mut self, events: &[bool], n_fixed: usize, registry: &Registry, record: &mut Record) -> bool {
        let ready = |i: usize| events.get(i).copied().unwrap_or(false);
        if ready(1) {
            self.read_init();
        }
        if ready(2) {
            self.on_signals(registry, record);
        }
        if ready(3) {
            self.accept();
        }
        if ready(4) {
            self.notification();
        }
        if ready(5) {
            self.relay_output();
        }
        if ready(6) {
            self.relay_input();
        }
        if ready(7) {
            self.relay_log();
        }
        for i in 0..2 {
            if ready(8 + i) {
                self.relay_file(i);
            }
        }
        let client_events: Vec<usize> = (0..self.clients.len()).filter(|i| ready(n_fixed + i)).collect();
        for i in client_events.into_iter().rev() {
            self.read_client(i, registry, record);
        }
        !ready(0)
    }

    /// Once init has exited: what it said before (the command's status), and
    /// the output still in the terminal or the pipes.
    fn drain(&mut self) {
        while let Ok(Some((msg, fds))) = self.chan.recv::<FromInit>() {
            self.handle_init(msg, fds);
        }
        while self.master.is_some() && self.relay_output() {}
        while self.relay_log() {}
        while self.relay_file(0) || self.relay_file(1) {}
        self.notifier.finish();
    }

    /// Clients whose command was still running learn that it was killed.
    fn tell_clients_killed(&self) {
        for c in &self.clients {
            if c.id.is_some() {
                let _ = c.chan.send(
                    &Reply::Exited {
                        status: Status::Signal(libc::SIGKILL),
                    },
                    &[],
                );
            }
        }
    }

    fn report_denials(&self) {
        let summary = self.notifier.summary();
        if !summary.is_empty() {
            let total: u64 = self.notifier.denied.values().sum();
            let calls = if total == 1 { "call" } else { "calls" };
            crate::eprintln_lossy!("sysjail: {}: the policy denied {total} {calls}:", self.plan.name);
            for line in summary {
                crate::eprintln_lossy!("sysjail: {line}");
            }
        }
    }

    /// The jail's exit status, from how the command and init ended.
    fn exit_status(&self, code: i32, signal: i32) -> i32 {
        if let Some(signal) = self.halted {
            crate::eprintln_lossy!("sysjail: {}: halted by reboot(2) from jail root", self.plan.name);
            return 128 + signal;
        }
        if let Some(e) = &self.hook_failure {
            return e.status();
        }
        if let Some(e) = &self.main_error {
            crate::eprintln_lossy!("sysjail: {e}");
            return e.exit_status();
        }
        match (self.main_status, signal) {
            (Some(status), _) if signal == 0 || signal == libc::SIGKILL && self.stop_deadline.is_none() => {
                status.exit_code()
            }
            (Some(status), _) => status.exit_code(),
            (None, 0) => code,
            (None, s) => 128 + s,
        }
    }

    /// Polls every active source; returns readiness by slot (the fixed slots,
    /// then one per client) and the number of fixed slots.
    fn poll(&self, timeout: PollTimeout) -> (Vec<bool>, usize) {
        let fixed: [Option<BorrowedFd<'_>>; 10] = [
            Some(self.init_pidfd.as_fd()),
            Some(self.chan.fd().as_fd()),
            Some(self.sigfd.as_fd()),
            Some(self.control.as_fd()),
            self.listener.as_ref().map(|l| l.as_fd()),
            self.master.as_ref().map(|m| m.as_fd()),
            self.stdin_open.then(|| borrow(0)),
            self.output.as_ref().and_then(|o| o.pipe.as_ref()).map(|p| p.as_fd()),
            self.file_pipes[0].as_ref().map(|p| p.as_fd()),
            self.file_pipes[1].as_ref().map(|p| p.as_fd()),
        ];
        let slots: Vec<(usize, BorrowedFd<'_>)> = fixed
            .iter()
            .enumerate()
            .filter_map(|(i, fd)| fd.map(|fd| (i, fd)))
            .chain(
                self.clients
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (fixed.len() + i, c.chan.fd().as_fd())),
            )
            .collect();
        let mut fds: Vec<PollFd> = slots
            .iter()
            .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        let mut ready = vec![false; fixed.len() + self.clients.len()];
        if poll(&mut fds, timeout).is_ok() {
            for ((slot, _), fd) in slots.iter().zip(&fds) {
                ready[*slot] = fd.revents().is_some_and(|r| !r.is_empty());
            }
        }
        (ready, fixed.len())
    }

    fn read_init(&mut self) {
        if let Ok(Some((msg, fds))) = self.chan.recv::<FromInit>() {
            self.handle_init(msg, fds);
        }
    }

    fn handle_init(&mut self, msg: FromInit, fds: Vec<OwnedFd>) {
        let client = |s: &mut Self, id: u64| s.clients.iter().position(|c| c.id == Some(id));
        match msg {
            FromInit::Exited { id: 0, status } => self.main_status = Some(status),
            FromInit::Exited { id, status } if self.is_hook(id) => self.hook_ended(Some(status), None),
            FromInit::SpawnFailed { id, error } if self.is_hook(id) => self.hook_ended(None, Some(&error)),
            FromInit::Exited { id, status } => {
                if let Some(i) = client(self, id) {
                    let c = self.clients.remove(i);
                    let _ = c.chan.send(&Reply::Exited { status }, &[]);
                }
            }
            FromInit::Spawned { id, pid } => {
                if let Some(i) = client(self, id) {
                    let master = fds.into_iter().next().filter(tty::is_devpts);
                    let c = &mut self.clients[i];
                    let raw: Vec<RawFd> = master.iter().map(|m| m.as_raw_fd()).collect();
                    let _ = c.chan.send(&Reply::Started { pid }, &raw);
                    c.master = master;
                }
            }
            FromInit::SpawnFailed { id, error } => {
                if let Some(i) = client(self, id) {
                    let c = self.clients.remove(i);
                    let reply = Reply::Failed {
                        status: error.exit_status(),
                        error: error.to_string(),
                    };
                    let _ = c.chan.send(&reply, &[]);
                }
            }
            // Only during setup; later it would be the jail speaking through a
            // captured init, and is ignored.
            FromInit::Ready { .. } | FromInit::SetupFailed { .. } => {}
        }
    }

    fn stop(&mut self) {
        if self.stop_deadline.is_some() {
            // Asked twice: no more grace.
            let _ = raw::pidfd_send_signal(self.init_pidfd.as_fd(), libc::SIGKILL);
            return;
        }
        // Asked again while the prestop hooks run: they are cut short.
        let prestop = self.hooks.as_ref().is_some_and(|h| h.phase == hooks::Phase::Prestop);
        if prestop {
            self.hooks = None;
        } else if !self.prestop_done {
            self.prestop_done = true;
            // The stop goes on when they are done.
            if self.start_hooks(hooks::Phase::Prestop) {
                return;
            }
        }
        if self.stop_cause.is_none_or(|(c, _)| c != StopCause::Restart) {
            sd_notify("STOPPING=1");
        }
        let _ = self.chan.send(
            &ToInit::Signal {
                id: None,
                signal: self.stop_signal,
            },
            &[],
        );
        self.stop_deadline = Some(Instant::now() + self.stop_timeout);
    }

    fn on_signals(&mut self, registry: &Registry, record: &mut Record) {
        while let Ok(Some(info)) = self.sigfd.read_signal() {
            let sig = info.ssi_signo as i32;
            match sig {
                libc::SIGTERM => {
                    self.stop_cause.get_or_insert((StopCause::Signal, false));
                    self.mark_stopping(registry, record);
                    self.stop();
                }
                libc::SIGINT | libc::SIGHUP | libc::SIGQUIT | libc::SIGUSR1 | libc::SIGUSR2 => {
                    let _ = self.chan.send(
                        &ToInit::Signal {
                            id: Some(0),
                            signal: sig,
                        },
                        &[],
                    );
                }
                libc::SIGWINCH => {
                    if let Some(m) = &self.master {
                        tty::copy_winsize(borrow(0), m.as_fd());
                    }
                }
                libc::SIGCONT => {
                    if let Some(r) = &self.raw_mode {
                        r.reapply();
                    }
                }
                libc::SIGTSTP => {
                    // Stopped from outside: give the terminal back first.
                    if let Some(r) = &self.raw_mode {
                        r.restore();
                    }
                    // SAFETY: stopping ourselves; SIGCONT resumes the loop.
                    unsafe { libc::kill(0, libc::SIGSTOP) };
                }
                _ => {}
            }
        }
    }

    fn mark_stopping(&self, registry: &Registry, record: &mut Record) {
        record.state = JailState::Stopping;
        if let Ok(lock) = registry.lock() {
            let _ = registry.write(&lock, record);
        }
    }

    fn accept(&mut self) {
        while let Ok(Some(chan)) = control::accept(self.control.as_fd()) {
            self.clients.push(Client {
                chan,
                id: None,
                master: None,
            });
        }
    }

    fn read_client(&mut self, i: usize, registry: &Registry, record: &mut Record) {
        let msg = self.clients[i].chan.recv::<Request>();
        match msg {
            Ok(Some((
                Request::Exec {
                    argv,
                    user,
                    tty,
                    term,
                    workdir,
                },
                fds,
            ))) => self.exec(i, argv, user, tty, term, workdir, fds),
            Ok(Some((Request::Signal { signal }, _))) => {
                if let Some(id) = self.clients[i].id {
                    let _ = self.chan.send(&ToInit::Signal { id: Some(id), signal }, &[]);
                }
            }
            Ok(Some((Request::Resize { rows, cols }, _))) => {
                if let Some(m) = &self.clients[i].master {
                    tty::set_winsize(m.as_fd(), rows, cols);
                }
            }
            Ok(Some((request @ (Request::Stop | Request::Restart), _))) => {
                let cause = if matches!(request, Request::Stop) {
                    StopCause::Down
                } else {
                    StopCause::Restart
                };
                self.stop_cause = Some((cause, self.stop_cause.is_some_and(|(_, t)| t)));
                let _ = self.clients[i].chan.send(&Reply::Stopping, &[]);
                // `ls` shows a jail that `down` stops as stopping, as it
                // does one stopped by SIGTERM.
                if cause == StopCause::Down {
                    self.mark_stopping(registry, record);
                }
                self.stop();
            }
            // The client went away: hang its command up, as a terminal would.
            Ok(None) | Err(_) => {
                let c = self.clients.remove(i);
                if let Some(id) = c.id {
                    let _ = self.chan.send(
                        &ToInit::Signal {
                            id: Some(id),
                            signal: libc::SIGHUP,
                        },
                        &[],
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exec(
        &mut self,
        i: usize,
        argv: Vec<String>,
        user: Option<crate::model::IdRef>,
        want_tty: bool,
        term: Option<String>,
        workdir: Option<String>,
        fds: Vec<OwnedFd>,
    ) {
        let fail = |c: &Client, error: String| {
            let _ = c.chan.send(&Reply::Failed { error, status: 125 }, &[]);
        };
        if argv.is_empty() {
            return fail(&self.clients[i], "no command".into());
        }
        let mut spawn: Spawn = self.plan.spawn.clone();
        spawn.argv = argv;
        if let Some(u) = user {
            spawn.user = SpawnUser::Jail(u);
            spawn.groups = None;
        }
        if let Some(w) = workdir {
            spawn.workdir = w;
        }
        spawn.env.term = term.or(spawn.env.term);
        spawn.tty = want_tty;
        let stdio: Vec<OwnedFd> = if want_tty {
            // Init makes the terminal; its master comes back with Spawned.
            Vec::new()
        } else if fds.len() == 3 {
            fds
        } else {
            return fail(&self.clients[i], "stdin, stdout and stderr must be passed".into());
        };
        let id = self.next_id;
        self.next_id += 1;
        self.clients[i].id = Some(id);
        let raw_fds: Vec<RawFd> = stdio.iter().map(|f| f.as_raw_fd()).collect();
        if let Err(e) = self.chan.send(
            &ToInit::Spawn {
                id,
                spawn: Box::new(spawn),
                main: false,
            },
            &raw_fds,
        ) {
            fail(&self.clients[i], e.to_string());
        }
    }

    fn notification(&mut self) {
        if let Some(listener) = &self.listener
            && self.notifier.handle(listener.as_fd()).is_err()
        {
            // The listener is gone (init exited); stop polling it.
            self.listener = None;
        }
        if let Some(signal) = self.notifier.halt.take() {
            // Jail root's reboot(2): the whole jail ends with its init.
            self.halted = Some(signal);
            let _ = raw::pidfd_send_signal(self.init_pidfd.as_fd(), libc::SIGKILL);
        }
    }

    /// Copies the jail's terminal output to ours; false when it is closed.
    fn relay_output(&mut self) -> bool {
        let Some(master) = &self.master else { return false };
        let mut buf = [0u8; 8192];
        match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(0) | Err(_) => {
                // EIO: no process holds the terminal any more.
                self.master = None;
                false
            }
            Ok(n) => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
                true
            }
        }
    }

    /// Copies what the jail wrote to its log; false when nothing is left now
    /// (the pipe is empty, or closed by every process that held it).
    fn relay_log(&mut self) -> bool {
        let Some(output) = &mut self.output else { return false };
        let Some(pipe) = &output.pipe else { return false };
        let mut buf = [0u8; 16384];
        match nix::unistd::read(pipe.as_fd(), &mut buf) {
            Ok(0) => {
                output.pipe = None;
                false
            }
            Ok(n) => {
                if let Some(p) = &mut self.pending {
                    p.saw(&buf[..n]);
                }
                match output.log.write(&buf[..n]) {
                    // Our own messages follow the log to its new file.
                    Ok(true) => stdout_to(output.log.fd()),
                    Ok(false) => {}
                    // The output is dropped, but the pipe still drained: the
                    // jail never blocks on a log the host cannot take.
                    Err(e) if !output.failed => {
                        output.failed = true;
                        tracing::warn!("{}: {e}; the jail's output is dropped", output.log.describe());
                    }
                    Err(_) => {}
                }
                true
            }
            Err(nix::errno::Errno::EINTR) => true,
            Err(_) => false,
        }
    }

    /// Copies what the jail wrote to the pipe standing for our stdout (0) or
    /// stderr (1); false when nothing is left now.
    fn relay_file(&mut self, i: usize) -> bool {
        let Some(pipe) = &self.file_pipes[i] else { return false };
        let mut buf = [0u8; 16384];
        match nix::unistd::read(pipe.as_fd(), &mut buf) {
            Ok(0) => {
                self.file_pipes[i] = None;
                false
            }
            Ok(n) => {
                // What the file no longer takes is dropped: the jail never
                // blocks on it.
                let mut rest = &buf[..n];
                while let Ok(w @ 1..) = nix::unistd::write(borrow(i as RawFd + 1), rest) {
                    rest = &rest[w..];
                }
                true
            }
            Err(nix::errno::Errno::EINTR) => true,
            Err(_) => false,
        }
    }

    fn relay_input(&mut self) {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(borrow(0), &mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => {
                if let Some(m) = &self.master {
                    let _ = nix::unistd::write(m, &buf[..n]);
                }
            }
        }
    }
}
