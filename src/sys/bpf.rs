//! Loading the address-rewrite programs and attaching them to a jail's
//! cgroup with bpf(2). Once attached, a program stays with the cgroup until
//! the cgroup is removed: teardown needs nothing more.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::rewrite::{Program, ebpf::Insn};

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const LOG_SIZE: usize = 64 * 1024;

/// `union bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a properly laid out bpf_attr prefix of size_of::<T>()
    // bytes; the kernel zero-extends the rest.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Loads one program; on the verifier's refusal the error carries its log.
pub fn load(program: &Program) -> io::Result<OwnedFd> {
    let license = CString::new("ISC").expect("static");
    let mut name = [0u8; 16];
    let label = format!("sysjail_{}", program.hook.name());
    name[..label.len().min(15)].copy_from_slice(&label.as_bytes()[..label.len().min(15)]);
    let mut attr = ProgLoad {
        prog_type: program.hook.prog_type(),
        insn_cnt: program.insns.len() as u32,
        insns: program.insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: program.hook.attach_type(),
        ..ProgLoad::default()
    };
    const _: () = assert!(std::mem::size_of::<Insn>() == 8);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: a new descriptor from the kernel, ours alone.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) => {
            // Load again with the verifier's log, to say why.
            let mut log = vec![0u8; LOG_SIZE];
            attr.log_level = 1;
            attr.log_size = LOG_SIZE as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last: Vec<&str> = text.lines().rev().take(4).collect();
            Err(io::Error::new(
                e.kind(),
                format!(
                    "the kernel refused the {} program ({e}): {}",
                    program.hook.name(),
                    last.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Attaches a loaded program to the cgroup open at `cgroup`.
pub fn attach(cgroup: BorrowedFd<'_>, program: BorrowedFd<'_>, attach_type: u32) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type,
        ..ProgAttach::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}

/// Loads `programs` and attaches each to the cgroup directory `cgroup`.
pub fn attach_all(cgroup: &std::path::Path, programs: &[Program]) -> io::Result<()> {
    let dir = std::fs::File::open(cgroup)?;
    let dir = OwnedFd::from(dir);
    for p in programs {
        let fd = load(p)?;
        use std::os::fd::AsFd;
        attach(dir.as_fd(), fd.as_fd(), p.hook.attach_type()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("attaching {} to {}: {e}", p.hook.name(), cgroup.display()),
            )
        })?;
    }
    Ok(())
}
