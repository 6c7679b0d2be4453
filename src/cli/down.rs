//! `sysjail down`: stop jails, dependents first, and wait until they are gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sysjail::jails::{self, Selector, Stopping};
use sysjail::sets::Arg;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Running jails by name or JID, or definition files and directories
    /// (the jails of their definitions that run)
    #[arg(value_name = "JAIL", required_unless_present = "all", conflicts_with = "all")]
    jails: Vec<String>,
    /// Every running jail
    #[arg(short = 'a', long)]
    all: bool,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let dir = global.state_dir();
    let selectors = if args.all {
        vec![Selector::All]
    } else {
        match selectors(&args.jails) {
            Ok(selectors) => selectors,
            Err(code) => return code,
        }
    };
    // Chosen, ordered and marked under one lock: a dependent started a moment
    // ago is listed, and stopped first.
    let (records, order) = match jails::begin_stop(&dir, &selectors) {
        Ok(decided) => decided,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail down: {e}");
            return ExitCode::FAILURE;
        }
    };
    for Stopping { name, dependent_of } in &order {
        if let Some(dep) = dependent_of {
            sysjail::eprintln_lossy!("sysjail down: stopping {name} too: it depends on {dep}");
        }
    }
    let mut code = ExitCode::SUCCESS;
    for (_, result) in jails::stop_all(&dir, &order, &records, Duration::from_secs(30)) {
        if let Err(e) = result {
            sysjail::eprintln_lossy!("sysjail down: {e}");
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// What the arguments name: definition files and directories are read here,
/// before the registry is locked.
fn selectors(args: &[String]) -> Result<Vec<Selector>, ExitCode> {
    args.iter()
        .map(|arg| match Arg::parse(arg) {
            Ok(Arg::Path(path)) => defined(&path).map(|(names, files)| Selector::Defined { names, files }),
            _ => Ok(Selector::Jail(arg.clone())),
        })
        .collect()
}

/// The jail names the definitions of a file or directory give (templates
/// have none), and their files as a record holds them (canonical).
fn defined(path: &Path) -> Result<(BTreeSet<String>, BTreeSet<PathBuf>), ExitCode> {
    let (files, listed) = if path.is_dir() && path.extension().is_none_or(|e| e != "toml") {
        let files = sysjail::load::toml_files_in(path).map_err(|e| {
            sysjail::eprintln_lossy!("sysjail down: {}: {e}", path.display());
            ExitCode::FAILURE
        })?;
        (files, true)
    } else {
        (vec![path.to_path_buf()], false)
    };
    let mut names = BTreeSet::new();
    let mut canonical = BTreeSet::new();
    for file in files {
        match sysjail::load::load_member(&file, None, listed) {
            Ok(Some(def)) => {
                names.insert(def.jail.name.to_string());
                canonical.insert(std::fs::canonicalize(&file).unwrap_or(file));
            }
            Ok(None) => {}
            Err(rejected) => {
                super::print_rejected(&rejected);
                return Err(ExitCode::FAILURE);
            }
        }
    }
    Ok((names, canonical))
}
