//! Command-line parsing and dispatch.

mod check;
mod down;
mod exec;
mod export;
mod jail;
mod log;
mod ls;
mod policy;
mod selftest;
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
}

impl Global {
    /// The state directory to use.
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(sysjail::state::Registry::default_dir)
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
    /// Stop a jail: its stop signal, then SIGKILL after its stop timeout
    Down(down::Args),
    /// Launch a jail with a probe inside and check every promise of its policy (sjtest)
    Selftest(selftest::Args),
    /// What this kernel offers, and which promises depend on what is missing
    Doctor,
    /// Write a jail as an OCI runtime-spec bundle, and report how it keeps each promise
    Export(export::Args),
    /// The classic command line: jail [-bdilv] [-4 addr] [-6 addr] [-u user | -U user]
    /// [--allow-*] path hostname command...
    Jail(jail::Args),
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

pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    // Called as `jail`, the binary speaks the classic command line.
    if argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|n| n == "jail")
    {
        return jail::main(argv);
    }
    let cli = Cli::parse();
    log::init(cli.global.debug);
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Up(args) => up::run(args, &cli.global),
        Command::Ls(args) => ls::run(args, &cli.global),
        Command::Exec(args) => exec::run(args, &cli.global),
        Command::Down(args) => down::run(args, &cli.global),
        Command::Selftest(args) => selftest::run(args, &cli.global),
        Command::Doctor => selftest::doctor(),
        Command::Export(args) => export::run(args),
        Command::OciInit { file, command } => export::init(&file, &command),
        Command::Hook { verb, file } => export::hook(verb, &file),
        Command::Jail(args) => jail::run(args, "sysjail jail"),
        Command::Probe { checks } => ExitCode::from(sysjail::selftest::probe_main(&checks) as u8),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&sysjail::schema()).expect("JSON"));
            ExitCode::SUCCESS
        }
    }
}

/// Colors on stderr when it is a terminal and NO_COLOR is not set.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
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
    eprint!(
        "{}",
        sysjail::diag::render_all(&rejected.diags, &rejected.sources, format)
    );
}
