//! `sysjail export oci`: a compiled policy as an OCI runtime-spec bundle that
//! runc, crun and containerd run, and the report of how the bundle keeps each
//! promise of the table.
//!
//! The runtime spec carries namespaces, id maps, mounts, capabilities,
//! rlimits and cgroup limits, but it has no Landlock, no cgroup
//! socket-address programs, and libseccomp cannot express the table's
//! first-match argument rules on low 32 bits. So the bundle's process is
//! sysjail itself (`sysjail oci-init`, copied into the bundle and bound
//! read-only into the jail at [`IN_JAIL`]): it applies the exact Landlock
//! ruleset and installs the exact filter of [`crate::seccomp`], then starts
//! the command and stays as the jail's init. The runtime's own profile
//! ([`profile`]) is an outer layer that denies only what the exact filter
//! denies for every argument, so the two agree; it is also the `Localhost`
//! profile a Kubernetes Pod points at.
//! A `createRuntime` hook (`sysjail hook create-runtime`) attaches the
//! address programs to a cgroup of the container's own in the unified
//! hierarchy.
//!
//! All but [`run`] is pure: [`export`] turns a policy into data, the CLI
//! writes it, and [`drift`] compares a bundle on disk with it. [`run`] is
//! the bundle's side at run time, through the executor's calls.

pub mod drift;
pub mod profile;
pub mod report;
pub mod run;
mod spec;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::Login;
use crate::policy::Policy;
use crate::policy::landlock::{Access, Scope};

pub use report::{How, Report};

/// Where the bundle's sysjail directory appears inside the jail: below the
/// runtime's own /dev tmpfs, so that the runtime creates the mount point
/// there and never in the jail's tree (which may be the host's `/`).
pub const IN_JAIL: &str = "/dev/.sysjail";
/// The bundle's directory of sysjail files (the binary and [`INIT_FILE`]).
pub const BUNDLE_DIR: &str = "sysjail";
/// The init's instructions, in [`BUNDLE_DIR`].
pub const INIT_FILE: &str = "init.json";
/// The binary, in [`BUNDLE_DIR`].
pub const BINARY: &str = "sysjail";
/// The Kubernetes `Localhost` seccomp profile, in the bundle directory.
pub const PROFILE_FILE: &str = "seccomp.json";
/// The parent of the cgroups the rewrite hook creates, in the unified hierarchy.
pub const HOOK_CGROUP: &str = "sysjail-oci";

/// How to export.
#[derive(Clone, Debug)]
pub struct Options {
    /// The bundle directory, absolute (hooks name files in it).
    pub bundle: PathBuf,
    /// First host uid of the jail's range (jail uid 0).
    pub id_base: u32,
    /// First host gid of the jail's range (jail gid 0).
    pub gid_base: u32,
    /// Owner (uid, gid) of the jail's own tree, when it is id-mapped: the
    /// id maps starting there keep its files' owners without an id-mapped
    /// mount, as LXC's unprivileged containers do.
    pub tree_owner: Option<(u32, u32)>,
    /// The command instead of the definition's.
    pub command: Option<Vec<String>>,
    /// The jail's user, resolved in its database (jail root: uid 0).
    pub login: Login,
    /// The sysjail binary is linked dynamically: the jail's tree must hold
    /// its libraries.
    pub dynamic: bool,
    /// The entries of the host's `/`, for a jail whose root it is.
    pub host_root: Vec<RootEntry>,
}

/// An entry of the host's `/`. Runtimes cannot take `/` itself as the root
/// (pivot_root refuses the current root), so the bundle's `rootfs` holds one
/// entry for each, and the directories and files of the root file system are
/// bound there; what is mounted on `/` (such as /proc or /sys) is an empty
/// directory, as in the launcher's bind of `/` without its submounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootEntry {
    /// Its name in `/`.
    pub name: String,
    /// What it is.
    pub kind: RootKind,
}

/// What an entry of the host's `/` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// A directory of the root file system: bound.
    Dir,
    /// A regular file of the root file system: bound.
    File,
    /// A mount point: an empty directory.
    MountPoint,
    /// A symbolic link, to this target.
    Link(String),
}

/// The directory of `rootfs` in the bundle, for a jail whose root is the host's `/`.
pub const ROOTFS: &str = "rootfs";

/// What the bundle's init applies before it starts the command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitFile {
    /// The exact seccomp filter, as (code, jt, jf, k).
    pub filter: Vec<(u16, u8, u8, u32)>,
    /// Landlock path-beneath rules.
    pub landlock: Vec<(String, Access)>,
    /// Landlock scopes.
    pub scopes: Vec<Scope>,
    /// Whether Landlock is applied at all (the host the policy was compiled
    /// for has it).
    pub landlock_enabled: bool,
    /// The address-rule programs the hook attaches, if any.
    pub rewrite: Option<RewriteFile>,
    /// The veth of a private jail with addresses, which the hook creates.
    pub veth: Option<VethFile>,
}

impl InitFile {
    /// Whether the bundle needs its hooks.
    pub fn hooks(&self) -> bool {
        self.rewrite.is_some() || self.veth.is_some()
    }
}

/// A private jail's veth, as the launcher makes it ([`crate::plan::veth`]);
/// the host end's name, which must be unique on the host, is made from the
/// container's id when it runs, in place of [`VETH_HOST`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethFile {
    /// The jail's end, inside its network namespace.
    pub peer: String,
    /// A bridge the host end joins.
    pub bridge: Option<String>,
    /// Addresses of the host end.
    pub host_addresses: Vec<(std::net::IpAddr, u8)>,
    /// Routes on the host (through [`VETH_HOST`]).
    pub host_routes: Vec<crate::plan::Route>,
    /// Exactly the jail's addresses.
    pub addresses: Vec<(std::net::IpAddr, u8)>,
    /// The jail's routes.
    pub routes: Vec<crate::plan::Route>,
}

/// The host end's name in [`VethFile`], until the hook names it.
pub const VETH_HOST: &str = "@host";

impl VethFile {
    /// The veth of `interface`.
    pub fn of(interface: &crate::policy::network::Interface) -> VethFile {
        use crate::plan::{HostStep, JailStep, veth};
        let (
            HostStep::CreateVeth {
                bridge,
                addresses: host_addresses,
                routes: host_routes,
                ..
            },
            JailStep::Interface {
                name,
                addresses,
                routes,
            },
        ) = veth(interface, VETH_HOST)
        else {
            unreachable!("plan::veth gives a veth and an interface")
        };
        VethFile {
            peer: name,
            bridge,
            host_addresses,
            host_routes,
            addresses,
            routes,
        }
    }

    /// The host end's name for the container `id` of the bundle `bundle`
    /// (as the runtime's state names them): unique on the host, as far as
    /// an interface name allows (15 bytes). The id alone is not: two
    /// runtime roots, or two containerd namespaces, may hold the same id.
    pub fn host_name(bundle: &str, id: &str) -> String {
        format!("sjo{:010x}", fnv(&[bundle, id]) & 0xff_ffff_ffff)
    }

    /// The host routes with the host end named `host`.
    pub fn host_routes(&self, host: &str) -> Vec<crate::plan::Route> {
        let mut routes = self.host_routes.clone();
        for r in &mut routes {
            if r.dev.as_deref() == Some(VETH_HOST) {
                r.dev = Some(host.to_string());
            }
        }
        routes
    }
}

/// FNV-1a of `parts`, each ended by a NUL: stable across runs and builds.
pub fn fnv(parts: &[&str]) -> u64 {
    parts
        .iter()
        .flat_map(|p| p.bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

/// The prefix of the runtime's cgroup of an exported bundle
/// (`linux.cgroupsPath`), one per bundle directory: top-level, so that the
/// runtime removes it whole.
pub const BUNDLE_CGROUP: &str = "sysjail-bundle-";

/// What the `createRuntime` hook needs to build the address programs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewriteFile {
    /// IPv4 addresses, the rewrite target first.
    pub v4: Vec<std::net::Ipv4Addr>,
    /// IPv6 addresses, the rewrite target first.
    pub v6: Vec<std::net::Ipv6Addr>,
    /// Host uid of jail root, which may bind ports below 1024.
    pub jail_root: u32,
}

impl RewriteFile {
    /// The programs, as the launcher compiles them.
    pub fn programs(&self) -> Vec<crate::rewrite::Program> {
        let addresses = crate::rewrite::Addresses {
            v4: self.v4.clone(),
            v6: self.v6.clone(),
        };
        crate::rewrite::compile(&addresses, self.jail_root)
    }
}

/// An exported bundle, as data.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// config.json.
    pub spec: oci_spec::runtime::Spec,
    /// The init's instructions.
    pub init: InitFile,
    /// The seccomp profile (also in `spec`), for a `Localhost` seccompProfile.
    pub profile: oci_spec::runtime::LinuxSeccomp,
    /// Every promise and how the bundle keeps it.
    pub report: Report,
    /// The entries of the bundle's rootfs, for a jail whose root is the host's `/`.
    pub host_root: Vec<RootEntry>,
}

/// Why a policy cannot become a bundle.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The filter did not assemble.
    #[error("the seccomp filter: {0}")]
    Filter(#[from] crate::seccomp::asm::AsmError),
    /// The spec did not pass oci-spec's checks.
    #[error("the runtime spec: {0}")]
    Spec(#[from] serde_json::Error),
    /// The jail runs as a host user (`host-user`) whose uid lies beyond the
    /// jail's mapped ids.
    #[error("user {name} (uid {uid}) is not among the jail's {count} mapped ids")]
    Unmapped {
        /// Login name.
        name: String,
        /// Its uid.
        uid: u32,
        /// Mapped ids.
        count: u32,
    },
}

/// Exports `policy` as a bundle.
pub fn export(policy: &Policy, options: &Options) -> Result<Bundle, ExportError> {
    let count = crate::policy::JAIL_IDS;
    if options.login.uid >= count || options.login.gid >= count {
        return Err(ExportError::Unmapped {
            name: options.login.name.clone(),
            uid: options.login.uid,
            count,
        });
    }
    let (syscalls, unsupervised) = profile::unsupervised(&policy.syscalls);
    let filter = crate::seccomp::compile(&syscalls, &syscalls.abis, crate::seccomp::Options::default())?;
    let outer = profile::outer(&syscalls);
    let init = InitFile {
        filter: filter.program.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect(),
        landlock: policy
            .landlock
            .rules
            .iter()
            .map(|r| (r.path.as_str().to_string(), r.access))
            .collect(),
        scopes: policy.landlock.scopes.clone(),
        landlock_enabled: policy.landlock.abi.is_some(),
        veth: policy.network.interface.as_ref().map(VethFile::of),
        rewrite: policy.network.rewrite.as_ref().map(|_| {
            let a = crate::rewrite::Addresses::of(&policy.network);
            RewriteFile {
                v4: a.v4,
                v6: a.v6,
                jail_root: options.id_base,
            }
        }),
    };
    let spec = spec::build(policy, options, &outer.profile, init.hooks())?;
    let report = report::build(policy, options, &unsupervised, &outer);
    Ok(Bundle {
        spec,
        init,
        profile: outer.profile,
        report,
        host_root: options.host_root.clone(),
    })
}

/// config.json as written: oci-spec holds capability sets as hash sets, so
/// they are sorted here, which makes the file deterministic.
pub fn config_json(spec: &oci_spec::runtime::Spec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).expect("a spec is JSON");
    normalize(&mut v);
    v
}

/// Sorts the capability sets of a config.json value: they are sets, so their
/// order means nothing.
pub fn normalize(config: &mut serde_json::Value) {
    if let Some(caps) = config
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
}

/// The login of jail root when the jail's passwd has no entry for uid 0.
pub fn jail_root() -> Login {
    Login {
        name: "root".into(),
        uid: 0,
        gid: 0,
        groups: vec![],
        home: "/root".into(),
        shell: "/bin/sh".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exported(example: &str) -> Bundle {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/jails/{example}.toml"));
        let def = crate::load::load(&file).expect("valid");
        let policy = crate::policy::compile(&def.jail, &crate::facts::HostFacts::example()).expect("runs");
        let options = Options {
            bundle: "/b".into(),
            id_base: 0x7000_0000,
            gid_base: 0x7000_0000,
            tree_owner: None,
            command: None,
            login: jail_root(),
            dynamic: false,
            host_root: vec![
                RootEntry {
                    name: "usr".into(),
                    kind: RootKind::Dir,
                },
                RootEntry {
                    name: "proc".into(),
                    kind: RootKind::MountPoint,
                },
                RootEntry {
                    name: "bin".into(),
                    kind: RootKind::Link("usr/bin".into()),
                },
            ],
        };
        export(&policy, &options).expect("exports")
    }

    #[test]
    fn the_spec_carries_the_policy() {
        let b = exported("hello");
        let v = config_json(&b.spec);
        assert_eq!(v["hostname"], "hello.jail");
        assert_eq!(v["root"]["path"], "/b/rootfs");
        // Directories of the root file system are bound, mount points not.
        assert_eq!(v["mounts"][0]["destination"], "/usr");
        assert!(v["mounts"][0]["options"].as_array().unwrap().contains(&"ro".into()));
        assert!(!v["mounts"].as_array().unwrap().iter().any(|m| m["source"] == "/proc"));
        assert_eq!(
            v["linux"]["uidMappings"],
            serde_json::json!([{"containerID": 0, "hostID": 0x7000_0000u32, "size": 65536}])
        );
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["user", "pid", "mount", "uts", "ipc", "cgroup", "network"]);
        assert_eq!(
            v["process"]["args"].as_array().unwrap()[..4],
            ["/dev/.sysjail/sysjail", "oci-init", "/dev/.sysjail/init.json", "--"]
        );
        assert!(v["process"]["noNewPrivileges"].as_bool().unwrap());
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["process"]["rlimits"][0]["hard"], 1024);
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 256 << 20);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 128);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 100_000);
        assert!(
            v["linux"]["readonlyPaths"]
                .as_array()
                .unwrap()
                .contains(&"/proc/sys".into())
        );
        assert!(
            v["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .contains(&"/proc/kcore".into())
        );
        // No address rule, no hooks.
        assert!(v.get("hooks").is_none());
        assert!(!b.init.filter.is_empty() && b.init.landlock_enabled);
    }

    #[test]
    fn the_report_says_what_is_lost_and_why() {
        let api = exported("api");
        let lost: Vec<&str> = api.report.lost().map(|e| e.promise.as_str()).collect();
        assert!(lost.contains(&"reboot(2) by jail root halts the jail"), "{lost:?}");
        // The veth is the hook's, as the launcher makes it.
        assert!(!lost.iter().any(|l| l.contains("interface")), "{lost:?}");
        let veth = api.init.veth.as_ref().expect("a veth");
        assert_eq!(veth.addresses, [("10.89.0.2".parse().unwrap(), 24)]);
        assert_eq!(veth.host_addresses, [("10.89.0.1".parse().unwrap(), 24)]);
        let name = VethFile::host_name(
            "/run/containerd/io.containerd.runtime.v2.task/default/x",
            "sj-some-long-container-id-of-the-engine",
        );
        assert_ne!(
            name,
            VethFile::host_name("/srv/bundles/other", "sj-some-long-container-id-of-the-engine")
        );
        assert!(name.len() <= 15 && name.starts_with("sjo"), "{name}");
        assert!(
            veth.host_routes(&name)
                .iter()
                .all(|r| r.dev.as_deref() != Some(VETH_HOST))
        );
        let json = serde_json::to_value(&api.report).unwrap();
        let reboot = json["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["promise"] == "reboot(2) by jail root halts the jail")
            .unwrap();
        assert_eq!(reboot["how"], "lost");
        assert!(reboot["by"].as_str().unwrap().contains("EPERM"));
        let text = api.report.to_string();
        assert!(text.ends_with(&format!(
            "{} promises: {} kept, {} lost\n",
            api.report.entries.len(),
            api.report.entries.len() - lost.len(),
            lost.len()
        )));
    }

    #[test]
    fn a_host_stack_jail_gets_the_hooks() {
        let web = exported("web");
        let v = config_json(&web.spec);
        assert_eq!(v["hooks"]["createRuntime"][0]["args"][2], "create-runtime");
        assert_eq!(v["hooks"]["poststop"][0]["args"][2], "poststop");
        let rewrite = web.init.rewrite.as_ref().expect("the address rule");
        assert_eq!(rewrite.v4[0].to_string(), "192.0.2.10");
        assert_eq!(rewrite.jail_root, 0x7000_0000);
        assert!(!rewrite.programs().is_empty());
        // Host stack: no network namespace.
        assert!(
            !v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        );
    }
}
