//! Capabilities: which ones a jail's bounding set keeps, and why.
//!
//! Jail root holds its capabilities in the jail's own user namespace only, so
//! they act on the jail's namespaces and files, never on the host's. The bounding
//! set is still kept small (as Docker's default set) so that what the kernel
//! checks against the jail's namespace is what the jail needs.

use std::fmt;

use serde::Serialize;

use super::Why;
use crate::model::{Allow, Jail};

macro_rules! capabilities {
    ($($variant:ident = $n:literal, $name:literal;)*) => {
        /// A Linux capability.
        #[allow(non_camel_case_types, missing_docs)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Capability { $($variant = $n,)* }

        impl Capability {
            /// Every capability, by number.
            pub const ALL: &'static [Capability] = &[$(Capability::$variant),*];

            /// The kernel's name, such as CAP_NET_RAW.
            pub const fn name(self) -> &'static str {
                match self { $(Capability::$variant => $name,)* }
            }

            /// The capability's bit number.
            pub const fn number(self) -> u8 {
                self as u8
            }
        }
    };
}

capabilities! {
    CHOWN = 0, "CAP_CHOWN";
    DAC_OVERRIDE = 1, "CAP_DAC_OVERRIDE";
    DAC_READ_SEARCH = 2, "CAP_DAC_READ_SEARCH";
    FOWNER = 3, "CAP_FOWNER";
    FSETID = 4, "CAP_FSETID";
    KILL = 5, "CAP_KILL";
    SETGID = 6, "CAP_SETGID";
    SETUID = 7, "CAP_SETUID";
    SETPCAP = 8, "CAP_SETPCAP";
    LINUX_IMMUTABLE = 9, "CAP_LINUX_IMMUTABLE";
    NET_BIND_SERVICE = 10, "CAP_NET_BIND_SERVICE";
    NET_BROADCAST = 11, "CAP_NET_BROADCAST";
    NET_ADMIN = 12, "CAP_NET_ADMIN";
    NET_RAW = 13, "CAP_NET_RAW";
    IPC_LOCK = 14, "CAP_IPC_LOCK";
    IPC_OWNER = 15, "CAP_IPC_OWNER";
    SYS_MODULE = 16, "CAP_SYS_MODULE";
    SYS_RAWIO = 17, "CAP_SYS_RAWIO";
    SYS_CHROOT = 18, "CAP_SYS_CHROOT";
    SYS_PTRACE = 19, "CAP_SYS_PTRACE";
    SYS_PACCT = 20, "CAP_SYS_PACCT";
    SYS_ADMIN = 21, "CAP_SYS_ADMIN";
    SYS_BOOT = 22, "CAP_SYS_BOOT";
    SYS_NICE = 23, "CAP_SYS_NICE";
    SYS_RESOURCE = 24, "CAP_SYS_RESOURCE";
    SYS_TIME = 25, "CAP_SYS_TIME";
    SYS_TTY_CONFIG = 26, "CAP_SYS_TTY_CONFIG";
    MKNOD = 27, "CAP_MKNOD";
    LEASE = 28, "CAP_LEASE";
    AUDIT_WRITE = 29, "CAP_AUDIT_WRITE";
    AUDIT_CONTROL = 30, "CAP_AUDIT_CONTROL";
    SETFCAP = 31, "CAP_SETFCAP";
    MAC_OVERRIDE = 32, "CAP_MAC_OVERRIDE";
    MAC_ADMIN = 33, "CAP_MAC_ADMIN";
    SYSLOG = 34, "CAP_SYSLOG";
    WAKE_ALARM = 35, "CAP_WAKE_ALARM";
    BLOCK_SUSPEND = 36, "CAP_BLOCK_SUSPEND";
    AUDIT_READ = 37, "CAP_AUDIT_READ";
    PERFMON = 38, "CAP_PERFMON";
    BPF = 39, "CAP_BPF";
    CHECKPOINT_RESTORE = 40, "CAP_CHECKPOINT_RESTORE";
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One capability the bounding set keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// The capability.
    pub cap: Capability,
    /// Why the jail keeps it.
    pub why: Why,
}

/// The jail's capability sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CapabilityPolicy {
    /// The bounding set; every other capability is dropped from it.
    pub bounding: Vec<Kept>,
    /// Effective and permitted for jail root: the bounding set. For any other user:
    /// nothing (the kernel clears them when the uid changes from 0).
    pub root_effective: bool,
    /// Ambient and inheritable sets are always cleared.
    pub ambient_cleared: bool,
    /// no_new_privs: setuid binaries and file capabilities grant nothing.
    pub no_new_privs: bool,
}

impl CapabilityPolicy {
    /// The bounding set as a bit mask.
    pub fn mask(&self) -> u64 {
        self.bounding.iter().fold(0, |m, k| m | 1 << k.cap.number())
    }

    /// True when `cap` is kept.
    pub fn keeps(&self, cap: Capability) -> bool {
        self.bounding.iter().any(|k| k.cap == cap)
    }
}

/// What a jail's root needs for ordinary administration inside the jail (Docker's
/// default set, without MKNOD and AUDIT_WRITE, which a user namespace cannot use,
/// and NET_RAW, which is `raw-sockets`'s). Not SETFCAP: a file capability
/// written in a jail's tree would be honoured for whoever runs the file on
/// the host. Not FSETID: with it, writing a set-id file keeps its bit. Not
/// SYS_BOOT: reboot(2)'s promise is kept by the supervisor.
const BASE: &[(Capability, &str)] = &[
    (Capability::CHOWN, "jail root manages its own files"),
    (Capability::DAC_OVERRIDE, "jail root manages its own files"),
    (Capability::FOWNER, "jail root manages its own files"),
    (Capability::KILL, "jail root signals the jail's processes"),
    (Capability::SETGID, "services drop to other users"),
    (Capability::SETUID, "services drop to other users"),
    (Capability::SETPCAP, "services drop capabilities"),
    (Capability::NET_BIND_SERVICE, "services bind ports below 1024"),
    (
        Capability::SYS_CHROOT,
        "services chroot into a subdirectory of the jail",
    ),
];

/// The capabilities of a jail.
pub fn compile(jail: &Jail) -> CapabilityPolicy {
    let mut bounding: Vec<Kept> = BASE
        .iter()
        .map(|&(cap, why)| Kept {
            cap,
            why: Why::Default(why),
        })
        .collect();
    for (allow, cap) in [
        (Allow::RawSockets, Capability::NET_RAW),
        (Allow::Chflags, Capability::LINUX_IMMUTABLE),
        (Allow::Rlimit, Capability::SYS_RESOURCE),
    ] {
        if jail.allow.contains(&allow) {
            bounding.push(Kept {
                cap,
                why: Why::Allow(allow),
            });
        }
    }
    bounding.sort_by_key(|k| k.cap);
    CapabilityPolicy {
        bounding,
        root_effective: true,
        ambient_cleared: true,
        no_new_privs: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_names() {
        assert_eq!(Capability::ALL.len(), 41);
        assert!(
            Capability::ALL
                .iter()
                .enumerate()
                .all(|(i, c)| c.number() as usize == i)
        );
        assert_eq!(Capability::NET_RAW.name(), "CAP_NET_RAW");
    }
}
