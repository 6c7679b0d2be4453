//! The launcher: one preamble for every form of launch.
//!
//! `sysjail up`, `up --dry-run`, the classic `jail` command line and
//! `sysjail selftest` all come here. [`start`] reads top to bottom: the
//! host's facts, the policy, the users, the registry's name and jid, the host
//! id range, the plan, the record, the janitor; then the supervisor keeps the
//! running jail, and [`teardown`](crate::state::teardown) removes what is left.

mod error;

use std::collections::BTreeMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

pub use error::{Awaiting, UpError};

use crate::facts::HostFacts;
use crate::model::{Identity, Jail, JailName};
use crate::plan::{self, LaunchPlan};
use crate::policy::{self, JAIL_IDS, Policy};
use crate::state::{self, JailState, Record, Registry};
use crate::supervisor::{self, Logs, Report, control, janitor, tty};
use crate::sys::probe;
use crate::users;

/// First host id of jail 0's range; jail N maps to the 65536 ids from
/// ID_BASE + N * 65536, above the ranges systemd-nspawn picks from.
pub const ID_BASE: u32 = 0x7000_0000;

/// What `sysjail up` was asked.
pub struct Launch {
    /// The validated definition.
    pub jail: Jail,
    /// Digest of its files.
    pub digest: u64,
    /// Replaces the definition's command.
    pub command: Option<Vec<String>>,
    /// Detach once the command runs.
    pub background: bool,
    /// Print the jail id.
    pub print_id: bool,
    /// The registry.
    pub registry: Registry,
    /// Log denied calls (also `log-denials` in the definition).
    pub log_denials: Option<PathBuf>,
    /// Mount a dedicated root without id mapping.
    pub no_idmap: bool,
    /// The command's stdin, stdout and stderr, instead of the caller's (for
    /// programs that embed the library, and for selftest).
    pub stdio: Option<[OwnedFd; 3]>,
}

/// What a launch takes from the process that asks for it.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// Its environment, inherited unless `clean-env`.
    pub env: BTreeMap<String, String>,
    /// Its pid: the veth's host end is `sj` and the pid, unique on the host
    /// while the supervisor lives.
    pub pid: u32,
    /// The jail's stdio is a pseudo-terminal.
    pub tty: bool,
}

impl Caller {
    /// This process, launching `launch`.
    pub fn this_process(launch: &Launch) -> Caller {
        let stdio = [0, 1, 2].map(|fd| {
            // SAFETY: 0, 1 and 2 stay open for the process's life.
            unsafe { BorrowedFd::borrow_raw(fd) }
        });
        Caller {
            env: std::env::vars().collect(),
            pid: std::process::id(),
            tty: !launch.background && launch.stdio.is_none() && stdio.iter().any(|fd| tty::is_tty(*fd)),
        }
    }

    /// A fixed caller, for plans that must not depend on who asks (golden
    /// tests): no environment, pid 1, no terminal.
    pub fn example() -> Caller {
        Caller {
            env: BTreeMap::new(),
            pid: 1,
            tty: false,
        }
    }
}

/// Launches the jail and supervises it; returns the exit status of `sysjail up`.
pub fn up(launch: Launch) -> Result<i32, UpError> {
    up_on(&facts(&launch.registry), launch)
}

/// The host's facts for a launch with this registry: probed once and
/// cached in its directory while they stay valid (see
/// [`crate::facts::CachedFacts::valid_for`]).
pub fn facts(registry: &Registry) -> HostFacts {
    registry.facts(probe::key(), probe::probe)
}

/// [`up`] on facts the caller probed already (selftest derives its
/// expectations from the same facts).
pub fn up_on(facts: &HostFacts, launch: Launch) -> Result<i32, UpError> {
    // Detach before anything is locked or created: the waiting parent holds
    // nothing, and learns through a pipe whether the jail runs.
    let mut detached = None;
    if launch.background {
        match supervisor::background(launch.print_id)? {
            supervisor::Detach::Parent(code) => return Ok(code),
            supervisor::Detach::Child(report) => detached = Some(report),
        }
    }
    // Opened by the detached supervisor, which reports a refusal.
    let logs = Logs::open(&launch);
    if launch.background {
        supervisor::detach_stdio(logs.as_ref().ok().and_then(|l| l.output.as_ref()));
    }
    let outcome = logs.and_then(|logs| start(facts, &launch, logs, detached.as_mut()));
    if let (Some(report), Err(e)) = (detached.as_mut(), &outcome) {
        report.failed(&e.to_string());
    }
    outcome
}

/// The launch, top to bottom.
fn start(facts: &HostFacts, launch: &Launch, logs: Logs, detached: Option<&mut Report>) -> Result<i32, UpError> {
    let mut policy = policy::compile(&launch.jail, facts).map_err(plan::PlanError::from)?;
    let mut options = options(launch, facts, &policy, &Caller::this_process(launch))?;
    let registry = &launch.registry;
    let lock = registry.lock()?;
    // The host ids are claimed host-wide, whatever the state directory: two
    // jails sharing a range would share the kernel's per-user counters and
    // each other's files. Held until the jail is gone.
    let (jid, range) = if launch.jail.name.is_by_jid() {
        let (jid, range) = reserve_by_jid(registry, &lock, facts.root)?;
        policy.name = JailName::of_jid(jid).to_string();
        (jid, range)
    } else {
        let jid = registry.reserve(&lock, &policy.name)?;
        (jid, facts.root.then(|| state::ranges::claim(jid)).transpose()?)
    };
    options.id_base = range.as_ref().map_or(0, |claim| id_base(claim.number));
    let plan = plan::build(&policy, facts, &options)?;
    announce(&plan, jid);
    let mut record = record(launch, &plan, jid);
    registry.write(&lock, &record)?;
    let control = control::listen(registry.fd(), &Registry::control_name(&policy.name))
        .map_err(|error| UpError::io(format!("control socket {}", record.control.display()), error))?;
    drop(lock);
    let janitor =
        janitor::start(registry.clone(), record.clone()).map_err(|e| UpError::io("starting the janitor", e))?;
    let outcome = supervisor::run(launch, &plan, &mut record, control, logs, detached);
    // Why the jail ended, or what it suffered on the way, while the cgroups
    // still hold their counters.
    for event in state::limit_events(&state::usage(&record.cgroups), &record.limits) {
        eprintln!("sysjail: {}: {event}", policy.name);
    }
    for problem in state::teardown(registry, &record) {
        eprintln!("sysjail: {problem}");
    }
    janitor.done();
    drop(range);
    outcome
}

/// The JID of a jail named by it, and its range claim. The name is its
/// cgroup's, which is host-wide: as root the JID is the number of a range
/// claimed host-wide, so that jails named by JID in two state directories
/// never share a cgroup.
fn reserve_by_jid(
    registry: &Registry,
    lock: &state::Lock,
    root: bool,
) -> Result<(u32, Option<state::ranges::Claim>), UpError> {
    let jid = registry.reserve_jid(lock)?;
    if !root {
        return Ok((jid, None));
    }
    // Claims held here are skipped by the next one; they go on return.
    let mut held = Vec::new();
    for _ in 0..8 {
        let claim = state::ranges::claim(jid)?;
        if registry.jid_free(lock, claim.number) {
            return Ok((claim.number, Some(claim)));
        }
        held.push(claim);
    }
    Err(state::StateError::Full(state::MAX_JAILS).into())
}

/// The plan `up` would carry out, as text (`--dry-run`); creates nothing.
/// The jail's id range is shown as the first one.
pub fn dry_run(launch: &Launch, facts: &HostFacts, caller: &Caller) -> Result<String, UpError> {
    let mut policy = policy::compile(&launch.jail, facts).map_err(plan::PlanError::from)?;
    if launch.jail.name.is_by_jid() {
        policy.name = JailName::of_jid(1).to_string();
    }
    let mut options = options(launch, facts, &policy, caller)?;
    options.id_base = id_base(1);
    Ok(plan::build(&policy, facts, &options)?.render())
}

/// First host id of range `number`.
pub fn id_base(number: u32) -> u32 {
    ID_BASE + number * JAIL_IDS
}

/// Resolves what the launch needs from the host and the caller: the users.
fn options(launch: &Launch, facts: &HostFacts, policy: &Policy, caller: &Caller) -> Result<plan::Options, UpError> {
    let mut options = plan::Options {
        command: launch.command.clone(),
        caller_env: caller.env.clone(),
        tty: caller.tty,
        log_denials: launch.log_denials.is_some() || policy.denial_log.is_some(),
        no_idmap: launch.no_idmap,
        veth: format!("sj{}", caller.pid),
        ..plan::Options::default()
    };
    match &launch.jail.identity {
        Identity::Host(who) => {
            let passwd = users::parse_passwd(&std::fs::read_to_string("/etc/passwd").unwrap_or_default());
            let group = users::parse_group(&std::fs::read_to_string("/etc/group").unwrap_or_default());
            let user = users::find_user(&passwd, who).ok_or_else(|| UpError::HostUser(who.to_string()))?;
            let groups = users::groups_of(&group, &user);
            options.rootless_uid = Some(user.uid);
            options.host_user = Some((user, groups));
        }
        Identity::Jail(who) if !facts.root => {
            // Without privilege only one id maps: it must be known before launch.
            // The jail's own file: read under the host-path rule, bounded.
            let passwd = crate::sys::hostpath::read_small(
                &launch.jail.root.path.as_path().join("etc/passwd"),
                crate::config::USER_DATABASE_LIMIT,
            )
            .unwrap_or_default();
            let user = users::find_user(&users::parse_passwd(&passwd), who).ok_or_else(|| UpError::JailUser {
                user: who.to_string(),
                root: launch.jail.root.path.to_string(),
            })?;
            options.rootless_uid = Some(user.uid);
        }
        _ => {}
    }
    Ok(options)
}

fn announce(plan: &LaunchPlan, jid: u32) {
    for d in &plan.degraded {
        tracing::warn!("{d}");
    }
    tracing::debug!(
        "jail {} (jid {jid}): {} host steps, {} jail steps; `sysjail up --dry-run` lists them",
        plan.name,
        plan.host.len(),
        plan.jail.len()
    );
}

/// The registry's record of the jail, before it exists.
fn record(launch: &Launch, plan: &LaunchPlan, jid: u32) -> Record {
    let me = std::process::id() as i32;
    let jail = &launch.jail;
    let policy = &plan.policy;
    Record {
        id: jid,
        name: plan.name.clone(),
        hostname: policy.hostname.clone(),
        depend: jail.depend.iter().map(ToString::to_string).collect(),
        path: jail.root.path.to_string(),
        mode: policy.network.mode.to_string(),
        ipv4: jail.network.ipv4.iter().map(|a| a.addr.to_string()).collect(),
        ipv6: jail.network.ipv6.iter().map(|a| a.addr.to_string()).collect(),
        allow: jail.allow.iter().map(|a| a.to_string()).collect(),
        supervisor_pid: me,
        supervisor_start: state::start_time(me).unwrap_or(0),
        init_pid: None,
        started: state::now(),
        definition: jail.definition.clone().map(|p| std::fs::canonicalize(&p).unwrap_or(p)),
        digest: format!("{:016x}", launch.digest),
        id_base: plan.ids.host_base,
        cgroups: plan.host.cgroups(),
        veth: plan.host.veth().map(str::to_string),
        control: launch.registry.control_path(&plan.name),
        state: JailState::Starting,
        limits: state::Limits {
            memory: policy.cgroup.memory.map(|b| b.0),
            pids: policy.cgroup.pids,
            cpu: policy.cgroup.cpu.map(|c| c.0),
        },
    }
}
