//! The supervisor's setup steps, on the host: cgroups, id maps, id-mapped mounts.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::hostpath::{self, HostPathError};
use super::raw::{self, attr};
use crate::model::AbsPath;
use crate::plan::{DiskIds, DiskIdsError};

fn ctx(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {}", raw::errno_name(&e)))
}

/// Creates a jail's cgroup directory and writes its limits. Files prefixed with
/// `?` are written only if the kernel offers them (memory.swap.max without swap
/// accounting, say).
pub fn create_cgroup(path: &Path, limits: &[(String, String)]) -> io::Result<()> {
    if path.exists() {
        // Left by a supervisor that died before it could clean up; empty by now.
        let _ = fs::remove_dir(path);
    }
    let parent = path.parent().expect("sysjail/<name> has a parent");
    // The parent is shared: another jail's teardown removes it when it finds
    // it empty, which may fall between our mkdir of the parent and our own.
    // Make it again then: each round trip leaves a window of microseconds,
    // so even many teardowns at once lose to a retry long before the deadline.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        fs::create_dir_all(parent).map_err(|e| ctx(e, format!("mkdir {}", parent.display())))?;
        enable_controllers(parent, limits);
        match fs::create_dir(path) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound && Instant::now() < deadline => {}
            Err(e) => return Err(ctx(e, format!("mkdir {}", path.display()))),
        }
    }
    for (file, value) in limits {
        let (file, optional) = match file.strip_prefix('?') {
            Some(f) => (f, true),
            None => (file.as_str(), false),
        };
        let target = path.join(file);
        if optional && !target.exists() {
            continue;
        }
        fs::write(&target, value).map_err(|e| ctx(e, format!("write {} to {}", value, target.display())))?;
    }
    Ok(())
}

/// On the unified hierarchy a controller is usable in a cgroup only when every
/// ancestor enables it for its children.
fn enable_controllers(parent: &Path, limits: &[(String, String)]) {
    if !parent.join("cgroup.subtree_control").exists() {
        return;
    }
    let mut wanted: Vec<&str> = limits
        .iter()
        .filter_map(|(f, _)| f.trim_start_matches('?').split('.').next())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let Some(top) = parent.parent() else { return };
    for dir in [top, parent] {
        for c in &wanted {
            // Already enabled, or not offered: the limit write then says which.
            let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
}

/// Moves a process into a cgroup.
pub fn join_cgroup(path: &Path, pid: i32) -> io::Result<()> {
    fs::write(path.join("cgroup.procs"), pid.to_string()).map_err(|e| ctx(e, format!("join {}", path.display())))
}

/// Kills every process left in a cgroup (cgroup.kill, Linux 5.14; on v1
/// hierarchies and older kernels, each listed process).
pub fn kill_cgroup(path: &Path) {
    if fs::write(path.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let procs = fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill(2) with integer arguments.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Removes a jail's cgroup once it is empty; waits briefly for the kernel to
/// release exiting tasks.
pub fn remove_cgroup(path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    // Tasks killed a moment ago are released within microseconds, rarely
    // more: start the backoff small (a fixed 10 ms per retry made teardown
    // of 200 jails take seconds) and let it grow for a stuck one.
    let mut backoff = Duration::from_micros(50);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => {
                // The shared parent goes too once the last jail is gone; another
                // jail's cgroup keeps it (ENOTEMPTY or EBUSY).
                if let Some(parent) = path.parent() {
                    let _ = fs::remove_dir(parent);
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(10));
            }
            Err(e) => return Err(ctx(e, format!("rmdir {}", path.display()))),
        }
    }
}

/// Waits, at most `wait`, until process `pid` that started at `start` (see
/// [`crate::state::start_time`]) has exited; true once it has. Its pidfd
/// turns readable at exit, zombie or reaped, so no polling with sleeps.
pub fn wait_exit(pid: i32, start: u64, wait: Duration) -> bool {
    let Ok(pidfd) = raw::pidfd_open(pid) else {
        // ESRCH: gone, and reaped.
        return true;
    };
    // Opened after the check of the start time, the pidfd could be of a
    // later process with the same pid: check again now that it is held.
    if crate::state::start_time(pid) != Some(start) {
        return true;
    }
    let timeout = nix::poll::PollTimeout::try_from(wait).unwrap_or(nix::poll::PollTimeout::MAX);
    let deadline = Instant::now() + wait;
    loop {
        let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(n) if n > 0 => return true,
            Err(nix::errno::Errno::EINTR) if Instant::now() < deadline => continue,
            _ => return false,
        }
    }
}

/// Writes a process's id maps.
pub fn write_id_maps(
    pid: i32,
    uid_map: &[(u32, u32, u32)],
    gid_map: &[(u32, u32, u32)],
    deny_setgroups: bool,
) -> io::Result<()> {
    let lines = |m: &[(u32, u32, u32)]| m.iter().map(|(a, b, c)| format!("{a} {b} {c}\n")).collect::<String>();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    fs::write(proc.join("uid_map"), lines(uid_map)).map_err(|e| ctx(e, "write uid_map"))?;
    if deny_setgroups {
        fs::write(proc.join("setgroups"), "deny").map_err(|e| ctx(e, "write setgroups"))?;
    }
    fs::write(proc.join("gid_map"), lines(gid_map)).map_err(|e| ctx(e, "write gid_map"))
}

/// Why a host tree could not be prepared for the jail.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The path broke the host-path rule, or is missing.
    #[error(transparent)]
    Path(#[from] HostPathError),
    /// Its owner cannot be mapped safely.
    #[error("{path}: {error}")]
    Ids {
        /// The host path.
        path: AbsPath,
        /// Why.
        error: DiskIdsError,
    },
    /// A writable tree every host user can reach.
    #[error(
        "{path}: every host user can reach this writable tree; keep it below a directory of root's that others cannot search (mode 0700)"
    )]
    Reachable {
        /// The tree.
        path: AbsPath,
    },
    /// A system call failed.
    #[error("{what}: {}", raw::errno_name(.error))]
    Io {
        /// What was being done.
        what: String,
        /// What the kernel said.
        error: io::Error,
    },
}

/// A detached copy of `source`, opened under the host-path rule (see
/// [`hostpath`]); with `idmap`, id-mapped so that the owner of its root
/// directory is jail root (the jail's ids start at `host_base` on the host).
pub fn prepare_mount(
    source: &AbsPath,
    recursive: bool,
    idmap: Option<DiskIds>,
    writable: bool,
    (host_base, count): (u32, u32),
) -> Result<OwnedFd, PrepareError> {
    let io = |what: String| move |error| PrepareError::Io { what, error };
    let found = hostpath::open(source.as_path())?;
    let tree =
        raw::open_tree(Some(found.fd.as_fd()), Path::new(""), recursive).map_err(io(format!("open_tree {source}")))?;
    let Some(how) = idmap else {
        return Ok(tree);
    };
    let st = nix::sys::stat::fstat(found.fd.as_fd()).map_err(|e| io(format!("fstat {source}"))(e.into()))?;
    let (uid_map, gid_map) = how
        .maps(st.st_uid, st.st_gid, writable, host_base, count)
        .map_err(|error| PrepareError::Ids {
            path: source.clone(),
            error,
        })?;
    if how == DiskIds::Tree && writable && hostpath::guard_above(source.as_path())?.is_none() {
        return Err(PrepareError::Reachable { path: source.clone() });
    }
    let userns = userns_with(&uid_map, &gid_map).map_err(io("a user namespace for the id mapping".into()))?;
    raw::mount_setattr(tree.as_fd(), attr::IDMAP, 0, Some(userns.as_fd()), recursive).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EINVAL) => format!(
                "the file system of {source} cannot be id-mapped; run with --no-idmap to mount it as it is \
                 (its files then keep their host owners inside the jail)"
            ),
            _ => format!("id-mapping {source}"),
        };
        PrepareError::Io { what: why, error: e }
    })?;
    Ok(tree)
}

/// A user namespace with these maps, held by its descriptor alone: a child
/// is made in it, mapped, and killed once the namespace is open.
///
/// The caller must be single-threaded (the supervisor is, while it sets a
/// jail up).
pub fn userns_with(uid_map: &[(u32, u32, u32)], gid_map: &[(u32, u32, u32)]) -> io::Result<OwnedFd> {
    // SAFETY: the supervisor is single-threaded here; the child only waits
    // in pause(2) until it is killed.
    match unsafe { raw::clone3(libc::CLONE_NEWUSER as u64, None) }? {
        raw::Forked::Child => loop {
            // SAFETY: pause(2) has no arguments; the parent kills us.
            unsafe { libc::pause() };
        },
        raw::Forked::Parent { pid, pidfd } => {
            let ns = write_id_maps(pid, uid_map, gid_map, false)
                .and_then(|()| fs::File::open(format!("/proc/{pid}/ns/user")).map(OwnedFd::from));
            let _ = raw::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            ns
        }
    }
}
