use super::*;
use crate::facts::HostFacts;
use crate::policy::{Action, Policy};

fn jail(text: &str) -> Jail {
    let mut sources = crate::diag::SourceMap::new();
    let loaded = crate::config::load_text("t.toml".as_ref(), text, &mut sources, &crate::config::HostFiles);
    crate::model::validate(&loaded).jail.expect(text)
}

/// Jails of every kind the catalogue tells apart, with each `allow` entry
/// that lifts a promise and without.
fn jails() -> Vec<Jail> {
    let nets = [
        "",
        "[network]\nmode = \"private\"\nipv4 = [\"10.9.0.2\"]\n",
        "[network]\nmode = \"private\"\nipv6 = [\"fd00::2\"]\n",
        "[network]\nmode = \"private\"\nipv4 = [\"10.9.0.2\"]\nipv6 = [\"fd00::2\"]\n",
        "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\", \"127.0.0.2\"]\n",
    ];
    let allows: Vec<String> = std::iter::once(String::new())
        .chain(lifting_entries().iter().map(|a| format!("\"{a}\"")))
        .collect();
    let mut out = Vec::new();
    for allow in &allows {
        for net in nets {
            for user in ["", "user = \"nobody\"\n"] {
                out.push(jail(&format!(
                    "path = \"/\"\ncommand = [\"x\"]\n{user}allow = [{allow}]\n{net}"
                )));
            }
        }
    }
    out
}

fn decide(policy: &Policy, abi: Abi, call: Call) -> Option<Action> {
    let (nr, args) = match call {
        Call::Sys(s, args) => (abi.nr(s)?, args),
        Call::X86_64(nr) if abi == Abi::X86_64 => (nr, [0; 6]),
        Call::X86_64(_) => return None,
    };
    Some(policy.syscalls.decide(abi.audit_arch(), nr, &args))
}

#[test]
fn each_promise_is_the_compiled_policy_s_answer() {
    let facts = HostFacts::example();
    let mut wrong = Vec::new();
    for jail in jails() {
        let policy = crate::policy::compile(&jail, &facts).expect("compiles");
        let s = Setting::of(&jail, &policy.syscalls.abis, true);
        for p in CATALOGUE {
            let (Some(call), Some(_)) = (p.call, p.outcome(&s)) else {
                continue;
            };
            if let Call::Sys(sysno, _) = call {
                assert!(policy.syscalls.rule(sysno).is_some(), "{}: no rule for {sysno}", p.text);
            }
            let native = decide(&policy, Abi::X86_64, call).expect("x86_64 has every call");
            let allowed = p.lift.is_some_and(|l| s.allow.contains(&l.by));
            let ok = match (allowed, p.by, native) {
                (true, _, Action::Allow | Action::Notify(_)) => true,
                // Lifted past this rule, into another (the host stack's protocols).
                (true, _, Action::Errno(e)) => i32::from(e.number()) != p.errno,
                (false, By::Filter, Action::Errno(e)) => i32::from(e.number()) == p.errno,
                (false, By::Kernel, Action::Allow) => true,
                (false, By::Supervisor, Action::Notify(_)) => true,
                _ => false,
            };
            if !ok {
                wrong.push(format!(
                    "{:?} allow {:?}: {} ({:?}): the policy says {native}, the catalogue {:?} {}",
                    jail.network.mode, s.allow, p.text, p.native, p.by, p.errno
                ));
            }
            // i386's twins meet the same rule under i386's numbers.
            let i386 = decide(&policy, Abi::I386, call).filter(|_| !p.i386.is_empty());
            if let Some(i386) = i386.filter(|a| *a != native) {
                wrong.push(format!("{}: i386 {i386}, x86_64 {native}", p.text));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn name(check: &str) -> &str {
    check.split_once('=').map_or(check, |(n, _)| n)
}

#[test]
fn every_check_is_one_the_probe_knows() {
    use crate::selftest::probe::CHECKS;
    for p in CATALOGUE {
        assert!(!p.native.is_empty() || !p.i386.is_empty(), "{}: no check", p.text);
        for c in p.native.iter().chain(p.i386) {
            assert!(CHECKS.contains(&name(c)), "{}: the probe has no check {c}", p.text);
        }
        for c in p.i386 {
            assert!(c.starts_with("i386-"), "{c} is no i386 check");
        }
    }
    // And the other way: every i386 check of the probe tries a promise of
    // the catalogue, but for those the other tests use.
    const ELSEWHERE: &[&str] = &[
        "i386-reboot-halt",              // halts the jail: tests/promises.rs
        "i386-chmod-setuid",             // set-id files on host storage: tests/hostfs.rs
        "i386-create-setuid",            // set-id files on host storage: tests/hostfs.rs
        "i386-socketcall-bind",          // where binds end: tests/network.rs
        "i386-socketcall-listen",        // where listens end: the self-test's own
        "i386-socket-socketcall-listen", // the same on i386's socket(2)
        "i386-socketcall-inet6",         // IPv6 through socketcall: tests/network.rs
    ];
    for c in CHECKS.iter().filter(|c| c.starts_with("i386-")) {
        let used = CATALOGUE.iter().any(|p| p.i386.contains(c));
        assert!(used || ELSEWHERE.contains(c), "the probe's {c} is in no promise");
    }
}

#[test]
fn lifting_entries_are_the_old_manuals() {
    assert_eq!(
        lifting_entries(),
        [
            Allow::Ipc,
            Allow::AllDomains,
            Allow::RawSockets,
            Allow::Chflags,
            Allow::Rlimit
        ]
    );
}
