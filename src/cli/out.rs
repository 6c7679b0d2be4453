//! Standard output of the commands that print (check, policy, schema, ls,
//! completions...): a reader that went away is not an error.

use std::io::{self, Write};
use std::process::ExitCode;

/// Writes `text` to standard output and flushes it. When the reader has
/// gone (`sysjail policy --format json | head -1`), the rest is dropped
/// without a word, as ripgrep does, and the command ends with the status it
/// would have had; `println!` would panic there, since Rust ignores SIGPIPE.
/// Any other write error (a full disk) is reported and fails the command.
pub fn print(text: &str) -> Result<(), ExitCode> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail: writing to standard output: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// [`print`], as the command's exit status.
pub fn print_status(text: &str) -> ExitCode {
    print(text).err().unwrap_or(ExitCode::SUCCESS)
}
