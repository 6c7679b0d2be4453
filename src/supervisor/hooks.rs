//! `[hooks]`: commands run around a jail's life, as jail.conf's exec.*
//! parameters. `prestart` and `poststop` run here, on the host, as the user
//! running sysjail; `poststart` and `prestop` run in the jail through its
//! init, as `sysjail exec` does (see the supervisor's event loop).

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The phase of a hook, by its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `hooks.prestart`, on the host.
    Prestart,
    /// `hooks.poststart`, in the jail.
    Poststart,
    /// `hooks.prestop`, in the jail.
    Prestop,
    /// `hooks.poststop`, on the host.
    Poststop,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Prestart => "hooks.prestart",
            Phase::Poststart => "hooks.poststart",
            Phase::Prestop => "hooks.prestop",
            Phase::Poststop => "hooks.poststop",
        })
    }
}

/// How a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// It exited with a non-zero status.
    #[error("{phase} command {argv:?} exited with status {code}")]
    Exited {
        /// Its phase.
        phase: Phase,
        /// The command.
        argv: Vec<String>,
        /// Its status.
        code: i32,
    },
    /// A signal killed it.
    #[error("{phase} command {argv:?} was killed by {}", crate::state::signal_name(*signal))]
    Signaled {
        /// Its phase.
        phase: Phase,
        /// The command.
        argv: Vec<String>,
        /// The signal.
        signal: i32,
    },
    /// It ran past `hooks.timeout` and was killed.
    #[error("{phase} command {argv:?} did not finish within {} ms (hooks.timeout) and was killed", timeout.as_millis())]
    TimedOut {
        /// Its phase.
        phase: Phase,
        /// The command.
        argv: Vec<String>,
        /// The timeout.
        timeout: Duration,
    },
    /// It could not be started.
    #[error("{phase} command {argv:?} could not be started: {error}")]
    Start {
        /// Its phase.
        phase: Phase,
        /// The command.
        argv: Vec<String>,
        /// Why.
        error: String,
        /// 127 when the program is missing, 126 otherwise.
        status: i32,
    },
}

impl HookError {
    /// The hook's phase.
    pub fn phase(&self) -> Phase {
        match self {
            HookError::Exited { phase, .. }
            | HookError::Signaled { phase, .. }
            | HookError::TimedOut { phase, .. }
            | HookError::Start { phase, .. } => *phase,
        }
    }

    /// The exit status `sysjail up` gives for it: the hook's own, 128 + a
    /// signal, 124 for a timeout (as timeout(1)), 126 or 127 when it could
    /// not be started.
    pub fn status(&self) -> i32 {
        match self {
            HookError::Exited { code, .. } => *code,
            HookError::Signaled { signal, .. } => 128 + signal,
            HookError::TimedOut { .. } => 124,
            HookError::Start { status, .. } => *status,
        }
    }
}

/// Runs the host hooks of `phase` in order, each within `timeout`, with
/// `env` added to sysjail's environment; stops at the first failure.
/// Their output goes where sysjail's does (a background jail's log).
pub fn run_host(
    phase: Phase,
    commands: &[Vec<String>],
    timeout: Duration,
    env: &[(&str, String)],
) -> Result<(), HookError> {
    for argv in commands {
        run_one(phase, argv, timeout, env)?;
    }
    Ok(())
}

fn run_one(phase: Phase, argv: &[String], timeout: Duration, env: &[(&str, String)]) -> Result<(), HookError> {
    let started = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        // A group of its own: a timeout kills what it started too.
        .process_group(0)
        .spawn();
    let mut child = started.map_err(|e| HookError::Start {
        phase,
        argv: argv.to_vec(),
        status: if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 },
        error: crate::sys::raw::errno_name(&e),
    })?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                // SAFETY: kill(2) of the hook's own process group.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return Err(HookError::TimedOut {
                    phase,
                    argv: argv.to_vec(),
                    timeout,
                });
            }
        }
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(HookError::Exited {
            phase,
            argv: argv.to_vec(),
            code,
        }),
        (None, signal) => Err(HookError::Signaled {
            phase,
            argv: argv.to_vec(),
            signal: signal.unwrap_or(0),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(argv: &[&str]) -> Vec<String> {
        argv.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn host_hooks_run_in_order_and_stop_at_the_first_failure() {
        let dir = std::env::temp_dir().join(format!("sysjail-hooks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("order");
        let append = |word: &str| {
            cmd(&[
                "/bin/sh",
                "-c",
                &format!("echo {word} $SYSJAIL_NAME >> {}", file.display()),
            ])
        };
        let env = [("SYSJAIL_NAME", "web".to_string())];
        let t = Duration::from_secs(10);
        run_host(Phase::Prestart, &[append("one"), append("two")], t, &env).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "one web\ntwo web\n");
        let err = run_host(
            Phase::Prestart,
            &[cmd(&["/bin/sh", "-c", "exit 3"]), append("three")],
            t,
            &env,
        )
        .unwrap_err();
        assert_eq!(err.status(), 3);
        assert!(err.to_string().starts_with("hooks.prestart command"), "{err}");
        assert!(!std::fs::read_to_string(&file).unwrap().contains("three"));
        let err = run_host(Phase::Poststop, &[cmd(&["/nonexistent"])], t, &env).unwrap_err();
        assert_eq!(err.status(), 127);
        let started = Instant::now();
        let err = run_host(
            Phase::Poststop,
            &[cmd(&["/bin/sh", "-c", "sleep 30"])],
            Duration::from_millis(200),
            &env,
        )
        .unwrap_err();
        assert!(matches!(err, HookError::TimedOut { .. }) && started.elapsed() < Duration::from_secs(5));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
