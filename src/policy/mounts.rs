//! The ordered mount table: the root, the jail's mounts, and what hides /proc's
//! host-wide files.

use serde::Serialize;

use super::Why;
use super::host::{Degraded, why as host_why};
use crate::model::{AbsPath, Bytes, Jail, Mount, MountKind};

/// One entry of the mount table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MountEntry {
    /// Where, inside the jail.
    pub target: AbsPath,
    /// What.
    pub op: MountOp,
    /// Why.
    pub why: Why,
}

/// What a mount table entry does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum MountOp {
    /// The jail's root: `source` bound at `/`; pivot_root then detaches the host's.
    Root {
        /// Host directory.
        source: AbsPath,
        /// Read-only.
        read_only: bool,
        /// Id-mapped into the jail's range, so that files keep their on-disk
        /// owners and jail root manages them. Never for the host's root: host
        /// files then show as owned by nobody, and jail root cannot read secrets
        /// such as /etc/shadow.
        idmap: bool,
    },
    /// A host directory or file.
    Bind {
        /// Host path.
        source: AbsPath,
        /// Read-only.
        read_only: bool,
        /// With the mounts below it.
        recursive: bool,
        /// Id-mapped into the jail's range.
        idmap: bool,
    },
    /// A memory file system.
    Tmpfs {
        /// Size limit.
        size: Bytes,
        /// Mode of its root.
        mode: u32,
        /// Read-only.
        read_only: bool,
    },
    /// A new proc instance, showing only the jail's processes.
    Proc,
    /// A minimal /dev: tmpfs with null, zero, full, random, urandom and tty bound
    /// from the host, a private devpts instance with ptmx, and shm.
    Dev {
        /// Size of its shm tmpfs (`limits.shm`): without one it would take
        /// half of the host's memory.
        shm: Bytes,
    },
    /// Hidden: /dev/null over a file, an empty read-only tmpfs over a directory.
    Mask,
    /// Made read-only in place.
    ReadOnly,
}

/// Files of /proc that show host-wide kernel state (as runc masks them).
pub const PROC_MASKED: &[&str] = &[
    "kcore",
    "keys",
    "key-users",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "acpi",
    "scsi",
    "asound",
];

/// Parts of /proc that stay visible but read-only: writes there act on the host.
pub const PROC_READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus", "fs"];

/// The mount table of a jail. Id mapping takes root (`root`); without it
/// the mounts keep their on-disk owners, which `degraded` records.
pub fn compile(jail: &Jail, root: bool, degraded: &mut Vec<Degraded>) -> Vec<MountEntry> {
    let source = &jail.root.path;
    if !root && !jail.root.is_host_root() {
        degraded.push(Degraded {
            what: format!("{source} is mounted without id mapping: its files keep the host's owners"),
            why: host_why("id-mapped mounts take root"),
        });
    }
    if !root && jail.root.is_host_root() {
        degraded.push(Degraded {
            what: "the host's / comes with every mount below it (read-only): the kernel refuses it alone".into(),
            why: host_why("without root, a bind of / must be recursive"),
        });
    }
    let mut out = vec![MountEntry {
        target: AbsPath::root(),
        op: MountOp::Root {
            source: source.clone(),
            read_only: jail.root.read_only,
            idmap: root && !jail.root.is_host_root(),
        },
        why: Why::Key("path".into()),
    }];
    for m in &jail.mounts {
        out.push(MountEntry {
            target: m.target.clone(),
            op: op(jail, &m.kind, root, degraded),
            why: mount_why(m),
        });
        if m.kind == MountKind::Proc {
            out.extend(proc_protection(&m.target));
        }
    }
    out
}

/// The key that made a mount, or why every jail has it.
fn mount_why(m: &Mount) -> Why {
    match m.index {
        Some(i) => Why::Key(format!("mount[{i}]")),
        None => Why::Default(match m.kind {
            MountKind::Proc => "every jail has its own /proc",
            _ => "every jail has its own minimal /dev",
        }),
    }
}

/// What the executor does for one mount of the jail. Id mapping takes root.
fn op(jail: &Jail, kind: &MountKind, root: bool, degraded: &mut Vec<Degraded>) -> MountOp {
    match kind {
        MountKind::Bind {
            source,
            read_only,
            recursive,
            idmap,
        } => {
            if *idmap && !root {
                degraded.push(Degraded {
                    what: format!("{source} is bound without id mapping: its files keep the host's owners"),
                    why: host_why("id-mapped mounts take root"),
                });
            }
            MountOp::Bind {
                source: source.clone(),
                read_only: *read_only,
                recursive: *recursive,
                idmap: *idmap && root,
            }
        }
        MountKind::Tmpfs { size, mode, read_only } => MountOp::Tmpfs {
            size: *size,
            mode: *mode,
            read_only: *read_only,
        },
        MountKind::Proc => MountOp::Proc,
        MountKind::Dev => MountOp::Dev {
            shm: jail.limits.shm.unwrap_or(crate::model::Limits::SHM_DEFAULT),
        },
    }
}

fn proc_protection(proc: &AbsPath) -> impl Iterator<Item = MountEntry> + '_ {
    let under = move |name: &str| proc.join(&AbsPath::parse(&format!("/{name}")).expect("static names"));
    let masks = PROC_MASKED.iter().map(move |name| MountEntry {
        target: under(name),
        op: MountOp::Mask,
        why: Why::Default("host kernel memory, keys and timers stay hidden"),
    });
    let read_only = PROC_READ_ONLY.iter().map(move |name| MountEntry {
        target: under(name),
        op: MountOp::ReadOnly,
        why: Why::Default("promise: writable sysctls denied"),
    });
    masks.chain(read_only)
}
