//! The seccomp filter compiler: a [`SyscallPolicy`] to classic BPF.
//!
//! Written here rather than taken from a crate: seccompiler allows one action per
//! filter and gives no listener descriptor, and libseccomp would bring a C build
//! and a linear chain of comparisons. The program this compiler emits:
//!
//! 1. dispatches on the ABI (`seccomp_data.arch`); an unknown one is killed;
//! 2. rejects x32 numbers on x86_64;
//! 3. finds the call's rule by a balanced binary search over number ranges, so
//!    its cost grows with the logarithm of the number of rules;
//! 4. decides a call allowed whatever its arguments from its number alone: the
//!    kernel's seccomp action cache then answers it without running the filter;
//! 5. tests arguments only for calls whose rule has conditions, on the low 32
//!    bits the kernel reads (and never on memory).
//!
//! The output is deterministic, and tests check it against the policy's own
//! [`SyscallPolicy::decide`] through [`bpf::interpret`] for every ABI and number.

pub mod asm;
pub mod bpf;

use asm::{Asm, AsmError, Label, Op};
use bpf::{Insn, data, ret};

use crate::policy::syscalls::{Action, Cond, Rule, SyscallPolicy, Test, X32_SYSCALL_BIT};
use crate::syscalls::Abi;

/// How actions become return values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Denied calls go to the supervisor, which logs them and answers with the
    /// errno; without it, the filter answers and costs nothing more.
    pub log_denials: bool,
}

/// A compiled filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The program.
    pub program: Vec<Insn>,
    /// Some action asks the supervisor: install with a listener descriptor.
    pub needs_listener: bool,
    /// The ABIs it dispatches on.
    pub abis: Vec<Abi>,
}

/// The seccomp return value of an action.
pub fn encode(action: Action, options: Options) -> u32 {
    match action {
        Action::Allow => ret::ALLOW,
        Action::Errno(_) if options.log_denials => ret::USER_NOTIF,
        Action::Errno(e) => ret::ERRNO | u32::from(e.number()),
        Action::KillProcess => ret::KILL_PROCESS,
        Action::Notify(_) => ret::USER_NOTIF,
    }
}

/// What the search finds for a range of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf<'p> {
    /// Decided by the number alone.
    Return(u32),
    /// Decided by the rule's argument tests.
    Args(&'p Rule),
}

/// Compiles the filter for `abis` (normally [`Abi::native`]).
pub fn compile(policy: &SyscallPolicy, abis: &[Abi], options: Options) -> Result<Filter, AsmError> {
    let mut a = Asm::default();
    let sections: Vec<(Abi, Label)> = abis.iter().map(|&abi| (abi, a.label())).collect();
    a.push(Op::Load(data::ARCH));
    for &(abi, label) in &sections {
        let next = a.label();
        a.jump(bpf::JEQ_K, abi.audit_arch(), label, next);
        a.mark(next);
    }
    a.push(Op::Ret(encode(policy.unknown_abi, options)));
    let mut needs_listener = false;
    for &(abi, label) in &sections {
        a.mark(label);
        a.push(Op::Load(data::NR));
        if abi == Abi::X86_64 {
            let (x32, native) = (a.label(), a.label());
            a.jump(bpf::JSET_K, X32_SYSCALL_BIT, x32, native);
            a.mark(x32);
            a.push(Op::Ret(encode(policy.x32, options)));
            a.mark(native);
        }
        let ranges = ranges(policy, abi, options);
        search(&mut a, &ranges, options);
        needs_listener |= ranges.iter().any(|(_, leaf)| match leaf {
            Leaf::Return(r) => *r == ret::USER_NOTIF,
            Leaf::Args(rule) => rule
                .arms
                .iter()
                .map(|arm| arm.then)
                .chain([rule.otherwise])
                .any(|act| encode(act, options) == ret::USER_NOTIF),
        });
    }
    needs_listener |= [policy.unknown_abi, policy.x32]
        .iter()
        .any(|&act| encode(act, options) == ret::USER_NOTIF);
    Ok(Filter {
        program: a.assemble()?,
        needs_listener,
        abis: abis.to_vec(),
    })
}

/// Splits the number space of an ABI into ranges with one leaf each, merging
/// neighbours that return the same value.
fn ranges<'p>(policy: &'p SyscallPolicy, abi: Abi, options: Options) -> Vec<(u32, Leaf<'p>)> {
    let default = Leaf::Return(encode(policy.default, options));
    let mut out: Vec<(u32, Leaf<'p>)> = vec![(0, default)];
    let push = |start: u32, leaf: Leaf<'p>, out: &mut Vec<(u32, Leaf<'p>)>| {
        let last = out.last_mut().expect("never empty");
        if last.1 == leaf {
            return;
        }
        if last.0 == start {
            last.1 = leaf;
            // Merge with the range before if that now matches.
            if out.len() >= 2 && out[out.len() - 2].1 == leaf {
                out.pop();
            }
        } else {
            out.push((start, leaf));
        }
    };
    for &(call, nr) in abi.calls() {
        let leaf = match policy.rule(call) {
            Some(rule) if rule.arms.is_empty() => Leaf::Return(encode(rule.otherwise, options)),
            Some(rule) => Leaf::Args(rule),
            None => default,
        };
        push(nr, leaf, &mut out);
        if nr < u32::MAX {
            push(nr + 1, default, &mut out);
        }
    }
    out
}

/// Emits a balanced search over `ranges` (sorted by start; the first starts at 0).
/// The accumulator holds the call number.
fn search(a: &mut Asm, ranges: &[(u32, Leaf<'_>)], options: Options) {
    if let [(_, leaf)] = ranges {
        match leaf {
            Leaf::Return(r) => a.push(Op::Ret(*r)),
            Leaf::Args(rule) => arms(a, rule, options),
        }
        return;
    }
    let mid = ranges.len() / 2;
    let (low, high) = (a.label(), a.label());
    a.jump(bpf::JGE_K, ranges[mid].0, high, low);
    a.mark(low);
    search(a, &ranges[..mid], options);
    a.mark(high);
    search(a, &ranges[mid..], options);
}

/// Emits a rule's argument tests: the first arm whose conditions hold decides.
fn arms(a: &mut Asm, rule: &Rule, options: Options) {
    for arm in &rule.arms {
        let next = a.label();
        for c in &arm.when {
            cond(a, c, next);
        }
        a.push(Op::Ret(encode(arm.then, options)));
        a.mark(next);
    }
    a.push(Op::Ret(encode(rule.otherwise, options)));
}

/// Emits a test that falls through when `c` holds and jumps to `fail` otherwise.
fn cond(a: &mut Asm, c: &Cond, fail: Label) {
    let pass = a.label();
    a.push(Op::Load(data::arg_low(c.arg)));
    match &c.test {
        Test::Eq(v) => a.jump(bpf::JEQ_K, *v, pass, fail),
        Test::In(vs) => member(a, vs, pass, fail),
        Test::NotIn(vs) => member(a, vs, fail, pass),
        Test::MaskedEq { mask, value } => {
            a.push(Op::And(*mask));
            a.jump(bpf::JEQ_K, *value, pass, fail);
        }
        Test::AnyBits(bits) => a.jump(bpf::JSET_K, *bits, pass, fail),
        Test::Zero64 => {
            let low_zero = a.label();
            a.jump(bpf::JEQ_K, 0, low_zero, fail);
            a.mark(low_zero);
            a.push(Op::Load(data::arg_high(c.arg)));
            a.jump(bpf::JEQ_K, 0, pass, fail);
        }
    }
    a.mark(pass);
}

/// Jumps to `yes` when A is one of `values` (sorted), else to `no`: a chain for a
/// few values, a binary search for many.
fn member(a: &mut Asm, values: &[u32], yes: Label, no: Label) {
    if values.len() <= 4 {
        for (i, &v) in values.iter().enumerate() {
            let next = if i + 1 == values.len() { no } else { a.label() };
            a.jump(bpf::JEQ_K, v, yes, next);
            if next != no {
                a.mark(next);
            }
        }
        if values.is_empty() {
            a.push(Op::Goto(no));
        }
        return;
    }
    let mid = values.len() / 2;
    let (low, high) = (a.label(), a.label());
    a.jump(bpf::JGE_K, values[mid], high, low);
    a.mark(low);
    member(a, &values[..mid], yes, no);
    a.mark(high);
    member(a, &values[mid..], yes, no);
}

#[cfg(test)]
mod tests;
