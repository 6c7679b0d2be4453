//! The hooks that run inside the jail, `poststart` and `prestop`: started
//! through init as `exec` commands are, one after another, each within
//! `hooks.timeout`, while the event loop goes on serving the jail (a hook
//! may need the supervisor to answer its seccomp notifications).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::Running;
use super::hooks::{HookError, Phase};
use super::proto::{InitError, Status, ToInit};

/// A phase of hooks in progress.
pub(super) struct JailHooks {
    pub phase: Phase,
    queue: VecDeque<Vec<String>>,
    /// The hook running: its spawn id, command and deadline.
    current: Option<(u64, Vec<String>, Instant)>,
    /// The current hook ran out of time and was killed.
    timed_out: bool,
}

impl JailHooks {
    /// When the current hook runs out of time.
    pub fn deadline(&self) -> Option<Instant> {
        self.current.as_ref().map(|(_, _, d)| *d)
    }
}

impl Running<'_> {
    /// Starts the hooks of `phase`; false when there are none.
    pub(super) fn start_hooks(&mut self, phase: Phase) -> bool {
        let commands = match phase {
            Phase::Poststart => &self.hook_commands.poststart,
            Phase::Prestop => &self.hook_commands.prestop,
            Phase::Prestart | Phase::Poststop => return false,
        };
        if commands.is_empty() {
            return false;
        }
        self.hooks = Some(JailHooks {
            phase,
            queue: commands.iter().cloned().collect(),
            current: None,
            timed_out: false,
        });
        self.next_hook();
        true
    }

    /// Starts the next hook of the phase, or ends the phase.
    fn next_hook(&mut self) {
        let Some(h) = &mut self.hooks else { return };
        let Some(argv) = h.queue.pop_front() else {
            return self.end_hooks(Ok(()));
        };
        let phase = h.phase;
        let id = self.next_id;
        self.next_id += 1;
        let mut spawn = self.plan.spawn.clone();
        spawn.argv.clone_from(&argv);
        spawn.tty = false;
        let stdio = match self.hook_stdio() {
            Ok(fds) => fds,
            Err(e) => {
                return self.end_hooks(Err(HookError::Start {
                    phase,
                    argv,
                    error: e.to_string(),
                    status: 126,
                }));
            }
        };
        let raw: Vec<RawFd> = stdio.iter().map(|f| f.as_raw_fd()).collect();
        let request = ToInit::Spawn {
            id,
            spawn: Box::new(spawn),
            main: false,
        };
        if let Err(e) = self.chan.send(&request, &raw) {
            return self.end_hooks(Err(HookError::Start {
                phase,
                argv,
                error: e.to_string(),
                status: 126,
            }));
        }
        if let Some(h) = &mut self.hooks {
            h.current = Some((id, argv, Instant::now() + self.hook_commands.timeout));
            h.timed_out = false;
        }
    }

    /// /dev/null and the jail's output (its log, or where the command's goes).
    fn hook_stdio(&self) -> std::io::Result<Vec<OwnedFd>> {
        let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
        let out = match &self.hook_out {
            Some(out) => out.try_clone()?,
            None => OwnedFd::from(null.try_clone()?),
        };
        Ok(vec![OwnedFd::from(null), out.try_clone()?, out])
    }

    /// Whether spawn `id` is the current hook's.
    pub(super) fn is_hook(&self, id: u64) -> bool {
        self.hooks
            .as_ref()
            .and_then(|h| h.current.as_ref())
            .is_some_and(|(current, _, _)| *current == id)
    }

    /// The current hook ended with `status`, or could not start (`error`).
    pub(super) fn hook_ended(&mut self, status: Option<Status>, error: Option<&InitError>) {
        let Some(h) = &mut self.hooks else { return };
        let Some((_, argv, _)) = h.current.take() else { return };
        let phase = h.phase;
        let result = match (status, error) {
            (_, Some(error)) => Err(HookError::Start {
                phase,
                argv,
                status: error.exit_status(),
                error: error.to_string(),
            }),
            _ if h.timed_out => Err(HookError::TimedOut {
                phase,
                argv,
                timeout: self.hook_commands.timeout,
            }),
            (Some(Status::Code(0)), _) => Ok(()),
            (Some(Status::Code(code)), _) => Err(HookError::Exited { phase, argv, code }),
            (Some(Status::Signal(signal)), _) => Err(HookError::Signaled { phase, argv, signal }),
            (None, None) => Ok(()),
        };
        match result {
            Ok(()) => self.next_hook(),
            Err(e) => self.end_hooks(Err(e)),
        }
    }

    /// Kills the current hook if it ran out of time; its end comes as any
    /// process's does.
    pub(super) fn hook_timeouts(&mut self) {
        let Some(h) = &mut self.hooks else { return };
        if let Some((id, _, deadline)) = &h.current
            && Instant::now() >= *deadline
            && !h.timed_out
        {
            h.timed_out = true;
            let _ = self.chan.send(
                &ToInit::Signal {
                    id: Some(*id),
                    signal: libc::SIGKILL,
                },
                &[],
            );
        }
    }

    /// The phase is over: after poststart, the jail runs (or, if a hook
    /// failed, stops); after prestop, the stop goes on.
    fn end_hooks(&mut self, result: Result<(), HookError>) {
        let Some(h) = self.hooks.take() else { return };
        match (h.phase, result) {
            (Phase::Poststart, Ok(())) => {
                if self.pending.is_none() {
                    super::sd_notify("READY=1");
                }
            }
            (Phase::Poststart, Err(e)) => {
                crate::eprintln_lossy!("sysjail: {}: {e}; stopping the jail", self.plan.name);
                self.hook_failure = Some(e);
                // It never ran as a whole: no prestop.
                self.prestop_done = true;
                self.stop();
            }
            (_, Ok(())) => self.stop(),
            (_, Err(e)) => {
                crate::eprintln_lossy!("sysjail: {}: {e}; stopping all the same", self.plan.name);
                self.stop();
            }
        }
    }
}
