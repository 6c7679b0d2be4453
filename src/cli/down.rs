//! `sysjail down`: stop a jail and wait until it is gone.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sysjail::state;
use sysjail::supervisor::proto::{Reply, Request};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail's name or JID
    #[arg(value_name = "JAIL")]
    jail: String,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("sysjail down: {e}");
        ExitCode::FAILURE
    };
    let (record, chan) = match super::connect(global, &args.jail) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    if let Err(e) = chan.send(&Request::Stop, &[]) {
        return fail(&e);
    }
    match chan.recv::<Reply>() {
        Ok(Some((Reply::Stopping, _))) => {}
        other => return fail(&format!("unexpected answer {other:?}")),
    }
    // The supervisor closes the socket when it exits, after teardown.
    while let Ok(Some(_)) = chan.recv::<Reply>() {}
    // Its record is gone once teardown is complete.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if state::start_time(record.supervisor_pid) != Some(record.supervisor_start) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    fail(&format!(
        "the supervisor of {} (pid {}) did not exit",
        record.name, record.supervisor_pid
    ))
}
