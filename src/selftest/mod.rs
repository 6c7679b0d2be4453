//! The sjtest(1) of today: launch a jail with a probe inside, and check from
//! there that each promise of its policy holds on this kernel.
//!
//! [`expectations`] derives what the probe must observe from the jail's
//! definition (its `allow` entries, addresses and user), and [`judge`] compares
//! them with the probe's [`probe::Report`]. Both are pure; `sysjail selftest`
//! does the launching.

mod netprobe;
pub(crate) mod probe;

/// The in-jail probe, which `sysjail selftest` runs inside the jail as the
/// binary's hidden `probe` subcommand: not part of the library's API.
#[doc(hidden)]
pub fn probe_main(checks: &[String]) -> i32 {
    probe::run(checks)
}

use std::borrow::Cow;
use std::fmt;

use probe::Report;

use crate::model::{Identity, Jail};
use crate::promises::{CATALOGUE, Outcome, Setting};
use crate::syscalls::Abi;

/// What a check must return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this errno (0: success).
    Errno(i32),
    /// Anything but this errno: the filter let the call through, whatever the
    /// kernel then says.
    Not(i32),
    /// Success, with the socket bound to this address.
    BoundTo(std::net::IpAddr),
    /// A race: calls succeeded, and every socket it reports is on one of
    /// these addresses.
    OnlyAt(Vec<std::net::IpAddr>),
}

/// One promise, checked by one probe call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// What the old manual or the design promises.
    pub promise: Cow<'static, str>,
    /// The probe check (`NAME` or `NAME=ARG`).
    pub check: String,
    /// Its expected outcome.
    pub expect: Expect,
}

/// A promise that a fact of the probe must satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactExpectation {
    /// Only the jail's init and the probe are visible.
    OnlyJailProcesses,
    /// gethostname returns this.
    Hostname(String),
    /// no_new_privs is set.
    NoNewPrivs,
    /// A seccomp filter is installed.
    SeccompFilter,
    /// The bounding set is exactly this mask; the effective set is it (root) or
    /// empty (any other user); the ambient set is empty.
    Capabilities {
        /// The bounding set.
        bounding: u64,
        /// The jail runs as jail root.
        root: bool,
    },
    /// The process has a session of its own, without a terminal.
    OwnSession,
    /// Init's command line names its role and the jail, no host path, and
    /// init has no controlling terminal.
    InitReveals(String),
    /// /dev/shm holds at most this many bytes.
    ShmSize(u64),
}

/// The outcome of one promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The promise.
    pub promise: String,
    /// Whether it holds.
    pub pass: bool,
    /// What was observed.
    pub detail: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            if self.pass { "PASS" } else { "FAIL" },
            self.promise,
            self.detail
        )
    }
}

use crate::promises::errno::ESRCH;

/// Everything the probe must observe in `jail`. `outside` is a pid outside the
/// jail (the supervisor's); `abis` are the ABIs the filter covers; `scratch`
/// is a writable directory of the jail.
/// `can_raise`: the policy has the supervisor raise hard limits (`allow =
/// ["rlimit"]` on a host where the launcher holds CAP_SYS_RESOURCE).
/// `rewrites`: the policy enforces the address rewrite (root and cgroup2);
/// without it a private jail's binds are not rewritten.
///
/// Every fixed answer comes from the promise catalogue
/// ([`crate::promises::CATALOGUE`]); the ones that depend on a pid, on
/// addresses or on a race are made here.
pub fn expectations(
    jail: &Jail,
    outside: u32,
    abis: &[Abi],
    scratch: &str,
    can_raise: bool,
    rewrites: bool,
) -> (Vec<Expectation>, Vec<FactExpectation>) {
    let setting = Setting::of(jail, abis, can_raise);
    let mut e = catalogued(&setting, scratch);
    e.extend(addressed(jail, outside, &setting, rewrites));
    (e, facts(jail))
}

/// The catalogue's promises that apply in `setting`: each native check, then
/// (where the filter covers i386) each i386 twin, which must answer the same.
fn catalogued(setting: &Setting, scratch: &str) -> Vec<Expectation> {
    let expect = |o: Outcome| match o {
        Outcome::Errno(e) => Expect::Errno(e),
        Outcome::Past { denied, .. } => Expect::Not(denied),
    };
    let mut out = Vec::new();
    for p in CATALOGUE {
        let Some((promise, outcome)) = p.outcome(setting) else {
            continue;
        };
        out.extend(p.native_checks(scratch).into_iter().map(|check| Expectation {
            promise: promise.into(),
            check,
            expect: expect(outcome),
        }));
    }
    for p in CATALOGUE.iter().filter(|_| setting.i386()) {
        let Some((promise, outcome)) = p.outcome(setting) else {
            continue;
        };
        out.extend(p.i386.iter().map(|check| Expectation {
            promise: if promise.starts_with("i386") {
                promise.into()
            } else {
                format!("i386: {promise}").into()
            },
            check: check.to_string(),
            expect: expect(outcome),
        }));
    }
    out
}

/// The promises whose answers depend on the jail's addresses, on a pid
/// outside it, or on a race.
fn addressed(jail: &Jail, outside: u32, setting: &Setting, rewrites: bool) -> Vec<Expectation> {
    use std::net::IpAddr;
    let ipv4: Vec<IpAddr> = jail.network.ipv4.iter().map(|a| IpAddr::V4(a.addr)).collect();
    let ipv6: Vec<IpAddr> = jail.network.ipv6.iter().map(|a| IpAddr::V6(a.addr)).collect();
    let mut e = vec![expectation(
        "processes outside the jail cannot be signalled (ESRCH)",
        format!("kill={outside}:0"),
        Expect::Errno(ESRCH),
    )];
    if let Some(first) = ipv4.first() {
        e.push(expectation(
            "listen from a second thread ends on the first address",
            "listen-thread",
            Expect::BoundTo(*first),
        ));
    }
    if rewrites {
        e.extend(binds(&ipv4, "0.0.0.0", "127.0.0.1"));
        e.extend(binds(&ipv6, "[::]", "[::1]"));
    }
    if setting.ipv4 && rewrites {
        e.push(expectation(
            "listen(2) racing dup2(2) on its descriptor listens on listed addresses only",
            "listen-dup2-race=2000",
            Expect::OnlyAt(ipv4.clone()),
        ));
    }
    if let Some(first) = ipv4.first().filter(|_| setting.i386()) {
        e.push(expectation(
            "i386: listen through socketcall ends on the first address",
            "i386-socketcall-listen",
            Expect::BoundTo(*first),
        ));
    }
    e
}

fn expectation(promise: &'static str, check: impl Into<String>, expect: Expect) -> Expectation {
    Expectation {
        promise: promise.into(),
        check: check.into(),
        expect,
    }
}

/// The binds of one address family, `list` being the jail's addresses of it:
/// a wildcard (`any`) or unlisted (`loopback`) bind ends on the first
/// address, a listed one stays.
fn binds(list: &[std::net::IpAddr], any: &str, loopback: &str) -> Vec<Expectation> {
    let Some(first) = list.first().copied() else {
        return Vec::new();
    };
    let mut e = vec![expectation(
        "a wildcard bind ends on the first address",
        format!("bind={any}:0"),
        Expect::BoundTo(first),
    )];
    if !list.iter().any(|a| a.is_loopback()) {
        e.push(expectation(
            "the jail's loopback is its first address",
            format!("bind={loopback}:0"),
            Expect::BoundTo(first),
        ));
    }
    for other in list.iter().skip(1) {
        let at = std::net::SocketAddr::new(*other, 0);
        e.push(expectation(
            "later addresses stay as listed",
            format!("bind={at}"),
            Expect::BoundTo(*other),
        ));
    }
    e
}

/// The facts the probe must report.
fn facts(jail: &Jail) -> Vec<FactExpectation> {
    let root = jail.identity == Identity::JailRoot;
    let facts = vec![
        FactExpectation::OnlyJailProcesses,
        FactExpectation::Hostname(jail.hostname.to_string()),
        FactExpectation::NoNewPrivs,
        FactExpectation::SeccompFilter,
        FactExpectation::Capabilities {
            bounding: crate::policy::caps::compile(jail).mask(),
            root,
        },
        FactExpectation::OwnSession,
        FactExpectation::InitReveals(jail.name.to_string()),
    ];
    let mut facts = facts;
    let dev_is_at_dev = jail
        .mounts
        .iter()
        .any(|m| m.kind == crate::model::MountKind::Dev && m.target.as_str() == "/dev");
    if dev_is_at_dev {
        facts.push(FactExpectation::ShmSize(
            jail.limits.shm.unwrap_or(crate::model::Limits::SHM_DEFAULT).0,
        ));
    }
    facts
}

/// Compares the probe's report with the expectations.
pub fn judge(checks: &[Expectation], facts: &[FactExpectation], report: &Report) -> Vec<Verdict> {
    let mut out: Vec<Verdict> = checks
        .iter()
        .map(|c| {
            let (pass, detail) = judge_check(c, report.checks.get(&c.check));
            Verdict {
                promise: c.promise.to_string(),
                pass,
                detail,
            }
        })
        .collect();
    let observed = Observed(report);
    out.extend(facts.iter().map(|f| {
        let (promise, pass, detail) = observed.judge(f);
        Verdict {
            promise: promise.to_string(),
            pass,
            detail,
        }
    }));
    out
}

/// Whether check `c` had the expected `outcome`, and what it was.
fn judge_check(c: &Expectation, outcome: Option<&probe::Outcome>) -> (bool, String) {
    let Some(o) = outcome else {
        return (false, format!("{}: no result", c.check));
    };
    let got = format!("{} = {}", c.check, errno_text(o.errno));
    match &c.expect {
        Expect::OnlyAt(list) => only_at(list, o),
        Expect::Errno(e) => (o.errno == *e, format!("{got}, expected {}", errno_text(*e))),
        Expect::Not(e) => (
            o.errno != *e,
            format!("{got}, expected anything but {}", errno_text(*e)),
        ),
        Expect::BoundTo(ip) => {
            let at = o.addr.as_deref().and_then(|a| a.parse::<std::net::SocketAddr>().ok());
            (
                o.errno == 0 && at.is_some_and(|a| a.ip() == *ip),
                match &o.addr {
                    Some(a) => format!("{} bound to {a}, expected {ip}", c.check),
                    None => format!("{got}, expected a socket bound to {ip}"),
                },
            )
        }
    }
}

/// A race: calls succeeded, and every socket reported is on an address of
/// `list`.
fn only_at(list: &[std::net::IpAddr], o: &probe::Outcome) -> (bool, String) {
    let at: Vec<&str> = o
        .addr
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|a| !a.is_empty())
        .collect();
    let listed = at.iter().all(|a| a.parse().is_ok_and(|ip| list.contains(&ip)));
    (
        o.errno == 0 && o.ret > 0 && !at.is_empty() && listed,
        format!("{} calls succeeded; sockets on {}", o.ret, at.join(", ")),
    )
}

/// The facts of a probe's report.
struct Observed<'a>(&'a Report);

impl Observed<'_> {
    /// Fact `name`; null when the probe did not report it.
    fn get(&self, name: &str) -> serde_json::Value {
        self.0.facts.get(name).cloned().unwrap_or_default()
    }

    /// Fact `name` as a hexadecimal mask.
    fn hex(&self, name: &str) -> Option<u64> {
        u64::from_str_radix(self.get(name).as_str().unwrap_or(""), 16).ok()
    }

    /// The promise `f` stands for, whether it holds, and what was observed.
    fn judge(&self, f: &FactExpectation) -> (&'static str, bool, String) {
        let fact = |name: &str| self.get(name);
        match f {
            FactExpectation::OnlyJailProcesses => self.only_jail_processes(),
            FactExpectation::Hostname(h) => {
                let got = fact("hostname");
                (
                    "gethostname returns the jail's name",
                    got.as_str() == Some(h.as_str()),
                    format!("{got}"),
                )
            }
            FactExpectation::NoNewPrivs => (
                "no_new_privs is set",
                fact("nonewprivs").as_str() == Some("1"),
                format!("NoNewPrivs {}", fact("nonewprivs")),
            ),
            FactExpectation::SeccompFilter => (
                "a seccomp filter confines the jail",
                fact("seccomp").as_str() == Some("2"),
                format!("Seccomp {}", fact("seccomp")),
            ),
            FactExpectation::Capabilities { bounding, root } => self.capabilities(*bounding, *root),
            FactExpectation::OwnSession => (
                "the jail never shares the caller's terminal",
                fact("sid") == fact("pid") && fact("tty").is_null(),
                format!("sid {} pid {} tty {}", fact("sid"), fact("pid"), fact("tty")),
            ),
            FactExpectation::InitReveals(name) => self.init_reveals(name),
            FactExpectation::ShmSize(bytes) => (
                "/dev/shm is bounded (limits.shm)",
                fact("shm_bytes").as_u64() == Some(*bytes),
                format!("{} bytes, expected {bytes}", fact("shm_bytes")),
            ),
        }
    }

    fn only_jail_processes(&self) -> (&'static str, bool, String) {
        let pids: Vec<i64> = self
            .get("pids")
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_i64()).collect())
            .unwrap_or_default();
        let own = self.get("pid").as_i64().unwrap_or(-1);
        (
            "processes outside the jail are invisible",
            pids.iter().all(|p| *p == 1 || *p == own),
            format!("/proc shows {pids:?}"),
        )
    }

    fn capabilities(&self, bounding: u64, root: bool) -> (&'static str, bool, String) {
        let (bnd, eff, amb) = (self.hex("capbnd"), self.hex("capeff"), self.hex("capamb"));
        let want_eff = if root { bounding } else { 0 };
        (
            "capabilities: the jail's bounding set, none for other users, no ambient",
            bnd == Some(bounding) && eff == Some(want_eff) && amb == Some(0),
            format!("bounding {bnd:x?} effective {eff:x?} ambient {amb:x?}, expected {bounding:x} {want_eff:x} 0"),
        )
    }

    fn init_reveals(&self, name: &str) -> (&'static str, bool, String) {
        let cmdline = self.get("init_cmdline").as_str().unwrap_or_default().to_string();
        let tty = self.get("init_tty");
        (
            "init shows no host path and has no terminal",
            cmdline.starts_with(&format!("sysjail-init {name}")) && !cmdline.contains('/') && tty == 0,
            format!("/proc/1/cmdline {cmdline:?}, controlling terminal {tty}"),
        )
    }
}

fn errno_text(e: i32) -> String {
    if e == 0 {
        return "success".into();
    }
    // nix names every errno the kernel has ("EADDRNOTAVAIL").
    match nix::errno::Errno::from_raw(e) {
        nix::errno::Errno::UnknownErrno => format!("errno {e}"),
        known => format!("{known:?}"),
    }
}

/// The check names the probe must run for `expectations`.
pub fn checks(expectations: &[Expectation]) -> Vec<String> {
    let mut out: Vec<String> = expectations.iter().map(|e| e.check.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// Why a selftest could not run.
#[derive(Debug, thiserror::Error)]
pub enum SelftestError {
    /// The jail did not start.
    #[error(transparent)]
    Up(#[from] crate::launch::UpError),
    /// The probe's report is missing or unreadable.
    #[error("the probe did not report (exit status {code}): {output}")]
    NoReport {
        /// sysjail up's status.
        code: i32,
        /// What the probe printed.
        output: String,
    },
    /// A file of the selftest.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Launches `jail` with the probe inside and judges every promise.
pub fn run(mut jail: Jail, registry: crate::state::Registry) -> Result<Vec<Verdict>, SelftestError> {
    let (probe, scratch) = bind_probe(&mut jail)?;
    let host = crate::launch::facts(&registry);
    let (checks, facts) = enforced_expectations(&jail, &host, scratch.as_str())?;
    let mut command = vec![probe.to_string(), "probe".to_string()];
    command.extend(self::checks(&checks));
    let (mut out, stdio) = report_file()?;
    let launch = crate::launch::Launch {
        jail,
        digest: 0,
        command: Some(command),
        background: false,
        print_id: false,
        registry,
        log_denials: None,
        no_idmap: false,
        config_dir: None,
        stdio: Some(stdio),
    };
    let code = crate::launch::up_on(&host, launch)?;
    let report = read_report(&mut out, code)?;
    Ok(judge(&checks, &facts, &report))
}

/// Binds this program read-only into the jail's own /dev as the probe: a
/// file system the jail has whatever its root, and whose Landlock rule lets
/// it run. The bind is a mount of its own, so /dev's noexec does not apply.
/// Returns the probe's path in the jail and a writable directory there.
fn bind_probe(jail: &mut Jail) -> std::io::Result<(crate::model::AbsPath, crate::model::AbsPath)> {
    use crate::model::{AbsPath, Mount, MountKind};
    let exe = std::fs::canonicalize(std::env::current_exe()?)?;
    let source = AbsPath::parse(&exe.to_string_lossy())
        .map_err(|p| std::io::Error::other(format!("{}: {}", exe.display(), p.describe())))?;
    let dev = jail.mounts.iter().position(|m| m.kind == MountKind::Dev).unwrap_or(0);
    let dev_target = jail
        .mounts
        .get(dev)
        .map_or_else(|| AbsPath::parse("/dev").expect("static"), |m| m.target.clone());
    let probe = dev_target.join(&AbsPath::parse("/.sysjail-probe").expect("static"));
    jail.mounts.insert(
        dev + 1,
        Mount {
            target: probe.clone(),
            kind: MountKind::Bind {
                source,
                read_only: true,
                recursive: false,
                idmap: false,
            },
            index: None,
        },
    );
    let scratch = dev_target.join(&AbsPath::parse("/shm").expect("static"));
    Ok((probe, scratch))
}

/// The expectations for `jail` under what this host enforces, as the policy
/// table says (policy::host).
fn enforced_expectations(
    jail: &Jail,
    host: &crate::facts::HostFacts,
    scratch: &str,
) -> Result<(Vec<Expectation>, Vec<FactExpectation>), SelftestError> {
    let policy =
        crate::policy::compile(jail, host).map_err(|e| SelftestError::Up(crate::plan::PlanError::from(e).into()))?;
    let can_raise = policy
        .syscalls
        .rule(crate::syscalls::Sysno::setrlimit)
        .is_some_and(|r| r.otherwise == crate::policy::Action::Notify(crate::policy::Notify::Rlimit));
    let rewrites = policy.network.rewrite.is_some();
    Ok(expectations(
        jail,
        std::process::id(),
        Abi::native(),
        scratch,
        can_raise,
        rewrites,
    ))
}

/// The file the probe reports to, already unlinked, and the probe's stdio:
/// /dev/null, that file, and our stderr. A file, not a pipe: a pipe would
/// need a reader thread, and the supervisor must be single-threaded when it
/// creates the jail.
fn report_file() -> std::io::Result<(std::fs::File, [std::os::fd::OwnedFd; 3])> {
    use std::os::fd::OwnedFd;
    let path = std::env::temp_dir().join(format!(".sysjail-selftest-{}", std::process::id()));
    let out = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null")?;
    let stdio = [
        OwnedFd::from(null),
        OwnedFd::from(out.try_clone()?),
        OwnedFd::from(std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned()?)),
    ];
    Ok((out, stdio))
}

/// The probe's report in `out`; `code` is the jail's exit status.
fn read_report(out: &mut std::fs::File, code: i32) -> Result<Report, SelftestError> {
    use std::io::{Read, Seek};
    out.rewind()?;
    let mut text = String::new();
    out.read_to_string(&mut text)?;
    serde_json::from_str(text.trim()).map_err(|_| SelftestError::NoReport {
        code,
        output: text.clone(),
    })
}

use std::os::fd::AsFd;
