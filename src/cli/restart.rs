//! `sysjail restart`: a running jail stopped and started again by its own
//! supervisor; an ended jail started again in the background from its record.

use std::process::{Command, ExitCode};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail's name or JID
    #[arg(value_name = "JAIL")]
    jail: String,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let dir = global.state_dir();
    let record = match sysjail::jails::find(&dir, &args.jail) {
        Ok(r) => r,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail restart: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !record.ended() {
        // The stop timeout, then the new run's start: at most a minute more.
        return match sysjail::jails::restart(&dir, &record.name, Duration::from_secs(90)) {
            Ok(r) if r.ended() => {
                let why = r.run.ended.map_or_else(|| "it ended".to_string(), |e| e.to_string());
                sysjail::eprintln_lossy!("sysjail restart: {}: {why}", r.name);
                ExitCode::FAILURE
            }
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                sysjail::eprintln_lossy!("sysjail restart: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(definition) = &record.definition else {
        sysjail::eprintln_lossy!(
            "sysjail restart: {} was not started from a file; start it again with `sysjail up`",
            record.name
        );
        return ExitCode::FAILURE;
    };
    // The file as it is now is what starts (under the owner rule of every
    // launch); an edit since the jail started is said, not silently taken.
    if let Ok(now) = sysjail::load::load(definition)
        && format!("{:016x}", now.digest) != record.digest
    {
        sysjail::eprintln_lossy!(
            "sysjail restart: {}: {} changed since the jail started; starting it as it is now",
            record.name,
            definition.display()
        );
    }
    // `up -b` of the recorded definition and command, as a fresh launch:
    // it replaces the history record, and reports as `up -b` does.
    let mut up = match std::env::current_exe() {
        Ok(exe) => Command::new(exe),
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail restart: this program's path: {e}");
            return ExitCode::FAILURE;
        }
    };
    up.arg("--state-dir").arg(&dir);
    if let Some(config) = &record.run.config_dir {
        up.arg("--config-dir").arg(config);
    }
    up.args(["up", "-b"]);
    // Under the name it ran as: an instance (`web@2`) or an `up --name` jail
    // of the file, not the file's own name. (A jail named by its JID has none.)
    if sysjail::model::JailName::parse(&record.name).is_ok() {
        up.args(["--name", &record.name]);
    }
    up.arg(definition);
    if let Some(cmd) = &record.run.command {
        up.arg("--").args(cmd);
    }
    match up.status() {
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail restart: {e}");
            ExitCode::FAILURE
        }
    }
}
