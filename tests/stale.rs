//! Stale records are torn down as their supervisor would have: a record
//! whose supervisor is gone, with a veth, a cgroup and a process in it. Its
//! own binary: the teardown test compares the host's links and cgroups
//! before and after, which this test's would disturb.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Ctx, Need, Runner, TestResult, ensure, run_bounded, text};

fn main() {
    let mut r = Runner::new();
    r.test(
        "a_stale_record_is_torn_down_with_its_veth_and_cgroups",
        &[Need::Root],
        a_stale_record_is_torn_down_with_its_veth_and_cgroups,
    );
    r.test(
        "a_name_clash_leaves_the_other_cgroup_and_veth_alone",
        &[Need::Root, Need::Pids, Need::Ip],
        a_name_clash_leaves_the_other_cgroup_and_veth_alone,
    );
    r.test(
        "a_late_janitor_spares_the_next_jail_of_the_name",
        &[Need::Root, Need::Pids],
        a_late_janitor_spares_the_next_jail_of_the_name,
    );
    r.test(
        "a_jails_id_range_claim_goes_with_it",
        &[Need::Root, Need::Pids],
        a_jails_id_range_claim_goes_with_it,
    );
    r.run()
}

/// A cgroup of the jail's name that is not this launch's (another state
/// directory's jail, anyone's), with a process in it; and a veth of the name
/// the launch would give its own. The launch fails on each, and its
/// teardown touches neither.
fn a_name_clash_leaves_the_other_cgroup_and_veth_alone(ctx: &Ctx) -> TestResult {
    let mount = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|m| Path::new(m).join("cgroup.procs").exists())
        .ok_or("no cgroup hierarchy holds processes here")?;
    let name = format!("clash{}", std::process::id());
    let theirs = Path::new(mount).join("sysjail").join(&name);
    fs::create_dir_all(&theirs).map_err(|e| format!("{}: {e}", theirs.display()))?;
    let mut sleeper = Command::new("/bin/sleep").arg("600").spawn().unwrap();
    let joined = fs::write(theirs.join("cgroup.procs"), sleeper.id().to_string());
    let file = ctx.jail_named(&name, "[limits]\npids = 16\n");
    let out = joined.map(|()| {
        let mut up = ctx.sysjail(&["up"]);
        up.arg(&file).args(["--", "/bin/true"]);
        run_bounded(up, Duration::from_secs(30))
    });
    let alive = matches!(sleeper.try_wait(), Ok(None));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let kept = theirs.exists();
    let _ = fs::remove_dir(&theirs);
    let out = out.map_err(|e| format!("{}: {e}", theirs.display()))?;
    ensure(!out.status.success() && text(&out.stderr).contains("EEXIST"), || {
        format!("the launch: {:?} {}", out.status.code(), text(&out.stderr))
    })?;
    ensure(alive && kept, || {
        format!("the other cgroup: process alive {alive}, directory kept {kept}")
    })?;

    // The veth: `sj` and the supervisor's pid, which a shell that execs
    // sysjail knows in advance.
    let file = ctx.jail_named(
        &format!("{name}v"),
        "[network]\nmode = \"private\"\nipv4 = [\"10.89.7.2/24\"]\ngateway = \"10.89.7.1\"\n[limits]\npids = 16\n",
    );
    let script = format!(
        "ip link add sj$$ type veth peer name xc$$ && echo sj$$ && exec {} --state-dir {} up {} -- /bin/true",
        support::bin(),
        ctx.state.display(),
        file.display()
    );
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", &script]);
    let out = run_bounded(sh, Duration::from_secs(30));
    let veth = text(&out.stdout).lines().next().unwrap_or_default().to_string();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let kept = !veth.is_empty() && text(&links.stdout).contains(&format!(" {veth}@"));
    let _ = Command::new("ip").args(["link", "del", &veth]).output();
    ensure(
        !out.status.success() && text(&out.stderr).contains("File exists"),
        || format!("the launch: {:?} {}", out.status.code(), text(&out.stderr)),
    )?;
    ensure(kept, || format!("the veth {veth} that was there before is gone"))
}

/// A supervisor killed with its janitor leaves a record, cgroups (one with a
/// process still in it) and a veth: `sysjail ls` finds the record stale and
/// tears it all down, as the supervisor would have.
fn a_stale_record_is_torn_down_with_its_veth_and_cgroups(ctx: &Ctx) -> TestResult {
    use sysjail::state::{Record, Registry};
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
        cgroups: vec![cgroup.clone()],
        veth: Some(veth.clone()),
        ..support::record(&ctx.name, dead.id() as i32, 1, &registry.control_path(&ctx.name))
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
    let left = ctx.state_entries();
    ensure(left.is_empty(), || format!("left in the state directory: {left:?}"))
}

/// Teardown leaves no claim file behind: the range's lock file is removed
/// by its holder before the lock is let go. The jail's record says which
/// range it holds (its id base); the file is there while it runs, and gone
/// after `down`.
fn a_jails_id_range_claim_goes_with_it(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("command = [\"/bin/sleep\", \"30\"]\n[limits]\npids = 16\n");
    let mut up = ctx.sysjail(&["up", "-b"]);
    up.arg(&file);
    let out = run_bounded(up, Duration::from_secs(30));
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    let ls = run_bounded(ctx.sysjail(&["ls", "--json"]), Duration::from_secs(30));
    let records: serde_json::Value = serde_json::from_slice(&ls.stdout).map_err(|e| format!("ls --json: {e}"))?;
    let id_base = records
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == ctx.name.as_str()))
        .and_then(|r| r["id_base"].as_u64())
        .ok_or_else(|| format!("no id_base in {records}"))? as u32;
    let number = (id_base - sysjail::launch::ID_BASE) / sysjail::policy::JAIL_IDS;
    let claim = Path::new(sysjail::state::ranges::DIR).join(number.to_string());
    let held = claim.exists();
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    ensure(down.status.success(), || format!("down: {}", text(&down.stderr)))?;
    ensure(held, || format!("{} was not there while the jail ran", claim.display()))?;
    ensure(!claim.exists(), || {
        format!("{} is left after the jail", claim.display())
    })
}

/// A supervisor is killed; before its janitor gets to run, a new `up` of
/// the same name finds the record stale, tears it down, and starts its own
/// jail, with the same cgroup names. The janitor, when it runs, must leave
/// the new jail alone: the record is no longer its supervisor's.
fn a_late_janitor_spares_the_next_jail_of_the_name(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("command = [\"/bin/sleep\", \"300\"]\n[limits]\npids = 16\n");
    let up = |what: &str| -> Result<serde_json::Value, String> {
        let mut c = ctx.sysjail(&["up", "-b", "--wait", "0s"]);
        c.arg(&file);
        let out = run_bounded(c, Duration::from_secs(60));
        ensure(out.status.success(), || format!("{what} up: {}", text(&out.stderr)))?;
        support::ls(ctx)
            .into_iter()
            .find(|j| j["name"] == ctx.name.as_str())
            .ok_or_else(|| format!("{what}: not listed"))
    };
    let first = up("first")?;
    let supervisor = first["supervisor_pid"].as_i64().unwrap_or(0) as i32;
    let init = first["init_pid"].as_i64().unwrap_or(0);
    // The janitor: the supervisor's child that is not init.
    let janitor = fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|&p| {
            i64::from(p) != init && fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sysjail")
        })
        .ok_or("no janitor among the supervisor's children")?;
    // SAFETY: kill(2) of processes this test's jail made.
    unsafe {
        libc::kill(janitor, libc::SIGSTOP);
        libc::kill(supervisor, libc::SIGKILL);
    }
    let result = (|| -> TestResult {
        ensure(
            support::wait_for(Duration::from_secs(10), || !support::alive(i64::from(supervisor))),
            || "the supervisor outlived SIGKILL".into(),
        )?;
        let second = up("second")?;
        let (sup2, init2) = (
            second["supervisor_pid"].as_i64().unwrap_or(0),
            second["init_pid"].as_i64().unwrap_or(0),
        );
        // SAFETY: as above.
        unsafe { libc::kill(janitor, libc::SIGCONT) };
        ensure(
            support::wait_for(Duration::from_secs(10), || !support::alive(i64::from(janitor))),
            || "the janitor did not finish".into(),
        )?;
        ensure(support::alive(sup2) && support::alive(init2), || {
            format!("the late janitor killed the new jail (supervisor {sup2}, init {init2})")
        })?;
        let now = support::ls(ctx);
        ensure(
            now.len() == 1 && now[0]["supervisor_pid"].as_i64() == Some(sup2),
            || format!("the new jail's record: {now:?}"),
        )
    })();
    // SAFETY: as above; a janitor already gone makes this a no-op.
    unsafe { libc::kill(janitor, libc::SIGCONT) };
    let down = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    result?;
    ensure(down.status.success(), || text(&down.stderr))
}
