//! `sysjail ls`: the name and the jls(8) columns, and with -v what sjls
//! showed and more.

use std::process::ExitCode;

use serde::Serialize;
use sysjail::state::{self, Record, Registry, Usage};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also show name, state, processes, uptime, memory, CPU and the allow list
    #[arg(short = 'v', long)]
    pub(super) verbose: bool,
    /// One JSON array of every jail, with its usage, for scripts
    #[arg(long)]
    json: bool,
    /// `json` is --json
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<super::status::Format>,
    /// Show this one jail as `status` does, running or ended
    #[arg(value_name = "JAIL")]
    jail: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Row<'r> {
    #[serde(flatten)]
    pub(super) record: &'r Record,
    uptime_seconds: u64,
    usage: Usage,
    /// What the limits did so far.
    events: Vec<String>,
}

pub fn run(mut args: Args, global: &super::Global) -> ExitCode {
    args.json |= args.format == Some(super::status::Format::Json);
    if let Some(jail) = &args.jail {
        let format = if args.json {
            super::status::Format::Json
        } else {
            super::status::Format::Human
        };
        return super::status::show(jail, format, global);
    }
    let records = match records(global) {
        Ok(r) => r,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = rows(&records);
    if args.json {
        return super::out::print_status(&(serde_json::to_string_pretty(&rows).expect("JSON") + "\n"));
    }
    super::out::print_status(&table(&rows, Columns::Named, args.verbose))
}

/// Each record with its usage now.
pub(super) fn rows(records: &[Record]) -> Vec<Row<'_>> {
    let now = state::now();
    records
        .iter()
        .map(|r| {
            let usage = state::usage(&r.cgroups);
            Row {
                record: r,
                uptime_seconds: now.saturating_sub(r.started),
                events: state::limit_events(&usage, &r.limits),
                usage,
            }
        })
        .collect()
}

/// The columns of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Columns {
    /// `sysjail ls`: JID, the name `exec` and `down` take, then jls(8)'s.
    Named,
    /// jls(8)'s own: JID, IP Address, Hostname, Path.
    Classic,
    /// jls(8)'s with -N: the name in place of the JID.
    NameForJid,
}

/// The table, one row a jail, with `-v`'s lines under each.
pub(super) fn table(rows: &[Row], columns: Columns, verbose: bool) -> String {
    let addresses = |r: &Record| {
        let all: Vec<&str> = r.ipv4.iter().chain(&r.ipv6).map(String::as_str).collect();
        if all.is_empty() { "-".to_string() } else { all.join(",") }
    };
    let name_width = rows.iter().map(|r| r.record.name.len()).max().unwrap_or(0).max(4);
    let line = |first: &str, name: &str, ip: &str, host: &str, path: &str| {
        let first = match columns {
            Columns::Named => format!("{first:>4}  {name:<name_width$} "),
            Columns::Classic => format!("{first:>4}  "),
            Columns::NameForJid => format!("{first:<name_width$}  "),
        };
        format!("{first}{ip:<24} {host:<28} {path}\n")
    };
    let by_name = columns == Columns::NameForJid;
    let mut out = line(
        if by_name { "Name" } else { "JID" },
        "Name",
        "IP Address",
        "Hostname",
        "Path",
    );
    for row in rows {
        let r = row.record;
        let first = if by_name { r.name.clone() } else { r.id.to_string() };
        out.push_str(&line(&first, &r.name, &addresses(r), &r.hostname, &r.path));
        if verbose {
            out.push_str(&details(row));
        }
    }
    out
}

/// The records of the registry, stale ones cleaned away first.
pub(super) fn records(global: &super::Global) -> Result<Vec<Record>, state::StateError> {
    let registry = Registry::open(&global.state_dir())?;
    let lock = registry.lock()?;
    // One pass; ended jails' history shows in `status` and `ls NAME`.
    Ok(registry.live(&lock).0)
}

/// The lines `-v` adds under a jail's row.
fn details(row: &Row) -> String {
    let r = row.record;
    let u = &row.usage;
    let mem = |b: Option<u64>| b.map_or("-".to_string(), human);
    let limit = |b: Option<u64>| b.map_or(String::new(), |b| format!(" of {}", human(b)));
    let mut out = format!(
        "      name {}  state {}  mode {}  supervisor {}  init {}\n",
        r.name,
        r.state,
        r.mode,
        r.supervisor_pid,
        r.init_pid.map_or("-".into(), |p| p.to_string())
    );
    out.push_str(&format!(
        "      processes {}{}  uptime {}  memory {}{} (peak {})  cpu {}\n",
        u.tasks.map_or("-".into(), |n| n.to_string()),
        r.limits.pids.map_or(String::new(), |p| format!(" of {p}")),
        duration(row.uptime_seconds),
        mem(u.memory),
        limit(r.limits.memory),
        mem(u.memory_peak),
        u.cpu_usec.map_or("-".into(), |us| format!("{:.2}s", us as f64 / 1e6)),
    ));
    out.push_str(&format!(
        "      allow {}  definition {}\n",
        if r.allow.is_empty() {
            "-".to_string()
        } else {
            r.allow.join(",")
        },
        r.definition.as_ref().map_or("-".into(), |p| p.display().to_string())
    ));
    for event in &row.events {
        out.push_str(&format!("      {event}\n"));
    }
    out
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[i])
    }
}

fn duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}
