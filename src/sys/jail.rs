//! The jail's setup: one loop over the plan's steps, each turned into calls of
//! a [`Kernel`].

use std::fmt;
use std::io;

use super::kernel::{BIND_ATTRS, Create, Kernel};
use super::raw::attr;
use crate::model::{AbsPath, Bytes};
use crate::plan::JailStep;

/// A step that failed, named as `sysjail up --dry-run` numbers it.
#[derive(Debug)]
pub struct StepError {
    /// 1-based index.
    pub index: usize,
    /// Number of steps.
    pub total: usize,
    /// The step, as printed.
    pub step: String,
    /// What the kernel said.
    pub error: io::Error,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {}/{} {}: {}",
            self.index,
            self.total,
            self.step,
            super::raw::errno_name(&self.error)
        )
    }
}

/// What the setup leaves behind for init.
pub struct Outcome<F> {
    /// The seccomp listener, if the filter has one.
    pub listener: Option<F>,
    /// Notes for `-d`: what Landlock enforced, what was skipped.
    pub notes: Vec<String>,
}

/// Carries out `steps` in order. `prepared` holds the supervisor's id-mapped
/// mounts, taken as steps use them.
pub fn run<K: Kernel>(
    steps: &[JailStep],
    k: &mut K,
    prepared: &mut [Option<K::Fd>],
) -> Result<Outcome<K::Fd>, StepError> {
    let mut outcome = Outcome {
        listener: None,
        notes: Vec::new(),
    };
    for (i, step) in steps.iter().enumerate() {
        run_one(step, k, prepared, &mut outcome).map_err(|error| StepError {
            index: i + 1,
            total: steps.len(),
            step: step.to_string(),
            error,
        })?;
    }
    Ok(outcome)
}

fn missing(what: &AbsPath) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "mount point {what} does not exist in the jail's root, and sysjail creates none in the host's root or in a host directory"
        ),
    )
}

fn take<F>(prepared: &mut [Option<F>], slot: usize) -> io::Result<F> {
    prepared
        .get_mut(slot)
        .and_then(Option::take)
        .ok_or_else(|| io::Error::other(format!("prepared mount {slot} was not received")))
}

fn run_one<K: Kernel>(
    step: &JailStep,
    k: &mut K,
    prepared: &mut [Option<K::Fd>],
    out: &mut Outcome<K::Fd>,
) -> io::Result<()> {
    match step {
        JailStep::SwitchIds { uid, gid, clear_groups } => k.switch_ids(*uid, *gid, *clear_groups),
        JailStep::UserCounters { set } => {
            for (file, value) in set {
                k.user_counter(file, *value)?;
            }
            Ok(())
        }
        JailStep::AwaitCgroups => k.await_cgroups(),
        JailStep::UnshareCgroup => k.unshare_cgroup(),
        JailStep::PrivateMounts => k.make_private(),
        JailStep::Staging => k.staging(),
        JailStep::Root { source, prepared: slot } => root(k, source, slot.map(|s| take(prepared, s)).transpose()?),
        JailStep::Bind {
            source,
            target,
            read_only,
            recursive,
            prepared: slot,
            create,
        } => {
            let tree = slot.map(|s| take(prepared, s)).transpose()?;
            bind(k, source, target, tree, *read_only, *recursive, *create)
        }
        JailStep::Tmpfs {
            target,
            size,
            mode,
            read_only,
            create,
        } => tmpfs(k, target, *size, *mode, *read_only, *create),
        JailStep::Proc { target, create } => {
            let fs = k.new_fs("proc", &[], attr::NOSUID | attr::NODEV | attr::NOEXEC)?;
            let (at, _) = k
                .lookup(target, if *create { Create::Dir } else { Create::No })?
                .ok_or_else(|| missing(target))?;
            k.attach(fs, &at)
        }
        JailStep::Dev {
            target,
            tty_gid,
            shm,
            create,
        } => dev(k, target, *tty_gid, *shm, *create),
        JailStep::Mask { target } => mask(k, target, out),
        JailStep::ReadOnly { target } => {
            let Some((at, _)) = k.lookup(target, Create::No)? else {
                return Ok(());
            };
            let copy = k.jail_tree(&at, true)?;
            k.set_attr(&copy, attr::RDONLY, true)?;
            k.attach(copy, &at)
        }
        JailStep::RootReadOnly => {
            let (root, _) = k
                .lookup(&AbsPath::root(), Create::No)?
                .ok_or_else(|| missing(&AbsPath::root()))?;
            k.set_attr(&root, attr::RDONLY, false)
        }
        JailStep::File { target, content } => file(k, target, content, out),
        JailStep::PivotRoot => k.enter(),
        JailStep::Hostname { name } => k.sethostname(name),
        JailStep::LoopbackUp => k.loopback_up(),
        JailStep::Interface {
            name,
            addresses,
            routes,
        } => k.interface(name, addresses, routes),
        JailStep::Rlimits { limits } => {
            for (r, v) in limits {
                k.setrlimit(*r, crate::plan::rlim(*v))?;
            }
            Ok(())
        }
        JailStep::Capabilities { keep } => k.capabilities(keep.iter().fold(0u64, |m, &c| m | 1 << c)),
        JailStep::NoNewPrivs => k.no_new_privs(),
        JailStep::Landlock { rules, scopes } => {
            let status = k.landlock(rules, scopes)?;
            out.notes.push(format!("landlock: {status}"));
            Ok(())
        }
        JailStep::Seccomp { program, listener } => {
            out.listener = k.seccomp(program, *listener)?;
            Ok(())
        }
    }
}

/// The jail's root: the prepared `tree`, or else `source` from the host.
fn root<K: Kernel>(k: &mut K, source: &AbsPath, tree: Option<K::Fd>) -> io::Result<()> {
    let tree = match tree {
        Some(tree) => tree,
        // Without privilege `/` only comes with its submounts.
        None => k.host_tree(source, source.is_root())?.0,
    };
    k.set_attr(&tree, BIND_ATTRS, false)?;
    let (at, _) = k
        .lookup(&AbsPath::root(), Create::No)?
        .ok_or_else(|| missing(&AbsPath::root()))?;
    k.attach(tree, &at)
}

/// A bind mount of the prepared `tree`, or else of `source` from the host,
/// at `target`; `create` makes a mount point of the source's kind.
fn bind<K: Kernel>(
    k: &mut K,
    source: &AbsPath,
    target: &AbsPath,
    tree: Option<K::Fd>,
    read_only: bool,
    recursive: bool,
    create: bool,
) -> io::Result<()> {
    let (tree, dir) = match tree {
        Some(tree) => {
            let dir = k.is_dir(&tree)?;
            (tree, dir)
        }
        None => k.host_tree(source, recursive)?,
    };
    let ro = if read_only { attr::RDONLY } else { 0 };
    k.set_attr(&tree, BIND_ATTRS | ro, recursive)?;
    let how = match (create, dir) {
        (false, _) => Create::No,
        (true, true) => Create::Dir,
        (true, false) => Create::File,
    };
    let (at, _) = k.lookup(target, how)?.ok_or_else(|| missing(target))?;
    k.attach(tree, &at)
}

/// `content` bound read-only over the file `target`. A tree without the file
/// (or with a directory there) is noted and left as it is: the read-only root
/// has no place for a new mount point. So is a symbolic link, or a path
/// through one: binding over what it leads to would let the tree's owner
/// hide any file of the jail (/etc/hostname -> /bin/sh).
fn file<K: Kernel>(k: &mut K, target: &AbsPath, content: &str, out: &mut Outcome<K::Fd>) -> io::Result<()> {
    use super::kernel::Plain;
    let at = match k.lookup_plain(target)? {
        Plain::File(at) => at,
        Plain::Link => {
            out.notes.push(format!(
                "{target} is a symbolic link, or is reached through one, in the jail's tree: left as it is"
            ));
            return Ok(());
        }
        Plain::Other(what) => {
            out.notes
                .push(format!("{target} is {what} in the jail's tree: left as it is"));
            return Ok(());
        }
        Plain::Missing => {
            out.notes
                .push(format!("{target} is absent from the jail's tree: none bound"));
            return Ok(());
        }
    };
    let tree = k.staged_file(target, content.as_bytes())?;
    k.set_attr(&tree, BIND_ATTRS | attr::NOEXEC | attr::RDONLY, false)?;
    k.attach(tree, &at)
}

/// A tmpfs of `size` and `mode` at `target`.
fn tmpfs<K: Kernel>(
    k: &mut K,
    target: &AbsPath,
    size: Bytes,
    mode: u32,
    read_only: bool,
    create: bool,
) -> io::Result<()> {
    let ro = if read_only { attr::RDONLY } else { 0 };
    let fs = k.new_fs(
        "tmpfs",
        &[("size", size.0.to_string()), ("mode", format!("{mode:o}"))],
        BIND_ATTRS | ro,
    )?;
    let (at, _) = k
        .lookup(target, if create { Create::Dir } else { Create::No })?
        .ok_or_else(|| missing(target))?;
    k.attach(fs, &at)
}

/// Covers `target`: a directory with an empty read-only tmpfs, a file with
/// /dev/null. An absent one is noted in `out`.
fn mask<K: Kernel>(k: &mut K, target: &AbsPath, out: &mut Outcome<K::Fd>) -> io::Result<()> {
    let Some((at, dir)) = k.lookup(target, Create::No)? else {
        out.notes
            .push(format!("{target} is absent on this kernel: nothing to mask"));
        return Ok(());
    };
    let cover = if dir {
        k.new_fs(
            "tmpfs",
            &[("size", "4k".into()), ("mode", "555".into())],
            attr::RDONLY | BIND_ATTRS | attr::NOEXEC,
        )?
    } else {
        let null = AbsPath::parse("/dev/null").expect("static");
        k.host_tree(&null, false)?.0
    };
    k.attach(cover, &at)
}

/// The minimal /dev: a tmpfs, six host device nodes bound in, a private devpts,
/// shm, mqueue and the usual links.
fn dev<K: Kernel>(k: &mut K, target: &AbsPath, tty_gid: Option<u32>, shm: Bytes, create: bool) -> io::Result<()> {
    let path = |name: &str| target.join(&AbsPath::parse(&format!("/{name}")).expect("static names"));
    let fs = k.new_fs(
        "tmpfs",
        &[("size", "64k".into()), ("mode", "755".into())],
        attr::NOSUID | attr::NOEXEC,
    )?;
    let (at, _) = k
        .lookup(target, if create { Create::Dir } else { Create::No })?
        .ok_or_else(|| missing(target))?;
    k.attach(fs, &at)?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let source = AbsPath::parse(&format!("/dev/{node}")).expect("static");
        let (tree, _) = k.host_tree(&source, false)?;
        k.set_attr(&tree, attr::NOSUID | attr::NOEXEC, false)?;
        let (at, _) = k.lookup(&path(node), Create::File)?.expect("created");
        k.attach(tree, &at)?;
    }
    let mut pts = vec![
        ("newinstance", String::new()),
        ("ptmxmode", "0666".into()),
        ("mode", "620".into()),
    ];
    if let Some(gid) = tty_gid {
        pts.push(("gid", gid.to_string()));
    }
    let pts: Vec<(&str, String)> = pts.into_iter().filter(|(k, _)| *k != "newinstance").collect();
    let fs = k.new_fs("devpts", &pts, attr::NOSUID | attr::NOEXEC)?;
    let (at, _) = k.lookup(&path("pts"), Create::Dir)?.expect("created");
    k.attach(fs, &at)?;
    let fs = k.new_fs(
        "tmpfs",
        &[("mode", "1777".into()), ("size", shm.0.to_string())],
        attr::NOSUID | attr::NODEV,
    )?;
    let (at, _) = k.lookup(&path("shm"), Create::Dir)?.expect("created");
    k.attach(fs, &at)?;
    let fs = k.new_fs("mqueue", &[], attr::NOSUID | attr::NODEV | attr::NOEXEC)?;
    let (at, _) = k.lookup(&path("mqueue"), Create::Dir)?.expect("created");
    k.attach(fs, &at)?;
    for (link, dest) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        k.symlink(dest, &path(link))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sys::recorder::Recorder;

    /// The jail steps of each example, planned for a root launcher.
    fn plans() -> Vec<(String, crate::plan::LaunchPlan)> {
        crate::plan::example_plans()
    }

    fn prepared(plan: &crate::plan::LaunchPlan) -> Vec<Option<()>> {
        vec![Some(()); plan.host.prepared()]
    }

    fn position(calls: &[&str], name: &str) -> usize {
        calls
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{name} never called: {calls:?}"))
    }

    #[test]
    fn mounts_before_pivot_and_seccomp_last() {
        const MOUNTING: [&str; 10] = [
            "staging",
            "staged_file",
            "host_tree",
            "jail_tree",
            "new_fs",
            "set_attr",
            "lookup",
            "lookup_plain",
            "attach",
            "symlink",
        ];
        for (name, plan) in plans() {
            let mut k = Recorder {
                files: vec![AbsPath::parse("/etc/hosts").unwrap()],
                ..Recorder::default()
            };
            let outcome = run(&plan.jail, &mut k, &mut prepared(&plan)).expect("the recorder never fails");
            let hosts = plan.jail.iter().any(|s| matches!(s, JailStep::File { .. }));
            assert_eq!(k.calls.contains(&"staged_file"), hosts, "{name}: /etc/hosts");
            let calls = &k.calls;
            let enter = position(calls, "enter");
            assert_eq!(calls.iter().filter(|c| **c == "enter").count(), 1, "{name}");
            // Every mount is made while the host's tree is still reachable,
            // and none after the pivot, when the jail could race them.
            let last_mount = calls.iter().rposition(|c| MOUNTING.contains(c)).unwrap();
            assert!(last_mount < enter, "{name}: a mount after pivot_root: {calls:?}");
            // Limits and the hostname are set while init still holds its
            // capabilities; the bounding set drops after them.
            let caps = position(calls, "capabilities");
            for before in ["setrlimit", "sethostname", "loopback_up", "interface"] {
                if let Some(i) = calls.iter().rposition(|c| *c == before) {
                    assert!(i < caps, "{name}: {before} after the capabilities drop");
                }
            }
            // Landlock needs no_new_privs; seccomp is last, so that no setup
            // call has to pass the jail's own filter.
            let nnp = position(calls, "no_new_privs");
            let landlock = position(calls, "landlock");
            let seccomp = position(calls, "seccomp");
            assert!(caps < nnp && nnp < landlock && landlock < seccomp, "{name}: {calls:?}");
            assert_eq!(seccomp, calls.len() - 1, "{name}: a call after seccomp: {calls:?}");
            assert!(outcome.notes.iter().any(|n| n == "landlock: recorded"));
        }
    }

    #[test]
    fn a_file_step_binds_over_a_file_only() {
        let step = JailStep::File {
            target: AbsPath::parse("/etc/hosts").unwrap(),
            content: "127.0.0.1\tlocalhost\n".into(),
        };
        let mut k = Recorder {
            files: vec![AbsPath::parse("/etc/hosts").unwrap()],
            ..Recorder::default()
        };
        run(std::slice::from_ref(&step), &mut k, &mut []).unwrap();
        assert_eq!(k.calls, ["lookup_plain", "staged_file", "set_attr", "attach"]);
        // A directory there is left alone, and said so.
        let mut k = Recorder::default();
        let outcome = run(std::slice::from_ref(&step), &mut k, &mut []).unwrap();
        assert_eq!(k.calls, ["lookup_plain"]);
        assert!(outcome.notes.iter().any(|n| n.contains("/etc/hosts is a directory")));
        // So is a link: nothing is bound over what it leads to.
        let mut k = Recorder {
            links: vec![AbsPath::parse("/etc/hosts").unwrap()],
            ..Recorder::default()
        };
        let outcome = run(std::slice::from_ref(&step), &mut k, &mut []).unwrap();
        assert_eq!(k.calls, ["lookup_plain"]);
        assert!(
            outcome
                .notes
                .iter()
                .any(|n| n.contains("/etc/hosts is a symbolic link"))
        );
    }

    #[test]
    fn a_failing_call_stops_the_setup_there() {
        let (_, plan) = plans().into_iter().find(|(n, _)| n == "web").unwrap();
        let mut all = Recorder::default();
        run(&plan.jail, &mut all, &mut prepared(&plan)).unwrap();
        for fail_at in 0..all.calls.len() {
            let mut k = Recorder {
                fail_at: Some(fail_at),
                ..Recorder::default()
            };
            let err = match run(&plan.jail, &mut k, &mut prepared(&plan)) {
                Err(e) => e,
                Ok(_) => panic!("call {fail_at} failed but the setup went on"),
            };
            // Nothing runs after the failure: no half-confined process
            // ever reaches the command.
            assert_eq!(k.calls.len(), fail_at + 1, "calls after the failure: {:?}", k.calls);
            assert_eq!(err.total, plan.jail.len());
            assert_eq!(err.step, plan.jail[err.index - 1].to_string());
            assert_eq!(err.error.raw_os_error(), Some(libc::EPERM));
            assert!(
                err.to_string()
                    .starts_with(&format!("step {}/{} ", err.index, err.total))
            );
        }
    }
}
