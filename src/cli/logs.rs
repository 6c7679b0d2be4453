//! `sysjail logs`: a background jail's output, as its supervisor captured it
//! into the jail's log (`log`, or NAME.log in the state directory).

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use sysjail::sys::owner::{Exposed, exposed};

use sysjail::state::Registry;
use sysjail::terminal::Escaper;

/// Standard output, escaping what the jail wrote when it is a terminal.
struct Out {
    escaper: Option<Escaper>,
}

impl Out {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        match &mut self.escaper {
            Some(e) => stdout.write_all(e.push(bytes).as_bytes())?,
            None => stdout.write_all(bytes)?,
        }
        stdout.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        match &mut self.escaper {
            Some(e) => {
                let rest = e.finish();
                let mut stdout = io::stdout().lock();
                stdout.write_all(rest.as_bytes())?;
                stdout.flush()
            }
            None => Ok(()),
        }
    }
}

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
    /// The log's bytes as the jail wrote them, escape sequences included;
    /// by default, on a terminal, control characters are shown escaped
    #[arg(long)]
    raw: bool,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let dir = global.state_dir();
    let record = sysjail::jails::find(&dir, &args.jail).ok();
    // A hostile jail's escape sequences would be obeyed by the terminal:
    // there, they are shown instead. A pipe gets the bytes.
    let escape = !args.raw && io::stdout().is_terminal();
    let mut out = Out {
        escaper: escape.then(Escaper::default),
    };
    if let Some(id) = record.as_ref().and_then(|r| r.run.journal.as_deref()) {
        return journal(id, &args, &mut out);
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
    let cap = record
        .as_ref()
        .and_then(|r| r.run.log_size)
        .unwrap_or(sysjail::model::DEFAULT_LOG_SIZE.0);
    match print(
        &path,
        args.lines,
        args.follow.then_some(name.as_str()),
        &dir,
        cap,
        &mut out,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        // `logs | head`: the reader is gone, which is no error of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            sysjail::eprintln_lossy!("sysjail logs: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// The output of a jail with `log = "journal"`, from journalctl (`-o cat`
/// prints the jail's bytes as they are): through `out`, escaped as the
/// log's own are.
fn journal(identifier: &str, args: &Args, out: &mut Out) -> ExitCode {
    let mut c = std::process::Command::new("journalctl");
    c.args(["--no-pager", "-o", "cat", "-t", identifier]);
    if args.follow {
        c.arg("-f");
    }
    if let Some(n) = args.lines {
        c.arg("-n").arg(n.to_string());
    }
    let fail = |e: io::Error| {
        sysjail::eprintln_lossy!("sysjail logs: journalctl: {e}");
        ExitCode::FAILURE
    };
    if out.escaper.is_none() {
        return match c.status() {
            Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8),
            Err(e) => fail(e),
        };
    }
    let mut child = match c.stdout(std::process::Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => return fail(e),
    };
    let mut from = child.stdout.take().expect("piped");
    let mut buf = vec![0u8; 64 << 10];
    let copied = loop {
        match from.read(&mut buf) {
            Ok(0) => break out.finish(),
            Ok(n) => {
                if let Err(e) = out.write(&buf[..n]) {
                    break Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    drop(from);
    if copied.is_err() {
        // The reader went away (or stdout failed): journalctl -f would
        // otherwise run on.
        let _ = child.kill();
    }
    match (child.wait(), copied) {
        (_, Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (_, Err(e)) => fail(e),
        (Ok(s), Ok(())) => ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8),
        (Err(e), Ok(())) => fail(e),
    }
}

/// Opens a log to read: never through a link at its name, never blocking on
/// a FIFO, and only a regular file of root's or the caller's that no one
/// else can write, with one name, as the supervisor writes it. Anyone else's
/// file there (a NAME.1 planted in a sticky directory) would be forged lines.
fn open(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // fstat of what was opened, not a second look-up of the path.
    let meta = file.metadata()?;
    let euid = nix::unistd::geteuid().as_raw();
    let refuse = |why: String| Err(io::Error::other(format!("{why}: not a log sysjail wrote")));
    if !meta.file_type().is_file() {
        return refuse("not a regular file".into());
    }
    match exposed(meta.uid(), meta.mode(), euid, false) {
        Some(Exposed::Owner(uid)) => return refuse(format!("owned by uid {uid}")),
        Some(Exposed::Writable(mode)) => return refuse(format!("writable by other users (mode {mode:o})")),
        None => {}
    }
    if meta.nlink() != 1 {
        return refuse(format!("{} names (hard links)", meta.nlink()));
    }
    Ok(file)
}

fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// What a log may hold beyond its cap: the supervisor rotates before a
/// write, so a log exceeds its cap by at most one write.
const SLACK: u64 = 1 << 20;

/// Reads `file` from the end: its last `lines` lines, or all of it without
/// a count, but never more than its last `bound` bytes (a line cut there is
/// dropped), in chunks, so a huge or sparse file costs no more than that.
/// Gives the text and the file's size when it was read.
fn read_tail(file: &File, lines: Option<usize>, bound: u64) -> io::Result<(Vec<u8>, u64)> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 64 << 10;
    let size = file.metadata()?.len();
    let floor = size.saturating_sub(bound);
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut newlines = 0;
    let mut pos = size;
    while pos > floor {
        let len = CHUNK.min(pos - floor);
        pos -= len;
        let mut chunk = vec![0; len as usize];
        let mut got = 0;
        while got < chunk.len() {
            match file.read_at(&mut chunk[got..], pos + got as u64)? {
                // Truncated under us: what is there is all there is.
                0 => break,
                n => got += n,
            }
        }
        chunk.truncate(got);
        newlines += chunk.iter().filter(|&&b| b == b'\n').count();
        chunks.push(chunk);
        // One more line end than wanted: the line before the first is whole.
        if lines.is_some_and(|n| newlines > n) {
            break;
        }
    }
    let mut text: Vec<u8> = chunks.into_iter().rev().flatten().collect();
    if pos > 0 && lines.is_none_or(|n| newlines <= n) {
        // Cut at the bound: the partial first line goes.
        let keep = text.iter().position(|&b| b == b'\n').map_or(text.len(), |i| i + 1);
        text.drain(..keep);
    }
    let text = tail(&text, lines).to_vec();
    Ok((text, size))
}

/// Prints the log (its rotated part first), or its last `lines` lines; with
/// `follow`, what is appended too while jail `follow` runs. Of each file, at
/// most the last `cap` bytes (the log's size, and a write) are read.
fn print(
    path: &Path,
    lines: Option<usize>,
    follow: Option<&str>,
    dir: &Path,
    cap: u64,
    out: &mut Out,
) -> io::Result<()> {
    let bound = cap.saturating_add(SLACK);
    let mut file = open(path)?;
    let (current, size) = read_tail(&file, lines, bound)?;
    let have =
        current.iter().filter(|&&b| b == b'\n').count() + usize::from(!current.ends_with(b"\n") && !current.is_empty());
    let mut text = Vec::new();
    if lines.is_none_or(|n| have < n) {
        match open(&rotated(path)) {
            Ok(old) => text = read_tail(&old, lines.map(|n| n - have), bound)?.0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // What another user may have put there is not shown.
            Err(e) => sysjail::eprintln_lossy!("sysjail logs: {}: {e}; skipped", rotated(path).display()),
        }
    }
    text.extend_from_slice(&current);
    out.write(&text)?;
    let Some(jail) = follow else { return out.finish() };
    file.seek(SeekFrom::Start(size))?;
    let mut inode = file.metadata()?.ino();
    loop {
        let running = sysjail::jails::find(dir, jail).is_ok_and(|r| !r.ended());
        copy(&mut file, out)?;
        // Rotated: the rest of the old file is read, then the new one.
        if let Ok(new) = open(path)
            && new.metadata()?.ino() != inode
        {
            copy(&mut file, out)?;
            inode = new.metadata()?.ino();
            file = new;
            copy(&mut file, out)?;
        }
        if !running {
            return out.finish();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Copies what was appended to `file` since the last read.
fn copy(file: &mut File, out: &mut Out) -> io::Result<()> {
    let pos = file.stream_position()?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    // A log truncated under us starts again from its beginning.
    if buf.is_empty() && file.metadata()?.len() < pos {
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut buf)?;
    }
    out.write(&buf)
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
    use super::{read_tail, tail};

    #[test]
    fn read_tail_reads_from_the_end_within_the_bound() {
        let path = std::env::temp_dir().join(format!("sysjail-logtail-{}", std::process::id()));
        // Lines across many 64 KiB chunks.
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let (last, size) = read_tail(&file, Some(3), u64::MAX).unwrap();
        assert_eq!(last, b"line 99997\nline 99998\nline 99999\n");
        assert_eq!(size, text.len() as u64);
        let (all, _) = read_tail(&file, None, u64::MAX).unwrap();
        assert_eq!(all, text.as_bytes());
        // A bound in the middle of a line: that line is left out.
        let (bounded, _) = read_tail(&file, None, 15).unwrap();
        assert_eq!(bounded, b"line 99999\n");
        let (bounded, _) = read_tail(&file, Some(5), 15).unwrap();
        assert_eq!(bounded, b"line 99999\n");
        let (none, _) = read_tail(&file, Some(0), u64::MAX).unwrap();
        assert_eq!(none, b"");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn tail_gives_the_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", Some(2)), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", Some(1)), b"c");
        assert_eq!(tail(b"a\nb\n", Some(5)), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", Some(0)), b"");
        assert_eq!(tail(b"a\n", None), b"a\n");
    }
}
