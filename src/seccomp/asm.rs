//! The checked intermediate form: instructions with symbolic jump targets,
//! assembled into classic BPF.
//!
//! Conditional jumps in classic BPF reach at most 255 instructions ahead; the
//! assembler turns any that reach further into a short jump over an unconditional
//! `ja`, whose offset is 32 bits, and repeats until every offset fits.

use super::bpf::{self, Insn};

/// A jump target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

/// One instruction of the intermediate form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A = seccomp_data word at this offset.
    Load(u32),
    /// A &= k.
    And(u32),
    /// Conditional jump: opcode (JEQ/JGT/JGE/JSET), operand, targets.
    Jump {
        /// BPF opcode.
        code: u16,
        /// Compared against A.
        k: u32,
        /// Taken when the condition holds.
        then: Label,
        /// Taken otherwise.
        otherwise: Label,
    },
    /// Unconditional jump.
    Goto(Label),
    /// Return.
    Ret(u32),
    /// Marks where a label points; emits nothing.
    Mark(Label),
}

/// Builds a program in the intermediate form.
#[derive(Default)]
pub struct Asm {
    ops: Vec<Op>,
    labels: u32,
}

/// Assembly failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AsmError {
    /// A label is used but never placed.
    #[error("label {0} is used but never placed")]
    Unplaced(u32),
    /// A jump goes backwards, which BPF cannot express.
    #[error("a jump to label {0} goes backwards")]
    Backwards(u32),
    /// The kernel takes at most 4096 instructions.
    #[error("the program has {0} instructions; the kernel takes at most 4096")]
    TooLong(usize),
}

impl Asm {
    /// A new label.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels)
    }

    /// Appends an op.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Places a label here.
    pub fn mark(&mut self, l: Label) {
        self.ops.push(Op::Mark(l));
    }

    /// Conditional jump.
    pub fn jump(&mut self, code: u16, k: u32, then: Label, otherwise: Label) {
        self.ops.push(Op::Jump {
            code,
            k,
            then,
            otherwise,
        });
    }

    /// Assembles into BPF.
    pub fn assemble(self) -> Result<Vec<Insn>, AsmError> {
        // Which conditional jumps need the long form; grows until stable.
        let mut long = vec![false; self.ops.len()];
        loop {
            let pos = self.positions(&long);
            let mut changed = false;
            for (i, op) in self.ops.iter().enumerate() {
                if let Op::Jump { then, otherwise, .. } = op
                    && !long[i]
                {
                    let from = pos.at[i] + 1;
                    let fits = |l: &Label| pos.of(*l).is_some_and(|to| to >= from && to - from <= 255);
                    if !(fits(then) && fits(otherwise)) {
                        long[i] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                return self.emit(&long, &pos);
            }
        }
    }

    fn positions(&self, long: &[bool]) -> Positions {
        let mut at = Vec::with_capacity(self.ops.len());
        let mut labels = vec![None; self.labels as usize + 1];
        let mut n = 0usize;
        for (i, op) in self.ops.iter().enumerate() {
            at.push(n);
            n += match op {
                Op::Mark(Label(l)) => {
                    labels[*l as usize] = Some(n);
                    0
                }
                Op::Jump { .. } if long[i] => 3,
                _ => 1,
            };
        }
        Positions { at, labels, len: n }
    }

    fn emit(&self, long: &[bool], pos: &Positions) -> Result<Vec<Insn>, AsmError> {
        if pos.len > bpf::MAX_INSNS {
            return Err(AsmError::TooLong(pos.len));
        }
        let target = |l: Label, from: usize| -> Result<usize, AsmError> {
            let to = pos.of(l).ok_or(AsmError::Unplaced(l.0))?;
            to.checked_sub(from).ok_or(AsmError::Backwards(l.0))
        };
        let mut out = Vec::with_capacity(pos.len);
        for (i, op) in self.ops.iter().enumerate() {
            let here = out.len();
            match *op {
                Op::Load(k) => out.push(Insn::stmt(bpf::LD_W_ABS, k)),
                Op::And(k) => out.push(Insn::stmt(bpf::ALU_AND_K, k)),
                Op::Ret(k) => out.push(Insn::stmt(bpf::RET_K, k)),
                Op::Goto(l) => out.push(Insn::stmt(bpf::JA, target(l, here + 1)? as u32)),
                Op::Mark(_) => {}
                Op::Jump {
                    code,
                    k,
                    then,
                    otherwise,
                } if long[i] => {
                    // jcc k, +0, +1; ja then; ja otherwise
                    out.push(Insn::jump(code, k, 0, 1));
                    out.push(Insn::stmt(bpf::JA, target(then, here + 2)? as u32));
                    out.push(Insn::stmt(bpf::JA, target(otherwise, here + 3)? as u32));
                }
                Op::Jump {
                    code,
                    k,
                    then,
                    otherwise,
                } => {
                    let t = target(then, here + 1)?;
                    let f = target(otherwise, here + 1)?;
                    out.push(Insn::jump(code, k, t as u8, f as u8));
                }
            }
        }
        Ok(out)
    }
}

struct Positions {
    /// Position of each op's first instruction.
    at: Vec<usize>,
    /// Position of each label.
    labels: Vec<Option<usize>>,
    len: usize,
}

impl Positions {
    fn of(&self, l: Label) -> Option<usize> {
        self.labels.get(l.0 as usize).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::bpf::{SeccompData, interpret};

    #[test]
    fn near_jumps_are_single_instructions() {
        let mut a = Asm::default();
        let (yes, no) = (a.label(), a.label());
        a.push(Op::Load(0));
        a.jump(bpf::JEQ_K, 7, yes, no);
        a.mark(no);
        a.push(Op::Ret(0));
        a.mark(yes);
        a.push(Op::Ret(1));
        let p = a.assemble().unwrap();
        assert_eq!(
            p,
            vec![
                Insn::stmt(bpf::LD_W_ABS, 0),
                Insn::jump(bpf::JEQ_K, 7, 1, 0),
                Insn::stmt(bpf::RET_K, 0),
                Insn::stmt(bpf::RET_K, 1),
            ]
        );
    }

    #[test]
    fn far_jumps_get_the_long_form_and_still_land() {
        let mut a = Asm::default();
        let (far, near) = (a.label(), a.label());
        a.push(Op::Load(0));
        a.jump(bpf::JEQ_K, 7, far, near);
        a.mark(near);
        for _ in 0..300 {
            a.push(Op::And(0xffff_ffff));
        }
        a.push(Op::Ret(0));
        a.mark(far);
        a.push(Op::Ret(1));
        let p = a.assemble().unwrap();
        let run = |nr| {
            interpret(
                &p,
                &SeccompData {
                    nr,
                    arch: 0,
                    instruction_pointer: 0,
                    args: [0; 6],
                },
            )
            .unwrap()
            .ret
        };
        assert_eq!(run(7), 1);
        assert_eq!(run(8), 0);
        assert_eq!(p.len(), 1 + 3 + 300 + 2);
    }

    #[test]
    fn backwards_and_unplaced_labels_are_errors() {
        let mut a = Asm::default();
        let l = a.label();
        a.mark(l);
        a.push(Op::Goto(l));
        assert_eq!(a.assemble(), Err(AsmError::Backwards(1)));
        let mut a = Asm::default();
        let l = a.label();
        a.push(Op::Goto(l));
        assert_eq!(a.assemble(), Err(AsmError::Unplaced(1)));
    }
}
