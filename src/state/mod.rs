//! The registry of running jails (the old jail database): one JSON record per
//! jail in a state directory, written atomically under a lock.
//!
//! A record names the supervisor by pid and start time, so that a record whose
//! supervisor died (or whose pid was reused) is recognised and cleaned.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, renameat};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{UnlinkatFlags, unlinkat};

mod facts;
pub mod ranges;
mod usage;

use serde::{Deserialize, Serialize};

pub use facts::FACTS_FILE;
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
    /// The jails it depends on (`depend`), and those they depend on, as
    /// their records said at its start: `down` stops it before any of them
    /// (older records have none).
    #[serde(default)]
    pub depend: Vec<String>,
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
    /// The host end of its veth (older records have none).
    #[serde(default)]
    pub veth: Option<String>,
    /// The supervisor's control socket, for people to read: clients connect
    /// to NAME.sock in the state directory, through its descriptor, whatever
    /// a record says.
    pub control: PathBuf,
    /// Where the jail is in its life.
    pub state: JailState,
    /// cgroup limits, for `ls -v`: memory bytes, pids, CPU thousandths.
    #[serde(default)]
    pub limits: Limits,
    /// The command's pid, restarts, the output log and how the jail ended.
    #[serde(default)]
    pub run: Run,
}

impl Record {
    /// True for the history record of a jail that has ended: it holds
    /// nothing on the host but itself and its default log.
    pub fn ended(&self) -> bool {
        self.state == JailState::Exited
    }
}

/// What a record says about the jail's runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The command's pid on the host, while it runs.
    pub command_pid: Option<i32>,
    /// Times the supervisor started the jail again (`restart`).
    pub restarts: u32,
    /// The background jail's output log.
    pub log: Option<PathBuf>,
    /// The size at which the log is rotated (`log-size`), which bounds what
    /// `sysjail logs` reads of it (older records have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_size: Option<u64>,
    /// The journal identifier of its output, with `log = "journal"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// The command given to `up` in place of the definition's, which
    /// `sysjail restart` of the ended jail gives again.
    pub command: Option<Vec<String>>,
    /// The configuration directory `up` found dependencies in, which
    /// `sysjail restart` of the ended jail gives again (older records have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<PathBuf>,
    /// How the last run ended.
    pub ended: Option<Ended>,
}

/// How a run of the jail ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// Unix time.
    pub at: u64,
    /// `sysjail up`'s exit status for it: the command's code, or 128 + signal.
    pub status: i32,
    /// The command's exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed the command, if one did.
    pub signal: Option<i32>,
    /// Why.
    pub reason: EndReason,
    /// What the cgroup limits did on the way.
    #[serde(default)]
    pub events: Vec<String>,
}

/// Why a jail's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The command exited (or the last process of the jail after it).
    Exited,
    /// A signal killed the command.
    Signaled,
    /// The command could not be executed.
    StartFailed,
    /// The memory limit's OOM killer killed it.
    MemoryLimit,
    /// Jail root called reboot(2), which halts the jail.
    Halted,
    /// Stopped on request (`down`, or SIGTERM to the supervisor).
    Stopped,
    /// Stopped on request, and killed when the stop timeout ran out.
    StopTimeout,
    /// A poststart hook failed, and the jail was stopped.
    HookFailed,
    /// The supervisor could not start it again after a run (`restart`);
    /// the events say why.
    RestartFailed,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match (self.code, self.signal) {
            (_, Some(s)) => format!("killed by signal {s} ({})", signal_name(s)),
            (Some(c), None) => format!("exited with status {c}"),
            (None, None) => format!("status {}", self.status),
        };
        match self.reason {
            EndReason::Exited | EndReason::Signaled => f.write_str(&how),
            EndReason::StartFailed => write!(f, "the command could not be executed (status {})", self.status),
            EndReason::MemoryLimit => write!(f, "{how} by the memory limit (OOM)"),
            EndReason::Halted => write!(f, "halted by reboot(2) from jail root ({how})"),
            EndReason::Stopped => write!(f, "stopped ({how})"),
            EndReason::StopTimeout => write!(f, "stopped: killed after the stop timeout ({how})"),
            EndReason::HookFailed => write!(f, "stopped: a poststart hook failed (status {})", self.status),
            EndReason::RestartFailed => write!(f, "could not be started again (status {})", self.status),
        }
    }
}

/// The name of a signal, for messages ("SIGKILL").
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string())
}

/// Where a jail is in its life; written in records as its name in lower
/// case ("starting", "running", "stopping"), which `ls` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JailState {
    /// Being set up.
    Starting,
    /// Its command runs.
    Running,
    /// Asked to stop; its processes have the grace period.
    Stopping,
    /// Its command ended; the supervisor starts it again after a pause.
    Restarting,
    /// It ended; the record is kept (history) until `down` clears it.
    Exited,
}

impl std::fmt::Display for JailState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JailState::Starting => "starting",
            JailState::Running => "running",
            JailState::Stopping => "stopping",
            JailState::Restarting => "restarting",
            JailState::Exited => "exited",
        })
    }
}

/// Removes everything a jail leaves on the host, whoever ends it (its
/// supervisor, the janitor of a supervisor killed, or a later command that
/// finds its record stale): the processes left in its cgroups, the cgroups,
/// the veth, the record and the control socket. Its mounts go with its mount
/// namespace, its id range's claim with the supervisor. Returns what could
/// not be removed.
pub fn teardown(registry: &Registry, record: &Record) -> Vec<String> {
    if record.supervisor_pid == std::process::id() as i32 {
        // Its own supervisor: while it lives, its record keeps the name, and
        // so the names of its cgroups and veth, from every other jail. What
        // the jail left goes without holding up every other command behind
        // the lock (an exiting task can keep a cgroup busy for a while).
        let mut problems = release(record);
        match registry.lock() {
            Ok(lock) => registry.remove_if(&lock, &record.name, record.supervisor_pid),
            Err(e) => problems.push(e.to_string()),
        }
        return problems;
    }
    match registry.lock() {
        Ok(lock) => teardown_locked(registry, &lock, record),
        Err(e) => vec![e.to_string()],
    }
}

/// Removes what a jail's run left on the host, as [`teardown`] does, but
/// keeps its record as history: `record`, marked ended, replaces the live one
/// (if that is still this supervisor's), without a control socket.
pub fn teardown_keeping(registry: &Registry, record: &Record) -> Vec<String> {
    let lock = match registry.lock() {
        Ok(lock) => lock,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = release(record);
    // Its own file only, as `remove_if` reads it.
    if registry
        .named(&record.name)
        .is_some_and(|r| r.supervisor_pid == record.supervisor_pid)
    {
        let mut history = record.clone();
        history.state = JailState::Exited;
        history.init_pid = None;
        history.run.command_pid = None;
        let _ = unlinkat(
            registry.fd(),
            Registry::control_name(&record.name).as_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        if let Err(e) = registry.write(&lock, &history) {
            problems.push(e.to_string());
        }
    }
    problems
}

/// Removes the processes, cgroups and veth of a jail's run; keeps its record
/// (a jail that restarts makes them anew). Returns what could not be removed.
pub fn release(record: &Record) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(v) = &record.veth
        && let Err(e) = crate::sys::net::remove_veth(v)
    {
        problems.push(format!("removing veth {v}: {e}"));
    }
    for cg in &record.cgroups {
        crate::sys::host::kill_cgroup(cg);
        if let Err(e) = crate::sys::host::remove_cgroup(cg) {
            problems.push(e.to_string());
        }
    }
    problems
}

pub(crate) fn teardown_locked(registry: &Registry, lock: &Lock, record: &Record) -> Vec<String> {
    let problems = release(record);
    // Only its own record: a new jail of the same name may have taken it.
    registry.remove_if(lock, &record.name, record.supervisor_pid);
    problems
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

/// The state directory, held by descriptor: every record, the lock and the
/// control sockets are reached relative to it, never by a path that a link
/// planted on the way could redirect.
#[derive(Clone, Debug)]
pub struct Registry {
    dir: PathBuf,
    fd: Arc<OwnedFd>,
}

/// Held while the registry is read or changed.
pub struct Lock {
    _file: File,
}

/// Why a state directory is not the caller's own.
#[derive(Debug, thiserror::Error)]
pub enum Unsafe {
    /// A symbolic link, which could point anywhere.
    #[error("is a symbolic link")]
    Link,
    /// Something other than a directory.
    #[error("is not a directory")]
    NotDir,
    /// Another user owns it and can change what is in it.
    #[error("is owned by uid {owner}, not by uid {euid} that runs sysjail")]
    Owner {
        /// Its owner.
        owner: u32,
        /// The caller's effective uid.
        euid: u32,
    },
    /// Others may create, replace or remove entries in it.
    #[error("is writable by group or others (mode {mode:04o})")]
    Writable {
        /// Its permission bits.
        mode: u32,
    },
}

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory cannot be used.
    #[error("state directory {0}: {1}")]
    Dir(PathBuf, io::Error),
    /// The directory is not the caller's own: records, lock and sockets in it
    /// could be another user's.
    #[error("state directory {dir} {why}: remove it, or set XDG_RUNTIME_DIR or --state-dir")]
    Unsafe {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: Unsafe,
    },
    /// An entry of the state directory is a symbolic link, which sysjail
    /// never follows there.
    #[error("{0} is a symbolic link: sysjail follows none in its state directory; remove it")]
    Link(PathBuf),
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
    /// A jail it depends on does not run, or is being stopped.
    #[error("{jail} depends on {dependency}, which {why}")]
    Dependency {
        /// The jail being started.
        jail: String,
        /// What it depends on.
        dependency: String,
        /// "does not run" or "is being stopped".
        why: &'static str,
    },
}

/// The highest jid: each jail gets its own 65536 host ids above 0x70000000.
pub const MAX_JAILS: u32 = 4095;

/// A record larger than this is not one of ours.
const MAX_RECORD: u64 = 1 << 20;

impl Registry {
    /// The default state directory: /run/sysjail for root, the user's runtime
    /// directory otherwise, and [`Registry::fallback_dir`] without one.
    pub fn default_dir() -> PathBuf {
        let euid = nix::unistd::geteuid();
        if euid.is_root() {
            PathBuf::from("/run/sysjail")
        } else if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
            PathBuf::from(runtime).join("sysjail")
        } else {
            Registry::fallback_dir(euid.as_raw())
        }
    }

    /// The state directory of a user without a runtime directory:
    /// `sysjail-UID` in the temporary directory ($TMPDIR or /tmp). Anyone
    /// may create that name first; [`Registry::open`] refuses it then.
    pub fn fallback_dir(uid: u32) -> PathBuf {
        std::env::temp_dir().join(format!("sysjail-{uid}"))
    }

    /// Opens a state directory, creating it (mode 0700) if it is missing.
    ///
    /// Only the last component is created; its parent must exist (/run,
    /// $XDG_RUNTIME_DIR and /tmp always do). Every open checks, on a
    /// descriptor opened without following a link, that it is a directory
    /// owned by the caller's effective uid and writable by no one else:
    /// anything in a directory another user can write (a link at `lock`, a
    /// record, a socket) would be that user's choice, followed by root.
    /// Group and others may read it (root's /run/sysjail is 0700 when sysjail
    /// creates it, but an administrator's 0755 is fine).
    pub fn open(dir: &Path) -> Result<Registry, StateError> {
        let unsafe_dir = |why| StateError::Unsafe {
            dir: dir.to_path_buf(),
            why,
        };
        // The directories above it under the host-path rule: a link on the
        // way is followed only where root alone can have made it.
        let (parent, name) =
            crate::sys::hostpath::open_parent(dir).map_err(|e| StateError::Dir(dir.to_path_buf(), e.into_io()))?;
        // mkdir(2) never follows a link at the last component: it fails EEXIST.
        match nix::sys::stat::mkdirat(parent.as_fd(), name.as_os_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(StateError::Dir(dir.to_path_buf(), e.into())),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(parent.as_fd(), name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            // A link, with O_NOFOLLOW, fails ELOOP, or ENOTDIR with O_DIRECTORY.
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                let link = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
                return Err(unsafe_dir(if link { Unsafe::Link } else { Unsafe::NotDir }));
            }
            Err(e) => return Err(StateError::Dir(dir.to_path_buf(), e.into())),
        };
        let st = fstat(&fd).map_err(|e| StateError::Dir(dir.to_path_buf(), e.into()))?;
        let euid = nix::unistd::geteuid().as_raw();
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(unsafe_dir(Unsafe::NotDir));
        }
        if st.st_uid != euid {
            return Err(unsafe_dir(Unsafe::Owner { owner: st.st_uid, euid }));
        }
        if st.st_mode & 0o022 != 0 {
            return Err(unsafe_dir(Unsafe::Writable {
                mode: st.st_mode & 0o7777,
            }));
        }
        Ok(Registry {
            dir: dir.to_path_buf(),
            fd: Arc::new(fd),
        })
    }

    /// The directory, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory's descriptor: open entries relative to it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `name` in the directory, never following a link there.
    fn openat(&self, name: &str, flags: OFlag, mode: u32) -> Result<OwnedFd, StateError> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        nix::fcntl::openat(self.fd(), name, flags, Mode::from_bits_truncate(mode)).map_err(|e| match e {
            Errno::ELOOP => StateError::Link(self.dir.join(name)),
            e => StateError::Dir(self.dir.join(name), e.into()),
        })
    }

    /// Takes the registry lock (blocking).
    pub fn lock(&self) -> Result<Lock, StateError> {
        let fd = self.openat("lock", OFlag::O_RDWR | OFlag::O_CREAT, 0o600)?;
        let file = File::from(fd);
        file.lock().map_err(|e| StateError::Dir(self.dir.join("lock"), e))?;
        Ok(Lock { _file: file })
    }

    fn record_name(name: &str) -> String {
        format!("{name}.json")
    }

    /// The name of a jail's control socket in the directory.
    pub fn control_name(name: &str) -> String {
        format!("{name}.sock")
    }

    /// The control socket of a jail, for messages (connect and bind go
    /// through the directory's descriptor).
    pub fn control_path(&self, name: &str) -> PathBuf {
        self.dir.join(Registry::control_name(name))
    }

    /// Reads one record; `None` unless it is a regular file of sensible size
    /// holding a record.
    fn read_record(&self, file: &str) -> Option<Record> {
        let fd = self.openat(file, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0).ok()?;
        let st = fstat(&fd).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 > MAX_RECORD {
            return None;
        }
        // Sized from fstat: one read (and one at EOF) instead of a growing
        // series; `list` reads every record.
        let mut bytes = Vec::with_capacity(st.st_size as usize + 1);
        File::from(fd).take(MAX_RECORD).read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every record, live or not, by jid.
    pub fn list(&self, _lock: &Lock) -> Vec<Record> {
        let mut names: Vec<String> = self
            .entry_names()
            .into_iter()
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        names.sort();
        let mut out: Vec<Record> = names.iter().filter_map(|n| self.read_record(n)).collect();
        out.sort_by_key(|r| r.id);
        out
    }

    /// Writes a record atomically (a new temporary file renamed over the old
    /// one, both in the directory's descriptor).
    ///
    /// A record that `down` marked stopping ([`Registry::mark_stopping`])
    /// stays so while the same supervisor rewrites it (finishing its start,
    /// between restarts): otherwise a dependent could start in the moment
    /// before that supervisor reads down's request, after down's look.
    pub fn write(&self, _lock: &Lock, record: &Record) -> Result<(), StateError> {
        let name = Registry::record_name(&record.name);
        let marked;
        let record = match self.read_record(&name) {
            Some(old)
                if old.state == JailState::Stopping
                    && old.supervisor_pid == record.supervisor_pid
                    && old.supervisor_start == record.supervisor_start
                    && matches!(
                        record.state,
                        JailState::Starting | JailState::Running | JailState::Restarting
                    ) =>
            {
                marked = Record {
                    state: JailState::Stopping,
                    ..record.clone()
                };
                &marked
            }
            _ => record,
        };
        let tmp = format!(".{name}.tmp");
        let path = self.dir.join(&name);
        // Whatever a crash left at the temporary name goes; O_EXCL then makes
        // a file of our own, never opens an old one.
        let _ = unlinkat(self.fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let fd = self.openat(&tmp, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL, 0o600)?;
        let write = || -> io::Result<()> {
            let mut f = File::from(fd);
            // No fsync: the rename alone keeps readers from a half-written
            // record, and a crash that loses the page cache loses the jails
            // too. (On a disk-backed state directory the two fsyncs of a
            // start cost 2 to 4 ms.)
            f.write_all(&serde_json::to_vec_pretty(record).expect("records serialize"))?;
            renameat(self.fd(), tmp.as_str(), self.fd(), name.as_str())?;
            Ok(())
        };
        write().map_err(|e| StateError::Write(path, e))?;
        self.index(record)
    }

    /// The index entry of a record: `.jid.ID.NAME`, an empty file whose
    /// name alone says which jid the record holds, so that a start finds a
    /// free jid from one directory listing instead of reading every record.
    fn index_name(id: u32, name: &str) -> String {
        format!(".jid.{id}.{name}")
    }

    /// Makes `record`'s index entry, if it has none yet.
    fn index(&self, record: &Record) -> Result<(), StateError> {
        // One entry of this directory, never a path beneath it.
        if record.name.is_empty() || record.name.contains('/') {
            return Ok(());
        }
        let entry = Registry::index_name(record.id, &record.name);
        match self.openat(&entry, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL, 0o600) {
            Ok(_) => Ok(()),
            Err(StateError::Dir(_, e)) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The (jid, name) of every index entry, from one listing.
    fn index_entries(&self) -> Vec<(u32, String)> {
        self.entry_names()
            .into_iter()
            .filter_map(|n| {
                let (id, name) = n.strip_prefix(".jid.")?.split_once('.')?;
                Some((id.parse().ok()?, name.to_string()))
            })
            .collect()
    }

    /// The jids in use: every record's, live or history, as the index says.
    /// A directory that some earlier sysjail kept without an index gets one
    /// first, from its records.
    pub fn used_jids(&self, lock: &Lock) -> BTreeSet<u32> {
        if self.openat(INDEXED, OFlag::O_RDONLY, 0).is_err() {
            for r in self.list(lock) {
                let _ = self.index(&r);
            }
            let _ = self.openat(INDEXED, OFlag::O_WRONLY | OFlag::O_CREAT, 0o600);
        }
        self.index_entries().into_iter().map(|(id, _)| id).collect()
    }

    /// Every entry name of the directory (a descriptor of its own: reading
    /// a directory moves its offset).
    fn entry_names(&self) -> Vec<String> {
        let dir = nix::fcntl::openat(
            self.fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .and_then(nix::dir::Dir::from_fd);
        match dir {
            Ok(mut d) => d
                .iter()
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().ok().map(String::from))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The name of a background jail's default output log in the directory
    /// (rotated to NAME.log.1).
    pub fn log_name(name: &str) -> String {
        format!("{name}.log")
    }

    /// Removes a jail's record, its index entry, control socket and
    /// default log.
    pub fn remove(&self, _lock: &Lock, name: &str) {
        if let Some(r) = self.read_record(&Registry::record_name(name)) {
            let _ = unlinkat(
                self.fd(),
                Registry::index_name(r.id, &r.name).as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
        let log = Registry::log_name(name);
        for entry in [
            Registry::record_name(name),
            Registry::control_name(name),
            format!("{log}.1"),
            log,
        ] {
            let _ = unlinkat(self.fd(), entry.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }

    /// Removes a jail's record and control socket if the record is still
    /// the one of supervisor `pid`.
    pub fn remove_if(&self, lock: &Lock, name: &str, pid: i32) {
        // Its own file only: listing every record costs milliseconds with
        // hundreds of jails running.
        let ours = self.read_record(&Registry::record_name(name));
        if ours.is_some_and(|r| r.supervisor_pid == pid) {
            self.remove(lock, name);
        }
    }

    /// The live jail named `which`, read from its own file alone (written
    /// names are never digits only; a name that is no plain file name is
    /// never one of a record): reading every record costs milliseconds with
    /// hundreds of jails.
    fn live_by_name(&self, which: &str) -> Option<Record> {
        self.named(which).filter(alive)
    }

    /// The record of the jail named exactly `name` (a plain file name, never
    /// a JID), live or not, read from its own file alone.
    fn named(&self, name: &str) -> Option<Record> {
        let plain = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
        plain
            .then(|| self.read_record(&Registry::record_name(name)))
            .flatten()
            .filter(|r| r.name == name)
    }

    /// [`Registry::named`], for callers outside: under the lock.
    pub fn record_of(&self, _lock: &Lock, name: &str) -> Option<Record> {
        self.named(name)
    }

    /// Removes the history record of the ended jail named exactly `name`
    /// (never a JID), reading its own file alone; true if there was one.
    pub fn clear_history(&self, lock: &Lock, name: &str) -> bool {
        let ended = self.named(name).is_some_and(|r| r.ended());
        if ended {
            self.remove(lock, name);
        }
        ended
    }

    /// Finds a live jail by name or jid.
    pub fn find(&self, lock: &Lock, which: &str) -> Result<Record, StateError> {
        if let Some(r) = self.live_by_name(which) {
            return Ok(r);
        }
        self.list(lock)
            .into_iter()
            .filter(alive)
            .find(|r| r.name == which || r.id.to_string() == which)
            .ok_or_else(|| StateError::NotFound(which.to_string()))
    }

    /// Finds a jail by name or jid, live or ended (its history record); a
    /// live one comes first.
    pub fn find_any(&self, lock: &Lock, which: &str) -> Result<Record, StateError> {
        // A live jail comes first, as below; an ended one may share its
        // number with a live one, so only the full list tells.
        if let Some(r) = self.live_by_name(which) {
            return Ok(r);
        }
        let mut found: Vec<Record> = self
            .list(lock)
            .into_iter()
            .filter(|r| alive(r) || r.ended())
            .filter(|r| r.name == which || r.id.to_string() == which)
            .collect();
        found.sort_by_key(Record::ended);
        found
            .into_iter()
            .next()
            .ok_or_else(|| StateError::NotFound(which.to_string()))
    }

    /// Removes records whose supervisor is gone, with what they left behind,
    /// and returns them. History records stay.
    pub fn clean_stale(&self, lock: &Lock) -> Vec<Record> {
        self.live(lock).1
    }

    /// The live records, by jid, after removing the stale ones (returned
    /// second): one pass over the directory. History records of ended jails
    /// are in neither.
    pub fn live(&self, lock: &Lock) -> (Vec<Record>, Vec<Record>) {
        let all = self.list(lock);
        // Index entries a crash left without their record hold a jid for
        // nothing: they go with the full listing.
        let held: BTreeSet<(u32, &str)> = all.iter().map(|r| (r.id, r.name.as_str())).collect();
        for (id, name) in self.index_entries() {
            if !held.contains(&(id, name.as_str())) {
                let _ = unlinkat(
                    self.fd(),
                    Registry::index_name(id, &name).as_str(),
                    UnlinkatFlags::NoRemoveDir,
                );
            }
        }
        let (live, stale): (Vec<Record>, Vec<Record>) = all.into_iter().filter(|r| !r.ended()).partition(alive);
        for r in &stale {
            let _ = teardown_locked(self, lock, r);
        }
        (live, stale)
    }

    /// Reserves a name: fails if a live jail has it; returns the smallest free jid.
    ///
    /// The record of that name alone is read, and the index listed: the cost
    /// of a start does not grow with the jails running.
    pub fn reserve(&self, lock: &Lock, name: &str) -> Result<u32, StateError> {
        if let Some(r) = self.named(name) {
            if r.ended() {
                // An ended jail's history gives way to the new run's record.
                self.remove(lock, name);
            } else if alive(&r) {
                return Err(StateError::NameTaken {
                    name: name.to_string(),
                    id: r.id,
                    pid: r.supervisor_pid,
                });
            } else {
                // Its supervisor died without cleaning up.
                let _ = teardown_locked(self, lock, &r);
            }
        }
        free_jid(&self.used_jids(lock))
    }

    /// Holds `jail`'s start to its dependencies: each must run and not be
    /// on its way down. Checked under the same lock as the new record is
    /// written, against `down`'s mark ([`Registry::mark_stopping`]): either
    /// `down` lists the new jail and stops it first, or the start fails.
    ///
    /// Gives every jail `jail` needs, directly or through the jails it
    /// depends on (their records hold theirs): the record keeps them all, so
    /// that `down` stops `jail` before any of them, even once a jail between
    /// them has gone.
    pub fn dependencies_run(&self, lock: &Lock, jail: &str, depend: &[String]) -> Result<Vec<String>, StateError> {
        let mut needs: Vec<String> = depend.to_vec();
        for dependency in depend {
            let why = match self.find(lock, dependency) {
                Ok(r) if r.state == JailState::Stopping => "is being stopped",
                Ok(r) => {
                    for n in r.depend {
                        if !needs.contains(&n) && n != jail {
                            needs.push(n);
                        }
                    }
                    continue;
                }
                Err(StateError::NotFound(_)) => "does not run",
                Err(e) => return Err(e),
            };
            return Err(StateError::Dependency {
                jail: jail.to_string(),
                dependency: dependency.clone(),
                why,
            });
        }
        Ok(needs)
    }

    /// Marks the running jails `names` as stopping, as `down` decides to stop
    /// them (their supervisors do too once asked): from then on no jail that
    /// depends on one of them starts ([`Registry::dependencies_run`]).
    pub fn mark_stopping(&self, lock: &Lock, records: &[Record], names: &BTreeSet<&str>) {
        for r in records.iter().filter(|r| names.contains(r.name.as_str())) {
            let mut r = r.clone();
            r.state = JailState::Stopping;
            let _ = self.write(lock, &r);
        }
    }
}

/// Marks a state directory whose records all have index entries.
const INDEXED: &str = ".jid-index";

/// The smallest jid not in `used` ([`Registry::used_jids`]): for a jail
/// named by it, no other jail can have that name, since written names are
/// never digits only and a jid is free only when no record, live or
/// history, has it.
pub fn free_jid(used: &BTreeSet<u32>) -> Result<u32, StateError> {
    (1..=MAX_JAILS)
        .find(|id| !used.contains(id))
        .ok_or(StateError::Full(MAX_JAILS))
}

/// The start time of a process, to tell it from a later one with the same pid.
pub fn start_time(pid: i32) -> Option<u64> {
    // Called for every record: open, one read, close. procfs returns the
    // whole line (a few hundred bytes) in one read when the buffer holds it.
    let mut file = File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = file.read(&mut buf).ok()?;
    let mut bytes = buf[..n].to_vec();
    if n == buf.len() {
        file.read_to_end(&mut bytes).ok()?;
    }
    let stat = String::from_utf8_lossy(&bytes);
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

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil-from-days).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
            depend: vec![],
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
            veth: None,
            control: PathBuf::from("/nonexistent"),
            state: JailState::Running,
            limits: Limits::default(),
            run: Run::default(),
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
    fn jids_come_from_the_index_which_follows_the_records() {
        let dir = std::env::temp_dir().join(format!("sysjail-state-index-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let reg = Registry::open(&dir).unwrap();
        let lock = reg.lock().unwrap();
        let me = std::process::id() as i32;
        // Records of an earlier sysjail, without index entries: indexed at
        // the first reservation, so their jids are not handed out again.
        for (name, id) in [("a", 1), ("b", 2)] {
            let text = serde_json::to_vec(&record(name, id, me)).unwrap();
            fs::write(dir.join(format!("{name}.json")), text).unwrap();
        }
        assert_eq!(reg.reserve(&lock, "c").unwrap(), 3);
        assert!(dir.join(".jid.1.a").exists() && dir.join(".jid.2.b").exists());
        // A history record holds its jid; the same name's new run takes
        // its place, and its jid.
        let mut ended = record("b", 2, me);
        ended.state = JailState::Exited;
        ended.run.ended = Some(Ended {
            at: now(),
            status: 0,
            code: Some(0),
            signal: None,
            reason: EndReason::Exited,
            events: vec![],
        });
        reg.write(&lock, &ended).unwrap();
        assert_eq!(reg.reserve(&lock, "x").unwrap(), 3);
        assert_eq!(reg.reserve(&lock, "b").unwrap(), 2);
        assert!(!dir.join(".jid.2.b").exists() && !dir.join("b.json").exists());
        // A stale record of the name is torn down, and its jid is free.
        let mut dead = record("d", 2, i32::MAX - 1);
        dead.supervisor_start = 12345;
        reg.write(&lock, &dead).unwrap();
        assert_eq!(reg.reserve(&lock, "e").unwrap(), 3);
        assert_eq!(reg.reserve(&lock, "d").unwrap(), 2);
        // An entry a crash left without its record holds its jid until a
        // full listing prunes it.
        fs::write(dir.join(".jid.2.gone"), "").unwrap();
        assert_eq!(reg.reserve(&lock, "f").unwrap(), 3);
        reg.live(&lock);
        assert_eq!(reg.reserve(&lock, "f").unwrap(), 2);
        // down's mark outlives the supervisor's own rewrites of its record.
        let mut web = record("web", 4, me);
        reg.write(&lock, &web).unwrap();
        reg.mark_stopping(&lock, std::slice::from_ref(&web), &BTreeSet::from(["web"]));
        web.run.restarts = 1;
        reg.write(&lock, &web).unwrap();
        let on_disk = reg.read_record("web.json").unwrap();
        assert_eq!((on_disk.state, on_disk.run.restarts), (JailState::Stopping, 1));
        // It ends, though; and another supervisor's record of the name is its own.
        web.state = JailState::Exited;
        reg.write(&lock, &web).unwrap();
        assert_eq!(reg.read_record("web.json").unwrap().state, JailState::Exited);
        reg.remove(&lock, "web");
        // Removing a record removes its entry.
        reg.remove(&lock, "a");
        assert_eq!(reg.used_jids(&lock), BTreeSet::new());
        drop(lock);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_a_private_directory_of_the_caller_is_opened() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("sysjail-state-open-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).unwrap();
        // Created 0700, and opened again.
        let dir = base.join("state");
        Registry::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o700);
        Registry::open(&dir).unwrap();
        // A link to it is not.
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(matches!(
            Registry::open(&link),
            Err(StateError::Unsafe { why: Unsafe::Link, .. })
        ));
        // Nor a directory others may write, nor a file.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            Registry::open(&dir),
            Err(StateError::Unsafe {
                why: Unsafe::Writable { mode: 0o777 },
                ..
            })
        ));
        fs::write(base.join("file"), "").unwrap();
        assert!(matches!(
            Registry::open(&base.join("file")),
            Err(StateError::Unsafe {
                why: Unsafe::NotDir,
                ..
            })
        ));
        // Parents are not created.
        assert!(matches!(Registry::open(&base.join("a/b")), Err(StateError::Dir(..))));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn start_time_of_this_process() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert!(start_time(i32::MAX - 1).is_none());
    }
}
