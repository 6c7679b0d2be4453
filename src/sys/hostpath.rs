//! Host paths as the supervisor opens them for a jail: by descriptor, one
//! component at a time, following a symbolic link only where no jail and no
//! unprivileged user could have planted it.
//!
//! The rule: a link is followed only when the directory that holds it is
//! owned by host root and writable by no one else (no group or other write
//! bit). Such a directory's entries can only have been made by root, so its
//! links are the administrator's (`/bin -> usr/bin`, `/var/run -> /run`). A
//! link anywhere else (a jail's tree, /tmp, a user's home, a directory bound
//! writable into some jail) refuses the path. No jail can create a file owned
//! by host root: its root is an unprivileged id on the host, and on disk its
//! files belong to the tree's own unprivileged range or to the bound
//! directory's owner (see [`crate::sys::host`]).
//!
//! Every component is opened with `O_PATH | O_NOFOLLOW` relative to the
//! descriptor of the one before, so nothing is ever resolved by the kernel
//! through a link the rule did not approve, and the descriptor returned is
//! the object that was checked: a link planted after the walk changes
//! nothing. Where a path must be opened again in another mount namespace (by
//! the jail's init, without privilege), [`Resolved::path`] holds no link at
//! all and is opened with `RESOLVE_NO_SYMLINKS`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::raw;

/// At most this many links on one path, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// Why a host path was refused.
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    /// A link where a jail or a user could have planted it.
    #[error(
        "{path}: {link} is a symbolic link in a directory {why}; sysjail follows links only in directories owned by root and writable by no one else"
    )]
    UntrustedLink {
        /// The path asked for.
        path: PathBuf,
        /// The link, as far as it was resolved.
        link: PathBuf,
        /// What makes its directory untrusted.
        why: String,
    },
    /// A loop, or too many links.
    #[error("{path}: more than {MAX_LINKS} symbolic links")]
    TooManyLinks {
        /// The path asked for.
        path: PathBuf,
    },
    /// Something other than a directory where the path goes on.
    #[error("{path}: {at} is not a directory")]
    NotADirectory {
        /// The path asked for.
        path: PathBuf,
        /// The component.
        at: PathBuf,
    },
    /// Not the kind of file asked for.
    #[error("{path}: {what}")]
    WrongKind {
        /// The path asked for.
        path: PathBuf,
        /// What it is, and what was wanted.
        what: String,
    },
    /// A system call failed.
    #[error("{}", io_message(.path, .at, .error))]
    Io {
        /// The path asked for.
        path: PathBuf,
        /// The component being opened.
        at: PathBuf,
        /// What the kernel said.
        error: io::Error,
    },
}

fn io_message(path: &Path, at: &Path, error: &io::Error) -> String {
    if path == at {
        format!("{}: {}", path.display(), raw::errno_name(error))
    } else {
        format!("{}: at {}: {}", path.display(), at.display(), raw::errno_name(error))
    }
}

impl HostPathError {
    /// The errno behind the refusal, as a caller that speaks `io::Error`
    /// reports it (ELOOP for a link, as O_NOFOLLOW says it).
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            HostPathError::UntrustedLink { .. } | HostPathError::TooManyLinks { .. } => {
                io::Error::from_raw_os_error(libc::ELOOP).kind()
            }
            HostPathError::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            HostPathError::WrongKind { .. } => io::ErrorKind::InvalidInput,
            HostPathError::Io { error, .. } => error.kind(),
        };
        io::Error::new(kind, self.to_string())
    }

    /// True when the path, or a component of it, does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, HostPathError::Io { error, .. } if error.raw_os_error() == Some(libc::ENOENT))
    }
}

/// What the walk needs to know of one opened component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// On a proc file system, whose links name what a process chose.
    pub proc: bool,
}

impl Stat {
    fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
    /// Whether this directory keeps every unprivileged host user out of
    /// what lies below it: root's, and searchable by no one else (its group
    /// may search it only if that is root's group).
    pub fn shuts_out_others(&self) -> bool {
        self.is_dir() && self.uid == 0 && self.mode & 0o001 == 0 && (self.mode & 0o010 == 0 || self.gid == 0)
    }
    /// A symbolic link.
    pub fn is_link(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }
    /// Why entries of this directory cannot be trusted, if they cannot.
    pub fn distrust(&self) -> Option<String> {
        if self.proc {
            // /proc/PID/fd/N and the like are root's, yet name whatever the
            // process holds.
            Some("of /proc, whose links name what a process chose".into())
        } else if self.uid != 0 {
            Some(format!("owned by uid {}", self.uid))
        } else if self.mode & 0o022 != 0 {
            Some(format!(
                "writable by {} (mode {:o})",
                super::owner::Exposed::writers(self.mode),
                self.mode & 0o7777
            ))
        } else {
            None
        }
    }
}

/// The calls a walk makes, behind a seam: [`Real`] makes them, tests record
/// them or answer from a tree in memory.
pub trait Walker {
    /// A descriptor of one component.
    type Fd;
    /// The root directory the walk starts from.
    fn root(&mut self) -> io::Result<Self::Fd>;
    /// Opens one name in `dir` without following it, even when it is a link
    /// (`O_PATH | O_NOFOLLOW`).
    fn open_nofollow(&mut self, dir: &Self::Fd, name: &OsStr) -> io::Result<Self::Fd>;
    /// fstat(2).
    fn stat(&mut self, fd: &Self::Fd) -> io::Result<Stat>;
    /// The target of the link `fd` is opened on.
    fn readlink(&mut self, fd: &Self::Fd) -> io::Result<PathBuf>;
}

/// A path the walk approved.
#[derive(Debug)]
pub struct Resolved<F> {
    /// The object itself, opened `O_PATH`.
    pub fd: F,
    /// What it is.
    pub stat: Stat,
    /// Where it is, with every approved link replaced by its target: a path
    /// without links.
    pub path: PathBuf,
}

/// Resolves `path` from the walker's root under the rule of this module.
pub fn resolve<W: Walker>(w: &mut W, path: &Path) -> Result<Resolved<W::Fd>, HostPathError> {
    let fail = |at: &Path, error: io::Error| io_error(path, at, error);
    let root = w.root().map_err(|e| fail(Path::new("/"), e))?;
    let root_stat = w.stat(&root).map_err(|e| fail(Path::new("/"), e))?;
    // The components still to walk, last first, and the directories walked.
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, path);
    let mut stack: Vec<(OsString, W::Fd, Stat)> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let here = canonical(&stack);
        let (dir, dir_stat) = match stack.last() {
            Some((_, fd, stat)) => (fd, *stat),
            None => (&root, root_stat),
        };
        let at = here.join(&name);
        let fd = w.open_nofollow(dir, &name).map_err(|e| fail(&at, e))?;
        let stat = w.stat(&fd).map_err(|e| fail(&at, e))?;
        if stat.is_link() {
            links += 1;
            let target = read_link(w, path, &fd, dir_stat, at, links)?;
            if target.is_absolute() {
                stack.clear();
            }
            push_components(&mut todo, &target);
            continue;
        }
        if !todo.is_empty() && !stat.is_dir() {
            return Err(HostPathError::NotADirectory {
                path: path.to_path_buf(),
                at,
            });
        }
        stack.push((name, fd, stat));
    }
    let path = canonical(&stack);
    Ok(match stack.pop() {
        Some((_, fd, stat)) => Resolved { fd, stat, path },
        None => Resolved {
            fd: root,
            stat: root_stat,
            path,
        },
    })
}

fn io_error(path: &Path, at: &Path, error: io::Error) -> HostPathError {
    HostPathError::Io {
        path: path.to_path_buf(),
        at: at.to_path_buf(),
        error,
    }
}

/// The target of link `fd`, found at `at` in a directory of `dir_stat`
/// while resolving `path`: refused in a directory others can write, or as
/// the walk's `links`th link beyond MAX_LINKS.
fn read_link<W: Walker>(
    w: &mut W,
    path: &Path,
    fd: &W::Fd,
    dir_stat: Stat,
    at: PathBuf,
    links: usize,
) -> Result<PathBuf, HostPathError> {
    if let Some(why) = dir_stat.distrust() {
        return Err(HostPathError::UntrustedLink {
            path: path.to_path_buf(),
            link: at,
            why,
        });
    }
    if links > MAX_LINKS {
        return Err(HostPathError::TooManyLinks {
            path: path.to_path_buf(),
        });
    }
    w.readlink(fd).map_err(|e| io_error(path, &at, e))
}

/// Pushes the components of `path` so that the first is popped first.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    todo.extend(parts.into_iter().rev());
}

fn canonical<F>(stack: &[(OsString, F, Stat)]) -> PathBuf {
    let mut p = PathBuf::from("/");
    for (name, _, _) in stack {
        p.push(name);
    }
    p
}

/// The real walk, from the root directory of this process (or of another
/// tree, for the jail's init, which finds the host's under `/oldroot`).
pub struct Real {
    root: PathBuf,
}

impl Default for Real {
    fn default() -> Self {
        Real {
            root: PathBuf::from("/"),
        }
    }
}

impl Real {
    /// A walk from `root` instead of `/`.
    pub fn beneath(root: impl Into<PathBuf>) -> Real {
        Real { root: root.into() }
    }
}

impl Walker for Real {
    type Fd = OwnedFd;

    fn root(&mut self) -> io::Result<OwnedFd> {
        open_raw(None, self.root.as_os_str(), libc::O_DIRECTORY)
    }

    fn open_nofollow(&mut self, dir: &OwnedFd, name: &OsStr) -> io::Result<OwnedFd> {
        open_raw(Some(dir.as_fd()), name, libc::O_NOFOLLOW)
    }

    fn stat(&mut self, fd: &OwnedFd) -> io::Result<Stat> {
        fstat(fd.as_fd())
    }

    fn readlink(&mut self, fd: &OwnedFd) -> io::Result<PathBuf> {
        let target = nix::fcntl::readlinkat(fd.as_fd(), "").map_err(io::Error::from)?;
        Ok(PathBuf::from(target))
    }
}

fn open_raw(dir: Option<BorrowedFd<'_>>, name: &OsStr, extra: i32) -> io::Result<OwnedFd> {
    let name = raw::cstr(name)?;
    let dir = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: name is a valid C string for the call; the flags open nothing
    // but a path descriptor.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_PATH | libc::O_CLOEXEC | extra) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; it is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// fstat(2) of a descriptor, as the walk needs it.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let st = nix::sys::stat::fstat(fd).map_err(io::Error::from)?;
    let fs = nix::sys::statfs::fstatfs(fd).map_err(io::Error::from)?;
    Ok(Stat {
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        proc: fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC,
    })
}

/// Opens a host path under the rule: an `O_PATH` descriptor of what it names.
///
/// ```no_run
/// let tree = sysjail::sys::hostpath::open(std::path::Path::new("/srv/jails/web"))?;
/// assert!(tree.stat.is_dir());
/// # Ok::<(), sysjail::sys::hostpath::HostPathError>(())
/// ```
pub fn open(path: &Path) -> Result<Resolved<OwnedFd>, HostPathError> {
    resolve(&mut Real::default(), path)
}

/// Opens the directory that holds `path` under the rule, for a caller that
/// creates or opens the last component itself, never following a link there
/// (`O_NOFOLLOW`): log files, records. Returns it opened for reading (so that
/// entries can be made in it) and the last component.
pub fn open_parent(path: &Path) -> Result<(OwnedFd, OsString), HostPathError> {
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => n.to_os_string(),
        _ => {
            return Err(HostPathError::WrongKind {
                path: path.to_path_buf(),
                what: "names no file".into(),
            });
        }
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = open(parent)?;
    if !dir.stat.is_dir() {
        return Err(HostPathError::NotADirectory {
            path: path.to_path_buf(),
            at: dir.path,
        });
    }
    let fd = openat2_or_refuse(
        dir.fd.as_fd(),
        Path::new("."),
        libc::O_DIRECTORY | libc::O_RDONLY,
        raw::resolve::NO_SYMLINKS,
    )
    .map_err(|error| HostPathError::Io {
        path: path.to_path_buf(),
        at: dir.path.clone(),
        error,
    })?;
    Ok((fd, name))
}

/// Opens a file under the rule and refuses anything but a regular file; the
/// descriptor is readable.
pub fn open_regular(path: &Path) -> Result<OwnedFd, HostPathError> {
    let found = open(path)?;
    if !found.stat.is_file() {
        return Err(HostPathError::WrongKind {
            path: path.to_path_buf(),
            what: "not a regular file".into(),
        });
    }
    reopen(found.fd.as_fd(), libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK).map_err(|error| HostPathError::Io {
        path: path.to_path_buf(),
        at: found.path,
        error,
    })
}

/// The directory above `path` (resolved under the rule) that keeps every
/// unprivileged host user out of it, if one does ([`Stat::shuts_out_others`]).
/// `path` itself does not count: a jail may own it.
pub fn guard_above(path: &Path) -> Result<Option<PathBuf>, HostPathError> {
    let found = open(path)?;
    for dir in found.path.ancestors().skip(1) {
        if open(dir)?.stat.shuts_out_others() {
            return Ok(Some(dir.to_path_buf()));
        }
    }
    Ok(None)
}

/// Reads a small regular file under the rule (a jail's /etc/passwd, say):
/// never a device, a FIFO or a link a jail planted, never more than `limit`
/// bytes.
pub fn read_small(path: &Path, limit: u64) -> Result<String, HostPathError> {
    use std::io::Read;
    let fd = open_regular(path)?;
    let mut text = String::new();
    let mut file = std::fs::File::from(fd).take(limit + 1);
    let fail = |error| HostPathError::Io {
        path: path.to_path_buf(),
        at: path.to_path_buf(),
        error,
    };
    file.read_to_string(&mut text).map_err(fail)?;
    if text.len() as u64 > limit {
        return Err(HostPathError::WrongKind {
            path: path.to_path_buf(),
            what: format!("larger than {limit} bytes"),
        });
    }
    Ok(text)
}

/// Opens the object an `O_PATH` descriptor refers to, through its magic link
/// in /proc/self/fd: the one link this module follows, as it names the
/// descriptor we hold and nothing a jail can change.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let name = raw::cstr(Path::new(&link))?;
    // SAFETY: name is a valid C string for the call.
    let new = unsafe { libc::open(name.as_ptr(), flags | libc::O_CLOEXEC) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; it is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Opens a path that holds no link at all beneath `root` (a [`Resolved::path`]
/// in another mount namespace): any link, planted since, refuses it.
pub fn open_linkless(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2_or_refuse(
        root,
        rel,
        libc::O_PATH,
        raw::resolve::NO_SYMLINKS | raw::resolve::NO_MAGICLINKS | raw::resolve::BENEATH,
    )
}

/// openat2(2), or a refusal that says why: the rule is never served by a
/// path-based open that would follow links.
fn openat2_or_refuse(dir: BorrowedFd<'_>, path: &Path, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    raw::openat2(dir, path, flags, 0, resolve).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOSYS) {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "opening host paths without following links needs openat2(2), Linux 5.6",
            )
        } else {
            e
        }
    })
}

/// Lossless display of a path component for messages.
pub fn show(name: &OsStr) -> String {
    String::from_utf8_lossy(name.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A tree in memory: each path is a directory (uid, mode) or a link.
    #[derive(Default)]
    pub(super) struct Tree {
        pub(super) nodes: BTreeMap<PathBuf, Node>,
        /// Every call made, as (call, path).
        pub(super) calls: Vec<(&'static str, PathBuf)>,
    }

    #[derive(Clone)]
    pub(super) enum Node {
        Dir { uid: u32, mode: u32 },
        File,
        Link(PathBuf),
    }

    impl Tree {
        pub(super) fn new() -> Tree {
            let mut t = Tree::default();
            t.dir("/", 0, 0o755);
            t
        }
        pub(super) fn dir(&mut self, p: &str, uid: u32, mode: u32) {
            self.nodes.insert(PathBuf::from(p), Node::Dir { uid, mode });
        }
        fn file(&mut self, p: &str) {
            self.nodes.insert(PathBuf::from(p), Node::File);
        }
        pub(super) fn link(&mut self, p: &str, to: &str) {
            self.nodes.insert(PathBuf::from(p), Node::Link(PathBuf::from(to)));
        }
    }

    impl Walker for Tree {
        type Fd = PathBuf;
        fn root(&mut self) -> io::Result<PathBuf> {
            self.calls.push(("root", PathBuf::from("/")));
            Ok(PathBuf::from("/"))
        }
        fn open_nofollow(&mut self, dir: &PathBuf, name: &OsStr) -> io::Result<PathBuf> {
            let p = dir.join(name);
            self.calls.push(("open_nofollow", p.clone()));
            if self.nodes.contains_key(&p) {
                Ok(p)
            } else {
                Err(io::Error::from_raw_os_error(libc::ENOENT))
            }
        }
        fn stat(&mut self, fd: &PathBuf) -> io::Result<Stat> {
            Ok(match &self.nodes[fd] {
                Node::Dir { uid, mode } => Stat {
                    mode: libc::S_IFDIR | mode,
                    uid: *uid,
                    gid: *uid,
                    proc: false,
                },
                Node::File => Stat {
                    mode: libc::S_IFREG | 0o644,
                    uid: 0,
                    gid: 0,
                    proc: false,
                },
                Node::Link(_) => Stat {
                    mode: libc::S_IFLNK | 0o777,
                    uid: 0,
                    gid: 0,
                    proc: false,
                },
            })
        }
        fn readlink(&mut self, fd: &PathBuf) -> io::Result<PathBuf> {
            match &self.nodes[fd] {
                Node::Link(to) => Ok(to.clone()),
                _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            }
        }
    }

    /// A host like Debian's: merged /usr, a jail tree, /tmp, a user's home.
    fn host() -> Tree {
        let mut t = Tree::new();
        t.dir("/usr", 0, 0o755);
        t.dir("/usr/bin", 0, 0o755);
        t.file("/usr/bin/sh");
        t.link("/bin", "usr/bin");
        t.dir("/etc", 0, 0o755);
        t.file("/etc/shadow");
        t.dir("/srv", 0, 0o755);
        t.dir("/srv/jails", 0, 0o700);
        t.dir("/srv/jails/web", 0x6000_0000, 0o755);
        t.dir("/srv/jails/web/var", 0x6000_0000, 0o755);
        t.dir("/tmp", 0, 0o1777);
        t.dir("/home", 0, 0o755);
        t.dir("/home/alice", 1000, 0o755);
        t.dir("/home/alice/project", 1000, 0o755);
        t.dir("/opt", 0, 0o775);
        t
    }

    fn resolved(t: &mut Tree, p: &str) -> Result<PathBuf, String> {
        resolve(t, Path::new(p)).map(|r| r.path).map_err(|e| e.to_string())
    }

    #[test]
    fn links_of_root_owned_directories_are_followed() {
        let mut t = host();
        assert_eq!(resolved(&mut t, "/bin/sh"), Ok(PathBuf::from("/usr/bin/sh")));
        t.link("/usr/sh", "/bin/sh");
        assert_eq!(resolved(&mut t, "/usr/sh"), Ok(PathBuf::from("/usr/bin/sh")));
        t.link("/usr/up", "../etc");
        assert_eq!(resolved(&mut t, "/usr/up/shadow"), Ok(PathBuf::from("/etc/shadow")));
    }

    #[test]
    fn a_link_where_others_write_is_refused_wherever_it_stands() {
        for (dir, why) in [
            ("/srv/jails/web", "owned by uid 1610612736"),
            ("/tmp", "writable by others"),
            ("/home/alice", "owned by uid 1000"),
            ("/opt", "writable by its group"),
        ] {
            // The last component, an intermediate one, and a dangling link.
            for (link, ask) in [("last", "last"), ("mid", "mid/x"), ("dangling", "dangling")] {
                let mut t = host();
                let target = if link == "dangling" { "/nowhere" } else { "/etc" };
                t.link(&format!("{dir}/{link}"), target);
                let err = resolved(&mut t, &format!("{dir}/{ask}")).unwrap_err();
                assert!(
                    err.contains("is a symbolic link") && err.contains(why),
                    "{dir}/{ask}: {err}"
                );
                // Nothing past the link was opened.
                assert!(
                    !t.calls
                        .iter()
                        .any(|(_, p)| p.starts_with("/etc") || p.starts_with("/nowhere")),
                    "{:?}",
                    t.calls
                );
            }
        }
    }

    #[test]
    fn loops_end() {
        let mut t = host();
        t.link("/usr/a", "/usr/b");
        t.link("/usr/b", "/usr/a");
        assert!(resolved(&mut t, "/usr/a").unwrap_err().contains("more than 40"));
    }

    #[test]
    fn files_in_the_middle_and_missing_paths_say_so() {
        let mut t = host();
        assert!(
            resolved(&mut t, "/usr/bin/sh/x")
                .unwrap_err()
                .contains("is not a directory")
        );
        let err = resolve(&mut t, Path::new("/srv/none")).unwrap_err();
        assert!(err.is_missing(), "{err}");
        assert_eq!(resolved(&mut t, "/"), Ok(PathBuf::from("/")));
        assert_eq!(
            resolved(&mut t, "/usr/../etc/./shadow"),
            Ok(PathBuf::from("/etc/shadow"))
        );
    }

    #[test]
    fn every_open_is_of_one_name_without_following() {
        let mut t = host();
        resolved(&mut t, "/bin/sh").unwrap();
        let opened: Vec<_> = t
            .calls
            .iter()
            .filter(|(c, _)| *c == "open_nofollow")
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(
            opened,
            [
                PathBuf::from("/bin"),
                PathBuf::from("/usr"),
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/bin/sh")
            ]
        );
    }
}

#[cfg(test)]
mod launch_tests {
    //! The host paths of a launch of each example, walked through the
    //! recording double: every call opens one name without following it, and
    //! a link planted at any component, where a jail or a user could write,
    //! is refused before anything past it is opened.

    use super::tests::{Node, Tree};
    use super::*;

    /// A tree holding exactly the directories of some paths, root's.
    fn tree_of(paths: &[PathBuf]) -> Tree {
        let mut t = Tree::new();
        for p in paths {
            for a in p.ancestors() {
                t.dir(&a.display().to_string(), 0, 0o755);
            }
        }
        t
    }

    fn example_paths() -> Vec<(String, Vec<PathBuf>)> {
        crate::plan::example_plans()
            .into_iter()
            .map(|(name, plan)| {
                let paths = plan.host_paths().map(|(p, _)| p.as_path().to_path_buf()).collect();
                (name, paths)
            })
            .collect()
    }

    #[test]
    fn a_launch_opens_every_host_path_one_name_at_a_time_without_following() {
        for (name, paths) in example_paths() {
            assert!(!paths.is_empty(), "{name}");
            let mut fs = tree_of(&paths);
            for p in &paths {
                let found = resolve(&mut fs, p).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(&found.path, p, "{name}");
            }
            // Every component of every path, and nothing else.
            let opened = fs.calls.iter().filter(|(c, _)| *c == "open_nofollow").count();
            let expected: usize = paths.iter().map(|p| p.components().count() - 1).sum();
            assert_eq!(opened, expected, "{name}: {:?}", fs.calls);
            assert!(
                fs.calls.iter().all(|(c, _)| *c == "root" || *c == "open_nofollow"),
                "{name}: {:?}",
                fs.calls
            );
        }
    }

    #[test]
    fn a_link_planted_at_any_component_of_a_launch_is_refused() {
        for (name, paths) in example_paths() {
            for p in &paths {
                // Each component but "/": its directory is a jail's or a user's.
                for at in p.ancestors().filter(|c| c.parent().is_some()) {
                    let mut fs = tree_of(&paths);
                    fs.nodes.retain(|k, _| !k.starts_with(at) || k == at);
                    fs.nodes.insert(at.to_path_buf(), Node::Link(PathBuf::from("/etc")));
                    fs.nodes.insert(
                        at.parent().unwrap().to_path_buf(),
                        Node::Dir {
                            uid: 0x6000_0000,
                            mode: 0o755,
                        },
                    );
                    let err =
                        resolve(&mut fs, p).expect_err(&format!("{name}: {} through {}", p.display(), at.display()));
                    assert!(matches!(err, HostPathError::UntrustedLink { .. }), "{name}: {err}");
                    assert!(
                        !fs.calls.iter().any(|(_, c)| c.starts_with("/etc")),
                        "{name}: {:?}",
                        fs.calls
                    );
                }
            }
        }
    }
}
