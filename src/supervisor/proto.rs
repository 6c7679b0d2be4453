//! What the supervisor, the jail's init and clients say to each other.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

use crate::plan::{JailStep, Spawn};

/// Supervisor to init.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToInit {
    /// Setup may proceed; the prepared id-mapped mounts are attached, in order.
    Go {
        /// How many descriptors follow.
        prepared: usize,
    },
    /// Start a process; its stdin, stdout and stderr are attached.
    Spawn {
        /// Chosen by the supervisor, echoed in replies.
        id: u64,
        /// What to start.
        spawn: Box<Spawn>,
        /// The jail's command, whose status becomes the jail's.
        main: bool,
    },
    /// The supervisor holds the seccomp listener now.
    ListenerTaken,
    /// Init is in every cgroup of the jail: it may unshare its cgroup
    /// namespace ([`crate::plan::JailStep::AwaitCgroups`]).
    CgroupsJoined,
    /// Sends a signal.
    Signal {
        /// A process started by Spawn, or `None` for every process of the jail.
        id: Option<u64>,
        /// The signal number.
        signal: i32,
    },
}

/// Init to supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    /// A setup step failed; init exits.
    SetupFailed {
        /// The step and the error.
        error: InitError,
    },
    /// The jail is set up; the seccomp listener, if any, is attached.
    Ready {
        /// What the setup noted (Landlock status, skipped masks).
        notes: Vec<String>,
        /// The seccomp listener's descriptor number in init, which keeps it
        /// open; the supervisor takes it with pidfd_getfd.
        listener: Option<i32>,
    },
    /// A process started.
    Spawned {
        /// The request.
        id: u64,
        /// Its pid inside the jail.
        pid: i32,
    },
    /// A process could not start.
    SpawnFailed {
        /// The request.
        id: u64,
        /// Why.
        error: InitError,
    },
    /// A process ended.
    Exited {
        /// The request.
        id: u64,
        /// How.
        status: Status,
    },
}

impl ToInit {
    /// The message's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            ToInit::Go { .. } => "Go",
            ToInit::Spawn { .. } => "Spawn",
            ToInit::ListenerTaken => "ListenerTaken",
            ToInit::CgroupsJoined => "CgroupsJoined",
            ToInit::Signal { .. } => "Signal",
        }
    }
}

impl FromInit {
    /// The message's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            FromInit::SetupFailed { .. } => "SetupFailed",
            FromInit::Ready { .. } => "Ready",
            FromInit::Spawned { .. } => "Spawned",
            FromInit::SpawnFailed { .. } => "SpawnFailed",
            FromInit::Exited { .. } => "Exited",
        }
    }
}

/// Why init could not set the jail up, or start a process. Init sends it to
/// the supervisor as data; its message ends with the stable code:
///
/// | code                        | variant            | what failed                                            |
/// |-----------------------------|--------------------|--------------------------------------------------------|
/// | `init::prctl-failed`        | `Prctl`            | prctl(2): the parent-death signal, dumpability         |
/// | `init::detach-failed`       | `Detach`           | leaving the caller's session and descriptors           |
/// | `init::channel-failed`      | `Channel`          | reading the supervisor's message                       |
/// | `init::out-of-turn`         | `OutOfTurn`        | the supervisor sent another message than awaited       |
/// | `init::prepared-missing`    | `PreparedMissing`  | fewer or more prepared mounts than announced           |
/// | `init::cmdline-failed`      | `Cmdline`          | setting init's command line                            |
/// | `init::ids-failed`          | `Ids`              | jail step: switching ids, the user namespace counters  |
/// | `init::cgroup-failed`       | `Cgroup`           | jail step: the cgroup namespace                        |
/// | `init::mount-failed`        | `Mount`            | jail step: a mount, the staging root, pivot_root       |
/// | `init::network-failed`      | `Network`          | jail step: the hostname, loopback, the interface       |
/// | `init::limits-failed`       | `Limits`           | jail step: setrlimit                                   |
/// | `init::privileges-failed`   | `Privileges`       | jail step: capabilities, no-new-privs                  |
/// | `init::landlock-failed`     | `Landlock`         | jail step: the Landlock ruleset                        |
/// | `init::seccomp-failed`      | `Seccomp`          | jail step: the seccomp filter                          |
/// | `init::report-failed`       | `Report`           | telling the supervisor the jail is ready               |
/// | `init::reaper-failed`       | `Reaper`           | init's signalfd, poll or waitpid                       |
/// | `init::terminal-failed`     | `Terminal`         | opening a terminal of the jail's devpts                |
/// | `init::stdio-missing`       | `StdioMissing`     | a spawn request without stdin, stdout and stderr       |
/// | `init::spawn-failed`        | `Spawn`            | starting the process (fork, ids, execve)               |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitError {
    /// prctl(option) failed.
    Prctl {
        /// The option, as named in prctl(2).
        option: String,
        /// Why.
        cause: Cause,
    },
    /// A call leaving the caller's session and descriptors failed.
    Detach {
        /// The call (setsid, dup2, close_range) or file (/dev/null).
        call: String,
        /// Why.
        cause: Cause,
    },
    /// The supervisor's message could not be read.
    Channel {
        /// The message awaited.
        awaited: Awaited,
        /// Why.
        cause: Cause,
    },
    /// The supervisor sent another message than the one awaited.
    OutOfTurn {
        /// The message awaited.
        awaited: Awaited,
        /// The message's name.
        got: String,
    },
    /// The go-ahead announced more or fewer prepared mounts than came.
    PreparedMissing {
        /// Announced.
        expected: usize,
        /// Attached.
        got: usize,
    },
    /// Setting init's command line failed.
    Cmdline(Cause),
    /// A jail step switching ids or setting user namespace counters failed.
    Ids(StepFailure),
    /// The jail step entering a cgroup namespace failed.
    Cgroup(StepFailure),
    /// A mount step failed.
    Mount(StepFailure),
    /// A step naming the jail or setting up its network failed.
    Network(StepFailure),
    /// The rlimits step failed.
    Limits(StepFailure),
    /// Dropping capabilities or setting no-new-privs failed.
    Privileges(StepFailure),
    /// The Landlock step failed.
    Landlock(StepFailure),
    /// The seccomp step failed.
    Seccomp(StepFailure),
    /// Telling the supervisor the jail is ready failed.
    Report(Cause),
    /// Init's reaping machinery failed.
    Reaper {
        /// The call.
        call: String,
        /// Why.
        cause: Cause,
    },
    /// A terminal of the jail's devpts could not be opened.
    Terminal(Cause),
    /// A spawn request came without its three descriptors.
    StdioMissing,
    /// The process could not start: the stage that failed and its errno.
    Spawn(crate::sys::spawn::SpawnError),
}

/// The message init awaits from the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Awaited {
    /// [`ToInit::Go`].
    GoAhead,
    /// [`ToInit::ListenerTaken`].
    ListenerTaken,
}

impl fmt::Display for Awaited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Awaited::GoAhead => "the go-ahead",
            Awaited::ListenerTaken => "the listener to be taken",
        })
    }
}

/// What the kernel said, or why there was nothing to ask it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cause {
    /// A call failed with this errno.
    Errno(i32),
    /// sysjail refused before any call (a mount point it will not create),
    /// in the words of the step.
    Refused(String),
}

impl From<&io::Error> for Cause {
    fn from(e: &io::Error) -> Cause {
        match e.raw_os_error() {
            Some(n) => Cause::Errno(n),
            None => Cause::Refused(e.to_string()),
        }
    }
}

impl From<nix::errno::Errno> for Cause {
    fn from(e: nix::errno::Errno) -> Cause {
        Cause::Errno(e as i32)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Errno(n) => f.write_str(&crate::sys::raw::errno_name(&io::Error::from_raw_os_error(*n))),
            Cause::Refused(why) => f.write_str(why),
        }
    }
}

/// A jail step that failed, numbered as `sysjail up --dry-run` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFailure {
    /// 1-based index.
    pub index: usize,
    /// Number of steps.
    pub total: usize,
    /// The step, as printed.
    pub step: String,
    /// The path in the jail the step is about, if any.
    pub path: Option<String>,
    /// Why.
    pub cause: Cause,
    /// The definition's key behind the step.
    pub key: Option<String>,
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}/{} {}: {}", self.index, self.total, self.step, self.cause)?;
        match &self.key {
            Some(key) => write!(f, " (the definition's {key})"),
            None => Ok(()),
        }
    }
}

impl StepFailure {
    /// The error of `step`, by the kind of step.
    pub fn into_error(self, step: &JailStep) -> InitError {
        match step {
            JailStep::SwitchIds { .. } | JailStep::UserCounters { .. } => InitError::Ids(self),
            JailStep::AwaitCgroups | JailStep::UnshareCgroup => InitError::Cgroup(self),
            JailStep::PrivateMounts
            | JailStep::Staging
            | JailStep::Root { .. }
            | JailStep::Bind { .. }
            | JailStep::Tmpfs { .. }
            | JailStep::Proc { .. }
            | JailStep::Dev { .. }
            | JailStep::Mask { .. }
            | JailStep::ReadOnly { .. }
            | JailStep::RootReadOnly
            | JailStep::File { .. }
            | JailStep::PivotRoot => InitError::Mount(self),
            JailStep::Hostname { .. } | JailStep::LoopbackUp | JailStep::Interface { .. } => InitError::Network(self),
            JailStep::Rlimits { .. } => InitError::Limits(self),
            JailStep::Capabilities { .. } | JailStep::NoNewPrivs => InitError::Privileges(self),
            JailStep::Landlock { .. } => InitError::Landlock(self),
            JailStep::Seccomp { .. } => InitError::Seccomp(self),
        }
    }
}

/// The path in the jail a step is about.
pub fn step_path(step: &JailStep) -> Option<String> {
    match step {
        JailStep::Root { source, .. } => Some(source.to_string()),
        JailStep::Bind { target, .. }
        | JailStep::Tmpfs { target, .. }
        | JailStep::Proc { target, .. }
        | JailStep::Dev { target, .. }
        | JailStep::Mask { target }
        | JailStep::ReadOnly { target } => Some(target.to_string()),
        _ => None,
    }
}

impl InitError {
    /// The exit status of `up` when the jail's command could not start for
    /// this reason: 126 or 127 for its program (see
    /// [`SpawnError::exit_status`](crate::sys::spawn::SpawnError::exit_status)),
    /// 125 for sysjail's own failures.
    pub fn exit_status(&self) -> i32 {
        match self {
            InitError::Spawn(e) => e.exit_status(),
            _ => 125,
        }
    }

    /// The stable code, as the table above lists it.
    pub fn code(&self) -> &'static str {
        match self {
            InitError::Prctl { .. } => "init::prctl-failed",
            InitError::Detach { .. } => "init::detach-failed",
            InitError::Channel { .. } => "init::channel-failed",
            InitError::OutOfTurn { .. } => "init::out-of-turn",
            InitError::PreparedMissing { .. } => "init::prepared-missing",
            InitError::Cmdline(_) => "init::cmdline-failed",
            InitError::Ids(_) => "init::ids-failed",
            InitError::Cgroup(_) => "init::cgroup-failed",
            InitError::Mount(_) => "init::mount-failed",
            InitError::Network(_) => "init::network-failed",
            InitError::Limits(_) => "init::limits-failed",
            InitError::Privileges(_) => "init::privileges-failed",
            InitError::Landlock(_) => "init::landlock-failed",
            InitError::Seccomp(_) => "init::seccomp-failed",
            InitError::Report(_) => "init::report-failed",
            InitError::Reaper { .. } => "init::reaper-failed",
            InitError::Terminal(_) => "init::terminal-failed",
            InitError::StdioMissing => "init::stdio-missing",
            InitError::Spawn(_) => "init::spawn-failed",
        }
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Prctl { option, cause } => write!(f, "prctl({option}): {cause}"),
            InitError::Detach { call, cause } | InitError::Reaper { call, cause } => write!(f, "{call}: {cause}"),
            InitError::Channel { awaited, cause } => write!(f, "reading {awaited}: {cause}"),
            InitError::OutOfTurn { awaited, got } => write!(f, "expected {awaited}, got {got}"),
            InitError::PreparedMissing { expected, got } => {
                write!(f, "expected {expected} prepared mounts, got {got}")
            }
            InitError::Cmdline(cause) => write!(f, "setting init's command line: {cause}"),
            InitError::Ids(s)
            | InitError::Cgroup(s)
            | InitError::Mount(s)
            | InitError::Network(s)
            | InitError::Limits(s)
            | InitError::Privileges(s)
            | InitError::Landlock(s)
            | InitError::Seccomp(s) => fmt::Display::fmt(s, f),
            InitError::Report(cause) => write!(f, "reporting readiness: {cause}"),
            InitError::Terminal(cause) => write!(f, "opening a terminal of the jail: {cause}"),
            InitError::StdioMissing => f.write_str("stdin, stdout and stderr missing"),
            InitError::Spawn(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f)?;
        write!(f, " [{}]", self.code())
    }
}

impl std::error::Error for InitError {}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// exit(code).
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

impl Status {
    /// The shell's convention: the code, or 128 + the signal.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Code(c) => c,
            Status::Signal(s) => 128 + s,
        }
    }
}

/// Client (`exec`, `down`) to supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Run a command in the jail. Without a terminal, the client's stdin,
    /// stdout and stderr are attached.
    Exec {
        /// argv.
        argv: Vec<String>,
        /// A user of the jail's /etc/passwd instead of the jail's own.
        user: Option<crate::model::IdRef>,
        /// Give it a pseudo-terminal; the master comes back in the reply.
        tty: bool,
        /// The client's TERM.
        term: Option<String>,
        /// Working directory instead of the jail's.
        workdir: Option<String>,
    },
    /// Sends a signal to the exec'd process (the client got it).
    Signal {
        /// The signal.
        signal: i32,
    },
    /// Resizes the exec'd process's terminal.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Stops the jail: the stop signal, then SIGKILL after the timeout.
    Stop,
    /// Stops the jail as [`Request::Stop`] does, then starts it again in
    /// the same supervisor (`sysjail restart`).
    Restart,
}

/// Supervisor to client.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The command runs, with this pid inside the jail; with a terminal, the
    /// pseudo-terminal's master is attached.
    Started {
        /// Pid inside the jail.
        pid: i32,
    },
    /// It could not start.
    Failed {
        /// Why.
        error: String,
        /// The exit status for it: 127 not found, 126 not executable, 125
        /// anything else ([`InitError::exit_status`]).
        status: i32,
    },
    /// It ended.
    Exited {
        /// How.
        status: Status,
    },
    /// The jail is stopping.
    Stopping,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> StepFailure {
        StepFailure {
            index: 6,
            total: 32,
            step: "move_mount(\"/newroot/etc\")".into(),
            path: Some("/etc".into()),
            cause: Cause::Errno(libc::EINVAL),
            key: Some("mount[0]".into()),
        }
    }

    #[test]
    fn init_errors_cross_the_channel_as_data() {
        let error = InitError::Mount(failure());
        let wire = serde_json::to_string(&FromInit::SetupFailed { error: error.clone() }).unwrap();
        let Ok(FromInit::SetupFailed { error: back }) = serde_json::from_str(&wire) else {
            panic!("not a SetupFailed: {wire}")
        };
        assert_eq!(back, error);
    }

    #[test]
    fn messages_name_the_step_the_errno_the_key_and_the_code() {
        assert_eq!(
            InitError::Mount(failure()).to_string(),
            "step 6/32 move_mount(\"/newroot/etc\"): EINVAL (Invalid argument) (the definition's mount[0]) \
             [init::mount-failed]"
        );
        let prctl = InitError::Prctl {
            option: "PR_SET_DUMPABLE".into(),
            cause: Cause::Errno(libc::EPERM),
        };
        assert_eq!(
            prctl.to_string(),
            "prctl(PR_SET_DUMPABLE): EPERM (Operation not permitted) [init::prctl-failed]"
        );
    }

    #[test]
    fn each_step_kind_has_its_code() {
        use crate::plan::JailStep;
        let code = |step: &JailStep| failure().into_error(step).code();
        assert_eq!(code(&JailStep::PivotRoot), "init::mount-failed");
        assert_eq!(code(&JailStep::NoNewPrivs), "init::privileges-failed");
        assert_eq!(code(&JailStep::LoopbackUp), "init::network-failed");
        assert_eq!(code(&JailStep::UnshareCgroup), "init::cgroup-failed");
    }
}
