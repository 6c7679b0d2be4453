//! `sysjail doctor`: what this kernel offers, and which promises depend on
//! what is missing. Pure: it reads [`HostFacts`].

use std::fmt;

use crate::facts::{Hierarchy, HostFacts};

/// One feature of the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Present.
    pub ok: bool,
    /// What it is, and what was seen.
    pub what: String,
    /// When missing: which promises are weakened, and how.
    pub consequence: Option<String>,
    /// Without it no jail can start.
    pub essential: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  {}  {}", if self.ok { "ok     " } else { "missing" }, self.what)?;
        if let (false, Some(c)) = (self.ok, &self.consequence) {
            write!(f, "\n           -> {c}")?;
        }
        Ok(())
    }
}

fn finding(ok: bool, what: impl Into<String>, consequence: &str) -> Finding {
    Finding {
        ok,
        what: what.into(),
        consequence: Some(consequence.to_string()),
        essential: false,
    }
}

/// Everything doctor reports.
pub fn examine(facts: &HostFacts) -> Vec<Finding> {
    let mut out = vec![user_namespaces(facts)];
    out.extend(kernel_calls(facts));
    out.push(landlock(facts.landlock_abi));
    out.extend(cgroups(facts));
    out.push(ping(facts));
    out.extend(launcher(facts));
    out
}

/// User namespaces: without them no jail starts.
fn user_namespaces(facts: &HostFacts) -> Finding {
    Finding {
        ok: facts.max_user_namespaces.is_none_or(|n| n > 0),
        what: format!(
            "user namespaces{}",
            facts
                .max_user_namespaces
                .map(|n| format!(" (user.max_user_namespaces = {n})"))
                .unwrap_or_default()
        ),
        consequence: Some("no jail can start: jail root must not be host root".into()),
        essential: true,
    }
}

/// The system calls of the kernel that sysjail relies on.
fn kernel_calls(facts: &HostFacts) -> [Finding; 4] {
    [
        finding(
            facts.seccomp_notify,
            "seccomp filters with user notification",
            "jails with addresses cannot listen on never-bound sockets, and `allow = [\"rlimit\"]` and the denial \
             log refuse to start",
        ),
        finding(
            !facts.abis.is_empty(),
            format!(
                "ABIs filtered: {}",
                facts.abis.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
            ),
            "this architecture has no syscall table: no jail can start",
        ),
        finding(
            facts.mount_setattr,
            "id-mapped mounts (mount_setattr, Linux 5.12)",
            "a dedicated root needs --no-idmap: its files keep their host owners inside the jail",
        ),
        finding(
            facts.pidfd_getfd,
            "pidfd_getfd (Linux 5.6)",
            "the supervisor cannot act on a jail's sockets: listen(2) of a never-bound socket fails with ENOSYS",
        ),
    ]
}

fn landlock(abi: Option<u8>) -> Finding {
    match abi {
        None => finding(
            false,
            "Landlock",
            "the file system is confined by the mount namespace alone",
        ),
        Some(v) if v < 6 => finding(
            false,
            format!("Landlock ABI {v} (scopes need 6)"),
            "a jailed process may signal processes outside its Landlock domain, and a host-stack jail may \
             connect to the host's abstract unix sockets",
        ),
        Some(v) => finding(
            true,
            format!("Landlock ABI {v}: file system rules, signal and abstract socket scopes"),
            "",
        ),
    }
}

/// The controllers that enforce [limits], and the socket-address programs.
fn cgroups(facts: &HostFacts) -> [Finding; 2] {
    let cg = &facts.cgroup;
    let place = |c: &str| match cg.controller(c) {
        Some(Hierarchy::V2) => format!("{c} (v2)"),
        Some(Hierarchy::V1(_)) => format!("{c} (v1)"),
        None => format!("no {c}"),
    };
    let controllers: Vec<String> = ["memory", "pids", "cpu"].iter().map(|c| place(c)).collect();
    let all = ["memory", "pids", "cpu"].iter().all(|c| cg.controller(c).is_some());
    [
        finding(
            all && facts.root,
            format!(
                "cgroups: {}{}",
                cg.v2
                    .as_ref()
                    .map(|p| format!("unified at {}; ", p.display()))
                    .unwrap_or_default(),
                controllers.join(", ")
            ),
            if facts.root {
                "[limits] that need a missing controller make the jail refuse to start"
            } else {
                "without root, [limits] memory, pids and cpu make a jail refuse to start"
            },
        ),
        finding(
            facts.root && cg.v2.is_some(),
            "cgroup socket-address and packet programs (root, unified hierarchy)",
            "host-stack jails with addresses refuse to start: nothing else confines their sockets without a race; \
             private-network jails start, their binds to the wildcard not rewritten",
        ),
    ]
}

fn ping(facts: &HostFacts) -> Finding {
    let ping = facts.ping_groups.is_some_and(|(first, last)| first <= last);
    finding(
        ping,
        format!(
            "ICMP echo sockets for unprivileged groups (net.ipv4.ping_group_range = {})",
            facts
                .ping_groups
                .map_or("unreadable".to_string(), |(a, b)| format!("{a} {b}"))
        ),
        "ping fails with EACCES in host-stack jails: there no group may open ICMP echo sockets, and raw \
         sockets never work on the host's stack (jail root holds CAP_NET_RAW over its own user namespace \
         only, so `allow = [\"raw-sockets\"]` takes effect in private-network jails alone)",
    )
}

/// What the launcher itself holds: CAP_SYS_RESOURCE, and root.
fn launcher(facts: &HostFacts) -> [Finding; 2] {
    let resource = crate::policy::Capability::SYS_RESOURCE.number();
    [
        finding(
            facts.has_cap(resource),
            "CAP_SYS_RESOURCE of the launcher",
            "`allow = [\"rlimit\"]` cannot raise hard limits: only a holder of CAP_SYS_RESOURCE over the host can, \
             and this launcher (a container, most likely) lacks it",
        ),
        Finding {
            ok: facts.root,
            what: if facts.root {
                "running as root".into()
            } else {
                format!("running as uid {}", facts.uid)
            },
            consequence: Some(
                "one id maps into the jail, supplementary groups cannot be set, no cgroup limits, no id-mapped \
                 roots, and the host's / comes with its submounts"
                    .into(),
            ),
            essential: false,
        },
    ]
}

/// Host settings that decide how long a start waits for the kernel. sysjail
/// reads them and never changes them: they are the administrator's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Every v1 hierarchy of memory, pids and cpu is mounted with
    /// `favordynmods` (or the kernel was booted with `cgroup_favordynmods=true`).
    pub favordynmods: bool,
    /// `/sys/kernel/rcu_expedited`, when readable.
    pub rcu_expedited: Option<bool>,
}

/// What makes a start wait here, and the host settings that would remove the
/// wait; empty when nothing does.
pub fn start_up(facts: &HostFacts, tuning: &Tuning) -> Vec<String> {
    let v1: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| matches!(facts.cgroup.controller(c), Some(Hierarchy::V1(_))))
        .collect();
    if v1.is_empty() || !facts.root || tuning.favordynmods || tuning.rcu_expedited == Some(true) {
        return Vec::new();
    }
    vec![format!(
        "a jail with [limits] on {} (cgroup v1) waits for an RCU grace period (about 10 ms) when its init \
         is moved into them; sysjail overlaps the wait with the jail's setup. To remove it: boot with \
         cgroup_favordynmods=true (Linux 6.7; v1 hierarchies cannot be remounted with favordynmods), or \
         echo 1 > /sys/kernel/rcu_expedited (every synchronize_rcu of the host gets faster and costlier), or \
         put the controllers on cgroup v2, where a jail enters its cgroup at clone. Jails without [limits] \
         never wait",
        v1.join(", ")
    )]
}

/// The start-up hints as text, after the findings.
pub fn render_start_up(hints: &[String]) -> String {
    hints.iter().map(|h| format!("\nstart-up: {h}\n")).collect()
}

/// The report as text; the exit status is 1 when no jail can start.
pub fn render(facts: &HostFacts, findings: &[Finding]) -> (String, i32) {
    let mut out = format!(
        "sysjail doctor: Linux {} on {}\n\n",
        facts.kernel,
        std::env::consts::ARCH
    );
    for f in findings {
        out.push_str(&format!("{f}\n"));
    }
    let weakened = findings.iter().filter(|f| !f.ok).count();
    let fatal = findings.iter().any(|f| !f.ok && f.essential);
    out.push('\n');
    out.push_str(&match (fatal, weakened) {
        (true, _) => "jails cannot start on this machine.\n".to_string(),
        (false, 0) => "every promise of sysjail holds on this machine.\n".to_string(),
        (false, n) => format!(
            "{n} feature{} missing: the promises above are weakened here.\n",
            if n == 1 { " is" } else { "s are" }
        ),
    });
    (out, i32::from(fatal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_machine_weakens_nothing() {
        let facts = HostFacts::example();
        let findings = examine(&facts);
        let (text, code) = render(&facts, &findings);
        assert_eq!(code, 0);
        assert!(
            text.ends_with("every promise of sysjail holds on this machine.\n"),
            "{text}"
        );
    }

    #[test]
    fn v1_limits_get_a_start_up_hint_unless_the_host_is_tuned() {
        let mut facts = HostFacts::example();
        let hybrid = facts.cgroup.v1.contains_key("memory");
        facts.cgroup.v1.insert("memory".into(), "/sys/fs/cgroup/memory".into());
        facts.root = true;
        let slow = Tuning::default();
        let hints = start_up(&facts, &slow);
        assert_eq!(hints.len(), 1, "hybrid example: {hybrid}");
        assert!(hints[0].contains("cgroup_favordynmods=true"), "{hints:?}");
        assert!(hints[0].contains("rcu_expedited"), "{hints:?}");
        let tuned = Tuning {
            favordynmods: true,
            ..Tuning::default()
        };
        assert!(start_up(&facts, &tuned).is_empty());
        let expedited = Tuning {
            rcu_expedited: Some(true),
            ..Tuning::default()
        };
        assert!(start_up(&facts, &expedited).is_empty());
        facts.cgroup.v1.clear();
        assert!(start_up(&facts, &slow).is_empty(), "cgroup v2 only: no wait");
    }

    #[test]
    fn missing_features_name_what_they_weaken() {
        let mut facts = HostFacts::example();
        facts.landlock_abi = Some(3);
        facts.seccomp_notify = false;
        facts.max_user_namespaces = Some(0);
        let findings = examine(&facts);
        let (text, code) = render(&facts, &findings);
        assert_eq!(code, 1);
        assert!(text.contains("missing  Landlock ABI 3 (scopes need 6)"), "{text}");
        assert!(text.contains("abstract unix sockets"), "{text}");
        assert!(text.contains("jails cannot start on this machine."), "{text}");
    }
}
