//! Running jails, seen from outside: list them, join one (`exec`), stop one
//! (`down`). Each talks to the jail's supervisor through its control socket
//! in the state directory.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::state::{self, Record, Registry, StateError};
use crate::supervisor::channel::Channel;
use crate::supervisor::client::{self, Exec};
use crate::supervisor::proto::{Reply, Request};

/// Why a running jail could not be reached or stopped.
#[derive(Debug, thiserror::Error)]
pub enum JailsError {
    /// The state directory or the record.
    #[error(transparent)]
    State(#[from] StateError),
    /// The control socket.
    #[error("{socket}: {source}")]
    Connect {
        /// Where the socket is.
        socket: std::path::PathBuf,
        /// Why connecting failed.
        source: std::io::Error,
    },
    /// Talking to the supervisor.
    #[error("the supervisor of {jail}: {source}")]
    Talk {
        /// The jail.
        jail: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The supervisor answered what it never answers.
    #[error("the supervisor of {jail} answered {answer}")]
    Unexpected {
        /// The jail.
        jail: String,
        /// The answer, for people.
        answer: String,
    },
    /// The supervisor did not exit in time.
    #[error("the supervisor of {jail} (pid {pid}) did not exit")]
    Stuck {
        /// The jail.
        jail: String,
        /// Its pid.
        pid: i32,
    },
}

/// The jails running with records in `dir`; stale records (their supervisor
/// gone) are cleaned up on the way.
pub fn list(dir: &Path) -> Result<Vec<Record>, JailsError> {
    let registry = Registry::open(dir)?;
    let lock = registry.lock()?;
    registry.clean_stale(&lock);
    Ok(registry.list(&lock))
}

/// The record of jail `which` (its name or JID) and a channel to its
/// supervisor.
pub fn connect(dir: &Path, which: &str) -> Result<(Record, Channel), JailsError> {
    let registry = Registry::open(dir)?;
    let record = {
        let lock = registry.lock()?;
        registry.clean_stale(&lock);
        registry.find(&lock, which)?
    };
    // The socket of the record's name in this directory, whatever path the
    // record says.
    let socket = Registry::control_name(&record.name);
    let chan = crate::supervisor::control::connect(registry.fd(), &socket).map_err(|source| JailsError::Connect {
        socket: registry.control_path(&record.name),
        source,
    })?;
    Ok((record, chan))
}

/// Runs a command in jail `which`, as `sysjail exec` does: the command's
/// exit status, or why it could not start (`Ok(Err(_))`).
pub fn join(dir: &Path, which: &str, exec: Exec) -> Result<Result<i32, client::NotStarted>, JailsError> {
    let (record, chan) = connect(dir, which)?;
    client::exec(chan, exec).map_err(|source| JailsError::Talk {
        jail: record.name,
        source,
    })
}

/// Stops jail `which` and waits, at most `wait`, until its supervisor has
/// torn it down and exited.
pub fn stop(dir: &Path, which: &str, wait: Duration) -> Result<(), JailsError> {
    let (record, chan) = connect(dir, which)?;
    let talk = |source| JailsError::Talk {
        jail: record.name.clone(),
        source,
    };
    chan.send(&Request::Stop, &[]).map_err(talk)?;
    match chan.recv::<Reply>().map_err(talk)? {
        Some((Reply::Stopping, _)) => {}
        other => {
            return Err(JailsError::Unexpected {
                jail: record.name.clone(),
                answer: format!("{other:?}"),
            });
        }
    }
    // The supervisor closes the socket when it exits, after teardown.
    while let Ok(Some(_)) = chan.recv::<Reply>() {}
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if state::start_time(record.supervisor_pid) != Some(record.supervisor_start) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(JailsError::Stuck {
        jail: record.name,
        pid: record.supervisor_pid,
    })
}
