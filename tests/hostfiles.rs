//! The host files a root supervisor opens on behalf of a jail or a user: the
//! state directory with its records, lock and control sockets, and the logs.
//! Whatever a jail or another local user can write there is hostile: links
//! are never followed, and a directory that is not the caller's own is
//! refused. They need root (to play the other users) and run in CI.

mod support;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Ctx, Need, Runner, TestResult, ensure, ls, run_bounded, text};

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

use std::os::unix::fs::MetadataExt;

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
        name: name.into(),
        hostname: name.into(),
        path: "/".into(),
        mode: "private".into(),
        ipv4: vec![],
        ipv6: vec![],
        allow: vec![],
        supervisor_pid: me,
        supervisor_start: sysjail::state::start_time(me).unwrap(),
        init_pid: None,
        started: sysjail::state::now(),
        definition: None,
        digest: "0".into(),
        id_base: 0,
        cgroups: vec![],
        control: control.to_path_buf(),
        state: "running".into(),
        limits: sysjail::state::Limits::default(),
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
        let out = run_bounded(ctx.sysjail(args), Duration::from_secs(30));
        ensure(!out.status.success(), || format!("{args:?} succeeded"))?;
        ensure(accept(listener.as_raw_fd()).is_err(), || {
            format!("{args:?} connected through the link at {}", sock.display())
        })?;
    }
    Ok(())
}
