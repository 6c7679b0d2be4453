//! The sjtest(1) of today: launch a jail with a probe inside, and check from
//! there that each promise of its policy holds on this kernel.
//!
//! [`expectations`] derives what the probe must observe from the jail's
//! definition (its `allow` entries, addresses and user), and [`judge`] compares
//! them with the probe's [`probe::Report`]. Both are pure; `sysjail selftest`
//! does the launching.

mod netprobe;
pub mod probe;

use std::fmt;

use probe::Report;

use crate::model::{Allow, Identity, Jail, NetworkMode};
use crate::syscalls::Abi;

/// What a check must return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this errno (0: success).
    Errno(i32),
    /// Anything but this errno: the filter let the call through, whatever the
    /// kernel then says.
    Not(i32),
    /// Success, with the socket bound to this address.
    BoundTo(std::net::IpAddr),
    /// A race: calls succeeded, and every socket it reports is on one of
    /// these addresses.
    OnlyAt(Vec<std::net::IpAddr>),
}

/// One promise, checked by one probe call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// What the old manual or the design promises.
    pub promise: &'static str,
    /// The probe check (`NAME` or `NAME=ARG`).
    pub check: String,
    /// Its expected outcome.
    pub expect: Expect,
}

/// A promise that a fact of the probe must satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactExpectation {
    /// Only the jail's init and the probe are visible.
    OnlyJailProcesses,
    /// gethostname returns this.
    Hostname(String),
    /// no_new_privs is set.
    NoNewPrivs,
    /// A seccomp filter is installed.
    SeccompFilter,
    /// The bounding set is exactly this mask; the effective set is it (root) or
    /// empty (any other user); the ambient set is empty.
    Capabilities {
        /// The bounding set.
        bounding: u64,
        /// The jail runs as jail root.
        root: bool,
    },
    /// The process has a session of its own, without a terminal.
    OwnSession,
    /// Init's command line names its role and the jail, no host path, and
    /// init has no controlling terminal.
    InitReveals(String),
    /// /dev/shm holds at most this many bytes.
    ShmSize(u64),
}

/// The outcome of one promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The promise.
    pub promise: String,
    /// Whether it holds.
    pub pass: bool,
    /// What was observed.
    pub detail: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            if self.pass { "PASS" } else { "FAIL" },
            self.promise,
            self.detail
        )
    }
}

const EPERM: i32 = 1;
const ESRCH: i32 = 3;
const EACCES: i32 = 13;
const EROFS: i32 = 30;
const ENOSYS: i32 = 38;
const EPROTONOSUPPORT: i32 = 93;
const EAFNOSUPPORT: i32 = 97;

/// Everything the probe must observe in `jail`. `outside` is a pid outside the
/// jail (the supervisor's); `abis` are the ABIs the filter covers; `scratch`
/// is a writable directory of the jail.
/// `can_raise`: the launcher holds CAP_SYS_RESOURCE, which raising a hard
/// limit for `allow = ["rlimit"]` takes. `rewrites`: the address programs
/// can be loaded (root and cgroup2); without them a private jail's binds
/// are not rewritten.
pub fn expectations(
    jail: &Jail,
    outside: u32,
    abis: &[Abi],
    scratch: &str,
    can_raise: bool,
    rewrites: bool,
) -> (Vec<Expectation>, Vec<FactExpectation>) {
    use Expect::{Errno, Not};
    let allows = |a: Allow| jail.allow.contains(&a);
    let root = jail.identity == Identity::JailRoot;
    let v4 = !jail.network.ipv4.is_empty();
    let v6 = !jail.network.ipv6.is_empty();
    let private = matches!(jail.network.mode, NetworkMode::Private(_));
    let mut e: Vec<Expectation> = Vec::new();
    let mut add = |promise: &'static str, check: &str, expect: Expect| {
        e.push(Expectation {
            promise,
            check: check.to_string(),
            expect,
        });
    };
    add(
        "processes outside the jail cannot be signalled (ESRCH)",
        &format!("kill={outside}:0"),
        Errno(ESRCH),
    );
    add(
        "signals from inside to init are ignored",
        "kill=1:9",
        Errno(if root { 0 } else { EPERM }),
    );
    add("init cannot be traced", "ptrace-init", Errno(EPERM));
    add("sethostname is denied (EPERM)", "sethostname", Errno(EPERM));
    add("setdomainname is denied (EPERM)", "setdomainname", Errno(EPERM));
    let ipc = if allows(Allow::Ipc) { 0 } else { EPERM };
    for check in ["ipc-msgget", "ipc-semget", "ipc-shmget"] {
        add(
            if ipc == 0 {
                "SysV IPC works (allow ipc)"
            } else {
                "SysV IPC is denied (EPERM)"
            },
            check,
            Errno(ipc),
        );
    }
    add("POSIX message queues of the jail work", "mq-open", Errno(0));
    add("unix sockets work", "socket-unix", Errno(0));
    add("route netlink sockets work", "socket-netlink-route", Errno(0));
    if allows(Allow::AllDomains) {
        add(
            "other socket domains pass the filter (allow all-domains)",
            "socket-netlink-audit",
            Not(EPROTONOSUPPORT),
        );
        add(
            "other socket domains pass the filter (allow all-domains)",
            "socket-packet",
            Not(EPROTONOSUPPORT),
        );
    } else {
        add(
            "other socket domains are denied (EPROTONOSUPPORT)",
            "socket-netlink-audit",
            Errno(EPROTONOSUPPORT),
        );
        add(
            "other socket domains are denied (EPROTONOSUPPORT)",
            "socket-packet",
            Errno(EPROTONOSUPPORT),
        );
        add(
            "the upper half of a register does not matter",
            "socket-packet-high-bits",
            Errno(EPROTONOSUPPORT),
        );
    }
    add(
        if v4 {
            "IPv4 works: the jail has an IPv4 address"
        } else {
            "IPv4 is denied without an address (EAFNOSUPPORT)"
        },
        "socket-inet",
        Errno(if v4 { 0 } else { EAFNOSUPPORT }),
    );
    add(
        if v6 {
            "IPv6 works: the jail has an IPv6 address"
        } else {
            "IPv6 is denied without an address (EAFNOSUPPORT)"
        },
        "socket-inet6",
        Errno(if v6 { 0 } else { EAFNOSUPPORT }),
    );
    // The address list: a wildcard or unlisted bind ends on the first
    // address, a listed one stays.
    let lists: [(Vec<std::net::IpAddr>, &str, &str); 2] = [
        (
            jail.network.ipv4.iter().map(|a| std::net::IpAddr::V4(a.addr)).collect(),
            "0.0.0.0",
            "127.0.0.1",
        ),
        (
            jail.network.ipv6.iter().map(|a| std::net::IpAddr::V6(a.addr)).collect(),
            "[::]",
            "[::1]",
        ),
    ];
    if let Some(first) = jail.network.ipv4.first() {
        add(
            "listen from a second thread ends on the first address",
            "listen-thread",
            Expect::BoundTo(std::net::IpAddr::V4(first.addr)),
        );
    }
    for (list, any, loopback) in lists.into_iter().filter(|_| rewrites) {
        let Some(first) = list.first().copied() else { continue };
        add(
            "a wildcard bind ends on the first address",
            &format!("bind={any}:0"),
            Expect::BoundTo(first),
        );
        if !list.iter().any(|a| a.is_loopback()) {
            add(
                "the jail's loopback is its first address",
                &format!("bind={loopback}:0"),
                Expect::BoundTo(first),
            );
        }
        for other in list.iter().skip(1) {
            let at = std::net::SocketAddr::new(*other, 0);
            add(
                "later addresses stay as listed",
                &format!("bind={at}"),
                Expect::BoundTo(*other),
            );
        }
    }
    if v4 && rewrites {
        add(
            "listen(2) racing dup2(2) on its descriptor listens on listed addresses only",
            "listen-dup2-race=2000",
            Expect::OnlyAt(jail.network.ipv4.iter().map(|a| std::net::IpAddr::V4(a.addr)).collect()),
        );
    }
    if !private && v4 {
        // The protocols whose binds no program sees, refused on the host's stack.
        for check in ["socket-sctp", "socket-mptcp", "socket-inet-seqpacket", "socket-udplite"] {
            add(
                "on the host's stack, inet protocols other than TCP, UDP and ICMP echo are refused (EPROTONOSUPPORT)",
                check,
                Errno(EPROTONOSUPPORT),
            );
        }
    }
    if v4 {
        if !allows(Allow::RawSockets) {
            add("SOCK_RAW is denied (EPERM)", "socket-raw", Errno(EPERM));
            add("IPPROTO_RAW is denied (EPERM)", "socket-ipproto-raw", Errno(EPERM));
        } else if private {
            add("raw sockets work (allow raw-sockets)", "socket-raw", Errno(0));
        }
    }
    add(
        "network configuration ioctls are denied (EPERM)",
        "ioctl-siocsifflags",
        Errno(EPERM),
    );
    add(
        "network configuration ioctls are denied (EPERM)",
        "ioctl-siocaddrt",
        Errno(EPERM),
    );
    add("TIOCSTI is denied (EPERM)", "ioctl-tiocsti", Errno(EPERM));
    add(
        "TIOCSTI is denied whatever the upper half of the request",
        "ioctl-tiocsti-high-bits",
        Errno(EPERM),
    );
    let flags_file = format!("ioctl-setflags={scratch}/.sysjail-selftest-flags");
    if allows(Allow::Chflags) {
        add("inode flags pass the filter (allow chflags)", &flags_file, Not(EPERM));
    } else {
        add("inode flags are denied (EPERM)", &flags_file, Errno(EPERM));
    }
    let raise = if allows(Allow::Rlimit) && root && can_raise {
        0
    } else {
        EPERM
    };
    add(
        if raise == 0 {
            "jail root raises a hard limit (allow rlimit)"
        } else {
            "raising a hard limit is denied (EPERM)"
        },
        "setrlimit-raise",
        Errno(raise),
    );
    add("lowering a limit works", "setrlimit-lower", Errno(0));
    for check in ["init-module", "finit-module", "delete-module"] {
        add("kernel modules cannot be loaded (EPERM)", check, Errno(EPERM));
    }
    for check in ["mount", "umount2", "pivot-root", "open-tree", "fsopen", "move-mount"] {
        add("the jail's mounts are fixed (EPERM)", check, Errno(EPERM));
    }
    for check in ["unshare-user", "unshare-net", "clone-newuser", "setns"] {
        add("no new namespaces, no entering others (EPERM)", check, Errno(EPERM));
    }
    add("unsharing what is no namespace works", "unshare-files", Errno(0));
    add(
        "clone3 says ENOSYS, so libc falls back to clone",
        "clone3",
        Errno(ENOSYS),
    );
    add(
        "reboot(2) is denied (EPERM), for jail root too",
        "reboot-cad-off",
        Errno(EPERM),
    );
    for (check, errno) in [
        ("io-uring-setup", ENOSYS),
        ("bpf", EPERM),
        ("perf-event-open", EPERM),
        ("userfaultfd", EPERM),
        ("keyctl", ENOSYS),
        ("add-key", ENOSYS),
        ("kexec-load", EPERM),
        ("open-by-handle-at", EPERM),
        ("acct", EPERM),
        ("swapon", EPERM),
        ("settimeofday", EPERM),
        ("clock-settime", EPERM),
        ("adjtimex", EPERM),
        ("syslog", EPERM),
    ] {
        add("kernel interfaces beyond the jail are denied", check, Errno(errno));
    }
    add("harmless personalities work", "personality-query", Errno(0));
    add(
        "other personalities are denied (EPERM)",
        "personality-read-implies-exec",
        Errno(EPERM),
    );
    add(
        "a call the policy does not know is denied (ENOSYS)",
        "unknown-syscall",
        Errno(ENOSYS),
    );
    add(
        "sysctls are read-only",
        "write-file=/proc/sys/kernel/hostname",
        Errno(EROFS),
    );
    if jail.root.is_host_root() {
        add(
            "host secrets stay unreadable to jail root",
            "read-shadow",
            Errno(EACCES),
        );
    }
    if abis.contains(&Abi::X86_64) {
        add("x32 numbers are rejected (ENOSYS)", "x32-getpid", Errno(ENOSYS));
    }
    if abis.contains(&Abi::I386) && cfg!(target_arch = "x86_64") {
        add("i386 through int 0x80 works", "i386-getpid", Errno(0));
        let domain = if allows(Allow::AllDomains) {
            Not(EPROTONOSUPPORT)
        } else {
            Errno(EPROTONOSUPPORT)
        };
        add("i386: the same socket domains", "i386-socket-packet", domain.clone());
        if !private && v4 {
            for check in ["i386-socket-sctp", "i386-socket-mptcp"] {
                add(
                    "i386: the same inet protocols on the host's stack",
                    check,
                    Errno(EPROTONOSUPPORT),
                );
            }
        }
        // socketcall(2), which i386 libcs make sockets through: the
        // supervisor applies socket(2)'s rule to its copy of the arguments.
        add("i386: socketcall(SOCKET) works", "i386-socketcall-unix", Errno(0));
        add(
            "i386: socketcall(SOCKETPAIR) works",
            "i386-socketcall-socketpair",
            Errno(0),
        );
        add(
            "i386: socketcall(SOCKET), the same socket domains",
            "i386-socketcall-packet",
            domain,
        );
        add(
            "i386: socketcall(SOCKET), the same address families",
            "i386-socketcall-socket",
            Errno(if v4 { 0 } else { EAFNOSUPPORT }),
        );
        if v4 && !allows(Allow::RawSockets) {
            add(
                "i386: socketcall(SOCKET), SOCK_RAW is denied (EPERM)",
                "i386-socketcall-raw",
                Errno(EPERM),
            );
        }
        if let Some(first) = jail.network.ipv4.first() {
            add(
                "i386: listen through socketcall ends on the first address",
                "i386-socketcall-listen",
                Expect::BoundTo(std::net::IpAddr::V4(first.addr)),
            );
        }
        add("i386: the same SysV IPC rule", "i386-ipc-msgget", Errno(ipc));
        add("i386: the same SysV IPC rule", "i386-msgget", Errno(ipc));
        for check in [
            "i386-sethostname",
            "i386-init-module",
            "i386-unshare-user",
            "i386-mount",
            "i386-ioctl-tiocsti",
            "i386-bpf",
        ] {
            add("i386: the same denials (EPERM)", check, Errno(EPERM));
        }
        add("i386: the same denials (ENOSYS)", "i386-io-uring-setup", Errno(ENOSYS));
        add("i386: the same denials (ENOSYS)", "i386-clone3", Errno(ENOSYS));
    }
    let facts = vec![
        FactExpectation::OnlyJailProcesses,
        FactExpectation::Hostname(jail.hostname.to_string()),
        FactExpectation::NoNewPrivs,
        FactExpectation::SeccompFilter,
        FactExpectation::Capabilities {
            bounding: crate::policy::caps::compile(jail).mask(),
            root,
        },
        FactExpectation::OwnSession,
        FactExpectation::InitReveals(jail.name.to_string()),
    ];
    let mut facts = facts;
    let dev_is_at_dev = jail
        .mounts
        .iter()
        .any(|m| m.kind == crate::model::MountKind::Dev && m.target.as_str() == "/dev");
    if dev_is_at_dev {
        facts.push(FactExpectation::ShmSize(
            jail.limits.shm.unwrap_or(crate::model::Limits::SHM_DEFAULT).0,
        ));
    }
    (e, facts)
}

/// Compares the probe's report with the expectations.
pub fn judge(checks: &[Expectation], facts: &[FactExpectation], report: &Report) -> Vec<Verdict> {
    let mut out = Vec::new();
    for c in checks {
        let (pass, detail) = match report.checks.get(&c.check) {
            None => (false, format!("{}: no result", c.check)),
            Some(o) => {
                let got = format!("{} = {}", c.check, errno_text(o.errno));
                match c.expect.clone() {
                    Expect::OnlyAt(list) => {
                        let at: Vec<&str> = o
                            .addr
                            .as_deref()
                            .unwrap_or("")
                            .split(',')
                            .filter(|a| !a.is_empty())
                            .collect();
                        let listed = at.iter().all(|a| a.parse().is_ok_and(|ip| list.contains(&ip)));
                        (
                            o.errno == 0 && o.ret > 0 && !at.is_empty() && listed,
                            format!("{} calls succeeded; sockets on {}", o.ret, at.join(", ")),
                        )
                    }
                    Expect::Errno(e) => (o.errno == e, format!("{got}, expected {}", errno_text(e))),
                    Expect::Not(e) => (o.errno != e, format!("{got}, expected anything but {}", errno_text(e))),
                    Expect::BoundTo(ip) => {
                        let at = o.addr.as_deref().and_then(|a| a.parse::<std::net::SocketAddr>().ok());
                        (
                            o.errno == 0 && at.is_some_and(|a| a.ip() == ip),
                            match &o.addr {
                                Some(a) => format!("{} bound to {a}, expected {ip}", c.check),
                                None => format!("{got}, expected a socket bound to {ip}"),
                            },
                        )
                    }
                }
            }
        };
        out.push(Verdict {
            promise: c.promise.to_string(),
            pass,
            detail,
        });
    }
    let fact = |name: &str| report.facts.get(name).cloned().unwrap_or_default();
    let hex = |name: &str| u64::from_str_radix(fact(name).as_str().unwrap_or(""), 16).ok();
    for f in facts {
        let (promise, pass, detail) = match f {
            FactExpectation::OnlyJailProcesses => {
                let pids: Vec<i64> = fact("pids")
                    .as_array()
                    .map(|a| a.iter().filter_map(|p| p.as_i64()).collect())
                    .unwrap_or_default();
                let own = fact("pid").as_i64().unwrap_or(-1);
                (
                    "processes outside the jail are invisible",
                    pids.iter().all(|p| *p == 1 || *p == own),
                    format!("/proc shows {pids:?}"),
                )
            }
            FactExpectation::Hostname(h) => {
                let got = fact("hostname");
                (
                    "gethostname returns the jail's name",
                    got.as_str() == Some(h.as_str()),
                    format!("{got}"),
                )
            }
            FactExpectation::NoNewPrivs => (
                "no_new_privs is set",
                fact("nonewprivs").as_str() == Some("1"),
                format!("NoNewPrivs {}", fact("nonewprivs")),
            ),
            FactExpectation::SeccompFilter => (
                "a seccomp filter confines the jail",
                fact("seccomp").as_str() == Some("2"),
                format!("Seccomp {}", fact("seccomp")),
            ),
            FactExpectation::Capabilities { bounding, root } => {
                let (bnd, eff, amb) = (hex("capbnd"), hex("capeff"), hex("capamb"));
                let want_eff = if *root { *bounding } else { 0 };
                (
                    "capabilities: the jail's bounding set, none for other users, no ambient",
                    bnd == Some(*bounding) && eff == Some(want_eff) && amb == Some(0),
                    format!(
                        "bounding {bnd:x?} effective {eff:x?} ambient {amb:x?}, expected {bounding:x} {want_eff:x} 0"
                    ),
                )
            }
            FactExpectation::OwnSession => (
                "the jail never shares the caller's terminal",
                fact("sid") == fact("pid") && fact("tty").is_null(),
                format!("sid {} pid {} tty {}", fact("sid"), fact("pid"), fact("tty")),
            ),
            FactExpectation::InitReveals(name) => {
                let cmdline = fact("init_cmdline").as_str().unwrap_or_default().to_string();
                (
                    "init shows no host path and has no terminal",
                    cmdline.starts_with(&format!("sysjail-init {name}"))
                        && !cmdline.contains('/')
                        && fact("init_tty") == 0,
                    format!("/proc/1/cmdline {cmdline:?}, controlling terminal {}", fact("init_tty")),
                )
            }
            FactExpectation::ShmSize(bytes) => (
                "/dev/shm is bounded (limits.shm)",
                fact("shm_bytes").as_u64() == Some(*bytes),
                format!("{} bytes, expected {bytes}", fact("shm_bytes")),
            ),
        };
        out.push(Verdict {
            promise: promise.to_string(),
            pass,
            detail,
        });
    }
    out
}

fn errno_text(e: i32) -> String {
    if e == 0 {
        return "success".into();
    }
    // nix names every errno the kernel has ("EADDRNOTAVAIL").
    match nix::errno::Errno::from_raw(e) {
        nix::errno::Errno::UnknownErrno => format!("errno {e}"),
        known => format!("{known:?}"),
    }
}

/// The check names the probe must run for `expectations`.
pub fn checks(expectations: &[Expectation]) -> Vec<String> {
    let mut out: Vec<String> = expectations.iter().map(|e| e.check.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// Why a selftest could not run.
#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    /// The jail did not start.
    #[error(transparent)]
    Up(#[from] crate::launch::UpError),
    /// The probe's report is missing or unreadable.
    #[error("the probe did not report (exit status {code}): {output}")]
    NoReport {
        /// sysjail up's status.
        code: i32,
        /// What the probe printed.
        output: String,
    },
    /// A file of the selftest.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Launches `jail` with the probe inside and judges every promise.
pub fn run(mut jail: Jail, registry: crate::state::Registry) -> Result<Vec<Verdict>, SelftestError> {
    use std::io::{Read, Seek};
    use std::os::fd::OwnedFd;

    use crate::model::{AbsPath, Mount, MountKind};

    // The probe is this program, bound read-only into the jail's own /dev: a
    // file system the jail has whatever its root, and whose Landlock rule lets
    // it run. The bind is a mount of its own, so /dev's noexec does not apply.
    let exe = std::fs::canonicalize(std::env::current_exe()?)?;
    let source = AbsPath::parse(&exe.to_string_lossy())
        .map_err(|p| std::io::Error::other(format!("{}: {}", exe.display(), p.describe())))?;
    let dev = jail.mounts.iter().position(|m| m.kind == MountKind::Dev).unwrap_or(0);
    let dev_target = jail
        .mounts
        .get(dev)
        .map_or_else(|| AbsPath::parse("/dev").expect("static"), |m| m.target.clone());
    let probe = dev_target.join(&AbsPath::parse("/.sysjail-probe").expect("static"));
    jail.mounts.insert(
        dev + 1,
        Mount {
            target: probe.clone(),
            kind: MountKind::Bind {
                source,
                read_only: true,
                recursive: false,
                idmap: false,
            },
            index: None,
        },
    );
    let scratch = dev_target.join(&AbsPath::parse("/shm").expect("static"));
    let abis = Abi::native();
    let host = crate::sys::probe::probe();
    let can_raise = host.has_cap(crate::policy::Capability::SYS_RESOURCE.number());
    let rewrites = host.root && host.cgroup.v2.is_some();
    let (checks, facts) = expectations(&jail, std::process::id(), abis, scratch.as_str(), can_raise, rewrites);
    let mut command = vec![probe.to_string(), "probe".to_string()];
    command.extend(self::checks(&checks));

    // The report goes to a file: a pipe would need a reader thread, and the
    // supervisor must be single-threaded when it creates the jail.
    let path = std::env::temp_dir().join(format!(".sysjail-selftest-{}", std::process::id()));
    let mut out = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null")?;
    let stdio = [
        OwnedFd::from(null),
        OwnedFd::from(out.try_clone()?),
        OwnedFd::from(std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned()?)),
    ];
    let launch = crate::launch::Launch {
        jail,
        digest: 0,
        command: Some(command),
        background: false,
        print_id: false,
        registry,
        log_denials: None,
        no_idmap: false,
        stdio: Some(stdio),
    };
    let code = crate::launch::up_on(&host, launch)?;
    out.rewind()?;
    let mut text = String::new();
    out.read_to_string(&mut text)?;
    let report: Report = serde_json::from_str(text.trim()).map_err(|_| SelftestError::NoReport {
        code,
        output: text.clone(),
    })?;
    Ok(judge(&checks, &facts, &report))
}

use std::os::fd::AsFd;
