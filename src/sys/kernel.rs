//! The system calls of the jail's setup, behind one trait.
//!
//! [`crate::sys::jail::run`] turns each [`JailStep`](crate::plan::JailStep) into
//! calls of a [`Kernel`]. The real implementation is [`Real`]; tests use a
//! recording double to check the order of calls without root.
//!
//! Paths inside the jail are always resolved with RESOLVE_IN_ROOT from the new
//! root: the jail's own tree is the jail's to change, so a symbolic link planted
//! there must not send a mount out of it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::raw::{self, attr, resolve};
use crate::model::{AbsPath, Rlimit};
use crate::plan::{NEWROOT, OLDROOT, STAGING};
use crate::policy::landlock::{Access, Scope};
use crate::seccomp::bpf::Insn;

/// Whether to create a missing mount point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// A missing mount point is not an error: the caller skips the mount.
    No,
    /// Create a directory.
    Dir,
    /// Create an empty file (for a bind mount of a file).
    File,
}

/// What a path of the new root is, resolved through no symbolic link: where
/// a generated file may be bound over a file of the tree.
#[derive(Debug)]
pub enum Plain<F> {
    /// A regular file, reached through no link.
    File(F),
    /// Nothing there.
    Missing,
    /// The path is, or goes through, a symbolic link.
    Link,
    /// Something other than a regular file: what it is.
    Other(&'static str),
}

/// The calls the jail's setup makes.
pub trait Kernel {
    /// A mount or a place in the tree.
    type Fd;

    /// Takes these ids (and, with `clear_groups`, no supplementary groups).
    fn switch_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> io::Result<()>;
    /// Writes a per-user counter of the caller's user namespace.
    fn user_counter(&mut self, file: &str, value: u32) -> io::Result<()>;
    /// unshare(CLONE_NEWCGROUP).
    fn unshare_cgroup(&mut self) -> io::Result<()>;
    /// Waits until the supervisor has moved init into its v1 cgroups.
    fn await_cgroups(&mut self) -> io::Result<()>;
    /// Makes every mount private.
    fn make_private(&mut self) -> io::Result<()>;
    /// A tmpfs becomes the root, the host's tree moves to /oldroot.
    fn staging(&mut self) -> io::Result<()>;
    /// A detached copy of a host path (resolved inside the host's tree), and
    /// whether it is a directory.
    fn host_tree(&mut self, source: &AbsPath, recursive: bool) -> io::Result<(Self::Fd, bool)>;
    /// A detached copy of what `at` (inside the jail) refers to.
    fn jail_tree(&mut self, at: &Self::Fd, recursive: bool) -> io::Result<Self::Fd>;
    /// A new file system instance, detached.
    fn new_fs(&mut self, fstype: &str, options: &[(&str, String)], attrs: u64) -> io::Result<Self::Fd>;
    /// Sets mount attributes.
    fn set_attr(&mut self, mount: &Self::Fd, set: u64, recursive: bool) -> io::Result<()>;
    /// Whether a mount is a directory.
    fn is_dir(&mut self, mount: &Self::Fd) -> io::Result<bool>;
    /// Resolves a path inside the new root. `None` when it is missing and
    /// `create` is [`Create::No`]. The flag says whether it is a directory.
    fn lookup(&mut self, target: &AbsPath, create: Create) -> io::Result<Option<(Self::Fd, bool)>>;
    /// Resolves a path inside the new root without following any link
    /// (`RESOLVE_NO_SYMLINKS`): a file bound over must be the tree's own
    /// file at that path, not the target of a link the tree's owner planted.
    fn lookup_plain(&mut self, target: &AbsPath) -> io::Result<Plain<Self::Fd>>;
    /// Attaches a detached mount.
    fn attach(&mut self, mount: Self::Fd, at: &Self::Fd) -> io::Result<()>;
    /// A detached mount of a new file holding `content`, written in the
    /// staging root under `target`'s name.
    fn staged_file(&mut self, target: &AbsPath, content: &[u8]) -> io::Result<Self::Fd>;
    /// Creates a symbolic link inside the new root.
    fn symlink(&mut self, dest: &str, link: &AbsPath) -> io::Result<()>;
    /// Detaches the host's tree and pivots into the new root.
    fn enter(&mut self) -> io::Result<()>;
    /// sethostname(2).
    fn sethostname(&mut self, name: &str) -> io::Result<()>;
    /// Brings `lo` up.
    fn loopback_up(&mut self) -> io::Result<()>;
    /// Configures the jail's end of its veth.
    fn interface(
        &mut self,
        name: &str,
        addresses: &[(std::net::IpAddr, u8)],
        routes: &[crate::plan::Route],
    ) -> io::Result<()>;
    /// setrlimit(2), soft and hard.
    fn setrlimit(&mut self, resource: Rlimit, value: u64) -> io::Result<()>;
    /// Reduces the bounding set to `keep` and makes it init's own set.
    fn capabilities(&mut self, keep: u64) -> io::Result<()>;
    /// PR_SET_NO_NEW_PRIVS.
    fn no_new_privs(&mut self) -> io::Result<()>;
    /// Applies a Landlock ruleset; returns what the kernel enforced.
    fn landlock(&mut self, rules: &[(AbsPath, Access)], scopes: &[Scope]) -> io::Result<String>;
    /// Installs a seccomp filter; returns the listener when asked for one.
    fn seccomp(&mut self, program: &[Insn], listener: bool) -> io::Result<Option<Self::Fd>>;
}

/// Host paths the supervisor resolved under the host-path rule, each with
/// the link-free path init opens it by.
pub type HostSources = std::collections::BTreeMap<AbsPath, PathBuf>;

/// The real kernel.
pub struct Real<'a> {
    sources: HostSources,
    /// What [`Kernel::await_cgroups`] waits on: the supervisor's word.
    cgroups_joined: Box<dyn FnMut() -> io::Result<()> + 'a>,
}

impl<'a> Real<'a> {
    /// A kernel that finds host trees where the supervisor resolved them,
    /// and learns from `cgroups_joined` that init is in its cgroups.
    pub fn new(sources: HostSources, cgroups_joined: impl FnMut() -> io::Result<()> + 'a) -> Real<'a> {
        Real {
            sources,
            cgroups_joined: Box::new(cgroups_joined),
        }
    }
}

fn newroot() -> io::Result<OwnedFd> {
    // The staging root is a tmpfs of our own: nothing in it is the jail's.
    let f = File::open(NEWROOT)?;
    Ok(OwnedFd::from(f))
}

fn oldroot() -> io::Result<OwnedFd> {
    Ok(OwnedFd::from(File::open(OLDROOT)?))
}

fn rel(p: &AbsPath) -> PathBuf {
    let s = p.as_str().trim_start_matches('/');
    PathBuf::from(if s.is_empty() { "." } else { s })
}

fn fstat_is_dir(fd: &OwnedFd) -> io::Result<bool> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is written by the kernel before it is read.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, st is initialized.
    Ok(unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

fn open_path(root: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
    raw::openat2(
        root.as_fd(),
        path,
        libc::O_PATH,
        0,
        resolve::IN_ROOT | resolve::NO_MAGICLINKS,
    )
}

/// The directory `path` beneath `root`, resolved as `open_path` does, opened
/// for creating entries in it (a path descriptor cannot be used for that).
fn open_dir(root: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
    let dir = open_path(root, path)?;
    raw::openat2(
        dir.as_fd(),
        Path::new("."),
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
        resolve::NO_SYMLINKS,
    )
}

impl Kernel for Real<'_> {
    type Fd = OwnedFd;

    fn switch_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> io::Result<()> {
        let check = |r: libc::c_int| if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) };
        if clear_groups {
            // SAFETY: an empty list.
            check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
        }
        // SAFETY: plain id arguments.
        check(unsafe { libc::setresgid(gid, gid, gid) })?;
        // SAFETY: as above.
        check(unsafe { libc::setresuid(uid, uid, uid) })
    }

    fn user_counter(&mut self, file: &str, value: u32) -> io::Result<()> {
        // /proc/sys/user/ shows the caller's own user namespace's counters;
        // the names are static, /proc is still the host's instance.
        std::fs::write(Path::new("/proc/sys/user").join(file), value.to_string())
    }

    fn unshare_cgroup(&mut self) -> io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).map_err(io::Error::from)
    }

    fn await_cgroups(&mut self) -> io::Result<()> {
        (self.cgroups_joined)()
    }

    fn make_private(&mut self) -> io::Result<()> {
        use nix::mount::{MsFlags, mount};
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(io::Error::from)
    }

    fn staging(&mut self) -> io::Result<()> {
        use nix::mount::{MsFlags, mount};
        mount(
            Some("tmpfs"),
            STAGING,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0700,size=1m"),
        )?;
        for dir in [OLDROOT, NEWROOT] {
            std::fs::create_dir(format!("{STAGING}{dir}"))?;
        }
        raw::pivot_root(Path::new(STAGING), Path::new(&format!("{STAGING}{OLDROOT}")))?;
        std::env::set_current_dir("/")
    }

    fn host_tree(&mut self, source: &AbsPath, recursive: bool) -> io::Result<(OwnedFd, bool)> {
        // The supervisor resolved the path on the host, following only links
        // no jail or user could plant; what is opened here holds no link at
        // all, so one planted since is refused, not followed.
        let path = self.sources.get(source).map_or(source.as_path(), PathBuf::as_path);
        let at = super::hostpath::open_linkless(oldroot()?.as_fd(), path)?;
        let dir = fstat_is_dir(&at)?;
        Ok((raw::open_tree(Some(at.as_fd()), Path::new(""), recursive)?, dir))
    }

    fn jail_tree(&mut self, at: &OwnedFd, recursive: bool) -> io::Result<OwnedFd> {
        raw::open_tree(Some(at.as_fd()), Path::new(""), recursive)
    }

    fn new_fs(&mut self, fstype: &str, options: &[(&str, String)], attrs: u64) -> io::Result<OwnedFd> {
        raw::fs_mount(fstype, options, attrs)
    }

    fn set_attr(&mut self, mount: &OwnedFd, set: u64, recursive: bool) -> io::Result<()> {
        raw::mount_setattr(mount.as_fd(), set, 0, None, recursive)
    }

    fn is_dir(&mut self, mount: &OwnedFd) -> io::Result<bool> {
        fstat_is_dir(mount)
    }

    fn lookup(&mut self, target: &AbsPath, create: Create) -> io::Result<Option<(OwnedFd, bool)>> {
        let root = newroot()?;
        match open_path(&root, &rel(target)) {
            Ok(fd) => {
                let dir = fstat_is_dir(&fd)?;
                Ok(Some((fd, dir)))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create != Create::No => {
                create_in_root(&root, target, create)?;
                let fd = open_path(&root, &rel(target))?;
                let dir = fstat_is_dir(&fd)?;
                Ok(Some((fd, dir)))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn lookup_plain(&mut self, target: &AbsPath) -> io::Result<Plain<OwnedFd>> {
        let root = newroot()?;
        let fd = match raw::openat2(
            root.as_fd(),
            &rel(target),
            libc::O_PATH,
            0,
            resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Plain::Missing),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Plain::Link),
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(fd.as_fd()).map_err(io::Error::from)?;
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Plain::File(fd),
            libc::S_IFDIR => Plain::Other("a directory"),
            _ => Plain::Other("not a regular file"),
        })
    }

    fn attach(&mut self, mount: OwnedFd, at: &OwnedFd) -> io::Result<()> {
        raw::move_mount(mount.as_fd(), at.as_fd())
    }

    fn staged_file(&mut self, target: &AbsPath, content: &[u8]) -> io::Result<OwnedFd> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // The staging root is init's own tmpfs, mode 0700: no one else can
        // plant anything there, and O_EXCL|O_NOFOLLOW would refuse it anyway.
        let (_, name) = split(target);
        let path = PathBuf::from(format!("/{name}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        f.write_all(content)?;
        drop(f);
        raw::open_tree(None, &path, false)
    }

    fn symlink(&mut self, dest: &str, link: &AbsPath) -> io::Result<()> {
        let root = newroot()?;
        let (parent, name) = split(link);
        let dir = open_dir(&root, &rel(&parent))?;
        nix::unistd::symlinkat(dest, dir.as_fd(), name.as_str()).map_err(io::Error::from)
    }

    fn enter(&mut self) -> io::Result<()> {
        use nix::mount::{MntFlags, umount2};
        umount2(OLDROOT, MntFlags::MNT_DETACH)?;
        std::env::set_current_dir(NEWROOT)?;
        raw::pivot_root(Path::new("."), Path::new("."))?;
        umount2(".", MntFlags::MNT_DETACH)?;
        std::env::set_current_dir("/")
    }

    fn sethostname(&mut self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(io::Error::from)
    }

    fn loopback_up(&mut self) -> io::Result<()> {
        super::net::loopback_up()
    }

    fn interface(
        &mut self,
        name: &str,
        addresses: &[(std::net::IpAddr, u8)],
        routes: &[crate::plan::Route],
    ) -> io::Result<()> {
        super::net::configure(name, addresses, routes)
    }

    fn setrlimit(&mut self, resource: Rlimit, value: u64) -> io::Result<()> {
        super::privs::setrlimit(resource, value)
    }

    fn capabilities(&mut self, keep: u64) -> io::Result<()> {
        super::privs::limit_capabilities(keep)
    }

    fn no_new_privs(&mut self) -> io::Result<()> {
        raw::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map(drop)
    }

    fn landlock(&mut self, rules: &[(AbsPath, Access)], scopes: &[Scope]) -> io::Result<String> {
        super::privs::landlock(rules, scopes)
    }

    fn seccomp(&mut self, program: &[Insn], listener: bool) -> io::Result<Option<OwnedFd>> {
        super::privs::install_filter(program, listener)
    }
}

fn split(p: &AbsPath) -> (AbsPath, String) {
    let s = p.as_str();
    let i = s.rfind('/').unwrap_or(0);
    let parent = if i == 0 {
        AbsPath::root()
    } else {
        AbsPath::parse(&s[..i]).expect("prefix of a normal path")
    };
    (parent, s[i + 1..].to_string())
}

/// Creates `target` and any missing directory above it, one component at a
/// time, each resolved inside the root, refusing to follow a link at the end.
fn create_in_root(root: &OwnedFd, target: &AbsPath, create: Create) -> io::Result<()> {
    let mut done = AbsPath::root();
    let parts: Vec<&str> = target.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let next = done.join(&AbsPath::parse(&format!("/{part}")).expect("a component"));
        match open_path(root, &rel(&next)) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let parent = open_dir(root, &rel(&done))?;
                let last = i + 1 == parts.len();
                if last && create == Create::File {
                    let name = raw::cstring(part)?;
                    // SAFETY: name is a valid C string; O_EXCL|O_NOFOLLOW never
                    // follows a link planted meanwhile.
                    let fd = unsafe {
                        libc::openat(
                            parent.as_raw_fd(),
                            name.as_ptr(),
                            libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_WRONLY,
                            0o644,
                        )
                    };
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // SAFETY: fd is ours.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                } else {
                    nix::sys::stat::mkdirat(parent.as_fd(), *part, nix::sys::stat::Mode::from_bits_truncate(0o755))?;
                }
            }
            Err(e) => return Err(e),
        }
        done = next;
    }
    Ok(())
}

/// MOUNT_ATTR bits for a bind: never set-user-id or devices from a host tree.
pub const BIND_ATTRS: u64 = attr::NOSUID | attr::NODEV;
