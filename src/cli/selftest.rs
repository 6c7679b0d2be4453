//! `sysjail selftest` (sjtest) and `sysjail doctor`.

use std::path::PathBuf;
use std::process::ExitCode;

use sysjail::state::Registry;
use sysjail::{doctor, selftest};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail definition
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let Some(def) = super::load_for_launch(&args.file, true) else {
        return ExitCode::FAILURE;
    };
    let registry = match Registry::open(&global.state_dir()) {
        Ok(r) => r,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail selftest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = def.jail.name.clone();
    let verdicts = match selftest::run(def.jail, registry) {
        Ok(v) => v,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail selftest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut text = format!("selftest of jail {name}, from inside it:\n");
    for v in &verdicts {
        text.push_str(&format!("  {v}\n"));
    }
    let failed = verdicts.iter().filter(|v| !v.pass).count();
    text.push_str(&format!("{} passed, {failed} failed\n", verdicts.len() - failed));
    if let Err(code) = super::out::print(&text) {
        return code;
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub fn doctor(global: &super::Global) -> ExitCode {
    // Always probed afresh, whatever is cached; the cache of the state
    // directory, when there is one, is rewritten with what doctor saw.
    let facts = match Registry::open(&global.state_dir()) {
        Ok(registry) => registry.probe_facts(sysjail::sys::probe::key(), sysjail::sys::probe::probe),
        Err(_) => sysjail::sys::probe::probe(),
    };
    let findings = doctor::examine(&facts);
    let (text, code) = doctor::render(&facts, &findings);
    let tuning = sysjail::sys::probe::tuning(&facts);
    let text = text + &doctor::render_start_up(&doctor::start_up(&facts, &tuning));
    super::out::print(&text).err().unwrap_or(ExitCode::from(code as u8))
}
