//! The launcher: one preamble for every form of launch.
//!
//! `sysjail up`, `up --dry-run`, the classic `jail` command line and
//! `sysjail selftest` all come here. [`start`] reads top to bottom: the
//! host's facts, the policy, the users, the registry's name and jid, the host
//! id range, the plan, the record, the janitor; then the supervisor keeps the
//! running jail, and [`teardown`](crate::state::teardown) removes what is left.

mod error;

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use error::{Awaiting, UpError};

use crate::facts::HostFacts;
use crate::model::{Identity, Jail, JailName, Lifecycle, Restart};
use crate::plan::{self, LaunchPlan};
use crate::policy::{self, JAIL_IDS, Policy};
use crate::state::{self, EndReason, JailState, Record, Registry};
use crate::supervisor::hooks::{HookError, Phase};
use crate::supervisor::lifecycle::Outcome;
use crate::supervisor::{self, Logs, Report, Sink, control, janitor, tty};
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
    /// The configuration directory dependencies were found in, recorded for
    /// `sysjail restart` of the ended jail.
    pub config_dir: Option<PathBuf>,
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
            // systemd's readiness socket is the supervisor's to speak on,
            // not the jail's.
            env: std::env::vars().filter(|(k, _)| k != "NOTIFY_SOCKET").collect(),
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

/// Launches the jail and supervises it; returns the exit status of `sysjail
/// up`. A background launch forks: the caller returns once the jail runs,
/// and the detached supervisor exits, never returning, when it has ended.
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
    let logs = Logs::open(&launch, &launch.jail.name.to_string());
    if launch.background {
        // Our messages go to the log once the name is ours: the refusal of a
        // name in use belongs to the `up -b` that asked, not to the log of
        // the jail that has it.
        supervisor::detach_stdio(None);
    }
    let outcome = logs.and_then(|logs| start(facts, &launch, logs, detached.as_mut()));
    let Some(report) = detached.as_mut() else {
        return outcome;
    };
    // The detached supervisor: a fork of the caller, which must not go on
    // running the caller's code. It exits here with the jail's status,
    // after saying why in the log, and frees nothing on the way out: the
    // exit returns its memory, and `down` waits for that exit.
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            // 125: sysjail's own failure, apart from the command's statuses;
            // a failed hook's own.
            let status = e.hook_status().unwrap_or(125);
            report.failed(status, &e.to_string());
            crate::eprintln_lossy!("sysjail: {}", e.report());
            status
        }
    };
    std::process::exit(code.clamp(0, 255))
}

/// The launch, top to bottom.
fn start(facts: &HostFacts, launch: &Launch, mut logs: Logs, detached: Option<&mut Report>) -> Result<i32, UpError> {
    let mut policy = policy::compile(&launch.jail, facts).map_err(plan::PlanError::from)?;
    let mut options = options(launch, facts, &policy, &Caller::this_process(launch))?;
    let registry = &launch.registry;
    let lock = registry.lock()?;
    // The host ids are claimed host-wide, whatever the state directory: two
    // jails sharing a range would share the kernel's per-user counters and
    // each other's files. Held until the jail is gone.
    // Every jail this one needs, for its record: a jail named by its JID has
    // no `depend`.
    let mut needs = Vec::new();
    let (jid, range) = if launch.jail.name.is_by_jid() {
        let (jid, range) = reserve_by_jid(registry, &lock, facts.root)?;
        policy.name = JailName::of_jid(jid).to_string();
        // Its output log is named after it, now that it has a name.
        if logs.output.is_none() {
            logs.output = Logs::output(launch, &policy.name)?;
        }
        (jid, range)
    } else {
        let jid = registry.reserve(&lock, &policy.name)?;
        let depend: Vec<String> = launch.jail.depend.iter().map(ToString::to_string).collect();
        needs = registry.dependencies_run(&lock, &policy.name, &depend)?;
        (jid, facts.root.then(|| state::ranges::claim(jid)).transpose()?)
    };
    // Past the name check: a refusal is the caller's to read, not the log's.
    if launch.background {
        supervisor::detach_stdio(logs.output.as_ref().map(Sink::fd));
    }
    options.id_base = range.as_ref().map_or(0, |claim| id_base(claim.number));
    let plan = plan::build(&policy, facts, &options)?;
    announce(&plan, jid);
    let mut record = record(launch, &plan, jid);
    record.depend = needs;
    registry.write(&lock, &record)?;
    let control = control::listen(registry.fd(), &Registry::control_name(&policy.name))
        .map_err(|error| UpError::io(format!("control socket {}", record.control.display()), error))?;
    drop(lock);
    let janitor =
        janitor::start(registry.clone(), record.clone()).map_err(|e| UpError::io("starting the janitor", e))?;
    let mut owed = Owed::default();
    let mut outcome = supervise(launch, &plan, &mut record, &control, logs, detached, &mut owed);
    let failed_start = outcome.as_mut().ok().and_then(|out| out.failed_start.take());
    let problems = match &outcome {
        // A background jail that ended by itself keeps its record as history
        // (`status` shows how it ended) until `down` clears it.
        Ok(out) if launch.background && !out.by_down => {
            record.run.ended = Some(out.ended.clone());
            state::teardown_keeping(registry, &record)
        }
        // A jail that ran, and could not be started again: why, kept too.
        Err(e) if launch.background && owed.ran => {
            record.run.ended = Some(state::Ended {
                at: state::now(),
                status: e.hook_status().unwrap_or(125),
                code: None,
                signal: None,
                reason: EndReason::RestartFailed,
                events: vec![e.to_string()],
            });
            state::teardown_keeping(registry, &record)
        }
        _ => state::teardown(registry, &record),
    };
    for problem in problems {
        crate::eprintln_lossy!("sysjail: {problem}");
    }
    // After every run whose prestart hooks ran.
    if owed.poststop
        && let Err(e) = host_hooks(launch, &record, Phase::Poststop)
    {
        crate::eprintln_lossy!("sysjail: {}: {e}", policy.name);
    }
    janitor.done();
    drop(range);
    if let Some(mut failed) = failed_start {
        // What the limits did is part of why it failed.
        for event in outcome.iter().flat_map(|out| &out.ended.events) {
            failed.why.push_str(&format!("\n{}: {event}", policy.name));
        }
        failed.report();
    }
    if launch.background {
        // The detached supervisor exits right after ([`up_on`]): freeing the
        // plan's tables would only delay the exit that `down` waits for.
        std::mem::forget(plan);
        std::mem::forget(policy);
    }
    outcome.map(|out| out.status)
}

/// Runs the jail until it ends for good: again after each end that its
/// `restart` policy covers, with a growing pause in between, in fresh
/// namespaces and cgroups each time (nothing of a crashed run survives into
/// the next), under the same name, jid, id range and control socket.
fn supervise(
    launch: &Launch,
    plan: &LaunchPlan,
    record: &mut Record,
    control: &OwnedFd,
    logs: Logs,
    mut detached: Option<&mut Report>,
    owed: &mut Owed,
) -> Result<Outcome, UpError> {
    let mut logs = Some(logs);
    let mut streak = 0;
    loop {
        // The last run's systemd-cat, which exits once its pipe is closed.
        owed.cats.retain(|pid| {
            let pid = nix::unistd::Pid::from_raw(*pid);
            let flags = nix::sys::wait::WaitPidFlag::WNOHANG;
            nix::sys::wait::waitpid(pid, Some(flags)) == Ok(nix::sys::wait::WaitStatus::StillAlive)
        });
        let logs = match logs.take() {
            Some(logs) => logs,
            None => {
                let logs = Logs::open(launch, &plan.name)?;
                if launch.background {
                    // Our own messages follow the log into its new file.
                    supervisor::detach_stdio(logs.output.as_ref().map(Sink::fd));
                }
                logs
            }
        };
        record.run.log = Logs::output_path(launch, &plan.name);
        record.run.log_size = record.run.log.is_some().then_some(launch.jail.log_size.0);
        record.run.journal =
            matches!(&logs.output, Some(Sink::Journal(_))).then(|| supervisor::journal::identifier(&plan.name));
        record.run.command.clone_from(&launch.command);
        record.run.config_dir.clone_from(&launch.config_dir);
        let listener = control.try_clone().map_err(|e| UpError::io("dup", e))?;
        if let Some(Sink::Journal(cat)) = &logs.output {
            owed.cats.push(cat.pid());
        }
        host_hooks(launch, record, Phase::Prestart)?;
        owed.poststop = true;
        let began = Instant::now();
        let mut out = supervisor::run(launch, plan, record, listener, logs, detached.take())?;
        owed.ran = true;
        // Why the jail ended, or what it suffered on the way, while the
        // cgroups still hold their counters.
        let usage = state::usage(&record.cgroups);
        out.ended.events = state::limit_events(&usage, &record.limits);
        for event in &out.ended.events {
            crate::eprintln_lossy!("sysjail: {}: {event}", plan.name);
        }
        if usage.oom_kills.is_some_and(|n| n > 0) && out.ended.signal == Some(libc::SIGKILL) {
            out.ended.reason = EndReason::MemoryLimit;
        }
        if began.elapsed() >= STREAK_RESET {
            streak = 0;
        }
        let pause = if out.restart {
            // Asked for: at once, and no failure to count.
            crate::eprintln_lossy!("sysjail: {}: restarting as asked", plan.name);
            Duration::ZERO
        } else if restarts(&launch.jail.lifecycle, &out, streak) {
            streak += 1;
            let pause = backoff(streak);
            crate::eprintln_lossy!(
                "sysjail: {}: {}; restarting in {} ms ({streak}/{})",
                plan.name,
                out.ended,
                pause.as_millis(),
                launch.jail.lifecycle.restart_limit
            );
            pause
        } else {
            return Ok(out);
        };
        for problem in state::release(record) {
            crate::eprintln_lossy!("sysjail: {problem}");
        }
        owed.poststop = false;
        if let Err(e) = host_hooks(launch, record, Phase::Poststop) {
            crate::eprintln_lossy!("sysjail: {}: {e}", plan.name);
        }
        record.run.restarts += 1;
        record.run.ended = Some(out.ended.clone());
        record.run.command_pid = None;
        record.init_pid = None;
        record.state = JailState::Restarting;
        persist(launch, record);
        supervisor::sd_notify("STATUS=restarting");
        if let Some(cause) = supervisor::pause(control.as_fd(), pause) {
            supervisor::sd_notify("STOPPING=1");
            out.ended.reason = EndReason::Stopped;
            out.by_down = cause == supervisor::lifecycle::StopCause::Down;
            return Ok(out);
        }
        record.state = JailState::Starting;
        record.started = state::now();
        persist(launch, record);
    }
}

/// Runs the host hooks of `phase` (prestart or poststop), with the jail's
/// name, JID, root and host name in SYSJAIL_NAME, SYSJAIL_JID, SYSJAIL_PATH
/// and SYSJAIL_HOSTNAME.
fn host_hooks(launch: &Launch, record: &Record, phase: Phase) -> Result<(), HookError> {
    let hooks = &launch.jail.lifecycle.hooks;
    let commands = match phase {
        Phase::Prestart => &hooks.prestart,
        Phase::Poststop => &hooks.poststop,
        Phase::Poststart | Phase::Prestop => return Ok(()),
    };
    let env = [
        ("SYSJAIL_NAME", record.name.clone()),
        ("SYSJAIL_JID", record.id.to_string()),
        ("SYSJAIL_PATH", record.path.clone()),
        ("SYSJAIL_HOSTNAME", record.hostname.clone()),
    ];
    supervisor::hooks::run_host(phase, commands, hooks.timeout, &env)
}

/// What a jail's runs leave to do.
#[derive(Default)]
struct Owed {
    /// The poststop hooks of a run whose prestart hooks ran.
    poststop: bool,
    /// The systemd-cats of past runs, to reap.
    cats: Vec<i32>,
    /// A run took place: a later failure to start again is history.
    ran: bool,
}

/// A run that lasted this long starts the restart count anew.
const STREAK_RESET: Duration = Duration::from_secs(600);

/// Whether `restart` covers how the run ended: never after a stop on
/// request, a halt (jail root asked for it), a start reported failed to
/// `up -b`, or the limit of restarts in a row.
fn restarts(lifecycle: &Lifecycle, out: &Outcome, streak: u32) -> bool {
    let covered = match lifecycle.restart {
        Restart::No => false,
        Restart::OnFailure => out.status != 0,
        Restart::Always => true,
    };
    covered
        && !out.requested()
        && out.ended.reason != EndReason::Halted
        && out.failed_start.is_none()
        && streak < lifecycle.restart_limit
}

/// The pause before restart `n` (from 1): 100 ms, doubling, at most 30 s.
fn backoff(n: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << n.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(30_000))
}

fn persist(launch: &Launch, record: &Record) {
    if let Ok(lock) = launch.registry.lock() {
        let _ = launch.registry.write(&lock, record);
    }
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
    let used = registry.used_jids(lock);
    let jid = state::free_jid(&used)?;
    if !root {
        return Ok((jid, None));
    }
    // The number must be free twice: a JID of no jail of this state
    // directory, and a range no one holds host-wide. Ranges held elsewhere
    // may be any of this directory's free JIDs, so every one of them is a
    // candidate, each tried once.
    match state::ranges::claim_among(jid_candidates(jid, &used)) {
        Ok(claim) => Ok((claim.number, Some(claim))),
        Err(state::ranges::RangeError::Exhausted) => Err(state::StateError::Full(state::MAX_JAILS).into()),
        Err(e) => Err(e.into()),
    }
}

/// The JIDs a jail named by its JID may get, in the order they are tried:
/// `preferred` (the smallest JID this state directory has free), then every
/// other JID from 1 to [`state::MAX_JAILS`] that `used` does not hold.
fn jid_candidates(preferred: u32, used: &BTreeSet<u32>) -> impl Iterator<Item = u32> + '_ {
    std::iter::once(preferred)
        .chain((1..=state::MAX_JAILS).filter(move |n| *n != preferred))
        .filter(move |n| (1..=state::MAX_JAILS).contains(n) && !used.contains(n))
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
        run: state::Run::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Ended;

    fn outcome(status: i32, reason: EndReason) -> Outcome {
        Outcome {
            status,
            ended: Ended {
                at: 0,
                status,
                code: Some(status),
                signal: None,
                reason,
                events: Vec::new(),
            },
            by_down: false,
            failed_start: None,
            restart: false,
        }
    }

    #[test]
    fn the_restart_policy_covers_failures_or_every_end_but_requested_ones() {
        let policy = |restart| Lifecycle {
            restart,
            restart_limit: 2,
            ..Lifecycle::default()
        };
        let failed = outcome(3, EndReason::Exited);
        let clean = outcome(0, EndReason::Exited);
        assert!(!restarts(&policy(Restart::No), &failed, 0));
        assert!(restarts(&policy(Restart::OnFailure), &failed, 0));
        assert!(!restarts(&policy(Restart::OnFailure), &clean, 0));
        assert!(restarts(&policy(Restart::Always), &clean, 0));
        // The limit of restarts in a row.
        assert!(restarts(&policy(Restart::Always), &failed, 1));
        assert!(!restarts(&policy(Restart::Always), &failed, 2));
        // Never after a stop on request or a halt.
        for reason in [EndReason::Stopped, EndReason::StopTimeout, EndReason::Halted] {
            assert!(
                !restarts(&policy(Restart::Always), &outcome(143, reason), 0),
                "{reason:?}"
            );
        }
        // A kill by the memory limit is a failure.
        assert!(restarts(
            &policy(Restart::OnFailure),
            &outcome(137, EndReason::MemoryLimit),
            0
        ));
    }

    #[test]
    fn the_backoff_doubles_from_100ms_to_30s() {
        let ms: Vec<u128> = (1..=11).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        assert_eq!(backoff(1000), Duration::from_secs(30));
    }

    #[test]
    fn jid_candidates_skip_used_jids_and_reach_every_free_one() {
        // The attack: the claimable ranges are the JIDs this directory
        // uses (1..=9), and the preferred one (10) is held elsewhere. The
        // search must go on past them, not give up after a few tries.
        let used: BTreeSet<u32> = (1..=9).collect();
        let order: Vec<u32> = jid_candidates(10, &used).take(3).collect();
        assert_eq!(order, [10, 11, 12]);
        // A host where every range but 1..=9 and 300 is held: the first
        // candidate that is claimable is 300, the 291st tried.
        let claimable = |n: &u32| *n <= 9 || *n == 300;
        assert_eq!(jid_candidates(10, &used).find(claimable), Some(300));
        assert_eq!(jid_candidates(10, &used).position(|n| claimable(&n)), Some(290));
        assert!(jid_candidates(10, &used).all(|n| !used.contains(&n)));
        assert_eq!(jid_candidates(10, &used).count(), state::MAX_JAILS as usize - 9);
        // With every JID but one in use, that one is still found.
        let all_but: BTreeSet<u32> = (1..=state::MAX_JAILS).filter(|n| *n != 4000).collect();
        assert_eq!(jid_candidates(4000, &all_but).collect::<Vec<_>>(), [4000]);
        assert_eq!(jid_candidates(1, &all_but).collect::<Vec<_>>(), [4000]);
        // Each JID is a candidate once; none is outside 1..=MAX_JAILS.
        let none = BTreeSet::new();
        let every: Vec<u32> = jid_candidates(7, &none).collect();
        let mut sorted = every.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), every.len());
        assert_eq!(sorted, (1..=state::MAX_JAILS).collect::<Vec<_>>());
        assert_eq!(every[0], 7);
    }
}
