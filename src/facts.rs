//! Facts about the machine a jail is launched on, as plain data.
//!
//! They are probed once (by [`crate::sys::probe`]) and passed to the plan, so
//! that everything before the executor stays pure and can be tested with made-up
//! machines.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::syscalls::Abi;

/// What this machine offers.
///
/// It reads from JSON (`sysjail policy --host-facts FILE`) in the shape
/// serde writes it; every field must be given, so a made-up machine is
/// described in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    /// `uname -r`.
    pub kernel: String,
    /// Effective uid of the launcher.
    pub uid: u32,
    /// Effective gid of the launcher.
    pub gid: u32,
    /// The launcher runs as root (and can map id ranges, load BPF, make cgroups).
    pub root: bool,
    /// The launcher's effective capabilities (containers often lack some).
    pub caps: u64,
    /// ABIs the kernel runs.
    pub abis: Vec<Abi>,
    /// The Landlock ABI version; `None` without Landlock.
    pub landlock_abi: Option<u8>,
    /// seccomp filters can return SECCOMP_RET_USER_NOTIF.
    pub seccomp_notify: bool,
    /// user.max_user_namespaces, when readable.
    pub max_user_namespaces: Option<u64>,
    /// mount_setattr(2) exists (id-mapped mounts, Linux 5.12).
    pub mount_setattr: bool,
    /// pidfd_getfd(2) exists (Linux 5.6).
    pub pidfd_getfd: bool,
    /// The cgroup layout.
    pub cgroup: CgroupLayout,
    /// net.ipv4.ping_group_range of the launcher's network namespace: the
    /// groups that may open ICMP echo sockets (first > last: none).
    pub ping_groups: Option<(u32, u32)>,
}

/// Where cgroup hierarchies are mounted, and which controllers each has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupLayout {
    /// The unified (v2) hierarchy's mount point; it exists even on hybrid hosts.
    pub v2: Option<PathBuf>,
    /// Controllers the v2 root offers.
    pub v2_controllers: Vec<String>,
    /// v1 hierarchies by controller name.
    pub v1: BTreeMap<String, PathBuf>,
}

/// Where a controller lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    /// In the unified hierarchy.
    V2,
    /// In a v1 hierarchy mounted here.
    V1(PathBuf),
}

impl CgroupLayout {
    /// Where `controller` (memory, pids, cpu, cpuacct) can be used, preferring v2.
    pub fn controller(&self, controller: &str) -> Option<Hierarchy> {
        if self.v2.is_some() && self.v2_controllers.iter().any(|c| c == controller) {
            Some(Hierarchy::V2)
        } else {
            self.v1.get(controller).map(|p| Hierarchy::V1(p.clone()))
        }
    }
}

impl HostFacts {
    /// True when the launcher holds capability number `cap`.
    pub fn has_cap(&self, cap: u8) -> bool {
        self.caps & (1 << cap) != 0
    }

    /// A made-up machine: root on x86_64 with Landlock 6 and a hybrid cgroup
    /// layout like this project's CI machine. For tests and examples.
    pub fn example() -> HostFacts {
        HostFacts {
            kernel: "6.18.0".into(),
            uid: 0,
            gid: 0,
            root: true,
            caps: (1 << 41) - 1,
            abis: vec![Abi::X86_64, Abi::I386],
            landlock_abi: Some(6),
            seccomp_notify: true,
            max_user_namespaces: Some(65536),
            mount_setattr: true,
            pidfd_getfd: true,
            cgroup: CgroupLayout {
                v2: Some("/sys/fs/cgroup/unified".into()),
                v2_controllers: vec!["hugetlb".into()],
                v1: ["cpu", "cpuacct", "memory", "pids"]
                    .into_iter()
                    .map(|c| (c.to_string(), PathBuf::from(format!("/sys/fs/cgroup/{c}"))))
                    .collect(),
            },
            ping_groups: Some((0, 2_147_483_647)),
        }
    }

    /// A made-up machine of a common kind, for `sysjail policy --host` and
    /// tests: the example machine, changed as `kind` says.
    pub fn of_kind(kind: HostKind) -> HostFacts {
        let mut facts = HostFacts::example();
        match kind {
            HostKind::Rootless => {
                facts.uid = 1000;
                facts.gid = 1000;
                facts.root = false;
                facts.caps = 0;
                facts.cgroup = CgroupLayout {
                    v2: Some("/sys/fs/cgroup".into()),
                    v2_controllers: ["cpu", "memory", "pids"].map(String::from).to_vec(),
                    v1: BTreeMap::new(),
                };
            }
            HostKind::RootCgroup1 => {
                facts.cgroup.v2 = None;
                facts.cgroup.v2_controllers.clear();
            }
            HostKind::RootCgroup2 => {
                facts.cgroup = CgroupLayout {
                    v2: Some("/sys/fs/cgroup".into()),
                    v2_controllers: ["cpu", "memory", "pids"].map(String::from).to_vec(),
                    v1: BTreeMap::new(),
                };
            }
        }
        facts
    }
}

/// Kinds of machine whose policy differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// An unprivileged user: no cgroups of its own, no BPF, one mapped id.
    Rootless,
    /// Root with cgroup v1 only: no unified hierarchy for socket-address programs.
    RootCgroup1,
    /// Root with the unified hierarchy (cgroup2).
    RootCgroup2,
}

impl HostKind {
    /// Every kind.
    pub const ALL: [HostKind; 3] = [HostKind::Rootless, HostKind::RootCgroup1, HostKind::RootCgroup2];
}
