//! What the host lets sysjail enforce: each decision that depends on the
//! machine, with the fact it rests on, and the refusals of what cannot run
//! there.
//!
//! These are the only places where [`HostFacts`] changes the table, so that
//! `sysjail policy` on a machine prints what `sysjail up` enforces there.

use serde::Serialize;

use super::Why;
use crate::facts::{Hierarchy, HostFacts};
use crate::model::{AbsPath, Jail};

/// A promise kept with less than its full mechanism on this host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Degraded {
    /// What is not enforced, and what still holds.
    pub what: String,
    /// The host fact.
    pub why: Why,
}

/// The host the table was compiled for, and what it lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostPolicy {
    /// The facts the decisions rest on, in one line.
    pub summary: String,
    /// Promises kept with less than their full mechanism here.
    pub degraded: Vec<Degraded>,
}

/// Why a jail cannot run, as defined, on this host.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// cgroup limits without a way to set them.
    #[error("[limits] {what} needs the {controller} cgroup controller, which {why}")]
    NoController {
        /// The limit.
        what: &'static str,
        /// The controller.
        controller: &'static str,
        /// What is missing.
        why: &'static str,
    },
    /// seccomp user notification missing.
    #[error("{0} needs seccomp user notification, which this kernel lacks (Linux 5.0)")]
    NoNotify(&'static str),
    /// Id-mapped mounts missing.
    #[error("an id-mapped mount of {0} needs mount_setattr(2) (Linux 5.12); use `--no-idmap` to mount it as it is")]
    NoIdmap(AbsPath),
    /// Without privilege, supplementary groups cannot be set.
    #[error("supplementary groups need root: an unprivileged user namespace cannot call setgroups(2)")]
    RootlessGroups,
    /// A veth needs privilege over the host's network.
    #[error(
        "a private network with addresses beyond loopback needs root: its veth has an end in the host's network (use loopback addresses, or `mode = \"host\"`)"
    )]
    RootlessVeth,
    /// A host-stack jail with addresses, where the address programs cannot run.
    #[error(
        "a host-stack jail with addresses needs cgroup socket-address programs, and {0}: use `mode = \"private\"` (a network namespace of the jail's own), or launch it as root on a host with cgroup2"
    )]
    NoAddressPrograms(&'static str),
}

/// A decision resting on a host fact.
pub fn why(fact: impl Into<String>) -> Why {
    Why::Host(fact.into())
}

/// The facts in one line.
pub fn summary(facts: &HostFacts) -> String {
    let who = if facts.root {
        "root".to_string()
    } else {
        format!("uid {} (no root)", facts.uid)
    };
    let cgroup = match (&facts.cgroup.v2, facts.cgroup.v1.is_empty()) {
        (Some(v2), true) => format!("cgroup2 at {}", v2.display()),
        (Some(v2), false) => format!("cgroup2 at {} and v1", v2.display()),
        (None, false) => "cgroup v1 only".into(),
        (None, true) => "no cgroups".into(),
    };
    let landlock = facts
        .landlock_abi
        .map_or_else(|| "no Landlock".to_string(), |v| format!("Landlock {v}"));
    let abis: Vec<&str> = facts.abis.iter().map(|a| a.name()).collect();
    format!(
        "{who}; {cgroup}; {landlock}; seccomp notify {}; ABIs {}",
        if facts.seccomp_notify { "yes" } else { "no" },
        abis.join(" ")
    )
}

/// Whether the address rule runs as cgroup programs: loading them takes
/// root, attaching them the unified hierarchy. `Err` says which is missing.
pub fn address_programs(facts: &HostFacts) -> Result<Why, &'static str> {
    if !facts.root {
        Err("loading them takes root")
    } else if facts.cgroup.v2.is_none() {
        Err("this host has no unified cgroup hierarchy to attach them to")
    } else {
        Ok(why("root, and a unified cgroup hierarchy to attach the programs to"))
    }
}

/// Refusals that rest on the definition and the host alone.
pub fn refusals(jail: &Jail, facts: &HostFacts) -> Result<(), Refused> {
    if !facts.root && jail.groups.as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(Refused::RootlessGroups);
    }
    let l = &jail.limits;
    for (what, controller, set) in [
        ("memory", "memory", l.memory.is_some()),
        ("pids", "pids", l.pids.is_some()),
        ("cpu", "cpu", l.cpu.is_some()),
    ] {
        if !set {
            continue;
        }
        if !facts.root {
            // Without privilege no cgroup can be made here; limits then cannot be kept.
            return Err(Refused::NoController {
                what,
                controller,
                why: "an unprivileged user cannot create (run as root, or drop the limit)",
            });
        }
        if facts.cgroup.controller(controller).is_none() {
            return Err(Refused::NoController {
                what,
                controller,
                why: "this machine does not mount",
            });
        }
    }
    Ok(())
}

/// Where a cgroup limit is kept, for the table.
pub fn hierarchy(facts: &HostFacts, controller: &str) -> &'static str {
    match facts.cgroup.controller(controller) {
        Some(Hierarchy::V2) => "cgroup2",
        Some(Hierarchy::V1(_)) => "cgroup v1",
        None => "nowhere",
    }
}
