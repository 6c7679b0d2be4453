//! The policy as text, for people reviewing a change: one line per decision,
//! each followed by its reason after `#`.

use std::fmt::Write;

use super::mounts::MountOp;
use super::syscalls::{Action, Cond, Rule, Test};
use super::{Policy, Why};
use crate::model::RlimitValue;

const WIDTH: usize = 100;

struct Out {
    text: String,
}

impl Out {
    fn head(&mut self, title: &str) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(title);
        self.text.push('\n');
    }

    /// An indented line with its reason aligned after `#`.
    fn line(&mut self, item: &str, why: &dyn std::fmt::Display) {
        let _ = writeln!(self.text, "  {item:<44} # {why}");
    }

    fn plain(&mut self, item: &str) {
        let _ = writeln!(self.text, "  {item}");
    }
}

/// Renders the policy as text.
pub fn render_text(p: &Policy) -> String {
    let mut o = Out { text: String::new() };
    process(&mut o, p);
    host(&mut o, p);
    o.head("namespaces (each new and private)");
    for (ns, why) in &p.namespaces {
        o.line(&format!("{ns:?}").to_lowercase(), why);
    }
    ids(&mut o, p);
    mounts(&mut o, p);
    capabilities(&mut o, p);
    rlimits(&mut o, p);
    counters(&mut o, p);
    syscalls(&mut o, p);
    landlock(&mut o, p);
    network(&mut o, p);
    cgroup(&mut o, p);
    o.head("denial log");
    match &p.denial_log {
        Some(path) => o.line(&path.to_string(), &"log-denials"),
        None => o.plain("off"),
    }
    if !p.hooks.is_empty() {
        o.head("hooks (in order)");
        for h in &p.hooks {
            let place = if h.runs == "host" {
                "on the host, as the caller"
            } else {
                "in the jail, as its command"
            };
            o.plain(&format!(
                "{:<10} {place}, within {} ms: {:?}",
                h.phase, h.timeout_ms, h.argv
            ));
        }
    }
    o.text
}

fn host(o: &mut Out, p: &Policy) {
    o.head(&format!("host ({})", p.host.summary));
    if p.host.degraded.is_empty() {
        o.plain("every promise below is enforced with its full mechanism");
    }
    for d in &p.host.degraded {
        o.plain(&format!("degraded: {}", d.what));
        o.plain(&format!("  # {}", d.why));
    }
}

fn ids(o: &mut Out, p: &Policy) {
    o.head("ids");
    if p.ids.count == 1 {
        o.line(
            "one jail id -> the caller's own uid and gid",
            &"host: without root, a user namespace maps its creator alone",
        );
    } else {
        o.line(
            &format!("jail 0-{} -> private unprivileged host range", p.ids.count - 1),
            &"default: jail root is never host root",
        );
    }
    if p.ids.idmapped_root {
        o.line(
            "the jail's tree is id-mapped",
            &"path: a dedicated tree keeps its on-disk owners",
        );
    }
}

fn cgroup(o: &mut Out, p: &Policy) {
    o.head("cgroup (one per jail, removed with it)");
    let c = &p.cgroup;
    if c.memory.is_none() && c.pids.is_none() && c.cpu.is_none() {
        o.plain("no limits: accounting only");
    }
    if let Some(m) = c.memory {
        o.line(&format!("memory.max {m}"), &"limits.memory");
    }
    if let Some(n) = c.pids {
        o.line(&format!("pids.max {n}"), &"limits.pids");
    }
    if let Some(cpu) = c.cpu {
        o.line(&format!("cpu {cpu} cores"), &"limits.cpu");
    }
}

fn process(o: &mut Out, p: &Policy) {
    let pr = &p.process;
    o.head(&format!("jail {}", p.name));
    o.plain(&format!("hostname  {}", p.hostname));
    o.plain(&format!("command   {}", shell_words(&pr.command)));
    o.plain(&format!("workdir   {}", pr.workdir));
    let who = match &pr.user.name {
        None => "jail root (uid 0 inside)".to_string(),
        Some(u) => format!("{u} from the {}'s /etc/passwd", pr.user.database),
    };
    o.line(&format!("user      {who}"), &pr.user.why);
    let groups = match &pr.user.groups {
        None => format!("the user's groups from the {}'s /etc/group", pr.user.database),
        Some(g) => g.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
    };
    o.plain(&format!("groups    {groups}"));
    let mut env = if pr.env.clean {
        format!("clean: {} kept", pr.env.keep.join(", "))
    } else {
        "inherited from the caller".to_string()
    };
    for (k, v) in &pr.env.set {
        let _ = write!(env, "; {k}={v}");
    }
    o.plain(&format!("env       {env}"));
    o.plain(&format!(
        "stop      {}, SIGKILL after {}",
        pr.stop_signal,
        humantime(pr.stop_timeout_ms)
    ));
    o.plain("init      sysjail's init as pid 1: reaps orphans, forwards signals");
}

fn mounts(o: &mut Out, p: &Policy) {
    o.head("mounts (in order)");
    for m in &p.mounts {
        let what = match &m.op {
            MountOp::Root {
                source,
                read_only,
                idmap,
            } => {
                format!(
                    "bind {source}{}{} (pivot_root)",
                    ro(*read_only),
                    if *idmap { " idmap" } else { "" }
                )
            }
            MountOp::Bind {
                source,
                read_only,
                recursive,
                idmap,
            } => format!(
                "bind {source}{}{}{}",
                ro(*read_only),
                if *recursive { " recursive" } else { "" },
                if *idmap { " idmap" } else { "" }
            ),
            MountOp::Tmpfs { size, mode, read_only } => format!("tmpfs size={size} mode={mode:o}{}", ro(*read_only)),
            MountOp::Proc => "proc".into(),
            MountOp::Dev { shm } => format!("dev (null zero full random urandom tty, devpts, shm size={shm})"),
            MountOp::Mask => "masked".into(),
            MountOp::ReadOnly => "read-only".into(),
        };
        o.line(&format!("{:<20} {what}", m.target.as_str()), &m.why);
    }
}

fn ro(read_only: bool) -> &'static str {
    if read_only { " ro" } else { " rw" }
}

fn capabilities(o: &mut Out, p: &Policy) {
    o.head("capabilities (bounding set; ambient and inheritable cleared; no_new_privs)");
    for k in &p.capabilities.bounding {
        o.line(k.cap.name(), &k.why);
    }
    o.plain("jail root: these, in the jail's user namespace only; other users: none");
}

fn rlimits(o: &mut Out, p: &Policy) {
    let raise = match p.syscalls.rule(crate::syscalls::Sysno::setrlimit).map(|r| r.otherwise) {
        Some(Action::Notify(_)) => "raised by the supervisor (allow rlimit)",
        _ => "the kernel refuses (EPERM)",
    };
    o.head(&format!("rlimits (soft and hard; raising a hard limit: {raise})"));
    if p.rlimits.is_empty() {
        o.plain("inherited from the launcher");
    }
    for r in &p.rlimits {
        let value = match r.value {
            RlimitValue::Limited(n) => n.to_string(),
            RlimitValue::Unlimited => "unlimited".into(),
        };
        o.line(&format!("{:<14} {value}", r.resource.kernel_name()), &r.why);
    }
}

fn counters(o: &mut Out, p: &Policy) {
    o.head("per-user kernel counters (inotify, message queues, namespaces: charged to jail root's host uid)");
    if p.counters.is_empty() {
        o.plain("the host's per-user limits");
    }
    for (counter, value, why) in &p.counters {
        o.line(&format!("user.{:<22} {value}", counter.sysctl()), why);
    }
}

fn syscalls(o: &mut Out, p: &Policy) {
    let s = &p.syscalls;
    o.head(&format!(
        "syscalls (other calls: {}; x32 numbers: {}; other ABIs: {})",
        s.default, s.x32, s.unknown_abi
    ));
    for &abi in &s.abis {
        let ruled = abi.calls().iter().filter(|(c, _)| s.rule(*c).is_some()).count();
        o.plain(&format!(
            "{:<8} AUDIT_ARCH {:#010x}: {ruled} of its {} calls have a rule",
            abi.name(),
            abi.audit_arch(),
            abi.calls().len()
        ));
    }
    // Unconditional rules, grouped by outcome and reason; conditional ones each.
    let mut groups: Vec<(Action, &Why, Vec<&str>)> = Vec::new();
    for r in s.rules.iter().filter(|r| r.arms.is_empty()) {
        match groups.iter_mut().find(|(a, w, _)| *a == r.otherwise && *w == &r.why) {
            Some(g) => g.2.push(r.call.name()),
            None => groups.push((r.otherwise, &r.why, vec![r.call.name()])),
        }
    }
    groups.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (action, why, calls) in groups {
        let _ = writeln!(o.text, "  {action}  # {why}");
        for line in wrap(&calls, WIDTH - 4) {
            let _ = writeln!(o.text, "    {line}");
        }
    }
    for r in s.rules.iter().filter(|r| !r.arms.is_empty()) {
        conditional(o, r);
    }
}

fn conditional(o: &mut Out, r: &Rule) {
    let _ = writeln!(o.text, "  {}", r.call);
    for arm in &r.arms {
        let when = arm.when.iter().map(cond_text).collect::<Vec<_>>().join(" && ");
        o.line(&format!("  if {when} -> {}", arm.then), &arm.why);
    }
    o.line(&format!("  else -> {}", r.otherwise), &r.why);
}

fn cond_text(c: &Cond) -> String {
    // Values by their C names where the argument's kind has them.
    let v = |n: u32| {
        c.kind
            .name(n)
            .unwrap_or_else(|| if n > 0xff { format!("{n:#x}") } else { n.to_string() })
    };
    let set = |vs: &[u32]| vs.iter().map(|&n| v(n)).collect::<Vec<_>>().join(", ");
    match &c.test {
        Test::Eq(n) => format!("{} == {}", c.name, v(*n)),
        Test::In(vs) => format!("{} in {{{}}}", c.name, set(vs)),
        Test::NotIn(vs) => format!("{} not in {{{}}}", c.name, set(vs)),
        Test::MaskedEq { mask, value } => format!("{} & {} == {}", c.name, v(*mask), v(*value)),
        Test::AnyBits(bits) => format!("{} & ({}) != 0", c.name, v(*bits)),
        Test::Zero64 => format!("{} == NULL", c.name),
    }
}

fn landlock(o: &mut Out, p: &Policy) {
    if p.landlock.abi.is_none() {
        o.head("landlock");
        o.line("not enforced", &p.landlock.why);
        return;
    }
    o.head(&format!(
        "landlock (every file system right of ABI {} handled; granted back beneath:)",
        p.landlock.abi.unwrap_or_default()
    ));
    for r in &p.landlock.rules {
        o.line(
            &format!("{:<20} {:?}", r.path.as_str(), r.access).to_lowercase(),
            &r.why,
        );
    }
    let scopes: Vec<_> = p
        .landlock
        .scopes
        .iter()
        .map(|s| format!("{s:?}").to_lowercase())
        .collect();
    if scopes.is_empty() {
        o.line("scopes: none", &p.landlock.why);
    } else {
        o.line(
            &format!("scopes: {}", scopes.join(", ")),
            &"default: signals and abstract sockets stay inside",
        );
    }
}

fn network(o: &mut Out, p: &Policy) {
    let n = &p.network;
    o.head(&match n.mode {
        "disabled" => "network (disabled: a stack of its own, no IPv4 or IPv6 socket)".to_string(),
        mode => format!("network ({mode} stack)"),
    });
    o.line(&format!("ipv4  {}", family(&n.ipv4, "127.0.0.1/8")), &n.ipv4.why);
    o.line(&format!("ipv6  {}", family(&n.ipv6, "::1")), &n.ipv6.why);
    if let Some(r) = &n.rewrite {
        o.plain(&format!(
            "rewrite: cgroup programs {} (calls: the kernel's copy of the address; packets: their local address)",
            r.hooks.join(" ")
        ));
        o.plain(&format!("         # {}", r.why));
        o.plain(&format!(
            "         always by the supervisor: {} of a never-bound socket",
            r.supervised.join(" ")
        ));
    }
    if let Some(i) = &n.interface {
        interface(o, i);
    } else if n.mode == "private" {
        o.plain("loopback only: no interface, nothing of the host is reachable");
    }
    let listed = n.ipv4.first.is_some() || n.ipv6.first.is_some();
    if n.rewrite.is_none() && listed {
        o.plain("rewrite: not enforced on this host (see host, above)");
    }
    match &n.hosts {
        super::network::Hosts::Generated { names, address, why } => o.line(
            &format!(
                "/etc/hosts: {} on {address}, localhost; /etc/hostname (generated, read-only)",
                names.join(" ")
            ),
            why,
        ),
        super::network::Hosts::Kept { why } => o.line("/etc/hosts, /etc/hostname: the jail's own", why),
    }
}

/// One family's addresses: the rewrite target first, the jail's own
/// loopback, or denied.
fn family<A: std::fmt::Display + Copy>(f: &super::network::Family<A>, loopback: &str) -> String {
    let rest: Vec<String> = f.unchanged.iter().map(ToString::to_string).collect();
    match f.first.map(|a| a.to_string()) {
        None if f.allowed => format!("allowed: {loopback} on the jail's own loopback, nothing else reachable"),
        None => "denied (socket: EAFNOSUPPORT)".to_string(),
        Some(f) if rest.is_empty() => format!("{f} (rewrite target)"),
        Some(f) => format!("{f} (rewrite target); {} unchanged", rest.join(", ")),
    }
}

/// A private jail's veth: its addresses and where the host end goes.
fn interface(o: &mut Out, i: &super::network::Interface) {
    let addrs: Vec<_> = i.addresses.iter().map(|(a, p)| format!("{a}/{p}")).collect();
    o.plain(&format!("interface {}: {}", i.name, addrs.join(" ")));
    let gws = |v4: &Option<std::net::Ipv4Addr>, v6: &Option<std::net::Ipv6Addr>| -> String {
        let all: Vec<String> = v4
            .map(|a| a.to_string())
            .into_iter()
            .chain(v6.map(|a| a.to_string()))
            .collect();
        all.join(" and ")
    };
    let uplink = match &i.uplink {
        super::network::UplinkPolicy::None => "host end left unconfigured".to_string(),
        super::network::UplinkPolicy::Bridge {
            bridge,
            v4: None,
            v6: None,
        } => {
            format!("host end on bridge {bridge}; no default route")
        }
        super::network::UplinkPolicy::Bridge { bridge, v4, v6 } => {
            format!("host end on bridge {bridge}; default route through {}", gws(v4, v6))
        }
        super::network::UplinkPolicy::Gateway { v4, v6 } => {
            format!("host end holds gateway {}; default route through it", gws(v4, v6))
        }
    };
    o.plain(&uplink);
}

fn wrap(words: &[&str], width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in words {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.len() + 1 + w.len() > width {
            lines.push(w.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(w);
        }
    }
    lines
}

fn humantime(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// argv as a shell would need it written.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
