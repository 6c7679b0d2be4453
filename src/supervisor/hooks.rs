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
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe functions (see `reaper`); it allocates nothing.
    unsafe { command.pre_exec(move || reaper(timeout)) };
    let started = command.spawn();
    // What was spawned is the reaper; the hook is its child.
    let mut child = started.map_err(|e| HookError::Start {
        phase,
        argv: argv.to_vec(),
        status: if e.kind() == io::ErrorKind::NotFound { 127 } else { 126 },
        error: crate::sys::raw::errno_name(&e),
    })?;
    let started_at = Instant::now();
    // The reaper keeps the timeout; this is the backstop should it not end.
    let backstop = started_at + timeout + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < backstop => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
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
        // The reaper kills itself so once the hook timed out and everything
        // the hook started is gone.
        (None, Some(libc::SIGKILL)) if started_at.elapsed() >= timeout => Err(HookError::TimedOut {
            phase,
            argv: argv.to_vec(),
            timeout,
        }),
        (None, signal) => Err(HookError::Signaled {
            phase,
            argv: argv.to_vec(),
            signal: signal.unwrap_or(0),
        }),
    }
}

/// Runs in the child sysjail spawns for a host hook, between fork and exec.
///
/// A hook may leave its process group (`setsid`) and put itself in the
/// background, out of reach of a kill of its group. So this child becomes a
/// child subreaper and forks: the new child returns to be exec'd as the
/// hook, the leader of a process group of its own, with no descriptor above
/// 2 (sysjail's own, such as the `up -b` report pipe, are not the hook's).
/// This one, the reaper, then inherits every process the hook orphans. When
/// the hook ends in time, the reaper ends as it did (what the hook left in
/// the background stays, as from a shell). When `timeout` passes, the reaper
/// kills the hook's group, then each of its children until it has none
/// left, and then itself with SIGKILL.
///
/// Only async-signal-safe calls are made: the parent may have threads.
fn reaper(timeout: Duration) -> io::Result<()> {
    use crate::sys::raw;
    raw::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)?;
    // SAFETY: fork(2) in the single-threaded child of a fork.
    let hook = unsafe { libc::fork() };
    if hook < 0 {
        return Err(io::Error::last_os_error());
    }
    if hook == 0 {
        // The hook: a group of its own, and what it is given only.
        // SAFETY: setpgid(2) with integer arguments.
        if unsafe { libc::setpgid(0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        return raw::cloexec_from(3);
    }
    // The reaper holds no descriptor: so std's exec-error pipe gets its end
    // of file when the hook is exec'd, and nothing of sysjail's stays open.
    let _ = raw::close_from(3);
    // SAFETY: below, system calls with integer arguments or pointers to
    // locals, all async-signal-safe; the process ends with _exit or a signal.
    unsafe {
        let deadline = now().saturating_add(timeout.as_nanos().min(u64::MAX as u128 / 2) as u64);
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
            if pid == hook {
                if libc::WIFSIGNALED(status) {
                    let signal = libc::WTERMSIG(status);
                    let none = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::setrlimit(libc::RLIMIT_CORE, &none);
                    libc::signal(signal, libc::SIG_DFL);
                    libc::kill(libc::getpid(), signal);
                    libc::_exit(128 + signal);
                }
                libc::_exit(libc::WEXITSTATUS(status));
            }
            if pid > 0 {
                // An orphan the hook left, reaped.
                continue;
            }
            if now() >= deadline {
                break;
            }
            sleep_ms(10);
        }
        libc::kill(-hook, libc::SIGKILL);
        // Each round kills the children there are; their own children then
        // come to this subreaper, to go the next round. Bounded in rounds and
        // time: a process in uninterruptible sleep may take a while to go.
        let give_up = now().saturating_add(10_000_000_000);
        for _ in 0..100_000 {
            let listed = kill_children();
            let mut status = 0;
            while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
            if listed == 0 && libc::waitpid(-1, &mut status, libc::WNOHANG) < 0 {
                break;
            }
            if now() >= give_up {
                break;
            }
            sleep_ms(1);
        }
        libc::kill(libc::getpid(), libc::SIGKILL);
        libc::_exit(124)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
fn now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

fn sleep_ms(ms: i64) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: ms * 1_000_000,
    };
    // SAFETY: ts is a valid local; the remainder is not wanted.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// SIGKILLs each child of the calling (single-threaded) process, as
/// /proc/thread-self/children lists them; how many were listed. Parses
/// without allocating.
fn kill_children() -> usize {
    // SAFETY: open/read/close/kill with a static path and a local buffer.
    unsafe {
        let fd = libc::open(c"/proc/thread-self/children".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return 0;
        }
        let mut buf = [0u8; 512];
        let mut listed = 0;
        let mut pid: i32 = 0;
        let mut digits = false;
        loop {
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            if n <= 0 {
                break;
            }
            for &b in &buf[..n as usize] {
                if b.is_ascii_digit() {
                    pid = pid.saturating_mul(10).saturating_add(i32::from(b - b'0'));
                    digits = true;
                } else if digits {
                    libc::kill(pid, libc::SIGKILL);
                    listed += 1;
                    pid = 0;
                    digits = false;
                }
            }
        }
        if digits {
            libc::kill(pid, libc::SIGKILL);
            listed += 1;
        }
        libc::close(fd);
        listed
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

    #[test]
    fn host_hooks_get_no_descriptor_above_2() {
        let dir = std::env::temp_dir().join(format!("sysjail-hookfd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        // A descriptor without close-on-exec, as an inherited pipe would be.
        // SAFETY: dup(2) of our own stdin; the copy is closed below.
        let leaked = unsafe { libc::dup(0) };
        assert!(leaked > 2);
        let out = dir.join("fds");
        // `exec 1>` redirects without a saved copy of stdout (dash keeps one at
        // fd 10 for a redirected command).
        let hook = cmd(&["/bin/sh", "-c", &format!("exec 1>{}; ls /proc/$$/fd", out.display())]);
        run_host(Phase::Prestart, &[hook], Duration::from_secs(10), &[]).unwrap();
        // SAFETY: closing the descriptor dup'd above.
        unsafe { libc::close(leaked) };
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "0\n1\n2\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn host_hook_timeout_kills_what_left_its_group() {
        let dir = std::env::temp_dir().join(format!("sysjail-hookreap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let pids = dir.join("pids");
        // A new session in the background, a child of that too, then a wait
        // past the timeout.
        let script = format!(
            "setsid sh -c 'echo $$ >> {p}; sleep 100 & echo $! >> {p}; wait' & sleep 100",
            p = pids.display()
        );
        let started = Instant::now();
        let err = run_host(
            Phase::Prestart,
            &[cmd(&["/bin/sh", "-c", &script])],
            Duration::from_secs(1),
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, HookError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(8));
        let listed: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        for pid in listed {
            // Gone, not even a zombie: the reaper waited for it.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
            assert!(stat.is_err(), "process {pid} is left: {stat:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
