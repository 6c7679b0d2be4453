//! `sysjail exec`: run a command inside a running jail (jexec).

use std::process::ExitCode;

use sysjail::model::IdRef;
use sysjail::supervisor::client;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run as this user of the jail's /etc/passwd (name or uid)
    #[arg(short = 'u', long, value_name = "USER")]
    user: Option<String>,
    /// Working directory inside the jail
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Give the command a terminal even when stdin is not one
    #[arg(short = 't', long, conflicts_with = "no_tty")]
    tty: bool,
    /// Never give the command a terminal
    #[arg(short = 'T', long)]
    no_tty: bool,
    /// The jail's name or JID
    #[arg(value_name = "JAIL")]
    jail: String,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("sysjail exec: {e}");
        ExitCode::from(125)
    };
    let user = match args.user.as_deref().map(|u| match u.parse::<i64>() {
        Ok(n) => IdRef::parse_id(n),
        Err(_) => IdRef::parse_name(u),
    }) {
        Some(Err(e)) => return fail(&format!("--user: {e}")),
        Some(Ok(u)) => Some(u),
        None => None,
    };
    let stdin_tty = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let exec = client::Exec {
        argv: args.command,
        user,
        tty: args.tty || (stdin_tty && !args.no_tty),
        workdir: args.workdir,
    };
    match sysjail::jails::join(&global.state_dir(), &args.jail, exec) {
        Ok(Ok(code)) => ExitCode::from(code.clamp(0, 255) as u8),
        Ok(Err(e)) => {
            eprintln!("sysjail exec: {e}");
            ExitCode::from(126)
        }
        Err(e) => fail(&e),
    }
}
