//! Teardown leaves nothing behind: many jails up and down, then the host's
//! mounts, processes, network links, cgroups and registry compared with what
//! they were. Its own binary, so that no other test's jails run meanwhile.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
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
    r.test(
        "a_stale_record_is_torn_down_with_its_veth_and_cgroups",
        &[Need::Root],
        a_stale_record_is_torn_down_with_its_veth_and_cgroups,
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
    let left: Vec<String> = fs::read_dir(&ctx.state)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "lock")
        .collect();
    ensure(left.is_empty(), || format!("left in the state directory: {left:?}"))
}

/// A supervisor killed with its janitor leaves a record, cgroups (one with a
/// process still in it) and a veth: `sysjail ls` finds the record stale and
/// tears it all down, as the supervisor would have.
fn a_stale_record_is_torn_down_with_its_veth_and_cgroups(ctx: &Ctx) -> TestResult {
    use sysjail::state::{JailState, Limits, Record, Registry};
    let registry = Registry::open(&ctx.state).map_err(|e| e.to_string())?;
    // A cgroup of the pids hierarchy (v1 here) or of the unified one.
    let mount = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|m| Path::new(m).join("cgroup.procs").exists())
        .ok_or("no cgroup hierarchy holds processes here")?;
    let cgroup = Path::new(mount).join("sysjail").join(&ctx.name);
    fs::create_dir_all(&cgroup).map_err(|e| format!("{}: {e}", cgroup.display()))?;
    let veth = format!("sjt{}", std::process::id() % 100_000);
    let out = Command::new("ip")
        .args([
            "link",
            "add",
            &veth,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{veth}p"),
        ])
        .output()
        .unwrap();
    ensure(out.status.success(), || format!("ip link add: {}", text(&out.stderr)))?;
    // A supervisor that is gone: a child already reaped.
    let mut dead = Command::new("/bin/true").spawn().unwrap();
    dead.wait().unwrap();
    let record = Record {
        id: 1,
        name: ctx.name.clone(),
        hostname: ctx.name.clone(),
        path: "/".into(),
        mode: "private".into(),
        ipv4: vec![],
        ipv6: vec![],
        allow: vec![],
        supervisor_pid: dead.id() as i32,
        supervisor_start: 1,
        init_pid: None,
        started: 0,
        definition: None,
        digest: "0".into(),
        id_base: 0,
        cgroups: vec![cgroup.clone()],
        veth: Some(veth.clone()),
        control: registry.control_path(&ctx.name),
        state: JailState::Running,
        limits: Limits::default(),
    };
    {
        let lock = registry.lock().map_err(|e| e.to_string())?;
        registry.write(&lock, &record).map_err(|e| e.to_string())?;
    }
    // A process left in the cgroup, as a jail's would be.
    let mut sleeper = Command::new("/bin/sleep").arg("600").spawn().unwrap();
    if let Err(e) = fs::write(cgroup.join("cgroup.procs"), sleeper.id().to_string()) {
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        return Err(format!("{}: {e}", cgroup.display()));
    }
    let out = run_bounded(ctx.sysjail(&["ls"]), Duration::from_secs(30));
    let reaped = sleeper.wait().map_err(|e| e.to_string())?;
    ensure(out.status.success(), || format!("ls: {}", text(&out.stderr)))?;
    ensure(!reaped.success(), || "the process in the cgroup was not killed".into())?;
    ensure(!cgroup.exists(), || format!("{} is left", cgroup.display()))?;
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    ensure(!text(&links.stdout).contains(&format!(" {veth}@")), || {
        format!("veth {veth} is left")
    })?;
    let left: Vec<String> = fs::read_dir(&ctx.state)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "lock")
        .collect();
    ensure(left.is_empty(), || format!("left in the state directory: {left:?}"))
}
