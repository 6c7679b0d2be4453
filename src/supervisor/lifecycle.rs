//! A jail's life around its command: the start window of a background
//! launch, how a run ended, the pause between restarts, and readiness for
//! systemd (sd_notify).

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::control;
use super::proto::{Reply, Request, Status};
use crate::state::{EndReason, Ended};

/// How much of a background command's first output a failed start keeps.
const EARLY_OUTPUT: usize = 4096;

/// How much of it the error shows, escaped: the report is one write of at
/// most PIPE_BUF (4096) bytes, which also carries the reason and what the
/// limits did, and an escaped control character takes four bytes.
const SHOWN_OUTPUT: usize = 2048;

/// How a background launch reports to the command that started it: one
/// short write on a pipe, "ok JID" or "error STATUS WHY".
pub struct Report {
    pub(super) pipe: Option<OwnedFd>,
}

impl Report {
    /// Tells the waiting parent that jail `jid` runs.
    pub fn running(&mut self, jid: u32) {
        if let Some(p) = self.pipe.take() {
            let _ = nix::unistd::write(&p, format!("ok {jid}").as_bytes());
        }
    }

    /// Tells the waiting parent why the jail did not start, and the exit
    /// status `up -b` returns for it.
    pub fn failed(&mut self, status: i32, why: &str) {
        if let Some(p) = self.pipe.take() {
            // One write of at most PIPE_BUF is atomic: the parent reads it whole.
            let mut msg = format!("error {status} {why}");
            msg.truncate(floor_char_boundary(&msg, libc::PIPE_BUF));
            let _ = nix::unistd::write(&p, msg.as_bytes());
        }
    }

    /// The report, moved out (the launch hands it to the running jail).
    pub(super) fn take(&mut self) -> Report {
        Report { pipe: self.pipe.take() }
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    (0..=max.min(s.len()))
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}

/// Reads the report in the waiting parent: `Ok(jid)` or `Err((status, why))`.
pub(super) fn read_report(read: OwnedFd) -> Result<String, (i32, String)> {
    // One read: the report is a single short write, and other processes of
    // the jail's family may hold the pipe open long after.
    let mut buf = vec![0u8; libc::PIPE_BUF];
    let n = std::fs::File::from(read).read(&mut buf).unwrap_or(0);
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    match msg.split_once(' ') {
        Some(("ok", jid)) => Ok(jid.to_string()),
        Some(("error", rest)) => {
            let (status, why) = rest.split_once(' ').unwrap_or(("1", rest));
            Err((status.parse().unwrap_or(1), why.to_string()))
        }
        _ => Err((1, "the background supervisor exited before the jail ran".into())),
    }
}

/// A background launch whose command has not yet lasted its start window.
pub(super) struct Pending {
    pub report: Report,
    pub jid: u32,
    pub deadline: Instant,
    pub window: Duration,
    /// The command's first output, for the error if it fails.
    pub early: Vec<u8>,
}

impl Pending {
    /// Keeps the start of the output.
    pub fn saw(&mut self, bytes: &[u8]) {
        let room = EARLY_OUTPUT.saturating_sub(self.early.len());
        self.early.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Why the start failed: the command's status within the window, and
    /// what it wrote.
    pub fn died(&self, name: &str, status: Status) -> String {
        let how = match status {
            Status::Code(c) => format!("exited with status {c}"),
            Status::Signal(s) => format!("was killed by {}", crate::state::signal_name(s)),
        };
        let mut why = format!(
            "{name}: the command {how} within the start window ({} ms)",
            self.window.as_millis()
        );
        // The jail's bytes, on the operator's terminal: escaped.
        let out = crate::terminal::escape(&self.early);
        let mut out = out.trim_end();
        let cut = out.len() > SHOWN_OUTPUT;
        if cut {
            out = &out[..floor_char_boundary(out, SHOWN_OUTPUT)];
            // Not in the middle of an escape (`\xNN`, four bytes).
            let tail = floor_char_boundary(out, out.len().saturating_sub(3));
            if let Some(i) = out[tail..].rfind('\\') {
                out = &out[..tail + i];
            }
        }
        if !out.is_empty() {
            why.push_str("; its output:\n");
            why.push_str(out);
            if cut {
                why.push_str(&format!(" [cut: `sysjail logs {name}` shows it all]"));
            }
        }
        why
    }
}

/// Why the supervisor was asked to stop the jail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// `sysjail down` (a Stop request on the control socket).
    Down,
    /// SIGTERM to the supervisor (systemctl stop, kill).
    Signal,
    /// `sysjail restart`.
    Restart,
}

/// A background start that failed: the report to make, once the jail is
/// torn down.
pub struct FailedStart {
    /// The waiting `up -b`.
    pub report: Report,
    /// Its exit status.
    pub status: i32,
    /// Why.
    pub why: String,
}

impl FailedStart {
    /// Tells the waiting `up -b`.
    pub fn report(mut self) {
        self.report.failed(self.status, &self.why);
    }
}

/// How a run of the jail ended, as the supervisor saw it.
pub struct Outcome {
    /// The exit status of `sysjail up`.
    pub status: i32,
    /// How it ended, for the record.
    pub ended: Ended,
    /// `sysjail down` stopped it: its record goes (`down` clears).
    pub by_down: bool,
    /// A background start that failed within its start window.
    pub failed_start: Option<FailedStart>,
    /// `sysjail restart` asked for it to start again.
    pub restart: bool,
}

impl Outcome {
    /// Whether the run ended by the jail's own doing, not on request.
    pub fn requested(&self) -> bool {
        matches!(self.ended.reason, EndReason::Stopped | EndReason::StopTimeout)
    }
}

/// What ended the run: from the command's status, init's, and what the
/// supervisor did.
pub(super) fn ended(
    status: i32,
    main: Option<Status>,
    init_signal: i32,
    start_failed: bool,
    halted: bool,
    stop: Option<(StopCause, bool)>,
) -> Ended {
    let (code, signal) = match main {
        Some(Status::Code(c)) => (Some(c), None),
        Some(Status::Signal(s)) => (None, Some(s)),
        None if init_signal != 0 => (None, Some(init_signal)),
        None => (Some(status), None),
    };
    let reason = if halted {
        EndReason::Halted
    } else if start_failed {
        EndReason::StartFailed
    } else if let Some((_, timed_out)) = stop {
        if timed_out {
            EndReason::StopTimeout
        } else {
            EndReason::Stopped
        }
    } else if signal.is_some() {
        EndReason::Signaled
    } else {
        EndReason::Exited
    };
    Ended {
        at: crate::state::now(),
        status,
        code,
        signal,
        reason,
        events: Vec::new(),
    }
}

/// Tells systemd (or whatever set NOTIFY_SOCKET) how the jail is: "READY=1",
/// "STOPPING=1", "STATUS=...". Nothing without NOTIFY_SOCKET.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket (systemd's own are paths, but others use them).
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name).and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        tracing::debug!("NOTIFY_SOCKET {}: {e}", path.to_string_lossy());
    }
}

/// Waits `pause` between two runs of a jail, serving its control socket
/// meanwhile: `down` (or SIGTERM, SIGINT, SIGHUP to the supervisor) ends the
/// wait and the jail; `exec` is refused. Returns the stop that came, if one did.
pub fn pause(control: BorrowedFd<'_>, pause: Duration) -> Option<StopCause> {
    let deadline = Instant::now() + pause;
    let Ok(sigfd) = stop_signals() else {
        std::thread::sleep(pause);
        return None;
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [
            PollFd::new(control, PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if poll(&mut fds, timeout).is_err() {
            continue;
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        if ready(1) && sigfd.read_signal().ok().flatten().is_some() {
            return Some(StopCause::Signal);
        }
        if ready(0) && answer_while_paused(control) {
            return Some(StopCause::Down);
        }
    }
}

/// The signals that stop a jail between runs; the supervisor's signalfd
/// blocked them already, and blocks them again for the next run.
fn stop_signals() -> nix::Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    nix::sys::signalfd::SignalFd::with_flags(
        &set,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
}

/// Answers the clients waiting on the control socket; true if one asked to stop.
fn answer_while_paused(control: BorrowedFd<'_>) -> bool {
    let mut stop = false;
    while let Ok(Some(chan)) = control::accept(control) {
        match chan.recv::<Request>() {
            Ok(Some((Request::Stop, _))) => {
                let _ = chan.send(&Reply::Stopping, &[]);
                stop = true;
            }
            Ok(Some((Request::Restart, _))) => {
                // It is about to start again anyway.
                let _ = chan.send(&Reply::Stopping, &[]);
            }
            Ok(Some(_)) => {
                let error = "the jail is restarting: its command is not running".to_string();
                let _ = chan.send(&Reply::Failed { error, status: 125 }, &[]);
            }
            _ => {}
        }
    }
    stop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(early: &[u8]) -> Pending {
        Pending {
            report: Report { pipe: None },
            jid: 1,
            deadline: Instant::now(),
            window: Duration::from_secs(1),
            early: early.to_vec(),
        }
    }

    #[test]
    fn a_failed_start_shows_the_output_escaped_and_bounded() {
        let why = pending(b"bad \x1b[2J\n").died("web", Status::Code(1));
        assert_eq!(
            why,
            "web: the command exited with status 1 within the start window (1000 ms); its output:\nbad \\x1b[2J"
        );
        // 3000 escape characters are 12000 bytes escaped: the error, which
        // travels in one PIPE_BUF write, shows their start and says so.
        let mut early = vec![0x1b; 3000];
        early.extend_from_slice(b"LAST");
        let why = pending(&early).died("web", Status::Code(1));
        assert!(why.len() < libc::PIPE_BUF / 2 + 200, "{} bytes", why.len());
        assert!(why.ends_with("\\x1b [cut: `sysjail logs web` shows it all]"), "{why}");
        assert!(!why.contains('\x1b'));
        // A cut that would fall inside an escape falls before it.
        let mut early = b"ab".to_vec();
        early.extend_from_slice(&[0x1b; 1000]);
        let why = pending(&early).died("web", Status::Code(1));
        assert!(
            why.contains("ab\\x1b\\x1b") && why.ends_with("\\x1b [cut: `sysjail logs web` shows it all]"),
            "{why}"
        );
    }
}
