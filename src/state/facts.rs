//! The host's facts, cached in the state directory (`facts.cache`, JSON) so that a
//! launch does not probe the machine again; see [`CachedFacts::valid_for`]
//! for when a copy is used.

use std::fs::File;
use std::io::{Read, Write};

use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::fstat;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::{Registry, now};
use crate::facts::{CachedFacts, FactsKey, HostFacts};

/// The cache's file in the state directory: never a record's or a control
/// socket's name (those end in `.json` and `.sock`).
pub const FACTS_FILE: &str = "facts.cache";

/// A cache file is a few hundred bytes; anything much larger is not one.
const MAX_FACTS: u64 = 64 << 10;

impl Registry {
    /// The host's facts: the cached copy when it is valid for `key` now,
    /// else what `probe` finds, which is cached for the next launch.
    pub fn facts(&self, key: FactsKey, probe: impl FnOnce() -> HostFacts) -> HostFacts {
        let now = now();
        if let Some(cached) = self.read_facts()
            && let Some(facts) = cached.valid_for(&key, now)
        {
            return facts.clone();
        }
        self.probe_facts(key, probe)
    }

    /// Probes with `probe` whatever is cached, and caches the result
    /// (`sysjail doctor` does, so that it always reports the host as it is).
    pub fn probe_facts(&self, key: FactsKey, probe: impl FnOnce() -> HostFacts) -> HostFacts {
        let cached = CachedFacts {
            key,
            probed: now(),
            facts: probe(),
        };
        // A cache that cannot be written only costs the next launch a probe.
        let _ = self.write_facts(&cached);
        cached.facts
    }

    /// The cached facts, if the file is a regular file of the caller's own
    /// that no one else can write, and parses: a copy another user could
    /// have written would let them choose the policy of our jails.
    pub fn read_facts(&self) -> Option<CachedFacts> {
        let fd = self.openat(FACTS_FILE, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0).ok()?;
        let st = fstat(&fd).ok()?;
        let own = st.st_uid == nix::unistd::geteuid().as_raw();
        let private = st.st_mode & 0o022 == 0;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || !own || !private || st.st_size as u64 > MAX_FACTS {
            return None;
        }
        let mut bytes = Vec::new();
        File::from(fd).take(MAX_FACTS).read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes the cache atomically, owner-only: a temporary file of this
    /// process renamed over the old one, so that concurrent launches never
    /// read half a file (the last rename wins; all wrote valid facts).
    fn write_facts(&self, cached: &CachedFacts) -> std::io::Result<()> {
        let tmp = format!(".{FACTS_FILE}.{}.tmp", std::process::id());
        let _ = unlinkat(self.fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let fd = self
            .openat(&tmp, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL, 0o600)
            .map_err(std::io::Error::other)?;
        let written = File::from(fd)
            .write_all(&serde_json::to_vec(cached).expect("facts serialize"))
            .and_then(|()| Ok(renameat(self.fd(), tmp.as_str(), self.fd(), FACTS_FILE)?));
        if written.is_err() {
            let _ = unlinkat(self.fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn key() -> FactsKey {
        crate::sys::probe::key()
    }

    /// Facts no probe of this machine gives, to tell a cached copy apart.
    fn made_up(kernel: &str) -> HostFacts {
        HostFacts {
            kernel: kernel.into(),
            ..HostFacts::example()
        }
    }

    fn registry(test: &str) -> (std::path::PathBuf, Registry) {
        let dir = std::env::temp_dir().join(format!("sysjail-facts-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let registry = Registry::open(&dir).unwrap();
        (dir, registry)
    }

    #[test]
    fn facts_cache_is_probed_once_then_reused_and_doctor_rewrites_it() {
        let (dir, reg) = registry("reuse");
        assert_eq!(reg.facts(key(), || made_up("first")).kernel, "first");
        let file = dir.join(FACTS_FILE);
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        // Valid: the probe is not called again.
        assert_eq!(reg.facts(key(), || panic!("probed again")).kernel, "first");
        // Another key (here another sysjail version) probes again, and caches.
        let other = FactsKey {
            version: "0.0.0-other".into(),
            ..key()
        };
        assert_eq!(reg.facts(other.clone(), || made_up("second")).kernel, "second");
        assert_eq!(reg.facts(other, || panic!("probed again")).kernel, "second");
        // doctor probes whatever is cached, and what it saw is cached.
        assert_eq!(reg.probe_facts(key(), || made_up("doctor")).kernel, "doctor");
        assert_eq!(reg.facts(key(), || panic!("probed again")).kernel, "doctor");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn facts_cache_older_than_max_age_is_probed_again() {
        let (dir, reg) = registry("age");
        let old = CachedFacts {
            key: key(),
            probed: now() - crate::facts::FACTS_MAX_AGE,
            facts: made_up("old"),
        };
        reg.write_facts(&old).unwrap();
        assert_eq!(reg.facts(key(), || made_up("fresh")).kernel, "fresh");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn facts_cache_that_others_could_write_is_never_trusted() {
        let (dir, reg) = registry("trust");
        reg.facts(key(), || made_up("cached"));
        let file = dir.join(FACTS_FILE);
        for mode in [0o620, 0o602, 0o666] {
            fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(reg.read_facts(), None, "mode {mode:o}");
        }
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(reg.read_facts().is_some());
        // Another user's file (only root can give it away).
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&file, Some(4242), None).unwrap();
            assert_eq!(reg.read_facts(), None, "a file of uid 4242");
            // Not trusted, so probed again and replaced by one of our own.
            assert_eq!(reg.facts(key(), || made_up("ours")).kernel, "ours");
            assert_eq!(reg.read_facts().unwrap().facts.kernel, "ours");
        } else {
            eprintln!("SKIP: a cache file of another owner needs root to create");
        }
        // Not JSON of the cache: probed again.
        fs::write(&file, "{\"key\": 1}").unwrap();
        assert_eq!(reg.read_facts(), None);
        // A link is never followed.
        fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
        assert_eq!(reg.read_facts(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
