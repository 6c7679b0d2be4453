//! Command-line parsing and dispatch.

mod check;
mod complete;
mod down;
mod exec;
mod export;
mod jail;
mod log;
mod logs;
mod ls;
mod names;
mod out;
mod policy;
mod restart;
mod selftest;
mod status;
mod up;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Declarative jails for Linux.
#[derive(Parser, Debug)]
#[command(name = "sysjail", version, about, long_about = None, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options of every subcommand.
#[derive(clap::Args, Debug)]
pub struct Global {
    /// Warnings (-d) and debug notes (-dd) on stderr
    #[arg(short = 'd', action = clap::ArgAction::Count, global = true)]
    pub debug: u8,
    /// The registry of running jails [default: /run/sysjail as root, the user's
    /// runtime directory otherwise]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<std::path::PathBuf>,
    /// Where a jail NAME given instead of a file is found, as NAME.toml
    /// [default: /etc/sysjail as root, $XDG_CONFIG_HOME/sysjail or
    /// ~/.config/sysjail otherwise]
    #[arg(long, value_name = "DIR", global = true)]
    pub config_dir: Option<std::path::PathBuf>,
}

impl Global {
    /// The state directory to use.
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(sysjail::state::Registry::default_dir)
    }

    /// The configuration directory to use.
    pub fn config_dir(&self) -> std::path::PathBuf {
        use std::path::PathBuf;
        let env = |var| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
        self.config_dir.clone().unwrap_or_else(|| {
            if nix::unistd::geteuid().is_root() {
                PathBuf::from("/etc/sysjail")
            } else if let Some(config) = env("XDG_CONFIG_HOME") {
                config.join("sysjail")
            } else {
                env("HOME").unwrap_or_default().join(".config/sysjail")
            }
        })
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate jail definitions, offline (for CI)
    Check(check::Args),
    /// Print the compiled policy table of a definition
    Policy(policy::Args),
    /// Print the JSON Schema of the definition format
    Schema,
    /// Create and run a jail
    Up(up::Args),
    /// List running jails (jls)
    Ls(ls::Args),
    /// Run a command inside a running jail (jexec)
    Exec(exec::Args),
    /// Stop a jail: its stop signal, then SIGKILL after its stop timeout; of an
    /// ended jail, clear its record
    Down(down::Args),
    /// A jail's state, processes, restarts, limits and usage, or how it ended
    Status(status::Args),
    /// A background jail's output
    Logs(logs::Args),
    /// Stop a jail and start it again
    Restart(restart::Args),
    /// Launch a jail with a probe inside and check every promise of its policy (sjtest)
    Selftest(selftest::Args),
    /// What this kernel offers, and which promises depend on what is missing
    Doctor,
    /// Write a jail as an OCI runtime-spec bundle, and report how it keeps each promise
    Export(export::Args),
    /// The classic command line: jail [-bdilv] [-4 addr] [-6 addr] [-u user | -U user]
    /// [--allow-*] path hostname command...
    Jail(jail::Args),
    /// Print a completion script for a shell
    Completions(complete::Args),
    /// Every option of every command and name, one a line (for the test
    /// that sysjail(1) documents them all)
    #[command(name = "__flags", hide = true)]
    Flags,
    /// Run checks from inside a jail and print what each returned (used by
    /// selftest and the tests)
    #[command(hide = true)]
    Probe {
        /// Checks, as NAME or NAME=ARG
        checks: Vec<String>,
    },
    /// The process of an exported bundle: applies Landlock and the exact
    /// filter, then runs the command as the jail's init
    #[command(name = "oci-init", hide = true)]
    OciInit {
        /// The bundle's init file
        file: std::path::PathBuf,
        /// The command
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// An exported bundle's OCI hooks (the container state on stdin)
    #[command(hide = true)]
    Hook {
        /// What to do
        #[arg(value_enum)]
        verb: export::Hook,
        /// The bundle's init file
        file: std::path::PathBuf,
    },
}

/// Exit status for usage errors, as clap uses it.
pub const USAGE: u8 = 2;

/// Exit status when sysjail itself failed (a refused definition, a launch
/// that failed, a jail that cannot be reached), apart from any status of the
/// command: 125, 126 and 127 as env(1), chroot(1) and `docker run` use them.
pub const FAILED: u8 = 125;

pub fn main() -> ExitCode {
    // Arguments need not be UTF-8 (paths): std::env::args would panic.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Called as `jail`, `jls`, `jexec`... the binary speaks their command line.
    if let Some(code) = names::main(&argv) {
        return code;
    }
    let mut cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return usage(&e, &argv),
    };
    // Relative to the caller's directory, now: the supervisor of a jail
    // works from `/`, and `restart` passes them on.
    for dir in [&mut cli.global.state_dir, &mut cli.global.config_dir] {
        if let Some(d) = dir.as_mut()
            && let Ok(abs) = std::path::absolute(&*d)
        {
            *d = abs;
        }
    }
    log::init(cli.global.debug);
    match cli.command {
        Command::Check(args) => check::run(args, &cli.global),
        Command::Policy(args) => policy::run(args, &cli.global),
        Command::Up(args) => up::run(args, &cli.global),
        Command::Ls(args) => ls::run(args, &cli.global),
        Command::Exec(args) => exec::run(args, &cli.global),
        Command::Down(args) => down::run(args, &cli.global),
        Command::Status(args) => status::run(args, &cli.global),
        Command::Logs(args) => logs::run(args, &cli.global),
        Command::Restart(args) => restart::run(args, &cli.global),
        Command::Selftest(args) => selftest::run(args, &cli.global),
        Command::Doctor => selftest::doctor(&cli.global),
        Command::Export(args) => export::run(args),
        Command::OciInit { file, command } => export::init(&file, &command),
        Command::Hook { verb, file } => export::hook(verb, &file),
        Command::Jail(args) => jail::run(args, "sysjail jail", cli.global.state_dir.clone()),
        Command::Probe { checks } => ExitCode::from(sysjail::selftest::probe_main(&checks) as u8),
        Command::Schema => out::print_status(&(serde_json::to_string_pretty(&sysjail::schema()).expect("JSON") + "\n")),
        Command::Completions(args) => complete::run(args),
        Command::Flags => complete::flags(),
    }
}

/// Prints clap's error or help, with a hint where `exec` was given its
/// command without `--`.
fn usage(e: &clap::Error, argv: &[std::ffi::OsString]) -> ExitCode {
    let _ = e.print();
    let words: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if e.use_stderr()
        && let Some(hint) = exec::hint(&words)
    {
        sysjail::eprintln_lossy!("{hint}");
    }
    ExitCode::from(e.exit_code().clamp(0, 255) as u8)
}

/// Colors on stderr when it is a terminal and NO_COLOR is not set.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The definition file an argument names, and the name a jail of it gets
/// when the argument says (`web@2`); `None` after saying why there is none.
pub fn definition_arg(
    arg: &std::path::Path,
    global: &Global,
) -> Option<(std::path::PathBuf, Option<sysjail::model::JailName>)> {
    use sysjail::sets::{self, Arg};
    match Arg::parse(&arg.to_string_lossy()) {
        Ok(Arg::Path(path)) => Some((path, None)),
        Ok(Arg::Name(name)) => {
            let file = sets::definition_file(&global.config_dir(), &name);
            Some((file, name.instance().is_some().then_some(name)))
        }
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail: {e}");
            None
        }
    }
}

/// Loads a definition; on errors prints them and gives `None`.
pub fn load(file: &std::path::Path) -> Option<sysjail::load::Definition> {
    loaded(sysjail::load::load(file))
}

/// Loads a definition to launch, with the host checks of `check --host`.
pub fn load_for_launch(file: &std::path::Path, idmap: bool) -> Option<sysjail::load::Definition> {
    loaded(sysjail::load::load_for_launch(file, idmap))
}

fn loaded(result: Result<sysjail::load::Definition, sysjail::load::Rejected>) -> Option<sysjail::load::Definition> {
    result.map_err(|rejected| print_rejected(&rejected)).ok()
}

/// Prints a rejected definition's diagnostics on stderr.
pub fn print_rejected(rejected: &sysjail::load::Rejected) {
    let format = sysjail::diag::Format::Human { color: stderr_color() };
    sysjail::eprint_lossy!(
        "{}",
        sysjail::diag::render_all(&rejected.diags, &rejected.sources, format)
    );
}
