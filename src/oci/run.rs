//! The bundle's two runtime parts: sysjail's init inside the jail, and the
//! `createRuntime` hook on the host. Both carry out data the export wrote
//! ([`InitFile`]) through the executor's own calls in [`crate::sys`].

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{HOOK_CGROUP, InitFile, VethFile};
use crate::model::AbsPath;
use crate::seccomp::bpf::Insn;

/// Why the init or a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The init file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// It is not an init file.
    #[error("{0}: not a sysjail init file: {1}")]
    Parse(PathBuf, serde_json::Error),
    /// Init's signals could not be set up.
    #[error("signals: {0}")]
    Signals(std::io::Error),
    /// A Landlock rule names a path that is not absolute.
    #[error("{0}: a Landlock rule names {1:?}, which is not an absolute path")]
    Path(PathBuf, String),
    /// Landlock could not be applied.
    #[error("landlock: {0}")]
    Landlock(std::io::Error),
    /// The filter could not be installed.
    #[error("seccomp: {0}")]
    Seccomp(std::io::Error),
    /// No command to run.
    #[error("no command after --")]
    NoCommand,
    /// The command could not be started, or init failed.
    #[error("{0}: {1}")]
    Exec(String, std::io::Error),
    /// The runtime's state on stdin is not what the runtime spec says.
    #[error("the container state on stdin: {0}")]
    State(String),
    /// The host has no unified cgroup hierarchy for the programs.
    #[error("the address programs need the unified cgroup hierarchy (cgroup2), which this host lacks")]
    NoCgroup2,
    /// The jail's veth could not be made or removed.
    #[error("veth: {0}")]
    Veth(std::io::Error),
    /// The record of what the hooks made could not be kept.
    #[error("{0}: {1}")]
    Record(PathBuf, std::io::Error),
    /// A cgroup operation failed.
    #[error("{0}: {1}")]
    Cgroup(PathBuf, std::io::Error),
}

fn load(file: &Path) -> Result<InitFile, RunError> {
    let text = std::fs::read(file).map_err(|e| RunError::Read(file.into(), e))?;
    serde_json::from_slice(&text).map_err(|e| RunError::Parse(file.into(), e))
}

/// `sysjail oci-init FILE -- CMD...`: applies the Landlock ruleset and the
/// exact filter of `file`, then starts `command` and serves as the jail's
/// init ([`crate::sys::reaper`]) until no process of the jail is left; the
/// command's exit status. The runtime has already set no_new_privs, which
/// Landlock and the filter need.
pub fn init(file: &Path, command: &[String]) -> Result<i32, RunError> {
    let reaper = crate::sys::reaper::Init::new().map_err(RunError::Signals)?;
    let init = load(file)?;
    let (program, args) = command.split_first().ok_or(RunError::NoCommand)?;
    if init.landlock_enabled {
        let rules = init
            .landlock
            .iter()
            .map(|(p, a)| {
                AbsPath::parse(p)
                    .map(|p| (p, *a))
                    .map_err(|_| RunError::Path(file.into(), p.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::sys::privs::landlock(&rules, &init.scopes).map_err(RunError::Landlock)?;
    }
    let filter: Vec<Insn> = init
        .filter
        .iter()
        .map(|&(code, jt, jf, k)| Insn { code, jt, jf, k })
        .collect();
    crate::sys::privs::install_filter(&filter, false).map_err(RunError::Seccomp)?;
    reaper
        .serve(std::process::Command::new(program).args(args))
        .map_err(|e| RunError::Exec(program.clone(), e))
}

/// What the runtime's state on stdin says of the container.
struct State {
    id: String,
    pid: i32,
    /// The bundle directory as the runtime holds it (containerd's own per
    /// namespace and id): with the id, what tells containers apart.
    bundle: String,
}

impl State {
    /// The name of what the hooks make for this container: the veth's host
    /// end, the unified cgroup, the record.
    fn name(&self) -> String {
        VethFile::host_name(&self.bundle, &self.id)
    }
}

/// The container's id, pid and bundle from the state a runtime gives a
/// hook on stdin.
fn state(stdin: &mut impl Read) -> Result<State, RunError> {
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| RunError::State(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| RunError::State(e.to_string()))?;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    // The id names a directory: one plain component.
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Err(RunError::State(format!("id {id:?} is not a plain name")));
    }
    let pid = v["pid"].as_i64().unwrap_or(0) as i32;
    let bundle = v["bundle"].as_str().unwrap_or_default().to_string();
    Ok(State { id, pid, bundle })
}

/// Root's directory of the hooks' records: which container made the veth
/// and cgroup of a name, so that a poststop hook removes only its own.
const RECORDS: &str = "/run/sysjail-oci";

/// The records' directory, locked: every hook that reads or changes a
/// record holds this, so that two hooks of one name (two runtimes starting
/// the same bundle and id at once) never both take it, and a poststop never
/// reads a record half written. The lock goes with the descriptor.
struct Locked {
    dir: PathBuf,
    _fd: std::fs::File,
}

fn lock_records() -> Result<Locked, RunError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = records()?;
    let fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(&dir)
        .map_err(|e| RunError::Record(dir.clone(), e))?;
    // Root's directory, which no one else may open: no other user can
    // hold this lock.
    fd.lock().map_err(|e| RunError::Record(dir.clone(), e))?;
    Ok(Locked { dir, _fd: fd })
}

/// The records' directory, made if missing; refused unless root's and
/// writable by no one else, and never through a link.
fn records() -> Result<PathBuf, RunError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let dir = PathBuf::from(RECORDS);
    let fail = |e| RunError::Record(dir.clone(), e);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(fail(e)),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(fail)?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(fail(std::io::Error::other(
            "not a directory of root's that only root may enter",
        )));
    }
    Ok(dir)
}

/// The container (init pid and its start time) a record names, if its
/// init is still alive: then what the record covers is that container's.
fn record_owner_alive(path: &Path) -> Result<Option<i32>, RunError> {
    let text = match crate::sys::hostpath::read_small(path, 64) {
        Ok(t) => t,
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(RunError::Record(path.into(), e.into_io())),
    };
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(pid)), Some(Ok(start))) = (fields.next(), fields.next()) else {
        return Ok(None);
    };
    let pid = pid as i32;
    Ok((crate::state::start_time(pid) == Some(start)).then_some(pid))
}

/// Claims `name` for the container whose init is `pid`: refused while
/// another container that claimed it lives; a dead one's leftovers go.
fn claim(name: &str, pid: i32) -> Result<(), RunError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let records = lock_records()?;
    let path = records.dir.join(name);
    if let Some(other) = record_owner_alive(&path)? {
        return Err(RunError::Record(
            path,
            std::io::Error::other(format!(
                "a running container (init pid {other}) of the same bundle and id holds this name"
            )),
        ));
    }
    release(name)?;
    let start =
        crate::state::start_time(pid).ok_or_else(|| RunError::State(format!("pid {pid} is not a live process")))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| RunError::Record(path.clone(), e))?;
    writeln!(f, "{pid} {start}").map_err(|e| RunError::Record(path, e))
}

/// Removes the veth, cgroup and record of `name`.
fn release(name: &str) -> Result<(), RunError> {
    crate::sys::net::remove_veth(name).map_err(RunError::Veth)?;
    if let Ok(v2) = unified() {
        let dir = own(&v2, name);
        if let Err(e) = std::fs::remove_dir(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(RunError::Cgroup(dir, e));
        }
        // The parent goes with the last container; another one's keeps it.
        let _ = std::fs::remove_dir(v2.join(HOOK_CGROUP));
    }
    let path = PathBuf::from(RECORDS).join(name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RunError::Record(path, e)),
        _ => Ok(()),
    }
}

/// The unified hierarchy's mount point.
fn unified() -> Result<PathBuf, RunError> {
    crate::sys::probe::probe().cgroup.v2.ok_or(RunError::NoCgroup2)
}

/// The cgroup of the hook's own, for the container of `name` ([`State::name`]).
fn own(v2: &Path, name: &str) -> PathBuf {
    v2.join(HOOK_CGROUP).join(name)
}

/// `sysjail hook create-runtime FILE`, the `createRuntime` hook: creates a
/// private jail's veth as the launcher does (the host end named after the
/// container), and attaches the address programs to a cgroup that holds
/// the container and nothing else.
/// Under cgroup2 alone that is the runtime's cgroup of the container; on a
/// hybrid host the runtime manages the v1 controllers only, so the hook moves
/// the container's process into a unified cgroup of its own first. The
/// process has not run the jail's command yet: runtimes call the hook before
/// pivot_root.
pub fn hook_create_runtime(file: &Path, stdin: &mut impl Read) -> Result<(), RunError> {
    let init = load(file)?;
    let state = state(stdin)?;
    let (name, pid) = (state.name(), state.pid);
    // The rule that decided whether the bundle has hooks at all.
    if !init.hooks() {
        return Ok(());
    }
    claim(&name, pid)?;
    if let Some(veth) = &init.veth {
        let host = name.clone();
        let routes = veth.host_routes(&host);
        let (bridge, addresses) = (veth.bridge.as_deref(), &veth.host_addresses);
        crate::sys::net::create_veth(&host, &veth.peer, pid, bridge, addresses, &routes).map_err(RunError::Veth)?;
        crate::sys::net::configure_in(pid, &veth.peer, &veth.addresses, &veth.routes).map_err(RunError::Veth)?;
    }
    let Some(rewrite) = init.rewrite else {
        return Ok(());
    };
    let facts = crate::sys::probe::probe();
    let v2 = facts.cgroup.v2.clone().ok_or(RunError::NoCgroup2)?;
    let current = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| RunError::Cgroup(format!("/proc/{pid}/cgroup").into(), e))?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .unwrap_or_default();
    let dir = if facts.cgroup.v1.is_empty() && current != "/" && !current.is_empty() {
        v2.join(current.trim_start_matches('/'))
    } else {
        let dir = own(&v2, &name);
        // The launcher's own creation: the shared parent may vanish under
        // another container's poststop between its mkdir and ours.
        crate::sys::host::create_cgroup(&dir, &[]).map_err(|e| RunError::Cgroup(dir.clone(), e))?;
        crate::sys::host::join_cgroup(&dir, pid).map_err(|e| RunError::Cgroup(dir.clone(), e))?;
        dir
    };
    crate::sys::bpf::attach_all(&dir, &rewrite.programs()).map_err(|e| RunError::Cgroup(dir, e))
}

/// `sysjail hook poststop FILE`, the `poststop` hook: removes the host end
/// of the veth (if the kernel has not yet) and the cgroup the
/// `createRuntime` hook made, if it made them: only when the record of
/// their name shows that the container which made them is gone. A state
/// naming a running container (another runtime root's of the same bundle
/// and id, or a forged one) removes nothing.
pub fn hook_poststop(file: &Path, stdin: &mut impl Read) -> Result<(), RunError> {
    let init = load(file)?;
    let name = state(stdin)?.name();
    // The rule that decided whether the bundle has hooks at all.
    if !init.hooks() {
        return Ok(());
    }
    let records = lock_records()?;
    let record = records.dir.join(&name);
    if std::fs::symlink_metadata(&record).is_err() {
        // No createRuntime of this name claimed anything.
        return Ok(());
    }
    if record_owner_alive(&record)?.is_some() {
        return Ok(());
    }
    release(&name)
}
