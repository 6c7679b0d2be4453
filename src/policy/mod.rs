//! Stage 3: the policy table. Every decision the launcher will carry out, as
//! plain data, each entry saying which key or default produced it.
//!
//! The table depends on the definition and on the facts of the machine it
//! runs on (which ABIs it runs, which Landlock version, whether cgroup BPF
//! can be loaded: [`HostFacts`]), and on nothing else: `sysjail policy` on a
//! host prints what `sysjail up` enforces there, each host-dependent decision
//! saying which fact it rests on ([`Why::Host`]), and what the host cannot
//! run is refused ([`Refused`]). Later stages carry the table out; they
//! never edit it.
//!
//! ```
//! use sysjail::{config, diag::SourceMap, model, policy};
//! let text = "path = \"/\"\ncommand = [\"/bin/true\"]\nallow = [\"ipc\"]\n";
//! let mut sources = SourceMap::new();
//! let loaded = config::load_text("j.toml".as_ref(), text, &mut sources, &config::HostFiles);
//! let jail = model::validate(&loaded).jail.unwrap();
//! let policy = policy::compile(&jail, &sysjail::facts::HostFacts::example()).unwrap();
//! assert!(!policy.capabilities.keeps(policy::Capability::SYS_BOOT));
//! assert!(!policy.capabilities.keeps(policy::Capability::SETFCAP));
//! ```

pub mod caps;
pub mod host;
pub mod landlock;
pub mod mounts;
pub mod network;
mod render;
pub mod syscalls;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

pub use caps::{Capability, CapabilityPolicy};
pub use host::{Degraded, HostPolicy, Refused};
pub use landlock::LandlockPolicy;
pub use mounts::{MountEntry, MountOp};
pub use network::NetworkPolicy;
pub use render::render_text;
pub use syscalls::{Action, Errno, Notify, SyscallPolicy};

use crate::facts::HostFacts;
use crate::model::{AbsPath, Allow, Bytes, IdRef, Identity, Jail, MilliCpu, Rlimit, RlimitValue, StopSignal};

/// Why a policy entry exists.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Why {
    /// A key of the definition, such as `limits.memory` or `mount[2]`.
    Key(String),
    /// An `allow` entry.
    Allow(Allow),
    /// sysjail's default, with its reason.
    Default(&'static str),
    /// A fact of the host the table was compiled for.
    Host(String),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Key(k) => write!(f, "{k}"),
            Why::Allow(a) => write!(f, "allow {a}"),
            Why::Default(reason) if reason.starts_with("promise:") => f.write_str(reason),
            Why::Default(reason) => write!(f, "default: {reason}"),
            Why::Host(fact) => write!(f, "host: {fact}"),
        }
    }
}

/// The compiled policy of one jail.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    /// The jail's name.
    pub name: String,
    /// Its host name.
    pub hostname: String,
    /// What runs, as whom, where, and how it stops.
    pub process: Process,
    /// Namespaces the jail gets, each new and private.
    pub namespaces: Vec<(Namespace, Why)>,
    /// User and group id mapping.
    pub ids: IdMap,
    /// The mount table, in order.
    pub mounts: Vec<MountEntry>,
    /// Capability sets.
    pub capabilities: CapabilityPolicy,
    /// Hard (and soft) rlimits set at launch.
    pub rlimits: Vec<RlimitEntry>,
    /// Per-user kernel counters of the jail's user namespace, lowered at
    /// launch; the rest are the host's per-user limits, charged to jail
    /// root's host uid.
    pub counters: Vec<(crate::model::Counter, u32, Why)>,
    /// Syscall rules for every ABI.
    pub syscalls: SyscallPolicy,
    /// The Landlock ruleset.
    pub landlock: LandlockPolicy,
    /// Network rules.
    pub network: NetworkPolicy,
    /// cgroup limits.
    pub cgroup: Cgroup,
    /// Where denied calls are logged, if anywhere.
    pub denial_log: Option<AbsPath>,
    /// The `[hooks]` commands, in the order they run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookEntry>,
    /// The host the table was compiled for, and what it lacks.
    pub host: HostPolicy,
}

/// A lifecycle hook: when and where it runs, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookEntry {
    /// Its key: "prestart", "poststart", "prestop" or "poststop".
    pub phase: &'static str,
    /// "host" (as the user running sysjail) or "jail" (as the jail's command).
    pub runs: &'static str,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// How long it may run, in milliseconds (`hooks.timeout`).
    pub timeout_ms: u64,
}

/// The hooks of `jail`, phase by phase.
fn hooks(jail: &Jail) -> Vec<HookEntry> {
    let hooks = &jail.lifecycle.hooks;
    hooks
        .phases()
        .into_iter()
        .flat_map(|(phase, commands)| {
            let runs = if matches!(phase, "prestart" | "poststop") {
                "host"
            } else {
                "jail"
            };
            commands.iter().map(move |argv| HookEntry {
                phase,
                runs,
                argv: argv.clone(),
                timeout_ms: hooks.timeout.as_millis() as u64,
            })
        })
        .collect()
}

/// Linux namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// Ids: jail root is not host root.
    User,
    /// Processes: only the jail's are visible.
    Pid,
    /// Mounts: the jail's root and mounts.
    Mount,
    /// Host name.
    Uts,
    /// SysV IPC and POSIX message queues.
    Ipc,
    /// The jail sees its own cgroup as the root.
    Cgroup,
    /// Network stack (private mode only).
    Net,
}

/// The jail's process.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Process {
    /// argv.
    pub command: Vec<String>,
    /// Working directory.
    pub workdir: AbsPath,
    /// Credentials.
    pub user: User,
    /// Environment.
    pub env: Environment,
    /// First signal of `down`.
    pub stop_signal: StopSignal,
    /// Time before SIGKILL, in milliseconds.
    pub stop_timeout_ms: u64,
}

/// Where a user and its groups are looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserDatabase {
    /// The jail's /etc/passwd and /etc/group.
    Jail,
    /// The host's.
    Host,
}

impl std::fmt::Display for UserDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UserDatabase::Jail => "jail",
            UserDatabase::Host => "host",
        })
    }
}

/// Whose credentials, looked up where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Where the user is looked up.
    pub database: UserDatabase,
    /// The user; `None` is jail root.
    pub name: Option<IdRef>,
    /// Supplementary groups; `None`: the user's groups from the group file.
    pub groups: Option<Vec<IdRef>>,
    /// Why.
    pub why: Why,
}

/// The environment of jailed processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// Start empty but for `keep`, as the old `-l`.
    pub clean: bool,
    /// Kept (HOME, SHELL and USER from the login, TERM from the caller).
    pub keep: Vec<&'static str>,
    /// Set after that.
    pub set: BTreeMap<String, String>,
}

/// Id mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdMap {
    /// How many jail ids (0 to count-1) map to a private range of unprivileged
    /// host ids, allocated at launch; jail root is never host root.
    pub count: u32,
    /// The jail's own tree is id-mapped so that its files keep their owners.
    pub idmapped_root: bool,
}

/// An rlimit set at launch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RlimitEntry {
    /// Which.
    pub resource: Rlimit,
    /// Soft and hard value.
    pub value: RlimitValue,
    /// Why.
    pub why: Why,
}

/// cgroup limits. Every jail has its own cgroup; these entries limit it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cgroup {
    /// memory.max.
    pub memory: Option<Bytes>,
    /// pids.max.
    pub pids: Option<u32>,
    /// CPU quota per period.
    pub cpu: Option<MilliCpu>,
}

/// The number of jail ids mapped: the 16-bit range every distribution uses.
pub const JAIL_IDS: u32 = 65536;

/// Compiles a validated jail into its policy table for a host: what that
/// host will enforce, or why it cannot run the jail.
pub fn compile(jail: &Jail, facts: &HostFacts) -> Result<Policy, Refused> {
    host::refusals(jail, facts)?;
    let mut degraded = Vec::new();
    let mounts = mounts::compile(jail, facts.root, &mut degraded);
    let landlock = landlock::compile(&mounts, facts.landlock_abi, &mut degraded);
    let network = network::compile(jail, facts, &mut degraded)?;
    let syscalls = syscalls::compile(jail, facts, &mut degraded);
    if (notifies(&syscalls) || jail.log_denials.is_some()) && !facts.seccomp_notify {
        return Err(Refused::NoNotify("this policy"));
    }
    Ok(Policy {
        name: jail.name.to_string(),
        hostname: jail.hostname.to_string(),
        process: process(jail),
        namespaces: namespaces(jail),
        ids: IdMap {
            count: if facts.root { JAIL_IDS } else { 1 },
            idmapped_root: facts.root && !jail.root.is_host_root(),
        },
        mounts,
        capabilities: caps::compile(jail),
        rlimits: rlimits(jail),
        counters: jail
            .limits
            .counters
            .iter()
            .map(|(&c, &n)| (c, n, Why::Key(format!("limits.{}", c.key()))))
            .collect(),
        syscalls,
        landlock,
        network,
        cgroup: Cgroup {
            memory: jail.limits.memory,
            pids: jail.limits.pids,
            cpu: jail.limits.cpu,
        },
        denial_log: jail.log_denials.clone(),
        hooks: hooks(jail),
        host: HostPolicy {
            summary: host::summary(facts),
            degraded,
        },
    })
}

/// Whether the supervisor answers some call of the table. Every table has
/// such calls (reboot(2) at least).
fn notifies(syscalls: &SyscallPolicy) -> bool {
    syscalls.rules.iter().any(|r| {
        std::iter::once(r.otherwise)
            .chain(r.arms.iter().map(|a| a.then))
            .any(|a| matches!(a, Action::Notify(_)))
    })
}

/// The namespaces every jail gets, and a network namespace for a private one.
fn namespaces(jail: &Jail) -> Vec<(Namespace, Why)> {
    let mut namespaces: Vec<(Namespace, Why)> = [
        (Namespace::User, "jail root is not host root"),
        (Namespace::Pid, "promise: processes outside the jail are invisible"),
        (Namespace::Mount, "the jail's own root and mounts"),
        (Namespace::Uts, "promise: the hostname is the jail's"),
        (Namespace::Ipc, "SysV IPC and message queues of the jail only"),
        (Namespace::Cgroup, "the jail sees its own cgroup as the root"),
    ]
    .into_iter()
    .map(|(ns, why)| (ns, Why::Default(why)))
    .collect();
    if jail.network.own_namespace() {
        namespaces.push((Namespace::Net, Why::Key("network.mode".into())));
    }
    namespaces
}

fn rlimits(jail: &Jail) -> Vec<RlimitEntry> {
    jail.limits
        .rlimits
        .iter()
        .map(|(&resource, &value)| RlimitEntry {
            resource,
            value,
            why: Why::Key(format!("limits.{}", resource.key())),
        })
        .collect()
}

fn process(jail: &Jail) -> Process {
    let (database, name, why) = match &jail.identity {
        Identity::JailRoot => (UserDatabase::Jail, None, Why::Default("jail root")),
        Identity::Jail(u) => (UserDatabase::Jail, Some(u.clone()), Why::Key("user".into())),
        Identity::Host(u) => (UserDatabase::Host, Some(u.clone()), Why::Key("host-user".into())),
    };
    Process {
        command: jail.command.clone(),
        workdir: jail.workdir.clone(),
        user: User {
            database,
            name,
            groups: jail.groups.clone(),
            why,
        },
        env: Environment {
            clean: jail.clean_env,
            keep: if jail.clean_env {
                vec!["HOME", "SHELL", "TERM", "USER"]
            } else {
                vec![]
            },
            set: jail.env.clone(),
        },
        stop_signal: jail.stop.signal,
        stop_timeout_ms: jail.stop.timeout.as_millis() as u64,
    }
}
