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

/// How long a cached copy of the facts is trusted, in seconds. An
/// administrator can change sysctls (user namespaces, ping groups) and mount
/// or unmount cgroup hierarchies at any time, and nothing tells sysjail: the
/// copy is probed again after this long, at the latest.
pub const FACTS_MAX_AGE: u64 = 60;

/// What a cached copy of the facts was probed under; a copy is used only by
/// a launch with the same key. Everything in it is cheap to read again
/// (about a tenth of a full probe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsKey {
    /// /proc/sys/kernel/random/boot_id: a reboot makes another machine.
    pub boot_id: String,
    /// `uname -r`.
    pub kernel: String,
    /// The version of sysjail that probed (and the shape of its facts).
    pub version: String,
    /// Effective uid of the caller.
    pub uid: u32,
    /// Effective gid of the caller.
    pub gid: u32,
    /// Effective capabilities of the caller.
    pub caps: u64,
}

/// The facts as cached in the state directory (`facts.cache`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedFacts {
    /// What they were probed under.
    pub key: FactsKey,
    /// When, in seconds since the epoch.
    pub probed: u64,
    /// The facts.
    pub facts: HostFacts,
}

impl CachedFacts {
    /// The facts, if a launch under `key` at time `now` (seconds since the
    /// epoch) may use them: same key, and probed less than
    /// [`FACTS_MAX_AGE`] seconds ago (a clock set back makes them stale too).
    pub fn valid_for(&self, key: &FactsKey, now: u64) -> Option<&HostFacts> {
        let age = now.checked_sub(self.probed)?;
        (self.key == *key && age < FACTS_MAX_AGE).then_some(&self.facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FactsKey {
        FactsKey {
            boot_id: "0c45ba6f-158c-4384-8591-a1c4648c97cb".into(),
            kernel: "6.18.0".into(),
            version: "0.1.0".into(),
            uid: 0,
            gid: 0,
            caps: (1 << 41) - 1,
        }
    }

    fn cached(probed: u64) -> CachedFacts {
        CachedFacts {
            key: key(),
            probed,
            facts: HostFacts::example(),
        }
    }

    #[test]
    fn cached_facts_serve_the_same_key_until_they_are_max_age_old() {
        let c = cached(1_000);
        assert_eq!(c.valid_for(&key(), 1_000), Some(&HostFacts::example()));
        assert!(c.valid_for(&key(), 1_000 + FACTS_MAX_AGE - 1).is_some());
        // An administrator may have changed a sysctl or a mount since.
        assert_eq!(c.valid_for(&key(), 1_000 + FACTS_MAX_AGE), None);
        // A clock set back: the age is unknown, so the copy is stale.
        assert_eq!(c.valid_for(&key(), 999), None);
    }

    #[test]
    fn cached_facts_are_another_machines_when_any_part_of_the_key_differs() {
        let c = cached(1_000);
        type Change = fn(&mut FactsKey);
        let changes: [(&str, Change); 6] = [
            ("a reboot", |k| k.boot_id = "another boot".into()),
            ("another kernel", |k| k.kernel = "6.19.0".into()),
            ("another sysjail", |k| k.version = "0.2.0".into()),
            ("another user", |k| k.uid = 1000),
            ("another group", |k| k.gid = 1000),
            ("fewer capabilities", |k| k.caps &= !(1 << 21)),
        ];
        for (what, change) in changes {
            let mut k = key();
            change(&mut k);
            assert_eq!(c.valid_for(&k, 1_001), None, "{what} must invalidate the cache");
        }
    }
}
