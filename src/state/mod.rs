//! The registry of running jails (the old jail database): one JSON record per
//! jail in a state directory, written atomically under a lock.
//!
//! A record names the supervisor by pid and start time, so that a record whose
//! supervisor died (or whose pid was reused) is recognised and cleaned.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

mod usage;

use serde::{Deserialize, Serialize};

pub use usage::{Usage, limit_events, read as usage};

/// One running jail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Jail id (JID): the smallest free positive number.
    pub id: u32,
    /// Unique name.
    pub name: String,
    /// Host name.
    pub hostname: String,
    /// Root directory.
    pub path: String,
    /// "host" or "private".
    pub mode: String,
    /// IPv4 addresses.
    pub ipv4: Vec<String>,
    /// IPv6 addresses.
    pub ipv6: Vec<String>,
    /// The `allow` entries.
    pub allow: Vec<String>,
    /// The supervisor's pid.
    pub supervisor_pid: i32,
    /// The supervisor's start time (clock ticks after boot, /proc/PID/stat field 22).
    pub supervisor_start: u64,
    /// The init's pid, on the host, once it runs.
    pub init_pid: Option<i32>,
    /// Unix time the jail started.
    pub started: u64,
    /// The definition file.
    pub definition: Option<PathBuf>,
    /// Digest of the definition's files.
    pub digest: String,
    /// First host id of the jail's id range.
    pub id_base: u32,
    /// The jail's cgroup directories.
    pub cgroups: Vec<PathBuf>,
    /// The supervisor's control socket.
    pub control: PathBuf,
    /// "starting", "running" or "stopping".
    pub state: String,
    /// cgroup limits, for `ls -v`: memory bytes, pids, CPU thousandths.
    #[serde(default)]
    pub limits: Limits,
}

/// Limits shown by `ls -v`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// memory limit in bytes.
    pub memory: Option<u64>,
    /// pids limit.
    pub pids: Option<u32>,
    /// CPU in thousandths of a core.
    pub cpu: Option<u32>,
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct Registry {
    dir: PathBuf,
}

/// Held while the registry is read or changed.
pub struct Lock {
    _file: File,
}

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory cannot be used.
    #[error("state directory {0}: {1}")]
    Dir(PathBuf, io::Error),
    /// A record cannot be written.
    #[error("registry record {0}: {1}")]
    Write(PathBuf, io::Error),
    /// A jail of that name runs.
    #[error(
        "a jail named {name} is already running (jid {id}, supervisor pid {pid}); stop it with `sysjail down {name}`"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// Its jid.
        id: u32,
        /// Its supervisor.
        pid: i32,
    },
    /// No jail of that name or id.
    #[error("no running jail is named or numbered {0}")]
    NotFound(String),
    /// Every jid is in use.
    #[error("every jail id from 1 to {0} is in use")]
    Full(u32),
}

/// The highest jid: each jail gets its own 65536 host ids above 0x70000000.
pub const MAX_JAILS: u32 = 4095;

impl Registry {
    /// The default state directory: /run/sysjail for root, the user's runtime
    /// directory otherwise.
    pub fn default_dir() -> PathBuf {
        if nix::unistd::geteuid().is_root() {
            PathBuf::from("/run/sysjail")
        } else if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
            PathBuf::from(runtime).join("sysjail")
        } else {
            std::env::temp_dir().join(format!("sysjail-{}", nix::unistd::geteuid()))
        }
    }

    /// Opens (and creates, mode 0700) a state directory.
    pub fn open(dir: &Path) -> Result<Registry, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StateError::Dir(dir.to_path_buf(), e))?;
        Ok(Registry { dir: dir.to_path_buf() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the registry lock (blocking).
    pub fn lock(&self) -> Result<Lock, StateError> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StateError::Dir(path.clone(), e))?;
        file.lock().map_err(|e| StateError::Dir(path, e))?;
        Ok(Lock { _file: file })
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The control socket of a jail.
    pub fn control_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.sock"))
    }

    /// Every record, live or not, by jid.
    pub fn list(&self, _lock: &Lock) -> Vec<Record> {
        let mut out: Vec<Record> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by_key(|r| r.id);
        out
    }

    /// Writes a record atomically (a temporary file renamed over the old one).
    pub fn write(&self, _lock: &Lock, record: &Record) -> Result<(), StateError> {
        let path = self.record_path(&record.name);
        let tmp = self.dir.join(format!(".{}.json.tmp", record.name));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(record).expect("records serialize"))?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| StateError::Write(path, e))
    }

    /// Removes a jail's record and control socket.
    pub fn remove(&self, _lock: &Lock, name: &str) {
        let _ = fs::remove_file(self.record_path(name));
        let _ = fs::remove_file(self.control_path(name));
    }

    /// Finds a live jail by name or jid.
    pub fn find(&self, lock: &Lock, which: &str) -> Result<Record, StateError> {
        self.list(lock)
            .into_iter()
            .filter(alive)
            .find(|r| r.name == which || r.id.to_string() == which)
            .ok_or_else(|| StateError::NotFound(which.to_string()))
    }

    /// Removes records whose supervisor is gone, with what they left behind,
    /// and returns them.
    pub fn clean_stale(&self, lock: &Lock) -> Vec<Record> {
        let stale: Vec<Record> = self.list(lock).into_iter().filter(|r| !alive(r)).collect();
        for r in &stale {
            for cg in &r.cgroups {
                let _ = crate::sys::host::remove_cgroup(cg);
            }
            self.remove(lock, &r.name);
        }
        stale
    }

    /// Reserves a name: fails if a live jail has it; returns the smallest free jid.
    pub fn reserve(&self, lock: &Lock, name: &str) -> Result<u32, StateError> {
        self.clean_stale(lock);
        let live = self.list(lock);
        if let Some(r) = live.iter().find(|r| r.name == name) {
            return Err(StateError::NameTaken {
                name: name.to_string(),
                id: r.id,
                pid: r.supervisor_pid,
            });
        }
        (1..=MAX_JAILS)
            .find(|id| !live.iter().any(|r| r.id == *id))
            .ok_or(StateError::Full(MAX_JAILS))
    }
}

/// The start time of a process, to tell it from a later one with the same pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    // A zombie is dead even if nobody reaped it yet.
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// True when the record's supervisor is the process it names.
pub fn alive(record: &Record) -> bool {
    start_time(record.supervisor_pid) == Some(record.supervisor_start)
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, id: u32, pid: i32) -> Record {
        Record {
            id,
            name: name.into(),
            hostname: name.into(),
            path: "/".into(),
            mode: "private".into(),
            ipv4: vec![],
            ipv6: vec![],
            allow: vec![],
            supervisor_pid: pid,
            supervisor_start: start_time(pid).unwrap_or(1),
            init_pid: None,
            started: now(),
            definition: None,
            digest: "0".into(),
            id_base: 0,
            cgroups: vec![],
            control: PathBuf::from("/nonexistent"),
            state: "running".into(),
            limits: Limits::default(),
        }
    }

    #[test]
    fn names_are_unique_jids_smallest_free_and_dead_records_cleaned() {
        let dir = std::env::temp_dir().join(format!("sysjail-state-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let reg = Registry::open(&dir).unwrap();
        let lock = reg.lock().unwrap();
        let me = std::process::id() as i32;
        assert_eq!(reg.reserve(&lock, "a").unwrap(), 1);
        reg.write(&lock, &record("a", 1, me)).unwrap();
        reg.write(&lock, &record("c", 3, me)).unwrap();
        assert!(matches!(
            reg.reserve(&lock, "a"),
            Err(StateError::NameTaken { id: 1, .. })
        ));
        assert_eq!(reg.reserve(&lock, "b").unwrap(), 2);
        // A record whose supervisor does not exist is stale.
        let mut dead = record("d", 2, i32::MAX - 1);
        dead.supervisor_start = 12345;
        reg.write(&lock, &dead).unwrap();
        assert_eq!(
            reg.clean_stale(&lock)
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["d"]
        );
        assert_eq!(reg.list(&lock).len(), 2);
        assert_eq!(reg.find(&lock, "3").unwrap().name, "c");
        assert!(reg.find(&lock, "d").is_err());
        drop(lock);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn start_time_of_this_process() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert!(start_time(i32::MAX - 1).is_none());
    }
}
