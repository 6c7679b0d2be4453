//! Reading a definition file from the host: a regular file of bounded size,
//! checked and read through one descriptor.
//!
//! A definition may come from an untrusted pull request in CI, and so may the
//! path of every file it `extends`. Such a path may name a device that never
//! ends (`/dev/zero`), a FIFO that never answers, or a pseudo-file whose text is
//! the caller's own secrets (`/proc/self/environ`). None of these is a
//! definition; each is refused before a byte of it is read, so no diagnostic can
//! quote it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::sys::statfs::{self, FsType};

use crate::config::FileError;

/// File systems whose files are made up by the kernel on reading: their size
/// says nothing and their text may be anyone's secrets.
const PSEUDO: &[(FsType, &str)] = &[
    (statfs::PROC_SUPER_MAGIC, "proc"),
    (statfs::SYSFS_MAGIC, "sysfs"),
    (statfs::DEBUGFS_MAGIC, "debugfs"),
    (statfs::TRACEFS_MAGIC, "tracefs"),
    (statfs::SECURITYFS_MAGIC, "securityfs"),
    (statfs::CGROUP_SUPER_MAGIC, "cgroup"),
    (statfs::CGROUP2_SUPER_MAGIC, "cgroup2"),
    (statfs::BPF_FS_MAGIC, "bpf"),
    (statfs::SELINUX_MAGIC, "selinuxfs"),
    (statfs::SMACK_MAGIC, "smackfs"),
];

/// Reads the regular file at `path`, at most `limit` bytes of it.
///
/// The path may be a symbolic link (a definition given by the user may
/// legitimately be one); what it leads to is judged by the descriptor, so that
/// the file checked is the file read. Opening is non-blocking, so that a FIFO
/// cannot stall the open, and never makes a terminal ours.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    // std adds O_CLOEXEC to every open.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(FileError::Io)?;
    check(&file, limit)?;
    let mut text = Vec::new();
    // One byte more than the limit tells a file at the limit from a larger one,
    // even when the file grew after it was checked.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(FileError::Io)?;
    if text.len() as u64 > limit {
        return Err(FileError::TooLarge { limit });
    }
    Ok(text)
}

/// Refuses what the descriptor shows is not a regular file of a real file
/// system, or is larger than `limit`.
fn check(file: &File, limit: u64) -> Result<(), FileError> {
    // File::metadata is fstat(2) on the descriptor, not a second lookup of the path.
    let meta = file.metadata().map_err(FileError::Io)?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else {
        Some("not a regular file")
    };
    if let Some(what) = what {
        return Err(FileError::NotRegular(what));
    }
    let fs = statfs::fstatfs(file).map_err(|e| FileError::Io(e.into()))?;
    if let Some((_, name)) = PSEUDO.iter().find(|(t, _)| *t == fs.filesystem_type()) {
        return Err(FileError::PseudoFile(name));
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge { limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("sysjail-def-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.toml");
        std::fs::write(&file, "name = \"a\"\n").unwrap();
        assert_eq!(read(&file, MIB).unwrap(), b"name = \"a\"\n");
        assert!(matches!(read(&file, 4), Err(FileError::TooLarge { limit: 4 })));
        let link = dir.join("link.toml");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read(&link, MIB).is_ok(), "a link to a regular file is followed");
        assert!(matches!(read(&dir, MIB), Err(FileError::NotRegular("a directory"))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_fifos_and_pseudo_files_are_refused_unread() {
        assert!(matches!(
            read(Path::new("/dev/zero"), MIB),
            Err(FileError::NotRegular("a character device"))
        ));
        assert!(matches!(
            read(Path::new("/proc/self/environ"), MIB),
            Err(FileError::PseudoFile("proc"))
        ));
        if Path::new("/sys/kernel/mm").exists() {
            let sys = std::fs::read_dir("/sys/kernel/mm").unwrap();
            if let Some(f) = sys.filter_map(Result::ok).find(|e| e.path().is_file()) {
                assert!(matches!(read(&f.path(), MIB), Err(FileError::PseudoFile("sysfs"))));
            }
        }
        let fifo = std::env::temp_dir().join(format!("sysjail-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(read(&fifo, MIB), Err(FileError::NotRegular("a FIFO"))));
        std::fs::remove_file(&fifo).unwrap();
    }
}
