//! Stage 4: the launch plan. The policy table, the machine's facts and the
//! launch's options become an ordered list of setup steps, as data.
//!
//! Nothing here makes a system call. [`crate::sys`] carries the steps out, one
//! loop for the supervisor's and one for the jail's init, and `sysjail up
//! --dry-run` prints them. The jail side follows bubblewrap: a tmpfs becomes a
//! staging root with the host's tree under `/oldroot`, the jail's root is built
//! at `/newroot` from sources under `/oldroot`, and a second pivot_root enters
//! it and detaches everything else.

mod build;
mod check;
mod display;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

pub use build::{Options, PlanError, build, cgroup_dir, rlim, veth};
pub use check::{Broken, check};

use crate::model::{AbsPath, Bytes, IdRef, Rlimit, RlimitValue};
use crate::policy::landlock::{Access, Scope};
use crate::policy::{Namespace, Policy};
use crate::seccomp::bpf::Insn;

/// Where the jail side builds the new root before entering it.
pub const STAGING: &str = "/tmp";
/// The host's tree during setup, relative to the staging root.
pub const OLDROOT: &str = "/oldroot";
/// The jail's root during setup, relative to the staging root.
pub const NEWROOT: &str = "/newroot";

/// Everything a launch does, in order.
#[derive(Clone, Debug, Serialize)]
pub struct LaunchPlan {
    /// The jail's name.
    pub name: String,
    /// The policy it carries out.
    #[serde(skip)]
    pub policy: Policy,
    /// Steps of the supervisor, which runs on the host.
    pub host: HostSteps,
    /// Steps of the jail's init, inside the new namespaces.
    pub jail: Vec<JailStep>,
    /// The jail's command.
    pub spawn: Spawn,
    /// Id mapping.
    pub ids: IdMapping,
    /// Why some of the policy cannot be carried out on this machine.
    pub degraded: Vec<String>,
    /// The definition's key behind a jail step, by the step's index: an
    /// executor error names it beside the step.
    pub keys: BTreeMap<usize, String>,
}

impl LaunchPlan {
    /// The key of the definition behind jail step `index` (0-based), if any.
    pub fn key_of(&self, index: usize) -> Option<&str> {
        self.keys.get(&index).map(String::as_str)
    }
}

impl LaunchPlan {
    /// Every host path the launch mounts (the root, then bind sources), with
    /// whether it must be a directory. The supervisor opens each under the
    /// rule of [`crate::sys::hostpath`] before anything of the jail exists.
    pub fn host_paths(&self) -> impl Iterator<Item = (&AbsPath, bool)> {
        self.jail.iter().filter_map(|step| match step {
            JailStep::Root { source, .. } => Some((source, true)),
            JailStep::Bind { source, .. } => Some((source, false)),
            _ => None,
        })
    }
}

/// A route: a destination, and a gateway or the interface itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Route {
    /// Destination network (prefix 0: the default route).
    pub dst: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// Through this router; none: directly on the interface.
    pub via: Option<IpAddr>,
    /// The interface, when the route is direct.
    pub dev: Option<String>,
}

/// The supervisor's steps, in the order the type gives them: what must exist
/// before init does, init's creation, and what is done while init waits for
/// its go-ahead. [`check`](crate::plan::check) holds the rules of each part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostSteps {
    /// Before any process of the jail exists: cgroups and their programs.
    pub before_clone: Vec<HostStep>,
    /// Creates init.
    pub clone: CloneSpec,
    /// Between the clone and init's go-ahead: cgroups joined, id maps, the
    /// veth, the prepared mounts init receives with the go-ahead.
    pub after_clone: Vec<HostStep>,
}

/// One host step as numbered in `--dry-run` and in errors.
#[derive(Clone, Copy, Debug)]
pub enum HostAction<'a> {
    /// A step of [`HostSteps::before_clone`] or [`HostSteps::after_clone`].
    Step(&'a HostStep),
    /// The clone.
    Clone(&'a CloneSpec),
}

impl HostSteps {
    /// Number of steps, the clone included.
    pub fn len(&self) -> usize {
        self.before_clone.len() + 1 + self.after_clone.len()
    }

    /// Never empty: there is always the clone.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Every step in order, the clone in its place.
    pub fn actions(&self) -> impl Iterator<Item = HostAction<'_>> {
        let before = self.before_clone.iter().map(HostAction::Step);
        let after = self.after_clone.iter().map(HostAction::Step);
        before
            .chain(std::iter::once(HostAction::Clone(&self.clone)))
            .chain(after)
    }

    /// Every step that is not the clone.
    pub fn steps(&self) -> impl Iterator<Item = &HostStep> {
        self.before_clone.iter().chain(&self.after_clone)
    }

    /// The cgroup directories the plan creates.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        self.steps()
            .filter_map(|s| match s {
                HostStep::CreateCgroup { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect()
    }

    /// The host end of the veth the plan creates.
    pub fn veth(&self) -> Option<&str> {
        self.steps().find_map(|s| match s {
            HostStep::CreateVeth { host, .. } => Some(host.as_str()),
            _ => None,
        })
    }

    /// The number of mounts prepared for init.
    pub fn prepared(&self) -> usize {
        self.steps()
            .filter(|s| matches!(s, HostStep::PrepareMount { .. }))
            .count()
    }
}

/// How init is created: clone3 into new namespaces; it waits for the steps
/// after the clone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloneSpec {
    /// Namespaces created.
    pub namespaces: Vec<Namespace>,
    /// Starts it in this unified-hierarchy cgroup (CLONE_INTO_CGROUP).
    pub into_cgroup: Option<PathBuf>,
    /// As root, the host uid the clone runs as, so that it owns the jail's
    /// user namespace: jail root's, never host root's (the kernel charges
    /// the jail's per-user counters to the namespace's owner).
    pub owner: Option<u32>,
}

/// A step the supervisor carries out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum HostStep {
    /// Creates the jail's cgroup in one hierarchy and writes its limits.
    CreateCgroup {
        /// The directory.
        path: PathBuf,
        /// Files and values written into it.
        limits: Vec<(String, String)>,
    },
    /// Loads the address-rewrite programs and attaches them to the jail's
    /// unified-hierarchy cgroup, before any process of the jail exists.
    AttachRewrite {
        /// The cgroup directory.
        cgroup: PathBuf,
        /// The hooks, in order.
        hooks: Vec<crate::rewrite::Hook>,
        /// The programs.
        #[serde(skip)]
        programs: Vec<crate::rewrite::Program>,
    },
    /// Creates the private jail's veth pair, one end in init's network
    /// namespace, and configures the host end.
    CreateVeth {
        /// The host end's name.
        host: String,
        /// The jail end's name, inside the jail.
        peer: String,
        /// A bridge the host end joins.
        bridge: Option<String>,
        /// Addresses of the host end (the gateways of point-to-point links).
        addresses: Vec<(IpAddr, u8)>,
        /// Routes on the host to the jail's addresses, through the host end.
        routes: Vec<Route>,
    },
    /// Moves init into a cgroup before it runs anything.
    JoinCgroup {
        /// The cgroup directory.
        path: PathBuf,
    },
    /// Writes init's uid_map, setgroups and gid_map.
    WriteIdMaps {
        /// uid_map lines: inside, outside, count.
        uid_map: Vec<(u32, u32, u32)>,
        /// gid_map lines.
        gid_map: Vec<(u32, u32, u32)>,
        /// Write "deny" to setgroups first (required without privilege).
        deny_setgroups: bool,
    },
    /// Makes a detached copy of a host tree, id-mapped or not, for init to
    /// attach. Made on the host, where no mount is locked: inside the jail's
    /// user namespace the kernel refuses a copy of `/` without its submounts.
    PrepareMount {
        /// Host path, opened under the rule of [`crate::sys::hostpath`].
        source: AbsPath,
        /// With the mounts below it.
        recursive: bool,
        /// How disk ids become the jail's, if they are mapped.
        idmap: Option<DiskIds>,
        /// The jail may write through it.
        writable: bool,
        /// Index in the list of prepared mounts init receives.
        slot: usize,
    },
}

/// How an id-mapped mount turns the ids on disk into the jail's. Either way,
/// no file jail root writes is owned by host root on disk: a set-id or
/// capability-bearing file it makes can give no host user host root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskIds {
    /// A dedicated tree: the owner of its root directory is jail root, and
    /// disk ids from there on are the jail's (owner + k is jail id k), as in
    /// LXC's unprivileged containers. A writable tree owned by host root is
    /// refused.
    Tree,
    /// A bound host directory: its owner is jail root, and no other id is
    /// mapped: files of other owners are nobody's, which even jail root's
    /// capabilities cannot write. A writable directory owned by host root is
    /// refused.
    Owner,
}

/// Why a mount cannot be id-mapped safely.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiskIdsError {
    /// Jail root would write files owned by host root.
    #[error(
        "it is owned by {what} 0 and the jail may write it: files jail root makes would belong to host root; {fix}"
    )]
    RootOwned {
        /// uid or gid.
        what: &'static str,
        /// What to do.
        fix: &'static str,
    },
    /// The range would pass the last id.
    #[error("its owner {what} {first} leaves no room for {count} ids after it")]
    Overflow {
        /// uid or gid.
        what: &'static str,
        /// The owner.
        first: u32,
        /// The jail's range.
        count: u32,
    },
}

/// An id map: lines of (inside, outside, count), as /proc/PID/uid_map takes them.
pub type IdMapLines = Vec<(u32, u32, u32)>;

impl DiskIds {
    /// The user namespace maps that id-map a mount whose root belongs to
    /// `uid`:`gid` for a jail whose ids start at `host_base` on the host. In
    /// these maps "inside" is the id on disk and "outside" the jail's id as
    /// the host sees it.
    pub fn maps(
        self,
        uid: u32,
        gid: u32,
        writable: bool,
        host_base: u32,
        count: u32,
    ) -> Result<(IdMapLines, IdMapLines), DiskIdsError> {
        let one = |owner: u32, what: &'static str| -> Result<IdMapLines, DiskIdsError> {
            if writable && owner == 0 {
                return Err(DiskIdsError::RootOwned {
                    what,
                    fix: match self {
                        DiskIds::Tree => {
                            "give the tree an unprivileged owner range (chown every file by an offset, as for LXC), or make it read-only"
                        }
                        DiskIds::Owner => {
                            "bind a directory owned by the user the jail writes as, or make the bind read-only"
                        }
                    },
                });
            }
            match self {
                DiskIds::Tree => {
                    // (uid_t)-1 is no id: the range must end before it.
                    if owner.checked_add(count).is_none_or(|end| end == u32::MAX) {
                        return Err(DiskIdsError::Overflow {
                            what,
                            first: owner,
                            count,
                        });
                    }
                    Ok(vec![(owner, host_base, count)])
                }
                DiskIds::Owner => Ok(vec![(owner, host_base, 1)]),
            }
        };
        Ok((one(uid, "uid")?, one(gid, "gid")?))
    }
}

/// A step the jail's init carries out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum JailStep {
    /// Init takes the jail's own ids once the supervisor has mapped them (it
    /// was created with the launcher's, which the jail's range does not hold).
    SwitchIds {
        /// Jail-side uid.
        uid: u32,
        /// Jail-side gid.
        gid: u32,
        /// Drop the launcher's supplementary groups (impossible, and
        /// unnecessary, without privilege).
        clear_groups: bool,
    },
    /// Lowers per-user kernel counters of the jail's user namespace
    /// (/proc/sys/user/, which init, the namespace's root, may write).
    UserCounters {
        /// Files under /proc/sys/user/ and their values.
        set: Vec<(String, u32)>,
    },
    /// Waits until the supervisor has moved init into the jail's v1
    /// cgroups. Each move waits for an RCU grace period (about 10 ms), so
    /// they go on while init sets the jail up; nothing of the jail runs
    /// before they are done.
    AwaitCgroups,
    /// A new cgroup namespace, rooted at the jail's cgroups (after the v1
    /// moves, so that it is rooted there in every hierarchy).
    UnshareCgroup,
    /// Stops mount events from propagating to or from the host.
    PrivateMounts,
    /// A tmpfs at [`STAGING`] becomes the root; the host's tree moves to `/oldroot`.
    Staging,
    /// The jail's root at `/newroot`.
    Root {
        /// Host path (under `/oldroot`).
        source: AbsPath,
        /// A prepared id-mapped mount to attach instead.
        prepared: Option<usize>,
    },
    /// A host path bound into the jail.
    Bind {
        /// Host path.
        source: AbsPath,
        /// Inside the jail.
        target: AbsPath,
        /// Read-only.
        read_only: bool,
        /// With submounts.
        recursive: bool,
        /// A prepared id-mapped mount to attach instead.
        prepared: Option<usize>,
        /// Create a missing mount point (never in the host's root).
        create: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Inside the jail.
        target: AbsPath,
        /// Size limit.
        size: Bytes,
        /// Root directory mode.
        mode: u32,
        /// Read-only.
        read_only: bool,
        /// Create a missing mount point.
        create: bool,
    },
    /// A new proc instance.
    Proc {
        /// Inside the jail.
        target: AbsPath,
        /// Create a missing mount point.
        create: bool,
    },
    /// The minimal /dev.
    Dev {
        /// Inside the jail.
        target: AbsPath,
        /// Group of the tty devices (5, "tty") when it is mapped.
        tty_gid: Option<u32>,
        /// Size of its shm tmpfs.
        shm: Bytes,
        /// Create a missing mount point.
        create: bool,
    },
    /// Hides a path of /proc.
    Mask {
        /// Inside the jail.
        target: AbsPath,
    },
    /// Makes a path read-only in place.
    ReadOnly {
        /// Inside the jail.
        target: AbsPath,
    },
    /// Makes the root mount read-only, now that its mount points exist.
    RootReadOnly,
    /// Writes `content` to a file of the staging tmpfs (init's own, which
    /// nothing else reaches) and binds it read-only over `target`, if the
    /// jail's tree has one.
    File {
        /// Inside the jail.
        target: AbsPath,
        /// The file's text.
        content: String,
    },
    /// Enters `/newroot` and detaches the staging root and the host's tree.
    PivotRoot,
    /// Sets the UTS host name.
    Hostname {
        /// The name.
        name: String,
    },
    /// Brings loopback up in the jail's network namespace.
    LoopbackUp,
    /// Configures the jail's end of its veth: addresses, up, routes.
    Interface {
        /// Its name.
        name: String,
        /// Exactly the jail's addresses beyond loopback.
        addresses: Vec<(IpAddr, u8)>,
        /// Routes, in order (a gateway's own route before the default).
        routes: Vec<Route>,
    },
    /// Sets hard and soft rlimits.
    Rlimits {
        /// Values.
        limits: Vec<(Rlimit, RlimitValue)>,
    },
    /// Reduces the bounding set; init keeps the same set as its own.
    Capabilities {
        /// Capabilities kept, by number.
        keep: Vec<u8>,
    },
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivs,
    /// Applies a Landlock ruleset at the best ABI the kernel offers.
    Landlock {
        /// Path-beneath rules.
        rules: Vec<(AbsPath, Access)>,
        /// Scopes.
        scopes: Vec<Scope>,
    },
    /// Installs the seccomp filter; last, as the one that forbids setup calls.
    Seccomp {
        /// The program.
        #[serde(skip)]
        program: Vec<Insn>,
        /// Install with a listener the supervisor answers.
        listener: bool,
    },
}

/// Id mapping of the jail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdMapping {
    /// First host id of the jail's range (jail id 0).
    pub host_base: u32,
    /// Number of ids mapped.
    pub count: u32,
    /// Rootless: the one jail id that maps to the caller.
    pub single: Option<u32>,
}

impl IdMapping {
    /// The host uid that creates, and so owns, the jail's user namespace
    /// when the launcher is root: jail root's. Without privilege there is no
    /// choice, the caller owns it.
    pub fn namespace_owner(&self) -> Option<u32> {
        self.single.is_none().then_some(self.host_base)
    }

    /// True when `id` (a jail-side id) is mapped.
    pub fn maps(&self, id: u32) -> bool {
        match self.single {
            Some(only) => id == only,
            None => id < self.count,
        }
    }
}

/// How a process is started inside the jail (the main command, or `exec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Spawn {
    /// argv; argv\[0\] without a slash is searched in PATH.
    pub argv: Vec<String>,
    /// Working directory.
    pub workdir: String,
    /// Whose credentials.
    pub user: SpawnUser,
    /// Supplementary groups instead of the user's own.
    pub groups: Option<Vec<IdRef>>,
    /// The environment.
    pub env: SpawnEnv,
    /// Give the process the pseudo-terminal passed as its stdio.
    pub tty: bool,
}

/// Credentials of a spawned process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpawnUser {
    /// Jail root.
    Root,
    /// Looked up in the jail's /etc/passwd when spawned.
    Jail(IdRef),
    /// Looked up in the host's /etc/passwd at launch.
    Resolved(Login),
}

/// A login resolved to ids: the credentials a spawned process takes, and the
/// HOME, SHELL and USER of a clean environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Login {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Home directory.
    pub home: String,
    /// Shell.
    pub shell: String,
}

/// The environment of a spawned process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SpawnEnv {
    /// Start clean: HOME, SHELL and USER from the login, TERM from `term`.
    pub clean: bool,
    /// Inherited variables (when not clean).
    pub inherit: BTreeMap<String, String>,
    /// The caller's TERM (kept by a clean environment).
    pub term: Option<String>,
    /// Set last.
    pub set: BTreeMap<String, String>,
}

/// The plan of each example of examples/jails, for a root launcher on
/// [`HostFacts::example`](crate::facts::HostFacts::example): what executor
/// tests walk through their doubles.
#[cfg(test)]
pub(crate) fn example_plans() -> Vec<(String, LaunchPlan)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/jails");
    ["hello", "web", "build", "api"]
        .iter()
        .map(|name| {
            let def = crate::load::load(&dir.join(format!("{name}.toml"))).expect("examples are valid");
            let policy = crate::policy::compile(&def.jail, &crate::facts::HostFacts::example()).expect("runs here");
            let options = Options {
                id_base: 0x7000_0000,
                veth: "sj1".into(),
                ..Options::default()
            };
            let plan = build(&policy, &crate::facts::HostFacts::example(), &options).expect("plannable");
            (name.to_string(), plan)
        })
        .collect()
}
