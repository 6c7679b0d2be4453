//! `sysjail logs`: a background jail's output, as its supervisor captured it
//! into the jail's log (`log`, or NAME.log in the state directory).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sysjail::state::Registry;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The jail's name or JID
    #[arg(value_name = "JAIL")]
    jail: String,
    /// Keep printing what the jail writes, until it ends
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines
    #[arg(short = 'n', long, value_name = "N")]
    lines: Option<usize>,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let dir = global.state_dir();
    let record = sysjail::jails::find(&dir, &args.jail).ok();
    if let Some(id) = record.as_ref().and_then(|r| r.run.journal.as_deref()) {
        return journal(id, &args);
    }
    // A jail that ran with the default log and whose record is gone still
    // has no log: `down` clears both. Its default name is tried all the same.
    let path = match record.as_ref().and_then(|r| r.run.log.clone()) {
        Some(p) => p,
        None if record.is_some() => {
            sysjail::eprintln_lossy!(
                "sysjail logs: {} has no log: only a background jail's output is captured",
                args.jail
            );
            return ExitCode::FAILURE;
        }
        None => dir.join(Registry::log_name(&args.jail)),
    };
    let name = record.as_ref().map_or(args.jail.clone(), |r| r.name.clone());
    match print(&path, args.lines, args.follow.then_some(name.as_str()), &dir) {
        Ok(()) => ExitCode::SUCCESS,
        // `logs | head`: the reader is gone, which is no error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail logs: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// The output of a jail with `log = "journal"`, from journalctl.
fn journal(identifier: &str, args: &Args) -> ExitCode {
    let mut c = std::process::Command::new("journalctl");
    c.args(["--no-pager", "-o", "cat", "-t", identifier]);
    if args.follow {
        c.arg("-f");
    }
    if let Some(n) = args.lines {
        c.arg("-n").arg(n.to_string());
    }
    match c.status() {
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail logs: journalctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Opens a log without following a link at its name.
fn open(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// Prints the log (its rotated part first), or its last `lines` lines; with
/// `follow`, what is appended too while jail `follow` runs.
fn print(path: &Path, lines: Option<usize>, follow: Option<&str>, dir: &Path) -> io::Result<()> {
    let mut text = Vec::new();
    if let Ok(mut old) = open(&rotated(path)) {
        old.read_to_end(&mut text)?;
    }
    let mut file = open(path)?;
    file.read_to_end(&mut text)?;
    let mut out = io::stdout().lock();
    out.write_all(tail(&text, lines))?;
    out.flush()?;
    let Some(jail) = follow else { return Ok(()) };
    let mut inode = file.metadata()?.ino();
    loop {
        let running = sysjail::jails::find(dir, jail).is_ok_and(|r| !r.ended());
        copy(&mut file, &mut out)?;
        // Rotated: the rest of the old file is read, then the new one.
        if let Ok(new) = open(path)
            && new.metadata()?.ino() != inode
        {
            copy(&mut file, &mut out)?;
            inode = new.metadata()?.ino();
            file = new;
            copy(&mut file, &mut out)?;
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Copies what was appended to `file` since the last read.
fn copy(file: &mut File, out: &mut impl Write) -> io::Result<()> {
    let pos = file.stream_position()?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    // A log truncated under us starts again from its beginning.
    if buf.is_empty() && file.metadata()?.len() < pos {
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut buf)?;
    }
    out.write_all(&buf)?;
    out.flush()
}

/// The last `lines` lines of `text` (all of it without a count).
fn tail(text: &[u8], lines: Option<usize>) -> &[u8] {
    let Some(n) = lines else { return text };
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut start = body.len();
    for _ in 0..n {
        match body[..start].iter().rposition(|&b| b == b'\n') {
            Some(i) => start = i,
            None => return text,
        }
    }
    &text[start + 1..]
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_gives_the_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", Some(2)), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", Some(1)), b"c");
        assert_eq!(tail(b"a\nb\n", Some(5)), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", Some(0)), b"");
        assert_eq!(tail(b"a\n", None), b"a\n");
    }
}
