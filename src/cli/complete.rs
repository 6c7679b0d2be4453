//! What shells and the manual learn about the command line:
//! `sysjail completions SHELL`, and the hidden `sysjail __flags`.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell the script is for
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

/// Prints the completion script of `sysjail` for the shell.
pub fn run(args: Args) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut visible(), "sysjail", &mut script);
    super::out::print_status(&String::from_utf8_lossy(&script))
}

/// `sysjail`'s command line without its hidden commands, which clap_complete
/// would offer otherwise (clap-rs/clap#1335). Clap cannot remove a
/// subcommand, so the root is assembled again from `Cli`'s own parts.
fn visible() -> clap::Command {
    let full = super::Cli::command();
    let root = clap::Command::new("sysjail").version(env!("CARGO_PKG_VERSION"));
    let root = full.get_arguments().fold(root, |root, arg| root.arg(arg.clone()));
    full.get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .fold(root, |root, sub| root.subcommand(sub.clone()))
}

/// Prints every option of every command, and of every name the binary
/// answers to, one a line: `PROGRAM [SUBCOMMAND]`, then each of its forms
/// (`-b`, `--background`), separated by tabs. A test checks that sysjail(1)
/// documents each. Help and version flags and hidden
/// commands and options are left out.
pub fn flags() -> ExitCode {
    let mut lines = Vec::new();
    walk(&super::Cli::command(), "sysjail", &mut lines);
    for command in super::names::commands() {
        let name = command.get_name().to_string();
        walk(&command, &name, &mut lines);
    }
    super::out::print_status(&lines.concat())
}

fn walk(command: &clap::Command, path: &str, lines: &mut Vec<String>) {
    for arg in command.get_arguments() {
        if arg.is_hide_set() || arg.is_positional() || ["help", "version"].contains(&arg.get_id().as_str()) {
            continue;
        }
        let shorts = arg.get_short_and_visible_aliases().unwrap_or_default();
        let longs = arg.get_long_and_visible_aliases().unwrap_or_default();
        let forms: Vec<String> = (shorts.iter().map(|s| format!("-{s}")))
            .chain(longs.iter().map(|l| format!("--{l}")))
            .collect();
        lines.push(format!("{path}\t{}\n", forms.join("\t")));
    }
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, &format!("{path} {}", sub.get_name()), lines);
    }
}
