//! The session boundary between the caller and the jail: what of the host a
//! jailed process can see of its init, and what shared kernel state it may
//! fill. Real jails, as root.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Ctx, Need, Runner, TestResult, ensure, on_a_terminal, quote, text};

/// What a jailed shell reports of its terminals: for each of 0-2 whether it
/// is a terminal and whether it belongs to the jail's own devpts, and init's
/// controlling terminal (field 7 of /proc/1/stat; 0: none).
const REPORT: &str = "for fd in 0 1 2; do if [ -t $fd ]; then \
    if [ \"$(stat -L -c %d /proc/$$/fd/$fd)\" = \"$(stat -c %d /dev/pts/ptmx)\" ]; then echo fd$fd=own-tty; else echo fd$fd=FOREIGN-TTY; fi; \
    else echo fd$fd=no-tty; fi; done; echo init-tty=$(cut -d' ' -f7 /proc/1/stat)";

/// Starts the jail of `file` in the background, idle for a minute.
fn running(ctx: &Ctx, file: &std::path::Path) -> TestResult {
    let out = ctx
        .sysjail(&["up", "-b"])
        .arg(file)
        .args(["--", "/bin/sleep", "60"])
        .output()
        .unwrap();
    ensure(out.status.success(), || text(&out.stderr))
}

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test(
        "dev_shm_is_bounded_and_settable",
        &[Root],
        dev_shm_is_bounded_and_settable,
    );
    r.test("init_shows_no_host_path", &[Root], init_shows_no_host_path);
    r.test(
        "no_launch_form_hands_over_the_callers_terminal",
        &[Root, Script],
        no_launch_form_hands_over_the_callers_terminal,
    );
    r.test_alone(
        "a_jail_that_exhausts_kernel_counters_starves_no_one",
        &[Root],
        a_jail_that_exhausts_kernel_counters_starves_no_one,
    );
    r.test("kernel_counters_are_settable", &[Root], kernel_counters_are_settable);
    r.test(
        "id_ranges_are_unique_across_state_directories",
        &[Root],
        id_ranges_are_unique_across_state_directories,
    );
    r.test(
        "no_form_hands_over_a_file_the_jail_could_overwrite",
        &[Root],
        no_form_hands_over_a_file_the_jail_could_overwrite,
    );
    r.test(
        "exec_never_hands_over_the_callers_terminal",
        &[Root, Script],
        exec_never_hands_over_the_callers_terminal,
    );
    r.run()
}

/// The size of the jail's /dev/shm, in bytes, as statfs(2) reports it inside.
fn shm_size(ctx: &Ctx, body: &str) -> Result<u64, String> {
    let file = ctx.jail(body);
    let out = ctx.up(&file, &["/usr/bin/stat", "-f", "-c", "%b %S", "/dev/shm"]);
    let s = text(&out.stdout);
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>());
    match (it.next(), it.next()) {
        (Some(Ok(blocks)), Some(Ok(size))) => Ok(blocks * size),
        _ => Err(format!("{:?}: {s}{}", out.status, text(&out.stderr))),
    }
}

fn dev_shm_is_bounded_and_settable(ctx: &Ctx) -> TestResult {
    // Without a size a tmpfs takes half of the host's memory.
    let default = shm_size(ctx, "[limits]\npids = 64\n")?;
    ensure(default == 64 << 20, || format!("default /dev/shm of {default} bytes"))?;
    let set = shm_size(ctx, "[limits]\npids = 64\nshm = \"8M\"\n")?;
    ensure(set == 8 << 20, || format!("limits.shm = 8M gave {set} bytes"))?;
    // And it holds: writing past it fails with ENOSPC.
    let file = ctx.jail("[limits]\npids = 64\nshm = \"1M\"\n");
    let out = ctx.up(
        &file,
        &[
            "/bin/sh",
            "-c",
            "head -c 2000000 /dev/zero > /dev/shm/big 2>/dev/null; stat -c %s /dev/shm/big",
        ],
    );
    let written: u64 = text(&out.stdout).trim().parse().unwrap_or(u64::MAX);
    ensure(written <= 1 << 20, || {
        format!("{written} bytes written to a 1M /dev/shm")
    })
}

fn init_shows_no_host_path(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("[limits]\npids = 64\n");
    let out = ctx.up(&file, &["/bin/sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]);
    let cmdline = text(&out.stdout);
    let host_paths = [
        support::bin(),
        &file.display().to_string(),
        &ctx.dir.display().to_string(),
    ];
    ensure(
        out.status.success()
            && cmdline.starts_with(&format!("sysjail-init {}", ctx.name))
            && host_paths.iter().all(|p| !cmdline.contains(p)),
        || format!("{:?}: /proc/1/cmdline is {cmdline:?}", out.status),
    )
}

fn no_launch_form_hands_over_the_callers_terminal(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("[limits]\npids = 64\n");
    let sj = format!("{} --state-dir {}", support::bin(), ctx.state.display());
    let forms = [
        format!("{sj} up {} -- /bin/sh -c {}", file.display(), quote(REPORT)),
        format!("{sj} up {} -- /bin/sh -c {} < /dev/null", file.display(), quote(REPORT)),
        format!("{sj} jail / {}-classic /bin/sh -c {}", ctx.name, quote(REPORT)),
    ];
    for form in &forms {
        let out = on_a_terminal(form);
        // Every terminal the command has is the jail's own; init has none.
        ensure(
            out.contains("fd1=own-tty") && !out.contains("FOREIGN") && out.contains("init-tty=0\n"),
            || format!("{form}:\n{out}"),
        )?;
    }
    Ok(())
}

fn exec_never_hands_over_the_callers_terminal(ctx: &Ctx) -> TestResult {
    let file = ctx.jail("[limits]\npids = 64\n");
    running(ctx, &file)?;
    // Init, a jail process too, keeps none of the caller's descriptors 0-2.
    let init = support::ls(ctx)
        .first()
        .and_then(|r| r["init_pid"].as_i64())
        .ok_or("no init pid in ls --json")?;
    for fd in 0..3 {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(format!("/proc/{init}/fd/{fd}")).map_err(|e| e.to_string())?;
        ensure(meta.rdev() == libc::makedev(1, 3), || {
            format!("init's fd {fd} is device {:#x}, not /dev/null", meta.rdev())
        })?;
    }
    let sj = format!("{} --state-dir {} exec", support::bin(), ctx.state.display());
    let name = &ctx.name;
    // With a terminal: the jail's own. Without one (-T), or with stdin
    // redirected: pipes where the caller has its terminal.
    for (form, want) in [
        (
            format!("{sj} {name} -- /bin/sh -c {}", quote(REPORT)),
            "fd0=own-tty\nfd1=own-tty\nfd2=own-tty\n",
        ),
        (
            format!("{sj} -T {name} -- /bin/sh -c {}", quote(REPORT)),
            "fd0=no-tty\nfd1=no-tty\nfd2=no-tty\n",
        ),
        (
            format!("{sj} {name} -- /bin/sh -c {} < /dev/null", quote(REPORT)),
            "fd0=no-tty\nfd1=no-tty\nfd2=no-tty\n",
        ),
    ] {
        let out = on_a_terminal(&form);
        ensure(out.starts_with(want) && out.contains("init-tty=0\n"), || {
            format!("{form}:\n{out}")
        })?;
    }
    // A process left behind keeps only a pipe: what it writes after exec
    // returned reaches no terminal, and it holds no terminal to read.
    let thief =
        "(sleep 1; for fd in 0 1 2; do [ -t $fd ] && echo STOLEN$fd > /dev/shm/stolen; done; echo late) & echo early";
    let out = on_a_terminal(&format!("{sj} -T {name} -- /bin/sh -c {}; sleep 2", quote(thief)));
    ensure(out.contains("early") && !out.contains("late"), || out.clone())?;
    let check = ctx
        .sysjail(&[
            "exec",
            name,
            "--",
            "/bin/sh",
            "-c",
            "cat /dev/shm/stolen 2>/dev/null; true",
        ])
        .output()
        .unwrap();
    ensure(text(&check.stdout).is_empty(), || text(&check.stdout))?;
    let _ = ctx.sysjail(&["down", name]).output();
    Ok(())
}

/// Host root takes one inotify instance and one message queue, and gives
/// them back: the errno of each attempt (0: it worked).
fn host_root_takes_counters() -> (i32, i32) {
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: inotify_init1(2); the descriptor is closed at once.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    let inotify = if fd < 0 { errno() } else { 0 };
    if fd >= 0 {
        // SAFETY: ours.
        unsafe { libc::close(fd) };
    }
    let name = std::ffi::CString::new(format!("/sysjail-test-{}", std::process::id())).unwrap();
    // SAFETY: an all-zero mq_attr, then the two fields mq_open reads.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 8;
    attr.mq_msgsize = 8192;
    // SAFETY: a valid name and attribute struct.
    let q = unsafe {
        libc::mq_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
            &attr,
        )
    };
    let mq = if q < 0 { errno() } else { 0 };
    if q >= 0 {
        // SAFETY: ours, and the name we made.
        unsafe {
            libc::mq_close(q);
            libc::mq_unlink(name.as_ptr());
        }
    }
    (inotify, mq)
}

fn a_jail_that_exhausts_kernel_counters_starves_no_one(ctx: &Ctx) -> TestResult {
    // One jail takes every inotify instance and message queue byte its user
    // may have, and holds them.
    let hog = ctx.jail_named(&format!("{}-hog", ctx.name), "[limits]\npids = 64\n");
    let out = ctx
        .sysjail(&["up", "-b"])
        .arg(&hog)
        .args(["--", support::bin(), "probe", "inotify-exhaust=0", "mq-exhaust=30"])
        .output()
        .unwrap();
    ensure(out.status.success(), || text(&out.stderr))?;
    let hog_name = format!("{}-hog", ctx.name);
    // Once it holds them, a process of its own gets none.
    let mut inside = (0, 0);
    let full = support::wait_for(Duration::from_secs(15), || {
        let check = |c: &str| {
            let out = ctx
                .sysjail(&["exec", &hog_name, "--", support::bin(), "probe", c])
                .output()
                .unwrap();
            support::Probe(serde_json::from_slice(&out.stdout).unwrap_or_default())
                .errno(c)
                .unwrap_or(0)
        };
        inside = (check("inotify-init"), check("mq-open"));
        inside.0 != 0 && inside.1 != 0
    });
    ensure(full, || {
        format!("the jail never ran out: inotify {}, mqueue {}", inside.0, inside.1)
    })?;
    // Host root is not charged for it, and neither is another jail.
    let host = host_root_takes_counters();
    let other = ctx.jail_named(&format!("{}-other", ctx.name), "[limits]\npids = 64\n");
    let p = ctx.probe(&other, &["inotify-init", "mq-open"]);
    let _ = ctx.sysjail(&["down", &hog_name]).output();
    ensure(host == (0, 0), || {
        format!(
            "host root was starved: inotify errno {}, mqueue errno {}",
            host.0, host.1
        )
    })?;
    p?.expect(&[("inotify-init", 0), ("mq-open", 0)])
}

fn kernel_counters_are_settable(ctx: &Ctx) -> TestResult {
    let bindir = support::bindir();
    let file = ctx.jail(&format!(
        "[limits]\npids = 64\ninotify-instances = 5\nmsgqueue = \"100K\"\n[[mount]]\nsource = \"{bindir}\"\ntarget = \"{bindir}\"\n"
    ));
    // Five instances; message queues of 64 KiB each within 100 KiB: one.
    let p = ctx.probe(&file, &["inotify-exhaust=0", "mq-exhaust=0"])?;
    let taken = |c: &str| p.0["checks"][c]["ret"].as_i64().unwrap_or(-1);
    ensure(taken("inotify-exhaust=0") == 5 && taken("mq-exhaust=0") == 1, || {
        p.0["checks"].to_string()
    })?;
    p.expect(&[("inotify-exhaust=0", libc::EMFILE), ("mq-exhaust=0", libc::EMFILE)])?;
    // The table shows what the launch sets.
    let out = ctx.sysjail(&["policy"]).arg(&file).output().unwrap();
    let table = text(&out.stdout);
    ensure(
        table.contains("user.max_inotify_instances  5") && table.contains("RLIMIT_MSGQUEUE 102400"),
        || table.clone(),
    )
}

fn no_form_hands_over_a_file_the_jail_could_overwrite(ctx: &Ctx) -> TestResult {
    use std::process::Stdio;
    // The administrator appends a jail's output to a log of theirs: the jail
    // gets a pipe, and truncating "its stdout" through /proc reaches nothing.
    let file = ctx.jail("[limits]\npids = 64\n");
    running(ctx, &file)?;
    // Opening a pipe through /proc may be refused or may work: either way
    // the log is not touched.
    let hostile = "stat -L -c %F /proc/self/fd/1 /proc/self/fd/2; (: > /proc/self/fd/1) 2>/dev/null; (: > /proc/self/fd/2) 2>/dev/null; echo jail";
    let once = ctx.jail_named(&format!("{}-once", ctx.name), "[limits]\npids = 64\n");
    let forms: [Vec<&str>; 3] = [
        vec!["up", once.to_str().unwrap(), "--", "/bin/sh", "-c", hostile],
        vec!["exec", &ctx.name, "--", "/bin/sh", "-c", hostile],
        vec!["exec", "-T", &ctx.name, "--", "/bin/sh", "-c", hostile],
    ];
    for (i, args) in forms.iter().enumerate() {
        let log = ctx.dir.join(format!("admin-{i}.log"));
        std::fs::write(&log, "precious\n").unwrap();
        let append = || std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let mut c = ctx.sysjail(args);
        c.stdout(Stdio::from(append())).stderr(Stdio::from(append()));
        let status = c.status().unwrap();
        let kept = std::fs::read_to_string(&log).unwrap();
        ensure(status.success() && kept == "precious\nfifo\nfifo\njail\n", || {
            format!("{args:?}: {status:?}, the log holds {kept:?}")
        })?;
    }
    let _ = ctx.sysjail(&["down", &ctx.name]).output();
    Ok(())
}

fn id_ranges_are_unique_across_state_directories(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    // Two registries each number their first jail 1; the host ids of the
    // two jails must still differ, or they would share the kernel's per-user
    // counters and each other's files.
    let other_state = ctx.dir.join("state-other");
    std::fs::create_dir_all(&other_state).unwrap();
    std::fs::set_permissions(&other_state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let a = ctx.jail_named(&format!("{}-a", ctx.name), "[limits]\npids = 64\n");
    let b = ctx.jail_named(&format!("{}-b", ctx.name), "[limits]\npids = 64\n");
    running(ctx, &a)?;
    let mut other = Command::new(support::bin());
    other
        .arg("--state-dir")
        .arg(&other_state)
        .args(["up", "-b"])
        .arg(&b)
        .args(["--", "/bin/sleep", "60"]);
    let out = other.output().unwrap();
    let base = |state: &std::path::Path| -> Option<(i64, i64)> {
        let out = Command::new(support::bin())
            .arg("--state-dir")
            .arg(state)
            .args(["ls", "--json"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some((v[0]["id"].as_i64()?, v[0]["id_base"].as_i64()?))
    };
    let (first, second) = (base(&ctx.state), base(&other_state));
    let _ = ctx.sysjail(&["down", &format!("{}-a", ctx.name)]).output();
    let _ = Command::new(support::bin())
        .arg("--state-dir")
        .arg(&other_state)
        .args(["down", &format!("{}-b", ctx.name)])
        .output();
    ensure(out.status.success(), || text(&out.stderr))?;
    ensure(
        matches!((first, second), (Some((1, x)), Some((1, y))) if x != y),
        || format!("jid and host id base of each: {first:?} {second:?}"),
    )
}
