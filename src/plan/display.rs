//! The plan as `sysjail up --dry-run` prints it: each step reads like the calls
//! it makes.

use std::fmt;
use std::net::IpAddr;

use super::{
    CloneSpec, DiskIds, HostAction, HostStep, JailStep, LaunchPlan, Login, NEWROOT, OLDROOT, Route, STAGING, SpawnUser,
};
use crate::model::{AbsPath, Rlimit, RlimitValue};

fn under(root: &str, p: &AbsPath) -> String {
    if p.is_root() {
        root.to_string()
    } else {
        format!("{root}{p}")
    }
}

impl fmt::Display for CloneSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags: Vec<String> = self
            .namespaces
            .iter()
            .map(|ns| format!("CLONE_NEW{}", format!("{ns:?}").to_uppercase()))
            .collect();
        let flags = flags.join("|").replace("CLONE_NEWMOUNT", "CLONE_NEWNS");
        let into = self
            .into_cgroup
            .as_ref()
            .map(|p| format!("|CLONE_INTO_CGROUP {}", p.display()))
            .unwrap_or_default();
        write!(f, "clone3({flags}|CLONE_PIDFD{into}) = init")
    }
}

impl fmt::Display for HostAction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAction::Step(step) => step.fmt(f),
            HostAction::Clone(spec) => spec.fmt(f),
        }
    }
}

impl fmt::Display for HostStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostStep::CreateCgroup { path, limits } => create_cgroup(f, path, limits),
            HostStep::AttachRewrite {
                cgroup,
                hooks,
                programs,
            } => write!(
                f,
                "bpf(BPF_PROG_ATTACH, {}, [{}]) ({} instructions)",
                cgroup.display(),
                hooks.iter().map(|h| h.name()).collect::<Vec<_>>().join(", "),
                programs.iter().map(|p| p.insns.len()).sum::<usize>()
            ),
            HostStep::CreateVeth { .. } => create_veth(f, self),
            HostStep::JoinCgroup { path } => write!(f, "write({}/cgroup.procs, init)", path.display()),
            HostStep::WriteIdMaps {
                uid_map,
                gid_map,
                deny_setgroups,
            } => write_id_maps(f, uid_map, gid_map, *deny_setgroups),
            HostStep::PrepareMount { .. } => prepare_mount(f, self),
        }
    }
}

fn create_cgroup(f: &mut fmt::Formatter<'_>, path: &std::path::Path, limits: &[(String, String)]) -> fmt::Result {
    write!(f, "mkdir({:?})", path.display().to_string())?;
    for (file, value) in limits {
        let (file, optional) = match file.strip_prefix('?') {
            Some(f) => (f, " if present"),
            None => (file.as_str(), ""),
        };
        write!(f, "; write({file}, \"{value}\"){optional}")?;
    }
    Ok(())
}

fn create_veth(f: &mut fmt::Formatter<'_>, step: &HostStep) -> fmt::Result {
    let HostStep::CreateVeth {
        host,
        peer,
        bridge,
        addresses,
        routes,
    } = step
    else {
        unreachable!("called for CreateVeth only")
    };
    write!(f, "RTM_NEWLINK veth {host} peer {peer} netns init")?;
    if let Some(b) = bridge {
        write!(f, "; {host} master {b}")?;
    }
    for (a, p) in addresses {
        write!(f, "; RTM_NEWADDR {a}/{p} dev {host}")?;
    }
    for r in routes {
        write!(f, "; RTM_NEWROUTE {r}")?;
    }
    write!(f, "; {host} up")
}

fn write_id_maps(
    f: &mut fmt::Formatter<'_>,
    uid_map: &[(u32, u32, u32)],
    gid_map: &[(u32, u32, u32)],
    deny_setgroups: bool,
) -> fmt::Result {
    let lines = |m: &[(u32, u32, u32)]| {
        m.iter()
            .map(|(a, b, c)| format!("{a} {b} {c}"))
            .collect::<Vec<_>>()
            .join("\\n")
    };
    write!(f, "write(/proc/init/uid_map, \"{}\"); ", lines(uid_map))?;
    if deny_setgroups {
        write!(f, "write(/proc/init/setgroups, \"deny\"); ")?;
    }
    write!(f, "write(/proc/init/gid_map, \"{}\")", lines(gid_map))
}

fn prepare_mount(f: &mut fmt::Formatter<'_>, step: &HostStep) -> fmt::Result {
    let HostStep::PrepareMount {
        source,
        recursive,
        idmap,
        writable,
        slot,
    } = step
    else {
        unreachable!("called for PrepareMount only")
    };
    write!(
        f,
        "open_tree(hostpath(\"{source}\"), OPEN_TREE_CLONE{})",
        if *recursive { "|AT_RECURSIVE" } else { "" }
    )?;
    match idmap {
        Some(DiskIds::Tree) => write!(f, "; mount_setattr(MOUNT_ATTR_IDMAP, tree owner + k = jail k)")?,
        Some(DiskIds::Owner) => write!(f, "; mount_setattr(MOUNT_ATTR_IDMAP, directory owner = jail root)")?,
        None => {}
    }
    if *writable {
        write!(f, " writable")?;
    }
    write!(f, " = prepared[{slot}]")
}

impl fmt::Display for JailStep {
    /// One arm per step; the longer renderings are the functions below.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JailStep::UserCounters { set } => user_counters(f, set),
            JailStep::SwitchIds { uid, gid, clear_groups } => switch_ids(f, *uid, *gid, *clear_groups),
            JailStep::AwaitCgroups => write!(f, "wait until the supervisor's cgroup.procs writes are done"),
            JailStep::UnshareCgroup => write!(f, "unshare(CLONE_NEWCGROUP)"),
            JailStep::PrivateMounts => write!(f, "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)"),
            JailStep::Staging => write!(
                f,
                "mount(\"tmpfs\", \"{STAGING}\", \"tmpfs\"); mkdir({OLDROOT}, {NEWROOT}); pivot_root(\"{STAGING}\", \"{STAGING}{OLDROOT}\")"
            ),
            JailStep::Root { source, prepared } => root(f, source, *prepared),
            JailStep::Bind { .. } => bind(f, self),
            JailStep::Tmpfs { .. } => tmpfs(f, self),
            JailStep::Proc { target, .. } => write!(
                f,
                "mount(\"proc\", \"{}\", \"proc\", MS_NOSUID|MS_NODEV|MS_NOEXEC)",
                under(NEWROOT, target)
            ),
            JailStep::Dev {
                target, tty_gid, shm, ..
            } => dev(f, target, *tty_gid, shm.0),
            JailStep::Mask { target } => write!(
                f,
                "mask \"{}\" (/dev/null or an empty read-only tmpfs), if present",
                under(NEWROOT, target)
            ),
            JailStep::ReadOnly { target } => write!(
                f,
                "mount_setattr(\"{}\", AT_RECURSIVE, MOUNT_ATTR_RDONLY), if present",
                under(NEWROOT, target)
            ),
            JailStep::RootReadOnly => write!(f, "mount_setattr(\"{NEWROOT}\", MOUNT_ATTR_RDONLY)"),
            JailStep::File { target, content } => write!(
                f,
                "write \"/{}\" of the staging root ({} bytes, O_EXCL|O_NOFOLLOW); open_tree(OPEN_TREE_CLONE); \
                 MOUNT_ATTR_RDONLY; move_mount over \"{}\", if present",
                target.as_str().rsplit('/').next().unwrap_or_default(),
                content.len(),
                under(NEWROOT, target)
            ),
            JailStep::PivotRoot => write!(
                f,
                "umount2(\"{OLDROOT}\", MNT_DETACH); chdir(\"{NEWROOT}\"); pivot_root(\".\", \".\"); umount2(\".\", MNT_DETACH)"
            ),
            JailStep::Hostname { name } => write!(f, "sethostname(\"{name}\")"),
            JailStep::LoopbackUp => write!(f, "RTM_NEWLINK lo up"),
            JailStep::Interface {
                name,
                addresses,
                routes,
            } => interface(f, name, addresses, routes),
            JailStep::Rlimits { limits } => rlimits(f, limits),
            JailStep::Capabilities { keep } => capabilities(f, keep),
            JailStep::NoNewPrivs => write!(f, "prctl(PR_SET_NO_NEW_PRIVS, 1)"),
            JailStep::Landlock { rules, scopes } => landlock(f, rules.len(), scopes),
            JailStep::Seccomp { program, listener } => seccomp(f, program.len(), *listener),
        }
    }
}

fn switch_ids(f: &mut fmt::Formatter<'_>, uid: u32, gid: u32, clear_groups: bool) -> fmt::Result {
    if clear_groups {
        write!(f, "setgroups(0, NULL); ")?;
    }
    write!(f, "setresgid({gid}, {gid}, {gid}); setresuid({uid}, {uid}, {uid})")
}

fn user_counters(f: &mut fmt::Formatter<'_>, set: &[(String, u32)]) -> fmt::Result {
    let writes: Vec<String> = set
        .iter()
        .map(|(file, n)| format!("write(/proc/sys/user/{file}, \"{n}\")"))
        .collect();
    f.write_str(&writes.join("; "))
}

fn root(f: &mut fmt::Formatter<'_>, source: &AbsPath, prepared: Option<usize>) -> fmt::Result {
    match prepared {
        Some(slot) => write!(f, "move_mount(prepared[{slot}] = \"{source}\", \"{NEWROOT}\")"),
        None => write!(
            f,
            "open_tree(\"{}\", OPEN_TREE_CLONE|AT_RECURSIVE); move_mount(\"{NEWROOT}\")",
            under(OLDROOT, source)
        ),
    }
}

fn bind(f: &mut fmt::Formatter<'_>, step: &JailStep) -> fmt::Result {
    let JailStep::Bind {
        source,
        target,
        read_only,
        recursive,
        prepared,
        create,
    } = step
    else {
        unreachable!("called for Bind only")
    };
    match prepared {
        Some(slot) => write!(f, "prepared[{slot}] = \"{source}\"")?,
        None => write!(
            f,
            "open_tree(\"{}\", OPEN_TREE_CLONE{})",
            under(OLDROOT, source),
            if *recursive { "|AT_RECURSIVE" } else { "" }
        )?,
    }
    write!(
        f,
        "; mount_setattr(MOUNT_ATTR_NOSUID|MOUNT_ATTR_NODEV{}); move_mount(\"{}\"){}",
        if *read_only { "|MOUNT_ATTR_RDONLY" } else { "" },
        under(NEWROOT, target),
        if *create { ", creating it" } else { "" }
    )
}

fn tmpfs(f: &mut fmt::Formatter<'_>, step: &JailStep) -> fmt::Result {
    let JailStep::Tmpfs {
        target,
        size,
        mode,
        read_only,
        create,
    } = step
    else {
        unreachable!("called for Tmpfs only")
    };
    write!(
        f,
        "mount(\"tmpfs\", \"{}\", \"tmpfs\", MS_NOSUID|MS_NODEV{}, \"size={},mode={:o}\"){}",
        under(NEWROOT, target),
        if *read_only { "|MS_RDONLY" } else { "" },
        size.0,
        mode,
        if *create { ", creating it" } else { "" }
    )
}

fn dev(f: &mut fmt::Formatter<'_>, target: &AbsPath, tty_gid: Option<u32>, shm: u64) -> fmt::Result {
    let dev = under(NEWROOT, target);
    write!(
        f,
        "mount(\"tmpfs\", \"{dev}\", \"tmpfs\", MS_NOSUID|MS_NOEXEC, \"mode=755\"); bind {OLDROOT}/dev/{{null,zero,full,random,urandom,tty}}; \
         mount(\"devpts\", \"{dev}/pts\", \"devpts\", \"newinstance,ptmxmode=0666,mode=620{}\"); \
         mount(\"tmpfs\", \"{dev}/shm\", \"size={}\"); mount(\"mqueue\", \"{dev}/mqueue\"); symlinks ptmx fd stdin stdout stderr",
        tty_gid.map(|g| format!(",gid={g}")).unwrap_or_default(),
        shm
    )
}

fn interface(f: &mut fmt::Formatter<'_>, name: &str, addresses: &[(IpAddr, u8)], routes: &[Route]) -> fmt::Result {
    for (a, p) in addresses {
        write!(f, "RTM_NEWADDR {a}/{p} dev {name}; ")?;
    }
    write!(f, "RTM_NEWLINK {name} up")?;
    for r in routes {
        write!(f, "; RTM_NEWROUTE {r}")?;
    }
    Ok(())
}

fn rlimits(f: &mut fmt::Formatter<'_>, limits: &[(Rlimit, RlimitValue)]) -> fmt::Result {
    let parts: Vec<String> = limits
        .iter()
        .map(|(r, v)| {
            let v = match v {
                RlimitValue::Limited(n) => n.to_string(),
                RlimitValue::Unlimited => "RLIM_INFINITY".into(),
            };
            format!("setrlimit({}, {v}, {v})", r.kernel_name())
        })
        .collect();
    f.write_str(&parts.join("; "))
}

fn capabilities(f: &mut fmt::Formatter<'_>, keep: &[u8]) -> fmt::Result {
    let names: Vec<&str> = keep
        .iter()
        .filter_map(|&n| crate::policy::Capability::ALL.get(n as usize).map(|c| c.name()))
        .collect();
    write!(
        f,
        "prctl(PR_CAPBSET_DROP, all but {}); capset(same); prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
        names.join(" ")
    )
}

fn landlock(f: &mut fmt::Formatter<'_>, rules: usize, scopes: &[crate::policy::landlock::Scope]) -> fmt::Result {
    write!(
        f,
        "landlock_create_ruleset(all fs rights, scopes {}); {rules} path-beneath rules; landlock_restrict_self()",
        scopes
            .iter()
            .map(|s| format!("{s:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join("|")
    )
}

fn seccomp(f: &mut fmt::Formatter<'_>, instructions: usize, listener: bool) -> fmt::Result {
    let flag = if listener {
        ", SECCOMP_FILTER_FLAG_NEW_LISTENER"
    } else {
        ""
    };
    write!(f, "seccomp(SECCOMP_SET_MODE_FILTER{flag}, {instructions} instructions)")
}

impl LaunchPlan {
    /// The plan as text, numbered as the executor names steps in errors.
    pub fn render(&self) -> String {
        let mut out = format!("launch plan of jail {}\n\nsupervisor (host side)\n", self.name);
        for (i, s) in self.host.actions().enumerate() {
            out.push_str(&format!("  {:>2}. {s}\n", i + 1));
        }
        out.push_str("\ninit (pid 1 of the jail)\n");
        for (i, s) in self.jail.iter().enumerate() {
            match self.key_of(i) {
                Some(key) => out.push_str(&format!("  {:>2}. {s}  # {key}\n", i + 1)),
                None => out.push_str(&format!("  {:>2}. {s}\n", i + 1)),
            }
        }
        let s = &self.spawn;
        let who = match &s.user {
            SpawnUser::Root => "jail root".to_string(),
            SpawnUser::Jail(u) => format!("{u} from the jail's /etc/passwd"),
            SpawnUser::Resolved(Login { name, uid, gid, .. }) => {
                format!("{name} (uid {uid}, gid {gid}) from the host's /etc/passwd")
            }
        };
        out.push_str(&format!(
            "\nthen\n  fork; setsid{}; setgroups; setresgid; setresuid: {who}; chdir(\"{}\"); execve({:?})\n",
            if s.tty {
                "; ioctl(TIOCSCTTY) on a pseudo-terminal of the jail's devpts"
            } else {
                ""
            },
            s.workdir,
            s.argv
        ));
        if !self.degraded.is_empty() {
            out.push_str("\non this machine\n");
            for d in &self.degraded {
                out.push_str(&format!("  {d}\n"));
            }
        }
        out
    }
}

impl fmt::Display for Route {
    /// As ip-route(8) prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == 0 {
            write!(f, "default")?;
        } else {
            write!(f, "{}/{}", self.dst, self.prefix)?;
        }
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        Ok(())
    }
}
