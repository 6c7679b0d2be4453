//! `sysjail down`: stop a jail and wait until it is gone.

use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail's name or JID
    #[arg(value_name = "JAIL")]
    jail: String,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    match sysjail::jails::stop(&global.state_dir(), &args.jail, Duration::from_secs(30)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sysjail down: {e}");
            ExitCode::FAILURE
        }
    }
}
