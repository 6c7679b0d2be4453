//! Sockets the supervisor makes on a jailed process's behalf: i386's
//! socketcall(2) passes socket(2)'s domain, type and protocol in memory, so
//! the supervisor decides on its own copy and must then create the socket
//! itself, exactly as the caller would have.
//!
//! A socket carries its creator's state: the network namespace it lives in,
//! the credentials of its file (and the kernel's permission checks at
//! creation: CAP_NET_RAW for raw sockets, ping_group_range for ping sockets),
//! the peer credentials of a socketpair, and the cgroup whose socket-address
//! programs rewrite its addresses and whose memory it is charged to. So a
//! short-lived child of the supervisor is started in the caller's cgroup,
//! joins the caller's user and network namespaces, takes its ids, groups and
//! capabilities, makes the socket and hands it back over SCM_RIGHTS.
//!
//! The supervisor may run threads (the fallback's blocking calls); after the
//! fork the child therefore makes only raw system calls on data prepared
//! before it, and never allocates.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::raw;

/// The call to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Make {
    /// socket(2).
    Socket {
        /// Its domain.
        domain: i32,
        /// Its type, with SOCK_NONBLOCK and SOCK_CLOEXEC.
        ty: i32,
        /// Its protocol.
        protocol: i32,
    },
    /// socketpair(2).
    Pair {
        /// Its domain.
        domain: i32,
        /// Its type, with SOCK_NONBLOCK and SOCK_CLOEXEC.
        ty: i32,
        /// Its protocol.
        protocol: i32,
    },
}

/// Where the helper stopped; reported back with the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    /// setns(2) into the caller's user and network namespaces.
    Setns = 1,
    /// setgroups(2).
    Setgroups = 2,
    /// setresgid(2).
    Setresgid = 3,
    /// prctl(PR_SET_KEEPCAPS).
    Keepcaps = 4,
    /// setresuid(2).
    Setresuid = 5,
    /// capset(2).
    Capset = 6,
    /// The socket(2) or socketpair(2) itself: its errno is the caller's answer.
    Socket = 7,
    /// Sending the descriptors back.
    Send = 8,
}

impl Step {
    fn of(n: u32) -> Option<Step> {
        use Step::*;
        [Setns, Setgroups, Setresgid, Keepcaps, Setresuid, Capset, Socket, Send]
            .into_iter()
            .find(|s| *s as u32 == n)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Setns => "setns",
            Step::Setgroups => "setgroups",
            Step::Setresgid => "setresgid",
            Step::Keepcaps => "prctl(PR_SET_KEEPCAPS)",
            Step::Setresuid => "setresuid",
            Step::Capset => "capset",
            Step::Socket => "socket",
            Step::Send => "sendmsg(SCM_RIGHTS)",
        })
    }
}

/// Why no socket was made.
#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    /// The kernel refused the socket as it would have refused the caller.
    #[error("socket: errno {0}")]
    Refused(i32),
    /// The caller's identity could not be read (it exited, most likely).
    #[error("reading the caller's {what}: {source}")]
    Caller {
        /// What was read.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// One of the caller's ids has no mapping in its own user namespace,
    /// so the helper cannot take it.
    #[error("{what} {id} is not mapped in the caller's user namespace")]
    Unmapped {
        /// Which id.
        what: &'static str,
        /// The host id.
        id: u32,
    },
    /// Starting, talking to or reaping the helper failed.
    #[error("socket helper: {what}: {source}")]
    Helper {
        /// What failed.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A step of the helper before the socket failed.
    #[error("socket helper: {step}: errno {errno}")]
    Step {
        /// The step.
        step: Step,
        /// Its errno.
        errno: i32,
    },
}

impl MakeError {
    /// The errno the caller is answered with.
    pub fn errno(&self) -> i32 {
        match self {
            MakeError::Refused(e) | MakeError::Step { errno: e, .. } => *e,
            MakeError::Caller { source, .. } | MakeError::Helper { source, .. } => {
                source.raw_os_error().unwrap_or(libc::EIO)
            }
            MakeError::Unmapped { .. } => libc::EPERM,
        }
    }
}

/// The capability sets of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Caps {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// Who the caller is, in its own user namespace, and which of its
/// namespaces differ from the supervisor's. Read from the kernel (/proc)
/// while the caller waits; the caller must be checked to still wait after.
#[derive(Debug)]
pub struct Caller {
    /// Real, effective and saved uid.
    uids: [u32; 3],
    /// Real, effective and saved gid.
    gids: [u32; 3],
    /// Supplementary groups to set; None when the supervisor's own are
    /// already the caller's (as in a rootless jail, where setgroups(2) is
    /// denied and the jail keeps the groups it was started with).
    groups: Option<Vec<u32>>,
    caps: Caps,
    /// CLONE_NEWUSER and CLONE_NEWNET, for the namespaces not the supervisor's:
    /// setns(2) refuses to re-enter one's own user namespace, and a host-stack
    /// jail shares the supervisor's network namespace.
    join: i32,
}

impl Caller {
    /// Reads thread `tid`'s identity from /proc.
    pub fn read(tid: u32) -> Result<Caller, MakeError> {
        let proc = |what: &'static str, file: &str| {
            std::fs::read_to_string(format!("/proc/{tid}/{file}")).map_err(|source| MakeError::Caller { what, source })
        };
        let status = proc("status", "status")?;
        let uid_map = parse_map(&proc("uid map", "uid_map")?);
        let gid_map = parse_map(&proc("gid map", "gid_map")?);
        let ours = std::fs::read_to_string("/proc/thread-self/status").map_err(|source| MakeError::Helper {
            what: "reading our own status",
            source,
        })?;
        let uids = ids(&status, "Uid:").ok_or_else(|| unreadable("uids"))?;
        let gids = ids(&status, "Gid:").ok_or_else(|| unreadable("gids"))?;
        let uids = inside_all(&uid_map, "uid", uids)?;
        let gids = inside_all(&gid_map, "gid", gids)?;
        let groups = groups_to_set(&status, &ours, &gid_map)?;
        let caps = caps_of(&status)?;
        let join = namespaces_to_join(tid)?;
        Ok(Caller {
            uids,
            gids,
            groups,
            caps,
            join,
        })
    }
}

/// The error for a line of the caller's status that does not parse.
fn unreadable(what: &'static str) -> MakeError {
    MakeError::Caller {
        what,
        source: io::Error::from_raw_os_error(libc::EIO),
    }
}

/// A host id as seen inside the caller's user namespace, through `map`.
fn inside(map: &[(u32, u32, u32)], what: &'static str, id: u32) -> Result<u32, MakeError> {
    to_inside(map, id).ok_or(MakeError::Unmapped { what, id })
}

/// A real, effective and saved id, each as seen inside.
fn inside_all(map: &[(u32, u32, u32)], what: &'static str, ids: [u32; 3]) -> Result<[u32; 3], MakeError> {
    Ok([
        inside(map, what, ids[0])?,
        inside(map, what, ids[1])?,
        inside(map, what, ids[2])?,
    ])
}

/// The caller's supplementary groups as seen inside; None when they are
/// already ours (`ours` is our own status).
fn groups_to_set(status: &str, ours: &str, gid_map: &[(u32, u32, u32)]) -> Result<Option<Vec<u32>>, MakeError> {
    let theirs = groups(status).ok_or_else(|| unreadable("groups"))?;
    if groups(ours).as_ref() == Some(&theirs) {
        return Ok(None);
    }
    let inside = theirs.iter().map(|g| inside(gid_map, "group", *g));
    Ok(Some(inside.collect::<Result<Vec<_>, _>>()?))
}

/// The effective, permitted and inheritable capabilities of a status file.
fn caps_of(status: &str) -> Result<Caps, MakeError> {
    let cap = |key: &'static str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .ok_or_else(|| unreadable(key))
    };
    Ok(Caps {
        effective: cap("CapEff:")?,
        permitted: cap("CapPrm:")?,
        inheritable: cap("CapInh:")?,
    })
}

/// CLONE_NEWUSER and CLONE_NEWNET, for those of thread `tid`'s namespaces
/// that are not ours.
fn namespaces_to_join(tid: u32) -> Result<i32, MakeError> {
    let id = |path: String| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|source| MakeError::Caller {
                what: "namespaces",
                source,
            })
    };
    let mut join = 0;
    for (ns, flag) in [("user", libc::CLONE_NEWUSER), ("net", libc::CLONE_NEWNET)] {
        if id(format!("/proc/{tid}/ns/{ns}"))? != id(format!("/proc/thread-self/ns/{ns}"))? {
            join |= flag;
        }
    }
    Ok(join)
}

/// Lines of a uid_map or gid_map: inside, outside (here: host), count.
fn parse_map(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().map(|w| w.parse::<u32>().ok());
            Some((w.next()??, w.next()??, w.next()??))
        })
        .collect()
}

fn to_inside(map: &[(u32, u32, u32)], host: u32) -> Option<u32> {
    map.iter().find_map(|&(inside, outside, count)| {
        (host >= outside && u64::from(host) < u64::from(outside) + u64::from(count)).then(|| inside + (host - outside))
    })
}

/// Real, effective and saved id of a `Uid:` or `Gid:` line (the fourth,
/// the file-system id, follows the effective one on setres*id).
fn ids(status: &str, key: &str) -> Option<[u32; 3]> {
    let line = status.lines().find_map(|l| l.strip_prefix(key))?;
    let mut w = line.split_whitespace().map(|v| v.parse::<u32>().ok());
    Some([w.next()??, w.next()??, w.next()??])
}

fn groups(status: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    let mut g = line
        .split_whitespace()
        .map(|v| v.parse::<u32>().ok())
        .collect::<Option<Vec<_>>>()?;
    g.sort_unstable();
    Some(g)
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// What the helper reports: the step that failed (0: none) and its errno.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Report {
    step: u32,
    errno: i32,
}

/// Everything the helper uses, prepared before the fork.
struct Plan<'a> {
    chan: RawFd,
    pidfd: RawFd,
    caller: &'a Caller,
    header: CapHeader,
    data: [CapData; 2],
    make: Make,
}

/// Makes the socket (one descriptor) or the pair (two) as `caller`, the
/// thread `pidfd` refers to, starting the helper in the cgroup `cgroup`.
pub fn make(
    caller: &Caller,
    pidfd: BorrowedFd<'_>,
    cgroup: Option<BorrowedFd<'_>>,
    make: Make,
) -> Result<Vec<OwnedFd>, MakeError> {
    let helper = |what: &'static str| move |source: io::Error| MakeError::Helper { what, source };
    let (ours, theirs) = seqpacket_pair().map_err(helper("socketpair"))?;
    let low = |v: u64| v as u32;
    let high = |v: u64| (v >> 32) as u32;
    let plan = Plan {
        chan: theirs.as_raw_fd(),
        pidfd: pidfd.as_raw_fd(),
        caller,
        header: CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        },
        data: [
            CapData {
                effective: low(caller.caps.effective),
                permitted: low(caller.caps.permitted),
                inheritable: low(caller.caps.inheritable),
            },
            CapData {
                effective: high(caller.caps.effective),
                permitted: high(caller.caps.permitted),
                inheritable: high(caller.caps.inheritable),
            },
        ],
        make,
    };
    // SAFETY: the child runs `helper` only, which makes raw system calls on
    // `plan` (prepared above, read-only) and ends with exit_group.
    let forked = unsafe { raw::clone3_helper(cgroup) }.map_err(helper("clone3"))?;
    let child = match forked {
        raw::Forked::Child => run(&plan),
        raw::Forked::Parent { pidfd, .. } => pidfd,
    };
    // Our copy of the child's end goes, so that its exit ends the read.
    drop(theirs);
    let got = receive(ours.as_fd());
    reap(child.as_fd());
    let (report, fds) = got.map_err(helper("recvmsg"))?;
    let wanted = if matches!(make, Make::Pair { .. }) { 2 } else { 1 };
    match Step::of(report.step) {
        None if report.step == 0 && fds.len() == wanted => Ok(fds),
        None => Err(MakeError::Helper {
            what: "its report",
            source: io::Error::from_raw_os_error(libc::EIO),
        }),
        Some(Step::Socket) => Err(MakeError::Refused(report.errno)),
        Some(step) => Err(MakeError::Step {
            step,
            errno: report.errno,
        }),
    }
}

fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut sv = [-1; 2];
    // SAFETY: socketpair writes two descriptors into sv.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            sv.as_mut_ptr(),
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
}

/// Space for a control message of two descriptors, aligned for cmsghdr.
#[repr(C, align(8))]
struct Control([u8; 64]);

fn receive(chan: BorrowedFd<'_>) -> io::Result<(Report, Vec<OwnedFd>)> {
    let mut report = Report::default();
    let mut control = Control([0; 64]);
    let mut iov = libc::iovec {
        iov_base: (&mut report as *mut Report).cast(),
        iov_len: std::mem::size_of::<Report>(),
    };
    // SAFETY: msghdr is plain data; the fields set below point at live locals.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len();
    // SAFETY: recvmsg writes into report and control, both of the sizes given.
    let n = unsafe { libc::recvmsg(chan.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the CMSG macros walk the control buffer recvmsg filled, within
    // msg_controllen; SCM_RIGHTS data is an array of descriptors now ours.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if n as usize != std::mem::size_of::<Report>() || msg.msg_flags & libc::MSG_CTRUNC != 0 {
        // The child died before reporting, or sent what it never sends.
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok((report, fds))
}

/// Waits for the helper, which exits right after sending.
fn reap(child: BorrowedFd<'_>) {
    // SAFETY: siginfo is plain data that waitid fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waitid on the child's pidfd; __WALL because it sends no
        // exit signal.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                child.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::__WALL,
            )
        };
        if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// The helper, after the fork: raw system calls only, then exit_group.
fn run(plan: &Plan<'_>) -> ! {
    let failed = |step: Step| fail(plan.chan, step);
    let caller = plan.caller;
    // SAFETY (for each call below): integer arguments, or pointers into
    // `plan` and the caller's copy, which the fork duplicated and nothing
    // frees before exit.
    unsafe {
        // Nothing else of the supervisor's reaches the caller's namespaces;
        // not dumpable, so no process there can open or trace this one.
        libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        close_all_but(plan.chan, plan.pidfd);
        if caller.join != 0 && libc::syscall(libc::SYS_setns, plan.pidfd, caller.join) < 0 {
            failed(Step::Setns);
        }
        if let Some(groups) = &caller.groups
            && libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) < 0
        {
            failed(Step::Setgroups);
        }
        let [r, e, s] = caller.gids;
        if libc::syscall(libc::SYS_setresgid, r, e, s) < 0 {
            failed(Step::Setresgid);
        }
        // The capabilities are the caller's, set below; a uid change from
        // root would clear them first otherwise.
        if libc::syscall(libc::SYS_prctl, libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
            failed(Step::Keepcaps);
        }
        let [r, e, s] = caller.uids;
        if libc::syscall(libc::SYS_setresuid, r, e, s) < 0 {
            failed(Step::Setresuid);
        }
        if libc::syscall(libc::SYS_capset, &plan.header as *const CapHeader, plan.data.as_ptr()) < 0 {
            failed(Step::Capset);
        }
        match plan.make {
            Make::Socket { domain, ty, protocol } => {
                let fd = libc::syscall(libc::SYS_socket, domain, ty, protocol);
                if fd < 0 {
                    failed(Step::Socket);
                }
                finish(plan.chan, 0, 0, &[fd as RawFd])
            }
            Make::Pair { domain, ty, protocol } => {
                let mut sv: [libc::c_int; 2] = [-1, -1];
                if libc::syscall(libc::SYS_socketpair, domain, ty, protocol, sv.as_mut_ptr()) < 0 {
                    failed(Step::Socket);
                }
                finish(plan.chan, 0, 0, &sv)
            }
        }
    }
}

fn last_errno() -> i32 {
    // SAFETY: errno is thread-local; the child's copy of this thread's.
    unsafe { *libc::__errno_location() }
}

fn exit(code: i32) -> ! {
    // SAFETY: ends the helper; nothing of it needs unwinding.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    // exit_group does not return.
    #[allow(clippy::empty_loop)]
    loop {}
}

/// Closes every descriptor but `a` and `b`.
fn close_all_but(a: RawFd, b: RawFd) {
    let (lo, hi) = if a < b {
        (a as u32, b as u32)
    } else {
        (b as u32, a as u32)
    };
    let close = |first: u32, last: u32| {
        if first <= last {
            // SAFETY: integer arguments.
            unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
        }
    };
    if lo > 0 {
        close(0, lo - 1);
    }
    if hi > lo + 1 {
        close(lo + 1, hi - 1);
    }
    close(hi + 1, u32::MAX);
}

/// Sends the report, with `fds` (the socket or the pair) on success, and
/// ends the helper.
fn finish(chan: RawFd, step: u32, errno: i32, fds: &[RawFd]) -> ! {
    send(chan, Report { step, errno }, fds);
    exit(0)
}

/// Reports `step` failed with the current errno, and ends the helper.
fn fail(chan: RawFd, step: Step) -> ! {
    finish(chan, step as u32, last_errno(), &[])
}

fn send(chan: RawFd, mut report: Report, fds: &[RawFd]) {
    if sendmsg(chan, &mut report, fds) < 0 && !fds.is_empty() {
        // Say why, without the descriptors.
        let mut failed = Report {
            step: Step::Send as u32,
            errno: last_errno(),
        };
        sendmsg(chan, &mut failed, &[]);
    }
}

/// One sendmsg(2) of the report and, if any, the descriptors (two at most).
fn sendmsg(chan: RawFd, report: &mut Report, fds: &[RawFd]) -> libc::c_long {
    let mut control = Control([0; 64]);
    let mut iov = libc::iovec {
        iov_base: (report as *mut Report).cast(),
        iov_len: std::mem::size_of::<Report>(),
    };
    // SAFETY: plain data, filled below with pointers to live locals; the
    // CMSG macros compute within `control`, which holds two descriptors.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let len = std::mem::size_of_val(fds) as u32;
            msg.msg_control = control.0.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(len) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(len) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast::<RawFd>(), fds.len());
        }
        libc::syscall(libc::SYS_sendmsg, chan, &msg as *const libc::msghdr, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_translate_through_the_map() {
        let map = parse_map("         0     100000      65536\n");
        assert_eq!(to_inside(&map, 100_000), Some(0));
        assert_eq!(to_inside(&map, 101_000), Some(1000));
        assert_eq!(to_inside(&map, 165_536), None);
        assert_eq!(to_inside(&map, 0), None);
        let rootless = parse_map("0 1000 1\n");
        assert_eq!(to_inside(&rootless, 1000), Some(0));
        let all = parse_map("0 0 4294967295\n");
        assert_eq!(to_inside(&all, 4_294_967_294), Some(4_294_967_294));
    }

    #[test]
    fn status_lines() {
        let status = "Name:\tx\nUid:\t1\t2\t3\t2\nGid:\t4\t5\t6\t5\nGroups:\t9 7 \nCapEff:\t0000000000002000\n";
        assert_eq!(ids(status, "Uid:"), Some([1, 2, 3]));
        assert_eq!(ids(status, "Gid:"), Some([4, 5, 6]));
        assert_eq!(groups(status), Some(vec![7, 9]));
        assert_eq!(groups("Groups:\t\n"), Some(vec![]));
    }

    #[test]
    fn the_helper_makes_a_pair_as_we_are() {
        // As ourselves: no namespace to join, our own ids and capabilities.
        let tid = std::process::id();
        let caller = Caller::read(tid).expect("our own status");
        assert_eq!(caller.join, 0);
        assert!(caller.groups.is_none());
        let pidfd = raw::pidfd_open(tid as i32).expect("pidfd_open");
        let fds = make(
            &caller,
            pidfd.as_fd(),
            None,
            Make::Pair {
                domain: libc::AF_UNIX,
                ty: libc::SOCK_STREAM,
                protocol: 0,
            },
        )
        .expect("a pair");
        assert_eq!(fds.len(), 2);
        let refused = make(
            &caller,
            pidfd.as_fd(),
            None,
            Make::Socket {
                domain: libc::AF_UNIX,
                ty: 77,
                protocol: 0,
            },
        );
        assert!(matches!(refused, Err(MakeError::Refused(libc::EINVAL))), "{refused:?}");
    }
}
