//! The host files a root supervisor opens on behalf of a jail or a user: the
//! state directory with its records, lock and control sockets, and the logs.
//! Whatever a jail or another local user can write there is hostile: links
//! are never followed, and a directory that is not the caller's own is
//! refused. They need root (to play the other users) and run in CI.

mod support;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Ctx, Need, Runner, TestResult, ensure, ls, run_bounded, text, wait_for};

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test(
        "a_squatted_fallback_state_dir_is_refused",
        &[Root],
        a_squatted_fallback_state_dir_is_refused,
    );
    r.test(
        "a_state_dir_that_is_a_link_or_shared_is_refused",
        &[Root],
        a_state_dir_that_is_a_link_or_shared_is_refused,
    );
    r.test(
        "links_in_the_state_dir_are_not_followed",
        &[Root],
        links_in_the_state_dir_are_not_followed,
    );
    r.test(
        "a_planted_control_socket_link_is_not_connected",
        &[Root],
        a_planted_control_socket_link_is_not_connected,
    );
    r.test("a_planted_log_link_is_refused", &[Root], a_planted_log_link_is_refused);
    r.test(
        "a_log_another_user_can_rename_is_refused",
        &[Root],
        a_log_another_user_can_rename_is_refused,
    );
    r.test(
        "a_state_dir_reached_through_a_users_link_is_refused",
        &[Root],
        a_state_dir_reached_through_a_users_link_is_refused,
    );
    r.test(
        "the_jail_writes_its_log_through_a_pipe",
        &[Root],
        the_jail_writes_its_log_through_a_pipe,
    );
    r.test(
        "the_log_is_rotated_at_its_size",
        &[Root],
        the_log_is_rotated_at_its_size,
    );
    r.test(
        "denial_log_lines_escape_and_limit_jail_text",
        &[Root, SeccompNotify],
        denial_log_lines_escape_and_limit_jail_text,
    );
    r.run()
}

fn mkdir(path: &Path, mode: u32, owner: u32) {
    fs::create_dir_all(path).unwrap();
    std::os::unix::fs::chown(path, Some(owner), Some(owner)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `sysjail ARGS` as nobody, without a runtime directory and with `tmp` as
/// the temporary directory: the state directory is the fallback,
/// `TMP/sysjail-65534` (state::Registry::fallback_dir).
fn nobody_without_runtime_dir(tmp: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", support::bin()])
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

fn a_squatted_fallback_state_dir_is_refused(ctx: &Ctx) -> TestResult {
    let tmp = ctx.dir.join("tmp");
    mkdir(&tmp, 0o755, 0);
    // Another local user (uid 1234) got there first, and left it open to all.
    let squat = tmp.join("sysjail-65534");
    mkdir(&squat, 0o777, 1234);
    for args in [&["ls"][..], &["exec", "web", "--", "/bin/true"], &["down", "web"]] {
        let out = run_bounded(nobody_without_runtime_dir(&tmp, args), Duration::from_secs(30));
        let stderr = text(&out.stderr);
        ensure(!out.status.success(), || {
            format!("{args:?} accepted the squatted {}", squat.display())
        })?;
        let named = format!("state directory {} is owned by uid 1234", squat.display());
        ensure(stderr.contains(&named) && stderr.contains("XDG_RUNTIME_DIR"), || {
            format!("{args:?}: {stderr}")
        })?;
        ensure(entries(&squat).is_empty(), || {
            format!("{args:?} created {:?} in the squatted directory", entries(&squat))
        })?;
    }
    // Nobody's own fallback, made by sysjail, is fine, and is private.
    fs::remove_dir(&squat).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run_bounded(nobody_without_runtime_dir(&tmp, &["ls"]), Duration::from_secs(30));
    ensure(out.status.success(), || text(&out.stderr))?;
    let meta = fs::metadata(&squat).map_err(|e| e.to_string())?;
    ensure(meta.mode() & 0o7777 == 0o700, || format!("mode {:o}", meta.mode()))
}

fn a_state_dir_that_is_a_link_or_shared_is_refused(ctx: &Ctx) -> TestResult {
    let real = ctx.dir.join("real-state");
    mkdir(&real, 0o700, 0);
    symlink(&real, &ctx.state).unwrap();
    let out = ctx.sysjail(&["ls"]).output().unwrap();
    ensure(
        !out.status.success()
            && text(&out.stderr).contains(&format!("state directory {} is a symbolic link", ctx.state.display())),
        || format!("a linked state directory: {:?} {}", out.status, text(&out.stderr)),
    )?;
    ensure(entries(&real).is_empty(), || {
        format!("followed the link: {:?}", entries(&real))
    })?;
    // Root's own directory, but writable by all.
    fs::remove_file(&ctx.state).unwrap();
    mkdir(&ctx.state, 0o777, 0);
    let out = ctx.sysjail(&["ls"]).output().unwrap();
    ensure(
        !out.status.success() && text(&out.stderr).contains("is writable by group or others (mode 0777)"),
        || format!("a shared state directory: {:?} {}", out.status, text(&out.stderr)),
    )?;
    ensure(entries(&ctx.state).is_empty(), || format!("{:?}", entries(&ctx.state)))?;
    // Another user's, as root.
    mkdir(&ctx.state, 0o700, 1234);
    let out = ctx.sysjail(&["ls"]).output().unwrap();
    ensure(
        !out.status.success() && text(&out.stderr).contains("is owned by uid 1234, not by uid 0"),
        || format!("another user's state directory: {:?} {}", out.status, text(&out.stderr)),
    )
}

/// A record that `ls` would show: its supervisor is this very process.
fn live_record(name: &str, control: &Path) -> String {
    let me = std::process::id() as i32;
    let record = sysjail::state::Record {
        id: 7,
        started: sysjail::state::now(),
        ..support::record(name, me, sysjail::state::start_time(me).unwrap(), control)
    };
    serde_json::to_string(&record).unwrap()
}

fn links_in_the_state_dir_are_not_followed(ctx: &Ctx) -> TestResult {
    mkdir(&ctx.state, 0o700, 0);
    // The lock: a link would create (as root) whatever file it names.
    let target = ctx.dir.join("created-through-lock");
    symlink(&target, ctx.state.join("lock")).unwrap();
    let out = ctx.sysjail(&["ls"]).output().unwrap();
    ensure(!target.exists(), || "ls created a file through a link at lock".into())?;
    ensure(
        !out.status.success() && text(&out.stderr).contains("is a symbolic link"),
        || format!("{:?} {}", out.status, text(&out.stderr)),
    )?;
    fs::remove_file(ctx.state.join("lock")).unwrap();
    // A record: a link to a record elsewhere is not read.
    let elsewhere = ctx.dir.join("elsewhere.json");
    fs::write(&elsewhere, live_record("elsewhere", &ctx.dir.join("x.sock"))).unwrap();
    symlink(&elsewhere, ctx.state.join("elsewhere.json")).unwrap();
    let listed = ls(ctx);
    ensure(listed.is_empty(), || format!("ls followed a record link: {listed:?}"))?;
    // The temporary record of `up`: a link would be truncated and written.
    let victim = ctx.dir.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, ctx.state.join(format!(".{}.json.tmp", ctx.name))).unwrap();
    let file = ctx.jail("");
    let out = ctx.up(&file, &["/bin/true"]);
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(fs::read_to_string(&victim).unwrap() == "precious\n", || {
        "up wrote a record through a link".into()
    })
}

fn a_planted_control_socket_link_is_not_connected(ctx: &Ctx) -> TestResult {
    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept, bind, listen, socket};
    mkdir(&ctx.state, 0o700, 0);
    // A listener of someone else's, and a link to it where a jail's control
    // socket would be, beside a record of a live supervisor.
    let trap = ctx.dir.join("trap.sock");
    let listener = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_NONBLOCK, None).unwrap();
    bind(listener.as_raw_fd(), &UnixAddr::new(&trap).unwrap()).unwrap();
    listen(&listener, Backlog::new(4).unwrap()).unwrap();
    let sock = ctx.state.join("web.sock");
    symlink(&trap, &sock).unwrap();
    fs::write(ctx.state.join("web.json"), live_record("web", &sock)).unwrap();
    for args in [&["exec", "web", "--", "/bin/true"][..], &["down", "web"]] {
        let status = status_bounded(ctx.sysjail(args), Duration::from_secs(10));
        ensure(accept(listener.as_raw_fd()).is_err(), || {
            format!("{args:?} connected through the link at {}", sock.display())
        })?;
        ensure(status.is_some_and(|s| !s.success()), || format!("{args:?}: {status:?}"))?;
    }
    Ok(())
}

/// Runs a command without pipes (descriptors `exec` sends through a socket
/// that nobody reads stay open), bounded in time; `None` when it had to be
/// killed.
fn status_bounded(mut c: Command, limit: Duration) -> Option<std::process::ExitStatus> {
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `up -b FILE -- CMD...`, bounded in time.
fn up_background(ctx: &Ctx, file: &Path, cmd: &[&str]) -> std::process::Output {
    let mut c = ctx.sysjail(&["up", "-b"]);
    c.arg(file).arg("--").args(cmd);
    run_bounded(c, Duration::from_secs(30))
}

/// Waits until the background jails have ended (their output drained).
fn wait_ended(ctx: &Ctx) -> TestResult {
    ensure(wait_for(Duration::from_secs(30), || ls(ctx).is_empty()), || {
        "the jail did not end".into()
    })
}

fn a_planted_log_link_is_refused(ctx: &Ctx) -> TestResult {
    // The directory of the jail's log, which the jail could write, holds
    // what the jail planted there for root to follow.
    let logs = ctx.dir.join("logs");
    mkdir(&logs, 0o755, 0);
    let victim = ctx.dir.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let created = ctx.dir.join("created");
    symlink(&victim, logs.join("a.log")).unwrap();
    symlink(&created, logs.join("b.log")).unwrap();
    mkdir(&ctx.dir.join("real"), 0o755, 0);
    // A link on the way, in a directory every user (and so a jail) writes.
    let open = ctx.dir.join("open");
    mkdir(&open, 0o1777, 0);
    symlink(ctx.dir.join("real"), open.join("linked")).unwrap();
    fs::hard_link(&victim, logs.join("d.log")).unwrap();
    let cases = [
        ("a", logs.join("a.log"), "is a symbolic link"),
        ("b", logs.join("b.log"), "is a symbolic link"),
        (
            "c",
            open.join("linked/c.log"),
            "is a symbolic link in a directory writable by others",
        ),
        ("d", logs.join("d.log"), "has 2 names"),
    ];
    for (name, log, why) in cases {
        let file = ctx.jail_named(
            &format!("{}-{name}", ctx.name),
            &format!("log = \"{}\"\n", log.display()),
        );
        let out = up_background(ctx, &file, &["/bin/sh", "-c", "echo planted"]);
        let stderr = text(&out.stderr);
        ensure(!out.status.success(), || {
            format!("{name}: up -b accepted {}", log.display())
        })?;
        ensure(
            stderr.contains(&log.display().to_string()) && stderr.contains(why),
            || format!("{name}: {stderr}"),
        )?;
    }
    wait_ended(ctx)?;
    ensure(fs::read_to_string(&victim).unwrap() == "precious\n", || {
        "a log link reached its target".into()
    })?;
    ensure(!created.exists() && !ctx.dir.join("real/c.log").exists(), || {
        "a log was created through a link".into()
    })
}

fn the_jail_writes_its_log_through_a_pipe(ctx: &Ctx) -> TestResult {
    let log = ctx.dir.join("out.log");
    let file = ctx.jail(&format!("log = \"{}\"\n", log.display()));
    let probe = format!(
        "echo first; exec {} probe ftruncate-stdout lseek-stdout stdout-type",
        support::bin()
    );
    let out = up_background(ctx, &file, &["/bin/sh", "-c", &probe]);
    ensure(out.status.success(), || text(&out.stderr))?;
    wait_ended(ctx)?;
    let written = fs::read_to_string(&log).map_err(|e| e.to_string())?;
    // What the jail wrote first is still there: it could not truncate.
    let (first, rest) = written.split_once('\n').unwrap_or_default();
    ensure(first == "first", || format!("the log lost its start: {written:?}"))?;
    let json = rest.lines().find(|l| l.starts_with('{')).unwrap_or_default();
    let report: Value = serde_json::from_str(json).map_err(|e| format!("{e}: {written:?}"))?;
    let checks = &report["checks"];
    ensure(
        checks["stdout-type"]["ret"] == i64::from(libc::S_IFIFO)
            && checks["ftruncate-stdout"]["errno"] == libc::EINVAL
            && checks["lseek-stdout"]["errno"] == libc::ESPIPE,
        || format!("the jail's stdout is not a pipe: {checks}"),
    )?;
    let meta = fs::metadata(&log).unwrap();
    ensure(meta.uid() == 0 && meta.nlink() == 1, || format!("{meta:?}"))
}

fn the_log_is_rotated_at_its_size(ctx: &Ctx) -> TestResult {
    let log = ctx.dir.join("big.log");
    let file = ctx.jail(&format!("log = \"{}\"\nlog-size = \"64K\"\n", log.display()));
    // About a megabyte, then a last line.
    let cmd = "yes 0123456789abcdef | head -c 1000000; echo; echo end";
    let out = up_background(ctx, &file, &["/bin/sh", "-c", cmd]);
    ensure(out.status.success(), || text(&out.stderr))?;
    wait_ended(ctx)?;
    let old = ctx.dir.join("big.log.1");
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    // One pipe read (16K) past the cap at most, for each of the two files.
    let bound = 64 * 1024 + 16 * 1024;
    ensure(
        size(&log) <= bound && size(&old) <= bound && size(&old) >= 64 * 1024,
        || format!("{} and {} bytes", size(&log), size(&old)),
    )?;
    ensure(!ctx.dir.join("big.log.2").exists(), || "more than one old log".into())?;
    let tail = fs::read_to_string(&log).unwrap();
    ensure(tail.ends_with("\nend\n"), || {
        format!(
            "the last output is not in the log: {:?}",
            &tail[tail.len().saturating_sub(40)..]
        )
    })
}

fn denial_log_lines_escape_and_limit_jail_text(ctx: &Ctx) -> TestResult {
    let log = ctx.dir.join("denials.log");
    let file = ctx.jail("[limits]\npids = 16\n");
    let mut up = ctx.sysjail(&["up", "--log-denials"]);
    up.arg(&log).arg(&file).args([
        "--",
        support::bin(),
        "probe",
        // A name that would end the line and forge the next one.
        "set-comm=a\nb allow=ipc",
        "ipc-msgget",
        "repeat=300:ipc-semget",
    ]);
    let out = run_bounded(up, Duration::from_secs(60));
    ensure(out.status.success(), || text(&out.stderr))?;
    let written = fs::read_to_string(&log).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = written.lines().collect();
    let first = lines.first().copied().unwrap_or_default();
    ensure(
        first.contains(" comm=a\\nb\\x20allow=ipc ") && first.contains("msgget("),
        || format!("the name is not escaped: {first:?}"),
    )?;
    ensure(lines.iter().all(|l| l.starts_with("20")), || {
        format!("a line that is not the log's own: {written}")
    })?;
    // 300 denials of semget in well under a second or two: most counted,
    // not written.
    let semget = lines.iter().filter(|l| l.contains("semget(")).count() as u64;
    let suppressed: u64 = lines
        .iter()
        .filter_map(|l| l.split(" suppressed ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
        .sum();
    ensure(semget + suppressed == 300 && semget <= 200 && suppressed > 0, || {
        format!("{semget} lines and {suppressed} suppressed of 300 denials")
    })
}

fn a_log_another_user_can_rename_is_refused(ctx: &Ctx) -> TestResult {
    // Another user could move each rotated file away: the cap would not hold.
    for (dir, mode, owner, why) in [
        (ctx.dir.join("theirs"), 0o755, 1234, "owned by uid 1234"),
        (ctx.dir.join("shared"), 0o777, 0, "writable by other users"),
    ] {
        mkdir(&dir, mode, owner);
        let log = dir.join("app.log");
        let file = ctx.jail(&format!("log = \"{}\"\n", log.display()));
        let out = up_background(ctx, &file, &["/bin/sh", "-c", "echo out"]);
        let stderr = text(&out.stderr);
        ensure(!out.status.success() && stderr.contains(why), || {
            format!("{}: {:?} {stderr}", dir.display(), out.status)
        })?;
        ensure(!log.exists(), || "the log was created".into())?;
    }
    // A sticky directory, where no one renames another's file, is fine.
    let sticky = ctx.dir.join("sticky");
    mkdir(&sticky, 0o1777, 0);
    let file = ctx.jail(&format!("log = \"{}\"\n", sticky.join("app.log").display()));
    let out = up_background(ctx, &file, &["/bin/sh", "-c", "echo out"]);
    ensure(out.status.success(), || text(&out.stderr))?;
    wait_ended(ctx)
}

fn a_state_dir_reached_through_a_users_link_is_refused(ctx: &Ctx) -> TestResult {
    // A user's link on the way would send root's records, lock and socket
    // into a directory of the user's choosing.
    let theirs = ctx.dir.join("user-1234");
    mkdir(&theirs, 0o755, 1234);
    let target = ctx.dir.join("root-only");
    mkdir(&target, 0o700, 0);
    symlink(&target, theirs.join("lnk")).unwrap();
    let state = theirs.join("lnk/state");
    let out = Command::new(support::bin())
        .arg("--state-dir")
        .arg(&state)
        .args(["ls"])
        .output()
        .unwrap();
    ensure(
        !out.status.success() && text(&out.stderr).contains("is a symbolic link"),
        || format!("{:?} {}", out.status, text(&out.stderr)),
    )?;
    ensure(entries(&target).is_empty(), || {
        format!("created in the link's target: {:?}", entries(&target))
    })
}
