use super::*;
use crate::plan::{LaunchPlan, example_plans};
use crate::sys::recorder::Recorder;

/// The call the recording double logs for each host step.
fn call_of(action: HostAction<'_>) -> &'static str {
    match action {
        HostAction::Clone(_) => "clone_init",
        HostAction::Step(step) => match step {
            HostStep::CreateCgroup { .. } => "create_cgroup",
            HostStep::AttachRewrite { .. } => "attach_rewrite",
            HostStep::JoinCgroup { .. } => "join_cgroup",
            HostStep::WriteIdMaps { .. } => "write_id_maps",
            HostStep::CreateVeth { .. } => "create_veth",
            HostStep::PrepareMount { .. } => "prepare_mount",
        },
    }
}

/// The whole launch through the double: the supervisor's steps, then init's.
fn launch(plan: &LaunchPlan, k: &mut Recorder) -> usize {
    let started = run(&plan.host, &plan.ids, k).expect("the recorder never fails");
    let host_calls = k.calls.len();
    let mut prepared: Vec<Option<()>> = started.prepared.into_iter().map(Some).collect();
    crate::sys::jail::run(&plan.jail, k, &mut prepared).expect("the recorder never fails");
    host_calls
}

#[test]
fn host_then_jail_steps_in_plan_order_for_every_example() {
    for (name, plan) in example_plans() {
        let mut k = Recorder::default();
        let host_calls = launch(&plan, &mut k);
        let (host, jail) = k.calls.split_at(host_calls);
        let expected: Vec<&str> = plan.host.actions().map(call_of).collect();
        assert_eq!(host, expected, "{name}: host calls");
        let clone = host.iter().position(|c| *c == "clone_init").unwrap();
        for before in ["create_cgroup", "attach_rewrite"] {
            assert!(
                host[clone..].iter().all(|c| *c != before),
                "{name}: {before} after the clone"
            );
        }
        let maps = host.iter().position(|c| *c == "write_id_maps").unwrap();
        assert!(clone < maps, "{name}");
        if let Some(veth) = host.iter().position(|c| *c == "create_veth") {
            assert!(maps < veth, "{name}: the veth before the id maps");
        }
        assert_eq!(
            host.iter().filter(|c| **c == "prepare_mount").count(),
            plan.host.prepared()
        );
        // Init's first act is to take its ids, its last the filter.
        assert_eq!(jail.first(), Some(&"switch_ids"), "{name}: {jail:?}");
        assert_eq!(jail.last(), Some(&"seccomp"), "{name}: {jail:?}");
        assert!(!jail.contains(&"abandon"));
    }
}

#[test]
fn a_failing_host_step_is_numbered_and_kills_init_after_the_clone() {
    for (name, plan) in example_plans() {
        let total = plan.host.len();
        let clone = plan.host.before_clone.len();
        for fail_at in 0..total {
            let mut k = Recorder {
                fail_at: Some(fail_at),
                ..Recorder::default()
            };
            let failing = plan.host.actions().nth(fail_at).unwrap();
            if let HostAction::Step(HostStep::JoinCgroup { .. }) = failing {
                // The moves run while init sets up: the setup goes on, and
                // the failure comes with them, numbered as its step.
                let started = run(&plan.host, &plan.ids, &mut k).expect("only a join failed");
                let Err(err) = started.joins.finish() else {
                    panic!("{name}: join {} failed unseen", fail_at + 1)
                };
                assert_eq!((err.index, err.total), (fail_at + 1, total), "{name}");
                assert_eq!(err.step, failing.to_string());
                assert_eq!(err.created.cgroups, plan.host.cgroups(), "{name}");
                continue;
            }
            let Err(err) = run(&plan.host, &plan.ids, &mut k) else {
                panic!("{name}: step {} failed but the setup went on", fail_at + 1)
            };
            assert_eq!((err.index, err.total), (fail_at + 1, total), "{name}");
            let shown = plan.host.actions().nth(fail_at).unwrap().to_string();
            assert_eq!(err.step, shown);
            assert!(
                err.to_string()
                    .starts_with(&format!("host step {}/{total} {shown}: EPERM", fail_at + 1))
            );
            // Nothing after the failure; init, if it exists, is killed.
            let mut expected: Vec<&str> = plan.host.actions().take(fail_at + 1).map(call_of).collect();
            if fail_at > clone {
                expected.push("abandon");
            }
            assert_eq!(k.calls, expected, "{name}");
        }
    }
}
