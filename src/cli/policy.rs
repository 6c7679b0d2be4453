//! `sysjail policy`.

use std::path::PathBuf;
use std::process::ExitCode;

use sysjail::policy;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail definition
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// text: for people reviewing a change; json: for tools
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let Some(def) = super::load(&args.file) else {
        return ExitCode::FAILURE;
    };
    let policy = policy::compile(&def.jail);
    match args.format {
        OutputFormat::Text => print!("{}", policy::render_text(&policy)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&policy).expect("JSON")),
    }
    ExitCode::SUCCESS
}
