//! `sysjail down`: stop jails, dependents first, and wait until they are gone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sysjail::jails::{self, Stopping};
use sysjail::sets::Arg;
use sysjail::state::Record;

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
    let records = match jails::list(&dir) {
        Ok(records) => records,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail down: {e}");
            return ExitCode::FAILURE;
        }
    };
    let selected = if args.all {
        records.iter().map(|r| r.name.clone()).collect()
    } else {
        match select(&dir, &args.jails, &records) {
            Ok(selected) => selected,
            Err(code) => return code,
        }
    };
    // Listed again under the lock that marks them: a dependent started since
    // the listing above is stopped too.
    let (records, order) = match jails::begin_stop(&dir, &selected) {
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

/// The names of the running jails the arguments name; the history record of
/// an ended jail named is cleared on the way. `Err` after saying which
/// argument names none.
fn select(dir: &Path, args: &[String], records: &[Record]) -> Result<BTreeSet<String>, ExitCode> {
    let mut selected = BTreeSet::new();
    for arg in args {
        if let Ok(Arg::Path(path)) = Arg::parse(arg) {
            let (names, files) = defined(&path)?;
            // Its jails by name, and every other jail run from its files:
            // instances (`web@2`) and `up --name`.
            selected.extend(
                records
                    .iter()
                    .filter(|r| names.contains(&r.name) || r.definition.as_ref().is_some_and(|d| files.contains(d)))
                    .map(|r| r.name.clone()),
            );
            continue;
        }
        match records.iter().find(|r| r.name == *arg || r.id.to_string() == *arg) {
            Some(r) => {
                selected.insert(r.name.clone());
            }
            None => match jails::clear(dir, arg) {
                Ok(true) => {}
                Ok(false) => {
                    sysjail::eprintln_lossy!("sysjail down: no running jail is named or numbered {arg}");
                    return Err(ExitCode::FAILURE);
                }
                Err(e) => {
                    sysjail::eprintln_lossy!("sysjail down: {e}");
                    return Err(ExitCode::FAILURE);
                }
            },
        }
    }
    Ok(selected)
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
