//! `sysjail export oci` (issue 15): exported bundles run under runc, crun and
//! containerd, and what the jail promises holds inside them, seen by the
//! probe: hostname, id map, capabilities, denied calls and their errnos on
//! both ABIs, Landlock, the memory and pids limits, mounts and the address
//! rule. Each engine is a Need: SKIP when missing, a failure under
//! SYSJAIL_REQUIRE_ALL.

mod support;

use std::fs;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Ctx, Engine, Need, Probe, Runner, TestResult, ensure, run_bounded, text};

/// The probe, as the jail sees it: the bundle's own copy of sysjail, bound
/// read-only at /dev/.sysjail in every exported bundle. (The test binary's
/// host path may be hidden in the jail, by a tmpfs at /tmp for one.)
const IN_BUNDLE: &str = "/dev/.sysjail/sysjail";

fn main() {
    let mut r = Runner::new();
    use Need::Root;
    macro_rules! per_engine {
        ($($name:ident: $f:ident),* $(,)?) => {$(
            r.test(concat!(stringify!($name), "_runc"), &[Root, Need::Engine(Engine::Runc)], |c| $f(c, Engine::Runc));
            r.test(concat!(stringify!($name), "_crun"), &[Root, Need::Engine(Engine::Crun)], |c| $f(c, Engine::Crun));
            r.test(
                concat!(stringify!($name), "_containerd"),
                &[Root, Need::Engine(Engine::Containerd)],
                |c| $f(c, Engine::Containerd),
            );
        )*};
    }
    per_engine!(
        oci_hello_example: hello_example,
        oci_jail_promises: jail_promises,
        oci_limits_hold: limits_hold,
        oci_address_rule: address_rule,
        oci_jail_tree: jail_tree,
    );
    // The api example's veth gets a host end: in a namespace of the test's,
    // which a containerd daemon (in the host's) cannot run it in.
    r.test(
        "oci_api_example_runc",
        &[Root, Need::Ip, Need::Engine(Engine::Runc)],
        |c| api_example(c, Engine::Runc),
    );
    r.test(
        "oci_api_example_crun",
        &[Root, Need::Ip, Need::Engine(Engine::Crun)],
        |c| api_example(c, Engine::Crun),
    );
    r.test("oci_jail_user_runc", &[Root, Need::Engine(Engine::Runc)], jail_user);
    r.test(
        "oci_same_id_two_roots_runc",
        &[Root, Need::Ip, Need::Engine(Engine::Runc)],
        same_id_two_roots,
    );
    r.test(
        "oci_init_reaps_and_forwards_runc",
        &[Root, Need::Engine(Engine::Runc)],
        init_reaps_and_forwards,
    );
    r.test("oci_report_and_strict", &[Root], report_and_strict);
    r.test(
        "oci_exec_gets_what_the_report_says_runc",
        &[Root, Need::Engine(Engine::Runc)],
        exec_gets_what_the_report_says,
    );
    r.test("oci_drift_check", &[Root], drift_check);
    r.test(
        "oci_export_bundle_links_untouched",
        &[Root],
        export_bundle_links_untouched,
    );
    r.test("oci_check_untrusted_bundle", &[Root], check_untrusted_bundle);
    r.test(
        "oci_two_containers_of_one_name_claim_it_once",
        &[Root, Need::HybridCgroups],
        two_containers_of_one_name_claim_it_once,
    );
    r.test(
        "oci_hooks_of_many_containers_race_cleanly",
        &[Root, Need::HybridCgroups],
        hooks_of_many_containers_race_cleanly,
    );
    // The committed profile is x86_64's, with i386.
    r.test(
        "oci_k8s_profile_is_the_exported_one",
        &[Root, Need::I386],
        k8s_profile_is_the_exported_one,
    );
    r.run()
}

const HELLO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jails/hello.toml");

/// `sysjail export oci FILE --bundle DIR [-- CMD]`: the bundle and the report.
fn export(ctx: &Ctx, file: &Path, cmd: &[&str]) -> Result<(PathBuf, String), String> {
    let bundle = ctx.dir.join("bundle");
    let mut c = ctx.sysjail(&["export", "oci"]);
    c.arg(file).arg("--bundle").arg(&bundle);
    if !cmd.is_empty() {
        c.arg("--").args(cmd);
    }
    let out = run_bounded(c, Duration::from_secs(60));
    ensure(out.status.success(), || {
        format!("export: {:?}\n{}", out.status, text(&out.stderr))
    })?;
    Ok((bundle, text(&out.stdout)))
}

/// crun 1.8 refuses a hybrid host whose unified hierarchy has controllers;
/// it then runs in a mount namespace where that hierarchy is moved beside
/// (the rewrite hook finds it there, crun manages the v1 controllers).
fn hybrid_with_v2_controllers() -> bool {
    Path::new("/sys/fs/cgroup/memory").exists()
        && fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").is_ok_and(|c| !c.trim().is_empty())
}

/// Runs the bundle under `engine` to completion (bounded), then deletes the
/// container whatever happened.
fn run(ctx: &Ctx, engine: Engine, bundle: &Path, tag: &str) -> Output {
    run_in(ctx, engine, bundle, tag, None)
}

/// [`run`], with the engine in the network namespace `netns` (of `ip netns`).
fn run_in(ctx: &Ctx, engine: Engine, bundle: &Path, tag: &str, netns: Option<&str>) -> Output {
    let id = format!("sj-{}-{tag}", ctx.name);
    let mut c = match engine {
        Engine::Runc => {
            let mut c = Command::new("runc");
            c.args(["run", "--bundle"]).arg(bundle).arg(&id);
            c
        }
        Engine::Crun if hybrid_with_v2_controllers() => {
            let aside = ctx.dir.join("unified");
            fs::create_dir_all(&aside).unwrap();
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount --move /sys/fs/cgroup/unified "$1" && exec crun run --bundle "$2" "$3""#)
                .arg("sh")
                .arg(&aside)
                .arg(bundle)
                .arg(&id);
            c
        }
        Engine::Crun => {
            let mut c = Command::new("crun");
            c.args(["run", "--bundle"]).arg(bundle).arg(&id);
            c
        }
        Engine::Containerd => {
            let mut c = Command::new("ctr");
            c.args(["run", "--rm", "--config"])
                .arg(bundle.join("config.json"))
                .arg(&id);
            c
        }
    };
    if let Some(ns) = netns {
        let mut wrapped = Command::new("nsenter");
        wrapped
            .arg(format!("--net=/run/netns/{ns}"))
            .arg(c.get_program())
            .args(c.get_args());
        c = wrapped;
    }
    c.stdin(Stdio::null());
    let out = run_bounded(c, Duration::from_secs(90));
    let cleanup: &[&str] = match engine {
        Engine::Runc => &["runc", "delete", "-f"],
        Engine::Crun => &["crun", "delete", "-f"],
        Engine::Containerd => &["ctr", "container", "rm"],
    };
    let _ = Command::new(cleanup[0])
        .args(&cleanup[1..])
        .arg(&id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    out
}

/// The bundle's probe answered each check as `sysjail up`'s did.
fn same_answers(p: &Probe, up: &Probe, checks: &[&str]) -> TestResult {
    for check in checks {
        ensure(p.errno(check)? == up.errno(check)?, || {
            format!(
                "{check}: {} in the bundle, {} under sysjail up",
                p.errno(check).unwrap(),
                up.errno(check).unwrap()
            )
        })?;
    }
    Ok(())
}

/// The bundle's probe saw each fact as `sysjail up`'s did.
fn same_facts(p: &Probe, up: &Probe, facts: &[&str]) -> TestResult {
    for fact in facts {
        ensure(p.fact(fact) == up.fact(fact), || {
            format!(
                "{fact}: {} in the bundle, {} under sysjail up",
                p.fact(fact),
                up.fact(fact)
            )
        })?;
    }
    Ok(())
}

/// Exports `file` with the probe as its command, runs it, and parses the report.
fn probe(ctx: &Ctx, engine: Engine, file: &Path, checks: &[&str]) -> Result<Probe, String> {
    probe_in(ctx, engine, file, checks, None)
}

/// [`probe`] with the engine in the network namespace `netns`.
fn probe_in(ctx: &Ctx, engine: Engine, file: &Path, checks: &[&str], netns: Option<&str>) -> Result<Probe, String> {
    let mut cmd = vec![IN_BUNDLE, "probe"];
    cmd.extend(checks);
    let (bundle, _) = export(ctx, file, &cmd)?;
    let out = run_in(ctx, engine, &bundle, "probe", netns);
    ensure(out.status.success(), || {
        format!("{engine:?} exited {:?}: {}", out.status.code(), text(&out.stderr))
    })?;
    serde_json::from_slice(&out.stdout)
        .map(Probe)
        .map_err(|e| format!("probe output is not JSON ({e}): {}", text(&out.stdout)))
}

fn hello_example(ctx: &Ctx, engine: Engine) -> TestResult {
    let (bundle, report) = export(ctx, Path::new(HELLO), &[])?;
    ensure(report.contains("kept  the hostname is hello.jail"), || report.clone())?;
    let out = run(ctx, engine, &bundle, "hello");
    let stdout = text(&out.stdout);
    ensure(out.status.success(), || {
        format!("{engine:?}: {:?}\n{stdout}{}", out.status, text(&out.stderr))
    })?;
    ensure(
        stdout.contains("hello from hello.jail\n") && stdout.contains("uid=0(root) gid=0(root)"),
        || stdout.clone(),
    )
}

/// A jail on the host's stack with a loopback address, limits and a tmpfs
/// (at /var/tmp: `sysjail up` of it runs the test binary by its host path,
/// which may be under /tmp, as in a clean clone).
fn limited_jail(ctx: &Ctx) -> PathBuf {
    ctx.jail(
        "hostname = \"oci.jail\"\n[network]\nmode = \"host\"\nipv4 = [\"127.0.0.2\"]\n[limits]\nmemory = \"64M\"\npids = 32\n\
         [[mount]]\ntype = \"tmpfs\"\ntarget = \"/var/tmp\"\nsize = \"16M\"\nmode = \"1777\"\n",
    )
}

/// Calls the filter answers, on both ABIs, and what each must return.
const DENIED: &[(&str, i32)] = &[
    ("sethostname", libc::EPERM),
    ("setdomainname", libc::EPERM),
    ("mount", libc::EPERM),
    ("init-module", libc::EPERM),
    ("socket-packet", libc::EPROTONOSUPPORT),
    ("socket-inet6", libc::EAFNOSUPPORT),
    ("ipc-msgget", libc::EPERM),
    ("unshare-user", libc::EPERM),
    ("reboot-cad-off", libc::EPERM),
    ("x32-getpid", libc::ENOSYS),
    ("i386-socket-packet", libc::EPROTONOSUPPORT),
    ("i386-socket-inet", 0),
    ("write-file=/etc/sysjail-oci-test", libc::EROFS),
];

fn jail_promises(ctx: &Ctx, engine: Engine) -> TestResult {
    let file = limited_jail(ctx);
    // An abstract socket of the host, which Landlock's scope keeps the jail
    // from (the jail shares the host's network namespace, so it is there).
    let name = format!("sysjail-oci-{}-{engine:?}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| e.to_string())?;
    let _listener = UnixListener::bind_addr(&addr).map_err(|e| e.to_string())?;
    let connect = format!("connect-abstract={name}");
    let mut checks: Vec<&str> = DENIED.iter().map(|(c, _)| *c).collect();
    checks.push(&connect);
    let p = probe(ctx, engine, &file, &checks)?;
    let mut want: Vec<(&str, i32)> = DENIED.to_vec();
    want.push((&connect, libc::EPERM));
    p.expect(&want)?;
    // The same answers and facts as `sysjail up` gives for the same jail.
    let up = ctx.probe(&file, &checks)?;
    same_answers(&p, &up, &checks)?;
    same_facts(
        &p,
        &up,
        &[
            "uid",
            "gid",
            "hostname",
            "capeff",
            "capprm",
            "capbnd",
            "capinh",
            "capamb",
            "nonewprivs",
            "seccomp",
        ],
    )?;
    ensure(p.fact("hostname") == "oci.jail", || {
        format!("hostname {}", p.fact("hostname"))
    })?;
    ensure(
        p.fact("capinh") == "0000000000000000" && p.fact("capamb") == "0000000000000000",
        || format!("inheritable {} ambient {}", p.fact("capinh"), p.fact("capamb")),
    )?;
    ensure(p.fact("seccomp") == "2" && p.fact("nonewprivs") == "1", || {
        format!("seccomp {} no_new_privs {}", p.fact("seccomp"), p.fact("nonewprivs"))
    })?;
    // Mounts: the jail's tmpfs, its /proc and /dev, and the root read-only.
    let mounts: Vec<&str> = p
        .fact("mounts")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for m in ["/", "/var/tmp", "/proc", "/dev", "/dev/pts", "/dev/shm"] {
        ensure(mounts.contains(&m), || format!("no {m} in {mounts:?}"))?;
    }
    // sysjail's init is pid 1, the probe its only other process.
    let pids = p.fact("pids").as_array().map_or(0, Vec::len);
    ensure(pids == 2 && p.fact("pids")[0] == 1, || {
        format!("pids {}", p.fact("pids"))
    })?;
    ensure(
        p.fact("init_cmdline")
            .as_str()
            .is_some_and(|c| c.contains(" oci-init ")),
        || format!("pid 1 is {}", p.fact("init_cmdline")),
    )?;
    // Jail root is not host root: the bundle maps it to an unprivileged range.
    let (bundle, _) = export(ctx, &file, &["/bin/cat", "/proc/self/uid_map", "/proc/self/gid_map"])?;
    let out = run(ctx, engine, &bundle, "idmap");
    let maps = text(&out.stdout);
    let lines: Vec<Vec<&str>> = maps.lines().map(|l| l.split_whitespace().collect()).collect();
    let base = sysjail::launch::ID_BASE.to_string();
    ensure(
        out.status.success() && lines.len() == 2 && lines.iter().all(|l| l == &["0", base.as_str(), "65536"]),
        || format!("id maps: {maps:?} {}", text(&out.stderr)),
    )
}

fn limits_hold(ctx: &Ctx, engine: Engine) -> TestResult {
    let file = limited_jail(ctx);
    // Within the memory limit the probe runs; past it the kernel kills it.
    let small = format!("alloc={}", 16 << 20);
    probe(ctx, engine, &file, &[&small])?.expect(&[(&small, 0)])?;
    let (bundle, _) = export(ctx, &file, &[IN_BUNDLE, "probe", &format!("alloc={}", 256 << 20)])?;
    let out = run(ctx, engine, &bundle, "oom");
    ensure(!out.status.success() && out.stdout.is_empty(), || {
        format!("256M in a 64M jail: {:?} {}", out.status, text(&out.stdout))
    })?;
    // pids = 32: init, the probe and 30 children; the 31st fork fails.
    let p = probe(ctx, engine, &file, &["forks=500:1000"])?;
    let forks = &p.0["checks"]["forks=500:1000"];
    ensure(forks["ret"] == 30 && forks["errno"] == libc::EAGAIN, || {
        format!("forks: {forks}")
    })
}

fn address_rule(ctx: &Ctx, engine: Engine) -> TestResult {
    let file = limited_jail(ctx);
    let checks = ["bind=0.0.0.0:0", "bind=127.0.0.1:0", "bind=127.0.0.2:0"];
    let p = probe(ctx, engine, &file, &checks)?;
    for c in checks {
        let at = p.0["checks"][c]["addr"].as_str().unwrap_or_default();
        ensure(at.starts_with("127.0.0.2:"), || {
            format!("{c}: bound to {:?}", p.0["checks"][c])
        })?;
    }
    // The hook's cgroup goes with the container.
    let own = Path::new("/sys/fs/cgroup/unified/sysjail-oci").join(format!("sj-{}-probe", ctx.name));
    ensure(!own.exists(), || format!("{} is left behind", own.display()))
}

fn report_and_strict(ctx: &Ctx) -> TestResult {
    let file = limited_jail(ctx);
    let (bundle, report) = export(ctx, &file, &[])?;
    // Each promise is kept by something or lost for a reason.
    let lines: Vec<&str> = report.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("kept  ") || l.starts_with("LOST  ") {
            let next = lines.get(i + 1).copied().unwrap_or_default();
            ensure(next.starts_with("      ") && next.trim().len() > 5, || {
                format!("{l}: no reason")
            })?;
        }
    }
    for kept in [
        "kept  binds and connections end on the jail's addresses",
        "kept  Landlock",
        "kept  memory at most 67108864 bytes",
        "kept  at most 32 processes",
        "LOST  reboot(2) by jail root halts the jail",
    ] {
        ensure(report.contains(kept), || format!("no {kept:?} in\n{report}"))?;
    }
    for f in ["config.json", "seccomp.json", "sysjail/init.json", "sysjail/sysjail"] {
        ensure(bundle.join(f).exists(), || format!("no {f}"))?;
    }
    let profile: Value =
        serde_json::from_slice(&fs::read(bundle.join("seccomp.json")).unwrap()).map_err(|e| e.to_string())?;
    ensure(
        profile["defaultAction"] == "SCMP_ACT_ERRNO" && profile["defaultErrnoRet"] == 38,
        || format!("profile {}", profile["defaultAction"]),
    )?;
    let mut c = ctx.sysjail(&["export", "oci", "--strict", "--bundle"]);
    c.arg(&bundle).arg(&file);
    let out = run_bounded(c, Duration::from_secs(60));
    ensure(
        out.status.code() == Some(1) && text(&out.stderr).contains("--strict"),
        || format!("--strict: {:?} {}", out.status, text(&out.stderr)),
    )
}

fn drift_check(ctx: &Ctx) -> TestResult {
    let file = limited_jail(ctx);
    let (bundle, _) = export(ctx, &file, &[IN_BUNDLE, "probe", "sethostname"])?;
    let check = || {
        let mut c = ctx.sysjail(&["check", "--bundle"]);
        c.arg(&bundle).arg(&file);
        run_bounded(c, Duration::from_secs(60))
    };
    let same = check();
    ensure(same.status.success(), || {
        format!(
            "fresh bundle: {:?}\n{}{}",
            same.status,
            text(&same.stdout),
            text(&same.stderr)
        )
    })?;
    // Edited by hand: a capability added, the hostname changed.
    let config = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&fs::read(&config).unwrap()).map_err(|e| e.to_string())?;
    spec["hostname"] = "edited".into();
    spec["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .ok_or("no bounding set")?
        .push("CAP_SYS_ADMIN".into());
    fs::write(&config, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let drift = check();
    let stdout = text(&drift.stdout);
    ensure(drift.status.code() == Some(1), || {
        format!("{:?}\n{stdout}", drift.status)
    })?;
    for want in [
        "config.json:/hostname: the export writes \"oci.jail\", the bundle has \"edited\"",
        "config.json:/process/capabilities/bounding: ",
        ": 2 differences from the export of ",
    ] {
        ensure(stdout.contains(want), || format!("no {want:?} in\n{stdout}"))?;
    }
    Ok(())
}

fn exec_gets_what_the_report_says(ctx: &Ctx) -> TestResult {
    let file = limited_jail(ctx);
    let (bundle, report) = export(ctx, &file, &["/bin/sleep", "600"])?;
    let lost = "LOST  processes the engine execs into the container (runc exec, crun exec, ctr task exec, kubectl exec) \
                are held to the exact filter and Landlock";
    let at = report.find(lost).ok_or_else(|| format!("no {lost:?} in\n{report}"))?;
    let why = report[at..].lines().nth(1).unwrap_or_default().to_string();
    for call in [" socket ", " unshare", "no Landlock"] {
        ensure(why.contains(call), || format!("{call:?} not in {why:?}"))?;
    }
    let id = format!("sj-{}-exec", ctx.name);
    let delete = || {
        let _ = Command::new("runc")
            .args(["delete", "-f"])
            .arg(&id)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    // Detached, its stdio nowhere: the container holds no pipe of ours.
    let mut runc = Command::new("runc")
        .args(["run", "-d", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut status = None;
    support::wait_for(Duration::from_secs(60), || {
        status = runc.try_wait().ok().flatten();
        status.is_some()
    });
    if !status.is_some_and(|s| s.success()) {
        let _ = runc.kill();
        let _ = runc.wait();
        delete();
        return Err(format!("runc run -d: {status:?}"));
    }
    let name = format!("sysjail-oci-exec-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| e.to_string())?;
    let _listener = UnixListener::bind_addr(&addr).map_err(|e| e.to_string())?;
    let connect = format!("connect-abstract={name}");
    let mut c = Command::new("runc");
    c.arg("exec")
        .arg(&id)
        .args([IN_BUNDLE, "probe", "socket-inet6", "unshare-user", "mount", &connect]);
    let out = run_bounded(c, Duration::from_secs(60));
    delete();
    ensure(out.status.success(), || {
        format!("runc exec: {:?} {}", out.status, text(&out.stderr))
    })?;
    let p: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out.stdout)))?;
    // What the report says: the calls decided by arguments are allowed,
    // Landlock's scope is not there; what linux.seccomp decides by number
    // holds.
    support::Probe(p).expect(&[
        ("socket-inet6", 0),
        ("unshare-user", 0),
        (&connect, 0),
        ("mount", libc::EPERM),
    ])
}

/// `sysjail export oci FILE --bundle DIR`, as root, to completion.
fn export_to(ctx: &Ctx, file: &Path, bundle: &Path) -> Output {
    let mut c = ctx.sysjail(&["export", "oci"]);
    c.arg(file).arg("--bundle").arg(bundle);
    run_bounded(c, Duration::from_secs(60))
}

fn export_bundle_links_untouched(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::{PermissionsExt, lchown, symlink};
    let victim = ctx.dir.join("victim");
    fs::create_dir(&victim).unwrap();
    for f in ["cfg", "passwd", "seccomp"] {
        fs::write(victim.join(f), "precious\n").unwrap();
    }
    let unchanged = || -> TestResult {
        for f in ["cfg", "passwd", "seccomp"] {
            let now = fs::read_to_string(victim.join(f)).unwrap();
            ensure(now == "precious\n", || format!("victim {f} overwritten: {now:.60?}"))?;
        }
        for f in ["init.json", "sysjail", ".sysjail.new"] {
            ensure(!victim.join(f).exists(), || {
                format!("export wrote {f} into the victim directory")
            })?;
        }
        Ok(())
    };
    let refused = |out: &Output, want: &str| -> TestResult {
        let err = text(&out.stderr);
        ensure(!out.status.success() && err.contains(want), || {
            format!("{:?}: no {want:?} in\n{err}", out.status)
        })
    };
    // Another user's bundle with links planted in it (and in sysjail/).
    let ub = ctx.dir.join("ub");
    fs::create_dir_all(ub.join("sysjail")).unwrap();
    symlink(victim.join("cfg"), ub.join("config.json")).unwrap();
    symlink(victim.join("passwd"), ub.join("sysjail/.sysjail.new")).unwrap();
    symlink(victim.join("seccomp"), ub.join("seccomp.json")).unwrap();
    for p in [
        &ub,
        &ub.join("sysjail"),
        &ub.join("config.json"),
        &ub.join("seccomp.json"),
    ] {
        lchown(p, Some(65534), Some(65534)).unwrap();
    }
    lchown(ub.join("sysjail/.sysjail.new"), Some(65534), Some(65534)).unwrap();
    refused(&export_to(ctx, Path::new(HELLO), &ub), "owned by uid 65534")?;
    unchanged()?;
    // Root's, but others or its group may write it.
    for (mode, want) in [(0o777, "writable by others"), (0o775, "writable by its group")] {
        let open = ctx.dir.join(format!("open{mode:o}"));
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(mode)).unwrap();
        refused(&export_to(ctx, Path::new(HELLO), &open), want)?;
        ensure(!open.join("config.json").exists(), || {
            format!("{mode:o}: config.json written")
        })?;
    }
    // Root's own bundle: a link in place of a file is replaced, not
    // followed; a link in place of sysjail/ refuses the export.
    let rb = ctx.dir.join("rb");
    fs::create_dir(&rb).unwrap();
    fs::set_permissions(&rb, fs::Permissions::from_mode(0o755)).unwrap();
    symlink(victim.join("cfg"), rb.join("config.json")).unwrap();
    symlink(&victim, rb.join("sysjail")).unwrap();
    refused(&export_to(ctx, Path::new(HELLO), &rb), "sysjail: is not a directory")?;
    ensure(fs::symlink_metadata(rb.join("config.json")).unwrap().is_file(), || {
        "config.json is still a link".into()
    })?;
    unchanged()?;
    // The bundle path itself a link.
    let real = ctx.dir.join("real");
    fs::create_dir(&real).unwrap();
    symlink(&real, ctx.dir.join("linked")).unwrap();
    refused(
        &export_to(ctx, Path::new(HELLO), &ctx.dir.join("linked")),
        "is not a directory",
    )?;
    ensure(!real.join("config.json").exists(), || "written through the link".into())?;
    // And a clean one is written, the caller's, with export's modes.
    let ok = ctx.dir.join("ok");
    let out = export_to(ctx, Path::new(HELLO), &ok);
    ensure(out.status.success(), || {
        format!("{:?} {}", out.status, text(&out.stderr))
    })?;
    for (f, mode) in [
        ("", 0o755),
        ("config.json", 0o644),
        ("seccomp.json", 0o644),
        ("sysjail", 0o755),
        ("sysjail/init.json", 0o644),
        ("sysjail/sysjail", 0o755),
    ] {
        let m = fs::symlink_metadata(ok.join(f)).unwrap();
        ensure(m.permissions().mode() & 0o7777 == mode, || {
            format!("{f}: mode {:o}", m.permissions().mode() & 0o7777)
        })?;
    }
    ensure(!ok.join("sysjail/.sysjail.new").exists(), || {
        "temporary copy left".into()
    })
}

fn check_untrusted_bundle(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let (bundle, _) = export(ctx, Path::new(HELLO), &[])?;
    let check = || {
        let mut c = ctx.sysjail(&["check", "--bundle"]);
        c.arg(&bundle).arg(HELLO);
        let start = std::time::Instant::now();
        let out = run_bounded(c, Duration::from_secs(30));
        (out, start.elapsed())
    };
    let (fresh, _) = check();
    ensure(fresh.status.success(), || {
        format!(
            "fresh: {:?}\n{}{}",
            fresh.status,
            text(&fresh.stdout),
            text(&fresh.stderr)
        )
    })?;
    let config = bundle.join("config.json");
    let fifo = std::ffi::CString::new(ctx.dir.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    ensure(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) } == 0, || "mkfifo".into())?;
    let big = ctx.dir.join("big");
    fs::File::create(&big).unwrap().set_len(64 << 20).unwrap();
    type Plant = fn(&Path, &Path);
    let cases: [(&str, Plant, &str); 4] = [
        ("/dev/zero", |c, _| symlink("/dev/zero", c).unwrap(), "symbolic link"),
        (
            "/etc/shadow",
            |c, _| symlink("/etc/shadow", c).unwrap(),
            "symbolic link",
        ),
        (
            "a FIFO",
            |c, d| fs::rename(d.join("fifo"), c).unwrap(),
            "not a regular file",
        ),
        ("64 MiB", |c, d| fs::rename(d.join("big"), c).unwrap(), "larger than"),
    ];
    for (what, plant, want) in cases {
        fs::remove_file(&config).unwrap();
        plant(&config, &ctx.dir);
        let (out, took) = check();
        let err = text(&out.stderr);
        ensure(out.status.code() == Some(1) && err.contains(want), || {
            format!("config.json as {what}: {:?} after {took:?}\n{err}", out.status)
        })?;
        ensure(took < Duration::from_secs(20), || format!("{what}: {took:?}"))?;
        ensure(!text(&out.stdout).contains("root:") && !err.contains("root:"), || {
            format!("{what}: /etc/shadow quoted")
        })?;
        // A fresh export for the next case.
        export(ctx, Path::new(HELLO), &[])?;
    }
    // The binary swapped for a script, sysjail/ opened to everyone, a file
    // given away: each is a difference.
    let binary = bundle.join("sysjail/sysjail");
    fs::remove_file(&binary).unwrap();
    fs::write(&binary, "#!/bin/sh\nexec /bin/sh\n").unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(bundle.join("sysjail"), fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(bundle.join("seccomp.json"), Some(65534), None).unwrap();
    fs::set_permissions(bundle.join("config.json"), fs::Permissions::from_mode(0o666)).unwrap();
    let (out, _) = check();
    let stdout = text(&out.stdout);
    ensure(out.status.code() == Some(1), || {
        format!("{:?}\n{stdout}{}", out.status, text(&out.stderr))
    })?;
    for want in [
        "sysjail/sysjail: the export copies this sysjail binary, the bundle has another file",
        "sysjail: the directory is writable by others (mode 777)",
        "seccomp.json: the export writes it owned by uid 0, the bundle has uid 65534",
        "config.json: the export writes mode 644, the bundle has mode 666",
        ": 4 differences from the export of ",
    ] {
        ensure(stdout.contains(want), || format!("no {want:?} in\n{stdout}"))?;
    }
    ensure(!stdout.contains("the bundle is what"), || stdout.clone())
}

fn k8s_profile_is_the_exported_one(ctx: &Ctx) -> TestResult {
    // examples/k8s/hello-seccomp.json is what the export of hello writes on
    // an x86_64 host with i386 (the ABIs are the profile's architectures).
    let (bundle, _) = export(ctx, Path::new(HELLO), &[])?;
    let exported = fs::read_to_string(bundle.join("seccomp.json")).unwrap();
    let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/k8s/hello-seccomp.json");
    ensure(exported == fs::read_to_string(committed).unwrap(), || {
        format!(
            "{committed} is stale: sysjail export oci examples/jails/hello.toml --bundle DIR, then copy DIR/seccomp.json"
        )
    })
}

fn jail_user(ctx: &Ctx) -> TestResult {
    // A jail user: the bundle's credentials are those sysjail up gives.
    let file = ctx.jail("user = \"nobody\"\n[limits]\npids = 32\n");
    let checks = ["sethostname", "i386-socket-packet"];
    let p = probe(ctx, Engine::Runc, &file, &checks)?;
    let up = ctx.probe(&file, &checks)?;
    p.expect(&[
        ("sethostname", libc::EPERM),
        ("i386-socket-packet", libc::EPROTONOSUPPORT),
    ])?;
    same_facts(
        &p,
        &up,
        &["uid", "gid", "groups", "capeff", "capprm", "capbnd", "nonewprivs"],
    )?;
    ensure(p.fact("uid") == 65534 && p.fact("capeff") == "0000000000000000", || {
        format!("uid {} capeff {}", p.fact("uid"), p.fact("capeff"))
    })
}

fn jail_tree(ctx: &Ctx, engine: Engine) -> TestResult {
    // A jail of its own tree, owned by an unprivileged range: the bundle's id
    // maps start at its owner, so the tree's files keep their owners, as
    // under sysjail up with its id-mapped root. Read-only: the runtime mounts
    // the root as jail root, who cannot pass the root-only directory that
    // sysjail requires above a writable tree (the report says so).
    let root = ctx.dir.join("root");
    for d in ["etc", "usr", "proc", "dev", "tmp", "data"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for link in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{link}"), root.join(link)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let bindir = support::bindir();
    let mut at = root.clone();
    for part in Path::new(&bindir).components().skip(1) {
        at.push(part);
        fs::create_dir_all(&at).unwrap();
    }
    support::shift_tree(&root);
    let file = ctx.jail(&format!(
        "path = \"{}\"\nread-only = true\nhostname = \"tree.jail\"\n[limits]\npids = 32\n[[mount]]\nsource = \"/usr\"\ntarget = \"/usr\"\n\
         [[mount]]\nsource = \"{bindir}\"\ntarget = \"{bindir}\"\n",
        root.display()
    ));
    let (_, report) = export(ctx, &file, &[])?;
    let owner = format!("the id maps start at the tree's owner ({0}:{0})", support::TREE_IDS);
    ensure(report.contains(&owner), || format!("no {owner:?} in\n{report}"))?;
    let checks = [
        "write-file=/data/x",
        "sethostname",
        "write-file=/usr/x",
        "i386-socket-packet",
    ];
    let p = probe(ctx, engine, &file, &checks)?;
    p.expect(&[
        ("write-file=/data/x", libc::EROFS),
        ("sethostname", libc::EPERM),
        ("write-file=/usr/x", libc::EROFS),
        ("i386-socket-packet", libc::EPROTONOSUPPORT),
    ])?;
    let up = ctx.probe(&file, &checks)?;
    same_answers(&p, &up, &checks)?;
    ensure(p.fact("hostname") == "tree.jail" && p.fact("uid") == 0, || {
        format!("hostname {} uid {}", p.fact("hostname"), p.fact("uid"))
    })?;
    // The tree's files keep their owners: jail root's /etc/passwd is its own.
    let (bundle, _) = export(ctx, &file, &["/usr/bin/stat", "-c", "%u:%g", "/etc/passwd"])?;
    let out = run(ctx, engine, &bundle, "owner");
    ensure(out.status.success() && text(&out.stdout) == "0:0\n", || {
        format!("owner of /etc/passwd: {:?} {}", text(&out.stdout), text(&out.stderr))
    })
}

fn init_reaps_and_forwards(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("[limits]\npids = 32\n");
    // The jail lives until its last process has exited: an orphan that
    // outlives the command still prints.
    let (bundle, _) = export(ctx, &file, &["/bin/sh", "-c", "(sleep 1; echo late) & echo early"])?;
    let out = run(ctx, Engine::Runc, &bundle, "orphan");
    ensure(out.status.success() && text(&out.stdout) == "early\nlate\n", || {
        format!("{:?} {:?} {}", out.status, text(&out.stdout), text(&out.stderr))
    })?;
    // A signal from inside the jail to pid 1 is dropped: init lives on.
    let kill = "kill=1:15";
    let p = probe(ctx, Engine::Runc, &file, &[kill, "getppid"])?;
    p.expect(&[(kill, 0), ("getppid", 0)])?;
    // The engine's signal reaches the command, which dies of it.
    let (bundle, _) = export(ctx, &file, &["/bin/sleep", "30"])?;
    let id = format!("sj-{}-signal", ctx.name);
    let mut c = Command::new("runc");
    c.args(["run", "--bundle"]).arg(&bundle).arg(&id).stdin(Stdio::null());
    let started = std::time::Instant::now();
    let running = std::thread::spawn(move || run_bounded(c, Duration::from_secs(60)));
    let state = || {
        Command::new("runc")
            .args(["state", &id])
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default()
    };
    // Running, and init has started the command (its signals are set up).
    let up = support::wait_for(Duration::from_secs(20), || {
        let state: Value = serde_json::from_str(&state()).unwrap_or_default();
        let pid = state["pid"].as_i64().unwrap_or(0);
        state["status"] == "running"
            && fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).is_ok_and(|c| !c.trim().is_empty())
    });
    let killed = Command::new("runc").args(["kill", &id, "TERM"]).status();
    let out = running.join().map_err(|_| "the runc thread panicked")?;
    let _ = Command::new("runc").args(["delete", "-f", &id]).status();
    ensure(up && killed.is_ok_and(|s| s.success()), || {
        "the container never ran".into()
    })?;
    ensure(out.status.code() == Some(128 + libc::SIGTERM), || {
        format!("after runc kill TERM: {:?} {}", out.status, text(&out.stderr))
    })?;
    ensure(started.elapsed() < Duration::from_secs(25), || {
        format!("sleep 30 ended after {:?}", started.elapsed())
    })
}

/// A network namespace of the test's (`ip netns`), deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(ctx: &Ctx) -> Result<Netns, String> {
        let name = format!("sj-{}-{}", ctx.name, std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        ensure(ok, || format!("ip netns add {name} failed"))?;
        Ok(Netns(name))
    }

    /// `ip -n NS ARGS`'s output.
    fn ip(&self, args: &[&str]) -> String {
        Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn same_id_two_roots(ctx: &Ctx) -> TestResult {
    // Two runc roots, the same container id, a bundle each: each gets its
    // veth and cgroup, and stopping one (or a poststop state forged for the
    // other) leaves the other's alone.
    // A private network without a gateway: two host ends in one namespace
    // hold no address that clashes.
    let jail = ctx.jail(
        "path = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\npids = 32\n[network]\nmode = \"private\"\nipv4 = [\"10.89.0.2/24\"]\n",
    );
    let ns = Netns::new(ctx)?;
    let id = format!("sj-{}", ctx.name);
    let runc = |root: &Path, args: &[&str]| {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", ns.0))
            .arg("runc")
            .arg("--root")
            .arg(root)
            .args(args);
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let mut made = Vec::new();
    for n in ["1", "2"] {
        let bundle = ctx.dir.join(format!("bundle{n}"));
        let mut c = ctx.sysjail(&["export", "oci"]);
        c.arg(&jail)
            .arg("--bundle")
            .arg(&bundle)
            .args(["--", "/bin/sleep", "600"]);
        let out = run_bounded(c, Duration::from_secs(60));
        ensure(out.status.success(), || text(&out.stderr))?;
        let root = ctx.dir.join(format!("root{n}"));
        let name = sysjail::oci::VethFile::host_name(bundle.to_str().unwrap(), &id);
        made.push((bundle, root, name));
    }
    let delete = |root: &Path| {
        let _ = run_bounded(runc(root, &["delete", "-f", &id]), Duration::from_secs(30));
    };
    let result = (|| -> TestResult {
        for (bundle, root, _) in &made {
            let mut child = runc(root, &["run", "-d", "--bundle", bundle.to_str().unwrap(), &id])
                .spawn()
                .map_err(|e| e.to_string())?;
            let mut status = None;
            support::wait_for(Duration::from_secs(60), || {
                status = child.try_wait().ok().flatten();
                status.is_some()
            });
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            ensure(status.is_some_and(|s| s.success()), || {
                format!("runc --root {} run -d: {status:?}", root.display())
            })?;
        }
        let links = ns.ip(&["-o", "link"]);
        for (_, _, name) in &made {
            ensure(links.contains(&format!(": {name}@")), || {
                format!("no {name} in\n{links}")
            })?;
        }
        let (bundle2, _, name2) = &made[1];
        let cgroup2 = Path::new("/sys/fs/cgroup/unified/sysjail-oci").join(name2);
        let had_cgroup = cgroup2.exists();
        // A poststop state forged for the running second container.
        hook_in(bundle2, "poststop", &id, 0, Some(&ns.0))?;
        // The first one stops.
        delete(&made[0].1);
        let links = ns.ip(&["-o", "link"]);
        ensure(!links.contains(&format!(": {}@", made[0].2)), || {
            format!("{} left", made[0].2)
        })?;
        ensure(links.contains(&format!(": {name2}@")), || {
            format!("the second container's {name2} is gone:\n{links}")
        })?;
        ensure(cgroup2.exists() == had_cgroup, || {
            format!("{} is gone", cgroup2.display())
        })?;
        // The runtime's own cgroup of each is its bundle's (linux.cgroupsPath):
        // the second's still holds its process.
        let runtime_cgroup = |bundle: &Path| {
            let hash = sysjail::oci::fnv(&[bundle.to_str().unwrap()]);
            Path::new("/sys/fs/cgroup/pids").join(format!("sysjail-bundle-{hash:016x}"))
        };
        if Path::new("/sys/fs/cgroup/pids").exists() {
            let procs = fs::read_to_string(runtime_cgroup(bundle2).join("cgroup.procs")).unwrap_or_default();
            ensure(!procs.trim().is_empty(), || {
                format!(
                    "{}: no process of the second container",
                    runtime_cgroup(bundle2).display()
                )
            })?;
            ensure(!runtime_cgroup(&made[0].0).exists(), || {
                "the first one's cgroup is left".into()
            })?;
        }
        ensure(Path::new("/run/sysjail-oci").join(name2).exists(), || {
            "its record is gone".into()
        })?;
        Ok(())
    })();
    for (_, root, _) in &made {
        delete(root);
    }
    result?;
    let links = ns.ip(&["-o", "link"]);
    ensure(links.lines().count() == 1, || format!("left in the namespace: {links}"))?;
    for (_, _, name) in &made {
        ensure(!Path::new("/run/sysjail-oci").join(name).exists(), || {
            format!("record {name} left")
        })?;
    }
    Ok(())
}

fn api_example(ctx: &Ctx, engine: Engine) -> TestResult {
    // api.toml (the host's / too) with the probe instead of its server: its
    // user, hostname and families hold, and the createRuntime hook makes its
    // veth as sysjail up does: the jail's end holds exactly 10.89.0.2/24,
    // where a wildcard bind ends up; the host end holds the gateway.
    let api = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/jails/api.toml");
    let (_, report) = export(ctx, Path::new(api), &[])?;
    let veth = "kept  the jail's interface holds exactly [(10.89.0.2, 24)]";
    ensure(report.contains(veth), || format!("no {veth:?} in\n{report}"))?;
    let ns = Netns::new(ctx)?;
    let checks = [
        "socket-inet",
        "socket-inet6",
        "i386-socket-inet",
        "sethostname",
        "bind=0.0.0.0:8080",
        "bind=127.0.0.1:8081",
    ];
    let p = probe_in(ctx, engine, Path::new(api), &checks, Some(&ns.0))?;
    p.expect(&[
        ("socket-inet", 0),
        ("socket-inet6", libc::EAFNOSUPPORT),
        ("i386-socket-inet", 0),
        ("sethostname", libc::EPERM),
    ])?;
    for (check, want) in [
        ("bind=0.0.0.0:8080", "10.89.0.2:8080"),
        ("bind=127.0.0.1:8081", "10.89.0.2:8081"),
    ] {
        let at = p.0["checks"][check]["addr"].as_str().unwrap_or_default();
        ensure(at == want, || format!("{check}: {}", p.0["checks"][check]))?;
    }
    let interfaces = p.fact("interfaces").as_array().map(|a| a.len()).unwrap_or(0);
    ensure(
        p.fact("uid") == 65534 && p.fact("hostname") == "api.internal" && interfaces == 2,
        || {
            format!(
                "uid {} hostname {} interfaces {}",
                p.fact("uid"),
                p.fact("hostname"),
                p.fact("interfaces")
            )
        },
    )?;
    // The host end went with the container: the namespace has loopback only.
    let links = ns.ip(&["-o", "link"]);
    ensure(links.lines().count() == 1 && links.contains(": lo:"), || {
        format!("left in the namespace: {links}")
    })
}

/// Runs the bundle's hook `which` for the container `id` whose process is
/// `pid`, with the state on stdin that a runtime gives; its output.
fn hook(bundle: &Path, which: &str, id: &str, pid: u32) -> Result<Output, String> {
    hook_in(bundle, which, id, pid, None)
}

/// [`hook`], in the network namespace `netns` of /run/netns if given (where
/// a runtime would have run it); bounded, killed if it hangs.
fn hook_in(bundle: &Path, which: &str, id: &str, pid: u32, netns: Option<&str>) -> Result<Output, String> {
    use std::io::Write;
    let program = bundle.join("sysjail/sysjail");
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/run/netns/{ns}")).arg(program);
            c
        }
        None => Command::new(program),
    };
    c.args(["hook", which])
        .arg(bundle.join("sysjail/init.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    let state = serde_json::json!({"ociVersion": "1.0.2", "id": id, "status": "created", "pid": pid, "bundle": bundle});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(state.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    if !support::wait_for(Duration::from_secs(30), || child.try_wait().ok().flatten().is_some()) {
        let _ = child.kill();
    }
    child.wait_with_output().map_err(|e| e.to_string())
}

/// Many containers of one host start and stop at once: each createRuntime
/// hook makes its cgroup under the shared sysjail-oci parent while other
/// containers' poststop hooks remove that parent when they find it empty.
/// No hook may fail for it (CI once saw ENOENT), and nothing is left.
fn hooks_of_many_containers_race_cleanly(ctx: &Ctx) -> TestResult {
    let (bundle, _) = export(ctx, &limited_jail(ctx), &[])?;
    let parent = Path::new("/sys/fs/cgroup/unified/sysjail-oci");
    let worker = |t: usize| -> TestResult {
        for i in 0..20 {
            let id = format!("{}-race-{t}-{i}", ctx.name);
            let mut sleeper = Command::new("sleep").arg("60").spawn().map_err(|e| e.to_string())?;
            let made = hook(&bundle, "create-runtime", &id, sleeper.id());
            let _ = sleeper.kill();
            let _ = sleeper.wait();
            let made = made?;
            ensure(made.status.success(), || {
                format!("createRuntime of {id}: {:?}\n{}", made.status, text(&made.stderr))
            })?;
            let gone = hook(&bundle, "poststop", &id, 0)?;
            ensure(gone.status.success(), || {
                format!("poststop of {id}: {:?}\n{}", gone.status, text(&gone.stderr))
            })?;
            let name = sysjail::oci::VethFile::host_name(bundle.to_str().unwrap(), &id);
            ensure(!parent.join(&name).exists(), || format!("{name}: its cgroup is left"))?;
        }
        Ok(())
    };
    // Another container's poststop, at its worst: it removes the parent
    // whenever it finds it empty, as often as it can.
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        let remover = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let _ = fs::remove_dir(parent);
            }
        });
        let workers: Vec<_> = (0..4).map(|t| s.spawn(move || worker(t))).collect();
        let result = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect::<Result<Vec<()>, String>>();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = remover.join();
        result
    });
    result.map(|_| ())
}

/// Two runtimes start the same bundle and id at once (two runtime roots):
/// their createRuntime hooks race for one name. One takes it, the other is
/// refused; the record names the container that took it, so the loser's
/// poststop removes nothing of the winner's, and the winner's removes all.
fn two_containers_of_one_name_claim_it_once(ctx: &Ctx) -> TestResult {
    let (bundle, _) = export(ctx, &limited_jail(ctx), &[])?;
    let parent = Path::new("/sys/fs/cgroup/unified/sysjail-oci");
    for round in 0..20 {
        let id = format!("{}-{round}", ctx.name);
        let name = sysjail::oci::VethFile::host_name(bundle.to_str().unwrap(), &id);
        let record = Path::new("/run/sysjail-oci").join(&name);
        let mut sleepers = Vec::new();
        for _ in 0..2 {
            sleepers.push(Command::new("sleep").arg("60").spawn().map_err(|e| e.to_string())?);
        }
        let pids: Vec<u32> = sleepers.iter().map(|c| c.id()).collect();
        let outs = std::thread::scope(|s| {
            let hooks: Vec<_> = pids
                .iter()
                .map(|&pid| {
                    let (bundle, id) = (&bundle, &id);
                    s.spawn(move || hook(bundle, "create-runtime", id, pid))
                })
                .collect();
            hooks
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a hook thread panicked".into())))
                .collect::<Result<Vec<Output>, String>>()
        });
        let result = (|| -> TestResult {
            let outs = outs?;
            let won: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
            ensure(won.len() == 1, || {
                format!(
                    "round {round}: {} hooks took {name}: {}",
                    won.len(),
                    outs.iter().map(|o| text(&o.stderr)).collect::<String>()
                )
            })?;
            let (winner, loser) = (won[0], 1 - won[0]);
            let held = fs::read_to_string(&record).unwrap_or_default();
            ensure(
                held.split_whitespace().next() == Some(&pids[winner].to_string()),
                || {
                    format!(
                        "round {round}: the record says {held:?}, the winner is {}",
                        pids[winner]
                    )
                },
            )?;
            let procs = fs::read_to_string(parent.join(&name).join("cgroup.procs")).unwrap_or_default();
            ensure(procs.trim() == pids[winner].to_string(), || {
                format!("round {round}: {name} holds {procs:?}")
            })?;
            // The loser's runtime cleans up after it: nothing of the winner's goes.
            let _ = sleepers[loser].kill();
            let _ = sleepers[loser].wait();
            let gone = hook(&bundle, "poststop", &id, 0)?;
            ensure(gone.status.success(), || {
                format!("round {round}: the loser's poststop: {}", text(&gone.stderr))
            })?;
            ensure(parent.join(&name).exists() && record.exists(), || {
                format!("round {round}: the loser's poststop removed the winner's cgroup or record")
            })
        })();
        for s in &mut sleepers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let gone = hook(&bundle, "poststop", &id, 0)?;
        result?;
        ensure(
            gone.status.success() && !parent.join(&name).exists() && !record.exists(),
            || format!("round {round}: after the winner's poststop: {}", text(&gone.stderr)),
        )?;
    }
    Ok(())
}
