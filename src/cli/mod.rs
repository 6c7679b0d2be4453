//! Command-line parsing and dispatch.

mod check;
mod policy;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Declarative jails for Linux.
#[derive(Parser, Debug)]
#[command(name = "sysjail", version, about, long_about = None, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate jail definitions, offline (for CI)
    Check(check::Args),
    /// Print the compiled policy table of a definition
    Policy(policy::Args),
    /// Print the JSON Schema of the definition format
    Schema,
}

/// Exit status for usage errors, as clap uses it.
pub const USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Policy(args) => policy::run(args),
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

/// Prints a rejected definition's diagnostics on stderr.
pub fn print_rejected(rejected: &sysjail::lint::Rejected) {
    let format = sysjail::diag::Format::Human { color: stderr_color() };
    eprint!(
        "{}",
        sysjail::diag::render_all(&rejected.diags, &rejected.sources, format)
    );
}
