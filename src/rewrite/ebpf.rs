//! The eBPF the rewrite programs are made of: the instruction format, the few
//! opcodes they use, and an assembler with forward labels.
//!
//! Unlike the classic BPF of seccomp filters, eBPF has registers, a stack and
//! helper calls; the kernel's verifier checks each program at load time.

use std::fmt;

/// One instruction (`struct bpf_insn`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register (low nibble) and source register (high nibble).
    pub regs: u8,
    /// Signed offset: of a memory access, or of a jump in instructions.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src.0 << 4) | dst.0,
            off,
            imm,
        }
    }

    /// The destination register.
    pub fn dst(&self) -> Reg {
        Reg(self.regs & 0xf)
    }

    /// The source register.
    pub fn src(&self) -> Reg {
        Reg(self.regs >> 4)
    }
}

/// A register: r0 (return value), r1 to r5 (arguments), r6 to r9 (kept
/// across calls), r10 (frame pointer, read-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg(pub u8);

/// r0: return values.
pub const R0: Reg = Reg(0);
/// r1: the context on entry, the first argument of a call.
pub const R1: Reg = Reg(1);
/// r2.
pub const R2: Reg = Reg(2);
/// r3.
pub const R3: Reg = Reg(3);
/// r4.
pub const R4: Reg = Reg(4);
/// r6: kept across calls.
pub const R6: Reg = Reg(6);
/// r10: the frame pointer.
pub const R10: Reg = Reg(10);

/// Opcodes.
pub mod op {
    /// `dst = *(u32 *)(src + off)`.
    pub const LDX_W: u8 = 0x61;
    /// `dst = *(u64 *)(src + off)`.
    pub const LDX_DW: u8 = 0x79;
    /// `dst = *(u8 *)(src + off)`.
    pub const LDX_B: u8 = 0x71;
    /// `*(u32 *)(dst + off) = imm`.
    pub const ST_W: u8 = 0x62;
    /// `dst = imm` (64-bit, sign-extended).
    pub const MOV64_K: u8 = 0xb7;
    /// `dst = src` (64-bit).
    pub const MOV64_X: u8 = 0xbf;
    /// `dst = (u32) src`: zero-extends.
    pub const MOV32_X: u8 = 0xbc;
    /// `dst += imm` (64-bit).
    pub const ADD64_K: u8 = 0x07;
    /// `dst &= imm` (32-bit).
    pub const AND32_K: u8 = 0x54;
    /// `dst = htobe16(dst)`, with imm 16.
    pub const BE: u8 = 0xdc;
    /// `goto +off`.
    pub const JA: u8 = 0x05;
    /// `if (u32) dst == imm goto +off`.
    pub const JEQ32_K: u8 = 0x16;
    /// `if (u32) dst != imm goto +off`.
    pub const JNE32_K: u8 = 0x56;
    /// `if (u32) dst >= imm goto +off` (unsigned).
    pub const JGE32_K: u8 = 0x36;
    /// Calls helper `imm`.
    pub const CALL: u8 = 0x85;
    /// Returns r0.
    pub const EXIT: u8 = 0x95;
}

/// Helper functions the programs call.
pub mod helper {
    /// `u64 bpf_get_current_uid_gid(void)`: gid << 32 | uid.
    pub const GET_CURRENT_UID_GID: i32 = 15;
    /// `long bpf_bind(ctx, struct sockaddr *addr, int len)`: binds the socket
    /// of a connect hook.
    pub const BIND: i32 = 64;
    /// `long bpf_skb_load_bytes(skb, u32 offset, void *to, u32 len)`: copies
    /// packet bytes, from the network header in a cgroup skb program.
    pub const SKB_LOAD_BYTES: i32 = 26;
}

impl fmt::Debug for Insn {
    /// Reads like `bpftool prog dump xlated`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, s, off, imm) = (self.dst().0, self.src().0, self.off, self.imm);
        match self.code {
            op::LDX_W => write!(f, "w{d} = *(u32 *)(r{s} {off:+})"),
            op::LDX_DW => write!(f, "r{d} = *(u64 *)(r{s} {off:+})"),
            op::LDX_B => write!(f, "w{d} = *(u8 *)(r{s} {off:+})"),
            op::ST_W => write!(f, "*(u32 *)(r{d} {off:+}) = {:#x}", imm as u32),
            op::MOV64_K => write!(f, "r{d} = {imm}"),
            op::MOV64_X => write!(f, "r{d} = r{s}"),
            op::MOV32_X => write!(f, "w{d} = w{s}"),
            op::ADD64_K => write!(f, "r{d} += {imm}"),
            op::AND32_K => write!(f, "w{d} &= {:#x}", imm as u32),
            op::BE => write!(f, "r{d} = be{imm} r{d}"),
            op::JA => write!(f, "goto {off:+}"),
            op::JEQ32_K => write!(f, "if w{d} == {:#x} goto {off:+}", imm as u32),
            op::JNE32_K => write!(f, "if w{d} != {:#x} goto {off:+}", imm as u32),
            op::JGE32_K => write!(f, "if w{d} >= {imm} goto {off:+}"),
            op::CALL => write!(f, "call {imm}"),
            op::EXIT => write!(f, "exit"),
            code => write!(f, "op {code:#x} r{d} r{s} {off} {imm}"),
        }
    }
}

/// A jump target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Builds a program; jumps name labels, resolved by [`Asm::finish`].
#[derive(Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// Where each label points, once placed.
    marks: Vec<Option<usize>>,
    /// Jumps to patch: instruction index and label.
    fixups: Vec<(usize, Label)>,
}

/// The value of a 32-bit word as the program compares it: the bytes as they
/// lie in memory (network order for addresses), read as a native u32.
pub fn word(bytes: [u8; 4]) -> i32 {
    i32::from_ne_bytes(bytes)
}

impl Asm {
    /// A new label.
    pub fn label(&mut self) -> Label {
        self.marks.push(None);
        Label(self.marks.len() - 1)
    }

    /// Places `l` at the next instruction.
    pub fn mark(&mut self, l: Label) {
        self.marks[l.0] = Some(self.insns.len());
    }

    fn emit(&mut self, insn: Insn) {
        self.insns.push(insn);
    }

    /// `dst = *(u32 *)(src + off)`.
    pub fn load32(&mut self, dst: Reg, src: Reg, off: i16) {
        self.emit(Insn::new(op::LDX_W, dst, src, off, 0));
    }

    /// `dst = *(u8 *)(src + off)`.
    pub fn load8(&mut self, dst: Reg, src: Reg, off: i16) {
        self.emit(Insn::new(op::LDX_B, dst, src, off, 0));
    }

    /// `dst = *(u64 *)(src + off)`.
    pub fn load64(&mut self, dst: Reg, src: Reg, off: i16) {
        self.emit(Insn::new(op::LDX_DW, dst, src, off, 0));
    }

    /// `*(u32 *)(dst + off) = imm`.
    pub fn store32(&mut self, dst: Reg, off: i16, imm: i32) {
        self.emit(Insn::new(op::ST_W, dst, R0, off, imm));
    }

    /// `dst = imm`.
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.emit(Insn::new(op::MOV64_K, dst, R0, 0, imm));
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.emit(Insn::new(op::MOV64_X, dst, src, 0, 0));
    }

    /// `dst = (u32) src`.
    pub fn mov32(&mut self, dst: Reg, src: Reg) {
        self.emit(Insn::new(op::MOV32_X, dst, src, 0, 0));
    }

    /// `dst += imm`.
    pub fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.emit(Insn::new(op::ADD64_K, dst, R0, 0, imm));
    }

    /// `dst &= imm` (32-bit).
    pub fn and32(&mut self, dst: Reg, imm: i32) {
        self.emit(Insn::new(op::AND32_K, dst, R0, 0, imm));
    }

    /// `dst = htobe16(dst)`: a port as stored becomes a number.
    pub fn be16(&mut self, dst: Reg) {
        self.emit(Insn::new(op::BE, dst, R0, 0, 16));
    }

    /// A conditional jump on the low 32 bits of `dst`.
    pub fn jump32(&mut self, code: u8, dst: Reg, imm: i32, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.emit(Insn::new(code, dst, R0, 0, imm));
    }

    /// `goto to`.
    pub fn goto(&mut self, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.emit(Insn::new(op::JA, R0, R0, 0, 0));
    }

    /// Calls a helper.
    pub fn call(&mut self, helper: i32) {
        self.emit(Insn::new(op::CALL, R0, R0, 0, helper));
    }

    /// `return imm`.
    pub fn ret(&mut self, imm: i32) {
        self.mov_imm(R0, imm);
        self.emit(Insn::new(op::EXIT, R0, R0, 0, 0));
    }

    /// Resolves the jumps. Every label must be placed after its jumps: the
    /// programs only jump forward, so the verifier never meets a loop.
    pub fn finish(mut self) -> Vec<Insn> {
        for (at, label) in std::mem::take(&mut self.fixups) {
            let target = self.marks[label.0].expect("every jumped-to label is placed");
            assert!(target > at, "the rewrite programs only jump forward");
            self.insns[at].off = i16::try_from(target - at - 1).expect("programs are short");
        }
        self.insns
    }
}
