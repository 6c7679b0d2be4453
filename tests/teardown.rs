//! Teardown leaves nothing behind: many jails up and down, then the host's
//! mounts, processes, network links, cgroups and registry compared with what
//! they were. Its own binary, so that no other test's jails run meanwhile.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::time::Duration;

use support::{Ctx, Need, Runner, TestResult, ensure, run_bounded, text};

fn main() {
    let mut r = Runner::new();
    r.test(
        "a_hundred_up_down_cycles_leave_nothing",
        &[Need::Root],
        a_hundred_up_down_cycles_leave_nothing,
    );
    r.run()
}

/// What a jail could leave behind on the host.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    mounts: BTreeSet<String>,
    links: BTreeSet<String>,
    processes: BTreeSet<String>,
    cgroups: BTreeSet<String>,
}

fn snapshot(ctx: &Ctx) -> HostState {
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split(' ').skip(3).take(2).collect::<Vec<_>>().join(" "))
        .collect();
    let links = text(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .lines()
    .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
    .collect();
    // Processes that belong to sysjail or to a jail: their command line names
    // the test's directory or sysjail's binary.
    let dir = ctx.dir.display().to_string();
    let processes = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            if pid == std::process::id() {
                return None;
            }
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains(&dir) || cmd.contains(support::bin())).then(|| format!("{pid} {cmd}"))
        })
        .collect();
    let cgroups = support::cgroup_dirs(&ctx.name)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    HostState {
        mounts,
        links,
        processes,
        cgroups,
    }
}

fn a_hundred_up_down_cycles_leave_nothing(ctx: &Ctx) -> TestResult {
    let file =
        ctx.jail("[limits]\npids = 32\nmemory = \"128M\"\ncpu = 0.5\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\n");
    let before = snapshot(ctx);
    for i in 0..100 {
        // Half in the foreground, half in the background and stopped by down.
        if i % 2 == 0 {
            let out = ctx.up(&file, &["/bin/sh", "-c", "echo ok"]);
            ensure(out.status.success() && text(&out.stdout) == "ok\n", || {
                format!("cycle {i}: {}", text(&out.stderr))
            })?;
        } else {
            let mut up = ctx.sysjail(&["up", "-b"]);
            up.arg(&file).args(["--", "/bin/sleep", "60"]);
            let out = run_bounded(up, Duration::from_secs(30));
            ensure(out.status.success(), || format!("cycle {i} up: {}", text(&out.stderr)))?;
            // The limits live in cgroups while the jail runs, so their
            // absence afterwards means they were removed.
            ensure(!support::cgroup_dirs(&ctx.name).is_empty(), || {
                format!("cycle {i}: the running jail has no cgroup")
            })?;
            let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
            ensure(out.status.success(), || {
                format!("cycle {i} down: {}", text(&out.stderr))
            })?;
        }
    }
    let after = snapshot(ctx);
    ensure(after == before, || format!("before: {before:#?}\nafter: {after:#?}"))?;
    let left = ctx.state_entries();
    ensure(left.is_empty(), || format!("left in the state directory: {left:?}"))
}
