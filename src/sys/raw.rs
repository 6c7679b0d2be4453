//! Thin, typed wrappers of the system calls libc only names by number.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Converts a path to a C string; paths with NUL never get here (the format
/// rejects them), but a host path could, so it is an error, not a panic.
pub fn cstr(path: impl AsRef<Path>) -> io::Result<CString> {
    CString::new(path.as_ref().as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(ret)?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `struct mount_attr`.
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// MOUNT_ATTR_* bits.
pub mod attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// Ignore set-user-id bits.
    pub const NOSUID: u64 = 0x2;
    /// No device files.
    pub const NODEV: u64 = 0x4;
    /// No execution.
    pub const NOEXEC: u64 = 0x8;
    /// Id-mapped through a user namespace.
    pub const IDMAP: u64 = 0x0010_0000;
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path`,
/// made private. A copy of a mount in a shared peer group (the normal case on
/// systemd hosts, where / is shared) joins that group: what the host mounts
/// later under the source would appear in the jail too, and be writable
/// through a read-only bind. A private copy neither receives nor sends.
pub fn open_tree(dirfd: Option<BorrowedFd<'_>>, path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let tree = open_tree_shared(dirfd, path, recursive)?;
    set_propagation(tree.as_fd(), libc::MS_PRIVATE, recursive)?;
    Ok(tree)
}

/// mount_setattr(2)'s propagation change (MS_PRIVATE, MS_SLAVE, ...).
pub fn set_propagation(fd: BorrowedFd<'_>, propagation: libc::c_ulong, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        propagation,
        ..MountAttr::default()
    };
    setattr(fd, &attr, recursive)
}

fn open_tree_shared(dirfd: Option<BorrowedFd<'_>>, path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
    let dirfd = dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    // SAFETY: p is a valid NUL-terminated string for the duration of the call.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, p.as_ptr(), flags) })
}

/// mount_setattr(2) on the mount `fd` refers to.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    set: u64,
    clear: u64,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    setattr(fd, &attr, recursive)
}

fn setattr(fd: BorrowedFd<'_>, attr: &MountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: the empty path and the attr struct outlive the call; the size
    // passed is the struct's.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// move_mount(2) of a detached mount onto the directory or file `target` refers to.
pub fn move_mount(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: empty C strings, valid descriptors.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// A new file system instance, configured and mounted detached
/// (fsopen + fsconfig + fsmount).
pub fn fs_mount(fstype: &str, options: &[(&str, String)], attrs: u64) -> io::Result<OwnedFd> {
    let name = CString::new(fstype).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: name is a valid C string.
    let fs = owned(unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) })?;
    for (key, value) in options {
        let k = CString::new(*key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let v = CString::new(value.as_str()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: both strings are valid for the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        })?;
    }
    // SAFETY: null key and value are what FSCONFIG_CMD_CREATE takes.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: plain integer arguments.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// `struct open_how`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// RESOLVE_* bits.
pub mod resolve {
    /// No magic links (/proc/*/fd and the like).
    pub const NO_MAGICLINKS: u64 = 0x02;
    /// No symbolic links at all.
    pub const NO_SYMLINKS: u64 = 0x04;
    /// Fail rather than leave `dirfd`'s tree (by `..` or an absolute path).
    pub const BENEATH: u64 = 0x08;
    /// Resolve as if `dirfd` were the root: `..` and absolute links stay inside.
    pub const IN_ROOT: u64 = 0x10;
}

/// openat2(2).
pub fn openat2(dirfd: BorrowedFd<'_>, path: &Path, flags: i32, mode: u32, resolve: u64) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    // SAFETY: p and how are valid for the call; the size is how's.
    owned(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            p.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

/// pivot_root(2).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let (n, o) = (cstr(new_root)?, cstr(put_old)?);
    // SAFETY: both strings are valid for the call.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) }).map(drop)
}

/// CLONE_INTO_CGROUP, a 64-bit flag of clone3 only.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` (Linux 5.7 layout, with cgroup).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of a fork-like clone3 this is.
pub enum Forked {
    /// The new process.
    Child,
    /// The caller, with the child's pid and pidfd.
    Parent {
        /// Pid in the caller's namespace.
        pid: libc::pid_t,
        /// A pidfd of the child.
        pidfd: OwnedFd,
    },
}

/// clone3(2) without a new stack: like fork(2), with namespace flags and a pidfd.
///
/// # Safety
///
/// As for fork(2): the caller must be single-threaded, and the child must only
/// do what is safe after a fork before it execs or exits.
/// With `cgroup`, the child starts in that cgroup directory (CLONE_INTO_CGROUP,
/// Linux 5.7, unified hierarchy only): no migration, nothing escapes accounting.
pub unsafe fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    // SAFETY: the caller upholds clone3's contract.
    unsafe { clone3_signal(flags, cgroup, libc::SIGCHLD) }
}

/// [`clone3`] for a helper child that ends without a signal to its parent:
/// with no exit signal, only a wait with `__WALL` (or on its pidfd) reaps it,
/// so a `waitpid(-1)` elsewhere cannot take its status.
///
/// # Safety
///
/// The caller may be multithreaded; then the child must make only raw system
/// calls (no allocation, no lock, no libc wrapper that keeps state) until it
/// exits with `_exit`.
pub unsafe fn clone3_helper(cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    // SAFETY: the caller upholds the contract above.
    unsafe { clone3_signal(0, cgroup, 0) }
}

unsafe fn clone3_signal(flags: u64, cgroup: Option<BorrowedFd<'_>>, exit_signal: i32) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let into = cgroup.map_or(0, |_| CLONE_INTO_CGROUP);
    let args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64 | into,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: exit_signal as u64,
        cgroup: cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // SAFETY: args outlives the call and has the size passed; without a stack
    // the child continues on a copy of ours, as after fork. The caller upholds
    // the single-threaded contract.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    })?;
    if ret == 0 {
        Ok(Forked::Child)
    } else {
        // SAFETY: the kernel wrote a fresh descriptor into pidfd.
        Ok(Forked::Parent {
            pid: ret as libc::pid_t,
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        })
    }
}

/// pidfd_open(2).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// pidfd_open(2) with PIDFD_THREAD (Linux 6.9): a pidfd of any thread, not
/// only of a thread group's leader. Older kernels refuse the flag (EINVAL).
pub fn pidfd_open_thread(tid: libc::pid_t) -> io::Result<OwnedFd> {
    const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;
    // SAFETY: integer arguments.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) })
}

/// SECCOMP_IOCTL_NOTIF_ADDFD: installs `fd` into the process whose call `id`
/// is pending, with `newfd_flags` (O_CLOEXEC); returns its number there.
/// With `send`, the kernel also answers the call with that number, at once.
pub fn seccomp_addfd(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    newfd_flags: u32,
    send: bool,
) -> io::Result<RawFd> {
    let addfd = libc::seccomp_notif_addfd {
        id,
        flags: if send { libc::SECCOMP_ADDFD_FLAG_SEND as u32 } else { 0 },
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags,
    };
    // SAFETY: NOTIF_ADDFD reads addfd, which lives for the call.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: a null siginfo means "as kill(2)".
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// pidfd_getfd(2): a duplicate of another process's descriptor.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })
}

/// close_range(2) with CLOSE_RANGE_CLOEXEC from `first` up: every descriptor
/// from there on closes at the next execve.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) }).map(drop)
}

/// close_range(2): closes every descriptor from `first` up.
pub fn close_from(first: u32) -> io::Result<()> {
    close_range(first, u32::MAX)
}

/// Closes every descriptor but those of `keep`: one close_range (Linux 5.9)
/// per gap between them, not one close per descriptor.
pub fn close_all_but(keep: &[u32]) -> io::Result<()> {
    let mut keep = keep.to_vec();
    keep.sort_unstable();
    let mut first = 0u32;
    for &k in &keep {
        if k > first {
            close_range(first, k - 1)?;
        }
        first = k.saturating_add(1);
    }
    close_from(first)
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: integer arguments; the caller owns no Rust object on these fds.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(drop)
}

/// prctl(2) with integer arguments.
pub fn prctl(option: i32, arg2: u64) -> io::Result<i32> {
    // SAFETY: integer arguments; no pointer is passed.
    let r = unsafe { libc::prctl(option, arg2, 0u64, 0u64, 0u64) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// The kernel's name for an errno, for messages such as `EBUSY`.
pub fn errno_name(e: &io::Error) -> String {
    let Some(n) = e.raw_os_error() else {
        return e.to_string();
    };
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::ENOTSUP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ENOEXEC => "ENOEXEC",
        libc::E2BIG => "E2BIG",
        _ => return format!("{e}"),
    };
    format!("{name} ({})", strip_os_error(e))
}

fn strip_os_error(e: &io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// A C string from Rust text that may hold NUL (then an error).
pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains a NUL byte"))
}

/// `CStr` of a literal, for readability at call sites.
pub fn c(s: &'static CStr) -> &'static CStr {
    s
}

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS` with `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`:
/// the kernel switches to the supervisor on the notifying thread's CPU instead
/// of waking it elsewhere, which halves a notification's round trip.
pub fn seccomp_notify_sync_wakeup(listener: BorrowedFd<'_>) -> io::Result<()> {
    // _IOW('!', 4, __u64)
    const SECCOMP_IOCTL_NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
    const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
    // SAFETY: the ioctl takes the flags by value.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}
