//! Why a jail did not start, or ended badly.

use std::io;

use crate::plan::PlanError;
use crate::state::{StateError, ranges::RangeError};
use crate::supervisor::proto::InitError;
use crate::sys::hostpath::HostPathError;
use crate::sys::logfile::LogError;
use crate::sys::setup;

/// Why a jail did not start, or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The plan cannot be made here.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The registry refused.
    #[error(transparent)]
    State(#[from] StateError),
    /// A log cannot be opened safely.
    #[error(transparent)]
    Log(#[from] LogError),
    /// `host-user` is unknown.
    #[error("host-user {0} is not in the host's /etc/passwd")]
    HostUser(String),
    /// `user` is unknown, where it must be known before launch.
    #[error("user {user} is not in {root}/etc/passwd")]
    JailUser {
        /// The user.
        user: String,
        /// The jail's root.
        root: String,
    },
    /// No host id range is free.
    #[error("the jail's host ids: {0}")]
    Range(#[from] RangeError),
    /// A host path broke the host-path rule, or is missing.
    #[error(transparent)]
    HostPath(#[from] HostPathError),
    /// A step of the supervisor's setup failed.
    #[error(transparent)]
    Host(Box<setup::StepError>),
    /// The jail's init failed to set the jail up; the error carries its
    /// stable code (see [`InitError`]).
    #[error("setting up the jail: {0}")]
    Init(#[from] InitError),
    /// Init exited during setup without saying why (`up::init-exited`).
    #[error("setting up the jail: init exited during setup [up::init-exited]")]
    InitExited,
    /// Init's answer could not be read (`up::init-unreadable`).
    #[error("setting up the jail: reading init's answer {awaiting}: {error} [up::init-unreadable]")]
    InitUnreadable {
        /// What init was to answer.
        awaiting: Awaiting,
        /// Why.
        error: io::Error,
    },
    /// Init answered with another message than awaited (`up::init-out-of-turn`).
    #[error("setting up the jail: init sent {got} {awaiting} [up::init-out-of-turn]")]
    InitOutOfTurn {
        /// What init was to answer.
        awaiting: Awaiting,
        /// The message's name.
        got: &'static str,
    },
    /// The journal cannot take the jail's output (`up::journal`).
    #[error(transparent)]
    Journal(#[from] crate::supervisor::journal::JournalError),
    /// A `[hooks]` command failed (`up::hook`).
    #[error(transparent)]
    Hook(#[from] crate::supervisor::hooks::HookError),
    /// Something the supervisor does around the steps failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: io::Error,
    },
}

impl From<setup::StepError> for UpError {
    fn from(e: setup::StepError) -> UpError {
        UpError::Host(Box::new(e))
    }
}

/// What the supervisor awaited from init.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaiting {
    /// Its report of the setup.
    Setup,
    /// Its answer to the request to start the command.
    Spawn,
}

impl std::fmt::Display for Awaiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Awaiting::Setup => "during setup",
            Awaiting::Spawn => "in answer to the spawn",
        })
    }
}

impl UpError {
    /// The error's stable code, for scripts and documentation; an init
    /// error keeps its own (`init::...`).
    ///
    /// | code | when |
    /// |---|---|
    /// | `up::plan` | the policy or plan cannot be carried out on this host |
    /// | `up::state` | the state directory or record refused |
    /// | `up::log` | a log file cannot be opened safely |
    /// | `up::host-user`, `up::jail-user` | the user to run as is unknown |
    /// | `up::id-range` | no host id range is free |
    /// | `up::host-path` | a host path broke the host-path rule, or is missing |
    /// | `up::host-step` | a host step of the setup failed (numbered) |
    /// | `up::init-exited`, `up::init-unreadable`, `up::init-out-of-turn` | init failed without an error of its own |
    /// | `up::io` | something around the steps failed |
    /// | `up::hook` | a `[hooks]` command failed |
    /// | `up::journal` | `log = "journal"` on a host without a journal |
    pub fn code(&self) -> &'static str {
        match self {
            UpError::Plan(_) => "up::plan",
            UpError::State(_) => "up::state",
            UpError::Log(_) => "up::log",
            UpError::HostUser(_) => "up::host-user",
            UpError::JailUser { .. } => "up::jail-user",
            UpError::Range(_) => "up::id-range",
            UpError::HostPath(_) => "up::host-path",
            UpError::Host(_) => "up::host-step",
            UpError::Init(e) => e.code(),
            UpError::InitExited => "up::init-exited",
            UpError::InitUnreadable { .. } => "up::init-unreadable",
            UpError::InitOutOfTurn { .. } => "up::init-out-of-turn",
            UpError::Io { .. } => "up::io",
            UpError::Hook(_) => "up::hook",
            UpError::Journal(_) => "up::journal",
        }
    }

    /// The exit status a failed hook gives `sysjail up` (its own, as
    /// jail(8) gives exec.prestart's); `None` for sysjail's own failures.
    pub fn hook_status(&self) -> Option<i32> {
        match self {
            UpError::Hook(h) => Some(h.status()),
            _ => None,
        }
    }

    /// The message with its code, as `sysjail up` prints it.
    pub fn report(&self) -> String {
        let text = self.to_string();
        let code = self.code();
        if text.contains(code) {
            text
        } else {
            format!("{text} [{code}]")
        }
    }

    /// A failed system call, with what it was doing.
    pub fn io(what: impl Into<String>, error: impl Into<io::Error>) -> UpError {
        UpError::Io {
            what: what.into(),
            error: error.into(),
        }
    }
}
