//! The promise catalogue: every fixed "this call gives this errno" promise of
//! the old manual and the design, written once.
//!
//! Each [`Promise`] names the probe checks that try it (native, and i386's
//! twins through `int 0x80` and socketcall(2)), the jails it applies to, the
//! answer and who gives it (the filter, the kernel or the supervisor), and the
//! `allow` entry that lifts it, with the answer then. The self-test derives
//! its expectations from this table, the promise tests iterate it, and unit
//! tests hold it against the compiled policy (the filter's answer for the
//! call's registers) and against the checks the probe knows.
//!
//! Adding a promise is one row here (and, for a new call, one check in the
//! probe).

use crate::model::{Allow, Identity, Jail};
use crate::syscalls::{Abi, Sysno};

/// errno values of the answers (Linux numbers, the same on every ABI).
pub mod errno {
    #![allow(missing_docs)]
    pub const EPERM: i32 = 1;
    pub const ESRCH: i32 = 3;
    pub const EACCES: i32 = 13;
    pub const EROFS: i32 = 30;
    pub const ENOSYS: i32 = 38;
    pub const EPROTONOSUPPORT: i32 = 93;
    pub const EAFNOSUPPORT: i32 = 97;
}

use errno::*;

/// A condition on the jail or the host for a promise to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// The jail runs as jail root.
    JailRoot,
    /// The jail runs as another user.
    NotJailRoot,
    /// The jail may open IPv4 sockets (an address, or loopback only).
    Ipv4,
    /// The jail may not open IPv4 sockets.
    NoIpv4,
    /// The jail may open IPv6 sockets (an address, or loopback only).
    Ipv6,
    /// The jail may not open IPv6 sockets.
    NoIpv6,
    /// The jail has a network stack of its own.
    Private,
    /// The jail is on the host's network stack with an IPv4 address.
    HostStackIpv4,
    /// The jail's root is the host's `/`.
    HostRoot,
    /// The filter covers x86_64 (whose x32 numbers it rejects).
    X86_64,
    /// The launcher can raise a hard limit for the jail (CAP_SYS_RESOURCE).
    CanRaise,
}

/// Who gives the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// The seccomp filter, without reaching the kernel.
    Filter,
    /// The kernel: the filter lets the call through.
    Kernel,
    /// The supervisor, notified by the filter.
    Supervisor,
}

/// The answer once an `allow` entry lifts the promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifted {
    /// Exactly this errno (0: success).
    To(i32),
    /// The filter lets the call through; the kernel's answer depends on the
    /// caller's capabilities. It is `as_jail_root` for jail root in a private
    /// network with both families, if that is fixed.
    Past {
        /// The kernel's answer to jail root of such a jail.
        as_jail_root: Option<i32>,
    },
}

/// An `allow` entry that lifts a promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lift {
    /// The entry.
    pub by: Allow,
    /// Where it lifts; elsewhere the original answer stands (then from the
    /// kernel).
    pub when: &'static [When],
    /// The answer then.
    pub to: Lifted,
    /// The promise then.
    pub text: &'static str,
}

/// The registers of a check's call, for comparing with the compiled policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// A call by name, on the native ABI and on i386.
    Sys(Sysno, [u64; 6]),
    /// A raw x86_64 number (unknown to the policy, or x32).
    X86_64(u32),
}

/// One promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    /// What the old manual or the design promises.
    pub text: &'static str,
    /// Native probe checks that try it (`{scratch}` is a writable directory of
    /// the jail).
    pub native: &'static [&'static str],
    /// The i386 checks that try the same and must get the same answer.
    pub i386: &'static [&'static str],
    /// Jails it applies to: all of these hold.
    pub when: &'static [When],
    /// The answer (0: success).
    pub errno: i32,
    /// Who gives it.
    pub by: By,
    /// The `allow` entry that lifts it, if any.
    pub lift: Option<Lift>,
    /// The call the checks make, when the policy decides it by its registers.
    pub call: Option<Call>,
}

/// What a check must observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exactly this errno (0: success).
    Errno(i32),
    /// Past the filter, which would have said `denied`; the kernel answers
    /// `as_jail_root` to jail root of a private network, if that is fixed.
    Past {
        /// The filter's answer without the `allow` entry.
        denied: i32,
        /// The kernel's answer to jail root of a private network with both
        /// families.
        as_jail_root: Option<i32>,
    },
}

/// The jail and host a promise is judged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Jail root runs the checks.
    pub root: bool,
    /// The jail may open IPv4 sockets: it has an IPv4 address, or a
    /// loopback-only private network.
    pub ipv4: bool,
    /// The same for IPv6.
    pub ipv6: bool,
    /// A private network stack.
    pub private: bool,
    /// The jail's root is the host's `/`.
    pub host_root: bool,
    /// The launcher can raise hard limits.
    pub can_raise: bool,
    /// The ABIs the filter covers.
    pub abis: Vec<Abi>,
    /// The jail's `allow` entries.
    pub allow: Vec<Allow>,
}

impl Setting {
    /// The setting of `jail` on a host whose filter covers `abis`.
    pub fn of(jail: &Jail, abis: &[Abi], can_raise: bool) -> Setting {
        Setting {
            root: jail.identity == Identity::JailRoot,
            ipv4: jail.network.ipv4_allowed(),
            ipv6: jail.network.ipv6_allowed(),
            private: jail.network.own_namespace(),
            host_root: jail.root.is_host_root(),
            can_raise,
            abis: abis.to_vec(),
            allow: jail.allow.iter().copied().collect(),
        }
    }

    /// Whether `w` holds.
    pub fn holds(&self, w: When) -> bool {
        match w {
            When::JailRoot => self.root,
            When::NotJailRoot => !self.root,
            When::Ipv4 => self.ipv4,
            When::NoIpv4 => !self.ipv4,
            When::Ipv6 => self.ipv6,
            When::NoIpv6 => !self.ipv6,
            When::Private => self.private,
            When::HostStackIpv4 => !self.private && self.ipv4,
            When::HostRoot => self.host_root,
            When::X86_64 => self.abis.contains(&Abi::X86_64),
            When::CanRaise => self.can_raise,
        }
    }

    fn all(&self, ws: &[When]) -> bool {
        ws.iter().all(|w| self.holds(*w))
    }

    /// Whether the i386 checks run: the filter covers i386 and the probe can
    /// enter it (`int 0x80` from x86_64).
    pub fn i386(&self) -> bool {
        self.abis.contains(&Abi::I386) && cfg!(target_arch = "x86_64")
    }
}

impl Promise {
    /// The lift in force in `s`: its entry is allowed and its conditions hold.
    fn lifted(&self, s: &Setting) -> Option<&Lift> {
        self.lift.as_ref().filter(|l| s.allow.contains(&l.by) && s.all(l.when))
    }

    /// What its checks must observe in `s`, and the promise then; `None`
    /// where it does not apply.
    pub fn outcome(&self, s: &Setting) -> Option<(&'static str, Outcome)> {
        if !s.all(self.when) {
            return None;
        }
        Some(match self.lifted(s) {
            None => (self.text, Outcome::Errno(self.errno)),
            Some(Lift {
                to: Lifted::To(e),
                text,
                ..
            }) => (text, Outcome::Errno(*e)),
            Some(Lift {
                to: Lifted::Past { as_jail_root },
                text,
                ..
            }) => (
                text,
                Outcome::Past {
                    denied: self.errno,
                    as_jail_root: *as_jail_root,
                },
            ),
        })
    }

    /// Its native checks, `{scratch}` replaced.
    pub fn native_checks(&self, scratch: &str) -> Vec<String> {
        self.native.iter().map(|c| c.replace("{scratch}", scratch)).collect()
    }
}

/// Every `allow` entry that lifts a promise, in catalogue order.
pub fn lifting_entries() -> Vec<Allow> {
    let mut out: Vec<Allow> = Vec::new();
    for l in CATALOGUE.iter().filter_map(|p| p.lift) {
        if !out.contains(&l.by) {
            out.push(l.by);
        }
    }
    out
}

const fn sys(call: Sysno, args: [u64; 6]) -> Option<Call> {
    Some(Call::Sys(call, args))
}

const fn none() -> Option<Lift> {
    None
}

const ALWAYS: &[When] = &[];
const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const AF_NETLINK: u64 = 16;
const AF_PACKET: u64 = 17;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_RAW: u64 = 3;
const SOCK_SEQPACKET: u64 = 5;
const SOCK_NONBLOCK_CLOEXEC: u64 = 0o4000 | 0o2_000_000;
const IPPROTO_ICMP: u64 = 1;
const IPPROTO_SCTP: u64 = 132;
const IPPROTO_UDPLITE: u64 = 136;
const IPPROTO_MPTCP: u64 = 262;
const IPPROTO_ICMPV6: u64 = 58;
const IPPROTO_RAW: u64 = 255;
const NETLINK_AUDIT: u64 = 9;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const CLONE_FILES: u64 = 0x400;
const SIGCHLD: u64 = 17;
const AT_FDCWD: u64 = -100i64 as u64;

const fn socket(domain: u64, ty: u64, protocol: u64) -> Option<Call> {
    sys(Sysno::socket, [domain, ty, protocol, 0, 0, 0])
}

const SOCKET_DOMAINS: Lift = Lift {
    by: Allow::AllDomains,
    when: ALWAYS,
    to: Lifted::Past {
        // AF_PACKET meets the kernel's own check for CAP_NET_RAW, which only
        // raw-sockets keeps.
        as_jail_root: Some(EPERM),
    },
    text: "other socket domains pass the filter (allow all-domains)",
};

const RAW: Lift = Lift {
    by: Allow::RawSockets,
    // CAP_NET_RAW over the jail's own network: jail root's alone.
    when: &[When::Private, When::JailRoot],
    to: Lifted::To(0),
    text: "raw sockets work (allow raw-sockets)",
};

const IPC: Lift = Lift {
    by: Allow::Ipc,
    when: ALWAYS,
    to: Lifted::To(0),
    text: "SysV IPC works (allow ipc)",
};

/// Denied calls, one row each: (text, native check, i386 twins, errno, call).
macro_rules! denied {
    ($text:expr, $check:expr, $i386:expr, $errno:expr, $call:expr) => {
        Promise {
            text: $text,
            native: &[$check],
            i386: $i386,
            when: ALWAYS,
            errno: $errno,
            by: By::Filter,
            lift: None,
            call: $call,
        }
    };
}

const BEYOND: &str = "kernel interfaces beyond the jail are denied";
const MODULES: &str = "kernel modules cannot be loaded (EPERM)";
const MOUNTS: &str = "the jail's mounts are fixed (EPERM)";
const NAMESPACES: &str = "no new namespaces, no entering others (EPERM)";
const HOST_STACK: &str =
    "on the host's stack, inet protocols other than TCP, UDP and ICMP echo are refused (EPROTONOSUPPORT)";

/// The catalogue.
pub const CATALOGUE: &[Promise] = &[
    // Signals and tracing.
    Promise {
        text: "signals from inside to init are ignored",
        native: &["kill=1:9"],
        i386: &[],
        when: &[When::JailRoot],
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::kill, [1, 9, 0, 0, 0, 0]),
    },
    Promise {
        text: "signals from inside to init are ignored",
        native: &["kill=1:9"],
        i386: &[],
        when: &[When::NotJailRoot],
        errno: EPERM,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::kill, [1, 9, 0, 0, 0, 0]),
    },
    Promise {
        text: "init cannot be traced",
        native: &["ptrace-init"],
        i386: &[],
        when: ALWAYS,
        errno: EPERM,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::ptrace, [16, 1, 0, 0, 0, 0]),
    },
    // Host names.
    denied!(
        "sethostname is denied (EPERM)",
        "sethostname",
        &["i386-sethostname"],
        EPERM,
        sys(Sysno::sethostname, [0, 5, 0, 0, 0, 0])
    ),
    denied!(
        "setdomainname is denied (EPERM)",
        "setdomainname",
        &[],
        EPERM,
        sys(Sysno::setdomainname, [0, 5, 0, 0, 0, 0])
    ),
    // SysV IPC: EPERM unless ipc; POSIX queues are the jail's.
    Promise {
        text: "SysV IPC is denied (EPERM)",
        native: &["ipc-msgget"],
        i386: &["i386-ipc-msgget", "i386-msgget"],
        when: ALWAYS,
        errno: EPERM,
        by: By::Filter,
        lift: Some(IPC),
        call: sys(Sysno::msgget, [0, 0o600, 0, 0, 0, 0]),
    },
    Promise {
        text: "SysV IPC is denied (EPERM)",
        native: &["ipc-semget"],
        i386: &[],
        when: ALWAYS,
        errno: EPERM,
        by: By::Filter,
        lift: Some(IPC),
        call: sys(Sysno::semget, [0, 1, 0o600, 0, 0, 0]),
    },
    Promise {
        text: "SysV IPC is denied (EPERM)",
        native: &["ipc-shmget"],
        i386: &[],
        when: ALWAYS,
        errno: EPERM,
        by: By::Filter,
        lift: Some(IPC),
        call: sys(Sysno::shmget, [0, 4096, 0o600, 0, 0, 0]),
    },
    Promise {
        text: "POSIX message queues of the jail work",
        native: &["mq-open"],
        i386: &[],
        when: ALWAYS,
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::mq_open, [0, 0o102, 0o600, 0, 0, 0]),
    },
    // Socket domains: unix, inet, inet6 and route netlink only.
    Promise {
        text: "unix sockets work",
        native: &["socket-unix"],
        i386: &["i386-socket-unix", "i386-socketcall-unix"],
        when: ALWAYS,
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: socket(AF_UNIX, SOCK_STREAM, 0),
    },
    Promise {
        text: "i386: socketcall(SOCKETPAIR) works",
        native: &[],
        i386: &["i386-socketcall-socketpair"],
        when: ALWAYS,
        errno: 0,
        by: By::Supervisor,
        lift: none(),
        call: None,
    },
    Promise {
        text: "route netlink sockets work",
        native: &["socket-netlink-route"],
        i386: &[],
        when: ALWAYS,
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: socket(AF_NETLINK, SOCK_RAW, 0),
    },
    Promise {
        text: "other socket domains are denied (EPROTONOSUPPORT)",
        native: &["socket-netlink-audit"],
        i386: &[],
        when: ALWAYS,
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: Some(Lift {
            to: Lifted::Past { as_jail_root: Some(0) },
            ..SOCKET_DOMAINS
        }),
        call: socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT),
    },
    Promise {
        text: "other socket domains are denied (EPROTONOSUPPORT)",
        native: &["socket-packet"],
        i386: &["i386-socket-packet", "i386-socketcall-packet"],
        when: ALWAYS,
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: Some(SOCKET_DOMAINS),
        call: socket(AF_PACKET, SOCK_DGRAM, 0),
    },
    Promise {
        text: "SOCK_PACKET, a packet socket whatever its domain, is denied (EPROTONOSUPPORT)",
        native: &["socket-sock-packet"],
        i386: &["i386-socket-sock-packet", "i386-socketcall-sock-packet"],
        // On the host's stack, the protocols row below refuses it too.
        when: &[When::Ipv4, When::Private],
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: Some(SOCKET_DOMAINS),
        call: socket(AF_INET, 10, 0x0300),
    },
    Promise {
        text: "the upper half of a register does not matter",
        native: &["socket-packet-high-bits"],
        i386: &[],
        when: ALWAYS,
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: Some(SOCKET_DOMAINS),
        call: socket(AF_PACKET | 1 << 32, SOCK_DGRAM, 0),
    },
    // Address families: inet needs an address of its family.
    Promise {
        text: "IPv4 works: the jail has an IPv4 address, or its own loopback only",
        native: &["socket-inet", "socket-inet-high-bits", "socket-inet-dgram"],
        i386: &["i386-socket-inet", "i386-socketcall-socket"],
        when: &[When::Ipv4],
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: socket(AF_INET | 1 << 32, SOCK_STREAM, 0),
    },
    Promise {
        text: "IPv4 is denied without an address, unless the network is loopback only (EAFNOSUPPORT)",
        native: &["socket-inet", "socket-inet-high-bits", "socket-inet-dgram"],
        i386: &["i386-socket-inet", "i386-socketcall-socket"],
        when: &[When::NoIpv4],
        errno: EAFNOSUPPORT,
        by: By::Filter,
        lift: none(),
        call: socket(AF_INET | 1 << 32, SOCK_STREAM, 0),
    },
    Promise {
        text: "IPv6 works: the jail has an IPv6 address, or its own loopback only",
        native: &["socket-inet6"],
        i386: &[],
        when: &[When::Ipv6],
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: socket(AF_INET6, SOCK_STREAM, 0),
    },
    Promise {
        text: "IPv6 is denied without an address, unless the network is loopback only (EAFNOSUPPORT)",
        native: &["socket-inet6"],
        i386: &[],
        when: &[When::NoIpv6],
        errno: EAFNOSUPPORT,
        by: By::Filter,
        lift: none(),
        call: socket(AF_INET6, SOCK_STREAM, 0),
    },
    // On the host's stack, the protocols whose binds no program sees.
    Promise {
        text: HOST_STACK,
        native: &["socket-sock-packet"],
        i386: &["i386-socket-sock-packet", "i386-socketcall-sock-packet"],
        when: &[When::HostStackIpv4],
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: none(),
        call: socket(AF_INET, 10, 0x0300),
    },
    Promise {
        text: HOST_STACK,
        native: &["socket-sctp"],
        i386: &["i386-socket-sctp"],
        when: &[When::HostStackIpv4],
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: none(),
        call: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP),
    },
    Promise {
        text: HOST_STACK,
        native: &["socket-mptcp"],
        i386: &["i386-socket-mptcp"],
        when: &[When::HostStackIpv4],
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: none(),
        call: socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP),
    },
    Promise {
        text: HOST_STACK,
        native: &["socket-inet-seqpacket"],
        i386: &[],
        when: &[When::HostStackIpv4],
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: none(),
        call: socket(AF_INET, SOCK_SEQPACKET, 0),
    },
    Promise {
        text: HOST_STACK,
        native: &["socket-udplite"],
        i386: &[],
        when: &[When::HostStackIpv4],
        errno: EPROTONOSUPPORT,
        by: By::Filter,
        lift: none(),
        call: socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE),
    },
    // Raw sockets: EPERM unless raw-sockets.
    Promise {
        text: "SOCK_RAW is denied (EPERM)",
        native: &["socket-raw"],
        i386: &["i386-socket-raw", "i386-socketcall-raw"],
        when: &[When::Ipv4],
        errno: EPERM,
        by: By::Filter,
        lift: Some(RAW),
        call: socket(AF_INET, SOCK_RAW, IPPROTO_ICMP),
    },
    Promise {
        text: "SOCK_RAW is denied (EPERM)",
        native: &["socket-raw6"],
        i386: &[],
        when: &[When::Ipv6],
        errno: EPERM,
        by: By::Filter,
        lift: Some(RAW),
        call: socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6),
    },
    Promise {
        text: "SOCK_RAW is denied (EPERM), whatever the type's flags",
        native: &["socket-raw-flags"],
        i386: &[],
        when: &[When::Ipv4],
        errno: EPERM,
        by: By::Filter,
        lift: Some(RAW),
        call: socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK_CLOEXEC, IPPROTO_ICMP),
    },
    Promise {
        text: "IPPROTO_RAW is denied (EPERM)",
        native: &["socket-ipproto-raw"],
        i386: &[],
        when: &[When::Ipv4],
        errno: EPERM,
        by: By::Filter,
        // SOCK_DGRAM with IPPROTO_RAW passes the filter; inet itself
        // refuses that combination.
        lift: Some(Lift {
            by: Allow::RawSockets,
            when: ALWAYS,
            to: Lifted::Past { as_jail_root: None },
            text: "IPPROTO_RAW passes the filter (allow raw-sockets)",
        }),
        call: socket(AF_INET, SOCK_DGRAM, IPPROTO_RAW),
    },
    // Network configuration, terminals and inode flags.
    denied!(
        "network configuration ioctls are denied (EPERM)",
        "ioctl-siocsifflags",
        &[],
        EPERM,
        sys(Sysno::ioctl, [3, 0x8914, 0, 0, 0, 0])
    ),
    denied!(
        "network configuration ioctls are denied (EPERM)",
        "ioctl-siocaddrt",
        &[],
        EPERM,
        sys(Sysno::ioctl, [3, 0x890b, 0, 0, 0, 0])
    ),
    denied!(
        "TIOCSTI is denied (EPERM)",
        "ioctl-tiocsti",
        &["i386-ioctl-tiocsti"],
        EPERM,
        sys(Sysno::ioctl, [0, 0x5412, 0, 0, 0, 0])
    ),
    denied!(
        "TIOCSTI is denied whatever the upper half of the request",
        "ioctl-tiocsti-high-bits",
        &[],
        EPERM,
        sys(Sysno::ioctl, [0, 0x5412 | 1 << 32, 0, 0, 0, 0])
    ),
    Promise {
        text: "inode flags are denied (EPERM)",
        native: &["ioctl-setflags={scratch}/.sysjail-selftest-flags"],
        i386: &[],
        when: ALWAYS,
        errno: EPERM,
        by: By::Filter,
        lift: Some(Lift {
            by: Allow::Chflags,
            when: ALWAYS,
            to: Lifted::Past { as_jail_root: Some(0) },
            text: "inode flags pass the filter (allow chflags)",
        }),
        call: sys(Sysno::ioctl, [3, 0x4008_6602, 0, 0, 0, 0]),
    },
    // Hard limits: the kernel refuses a raise; allow rlimit has the
    // supervisor raise it for jail root.
    Promise {
        text: "raising a hard limit is denied (EPERM)",
        native: &["setrlimit-raise"],
        i386: &[],
        when: ALWAYS,
        errno: EPERM,
        by: By::Kernel,
        lift: Some(Lift {
            by: Allow::Rlimit,
            when: &[When::JailRoot, When::CanRaise],
            to: Lifted::To(0),
            text: "jail root raises a hard limit (allow rlimit)",
        }),
        call: sys(Sysno::setrlimit, [7, 0, 0, 0, 0, 0]),
    },
    Promise {
        text: "lowering a limit works",
        native: &["setrlimit-lower"],
        i386: &[],
        when: ALWAYS,
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: None,
    },
    // Modules, mounts, namespaces.
    denied!(
        MODULES,
        "init-module",
        &["i386-init-module"],
        EPERM,
        sys(Sysno::init_module, [0; 6])
    ),
    denied!(MODULES, "finit-module", &[], EPERM, sys(Sysno::finit_module, [0; 6])),
    denied!(MODULES, "delete-module", &[], EPERM, sys(Sysno::delete_module, [0; 6])),
    denied!(MOUNTS, "mount", &["i386-mount"], EPERM, sys(Sysno::mount, [0; 6])),
    denied!(MOUNTS, "umount2", &[], EPERM, sys(Sysno::umount2, [0, 2, 0, 0, 0, 0])),
    denied!(MOUNTS, "pivot-root", &[], EPERM, sys(Sysno::pivot_root, [0; 6])),
    denied!(
        MOUNTS,
        "open-tree",
        &[],
        EPERM,
        sys(Sysno::open_tree, [AT_FDCWD, 0, 1, 0, 0, 0])
    ),
    denied!(MOUNTS, "fsopen", &[], EPERM, sys(Sysno::fsopen, [0; 6])),
    denied!(MOUNTS, "move-mount", &[], EPERM, sys(Sysno::move_mount, [0; 6])),
    denied!(
        NAMESPACES,
        "unshare-user",
        &["i386-unshare-user"],
        EPERM,
        sys(Sysno::unshare, [CLONE_NEWUSER, 0, 0, 0, 0, 0])
    ),
    denied!(
        NAMESPACES,
        "unshare-net",
        &[],
        EPERM,
        sys(Sysno::unshare, [CLONE_NEWNET, 0, 0, 0, 0, 0])
    ),
    denied!(
        NAMESPACES,
        "clone-newuser",
        &[],
        EPERM,
        sys(Sysno::clone, [CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0])
    ),
    denied!(
        NAMESPACES,
        "setns",
        &[],
        EPERM,
        sys(Sysno::setns, [u64::MAX, 0, 0, 0, 0, 0])
    ),
    Promise {
        text: "unsharing what is no namespace works",
        native: &["unshare-files"],
        i386: &[],
        when: ALWAYS,
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::unshare, [CLONE_FILES, 0, 0, 0, 0, 0]),
    },
    denied!(
        "clone3 says ENOSYS, so libc falls back to clone",
        "clone3",
        &["i386-clone3"],
        ENOSYS,
        sys(Sysno::clone3, [0; 6])
    ),
    Promise {
        text: "reboot(2) is denied (EPERM), for jail root too",
        native: &["reboot-cad-off"],
        i386: &[],
        when: ALWAYS,
        errno: EPERM,
        by: By::Supervisor,
        lift: none(),
        call: sys(Sysno::reboot, [0xfee1_dead, 0x2812_1969, 0, 0, 0, 0]),
    },
    // Denied by default, each with a reason in the policy table.
    denied!(
        BEYOND,
        "io-uring-setup",
        &["i386-io-uring-setup"],
        ENOSYS,
        sys(Sysno::io_uring_setup, [1, 0, 0, 0, 0, 0])
    ),
    denied!(BEYOND, "bpf", &["i386-bpf"], EPERM, sys(Sysno::bpf, [0; 6])),
    denied!(
        BEYOND,
        "perf-event-open",
        &[],
        EPERM,
        sys(Sysno::perf_event_open, [0; 6])
    ),
    denied!(BEYOND, "userfaultfd", &[], EPERM, sys(Sysno::userfaultfd, [0; 6])),
    denied!(BEYOND, "keyctl", &[], ENOSYS, sys(Sysno::keyctl, [0; 6])),
    denied!(BEYOND, "add-key", &[], ENOSYS, sys(Sysno::add_key, [0; 6])),
    denied!(BEYOND, "kexec-load", &[], EPERM, sys(Sysno::kexec_load, [0; 6])),
    denied!(
        BEYOND,
        "open-by-handle-at",
        &[],
        EPERM,
        sys(Sysno::open_by_handle_at, [AT_FDCWD, 0, 0, 0, 0, 0])
    ),
    denied!(BEYOND, "acct", &[], EPERM, sys(Sysno::acct, [0; 6])),
    denied!(BEYOND, "swapon", &[], EPERM, sys(Sysno::swapon, [0; 6])),
    denied!(BEYOND, "settimeofday", &[], EPERM, sys(Sysno::settimeofday, [0; 6])),
    denied!(BEYOND, "clock-settime", &[], EPERM, sys(Sysno::clock_settime, [0; 6])),
    denied!(BEYOND, "adjtimex", &[], EPERM, sys(Sysno::adjtimex, [0; 6])),
    denied!(BEYOND, "syslog", &[], EPERM, sys(Sysno::syslog, [3, 0, 0, 0, 0, 0])),
    // Personalities.
    Promise {
        text: "harmless personalities work",
        native: &["personality-query"],
        i386: &[],
        when: ALWAYS,
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
    },
    denied!(
        "other personalities are denied (EPERM)",
        "personality-read-implies-exec",
        &[],
        EPERM,
        sys(Sysno::personality, [0x0040_0000, 0, 0, 0, 0, 0])
    ),
    // Numbers the policy has no rule for.
    denied!(
        "a call the policy does not know is denied (ENOSYS)",
        "unknown-syscall",
        &[],
        ENOSYS,
        Some(Call::X86_64(1000))
    ),
    Promise {
        text: "x32 numbers are rejected (ENOSYS)",
        native: &["x32-getpid"],
        i386: &[],
        when: &[When::X86_64],
        errno: ENOSYS,
        by: By::Filter,
        lift: none(),
        call: Some(Call::X86_64(0x4000_0000 | 39)),
    },
    Promise {
        text: "i386 through int 0x80 works",
        native: &[],
        i386: &["i386-getpid"],
        when: ALWAYS,
        errno: 0,
        by: By::Kernel,
        lift: none(),
        call: None,
    },
    // Files: Landlock, read-only mounts and the host's permissions.
    Promise {
        text: "sysctls are read-only",
        native: &["write-file=/proc/sys/kernel/hostname"],
        i386: &[],
        when: ALWAYS,
        errno: EROFS,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::openat, [AT_FDCWD, 0, 0o1_001_101, 0o644, 0, 0]),
    },
    Promise {
        text: "host secrets stay unreadable to jail root",
        native: &["read-shadow"],
        i386: &[],
        when: &[When::HostRoot],
        errno: EACCES,
        by: By::Kernel,
        lift: none(),
        call: sys(Sysno::openat, [AT_FDCWD, 0, 0o2_000_000, 0, 0, 0]),
    },
];

#[cfg(test)]
mod tests;
