//! `sysjail check`.

use std::path::PathBuf;
use std::process::ExitCode;

use sysjail::diag::{Format, Severity, render};
use sysjail::{load, sets};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Definitions to check, directories searched for *.toml files, or jail
    /// names (NAME.toml of the configuration directory)
    #[arg(required = true, value_name = "FILE")]
    paths: Vec<PathBuf>,
    /// Output: miette reports (human), one JSON object per diagnostic (json), or
    /// GitHub Actions annotations (github)
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Exit with status 1 on warnings too
    #[arg(long)]
    deny_warnings: bool,
    /// Also check this machine: the root directory, bind sources, users and groups
    #[arg(long)]
    host: bool,
    /// Compare the OCI bundle in DIR with what `sysjail export oci FILE` writes
    /// (one FILE)
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    Human,
    Json,
    Github,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    if let Some(bundle) = &args.bundle {
        let [file] = args.paths.as_slice() else {
            sysjail::eprintln_lossy!("sysjail check: --bundle compares one definition");
            return ExitCode::from(super::USAGE);
        };
        return super::export::check_bundle(file, bundle);
    }
    let config_dir = global.config_dir();
    let paths: Result<Vec<PathBuf>, _> = args.paths.iter().map(|p| named(p, &config_dir)).collect();
    let files = match paths.and_then(|paths| load::expand(&paths).map_err(|e| e.to_string())) {
        Ok(files) => files,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail check: {e}");
            return ExitCode::from(super::USAGE);
        }
    };
    let report = load::check(&files, args.host, &config_dir);
    let format = match args.format {
        OutputFormat::Human => Format::Human {
            color: super::stderr_color(),
        },
        OutputFormat::Json => Format::Json,
        OutputFormat::Github => Format::Github,
    };
    let mut out = String::new();
    for d in report.diags() {
        out.push_str(&render(d, &report.sources, format));
    }
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    if args.format == OutputFormat::Human {
        sysjail::eprint_lossy!("{out}");
        let n = report.files.len();
        sysjail::eprintln_lossy!(
            "checked {n} file{}: {errors} error{}, {warnings} warning{}",
            if n == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
        );
    } else if let Err(code) = super::out::print(&out) {
        return code;
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A path as given, or the file of a jail name. A bare word that names a
/// file or directory here stays a path, as `check` has always read it.
fn named(arg: &std::path::Path, config_dir: &std::path::Path) -> Result<PathBuf, String> {
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    match sets::Arg::parse(&arg.to_string_lossy()) {
        Ok(sets::Arg::Name(name)) => Ok(sets::definition_file(config_dir, &name)),
        _ => Ok(arg.to_path_buf()),
    }
}
