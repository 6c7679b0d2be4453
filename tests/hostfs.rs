//! The host's file system against a hostile jail: links planted where a
//! jail or a user can write never steer a mount, files a jail writes give no
//! host user a privilege, a jail's mounts are private, and `up` reports what
//! is wrong with the host's trees as diagnostics. Real jails, as root.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{Ctx, Need, Runner, TestResult, ensure, run_bounded, text};

const LIMITS: &str = "[limits]\npids = 64\n";

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test(
        "planted_links_never_steer_a_mount",
        &[Root],
        planted_links_never_steer_a_mount,
    );
    r.test(
        "links_of_root_owned_directories_still_work",
        &[Root],
        links_of_root_owned_directories_still_work,
    );
    r.test(
        "a_writable_tree_owned_by_root_is_refused",
        &[Root],
        a_writable_tree_owned_by_root_is_refused,
    );
    r.test(
        "files_a_jail_writes_in_its_tree_give_no_privilege",
        &[Root, I386],
        files_a_jail_writes_in_its_tree_give_no_privilege,
    );
    r.test(
        "files_a_jail_writes_in_a_bound_directory_give_no_privilege",
        &[Root],
        files_a_jail_writes_in_a_bound_directory_give_no_privilege,
    );
    r.test(
        "mounts_are_private_on_a_shared_host",
        &[Root],
        mounts_are_private_on_a_shared_host,
    );
    r.test(
        "up_reports_host_problems_as_diagnostics",
        &[Root],
        up_reports_host_problems_as_diagnostics,
    );
    r.run()
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A directory root keeps to itself, with a file only root may read.
fn secret(ctx: &Ctx) -> std::path::PathBuf {
    let secret = ctx.dir.join("secret");
    fs::create_dir_all(&secret).unwrap();
    fs::write(secret.join("s"), "host secret\n").unwrap();
    chmod(&secret, 0o700);
    secret
}

fn planted_links_never_steer_a_mount(ctx: &Ctx) -> TestResult {
    let secret = secret(ctx);
    // A directory a jail (or any user) can write: its links are theirs.
    let open = ctx.dir.join("open");
    fs::create_dir_all(&open).unwrap();
    chmod(&open, 0o1777);
    // One owned by an unprivileged user, as a jail's tree is.
    let user = ctx.dir.join("user");
    fs::create_dir_all(&user).unwrap();
    std::os::unix::fs::chown(&user, Some(1234), Some(1234)).unwrap();
    symlink(&secret, open.join("last")).unwrap();
    symlink(&ctx.dir, open.join("mid")).unwrap();
    symlink("/nonexistent-sysjail-target", open.join("dangling")).unwrap();
    symlink(&secret, user.join("last")).unwrap();
    let cases = [
        ("the last component", open.join("last")),
        ("an intermediate component", open.join("mid/secret")),
        ("a dangling link", open.join("dangling")),
        ("a user's directory", user.join("last")),
    ];
    for (what, source) in &cases {
        for key in ["bind", "path"] {
            let body = match key {
                "bind" => format!(
                    "{LIMITS}[[mount]]\nsource = \"{}\"\ntarget = \"/mnt\"\nread-only = false\n",
                    source.display()
                ),
                _ => format!("path = \"{}\"\nread-only = true\n{LIMITS}", source.display()),
            };
            let file = ctx.jail(&body);
            let out = ctx.up(&file, &["/bin/cat", "/mnt/s", "/s"]);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            ensure(!out.status.success() && !stdout.contains("host secret"), || {
                format!("{key} through {what} was followed: {stdout}{stderr}")
            })?;
            ensure(
                stderr.contains("host::untrusted-link") && stderr.contains("is a symbolic link"),
                || format!("{key} through {what}: {stderr}"),
            )?;
        }
    }
    // `check --host` says the same, offline of any launch.
    let file = ctx.jail(&format!(
        "{LIMITS}[[mount]]\nsource = \"{}\"\ntarget = \"/mnt\"\n",
        open.join("last").display()
    ));
    let out = ctx.sysjail(&["check", "--host"]).arg(&file).output().unwrap();
    ensure(
        out.status.code() == Some(1) && text(&out.stderr).contains("host::untrusted-link"),
        || format!("{:?} {}", out.status, text(&out.stderr)),
    )
}

fn links_of_root_owned_directories_still_work(ctx: &Ctx) -> TestResult {
    // The administrator's links (merged /usr, say) are followed.
    let public = ctx.dir.join("public");
    fs::create_dir_all(&public).unwrap();
    fs::write(public.join("s"), "public data\n").unwrap();
    let admin = ctx.dir.join("admin");
    fs::create_dir_all(&admin).unwrap();
    chmod(&admin, 0o755);
    symlink(&public, admin.join("link")).unwrap();
    let file = ctx.jail(&format!(
        "{LIMITS}[[mount]]\nsource = \"{}\"\ntarget = \"/mnt\"\n",
        admin.join("link").display()
    ));
    let out = ctx.up(&file, &["/bin/cat", "/mnt/s"]);
    ensure(out.status.success() && text(&out.stdout) == "public data\n", || {
        format!("{:?} {}{}", out.status, text(&out.stdout), text(&out.stderr))
    })
}

/// A small tree: /usr and the probe's directory from the host, its own /etc.
fn tree(ctx: &Ctx) -> std::path::PathBuf {
    let root = support::private_dir(ctx).join("tree");
    for d in ["etc", "usr", "data"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for link in ["bin", "lib", "lib64", "sbin"] {
        symlink(format!("usr/{link}"), root.join(link)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("data/plain"), "x").unwrap();
    root
}

fn tree_jail(ctx: &Ctx, root: &Path) -> std::path::PathBuf {
    let bindir = support::bindir();
    ctx.jail(&format!(
        "path = \"{}\"\n{LIMITS}[[mount]]\nsource = \"/usr\"\ntarget = \"/usr\"\n[[mount]]\nsource = \"{bindir}\"\ntarget = \"{bindir}\"\n",
        root.display()
    ))
}

fn a_writable_tree_owned_by_root_is_refused(ctx: &Ctx) -> TestResult {
    let root = tree(ctx);
    let file = tree_jail(ctx, &root);
    let out = ctx.up(&file, &["/bin/true"]);
    let stderr = text(&out.stderr);
    ensure(!out.status.success() && stderr.contains("host::root-owned"), || {
        format!("{:?}: {stderr}", out.status)
    })?;
    // Shifted, but where every host user can reach it: refused too, as a
    // set-id file it holds (a distribution's su) would serve them.
    let open = ctx.dir.join("open-tree");
    fs::rename(&root, &open).unwrap();
    support::shift_tree(&open);
    let file = tree_jail(ctx, &open);
    let out = ctx.up(&file, &["/bin/true"]);
    let stderr = text(&out.stderr);
    ensure(!out.status.success() && stderr.contains("host::reachable-tree"), || {
        format!("{:?}: {stderr}", out.status)
    })
}

/// Runs `path` on the host as nobody and returns what `id` printed.
fn run_as_nobody(path: &Path) -> String {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(path)
        .output()
        .unwrap();
    text(&out.stdout) + &text(&out.stderr)
}

fn no_set_id(path: &Path) -> TestResult {
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    ensure(meta.mode() & 0o6000 == 0 && meta.uid() != 0, || {
        format!("{}: mode {:o}, owner {}", path.display(), meta.mode(), meta.uid())
    })
}

fn files_a_jail_writes_in_its_tree_give_no_privilege(ctx: &Ctx) -> TestResult {
    let root = tree(ctx);
    support::shift_tree(&root);
    let file = tree_jail(ctx, &root);
    // A hostile jail root: a copy of id(1), made set-user-id; a file capability.
    let out = ctx.up(
        &file,
        &[
            "/bin/sh",
            "-c",
            "cp /usr/bin/id /data/id; chmod 4755 /data/id; chmod 2755 /data/id; echo made > /data/made; chmod 600 /data/made && echo plain-chmod",
        ],
    );
    ensure(text(&out.stdout).contains("plain-chmod"), || {
        format!("{}{}", text(&out.stdout), text(&out.stderr))
    })?;
    let p = ctx.probe(
        &file,
        &[
            "chmod-setuid=/data/id",
            "create-setuid=/data/created",
            "setcap=/data/id",
            "openat2",
            "i386-chmod-setuid=/data/id",
            "i386-create-setuid=/data/created32",
            "write-file=/data/allowed",
        ],
    )?;
    p.expect(&[
        ("chmod-setuid=/data/id", libc::EPERM),
        ("create-setuid=/data/created", libc::EPERM),
        ("setcap=/data/id", libc::EPERM),
        ("openat2", libc::ENOSYS),
        ("i386-chmod-setuid=/data/id", libc::EPERM),
        ("i386-create-setuid=/data/created32", libc::EPERM),
        ("write-file=/data/allowed", 0),
    ])?;
    // On the host: jail root's files are the tree's range, never root's, and
    // none is set-id. Run by an unprivileged host user, the copy is no one.
    let id = root.join("data/id");
    no_set_id(&id)?;
    ensure(fs::metadata(&id).unwrap().uid() == support::TREE_IDS, || {
        format!("owner {}", fs::metadata(&id).unwrap().uid())
    })?;
    ensure(xattr_absent(&id, "security.capability"), || {
        "a file capability was written".into()
    })?;
    let who = run_as_nobody(&id);
    ensure(who.starts_with("uid=65534") && !who.contains("euid="), || who)
}

fn xattr_absent(path: &Path, name: &str) -> bool {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings; a null buffer of size 0 only asks the size.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENODATA)
}

fn files_a_jail_writes_in_a_bound_directory_give_no_privilege(ctx: &Ctx) -> TestResult {
    // A user's project, bound writable and id-mapped (the build sandbox).
    let project = ctx.dir.join("project");
    fs::create_dir_all(&project).unwrap();
    std::os::unix::fs::chown(&project, Some(1234), Some(1234)).unwrap();
    let bindir = support::bindir();
    let file = ctx.jail(&format!(
        "{LIMITS}[[mount]]\nsource = \"{}\"\ntarget = \"/mnt\"\nread-only = false\nidmap = true\n[[mount]]\nsource = \"{bindir}\"\ntarget = \"{bindir}\"\n",
        project.display()
    ));
    let out = ctx.up(
        &file,
        &[
            "/bin/sh",
            "-c",
            "cp /usr/bin/id /mnt/id; chmod 4755 /mnt/id; echo built > /mnt/out; stat -c %u /mnt/out",
        ],
    );
    // Jail root is the directory's owner: inside it owns what it made.
    ensure(out.status.success() && text(&out.stdout) == "0\n", || {
        format!("{:?} {}{}", out.status, text(&out.stdout), text(&out.stderr))
    })?;
    let p = ctx.probe(&file, &["chmod-setuid=/mnt/id", "create-setuid=/mnt/c"])?;
    p.expect(&[
        ("chmod-setuid=/mnt/id", libc::EPERM),
        ("create-setuid=/mnt/c", libc::EPERM),
    ])?;
    for name in ["id", "out"] {
        let meta = fs::metadata(project.join(name)).unwrap();
        ensure(meta.uid() == 1234 && meta.gid() == 1234, || {
            format!(
                "{name} is {}:{} on the host, not the directory's owner",
                meta.uid(),
                meta.gid()
            )
        })?;
    }
    no_set_id(&project.join("id"))?;
    let who = run_as_nobody(&project.join("id"));
    ensure(who.starts_with("uid=65534") && !who.contains("euid="), || who)?;
    // A root-owned directory bound the same way is refused.
    let rooted = ctx.dir.join("rooted");
    fs::create_dir_all(&rooted).unwrap();
    let file = ctx.jail(&format!(
        "{LIMITS}[[mount]]\nsource = \"{}\"\ntarget = \"/mnt\"\nread-only = false\nidmap = true\n",
        rooted.display()
    ));
    let out = ctx.up(&file, &["/bin/true"]);
    ensure(
        !out.status.success() && text(&out.stderr).contains("host::root-owned"),
        || text(&out.stderr),
    )
}

fn mounts_are_private_on_a_shared_host(ctx: &Ctx) -> TestResult {
    // A host whose mounts are shared (systemd's default), in a mount
    // namespace of the test's own: a file system the host mounts under a
    // bind source after the jail started must not appear inside, and one
    // mounted before stays read-only under a read-only bind.
    let src = ctx.dir.join("src");
    fs::create_dir_all(src.join("early")).unwrap();
    fs::create_dir_all(src.join("late")).unwrap();
    let file = ctx.jail(&format!(
        "{LIMITS}[[mount]]\nsource = \"{}\"\ntarget = \"/mnt\"\nrecursive = true\n",
        src.display()
    ));
    let sj = format!("{} --state-dir {}", support::bin(), ctx.state.display());
    let script = format!(
        "set -e
mount --bind {src} {src}
mount --make-shared {src}
mount -t tmpfs -o size=1m early {src}/early
{sj} up -b {file} -- /bin/sleep 30
mount -t tmpfs -o size=1m late {src}/late
touch {src}/late/arrived
{sj} exec {name} -- /bin/sh -c 'if test -e /mnt/late/arrived; then echo leaked; else echo private; fi; if touch /mnt/early/x 2>/dev/null; then echo writable; else echo read-only; fi'
{sj} down {name}
",
        src = src.display(),
        file = file.display(),
        name = ctx.name,
    );
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "shared", "/bin/sh", "-c", &script]);
    let out = run_bounded(c, Duration::from_secs(60));
    let stdout = text(&out.stdout);
    ensure(out.status.success() && stdout == "private\nread-only\n", || {
        format!("{:?}: {stdout}{}", out.status, text(&out.stderr))
    })
}

fn up_reports_host_problems_as_diagnostics(ctx: &Ctx) -> TestResult {
    let missing = ctx.dir.join("no-such-tree");
    let a_file = ctx.dir.join("a-file");
    fs::write(&a_file, "").unwrap();
    for (path, says) in [(&missing, "host::path-missing"), (&a_file, "is not a directory")] {
        let file = ctx.jail(&format!("path = \"{}\"\n{LIMITS}", path.display()));
        let out = ctx.up(&file, &["/bin/true"]);
        let stderr = text(&out.stderr);
        // The definition's line and column, not a system call's errno.
        let at = format!("{}:3:8", file.display());
        ensure(
            !out.status.success()
                && stderr.contains(says)
                && stderr.contains(&at)
                && !stderr.contains("open_tree")
                && !stderr.contains("move_mount"),
            || format!("{}: {stderr}", path.display()),
        )?;
    }
    // A failure only the executor meets still names its step and key.
    let file = ctx.jail(&format!(
        "{LIMITS}[[mount]]\nsource = \"{}\"\ntarget = \"/no-such-mount-point\"\n",
        ctx.dir.display()
    ));
    let out = ctx.up(&file, &["/bin/true"]);
    let stderr = text(&out.stderr);
    ensure(
        !out.status.success() && stderr.contains("step ") && stderr.contains("the definition's mount[0]"),
        || stderr.clone(),
    )
}
