//! Real jails, launched as a user would, checked from inside with the probe.
//! They need root and run in CI; elsewhere they are reported as SKIP.

mod support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Ctx, Need, Runner, TestResult, alive, cgroup_dirs, ensure, env_map, ls, run_bounded, text, wait_for};

const LIMITS: &str = "[limits]\npids = 64\nmemory = \"256M\"\n";

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test("hello_example_runs", &[Root], hello_example_runs);
    r.test(
        "only_jail_processes_are_visible",
        &[Root],
        only_jail_processes_are_visible,
    );
    r.test("kill_of_init_does_nothing", &[Root], kill_of_init_does_nothing);
    r.test("hostname_is_the_jails", &[Root], hostname_is_the_jails);
    r.test(
        "credentials_and_clean_environment",
        &[Root],
        credentials_and_clean_environment,
    );
    r.test(
        "inherited_environment_and_host_user",
        &[Root],
        inherited_environment_and_host_user,
    );
    r.test("root_is_path_and_idmapped", &[Root], root_is_path_and_idmapped);
    r.test(
        "generated_files_are_not_bound_through_links_of_the_tree",
        &[Root],
        generated_files_are_not_bound_through_links_of_the_tree,
    );
    r.test("host_secrets_stay_unreadable", &[Root], host_secrets_stay_unreadable);
    r.test(
        "double_forked_daemon_keeps_the_jail_alive",
        &[Root],
        double_forked_daemon_keeps_the_jail_alive,
    );
    r.test("exit_status_is_the_commands", &[Root], exit_status_is_the_commands);
    r.test(
        "ls_exec_down_on_a_background_jail",
        &[Root],
        ls_exec_down_on_a_background_jail,
    );
    r.test("names_are_unique", &[Root], names_are_unique);
    r.test(
        "killing_the_supervisor_kills_the_jail",
        &[Root],
        killing_the_supervisor_kills_the_jail,
    );
    r.test(
        "sigterm_to_foreground_up_stops_the_jail",
        &[Root],
        sigterm_to_foreground_up_stops_the_jail,
    );
    r.test(
        "down_kills_after_the_stop_timeout",
        &[Root],
        down_kills_after_the_stop_timeout,
    );
    r.test(
        "no_terminal_means_a_new_session",
        &[Root],
        no_terminal_means_a_new_session,
    );
    r.test(
        "a_terminal_is_the_jails_own",
        &[Root, Script],
        a_terminal_is_the_jails_own,
    );
    r.test("classic_command_lines", &[Root], classic_command_lines);
    r.test(
        "debug_flags_add_notes_on_stderr",
        &[Root],
        debug_flags_add_notes_on_stderr,
    );
    r.test("dry_run_creates_nothing", &[Root], dry_run_creates_nothing);
    r.test(
        "rootless_jail_runs_and_limits_say_why_not",
        &[Root, RootlessUserns],
        rootless_jail_runs_and_limits_say_why_not,
    );
    r.run()
}

fn hello_example_runs(ctx: &Ctx) -> TestResult {
    // The README's first command, on the example itself.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jails/hello.toml");
    let out = support::run_bounded(ctx.sysjail(&["up", example]), Duration::from_secs(30));
    ensure(out.status.success(), || {
        format!("exit {:?}: {}", out.status.code(), text(&out.stderr))
    })?;
    let stdout = text(&out.stdout);
    ensure(
        stdout.starts_with("hello from hello.jail\nuid=0(root) gid=0(root)"),
        || stdout,
    )
}

fn only_jail_processes_are_visible(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let me = std::process::id();
    let p = ctx.probe(&file, &[&format!("kill={me}:0")])?;
    let pids: Vec<i64> = p
        .fact("pids")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    // init and the probe, nothing of the host's.
    ensure(pids == [1, 2], || format!("pids seen in the jail: {pids:?}"))?;
    ensure(p.fact("pid") == 2 && p.fact("ppid") == 1, || {
        format!("pid {} ppid {}", p.fact("pid"), p.fact("ppid"))
    })?;
    p.expect(&[(&format!("kill={me}:0"), libc::ESRCH)])
}

fn kill_of_init_does_nothing(ctx: &Ctx) -> TestResult {
    // As jail root: the kernel drops SIGKILL to a pid namespace's init from inside.
    let file = ctx.jail(LIMITS);
    let p = ctx.probe(&file, &["kill=1:9", "kill=1:15", "ptrace-init"])?;
    p.expect(&[("kill=1:9", 0), ("kill=1:15", 0), ("ptrace-init", libc::EPERM)])?;
    // The jail lived on: the probe reported after the kill, and exited 0.
    // As another user: EPERM, as the old manual says.
    let file = ctx.jail(&format!("user = \"nobody\"\n{LIMITS}"));
    let p = ctx.probe(&file, &["kill=1:9"])?;
    p.expect(&[("kill=1:9", libc::EPERM)])
}

fn hostname_is_the_jails(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(&format!("hostname = \"jail.example.org\"\n{LIMITS}"));
    let p = ctx.probe(&file, &[])?;
    ensure(p.fact("hostname") == "jail.example.org", || {
        format!("hostname {}", p.fact("hostname"))
    })?;
    let host = nix::unistd::gethostname().unwrap();
    ensure(host != "jail.example.org", || "the host's name changed".into())
}

fn credentials_and_clean_environment(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(&format!(
        "user = \"nobody\"\ngroups = [\"nogroup\", 4]\nclean-env = true\nworkdir = \"/tmp\"\n[env]\nAPP = \"1\"\n{LIMITS}"
    ));
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&file)
        .args(["--", support::bin(), "probe"])
        .env("TERM", "xterm-test")
        .env("SECRET", "host");
    let out = run_bounded(c, Duration::from_secs(30));
    ensure(out.status.success(), || text(&out.stderr))?;
    let p: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let f = &p["facts"];
    ensure(f["uid"] == 65534 && f["euid"] == 65534 && f["gid"] == 65534, || {
        format!("ids {} {} {}", f["uid"], f["euid"], f["gid"])
    })?;
    let mut groups: Vec<i64> = f["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    groups.sort();
    ensure(groups == [4, 65534], || format!("groups {groups:?}"))?;
    ensure(
        f["capeff"] == "0000000000000000" && f["capprm"] == "0000000000000000",
        || format!("caps {} {}", f["capeff"], f["capprm"]),
    )?;
    ensure(f["cwd"] == "/tmp", || format!("cwd {}", f["cwd"]))?;
    let env = env_map(&f["env"]);
    let passwd = sysjail::users::parse_passwd(&fs::read_to_string("/etc/passwd").unwrap());
    let nobody = passwd.iter().find(|p| p.name == "nobody").unwrap();
    let expected: std::collections::BTreeMap<String, String> = [
        ("APP", "1"),
        ("HOME", nobody.home.as_str()),
        ("SHELL", nobody.shell.as_str()),
        ("TERM", "xterm-test"),
        ("USER", "nobody"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ensure(env == expected, || format!("environment {env:?}"))
}

fn inherited_environment_and_host_user(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(&format!("host-user = \"nobody\"\n[env]\nAPP = \"2\"\n{LIMITS}"));
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&file)
        .args(["--", support::bin(), "probe"])
        .env("FROM_CALLER", "yes");
    let out = run_bounded(c, Duration::from_secs(30));
    ensure(out.status.success(), || text(&out.stderr))?;
    let p: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let env = env_map(&p["facts"]["env"]);
    ensure(env.get("FROM_CALLER").map(String::as_str) == Some("yes"), || {
        format!("{env:?}")
    })?;
    ensure(env.get("APP").map(String::as_str) == Some("2"), || format!("{env:?}"))?;
    ensure(p["facts"]["uid"] == 65534, || format!("uid {}", p["facts"]["uid"]))
}

/// A jail tree of its own: /usr from the host, its own /etc, and the test
/// binary's directory so that the probe runs inside.
fn own_tree(ctx: &Ctx) -> std::path::PathBuf {
    let root = support::private_dir(ctx).join("root");
    for d in ["etc", "usr", "data"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for link in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nsvc:x:100:100:svc:/data:/bin/sh\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nsvc:x:100:\n").unwrap();
    fs::write(root.join("etc/hostname"), "the jail's own\n").unwrap();
    fs::write(root.join("data/owned-by-svc"), "x").unwrap();
    std::os::unix::fs::chown(root.join("data/owned-by-svc"), Some(100), Some(100)).unwrap();
    support::shift_tree(&root);
    root
}

fn root_is_path_and_idmapped(ctx: &Ctx) -> TestResult {
    let root = own_tree(ctx);
    let bindir = support::bindir();
    let file = ctx.jail(&format!(
        "path = \"{}\"\nuser = \"svc\"\n{LIMITS}[[mount]]\nsource = \"/usr\"\ntarget = \"/usr\"\n[[mount]]\nsource = \"{bindir}\"\ntarget = \"{bindir}\"\n",
        root.display()
    ));
    let out = ctx.up(&file, &["/bin/sh", "-c", "cat /etc/hostname; stat -c '%u:%g %n' /data/owned-by-svc /etc/passwd; echo new > /data/by-svc-$$ 2>&1 || echo denied; id -u"]);
    ensure(out.status.success(), || text(&out.stderr))?;
    let stdout = text(&out.stdout);
    // The root is the tree: its own /etc/hostname; files keep their on-disk
    // owners (id-mapped), so svc owns its file and root owns /etc/passwd.
    ensure(
        stdout.starts_with("the jail's own\n100:100 /data/owned-by-svc\n0:0 /etc/passwd\n"),
        || stdout.clone(),
    )?;
    // /data is root's (0755): svc may not create files there.
    ensure(stdout.contains("denied") && stdout.ends_with("100\n"), || {
        stdout.clone()
    })?;
    let p = ctx.probe(&file, &["write-file=/data/probe"])?;
    p.expect(&[("write-file=/data/probe", libc::EACCES)])
}

/// A tree whose /etc/hostname and /etc/hosts are links to its /etc/passwd
/// (its owner's doing): the generated files are not bound over what the links
/// lead to, which would hide any file of the jail; the links are left as they
/// are, and `-dd` says so.
fn generated_files_are_not_bound_through_links_of_the_tree(ctx: &Ctx) -> TestResult {
    let root = own_tree(ctx);
    for name in ["hostname", "hosts"] {
        let path = root.join("etc").join(name);
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink("passwd", &path).unwrap();
    }
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    let file = ctx.jail(&format!(
        "path = \"{}\"\nread-only = true\nhostname = \"links.example\"\n{LIMITS}[network]\nmode = \"private\"\n[[mount]]\nsource = \"/usr\"\ntarget = \"/usr\"\n",
        root.display()
    ));
    // Notes show at -dd.
    let mut c = ctx.sysjail(&["-dd", "up"]);
    c.arg(&file).args([
        "--",
        "/bin/sh",
        "-c",
        "cat /etc/passwd; echo ==; cat /etc/hostname; echo ==; grep -c hostname /proc/self/mountinfo || true",
    ]);
    let out = run_bounded(c, Duration::from_secs(60));
    ensure(out.status.success(), || {
        format!("{:?}: {}{}", out.status, text(&out.stdout), text(&out.stderr))
    })?;
    let stdout = text(&out.stdout);
    // /etc/passwd and the link to it read the tree's passwd, not a hosts or
    // hostname file; nothing is mounted over either.
    ensure(stdout == format!("{passwd}==\n{passwd}==\n0\n"), || stdout.clone())?;
    let stderr = text(&out.stderr);
    ensure(
        stderr.contains("/etc/hostname is a symbolic link") && stderr.contains("/etc/hosts is a symbolic link"),
        || stderr.clone(),
    )
}

fn host_secrets_stay_unreadable(ctx: &Ctx) -> TestResult {
    // Jail root with the host's / : host files are nobody's, shadow stays closed,
    // and the root is read-only.
    let file = ctx.jail(LIMITS);
    let p = ctx.probe(&file, &["read-shadow", "write-file=/etc/sysjail-probe"])?;
    p.expect(&[
        ("read-shadow", libc::EACCES),
        ("write-file=/etc/sysjail-probe", libc::EROFS),
    ])?;
    let out = ctx.up(&file, &["/usr/bin/stat", "-c", "%u:%g", "/etc/shadow"]);
    ensure(text(&out.stdout) == "65534:65534\n", || text(&out.stdout))
}

fn double_forked_daemon_keeps_the_jail_alive(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let start = Instant::now();
    // The command exits at once; its grandchild, reparented to init, runs on.
    let out = ctx.up(
        &file,
        &[
            "/bin/sh",
            "-c",
            "(sh -c 'sleep 1; echo daemon done' &) ; echo command done",
        ],
    );
    let took = start.elapsed();
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(text(&out.stdout) == "command done\ndaemon done\n", || text(&out.stdout))?;
    ensure(took >= Duration::from_millis(900), || {
        format!("the jail ended after {took:?}, before its daemon")
    })
}

fn exit_status_is_the_commands(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let out = ctx.up(&file, &["/bin/sh", "-c", "exit 7"]);
    ensure(out.status.code() == Some(7), || format!("{:?}", out.status))?;
    let out = ctx.up(&file, &["/bin/sh", "-c", "kill -USR1 $$"]);
    ensure(out.status.code() == Some(128 + libc::SIGUSR1), || {
        format!("{:?}", out.status)
    })?;
    let out = ctx.up(&file, &["/no/such/program"]);
    ensure(out.status.code() == Some(127), || format!("{:?}", out.status))?;
    ensure(
        text(&out.stderr).contains("cannot start /no/such/program: execve: ENOENT"),
        || text(&out.stderr),
    )
}

fn up_background(ctx: &Ctx, file: &std::path::Path, cmd: &[&str]) -> Result<u64, String> {
    let mut c = ctx.sysjail(&["up", "-b", "-i"]);
    c.arg(file).arg("--").args(cmd);
    let out = run_bounded(c, Duration::from_secs(30));
    ensure(out.status.success(), || format!("up -b: {}", text(&out.stderr)))?;
    text(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("jail id {:?}: {e}", text(&out.stdout)))
}

fn ls_exec_down_on_a_background_jail(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(&format!("hostname = \"bg.example\"\n{LIMITS}"));
    let jid = up_background(ctx, &file, &["/bin/sleep", "300"])?;
    let out = ctx.sysjail(&["ls"]).output().unwrap();
    let table = text(&out.stdout);
    ensure(
        table.lines().nth(1).is_some_and(|l| {
            l.split_whitespace().collect::<Vec<_>>() == [jid.to_string().as_str(), &ctx.name, "-", "bg.example", "/"]
        }),
        || table.clone(),
    )?;
    let jails = ls(ctx);
    ensure(
        jails.len() == 1 && jails[0]["id"] == jid && jails[0]["state"] == "running",
        || format!("{jails:?}"),
    )?;
    ensure(jails[0]["usage"]["tasks"].as_u64().is_some_and(|n| n >= 2), || {
        format!("usage {}", jails[0]["usage"])
    })?;
    let verbose = text(&ctx.sysjail(&["ls", "-v"]).output().unwrap().stdout);
    ensure(
        verbose.contains(&format!("name {}", ctx.name)) && verbose.contains("processes 2 of 64"),
        || verbose.clone(),
    )?;
    // exec: the same jail, its own processes visible, the command's status.
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["exec", &ctx.name, "--", "/bin/sh", "-c"]);
            c.arg("cat /proc/sys/kernel/hostname; ls /proc | grep -c '^[0-9]'; exit 3");
            c
        },
        Duration::from_secs(30),
    );
    ensure(out.status.code() == Some(3), || {
        format!("exec status {:?}: {}", out.status.code(), text(&out.stderr))
    })?;
    ensure(text(&out.stdout) == "bg.example\n5\n", || text(&out.stdout))?;
    let out = run_bounded(
        ctx.sysjail(&["exec", "-u", "nobody", &jid.to_string(), "--", "/usr/bin/id", "-u"]),
        Duration::from_secs(30),
    );
    ensure(text(&out.stdout) == "65534\n", || {
        format!("{} {}", text(&out.stdout), text(&out.stderr))
    })?;
    let record = &ls(ctx)[0];
    let init = record["init_pid"].as_i64().unwrap();
    let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(!alive(init), || "init outlived down".into())?;
    ensure(ls(ctx).is_empty(), || "a record outlived down".into())?;
    ensure(cgroup_dirs(&ctx.name).is_empty(), || {
        format!("cgroups left: {:?}", cgroup_dirs(&ctx.name))
    })
}

fn names_are_unique(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    up_background(ctx, &file, &["/bin/sleep", "300"])?;
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up"]);
            c.arg(&file).args(["--", "/bin/true"]);
            c
        },
        Duration::from_secs(30),
    );
    ensure(out.status.code() == Some(125), || format!("{:?}", out.status))?;
    ensure(
        text(&out.stderr).contains(&format!("a jail named {} is already running", ctx.name)),
        || text(&out.stderr),
    )
}

fn killing_the_supervisor_kills_the_jail(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    up_background(ctx, &file, &["/bin/sh", "-c", "sleep 300 & sleep 300"])?;
    let record = ls(ctx).pop().ok_or("no record")?;
    let (sup, init) = (
        record["supervisor_pid"].as_i64().unwrap(),
        record["init_pid"].as_i64().unwrap(),
    );
    let jail_pids: Vec<i64> = fs::read_to_string(
        cgroup_dirs(&ctx.name)
            .iter()
            .find(|p| p.to_string_lossy().contains("unified") || p.starts_with("/sys/fs/cgroup/sysjail"))
            .ok_or("no v2 cgroup")?
            .join("cgroup.procs"),
    )
    .map_err(|e| e.to_string())?
    .lines()
    .filter_map(|l| l.parse().ok())
    .collect();
    ensure(jail_pids.len() >= 3, || format!("jail processes {jail_pids:?}"))?;
    // SAFETY: kill(2) of the supervisor this test started.
    unsafe { libc::kill(sup as i32, libc::SIGKILL) };
    ensure(
        wait_for(Duration::from_secs(10), || {
            jail_pids.iter().all(|p| !alive(*p)) && !alive(init)
        }),
        || "jail processes outlived their supervisor".into(),
    )?;
    // The janitor removes the record and the cgroups.
    ensure(
        wait_for(Duration::from_secs(10), || cgroup_dirs(&ctx.name).is_empty()),
        || format!("cgroups left: {:?}", cgroup_dirs(&ctx.name)),
    )?;
    ensure(
        wait_for(Duration::from_secs(10), || {
            !ctx.state.join(format!("{}.json", ctx.name)).exists()
        }),
        || "the record outlived its supervisor".into(),
    )
}

fn sigterm_to_foreground_up_stops_the_jail(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&file)
        .args(["--", "/bin/sleep", "300"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    if !wait_for(Duration::from_secs(10), || {
        ls(ctx).first().is_some_and(|r| r["state"] == "running")
    }) {
        let _ = child.kill();
        let _ = child.wait();
        return Err("never running".into());
    }
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err("sysjail up did not stop on SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    ensure(status.code() == Some(128 + libc::SIGTERM), || format!("{status:?}"))?;
    ensure(ls(ctx).is_empty() && cgroup_dirs(&ctx.name).is_empty(), || {
        "left behind".into()
    })
}

fn down_kills_after_the_stop_timeout(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(&format!("stop-timeout = \"1s\"\n{LIMITS}"));
    up_background(
        ctx,
        &file,
        &["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
    )?;
    let start = Instant::now();
    let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
    let took = start.elapsed();
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        || format!("down took {took:?}"),
    )?;
    ensure(ls(ctx).is_empty(), || "record left".into())
}

fn no_terminal_means_a_new_session(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let p = ctx.probe(&file, &["ioctl-tiocsti"])?;
    ensure(p.fact("sid") == p.fact("pid"), || {
        format!("sid {} pid {}", p.fact("sid"), p.fact("pid"))
    })?;
    ensure(p.fact("tty").is_null(), || format!("tty {}", p.fact("tty")))?;
    p.expect(&[("ioctl-tiocsti", libc::EPERM)])
}

fn a_terminal_is_the_jails_own(ctx: &Ctx) -> TestResult {
    // `script` gives sysjail a terminal; the jail must get one of its own devpts.
    let file = ctx.jail(LIMITS);
    let inner = format!(
        "{} --state-dir {} up {} -- {} probe ioctl-tiocsti",
        support::bin(),
        ctx.state.display(),
        file.display(),
        support::bin()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &inner, "/dev/null"]);
    let out = run_bounded(c, Duration::from_secs(30));
    let stdout = text(&out.stdout);
    let json = stdout
        .lines()
        .find(|l| l.contains("\"facts\""))
        .ok_or_else(|| format!("no report in {stdout:?}"))?;
    // `script` types a NUL when its stdin ends, which the jail's terminal echoes.
    let json = &json[json.find('{').unwrap_or(0)..];
    let v: Value = serde_json::from_str(json.trim()).map_err(|e| e.to_string())?;
    ensure(v["facts"]["tty"] == "/dev/pts/0", || {
        format!("tty {}", v["facts"]["tty"])
    })?;
    ensure(v["checks"]["ioctl-tiocsti"]["errno"] == libc::EPERM, || {
        format!("{}", v["checks"])
    })
}

fn classic_command_lines(ctx: &Ctx) -> TestResult {
    // sysjail(1): jail [-l] [-U user] path hostname command...
    let mut c = Command::new(support::bin());
    c.args(["jail", "-j"])
        .arg(&ctx.state)
        .args(["-l", "-U", "nobody", "/", "classic-host", support::bin(), "probe"])
        .env("TERM", "vt100");
    let out = run_bounded(c, Duration::from_secs(30));
    ensure(out.status.success(), || text(&out.stderr))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    ensure(
        v["facts"]["hostname"] == "classic-host" && v["facts"]["uid"] == 65534,
        || format!("{}", v["facts"]),
    )?;
    ensure(
        env_map(&v["facts"]["env"]).keys().cloned().collect::<Vec<_>>() == ["HOME", "SHELL", "TERM", "USER"],
        || format!("{}", v["facts"]["env"]),
    )?;
    // FreeBSD's jail(8): jail path hostname ip command..., through a `jail` link.
    let link = ctx.dir.join("jail");
    std::os::unix::fs::symlink(support::bin(), &link).unwrap();
    let mut c = Command::new(&link);
    c.args(["-j"]).arg(&ctx.state).args([
        "/",
        "freebsd-form",
        "127.0.0.1",
        support::bin(),
        "probe",
        "socket-inet",
        "socket-inet6",
    ]);
    let out = run_bounded(c, Duration::from_secs(30));
    ensure(out.status.success(), || text(&out.stderr))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    ensure(v["facts"]["hostname"] == "freebsd-form", || format!("{}", v["facts"]))?;
    // The address makes IPv4 available and IPv6 denied.
    ensure(
        v["checks"]["socket-inet"]["errno"] == 0 && v["checks"]["socket-inet6"]["errno"] == libc::EAFNOSUPPORT,
        || format!("{}", v["checks"]),
    )?;
    // The same validator: a bad address is a diagnostic at its argument.
    let out = run_bounded(
        {
            let mut c = Command::new(support::bin());
            c.args(["jail", "-4", "192.0.2.300", "/", "h", "/bin/true"])
                .env("NO_COLOR", "1");
            c
        },
        Duration::from_secs(30),
    );
    ensure(
        out.status.code() == Some(125) && text(&out.stderr).contains("[<command line>:1:17]"),
        || text(&out.stderr),
    )
}

fn dry_run_creates_nothing(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up", "--dry-run"]);
            c.arg(&file);
            c
        },
        Duration::from_secs(30),
    );
    ensure(out.status.success(), || text(&out.stderr))?;
    let plan = text(&out.stdout);
    ensure(
        plan.contains("pivot_root") && plan.contains("seccomp(SECCOMP_SET_MODE_FILTER"),
        || plan.clone(),
    )?;
    ensure(ls(ctx).is_empty() && cgroup_dirs(&ctx.name).is_empty(), || {
        "dry run created something".into()
    })
}

fn rootless_jail_runs_and_limits_say_why_not(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("");
    let run = |file: &std::path::Path, cmd: &[&str]| {
        let mut c = ctx.as_nobody(&["up"]);
        c.arg(file).arg("--").args(cmd);
        run_bounded(c, Duration::from_secs(30))
    };
    let out = run(&file, &[support::bin(), "probe", "sethostname"]);
    ensure(out.status.success(), || format!("rootless up: {}", text(&out.stderr)))?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    ensure(
        v["facts"]["uid"] == 0 && v["checks"]["sethostname"]["errno"] == libc::EPERM,
        || format!("{v}"),
    )?;
    let limited = ctx.jail_named(&format!("{}-l", ctx.name), LIMITS);
    let out = run(&limited, &["/bin/true"]);
    ensure(
        out.status.code() == Some(125) && text(&out.stderr).contains("needs the pids cgroup controller")
            || text(&out.stderr).contains("needs the memory cgroup controller"),
        || text(&out.stderr),
    )
}

fn debug_flags_add_notes_on_stderr(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let quiet = ctx.up(&file, &["/bin/true"]);
    ensure(quiet.status.success() && quiet.stderr.is_empty(), || {
        text(&quiet.stderr)
    })?;
    let mut c = ctx.sysjail(&["-dd", "up"]);
    c.arg(&file).args(["--", "/bin/true"]);
    let out = run_bounded(c, Duration::from_secs(30));
    let stderr = text(&out.stderr);
    ensure(out.status.success(), || stderr.clone())?;
    ensure(
        stderr.contains(&format!("sysjail: debug: jail {} (jid ", ctx.name))
            && stderr.contains("sysjail: debug: landlock: "),
        || stderr.clone(),
    )?;
    // The classic command line takes -d the same way.
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["jail", "-dd", "-j"]);
            c.arg(&ctx.state).args(["/", "classic-debug", "/bin/true"]);
            c
        },
        Duration::from_secs(30),
    );
    // A classic jail has no name: its JID is its name.
    let stderr = text(&out.stderr);
    let named_by_jid = stderr.lines().any(|l| {
        l.strip_prefix("sysjail: debug: jail ")
            .and_then(|rest| rest.split_once(" (jid "))
            .is_some_and(|(name, rest)| rest.starts_with(&format!("{name}):")))
    });
    ensure(named_by_jid, || stderr.clone())
}
