//! Policy + host facts + launch options = launch plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    CloneSpec, DiskIds, HostStep, HostSteps, IdMapping, JailStep, LaunchPlan, Login, Route, Spawn, SpawnEnv, SpawnUser,
};
use crate::facts::{Hierarchy, HostFacts};
use crate::model::{AbsPath, IdRef, RlimitValue};
use crate::policy::network::Hosts;
use crate::policy::{JAIL_IDS, MountOp, Namespace, Policy, Refused};
use crate::seccomp;
use crate::users::Passwd;

/// What a launch adds to the policy.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// First host id of the jail's range, allocated by the registry (root only).
    pub id_base: u32,
    /// Replaces the definition's command.
    pub command: Option<Vec<String>>,
    /// The caller's environment, inherited unless `clean-env`.
    pub caller_env: BTreeMap<String, String>,
    /// The jail's stdio is a pseudo-terminal.
    pub tty: bool,
    /// Denied calls go to the supervisor to be logged.
    pub log_denials: bool,
    /// Mount a dedicated root as it is, without id mapping.
    pub no_idmap: bool,
    /// `host-user`, resolved in the host's /etc/passwd and /etc/group.
    pub host_user: Option<(Passwd, Vec<u32>)>,
    /// Without privilege: the jail id the caller maps to (the target user's uid).
    pub rootless_uid: Option<u32>,
    /// The host end of a private jail's veth: a name unique on the host
    /// (the supervisor uses `sj` and its pid).
    pub veth: String,
}

/// Why a jail cannot be launched as defined on this machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// The policy refuses the jail on this host.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The policy was compiled for another host.
    #[error("the policy was compiled for another host ({compiled}), not this one ({here})")]
    OtherHost {
        /// The facts the policy rests on.
        compiled: String,
        /// This host's.
        here: String,
    },
    /// A jail id outside the mapped range.
    #[error("{who} is outside the jail's id range ({range})")]
    Unmapped {
        /// The user or group.
        who: String,
        /// The range.
        range: String,
    },
    /// The plan breaks a rule of the launch order: a bug of sysjail's.
    #[error(transparent)]
    Broken(#[from] super::Broken),
    /// The filter could not be assembled.
    #[error("the seccomp filter: {0}")]
    Filter(#[from] seccomp::asm::AsmError),
}

/// Where the jail's cgroups live: `sysjail/<name>` under each hierarchy.
pub fn cgroup_dir(mount: &Path, name: &str) -> PathBuf {
    mount.join("sysjail").join(name)
}

/// Builds the launch plan: carries out a policy compiled for `facts`.
///
/// The jail steps come in the order init takes them: ids and the staging
/// root, the mounts, the jail's name and network, then the restrictions, the
/// seccomp filter last.
pub fn build(policy: &Policy, facts: &HostFacts, options: &Options) -> Result<LaunchPlan, PlanError> {
    same_host(policy, facts)?;
    let ids = ids(policy, facts, options)?;
    let mut host = around_clone(policy, facts, &ids)?;
    let mut jail = first_steps(policy, &ids);
    let keys = Mounts::new(facts, &mut host).add(policy, options, &ids, &mut jail)?;
    jail.extend(naming(policy));
    if let Some(interface) = &policy.network.interface {
        let (host_step, jail_step) = veth(interface, &options.veth);
        // The veth is made once init exists, before it is told to go on.
        host.after_clone.push(host_step);
        jail.push(jail_step);
    }
    jail.extend(cgroup_namespace(&host));
    jail.extend(restrictions(policy));
    let syscalls = policy.syscalls.clone();
    jail.push(seccomp_step(&syscalls, facts, options)?);
    let plan = LaunchPlan {
        name: policy.name.clone(),
        // The table the filter was compiled from, which the supervisor's
        // answers to notifications must follow.
        policy: Policy {
            syscalls,
            ..policy.clone()
        },
        host,
        jail,
        spawn: spawn(policy, options)?,
        ids,
        degraded: degraded(policy),
        keys,
    };
    super::check(&plan)?;
    Ok(plan)
}

/// The policy must rest on this host's facts.
fn same_host(policy: &Policy, facts: &HostFacts) -> Result<(), PlanError> {
    let here = crate::policy::host::summary(facts);
    if policy.host.summary != here {
        return Err(PlanError::OtherHost {
            compiled: policy.host.summary.clone(),
            here,
        });
    }
    Ok(())
}

/// What the policy could not keep on this host, as the plan lists it.
fn degraded(policy: &Policy) -> Vec<String> {
    policy
        .host
        .degraded
        .iter()
        .map(|d| format!("{} ({})", d.what, d.why))
        .collect()
}

/// Init's first steps: its ids, the user counters, private mounts and the
/// staging root the mounts are built in.
fn first_steps(policy: &Policy, ids: &IdMapping) -> Vec<JailStep> {
    let own = ids.single.unwrap_or(0);
    let mut jail = vec![JailStep::SwitchIds {
        uid: own,
        gid: own,
        clear_groups: ids.single.is_none(),
    }];
    if !policy.counters.is_empty() {
        // While /proc is still the host's instance, seen from the jail's user
        // namespace: its /proc/sys is made read-only later.
        jail.push(JailStep::UserCounters {
            set: policy
                .counters
                .iter()
                .map(|(c, n, _)| (c.sysctl().to_string(), *n))
                .collect(),
        });
    }
    jail.extend([JailStep::PrivateMounts, JailStep::Staging]);
    jail
}

/// Init's own cgroup namespace, once it is in every cgroup of the jail: on a
/// hybrid host the supervisor's v1 moves run while init builds the mounts,
/// and are awaited only here, before the restrictions.
fn cgroup_namespace(host: &HostSteps) -> Vec<JailStep> {
    let joins = host.steps().any(|s| matches!(s, HostStep::JoinCgroup { .. }));
    let wait = joins.then_some(JailStep::AwaitCgroups);
    wait.into_iter().chain([JailStep::UnshareCgroup]).collect()
}

/// The policy's mounts as jail steps, with the host steps that prepare them.
struct Mounts<'a> {
    facts: &'a HostFacts,
    host: &'a mut HostSteps,
    /// The next prepared mount's slot.
    slots: usize,
}

impl<'a> Mounts<'a> {
    fn new(facts: &'a HostFacts, host: &'a mut HostSteps) -> Mounts<'a> {
        Mounts { facts, host, slots: 0 }
    }

    /// Appends a step per mount (and the read-only root, if asked); returns
    /// the definition's key behind each step that has one.
    fn add(
        mut self,
        policy: &Policy,
        options: &Options,
        ids: &IdMapping,
        jail: &mut Vec<JailStep>,
    ) -> Result<BTreeMap<usize, String>, PlanError> {
        let mut keys = BTreeMap::new();
        let mut read_only_root = false;
        for (i, m) in policy.mounts.iter().enumerate() {
            if let crate::policy::Why::Key(key) = &m.why {
                keys.insert(jail.len(), key.clone());
            }
            if let MountOp::Root { read_only, .. } = &m.op {
                read_only_root = *read_only;
            }
            jail.push(self.step(m, creatable(policy, i), options, ids)?);
        }
        if read_only_root {
            jail.push(JailStep::RootReadOnly);
        }
        Ok(keys)
    }

    fn step(
        &mut self,
        m: &crate::policy::MountEntry,
        create: bool,
        options: &Options,
        ids: &IdMapping,
    ) -> Result<JailStep, PlanError> {
        let target = m.target.clone();
        Ok(match &m.op {
            MountOp::Root {
                source,
                read_only,
                idmap,
            } => {
                let idmap = (*idmap && !options.no_idmap).then_some(DiskIds::Tree);
                JailStep::Root {
                    source: source.clone(),
                    prepared: self.prepare(source, false, idmap, !*read_only)?,
                }
            }
            MountOp::Bind {
                source,
                read_only,
                recursive,
                idmap,
            } => JailStep::Bind {
                source: source.clone(),
                target,
                read_only: *read_only,
                recursive: *recursive,
                prepared: self.prepare(source, *recursive, idmap.then_some(DiskIds::Owner), !*read_only)?,
                create,
            },
            MountOp::Tmpfs { size, mode, read_only } => JailStep::Tmpfs {
                target,
                size: *size,
                mode: *mode,
                read_only: *read_only,
                create,
            },
            MountOp::Proc => JailStep::Proc { target, create },
            MountOp::Dev { shm } => JailStep::Dev {
                target,
                tty_gid: ids.maps(TTY_GID).then_some(TTY_GID),
                shm: *shm,
                create,
            },
            MountOp::Mask => JailStep::Mask { target },
            MountOp::ReadOnly => JailStep::ReadOnly { target },
        })
    }

    /// As root the supervisor copies every host tree; without privilege init
    /// copies them itself, where `/` can only come with its submounts.
    fn prepare(
        &mut self,
        source: &AbsPath,
        recursive: bool,
        idmap: Option<DiskIds>,
        writable: bool,
    ) -> Result<Option<usize>, PlanError> {
        if !self.facts.root {
            return Ok(None);
        }
        if idmap.is_some() && !self.facts.mount_setattr {
            return Err(Refused::NoIdmap(source.clone()).into());
        }
        let slot = self.slots;
        self.host.after_clone.push(HostStep::PrepareMount {
            source: source.clone(),
            recursive,
            idmap,
            writable,
            slot,
        });
        self.slots += 1;
        Ok(Some(slot))
    }
}

/// Once the mounts are in place: the jail's /etc/hosts and /etc/hostname,
/// the new root, the jail's name, its loopback.
fn naming(policy: &Policy) -> Vec<JailStep> {
    let private_net = policy.namespaces.iter().any(|(ns, _)| *ns == Namespace::Net);
    let mut jail = Vec::new();
    if let Hosts::Generated { names, address, .. } = &policy.network.hosts {
        jail.push(JailStep::File {
            target: AbsPath::parse("/etc/hosts").expect("static"),
            content: crate::policy::network::hosts_file(names, *address),
        });
        // Read by tools in place of the UTS name; the host's would name the host.
        jail.push(JailStep::File {
            target: AbsPath::parse("/etc/hostname").expect("static"),
            content: format!("{}\n", policy.hostname),
        });
    }
    jail.extend([
        JailStep::PivotRoot,
        JailStep::Hostname {
            name: policy.hostname.clone(),
        },
    ]);
    if private_net {
        jail.push(JailStep::LoopbackUp);
    }
    jail
}

/// What init gives up before the filter: rlimits, capabilities, new
/// privileges, and the file system beyond its Landlock rules.
fn restrictions(policy: &Policy) -> Vec<JailStep> {
    let mut jail = Vec::new();
    if !policy.rlimits.is_empty() {
        jail.push(JailStep::Rlimits {
            limits: policy.rlimits.iter().map(|r| (r.resource, r.value)).collect(),
        });
    }
    jail.push(JailStep::Capabilities {
        keep: policy.capabilities.bounding.iter().map(|k| k.cap.number()).collect(),
    });
    jail.push(JailStep::NoNewPrivs);
    if policy.landlock.abi.is_some() {
        jail.push(JailStep::Landlock {
            rules: policy
                .landlock
                .rules
                .iter()
                .map(|r| (r.path.clone(), r.access))
                .collect(),
            scopes: policy.landlock.scopes.clone(),
        });
    }
    jail
}

/// The last step: the compiled seccomp filter, which this host must be able
/// to hand a listener if the filter needs one.
fn seccomp_step(
    syscalls: &crate::policy::SyscallPolicy,
    facts: &HostFacts,
    options: &Options,
) -> Result<JailStep, PlanError> {
    let filter = seccomp::compile(
        syscalls,
        &syscalls.abis,
        seccomp::Options {
            log_denials: options.log_denials,
        },
    )?;
    if filter.needs_listener && !facts.seccomp_notify {
        return Err(Refused::NoNotify(if options.log_denials {
            "--log-denials"
        } else {
            "this policy"
        })
        .into());
    }
    Ok(JailStep::Seccomp {
        program: filter.program,
        listener: filter.needs_listener,
    })
}

/// The host steps before the clone, the clone, and the first steps after it
/// (cgroups joined, id maps); the veth and the prepared mounts follow.
fn around_clone(policy: &Policy, facts: &HostFacts, ids: &IdMapping) -> Result<HostSteps, PlanError> {
    let mut before_clone = cgroups(policy, facts)?;
    // The unified-hierarchy cgroup is entered at creation; v1 ones by joining.
    let unified = facts.cgroup.v2.as_ref().map(|v2| cgroup_dir(v2, &policy.name));
    let created: Vec<PathBuf> = before_clone
        .iter()
        .filter_map(|s| match s {
            HostStep::CreateCgroup { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect();
    let into_cgroup = unified.filter(|u| created.contains(u));
    // The policy keeps the rewrite only where the programs can run.
    if let (Some(_), Some(cgroup)) = (&policy.network.rewrite, &into_cgroup) {
        let addresses = crate::rewrite::Addresses::of(&policy.network);
        let programs = crate::rewrite::compile(&addresses, ids.host_base);
        before_clone.push(HostStep::AttachRewrite {
            cgroup: cgroup.clone(),
            hooks: programs.iter().map(|p| p.hook).collect(),
            programs,
        });
    }
    let mut after_clone: Vec<HostStep> = created
        .into_iter()
        .filter(|p| Some(p) != into_cgroup.as_ref())
        .map(|path| HostStep::JoinCgroup { path })
        .collect();
    after_clone.push(id_maps(ids, facts));
    let clone = CloneSpec {
        namespaces: policy.namespaces.iter().map(|(ns, _)| *ns).collect(),
        into_cgroup,
        owner: ids.namespace_owner(),
    };
    Ok(HostSteps {
        before_clone,
        clone,
        after_clone,
    })
}

const TTY_GID: u32 = 5;

/// A missing mount point may be created only inside something the jail owns:
/// its own tree, or a file system made for it. Never in the host's root or in
/// a host directory bound in.
fn creatable(policy: &Policy, index: usize) -> bool {
    let target = &policy.mounts[index].target;
    let parent = policy.mounts[..index].iter().rev().find(|m| {
        !matches!(m.op, MountOp::Mask | MountOp::ReadOnly) && target.starts_with(&m.target) && *target != m.target
    });
    match parent.map(|m| &m.op) {
        Some(MountOp::Root { source, .. }) => !source.is_root(),
        Some(MountOp::Tmpfs { .. } | MountOp::Dev { .. }) => true,
        Some(MountOp::Bind { idmap, .. }) => *idmap,
        Some(MountOp::Proc | MountOp::Mask | MountOp::ReadOnly) | None => false,
    }
}

fn ids(policy: &Policy, facts: &HostFacts, options: &Options) -> Result<IdMapping, PlanError> {
    let ids = if facts.root {
        IdMapping {
            host_base: options.id_base,
            count: JAIL_IDS,
            single: None,
        }
    } else {
        IdMapping {
            host_base: facts.uid,
            count: 1,
            single: Some(options.rootless_uid.unwrap_or(0)),
        }
    };
    let check = |id: u32, who: String| {
        if ids.maps(id) {
            Ok(())
        } else {
            let range = match ids.single {
                Some(only) => format!("only id {only} maps to the caller"),
                None => format!("0-{}", ids.count - 1),
            };
            Err(PlanError::Unmapped { who, range })
        }
    };
    if let Some((user, groups)) = &options.host_user {
        check(user.uid, format!("host user {} (uid {})", user.name, user.uid))?;
        if facts.root {
            for g in groups {
                check(*g, format!("group {g} of host user {}", user.name))?;
            }
        }
    }
    if let Some(IdRef::Id(uid)) = &policy.process.user.name {
        check(*uid, format!("uid {uid}"))?;
    }
    Ok(ids)
}

fn id_maps(ids: &IdMapping, facts: &HostFacts) -> HostStep {
    match ids.single {
        Some(inside) => HostStep::WriteIdMaps {
            uid_map: vec![(inside, facts.uid, 1)],
            gid_map: vec![(inside, facts.gid, 1)],
            deny_setgroups: true,
        },
        None => HostStep::WriteIdMaps {
            uid_map: vec![(0, ids.host_base, ids.count)],
            gid_map: vec![(0, ids.host_base, ids.count)],
            deny_setgroups: false,
        },
    }
}

/// The jail's cgroups: one directory per hierarchy, with the limits the
/// policy sets written into it.
fn cgroups(policy: &Policy, facts: &HostFacts) -> Result<Vec<HostStep>, PlanError> {
    let c = &policy.cgroup;
    if !facts.root {
        refuse_unprivileged_limits(c)?;
        return Ok(Vec::new());
    }
    let mut dirs: BTreeMap<PathBuf, Vec<(String, String)>> = BTreeMap::new();
    if let Some(v2) = &facts.cgroup.v2 {
        dirs.entry(cgroup_dir(v2, &policy.name)).or_default();
    }
    let v2 = |controller: &str| facts.cgroup.controller(controller) == Some(Hierarchy::V2);
    let mut limits: Vec<(&'static str, Vec<(String, String)>)> = Vec::new();
    if let Some(m) = c.memory {
        limits.push(("memory", memory_files(m.0, v2("memory"))));
    }
    if let Some(p) = c.pids {
        limits.push(("pids", vec![("pids.max".into(), p.to_string())]));
    }
    if let Some(cpu) = c.cpu {
        limits.push(("cpu", cpu_files(u64::from(cpu.0), v2("cpu"))));
    }
    for (controller, files) in limits {
        let dir = controller_dir(policy, facts, controller)?;
        dirs.entry(dir).or_default().extend(files);
    }
    // Accounting only: memory, pids and CPU use are shown by `ls -v`. A v1
    // hierarchy costs the start an RCU grace period per join (about 10 ms),
    // so a jail without limits has none where the unified hierarchy can
    // track and kill it; a jail with limits pays for one join already.
    let limited = c.memory.is_some() || c.pids.is_some() || c.cpu.is_some();
    if limited || facts.cgroup.v2.is_none() {
        for controller in ["memory", "pids", "cpuacct"] {
            if let Some(Hierarchy::V1(mount)) = facts.cgroup.controller(controller) {
                dirs.entry(cgroup_dir(&mount, &policy.name)).or_default();
            }
        }
    }
    Ok(dirs
        .into_iter()
        .map(|(path, limits)| HostStep::CreateCgroup { path, limits })
        .collect())
}

/// Without privilege no cgroup can be made here; limits then cannot be kept.
fn refuse_unprivileged_limits(c: &crate::policy::Cgroup) -> Result<(), PlanError> {
    for (controller, set) in [
        ("memory", c.memory.is_some()),
        ("pids", c.pids.is_some()),
        ("cpu", c.cpu.is_some()),
    ] {
        if set {
            return Err(Refused::NoController {
                what: controller,
                controller,
                why: "an unprivileged user cannot create (run as root, or drop the limit)",
            }
            .into());
        }
    }
    Ok(())
}

/// The jail's directory in the hierarchy that holds `controller`.
fn controller_dir(policy: &Policy, facts: &HostFacts, controller: &'static str) -> Result<PathBuf, PlanError> {
    match facts.cgroup.controller(controller) {
        Some(Hierarchy::V2) => Ok(cgroup_dir(facts.cgroup.v2.as_ref().expect("v2 present"), &policy.name)),
        Some(Hierarchy::V1(mount)) => Ok(cgroup_dir(&mount, &policy.name)),
        None => Err(Refused::NoController {
            what: controller,
            controller,
            why: "this machine does not mount",
        }
        .into()),
    }
}

/// The memory limit; swap is not allowed past it (`?`: if the file exists).
fn memory_files(bytes: u64, v2: bool) -> Vec<(String, String)> {
    let files = if v2 {
        [("memory.max", bytes.to_string()), ("?memory.swap.max", "0".into())]
    } else {
        [
            ("memory.limit_in_bytes", bytes.to_string()),
            ("?memory.memsw.limit_in_bytes", bytes.to_string()),
        ]
    };
    files.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The CPU limit: a 100 ms period; the quota is the share of it.
fn cpu_files(millis: u64, v2: bool) -> Vec<(String, String)> {
    let quota = millis * 100;
    let files = if v2 {
        vec![("cpu.max", format!("{quota} 100000"))]
    } else {
        vec![
            ("cpu.cfs_period_us", "100000".into()),
            ("cpu.cfs_quota_us", quota.to_string()),
        ]
    };
    files.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn spawn(policy: &Policy, options: &Options) -> Result<Spawn, PlanError> {
    let p = &policy.process;
    let user = match (&options.host_user, &p.user.name) {
        (Some((u, groups)), _) => SpawnUser::Resolved(Login {
            name: u.name.clone(),
            uid: u.uid,
            gid: u.gid,
            groups: groups.clone(),
            home: u.home.clone(),
            shell: u.shell.clone(),
        }),
        (None, Some(who)) if p.user.database == crate::policy::UserDatabase::Jail => SpawnUser::Jail(who.clone()),
        _ => SpawnUser::Root,
    };
    Ok(Spawn {
        argv: options.command.clone().unwrap_or_else(|| p.command.clone()),
        workdir: p.workdir.to_string(),
        user,
        groups: p.user.groups.clone(),
        env: SpawnEnv {
            clean: p.env.clean,
            inherit: if p.env.clean {
                BTreeMap::new()
            } else {
                options.caller_env.clone()
            },
            term: options.caller_env.get("TERM").cloned(),
            set: p.env.set.clone(),
        },
        tty: options.tty,
    })
}

/// The rlimit value as the kernel takes it.
pub fn rlim(value: RlimitValue) -> u64 {
    match value {
        RlimitValue::Limited(n) => n,
        RlimitValue::Unlimited => u64::MAX,
    }
}

/// The host and jail steps of a private jail's veth.
///
/// With gateways (`gateway`, or the routers of a bridged network), each
/// family gets a default route; a gateway outside the jail's own prefix first
/// gets a direct route on the interface. Point to point, the host end holds
/// the gateway with the prefix of the jail's address, and routes the jail's
/// addresses to itself.
pub fn veth(i: &crate::policy::network::Interface, host_name: &str) -> (HostStep, JailStep) {
    use crate::policy::network::UplinkPolicy;
    let (bridge, gateways, host_holds) = match &i.uplink {
        UplinkPolicy::None => (None, Vec::new(), false),
        UplinkPolicy::Bridge { bridge, v4, v6 } => (Some(bridge.clone()), gateways(*v4, *v6), false),
        UplinkPolicy::Gateway { v4, v6 } => (None, gateways(*v4, *v6), true),
    };
    let mut jail_routes = Vec::new();
    let mut host_addresses = Vec::new();
    for gw in &gateways {
        // The prefix of the jail's first address of the gateway's family.
        let own = i.addresses.iter().find(|(a, _)| a.is_ipv4() == gw.is_ipv4());
        jail_routes.extend(routes_via(i, *gw, own));
        if host_holds {
            host_addresses.push((*gw, own.map_or(full_prefix(gw), |(_, p)| *p)));
        }
    }
    let host_routes = if host_holds {
        routes_to_jail(i, host_name)
    } else {
        Vec::new()
    };
    (
        HostStep::CreateVeth {
            host: host_name.to_string(),
            peer: i.name.clone(),
            bridge,
            addresses: host_addresses,
            routes: host_routes,
        },
        JailStep::Interface {
            name: i.name.clone(),
            addresses: i.addresses.clone(),
            routes: jail_routes,
        },
    )
}

/// The prefix of one address alone: /32 or /128.
fn full_prefix(ip: &std::net::IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// The jail's routes through gateway `gw`: a direct route to it if it lies
/// outside `own` (the jail's address of its family), then the default route.
fn routes_via(
    i: &crate::policy::network::Interface,
    gw: std::net::IpAddr,
    own: Option<&(std::net::IpAddr, u8)>,
) -> Vec<Route> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut routes = Vec::new();
    if !own.is_some_and(|(a, p)| same_prefix(*a, gw, *p)) {
        routes.push(Route {
            dst: gw,
            prefix: full_prefix(&gw),
            via: None,
            dev: Some(i.name.clone()),
        });
    }
    routes.push(Route {
        dst: if gw.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        },
        prefix: 0,
        via: Some(gw),
        dev: None,
    });
    routes
}

/// Point to point, the host routes each of the jail's addresses to its end.
fn routes_to_jail(i: &crate::policy::network::Interface, host_name: &str) -> Vec<Route> {
    i.addresses
        .iter()
        .map(|(a, _)| Route {
            dst: *a,
            prefix: full_prefix(a),
            via: None,
            dev: Some(host_name.to_string()),
        })
        .collect()
}

fn gateways(v4: Option<std::net::Ipv4Addr>, v6: Option<std::net::Ipv6Addr>) -> Vec<std::net::IpAddr> {
    v4.map(std::net::IpAddr::V4)
        .into_iter()
        .chain(v6.map(std::net::IpAddr::V6))
        .collect()
}

/// Whether `a` and `b` share their first `prefix` bits.
fn same_prefix(a: std::net::IpAddr, b: std::net::IpAddr, prefix: u8) -> bool {
    use std::net::IpAddr;
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::HostAction;

    fn plan_of(text: &str) -> LaunchPlan {
        let def = crate::load::load_text(Path::new("t.toml"), text).expect("valid");
        let policy = crate::policy::compile(&def.jail, &HostFacts::example()).expect("runs here");
        let options = Options {
            id_base: 0x7001_0000,
            veth: "sj42".into(),
            ..Options::default()
        };
        build(&policy, &HostFacts::example(), &options).expect("plannable")
    }

    const BASE: &str = "name = \"p\"\npath = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\npids = 8\n";

    fn cgroup_dirs(plan: &LaunchPlan) -> Vec<String> {
        plan.host
            .steps()
            .filter_map(|s| match s {
                HostStep::CreateCgroup { path, .. } => Some(path.display().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn without_limits_no_v1_cgroup_slows_the_start() {
        // On a hybrid host a v1 join waits for an RCU grace period: a jail
        // without limits lives in the unified hierarchy alone.
        let plan = plan_of("name = \"p\"\npath = \"/\"\ncommand = [\"/bin/true\"]\n");
        assert_eq!(cgroup_dirs(&plan), ["/sys/fs/cgroup/unified/sysjail/p"]);
        assert!(!plan.host.steps().any(|s| matches!(s, HostStep::JoinCgroup { .. })));
        // With a limit on v1, the v1 accounting comes along with the join
        // it pays for anyway.
        let limited = cgroup_dirs(&plan_of(BASE));
        assert!(
            limited.contains(&"/sys/fs/cgroup/pids/sysjail/p".to_string()),
            "{limited:?}"
        );
        assert!(
            limited.contains(&"/sys/fs/cgroup/memory/sysjail/p".to_string()),
            "{limited:?}"
        );
    }

    #[test]
    fn point_to_point_gateway_routes_both_ways() {
        let plan = plan_of(&format!(
            "{BASE}[network]\nipv4 = [\"10.89.0.2/24\", \"192.0.2.7\"]\ngateway = \"10.89.0.1\"\n"
        ));
        let host = plan
            .host
            .steps()
            .find(|s| matches!(s, HostStep::CreateVeth { .. }))
            .unwrap();
        let HostStep::CreateVeth {
            host,
            peer,
            bridge,
            addresses,
            routes,
        } = host
        else {
            unreachable!()
        };
        assert_eq!((host.as_str(), peer.as_str(), bridge), ("sj42", "eth0", &None));
        assert_eq!(addresses, &[("10.89.0.1".parse().unwrap(), 24)]);
        let dsts: Vec<String> = routes
            .iter()
            .map(|r| format!("{}/{} dev {:?}", r.dst, r.prefix, r.dev))
            .collect();
        assert_eq!(
            dsts,
            ["10.89.0.2/32 dev Some(\"sj42\")", "192.0.2.7/32 dev Some(\"sj42\")"]
        );
        let Some(JailStep::Interface {
            name,
            addresses,
            routes,
        }) = plan.jail.iter().find(|s| matches!(s, JailStep::Interface { .. }))
        else {
            panic!("no interface step")
        };
        assert_eq!(name, "eth0");
        assert_eq!(addresses.len(), 2);
        // The gateway is within 10.89.0.0/24: only the default route.
        assert_eq!(routes.len(), 1);
        assert_eq!(
            (routes[0].prefix, routes[0].via),
            (0, Some("10.89.0.1".parse().unwrap()))
        );
        // The veth exists before init goes on, once its ids are mapped.
        let order: Vec<&str> = plan
            .host
            .actions()
            .filter_map(|a| match a {
                HostAction::Clone(_) => Some("clone"),
                HostAction::Step(HostStep::WriteIdMaps { .. }) => Some("idmaps"),
                HostAction::Step(HostStep::CreateVeth { .. }) => Some("veth"),
                _ => None,
            })
            .collect();
        assert_eq!(order, ["clone", "idmaps", "veth"]);
    }

    #[test]
    fn a_gateway_outside_the_prefix_gets_a_direct_route_first() {
        let plan = plan_of(&format!(
            "{BASE}[network]\nipv4 = [\"10.89.0.2\"]\ngateway = \"10.89.0.1\"\n"
        ));
        let Some(JailStep::Interface { routes, .. }) =
            plan.jail.iter().find(|s| matches!(s, JailStep::Interface { .. }))
        else {
            panic!("no interface step")
        };
        let shown: Vec<String> = routes
            .iter()
            .map(|r| format!("{}/{} via {:?} dev {:?}", r.dst, r.prefix, r.via, r.dev))
            .collect();
        assert_eq!(
            shown,
            [
                "10.89.0.1/32 via None dev Some(\"eth0\")",
                "0.0.0.0/0 via Some(10.89.0.1) dev None"
            ]
        );
    }

    #[test]
    fn loopback_only_private_jails_have_no_veth() {
        let plan = plan_of(&format!("{BASE}[network]\nipv4 = [\"127.0.0.1\"]\n"));
        assert!(!plan.host.steps().any(|s| matches!(s, HostStep::CreateVeth { .. })));
        assert!(plan.jail.contains(&JailStep::LoopbackUp));
        assert!(!plan.jail.iter().any(|s| matches!(s, JailStep::Interface { .. })));
    }

    #[test]
    fn the_hostname_resolves_through_a_generated_hosts_file() {
        let hosts = |plan: &LaunchPlan| {
            plan.jail.iter().find_map(|s| match s {
                JailStep::File { target, content } if target.as_str() == "/etc/hosts" => Some(content.clone()),
                _ => None,
            })
        };
        let text = format!("hostname = \"build.example\"\n{BASE}[network]\nmode = \"private\"\n");
        let plan = plan_of(&text);
        let content = hosts(&plan).expect("a read-only root gets /etc/hosts");
        assert!(content.contains("127.0.1.1\tbuild.example build\n"), "{content}");
        assert!(content.contains("127.0.0.1\tlocalhost\n"), "{content}");
        assert!(plan.jail.contains(&JailStep::File {
            target: AbsPath::parse("/etc/hostname").unwrap(),
            content: "build.example\n".into()
        }));
        // Bound before the root is left.
        let file = plan.jail.iter().position(|s| matches!(s, JailStep::File { .. }));
        let pivot = plan.jail.iter().position(|s| *s == JailStep::PivotRoot);
        assert!(file < pivot);
        // The first address, when there is one.
        let plan = plan_of(&format!("{BASE}[network]\nipv6 = [\"fd00::2/64\"]\n"));
        assert!(hosts(&plan).unwrap().contains("fd00::2\tp\n"));
        // A writable tree of the jail's own keeps its file.
        let own =
            "name = \"p\"\npath = \"/srv/jails/p\"\nread-only = false\ncommand = [\"/bin/true\"]\n[limits]\npids = 8\n";
        assert_eq!(hosts(&plan_of(own)), None);
    }

    #[test]
    fn same_prefix_masks() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(same_prefix(ip("10.89.0.2"), ip("10.89.0.1"), 24));
        assert!(!same_prefix(ip("10.89.0.2"), ip("10.89.1.1"), 24));
        assert!(same_prefix(ip("10.89.0.2"), ip("192.0.2.1"), 0));
        assert!(!same_prefix(ip("10.89.0.2"), ip("10.89.0.1"), 32));
        assert!(same_prefix(ip("fd00::2"), ip("fd00::1"), 64));
        assert!(!same_prefix(ip("fd00::2"), ip("10.0.0.1"), 0));
    }
}
