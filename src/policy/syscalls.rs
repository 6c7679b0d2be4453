//! The syscall rule table: what every call may do, on every ABI, and why.
//!
//! Rules are written by kernel name and apply on each ABI that has the call.
//! Conditions look only at register values (the call's integer arguments), never
//! at memory they point to: DESIGN.md's one security rule. Integer arguments are
//! compared on their low 32 bits, as the kernel reads them; comparing 64 bits would
//! let a caller slip past with a set upper half (CVE-2019-10063).

use std::fmt;

use serde::Serialize;

use super::Why;
use super::host::{Degraded, why as host_why};
use crate::facts::HostFacts;
use crate::model::{Allow, Jail, NetworkMode};
use crate::syscalls::{Abi, Sysno};

/// Error numbers the policy returns (the same on every ABI sysjail supports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Errno {
    /// Operation not permitted.
    EPERM,
    /// Permission denied.
    EACCES,
    /// Invalid argument.
    EINVAL,
    /// Function not implemented: what a kernel without the call says, so
    /// libraries fall back.
    ENOSYS,
    /// Protocol not supported: the old manual's answer for forbidden domains.
    EPROTONOSUPPORT,
    /// Address family not supported: a family the jail has no address of.
    EAFNOSUPPORT,
}

impl Errno {
    /// The number.
    pub const fn number(self) -> u16 {
        match self {
            Errno::EPERM => 1,
            Errno::EACCES => 13,
            Errno::EINVAL => 22,
            Errno::ENOSYS => 38,
            Errno::EPROTONOSUPPORT => 93,
            Errno::EAFNOSUPPORT => 97,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Calls the supervisor carries out itself, with its own copy of the arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Notify {
    /// listen(2): binds a never-bound socket to the first address, then listens.
    Listen,
    /// Raising a hard rlimit (`allow = ["rlimit"]`): the supervisor calls prlimit.
    Rlimit,
    /// A denied call, logged by the supervisor, which answers with the errno.
    Denied,
    /// reboot(2): EPERM for everyone; from jail root, the supervisor then
    /// halts the jail (the old manual's promise, without CAP_SYS_BOOT).
    Reboot,
    /// i386 socketcall(2) whose arguments the rules need (SOCKET, SOCKETPAIR,
    /// LISTEN): they are in memory, so the supervisor copies them once,
    /// applies the direct call's rule to its copy and makes the call itself
    /// (the socket in the caller's namespaces, with its credentials).
    Socketcall,
}

/// What happens to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action", content = "errno")]
pub enum Action {
    /// The kernel runs it.
    Allow,
    /// It fails with this error, without reaching the kernel.
    Errno(Errno),
    /// The process is killed (an ABI the filter does not know).
    KillProcess,
    /// The supervisor decides and answers (seccomp user notification).
    Notify(Notify),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Errno(e) => write!(f, "{e}"),
            Action::KillProcess => f.write_str("kill"),
            Action::Notify(n) => write!(
                f,
                "supervisor({})",
                serde_json::to_value(n)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ),
        }
    }
}

/// A test of one integer argument's low 32 bits (or, for [`Test::Zero64`], of
/// the whole register).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Test {
    /// Equal.
    Eq(u32),
    /// One of the values.
    In(Vec<u32>),
    /// None of the values.
    NotIn(Vec<u32>),
    /// `arg & mask == value`.
    MaskedEq {
        /// Bits compared.
        mask: u32,
        /// Their required value.
        value: u32,
    },
    /// Any of these bits set.
    AnyBits(u32),
    /// The whole 64-bit register is zero (a NULL pointer; the pointer, never
    /// what it points to).
    Zero64,
}

impl Test {
    /// The values where the test's answer can change: its constants and
    /// their neighbours, for tests that hold a compiled filter to the table.
    pub fn edges(&self) -> Vec<u32> {
        let constants: Vec<u32> = match self {
            Test::Eq(v) => vec![*v],
            Test::In(vs) | Test::NotIn(vs) => vs.clone(),
            Test::MaskedEq { mask, value } => vec![*value, *value | !*mask, *mask],
            Test::AnyBits(b) => vec![*b, *b & b.wrapping_neg()],
            Test::Zero64 => vec![],
        };
        constants
            .iter()
            .flat_map(|&c| [c, c.wrapping_add(1), c.wrapping_sub(1)])
            .collect()
    }
}

/// What an argument holds, so that its values can be named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArgKind {
    /// A plain number.
    Int,
    /// A socket domain (AF_*).
    Domain,
    /// A socket type (SOCK_*), with its flags.
    SockType,
    /// An inet protocol (IPPROTO_*).
    IpProtocol,
    /// A netlink protocol (NETLINK_*).
    NetlinkProtocol,
    /// clone(2) and unshare(2) flags (CLONE_*).
    CloneFlags,
    /// An ioctl(2) request.
    IoctlRequest,
    /// socketcall(2)'s call (SYS_*).
    SocketcallCall,
    /// A personality(2) value.
    Personality,
    /// open(2) flags (O_*).
    OpenFlags,
    /// A file mode.
    Mode,
    /// A pointer (compared with NULL only).
    Pointer,
}

impl ArgKind {
    /// The C name of `value` as this argument holds it: a constant, or flags
    /// joined with `|`; `None` when not every bit has a name.
    pub fn name(self, value: u32) -> Option<String> {
        use consts::*;
        let exact: &[(u32, &str)] = match self {
            ArgKind::Domain => &[
                (AF_UNIX, "AF_UNIX"),
                (AF_INET, "AF_INET"),
                (AF_INET6, "AF_INET6"),
                (AF_NETLINK, "AF_NETLINK"),
                (AF_PACKET, "AF_PACKET"),
            ],
            ArgKind::SockType => &[
                (SOCK_STREAM, "SOCK_STREAM"),
                (SOCK_DGRAM, "SOCK_DGRAM"),
                (SOCK_RAW, "SOCK_RAW"),
                (SOCK_RDM, "SOCK_RDM"),
                (SOCK_SEQPACKET, "SOCK_SEQPACKET"),
                (SOCK_DCCP, "SOCK_DCCP"),
                (SOCK_PACKET, "SOCK_PACKET"),
                (SOCK_TYPE_MASK, "SOCK_TYPE_MASK"),
            ],
            ArgKind::IpProtocol => &[
                (0, "0"),
                (IPPROTO_ICMP, "IPPROTO_ICMP"),
                (IPPROTO_TCP, "IPPROTO_TCP"),
                (IPPROTO_UDP, "IPPROTO_UDP"),
                (IPPROTO_ICMPV6, "IPPROTO_ICMPV6"),
                (IPPROTO_RAW, "IPPROTO_RAW"),
            ],
            ArgKind::NetlinkProtocol => &[(NETLINK_ROUTE, "NETLINK_ROUTE")],
            ArgKind::SocketcallCall => &[
                (SYS_SOCKET, "SYS_SOCKET"),
                (SYS_LISTEN, "SYS_LISTEN"),
                (SYS_SOCKETPAIR, "SYS_SOCKETPAIR"),
            ],
            ArgKind::IoctlRequest => IOCTL_NAMES,
            ArgKind::Personality => &[(PER_LINUX, "PER_LINUX"), (PERSONALITY_QUERY, "0xffffffff (query)")],
            ArgKind::Int | ArgKind::CloneFlags | ArgKind::OpenFlags | ArgKind::Mode | ArgKind::Pointer => &[],
        };
        let net_config: &[(u32, &str)] = if self == ArgKind::IoctlRequest {
            NET_CONFIG_IOCTLS
        } else {
            &[]
        };
        if let Some((_, name)) = exact.iter().chain(net_config).find(|(v, _)| *v == value) {
            return Some((*name).to_string());
        }
        let bits: &[(u32, &str)] = match self {
            ArgKind::CloneFlags => &[
                (CLONE_NEWTIME, "CLONE_NEWTIME"),
                (CLONE_NEWNS, "CLONE_NEWNS"),
                (CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
                (CLONE_NEWUTS, "CLONE_NEWUTS"),
                (CLONE_NEWIPC, "CLONE_NEWIPC"),
                (CLONE_NEWUSER, "CLONE_NEWUSER"),
                (CLONE_NEWPID, "CLONE_NEWPID"),
                (CLONE_NEWNET, "CLONE_NEWNET"),
            ],
            ArgKind::Personality => &[
                (PER_LINUX32, "PER_LINUX32"),
                (UNAME26, "UNAME26"),
                (ADDR_NO_RANDOMIZE, "ADDR_NO_RANDOMIZE"),
            ],
            ArgKind::OpenFlags => &[(O_CREAT, "O_CREAT"), (O_TMPFILE, "O_TMPFILE")],
            ArgKind::Mode => &[(S_ISUID, "S_ISUID"), (S_ISGID, "S_ISGID")],
            _ => return None,
        };
        let named: Vec<&str> = bits.iter().filter(|(b, _)| value & b == *b).map(|(_, n)| *n).collect();
        let covered = bits
            .iter()
            .filter(|(b, _)| value & b == *b)
            .fold(0, |acc, (b, _)| acc | b);
        (value != 0 && covered == value).then(|| named.join("|"))
    }
}

/// A condition on argument `arg` (0-based).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Cond {
    /// Argument index, 0 to 5.
    pub arg: u8,
    /// Its name, for people.
    pub name: &'static str,
    /// What it holds, so that values print by name.
    pub kind: ArgKind,
    /// The test.
    pub test: Test,
}

impl Cond {
    /// Evaluates the condition on register values.
    pub fn holds(&self, args: &[u64; 6]) -> bool {
        let full = args[self.arg as usize];
        let low = full as u32;
        match &self.test {
            Test::Eq(v) => low == *v,
            Test::In(vs) => vs.binary_search(&low).is_ok(),
            Test::NotIn(vs) => vs.binary_search(&low).is_err(),
            Test::MaskedEq { mask, value } => low & mask == *value,
            Test::AnyBits(bits) => low & bits != 0,
            Test::Zero64 => full == 0,
        }
    }
}

/// A conditional outcome: when every condition holds, `then`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Arm {
    /// All must hold.
    pub when: Vec<Cond>,
    /// The outcome.
    pub then: Action,
    /// Why.
    pub why: Why,
    /// The `allow` entry that removes this arm, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<Allow>,
}

/// What one call may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The call.
    pub call: Sysno,
    /// Checked in order; the first whose conditions hold decides.
    pub arms: Vec<Arm>,
    /// When no arm matches.
    pub otherwise: Action,
    /// Why `otherwise`.
    pub why: Why,
    /// The `allow` entry that lifts `otherwise`, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_by: Option<Allow>,
}

impl Rule {
    /// The outcome for these arguments, why, and the `allow` entry that
    /// would change it.
    pub fn decide(&self, args: &[u64; 6]) -> (Action, &Why, Option<Allow>) {
        for arm in &self.arms {
            if arm.when.iter().all(|c| c.holds(args)) {
                return (arm.then, &arm.why, arm.lifted_by);
            }
        }
        (self.otherwise, &self.why, self.lifted_by)
    }
}

/// Every syscall decision of a jail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyscallPolicy {
    /// ABIs filtered; on a given machine, the kernel's own subset is installed.
    pub abis: Vec<Abi>,
    /// For a call with no rule (unknown to this policy, or new in the kernel).
    pub default: Action,
    /// For the x86_64 x32 ABI's numbers (bit 30 set).
    pub x32: Action,
    /// For an ABI not in `abis`.
    pub unknown_abi: Action,
    /// Rules, sorted by call name.
    pub rules: Vec<Rule>,
}

impl SyscallPolicy {
    /// The rule for `call`, if any.
    pub fn rule(&self, call: Sysno) -> Option<&Rule> {
        self.rules
            .binary_search_by_key(&call, |r| r.call)
            .ok()
            .map(|i| &self.rules[i])
    }

    /// The reference decision for a call as the kernel presents it to a filter.
    /// The compiled BPF program must agree with this for every input.
    pub fn decide(&self, arch: u32, nr: u32, args: &[u64; 6]) -> Action {
        let Some(abi) = self.abis.iter().copied().find(|a| a.audit_arch() == arch) else {
            return self.unknown_abi;
        };
        if abi == Abi::X86_64 && nr & X32_SYSCALL_BIT != 0 {
            return self.x32;
        }
        match abi.call(nr).and_then(|c| self.rule(c)) {
            Some(rule) => rule.decide(args).0,
            None => self.default,
        }
    }
}

/// Bit 30 marks x32 numbers on x86_64.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Constants the rules test, by their C names.
pub mod consts {
    #![allow(missing_docs)]
    pub const AF_UNIX: u32 = 1;
    pub const AF_INET: u32 = 2;
    pub const AF_INET6: u32 = 10;
    pub const AF_NETLINK: u32 = 16;
    pub const AF_PACKET: u32 = 17;
    pub const NETLINK_ROUTE: u32 = 0;
    pub const SOCK_TYPE_MASK: u32 = 0xf;
    pub const SOCK_RAW: u32 = 3;
    pub const IPPROTO_RAW: u32 = 255;
    pub const SOCK_STREAM: u32 = 1;
    pub const SOCK_DGRAM: u32 = 2;
    pub const SOCK_RDM: u32 = 4;
    pub const SOCK_SEQPACKET: u32 = 5;
    pub const SOCK_DCCP: u32 = 6;
    pub const SOCK_PACKET: u32 = 10;
    pub const IPPROTO_ICMP: u32 = 1;
    pub const IPPROTO_TCP: u32 = 6;
    pub const IPPROTO_UDP: u32 = 17;
    pub const IPPROTO_ICMPV6: u32 = 58;
    pub const CLONE_NEWTIME: u32 = 0x0000_0080;
    pub const CLONE_NEWNS: u32 = 0x0002_0000;
    pub const CLONE_NEWCGROUP: u32 = 0x0200_0000;
    pub const CLONE_NEWUTS: u32 = 0x0400_0000;
    pub const CLONE_NEWIPC: u32 = 0x0800_0000;
    pub const CLONE_NEWUSER: u32 = 0x1000_0000;
    pub const CLONE_NEWPID: u32 = 0x2000_0000;
    pub const CLONE_NEWNET: u32 = 0x4000_0000;
    pub const TIOCSTI: u32 = 0x5412;
    pub const TIOCLINUX: u32 = 0x541c;
    pub const FS_IOC_SETFLAGS: u32 = 0x4008_6602;
    pub const FS_IOC32_SETFLAGS: u32 = 0x4004_6602;
    pub const FS_IOC_FSSETXATTR: u32 = 0x401c_5820;
    pub const SYS_SOCKET: u32 = 1;
    pub const SYS_LISTEN: u32 = 4;
    pub const SYS_SOCKETPAIR: u32 = 8;
    pub const PER_LINUX: u32 = 0;
    pub const PER_LINUX32: u32 = 0x0008;
    pub const ADDR_NO_RANDOMIZE: u32 = 0x0004_0000;
    pub const UNAME26: u32 = 0x0002_0000;
    pub const PERSONALITY_QUERY: u32 = 0xffff_ffff;
    pub const O_CREAT: u32 = 0o100;
    pub const O_TMPFILE: u32 = 0o20_000_000;
    pub const S_ISUID: u32 = 0o4000;
    pub const S_ISGID: u32 = 0o2000;
}

use consts::*;

/// Namespace flags of clone(2) (CLONE_NEWTIME shares its bit with CSIGNAL there).
const CLONE_NS_FLAGS: u32 =
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

/// Socket ioctls that change network configuration (the old manual's sys/sockio.h
/// writes): routes, interface flags, addresses, names, ARP, bridges, bonds, tunnels
/// (SIOCDEVPRIVATE: tunnel add/del/change).
const NET_CONFIG_IOCTLS: &[(u32, &str)] = &[
    (0x890b, "SIOCADDRT"),
    (0x890c, "SIOCDELRT"),
    (0x890d, "SIOCRTMSG"),
    (0x8911, "SIOCSIFLINK"),
    (0x8914, "SIOCSIFFLAGS"),
    (0x8916, "SIOCSIFADDR"),
    (0x8918, "SIOCSIFDSTADDR"),
    (0x891a, "SIOCSIFBRDADDR"),
    (0x891c, "SIOCSIFNETMASK"),
    (0x891e, "SIOCSIFMETRIC"),
    (0x8920, "SIOCSIFMEM"),
    (0x8922, "SIOCSIFMTU"),
    (0x8923, "SIOCSIFNAME"),
    (0x8924, "SIOCSIFHWADDR"),
    (0x8926, "SIOCSIFENCAP"),
    (0x8931, "SIOCADDMULTI"),
    (0x8932, "SIOCDELMULTI"),
    (0x8934, "SIOCSIFPFLAGS"),
    (0x8936, "SIOCDIFADDR"),
    (0x8937, "SIOCSIFHWBROADCAST"),
    (0x8941, "SIOCSIFBR"),
    (0x8943, "SIOCSIFTXQLEN"),
    (0x8946, "SIOCETHTOOL"),
    (0x8949, "SIOCSMIIREG"),
    (0x894a, "SIOCWANDEV"),
    (0x8953, "SIOCDARP"),
    (0x8955, "SIOCSARP"),
    (0x8960, "SIOCDRARP"),
    (0x8962, "SIOCSRARP"),
    (0x8971, "SIOCSIFMAP"),
    (0x8980, "SIOCADDDLCI"),
    (0x8981, "SIOCDELDLCI"),
    (0x8983, "SIOCSIFVLAN"),
    (0x8990, "SIOCBONDENSLAVE"),
    (0x8991, "SIOCBONDRELEASE"),
    (0x8992, "SIOCBONDSETHWADDR"),
    (0x8995, "SIOCBONDCHANGEACTIVE"),
    (0x89a0, "SIOCBRADDBR"),
    (0x89a1, "SIOCBRDELBR"),
    (0x89a2, "SIOCBRADDIF"),
    (0x89a3, "SIOCBRDELIF"),
    (0x89b0, "SIOCSHWTSTAMP"),
    (0x89f0, "SIOCDEVPRIVATE"),
    (0x89f1, "SIOCDEVPRIVATE+1"),
    (0x89f2, "SIOCDEVPRIVATE+2"),
    (0x89f3, "SIOCDEVPRIVATE+3"),
    (0x89f4, "SIOCDEVPRIVATE+4"),
    (0x89f5, "SIOCDEVPRIVATE+5"),
    (0x89f6, "SIOCDEVPRIVATE+6"),
    (0x89f7, "SIOCDEVPRIVATE+7"),
    (0x89f8, "SIOCDEVPRIVATE+8"),
    (0x89f9, "SIOCDEVPRIVATE+9"),
    (0x89fa, "SIOCDEVPRIVATE+10"),
    (0x89fb, "SIOCDEVPRIVATE+11"),
    (0x89fc, "SIOCDEVPRIVATE+12"),
    (0x89fd, "SIOCDEVPRIVATE+13"),
    (0x89fe, "SIOCDEVPRIVATE+14"),
    (0x89ff, "SIOCDEVPRIVATE+15"),
];

/// The ioctl requests the rules test, but for the network configuration
/// ones ([`NET_CONFIG_IOCTLS`]), by name.
const IOCTL_NAMES: &[(u32, &str)] = &[
    (TIOCSTI, "TIOCSTI"),
    (TIOCLINUX, "TIOCLINUX"),
    (FS_IOC_SETFLAGS, "FS_IOC_SETFLAGS"),
    (FS_IOC32_SETFLAGS, "FS_IOC32_SETFLAGS"),
    (FS_IOC_FSSETXATTR, "FS_IOC_FSSETXATTR"),
];

/// Calls ordinary programs need, allowed whatever their arguments (modelled on
/// Docker's default profile). Every call here is decided by its number alone,
/// so the kernel's seccomp action cache answers it without running the filter.
const ALLOWED: &[Sysno] = {
    use Sysno::*;
    &[
        // Files and directories.
        access,
        chdir,
        chown,
        chown32,
        chroot,
        close,
        close_range,
        copy_file_range,
        dup,
        dup2,
        dup3,
        faccessat,
        faccessat2,
        fadvise64,
        fadvise64_64,
        arm_fadvise64_64,
        fallocate,
        fchdir,
        fchown,
        fchown32,
        fchownat,
        fcntl,
        fcntl64,
        fdatasync,
        file_getattr,
        flock,
        fstat,
        fstat64,
        fstatat64,
        fstatfs,
        fstatfs64,
        fsync,
        ftruncate,
        ftruncate64,
        futimesat,
        getcwd,
        getdents,
        getdents64,
        lchown,
        lchown32,
        link,
        linkat,
        lseek,
        _llseek,
        lstat,
        lstat64,
        mkdir,
        mkdirat,
        name_to_handle_at,
        newfstatat,
        pread64,
        preadv,
        preadv2,
        pwrite64,
        pwritev,
        pwritev2,
        pipe,
        pipe2,
        read,
        readahead,
        readlink,
        readlinkat,
        readv,
        rename,
        renameat,
        renameat2,
        rmdir,
        sendfile,
        sendfile64,
        splice,
        stat,
        stat64,
        statfs,
        statfs64,
        statx,
        symlink,
        symlinkat,
        sync,
        sync_file_range,
        sync_file_range2,
        syncfs,
        tee,
        truncate,
        truncate64,
        umask,
        unlink,
        unlinkat,
        utime,
        utimensat,
        utimensat_time64,
        utimes,
        vmsplice,
        write,
        writev,
        cachestat,
        // Extended attributes.
        fgetxattr,
        flistxattr,
        fremovexattr,
        fsetxattr,
        getxattr,
        getxattrat,
        lgetxattr,
        listxattr,
        listxattrat,
        llistxattr,
        lremovexattr,
        lsetxattr,
        removexattr,
        removexattrat,
        setxattr,
        setxattrat,
        // Polling, events, timers.
        epoll_create,
        epoll_create1,
        epoll_ctl,
        epoll_ctl_old,
        epoll_pwait,
        epoll_pwait2,
        epoll_wait,
        epoll_wait_old,
        eventfd,
        eventfd2,
        inotify_add_watch,
        inotify_init,
        inotify_init1,
        inotify_rm_watch,
        fanotify_mark,
        pause,
        poll,
        ppoll,
        ppoll_time64,
        pselect6,
        pselect6_time64,
        select,
        _newselect,
        signalfd,
        signalfd4,
        timerfd_create,
        timerfd_gettime,
        timerfd_gettime64,
        timerfd_settime,
        timerfd_settime64,
        timer_create,
        timer_delete,
        timer_getoverrun,
        timer_gettime,
        timer_gettime64,
        timer_settime,
        timer_settime64,
        alarm,
        getitimer,
        setitimer,
        // Asynchronous I/O (not io_uring).
        io_cancel,
        io_destroy,
        io_getevents,
        io_pgetevents,
        io_pgetevents_time64,
        io_setup,
        io_submit,
        ioprio_get,
        ioprio_set,
        // Time.
        clock_getres,
        clock_getres_time64,
        clock_gettime,
        clock_gettime64,
        clock_nanosleep,
        clock_nanosleep_time64,
        gettimeofday,
        nanosleep,
        time,
        times,
        // Memory.
        brk,
        madvise,
        map_shadow_stack,
        membarrier,
        memfd_create,
        memfd_secret,
        mincore,
        mlock,
        mlock2,
        mlockall,
        mmap,
        mmap2,
        mprotect,
        mremap,
        mseal,
        msync,
        munlock,
        munlockall,
        munmap,
        pkey_alloc,
        pkey_free,
        pkey_mprotect,
        remap_file_pages,
        process_madvise,
        process_mrelease,
        // Processes, threads, signals.
        execve,
        execveat,
        exit,
        exit_group,
        fork,
        vfork,
        wait4,
        waitid,
        waitpid,
        getpid,
        getppid,
        gettid,
        getpgid,
        getpgrp,
        setpgid,
        getsid,
        setsid,
        getpriority,
        setpriority,
        nice,
        kill,
        tkill,
        tgkill,
        pidfd_open,
        pidfd_send_signal,
        pidfd_getfd,
        ptrace,
        process_vm_readv,
        process_vm_writev,
        rt_sigaction,
        rt_sigpending,
        rt_sigprocmask,
        rt_sigqueueinfo,
        rt_sigreturn,
        rt_sigsuspend,
        rt_sigtimedwait,
        rt_sigtimedwait_time64,
        rt_tgsigqueueinfo,
        sigaction,
        sigaltstack,
        sigpending,
        sigprocmask,
        sigreturn,
        sigsuspend,
        restart_syscall,
        set_robust_list,
        get_robust_list,
        set_tid_address,
        futex,
        futex_time64,
        futex_waitv,
        futex_wake,
        futex_wait,
        futex_requeue,
        rseq,
        sched_getaffinity,
        sched_getattr,
        sched_getparam,
        sched_get_priority_max,
        sched_get_priority_min,
        sched_getscheduler,
        sched_rr_get_interval,
        sched_rr_get_interval_time64,
        sched_setaffinity,
        sched_setattr,
        sched_setparam,
        sched_setscheduler,
        sched_yield,
        getcpu,
        getrusage,
        prctl,
        arch_prctl,
        get_thread_area,
        set_thread_area,
        arm_set_tls,
        arm_get_tls,
        arm_cacheflush,
        arm_breakpoint,
        uretprobe,
        uprobe,
        seccomp,
        landlock_create_ruleset,
        landlock_add_rule,
        landlock_restrict_self,
        lsm_get_self_attr,
        lsm_list_modules,
        statmount,
        listmount,
        sysinfo,
        uname,
        getrandom,
        capget,
        capset,
        getrlimit,
        ugetrlimit,
        // Credentials (the kernel checks capabilities, which the jail's user namespace confines).
        getuid,
        getuid32,
        geteuid,
        geteuid32,
        getgid,
        getgid32,
        getegid,
        getegid32,
        getresuid,
        getresuid32,
        getresgid,
        getresgid32,
        getgroups,
        getgroups32,
        setuid,
        setuid32,
        setgid,
        setgid32,
        setreuid,
        setreuid32,
        setregid,
        setregid32,
        setresuid,
        setresuid32,
        setresgid,
        setresgid32,
        setfsuid,
        setfsuid32,
        setfsgid,
        setfsgid32,
        setgroups,
        setgroups32,
        // Sockets: creation is ruled below; the rest acts on sockets the jail holds.
        accept,
        accept4,
        bind,
        connect,
        getpeername,
        getsockname,
        getsockopt,
        recv,
        recvfrom,
        recvmmsg,
        recvmmsg_time64,
        recvmsg,
        send,
        sendmmsg,
        sendmsg,
        sendto,
        setsockopt,
        shutdown,
        // listen(2) is ruled below.
        // POSIX message queues (the jail's IPC namespace holds them).
        mq_getsetattr,
        mq_notify,
        mq_open,
        mq_timedreceive,
        mq_timedreceive_time64,
        mq_timedsend,
        mq_timedsend_time64,
        mq_unlink,
    ]
};

/// Calls denied whatever their arguments, with the error and the reason.
const DENIED: &[(Sysno, Errno, &str)] = {
    use Errno::*;
    use Sysno::*;
    &[
        (io_uring_setup, ENOSYS, "io_uring performs calls the filter never sees"),
        (io_uring_enter, ENOSYS, "io_uring performs calls the filter never sees"),
        (
            io_uring_register,
            ENOSYS,
            "io_uring performs calls the filter never sees",
        ),
        (bpf, EPERM, "BPF programs run in the kernel"),
        (
            perf_event_open,
            EPERM,
            "perf events expose kernel and other processes' activity",
        ),
        (userfaultfd, EPERM, "userfaultfd widens kernel race windows"),
        (keyctl, ENOSYS, "kernel keyrings are not namespaced"),
        (add_key, ENOSYS, "kernel keyrings are not namespaced"),
        (request_key, ENOSYS, "kernel keyrings are not namespaced"),
        (kexec_load, EPERM, "replaces the running kernel"),
        (kexec_file_load, EPERM, "replaces the running kernel"),
        (mount, EPERM, "the jail's mounts are fixed at launch"),
        (umount, EPERM, "the jail's mounts are fixed at launch"),
        (umount2, EPERM, "the jail's mounts are fixed at launch"),
        (pivot_root, EPERM, "the jail's root is fixed at launch"),
        (open_tree, EPERM, "new mount API: the jail's mounts are fixed at launch"),
        (
            open_tree_attr,
            EPERM,
            "new mount API: the jail's mounts are fixed at launch",
        ),
        (
            move_mount,
            EPERM,
            "new mount API: the jail's mounts are fixed at launch",
        ),
        (fsopen, EPERM, "new mount API: the jail's mounts are fixed at launch"),
        (fsconfig, EPERM, "new mount API: the jail's mounts are fixed at launch"),
        (fsmount, EPERM, "new mount API: the jail's mounts are fixed at launch"),
        (fspick, EPERM, "new mount API: the jail's mounts are fixed at launch"),
        (
            mount_setattr,
            EPERM,
            "new mount API: the jail's mounts are fixed at launch",
        ),
        (
            open_by_handle_at,
            EPERM,
            "opens files by handle, past any directory (the Shocker escape)",
        ),
        (setns, EPERM, "entering other namespaces"),
        (acct, EPERM, "process accounting is host-wide"),
        (swapon, EPERM, "swap is host-wide"),
        (swapoff, EPERM, "swap is host-wide"),
        (settimeofday, EPERM, "the clock is host-wide"),
        (stime, EPERM, "the clock is host-wide"),
        (clock_settime, EPERM, "the clock is host-wide"),
        (clock_settime64, EPERM, "the clock is host-wide"),
        (adjtimex, EPERM, "the clock is host-wide"),
        (clock_adjtime, EPERM, "the clock is host-wide"),
        (clock_adjtime64, EPERM, "the clock is host-wide"),
        (syslog, EPERM, "the kernel log is host-wide"),
        (
            sethostname,
            EPERM,
            "promise: the hostname is the jail's (old manual: EPERM)",
        ),
        (
            setdomainname,
            EPERM,
            "promise: the domain name is the jail's (old manual: EPERM)",
        ),
        (
            init_module,
            EPERM,
            "promise: no kernel module loading (old manual: EPERM)",
        ),
        (
            finit_module,
            EPERM,
            "promise: no kernel module loading (old manual: EPERM)",
        ),
        (
            delete_module,
            EPERM,
            "promise: no kernel module loading (old manual: EPERM)",
        ),
        (
            create_module,
            EPERM,
            "promise: no kernel module loading (old manual: EPERM)",
        ),
        (
            clone3,
            ENOSYS,
            "its flags live in memory a filter may not read; libc falls back to clone",
        ),
        (fanotify_init, EPERM, "fanotify watches whole file systems"),
        (iopl, EPERM, "raw I/O port access"),
        (ioperm, EPERM, "raw I/O port access"),
        (modify_ldt, EPERM, "segment descriptors: a long history of kernel bugs"),
        (vm86, EPERM, "virtual 8086 mode"),
        (vm86old, EPERM, "virtual 8086 mode"),
        (uselib, EPERM, "obsolete a.out loader"),
        (quotactl, EPERM, "disk quotas are host-wide"),
        (quotactl_fd, EPERM, "disk quotas are host-wide"),
        (lookup_dcookie, EPERM, "profiling interface"),
        (vhangup, EPERM, "hangs up the terminal of other sessions"),
        (lsm_set_self_attr, EPERM, "security module labels are set by the host"),
        (nfsservctl, EPERM, "kernel NFS server"),
    ]
};

fn why(reason: &'static str) -> Why {
    Why::Default(reason)
}

fn cond(arg: u8, name: &'static str, kind: ArgKind, test: Test) -> Cond {
    Cond { arg, name, kind, test }
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v.dedup();
    v
}

fn errno(e: Errno) -> Action {
    Action::Errno(e)
}

/// An unconditional rule.
fn rule(call: Sysno, otherwise: Action, why: Why, lifted_by: Option<Allow>) -> Rule {
    Rule {
        call,
        arms: Vec::new(),
        otherwise,
        why,
        lifted_by,
    }
}

/// An arm that an `allow` entry removes.
fn arm(when: Vec<Cond>, then: Action, reason: &'static str, lifted_by: Option<Allow>) -> Arm {
    Arm {
        when,
        then,
        why: why(reason),
        lifted_by,
    }
}

/// The calls every jail is allowed, and those every jail is denied.
fn fixed_rules() -> Vec<Rule> {
    let mut rules: Vec<Rule> = ALLOWED
        .iter()
        .map(|&call| rule(call, Action::Allow, why("ordinary programs need it"), None))
        .collect();
    rules.extend(
        DENIED
            .iter()
            .map(|&(call, e, reason)| rule(call, errno(e), why(reason), None)),
    );
    rules
}

/// SysV IPC: the old manual's EPERM unless `ipc`.
fn ipc_rules(jail: &Jail) -> impl Iterator<Item = Rule> + '_ {
    use Sysno::*;
    [
        msgget,
        msgsnd,
        msgrcv,
        msgctl,
        semget,
        semop,
        semctl,
        semtimedop,
        semtimedop_time64,
        shmget,
        shmat,
        shmdt,
        shmctl,
        ipc,
    ]
    .into_iter()
    .map(|call| {
        if jail.allow.contains(&Allow::Ipc) {
            rule(call, Action::Allow, Why::Allow(Allow::Ipc), None)
        } else {
            rule(
                call,
                errno(Errno::EPERM),
                why("promise: SysV IPC denied (old manual: EPERM)"),
                Some(Allow::Ipc),
            )
        }
    })
}

/// Compiles the syscall table of a jail for a host: the filter covers the
/// ABIs its kernel runs, and `allow rlimit` needs CAP_SYS_RESOURCE there.
pub fn compile(jail: &Jail, facts: &HostFacts, degraded: &mut Vec<Degraded>) -> SyscallPolicy {
    use Sysno::*;
    let allows = |a: Allow| jail.allow.contains(&a);
    let mut rules = fixed_rules();
    rules.extend(ipc_rules(jail));
    rules.push(socket_rule(jail, socket));
    rules.push(socketpair_rule(jail));
    rules.push(socketcall_rule(jail));
    rules.push(ioctl_rule(jail));
    rules.push(file_setattr_rule(jail));
    rules.push(clone_rule());
    rules.push(unshare_rule());
    rules.push(personality_rule());
    let can_raise = facts.has_cap(super::Capability::SYS_RESOURCE.number());
    if allows(Allow::Rlimit) && !can_raise {
        degraded.push(Degraded {
            what: "allow rlimit is not enforced: the kernel refuses raising a hard limit (EPERM)".into(),
            why: host_why(RLIMIT_NO_CAP),
        });
    }
    rules.extend(rlimit_rules(jail, can_raise));
    rules.push(listen_rule(jail));
    rules.extend(set_id_rules(jail));
    rules.push(rule(
        reboot,
        Action::Notify(Notify::Reboot),
        why("promise: reboot(2) denied with EPERM, and by jail root it halts the jail (old manual)"),
        None,
    ));

    rules.sort_by_key(|r| r.call);
    SyscallPolicy {
        abis: Abi::ALL.into_iter().filter(|a| facts.abis.contains(a)).collect(),
        default: errno(Errno::ENOSYS),
        x32: errno(Errno::ENOSYS),
        unknown_abi: Action::KillProcess,
        rules,
    }
}

fn socket_rule(jail: &Jail, call: Sysno) -> Rule {
    let mut arms = family_arms(jail);
    if !jail.allow.contains(&Allow::AllDomains) {
        arms.extend(domain_arms());
    }
    if !jail.allow.contains(&Allow::RawSockets) {
        arms.extend(raw_arms());
    }
    if jail.network.mode == NetworkMode::Host && call == Sysno::socket {
        arms.extend(host_stack_protocols());
    }
    let why_allow = match (
        jail.allow.contains(&Allow::AllDomains),
        jail.allow.contains(&Allow::RawSockets),
    ) {
        (true, _) => Why::Allow(Allow::AllDomains),
        (false, true) => Why::Allow(Allow::RawSockets),
        _ => why("an allowed domain and type"),
    };
    Rule {
        call,
        arms,
        otherwise: Action::Allow,
        why: why_allow,
        lifted_by: None,
    }
}

/// IPv4 and IPv6 sockets only for a jail with an address of the family, or
/// whose network is its own loopback alone.
fn family_arms(jail: &Jail) -> Vec<Arm> {
    let mut arms = Vec::new();
    if !jail.network.ipv4_allowed() {
        arms.push(arm(
            vec![cond(0, "domain", ArgKind::Domain, Test::Eq(AF_INET))],
            errno(Errno::EAFNOSUPPORT),
            "promise: IPv4 denied when the jail has no IPv4 address",
            None,
        ));
    }
    if !jail.network.ipv6_allowed() {
        arms.push(arm(
            vec![cond(0, "domain", ArgKind::Domain, Test::Eq(AF_INET6))],
            errno(Errno::EAFNOSUPPORT),
            "promise: IPv6 denied when the jail has no IPv6 address",
            None,
        ));
    }
    arms
}

/// Unless `all-domains`: unix, inet, inet6 and route sockets only.
fn domain_arms() -> [Arm; 3] {
    [
        arm(
            vec![cond(
                0,
                "domain",
                ArgKind::Domain,
                Test::NotIn(sorted(vec![AF_UNIX, AF_INET, AF_INET6, AF_NETLINK])),
            )],
            errno(Errno::EPROTONOSUPPORT),
            "promise: only unix, inet, inet6 and route sockets (old manual: EPROTONOSUPPORT)",
            Some(Allow::AllDomains),
        ),
        arm(
            vec![
                cond(0, "domain", ArgKind::Domain, Test::Eq(AF_NETLINK)),
                cond(
                    2,
                    "protocol",
                    ArgKind::NetlinkProtocol,
                    Test::NotIn(vec![NETLINK_ROUTE]),
                ),
            ],
            errno(Errno::EPROTONOSUPPORT),
            "promise: of netlink, only route sockets (AF_ROUTE's heir)",
            Some(Allow::AllDomains),
        ),
        // The obsolete SOCK_PACKET type makes a packet socket (AF_PACKET)
        // whatever the domain says; packet sockets bypass IP and so the
        // address programs too.
        arm(
            vec![cond(
                1,
                "type",
                ArgKind::SockType,
                Test::MaskedEq {
                    mask: SOCK_TYPE_MASK,
                    value: SOCK_PACKET,
                },
            )],
            errno(Errno::EPROTONOSUPPORT),
            "promise: only unix, inet, inet6 and route sockets: SOCK_PACKET is a packet socket",
            Some(Allow::AllDomains),
        ),
    ]
}

/// Unless `raw-sockets`: no SOCK_RAW and no IPPROTO_RAW.
fn raw_arms() -> [Arm; 2] {
    [
        // Netlink sockets are SOCK_RAW by nature; the promise is about packets.
        arm(
            vec![
                cond(0, "domain", ArgKind::Domain, Test::NotIn(vec![AF_NETLINK])),
                cond(
                    1,
                    "type",
                    ArgKind::SockType,
                    Test::MaskedEq {
                        mask: SOCK_TYPE_MASK,
                        value: SOCK_RAW,
                    },
                ),
            ],
            errno(Errno::EPERM),
            "promise: SOCK_RAW denied unless raw-sockets",
            Some(Allow::RawSockets),
        ),
        arm(
            vec![
                cond(0, "domain", ArgKind::Domain, Test::In(vec![AF_INET, AF_INET6])),
                cond(2, "protocol", ArgKind::IpProtocol, Test::Eq(IPPROTO_RAW)),
            ],
            errno(Errno::EPERM),
            "promise: IPPROTO_RAW denied unless raw-sockets",
            Some(Allow::RawSockets),
        ),
    ]
}

/// On the host's stack, inet sockets of TCP, UDP and ICMP echo only: the
/// address rule's programs see their binds, connects and sends. MPTCP opens
/// subflows from the host's other addresses, SCTP binds every host address
/// of a wildcard bind and adds more with setsockopt, and L2TP, DCCP and the
/// rest bind through paths with no hook. Applications fall back to TCP on
/// EPROTONOSUPPORT, as on a kernel built without them.
fn host_stack_protocols() -> Vec<Arm> {
    const WHY: &str = "promise: sockets live on the jail's addresses; on the host's stack, TCP, UDP and ICMP echo only";
    let inet = || cond(0, "domain", ArgKind::Domain, Test::In(vec![AF_INET, AF_INET6]));
    let of_type = |value| {
        cond(
            1,
            "type",
            ArgKind::SockType,
            Test::MaskedEq {
                mask: SOCK_TYPE_MASK,
                value,
            },
        )
    };
    let mut arms = vec![
        arm(
            vec![
                inet(),
                of_type(SOCK_STREAM),
                cond(2, "protocol", ArgKind::IpProtocol, Test::NotIn(vec![0, IPPROTO_TCP])),
            ],
            errno(Errno::EPROTONOSUPPORT),
            WHY,
            None,
        ),
        arm(
            vec![
                inet(),
                of_type(SOCK_DGRAM),
                cond(
                    2,
                    "protocol",
                    ArgKind::IpProtocol,
                    Test::NotIn(sorted(vec![0, IPPROTO_ICMP, IPPROTO_UDP, IPPROTO_ICMPV6])),
                ),
            ],
            errno(Errno::EPROTONOSUPPORT),
            WHY,
            None,
        ),
    ];
    for ty in [SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP, SOCK_PACKET] {
        arms.push(arm(vec![inet(), of_type(ty)], errno(Errno::EPROTONOSUPPORT), WHY, None));
    }
    arms
}

fn socketpair_rule(jail: &Jail) -> Rule {
    // Pairs exist for unix sockets only; another domain is refused like socket(2).
    let mut rule = socket_rule(jail, Sysno::socketpair);
    rule.arms.retain(|a| a.then != errno(Errno::EAFNOSUPPORT));
    rule
}

fn socketcall_rule(jail: &Jail) -> Rule {
    // i386's multiplexer passes its arguments in memory, which a filter may not
    // read: where a rule needs them, the supervisor copies them once, applies
    // the direct call's rule to its copy and makes the call itself. Other calls
    // (bind, connect, send...) meet the cgroup address hooks in the kernel
    // whatever the entry point; accept inherits the listener's address.
    let mut calls = vec![SYS_SOCKET, SYS_SOCKETPAIR];
    if listen_rule(jail).otherwise != Action::Allow {
        calls.push(SYS_LISTEN);
    }
    Rule {
        call: Sysno::socketcall,
        arms: vec![arm(
            vec![cond(0, "call", ArgKind::SocketcallCall, Test::In(sorted(calls)))],
            Action::Notify(Notify::Socketcall),
            "the arguments are in memory: the supervisor copies them, applies the socket, socketpair or listen rule \
             and makes the call itself",
            None,
        )],
        otherwise: Action::Allow,
        why: why("calls on sockets the jail already holds"),
        lifted_by: None,
    }
}

fn ioctl_rule(jail: &Jail) -> Rule {
    let mut arms = vec![
        arm(
            vec![cond(
                1,
                "request",
                ArgKind::IoctlRequest,
                Test::In(sorted(vec![TIOCSTI, TIOCLINUX])),
            )],
            errno(Errno::EPERM),
            "injects input into a terminal (CVE-2017-5226)",
            None,
        ),
        arm(
            vec![cond(
                1,
                "request",
                ArgKind::IoctlRequest,
                Test::In(sorted(NET_CONFIG_IOCTLS.iter().map(|(v, _)| *v).collect())),
            )],
            errno(Errno::EPERM),
            "promise: network configuration ioctls denied (old manual: EPERM)",
            None,
        ),
    ];
    if !jail.allow.contains(&Allow::Chflags) {
        arms.push(arm(
            vec![cond(
                1,
                "request",
                ArgKind::IoctlRequest,
                Test::In(sorted(vec![FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR])),
            )],
            errno(Errno::EPERM),
            "promise: inode flags (chflags) denied unless chflags",
            Some(Allow::Chflags),
        ));
    }
    Rule {
        call: Sysno::ioctl,
        arms,
        otherwise: Action::Allow,
        why: why("other device and socket requests"),
        lifted_by: None,
    }
}

fn file_setattr_rule(jail: &Jail) -> Rule {
    if jail.allow.contains(&Allow::Chflags) {
        rule(Sysno::file_setattr, Action::Allow, Why::Allow(Allow::Chflags), None)
    } else {
        rule(
            Sysno::file_setattr,
            errno(Errno::EPERM),
            why("promise: inode flags (chflags) denied unless chflags"),
            Some(Allow::Chflags),
        )
    }
}

/// Where a jail writes to host storage (its own tree, or a host directory
/// bound writable), the files it makes there are real on the host: a host
/// user who runs one marked set-user-id or set-group-id would take its owner's
/// ids. The mode is a register value of each call that sets it; openat2(2)
/// keeps it in memory, so it is refused and libc uses openat(2).
fn set_id_rules(jail: &Jail) -> Vec<Rule> {
    use Sysno::*;
    // (call, index of its flags argument if it creates only with O_CREAT, index of mode)
    const MODES: &[(Sysno, Option<u8>, u8)] = &[
        (chmod, None, 1),
        (fchmod, None, 1),
        (fchmodat, None, 2),
        (fchmodat2, None, 2),
        (creat, None, 1),
        (mknod, None, 1),
        (mknodat, None, 2),
        (open, Some(1), 2),
        (openat, Some(2), 3),
    ];
    let writes = jail.writes_host_storage();
    let mut rules: Vec<Rule> = MODES
        .iter()
        .map(|&(call, flags, mode)| {
            if !writes {
                return rule(call, Action::Allow, why("ordinary programs need it"), None);
            }
            let mut when = Vec::new();
            if let Some(flags) = flags {
                when.push(cond(
                    flags,
                    "flags",
                    ArgKind::OpenFlags,
                    Test::AnyBits(O_CREAT | O_TMPFILE),
                ));
            }
            when.push(cond(mode, "mode", ArgKind::Mode, Test::AnyBits(S_ISUID | S_ISGID)));
            Rule {
                call,
                arms: vec![arm(when, errno(Errno::EPERM), SET_ID_WHY, None)],
                otherwise: Action::Allow,
                why: why("ordinary programs need it"),
                lifted_by: None,
            }
        })
        .collect();
    rules.push(if writes {
        rule(
            openat2,
            errno(Errno::ENOSYS),
            why("its mode lives in memory a filter may not read; libc falls back to openat"),
            None,
        )
    } else {
        rule(openat2, Action::Allow, why("ordinary programs need it"), None)
    });
    rules
}

const SET_ID_WHY: &str = "set-id files on host storage would give host users their owner's ids";

fn clone_rule() -> Rule {
    Rule {
        call: Sysno::clone,
        arms: vec![arm(
            vec![cond(0, "flags", ArgKind::CloneFlags, Test::AnyBits(CLONE_NS_FLAGS))],
            errno(Errno::EPERM),
            "new namespaces would escape the jail's",
            None,
        )],
        otherwise: Action::Allow,
        why: why("threads and processes"),
        lifted_by: None,
    }
}

fn unshare_rule() -> Rule {
    Rule {
        call: Sysno::unshare,
        arms: vec![arm(
            vec![cond(
                0,
                "flags",
                ArgKind::CloneFlags,
                Test::AnyBits(CLONE_NS_FLAGS | CLONE_NEWTIME),
            )],
            errno(Errno::EPERM),
            "new namespaces would escape the jail's",
            None,
        )],
        otherwise: Action::Allow,
        why: why("unsharing files, fs or semaphore undo lists"),
        lifted_by: None,
    }
}

fn personality_rule() -> Rule {
    let harmless = sorted(vec![
        PER_LINUX,
        PER_LINUX32,
        UNAME26,
        UNAME26 | PER_LINUX32,
        ADDR_NO_RANDOMIZE,
        ADDR_NO_RANDOMIZE | PER_LINUX32,
        PERSONALITY_QUERY,
    ]);
    Rule {
        call: Sysno::personality,
        arms: vec![arm(
            vec![cond(0, "persona", ArgKind::Personality, Test::In(harmless))],
            Action::Allow,
            "the harmless personalities (as Docker allows them)",
            None,
        )],
        otherwise: errno(Errno::EPERM),
        why: why("other personalities change how the kernel treats the process (READ_IMPLIES_EXEC, ...)"),
        lifted_by: None,
    }
}

const RLIMIT_NO_CAP: &str = "the launcher lacks CAP_SYS_RESOURCE, which raising a hard limit for the jail takes";

fn rlimit_rules(jail: &Jail, can_raise: bool) -> Vec<Rule> {
    let allowed = jail.allow.contains(&Allow::Rlimit);
    if !allowed || !can_raise {
        // Hard limits are set at launch; the jail lacks CAP_SYS_RESOURCE over the
        // host, so the kernel refuses a raise with EPERM by itself.
        let reason = if allowed {
            host_why(RLIMIT_NO_CAP)
        } else {
            why("the kernel refuses raising a hard limit (EPERM)")
        };
        return [Sysno::setrlimit, Sysno::prlimit64]
            .into_iter()
            .map(|call| rule(call, Action::Allow, reason.clone(), None))
            .collect();
    }
    let notify = Action::Notify(Notify::Rlimit);
    vec![
        rule(Sysno::setrlimit, notify, Why::Allow(Allow::Rlimit), None),
        Rule {
            call: Sysno::prlimit64,
            arms: vec![arm(
                vec![cond(2, "new_limit", ArgKind::Pointer, Test::Zero64)],
                Action::Allow,
                "reading a limit",
                None,
            )],
            otherwise: notify,
            why: Why::Allow(Allow::Rlimit),
            lifted_by: None,
        },
    ]
}

fn listen_rule(jail: &Jail) -> Rule {
    // A socket that listens without a bind gets the wildcard address, which no
    // cgroup hook sees: the supervisor binds it to the first address first.
    let has_addresses = !(jail.network.ipv4.is_empty() && jail.network.ipv6.is_empty());
    if has_addresses {
        rule(
            Sysno::listen,
            Action::Notify(Notify::Listen),
            Why::Key("network".into()),
            None,
        )
    } else {
        rule(
            Sysno::listen,
            Action::Allow,
            why("unix sockets; the jail has no address"),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(jail: &Jail) -> SyscallPolicy {
        super::compile(jail, &HostFacts::example(), &mut Vec::new())
    }

    fn jail() -> Jail {
        let mut sources = crate::diag::SourceMap::new();
        let loaded = crate::config::load_text(
            "t.toml".as_ref(),
            "path = \"/\"\ncommand = [\"x\"]\n",
            &mut sources,
            &crate::config::HostFiles,
        );
        crate::model::validate(&loaded).jail.unwrap()
    }

    fn jail_with(network: &str) -> Jail {
        let mut sources = crate::diag::SourceMap::new();
        let loaded = crate::config::load_text(
            "t.toml".as_ref(),
            &format!("path = \"/\"\ncommand = [\"x\"]\n[network]\n{network}"),
            &mut sources,
            &crate::config::HostFiles,
        );
        crate::model::validate(&loaded).jail.unwrap()
    }

    #[test]
    fn inet_sockets_follow_the_network_mode() {
        let inet = |policy: &SyscallPolicy, domain: i32| {
            let rule = policy.rule(Sysno::socket).expect("a socket rule");
            rule.decide(&[domain as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0]).0
        };
        let denied = errno(Errno::EAFNOSUPPORT);
        for (network, v4, v6) in [
            // The old manual's promise: no address, no inet socket.
            ("", denied, denied),
            ("mode = \"disabled\"\n", denied, denied),
            // The jail's own loopback and nothing else: the namespace confines both.
            ("mode = \"private\"\n", Action::Allow, Action::Allow),
            (
                "mode = \"private\"\nipv4 = [\"127.0.0.1\"]\n",
                Action::Allow,
                Action::Allow,
            ),
            // A veth: the unlisted family would reach the host end's link-local address.
            ("ipv4 = [\"10.0.0.2/24\"]\n", Action::Allow, denied),
        ] {
            let policy = compile(&jail_with(network));
            assert_eq!(inet(&policy, AF_INET as i32), v4, "{network:?} AF_INET");
            assert_eq!(inet(&policy, AF_INET6 as i32), v6, "{network:?} AF_INET6");
        }
    }

    #[test]
    fn what_every_libc_program_calls_is_allowed() {
        use Sysno::*;
        let policy = compile(&jail());
        for call in [
            execve,
            brk,
            mmap,
            mprotect,
            munmap,
            openat,
            read,
            write,
            close,
            fstat,
            newfstatat,
            pipe,
            pipe2,
            dup2,
            dup3,
            wait4,
            rt_sigaction,
            rt_sigprocmask,
            rt_sigreturn,
            exit_group,
            getrandom,
            futex,
            set_robust_list,
            rseq,
            arch_prctl,
            set_tid_address,
            fcntl,
            poll,
            ppoll,
            select,
            pselect6,
            getdents64,
            lseek,
            readlink,
            access,
            faccessat2,
            statx,
            uname,
            getuid,
            getpid,
            kill,
            nanosleep,
            clock_nanosleep,
            sched_yield,
            epoll_wait,
            epoll_pwait,
            eventfd2,
            madvise,
            mremap,
            prctl,
            socketpair,
            getcwd,
            chdir,
            unlink,
            rename,
        ] {
            let rule = policy.rule(call).unwrap_or_else(|| panic!("{call} has no rule"));
            let args = [1, 1, 0, 0, 0, 0];
            assert_eq!(rule.decide(&args).0, Action::Allow, "{call}");
        }
    }

    #[test]
    fn values_have_their_c_names() {
        assert_eq!(ArgKind::Domain.name(AF_INET).as_deref(), Some("AF_INET"));
        assert_eq!(ArgKind::SockType.name(SOCK_RAW).as_deref(), Some("SOCK_RAW"));
        assert_eq!(ArgKind::NetlinkProtocol.name(0).as_deref(), Some("NETLINK_ROUTE"));
        assert_eq!(ArgKind::IoctlRequest.name(TIOCSTI).as_deref(), Some("TIOCSTI"));
        assert_eq!(ArgKind::IoctlRequest.name(0x8914).as_deref(), Some("SIOCSIFFLAGS"));
        assert_eq!(
            ArgKind::CloneFlags.name(CLONE_NEWUSER | CLONE_NEWNET).as_deref(),
            Some("CLONE_NEWUSER|CLONE_NEWNET")
        );
        // A bit without a name leaves the number.
        assert_eq!(ArgKind::CloneFlags.name(CLONE_NEWUSER | 1), None);
        assert_eq!(ArgKind::Int.name(3), None);
        // Every value a rule tests by equality or membership has a name.
        let policy = compile(&jail());
        for c in policy.rules.iter().flat_map(|r| r.arms.iter().flat_map(|a| &a.when)) {
            let values: Vec<u32> = match &c.test {
                Test::Eq(v) => vec![*v],
                Test::In(vs) | Test::NotIn(vs) => vs.clone(),
                Test::MaskedEq { mask, value } => vec![*mask, *value],
                Test::AnyBits(b) => vec![*b],
                Test::Zero64 => vec![],
            };
            for v in values {
                assert!(c.kind.name(v).is_some(), "{} {v:#x} has no name", c.name);
            }
        }
    }

    #[test]
    fn no_call_has_two_rules() {
        let policy = compile(&jail());
        let mut calls: Vec<Sysno> = policy.rules.iter().map(|r| r.call).collect();
        let n = calls.len();
        calls.dedup();
        assert_eq!(calls.len(), n, "a call listed twice: later rules would be ignored");
    }
}
