//! The syscall table without a supervisor, and its libseccomp form.
//!
//! A bundle has no sysjail supervisor to answer user notifications, so
//! [`unsupervised`] gives each such action the answer the filter can give
//! itself, and says what is lost. [`outer`] writes the OCI profile: every call
//! the table decides for all arguments alike, with the table's action; a call
//! whose answer depends on its arguments is allowed whole there, because
//! libseccomp compares 64 bits and has no first-match order, and the exact
//! filter that sysjail's init installs inside decides it.

use std::collections::BTreeMap;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use crate::policy::syscalls::{Action, Errno, Notify, SyscallPolicy};
use crate::syscalls::{Abi, Sysno};

/// Calls sysjail's init makes under the runtime's profile, before its own
/// filter is in place: the profile never denies them.
pub const INIT_NEEDS: &[&str] = &[
    "execve",
    "prctl",
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
];

/// A supervisor answer given by the filter instead, and what is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupervised {
    /// Which answer.
    pub notify: Notify,
    /// The calls it applied to.
    pub calls: Vec<&'static str>,
    /// The filter's answer now.
    pub now: Action,
}

/// The table with every supervisor answer replaced by one the filter gives,
/// and the replacements made.
pub fn unsupervised(policy: &SyscallPolicy) -> (SyscallPolicy, Vec<Unsupervised>) {
    let mut out = policy.clone();
    let mut seen: BTreeMap<Notify, Vec<&'static str>> = BTreeMap::new();
    let mut replace = |call: Sysno, action: &mut Action| {
        if let Action::Notify(n) = *action {
            *action = without_supervisor(n);
            let calls = seen.entry(n).or_default();
            if !calls.contains(&call.name()) {
                calls.push(call.name());
            }
        }
    };
    for rule in &mut out.rules {
        let call = rule.call;
        replace(call, &mut rule.otherwise);
        for arm in &mut rule.arms {
            replace(call, &mut arm.then);
        }
    }
    let done = seen
        .into_iter()
        .map(|(notify, calls)| Unsupervised {
            notify,
            calls,
            now: without_supervisor(notify),
        })
        .collect();
    (out, done)
}

/// The filter's own answer in place of the supervisor's.
fn without_supervisor(n: Notify) -> Action {
    match n {
        // The packet programs still drop what such a socket receives at an
        // unlisted address.
        Notify::Listen => Action::Allow,
        Notify::Rlimit | Notify::Denied | Notify::Reboot => Action::Errno(Errno::EPERM),
        // What a kernel without the multiplexer says: libc then uses the
        // direct calls, which the filter reads from registers.
        Notify::Socketcall => Action::Errno(Errno::ENOSYS),
    }
}

/// The OCI profile of a table without supervisor answers.
#[derive(Clone, Debug)]
pub struct Outer {
    /// The profile.
    pub profile: LinuxSeccomp,
    /// Calls the table decides by their arguments, allowed whole by the profile.
    pub by_arguments: Vec<&'static str>,
}

/// The libseccomp profile: exact for calls decided by number alone.
pub fn outer(policy: &SyscallPolicy) -> Outer {
    let mut groups: BTreeMap<(u8, u32), Vec<String>> = BTreeMap::new();
    let mut by_arguments = Vec::new();
    for rule in &policy.rules {
        let name = rule.call.name();
        let action = if !rule.arms.is_empty() {
            by_arguments.push(name);
            Action::Allow
        } else if INIT_NEEDS.contains(&name) {
            Action::Allow
        } else {
            rule.otherwise
        };
        if action != policy.default {
            groups.entry(key(action)).or_default().push(name.to_string());
        }
    }
    let syscalls = groups
        .into_iter()
        .map(|((kind, errno), names)| {
            let (action, errno_ret) = seccomp_action(kind, errno);
            let mut s = LinuxSyscall::default();
            s.set_names(names);
            s.set_action(action);
            s.set_errno_ret(errno_ret);
            s
        })
        .collect();
    let (default, default_errno) = seccomp_action(key(policy.default).0, key(policy.default).1);
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(default);
    profile.set_default_errno_ret(default_errno);
    profile.set_architectures(Some(architectures(&policy.abis)));
    profile.set_syscalls(Some(syscalls));
    Outer { profile, by_arguments }
}

/// Actions in a sortable form: (kind, errno).
fn key(action: Action) -> (u8, u32) {
    match action {
        Action::Allow => (0, 0),
        Action::Errno(e) => (1, u32::from(e.number())),
        Action::KillProcess => (2, 0),
        // Never reached: [`unsupervised`] replaced them.
        Action::Notify(_) => (1, u32::from(Errno::EPERM.number())),
    }
}

fn seccomp_action(kind: u8, errno: u32) -> (LinuxSeccompAction, Option<u32>) {
    match kind {
        0 => (LinuxSeccompAction::ScmpActAllow, None),
        1 => (LinuxSeccompAction::ScmpActErrno, Some(errno)),
        _ => (LinuxSeccompAction::ScmpActKillProcess, None),
    }
}

/// The profile's architectures. x32 is among them where x86_64 is: libseccomp
/// otherwise kills its calls as a bad architecture, where the table answers
/// ENOSYS (which the exact filter then gives).
fn architectures(abis: &[Abi]) -> Vec<Arch> {
    let mut out: Vec<Arch> = abis.iter().map(|&a| arch(a)).collect();
    if abis.contains(&Abi::X86_64) {
        out.push(Arch::ScmpArchX32);
    }
    out
}

fn arch(abi: Abi) -> Arch {
    match abi {
        Abi::X86_64 => Arch::ScmpArchX86_64,
        Abi::I386 => Arch::ScmpArchX86,
        Abi::Aarch64 => Arch::ScmpArchAarch64,
        Abi::Arm => Arch::ScmpArchArm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::syscalls::consts::AF_PACKET;

    fn policy() -> SyscallPolicy {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/jails/hello.toml");
        let def = crate::load::load(&dir).expect("valid");
        crate::policy::compile(&def.jail, &crate::facts::HostFacts::example())
            .expect("runs")
            .syscalls
    }

    #[test]
    fn no_supervisor_answer_is_left() {
        let (table, replaced) = unsupervised(&policy());
        let any_notify = table.rules.iter().any(|r| {
            matches!(r.otherwise, Action::Notify(_)) || r.arms.iter().any(|a| matches!(a.then, Action::Notify(_)))
        });
        assert!(!any_notify);
        let reboot = replaced.iter().find(|u| u.notify == Notify::Reboot).expect("reboot");
        assert_eq!(reboot.calls, ["reboot"]);
        assert_eq!(reboot.now, Action::Errno(Errno::EPERM));
        // The rest of the table is untouched: socket(AF_PACKET) keeps its answer.
        let args = [u64::from(AF_PACKET), 2, 0, 0, 0, 0];
        let nr = Abi::X86_64.nr(Sysno::socket).unwrap();
        assert_eq!(
            table.decide(Abi::X86_64.audit_arch(), nr, &args),
            policy().decide(Abi::X86_64.audit_arch(), nr, &args)
        );
    }

    #[test]
    fn the_profile_denies_only_what_the_table_denies_for_every_argument() {
        let (table, _) = unsupervised(&policy());
        let out = outer(&table);
        let listed: BTreeMap<String, LinuxSeccompAction> = out
            .profile
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|s| s.names().iter().map(move |n| (n.clone(), s.action())))
            .collect();
        assert_eq!(listed.get("socket"), Some(&LinuxSeccompAction::ScmpActAllow));
        assert!(out.by_arguments.contains(&"socket"));
        assert_eq!(listed.get("init_module"), Some(&LinuxSeccompAction::ScmpActErrno));
        for need in INIT_NEEDS {
            assert_eq!(listed.get(*need), Some(&LinuxSeccompAction::ScmpActAllow), "{need}");
        }
        assert_eq!(out.profile.default_errno_ret(), Some(38));
    }
}
