//! What sysjail's seccomp filter costs a jailed process per system call,
//! against no filter and against libseccomp compiling the same rules.
//!
//!     sudo apt-get install libseccomp-dev     # the benchmark's alone
//!     cargo bench --bench seccomp
//!
//! The rules are the policy of `examples/jails/hello.toml` for the machine's
//! ABIs. libseccomp gets them rule by rule (`seccomp_rule_add_array`), at its
//! default optimization (rules in priority order) and at level 2 (a binary
//! tree over syscall numbers, libseccomp 2.5). Each filter runs in a child
//! process of its own, since a filter cannot be removed; the calls are timed
//! in rounds and the median round is reported. Beside the time, each filter
//! is run through sysjail's BPF interpreter: the instructions executed per
//! call, and whether libseccomp's program decides as the table does.

use std::ffi::{CString, c_char, c_int, c_void};
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::time::Instant;

use sysjail::policy::syscalls::{Action, SyscallPolicy, Test};
use sysjail::seccomp::bpf::{Insn, SeccompData, interpret};
use sysjail::syscalls::Abi;

/// libseccomp, linked by this benchmark only.
#[allow(non_camel_case_types)]
mod ffi {
    use super::{c_char, c_int, c_void};

    #[repr(C)]
    pub struct scmp_arg_cmp {
        pub arg: u32,
        pub op: c_int,
        pub datum_a: u64,
        pub datum_b: u64,
    }

    pub const SCMP_CMP_EQ: c_int = 4;
    pub const SCMP_CMP_MASKED_EQ: c_int = 7;
    pub const SCMP_FLTATR_ACT_BADARCH: c_int = 2;
    pub const SCMP_FLTATR_CTL_OPTIMIZE: c_int = 8;
    pub const SCMP_ARCH_X86: u32 = 0x4000_0003;

    #[link(name = "seccomp")]
    unsafe extern "C" {
        pub fn seccomp_init(def_action: u32) -> *mut c_void;
        pub fn seccomp_release(ctx: *mut c_void);
        pub fn seccomp_arch_add(ctx: *mut c_void, arch: u32) -> c_int;
        pub fn seccomp_attr_set(ctx: *mut c_void, attr: c_int, value: u32) -> c_int;
        pub fn seccomp_syscall_resolve_name(name: *const c_char) -> c_int;
        pub fn seccomp_rule_add_array(
            ctx: *mut c_void,
            action: u32,
            syscall: c_int,
            arg_cnt: u32,
            arg_array: *const scmp_arg_cmp,
        ) -> c_int;
        pub fn seccomp_export_bpf(ctx: *const c_void, fd: c_int) -> c_int;
        pub fn seccomp_load(ctx: *const c_void) -> c_int;
    }
}

/// A libseccomp comparison: argument, operator, two data.
type Cmp = (u8, c_int, u64, u64);

/// One libseccomp rule: an action when all comparisons hold.
struct LibRule {
    call: String,
    action: u32,
    cmps: Vec<Cmp>,
}

fn encode(a: Action) -> u32 {
    sysjail::seccomp::encode(a, sysjail::seccomp::Options::default())
}

/// The table as libseccomp can take it: two filters, as systemd stacks them.
///
/// libseccomp has no first-match arms and no per-call fall-through: for one
/// call, an unconditional rule overrides its conditional ones, each argument
/// is compared once per rule, and there is no "not in". So `main` (default:
/// the table's default) holds each call's fall-through unconditionally, or,
/// where the fall-through denies (personality), the allowing arms; `deny`
/// (default: allow) holds the denying arms, `in` sets and `any-bits` masks
/// expanded to one rule per value or bit. The kernel runs both and keeps the
/// stricter answer. Arms testing `not in` are lost, and listed.
struct Translation {
    main: Vec<LibRule>,
    deny: Vec<LibRule>,
    lost: Vec<String>,
}

/// One arm's conditions as alternatives of libseccomp comparisons, or None.
fn alternatives(when: &[sysjail::policy::syscalls::Cond]) -> Option<Vec<Vec<Cmp>>> {
    let mut alternatives: Vec<Vec<Cmp>> = vec![Vec::new()];
    for cond in when {
        let options: Vec<Cmp> = match &cond.test {
            Test::Eq(v) => vec![(cond.arg, ffi::SCMP_CMP_EQ, u64::from(*v), 0)],
            Test::In(vs) => vs
                .iter()
                .map(|v| (cond.arg, ffi::SCMP_CMP_EQ, u64::from(*v), 0))
                .collect(),
            Test::MaskedEq { mask, value } => {
                vec![(cond.arg, ffi::SCMP_CMP_MASKED_EQ, u64::from(*mask), u64::from(*value))]
            }
            Test::AnyBits(mask) => (0..32)
                .filter(|b| mask & (1 << b) != 0)
                .map(|b| (cond.arg, ffi::SCMP_CMP_MASKED_EQ, 1u64 << b, 1u64 << b))
                .collect(),
            Test::Zero64 => vec![(cond.arg, ffi::SCMP_CMP_EQ, 0, 0)],
            Test::NotIn(_) => return None,
        };
        alternatives = alternatives
            .iter()
            .flat_map(|prefix| {
                options.iter().map(move |o| {
                    let mut v = prefix.clone();
                    v.push(*o);
                    v
                })
            })
            .collect();
    }
    Some(alternatives)
}

fn translate(policy: &SyscallPolicy) -> Translation {
    let mut t = Translation {
        main: Vec::new(),
        deny: Vec::new(),
        lost: Vec::new(),
    };
    for rule in &policy.rules {
        let call = rule.call.to_string();
        let falls_through_to_deny = rule.otherwise != Action::Allow && !rule.arms.is_empty();
        for arm in &rule.arms {
            let Some(alternatives) = alternatives(&arm.when) else {
                t.lost.push(format!(
                    "{call}({:?})",
                    arm.when.iter().map(|c| &c.test).collect::<Vec<_>>()
                ));
                continue;
            };
            let into = if arm.then == Action::Allow {
                &mut t.main
            } else {
                &mut t.deny
            };
            into.extend(alternatives.into_iter().map(|cmps| LibRule {
                call: call.clone(),
                action: encode(arm.then),
                cmps,
            }));
        }
        if !falls_through_to_deny && rule.otherwise != policy.default {
            t.main.push(LibRule {
                call,
                action: encode(rule.otherwise),
                cmps: Vec::new(),
            });
        }
    }
    t
}

/// A libseccomp filter context with the translated rules.
struct LibFilter(*mut c_void);

impl LibFilter {
    fn new(default: u32, policy: &SyscallPolicy, rules: &[LibRule], optimize: u32, abis: &[Abi]) -> LibFilter {
        // SAFETY: the libseccomp API, used as documented; ctx is released in Drop.
        unsafe {
            let ctx = ffi::seccomp_init(default);
            assert!(!ctx.is_null(), "seccomp_init");
            if abis.contains(&Abi::I386) {
                assert_eq!(ffi::seccomp_arch_add(ctx, ffi::SCMP_ARCH_X86), 0);
            }
            assert_eq!(
                ffi::seccomp_attr_set(ctx, ffi::SCMP_FLTATR_ACT_BADARCH, encode(policy.unknown_abi)),
                0
            );
            if optimize > 1 {
                assert_eq!(ffi::seccomp_attr_set(ctx, ffi::SCMP_FLTATR_CTL_OPTIMIZE, optimize), 0);
            }
            for r in rules {
                let name = CString::new(r.call.as_str()).unwrap();
                let nr = ffi::seccomp_syscall_resolve_name(name.as_ptr());
                if nr == -1 {
                    continue; // a name libseccomp 2.5 does not know
                }
                let cmps: Vec<ffi::scmp_arg_cmp> = r
                    .cmps
                    .iter()
                    .map(|&(arg, op, a, b)| ffi::scmp_arg_cmp {
                        arg: u32::from(arg),
                        op,
                        datum_a: a,
                        datum_b: b,
                    })
                    .collect();
                // libseccomp refuses a rule that conflicts with an earlier
                // one; the earlier stays, as in sysjail's first match.
                let rc = ffi::seccomp_rule_add_array(ctx, r.action, nr, cmps.len() as u32, cmps.as_ptr());
                if rc != 0 && std::env::var_os("BENCH_DEBUG").is_some() {
                    eprintln!("rule_add {} {:#x} {:?}: {rc}", r.call, r.action, r.cmps);
                }
            }
            LibFilter(ctx)
        }
    }

    /// The program libseccomp would load.
    fn program(&self) -> Vec<Insn> {
        let path = std::env::temp_dir().join(format!("sysjail-bench-bpf-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        // SAFETY: exports into a file we own.
        assert_eq!(unsafe { ffi::seccomp_export_bpf(self.0, file.as_raw_fd()) }, 0);
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }

    fn load(&self) {
        // SAFETY: loads the filter into this (child) process.
        assert_eq!(unsafe { ffi::seccomp_load(self.0) }, 0, "seccomp_load");
    }
}

impl Drop for LibFilter {
    fn drop(&mut self) {
        // SAFETY: ctx came from seccomp_init.
        unsafe { ffi::seccomp_release(self.0) }
    }
}

/// A call to time: its name, number and arguments.
struct Call {
    what: &'static str,
    nr: libc::c_long,
    args: [u64; 3],
}

const CALLS: &[Call] = &[
    // Allowed whatever its arguments: the kernel's action cache skips the filter.
    Call {
        what: "getppid (allowed by number)",
        nr: libc::SYS_getppid,
        args: [0, 0, 0],
    },
    // Allowed after argument tests: the filter runs every time.
    Call {
        what: "ioctl(-1, FIONREAD) (argument tests)",
        nr: libc::SYS_ioctl,
        args: [u64::MAX, libc::FIONREAD, 0],
    },
    Call {
        what: "personality(query) (argument tests)",
        nr: libc::SYS_personality,
        args: [0xffff_ffff, 0, 0],
    },
    // Denied by the filter: no kernel work after it.
    // setns(-1) has no effect without a filter either (EBADF).
    Call {
        what: "setns(-1, 0) (denied, EPERM)",
        nr: libc::SYS_setns,
        args: [u64::MAX, 0, 0],
    },
];

const ROUNDS: usize = 15;
const PER_ROUND: usize = 200_000;

/// A child process with one filter installed, timing calls on request.
struct Child {
    pid: libc::pid_t,
    commands: std::fs::File,
    results: std::fs::File,
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the two ends, ours from here on.
    unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) }
}

impl Child {
    /// Forks a child that runs `install`, then answers each call index it
    /// reads with the nanoseconds per call of a round and the call's errno.
    fn spawn(install: impl FnOnce()) -> Child {
        let (cmd_r, cmd_w) = pipe();
        let (res_r, res_w) = pipe();
        // SAFETY: the benchmark is single-threaded; the child only computes,
        // uses its pipes and exits.
        match unsafe { libc::fork() } {
            0 => {
                drop((cmd_w, res_r));
                // One CPU for every child: they take turns, on equal terms.
                // SAFETY: a zeroed cpu_set_t with one bit set, for ourselves.
                unsafe {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(0, &mut set);
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                }
                install();
                let (mut cmd_r, mut res_w) = (cmd_r, res_w);
                let mut index = [0u8; 1];
                while cmd_r.read_exact(&mut index).is_ok() {
                    let c = &CALLS[usize::from(index[0])];
                    // SAFETY: the calls of CALLS fail or return without effect.
                    let r = unsafe { libc::syscall(c.nr, c.args[0], c.args[1], c.args[2]) };
                    let errno = if r < 0 {
                        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
                    } else {
                        0
                    };
                    let start = Instant::now();
                    for _ in 0..PER_ROUND {
                        // SAFETY: as above.
                        black_box(unsafe { libc::syscall(c.nr, black_box(c.args[0]), c.args[1], c.args[2]) });
                    }
                    let ns = start.elapsed().as_nanos() as f64 / PER_ROUND as f64;
                    let mut out = ns.to_ne_bytes().to_vec();
                    out.extend(errno.to_ne_bytes());
                    if res_w.write_all(&out).is_err() {
                        break;
                    }
                }
                // SAFETY: leave without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            pid if pid > 0 => Child {
                pid,
                commands: cmd_w,
                results: res_r,
            },
            _ => panic!("fork failed"),
        }
    }

    fn round(&mut self, call: usize) -> (f64, i32) {
        self.commands.write_all(&[call as u8]).expect("the child runs");
        let mut b = [0u8; 12];
        self.results.read_exact(&mut b).expect("the child answers");
        (
            f64::from_ne_bytes(b[..8].try_into().unwrap()),
            i32::from_ne_bytes(b[8..].try_into().unwrap()),
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: our child; closing its command pipe ends it first.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Times every call under every child, rounds interleaved so that drift of
/// the machine spreads over all of them; the median round per cell.
fn time_all(children: &mut [Child]) -> Vec<Vec<(f64, i32)>> {
    let mut samples: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); CALLS.len()]; children.len()];
    let mut errnos = vec![vec![0; CALLS.len()]; children.len()];
    for round in 0..ROUNDS {
        for call in 0..CALLS.len() {
            for k in 0..children.len() {
                let which = (k + round) % children.len();
                let (ns, errno) = children[which].round(call);
                samples[which][call].push(ns);
                errnos[which][call] = errno;
            }
        }
    }
    samples
        .into_iter()
        .zip(errnos)
        .map(|(per_call, errnos)| {
            per_call
                .into_iter()
                .zip(errnos)
                .map(|(mut v, e)| {
                    v.sort_by(f64::total_cmp);
                    (v[v.len() / 2], e)
                })
                .collect()
        })
        .collect()
}

fn no_new_privs() {
    // SAFETY: prctl without pointers.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, 0);
}

/// What the kernel returns for a stack of filters (in install order): each
/// runs, the strictest action wins, the newest filter on a tie. Also the
/// instructions executed, summed.
fn run_stack(stack: &[&[Insn]], data: &SeccompData) -> Option<(u32, usize)> {
    let mut best: Option<u32> = None;
    let mut steps = 0;
    for program in stack.iter().rev() {
        let run = interpret(program, data)?;
        steps += run.steps;
        // The kernel compares actions as signed values (KILL_PROCESS lowest).
        let action = |r: u32| (r & 0xffff_0000) as i32;
        if best.is_none_or(|b| action(run.ret) < action(b)) {
            best = Some(run.ret);
        }
    }
    best.map(|b| (b, steps))
}

/// Instructions executed for one of CALLS.
fn steps(stack: &[&[Insn]], call: &Call) -> String {
    let data = SeccompData {
        nr: call.nr as u32,
        arch: Abi::native()[0].audit_arch(),
        instruction_pointer: 0,
        args: [call.args[0], call.args[1], call.args[2], 0, 0, 0],
    };
    run_stack(stack, &data).map_or("?".into(), |(_, steps)| steps.to_string())
}

/// Samples inputs over every number of every ABI and compares the stack's
/// answer with the table's: (agreeing, sampled, calls that disagree).
fn agreement(policy: &SyscallPolicy, stack: &[&[Insn]], abis: &[Abi]) -> (usize, usize, Vec<String>) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut same, mut total) = (0, 0);
    let mut differ = std::collections::BTreeSet::new();
    for abi in abis {
        for &(call, nr) in abi.calls() {
            // The constants the call's rule tests, per argument: half the
            // samples draw from them, so that every arm is reached. Upper
            // halves stay zero, where 64-bit and 32-bit comparisons agree.
            let mut constants: [Vec<u64>; 6] = Default::default();
            for arm in policy.rule(call).iter().flat_map(|r| &r.arms) {
                for c in &arm.when {
                    let values: Vec<u32> = match &c.test {
                        Test::Eq(v) => vec![*v],
                        Test::In(vs) | Test::NotIn(vs) => vs.clone(),
                        Test::MaskedEq { mask, value } => vec![*value, *value | !*mask, *value ^ *mask],
                        Test::AnyBits(m) => vec![*m, 0, m & m.wrapping_neg()],
                        Test::Zero64 => vec![0],
                    };
                    constants[c.arg as usize].extend(values.into_iter().map(u64::from));
                }
            }
            for _ in 0..64 {
                let args: [u64; 6] = std::array::from_fn(|i| {
                    let r = next();
                    let pool = &constants[i];
                    if !pool.is_empty() && r % 2 == 0 {
                        pool[(r >> 1) as usize % pool.len()]
                    } else if r % 4 == 1 {
                        r % 64
                    } else {
                        (r >> 8) as u32 as u64
                    }
                });
                let data = SeccompData {
                    nr,
                    arch: abi.audit_arch(),
                    instruction_pointer: 0,
                    args,
                };
                total += 1;
                match run_stack(stack, &data) {
                    Some((ret, _)) if ret == encode(policy.decide(data.arch, nr, &args)) => same += 1,
                    _ => {
                        differ.insert(format!("{}/{}", call, abi.name()));
                    }
                }
            }
        }
    }
    (same, total, differ.into_iter().collect())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // nothing for `cargo test --benches` to list
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/jails/hello.toml");
    let def = sysjail::load::load(&example).expect("the example is valid");
    let facts = sysjail::sys::probe::probe();
    let policy = sysjail::policy::compile(&def.jail, &facts).expect("runs on this host");
    let table = &policy.syscalls;
    let abis = table.abis.clone();
    let ours = sysjail::seccomp::compile(table, &abis, sysjail::seccomp::Options::default()).expect("compiles");
    let t = translate(table);
    let allow = encode(Action::Allow);
    let libs: Vec<(&str, LibFilter, LibFilter)> = [("libseccomp default", 1), ("libseccomp tree", 2)]
        .into_iter()
        .map(|(label, opt)| {
            (
                label,
                LibFilter::new(encode(table.default), table, &t.main, opt, &abis),
                LibFilter::new(allow, table, &t.deny, opt, &abis),
            )
        })
        .collect();
    let programs: Vec<(Vec<Insn>, Vec<Insn>)> = libs.iter().map(|(_, m, d)| (m.program(), d.program())).collect();
    let ours_stack: Vec<&[Insn]> = vec![&ours.program];
    let stacks: Vec<(&str, Vec<&[Insn]>)> = std::iter::once(("sysjail", ours_stack))
        .chain(
            libs.iter()
                .zip(&programs)
                .map(|((label, _, _), (m, d))| (*label, vec![&m[..], &d[..]])),
        )
        .collect();

    println!("seccomp per-call cost: the policy of examples/jails/hello.toml, ABIs {abis:?}");
    println!(
        "libseccomp: {} + {} rules in two filters; arms it cannot express (not in): {}",
        t.main.len(),
        t.deny.len(),
        if t.lost.is_empty() {
            "none".to_string()
        } else {
            t.lost.join(", ")
        }
    );
    for (label, stack) in &stacks {
        let (same, total, differ) = agreement(table, stack, &abis);
        let sizes: Vec<String> = stack.iter().map(|p| p.len().to_string()).collect();
        println!(
            "  {label:<20} {} instructions; decides as the table on {same} of {total} sampled inputs{}",
            sizes.join(" + "),
            if differ.is_empty() {
                String::new()
            } else {
                format!("; differs on {}", differ.join(" "))
            }
        );
    }

    let mut children = vec![
        Child::spawn(|| {}),
        Child::spawn(|| {
            no_new_privs();
            sysjail::sys::privs::install_filter(&ours.program, false).expect("install");
        }),
    ];
    for (_, main, deny) in &libs {
        children.push(Child::spawn(|| {
            main.load();
            deny.load();
        }));
    }
    let mut timed = time_all(&mut children);
    let none = timed.remove(0);

    let name = |e: i32| {
        if e == 0 {
            "ok".to_string()
        } else {
            let full = sysjail::sys::raw::errno_name(&std::io::Error::from_raw_os_error(e));
            full.split(' ').next().unwrap_or_default().to_string()
        }
    };
    println!();
    println!("ns per call, median of {ROUNDS} rounds of {PER_ROUND} calls; i: BPF instructions run");
    print!("{:<38} {:>16}", "call", "no filter");
    for (label, _) in &stacks {
        print!(" {label:>24}");
    }
    println!();
    for (i, call) in CALLS.iter().enumerate() {
        print!("{:<38} {:>7.1} {:<8}", call.what, none[i].0, name(none[i].1));
        for ((_, stack), times) in stacks.iter().zip(&timed) {
            let (t, e) = times[i];
            print!(
                " {:>7.1} {:<7} {:>4}i {:>+5.0}",
                t,
                name(e),
                steps(stack, call),
                t - none[i].0
            );
        }
        println!();
    }
    println!("(the last figure of each cell: ns added to the call without a filter)");
    regression_check(&stacks, &timed, &none);
}

/// The per-call cost must stay where it is: for every call, sysjail's filter
/// adds no more than libseccomp's default (Docker's kind of profile) adds in
/// this same run, with 10 ns of slack for noise. Fails the bench loudly
/// otherwise; a timed assertion never goes into `cargo test`.
fn regression_check(stacks: &[(&str, Vec<&[Insn]>)], timed: &[Vec<(f64, i32)>], none: &[(f64, i32)]) {
    let at = |label: &str| stacks.iter().position(|(l, _)| *l == label).expect("measured");
    let (ours, theirs) = (&timed[at("sysjail")], &timed[at("libseccomp default")]);
    let mut worse = Vec::new();
    for (i, call) in CALLS.iter().enumerate() {
        let (a, b) = (ours[i].0 - none[i].0, theirs[i].0 - none[i].0);
        if a > b + 10.0 {
            worse.push(format!("{}: sysjail +{a:.0} ns, libseccomp +{b:.0} ns", call.what));
        }
    }
    if worse.is_empty() {
        println!("regression check: every call costs sysjail's filter no more than libseccomp's default");
    } else {
        eprintln!("REGRESSION: sysjail's filter costs more than libseccomp's default on:");
        for w in &worse {
            eprintln!("  {w}");
        }
        std::process::exit(1);
    }
}
