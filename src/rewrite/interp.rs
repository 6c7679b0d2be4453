//! An interpreter for the rewrite programs, for the unit tests: it runs them
//! on a model of the kernel's context as the verifier describes it, and
//! refuses what the verifier would (a write to a read-only field, a read out
//! of bounds or of stack never written, an unknown opcode).

use super::ebpf::{Insn, helper, op};

/// Where the model's memories start.
const CTX: u64 = 0x1000;
const SOCK: u64 = 0x5000;
const STACK_TOP: u64 = 0x9000;
const STACK_SIZE: u64 = 512;

/// The world a program runs in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct World {
    /// `struct bpf_sock_addr` (72 bytes) or, for post_bind, `struct bpf_sock`.
    pub ctx: Vec<u8>,
    /// `struct bpf_sock` behind `ctx->sk`.
    pub sock: Vec<u8>,
    /// What `bpf_get_current_uid_gid` returns as uid.
    pub uid: u32,
    /// The sockaddrs passed to `bpf_bind`.
    pub binds: Vec<Vec<u8>>,
    /// Fields of `ctx` a program may write, as (offset, length).
    pub writable: Vec<(usize, usize)>,
    /// The packet of a cgroup skb program, from its network header: what
    /// `bpf_skb_load_bytes` reads.
    pub packet: Vec<u8>,
}

/// The stack, and which of its bytes were written (the verifier refuses a
/// read of the others).
struct Stack {
    bytes: Vec<u8>,
    written: Vec<bool>,
}

impl Stack {
    fn mark(&mut self, addr: u64, len: usize) {
        let at = (addr - (STACK_TOP - STACK_SIZE)) as usize;
        self.written[at..at + len].fill(true);
    }

    fn written(&self, addr: u64, len: usize) -> bool {
        let at = (addr - (STACK_TOP - STACK_SIZE)) as usize;
        self.written[at..at + len].iter().all(|&w| w)
    }
}

fn region(addr: u64, len: usize, world: &mut World, stack: &mut Stack) -> Result<(*mut u8, String), String> {
    let len = len as u64;
    let (base, mem): (u64, &mut [u8]) = if (CTX..CTX + world.ctx.len() as u64).contains(&addr) {
        (CTX, &mut world.ctx)
    } else if (SOCK..SOCK + world.sock.len() as u64).contains(&addr) {
        (SOCK, &mut world.sock)
    } else if (STACK_TOP - STACK_SIZE..STACK_TOP).contains(&addr) {
        (STACK_TOP - STACK_SIZE, &mut stack.bytes)
    } else {
        return Err(format!("access at {addr:#x} outside every region"));
    };
    if addr + len > base + mem.len() as u64 {
        return Err(format!("access of {len} bytes at {addr:#x} runs past its region"));
    }
    let name = match base {
        CTX => "ctx",
        SOCK => "sock",
        _ => "stack",
    };
    Ok((mem[(addr - base) as usize..].as_mut_ptr(), name.to_string()))
}

/// Runs `prog`; returns r0 at exit, or why the verifier would refuse.
pub fn run(prog: &[Insn], world: &mut World) -> Result<u64, String> {
    let mut r = [0u64; 11];
    r[1] = CTX;
    r[10] = STACK_TOP;
    let mut stack = Stack {
        bytes: vec![0u8; STACK_SIZE as usize],
        written: vec![false; STACK_SIZE as usize],
    };
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let insn = *prog.get(pc).ok_or("fell off the end")?;
        let (d, s) = (insn.dst().0 as usize, insn.src().0 as usize);
        let imm = insn.imm as i64 as u64;
        let jump = |cond: bool| if cond { pc + 1 + insn.off as usize } else { pc + 1 };
        if d == 10 && !matches!(insn.code, op::ST_W) {
            return Err(format!("pc {pc}: r10 is read-only"));
        }
        pc = match insn.code {
            op::LDX_B | op::LDX_W | op::LDX_DW => {
                let len = match insn.code {
                    op::LDX_B => 1,
                    op::LDX_W => 4,
                    _ => 8,
                };
                let addr = r[s].wrapping_add(insn.off as i64 as u64);
                let (p, name) = region(addr, len, world, &mut stack)?;
                if name == "stack" && !stack.written(addr, len) {
                    return Err(format!("pc {pc}: reads stack never written"));
                }
                let mut b = [0u8; 8];
                // SAFETY: `region` checked that len bytes at p are in bounds.
                unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), len) };
                r[d] = if len == 1 {
                    u64::from(b[0])
                } else if len == 4 {
                    u64::from(u32::from_ne_bytes(b[..4].try_into().unwrap()))
                } else if name == "ctx" && addr == CTX + 64 {
                    SOCK // ctx->sk
                } else {
                    u64::from_ne_bytes(b)
                };
                pc + 1
            }
            op::ST_W => {
                let addr = r[d].wrapping_add(insn.off as i64 as u64);
                let (p, name) = region(addr, 4, world, &mut stack)?;
                if name == "sock" {
                    return Err(format!("pc {pc}: writes the read-only socket"));
                }
                if name == "ctx" {
                    let off = (addr - CTX) as usize;
                    if !world.writable.iter().any(|&(o, l)| off >= o && off + 4 <= o + l) {
                        return Err(format!("pc {pc}: writes ctx offset {off}, which this hook may not"));
                    }
                }
                let b = (insn.imm as u32).to_ne_bytes();
                // SAFETY: `region` checked that 4 bytes at p are in bounds.
                unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, 4) };
                if name == "stack" {
                    stack.mark(addr, 4);
                }
                pc + 1
            }
            op::MOV64_K => {
                r[d] = imm;
                pc + 1
            }
            op::MOV64_X => {
                r[d] = r[s];
                pc + 1
            }
            op::MOV32_X => {
                r[d] = r[s] & 0xffff_ffff;
                pc + 1
            }
            op::ADD64_K => {
                r[d] = r[d].wrapping_add(imm);
                pc + 1
            }
            op::AND32_K => {
                r[d] = (r[d] & insn.imm as u32 as u64) & 0xffff_ffff;
                pc + 1
            }
            op::BE => {
                // Little-endian hosts swap; big-endian ones only truncate.
                let v = r[d] as u16;
                r[d] = u64::from(if cfg!(target_endian = "little") {
                    v.swap_bytes()
                } else {
                    v
                });
                pc + 1
            }
            op::JA => jump(true),
            op::JEQ32_K => jump(r[d] as u32 == insn.imm as u32),
            op::JNE32_K => jump(r[d] as u32 != insn.imm as u32),
            op::JGE32_K => jump(r[d] as u32 >= insn.imm as u32),
            op::CALL => {
                r[0] = match insn.imm {
                    helper::GET_CURRENT_UID_GID => u64::from(world.uid) | (1234 << 32),
                    helper::BIND => {
                        if r[1] != CTX {
                            return Err(format!("pc {pc}: bpf_bind without the context"));
                        }
                        let len = r[3] as usize;
                        let (p, name) = region(r[2], len, world, &mut stack)?;
                        if name != "stack" {
                            return Err(format!("pc {pc}: bpf_bind of memory not on the stack"));
                        }
                        let mut b = vec![0u8; len];
                        // SAFETY: `region` checked the bounds.
                        unsafe { std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), len) };
                        world.binds.push(b);
                        0
                    }
                    helper::SKB_LOAD_BYTES => {
                        if r[1] != CTX {
                            return Err(format!("pc {pc}: bpf_skb_load_bytes without the context"));
                        }
                        let (off, len) = (r[2] as usize, r[4] as usize);
                        if !(1..=STACK_SIZE as usize).contains(&len) {
                            return Err(format!("pc {pc}: bpf_skb_load_bytes of {len} bytes"));
                        }
                        let (p, name) = region(r[3], len, world, &mut stack)?;
                        if name != "stack" {
                            return Err(format!("pc {pc}: bpf_skb_load_bytes into memory not on the stack"));
                        }
                        match world.packet.get(off..off + len) {
                            Some(bytes) => {
                                // SAFETY: `region` checked the bounds.
                                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, len) };
                                stack.mark(r[3], len);
                                0
                            }
                            // -EFAULT, as the kernel does past the packet's end.
                            None => (-14i64) as u64,
                        }
                    }
                    h => return Err(format!("pc {pc}: helper {h} is not one the programs use")),
                };
                // Calls clobber r1 to r5.
                for reg in &mut r[1..=5] {
                    *reg = 0xdead;
                }
                pc + 1
            }
            op::EXIT => return Ok(r[0]),
            code => return Err(format!("pc {pc}: opcode {code:#x}")),
        };
    }
    Err("ran 10000 instructions".into())
}

/// The verifier refuses a program with an instruction no path reaches, or a
/// path that falls off the end.
pub fn check_reachable(prog: &[Insn]) -> Result<(), String> {
    let mut seen = vec![false; prog.len()];
    let mut todo = vec![0usize];
    while let Some(pc) = todo.pop() {
        let insn = prog.get(pc).ok_or(format!("a path falls off the end at {pc}"))?;
        if std::mem::replace(&mut seen[pc], true) {
            continue;
        }
        let target = (pc as i64 + 1 + i64::from(insn.off)) as usize;
        match insn.code {
            op::EXIT => {}
            op::JA => todo.push(target),
            op::JEQ32_K | op::JNE32_K | op::JGE32_K => todo.extend([pc + 1, target]),
            _ => todo.push(pc + 1),
        }
    }
    match seen.iter().position(|s| !s) {
        Some(pc) => Err(format!("unreachable insn {pc}")),
        None => Ok(()),
    }
}
