use super::bpf::{SeccompData, interpret};
use super::*;
use crate::config::{HostFiles, load_text};
use crate::diag::SourceMap;
use crate::model::validate;
use crate::policy::syscalls::{Arm, Errno, consts};
use crate::policy::{self, Why};
use crate::syscalls::Sysno;

fn policy_of(text: &str) -> SyscallPolicy {
    let mut sources = SourceMap::new();
    let loaded = load_text("t.toml".as_ref(), text, &mut sources, &HostFiles);
    let v = validate(&loaded);
    // A host that runs every ABI, so that the table covers them all.
    let facts = crate::facts::HostFacts {
        abis: Abi::ALL.to_vec(),
        ..crate::facts::HostFacts::example()
    };
    let jail = v.jail.unwrap_or_else(|| panic!("{:?} {:?}", loaded.diags, v.diags));
    policy::compile(&jail, &facts).expect("runs there").syscalls
}

const PLAIN: &str = "path = \"/\"\ncommand = [\"x\"]\n";
const EVERYTHING: &str = "path = \"/\"\ncommand = [\"x\"]\nallow = [\"ipc\", \"raw-sockets\", \"all-domains\", \"chflags\", \"rlimit\"]\n[network]\nmode = \"host\"\nipv4 = [\"192.0.2.1\"]\nipv6 = [\"2001:db8::1\"]\n";
const V4_ONLY: &str =
    "path = \"/\"\ncommand = [\"x\"]\nallow = [\"raw-sockets\"]\n[network]\nmode = \"host\"\nipv4 = [\"192.0.2.1\"]\n";

/// A small deterministic generator: tests must not flake.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Argument vectors that hit every comparison of every rule: each constant the
/// rules test, alone, with the upper half set, with neighbours, and random ones.
fn argument_vectors(policy: &SyscallPolicy, rng: &mut XorShift) -> Vec<[u64; 6]> {
    let mut near = Test::In(vec![0, 1, 2, 3, u32::MAX]).edges();
    for c in policy.rules.iter().flat_map(|r| &r.arms).flat_map(|a| &a.when) {
        near.extend(c.test.edges());
    }
    let mut out = Vec::new();
    for &c in &near {
        for high in [0u64, 1 << 32, 0xffff_ffff_0000_0000] {
            let v = u64::from(c) | high;
            out.push([v, v, v, 0, 0, 0]);
            out.push([v, 0, 0, 0, 0, 0]);
            out.push([0, v, 0, 0, 0, 0]);
            out.push([0, 0, v, 0, 0, 0]);
        }
    }
    for _ in 0..64 {
        let pick = |rng: &mut XorShift| {
            let c = near[(rng.next() % near.len() as u64) as usize];
            if rng.next().is_multiple_of(2) {
                u64::from(c)
            } else {
                rng.next()
            }
        };
        out.push([pick(rng), pick(rng), pick(rng), pick(rng), pick(rng), pick(rng)]);
    }
    out
}

fn check_agreement(policy: &SyscallPolicy, abis: &[Abi], options: Options) -> usize {
    let filter = compile(policy, abis, options).unwrap();
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let vectors = argument_vectors(policy, &mut rng);
    let mut checked = 0;
    for &abi in abis {
        let max = abi.calls().last().unwrap().1;
        let mut numbers: Vec<u32> = (0..=max.min(1100) + 64).collect();
        numbers.extend([
            0x0f_0000,
            0x0f_0005,
            0x4000_0000,
            0x4000_0001,
            0x4000_0029,
            0x7fff_ffff,
            u32::MAX,
        ]);
        numbers.extend(abi.calls().iter().map(|&(_, nr)| nr));
        for nr in numbers {
            let conditional = abi
                .call(nr)
                .and_then(|c| policy.rule(c))
                .is_some_and(|r| !r.arms.is_empty());
            let vs: &[[u64; 6]] = if conditional { &vectors } else { &vectors[..2] };
            for args in vs {
                let data = SeccompData {
                    nr,
                    arch: abi.audit_arch(),
                    instruction_pointer: 0,
                    args: *args,
                };
                let got = interpret(&filter.program, &data).expect("program runs").ret;
                let want = encode(policy.decide(abi.audit_arch(), nr, args), options);
                assert_eq!(got, want, "{abi} nr {nr} ({:?}) args {args:x?}", abi.call(nr));
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn the_program_agrees_with_the_table_for_every_abi_and_number() {
    for text in [PLAIN, EVERYTHING, V4_ONLY] {
        let policy = policy_of(text);
        for abis in [&[Abi::X86_64, Abi::I386][..], &[Abi::Aarch64, Abi::Arm], &Abi::ALL] {
            for options in [Options::default(), Options { log_denials: true }] {
                assert!(check_agreement(&policy, abis, options) > 1000);
            }
        }
    }
}

/// What `program` answers for call `nr` of the ABI `arch` with `args`.
fn verdict(program: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let data = SeccompData {
        nr,
        arch,
        instruction_pointer: 0,
        args,
    };
    interpret(program, &data).expect("program runs").ret
}

#[test]
fn unknown_abis_are_killed_and_x32_rejected() {
    let policy = policy_of(PLAIN);
    let filter = compile(&policy, &[Abi::X86_64, Abi::I386], Options::default()).unwrap();
    let run = |arch, nr| verdict(&filter.program, arch, nr, [0; 6]);
    assert_eq!(
        run(Abi::Aarch64.audit_arch(), 0),
        ret::KILL_PROCESS,
        "an ABI not filtered is killed"
    );
    assert_eq!(run(0x1234, 0), ret::KILL_PROCESS);
    assert_eq!(run(Abi::X86_64.audit_arch(), 0x4000_0000), ret::ERRNO | 38, "x32 read");
    assert_eq!(run(Abi::X86_64.audit_arch(), 0), ret::ALLOW, "native read");
    assert_eq!(run(Abi::I386.audit_arch(), 3), ret::ALLOW, "i386 read is 3");
}

#[test]
fn upper_halves_of_int_arguments_do_not_matter() {
    // ioctl(fd, TIOCSTI | 1 << 32): the kernel reads an unsigned int request, so
    // the filter must too (CVE-2019-10063).
    let policy = policy_of(PLAIN);
    let filter = compile(&policy, &[Abi::X86_64, Abi::I386], Options::default()).unwrap();
    for abi in [Abi::X86_64, Abi::I386] {
        let nr = abi.nr(Sysno::ioctl).unwrap();
        for high in [0, 1u64 << 32, 0xdead_beef_0000_0000] {
            let args = [0, u64::from(consts::TIOCSTI) | high, 0, 0, 0, 0];
            let got = verdict(&filter.program, abi.audit_arch(), nr, args);
            assert_eq!(got, ret::ERRNO | 1, "{abi} TIOCSTI with high bits {high:#x}");
        }
        let nr = abi.nr(Sysno::socket).unwrap();
        let args = [u64::from(consts::AF_INET) | 1 << 40, 1, 0, 0, 0, 0];
        let got = verdict(&filter.program, abi.audit_arch(), nr, args);
        assert_eq!(got, ret::ERRNO | 97, "{abi} AF_INET with high bits, no IPv4 address");
    }
}

/// The kernel's seccomp_is_const_allow(): emulates the filter for one number
/// with unknown arguments and says whether it is allowed whatever they are.
fn kernel_cache_allows(program: &[Insn], arch: u32, nr: u32) -> bool {
    let mut pc = 0;
    let mut a: u32 = 0;
    loop {
        let insn = program[pc];
        pc = match insn.code {
            bpf::LD_W_ABS => {
                a = match insn.k {
                    0 => nr,
                    4 => arch,
                    _ => return false,
                };
                pc + 1
            }
            bpf::ALU_AND_K => {
                a &= insn.k;
                pc + 1
            }
            bpf::JA => pc + 1 + insn.k as usize,
            bpf::JEQ_K | bpf::JGE_K | bpf::JGT_K | bpf::JSET_K => {
                let taken = match insn.code {
                    bpf::JEQ_K => a == insn.k,
                    bpf::JGE_K => a >= insn.k,
                    bpf::JGT_K => a > insn.k,
                    _ => a & insn.k != 0,
                };
                pc + 1 + if taken { insn.jt } else { insn.jf } as usize
            }
            bpf::RET_K => return insn.k == ret::ALLOW,
            _ => return false,
        };
    }
}

#[test]
fn calls_allowed_whatever_their_arguments_are_decided_by_number_alone() {
    let policy = policy_of(PLAIN);
    let filter = compile(&policy, &[Abi::X86_64, Abi::I386], Options::default()).unwrap();
    for abi in [Abi::X86_64, Abi::I386] {
        for &(call, nr) in abi.calls() {
            let unconditional = policy
                .rule(call)
                .is_some_and(|r| r.arms.is_empty() && r.otherwise == Action::Allow);
            assert_eq!(
                kernel_cache_allows(&filter.program, abi.audit_arch(), nr),
                unconditional,
                "{abi} {call}: the kernel's action cache must skip the filter exactly for unconditional allows"
            );
        }
    }
}

#[test]
fn the_cost_grows_with_the_logarithm_of_the_rules() {
    let policy = policy_of(EVERYTHING);
    let filter = compile(&policy, &[Abi::X86_64, Abi::I386], Options::default()).unwrap();
    let ranges = ranges(&policy, Abi::X86_64, Options::default()).len();
    let bound = 4 + (usize::BITS - ranges.leading_zeros()) as usize + 1;
    let mut worst = 0;
    for &(call, nr) in Abi::X86_64.calls() {
        if policy.rule(call).is_some_and(|r| !r.arms.is_empty()) {
            continue;
        }
        let data = SeccompData {
            nr,
            arch: Abi::X86_64.audit_arch(),
            instruction_pointer: 0,
            args: [0; 6],
        };
        worst = worst.max(interpret(&filter.program, &data).unwrap().steps);
    }
    assert!(
        worst <= bound,
        "{ranges} ranges: worst path {worst} instructions, bound {bound}"
    );
    assert!(filter.program.len() < 1500, "{} instructions", filter.program.len());
}

#[test]
fn golden_program_of_a_small_policy() {
    // One ABI, one unconditional allow, one conditional rule: the exact output.
    let policy = SyscallPolicy {
        abis: vec![Abi::X86_64],
        default: Action::Errno(Errno::ENOSYS),
        x32: Action::Errno(Errno::ENOSYS),
        unknown_abi: Action::KillProcess,
        rules: vec![
            Rule {
                call: Sysno::read,
                arms: vec![],
                otherwise: Action::Allow,
                why: Why::Default("t"),
                lifted_by: None,
            },
            Rule {
                call: Sysno::socket,
                arms: vec![Arm {
                    when: vec![Cond {
                        arg: 0,
                        name: "domain",
                        kind: policy::syscalls::ArgKind::Domain,
                        test: Test::Eq(17),
                    }],
                    then: Action::Errno(Errno::EPROTONOSUPPORT),
                    why: Why::Default("t"),
                    lifted_by: None,
                }],
                otherwise: Action::Allow,
                why: Why::Default("t"),
                lifted_by: None,
            },
        ],
    };
    let filter = compile(&policy, &[Abi::X86_64], Options::default()).unwrap();
    let listing: Vec<String> = filter.program.iter().map(|i| format!("{i:?}")).collect();
    assert_eq!(
        listing,
        [
            "ld [4]",
            "jeq #0xc000003e +1 +0",
            "ret #0x80000000",
            "ld [0]",
            "jset #0x40000000 +0 +1",
            "ret #0x50026",
            "jge #0x29 +3 +0",
            "jge #0x1 +1 +0",
            "ret #0x7fff0000",
            "ret #0x50026",
            "jge #0x2a +4 +0",
            "ld [16]",
            "jeq #0x11 +0 +1",
            "ret #0x5005d",
            "ret #0x7fff0000",
            "ret #0x50026",
        ]
    );
    assert!(!filter.needs_listener);
}

#[test]
fn denial_logging_and_supervised_calls_need_a_listener() {
    let mut policy = policy_of(PLAIN);
    // reboot(2) is the supervisor's in every jail.
    assert!(
        compile(&policy, Abi::native(), Options::default())
            .unwrap()
            .needs_listener,
        "reboot"
    );
    let reboot = policy.rules.iter_mut().find(|r| r.call == Sysno::reboot).unwrap();
    reboot.otherwise = Action::Errno(Errno::EPERM);
    // So is i386's socketcall(SOCKET), where the kernel runs i386.
    let socketcall = policy.rules.iter_mut().find(|r| r.call == Sysno::socketcall).unwrap();
    socketcall.arms.clear();
    assert!(
        !compile(&policy, Abi::native(), Options::default())
            .unwrap()
            .needs_listener
    );
    assert!(
        compile(&policy, Abi::native(), Options { log_denials: true })
            .unwrap()
            .needs_listener
    );
    let policy = policy_of(EVERYTHING);
    assert!(
        compile(&policy, Abi::native(), Options::default())
            .unwrap()
            .needs_listener,
        "listen and rlimit"
    );
}
