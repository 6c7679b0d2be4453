//! The Landlock ruleset: the file system confined to the jail's own mounts.
//!
//! After pivot_root the jail sees only its mounts; Landlock holds that line for
//! anything that reaches past them, such as a descriptor of a host directory,
//! and makes read-only mounts read-only once more. Its scopes keep signals and
//! abstract unix sockets inside the jail's domain.

use serde::Serialize;

use super::Why;
use super::host::{Degraded, why as host_why};
use super::mounts::{MountEntry, MountOp};
use crate::model::AbsPath;

/// What a rule grants beneath its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read files and directories, execute programs.
    Read,
    /// Everything a file system allows, but device ioctls.
    ReadWrite,
    /// Everything, device ioctls included (/dev).
    Devices,
}

/// A path-beneath rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Inside the jail.
    pub path: AbsPath,
    /// What is granted.
    pub access: Access,
    /// Why.
    pub why: Why,
}

/// Landlock scopes (ABI 6 and later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// No signals to processes outside the jail's domain.
    Signal,
    /// No connections to abstract unix sockets created outside it.
    AbstractUnixSocket,
}

/// What sysjail asks of Landlock. The launcher applies what the kernel's ABI
/// supports and reports the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LandlockPolicy {
    /// The kernel's Landlock ABI; `None`: not enforced, the mount namespace
    /// alone confines the file system.
    pub abi: Option<u8>,
    /// Why enforced or not.
    pub why: Why,
    /// Every file system right is handled; these rules grant some back.
    pub rules: Vec<Rule>,
    /// Scopes.
    pub scopes: Vec<Scope>,
}

/// Scopes came with this ABI.
const SCOPES_ABI: u8 = 6;

/// The ruleset for a mount table, on a kernel with Landlock `abi`.
pub fn compile(mounts: &[MountEntry], abi: Option<u8>, degraded: &mut Vec<Degraded>) -> LandlockPolicy {
    let Some(version) = abi else {
        degraded.push(Degraded {
            what: "Landlock is not available: the file system is confined by the mount namespace alone".into(),
            why: host_why("no Landlock"),
        });
        return LandlockPolicy {
            abi,
            why: host_why("no Landlock"),
            rules: Vec::new(),
            scopes: Vec::new(),
        };
    };
    let scopes = if version >= SCOPES_ABI {
        vec![Scope::Signal, Scope::AbstractUnixSocket]
    } else {
        degraded.push(Degraded {
            what: "Landlock scopes are not enforced: signals and abstract unix sockets are confined by the \
                   jail's PID and network namespaces alone"
                .into(),
            why: host_why(format!("Landlock ABI {version}, scopes need {SCOPES_ABI}")),
        });
        Vec::new()
    };
    let rules = rules(mounts);
    LandlockPolicy {
        abi,
        why: host_why(format!("Landlock ABI {version}")),
        rules,
        scopes,
    }
}

/// A rule per mount: read, read-write or devices, as mounted. Masked and
/// read-only parts of /proc need none: the mount already decides.
fn rules(mounts: &[MountEntry]) -> Vec<Rule> {
    let mut rules = Vec::new();
    for m in mounts {
        let access = match &m.op {
            MountOp::Root { read_only, .. } | MountOp::Bind { read_only, .. } | MountOp::Tmpfs { read_only, .. } => {
                if *read_only {
                    Access::Read
                } else {
                    Access::ReadWrite
                }
            }
            MountOp::Proc => Access::ReadWrite,
            MountOp::Dev { .. } => {
                // mq_open(3) reaches the IPC namespace's mqueue file system through
                // an internal mount, where no rule above it applies; a rule on its
                // root inode (mounted here) does.
                rules.push(Rule {
                    path: m.target.join(&AbsPath::parse("/mqueue").expect("static")),
                    access: Access::ReadWrite,
                    why: Why::Default("POSIX message queues of the jail's IPC namespace"),
                });
                Access::Devices
            }
            MountOp::Mask | MountOp::ReadOnly => continue,
        };
        rules.push(Rule {
            path: m.target.clone(),
            access,
            why: m.why.clone(),
        });
    }
    rules
}
