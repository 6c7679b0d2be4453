//! Privileges: rlimits, capability sets, Landlock and the seccomp filter.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use landlock::{
    ABI, Access as _, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope as LlScope,
};

use super::raw;
use crate::model::{AbsPath, Rlimit};
use crate::policy::landlock::{Access, Scope};
use crate::seccomp::bpf::Insn;

fn resource(r: Rlimit) -> libc::__rlimit_resource_t {
    match r {
        Rlimit::Nofile => libc::RLIMIT_NOFILE,
        Rlimit::Nproc => libc::RLIMIT_NPROC,
        Rlimit::Core => libc::RLIMIT_CORE,
        Rlimit::Fsize => libc::RLIMIT_FSIZE,
        Rlimit::Stack => libc::RLIMIT_STACK,
        Rlimit::As => libc::RLIMIT_AS,
        Rlimit::Msgqueue => libc::RLIMIT_MSGQUEUE,
    }
}

/// Sets the soft and hard limit.
pub fn setrlimit(r: Rlimit, value: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: lim is a valid rlimit for the call.
    if unsafe { libc::setrlimit(resource(r), &lim) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the calling thread's effective, permitted and inheritable sets.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and the two data words are what version 3 expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Drops every capability outside `keep` from the bounding set, makes `keep`
/// the permitted and effective sets, and clears the inheritable and ambient
/// sets. Init does this once; every process of the jail inherits it.
pub fn limit_capabilities(keep: u64) -> io::Result<()> {
    for cap in 0..64u64 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        match raw::prctl(libc::PR_CAPBSET_DROP, cap) {
            Ok(_) => {}
            // Past the kernel's last capability.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    capset(keep, keep, 0)?;
    // PR_CAP_AMBIENT is option 47, PR_CAP_AMBIENT_CLEAR_ALL its argument 4.
    // SAFETY: integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The newest Landlock ABI this build knows; the kernel's may be older, and the
/// crate then applies what it supports (best effort).
const LANDLOCK_ABI: ABI = ABI::V6;

/// Applies the ruleset; returns a line on what the kernel enforced.
pub fn landlock(rules: &[(AbsPath, Access)], scopes: &[Scope]) -> io::Result<String> {
    let err = |e: landlock::RulesetError| io::Error::other(e.to_string());
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let read = AccessFs::from_read(LANDLOCK_ABI);
    let mut wanted = landlock::BitFlags::<LlScope>::empty();
    for s in scopes {
        wanted |= match s {
            Scope::Signal => LlScope::Signal,
            Scope::AbstractUnixSocket => LlScope::AbstractUnixSocket,
        };
    }
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(err)?;
    if !wanted.is_empty() {
        ruleset = ruleset.scope(wanted).map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;
    for (path, access) in rules {
        let rights = match access {
            Access::Read => read,
            Access::ReadWrite => all & !AccessFs::IoctlDev,
            Access::Devices => all,
        };
        let fd = match PathFd::new(path.as_path()) {
            Ok(fd) => fd,
            // A mount the setup skipped (a mask target the kernel lacks).
            Err(_) => continue,
        };
        created = created.add_rule(PathBeneath::new(fd, rights)).map_err(err)?;
    }
    let status = created.restrict_self().map_err(err)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced".to_string(),
        RulesetStatus::PartiallyEnforced => {
            "partially enforced: this kernel's Landlock lacks some rights or scopes sysjail asks for".to_string()
        }
        RulesetStatus::NotEnforced => "not enforced: Landlock is not available".to_string(),
    })
}

/// Installs a filter on the calling thread. With `listener`, returns the
/// descriptor on which its user notifications arrive.
pub fn install_filter(program: &[Insn], listener: bool) -> io::Result<Option<OwnedFd>> {
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    let mut flags = if listener {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    } else {
        0
    };
    loop {
        // SAFETY: Insn has the layout of sock_filter (repr(C), same fields);
        // fprog points into `program`, which outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        if r >= 0 {
            // SAFETY: with NEW_LISTENER the return value is a new descriptor.
            return Ok(listener.then(|| unsafe { OwnedFd::from_raw_fd(r as i32) }));
        }
        let e = io::Error::last_os_error();
        // WAIT_KILLABLE_RECV is Linux 5.19; older kernels work without it.
        if e.raw_os_error() == Some(libc::EINVAL) && flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
            flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
            continue;
        }
        return Err(e);
    }
}

const _: () = assert!(std::mem::size_of::<Insn>() == std::mem::size_of::<libc::sock_filter>());

/// Replaces what /proc/self/cmdline shows with `title`. Init is a copy of the
/// supervisor, whose arguments name host paths (the binary, the definition);
/// a jailed process reads /proc/1/cmdline, so init overwrites them in place,
/// truncating the title to the room they had and clearing the rest.
pub fn set_cmdline(title: &str) -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (field 2, in parentheses); field 3 first.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<usize>().ok());
    let (Some(start), Some(end)) = (field(48), field(49)) else {
        return Err(io::Error::other("/proc/self/stat has no argument area"));
    };
    let len = end.saturating_sub(start);
    if start == 0 || len == 0 {
        return Ok(());
    }
    let mut bytes = title.as_bytes()[..title.len().min(len - 1)].to_vec();
    bytes.resize(len, 0);
    // SAFETY: [start, end) is this process's own argument area, as the kernel
    // reports it: mapped and writable (it lies on the initial stack), and no
    // Rust object refers to it once init runs.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), start as *mut u8, len) };
    Ok(())
}

/// The calling thread's effective, permitted and inheritable sets.
pub fn capget() -> io::Result<(u64, u64, u64)> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and the two data words are what version 3 expects.
    let r = unsafe { libc::syscall(libc::SYS_capget, &header as *const CapHeader, data.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// The effective uid taken for a while, with the caller's capabilities kept.
/// A user namespace created meanwhile is owned by that uid, and the kernel
/// charges its per-user counters (inotify instances, message queue bytes,
/// user namespaces) there, not to host root. The real and saved uids stay
/// root's, which is what allows the way back ([`OwnerUid::leave`]).
#[must_use = "leave() takes root's uid back"]
pub struct OwnerUid {
    caps: (u64, u64, u64),
}

fn set_euid(euid: u32) -> io::Result<()> {
    // SAFETY: setresuid(2) with -1 (unchanged) for the real and saved uids.
    if unsafe { libc::setresuid(u32::MAX, euid, u32::MAX) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl OwnerUid {
    /// Takes `uid` as the effective uid.
    pub fn enter(uid: u32) -> io::Result<OwnerUid> {
        let caps = capget()?;
        set_euid(uid)?;
        let guard = OwnerUid { caps };
        // Leaving euid 0 cleared the effective set; the permitted set is intact.
        if let Err(e) = capset(caps.0, caps.1, caps.2) {
            guard.leave()?;
            return Err(e);
        }
        Ok(guard)
    }

    /// Takes root's effective uid and capabilities back.
    pub fn leave(self) -> io::Result<()> {
        set_euid(0)?;
        capset(self.caps.0, self.caps.1, self.caps.2)
    }
}
