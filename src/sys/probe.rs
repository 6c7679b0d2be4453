//! Probes the machine once, for [`HostFacts`].

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use crate::facts::{CgroupLayout, FactsKey, HostFacts};
use crate::syscalls::Abi;

/// What this machine offers.
pub fn probe() -> HostFacts {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    HostFacts {
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        uid,
        gid,
        root: uid == 0,
        caps: effective_caps(),
        abis: Abi::native().to_vec(),
        landlock_abi: landlock_abi(),
        seccomp_notify: fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
            .is_ok_and(|s| s.contains("user_notif")),
        max_user_namespaces: fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        mount_setattr: syscall_exists(libc::SYS_mount_setattr),
        pidfd_getfd: syscall_exists(libc::SYS_pidfd_getfd),
        cgroup: cgroup_layout(),
        ping_groups: fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|n| n.parse().ok());
                Some((it.next()??, it.next()??))
            }),
    }
}

/// What facts cached by [`probe`] are valid for (see
/// [`crate::facts::CachedFacts::valid_for`]): a few calls, no parsing of
/// /proc beyond one short file.
pub fn key() -> FactsKey {
    FactsKey {
        boot_id: fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        caps: effective_caps(),
    }
}

/// The caller's effective capabilities, from capget(2).
fn effective_caps() -> u64 {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: a version 3 header and the two data structs it asks for.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if r != 0 {
        return 0;
    }
    u64::from(data[0].effective) | u64::from(data[1].effective) << 32
}

/// The host settings [`crate::doctor::start_up`] looks at.
pub fn tuning(facts: &HostFacts) -> crate::doctor::Tuning {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let favored = |mount: &std::path::Path| {
        mountinfo.lines().any(|line| {
            let Some((left, right)) = line.split_once(" - ") else {
                return false;
            };
            let at = left.split(' ').nth(4).map(std::path::Path::new);
            let options = right.split(' ').nth(2).unwrap_or("");
            at == Some(mount) && options.split(',').any(|o| o == "favordynmods")
        })
    };
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let booted = cmdline.split_whitespace().any(|w| {
        matches!(
            w,
            "cgroup_favordynmods=true" | "cgroup_favordynmods=1" | "cgroup_favordynmods=y"
        )
    });
    crate::doctor::Tuning {
        favordynmods: booted || (!facts.cgroup.v1.is_empty() && facts.cgroup.v1.values().all(|m| favored(m))),
        rcu_expedited: fs::read_to_string("/sys/kernel/rcu_expedited")
            .ok()
            .map(|s| s.trim() != "0"),
    }
}

fn landlock_abi() -> Option<u8> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: a null attr with size 0 and the VERSION flag only queries.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u8)
}

/// A call with an invalid descriptor fails with EBADF when it exists and
/// ENOSYS when it does not.
fn syscall_exists(nr: libc::c_long) -> bool {
    // SAFETY: -1 is never a valid descriptor; no pointer is dereferenced for it.
    let r = unsafe { libc::syscall(nr, -1, 0, 0, 0, 0) };
    !(r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

fn cgroup_layout() -> CgroupLayout {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut layout = CgroupLayout::default();
    let mut v1 = BTreeMap::new();
    for line in mountinfo.lines() {
        // id parent major:minor root mountpoint options ... - fstype source superoptions
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        let (Some(mountpoint), Some(fstype)) = (fields.get(4), rfields.first()) else {
            continue;
        };
        // Only hierarchies mounted at their root are ours to create cgroups in.
        if fields.get(3) != Some(&"/") {
            continue;
        }
        let mountpoint = PathBuf::from(mountpoint.replace("\\040", " "));
        match *fstype {
            "cgroup2" if layout.v2.is_none() => layout.v2 = Some(mountpoint),
            "cgroup" => {
                for opt in rfields.get(2).unwrap_or(&"").split(',') {
                    if ["memory", "pids", "cpu", "cpuacct", "cpuset"].contains(&opt) {
                        v1.entry(opt.to_string()).or_insert_with(|| mountpoint.clone());
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(v2) = &layout.v2 {
        layout.v2_controllers = fs::read_to_string(v2.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
    }
    layout.v1 = v1;
    layout
}
