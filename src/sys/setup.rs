//! The supervisor's setup: one loop over the plan's host steps, each turned
//! into calls of a [`Host`], as [`super::jail`] does for init's steps.
//!
//! The real implementation is [`Real`]; tests use a recording double to check
//! the order of calls without root.

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use super::host::{self, PrepareError};
use super::raw;
use crate::model::AbsPath;
use crate::plan::{CloneSpec, DiskIds, HostAction, HostStep, HostSteps, IdMapLines, IdMapping, Route};
use crate::policy::Namespace;
use crate::rewrite::Program;

/// The calls the supervisor's setup makes.
pub trait Host {
    /// The jail's init, once cloned.
    type Init;
    /// A mount prepared for init.
    type Fd;

    /// Creates a cgroup and writes its limits.
    fn create_cgroup(&mut self, path: &Path, limits: &[(String, String)]) -> Result<(), Failure>;
    /// Loads the address-rewrite programs and attaches them to a cgroup.
    fn attach_rewrite(&mut self, cgroup: &Path, programs: &[Program]) -> Result<(), Failure>;
    /// Creates init; it waits for its go-ahead.
    fn clone_init(&mut self, spec: &CloneSpec) -> Result<Self::Init, Failure>;
    /// Moves init into a cgroup.
    fn join_cgroup(&mut self, init: &Self::Init, path: &Path) -> Result<(), Failure>;
    /// Writes init's uid_map, setgroups and gid_map.
    fn write_id_maps(
        &mut self,
        init: &Self::Init,
        uid_map: &IdMapLines,
        gid_map: &IdMapLines,
        deny_setgroups: bool,
    ) -> Result<(), Failure>;
    /// Creates the veth pair, its peer in init's network namespace.
    fn create_veth(&mut self, init: &Self::Init, veth: Veth<'_>) -> Result<(), Failure>;
    /// A detached copy of a host tree for init.
    fn prepare_mount(&mut self, mount: Prepare<'_>, ids: &IdMapping) -> Result<Self::Fd, Failure>;
    /// Kills init and reaps it: a step after the clone failed.
    fn abandon(&mut self, init: Self::Init);
}

/// The veth of [`HostStep::CreateVeth`].
#[derive(Clone, Copy, Debug)]
pub struct Veth<'a> {
    /// The host end.
    pub host: &'a str,
    /// The jail end.
    pub peer: &'a str,
    /// A bridge the host end joins.
    pub bridge: Option<&'a str>,
    /// Addresses of the host end.
    pub addresses: &'a [(std::net::IpAddr, u8)],
    /// Routes on the host.
    pub routes: &'a [Route],
}

/// The mount of [`HostStep::PrepareMount`].
#[derive(Clone, Copy, Debug)]
pub struct Prepare<'a> {
    /// The host tree.
    pub source: &'a AbsPath,
    /// With its submounts.
    pub recursive: bool,
    /// Id mapping.
    pub idmap: Option<DiskIds>,
    /// Writable through it.
    pub writable: bool,
}

/// Why a host step failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// What the kernel said.
    #[error("{}", raw::errno_name(.0))]
    Io(#[from] io::Error),
    /// What the kernel said, and what it means here.
    #[error("{why}: {}", raw::errno_name(.error))]
    Explained {
        /// The likely cause.
        why: &'static str,
        /// The error.
        error: io::Error,
    },
    /// A host tree could not be prepared.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A step that needs init came before the clone ([`crate::plan::check`]
    /// rules that out).
    #[error("internal error: the step needs init, which does not exist yet")]
    NoInit,
}

impl Failure {
    /// The step found its object there already: a cgroup or veth of the same
    /// name belongs to someone else, and teardown must leave it alone.
    fn found_existing(&self) -> bool {
        let e = match self {
            Failure::Io(e) | Failure::Explained { error: e, .. } => e,
            _ => return false,
        };
        // The executor's errors keep the kind, not always the number.
        e.raw_os_error() == Some(libc::EEXIST) || e.kind() == io::ErrorKind::AlreadyExists
    }
}

/// The cgroups and the veth this launch made: what teardown may remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Created {
    /// Cgroup directories, in order.
    pub cgroups: Vec<std::path::PathBuf>,
    /// The host end of the veth.
    pub veth: Option<String>,
}

impl Created {
    /// Notes what `step` made, whether or not it went on to succeed: a
    /// cgroup whose limit was refused is ours all the same; one that was
    /// there already is not.
    fn note(&mut self, step: &HostStep, failure: Option<&Failure>) {
        if failure.is_some_and(Failure::found_existing) {
            return;
        }
        match step {
            HostStep::CreateCgroup { path, .. } => self.cgroups.push(path.clone()),
            HostStep::CreateVeth { host, .. } => self.veth = Some(host.clone()),
            _ => {}
        }
    }
}

/// A host step that failed, numbered as `sysjail up --dry-run` shows it.
#[derive(Debug, thiserror::Error)]
#[error("host step {index}/{total} {step}: {failure}")]
pub struct StepError {
    /// 1-based index.
    pub index: usize,
    /// Number of host steps.
    pub total: usize,
    /// The step, as printed.
    pub step: String,
    /// Why.
    pub failure: Failure,
    /// What the steps before it (and it, partly) made.
    pub created: Box<Created>,
}

/// What the setup leaves: init, waiting, and the mounts it is to receive.
pub struct Started<I, F> {
    /// The jail's init.
    pub init: I,
    /// The prepared mounts, by slot.
    pub prepared: Vec<F>,
    /// The cgroups and veth made.
    pub created: Created,
}

/// Carries out the host steps in order. A failure after the clone kills init.
pub fn run<H: Host>(steps: &HostSteps, ids: &IdMapping, h: &mut H) -> Result<Started<H::Init, H::Fd>, StepError> {
    let mut init = None;
    let mut prepared = Vec::new();
    let mut created = Created::default();
    for (i, action) in steps.actions().enumerate() {
        let done = match action {
            HostAction::Clone(spec) => h.clone_init(spec).map(|cloned| init = Some(cloned)),
            HostAction::Step(step) => {
                let done = run_one(step, init.as_ref(), ids, h, &mut prepared);
                created.note(step, done.as_ref().err());
                done
            }
        };
        if let Err(failure) = done {
            if let Some(init) = init.take() {
                h.abandon(init);
            }
            return Err(StepError {
                index: i + 1,
                total: steps.len(),
                step: action.to_string(),
                failure,
                created: Box::new(created),
            });
        }
    }
    let init = init.expect("the plan's steps hold the clone");
    Ok(Started {
        init,
        prepared,
        created,
    })
}

fn run_one<H: Host>(
    step: &HostStep,
    init: Option<&H::Init>,
    ids: &IdMapping,
    h: &mut H,
    prepared: &mut Vec<H::Fd>,
) -> Result<(), Failure> {
    let init = || init.ok_or(Failure::NoInit);
    match step {
        HostStep::CreateCgroup { path, limits } => h.create_cgroup(path, limits),
        HostStep::AttachRewrite { cgroup, programs, .. } => h.attach_rewrite(cgroup, programs),
        HostStep::JoinCgroup { path } => h.join_cgroup(init()?, path),
        HostStep::WriteIdMaps {
            uid_map,
            gid_map,
            deny_setgroups,
        } => h.write_id_maps(init()?, uid_map, gid_map, *deny_setgroups),
        HostStep::CreateVeth {
            host,
            peer,
            bridge,
            addresses,
            routes,
        } => {
            let veth = Veth {
                host,
                peer,
                bridge: bridge.as_deref(),
                addresses,
                routes,
            };
            h.create_veth(init()?, veth)
        }
        HostStep::PrepareMount {
            source,
            recursive,
            idmap,
            writable,
            ..
        } => {
            let mount = Prepare {
                source,
                recursive: *recursive,
                idmap: *idmap,
                writable: *writable,
            };
            prepared.push(h.prepare_mount(mount, ids)?);
            Ok(())
        }
    }
}

/// The jail's init, from the supervisor's side.
#[derive(Debug)]
pub struct Init {
    /// Its pid on the host.
    pub pid: i32,
    /// Its pidfd.
    pub pidfd: OwnedFd,
}

/// The real host. `child` is what the clone's child runs: init, which never
/// returns (its type says so).
pub struct Real<F: FnOnce() -> Infallible> {
    child: Option<F>,
}

impl<F: FnOnce() -> Infallible> Real<F> {
    /// A host whose clone runs `child` as init.
    pub fn new(child: F) -> Self {
        Real { child: Some(child) }
    }
}

impl<F: FnOnce() -> Infallible> Host for Real<F> {
    type Init = Init;
    type Fd = OwnedFd;

    fn create_cgroup(&mut self, path: &Path, limits: &[(String, String)]) -> Result<(), Failure> {
        Ok(host::create_cgroup(path, limits)?)
    }

    fn attach_rewrite(&mut self, cgroup: &Path, programs: &[Program]) -> Result<(), Failure> {
        Ok(super::bpf::attach_all(cgroup, programs)?)
    }

    // The child's arm calls init, which never returns: what follows is
    // unreachable there, by its type.
    #[allow(unreachable_code)]
    fn clone_init(&mut self, spec: &CloneSpec) -> Result<Init, Failure> {
        let flags = spec.namespaces.iter().fold(0u64, |f, ns| f | ns_flag(*ns));
        let cgroup = spec
            .into_cgroup
            .as_ref()
            .map(File::open)
            .transpose()?
            .map(OwnedFd::from);
        // As root, the jail's user namespace is created as jail root's host
        // uid, so that the kernel charges the jail's per-user counters to
        // that unprivileged identity, never to host root's.
        let owner = spec.owner.map(super::privs::OwnerUid::enter).transpose()?;
        let (forked, joined) = clone3(flags, cgroup.as_ref());
        if let Some(owner) = owner {
            if let Ok(raw::Forked::Child) = forked {
                // Init keeps the jail's uid, never root's: it takes its own
                // ids once they are mapped.
                drop(owner);
            } else {
                owner.leave()?;
            }
        }
        let init = match forked.map_err(|e| clone_error(e, flags))? {
            raw::Forked::Child => match (self.child.take().expect("one clone"))() {},
            raw::Forked::Parent { pid, pidfd } => Init { pid, pidfd },
        };
        // The parent's copy of what init holds (its end of the channel).
        self.child = None;
        match (&spec.into_cgroup, joined) {
            // Kernels before 5.7 lack CLONE_INTO_CGROUP: join after the fact.
            (Some(path), false) => match host::join_cgroup(path, init.pid) {
                Ok(()) => Ok(init),
                Err(e) => {
                    self.abandon(init);
                    Err(e.into())
                }
            },
            _ => Ok(init),
        }
    }

    fn join_cgroup(&mut self, init: &Init, path: &Path) -> Result<(), Failure> {
        Ok(host::join_cgroup(path, init.pid)?)
    }

    fn write_id_maps(
        &mut self,
        init: &Init,
        uid_map: &IdMapLines,
        gid_map: &IdMapLines,
        deny_setgroups: bool,
    ) -> Result<(), Failure> {
        Ok(host::write_id_maps(init.pid, uid_map, gid_map, deny_setgroups)?)
    }

    fn create_veth(&mut self, init: &Init, v: Veth<'_>) -> Result<(), Failure> {
        Ok(super::net::create_veth(
            v.host,
            v.peer,
            init.pid,
            v.bridge,
            v.addresses,
            v.routes,
        )?)
    }

    fn prepare_mount(&mut self, m: Prepare<'_>, ids: &IdMapping) -> Result<OwnedFd, Failure> {
        let range = (ids.host_base, ids.count);
        Ok(host::prepare_mount(m.source, m.recursive, m.idmap, m.writable, range)?)
    }

    fn abandon(&mut self, init: Init) {
        let _ = raw::pidfd_send_signal(init.pidfd.as_fd(), libc::SIGKILL);
        reap(&init.pidfd);
    }
}

/// clone3, into the cgroup if one is given; says whether it was entered.
fn clone3(flags: u64, cgroup: Option<&OwnedFd>) -> (io::Result<raw::Forked>, bool) {
    // SAFETY: the supervisor is single-threaded; the child runs init and exits.
    match unsafe { raw::clone3(flags, cgroup.map(|f| f.as_fd())) } {
        Err(e) if cgroup.is_some() && e.raw_os_error() == Some(libc::EINVAL) => {
            // SAFETY: as above.
            (unsafe { raw::clone3(flags, None) }, false)
        }
        other => (other, cgroup.is_some()),
    }
}

/// Waits for the process of `pidfd` to end; returns its wait status as
/// (exit code, signal).
pub fn reap(pidfd: &OwnedFd) -> (i32, i32) {
    // SAFETY: siginfo is plain data filled by waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: P_PIDFD with our pidfd; info outlives the call.
        let r = unsafe { libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED) };
        if r == 0 {
            break;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return (1, 0);
        }
    }
    // SAFETY: waitid succeeded with WEXITED: si_status and si_code are set.
    let (code, status) = unsafe { (info.si_code, info.si_status()) };
    if code == libc::CLD_EXITED {
        (status, 0)
    } else {
        (0, status)
    }
}

fn ns_flag(ns: Namespace) -> u64 {
    use Namespace::*;
    (match ns {
        User => libc::CLONE_NEWUSER,
        Pid => libc::CLONE_NEWPID,
        Mount => libc::CLONE_NEWNS,
        Uts => libc::CLONE_NEWUTS,
        Ipc => libc::CLONE_NEWIPC,
        // Init unshares it once it is in the jail's cgroups.
        Cgroup => 0,
        Net => libc::CLONE_NEWNET,
    }) as u64
}

fn clone_error(error: io::Error, flags: u64) -> Failure {
    let why = match error.raw_os_error() {
        Some(libc::EPERM) if flags & libc::CLONE_NEWUSER as u64 != 0 => {
            "creating a user namespace was refused: user namespaces are disabled here \
             (kernel.unprivileged_userns_clone, user.max_user_namespaces, or an LSM policy)"
        }
        Some(libc::ENOSPC) => "the user namespace limit is reached (user.max_user_namespaces)",
        Some(libc::ENOSYS) => "clone3(2) needs Linux 5.3",
        _ => return Failure::Io(error),
    };
    Failure::Explained { why, error }
}

#[cfg(test)]
mod tests;
