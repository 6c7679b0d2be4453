//! Classic BPF as seccomp runs it: the instruction format, the few opcodes the
//! compiler emits, and an interpreter that tests run programs through.

use std::fmt;

/// One instruction (`struct sock_filter`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// `BPF_LD | BPF_W | BPF_ABS`: A = 32-bit word of seccomp_data at offset k.
pub const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`: A &= k.
pub const ALU_AND_K: u16 = 0x54;
/// `BPF_JMP | BPF_JA`: pc += k.
pub const JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
pub const JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`.
pub const JGE_K: u16 = 0x35;
/// `BPF_JMP | BPF_JSET | BPF_K`.
pub const JSET_K: u16 = 0x45;
/// `BPF_RET | BPF_K`.
pub const RET_K: u16 = 0x06;

/// The kernel refuses longer programs.
pub const MAX_INSNS: usize = 4096;

/// seccomp return values.
pub mod ret {
    /// Kill every thread of the process.
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    /// Fail the call with errno in the low 16 bits.
    pub const ERRNO: u32 = 0x0005_0000;
    /// Ask the supervisor (seccomp user notification).
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    /// Run the call.
    pub const ALLOW: u32 = 0x7fff_0000;
}

/// Offsets in `struct seccomp_data`.
pub mod data {
    /// The call's number.
    pub const NR: u32 = 0;
    /// AUDIT_ARCH of the ABI it came through.
    pub const ARCH: u32 = 4;
    /// Low 32 bits of argument `i` (little-endian).
    pub const fn arg_low(i: u8) -> u32 {
        16 + 8 * i as u32
    }
    /// High 32 bits of argument `i` (little-endian).
    pub const fn arg_high(i: u8) -> u32 {
        20 + 8 * i as u32
    }
}

impl Insn {
    /// An instruction without jumps.
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn { code, jt: 0, jf: 0, k }
    }

    /// A conditional jump.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }
}

impl fmt::Debug for Insn {
    /// Reads like `bpf_dbg` disassembly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            LD_W_ABS => write!(f, "ld [{}]", self.k),
            ALU_AND_K => write!(f, "and #{:#x}", self.k),
            JA => write!(f, "ja +{}", self.k),
            JEQ_K => write!(f, "jeq #{:#x} +{} +{}", self.k, self.jt, self.jf),
            JGT_K => write!(f, "jgt #{:#x} +{} +{}", self.k, self.jt, self.jf),
            JGE_K => write!(f, "jge #{:#x} +{} +{}", self.k, self.jt, self.jf),
            JSET_K => write!(f, "jset #{:#x} +{} +{}", self.k, self.jt, self.jf),
            RET_K => write!(f, "ret #{:#x}", self.k),
            code => write!(f, "op {code:#x} {} {} {:#x}", self.jt, self.jf, self.k),
        }
    }
}

/// What a filter sees of a call (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeccompData {
    /// The call's number.
    pub nr: u32,
    /// AUDIT_ARCH of its ABI.
    pub arch: u32,
    /// Instruction pointer (not used by sysjail's filters).
    pub instruction_pointer: u64,
    /// The six argument registers.
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, offset: u32) -> Option<u32> {
        Some(match offset {
            0 => self.nr,
            4 => self.arch,
            8 => self.instruction_pointer as u32,
            12 => (self.instruction_pointer >> 32) as u32,
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let arg = self.args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => return None,
        })
    }
}

/// The outcome of interpreting a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The return value.
    pub ret: u32,
    /// Instructions executed, the filter's cost for this call.
    pub steps: usize,
}

/// Runs a program as the kernel would; `None` for a program the kernel would
/// reject at load time or that reads out of bounds.
pub fn interpret(program: &[Insn], data: &SeccompData) -> Option<Run> {
    let mut pc = 0usize;
    let mut a: u32 = 0;
    let mut steps = 0;
    loop {
        let insn = program.get(pc)?;
        steps += 1;
        let jump = |cond: bool| pc + 1 + if cond { insn.jt } else { insn.jf } as usize;
        pc = match insn.code {
            LD_W_ABS => {
                a = data.word(insn.k)?;
                pc + 1
            }
            ALU_AND_K => {
                a &= insn.k;
                pc + 1
            }
            JA => pc + 1 + insn.k as usize,
            JEQ_K => jump(a == insn.k),
            JGT_K => jump(a > insn.k),
            JGE_K => jump(a >= insn.k),
            JSET_K => jump(a & insn.k != 0),
            RET_K => return Some(Run { ret: insn.k, steps }),
            _ => return None,
        };
    }
}
