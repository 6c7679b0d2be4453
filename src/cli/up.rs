//! `sysjail up`.

use std::path::PathBuf;
use std::process::ExitCode;

use sysjail::state::Registry;
use sysjail::supervisor::{self, Launch};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail definition
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Replaces the definition's command (for debugging and tests)
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
    /// Detach once the command runs; its output goes to `log` or /dev/null
    #[arg(short = 'b', long)]
    background: bool,
    /// Print the jail id
    #[arg(short = 'i', long)]
    print_id: bool,
    /// Print the launch plan and create nothing
    #[arg(long)]
    dry_run: bool,
    /// Record every call the policy denies in FILE
    #[arg(long, value_name = "FILE")]
    log_denials: Option<PathBuf>,
    /// Mount a dedicated root as it is, without id mapping (for file systems
    /// that cannot be id-mapped): its files keep their host owners
    #[arg(long)]
    no_idmap: bool,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let Some(def) = super::load(&args.file) else {
        return ExitCode::FAILURE;
    };
    if global.debug > 0 && !def.warnings.is_empty() {
        let format = sysjail::diag::Format::Human {
            color: super::stderr_color(),
        };
        eprint!("{}", sysjail::diag::render_all(&def.warnings, &def.sources, format));
    }
    let registry = match Registry::open(&global.state_dir()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sysjail: {e}");
            return ExitCode::FAILURE;
        }
    };
    let launch = Launch {
        jail: def.jail,
        digest: def.digest,
        command: (!args.command.is_empty()).then_some(args.command),
        background: args.background,
        print_id: args.print_id,
        registry,
        log_denials: args.log_denials,
        no_idmap: args.no_idmap,
        stdio: None,
    };
    if args.dry_run {
        return match supervisor::dry_run(&launch) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sysjail: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match supervisor::up(launch) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("sysjail: {e}");
            ExitCode::FAILURE
        }
    }
}
