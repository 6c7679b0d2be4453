//! `sysjail status`: one jail's state, processes, restarts, limits and
//! usage, and after it ended how and why, until `down` clears the record.

use std::process::ExitCode;

use serde::Serialize;
use sysjail::state::{self, Record, Usage};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail's name or JID
    #[arg(value_name = "JAIL")]
    jail: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// How `status` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Lines for people.
    Human,
    /// One JSON object.
    Json,
}

/// What `status` shows: the record and what its cgroups say now.
#[derive(Serialize)]
struct Status<'r> {
    #[serde(flatten)]
    record: &'r Record,
    /// Seconds since the current run started (none once it ended).
    uptime_seconds: Option<u64>,
    usage: Usage,
    /// What the limits did so far in this run.
    events: Vec<String>,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    show(&args.jail, args.format, global)
}

/// Prints the status of jail `which`; `ls NAME` comes here too.
pub fn show(which: &str, format: Format, global: &super::Global) -> ExitCode {
    let record = match sysjail::jails::find(&global.state_dir(), which) {
        Ok(r) => r,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail status: {e}");
            return ExitCode::FAILURE;
        }
    };
    let usage = if record.ended() {
        Usage::default()
    } else {
        state::usage(&record.cgroups)
    };
    let status = Status {
        uptime_seconds: (!record.ended()).then(|| state::now().saturating_sub(record.started)),
        events: state::limit_events(&usage, &record.limits),
        usage,
        record: &record,
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&status).expect("JSON")),
        Format::Human => print!("{}", human(&status)),
    }
    ExitCode::SUCCESS
}

/// Unix time as "2026-11-30 10:02:07 UTC".
fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86400, secs % 86400);
    let (year, month, day) = sysjail::state::civil(days as i64);
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn human(s: &Status) -> String {
    let r = s.record;
    let dash = || "-".to_string();
    let pid = |p: Option<i32>| p.map_or_else(dash, |p| p.to_string());
    let mut out = format!("{} (jid {})\n", r.name, r.id);
    let line = |out: &mut String, key: &str, value: String| out.push_str(&format!("  {key:<10} {value}\n"));
    line(&mut out, "state", r.state.to_string());
    if !r.ended() {
        line(
            &mut out,
            "pids",
            format!(
                "supervisor {}, init {}, command {}",
                r.supervisor_pid,
                pid(r.init_pid),
                pid(r.run.command_pid)
            ),
        );
    }
    let started = utc(r.started);
    line(
        &mut out,
        "started",
        match s.uptime_seconds {
            Some(up) => format!("{started}, up {up}s"),
            None => started,
        },
    );
    line(&mut out, "restarts", r.run.restarts.to_string());
    if let Some(end) = &r.run.ended {
        let key = if r.ended() { "ended" } else { "last end" };
        line(&mut out, key, format!("{end}, at {}", utc(end.at)));
        for event in &end.events {
            line(&mut out, "", event.clone());
        }
    }
    let limit = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    line(
        &mut out,
        "limits",
        format!(
            "memory {}, pids {}, cpu {}",
            limit(r.limits.memory.map(|b| sysjail::model::Bytes(b).to_string())),
            limit(r.limits.pids.map(|p| p.to_string())),
            limit(r.limits.cpu.map(|c| format!("{:.2}", f64::from(c) / 1000.0))),
        ),
    );
    if !r.ended() {
        let u = &s.usage;
        let bytes = |b: Option<u64>| b.map_or_else(dash, |b| sysjail::model::Bytes(b).to_string());
        line(
            &mut out,
            "usage",
            format!(
                "memory {} (peak {}), tasks {}, cpu {}",
                bytes(u.memory),
                bytes(u.memory_peak),
                u.tasks.map_or_else(dash, |n| n.to_string()),
                u.cpu_usec.map_or_else(dash, |us| format!("{:.2}s", us as f64 / 1e6)),
            ),
        );
        for event in &s.events {
            line(&mut out, "", event.clone());
        }
    }
    if let Some(log) = &r.run.log {
        line(&mut out, "log", log.display().to_string());
    }
    if let Some(def) = &r.definition {
        line(&mut out, "definition", def.display().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_796_033_327), "2026-11-30 10:08:47 UTC");
    }
}
