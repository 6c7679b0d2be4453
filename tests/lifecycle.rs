//! A jail's life as a user manages it: honest background starts, `status`
//! and the history of an ended jail, `logs`, the restart policy and
//! `restart`, and readiness for systemd. Each test ends with nothing of its
//! jail on the host.

mod support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Ctx, Need, Runner, TestResult, alive, cgroup_dirs, ensure, run_bounded, text, wait_for};

fn main() {
    let mut r = Runner::new();
    r.test(
        "lifecycle_missing_command_fails_up_b",
        &[Need::Root],
        lifecycle_missing_command_fails_up_b,
    );
    r.test(
        "lifecycle_early_exit_fails_up_b_and_status_keeps_it",
        &[Need::Root],
        lifecycle_early_exit_fails_up_b_and_status_keeps_it,
    );
    r.test(
        "lifecycle_start_window_is_settable",
        &[Need::Root],
        lifecycle_start_window_is_settable,
    );
    r.test(
        "lifecycle_on_failure_restarts_a_killed_command",
        &[Need::Root],
        lifecycle_on_failure_restarts_a_killed_command,
    );
    r.test(
        "lifecycle_restart_limit_ends_the_jail",
        &[Need::Root],
        lifecycle_restart_limit_ends_the_jail,
    );
    r.test(
        "lifecycle_memory_limit_kill_is_the_reason",
        &[Need::Root, Need::Memory],
        lifecycle_memory_limit_kill_is_the_reason,
    );
    r.test(
        "lifecycle_halt_is_the_reason_and_never_restarted",
        &[Need::Root, Need::SeccompNotify],
        lifecycle_halt_is_the_reason_and_never_restarted,
    );
    r.test(
        "lifecycle_a_failed_restart_is_kept_as_history",
        &[Need::Root],
        lifecycle_a_failed_restart_is_kept_as_history,
    );
    r.test(
        "lifecycle_logs_tail_follow_and_rotation",
        &[Need::Root],
        lifecycle_logs_tail_follow_and_rotation,
    );
    r.test(
        "lifecycle_hooks_run_in_order_on_host_and_in_jail",
        &[Need::Root],
        lifecycle_hooks_run_in_order_on_host_and_in_jail,
    );
    r.test(
        "lifecycle_failing_hooks_abort_the_start",
        &[Need::Root],
        lifecycle_failing_hooks_abort_the_start,
    );
    r.test(
        "lifecycle_journal_log_reaches_journalctl",
        &[Need::Root, Need::Journal],
        lifecycle_journal_log_reaches_journalctl,
    );
    r.test(
        "lifecycle_journal_log_is_refused_without_a_journal",
        &[Need::Root, Need::NoJournal],
        lifecycle_journal_log_is_refused_without_a_journal,
    );
    r.test(
        "lifecycle_sd_notify_ready_and_stopping",
        &[Need::Root],
        lifecycle_sd_notify_ready_and_stopping,
    );
    r.test(
        "lifecycle_unsafe_owner_definition_is_refused_before_hooks",
        &[Need::Root],
        lifecycle_unsafe_owner_definition_is_refused_before_hooks,
    );
    r.test(
        "lifecycle_host_hooks_see_only_stdio",
        &[Need::Root],
        lifecycle_host_hooks_see_only_stdio,
    );
    r.test(
        "lifecycle_relative_dirs_and_restart_keep_the_config_dir",
        &[Need::Root],
        lifecycle_relative_dirs_and_restart_keep_the_config_dir,
    );
    r.test(
        "lifecycle_logs_reads_only_safe_bounded_logs",
        &[Need::Root],
        lifecycle_logs_reads_only_safe_bounded_logs,
    );
    r.test(
        "lifecycle_path_search_says_not_found_behind_a_closed_directory",
        &[Need::Root],
        lifecycle_path_search_says_not_found_behind_a_closed_directory,
    );
    r.test(
        "lifecycle_restart_of_an_ended_instance_keeps_its_name",
        &[Need::Root],
        lifecycle_restart_of_an_ended_instance_keeps_its_name,
    );
    r.test(
        "lifecycle_journal_logs_are_escaped_on_a_terminal",
        &[Need::Root, Need::Script],
        lifecycle_journal_logs_are_escaped_on_a_terminal,
    );
    r.test(
        "lifecycle_a_jails_escape_sequences_never_reach_a_terminal",
        &[Need::Root, Need::Script],
        lifecycle_a_jails_escape_sequences_never_reach_a_terminal,
    );
    r.run()
}

/// `sysjail up -b FILE -- CMD...`, bounded.
fn up_b(ctx: &Ctx, file: &Path, cmd: &[&str]) -> Output {
    let mut c = ctx.sysjail(&["up", "-b"]);
    c.arg(file).arg("--").args(cmd);
    run_bounded(c, Duration::from_secs(60))
}

/// `sysjail status NAME --format json`.
fn status(ctx: &Ctx) -> Result<Value, String> {
    let out = run_bounded(
        ctx.sysjail(&["status", &ctx.name, "--format", "json"]),
        Duration::from_secs(30),
    );
    if !out.status.success() {
        return Err(format!("status: {:?} {}", out.status, text(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("status JSON: {e}: {}", text(&out.stdout)))
}

/// Waits (bounded) until `status` satisfies `f`; the last status either way.
fn await_status(ctx: &Ctx, limit: Duration, f: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let start = Instant::now();
    loop {
        // No record yet (a foreground `up` just starting) counts as not yet.
        match status(ctx) {
            Ok(s) if f(&s) => return Ok(s),
            last if start.elapsed() > limit => return last,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// After the jail ended: no cgroup, only the history record (and default
/// log); `down` clears them, and then the directory holds only its lock.
fn ended_and_cleared(ctx: &Ctx, pids: &[i64]) -> TestResult {
    ensure(pids.iter().all(|p| !alive(*p)), || format!("processes left: {pids:?}"))?;
    let dir = ctx.dir.display().to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    ensure(!mounts.contains(&dir), || format!("host mounts under {dir} left"))?;
    ensure(
        wait_for(Duration::from_secs(10), || cgroup_dirs(&ctx.name).is_empty()),
        || format!("cgroups left: {:?}", cgroup_dirs(&ctx.name)),
    )?;
    let left = ctx.state_entries();
    let record = format!("{}.json", ctx.name);
    let log = format!("{}.log", ctx.name);
    // The history record holds its JID: its index entry stays with it.
    let index = |n: &str| n.starts_with(".jid.") && n.ends_with(&format!(".{}", ctx.name));
    ensure(
        left.contains(&record)
            && left.iter().filter(|n| index(n)).count() == 1
            && left.iter().all(|n| *n == record || n.starts_with(&log) || index(n)),
        || format!("the ended jail's state directory holds {left:?}"),
    )?;
    let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    ensure(out.status.success(), || {
        format!("down of an ended jail: {}", text(&out.stderr))
    })?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("after down: {:?}", ctx.state_entries())
    })?;
    let out = run_bounded(ctx.sysjail(&["status", &ctx.name]), Duration::from_secs(30));
    ensure(!out.status.success(), || "status of a cleared jail succeeded".into())
}

fn pid(v: &Value, key: &str) -> Option<i64> {
    match key {
        "command" => v["run"]["command_pid"].as_i64(),
        "init" => v["init_pid"].as_i64(),
        _ => v["supervisor_pid"].as_i64(),
    }
}

fn lifecycle_missing_command_fails_up_b(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("");
    let out = up_b(ctx, &file, &["/nonexistent/daemon", "--serve"]);
    ensure(out.status.code() == Some(127), || {
        format!("up -b exited {:?}: {}", out.status, text(&out.stderr))
    })?;
    let err = text(&out.stderr);
    ensure(
        err.contains("/nonexistent/daemon") && err.contains("ENOENT") && err.contains(&ctx.name),
        || format!("stderr: {err}"),
    )?;
    // Reported after teardown: the history is there at once.
    let s = status(ctx)?;
    ensure(
        s["state"] == "exited" && s["run"]["ended"]["reason"] == "start-failed" && s["run"]["ended"]["status"] == 127,
        || format!("status: {s:#}"),
    )?;
    let human = text(&run_bounded(ctx.sysjail(&["status", &ctx.name]), Duration::from_secs(30)).stdout);
    ensure(human.contains("could not be executed"), || format!("status: {human}"))?;
    // Not among the running jails.
    ensure(support::ls(ctx).is_empty(), || format!("ls: {:?}", support::ls(ctx)))?;
    ended_and_cleared(ctx, &[pid(&s, "supervisor").unwrap_or(0)])
}

fn lifecycle_early_exit_fails_up_b_and_status_keeps_it(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("");
    let started = Instant::now();
    let out = up_b(ctx, &file, &["/bin/sh", "-c", "echo cannot bind port 80 >&2; exit 3"]);
    ensure(out.status.code() == Some(3), || {
        format!("up -b exited {:?}: {}", out.status, text(&out.stderr))
    })?;
    let err = text(&out.stderr);
    ensure(
        err.contains("exited with status 3 within the start window") && err.contains("cannot bind port 80"),
        || format!("stderr: {err}"),
    )?;
    // It failed at once: no waiting out the window.
    ensure(started.elapsed() < Duration::from_secs(5), || {
        format!("up -b took {:?}", started.elapsed())
    })?;
    let s = status(ctx)?;
    ensure(
        s["state"] == "exited"
            && s["run"]["ended"]["code"] == 3
            && s["run"]["ended"]["reason"] == "exited"
            && s["run"]["restarts"] == 0,
        || format!("status: {s:#}"),
    )?;
    // `ls NAME` shows the same.
    let out = run_bounded(ctx.sysjail(&["ls", &ctx.name, "--json"]), Duration::from_secs(30));
    let ls: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("ls NAME: {e}"))?;
    ensure(ls["run"]["ended"]["code"] == 3, || format!("ls NAME: {ls:#}"))?;
    // A new start replaces the history; a command that exits 0 at once
    // started fine.
    let out = up_b(ctx, &file, &["/bin/true"]);
    ensure(out.status.success(), || {
        format!("up -b of /bin/true: {}", text(&out.stderr))
    })?;
    let s = await_status(ctx, Duration::from_secs(10), |s| s["state"] == "exited")?;
    ensure(s["run"]["ended"]["code"] == 0, || format!("status: {s:#}"))?;
    ended_and_cleared(ctx, &[pid(&s, "supervisor").unwrap_or(0)])
}

fn lifecycle_start_window_is_settable(ctx: &Ctx) -> TestResult {
    // Past a 200 ms window, the failure is the jail's own later business:
    // `up -b` succeeds, and `status` tells how it ended.
    let file = ctx.jail("start-window = \"200ms\"\n");
    let started = Instant::now();
    let out = up_b(ctx, &file, &["/bin/sh", "-c", "sleep 2; exit 4"]);
    ensure(
        out.status.success() && started.elapsed() < Duration::from_millis(1800),
        || {
            format!(
                "up -b exited {:?} after {:?}: {}",
                out.status,
                started.elapsed(),
                text(&out.stderr)
            )
        },
    )?;
    let s = status(ctx)?;
    ensure(s["state"] == "running", || format!("status: {s:#}"))?;
    let s = await_status(ctx, Duration::from_secs(15), |s| s["state"] == "exited")?;
    ensure(
        s["run"]["ended"]["code"] == 4 && s["run"]["ended"]["reason"] == "exited",
        || format!("status: {s:#}"),
    )?;
    ensure(
        text(&run_bounded(ctx.sysjail(&["status", &ctx.name]), Duration::from_secs(30)).stdout)
            .contains("exited with status 4"),
        || "status does not say how it ended".into(),
    )?;
    let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    ensure(out.status.success(), || text(&out.stderr))?;
    // --wait overrides the file's window: the same command fails within 3s.
    let mut c = ctx.sysjail(&["up", "-b", "--wait", "3s"]);
    c.arg(&file).args(["--", "/bin/sh", "-c", "sleep 1; exit 4"]);
    let out = run_bounded(c, Duration::from_secs(60));
    ensure(
        out.status.code() == Some(4) && text(&out.stderr).contains("within the start window (3000 ms)"),
        || format!("up -b --wait 3s: {:?} {}", out.status, text(&out.stderr)),
    )?;
    ended_and_cleared(ctx, &[])
}

fn lifecycle_on_failure_restarts_a_killed_command(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("restart = \"on-failure\"\n");
    let out = up_b(ctx, &file, &["/bin/sh", "-c", "echo run; exec sleep 300"]);
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let first = status(ctx)?;
    let (sup, cmd) = (pid(&first, "supervisor"), pid(&first, "command"));
    let Some(cmd) = cmd else {
        return Err(format!("no command pid: {first:#}"));
    };
    ensure(
        fs::read(format!("/proc/{cmd}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\x00300")),
        || format!("pid {cmd} is not the jail's command"),
    )?;
    // Killed from the host: a failure, which the policy answers.
    // SAFETY: kill(2) of the jail's command, which this test started.
    unsafe { libc::kill(cmd as i32, libc::SIGKILL) };
    let s = await_status(ctx, Duration::from_secs(20), |s| {
        s["run"]["restarts"] == 1 && s["state"] == "running" && pid(s, "command").is_some_and(|p| p != cmd)
    })?;
    ensure(
        s["run"]["restarts"] == 1 && s["state"] == "running" && pid(&s, "supervisor") == sup,
        || format!("after kill -9: {s:#}"),
    )?;
    ensure(
        s["run"]["ended"]["signal"] == 9 && s["run"]["ended"]["reason"] == "signaled",
        || format!("the last end: {s:#}"),
    )?;
    let human = text(&run_bounded(ctx.sysjail(&["status", &ctx.name]), Duration::from_secs(30)).stdout);
    ensure(
        human.contains("restarts   1") && human.contains("killed by signal 9 (SIGKILL)"),
        || format!("status: {human}"),
    )?;
    // The new run's output joins the old in the log, with the reason between.
    let logs = text(&run_bounded(ctx.sysjail(&["logs", &ctx.name]), Duration::from_secs(30)).stdout);
    ensure(
        logs.matches("run\n").count() == 2 && logs.contains("restarting in 100 ms (1/5)"),
        || format!("logs: {logs}"),
    )?;
    // `restart` stops and starts it again in the same supervisor.
    let before = pid(&s, "command");
    let out = run_bounded(ctx.sysjail(&["restart", &ctx.name]), Duration::from_secs(60));
    ensure(out.status.success(), || format!("restart: {}", text(&out.stderr)))?;
    let s = status(ctx)?;
    ensure(
        s["run"]["restarts"] == 2
            && s["state"] == "running"
            && pid(&s, "command").is_some_and(|p| Some(p) != before)
            && pid(&s, "supervisor") == sup,
        || format!("after restart: {s:#}"),
    )?;
    let pids: Vec<i64> = [pid(&s, "init"), pid(&s, "command"), sup]
        .into_iter()
        .flatten()
        .collect();
    // `down` stops it and clears everything.
    let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
    ensure(out.status.success(), || format!("down: {}", text(&out.stderr)))?;
    ensure(
        wait_for(Duration::from_secs(10), || pids.iter().all(|p| !alive(*p))),
        || format!("processes left: {pids:?}"),
    )?;
    ensure(cgroup_dirs(&ctx.name).is_empty(), || {
        format!("cgroups left: {:?}", cgroup_dirs(&ctx.name))
    })?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("after down: {:?}", ctx.state_entries())
    })
}

fn lifecycle_restart_limit_ends_the_jail(ctx: &Ctx) -> TestResult {
    // Fails after its start window, every time: two restarts, then it stays down.
    let file = ctx.jail("restart = \"always\"\nrestart-limit = 2\nstart-window = \"100ms\"\n");
    let out = up_b(ctx, &file, &["/bin/sh", "-c", "sleep 0.3; exit 7"]);
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let sup = pid(&status(ctx)?, "supervisor").unwrap_or(0);
    let s = await_status(ctx, Duration::from_secs(20), |s| s["state"] == "exited")?;
    ensure(
        s["state"] == "exited" && s["run"]["restarts"] == 2 && s["run"]["ended"]["code"] == 7,
        || format!("status: {s:#}"),
    )?;
    // `restart` of the ended jail: `up -b` of its recorded definition and
    // command, under a new supervisor that replaces the history.
    let out = run_bounded(ctx.sysjail(&["restart", &ctx.name]), Duration::from_secs(60));
    ensure(out.status.success(), || format!("restart: {}", text(&out.stderr)))?;
    let again = status(ctx)?;
    let second = pid(&again, "supervisor").unwrap_or(0);
    ensure(second != sup && again["run"]["restarts"] == 0, || {
        format!("after restart of the ended jail: {again:#}")
    })?;
    let s = await_status(ctx, Duration::from_secs(20), |s| s["state"] == "exited")?;
    ensure(s["run"]["restarts"] == 2 && s["run"]["ended"]["code"] == 7, || {
        format!("status: {s:#}")
    })?;
    ended_and_cleared(ctx, &[sup, second])
}

fn lifecycle_memory_limit_kill_is_the_reason(ctx: &Ctx) -> TestResult {
    // tail keeps a line of /dev/zero, which never ends, until the OOM
    // killer of the memory limit kills it.
    let file = ctx.jail("[limits]\nmemory = \"32M\"\n");
    let out = up_b(ctx, &file, &["/usr/bin/tail", "-n", "1", "/dev/zero"]);
    let err = text(&out.stderr);
    ensure(
        out.status.code() == Some(137) && err.contains("killed by the memory limit (32M)"),
        || format!("up -b: {:?} {err}", out.status),
    )?;
    let s = status(ctx)?;
    ensure(
        s["run"]["ended"]["reason"] == "memory-limit" && s["run"]["ended"]["signal"] == 9,
        || format!("status: {s:#}"),
    )?;
    let human = text(&run_bounded(ctx.sysjail(&["status", &ctx.name]), Duration::from_secs(30)).stdout);
    ensure(human.contains("by the memory limit (OOM)"), || {
        format!("status: {human}")
    })?;
    ended_and_cleared(ctx, &[pid(&s, "supervisor").unwrap_or(0)])
}

fn lifecycle_logs_tail_follow_and_rotation(ctx: &Ctx) -> TestResult {
    // About 190K of output through a 64K log: rotated once or more, the
    // oldest lines gone, the two files each within the cap and one write.
    let file = ctx.jail("log-size = \"64K\"\n");
    let script =
        "sleep 1; i=0; while [ $i -lt 5000 ]; do echo \"line $i of the jail's output, padded\"; i=$((i+1)); done";
    let out = up_b(ctx, &file, &["/bin/sh", "-c", script]);
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    // -f follows while the jail runs, and returns once it has ended.
    let followed = run_bounded(ctx.sysjail(&["logs", "-f", &ctx.name]), Duration::from_secs(60));
    ensure(followed.status.success(), || {
        format!("logs -f: {}", text(&followed.stderr))
    })?;
    let followed = text(&followed.stdout);
    ensure(followed.ends_with("line 4999 of the jail's output, padded\n"), || {
        format!(
            "logs -f ended with: {:?}",
            &followed[followed.len().saturating_sub(200)..]
        )
    })?;
    let s = await_status(ctx, Duration::from_secs(10), |s| s["state"] == "exited")?;
    let out = run_bounded(ctx.sysjail(&["logs", "-n", "3", &ctx.name]), Duration::from_secs(30));
    ensure(
        text(&out.stdout)
            == "line 4997 of the jail's output, padded\nline 4998 of the jail's output, padded\nline 4999 of the jail's output, padded\n",
        || format!("logs -n 3: {:?} {}", text(&out.stdout), text(&out.stderr)),
    )?;
    let all = text(&run_bounded(ctx.sysjail(&["logs", &ctx.name]), Duration::from_secs(30)).stdout);
    ensure(!all.contains("line 0 of") && all.contains("line 4999 of"), || {
        format!("logs holds {} bytes, from {:?}", all.len(), all.lines().next())
    })?;
    let log = ctx.state.join(format!("{}.log", ctx.name));
    let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
    let rotated = ctx.state.join(format!("{}.log.1", ctx.name));
    ensure(
        size(&rotated) > 0 && size(&rotated) <= (64 << 10) + (16 << 10) && size(&log) <= (64 << 10) + (16 << 10),
        || format!("log {} bytes, rotated {} bytes", size(&log), size(&rotated)),
    )?;
    ensure(!ctx.state.join(format!("{}.log.2", ctx.name)).exists(), || {
        "a second rotated log".into()
    })?;
    ended_and_cleared(ctx, &[pid(&s, "supervisor").unwrap_or(0)])
}

fn lifecycle_sd_notify_ready_and_stopping(ctx: &Ctx) -> TestResult {
    let sock_path = ctx.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let file = ctx.jail("start-window = \"100ms\"\n");
    let mut c = ctx.sysjail(&["up", "-b"]);
    c.arg(&file)
        .args(["--", "/bin/sleep", "300"])
        .env("NOTIFY_SOCKET", &sock_path);
    let out = run_bounded(c, Duration::from_secs(60));
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).map_err(|e| format!("no READY=1: {e}"))?;
    ensure(&buf[..n] == b"READY=1", || format!("got {:?}", text(&buf[..n])))?;
    let s = status(ctx)?;
    let pids: Vec<i64> = ["supervisor", "init", "command"]
        .iter()
        .filter_map(|k| pid(&s, k))
        .collect();
    // The jail's command does not see the socket.
    let out = run_bounded(
        ctx.sysjail(&["exec", &ctx.name, "--", "/bin/sh", "-c", "echo \"[$NOTIFY_SOCKET]\""]),
        Duration::from_secs(30),
    );
    ensure(text(&out.stdout) == "[]\n", || {
        format!("NOTIFY_SOCKET in the jail: {}", text(&out.stdout))
    })?;
    let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
    ensure(out.status.success(), || format!("down: {}", text(&out.stderr)))?;
    let n = sock.recv(&mut buf).map_err(|e| format!("no STOPPING=1: {e}"))?;
    ensure(&buf[..n] == b"STOPPING=1", || format!("got {:?}", text(&buf[..n])))?;
    ensure(
        wait_for(Duration::from_secs(10), || pids.iter().all(|p| !alive(*p))),
        || format!("processes left: {pids:?}"),
    )?;
    ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("left: {:?}", ctx.state_entries())
    })?;
    // In the foreground, as systemd runs it (Type=notify): READY=1 once the
    // command runs, while `up` still runs.
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&file)
        .args(["--", "/bin/sleep", "300"])
        .env("NOTIFY_SOCKET", &sock_path);
    let runner = std::thread::spawn(move || run_bounded(c, Duration::from_secs(60)));
    let ready = sock.recv(&mut buf).map(|n| buf[..n].to_vec());
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
    let out = runner.join().unwrap();
    ensure(ready.as_deref().is_ok_and(|r| r == b"READY=1"), || {
        format!("foreground: {ready:?}; up: {}", text(&out.stderr))
    })?;
    ensure(down.status.success(), || format!("down: {}", text(&down.stderr)))?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("left: {:?}", ctx.state_entries())
    })
}

fn lifecycle_hooks_run_in_order_on_host_and_in_jail(ctx: &Ctx) -> TestResult {
    // The jail's root is the host's /, read-only: a file a hook writes in
    // the test's directory was written on the host.
    let host_file = ctx.dir.join("host-side");
    let body = format!(
        "hostname = \"hooked.jail\"\n[hooks]\n\
         prestart = [[\"/bin/sh\", \"-c\", \"echo prestart $SYSJAIL_NAME $SYSJAIL_JID > {f}; echo prestart on $(hostname)\"]]\n\
         poststart = [[\"/bin/hostname\"], [\"/bin/sh\", \"-c\", \"echo poststart-2 as $(id -u)\"]]\n\
         prestop = [[\"/bin/sh\", \"-c\", \"echo prestop in $(hostname)\"]]\n\
         poststop = [[\"/bin/sh\", \"-c\", \"echo poststop $SYSJAIL_NAME >> {f}\"]]\n",
        f = host_file.display()
    );
    let file = ctx.jail(&body);
    // `policy` shows them, in order, with where they run.
    let mut c = ctx.sysjail(&["policy"]);
    c.arg(&file);
    let policy = text(&run_bounded(c, Duration::from_secs(30)).stdout);
    let at = |s: &str| policy.find(s);
    ensure(
        at("prestart   on the host").is_some()
            && at("poststart  in the jail") < at("prestop    in the jail")
            && at("prestop    in the jail") < at("poststop   on the host"),
        || format!("policy: {policy}"),
    )?;
    // In the foreground, so that the output of each is on our pipe.
    let mut up = ctx.sysjail(&["up"]);
    up.arg(&file)
        .args(["--", "/bin/sh", "-c", "echo command; exec sleep 300"]);
    let runner = std::thread::spawn(move || run_bounded(up, Duration::from_secs(60)));
    let running = await_status(ctx, Duration::from_secs(20), |s| s["state"] == "running");
    // The poststart hooks ran once the command did; give them a moment.
    std::thread::sleep(Duration::from_millis(500));
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
    let out = runner.join().unwrap();
    running?;
    ensure(down.status.success(), || format!("down: {}", text(&down.stderr)))?;
    let stdout = text(&out.stdout);
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let order = [
        format!("prestart on {}", host.trim()),
        "hooked.jail\n".to_string(),
        "poststart-2 as 0\n".to_string(),
        "prestop in hooked.jail\n".to_string(),
    ];
    let positions: Vec<Option<usize>> = order.iter().map(|s| stdout.find(s.as_str())).collect();
    ensure(
        positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1]),
        || {
            format!(
                "hook output out of order: {positions:?} in {stdout:?}\nstderr: {}",
                text(&out.stderr)
            )
        },
    )?;
    let jid = 1;
    ensure(
        fs::read_to_string(&host_file)
            .is_ok_and(|t| t == format!("prestart {} {jid}\npoststop {}\n", ctx.name, ctx.name)),
        || format!("host file: {:?}", fs::read_to_string(&host_file)),
    )?;
    ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("left: {:?}", ctx.state_entries())
    })
}

fn lifecycle_failing_hooks_abort_the_start(ctx: &Ctx) -> TestResult {
    // A failing prestart: nothing is made, and `up` exits with its status.
    let marker = ctx.dir.join("never");
    let file = ctx.jail(&format!(
        "[hooks]\nprestart = [[\"/bin/sh\", \"-c\", \"echo no disk >&2; exit 5\"], [\"/bin/touch\", \"{}\"]]\n",
        marker.display()
    ));
    for background in [true, false] {
        let mut c = ctx.sysjail(&["up"]);
        if background {
            c.arg("-b");
        }
        c.arg(&file).args(["--", "/bin/sleep", "300"]);
        let out = run_bounded(c, Duration::from_secs(60));
        let err = text(&out.stderr);
        ensure(
            out.status.code() == Some(5) && err.contains("hooks.prestart") && err.contains("exited with status 5"),
            || format!("background {background}: {:?} {err}", out.status),
        )?;
        ensure(!marker.exists(), || "the hook after the failed one ran".into())?;
        ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())?;
        ensure(ctx.state_entries().is_empty(), || {
            format!("left: {:?}", ctx.state_entries())
        })?;
    }
    // A failing poststart stops the jail, which `status` tells.
    let file = ctx.jail("[hooks]\npoststart = [[\"/bin/sh\", \"-c\", \"exit 6\"]]\n");
    let out = up_b(ctx, &file, &["/bin/sleep", "300"]);
    ensure(
        out.status.code() == Some(6) && text(&out.stderr).contains("hooks.poststart"),
        || format!("poststart: {:?} {}", out.status, text(&out.stderr)),
    )?;
    let s = status(ctx)?;
    ensure(
        s["state"] == "exited" && s["run"]["ended"]["reason"] == "hook-failed",
        || format!("status: {s:#}"),
    )?;
    ended_and_cleared(ctx, &[pid(&s, "supervisor").unwrap_or(0)])?;
    // One that runs past hooks.timeout is killed, and fails as 124.
    let file = ctx.jail("[hooks]\npoststart = [[\"/bin/sleep\", \"30\"]]\ntimeout = \"300ms\"\n");
    let started = Instant::now();
    let out = up_b(ctx, &file, &["/bin/sleep", "300"]);
    ensure(
        out.status.code() == Some(124)
            && text(&out.stderr).contains("did not finish within 300 ms (hooks.timeout)")
            && started.elapsed() < Duration::from_secs(10),
        || format!("poststart past its timeout: {:?} {}", out.status, text(&out.stderr)),
    )?;
    let s = status(ctx)?;
    ended_and_cleared(ctx, &[pid(&s, "supervisor").unwrap_or(0)])?;
    // One whose program the jail lacks: 127, with the exec error.
    let file = ctx.jail("[hooks]\npoststart = [[\"/nonexistent/hook\"]]\n");
    let out = up_b(ctx, &file, &["/bin/sleep", "300"]);
    ensure(
        out.status.code() == Some(127)
            && text(&out.stderr).contains("could not be started")
            && text(&out.stderr).contains("ENOENT"),
        || format!("a missing poststart program: {:?} {}", out.status, text(&out.stderr)),
    )?;
    let s = status(ctx)?;
    ended_and_cleared(ctx, &[pid(&s, "supervisor").unwrap_or(0)])
}

fn lifecycle_journal_log_reaches_journalctl(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("log = \"journal\"\n");
    let marker = format!("journal-marker-{}", std::process::id());
    let out = up_b(
        ctx,
        &file,
        &["/bin/sh", "-c", &format!("echo {marker}; exec sleep 300")],
    );
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let found = wait_for(Duration::from_secs(20), || {
        text(&run_bounded(ctx.sysjail(&["logs", &ctx.name]), Duration::from_secs(30)).stdout).contains(&marker)
    });
    let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
    ensure(found, || {
        format!("`logs` (journalctl -t sysjail-{}) never showed {marker}", ctx.name)
    })?;
    ensure(out.status.success(), || format!("down: {}", text(&out.stderr)))?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("left: {:?}", ctx.state_entries())
    })
}

fn lifecycle_journal_log_is_refused_without_a_journal(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("log = \"journal\"\n");
    let out = up_b(ctx, &file, &["/bin/sleep", "300"]);
    ensure(
        out.status.code() == Some(125) && text(&out.stderr).contains("this host has no systemd journal"),
        || format!("up -b: {:?} {}", out.status, text(&out.stderr)),
    )?;
    ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("left: {:?}", ctx.state_entries())
    })
}

fn lifecycle_halt_is_the_reason_and_never_restarted(ctx: &Ctx) -> TestResult {
    // Jail root's reboot(2) halts the jail: its own wish, which even
    // restart = "always" respects.
    let file = ctx.jail("restart = \"always\"\nstart-window = \"200ms\"\n");
    let cmd = format!("sleep 1; exec {} probe reboot-halt", support::bin());
    let out = up_b(ctx, &file, &["/bin/sh", "-c", &cmd]);
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let sup = pid(&status(ctx)?, "supervisor").unwrap_or(0);
    let s = await_status(ctx, Duration::from_secs(20), |s| s["state"] == "exited")?;
    ensure(
        s["run"]["ended"]["reason"] == "halted" && s["run"]["restarts"] == 0,
        || format!("status: {s:#}"),
    )?;
    ended_and_cleared(ctx, &[sup])
}

fn lifecycle_a_failed_restart_is_kept_as_history(ctx: &Ctx) -> TestResult {
    // The prestart hook lets the first run start and refuses the second.
    let marker = ctx.dir.join("started-once");
    let file = ctx.jail(&format!(
        "restart = \"on-failure\"\nstart-window = \"100ms\"\n[hooks]\n\
         prestart = [[\"/bin/sh\", \"-c\", \"[ -e {m} ] && exit 9; touch {m}\"]]\n",
        m = marker.display()
    ));
    let out = up_b(ctx, &file, &["/bin/sh", "-c", "sleep 0.3; exit 1"]);
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let sup = pid(&status(ctx)?, "supervisor").unwrap_or(0);
    let s = await_status(ctx, Duration::from_secs(20), |s| s["state"] == "exited")?;
    ensure(
        s["run"]["ended"]["reason"] == "restart-failed"
            && s["run"]["ended"]["status"] == 9
            && s["run"]["ended"]["events"][0]
                .as_str()
                .is_some_and(|e| e.contains("hooks.prestart") && e.contains("status 9")),
        || format!("status: {s:#}"),
    )?;
    ended_and_cleared(ctx, &[sup])
}

fn lifecycle_unsafe_owner_definition_is_refused_before_hooks(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::{PermissionsExt, chown};
    let marker = ctx.dir.join("pwned");
    let hook = format!(
        "[hooks]\nprestart = [[\"/bin/sh\", \"-c\", \"id > {}\"]]\n",
        marker.display()
    );
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    // A definition in `dir` extending base.toml beside it, which holds the hook.
    let layout = |dir: &Path, dir_mode: u32, base_owner: u32, base_mode: u32| {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).unwrap();
        let base = dir.join("base.toml");
        fs::write(&base, format!("template = true\npath = \"/\"\n{hook}")).unwrap();
        chown(&base, Some(base_owner), Some(base_owner)).unwrap();
        mode(&base, base_mode);
        let top = dir.join(format!("{}.toml", ctx.name));
        fs::write(
            &top,
            format!(
                "extends = \"base.toml\"\nname = \"{}\"\ncommand = [\"/bin/true\"]\n",
                ctx.name
            ),
        )
        .unwrap();
        mode(&top, 0o644);
        mode(dir, dir_mode);
        top
    };
    let cases = [
        ("a base owned by another user", 0o755, 65534, 0o644),
        ("a base writable by others", 0o755, 0, 0o666),
        ("a base writable by its group", 0o755, 0, 0o664),
        ("a directory writable by others", 0o777, 0, 0o644),
    ];
    for (what, dir_mode, owner, base_mode) in cases {
        let dir = ctx.dir.join("u");
        let top = layout(&dir, dir_mode, owner, base_mode);
        // `check` still lints it, and says nothing of its owner.
        let mut c = ctx.sysjail(&["check"]);
        c.arg(&top);
        let check = run_bounded(c, Duration::from_secs(30));
        ensure(
            !text(&check.stderr).contains("file::unsafe-owner") && !text(&check.stdout).contains("file::unsafe-owner"),
            || format!("{what}: check: {}{}", text(&check.stdout), text(&check.stderr)),
        )?;
        let out = up_b(ctx, &top, &["/bin/sleep", "300"]);
        let err = text(&out.stderr);
        ensure(
            out.status.code() == Some(125) && err.contains("sysjail::file::unsafe-owner"),
            || format!("{what}: up -b: {:?} {err}", out.status),
        )?;
        ensure(!marker.exists(), || format!("{what}: the hook ran as root"))?;
        ensure(ctx.state_entries().is_empty(), || {
            format!("{what}: left {:?}", ctx.state_entries())
        })?;
        ensure(cgroup_dirs(&ctx.name).is_empty(), || format!("{what}: cgroups left"))?;
        // `selftest` launches too, and is refused the same way.
        let mut c = ctx.sysjail(&["selftest"]);
        c.arg(&top);
        let st = run_bounded(c, Duration::from_secs(60));
        ensure(
            !st.status.success() && text(&st.stderr).contains("sysjail::file::unsafe-owner"),
            || format!("{what}: selftest: {:?} {}", st.status, text(&st.stderr)),
        )?;
        ensure(!marker.exists(), || format!("{what}: selftest ran the hook"))?;
    }
    // A dependency, found beside the definition, handed to another user:
    // the launch of the set is refused before anything of either starts.
    let dir = ctx.dir.join("deps");
    fs::create_dir_all(&dir).unwrap();
    let dep = format!("{}-dep", ctx.name);
    let dep_file = dir.join(format!("{dep}.toml"));
    fs::write(
        &dep_file,
        format!("name = \"{dep}\"\npath = \"/\"\ncommand = [\"/bin/sleep\", \"300\"]\n{hook}"),
    )
    .unwrap();
    chown(&dep_file, Some(65534), Some(65534)).unwrap();
    let top = dir.join(format!("{}.toml", ctx.name));
    fs::write(
        &top,
        format!(
            "name = \"{}\"\npath = \"/\"\ncommand = [\"/bin/true\"]\ndepend = [\"{dep}\"]\n",
            ctx.name
        ),
    )
    .unwrap();
    let out = up_b(ctx, &top, &["/bin/sleep", "300"]);
    let err = text(&out.stderr);
    ensure(
        out.status.code() == Some(125) && err.contains("sysjail::file::unsafe-owner"),
        || format!("dependency: up -b: {:?} {err}", out.status),
    )?;
    ensure(!marker.exists(), || "the dependency's hook ran as root".into())?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("dependency: left {:?}", ctx.state_entries())
    })?;
    // A sticky directory writable by all, with files of root's: launched, as
    // is the same tree in a directory of root's.
    for dir_mode in [0o1777, 0o755] {
        let dir = ctx.dir.join("u");
        let top = layout(&dir, dir_mode, 0, 0o644);
        let out = up_b(ctx, &top, &["/bin/sleep", "300"]);
        ensure(out.status.success(), || {
            format!("mode {dir_mode:o}: up -b: {:?} {}", out.status, text(&out.stderr))
        })?;
        let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
        ensure(down.status.success(), || format!("down: {}", text(&down.stderr)))?;
        ensure(marker.exists(), || format!("mode {dir_mode:o}: the hook did not run"))?;
        fs::remove_file(&marker).unwrap();
    }
    ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())
}

fn lifecycle_host_hooks_see_only_stdio(ctx: &Ctx) -> TestResult {
    // `exec 1>` redirects without the copy of stdout dash keeps for a
    // redirected command; ls then lists the shell's descriptors.
    let pre = ctx.dir.join("prestart-fds");
    let post = ctx.dir.join("poststop-fds");
    let file = ctx.jail(&format!(
        "[hooks]\nprestart = [[\"/bin/sh\", \"-c\", \"exec 1>{}; ls /proc/$$/fd\"]]\n\
         poststop = [[\"/bin/sh\", \"-c\", \"exec 1>{}; ls /proc/$$/fd\"]]\n",
        pre.display(),
        post.display()
    ));
    let out = up_b(ctx, &file, &["/bin/sleep", "300"]);
    ensure(out.status.success(), || {
        format!("up -b: {:?} {}", out.status, text(&out.stderr))
    })?;
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
    ensure(down.status.success(), || format!("down: {}", text(&down.stderr)))?;
    for f in [&pre, &post] {
        ensure(fs::read_to_string(f).is_ok_and(|t| t == "0\n1\n2\n"), || {
            format!("{}: {:?}", f.display(), fs::read_to_string(f))
        })?;
    }
    ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())
}

fn lifecycle_relative_dirs_and_restart_keep_the_config_dir(ctx: &Ctx) -> TestResult {
    // From the test's directory, with relative --state-dir and --config-dir:
    // `state` is the Ctx's own state directory, so its cleanup finds them.
    let run = |args: &[&str], config: bool| {
        let mut c = std::process::Command::new(support::bin());
        c.current_dir(&ctx.dir).args(["--state-dir", "state"]);
        if config {
            c.args(["--config-dir", "conf"]);
        }
        c.args(args).env("NO_COLOR", "1").stdin(std::process::Stdio::null());
        run_bounded(c, Duration::from_secs(60))
    };
    let dep = format!("{}-dep", ctx.name);
    fs::create_dir_all(ctx.dir.join("conf")).unwrap();
    fs::create_dir_all(ctx.dir.join("defs")).unwrap();
    fs::write(
        ctx.dir.join(format!("conf/{dep}.toml")),
        format!("name = \"{dep}\"\npath = \"/\"\ncommand = [\"/bin/sleep\", \"300\"]\n"),
    )
    .unwrap();
    // Found only through the config directory; ends by itself soon.
    let def = format!("defs/{}.toml", ctx.name);
    fs::write(
        ctx.dir.join(&def),
        format!(
            "name = \"{}\"\npath = \"/\"\ndepend = [\"{dep}\"]\nstart-window = \"100ms\"\n\
             command = [\"/bin/sleep\", \"1\"]\n",
            ctx.name
        ),
    )
    .unwrap();
    let names = |out: &Output| -> Vec<String> {
        serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|j| j["name"].as_str().map(str::to_string))
            .collect()
    };
    let out = run(&["up", "-b", &def], true);
    ensure(out.status.success(), || {
        format!("up -b: {:?} {}", out.status, text(&out.stderr))
    })?;
    ensure(ctx.state.join("lock").exists(), || {
        "the state directory is not beside the caller".into()
    })?;
    let ls = run(&["ls", "--json"], false);
    ensure(names(&ls).contains(&dep), || format!("ls: {}", text(&ls.stdout)))?;
    let ended = wait_for(Duration::from_secs(20), || {
        let s = run(&["status", &ctx.name, "--format", "json"], false);
        serde_json::from_slice::<Value>(&s.stdout).is_ok_and(|s| s["state"] == "exited")
    });
    ensure(ended, || "the jail did not end".into())?;
    let out = run(&["down", &dep], false);
    ensure(out.status.success(), || format!("down dep: {}", text(&out.stderr)))?;
    // `restart` of the ended jail, given no --config-dir: the dependency is
    // found where the first `up` found it.
    let out = run(&["restart", &ctx.name], false);
    ensure(out.status.success(), || {
        format!("restart: {:?} {}", out.status, text(&out.stderr))
    })?;
    ensure(!text(&out.stderr).contains("changed since"), || {
        format!("restart of an unchanged file: {}", text(&out.stderr))
    })?;
    let ls = run(&["ls", "--json"], false);
    ensure(names(&ls).contains(&dep), || {
        format!("ls after restart: {}", text(&ls.stdout))
    })?;
    // Edited since it started: said, and the file as it is now starts.
    let ended = wait_for(Duration::from_secs(20), || {
        let s = run(&["status", &ctx.name, "--format", "json"], false);
        serde_json::from_slice::<Value>(&s.stdout).is_ok_and(|s| s["state"] == "exited")
    });
    ensure(ended, || "the restarted jail did not end".into())?;
    let mut edited = fs::read_to_string(ctx.dir.join(&def)).unwrap();
    edited.push_str("# edited\n");
    fs::write(ctx.dir.join(&def), edited).unwrap();
    let out = run(&["restart", &ctx.name], false);
    ensure(
        out.status.success() && text(&out.stderr).contains("changed since the jail started"),
        || format!("restart of an edited file: {:?} {}", out.status, text(&out.stderr)),
    )?;
    // Handed to another user since: refused, as any launch of it would be.
    let ended = wait_for(Duration::from_secs(20), || {
        let s = run(&["status", &ctx.name, "--format", "json"], false);
        serde_json::from_slice::<Value>(&s.stdout).is_ok_and(|s| s["state"] == "exited")
    });
    ensure(ended, || "the restarted jail did not end".into())?;
    std::os::unix::fs::chown(ctx.dir.join(&def), Some(65534), Some(65534)).unwrap();
    let out = run(&["restart", &ctx.name], false);
    ensure(
        out.status.code() == Some(125) && text(&out.stderr).contains("sysjail::file::unsafe-owner"),
        || format!("restart of another user's file: {:?} {}", out.status, text(&out.stderr)),
    )?;
    for name in [&ctx.name, &dep] {
        let out = run(&["down", name], false);
        ensure(out.status.success(), || format!("down {name}: {}", text(&out.stderr)))?;
    }
    ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())?;
    ensure(ctx.state_entries().is_empty(), || {
        format!("left: {:?}", ctx.state_entries())
    })
}

fn lifecycle_logs_reads_only_safe_bounded_logs(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::{PermissionsExt, chown};
    // The log in a sticky directory anyone may write, as /tmp.
    let sticky = ctx.dir.join("sticky");
    fs::create_dir_all(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let log = sticky.join("x.log");
    let old = sticky.join("x.log.1");
    let file = ctx.jail(&format!("log = \"{}\"\nlog-size = \"64K\"\n", log.display()));
    let out = up_b(
        ctx,
        &file,
        &["/bin/sh", "-c", "echo real-one; echo real-two; exec sleep 300"],
    );
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let logs = |extra: &[&str]| {
        let mut args = vec!["logs", ctx.name.as_str()];
        args.extend(extra);
        run_bounded(ctx.sysjail(&args), Duration::from_secs(20))
    };
    ensure(
        wait_for(Duration::from_secs(10), || text(&logs(&[]).stdout).contains("real-two")),
        || format!("logs: {}", text(&logs(&[]).stdout)),
    )?;
    // Another user's NAME.1: not shown, and said so.
    fs::write(&old, "FORGED by nobody\n").unwrap();
    chown(&old, Some(65534), Some(65534)).unwrap();
    for extra in [&[][..], &["-n", "5"][..]] {
        let out = logs(extra);
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        ensure(
            out.status.success() && o.contains("real-one") && !o.contains("FORGED") && e.contains("owned by uid 65534"),
            || format!("logs {extra:?}: {:?} {o} {e}", out.status),
        )?;
    }
    // Root's, but writable by all: the same.
    chown(&old, Some(0), Some(0)).unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o666)).unwrap();
    let out = logs(&[]);
    ensure(!text(&out.stdout).contains("FORGED"), || {
        format!("mode 666: {}", text(&out.stdout))
    })?;
    // A sparse rotated log of 3 GB: only its end is read, quickly.
    fs::remove_file(&old).unwrap();
    let f = fs::File::create(&old).unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o640)).unwrap();
    f.set_len(3 << 30).unwrap();
    {
        use std::os::unix::fs::FileExt;
        f.write_at(b"\nold-last\n", (3 << 30) - 10).unwrap();
    }
    drop(f);
    let started = Instant::now();
    let out = logs(&[]);
    let o = &out.stdout;
    ensure(
        out.status.success() && o.len() < 2 << 20 && text(o).contains("old-last\nreal-one\nreal-two\n"),
        || format!("sparse: {:?} {} bytes {}", out.status, o.len(), text(&out.stderr)),
    )?;
    let out = logs(&["-n", "3"]);
    ensure(text(&out.stdout) == "old-last\nreal-one\nreal-two\n", || {
        format!("-n 3: {:?}", text(&out.stdout))
    })?;
    ensure(started.elapsed() < Duration::from_secs(10), || {
        format!("took {:?}", started.elapsed())
    })?;
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(60));
    ensure(down.status.success(), || format!("down: {}", text(&down.stderr)))?;
    ensure(cgroup_dirs(&ctx.name).is_empty(), || "cgroups left".into())
}

/// What `command` prints when its standard output is a terminal of its own
/// ([`support::on_a_terminal`]), with the command's own environment.
fn on_a_terminal(command: &std::process::Command) -> String {
    let env = command.get_envs().filter_map(|(k, v)| {
        let mut kv = k.to_os_string();
        kv.push("=");
        kv.push(v?);
        Some(kv)
    });
    let line: Vec<String> = std::iter::once(std::ffi::OsString::from("env"))
        .chain(env)
        .chain(std::iter::once(command.get_program().to_os_string()))
        .chain(command.get_args().map(|a| a.to_os_string()))
        .map(|a| support::quote(&a.to_string_lossy()))
        .collect();
    support::on_a_terminal(&line.join(" "))
}

/// `logs` of a jail with `log = "journal"` escapes what journalctl prints
/// (`-o cat` passes the jail's bytes) as it does the log's own. journalctl
/// here is a stand-in first on PATH (no journal runs in CI), and the jail
/// an ended one's history record.
fn lifecycle_journal_logs_are_escaped_on_a_terminal(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let bin = ctx.dir.join("bin");
    fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let fake = bin.join("journalctl");
    fs::write(&fake, "#!/bin/sh\nprintf 'journal \\033]0;owned\\007\\r\\n'\n").map_err(|e| e.to_string())?;
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    fs::create_dir_all(&ctx.state).map_err(|e| e.to_string())?;
    fs::set_permissions(&ctx.state, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    let me = std::process::id() as i32;
    let mut record = support::record(
        &ctx.name,
        me,
        sysjail::state::start_time(me).unwrap_or(0),
        &ctx.state.join("x.sock"),
    );
    record.state = sysjail::state::JailState::Exited;
    record.run.journal = Some(format!("sysjail-{}", ctx.name));
    fs::write(
        ctx.state.join(format!("{}.json", ctx.name)),
        serde_json::to_string(&record).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut logs = ctx.sysjail(&["logs", &ctx.name]);
    logs.env("PATH", &path);
    let piped = run_bounded(logs, Duration::from_secs(30));
    ensure(text(&piped.stdout) == "journal \x1b]0;owned\x07\r\n", || {
        format!("logs | cat: {:?} {}", text(&piped.stdout), text(&piped.stderr))
    })?;
    let mut logs = ctx.sysjail(&["logs", &ctx.name]);
    logs.env("PATH", &path);
    let tty = on_a_terminal(&logs);
    ensure(tty == "journal \\x1b]0;owned\\x07\\x0d\n", || {
        format!("logs on a terminal: {tty:?}")
    })?;
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    ensure(down.status.success(), || text(&down.stderr))
}

/// A hostile jail's output is shown to the operator, never obeyed by the
/// operator's terminal: a failed `up -b` and `logs` on a terminal show its
/// control characters escaped; a pipe, and `logs --raw`, get its bytes.
fn lifecycle_a_jails_escape_sequences_never_reach_a_terminal(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("");
    // Retitles the terminal, clears the screen, overwrites its line.
    let script = r"printf 'ok \033]0;owned\007\033[2J\rspoofed \302\233\n'; exit 3";
    let shown = "ok \\x1b]0;owned\\x07\\x1b[2J\\x0dspoofed \\x9b";
    let raw = "ok \x1b]0;owned\x07\x1b[2J\rspoofed \u{9b}\n";
    let out = up_b(ctx, &file, &["/bin/sh", "-c", script]);
    let err = text(&out.stderr);
    ensure(out.status.code() == Some(3), || {
        format!("up -b: {:?} {err}", out.status)
    })?;
    ensure(
        err.contains(shown) && !err.contains('\x1b') && !err.contains('\r'),
        || format!("up -b's error shows the jail's output as {err:?}"),
    )?;
    let piped = run_bounded(ctx.sysjail(&["logs", &ctx.name]), Duration::from_secs(30));
    ensure(text(&piped.stdout) == raw, || {
        format!("logs | cat: {:?} {}", text(&piped.stdout), text(&piped.stderr))
    })?;
    let tty = on_a_terminal(&ctx.sysjail(&["logs", &ctx.name]));
    ensure(tty == format!("{shown}\n"), || format!("logs on a terminal: {tty:?}"))?;
    let tty_raw = on_a_terminal(&ctx.sysjail(&["logs", "--raw", &ctx.name]));
    ensure(tty_raw.contains("\x1b]0;owned\x07"), || {
        format!("logs --raw on a terminal: {tty_raw:?}")
    })?;
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    ensure(down.status.success(), || text(&down.stderr))
}

/// A PATH with a directory the jail may not search: a command found
/// nowhere is not found (127, ENOENT), as shells say, not "permission
/// denied"; one found but not executable is still 126 (EACCES).
fn lifecycle_path_search_says_not_found_behind_a_closed_directory(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let closed = ctx.dir.join("closed");
    let plain = ctx.dir.join("plain");
    fs::create_dir_all(&closed).map_err(|e| e.to_string())?;
    fs::create_dir_all(&plain).map_err(|e| e.to_string())?;
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    fs::write(plain.join("tool"), "#!/bin/sh\n").map_err(|e| e.to_string())?;
    fs::set_permissions(plain.join("tool"), fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
    let file = ctx.jail("");
    let path = format!("{}:{}:/usr/bin:/bin", closed.display(), plain.display());
    for (command, status, errno) in [("sysjail-no-such-command", 127, "ENOENT"), ("tool", 126, "EACCES")] {
        let mut c = ctx.sysjail(&["up", "-b"]);
        c.arg(&file).args(["--", command]).env("PATH", &path);
        let out = run_bounded(c, Duration::from_secs(60));
        let err = text(&out.stderr);
        ensure(out.status.code() == Some(status) && err.contains(errno), || {
            format!("{command}: up -b exited {:?}: {err}", out.status)
        })?;
        let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
        ensure(down.status.success(), || text(&down.stderr))?;
    }
    Ok(())
}

/// `restart` of an ended jail started with `up --name` (or as an instance
/// of its file) brings it back under that name, not the file's own.
fn lifecycle_restart_of_an_ended_instance_keeps_its_name(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("");
    let name = format!("{}-x", ctx.name);
    let mut up = ctx.sysjail(&["up", "-b", "--wait", "0s", "--name", &name]);
    up.arg(&file).args(["--", "/bin/sleep", "3"]);
    let out = run_bounded(up, Duration::from_secs(60));
    ensure(out.status.success(), || format!("up: {}", text(&out.stderr)))?;
    let ended = || {
        run_bounded(
            ctx.sysjail(&["status", &name, "--format", "json"]),
            Duration::from_secs(30),
        )
        .stdout
        .windows(8)
        .any(|w| w == b"\"exited\"")
    };
    ensure(wait_for(Duration::from_secs(20), ended), || {
        format!("{name} never ended")
    })?;
    let out = run_bounded(ctx.sysjail(&["restart", &name]), Duration::from_secs(60));
    ensure(out.status.success(), || format!("restart: {}", text(&out.stderr)))?;
    let names: Vec<String> = support::ls(ctx)
        .iter()
        .filter_map(|j| j["name"].as_str().map(String::from))
        .collect();
    let down = run_bounded(ctx.sysjail(&["down", "--all"]), Duration::from_secs(30));
    let _ = run_bounded(ctx.sysjail(&["down", &name]), Duration::from_secs(30));
    ensure(names == [name.clone()], || format!("restarted as {names:?}"))?;
    ensure(down.status.success(), || text(&down.stderr))
}
