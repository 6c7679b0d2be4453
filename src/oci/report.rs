//! The export report: every promise of the policy table, and how the bundle
//! keeps it or why it cannot.

use std::fmt;

use serde::Serialize;

use super::Options;
use super::profile::{Outer, Unsupervised};
use crate::model::RlimitValue;
use crate::policy::syscalls::Notify;
use crate::policy::{MountOp, Namespace, Policy};

/// How the bundle keeps a promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "how", content = "by")]
pub enum How {
    /// Kept, by these means.
    Kept(String),
    /// Lost, for this reason.
    Lost(String),
}

/// One promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The promise, as the policy table states it.
    pub promise: String,
    /// How the bundle keeps it.
    #[serde(flatten)]
    pub how: How,
}

/// The report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every promise, in the order of the policy table.
    pub entries: Vec<Entry>,
}

impl Report {
    /// The promises the bundle loses.
    pub fn lost(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| matches!(e.how, How::Lost(_)))
    }

    fn kept(&mut self, promise: impl Into<String>, by: impl Into<String>) {
        self.entries.push(Entry {
            promise: promise.into(),
            how: How::Kept(by.into()),
        });
    }

    fn lost_(&mut self, promise: impl Into<String>, why: impl Into<String>) {
        self.entries.push(Entry {
            promise: promise.into(),
            how: How::Lost(why.into()),
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            match &e.how {
                How::Kept(by) => writeln!(f, "kept  {}\n      by {by}", e.promise)?,
                How::Lost(why) => writeln!(f, "LOST  {}\n      {why}", e.promise)?,
            }
        }
        let lost = self.lost().count();
        writeln!(
            f,
            "{} promises: {} kept, {lost} lost",
            self.entries.len(),
            self.entries.len() - lost
        )
    }
}

const INIT: &str = "sysjail's init in the bundle (oci-init)";

/// The report of a bundle of `policy`.
pub fn build(policy: &Policy, options: &Options, unsupervised: &[Unsupervised], outer: &Outer) -> Report {
    let mut r = Report::default();
    namespaces(&mut r, policy);
    r.kept(
        "jail root is not host root",
        format!(
            "linux.uidMappings/gidMappings: jail ids 0-{} are host uids from {}, gids from {}",
            crate::policy::JAIL_IDS - 1,
            options.id_base,
            options.gid_base
        ),
    );
    r.lost_(
        "the jail's per-user kernel counters are charged to jail root's host uid",
        "the runtime creates the user namespace as host root, which then owns it: OCI has no field for its owner",
    );
    if !policy.counters.is_empty() {
        r.lost_(
            "limits on the jail's per-user kernel counters (inotify, message queues)",
            "runtimes refuse user.* sysctls in linux.sysctl; the bundle keeps the host's per-user limits",
        );
    }
    r.kept(
        "sysjail's own init is pid 1: it reaps orphans, ignores signals from the jail, and lives until the last \
         process of the jail has exited",
        format!("{INIT}, which forwards the engine's signals to every process of the jail"),
    );
    mounts(&mut r, policy, options);
    process(&mut r, policy);
    syscalls(&mut r, policy, unsupervised, outer);
    landlock(&mut r, policy);
    exec(&mut r, policy, outer);
    network(&mut r, policy);
    cgroups(&mut r, policy);
    if policy.denial_log.is_some() {
        r.lost_(
            "denied calls are logged (log-denials)",
            "logging takes the supervisor's seccomp listener; the filter answers with the errno alone",
        );
    }
    r.lost_(
        "the jail never gets the caller's terminal or descriptors",
        "the runtime gives the process its caller's stdio (runc run, crun run) or FIFOs (containerd): the engine \
         decides, not the bundle",
    );
    r.kept(
        "stop signal, then SIGKILL after the stop timeout",
        format!(
            "the engine: `runc kill` / `ctr task kill` send {}; the grace period is the orchestrator's \
             (terminationGracePeriodSeconds = {}s, Nomad kill_timeout)",
            policy.process.stop_signal,
            policy.process.stop_timeout_ms / 1000
        ),
    );
    r
}

fn namespaces(r: &mut Report, policy: &Policy) {
    for (ns, _) in &policy.namespaces {
        let promise = match ns {
            Namespace::User => "a user namespace of the jail's own",
            Namespace::Pid => "processes outside the jail are invisible and untouchable",
            Namespace::Mount => "the jail's own root and mounts",
            Namespace::Uts => "gethostname returns the jail's hostname",
            Namespace::Ipc => "SysV IPC and message queues of the jail only",
            Namespace::Cgroup => "the jail sees its own cgroup as the root",
            Namespace::Net => "a network stack of the jail's own",
        };
        r.kept(promise, "linux.namespaces");
    }
    r.kept(
        format!("the hostname is {}", policy.hostname),
        "hostname; sethostname and setdomainname EPERM by the filter of ".to_string() + INIT,
    );
}

fn mounts(r: &mut Report, policy: &Policy, options: &Options) {
    for m in &policy.mounts {
        let target = m.target.as_str();
        match &m.op {
            MountOp::Root {
                source,
                read_only,
                idmap,
            } => {
                let ro = if *read_only { ", read-only" } else { "" };
                if source.is_root() {
                    r.kept(
                        format!("the jail's root is the host's /{ro}, without the mounts on it"),
                        "root.path is the bundle's rootfs: an empty directory for each mount point of /, a link \
                         for each link, a bind of each directory and file of the root file system",
                    );
                    r.lost_(
                        "mounts below the host's top-level directories are hidden",
                        "in a user namespace the kernel binds a directory only with the mounts below it (rbind); \
                         Landlock keeps them read-only",
                    );
                } else {
                    r.kept(format!("the jail's root is {source}{ro}"), "root.path, root.readonly");
                    if !*read_only {
                        r.lost_(
                            "a writable tree lies below a directory no other host user can search",
                            "runtimes mount the root as jail root, who cannot pass that root-only directory: \
                             let the tree's owner alone search it, or make the tree read-only",
                        );
                    }
                }
                if *idmap {
                    let promise = "the tree's files keep their owners (id-mapped root)";
                    match options.tree_owner {
                        Some(owner) if owner == (options.id_base, options.gid_base) => r.kept(
                            promise,
                            format!(
                                "the id maps start at the tree's owner ({}:{}): disk id owner + k is jail id k, as in \
                                 LXC's unprivileged containers",
                                owner.0, owner.1
                            ),
                        ),
                        _ => r.lost_(
                            promise,
                            "OCI cannot id-map the root, and the tree's owner is not the start of the id maps \
                             (--id-base): its files show as nobody's",
                        ),
                    }
                }
                if options.dynamic && !source.is_root() {
                    r.lost_(
                        "sysjail's init runs in any tree",
                        format!("this sysjail is linked dynamically: {source} must hold its libc (build it static)"),
                    );
                }
            }
            MountOp::Bind { source, idmap, .. } => {
                r.kept(format!("{source} bound at {target}"), "mounts (bind, nosuid, nodev)");
                if *idmap {
                    r.lost_(
                        format!("{target} is id-mapped to its owner"),
                        "runc 1.1 has no id-mapped mounts; its files show as nobody's",
                    );
                }
            }
            MountOp::Tmpfs { .. } => r.kept(format!("a tmpfs at {target}"), "mounts"),
            MountOp::Proc => r.kept(format!("a /proc of the jail's own at {target}"), "mounts (proc)"),
            MountOp::Dev { .. } => r.kept(
                format!("a minimal /dev at {target} with devpts and shm"),
                "mounts, and the runtime's default devices (null zero full random urandom tty)",
            ),
            MountOp::Mask => r.kept(format!("{target} is hidden"), "linux.maskedPaths"),
            MountOp::ReadOnly => r.kept(format!("{target} is read-only"), "linux.readonlyPaths"),
        }
    }
}

fn process(r: &mut Report, policy: &Policy) {
    let p = &policy.process;
    r.kept(
        format!("runs as {} ({} database)", user(policy), p.user.database),
        "process.user, resolved when exported",
    );
    if p.env.clean {
        r.kept(
            "a clean environment: HOME, SHELL, USER and `env` only",
            "process.env (TERM is not kept: a bundle has no caller's terminal)",
        );
    } else {
        r.lost_(
            "the caller's environment is inherited",
            "a bundle has no caller: process.env holds only HOME, SHELL, USER and `env`",
        );
    }
    r.kept(
        "no_new_privs; only the listed capabilities in the bounding set; ambient and inheritable cleared",
        "process.noNewPrivileges, process.capabilities",
    );
    let raise = if policy
        .syscalls
        .rule(crate::syscalls::Sysno::prlimit64)
        .is_some_and(|rule| {
            rule.arms
                .iter()
                .any(|a| matches!(a.then, crate::policy::Action::Notify(Notify::Rlimit)))
        }) {
        "raising a hard limit is EPERM: `allow rlimit` needs the supervisor, which copies the limit once"
    } else {
        "raising a hard limit is EPERM (no CAP_SYS_RESOURCE)"
    };
    for l in &policy.rlimits {
        let value = match l.value {
            RlimitValue::Limited(n) => n.to_string(),
            RlimitValue::Unlimited => "unlimited".into(),
        };
        r.kept(format!("{} {value}", l.resource.kernel_name()), "process.rlimits");
    }
    r.kept(raise, "process.capabilities");
}

fn user(policy: &Policy) -> String {
    match &policy.process.user.name {
        None => "jail root".into(),
        Some(u) => u.to_string(),
    }
}

fn syscalls(r: &mut Report, policy: &Policy, unsupervised: &[Unsupervised], outer: &Outer) {
    let abis: Vec<String> = policy.syscalls.abis.iter().map(|a| format!("{a:?}")).collect();
    r.kept(
        format!(
            "the syscall table, first match, low 32 bits of integer arguments, on {}",
            abis.join(" and ")
        ),
        format!("the exact filter installed by {INIT}"),
    );
    r.kept(
        "the runtime's own profile agrees with the table",
        format!(
            "linux.seccomp: calls decided by number alone as the table says; the {} calls decided by their \
             arguments are allowed there and decided by the exact filter ({} ...)",
            outer.by_arguments.len(),
            outer.by_arguments.iter().take(6).copied().collect::<Vec<_>>().join(" ")
        ),
    );
    for u in unsupervised {
        let calls = u.calls.join(" ");
        match u.notify {
            Notify::Reboot => r.lost_(
                "reboot(2) by jail root halts the jail",
                format!("{calls}: EPERM without the supervisor, and the jail goes on"),
            ),
            Notify::Rlimit => r.lost_(
                "allow rlimit: raising a hard limit",
                format!("{calls}: EPERM; the supervisor that copies the new limit once is not there"),
            ),
            Notify::Listen if policy.network.mode == "host" => r.lost_(
                "listen(2) on a never-bound socket binds the jail's first address",
                format!(
                    "{calls}: allowed, the socket gets the wildcard address; the packet programs drop what it \
                     receives at an unlisted address"
                ),
            ),
            Notify::Listen => r.kept(
                "listen(2) on a never-bound socket listens on the jail's addresses only",
                format!("{calls}: allowed; the wildcard address of the jail's own network namespace is its own"),
            ),
            Notify::Socketcall => r.lost_(
                "i386 socketcall(2) SOCKET, SOCKETPAIR and LISTEN get the direct call's answer",
                format!("{calls}: ENOSYS, which makes libc use the direct calls the filter reads"),
            ),
            Notify::Denied => r.lost_("denied calls are logged", format!("{calls}: EPERM")),
        }
    }
}

fn landlock(r: &mut Report, policy: &Policy) {
    match policy.landlock.abi {
        Some(abi) => r.kept(
            format!(
                "Landlock (ABI {abi}): the file system confined to the jail's mounts, {} rules{}",
                policy.landlock.rules.len(),
                if policy.landlock.scopes.is_empty() {
                    ""
                } else {
                    ", signal and abstract-socket scopes"
                }
            ),
            INIT,
        ),
        None => r.kept("no Landlock (the host lacks it)", "nothing to carry"),
    }
}

/// What a process the engine starts in the container itself gets: the
/// engine forks it beside the jail's init, not under it.
fn exec(r: &mut Report, policy: &Policy, outer: &Outer) {
    let mut allowed: Vec<&str> = outer.by_arguments.clone();
    allowed.extend(super::profile::INIT_NEEDS.iter().filter(|n| {
        policy.syscalls.rules.iter().any(|rule| {
            rule.call.name() == **n && rule.arms.is_empty() && rule.otherwise != crate::policy::syscalls::Action::Allow
        })
    }));
    r.lost_(
        "processes the engine execs into the container (runc exec, crun exec, ctr task exec, kubectl exec) are held \
         to the exact filter and Landlock",
        format!(
            "they do not start under {INIT}: only linux.seccomp applies, which allows {} calls the table decides \
             otherwise ({}), and no Landlock ruleset; namespaces, id maps, capabilities, no_new_privs, cgroup \
             limits and address programs do apply",
            allowed.len(),
            allowed.join(" ")
        ),
    );
}

fn network(r: &mut Report, policy: &Policy) {
    let net = &policy.network;
    let families = [("IPv4", net.ipv4.allowed), ("IPv6", net.ipv6.allowed)];
    for (family, allowed) in families {
        if !allowed {
            r.kept(
                format!("{family} sockets are denied (EAFNOSUPPORT)"),
                format!("the filter of {INIT}"),
            );
        }
    }
    match (net.mode, &net.rewrite, &net.interface) {
        ("host", Some(_), _) => r.kept(
            "binds and connections end on the jail's addresses (host stack)",
            "cgroup socket-address and packet programs, attached by the createRuntime hook (sysjail hook create-runtime) to \
             a cgroup of the jail's own in the unified hierarchy",
        ),
        (_, _, Some(i)) => r.kept(
            format!("the jail's interface holds exactly {:?}", i.addresses),
            "a veth the createRuntime hook makes as sysjail up does (host end sjo + a hash of the bundle and container id, \
             in the engine's network namespace), gone with the container; under Kubernetes and Nomad the \
             network is the engine's (CNI) instead",
        ),
        _ if policy.namespaces.iter().any(|(n, _)| *n == Namespace::Net) => r.kept(
            "a network namespace with loopback only",
            "linux.namespaces (network); the runtime brings loopback up",
        ),
        _ => {}
    }
}

fn cgroups(r: &mut Report, policy: &Policy) {
    let c = &policy.cgroup;
    if let Some(m) = c.memory {
        r.kept(
            format!("memory at most {} bytes, no swap", m.0),
            "linux.resources.memory",
        );
    }
    if let Some(p) = c.pids {
        r.kept(format!("at most {p} processes"), "linux.resources.pids");
    }
    if let Some(cpu) = c.cpu {
        r.kept(format!("{cpu} CPUs"), "linux.resources.cpu (quota per 100 ms)");
    }
}
