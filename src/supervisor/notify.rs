//! Answers to seccomp user notifications.
//!
//! A notified call is blocked in the kernel until the supervisor answers. The
//! supervisor decides from the registers the kernel copied into the
//! notification, and from kernel state (what a socket is bound to, which
//! credentials a process has). Where it needs a pointer argument, it copies the
//! memory once, checks that the call is still pending (NOTIF_ID_VALID), and
//! performs the call itself on its own copy. It never answers "continue" to a
//! decision that depends on memory: DESIGN.md's one security rule.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use super::sockets::{self, Make};
use crate::plan::LaunchPlan;
use crate::policy::syscalls::consts::{SYS_LISTEN, SYS_SOCKET, SYS_SOCKETPAIR};
use crate::policy::syscalls::{Action, Errno, Notify};
use crate::sys::logfile::LogFile;
use crate::sys::raw;
use crate::syscalls::{Abi, Sysno};

/// At most this many denial lines a second reach the log; the rest are
/// counted in one "suppressed" line, so that a jail looping on a denied call
/// cannot make the supervisor spend its time (and the host's disk) on them.
pub const DENIALS_PER_SECOND: u32 = 100;

/// The supervisor's side of the seccomp listener.
pub struct Notifier {
    abis: Vec<Abi>,
    policy: crate::policy::SyscallPolicy,
    jail_root_uid: u32,
    first_v4: Option<Ipv4Addr>,
    first_v6: Option<Ipv6Addr>,
    log: Option<DenialLog>,
    /// Denied calls by (call, errno, allow entry), for the summary at exit.
    pub denied: BTreeMap<(String, Errno, Option<String>), u64>,
    /// Set when jail root asked reboot(2) to halt or restart: the signal the
    /// kernel would have ended a pid namespace's init with. The caller is
    /// left unanswered; the supervisor ends the jail.
    pub halt: Option<i32>,
    /// Whether jail id 0 is mapped at all (without privilege, it may not be).
    jail_root_mapped: bool,
    /// The uid that owns the jail's user namespace, when it is not ours.
    namespace_owner: Option<u32>,
    /// The jail's unified-hierarchy cgroup, where its address programs are
    /// attached: sockets made for the jail are made there.
    cgroup: Option<PathBuf>,
    /// It, opened at the first socket made.
    cgroup_fd: Option<OwnedFd>,
}

/// A notification as the kernel gives it.
#[derive(Clone, Copy)]
pub struct Notif {
    /// Its id, valid while the call is pending.
    pub id: u64,
    /// The caller, as a host pid.
    pub pid: u32,
    /// AUDIT_ARCH of the call.
    pub arch: u32,
    /// The call's number.
    pub nr: u32,
    /// Its registers.
    pub args: [u64; 6],
}

impl Notifier {
    /// A notifier for a jail, with the log of denied calls if any.
    pub fn new(plan: &LaunchPlan, log: Option<LogFile>) -> Notifier {
        Notifier {
            abis: crate::syscalls::Abi::native().to_vec(),
            policy: plan.policy.syscalls.clone(),
            jail_root_uid: plan.ids.host_base,
            first_v4: plan.policy.network.ipv4.first,
            first_v6: plan.policy.network.ipv6.first,
            log: log.map(DenialLog::new),
            denied: BTreeMap::new(),
            halt: None,
            jail_root_mapped: plan.ids.maps(0),
            namespace_owner: plan.ids.namespace_owner(),
            cgroup: plan.host.clone.into_cgroup.clone(),
            cgroup_fd: None,
        }
    }

    /// What was denied, for the end of the jail: one line per call, errno
    /// and the `allow` entry that would permit it, most frequent first.
    pub fn summary(&self) -> Vec<String> {
        let mut rows: Vec<_> = self.denied.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        rows.into_iter()
            .map(|((call, errno, allow), n)| {
                let lift = allow.as_ref().map_or("no allow entry permits it".to_string(), |a| {
                    format!("allow = [\"{a}\"] would permit it")
                });
                format!("{n:>6} {call} {errno}: {lift}")
            })
            .collect()
    }

    /// Receives and answers one notification. An error means the listener is
    /// unusable (the filter's last process exited).
    pub fn handle(&mut self, listener: BorrowedFd<'_>) -> io::Result<()> {
        let n = match recv(listener) {
            Ok(n) => n,
            // The calling process died, or the call was interrupted.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) || e.raw_os_error() == Some(libc::EINTR) => return Ok(()),
            Err(e) => return Err(e),
        };
        let abi = self.abis.iter().copied().find(|a| a.audit_arch() == n.arch);
        let call = abi.and_then(|a| a.call(n.nr));
        let (action, allow) = match call.and_then(|c| self.policy.rule(c)) {
            Some(rule) => {
                let (action, _, allow) = rule.decide(&n.args);
                (action, allow)
            }
            None => (self.policy.decide(n.arch, n.nr, &n.args), None),
        };
        tracing::trace!(
            "pid {} {}({:#x}, {:#x}, {:#x}): {action:?}",
            n.pid,
            call.map_or_else(|| format!("syscall {}", n.nr), |c| c.to_string()),
            n.args[0],
            n.args[1],
            n.args[2]
        );
        let mut line = None;
        let answer = match action {
            Action::Notify(Notify::Listen) => self.listen(&n, listener, n.args[0] as i32, n.args[1] as i32),
            Action::Notify(Notify::Socketcall) => match self.socketcall(&n, listener) {
                Some(answer) => answer,
                // Answered with the new descriptor by the kernel (ADDFD_FLAG_SEND).
                None => return Ok(()),
            },
            Action::Notify(Notify::Rlimit) => self.rlimit(&n, listener, call),
            Action::Notify(Notify::Reboot) => {
                self.halt = self.reboot_halts(&n, listener);
                if self.halt.is_some() {
                    // The caller never returns: the jail ends first.
                    return Ok(());
                }
                Err(libc::EPERM)
            }
            Action::Errno(e) => {
                line = self.denial(&n, abi, call, e, allow);
                Err(i32::from(e.number()))
            }
            // Never notified; refuse rather than guess.
            Action::Allow | Action::Notify(Notify::Denied) | Action::KillProcess => Err(libc::ENOSYS),
        };
        let sent = respond(listener, n.id, answer);
        // The caller runs on while the line is written.
        if let (Some(line), Some(log)) = (line, &mut self.log) {
            log.line(&line);
        }
        sent
    }

    /// The jail is over: says how many lines were suppressed last.
    pub fn finish(&mut self) {
        if let Some(log) = &mut self.log {
            log.flush_suppressed();
        }
    }

    /// listen(2): a socket that was never bound gets the first address of its
    /// family (port 0, as autobind would choose), then the supervisor listens
    /// on it. `fd` and `backlog` are registers, or the supervisor's copy of
    /// socketcall's words; the socket's state is the kernel's.
    fn listen(&self, n: &Notif, listener: BorrowedFd<'_>, fd: i32, backlog: i32) -> Result<i64, i32> {
        let pidfd = caller_pidfd(n, listener)?;
        let sock = raw::pidfd_getfd(pidfd.as_fd(), fd).map_err(errno)?;
        if let Some(local) = local_address(&sock) {
            let unbound = local.port() == 0 && local.ip().is_unspecified();
            if unbound {
                let first: Option<IpAddr> = match local {
                    SocketAddr::V4(_) => self.first_v4.map(IpAddr::V4),
                    SocketAddr::V6(_) => self
                        .first_v6
                        .map(IpAddr::V6)
                        .or_else(|| self.first_v4.map(|a| IpAddr::V6(a.to_ipv6_mapped()))),
                };
                if let Some(first) = first {
                    bind(&sock, SocketAddr::new(first, 0)).map_err(errno)?;
                }
            }
        }
        // SAFETY: listen(2) on a descriptor we own, with the caller's backlog.
        let r = unsafe { libc::listen(sock.as_raw_fd(), backlog) };
        if r < 0 { Err(last_errno()) } else { Ok(0) }
    }

    /// i386 socketcall(2) of SOCKET, SOCKETPAIR or LISTEN: the argument
    /// words are copied once; the direct call's rule decides on the copy, as
    /// if it were registers; the supervisor makes the call itself. None when
    /// the kernel has answered already (with the new socket's number).
    fn socketcall(&mut self, n: &Notif, listener: BorrowedFd<'_>) -> Option<Result<i64, i32>> {
        let (call, words) = match n.args[0] as u32 {
            SYS_SOCKET => (Sysno::socket, 3),
            SYS_SOCKETPAIR => (Sysno::socketpair, 4),
            SYS_LISTEN => (Sysno::listen, 2),
            _ => return Some(Err(libc::ENOSYS)),
        };
        let pidfd = match caller_pidfd(n, listener) {
            Ok(fd) => fd,
            Err(e) => return Some(Err(e)),
        };
        // As the kernel reads them: 32-bit words at a 32-bit address.
        let bytes = match read_memory(n.pid, u64::from(n.args[1] as u32), words * 4) {
            Ok(b) => b,
            Err(e) => return Some(Err(errno(e))),
        };
        let mut args = [0u64; 6];
        for (arg, word) in args.iter_mut().zip(bytes.chunks_exact(4)) {
            *arg = u64::from(u32::from_ne_bytes(word.try_into().expect("4 bytes")));
        }
        // The copy is this call's only while the call is pending.
        if let Err(e) = valid(listener, n.id) {
            return Some(Err(e));
        }
        let copied = Notif { args, ..*n };
        let (action, allow) = match self.policy.rule(call) {
            Some(rule) => {
                let (action, _, allow) = rule.decide(&args);
                (action, allow)
            }
            None => (self.policy.default, None),
        };
        tracing::trace!(
            "pid {} socketcall {call}({:#x}, {:#x}, {:#x}): {action:?}",
            n.pid,
            args[0],
            args[1],
            args[2]
        );
        match (action, call) {
            (Action::Errno(e), _) => {
                // Counted and logged as the filter's own denials are: only
                // when denials are logged.
                let abi = self.abis.iter().copied().find(|a| a.audit_arch() == n.arch);
                if self.log.is_some()
                    && let (Some(line), Some(log)) = (self.denial(&copied, abi, Some(call), e, allow), &mut self.log)
                {
                    log.line(&line);
                }
                Some(Err(i32::from(e.number())))
            }
            (Action::Notify(Notify::Listen), Sysno::listen) => {
                Some(self.listen(n, listener, args[0] as i32, args[1] as i32))
            }
            (Action::Allow, Sysno::listen) => Some(listen_as_is(&pidfd, args[0] as i32, args[1] as i32)),
            (Action::Allow, Sysno::socket | Sysno::socketpair) => self.make_socket(n, listener, &pidfd, call, &args),
            // No other answer is the direct call's; refuse rather than guess.
            _ => Some(Err(libc::ENOSYS)),
        }
    }

    /// Makes an allowed socket or pair as the caller and installs it there.
    fn make_socket(
        &mut self,
        n: &Notif,
        listener: BorrowedFd<'_>,
        pidfd: &OwnedFd,
        call: Sysno,
        args: &[u64; 6],
    ) -> Option<Result<i64, i32>> {
        let (domain, ty, protocol) = (args[0] as i32, args[1] as i32, args[2] as i32);
        let cloexec = if ty & libc::SOCK_CLOEXEC != 0 {
            libc::O_CLOEXEC as u32
        } else {
            0
        };
        let sv = u64::from(args[3] as u32);
        let make = if call == Sysno::socketpair {
            // The kernel writes sv[2] last; a pointer it could not write to
            // fails before anything is installed, as there.
            if let Err(e) = read_memory(n.pid, sv, 8).and_then(|b| write_memory(n.pid, sv, &b)) {
                return Some(Err(errno(e)));
            }
            Make::Pair { domain, ty, protocol }
        } else {
            Make::Socket { domain, ty, protocol }
        };
        let result = sockets::Caller::read(n.pid).and_then(|caller| {
            // The credentials read belong to the caller only while it waits.
            valid(listener, n.id).map_err(|e| sockets::MakeError::Caller {
                what: "notification",
                source: io::Error::from_raw_os_error(e),
            })?;
            let cgroup = self.cgroup_fd().map_err(|source| sockets::MakeError::Helper {
                what: "opening the jail's cgroup",
                source,
            })?;
            sockets::make(&caller, pidfd.as_fd(), cgroup, make)
        });
        let fds = match result {
            Ok(fds) => fds,
            Err(sockets::MakeError::Refused(e)) => return Some(Err(e)),
            Err(e) => {
                tracing::warn!("pid {}: {call} through socketcall: {e}", n.pid);
                return Some(Err(e.errno()));
            }
        };
        if let [fd] = fds.as_slice() {
            return match raw::seccomp_addfd(listener, n.id, fd.as_fd(), cloexec, true) {
                Ok(_) => None,
                Err(e) => Some(Err(errno(e))),
            };
        }
        let mut numbers = Vec::with_capacity(8);
        for fd in &fds {
            match raw::seccomp_addfd(listener, n.id, fd.as_fd(), cloexec, false) {
                Ok(number) => numbers.extend(number.to_ne_bytes()),
                Err(e) => return Some(Err(errno(e))),
            }
        }
        Some(write_memory(n.pid, sv, &numbers).map(|()| 0).map_err(errno))
    }

    /// The jail's cgroup directory, opened once; None without one.
    fn cgroup_fd(&mut self) -> io::Result<Option<BorrowedFd<'_>>> {
        if self.cgroup_fd.is_none()
            && let Some(path) = &self.cgroup
        {
            self.cgroup_fd = Some(File::open(path)?.into());
        }
        Ok(self.cgroup_fd.as_ref().map(|f| f.as_fd()))
    }

    /// Runs `f` as the owner of the jail's user namespace (jail root's host
    /// uid, when the supervisor is root): the kernel grants a namespace's
    /// owner its capabilities over the jail's processes (prlimit(2) of one),
    /// which host root, not the owner, would otherwise need in full.
    fn as_namespace_owner<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let Some(uid) = self.namespace_owner else {
            return f();
        };
        let owner = crate::sys::privs::OwnerUid::enter(uid)?;
        let out = f();
        owner.leave()?;
        out
    }

    /// reboot(2) is EPERM for everyone (the old manual); from jail root, a
    /// halt, power-off or restart with the kernel's magic numbers ends the
    /// jail, as the kernel ends a pid namespace. Registers and the caller's
    /// credentials decide, both held by the kernel; none is the jail's memory.
    fn reboot_halts(&self, n: &Notif, listener: BorrowedFd<'_>) -> Option<i32> {
        const MAGIC1: u32 = 0xfee1_dead;
        const MAGIC2: [u32; 4] = [0x2812_1969, 0x0512_1996, 0x1604_1998, 0x2011_2000];
        const RESTART: u32 = 0x0123_4567;
        const RESTART2: u32 = 0xa1b2_c3d4;
        const HALT: u32 = 0xcdef_0123;
        const POWER_OFF: u32 = 0x4321_fedc;
        let (magic1, magic2, cmd) = (n.args[0] as u32, n.args[1] as u32, n.args[2] as u32);
        let signal = match cmd {
            RESTART | RESTART2 => libc::SIGHUP,
            HALT | POWER_OFF => libc::SIGINT,
            _ => return None,
        };
        let root = self.jail_root_mapped && euid(n.pid) == Some(self.jail_root_uid);
        // The credentials read belong to the caller only while it waits.
        (magic1 == MAGIC1 && MAGIC2.contains(&magic2) && root && valid(listener, n.id).is_ok()).then_some(signal)
    }

    /// setrlimit(2) and prlimit64(2) with a new limit, for a jail allowed
    /// `rlimit`: jail root may raise a hard limit, which only the supervisor,
    /// holding CAP_SYS_RESOURCE over the host, can do. The limit is copied out
    /// of the caller's memory once; the supervisor applies its copy.
    fn rlimit(&self, n: &Notif, listener: BorrowedFd<'_>, call: Option<Sysno>) -> Result<i64, i32> {
        let compat = !self
            .abis
            .first()
            .is_some_and(|a| a.is_64bit() && a.audit_arch() == n.arch);
        let (target, resource, new_ptr, old_ptr) = match call {
            Some(Sysno::setrlimit) => (0, n.args[0] as u32, n.args[1], 0),
            Some(Sysno::prlimit64) => (n.args[0] as i32, n.args[1] as u32, n.args[2], n.args[3]),
            _ => return Err(libc::ENOSYS),
        };
        // Another process of the jail: its pid is in the jail's namespace,
        // which this supervisor does not translate. Refused as EPERM.
        if target != 0 && target != ns_pid(n.pid).unwrap_or(-1) {
            return Err(libc::EPERM);
        }
        let new = if call == Some(Sysno::setrlimit) && compat {
            // struct rlimit of a 32-bit ABI: two 32-bit words, RLIM_INFINITY ~0.
            let b = read_memory(n.pid, new_ptr, 8).map_err(errno)?;
            let word = |i: usize| {
                let v = u32::from_ne_bytes(b[i..i + 4].try_into().expect("4 bytes"));
                if v == u32::MAX { u64::MAX } else { u64::from(v) }
            };
            (word(0), word(4))
        } else {
            let b = read_memory(n.pid, new_ptr, 16).map_err(errno)?;
            (
                u64::from_ne_bytes(b[..8].try_into().expect("8 bytes")),
                u64::from_ne_bytes(b[8..].try_into().expect("8 bytes")),
            )
        };
        // The copy belongs to this call only if the call is still pending.
        valid(listener, n.id)?;
        if new.0 > new.1 {
            return Err(libc::EINVAL);
        }
        let old = self
            .as_namespace_owner(|| prlimit(n.pid as i32, resource, None))
            .map_err(errno)?;
        if new.1 > old.1 && euid(n.pid) != Some(self.jail_root_uid) {
            return Err(libc::EPERM);
        }
        let old = self
            .as_namespace_owner(|| prlimit(n.pid as i32, resource, Some(new)))
            .map_err(errno)?;
        if old_ptr != 0 {
            let mut bytes = old.0.to_ne_bytes().to_vec();
            bytes.extend(old.1.to_ne_bytes());
            write_memory(n.pid, old_ptr, &bytes).map_err(errno)?;
        }
        Ok(0)
    }

    /// Counts a denial and, with a log, formats its line; what describes the
    /// caller is read before it is answered, while it certainly exists.
    fn denial(
        &mut self,
        n: &Notif,
        abi: Option<Abi>,
        call: Option<Sysno>,
        e: Errno,
        allow: Option<crate::model::Allow>,
    ) -> Option<String> {
        let name = call.map_or_else(|| format!("syscall {}", n.nr), |c| c.to_string());
        *self
            .denied
            .entry((name.clone(), e, allow.map(|a| a.to_string())))
            .or_insert(0) += 1;
        self.log.as_ref()?;
        // The jail names its processes: escaped, a name cannot end the line
        // or pose as another field.
        let comm = read_bytes(&format!("/proc/{}/comm", n.pid)).unwrap_or_default();
        let comm = escape(comm.strip_suffix(b"\n").unwrap_or(&comm));
        let rule = call.and_then(|c| self.policy.rule(c));
        let why = rule.map_or_else(
            || format!("{}", self.policy.default),
            |r| r.decide(&n.args).1.to_string(),
        );
        Some(format!(
            "{} pid={} comm={} abi={} {name}({}) = -{e} rule=\"{why}\" allow={}\n",
            timestamp(),
            ns_pid(n.pid).unwrap_or(n.pid as i32),
            comm,
            abi.map_or("unknown", |a| a.name()),
            decode_args(n, rule),
            allow.map_or("none".to_string(), |a| a.to_string()),
        ))
    }
}

/// A pidfd of the calling thread, checked to be the caller's: the
/// notification gives a thread id, which pidfd_open(2) without PIDFD_THREAD
/// refuses for any thread but a process's first. Kernels before 6.9 lack
/// PIDFD_THREAD; there the thread group's pidfd serves, which shares the
/// thread's descriptors, memory and namespaces.
fn caller_pidfd(n: &Notif, listener: BorrowedFd<'_>) -> Result<OwnedFd, i32> {
    let pidfd = match raw::pidfd_open_thread(n.pid as i32) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let tgid = tgid(n.pid).ok_or(libc::ESRCH)?;
            raw::pidfd_open(tgid).map_err(errno)?
        }
        other => other.map_err(errno)?,
    };
    // The id may have been reused since the notification: act on it only if
    // the call is still pending, hence the thread still the caller.
    valid(listener, n.id)?;
    Ok(pidfd)
}

/// listen(2), the supervisor's own, on the caller's socket `fd`.
fn listen_as_is(pidfd: &OwnedFd, fd: i32, backlog: i32) -> Result<i64, i32> {
    let sock = raw::pidfd_getfd(pidfd.as_fd(), fd).map_err(errno)?;
    // SAFETY: listen(2) on a descriptor we own.
    let r = unsafe { libc::listen(sock.as_raw_fd(), backlog) };
    if r < 0 { Err(last_errno()) } else { Ok(0) }
}

/// The arguments as registers, named where the rule names them.
fn decode_args(n: &Notif, rule: Option<&crate::policy::syscalls::Rule>) -> String {
    let mut names: BTreeMap<u8, &str> = BTreeMap::new();
    for arm in rule.iter().flat_map(|r| &r.arms) {
        for c in &arm.when {
            names.insert(c.arg, c.name);
        }
    }
    (0..6u8)
        .map(|i| match names.get(&i) {
            Some(name) => format!("{name}={:#x}", n.args[i as usize] as u32),
            None => format!("{:#x}", n.args[i as usize]),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = crate::state::civil(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn last_errno() -> i32 {
    errno(io::Error::last_os_error())
}

fn recv(listener: BorrowedFd<'_>) -> io::Result<Notif> {
    // SAFETY: the kernel requires a zeroed struct.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV fills n.
    if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        arch: n.data.arch,
        nr: n.data.nr as u32,
        args: n.data.args,
    })
}

pub(super) fn respond(listener: BorrowedFd<'_>, id: u64, answer: Result<i64, i32>) -> io::Result<()> {
    let (val, error) = match answer {
        Ok(v) => (v, 0),
        Err(e) => (0, -e),
    };
    let resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags: 0,
    };
    // SAFETY: NOTIF_SEND reads resp.
    if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) } < 0 {
        let e = io::Error::last_os_error();
        // The caller died or was interrupted meanwhile: nothing to answer.
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Fails with ENOENT unless the notification is still pending, so that a pid
/// reused after the caller died is never acted on.
pub(super) fn valid(listener: BorrowedFd<'_>, id: u64) -> Result<(), i32> {
    // SAFETY: NOTIF_ID_VALID reads a u64.
    if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) } < 0 {
        return Err(libc::ENOENT);
    }
    Ok(())
}

fn local_address(sock: &OwnedFd) -> Option<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; getsockname fills up to len.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe { libc::getsockname(sock.as_raw_fd(), &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return None;
    }
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let sin: libc::sockaddr_in = unsafe { std::ptr::read(&ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let sin6: libc::sockaddr_in6 = unsafe { std::ptr::read(&ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// Binds a socket to an address of the supervisor's own making.
pub fn bind(sock: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    let r = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sin is a valid sockaddr_in of its size.
            unsafe {
                libc::bind(
                    sock.as_raw_fd(),
                    &sin as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sin) as u32,
                )
            }
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sin6 is a valid sockaddr_in6 of its size.
            unsafe {
                libc::bind(
                    sock.as_raw_fd(),
                    &sin6 as *const _ as *const libc::sockaddr,
                    std::mem::size_of_val(&sin6) as u32,
                )
            }
        }
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Copies `len` bytes at `addr` of process `pid`, once.
pub(super) fn read_memory(pid: u32, addr: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: local points into buf, of len bytes; remote is only read by the
    // kernel, in the other process.
    let n = unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != len {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(buf)
}

/// Writes an output argument into process `pid`.
pub(super) fn write_memory(pid: u32, addr: u64, bytes: &[u8]) -> io::Result<()> {
    let local = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: local points into bytes; the kernel writes only the other process.
    let n = unsafe { libc::process_vm_writev(pid as i32, &local, 1, &remote, 1, 0) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn prlimit(pid: i32, resource: u32, new: Option<(u64, u64)>) -> io::Result<(u64, u64)> {
    let new = new.map(|(cur, max)| libc::rlimit64 {
        rlim_cur: cur,
        rlim_max: max,
    });
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: new and old are valid for the call or null.
    let r = unsafe {
        libc::prlimit64(
            pid,
            resource as libc::__rlimit_resource_t,
            new.as_ref().map_or(std::ptr::null(), |n| n as *const _),
            &mut old,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((old.rlim_cur, old.rlim_max))
    }
}

/// The effective uid of a process, as the host sees it.
fn euid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
}

/// A small /proc file in one read(2).
fn read_bytes(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    let n = File::open(path).ok()?.read(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

fn read_small(path: &str) -> Option<String> {
    read_bytes(path).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Text the jail chose, for a log line: printable ASCII other than space and
/// backslash as it is; `\n`, `\t`, `\r`, `\\` and `\xNN` for every other
/// byte, so that it can neither end the line nor pose as another field.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            b'\\' => out.push_str("\\\\"),
            0x21..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The log of denied calls: lines limited in rate, the file in size.
struct DenialLog {
    file: LogFile,
    /// When the current one-second window began.
    window: Instant,
    /// Lines written in it.
    lines: u32,
    /// Lines not written since the last "suppressed" line.
    suppressed: u64,
    /// A write failed: said once, not for every denial.
    failed: bool,
}

impl DenialLog {
    fn new(file: LogFile) -> DenialLog {
        DenialLog {
            file,
            window: Instant::now(),
            lines: 0,
            suppressed: 0,
            failed: false,
        }
    }

    fn line(&mut self, line: &str) {
        if self.window.elapsed().as_secs() >= 1 {
            self.flush_suppressed();
            self.window = Instant::now();
            self.lines = 0;
        }
        if self.lines < DENIALS_PER_SECOND {
            self.lines += 1;
            self.write(line);
        } else {
            self.suppressed += 1;
        }
    }

    fn flush_suppressed(&mut self) {
        if self.suppressed > 0 {
            let line = format!(
                "{} suppressed {} lines: more than {DENIALS_PER_SECOND} denied calls in a second\n",
                timestamp(),
                self.suppressed
            );
            self.suppressed = 0;
            self.write(&line);
        }
    }

    fn write(&mut self, line: &str) {
        if let Err(e) = self.file.write(line.as_bytes())
            && !self.failed
        {
            self.failed = true;
            tracing::warn!("denial log {}: {e}; lines are dropped", self.file.path().display());
        }
    }
}

/// The thread group (process) of a thread, as the host sees it.
fn tgid(tid: u32) -> Option<i32> {
    let status = read_small(&format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A process's pid in its innermost pid namespace (the jail's).
fn ns_pid(pid: u32) -> Option<i32> {
    let status = read_small(&format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn jail_text_cannot_forge_a_line_or_a_field() {
        assert_eq!(escape(b"nginx"), "nginx");
        assert_eq!(escape(b"a\nb"), "a\\nb");
        assert_eq!(escape(b"x allow=ipc"), "x\\x20allow=ipc");
        assert_eq!(escape(b"\\x0a\t\r\x1b\xff"), "\\\\x0a\\t\\r\\x1b\\xff");
    }

    #[test]
    fn civil_dates() {
        use crate::state::civil;
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_000), (2022, 1, 8));
        assert_eq!(civil(20_779), (2026, 11, 22));
    }
}
