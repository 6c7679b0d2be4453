//! config.json: the policy in the runtime spec's terms.

use oci_spec::runtime::{LinuxSeccomp, Spec};
use serde_json::{Value, json};

use super::{BINARY, BUNDLE_DIR, IN_JAIL, INIT_FILE, Options, RootKind};
use crate::policy::{JAIL_IDS, MountOp, Namespace, Policy};

/// The runtime spec of `policy`; `profile` is the runtime's outer filter.
pub fn build(
    policy: &Policy,
    options: &Options,
    profile: &LinuxSeccomp,
    hook: bool,
) -> Result<Spec, serde_json::Error> {
    let (root, mounts, masked, read_only) = mounts(policy, options);
    let linux = json!({
        "namespaces": policy.namespaces.iter().map(|(ns, _)| json!({"type": namespace(*ns)})).collect::<Vec<_>>(),
        "uidMappings": [{"containerID": 0, "hostID": options.id_base, "size": JAIL_IDS}],
        "gidMappings": [{"containerID": 0, "hostID": options.gid_base, "size": JAIL_IDS}],
        "maskedPaths": masked,
        "readonlyPaths": read_only,
        "resources": resources(policy),
        "seccomp": serde_json::to_value(profile)?,
        // Per bundle: by default runtimes name the cgroup after the
        // container's id alone, which two runtime roots may share.
        "cgroupsPath": format!(
            "/{}{:016x}",
            super::BUNDLE_CGROUP,
            super::fnv(&[&options.bundle.to_string_lossy()])
        ),
    });
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process(policy, options),
        "root": root,
        "hostname": policy.hostname,
        "mounts": mounts,
        "linux": linux,
    });
    if hook {
        let bin = options.bundle.join(BUNDLE_DIR).join(BINARY);
        let init = options.bundle.join(BUNDLE_DIR).join(INIT_FILE);
        let hook = |verb: &str| {
            json!([{
                "path": bin,
                "args": ["sysjail", "hook", verb, init],
                "timeout": 10,
            }])
        };
        spec["hooks"] = json!({"createRuntime": hook("create-runtime"), "poststop": hook("poststop")});
    }
    serde_json::from_value(spec)
}

fn namespace(ns: Namespace) -> &'static str {
    match ns {
        Namespace::User => "user",
        Namespace::Pid => "pid",
        Namespace::Mount => "mount",
        Namespace::Uts => "uts",
        Namespace::Ipc => "ipc",
        Namespace::Cgroup => "cgroup",
        // Runtimes bring its loopback up themselves.
        Namespace::Net => "network",
    }
}

fn process(policy: &Policy, options: &Options) -> Value {
    let p = &policy.process;
    let login = &options.login;
    let command = options.command.as_ref().unwrap_or(&p.command);
    let mut args = vec![
        format!("{IN_JAIL}/{BINARY}"),
        "oci-init".into(),
        format!("{IN_JAIL}/{INIT_FILE}"),
        "--".into(),
    ];
    args.extend(command.iter().cloned());
    // A bundle has no caller whose variables it could keep: a clean
    // environment's HOME, SHELL and USER come from the login, then `env`.
    let mut env: std::collections::BTreeMap<String, String> = [
        ("HOME", login.home.as_str()),
        ("SHELL", login.shell.as_str()),
        ("USER", login.name.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(p.env.set.clone());
    let caps: Vec<&str> = policy.capabilities.bounding.iter().map(|k| k.cap.name()).collect();
    let held = if login.uid == 0 && policy.capabilities.root_effective {
        caps.clone()
    } else {
        vec![]
    };
    json!({
        "terminal": false,
        "user": {"uid": login.uid, "gid": login.gid, "additionalGids": login.groups},
        "args": args,
        "env": env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "cwd": p.workdir.as_str(),
        "capabilities": {
            "bounding": caps,
            "effective": held,
            "permitted": held,
            "inheritable": [],
            "ambient": [],
        },
        "rlimits": policy.rlimits.iter().map(|r| {
            let v = crate::plan::rlim(r.value);
            json!({"type": r.resource.kernel_name(), "hard": v, "soft": v})
        }).collect::<Vec<_>>(),
        "noNewPrivileges": policy.capabilities.no_new_privs,
    })
}

/// root, mounts, maskedPaths and readonlyPaths.
fn mounts(policy: &Policy, options: &Options) -> (Value, Vec<Value>, Vec<String>, Vec<String>) {
    let mut root = json!({"path": "/", "readonly": true});
    let mut mounts = Vec::new();
    let mut masked = Vec::new();
    let mut read_only = Vec::new();
    for m in &policy.mounts {
        let target = m.target.as_str();
        match &m.op {
            MountOp::Root { source, read_only, .. } if source.is_root() => {
                root = json!({"path": options.bundle.join(super::ROOTFS), "readonly": true});
                mounts.extend(host_root(options, *read_only));
            }
            MountOp::Root { source, read_only, .. } => {
                root = json!({"path": source.as_str(), "readonly": read_only});
            }
            MountOp::Bind {
                source,
                read_only,
                recursive,
                ..
            } => {
                let mut o = vec![if *recursive { "rbind" } else { "bind" }, "nosuid", "nodev"];
                if *read_only {
                    o.push("ro");
                }
                mounts.push(json!({"destination": target, "type": "bind", "source": source.as_str(), "options": o}));
            }
            MountOp::Tmpfs { size, mode, read_only } => {
                let mut o = vec![
                    "nosuid".to_string(),
                    "nodev".into(),
                    format!("size={}", size.0),
                    format!("mode={mode:o}"),
                ];
                if *read_only {
                    o.push("ro".into());
                }
                mounts.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
            MountOp::Proc => mounts.push(json!({
                "destination": target, "type": "proc", "source": "proc",
                "options": ["nosuid", "noexec", "nodev"],
            })),
            MountOp::Dev { shm } => {
                let at = |p: &str| format!("{}{p}", target.trim_end_matches('/'));
                mounts.push(json!({
                    "destination": target, "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
                }));
                mounts.push(json!({
                    "destination": at("/pts"), "type": "devpts", "source": "devpts",
                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
                }));
                mounts.push(json!({
                    "destination": at("/shm"), "type": "tmpfs", "source": "shm",
                    "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}", shm.0)],
                }));
            }
            MountOp::Mask => masked.push(target.to_string()),
            MountOp::ReadOnly => read_only.push(target.to_string()),
        }
    }
    mounts.push(json!({
        "destination": IN_JAIL, "type": "bind",
        "source": options.bundle.join(BUNDLE_DIR),
        "options": ["bind", "ro", "nosuid", "nodev"],
    }));
    (root, mounts, masked, read_only)
}

/// The binds of the host's `/`, entry by entry (see [`super::RootEntry`]).
fn host_root(options: &Options, read_only: bool) -> Vec<Value> {
    options
        .host_root
        .iter()
        .filter(|e| matches!(e.kind, RootKind::Dir | RootKind::File))
        .map(|e| {
            let at = format!("/{}", e.name);
            // In a user namespace the kernel binds a tree only with the
            // mounts below it (they are locked to it).
            let mut o = vec!["rbind", "nosuid", "nodev"];
            if read_only {
                o.push("ro");
            }
            json!({"destination": at, "type": "bind", "source": at, "options": o})
        })
        .collect()
}

fn resources(policy: &Policy) -> Value {
    let mut r = json!({});
    if let Some(m) = policy.cgroup.memory {
        // No swap beyond the limit, as the launcher's memory.swap.max.
        r["memory"] = json!({"limit": m.0, "swap": m.0});
    }
    if let Some(p) = policy.cgroup.pids {
        r["pids"] = json!({"limit": p});
    }
    if let Some(c) = policy.cgroup.cpu {
        // A thousandth of a CPU is 100 microseconds of each 100 ms period.
        r["cpu"] = json!({"quota": u64::from(c.0) * 100, "period": 100_000});
    }
    r
}
