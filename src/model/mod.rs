//! Stage 2: the validated jail. Every value here has been checked; illegal
//! combinations cannot be represented.

mod names;
mod path;
mod units;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::config::{Allow, Restart, StopSignal};
pub use names::{Hostname, IdRef, JailName, check_env_name, check_ifname};
pub use path::{AbsPath, PathProblem};
pub use units::{Bytes, MilliCpu, parse_duration};
pub use validate::{Validated, validate};

/// `log-size` when the definition does not set it: a jail's output can fill
/// two files of this size on the host, no more.
pub const DEFAULT_LOG_SIZE: Bytes = Bytes(10 << 20);

/// A jail definition that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Jail {
    /// Unique among running jails.
    pub name: JailName,
    /// Jails that must run before this one (`depend`), each once.
    pub depend: Vec<JailName>,
    /// The file it was read from, if any.
    pub definition: Option<PathBuf>,
    /// The root directory.
    pub root: Root,
    /// The UTS host name.
    pub hostname: Hostname,
    /// argv of the jail's command; never empty.
    pub command: Vec<String>,
    /// Working directory inside the jail.
    pub workdir: AbsPath,
    /// Whose credentials the command runs with.
    pub identity: Identity,
    /// Supplementary groups; `None` means the user's groups from the group file.
    pub groups: Option<Vec<IdRef>>,
    /// Start from a clean environment.
    pub clean_env: bool,
    /// Variables set after `clean_env`.
    pub env: BTreeMap<String, String>,
    /// The `allow` entries.
    pub allow: BTreeSet<Allow>,
    /// The network.
    pub network: Network,
    /// Resource limits.
    pub limits: Limits,
    /// Mounts in the order they are made, including the implied /proc and /dev.
    pub mounts: Vec<Mount>,
    /// How `down` stops the jail.
    pub stop: Stop,
    /// Start window and restart policy.
    pub lifecycle: Lifecycle,
    /// Where a background jail's output goes, if not to the default log.
    pub log: Option<LogTarget>,
    /// Size at which the logs are rotated.
    pub log_size: Bytes,
    /// Where denied calls are recorded.
    pub log_denials: Option<AbsPath>,
}

impl Jail {
    /// True when the jail can write to host storage: its own tree, or a host
    /// directory bound writable. (A tmpfs is the jail's alone.)
    pub fn writes_host_storage(&self) -> bool {
        !self.root.read_only
            || self
                .mounts
                .iter()
                .any(|m| matches!(m.kind, MountKind::Bind { read_only: false, .. }))
    }
}

/// The jail's root directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// Host directory.
    pub path: AbsPath,
    /// Mounted read-only.
    pub read_only: bool,
}

impl Root {
    /// True when the jail shares the host's root directory.
    pub fn is_host_root(&self) -> bool {
        self.path.is_root()
    }
}

/// Whose credentials a jail's processes carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The jail's root (uid 0 inside, an unprivileged id outside).
    JailRoot,
    /// A user of the jail's own /etc/passwd (`user`, the old `-U`).
    Jail(IdRef),
    /// A user of the host's /etc/passwd (`host-user`, the old `-u`).
    Host(IdRef),
}

/// The network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// Host stack or private stack.
    pub mode: NetworkMode,
    /// IPv4 addresses; the first is the rewrite target. Empty: IPv4 denied,
    /// unless the jail's network is loopback only ([`Network::loopback_only`]).
    pub ipv4: Vec<Addr<Ipv4Addr>>,
    /// IPv6 addresses, as `ipv4`.
    pub ipv6: Vec<Addr<Ipv6Addr>>,
}

impl Network {
    /// True for a private network without an address off loopback: it has no
    /// veth, so an inet socket of either family reaches the jail's own
    /// loopback and nothing else.
    pub fn loopback_only(&self) -> bool {
        matches!(self.mode, NetworkMode::Private(_))
            && self.ipv4.iter().all(|a| a.addr.is_loopback())
            && self.ipv6.iter().all(|a| a.addr.is_loopback())
    }

    /// True when the jail has a network namespace of its own.
    pub fn own_namespace(&self) -> bool {
        !matches!(self.mode, NetworkMode::Host)
    }

    /// Whether IPv4 sockets may be created: an IPv4 address, or loopback only.
    pub fn ipv4_allowed(&self) -> bool {
        !self.ipv4.is_empty() || self.loopback_only()
    }

    /// Whether IPv6 sockets may be created, as [`Network::ipv4_allowed`].
    pub fn ipv6_allowed(&self) -> bool {
        !self.ipv6.is_empty() || self.loopback_only()
    }
}

/// An address with its prefix length (private mode; host mode uses the full length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Addr<A> {
    /// The address.
    pub addr: A,
    /// Prefix length of the interface address.
    pub prefix: u8,
}

/// Network modes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// The host's stack, every socket confined to the listed addresses.
    Host,
    /// The jail's own network namespace: loopback, and a veth holding the
    /// addresses beyond it.
    Private(Private),
    /// The jail's own network namespace, and no IPv4 or IPv6 socket at all
    /// (the old `jail` without an address; FreeBSD's `ip4 = disable`).
    Disabled,
}

/// Settings of a private network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Private {
    /// How the jail's interface reaches the host.
    pub uplink: Uplink,
    /// Name of the interface inside the jail.
    pub interface: String,
}

/// How the host end of a private jail's veth is connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uplink {
    /// Not at all: the host end is left for the administrator to configure.
    None,
    /// Attached to an existing bridge; the gateways, if any, are routers on
    /// the bridged network, the jail's default routes.
    Bridge {
        /// The bridge.
        bridge: String,
        /// IPv4 router.
        v4: Option<Ipv4Addr>,
        /// IPv6 router.
        v6: Option<Ipv6Addr>,
    },
    /// Point to point: the host end holds these addresses, the jail routes by them.
    Gateway {
        /// IPv4 gateway.
        v4: Option<Ipv4Addr>,
        /// IPv6 gateway.
        v6: Option<Ipv6Addr>,
    },
}

/// Resource limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// cgroup memory limit.
    pub memory: Option<Bytes>,
    /// cgroup pids limit.
    pub pids: Option<u32>,
    /// cgroup CPU quota.
    pub cpu: Option<MilliCpu>,
    /// Hard (and soft) rlimits.
    pub rlimits: BTreeMap<Rlimit, RlimitValue>,
    /// Size of /dev/shm; `None`: [`Limits::SHM_DEFAULT`].
    pub shm: Option<Bytes>,
    /// Per-user kernel counters of the jail's user namespace.
    pub counters: BTreeMap<Counter, u32>,
}

/// A per-user counter the kernel keeps for each user namespace, and that a
/// namespace's owner may lower for it (/proc/sys/user/).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Counter {
    /// user.max_inotify_instances
    InotifyInstances,
    /// user.max_inotify_watches
    InotifyWatches,
}

impl Counter {
    /// The key in `[limits]`.
    pub const fn key(self) -> &'static str {
        match self {
            Counter::InotifyInstances => "inotify-instances",
            Counter::InotifyWatches => "inotify-watches",
        }
    }

    /// Its file under /proc/sys/user/.
    pub const fn sysctl(self) -> &'static str {
        match self {
            Counter::InotifyInstances => "max_inotify_instances",
            Counter::InotifyWatches => "max_inotify_watches",
        }
    }
}

impl Limits {
    /// /dev/shm's size when `limits.shm` is not set, as a tmpfs mount's default.
    pub const SHM_DEFAULT: Bytes = Bytes(64 << 20);
    /// True when nothing is limited.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.pids.is_none() && self.cpu.is_none() && self.rlimits.is_empty()
    }
}

/// The rlimits a definition can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rlimit {
    /// RLIMIT_NOFILE
    Nofile,
    /// RLIMIT_NPROC
    Nproc,
    /// RLIMIT_CORE
    Core,
    /// RLIMIT_FSIZE
    Fsize,
    /// RLIMIT_STACK
    Stack,
    /// RLIMIT_AS
    As,
    /// RLIMIT_MSGQUEUE
    Msgqueue,
}

impl Rlimit {
    /// The key in `[limits]`.
    pub const fn key(self) -> &'static str {
        match self {
            Rlimit::Nofile => "nofile",
            Rlimit::Nproc => "nproc",
            Rlimit::Core => "core",
            Rlimit::Fsize => "fsize",
            Rlimit::Stack => "stack",
            Rlimit::As => "as",
            Rlimit::Msgqueue => "msgqueue",
        }
    }

    /// The kernel's name.
    pub const fn kernel_name(self) -> &'static str {
        match self {
            Rlimit::Nofile => "RLIMIT_NOFILE",
            Rlimit::Nproc => "RLIMIT_NPROC",
            Rlimit::Core => "RLIMIT_CORE",
            Rlimit::Fsize => "RLIMIT_FSIZE",
            Rlimit::Stack => "RLIMIT_STACK",
            Rlimit::As => "RLIMIT_AS",
            Rlimit::Msgqueue => "RLIMIT_MSGQUEUE",
        }
    }
}

/// An rlimit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RlimitValue {
    /// A number (bytes for sizes).
    Limited(u64),
    /// RLIM_INFINITY.
    Unlimited,
}

/// One mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where it appears in the jail.
    pub target: AbsPath,
    /// What is mounted.
    pub kind: MountKind,
    /// Index in the definition's `[[mount]]` list; `None` for implied mounts.
    pub index: Option<usize>,
}

/// What a mount is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// A host directory or file.
    Bind {
        /// Host path.
        source: AbsPath,
        /// Read-only.
        read_only: bool,
        /// Include submounts.
        recursive: bool,
        /// Id-mapped into the jail's range.
        idmap: bool,
    },
    /// A memory-backed file system.
    Tmpfs {
        /// Size limit.
        size: Bytes,
        /// Mode of its root directory.
        mode: u32,
        /// Read-only.
        read_only: bool,
    },
    /// The jail's own /proc.
    Proc,
    /// The jail's own minimal /dev.
    Dev,
}

/// Where a background jail's output goes (`log`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// A host file, rotated at `log-size`.
    File(AbsPath),
    /// The systemd journal, through systemd-cat.
    Journal,
}

/// What the supervisor does around the command's start and end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    /// How long a background command must run before `up -b` reports it started.
    pub start_window: Duration,
    /// When to start the jail again.
    pub restart: Restart,
    /// Restarts in a row before the jail stays down.
    pub restart_limit: u32,
    /// Commands run around the jail's life.
    pub hooks: Hooks,
}

/// Commands run around a jail's life (`[hooks]`), each a program (an
/// absolute path) and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hooks {
    /// On the host before the jail is made.
    pub prestart: Vec<Vec<String>>,
    /// In the jail once its command runs.
    pub poststart: Vec<Vec<String>>,
    /// In the jail before it is stopped.
    pub prestop: Vec<Vec<String>>,
    /// On the host after the jail is torn down.
    pub poststop: Vec<Vec<String>>,
    /// How long each may run.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Hooks {
        Hooks {
            prestart: Vec::new(),
            poststart: Vec::new(),
            prestop: Vec::new(),
            poststop: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Hooks {
    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.prestart.is_empty() && self.poststart.is_empty() && self.prestop.is_empty() && self.poststop.is_empty()
    }

    /// Each phase by its key, with its commands.
    pub fn phases(&self) -> [(&'static str, &[Vec<String>]); 4] {
        [
            ("prestart", &self.prestart),
            ("poststart", &self.poststart),
            ("prestop", &self.prestop),
            ("poststop", &self.poststop),
        ]
    }
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            start_window: Duration::from_secs(1),
            restart: Restart::No,
            restart_limit: 5,
            hooks: Hooks::default(),
        }
    }
}

/// How a jail is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    /// Time between the stop signal and SIGKILL.
    pub timeout: Duration,
    /// First signal.
    pub signal: StopSignal,
}
