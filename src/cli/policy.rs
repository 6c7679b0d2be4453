//! `sysjail policy`.

use std::path::PathBuf;
use std::process::ExitCode;

use sysjail::facts::{HostFacts, HostKind};
use sysjail::policy;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail definition, or a jail name (NAME.toml of the configuration
    /// directory)
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// text: for people reviewing a change; json: for tools
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
    /// The table for a made-up host of this kind instead of this one
    #[arg(long, value_enum, value_name = "KIND", conflicts_with = "host_facts")]
    host: Option<Kind>,
    /// The table for the host these facts describe (JSON, as `HostFacts`)
    #[arg(long, value_name = "FILE")]
    host_facts: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

/// Kinds of host (sysjail::facts::HostKind).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An unprivileged user
    Rootless,
    /// Root, cgroup v1 only
    #[value(name = "root-cgroup1")]
    RootCgroup1,
    /// Root, with the unified hierarchy (cgroup2)
    #[value(name = "root-cgroup2")]
    RootCgroup2,
}

fn facts(args: &Args) -> Result<HostFacts, String> {
    if let Some(kind) = args.host {
        return Ok(HostFacts::of_kind(match kind {
            Kind::Rootless => HostKind::Rootless,
            Kind::RootCgroup1 => HostKind::RootCgroup1,
            Kind::RootCgroup2 => HostKind::RootCgroup2,
        }));
    }
    let Some(path) = &args.host_facts else {
        return Ok(sysjail::sys::probe::probe());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not host facts: {e}", path.display()))
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let Some((file, name)) = super::definition_arg(&args.file, global) else {
        return ExitCode::from(super::USAGE);
    };
    let Some(mut def) = super::load(&file) else {
        return ExitCode::FAILURE;
    };
    if let Some(name) = name {
        def.jail.name = name;
    }
    let facts = match facts(&args) {
        Ok(facts) => facts,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail: {e}");
            return ExitCode::FAILURE;
        }
    };
    let policy = match policy::compile(&def.jail, &facts) {
        Ok(policy) => policy,
        Err(refused) => {
            let host = policy::host::summary(&facts);
            sysjail::eprintln_lossy!("sysjail: {}: refused on the host ({host}): {refused}", def.jail.name);
            return ExitCode::FAILURE;
        }
    };
    let text = match args.format {
        OutputFormat::Text => policy::render_text(&policy),
        OutputFormat::Json => serde_json::to_string_pretty(&policy).expect("JSON") + "\n",
    };
    super::out::print_status(&text)
}
