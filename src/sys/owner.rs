//! Whether other users can change a file or directory: the one rule for the
//! host paths sysjail reads or writes as its caller and must trust
//! (launched definitions, logs, OCI bundles). Each caller words the refusal
//! for its own context.

/// How other users could change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposed {
    /// Owned by this uid, neither root nor the caller.
    Owner(u32),
    /// Writable by its group or by others; the mode's permission bits.
    Writable(u32),
}

impl Exposed {
    /// Who may write it, for a message: "others" or "its group".
    pub fn writers(mode: u32) -> &'static str {
        if mode & 0o002 != 0 { "others" } else { "its group" }
    }
}

/// `None` when only root and `caller` can change the object of `uid` and
/// `mode`: owned by one of them, writable by neither its group nor others.
/// With `sticky_ok`, a sticky directory writable by others passes: there
/// only an entry's owner may rename or remove it.
pub fn exposed(uid: u32, mode: u32, caller: u32, sticky_ok: bool) -> Option<Exposed> {
    if uid != 0 && uid != caller {
        Some(Exposed::Owner(uid))
    } else if mode & 0o022 != 0 && !(sticky_ok && mode & libc::S_ISVTX != 0) {
        Some(Exposed::Writable(mode & 0o7777))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_or_the_caller_and_no_other_writer() {
        assert_eq!(exposed(0, 0o755, 1000, false), None);
        assert_eq!(exposed(1000, 0o700, 1000, false), None);
        assert_eq!(exposed(1234, 0o700, 1000, false), Some(Exposed::Owner(1234)));
        assert_eq!(exposed(0, 0o775, 1000, false), Some(Exposed::Writable(0o775)));
        assert_eq!(exposed(0, 0o1777, 1000, false), Some(Exposed::Writable(0o1777)));
        assert_eq!(exposed(0, 0o1777, 1000, true), None);
        assert_eq!(exposed(0, 0o777, 1000, true), Some(Exposed::Writable(0o777)));
        assert_eq!(Exposed::writers(0o775), "its group");
        assert_eq!(Exposed::writers(0o757), "others");
    }
}
