//! The rules of the launch order. [`build`](super::build) checks every plan
//! it makes; a plan that breaks one is a bug of sysjail's, never the user's.

use std::path::PathBuf;

use super::{HostStep, JailStep, LaunchPlan};

/// A rule of the launch order a plan breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Broken {
    /// Cgroups and their programs exist before any process of the jail.
    #[error("internal error: the launch plan has {0} after the clone; it must come before init exists")]
    AfterClone(&'static str),
    /// Joining, mapping and the veth need init.
    #[error("internal error: the launch plan has {0} before the clone; it needs init")]
    BeforeClone(&'static str),
    /// A cgroup entered or given programs before it is made.
    #[error("internal error: the launch plan uses cgroup {0} before creating it")]
    Uncreated(PathBuf),
    /// Init's ids are mapped exactly once, before its go-ahead.
    #[error("internal error: the launch plan writes init's id maps {0} times, not once")]
    IdMaps(usize),
    /// The veth's jail end is configured in a namespace that holds it only
    /// once the id maps are written (init waits on them).
    #[error("internal error: the launch plan creates the veth before writing the id maps")]
    VethBeforeIdMaps,
    /// Cgroups are joined before init is mapped and told to go on.
    #[error("internal error: the launch plan joins a cgroup after writing the id maps")]
    JoinAfterIdMaps,
    /// Prepared mounts are numbered in order, and each jail step takes one
    /// that exists.
    #[error("internal error: the launch plan's prepared mount {0} is out of order or missing")]
    Slot(usize),
    /// Init unshares its cgroup namespace once, before its seccomp filter
    /// forbids it, and only after the v1 joins it has to wait for.
    #[error("internal error: the launch plan unshares init's cgroup namespace out of order")]
    CgroupNamespace,
}

/// Checks the rules of the launch order.
pub fn check(plan: &LaunchPlan) -> Result<(), Broken> {
    let host = &plan.host;
    let mut created: Vec<&PathBuf> = Vec::new();
    for step in &host.before_clone {
        match step {
            HostStep::CreateCgroup { path, .. } => created.push(path),
            HostStep::AttachRewrite { cgroup, .. } if !created.contains(&cgroup) => {
                return Err(Broken::Uncreated(cgroup.clone()));
            }
            HostStep::AttachRewrite { .. } => {}
            other => return Err(Broken::BeforeClone(name(other))),
        }
    }
    if let Some(into) = &host.clone.into_cgroup
        && !created.contains(&into)
    {
        return Err(Broken::Uncreated(into.clone()));
    }
    after_clone(&host.after_clone, &created)?;
    cgroup_namespace(plan)?;
    slots(plan)
}

fn cgroup_namespace(plan: &LaunchPlan) -> Result<(), Broken> {
    let at = |wanted: fn(&JailStep) -> bool| plan.jail.iter().position(wanted);
    let joins = plan.host.steps().any(|s| matches!(s, HostStep::JoinCgroup { .. }));
    let unshares = plan
        .jail
        .iter()
        .filter(|s| matches!(s, JailStep::UnshareCgroup))
        .count();
    let unshare = at(|s| matches!(s, JailStep::UnshareCgroup));
    let wait = at(|s| matches!(s, JailStep::AwaitCgroups));
    let filter = at(|s| matches!(s, JailStep::Seccomp { .. }));
    let in_order = match (joins, wait, unshare) {
        (true, Some(w), Some(u)) => w < u,
        (false, None, Some(_)) => true,
        _ => false,
    };
    if unshares != 1 || !in_order || unshare > filter {
        return Err(Broken::CgroupNamespace);
    }
    Ok(())
}

fn after_clone(steps: &[HostStep], created: &[&PathBuf]) -> Result<(), Broken> {
    let mut maps = 0;
    for step in steps {
        match step {
            HostStep::CreateCgroup { .. } | HostStep::AttachRewrite { .. } => {
                return Err(Broken::AfterClone(name(step)));
            }
            HostStep::JoinCgroup { path } if !created.contains(&path) => return Err(Broken::Uncreated(path.clone())),
            HostStep::JoinCgroup { .. } if maps > 0 => return Err(Broken::JoinAfterIdMaps),
            HostStep::CreateVeth { .. } if maps == 0 => return Err(Broken::VethBeforeIdMaps),
            HostStep::WriteIdMaps { .. } => maps += 1,
            _ => {}
        }
    }
    if maps != 1 {
        return Err(Broken::IdMaps(maps));
    }
    Ok(())
}

fn slots(plan: &LaunchPlan) -> Result<(), Broken> {
    let made: Vec<usize> = plan
        .host
        .steps()
        .filter_map(|s| match s {
            HostStep::PrepareMount { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect();
    if let Some((i, _)) = made.iter().enumerate().find(|(i, slot)| i != *slot) {
        return Err(Broken::Slot(i));
    }
    for step in &plan.jail {
        if let JailStep::Root {
            prepared: Some(slot), ..
        }
        | JailStep::Bind {
            prepared: Some(slot), ..
        } = step
            && *slot >= made.len()
        {
            return Err(Broken::Slot(*slot));
        }
    }
    Ok(())
}

fn name(step: &HostStep) -> &'static str {
    match step {
        HostStep::CreateCgroup { .. } => "a cgroup's creation",
        HostStep::AttachRewrite { .. } => "the address programs",
        HostStep::CreateVeth { .. } => "the veth",
        HostStep::JoinCgroup { .. } => "a cgroup join",
        HostStep::WriteIdMaps { .. } => "the id maps",
        HostStep::PrepareMount { .. } => "a prepared mount",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::example_plans;

    fn web() -> LaunchPlan {
        example_plans().into_iter().find(|(n, _)| n == "web").unwrap().1
    }

    #[test]
    fn every_example_keeps_the_rules() {
        for (name, plan) in example_plans() {
            assert_eq!(check(&plan), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_cgroup_after_the_clone_is_caught() {
        let mut plan = web();
        let step = plan.host.before_clone.remove(0);
        plan.host.after_clone.insert(0, step);
        assert!(matches!(
            check(&plan),
            Err(Broken::AfterClone(_) | Broken::Uncreated(_))
        ));
    }

    #[test]
    fn id_maps_before_the_clone_are_caught() {
        let mut plan = web();
        let at = plan
            .host
            .after_clone
            .iter()
            .position(|s| matches!(s, HostStep::WriteIdMaps { .. }))
            .unwrap();
        let maps = plan.host.after_clone.remove(at);
        plan.host.before_clone.push(maps);
        assert_eq!(check(&plan), Err(Broken::BeforeClone("the id maps")));
    }

    #[test]
    fn missing_or_doubled_id_maps_are_caught() {
        let mut plan = web();
        let maps = plan
            .host
            .after_clone
            .iter()
            .find(|s| matches!(s, HostStep::WriteIdMaps { .. }));
        let maps = maps.unwrap().clone();
        plan.host.after_clone.push(maps);
        assert_eq!(check(&plan), Err(Broken::IdMaps(2)));
        plan.host
            .after_clone
            .retain(|s| !matches!(s, HostStep::WriteIdMaps { .. }));
        assert!(check(&plan).is_err());
    }

    #[test]
    fn a_cgroup_namespace_out_of_order_is_caught() {
        let mut plan = web();
        assert!(plan.host.steps().any(|s| matches!(s, HostStep::JoinCgroup { .. })));
        let without_wait = |plan: &mut LaunchPlan| plan.jail.retain(|s| !matches!(s, JailStep::AwaitCgroups));
        let mut early = plan.clone();
        without_wait(&mut early);
        assert_eq!(check(&early), Err(Broken::CgroupNamespace));
        let at = plan
            .jail
            .iter()
            .position(|s| matches!(s, JailStep::UnshareCgroup))
            .unwrap();
        let unshare = plan.jail.remove(at);
        plan.jail.push(unshare);
        assert_eq!(check(&plan), Err(Broken::CgroupNamespace));
    }

    #[test]
    fn a_veth_before_the_id_maps_is_caught() {
        let (_, mut plan) = example_plans()
            .into_iter()
            .find(|(_, p)| p.host.veth().is_some())
            .expect("an example with a veth");
        let at = plan
            .host
            .after_clone
            .iter()
            .position(|s| matches!(s, HostStep::CreateVeth { .. }));
        let veth = plan.host.after_clone.remove(at.unwrap());
        plan.host.after_clone.insert(0, veth.clone());
        assert_eq!(check(&plan), Err(Broken::VethBeforeIdMaps));
        plan.host.after_clone.remove(0);
        plan.host.before_clone.push(veth);
        assert_eq!(check(&plan), Err(Broken::BeforeClone("the veth")));
    }

    #[test]
    fn programs_on_an_uncreated_cgroup_are_caught() {
        let mut plan = web();
        let at = plan
            .host
            .before_clone
            .iter()
            .position(|s| matches!(s, HostStep::AttachRewrite { .. }));
        let attach = plan
            .host
            .before_clone
            .remove(at.expect("web attaches the address programs"));
        plan.host.before_clone.insert(0, attach);
        assert!(matches!(check(&plan), Err(Broken::Uncreated(_))));
    }

    #[test]
    fn a_missing_prepared_mount_is_caught() {
        let mut plan = web();
        plan.host
            .after_clone
            .retain(|s| !matches!(s, HostStep::PrepareMount { .. }));
        assert!(matches!(check(&plan), Err(Broken::Slot(_))));
    }
}
