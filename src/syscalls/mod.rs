//! System call numbers of every ABI sysjail filters.
//!
//! A process can enter the kernel through more than one ABI: on x86_64 the
//! native one and i386's `int 0x80`, each with its own numbers; on aarch64 the
//! native one and the 32-bit arm compat ABI. A filter that knows only one of them
//! leaves the other open, so every table here is used, not only the build's own.

mod generated;

use std::fmt;
use std::sync::OnceLock;

pub use generated::Sysno;

/// An ABI the kernel can run, identified in seccomp by its AUDIT_ARCH value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Abi {
    /// x86_64's native ABI (`syscall`).
    X86_64,
    /// i386, natively or through `int 0x80` on x86_64.
    I386,
    /// aarch64's native ABI.
    Aarch64,
    /// 32-bit arm (EABI), natively or as aarch64's compat ABI.
    Arm,
}

impl Abi {
    /// Every ABI with a table.
    pub const ALL: [Abi; 4] = [Abi::X86_64, Abi::I386, Abi::Aarch64, Abi::Arm];

    /// The ABIs a kernel of the architecture this program was built for runs.
    pub fn native() -> &'static [Abi] {
        if cfg!(target_arch = "x86_64") {
            &[Abi::X86_64, Abi::I386]
        } else if cfg!(target_arch = "aarch64") {
            &[Abi::Aarch64, Abi::Arm]
        } else if cfg!(target_arch = "x86") {
            &[Abi::I386]
        } else if cfg!(target_arch = "arm") {
            &[Abi::Arm]
        } else {
            &[]
        }
    }

    /// The `seccomp_data.arch` value (AUDIT_ARCH_*).
    pub const fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 => 0xc000_003e,
            Abi::I386 => 0x4000_0003,
            Abi::Aarch64 => 0xc000_00b7,
            Abi::Arm => 0x4000_0028,
        }
    }

    /// True for 64-bit ABIs, whose `long` and pointers are 8 bytes.
    pub const fn is_64bit(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::Aarch64)
    }

    /// The name used in `sysjail policy`.
    pub const fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "i386",
            Abi::Aarch64 => "aarch64",
            Abi::Arm => "arm",
        }
    }

    fn table(self) -> &'static [(Sysno, u32)] {
        match self {
            Abi::X86_64 => generated::X86_64,
            Abi::I386 => generated::I386,
            Abi::Aarch64 => generated::AARCH64,
            Abi::Arm => generated::ARM,
        }
    }

    /// The call's number on this ABI, if the ABI has it.
    pub fn nr(self, call: Sysno) -> Option<u32> {
        self.by_name()[call as usize]
    }

    /// The call with this number, if any.
    pub fn call(self, nr: u32) -> Option<Sysno> {
        self.table()
            .binary_search_by_key(&nr, |&(_, n)| n)
            .ok()
            .map(|i| self.table()[i].0)
    }

    /// Every (call, number) of the ABI, by number.
    pub fn calls(self) -> &'static [(Sysno, u32)] {
        self.table()
    }

    /// Numbers indexed by [`Sysno`], built once per ABI.
    fn by_name(self) -> &'static [Option<u32>] {
        static CACHE: [OnceLock<Vec<Option<u32>>>; 4] =
            [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
        CACHE[self as usize].get_or_init(|| {
            let mut v = vec![None; Sysno::ALL.len()];
            for &(call, nr) in self.table() {
                v[call as usize] = Some(nr);
            }
            v
        })
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Sysno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Sysno {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Sysno {
    /// The call with this kernel name.
    pub fn from_name(name: &str) -> Option<Sysno> {
        Sysno::ALL
            .binary_search_by_key(&name, |s| s.name())
            .ok()
            .map(|i| Sysno::ALL[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_by_number_and_names_by_name() {
        for abi in Abi::ALL {
            assert!(abi.calls().windows(2).all(|w| w[0].1 < w[1].1), "{abi}");
        }
        assert!(Sysno::ALL.windows(2).all(|w| w[0].name() < w[1].name()));
        assert!(Sysno::ALL.iter().enumerate().all(|(i, s)| *s as usize == i));
    }

    #[test]
    fn known_numbers() {
        assert_eq!(Abi::X86_64.nr(Sysno::read), Some(0));
        assert_eq!(Abi::X86_64.nr(Sysno::socket), Some(41));
        assert_eq!(Abi::I386.nr(Sysno::socket), Some(359));
        assert_eq!(Abi::I386.nr(Sysno::socketcall), Some(102));
        assert_eq!(Abi::X86_64.nr(Sysno::socketcall), None);
        assert_eq!(Abi::Aarch64.nr(Sysno::openat), Some(56));
        assert_eq!(Abi::Aarch64.nr(Sysno::open), None);
        assert_eq!(Abi::Arm.nr(Sysno::socket), Some(281));
        assert_eq!(Abi::Arm.nr(Sysno::arm_set_tls), Some(0x0f0005));
        assert_eq!(Abi::X86_64.nr(Sysno::file_setattr), Some(469));
        assert_eq!(Abi::X86_64.call(41), Some(Sysno::socket));
        assert_eq!(Sysno::from_name("clone3"), Some(Sysno::clone3));
    }
}
