//! Sets of jails, as a user runs them: a directory started in dependency
//! order and stopped in reverse, cycles refused, names looked up in the
//! configuration directory, instances of one definition and classic jails of
//! one host name running side by side. They need root and run in CI;
//! elsewhere they are reported as SKIP.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Ctx, Need, Runner, TestResult, alive, cgroup_dirs, ensure, ls, run_bounded, text, wait_for};

/// A jail that takes a second to stop: its shell, told to stop, sleeps first,
/// so that the order in which `down` stops a set shows from outside.
const SLOW_STOP: &str = "command = [\"/bin/sh\", \"-c\", \"trap 'sleep 1; exit 0' TERM; sleep 300 & wait\"]\n";

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test(
        "sets_dir_in_dependency_order",
        &[Root],
        a_directory_starts_in_dependency_order_and_stops_in_reverse,
    );
    r.test(
        "sets_a_managed_directory_end_to_end",
        &[Root],
        a_managed_directory_end_to_end,
    );
    r.test(
        "sets_a_failure_stops_what_up_started",
        &[Root],
        a_failure_stops_what_up_started,
    );
    r.test(
        "sets_closed_stderr_neither_panics_nor_leaves_half_a_set",
        &[Root],
        a_closed_stderr_neither_panics_nor_leaves_half_a_set,
    );
    r.test(
        "sets_a_dependency_cycle_is_refused_by_check_and_up",
        &[Root],
        a_dependency_cycle_is_refused_by_check_and_up,
    );
    r.test(
        "sets_names_and_instances_from_the_config_dir_run_at_once",
        &[Root],
        names_and_instances_from_the_config_dir_run_at_once,
    );
    r.test(
        "sets_classic_jids_are_found_past_ranges_this_state_dir_uses",
        &[Root],
        classic_jids_are_found_past_ranges_this_state_dir_uses,
    );
    r.test(
        "sets_dependent_outlives_no_racing_down",
        &[Root],
        a_dependent_never_outlives_a_racing_down_of_its_dependency,
    );
    r.test(
        "sets_down_stops_an_indirect_dependent_first",
        &[Root],
        down_stops_an_indirect_dependent_first,
    );
    r.test(
        "sets_classic_jails_of_one_hostname_run_at_once",
        &[Root],
        classic_jails_of_one_hostname_run_at_once,
    );
    r.run()
}

/// Writes `DIR/FILE.toml` with `body`.
fn write(dir: &Path, file: &str, body: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{file}.toml"));
    fs::write(&path, body).unwrap();
    path
}

/// A jail sharing the host's root read-only, with the limits the tests use.
fn jail(extra: &str) -> String {
    let command = if extra.contains("command =") {
        ""
    } else {
        "command = [\"/bin/sleep\", \"300\"]\n"
    };
    format!("{extra}extends = \"base.toml\"\npath = \"/\"\n{command}")
}

fn base(dir: &Path) {
    write(
        dir,
        "base",
        "template = true\nclean-env = true\n[limits]\npids = 32\nmemory = \"128M\"\n",
    );
}

/// Names of the running jails, by JID.
fn running(ctx: &Ctx) -> Vec<String> {
    ls(ctx)
        .iter()
        .filter_map(|j| j["name"].as_str().map(String::from))
        .collect()
}

fn nothing_left(ctx: &Ctx, names: &[&str]) -> TestResult {
    ensure(ls(ctx).is_empty(), || format!("records left: {:?}", running(ctx)))?;
    for name in names {
        ensure(cgroup_dirs(name).is_empty(), || {
            format!("cgroups of {name} left: {:?}", cgroup_dirs(name))
        })?;
    }
    Ok(())
}

fn a_directory_starts_in_dependency_order_and_stops_in_reverse(ctx: &Ctx) -> TestResult {
    let dir = ctx.dir.join("jails");
    base(&dir);
    let [a, b, c] = ["a", "b", "c"].map(|s| format!("{}-{s}", ctx.name));
    // Sorted a, b, c; a depends on c, so c starts first.
    write(&dir, &a, &jail(&format!("depend = [\"{c}\"]\n{SLOW_STOP}")));
    write(&dir, &b, &jail(SLOW_STOP));
    write(&dir, &c, &jail(SLOW_STOP));
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "-i"]);
            c.arg(format!("{}/", dir.display()));
            c
        },
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || {
        format!("up {:?}: {}", out.status.code(), text(&out.stderr))
    })?;
    // Several jails go to the background: each id printed, in start order.
    ensure(text(&out.stdout) == "1\n2\n3\n", || text(&out.stdout))?;
    // JIDs are given in start order; the template is not a jail.
    let jails = ls(ctx);
    let by_jid: Vec<(u64, String, String)> = jails
        .iter()
        .map(|j| {
            (
                j["id"].as_u64().unwrap_or(0),
                j["name"].as_str().unwrap_or("").to_string(),
                j["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ensure(
        by_jid
            == [
                (1, c.clone(), "running".into()),
                (2, a.clone(), "running".into()),
                (3, b.clone(), "running".into()),
            ],
        || format!("{by_jid:?}"),
    )?;
    ensure(jails[1]["depend"] == serde_json::json!([c]), || {
        format!("the record keeps depend: {}", jails[1])
    })?;
    // down --all: the reverse of the start order. Each jail's command takes
    // a second to stop (a `sleep 1` in its TERM trap, which the host sees);
    // a and b, on which nothing depends, are asked at once, and c, which a
    // depends on, only once a is gone.
    let looks = down_all_watched(ctx)?;
    let asked = |look: &BTreeMap<String, bool>, n: &str| look.get(n).copied();
    ensure(
        looks
            .iter()
            .any(|l| asked(l, &a) == Some(true) && asked(l, &b) == Some(true)),
        || format!("a and b never stopped together: {looks:?}"),
    )?;
    ensure(
        looks
            .iter()
            .filter(|l| l.contains_key(&a))
            .all(|l| asked(l, &c) == Some(false)),
        || format!("c was asked to stop before a, which depends on it, was gone: {looks:?}"),
    )?;
    ensure(looks.last().is_some_and(|l| l.is_empty()), || {
        format!("jails left: {looks:?}")
    })?;
    nothing_left(ctx, &[&a, &b, &c])
}

/// `down --all`, with [`watch_stopping`]'s looks while it runs; an error
/// unless it succeeds.
fn down_all_watched(ctx: &Ctx) -> Result<Vec<BTreeMap<String, bool>>, String> {
    let mut down = ctx.sysjail(&["down", "--all"]);
    let mut child = down
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let looks = watch_stopping(ctx);
    let status = child.wait().map_err(|e| e.to_string())?;
    ensure(status.success(), || format!("down --all: {status:?}"))?;
    Ok(looks)
}

/// The running jails at each change, each with whether its command is
/// running its TERM trap (SLOW_STOP's `sleep 1`), looked at every 20 ms
/// until none is left, for at most a minute.
fn watch_stopping(ctx: &Ctx) -> Vec<BTreeMap<String, bool>> {
    // A child of the command whose arguments are `sleep 1`.
    let trapped = |pid: i64| {
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|a| a == b"sleep\x001\x00"))
    };
    let mut looks: Vec<BTreeMap<String, bool>> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let now: BTreeMap<String, bool> = ls(ctx)
            .iter()
            .filter_map(|j| {
                let pid = j["run"]["command_pid"].as_i64().unwrap_or(0);
                Some((j["name"].as_str()?.to_string(), pid > 0 && trapped(pid)))
            })
            .collect();
        let empty = now.is_empty();
        if looks.last() != Some(&now) {
            looks.push(now);
        }
        if empty {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    looks
}

/// `up -b` of `file`, whose jail depends on another: both run after, in
/// this order.
fn up_with_its_dependency(ctx: &Ctx, file: &Path, names: [&String; 2]) -> TestResult {
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "-b"]);
            c.arg(file).args(["--", "/bin/sleep", "300"]);
            c
        },
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(running(ctx) == names.map(String::clone), || {
        format!("{:?}", running(ctx))
    })
}

fn a_failure_stops_what_up_started(ctx: &Ctx) -> TestResult {
    let dir = ctx.dir.join("jails");
    base(&dir);
    let [db, web] = ["db", "web"].map(|s| format!("{}-{s}", ctx.name));
    let db_file = write(&dir, &db, &jail(""));
    let web_file = write(&dir, &web, &jail(&format!("depend = [\"{db}\"]\n")));
    // web is already running: starting it again fails, after its dependency
    // started, which goes again.
    up_with_its_dependency(ctx, &web_file, [&db, &web])?;
    let out = run_bounded(ctx.sysjail(&["down", &db]), Duration::from_secs(60));
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(
        text(&out.stderr).contains(&format!("stopping {web} too: it depends on {db}")),
        || text(&out.stderr),
    )?;
    ensure(running(ctx).is_empty(), || format!("{:?}", running(ctx)))?;
    // A second web runs alone; the set of db and web then fails on web.
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "-b", "--name", &web]);
            c.arg(&db_file);
            c
        },
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || text(&out.stderr))?;
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up"]);
            c.arg(&db_file).arg(&web_file);
            c
        },
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    // 125: sysjail's own failure, apart from any command's status.
    ensure(out.status.code() == Some(125), || format!("{:?}: {stderr}", out.status))?;
    ensure(
        stderr.contains(&format!("a jail named {web} is already running"))
            && stderr.contains(&format!(
                "sysjail up: {web} did not start; stopped what this `up` started: {db}"
            )),
        || stderr.clone(),
    )?;
    ensure(running(ctx) == [web.clone()], || format!("{:?}", running(ctx)))?;
    let out = run_bounded(ctx.sysjail(&["down", &web]), Duration::from_secs(60));
    ensure(out.status.success(), || text(&out.stderr))?;
    nothing_left(ctx, &[&db, &web])
}

/// Runs `c` with stderr a pipe whose reading end is closed (a log reader
/// that died), stdout captured, for at most a minute.
fn run_with_closed_stderr(mut c: Command) -> Result<std::process::Output, String> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills fds, which is two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just made and are ours alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(write));
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    let start = Instant::now();
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return child.wait_with_output().map_err(|e| e.to_string());
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("still running after 60s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A caller whose stderr is gone (`sysjail up ... 2>&1 | head -0`, a CI log
/// collector that died) changes nothing of what sysjail does: no panic
/// (status 101), a failed set is still stopped, `down` still stops the jails
/// that depend on the one stopped, `check` still fails a bad file.
fn a_closed_stderr_neither_panics_nor_leaves_half_a_set(ctx: &Ctx) -> TestResult {
    let dir = ctx.dir.join("jails");
    base(&dir);
    let [db, web] = ["db", "web"].map(|s| format!("{}-{s}", ctx.name));
    let db_file = write(&dir, &db, &jail(""));
    let web_file = write(&dir, &web, &jail(&format!("depend = [\"{db}\"]\n")));
    // A web runs alone; the set of db and web then fails on web, after db
    // started, and says so on the closed stderr.
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "-b", "--name", &web]);
            c.arg(&db_file);
            c
        },
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || text(&out.stderr))?;
    let out = run_with_closed_stderr({
        let mut c = ctx.sysjail(&["up"]);
        c.arg(&db_file).arg(&web_file);
        c
    })?;
    ensure(out.status.code() == Some(125), || format!("up: {:?}", out.status))?;
    ensure(running(ctx) == [web.clone()], || {
        format!("half a set left running: {:?}", running(ctx))
    })?;
    let out = run_bounded(ctx.sysjail(&["down", &web]), Duration::from_secs(60));
    ensure(out.status.success(), || text(&out.stderr))?;
    // down of a jail that another depends on says so, then stops both.
    up_with_its_dependency(ctx, &web_file, [&db, &web])?;
    let out = run_with_closed_stderr(ctx.sysjail(&["down", &db]))?;
    ensure(out.status.success(), || format!("down: {:?}", out.status))?;
    ensure(running(ctx).is_empty(), || format!("left running: {:?}", running(ctx)))?;
    // check of a bad file fails as it would with a reader.
    let bad = write(&ctx.dir, "bad", "path = \"/\"\ncommand = \"not a list\"\n");
    let out = run_with_closed_stderr({
        let mut c = ctx.sysjail(&["check"]);
        c.arg(&bad);
        c
    })?;
    ensure(out.status.code() == Some(1), || format!("check: {:?}", out.status))?;
    nothing_left(ctx, &[&db, &web])
}

fn a_dependency_cycle_is_refused_by_check_and_up(ctx: &Ctx) -> TestResult {
    let dir = ctx.dir.join("jails");
    base(&dir);
    let [x, y] = ["x", "y"].map(|s| format!("{}-{s}", ctx.name));
    write(&dir, &x, &jail(&format!("depend = [\"{y}\"]\n")));
    write(&dir, &y, &jail(&format!("depend = [\"nosuch\", \"{x}\"]\n")));
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["check", "--format", "json"]);
            c.arg(&dir);
            c
        },
        Duration::from_secs(30),
    );
    ensure(out.status.code() == Some(1), || format!("check: {:?}", out.status))?;
    let found: Vec<(String, String, u64, u64)> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let file = Path::new(v["file"].as_str().unwrap_or(""));
            (
                v["code"].as_str().unwrap_or("").to_string(),
                file.file_name()
                    .map_or(String::new(), |f| f.to_string_lossy().into_owned()),
                v["line"].as_u64().unwrap_or(0),
                v["column"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expected = vec![
        ("sysjail::depend::cycle".to_string(), format!("{x}.toml"), 1, 11),
        ("sysjail::depend::unknown".to_string(), format!("{y}.toml"), 1, 11),
    ];
    ensure(found == expected, || format!("{found:?}\n{}", text(&out.stdout)))?;
    // up refuses the set before it starts anything.
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "-b"]);
            c.arg(dir.join(format!("{x}.toml")));
            c
        },
        Duration::from_secs(30),
    );
    ensure(out.status.code() == Some(125), || format!("up: {:?}", out.status))?;
    ensure(
        text(&out.stderr).contains("sysjail up: no definition of nosuch"),
        || text(&out.stderr),
    )?;
    fs::write(dir.join(format!("{y}.toml")), jail(&format!("depend = [\"{x}\"]\n"))).unwrap();
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "-b"]);
            c.arg(dir.join(format!("{x}.toml")));
            c
        },
        Duration::from_secs(30),
    );
    ensure(
        out.status.code() == Some(125)
            && text(&out.stderr).contains(&format!(
                "the jails depend on each other in a circle: {x} -> {y} -> {x}"
            )),
        || format!("{:?}: {}", out.status, text(&out.stderr)),
    )?;
    nothing_left(ctx, &[&x, &y])
}

fn names_and_instances_from_the_config_dir_run_at_once(ctx: &Ctx) -> TestResult {
    let config = ctx.dir.join("config");
    base(&config);
    let name = ctx.name.clone();
    write(&config, &name, &jail("hostname = \"inst.example\"\n"));
    let config_arg = config.display().to_string();
    let instances = [format!("{name}@1"), format!("{name}@2")];
    // check and policy find a name there too.
    let out = run_bounded(
        ctx.sysjail(&["--config-dir", &config_arg, "check", &name]),
        Duration::from_secs(30),
    );
    ensure(out.status.success(), || format!("check {name}: {}", text(&out.stderr)))?;
    let out = run_bounded(
        ctx.sysjail(&["--config-dir", &config_arg, "policy", &instances[1]]),
        Duration::from_secs(30),
    );
    ensure(
        text(&out.stdout).starts_with(&format!("jail {}\n  hostname  inst.example\n", instances[1])),
        || format!("policy {}: {}{}", instances[1], text(&out.stdout), text(&out.stderr)),
    )?;
    for instance in &instances {
        let out = run_bounded(
            ctx.sysjail(&["--config-dir", &config_arg, "up", "-b", instance]),
            Duration::from_secs(60),
        );
        ensure(out.status.success(), || format!("up {instance}: {}", text(&out.stderr)))?;
    }
    // The bare name, from the same file, under its own name.
    let out = run_bounded(
        ctx.sysjail(&["--config-dir", &config_arg, "up", "-b", &name]),
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || format!("up {name}: {}", text(&out.stderr)))?;
    let names = running(ctx);
    let want = [instances[0].clone(), instances[1].clone(), name.clone()];
    ensure(names == want, || format!("{names:?}"))?;
    // Three jails of one definition: their own cgroups and processes, one
    // host name.
    let mut inits = Vec::new();
    for n in &want {
        ensure(
            cgroup_dirs(n).len() == cgroup_dirs(&want[2]).len() && !cgroup_dirs(n).is_empty(),
            || format!("cgroups of {n}: {:?}", cgroup_dirs(n)),
        )?;
        let out = run_bounded(
            ctx.sysjail(&["exec", n, "--", "/bin/cat", "/proc/sys/kernel/hostname"]),
            Duration::from_secs(30),
        );
        ensure(text(&out.stdout) == "inst.example\n", || {
            format!("exec {n}: {} {}", text(&out.stdout), text(&out.stderr))
        })?;
    }
    for j in ls(ctx) {
        inits.push(j["init_pid"].as_i64().unwrap_or(0));
    }
    ensure(
        inits.iter().all(|p| *p > 0 && alive(*p)) && inits.iter().collect::<BTreeSet<_>>().len() == 3,
        || format!("inits {inits:?}"),
    )?;
    // A name that is no jail name is a usage error, never a path.
    let out = run_bounded(ctx.sysjail(&["up", "memory.max"]), Duration::from_secs(30));
    ensure(out.status.code() == Some(2), || {
        format!("{:?}: {}", out.status, text(&out.stderr))
    })?;
    // down of the directory stops every jail of its definitions: the
    // instances too.
    let out = run_bounded(
        ctx.sysjail(&["down", &format!("{config_arg}/")]),
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(running(ctx).is_empty(), || format!("left running: {:?}", running(ctx)))?;
    ensure(inits.iter().all(|p| !alive(*p)), || "an init outlived down".into())?;
    nothing_left(ctx, &[&want[0], &want[1], &want[2]])
}

fn classic_jails_of_one_hostname_run_at_once(ctx: &Ctx) -> TestResult {
    let hostname = format!("{}.example", ctx.name);
    let mut jids = Vec::new();
    for word in ["first", "second"] {
        let mut c = Command::new(support::bin());
        c.args(["jail", "-b", "-i", "-j"])
            .arg(&ctx.state)
            .args(["/", &hostname, "/bin/sh", "-c", &format!("echo {word}; exec sleep 300")])
            .stdin(std::process::Stdio::null());
        let out = run_bounded(c, Duration::from_secs(60));
        ensure(out.status.success(), || text(&out.stderr))?;
        let jid: u64 = text(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("jail id {:?}: {e}", text(&out.stdout)))?;
        jids.push(jid);
    }
    // Without a name, the JID is the name.
    let jails = ls(ctx);
    let seen: Vec<(String, String)> = jails
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap_or("").to_string(),
                j["hostname"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = jids.iter().map(|j| (j.to_string(), hostname.clone())).collect();
    ensure(jids[0] != jids[1] && seen == want, || format!("{seen:?} for {jids:?}"))?;
    for jid in &jids {
        let out = run_bounded(
            ctx.sysjail(&["exec", &jid.to_string(), "--", "/bin/cat", "/proc/sys/kernel/hostname"]),
            Duration::from_secs(30),
        );
        ensure(text(&out.stdout) == format!("{hostname}\n"), || {
            format!("exec {jid}: {}", text(&out.stderr))
        })?;
    }
    // Each has its own log, named by its JID.
    for (jid, word) in jids.iter().zip(["first", "second"]) {
        let out = run_bounded(ctx.sysjail(&["logs", &jid.to_string()]), Duration::from_secs(30));
        ensure(text(&out.stdout) == format!("{word}\n"), || {
            format!("logs {jid}: {:?} {}", text(&out.stdout), text(&out.stderr))
        })?;
    }
    for jid in &jids {
        let out = run_bounded(ctx.sysjail(&["down", &jid.to_string()]), Duration::from_secs(60));
        ensure(out.status.success(), || text(&out.stderr))?;
    }
    ensure(ctx.state_entries().is_empty(), || {
        format!("left in the state directory: {:?}", ctx.state_entries())
    })?;
    let names: Vec<String> = jids.iter().map(u64::to_string).collect();
    nothing_left(ctx, &names.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `status NAME --format json`.
fn status_of(ctx: &Ctx, name: &str) -> Result<Value, String> {
    let out = run_bounded(
        ctx.sysjail(&["status", name, "--format", "json"]),
        Duration::from_secs(30),
    );
    if !out.status.success() {
        return Err(format!("status {name}: {:?} {}", out.status, text(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("status JSON: {e}"))
}

/// Issue 14's whole story, as a user runs it: a directory of three jails
/// with a dependency started at once; one killed from outside comes back by
/// its restart policy and `status` counts it; its log holds both runs'
/// output; `down --all` stops everything and nothing is left.
fn a_managed_directory_end_to_end(ctx: &Ctx) -> TestResult {
    let dir = ctx.dir.join("jails");
    base(&dir);
    let [db, web, worker] = ["db", "web", "worker"].map(|s| format!("{}-{s}", ctx.name));
    let db_body = "restart = \"on-failure\"\nstart-window = \"200ms\"\n\
                   command = [\"/bin/sh\", \"-c\", \"echo db ready; exec sleep 300\"]\n";
    write(&dir, &db, &jail(db_body));
    write(&dir, &web, &jail(&format!("depend = [\"{db}\"]\n")));
    write(&dir, &worker, &jail(""));
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up"]);
            c.arg(&dir);
            c
        },
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || {
        format!("up: {:?} {}", out.status, text(&out.stderr))
    })?;
    let names: BTreeSet<String> = running(ctx).into_iter().collect();
    let all: BTreeSet<String> = [&db, &web, &worker].into_iter().cloned().collect();
    ensure(names == all, || format!("running: {names:?}"))?;
    // db started before web, which depends on it.
    let jid = |name: &str| {
        ls(ctx)
            .iter()
            .find(|j| j["name"] == name)
            .and_then(|j| j["id"].as_u64())
    };
    ensure(jid(&db) < jid(&web), || {
        format!("db {:?}, web {:?}", jid(&db), jid(&web))
    })?;

    // Kill db's command from the host: on-failure brings it back.
    let first = status_of(ctx, &db)?;
    let Some(cmd) = first["run"]["command_pid"].as_i64() else {
        return Err(format!("no command pid: {first}"));
    };
    // SAFETY: kill(2) with integer arguments, on the jail's command.
    unsafe { libc::kill(cmd as i32, libc::SIGKILL) };
    let start = Instant::now();
    let back = loop {
        let s = status_of(ctx, &db)?;
        let restarted = s["run"]["restarts"] == 1
            && s["state"] == "running"
            && s["run"]["command_pid"].as_i64().is_some_and(|p| p != cmd);
        if restarted {
            break s;
        }
        if start.elapsed() > Duration::from_secs(15) {
            return Err(format!("db did not come back: {s}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure(back["id"] == first["id"], || format!("{back}"))?;
    let out = run_bounded(ctx.sysjail(&["status", &db]), Duration::from_secs(30));
    ensure(text(&out.stdout).contains("restarts   1"), || text(&out.stdout))?;

    // Its log holds the output of both runs.
    let start = Instant::now();
    loop {
        let out = run_bounded(ctx.sysjail(&["logs", &db]), Duration::from_secs(30));
        let lines = text(&out.stdout).lines().filter(|l| *l == "db ready").count();
        if out.status.success() && lines == 2 {
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!("logs: {:?} {:?}", out.status, text(&out.stdout)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let pids: Vec<i64> = [&db, &web, &worker]
        .iter()
        .filter_map(|n| status_of(ctx, n).ok())
        .flat_map(|s| {
            [
                s["supervisor_pid"].as_i64(),
                s["init_pid"].as_i64(),
                s["run"]["command_pid"].as_i64(),
            ]
        })
        .flatten()
        .collect();
    ensure(pids.len() == 9, || format!("pids: {pids:?}"))?;
    let out = run_bounded(ctx.sysjail(&["down", "--all"]), Duration::from_secs(60));
    ensure(out.status.success(), || {
        format!("down: {:?} {}", out.status, text(&out.stderr))
    })?;
    ensure(pids.iter().all(|p| !alive(*p)), || {
        format!(
            "left running: {:?}",
            pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        )
    })?;
    nothing_left(ctx, &[&db, &web, &worker])?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    ensure(!mounts.contains(&ctx.name), || "a mount of the set is left".to_string())?;
    let left = ctx.state_entries();
    ensure(left.iter().all(|f| !all.iter().any(|n| f.contains(n.as_str()))), || {
        format!("state left: {left:?}")
    })
}

/// Starts `count` jails of `file` in the state directory `state`, named
/// PREFIX1, PREFIX2...
fn start_named(state: &Path, file: &Path, prefix: &str, count: u32) -> TestResult {
    for i in 1..=count {
        let mut c = Command::new(support::bin());
        c.arg("--state-dir")
            .arg(state)
            .args(["up", "-b", "--name", &format!("{prefix}{i}")])
            .arg(file)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        let out = run_bounded(c, Duration::from_secs(60));
        ensure(out.status.success(), || format!("{prefix}{i}: {}", text(&out.stderr)))?;
    }
    Ok(())
}

/// A classic jail's JID must be free in its state directory and as a range
/// host-wide. When the ranges free host-wide are the JIDs this directory
/// uses (another directory's jails took the ranges of ours, then stopped),
/// the search goes on past them rather than giving up after a few tries.
fn classic_jids_are_found_past_ranges_this_state_dir_uses(ctx: &Ctx) -> TestResult {
    let other = ctx.dir.join("state-b");
    let dir = ctx.dir.join("jails");
    base(&dir);
    let file = write(&dir, &ctx.name, &jail(""));
    let result = (|| {
        start_named(&other, &file, &format!("{}-b", ctx.name), 10)?;
        start_named(&ctx.state, &file, &format!("{}-a", ctx.name), 9)?;
        for i in 1..=9 {
            let mut c = Command::new(support::bin());
            c.arg("--state-dir")
                .arg(&other)
                .args(["down", &format!("{}-b{i}", ctx.name)]);
            let out = run_bounded(c, Duration::from_secs(60));
            ensure(out.status.success(), || text(&out.stderr))?;
        }
        let mut jids = Vec::new();
        for _ in 0..3 {
            let mut c = Command::new(support::bin());
            c.args(["jail", "-b", "-i", "-j"])
                .arg(&ctx.state)
                .args(["/", "classic-jids.example", "/bin/sleep", "300"])
                .stdin(std::process::Stdio::null());
            let out = run_bounded(c, Duration::from_secs(60));
            ensure(out.status.success(), || {
                format!("classic jail after {jids:?}: {:?} {}", out.status, text(&out.stderr))
            })?;
            jids.push(text(&out.stdout).trim().to_string());
        }
        let names = running(ctx);
        ensure(jids.iter().all(|j| names.contains(j)), || {
            format!("{jids:?} not in {names:?}")
        })
    })();
    // Whatever happened, both directories are emptied.
    for state in [&ctx.state, &other] {
        let mut c = Command::new(support::bin());
        c.arg("--state-dir").arg(state).args(["down", "--all"]);
        let out = run_bounded(c, Duration::from_secs(120));
        ensure(out.status.success(), || text(&out.stderr))?;
    }
    result?;
    nothing_left(ctx, &[])
}

/// `up -b web` (which depends on db) and `down db` at the same moment: either
/// down sees web and stops it first, or web's start fails because db is on
/// its way down. web never runs on without db.
fn a_dependent_never_outlives_a_racing_down_of_its_dependency(ctx: &Ctx) -> TestResult {
    let dir = ctx.dir.join("jails");
    base(&dir);
    let [db, web] = ["db", "web"].map(|s| format!("{}-{s}", ctx.name));
    let db_file = write(&dir, &db, &jail(""));
    let web_file = write(&dir, &web, &jail(&format!("depend = [\"{db}\"]\n")));
    for round in 0..6 {
        let out = run_bounded(
            {
                let mut c = ctx.sysjail(&["up", "-b", "--wait", "0s"]);
                c.arg(&db_file);
                c
            },
            Duration::from_secs(60),
        );
        ensure(out.status.success(), || format!("up db: {}", text(&out.stderr)))?;
        let mut up = ctx.sysjail(&["up", "-b", "--wait", "0s"]);
        up.arg(&web_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let up = up.spawn().map_err(|e| e.to_string())?;
        // The later, the likelier web has registered: both outcomes are tried.
        std::thread::sleep(Duration::from_millis(3 * round));
        let down = run_bounded(ctx.sysjail(&["down", &db]), Duration::from_secs(60));
        let up = up.wait_with_output().map_err(|e| e.to_string())?;
        ensure(down.status.success(), || {
            format!("round {round}: down db: {}", text(&down.stderr))
        })?;
        // (up may also have found db gone, and started it again first.)
        let names = running(ctx);
        ensure(!names.contains(&web) || names.contains(&db), || {
            format!(
                "round {round}: {web} runs without {db}: {names:?} (up: {:?} {})",
                up.status,
                text(&up.stderr)
            )
        })?;
        ensure(
            up.status.success() || text(&up.stderr).contains(&format!("depends on {db}, which")),
            || format!("round {round}: up web failed otherwise: {}", text(&up.stderr)),
        )?;
        let out = run_bounded(ctx.sysjail(&["down", "--all"]), Duration::from_secs(60));
        ensure(out.status.success(), || text(&out.stderr))?;
        let _ = run_bounded(ctx.sysjail(&["down", &web]), Duration::from_secs(30));
    }
    nothing_left(ctx, &[&db, &web])
}

/// a depends on b, b on c; b's supervisor is killed and b is gone. a still
/// needs c (through b): down --all asks c to stop only once a is gone.
fn down_stops_an_indirect_dependent_first(ctx: &Ctx) -> TestResult {
    let dir = ctx.dir.join("jails");
    base(&dir);
    let [a, b, c] = ["a", "b", "c"].map(|s| format!("{}-{s}", ctx.name));
    write(&dir, &c, &jail(SLOW_STOP));
    write(&dir, &b, &jail(&format!("depend = [\"{c}\"]\n")));
    let a_file = write(&dir, &a, &jail(&format!("depend = [\"{b}\"]\n{SLOW_STOP}")));
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "-b", "--wait", "0s"]);
            c.arg(&a_file);
            c
        },
        Duration::from_secs(60),
    );
    ensure(out.status.success(), || format!("up: {}", text(&out.stderr)))?;
    let supervisor = ls(ctx)
        .iter()
        .find(|j| j["name"] == b.as_str())
        .and_then(|j| j["supervisor_pid"].as_i64())
        .ok_or_else(|| format!("no {b} in {:?}", running(ctx)))?;
    // SAFETY: kill(2) of b's supervisor, a child of no one here.
    unsafe { libc::kill(supervisor as i32, libc::SIGKILL) };
    ensure(wait_for(Duration::from_secs(20), || !running(ctx).contains(&b)), || {
        format!("{b} still listed: {:?}", running(ctx))
    })?;
    let looks = down_all_watched(ctx)?;
    ensure(
        looks
            .iter()
            .filter(|l| l.contains_key(&a))
            .all(|l| l.get(&c) == Some(&false)),
        || format!("{c} was asked to stop while {a}, which needs it, ran: {looks:?}"),
    )?;
    nothing_left(ctx, &[&a, &b, &c])
}
