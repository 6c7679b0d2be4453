//! The table `sysjail policy` prints for a host is the filter `up` installs
//! there: for made-up hosts whose tables differ (rootless, root without
//! cgroup2, root with cgroup2), the printed JSON is the plan's policy, and the
//! plan's seccomp program decides every rule of it, on every ABI, as the
//! table (and its text) says.

use std::path::Path;
use std::process::Command;

use sysjail::facts::{HostFacts, HostKind};
use sysjail::plan::{self, JailStep};
use sysjail::policy::syscalls::{Action, Rule, Test};
use sysjail::seccomp::bpf::{SeccompData, interpret};
use sysjail::seccomp::{self, bpf::Insn};

/// Jails whose tables depend on the host.
const JAILS: &[(&str, &str)] = &[
    ("plain", "name = \"plain\"\npath = \"/\"\ncommand = [\"/bin/true\"]\n"),
    (
        "private",
        "name = \"private\"\npath = \"/\"\ncommand = [\"/bin/true\"]\nallow = [\"rlimit\", \"ipc\"]\n\
         [network]\nmode = \"private\"\nipv4 = [\"127.0.0.2\"]\nipv6 = [\"::1\"]\n",
    ),
    (
        "everything",
        "name = \"everything\"\npath = \"/\"\ncommand = [\"/bin/true\"]\n\
         allow = [\"ipc\", \"raw-sockets\", \"all-domains\", \"chflags\", \"rlimit\"]\n",
    ),
];

const KINDS: [(HostKind, &str); 3] = [
    (HostKind::Rootless, "rootless"),
    (HostKind::RootCgroup1, "root-cgroup1"),
    (HostKind::RootCgroup2, "root-cgroup2"),
];

fn printed_json(file: &Path, kind: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sysjail"))
        .args(["policy", "--format", "json", "--host", kind])
        .arg(file)
        .output()
        .expect("run sysjail");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn program_of(plan: &plan::LaunchPlan) -> &[Insn] {
    plan.jail
        .iter()
        .find_map(|s| match s {
            JailStep::Seccomp { program, .. } => Some(program.as_slice()),
            _ => None,
        })
        .expect("every plan installs a filter")
}

/// Argument vectors that hit every comparison of a rule, with and without
/// the upper half of the registers set.
fn vectors(rule: &Rule) -> Vec<[u64; 6]> {
    let mut near = Test::In(vec![0, 1, 2, 3, u32::MAX]).edges();
    for c in rule.arms.iter().flat_map(|a| &a.when) {
        near.extend(c.test.edges());
    }
    let mut out = Vec::new();
    for &a in &near {
        for high in [0u64, 1 << 32] {
            let v = u64::from(a) | high;
            out.push([v, 0, 0, 0, 0, 0]);
            out.push([0, v, 0, 0, 0, 0]);
            out.push([0, 0, v, 0, 0, 0]);
            out.push([0, 0, 0, v, 0, 0]);
        }
        // Pairs, for rules whose arms test two arguments.
        for &b in &near {
            out.push([u64::from(a), u64::from(b), 0, 0, 0, 0]);
            out.push([u64::from(a), 0, u64::from(b), 0, 0, 0]);
            out.push([u64::from(a), u64::from(b), u64::from(b), 0, 0, 0]);
        }
    }
    out
}

/// The outcomes the text shows for a conditional rule, in order: each arm's,
/// then the `else`.
fn printed_outcomes(text: &str, rule: &Rule) -> Vec<String> {
    let head = format!("\n  {}\n", rule.call);
    let at = text
        .find(&head)
        .unwrap_or_else(|| panic!("{} is not printed", rule.call))
        + head.len();
    text[at..]
        .lines()
        .take(rule.arms.len() + 1)
        .map(|l| {
            let item = l.split(" # ").next().unwrap_or(l);
            item.rsplit("-> ").next().unwrap_or("").trim().to_string()
        })
        .collect()
}

#[test]
fn the_printed_table_is_the_installed_filter_on_every_kind_of_host() {
    let dir = std::env::temp_dir().join(format!("sysjail-policy-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut setrlimit = Vec::new();
    for (name, text) in JAILS {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        let def = sysjail::load::load(&file).expect("valid");
        for (kind, kind_name) in KINDS {
            let facts = HostFacts::of_kind(kind);
            let policy = sysjail::policy::compile(&def.jail, &facts).expect("runs there");
            // What `sysjail policy` prints for that host is this table...
            assert_eq!(
                printed_json(&file, kind_name),
                serde_json::to_value(&policy).unwrap(),
                "{name} on {kind_name}"
            );
            // ...and the plan carries it out unchanged.
            let options = plan::Options {
                id_base: 0x7001_0000,
                veth: "sj1".into(),
                ..plan::Options::default()
            };
            let plan = plan::build(&policy, &facts, &options).expect("plannable");
            assert_eq!(plan.policy, policy, "{name} on {kind_name}: the plan edited the table");
            let program = program_of(&plan);
            let table = &policy.syscalls;
            let text = sysjail::policy::render_text(&policy);
            for rule in &table.rules {
                if !rule.arms.is_empty() {
                    let mut want: Vec<String> = rule.arms.iter().map(|a| a.then.to_string()).collect();
                    want.push(rule.otherwise.to_string());
                    assert_eq!(
                        printed_outcomes(&text, rule),
                        want,
                        "{name} on {kind_name}: {}",
                        rule.call
                    );
                }
                for &abi in &table.abis {
                    let Some(nr) = abi.nr(rule.call) else { continue };
                    for args in vectors(rule) {
                        let data = SeccompData {
                            nr,
                            arch: abi.audit_arch(),
                            instruction_pointer: 0,
                            args,
                        };
                        let got = interpret(program, &data).expect("program runs").ret;
                        let want = seccomp::encode(rule.decide(&args).0, seccomp::Options::default());
                        assert_eq!(got, want, "{name} on {kind_name}: {abi} {} args {args:x?}", rule.call);
                    }
                }
            }
            if *name == "everything" {
                setrlimit.push(table.rule(sysjail::syscalls::Sysno::setrlimit).unwrap().otherwise);
            }
        }
    }
    // The hosts differ where the table says they do: without
    // CAP_SYS_RESOURCE the kernel refuses a raise, with it the supervisor
    // carries it out.
    assert_eq!(
        setrlimit,
        [
            Action::Allow,
            Action::Notify(sysjail::policy::Notify::Rlimit),
            Action::Notify(sysjail::policy::Notify::Rlimit),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
