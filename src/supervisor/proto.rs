//! What the supervisor, the jail's init and clients say to each other.

use serde::{Deserialize, Serialize};

use crate::plan::Spawn;

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
        error: String,
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
        error: String,
    },
    /// A process ended.
    Exited {
        /// The request.
        id: u64,
        /// How.
        status: Status,
    },
}

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
    },
    /// It ended.
    Exited {
        /// How.
        status: Status,
    },
    /// The jail is stopping.
    Stopping,
}
