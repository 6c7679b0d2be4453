//! The supervisor's setup: one loop over the plan's host steps, each turned
//! into calls of a [`Host`], as [`super::jail`] does for init's steps.
//!
//! The real implementation is [`Real`]; tests use a recording double to check
//! the order of calls without root.

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

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
    /// Moves into cgroups, under way.
    type Joining: Joining;

    /// Creates a cgroup and writes its limits.
    fn create_cgroup(&mut self, path: &Path, limits: &[(String, String)]) -> Result<(), Failure>;
    /// Loads the address-rewrite programs and attaches them to a cgroup.
    fn attach_rewrite(&mut self, cgroup: &Path, programs: &[Program]) -> Result<(), Failure>;
    /// Creates init; it waits for its go-ahead.
    fn clone_init(&mut self, spec: &CloneSpec) -> Result<Self::Init, Failure>;
    /// Starts moving init into these cgroups, in order. On a v1 hierarchy a
    /// move waits for an RCU grace period; init meanwhile sets the jail up,
    /// and waits for the moves only before it unshares its cgroup namespace.
    fn join_cgroups(&mut self, init: &Self::Init, paths: Vec<PathBuf>) -> Self::Joining;
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

/// Cgroup moves under way.
pub trait Joining {
    /// Waits for them: one result per cgroup, in order.
    fn wait(self) -> Vec<Result<(), Failure>>;
}

impl Joining for Vec<Result<(), Failure>> {
    fn wait(self) -> Vec<Result<(), Failure>> {
        self
    }
}

/// The [`HostStep::JoinCgroup`] steps of a setup, under way until
/// [`Joins::finish`].
pub struct Joins<J> {
    under_way: Option<J>,
    /// Each step's number and text, for errors.
    steps: Vec<(usize, String)>,
    total: usize,
    created: Created,
}

impl<J: Joining> Joins<J> {
    /// Whether there are any.
    pub fn any(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Waits for the moves; the first that failed, numbered as its step.
    pub fn finish(mut self) -> Result<(), StepError> {
        let Some(joining) = self.under_way.take() else {
            return Ok(());
        };
        let failed = joining
            .wait()
            .into_iter()
            .zip(&self.steps)
            .find_map(|(r, step)| r.err().map(|e| (e, step)));
        match failed {
            None => Ok(()),
            Some((failure, (index, step))) => Err(StepError {
                index: *index,
                total: self.total,
                step: step.clone(),
                failure,
                created: Box::new(self.created),
            }),
        }
    }
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
pub struct Started<I, F, J> {
    /// The jail's init.
    pub init: I,
    /// The prepared mounts, by slot.
    pub prepared: Vec<F>,
    /// The cgroups and veth made.
    pub created: Created,
    /// Init's moves into v1 cgroups, under way.
    pub joins: Joins<J>,
}

/// What [`run`] leaves on host `H`.
pub type StartedOn<H> = Started<<H as Host>::Init, <H as Host>::Fd, <H as Host>::Joining>;

/// Carries out the host steps in order; the cgroup joins are left under way
/// (see [`Host::join_cgroups`]). A failure after the clone kills init.
pub fn run<H: Host>(steps: &HostSteps, ids: &IdMapping, h: &mut H) -> Result<StartedOn<H>, StepError> {
    let mut init = None;
    let mut prepared = Vec::new();
    let mut created = Created::default();
    let mut joins: Vec<(usize, String, PathBuf)> = Vec::new();
    let mut joining = None;
    for (i, action) in steps.actions().enumerate() {
        if let HostAction::Step(HostStep::JoinCgroup { path }) = action {
            joins.push((i + 1, action.to_string(), path.clone()));
            continue;
        }
        // The joins are consecutive: they start as soon as they are all known.
        if let (Some(init), None, false) = (&init, &joining, joins.is_empty()) {
            joining = Some(h.join_cgroups(init, joins.iter().map(|j| j.2.clone()).collect()));
        }
        let done = match action {
            HostAction::Clone(spec) => h.clone_init(spec).map(|cloned| init = Some(cloned)),
            HostAction::Step(step) => {
                let done = run_one(step, init.as_ref(), ids, h, &mut prepared);
                created.note(step, done.as_ref().err());
                done
            }
        };
        if let Err(failure) = done {
            // No move may still be running once init is gone.
            drop(joining.map(Joining::wait));
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
    if joining.is_none() && !joins.is_empty() {
        joining = Some(h.join_cgroups(&init, joins.iter().map(|j| j.2.clone()).collect()));
    }
    Ok(Started {
        joins: Joins {
            under_way: joining,
            steps: joins.into_iter().map(|(i, s, _)| (i, s)).collect(),
            total: steps.len(),
            created: created.clone(),
        },
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
        // Collected by `run`, and started together.
        HostStep::JoinCgroup { .. } => Ok(()),
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
    type Joining = Moving;

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

    fn join_cgroups(&mut self, init: &Init, paths: Vec<PathBuf>) -> Moving {
        let pid = init.pid;
        let join = move || -> Vec<Result<(), Failure>> {
            paths
                .iter()
                .map(|path| host::join_cgroup(path, pid).map_err(Failure::from))
                .collect()
        };
        // The supervisor is single-threaded again once the moves are waited
        // for, before it forks anything (`Joins::finish`, or a failed setup).
        match std::thread::Builder::new()
            .name("cgroup-join".into())
            .spawn(join.clone())
        {
            Ok(thread) => Moving::Thread(thread),
            Err(_) => Moving::Done(join()),
        }
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

/// Moves into cgroups on a thread of their own, or done already.
pub enum Moving {
    /// Under way.
    Thread(std::thread::JoinHandle<Vec<Result<(), Failure>>>),
    /// Done in place: the thread could not be made.
    Done(Vec<Result<(), Failure>>),
}

impl Joining for Moving {
    fn wait(self) -> Vec<Result<(), Failure>> {
        match self {
            Moving::Thread(thread) => thread
                .join()
                .unwrap_or_else(|_| vec![Err(Failure::Io(io::Error::other("the cgroup moves panicked")))]),
            Moving::Done(results) => results,
        }
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
