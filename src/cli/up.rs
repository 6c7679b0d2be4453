//! `sysjail up`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sysjail::launch::{self, Launch};
use sysjail::load::{self, Definition, Rejected};
use sysjail::model::JailName;
use sysjail::sets::{self, Arg, Member, SetError, World};
use sysjail::state::Registry;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Jail definitions: files, directories (every *.toml in them but
    /// templates), or jail names (NAME.toml of the configuration directory;
    /// NAME@INSTANCE runs it as the jail NAME@INSTANCE). With more than one
    /// jail, all go to the background
    #[arg(value_name = "JAIL", required = true)]
    jails: Vec<String>,
    /// Replaces the definition's command (one jail only; for debugging and tests)
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
    /// Detach once the command runs; its output goes to `log` or /dev/null
    #[arg(short = 'b', long)]
    background: bool,
    /// Print the jail id
    #[arg(short = 'i', long)]
    print_id: bool,
    /// With -b: how long the command must run before `up` reports it started
    /// (overrides `start-window`), such as "2s"
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    wait: Option<Duration>,
    /// Print the launch plan and create nothing
    #[arg(long)]
    dry_run: bool,
    /// Record every call the policy denies in FILE (one jail only)
    #[arg(long, value_name = "FILE")]
    log_denials: Option<PathBuf>,
    /// Mount a dedicated root as it is, without id mapping (for file systems
    /// that cannot be id-mapped): its files keep their host owners
    #[arg(long)]
    no_idmap: bool,
    /// Run the jail under this name instead of its definition's, such as a
    /// second instance of it (one jail only)
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let members = match members(&args, global) {
        Ok(members) => members,
        Err(code) => return code,
    };
    let given = members.iter().filter(|m| m.given).count();
    if given > 1 && (!args.command.is_empty() || args.log_denials.is_some()) {
        sysjail::eprintln_lossy!("sysjail up: `-- CMD` and --log-denials apply to one jail; {given} are given");
        return ExitCode::from(super::USAGE);
    }
    if args.dry_run {
        return dry_run(members, &args, global);
    }
    // One jail given runs as asked; with several, none can have the terminal.
    let background = args.background || given > 1;
    let mut started: Vec<(String, Duration)> = Vec::new();
    let count = members.len();
    for (i, member) in members.into_iter().enumerate() {
        let name = member.def.jail.name.to_string();
        let stop = member.def.jail.stop.timeout;
        // Only the last, the jail given, may run in the foreground.
        let foreground = !background && i + 1 == count;
        let launch = match launch_of(member, &args, global, !foreground) {
            Ok(launch) => launch,
            Err(code) => {
                say(&stop_started(&started, global, &name));
                return code;
            }
        };
        // The detached supervisor of a background jail never returns here:
        // it exits once its jail has ended.
        let outcome = launch::up(launch);
        if foreground {
            // The jail was created and its command ran: its status is up's,
            // and its dependencies stay. Only a jail that could not be
            // created takes them down.
            // Cleanup comes before any message, so that nothing about
            // printing can leave half a set running.
            let stopped = if outcome.is_ok() {
                Vec::new()
            } else {
                stop_started(&started, global, &name)
            };
            let code = finish(outcome, "sysjail");
            say(&stopped);
            return code;
        }
        // A background start reports its failure with a status of its own.
        if !matches!(outcome, Ok(0)) {
            let stopped = stop_started(&started, global, &name);
            let code = finish(outcome, "sysjail");
            say(&stopped);
            return if code == ExitCode::SUCCESS {
                ExitCode::from(super::FAILED)
            } else {
                code
            };
        }
        started.push((name, stop));
    }
    ExitCode::SUCCESS
}

/// The jails to start, dependencies first, or the exit status after saying
/// why there are none.
fn members(args: &Args, global: &super::Global) -> Result<Vec<Member>, ExitCode> {
    let parsed: Result<Vec<Arg>, SetError> = args.jails.iter().map(|a| Arg::parse(a)).collect();
    let usage = |e: &dyn std::fmt::Display| {
        sysjail::eprintln_lossy!("sysjail up: {e}");
        ExitCode::from(super::USAGE)
    };
    let parsed = parsed.map_err(|e| usage(&e))?;
    let config_dir = global.config_dir();
    let registry = Registry::open(&global.state_dir()).map_err(|e| failure(&e))?;
    let mut world = HostWorld {
        registry: registry.dir().to_path_buf(),
        running: std::cell::OnceCell::new(),
        idmap: (!args.dry_run).then_some(!args.no_idmap),
    };
    let mut wanted = sets::wanted(&parsed, &config_dir, &world).map_err(|e| failure(&e))?;
    if let Some(name) = &args.name {
        let name = JailName::parse(name).map_err(|why| usage(&format!("--name {name}: the name {why}")))?;
        match wanted.as_mut_slice() {
            [one] if !one.listed => one.name = Some(name),
            _ => return Err(usage(&"--name names one jail; give one definition")),
        }
    }
    let members = sets::resolve(&wanted, &config_dir, &mut world).map_err(|e| match e {
        SetError::Rejected(rejected) => {
            super::print_rejected(&rejected);
            ExitCode::from(super::FAILED)
        }
        e => failure(&e),
    })?;
    if members.is_empty() {
        return Err(failure(&"no jail to start: the directories hold only templates"));
    }
    Ok(members)
}

fn failure(e: &dyn std::fmt::Display) -> ExitCode {
    sysjail::eprintln_lossy!("sysjail up: {e}");
    ExitCode::from(super::FAILED)
}

/// The host, as [`sets::resolve`] sees it.
struct HostWorld {
    /// The state directory.
    registry: PathBuf,
    /// Names of the running jails, read when a dependency is first looked
    /// up: reading every record costs milliseconds with hundreds of jails,
    /// and most jails have no `depend`.
    running: std::cell::OnceCell<BTreeSet<String>>,
    /// `None` for a dry run, which needs none of the host's trees.
    idmap: Option<bool>,
}

impl World for HostWorld {
    fn directory(&self, path: &Path) -> Option<std::io::Result<Vec<PathBuf>>> {
        path.is_dir().then(|| load::toml_files_in(path))
    }
    fn load(&mut self, file: &Path, skip_template: bool) -> Result<Option<Definition>, Rejected> {
        load::load_member(file, self.idmap, skip_template)
    }
    fn exists(&self, file: &Path) -> bool {
        file.is_file()
    }
    fn running(&self, name: &JailName) -> bool {
        self.running
            .get_or_init(|| {
                // Unreadable, none runs: the dependency is then started, and
                // its launch says what is wrong with the state directory.
                sysjail::jails::list(&self.registry)
                    .map(|records| records.into_iter().map(|r| r.name).collect())
                    .unwrap_or_default()
            })
            .contains(name.as_str())
    }
}

/// What `up` asks of the launcher for one jail of the set.
fn launch_of(member: Member, args: &Args, global: &super::Global, background: bool) -> Result<Launch, ExitCode> {
    let registry = prepare(&member.def, global, "sysjail")?;
    // The command and the denial log are the given jail's, never a dependency's.
    let given = member.given;
    let mut jail = member.def.jail;
    if let Some(wait) = args.wait {
        jail.lifecycle.start_window = wait;
    }
    Ok(Launch {
        jail,
        digest: member.def.digest,
        command: (given && !args.command.is_empty()).then(|| args.command.clone()),
        background,
        print_id: args.print_id,
        registry,
        log_denials: args.log_denials.clone().filter(|_| given),
        no_idmap: args.no_idmap,
        config_dir: Some(global.config_dir()),
        stdio: None,
    })
}

/// `--dry-run`: the plan of each jail, in start order.
fn dry_run(members: Vec<Member>, args: &Args, global: &super::Global) -> ExitCode {
    let mut plans = Vec::new();
    let mut facts = None;
    for member in members {
        let launch = match launch_of(member, args, global, args.background) {
            Ok(launch) => launch,
            Err(code) => return code,
        };
        // The facts `up` would launch on; a dry run writes no cache.
        let facts = facts.get_or_insert_with(|| {
            launch
                .registry
                .read_facts()
                .and_then(|c| c.valid_for(&sysjail::sys::probe::key(), sysjail::state::now()).cloned())
                .unwrap_or_else(sysjail::sys::probe::probe)
        });
        match launch::dry_run(&launch, facts, &launch::Caller::this_process(&launch)) {
            Ok(text) => plans.push(text),
            Err(e) => {
                sysjail::eprintln_lossy!("sysjail: {}", e.report());
                return ExitCode::from(super::FAILED);
            }
        }
    }
    super::out::print_status(&plans.join("\n"))
}

/// After `failed` did not start: stops the jails this `up` started, last
/// first, so that no half of a set is left running. Gives the lines that say
/// what was stopped, for the caller to print once the cleanup is done.
fn stop_started(started: &[(String, Duration)], global: &super::Global, failed: &str) -> Vec<String> {
    if started.is_empty() {
        return Vec::new();
    }
    let dir = global.state_dir();
    let mut stopped = Vec::new();
    let mut lines = Vec::new();
    for (name, timeout) in started.iter().rev() {
        match sysjail::jails::stop(&dir, name, *timeout + Duration::from_secs(10)) {
            Ok(()) => stopped.push(name.as_str()),
            Err(e) => lines.push(format!("sysjail up: stopping {name}: {e}")),
        }
    }
    lines.push(format!(
        "sysjail up: {failed} did not start; stopped what this `up` started: {}",
        stopped.join(", ")
    ));
    lines
}

/// Prints lines on stderr.
fn say(lines: &[String]) {
    for line in lines {
        sysjail::eprintln_lossy!("{line}");
    }
}

/// What `up` and the classic `jail` do before a launch: the definition's
/// warnings at `-d`, and the registry opened.
pub fn prepare(def: &Definition, global: &super::Global, prog: &str) -> Result<Registry, ExitCode> {
    if global.debug > 0 && !def.warnings.is_empty() {
        let format = sysjail::diag::Format::Human {
            color: super::stderr_color(),
        };
        sysjail::eprint_lossy!("{}", sysjail::diag::render_all(&def.warnings, &def.sources, format));
    }
    Registry::open(&global.state_dir()).map_err(|e| {
        sysjail::eprintln_lossy!("{prog}: {e}");
        ExitCode::from(super::FAILED)
    })
}

/// The exit status of `up` and `jail`: the command's (126 or 127 when it
/// could not be started), or 125 with the reason on stderr when sysjail
/// failed to launch the jail.
pub fn finish(result: Result<i32, launch::UpError>, prog: &str) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            sysjail::eprintln_lossy!("{prog}: {}", e.report());
            // A failed hook's own status, as jail(8) gives exec.prestart's.
            e.hook_status()
                .map_or(ExitCode::from(super::FAILED), |s| ExitCode::from(s.clamp(1, 255) as u8))
        }
    }
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    sysjail::model::parse_duration(text)
}
