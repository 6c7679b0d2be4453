//! The `sysjail` command: a thin layer over the library. Also answers to the
//! name `jail`, with the classic command line of jail(8) and sysjail(1).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
