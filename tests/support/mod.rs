//! Shared by the tests that launch real jails: what the machine offers, a test
//! runner that reports missing features as SKIP (never as passed), and helpers
//! that run `sysjail` and its in-jail probe.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::Value;

/// What a test needs of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Run as root.
    Root,
    /// An unprivileged user may create user namespaces.
    RootlessUserns,
    /// seccomp user notification.
    SeccompNotify,
    /// Landlock ABI 6 (scopes).
    LandlockScopes,
    /// The i386 ABI (x86_64 with IA32 emulation).
    I386,
    /// A memory controller (v1 or v2).
    Memory,
    /// A pids controller.
    Pids,
    /// A cpu controller.
    Cpu,
    /// iproute2's `ip` command.
    Ip,
    /// `script` from util-linux, to give a command a terminal.
    Script,
    /// The launcher holds CAP_SYS_RESOURCE, which raising a hard limit for
    /// a jail takes. Containers often withhold it even from root.
    SysResource,
    /// A systemd journal (journald's socket), which containers rarely run.
    Journal,
    /// No systemd journal, to see `log = "journal"` refused.
    NoJournal,
    /// An OCI runtime or engine: runc, crun, or a running containerd with ctr.
    Engine(Engine),
    /// A hybrid host: v1 controllers beside the unified hierarchy at
    /// /sys/fs/cgroup/unified. A pure cgroup2 host lacks it by design.
    HybridCgroups,
}

/// The OCI engines the export tests drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Runc,
    Crun,
    Containerd,
}

impl Engine {
    /// The command that tells whether it is there (containerd: the daemon answers).
    fn present(self) -> bool {
        let (cmd, args): (&str, &[&str]) = match self {
            Engine::Runc => ("runc", &["--version"]),
            Engine::Crun => ("crun", &["--version"]),
            Engine::Containerd => ("ctr", &["version"]),
        };
        Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Need {
    /// Whether CI must have it. A container may withhold CAP_SYS_RESOURCE
    /// from root, so its tests report SKIP there even under
    /// SYSJAIL_REQUIRE_ALL.
    fn required_in_ci(self) -> bool {
        !matches!(
            self,
            Need::SysResource | Need::Journal | Need::NoJournal | Need::HybridCgroups
        )
    }
}

/// The machine, probed once.
pub struct Machine {
    root: bool,
    rootless_userns: bool,
    notify: bool,
    landlock: u32,
    i386: bool,
    controllers: Vec<String>,
    ip: bool,
    script: bool,
    sys_resource: bool,
    engines: Vec<Engine>,
}

impl Machine {
    pub fn probe() -> Machine {
        let facts = sysjail::sys::probe::probe();
        let mut controllers: Vec<String> = facts.cgroup.v1.keys().cloned().collect();
        controllers.extend(facts.cgroup.v2_controllers.iter().cloned());
        Machine {
            root: facts.root,
            rootless_userns: facts.root && rootless_userns(),
            notify: facts.seccomp_notify,
            landlock: facts.landlock_abi.map_or(0, u32::from),
            i386: cfg!(target_arch = "x86_64") && i386_works(),
            controllers,
            ip: Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success()),
            script: Command::new("script")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            sys_resource: facts.has_cap(sysjail::policy::Capability::SYS_RESOURCE.number()),
            engines: [Engine::Runc, Engine::Crun, Engine::Containerd]
                .into_iter()
                .filter(|e| e.present())
                .collect(),
        }
    }

    /// Why the machine cannot run a test, if it cannot.
    pub fn lacks(&self, needs: &[Need]) -> Option<(String, bool)> {
        for need in needs {
            let missing = match need {
                Need::Root => (!self.root).then(|| "needs root (CI runs as root)".to_string()),
                Need::RootlessUserns => {
                    (!self.rootless_userns).then(|| "unprivileged users cannot create user namespaces here".to_string())
                }
                Need::SeccompNotify => (!self.notify).then(|| "seccomp user notification is missing".to_string()),
                Need::LandlockScopes => {
                    (self.landlock < 6).then(|| format!("Landlock ABI {} lacks scopes (6)", self.landlock))
                }
                Need::I386 => (!self.i386).then(|| "the kernel runs no i386 code (IA32 emulation)".to_string()),
                Need::Memory => self.controller("memory"),
                Need::Pids => self.controller("pids"),
                Need::Cpu => self.controller("cpu"),
                Need::Ip => (!self.ip).then(|| "iproute2's ip is not installed".to_string()),
                Need::Script => (!self.script).then(|| "util-linux's script is not installed".to_string()),
                Need::SysResource => (!self.sys_resource)
                    .then(|| "the launcher lacks CAP_SYS_RESOURCE (withheld by this container)".to_string()),
                Need::Journal => (!journal()).then(|| "no systemd journal runs here".to_string()),
                Need::NoJournal => journal().then(|| "a systemd journal runs here".to_string()),
                Need::HybridCgroups => (!Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists())
                    .then(|| "no unified hierarchy beside v1 controllers (not a hybrid cgroup host)".to_string()),
                Need::Engine(e) => (!self.engines.contains(e)).then(|| match e {
                    Engine::Containerd => "containerd is not running (or ctr is not installed)".to_string(),
                    _ => format!("{e:?} is not installed").to_lowercase(),
                }),
            };
            if let Some(why) = missing {
                return Some((why, need.required_in_ci()));
            }
        }
        None
    }

    fn controller(&self, name: &str) -> Option<String> {
        (!self.controllers.iter().any(|c| c == name)).then(|| format!("no {name} cgroup controller"))
    }
}

fn journal() -> bool {
    Path::new("/run/systemd/journal/socket").exists()
}

fn rootless_userns() -> bool {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "--user",
            "true",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// int 0x80 works when the probe's i386 getpid returns a pid (without IA32
/// emulation the kernel raises SIGSEGV instead).
fn i386_works() -> bool {
    Command::new(bin())
        .args(["probe", "i386-getpid"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && serde_json::from_slice::<Value>(&o.stdout)
                    .is_ok_and(|v| v["checks"]["i386-getpid"]["ret"].as_i64().unwrap_or(0) > 0)
        })
}

/// Runs the tests, reporting missing features as ignored with their reason.
/// With SYSJAIL_REQUIRE_ALL set (as CI sets it), a missing feature fails.
pub struct Runner {
    machine: std::sync::Arc<Machine>,
    trials: Vec<Trial>,
}

pub type TestResult = Result<(), String>;

impl Runner {
    pub fn new() -> Runner {
        Runner {
            machine: std::sync::Arc::new(Machine::probe()),
            trials: Vec::new(),
        }
    }

    pub fn test(&mut self, name: &str, needs: &[Need], f: fn(&Ctx) -> TestResult) {
        self.add(name, needs, f, false)
    }

    /// A test that no other test of its binary runs beside, for one that
    /// takes a census of the machine (of processes or namespaces, say).
    pub fn test_alone(&mut self, name: &str, needs: &[Need], f: fn(&Ctx) -> TestResult) {
        self.add(name, needs, f, true)
    }

    fn add(&mut self, name: &str, needs: &[Need], f: fn(&Ctx) -> TestResult, alone: bool) {
        static CENSUS: std::sync::RwLock<()> = std::sync::RwLock::new(());
        let lacks = self.machine.lacks(needs);
        let name = name.to_string();
        let jail = name.replace('_', "-");
        self.trials.push(Trial::ignorable_test(name.clone(), move || {
            if let Some((why, required)) = lacks {
                if required && std::env::var_os("SYSJAIL_REQUIRE_ALL").is_some() {
                    return Err(Failed::from(format!("cannot run: {why} (SYSJAIL_REQUIRE_ALL is set)")));
                }
                eprintln!("SKIP {name}: {why}");
                return Ok(Completion::ignored_with(format!("SKIP: {why}")));
            }
            // A failed test poisons nothing that matters here: the lock guards no data.
            let _shared = (!alone).then(|| CENSUS.read().unwrap_or_else(|e| e.into_inner()));
            let _alone = alone.then(|| CENSUS.write().unwrap_or_else(|e| e.into_inner()));
            let ctx = Ctx::new(&jail);
            let result = f(&ctx);
            ctx.cleanup();
            result.map(|()| Completion::Completed).map_err(Failed::from)
        }));
    }

    pub fn run(self) -> ! {
        let args = Arguments::from_args();
        libtest_mimic::run(&args, self.trials).exit()
    }
}

/// What a test works with: its own directory, state directory and jail name.
pub struct Ctx {
    pub name: String,
    pub dir: PathBuf,
    pub state: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sysjail")
}

/// The directory of [`bin`], which a jail binds in to run the probe.
pub fn bindir() -> String {
    Path::new(bin()).parent().unwrap().display().to_string()
}

impl Ctx {
    /// The entries of the state directory, sorted, but its lock, the host
    /// facts cache and the JID index's mark, which belong to the directory,
    /// not to a jail.
    pub fn state_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.state)
            .expect("the state directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != "lock" && n != "facts.cache" && n != ".jid-index")
            .collect();
        v.sort();
        v
    }

    pub fn new(name: &str) -> Ctx {
        let dir = std::env::temp_dir().join(format!("sj-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Readable by every jail user: tests run commands as nobody too.
        let _ = Command::new("chmod").arg("755").arg(&dir).status();
        Ctx {
            name: name.to_string(),
            state: dir.join("state"),
            dir,
        }
    }

    fn cleanup(&self) {
        // Whatever a failed test left running goes.
        if let Ok(out) = self.sysjail(&["ls", "--json"]).output()
            && let Ok(Value::Array(jails)) = serde_json::from_slice::<Value>(&out.stdout)
        {
            for j in jails {
                if let Some(name) = j["name"].as_str() {
                    let _ = self.sysjail(&["down", name]).output();
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// `sysjail ARGS --state-dir DIR`.
    pub fn sysjail(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--state-dir")
            .arg(&self.state)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// Writes a definition named after the test (so that jails never collide),
    /// with `body` after `name` and `path`.
    pub fn jail(&self, body: &str) -> PathBuf {
        self.jail_named(&self.name, body)
    }

    pub fn jail_named(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        let mut text = format!("name = \"{name}\"\n");
        if !body.contains("path =") {
            text.push_str("path = \"/\"\n");
        }
        if !body.contains("command =") {
            text.push_str("command = [\"/bin/true\"]\n");
        }
        text.push_str(body);
        fs::write(&path, text).unwrap();
        path
    }

    /// `sysjail --state-dir DIR ARGS` run as nobody (uid 65534) through
    /// setpriv, with a state directory of nobody's own.
    pub fn as_nobody(&self, args: &[&str]) -> Command {
        let state = self.dir.join("state-nobody");
        fs::create_dir_all(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
        // A state directory must be its user's alone, whatever the umask.
        fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            bin(),
            "--state-dir",
        ])
        .arg(&state)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
        c
    }

    /// Runs `sysjail up FILE -- CMD...` to completion, bounded in time.
    pub fn up(&self, file: &Path, cmd: &[&str]) -> Output {
        let mut c = self.sysjail(&["up"]);
        c.arg(file).arg("--").args(cmd);
        run_bounded(c, Duration::from_secs(60))
    }

    /// Runs the probe inside the jail of `file` and returns its report.
    pub fn probe(&self, file: &Path, checks: &[&str]) -> Result<Probe, String> {
        let mut cmd = vec![bin(), "probe"];
        cmd.extend(checks);
        let out = self.up(file, &cmd);
        if !out.status.success() {
            return Err(format!(
                "sysjail up exited {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let value: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "probe output is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        Ok(Probe(value))
    }
}

/// Runs a shell command line under script(1), which gives it a terminal of
/// its own as 0, 1 and 2: the caller's terminal. Its output, without the
/// terminal's carriage returns.
pub fn on_a_terminal(line: &str) -> String {
    let mut c = Command::new("script");
    c.args(["-qec", line, "/dev/null"]);
    let out = run_bounded(c, Duration::from_secs(60));
    // script(1) turns the end of its own (empty) input into a NUL byte for
    // the terminal, which the jail's terminal echoes as ^@.
    text(&out.stdout).replace('\r', "").replace("^@", "")
}

/// `s` quoted for a shell command line.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs a command with a time bound; kills it past the bound.
pub fn run_bounded(mut c: Command, limit: Duration) -> Output {
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < limit {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let out = child.wait_with_output().expect("wait");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    out
}

/// A probe's report.
pub struct Probe(pub Value);

impl Probe {
    /// The errno of a check (0 for success).
    pub fn errno(&self, check: &str) -> Result<i32, String> {
        self.0["checks"][check]["errno"]
            .as_i64()
            .map(|e| e as i32)
            .ok_or_else(|| format!("no check {check} in {}", self.0))
    }

    pub fn fact(&self, name: &str) -> &Value {
        &self.0["facts"][name]
    }

    /// Asserts each check's errno, naming them on failure.
    pub fn expect(&self, expected: &[(&str, i32)]) -> TestResult {
        let mut wrong = Vec::new();
        for (check, want) in expected {
            let got = self.errno(check)?;
            if got != *want {
                wrong.push(format!(
                    "{check}: errno {} ({}), expected {} ({})",
                    got,
                    name(got),
                    want,
                    name(*want)
                ));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("\n"))
        }
    }
}

/// The name of an errno, for messages.
pub fn name(errno: i32) -> &'static str {
    match errno {
        0 => "success",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ENOSYS => "ENOSYS",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EROFS => "EROFS",
        libc::EBADF => "EBADF",
        libc::ECONNREFUSED => "ECONNREFUSED",
        _ => "other",
    }
}

/// Fails with a message unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> TestResult {
    if cond { Ok(()) } else { Err(msg()) }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The records of `sysjail ls --json`.
pub fn ls(ctx: &Ctx) -> Vec<Value> {
    let out = ctx.sysjail(&["ls", "--json"]).output().unwrap();
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(v)) => v,
        _ => Vec::new(),
    }
}

/// Waits (bounded) until `f` holds.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// True while a process exists (and is not a zombie).
pub fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s[i + 2..].split(' ').next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Every cgroup directory a jail named `name` could have.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let candidate = entry.path().join("sysjail").join(name);
        if candidate.exists() {
            out.push(candidate);
        }
    }
    let top = Path::new("/sys/fs/cgroup/sysjail").join(name);
    if top.exists() {
        out.push(top);
    }
    out
}

pub fn env_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// First disk id of the test trees: a dedicated, writable tree belongs on
/// disk to an unprivileged range, whose first id is jail root.
pub const TREE_IDS: u32 = 0x6000_0000;

/// Gives a tree built by root to [`TREE_IDS`]: each file's uid and gid move
/// up by it (0 becomes jail root), links included, as LXC shifts a rootfs.
pub fn shift_tree(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(root).unwrap();
    std::os::unix::fs::lchown(root, Some(TREE_IDS + meta.uid()), Some(TREE_IDS + meta.gid())).unwrap();
    if meta.is_dir() {
        for entry in fs::read_dir(root).unwrap() {
            shift_tree(&entry.unwrap().path());
        }
    }
}

/// A directory of root's that no other user can search, where a test keeps
/// writable jail trees (sysjail refuses one every host user can reach).
pub fn private_dir(ctx: &Ctx) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = ctx.dir.join("private");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// A registry record of a jail named `name` whose supervisor is `pid`
/// (started at `start`), with nothing else to it; tests set what they need.
pub fn record(name: &str, pid: i32, start: u64, control: &Path) -> sysjail::state::Record {
    sysjail::state::Record {
        id: 1,
        name: name.into(),
        hostname: name.into(),
        depend: vec![],
        path: "/".into(),
        mode: "private".into(),
        ipv4: vec![],
        ipv6: vec![],
        allow: vec![],
        supervisor_pid: pid,
        supervisor_start: start,
        init_pid: None,
        started: 0,
        definition: None,
        digest: "0".into(),
        id_base: 0,
        cgroups: vec![],
        veth: None,
        control: control.to_path_buf(),
        state: sysjail::state::JailState::Running,
        limits: sysjail::state::Limits::default(),
        run: sysjail::state::Run::default(),
    }
}
