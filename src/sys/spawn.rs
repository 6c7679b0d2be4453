//! Starting a process inside the jail: the one code path by which every jailed
//! process (the command and `exec`'s) comes to be. It runs in the jail's init,
//! which is already confined: the child inherits the namespaces, the root, the
//! bounding set, no_new_privs, the Landlock domain and the seccomp filter.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::privs;
use super::raw::{self, cstring};
use crate::model::IdRef;
use crate::plan::{IdMapping, Login, Spawn, SpawnUser};
use crate::users;

/// Resolves the credentials, in the jail's own databases where they come from.
/// Why a process of the jail did not start; it crosses the init channel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum SpawnError {
    /// The user is not in the jail's /etc/passwd.
    #[error("user {0} is not in the jail's /etc/passwd")]
    NoUser(String),
    /// A group is not in the jail's /etc/group.
    #[error("group {0} is not in the jail's /etc/group")]
    NoGroup(String),
    /// The user's uid or gid is not mapped into the jail.
    #[error("{what} {id} of {user} is outside the jail's id range")]
    Unmapped {
        /// "uid" or "gid".
        what: String,
        /// The id.
        id: u32,
        /// The user.
        user: String,
    },
    /// An argument, a variable or the directory holds a NUL byte.
    #[error("{0} holds a NUL byte")]
    Nul(String),
    /// A call of init's before the fork failed.
    #[error("{call}: {}", raw::errno_name(&io::Error::from_raw_os_error(*errno)))]
    Init {
        /// The call.
        call: String,
        /// Its errno.
        errno: i32,
    },
    /// The child failed at `stage` (its ids, its directory, execve...).
    #[error("cannot start {program}: {stage}: {}", raw::errno_name(&io::Error::from_raw_os_error(*errno)))]
    Child {
        /// The command's first word.
        program: String,
        /// The call that failed.
        stage: String,
        /// Its errno.
        errno: i32,
    },
}

impl SpawnError {
    /// The exit status for this failure, as a shell gives it: 127 when the
    /// program was not found, 126 when it was found but could not be
    /// executed, 125 when sysjail failed before execve (the user, the
    /// working directory, a call of init's).
    pub fn exit_status(&self) -> i32 {
        match self {
            SpawnError::Child { stage, errno, .. } if stage == "execve" => match *errno {
                libc::ENOENT | libc::ENOTDIR => 127,
                _ => 126,
            },
            _ => 125,
        }
    }
}

fn resolve(spawn: &Spawn, ids: &IdMapping) -> Result<Login, SpawnError> {
    let passwd = users::parse_passwd(&std::fs::read_to_string("/etc/passwd").unwrap_or_default());
    let group = users::parse_group(&std::fs::read_to_string("/etc/group").unwrap_or_default());
    let mut who = match &spawn.user {
        SpawnUser::Resolved(login) => login.clone(),
        SpawnUser::Root | SpawnUser::Jail(_) => {
            let wanted = match &spawn.user {
                SpawnUser::Jail(r) => r.clone(),
                _ => IdRef::Id(0),
            };
            let p = users::find_user(&passwd, &wanted).ok_or_else(|| SpawnError::NoUser(wanted.to_string()))?;
            let groups = users::groups_of(&group, &p);
            Login {
                name: p.name,
                uid: p.uid,
                gid: p.gid,
                groups,
                home: p.home,
                shell: p.shell,
            }
        }
    };
    if let Some(list) = &spawn.groups {
        who.groups = list
            .iter()
            .map(|g| users::find_group(&group, g).ok_or_else(|| SpawnError::NoGroup(g.to_string())))
            .collect::<Result<_, _>>()?;
    }
    for (what, id) in [("uid", who.uid), ("gid", who.gid)] {
        if !ids.maps(id) {
            return Err(SpawnError::Unmapped {
                what: what.to_string(),
                id,
                user: who.name.clone(),
            });
        }
    }
    who.groups.retain(|g| ids.maps(*g));
    Ok(who)
}

fn environment(spawn: &Spawn, who: &Login) -> BTreeMap<String, String> {
    let mut env = if spawn.env.clean {
        let mut env = BTreeMap::new();
        env.insert("HOME".into(), who.home.clone());
        env.insert("SHELL".into(), who.shell.clone());
        env.insert("USER".into(), who.name.clone());
        if let Some(term) = &spawn.env.term {
            env.insert("TERM".into(), term.clone());
        }
        env
    } else {
        spawn.env.inherit.clone()
    };
    env.extend(spawn.env.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// The program to run: argv\[0\] itself when it has a slash, else the first
/// match in PATH, as execvp(3) searches.
fn candidates(argv0: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_string()];
    }
    let path = env.get("PATH").map_or("/usr/local/bin:/usr/bin:/bin", String::as_str);
    path.split(':')
        .map(|dir| format!("{}/{argv0}", if dir.is_empty() { "." } else { dir }))
        .collect()
}

/// Starts `spawn` with `stdio` as its descriptors 0, 1 and 2; returns its pid.
/// The child reports a failure before execve through a pipe, so that the
/// caller can say what went wrong instead of a bare exit status.
pub fn spawn(spawn: &Spawn, stdio: [OwnedFd; 3], ids: &IdMapping, rootless: bool) -> Result<i32, SpawnError> {
    let who = resolve(spawn, ids)?;
    let env = environment(spawn, &who);
    let strings = |what: &'static str, all: Vec<String>| -> Result<Vec<CString>, SpawnError> {
        all.iter()
            .map(|a| cstring(a).map_err(|_| SpawnError::Nul(what.to_string())))
            .collect()
    };
    let argv = strings("an argument", spawn.argv.clone())?;
    let envp = strings("a variable", env.iter().map(|(k, v)| format!("{k}={v}")).collect())?;
    let programs = strings("the command", candidates(&spawn.argv[0], &env))?;
    let workdir = cstring(&spawn.workdir).map_err(|_| SpawnError::Nul("the directory".into()))?;
    let init = |call: &str| {
        let call = call.to_string();
        move |e: nix::errno::Errno| SpawnError::Init { call, errno: e as i32 }
    };
    let (err_read, err_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(init("pipe2"))?;

    // SAFETY: init is single-threaded, so the child may allocate; it execs or exits.
    match unsafe { nix::unistd::fork() }.map_err(init("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(err_read);
            let (stage, e) = child(spawn, &who, &stdio, &argv, &envp, &programs, &workdir, rootless);
            // The errno, then the stage's name.
            let mut msg = e.raw_os_error().unwrap_or(libc::EIO).to_ne_bytes().to_vec();
            msg.extend(stage.as_bytes());
            let _ = nix::unistd::write(&err_write, &msg);
            // SAFETY: _exit skips Rust's cleanup, which a forked child must not run twice.
            unsafe { libc::_exit(127) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(err_write);
            drop(stdio);
            let mut msg = Vec::new();
            let _ = std::fs::File::from(err_read).read_to_end(&mut msg);
            match msg.split_first_chunk::<4>() {
                None => Ok(child.as_raw()),
                // The child exits 127; init reaps it as any other.
                Some((errno, stage)) => Err(SpawnError::Child {
                    program: spawn.argv[0].clone(),
                    stage: String::from_utf8_lossy(stage).into_owned(),
                    errno: i32::from_ne_bytes(*errno),
                }),
            }
        }
    }
}

/// A failed step of the child: its name and the errno.
type Failed = (&'static str, io::Error);

fn failed(what: &'static str) -> Failed {
    (what, io::Error::last_os_error())
}

/// The child's side; returns only on failure, with the stage that failed.
#[allow(clippy::too_many_arguments)]
fn child(
    spawn: &Spawn,
    who: &Login,
    stdio: &[OwnedFd; 3],
    argv: &[CString],
    envp: &[CString],
    programs: &[CString],
    workdir: &CString,
    rootless: bool,
) -> Failed {
    // Init blocks SIGCHLD for its signalfd; the child starts clean.
    let empty = nix::sys::signal::SigSet::empty();
    if nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&empty), None).is_err() {
        return failed("sigprocmask");
    }
    // Rust ignores SIGPIPE in sysjail's own processes, and an ignored signal
    // stays ignored across execve: the command starts with the default, as
    // std::process::Command gives it (else `yes | head -1` in a jail ends
    // in "Broken pipe" errors instead of a quiet SIGPIPE).
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return failed("signal(SIGPIPE)");
    }
    // A session of its own: the jail never shares the caller's terminal.
    if nix::unistd::setsid().is_err() {
        return failed("setsid");
    }
    if let Err(e) = take_stdio(stdio, spawn.tty).and_then(|()| take_ids(who, rootless)) {
        return e;
    }
    // SAFETY: workdir is a valid C string.
    if unsafe { libc::chdir(workdir.as_ptr()) } < 0 {
        return failed("chdir to the working directory");
    }
    exec(programs, argv, envp)
}

/// `stdio` as descriptors 0, 1 and 2 (with `tty`, 0 the controlling
/// terminal), and nothing else of init's past execve.
fn take_stdio(stdio: &[OwnedFd; 3], tty: bool) -> Result<(), Failed> {
    let raw: [RawFd; 3] = [stdio[0].as_raw_fd(), stdio[1].as_raw_fd(), stdio[2].as_raw_fd()];
    // Move the descriptors above 2 first, so that dup2 cannot clobber one.
    let mut high = [0; 3];
    for (i, fd) in raw.iter().enumerate() {
        // SAFETY: F_DUPFD_CLOEXEC on a valid descriptor.
        high[i] = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10) };
        if high[i] < 0 {
            return Err(failed("dup"));
        }
    }
    for (target, fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto 0..2 of descriptors we hold.
        if unsafe { libc::dup2(*fd, target as RawFd) } < 0 {
            return Err(failed("dup2"));
        }
    }
    // SAFETY: TIOCSCTTY on our stdin, a terminal of the jail's devpts.
    if tty && unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(failed("ioctl(TIOCSCTTY)"));
    }
    // Nothing of init's reaches the program.
    raw::cloexec_from(3).map_err(|_| failed("close_range"))
}

/// The user's groups, gid and uid; no capability left for anyone but root.
fn take_ids(who: &Login, rootless: bool) -> Result<(), Failed> {
    // SAFETY: groups is a valid array of its length.
    if !rootless && unsafe { libc::setgroups(who.groups.len(), who.groups.as_ptr()) } < 0 {
        return Err(failed("setgroups"));
    }
    // SAFETY: plain id arguments.
    if unsafe { libc::setresgid(who.gid, who.gid, who.gid) } < 0 {
        return Err(failed("setresgid"));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(who.uid, who.uid, who.uid) } < 0 {
        return Err(failed("setresuid"));
    }
    // The kernel clears them when the uid leaves 0; without privilege the
    // uid never was 0, so clear them here.
    if who.uid != 0 && privs::capset(0, 0, 0).is_err() {
        return Err(failed("capset"));
    }
    Ok(())
}

/// execve of the first candidate that runs, as execvp searches.
fn exec(programs: &[CString], argv: &[CString], envp: &[CString]) -> Failed {
    let argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
    let mut last = ("execve", io::Error::from_raw_os_error(libc::ENOENT));
    // As execvp: a candidate that exists but may not be run is what the
    // search reports, though later candidates are missing.
    let mut denied = None;
    for program in programs {
        // SAFETY: program, argv and envp are NUL-terminated arrays of C strings
        // that live until execve returns (it does only on failure).
        unsafe { libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
        let e = io::Error::last_os_error();
        // As execvp: keep searching past a missing or unexecutable candidate.
        let keep_looking = matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EACCES | libc::ENOTDIR));
        // EACCES also comes from a directory of PATH the user may not
        // search: nothing was found there, as shells say (127, not 126).
        // SAFETY: access(2) of a NUL-terminated path.
        if e.raw_os_error() == Some(libc::EACCES) && unsafe { libc::access(program.as_ptr(), libc::F_OK) } == 0 {
            denied = Some(io::Error::from_raw_os_error(libc::EACCES));
        }
        last = ("execve", e);
        if !keep_looking {
            return last;
        }
    }
    denied.map_or(last, |e| ("execve", e))
}

/// A placeholder descriptor for stdio that the caller does not provide.
pub fn dev_null() -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    Ok(OwnedFd::from(f))
}

/// A new terminal pair of the jail's devpts (mounted at `pts`): (master, slave).
/// The slave comes from TIOCGPTPEER, so no path is looked up for it.
pub fn open_pty(pts: &std::path::Path) -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::unix::fs::OpenOptionsExt;
    let ptmx = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(pts.join("ptmx"))?;
    let master = OwnedFd::from(ptmx);
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER returns a new descriptor of the slave.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor, ours.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}
