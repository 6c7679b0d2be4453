//! The Landlock ruleset: the file system confined to the jail's own mounts.
//!
//! After pivot_root the jail sees only its mounts; Landlock holds that line for
//! anything that reaches past them, such as a descriptor of a host directory,
//! and makes read-only mounts read-only once more. Its scopes keep signals and
//! abstract unix sockets inside the jail's domain.

use serde::Serialize;

use super::Why;
use super::mounts::{MountEntry, MountOp};
use crate::model::AbsPath;

/// What a rule grants beneath its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// Every file system right is handled; these rules grant some back.
    pub rules: Vec<Rule>,
    /// Scopes.
    pub scopes: Vec<Scope>,
}

/// The ruleset for a mount table.
pub fn compile(mounts: &[MountEntry]) -> LandlockPolicy {
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
    LandlockPolicy {
        rules,
        scopes: vec![Scope::Signal, Scope::AbstractUnixSocket],
    }
}
