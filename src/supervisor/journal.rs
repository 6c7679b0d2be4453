//! `log = "journal"`: a background jail's output goes to the systemd
//! journal through systemd-cat, which the supervisor starts on the host and
//! writes into; the jail writes into its own pipe, as with a log file.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

/// journald's socket: no journal on the host without it.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// The identifier of a jail's lines (`journalctl -t sysjail-NAME`).
pub fn identifier(name: &str) -> String {
    format!("sysjail-{name}")
}

/// Why the journal cannot take a jail's output.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// journald does not run here.
    #[error("log = \"journal\": this host has no systemd journal ({SOCKET} is missing); set `log` to a file")]
    Absent,
    /// systemd-cat could not be started.
    #[error("log = \"journal\": starting systemd-cat: {0}")]
    Cat(io::Error),
}

/// A systemd-cat of the jail's, and the pipe into it.
#[derive(Debug)]
pub struct JournalCat {
    stdin: ChildStdin,
    _child: Child,
}

impl JournalCat {
    /// Starts systemd-cat for jail `name`.
    pub fn start(name: &str) -> Result<JournalCat, JournalError> {
        if !Path::new(SOCKET).exists() {
            return Err(JournalError::Absent);
        }
        let mut child = Command::new("systemd-cat")
            .args(["-t", &identifier(name)])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(JournalError::Cat)?;
        let stdin = child.stdin.take().expect("piped");
        Ok(JournalCat { stdin, _child: child })
    }

    /// The pid of its systemd-cat, which exits once the last descriptor of
    /// its pipe is closed, and which the supervisor reaps.
    pub fn pid(&self) -> i32 {
        self._child.id() as i32
    }

    /// Passes `bytes` on.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stdin.write_all(bytes)
    }
}

impl AsFd for JournalCat {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stdin.as_fd()
    }
}
