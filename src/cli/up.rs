//! `sysjail up`.

use std::path::PathBuf;
use std::process::ExitCode;

use sysjail::launch::{self, Launch};
use sysjail::load::Definition;
use sysjail::state::Registry;

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
    /// With -b: how long the command must run before `up` reports it started
    /// (overrides `start-window`), such as "2s"
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    wait: Option<std::time::Duration>,
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
    // A dry run creates nothing, so it needs none of the host's trees.
    let def = if args.dry_run {
        super::load(&args.file)
    } else {
        super::load_for_launch(&args.file, !args.no_idmap)
    };
    let Some(mut def) = def else {
        return ExitCode::FAILURE;
    };
    if let Some(wait) = args.wait {
        def.jail.lifecycle.start_window = wait;
    }
    let registry = match prepare(&def, global, "sysjail") {
        Ok(r) => r,
        Err(code) => return code,
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
        return match launch::dry_run(
            &launch,
            &sysjail::sys::probe::probe(),
            &launch::Caller::this_process(&launch),
        ) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sysjail: {}", e.report());
                ExitCode::FAILURE
            }
        };
    }
    finish(launch::up(launch), "sysjail")
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    sysjail::model::parse_duration(text)
}

/// What `up` and the classic `jail` do before a launch: the definition's
/// warnings at `-d`, and the registry opened.
pub fn prepare(def: &Definition, global: &super::Global, prog: &str) -> Result<Registry, ExitCode> {
    if global.debug > 0 && !def.warnings.is_empty() {
        let format = sysjail::diag::Format::Human {
            color: super::stderr_color(),
        };
        eprint!("{}", sysjail::diag::render_all(&def.warnings, &def.sources, format));
    }
    Registry::open(&global.state_dir()).map_err(|e| {
        eprintln!("{prog}: {e}");
        ExitCode::FAILURE
    })
}

/// The exit status of `up` and `jail`: the command's, or failure with the
/// reason on stderr.
pub fn finish(result: Result<i32, launch::UpError>, prog: &str) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("{prog}: {}", e.report());
            // A failed hook's own status, as jail(8) gives exec.prestart's.
            e.hook_status()
                .map_or(ExitCode::FAILURE, |s| ExitCode::from(s.clamp(1, 255) as u8))
        }
    }
}
