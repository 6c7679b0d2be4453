//! Network jails (issue 5), in network namespaces the tests create: there a
//! "host" holds documentation addresses (192.0.2.0/24, 2001:db8::/32), and
//! sysjail runs inside it, so that nothing touches the machine's own network.
//! They need root and iproute2 and run in CI; elsewhere they are SKIP.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Ctx, Need, Runner, TestResult, ensure, run_bounded, text};

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test("host_mode_binds_end_on_listed_addresses", &[Root, Ip], host_mode_binds);
    r.test("host_mode_peers_see_the_jails_address", &[Root, Ip], host_mode_peers);
    r.test("host_mode_ipv6_and_mapped_addresses", &[Root, Ip], host_mode_ipv6);
    r.test("host_mode_bind_race_never_escapes", &[Root, Ip], host_mode_bind_race);
    r.test("host_mode_dup2_race_never_escapes", &[Root, Ip], host_mode_dup2_race);
    r.test(
        "host_mode_udp_autobind_receives_on_listed_addresses_only",
        &[Root, Ip],
        host_mode_udp_autobind,
    );
    r.test(
        "host_mode_ping_sockets_keep_to_listed_addresses",
        &[Root, Ip],
        host_mode_ping,
    );
    r.test(
        "host_mode_tcp_fast_open_peers_see_the_jails_address",
        &[Root, Ip],
        host_mode_tcp_fast_open,
    );
    r.test(
        "host_mode_i386_socketcall_listen_ends_on_the_first_address",
        &[Root, Ip, I386],
        host_mode_i386_socketcall_listen,
    );
    r.test(
        "host_mode_i386_socketcall_sockets_obey_the_same_rules",
        &[Root, Ip, I386],
        host_mode_i386_socketcall_rules,
    );
    r.test(
        "host_mode_listen_from_a_thread_ends_on_the_first_address",
        &[Root, Ip],
        host_mode_thread_listen,
    );
    r.test("private_mode_veth_addresses_and_routes", &[Root, Ip], private_mode_veth);
    r.test(
        "private_mode_bind_race_never_escapes",
        &[Root, Ip],
        private_mode_bind_race,
    );
    r.test("private_mode_loopback_only", &[Root, Ip], private_mode_loopback_only);
    r.test("private_mode_on_a_bridge", &[Root, Ip], private_mode_on_a_bridge);
    r.test_alone("fifty_cycles_leave_no_veth_or_namespace", &[Root, Ip], fifty_cycles);
    r.test(
        "selftest_probes_the_address_rule",
        &[Root, Ip],
        selftest_probes_the_address_rule,
    );
    r.test(
        "host_mode_pktinfo_sources_are_held_to_the_list",
        &[Root, Ip],
        host_mode_pktinfo_source,
    );
    r.test(
        "private_mode_udp_autobind_works_on_its_addresses",
        &[Root, Ip],
        private_mode_udp_autobind,
    );
    r.test(
        "sock_packet_is_refused_as_a_packet_socket",
        &[Root, Ip, I386],
        sock_packet_is_a_packet_socket,
    );
    r.test(
        "host_stack_protocols_without_a_hook_are_refused",
        &[Root, Ip],
        host_stack_protocols,
    );
    r.test(
        "without_privilege_a_host_stack_jail_is_refused",
        &[Root, Ip, RootlessUserns],
        without_privilege_host_stack_is_refused,
    );
    r.test(
        "without_privilege_a_veth_is_refused",
        &[Root, Ip, RootlessUserns],
        without_privilege_no_veth,
    );
    r.run()
}

/// A network namespace of the test's own: the jail's "host".
struct Net {
    name: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    ensure(out.status.success(), || {
        format!("ip {}: {}", args.join(" "), text(&out.stderr))
    })
}

impl Net {
    /// A namespace with loopback up and, on a veth pair inside it, `addrs`.
    fn new(ctx: &Ctx, addrs: &[&str]) -> Result<Net, String> {
        // Unique across test binaries and tests running at once.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("sjt{}-{n}-{}", std::process::id(), ctx.name);
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name])?;
        let net = Net { name };
        net.ip(&["link", "set", "lo", "up"])?;
        net.ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"])?;
        for a in addrs {
            let mut args = vec!["addr", "add", a, "dev", "up0"];
            if a.contains(':') {
                args.push("nodad");
            }
            net.ip(&args)?;
        }
        net.ip(&["link", "set", "up0", "up"])?;
        net.ip(&["link", "set", "up1", "up"])?;
        Ok(net)
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args);
        ip(&all)
    }

    /// `c`, run in this namespace (setns before exec; /sys stays the
    /// machine's, so cgroups are where sysjail looks for them).
    fn enter(&self, c: &mut Command) -> Result<(), String> {
        let ns = fs::File::open(format!("/run/netns/{}", self.name)).map_err(|e| e.to_string())?;
        // SAFETY: setns(2) in the child between fork and exec; the file is
        // moved into the closure and lives as long as the Command.
        unsafe {
            c.pre_exec(move || {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// `sysctl -w SETTING` in the namespace.
    fn sysctl(&self, setting: &str) -> Result<(), String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sysctl", "-qw", setting])
            .output()
            .map_err(|e| e.to_string())?;
        ensure(out.status.success(), || {
            format!("sysctl {setting}: {}", text(&out.stderr))
        })
    }

    /// The interfaces of the namespace.
    fn links(&self) -> BTreeSet<String> {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-o", "link"])
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                l.split(':')
                    .nth(1)
                    .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            })
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Runs the probe with `checks` inside the jail of `file`, in `net`.
fn jailed(ctx: &Ctx, net: &Net, file: &std::path::Path, checks: &[&str]) -> Result<Value, String> {
    let mut c = ctx.sysjail(&["up"]);
    c.arg(file).args(["--", support::bin(), "probe"]).args(checks);
    net.enter(&mut c)?;
    let out = run_bounded(c, Duration::from_secs(60));
    report(out)
}

fn report(out: Output) -> Result<Value, String> {
    ensure(out.status.success(), || {
        format!("exit {:?}: {}", out.status.code(), text(&out.stderr))
    })?;
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out.stdout)))
}

/// The probe, outside any jail, in `net`: a peer for the jail.
fn peer(net: &Net, checks: &[&str]) -> Result<Child, String> {
    let mut c = Command::new(support::bin());
    c.arg("probe")
        .args(checks)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    net.enter(&mut c)?;
    c.spawn().map_err(|e| e.to_string())
}

fn peer_report(child: Child) -> Result<Value, String> {
    report(child.wait_with_output().map_err(|e| e.to_string())?)
}

/// The address a check reported, or its errno.
fn addr(v: &Value, check: &str) -> Result<String, String> {
    let c = &v["checks"][check];
    match c["addr"].as_str() {
        Some(a) if c["errno"] == 0 => Ok(a.to_string()),
        _ => Err(format!("{check}: {c}")),
    }
}

/// Each check bound its socket where expected.
fn bound_as(v: &Value, expected: &[(&str, &str)]) -> TestResult {
    for (check, want) in expected {
        let got = addr(v, check)?;
        ensure(got == *want, || format!("{check}: bound to {got}, expected {want}"))?;
    }
    Ok(())
}

fn errno(v: &Value, check: &str) -> i64 {
    v["checks"][check]["errno"].as_i64().unwrap_or(-1)
}

const HOST4: &[&str] = &["192.0.2.10/24", "192.0.2.11/24", "192.0.2.12/24"];
const HOST_JAIL: &str = "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\", \"192.0.2.11\"]\n[limits]\npids = 32\n";

fn host_mode_binds(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let file = ctx.jail(HOST_JAIL);
    let checks = [
        "tcp-listen=0.0.0.0:8080",
        "tcp-listen=192.0.2.11:8081",
        "tcp-listen=192.0.2.12:8082",
        "tcp-listen=127.0.0.1:8083",
        "tcp-listen=0.0.0.0:80",
        "socket-inet6",
    ];
    let v = jailed(ctx, &net, &file, &checks)?;
    bound_as(
        &v,
        &[
            // The wildcard becomes the first address, the port kept.
            ("tcp-listen=0.0.0.0:8080", "192.0.2.10:8080"),
            // A second listed address stays.
            ("tcp-listen=192.0.2.11:8081", "192.0.2.11:8081"),
            // An unlisted one, although the host holds it, is rewritten.
            ("tcp-listen=192.0.2.12:8082", "192.0.2.10:8082"),
            // Loopback too: the jail's loopback is its address.
            ("tcp-listen=127.0.0.1:8083", "192.0.2.10:8083"),
            // Jail root binds a privileged port on its address.
            ("tcp-listen=0.0.0.0:80", "192.0.2.10:80"),
        ],
    )?;
    // A family without addresses is denied.
    ensure(errno(&v, "socket-inet6") == libc::EAFNOSUPPORT as i64, || {
        format!("socket-inet6: {}", v["checks"]["socket-inet6"])
    })?;
    // Seen from outside: while the jail listens on 0.0.0.0:9090, a peer
    // reaches it at the first address only.
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&file)
        .args(["--", support::bin(), "probe", "tcp-listen=0.0.0.0:9090/3000"]);
    net.enter(&mut c)?;
    let jail = std::thread::spawn(move || run_bounded(c, Duration::from_secs(30)));
    let reached = support::wait_for(Duration::from_secs(10), || {
        peer(&net, &["tcp-connect=192.0.2.10:9090"])
            .and_then(peer_report)
            .is_ok_and(|v| errno(&v, "tcp-connect=192.0.2.10:9090") == 0)
    });
    let other = peer(&net, &["tcp-connect=192.0.2.11:9090"]).and_then(peer_report)?;
    report(jail.join().map_err(|_| "jail thread")?)?;
    ensure(reached, || "no peer reached 192.0.2.10:9090".into())?;
    ensure(
        errno(&other, "tcp-connect=192.0.2.11:9090") == libc::ECONNREFUSED as i64,
        || format!("192.0.2.11:9090 answered: {}", other["checks"]),
    )
}

fn host_mode_peers(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let file = ctx.jail(HOST_JAIL);
    // Servers outside the jail, on the host's third address.
    let server = peer(
        &net,
        &["tcp-accept=192.0.2.12:7000/10000", "udp-recv=192.0.2.12:7001/10000"],
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let v = jailed(
        ctx,
        &net,
        &file,
        &[
            "tcp-connect=192.0.2.12:7000",
            "udp-send=192.0.2.12:7001",
            "tcp-connect=127.0.0.1:7002",
        ],
    )?;
    let seen = peer_report(server)?;
    let tcp = addr(&seen, "tcp-accept=192.0.2.12:7000/10000")?;
    let udp = addr(&seen, "udp-recv=192.0.2.12:7001/10000")?;
    ensure(tcp.starts_with("192.0.2.10:") && udp.starts_with("192.0.2.10:"), || {
        format!("the server saw tcp {tcp}, udp {udp}")
    })?;
    ensure(addr(&v, "tcp-connect=192.0.2.12:7000")? == tcp, || {
        format!("the jail's side: {}", v["checks"])
    })?;
    // Loopback is the jail's address: nothing listens there.
    ensure(
        errno(&v, "tcp-connect=127.0.0.1:7002") == libc::ECONNREFUSED as i64,
        || format!("{}", v["checks"]["tcp-connect=127.0.0.1:7002"]),
    )
}

fn host_mode_ipv6(ctx: &Ctx) -> TestResult {
    let net = Net::new(
        ctx,
        &[
            "192.0.2.10/24",
            "192.0.2.12/24",
            "2001:db8::10/64",
            "2001:db8::11/64",
            "2001:db8::12/64",
        ],
    )?;
    let file = ctx.jail(
        "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\"]\nipv6 = [\"2001:db8::10\", \"2001:db8::11\"]\n[limits]\npids = 32\n",
    );
    let server = peer(&net, &["tcp-accept=[2001:db8::12]:7000/10000"])?;
    std::thread::sleep(Duration::from_millis(300));
    let v = jailed(
        ctx,
        &net,
        &file,
        &[
            "tcp-listen=[::]:8080",
            "tcp-listen=[2001:db8::11]:8081",
            "tcp-listen=[2001:db8::12]:8082",
            "tcp-listen=[::1]:8083",
            "tcp-listen=[::ffff:192.0.2.12]:8084",
            "tcp-connect=[2001:db8::12]:7000",
        ],
    )?;
    bound_as(
        &v,
        &[
            ("tcp-listen=[::]:8080", "[2001:db8::10]:8080"),
            ("tcp-listen=[2001:db8::11]:8081", "[2001:db8::11]:8081"),
            ("tcp-listen=[2001:db8::12]:8082", "[2001:db8::10]:8082"),
            ("tcp-listen=[::1]:8083", "[2001:db8::10]:8083"),
            // IPv4 through an IPv6 socket follows the IPv4 list.
            ("tcp-listen=[::ffff:192.0.2.12]:8084", "[::ffff:192.0.2.10]:8084"),
        ],
    )?;
    let seen = addr(&peer_report(server)?, "tcp-accept=[2001:db8::12]:7000/10000")?;
    ensure(seen.starts_with("[2001:db8::10]:"), || format!("the server saw {seen}"))
}

/// The local address of the one TCP socket listening in `net`, once one is.
fn listening(net: &Net, limit: Duration) -> Option<String> {
    let mut found = None;
    support::wait_for(limit, || {
        let out = Command::new("ip")
            .args(["netns", "exec", &net.name, "ss", "-Htln"])
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default();
        found = out.lines().find_map(|l| l.split_whitespace().nth(3).map(String::from));
        found.is_some()
    });
    found
}

/// i386's listen(2) through socketcall on a never-bound socket (made
/// through socketcall, or by i386's socket(2)) listens on the first
/// address, never on the wildcard: a peer cannot reach it at another
/// address of the host.
fn host_mode_i386_socketcall_listen(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let file = ctx.jail(HOST_JAIL);
    let checks = ["i386-socket-socketcall-listen", "i386-socketcall-listen=4000"];
    std::thread::scope(|s| {
        let jail = s.spawn(|| jailed(ctx, &net, &file, &checks));
        let at = listening(&net, Duration::from_secs(10));
        let mut verdicts = Vec::new();
        if let Some(port) = at.as_deref().and_then(|a| a.rsplit(':').next()) {
            let other = format!("tcp-connect=192.0.2.12:{port}");
            let first = format!("tcp-connect=192.0.2.10:{port}");
            let v = peer(&net, &[&other, &first]).and_then(peer_report)?;
            verdicts.push(ensure(errno(&v, &other) == libc::ECONNREFUSED as i64, || {
                format!(
                    "a peer reached the jail's listener at 192.0.2.12: {}",
                    v["checks"][&other]
                )
            }));
            verdicts.push(ensure(errno(&v, &first) == 0, || {
                format!("a peer could not reach it at 192.0.2.10: {}", v["checks"][&first])
            }));
        }
        let v = jail.join().map_err(|_| "the jail's thread panicked".to_string())??;
        for check in checks {
            let got = addr(&v, check)?;
            ensure(got.starts_with("192.0.2.10:"), || {
                format!("{check}: listens on {got}, expected 192.0.2.10")
            })?;
        }
        let at = at.ok_or("nothing listened in the jail's network")?;
        ensure(at.starts_with("192.0.2.10:"), || format!("ss saw {at} listening"))?;
        verdicts.into_iter().collect()
    })
}

/// Sockets made through i386's socketcall(2) get socket(2)'s answers and
/// meet the address rule like any other.
fn host_mode_i386_socketcall_rules(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let file = ctx.jail(HOST_JAIL);
    let checks = [
        "socket-unix",
        "i386-socketcall-unix",
        "socket-inet",
        "i386-socketcall-socket",
        "socket-inet6",
        "i386-socketcall-inet6",
        "socket-packet",
        "i386-socketcall-packet",
        "socket-raw",
        "i386-socketcall-raw",
        "i386-socketcall-socketpair",
        "i386-socketcall-bind=0.0.0.0:8090",
        "i386-socketcall-bind=192.0.2.11:8091",
        "i386-socketcall-bind=192.0.2.12:8092",
    ];
    let v = jailed(ctx, &net, &file, &checks)?;
    for (check, expected) in [
        ("i386-socketcall-unix", 0),
        ("i386-socketcall-socket", 0),
        ("i386-socketcall-inet6", libc::EAFNOSUPPORT),
        ("i386-socketcall-packet", libc::EPROTONOSUPPORT),
        ("i386-socketcall-raw", libc::EPERM),
        ("i386-socketcall-socketpair", 0),
    ] {
        ensure(errno(&v, check) == i64::from(expected), || {
            format!("{check}: {}, expected errno {expected}", v["checks"][check])
        })?;
    }
    for (native, i386) in checks[..10].chunks(2).map(|c| (c[0], c[1])) {
        ensure(errno(&v, native) == errno(&v, i386), || {
            format!("{native}: {}, but {i386}: {}", v["checks"][native], v["checks"][i386])
        })?;
    }
    bound_as(
        &v,
        &[
            ("i386-socketcall-bind=0.0.0.0:8090", "192.0.2.10:8090"),
            ("i386-socketcall-bind=192.0.2.11:8091", "192.0.2.11:8091"),
            ("i386-socketcall-bind=192.0.2.12:8092", "192.0.2.10:8092"),
        ],
    )?;
    Ok(())
}

/// listen(2) from a thread other than the first: the notification names
/// the thread, and the supervisor still binds and listens.
fn host_mode_thread_listen(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let file = ctx.jail(HOST_JAIL);
    let v = jailed(ctx, &net, &file, &["listen-thread"])?;
    let got = addr(&v, "listen-thread")?;
    ensure(got.starts_with("192.0.2.10:"), || {
        format!("listen-thread: listens on {got}, expected 192.0.2.10")
    })
}

/// Binds many sockets while another thread flips the address between a
/// listed and an unlisted one that the host holds; returns where they ended.
fn race(
    ctx: &Ctx,
    net: &Net,
    file: &std::path::Path,
    listed: &str,
    unlisted: &str,
) -> Result<BTreeSet<String>, String> {
    let check = format!("bind-race={listed}/{unlisted}/3000");
    let v = jailed(ctx, net, file, &[&check])?;
    let ok = v["checks"][&check]["ret"].as_i64().unwrap_or(0);
    ensure(ok > 100, || {
        format!("only {ok} binds succeeded: {}", v["checks"][&check])
    })?;
    Ok(addr(&v, &check)?.split(',').map(String::from).collect())
}

/// The race the unprivileged fallback lost (issue 11): another thread
/// swaps the descriptor, with dup2(2), between a unix socket and inet ones
/// while listen(2) or sendto(2) run on it. The supervisor's listen and the
/// programs act on the object, never on a number looked up again: every
/// socket that listened is on a listed address, and every datagram that
/// left came from the jail's address.
fn host_mode_dup2_race(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    // Not the host's primary address, which a send that escaped the rule
    // would take as its source.
    let file = ctx.jail("[network]\nmode = \"host\"\nipv4 = [\"192.0.2.11\"]\n[limits]\npids = 32\n");
    let sources = "udp-sources=192.0.2.12:7040/40000";
    let server = peer(&net, &[sources])?;
    std::thread::sleep(Duration::from_millis(300));
    let (listen, send) = ("listen-dup2-race=20000", "send-dup2-race=192.0.2.12:7040/20000");
    // The sends first: the peer stops listening a second after they end.
    let v = jailed(ctx, &net, &file, &[send, listen])?;
    let seen = peer_report(server)?;
    let listed = set(&["192.0.2.11"]);
    let at: BTreeSet<String> = addr(&v, listen)?
        .split(',')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    ensure(
        v["checks"][listen]["ret"].as_i64().unwrap_or(0) > 100 && !at.is_empty(),
        || format!("the race hardly ran: {}", v["checks"][listen]),
    )?;
    ensure(at.is_subset(&listed), || format!("sockets listened on {at:?}"))?;
    let from: BTreeSet<String> = addr(&seen, sources)?
        .split(',')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    ensure(seen["checks"][sources]["ret"].as_i64().unwrap_or(0) > 100, || {
        format!(
            "the peer got {}; the jail sent {}",
            seen["checks"][sources], v["checks"][send]
        )
    })?;
    ensure(from == listed, || format!("datagrams came from {from:?}"))
}

fn host_mode_bind_race(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    // Outside any jail the race lands on both addresses: it is a real race.
    let free = peer_report(peer(&net, &["bind-race=192.0.2.11/192.0.2.12/3000"])?)?;
    let free = addr(&free, "bind-race=192.0.2.11/192.0.2.12/3000")?;
    ensure(free.contains("192.0.2.12"), || {
        format!("the race never hit the unlisted address: {free}")
    })?;
    let file = ctx.jail(HOST_JAIL);
    let seen = race(ctx, &net, &file, "192.0.2.11", "192.0.2.12")?;
    let listed: BTreeSet<String> = ["192.0.2.10", "192.0.2.11"].map(String::from).into();
    ensure(seen.is_subset(&listed) && !seen.is_empty(), || {
        format!("sockets ended on {seen:?}")
    })
}

/// MPTCP, SCTP, UDP-Lite and the other inet protocols bind through paths
/// the address programs do not see (or, for MPTCP, add subflows from the
/// host's other addresses): refused on the host's stack, on both ABIs, and
/// left alone in a private jail, whose namespace holds only its addresses.
fn host_stack_protocols(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let checks = [
        "socket-mptcp",
        "socket-sctp",
        "socket-udplite",
        "socket-inet-seqpacket",
        "i386-socket-mptcp",
        "i386-socket-sctp",
        "socket-tcp",
        "socket-inet-dgram",
    ];
    let v = jailed(ctx, &net, &ctx.jail(HOST_JAIL), &checks)?;
    for check in &checks[..6] {
        ensure(errno(&v, check) == libc::EPROTONOSUPPORT as i64, || {
            format!("{check}: {}", v["checks"][check])
        })?;
    }
    for check in &checks[6..] {
        ensure(errno(&v, check) == 0, || format!("{check}: {}", v["checks"][check]))?;
    }
    // The same MPTCP and UDP-Lite sockets, where this kernel has them, in a
    // private jail.
    let host = peer_report(peer(&net, &["socket-mptcp", "socket-udplite"])?)?;
    let private = jailed(
        ctx,
        &net,
        &ctx.jail_named("proto-private", PRIVATE_JAIL),
        &["socket-mptcp", "socket-udplite"],
    )?;
    for check in ["socket-mptcp", "socket-udplite"] {
        ensure(errno(&private, check) == errno(&host, check), || {
            format!(
                "{check}: private {}, outside {}",
                private["checks"][check], host["checks"][check]
            )
        })?;
    }
    Ok(())
}

/// The jail of `jail_toml` sends a peer one datagram from an unbound UDP
/// socket, which the kernel binds to the wildcard before any hook runs; the
/// peer answers at each of `targets`, on the port it came from. Returns the
/// local addresses the answers arrived at in the jail, and where the peer
/// saw the jail.
fn autobind_answers(
    ctx: &Ctx,
    net: &Net,
    name: &str,
    kind: &str,
    jail_toml: &str,
    peer_at: &str,
    targets: &[&str],
) -> Result<(BTreeSet<String>, String), String> {
    let file = ctx.jail_named(name, jail_toml);
    // The peer listens on the wildcard: a private jail's gateway address
    // exists only once the jail is up.
    let port = peer_at.rsplit_once(':').map_or("", |p| p.1);
    let any = if peer_at.starts_with('[') { "[::]" } else { "0.0.0.0" };
    let reflect = format!("udp-reflect={any}:{port}/15000/{}", targets.join(","));
    let server = peer(net, &[&reflect])?;
    std::thread::sleep(Duration::from_millis(300));
    let check = format!("{kind}={peer_at}/1500");
    let v = jailed(ctx, net, &file, &[&check])?;
    let seen = peer_report(server)?;
    let from = addr(&seen, &reflect)?;
    ensure(seen["checks"][&reflect]["ret"] == targets.len(), || {
        format!("the peer sent {}", seen["checks"][&reflect])
    })?;
    let arrived = addr(&v, &check)?;
    Ok((
        arrived.split(',').filter(|a| !a.is_empty()).map(String::from).collect(),
        from,
    ))
}

fn set(addrs: &[&str]) -> BTreeSet<String> {
    addrs.iter().map(|a| a.to_string()).collect()
}

fn host_mode_udp_autobind(ctx: &Ctx) -> TestResult {
    let net = Net::new(
        ctx,
        &["192.0.2.10/24", "192.0.2.12/24", "2001:db8::10/64", "2001:db8::12/64"],
    )?;
    // IPv4: the socket is bound to 0.0.0.0, but only datagrams to the
    // jail's address reach it.
    let (arrived, from) = autobind_answers(
        ctx,
        &net,
        "ab4",
        "udp-autobind",
        "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\"]\n[limits]\npids = 32\n",
        "192.0.2.12:7001",
        &["192.0.2.12", "192.0.2.10"],
    )?;
    ensure(from.starts_with("192.0.2.10:"), || format!("the peer saw {from}"))?;
    ensure(arrived == set(&["192.0.2.10"]), || {
        format!("IPv4 arrived at {arrived:?}")
    })?;
    // IPv6, and IPv4 through the same dual-stack socket: the listed
    // addresses of each family only.
    let (arrived, from) = autobind_answers(
        ctx,
        &net,
        "ab6",
        "udp-autobind",
        "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\"]\nipv6 = [\"2001:db8::10\"]\n[limits]\npids = 32\n",
        "[2001:db8::12]:7002",
        &["2001:db8::12", "2001:db8::10", "192.0.2.12", "192.0.2.10"],
    )?;
    ensure(from.starts_with("[2001:db8::10]:"), || format!("the peer saw {from}"))?;
    ensure(arrived == set(&["2001:db8::10", "::ffff:192.0.2.10"]), || {
        format!("IPv6 arrived at {arrived:?}")
    })?;
    // An IPv6-only jail receives no IPv4 at all.
    let (arrived, _) = autobind_answers(
        ctx,
        &net,
        "ab6only",
        "udp-autobind",
        "[network]\nmode = \"host\"\nipv6 = [\"2001:db8::10\"]\n[limits]\npids = 32\n",
        "[2001:db8::12]:7003",
        &["2001:db8::10", "192.0.2.10", "192.0.2.12"],
    )?;
    ensure(arrived == set(&["2001:db8::10"]), || {
        format!("the IPv6-only jail got {arrived:?}")
    })?;
    // A jail on a loopback address talks to its host there.
    let (arrived, from) = autobind_answers(
        ctx,
        &net,
        "ablo",
        "udp-autobind",
        "[network]\nmode = \"host\"\nipv4 = [\"127.0.0.2\"]\n[limits]\npids = 32\n",
        "127.0.0.2:7004",
        &["127.0.0.1", "127.0.0.2"],
    )?;
    ensure(from.starts_with("127.0.0.2:"), || format!("the peer saw {from}"))?;
    ensure(arrived == set(&["127.0.0.2"]), || {
        format!("loopback arrived at {arrived:?}")
    })?;
    // The i386 ABI, through its direct calls and through socketcall(2):
    // the programs see packets, whatever call made them.
    for (i, kind) in ["i386-udp-autobind", "socketcall-udp-autobind"].into_iter().enumerate() {
        let (arrived, from) = autobind_answers(
            ctx,
            &net,
            &format!("ab386-{i}"),
            kind,
            "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\"]\n[limits]\npids = 32\n",
            &format!("192.0.2.12:{}", 7010 + i),
            &["192.0.2.12", "192.0.2.10"],
        )?;
        ensure(
            from.starts_with("192.0.2.10:") && arrived == set(&["192.0.2.10"]),
            || format!("{kind}: the peer saw {from}; arrived at {arrived:?}"),
        )?;
    }
    Ok(())
}

/// A source chosen with IP_PKTINFO is held to the list: an unlisted one
/// becomes the first address, a listed one stays; on both ABIs.
fn host_mode_pktinfo_source(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let receivers: Vec<String> = (7030..7034).map(|p| format!("udp-recv=192.0.2.12:{p}/15000")).collect();
    let server = peer(&net, &receivers.iter().map(String::as_str).collect::<Vec<_>>())?;
    std::thread::sleep(Duration::from_millis(300));
    let cases = [
        ("udp-pktinfo=192.0.2.12/192.0.2.12:7030", "192.0.2.10"),
        ("udp-pktinfo=192.0.2.11/192.0.2.12:7031", "192.0.2.11"),
        ("i386-udp-pktinfo=192.0.2.12/192.0.2.12:7032", "192.0.2.10"),
        ("i386-udp-pktinfo=192.0.2.11/192.0.2.12:7033", "192.0.2.11"),
    ];
    let v = jailed(ctx, &net, &ctx.jail(HOST_JAIL), &cases.map(|c| c.0))?;
    let seen = peer_report(server)?;
    for ((check, expected), receiver) in cases.iter().zip(&receivers) {
        ensure(errno(&v, check) == 0, || format!("{check}: {}", v["checks"][check]))?;
        let from = addr(&seen, receiver)?;
        ensure(from.starts_with(&format!("{expected}:")), || {
            format!("{check}: the peer saw {from}, expected {expected}")
        })?;
    }
    Ok(())
}

/// In a private jail the namespace holds only the jail's addresses and its
/// own loopback; the same programs run there, and what is allowed works.
fn private_mode_udp_autobind(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    for kind in ["udp-autobind", "i386-udp-autobind"] {
        let (arrived, from) = autobind_answers(
            ctx,
            &net,
            &format!("pab-{}", kind.len()),
            kind,
            "[network]\nmode = \"private\"\nipv4 = [\"10.89.0.2/24\"]\ngateway = \"10.89.0.1\"\n[limits]\npids = 32\n",
            "10.89.0.1:7020",
            &["10.89.0.2"],
        )?;
        ensure(from.starts_with("10.89.0.2:") && arrived == set(&["10.89.0.2"]), || {
            format!("{kind}: the peer saw {from}; arrived at {arrived:?}")
        })?;
    }
    Ok(())
}

fn host_mode_ping(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    // Ping sockets for every group, in this namespace only.
    net.sysctl("net.ipv4.ping_group_range=0 2147483647")?;
    let file = ctx.jail(HOST_JAIL);
    // Echo replies for the identifiers the jail binds, on the unlisted
    // and on a listed address, as if each had pinged.
    let replies = "icmp-reply=192.0.2.12:4242,192.0.2.11:4243,192.0.2.12:4244,192.0.2.11:4245/8000";
    let faker = peer(&net, &[replies])?;
    let unlisted = "ping=192.0.2.12:4242/192.0.2.12/1500";
    let listed = "ping=192.0.2.11:4243/192.0.2.12/1500";
    let unlisted386 = "i386-ping=192.0.2.12:4244/192.0.2.12/1500";
    let listed386 = "i386-ping=192.0.2.11:4245/192.0.2.12/1500";
    let v = jailed(ctx, &net, &file, &[unlisted, listed, unlisted386, listed386])?;
    let faked = peer_report(faker)?;
    ensure(faked["checks"][replies]["ret"].as_i64().unwrap_or(0) > 0, || {
        format!("no reply was faked: {}", faked["checks"][replies])
    })?;
    let c = |check: &str| v["checks"][check].clone();
    // A ping socket binds through no hook: the unlisted address is its.
    // But nothing it sends leaves (EPERM), and nothing for it arrives.
    ensure(c(unlisted)["addr"] == "192.0.2.12:4242", || format!("{}", c(unlisted)))?;
    ensure(errno(&v, unlisted) == libc::EPERM as i64, || format!("{}", c(unlisted)))?;
    ensure(c(unlisted)["ret"] == 0, || format!("replies arrived: {}", c(unlisted)))?;
    // On a listed address it pings the host and gets its replies.
    ensure(c(listed)["addr"] == "192.0.2.11:4243", || format!("{}", c(listed)))?;
    ensure(errno(&v, listed) == 0, || format!("{}", c(listed)))?;
    ensure(c(listed)["ret"].as_i64().unwrap_or(0) >= 1, || format!("{}", c(listed)))?;
    // A listed source does not take a ping to the host's loopback: the call
    // programs send loopback to the first address, and egress holds ping
    // sockets, whose send runs none of them, to the same.
    let lo = "ping=192.0.2.11:4246/127.0.0.1/500";
    let lo386 = "i386-ping=192.0.2.11:4247/127.0.0.1/500";
    let w = jailed(ctx, &net, &file, &[lo, lo386])?;
    for check in [lo, lo386] {
        ensure(
            errno(&w, check) == libc::EPERM as i64 && w["checks"][check]["ret"] == 0,
            || format!("{check}: {}", w["checks"][check]),
        )?;
    }
    // The same through i386's calls.
    ensure(c(unlisted386)["addr"] == "192.0.2.12:4244", || {
        format!("{}", c(unlisted386))
    })?;
    ensure(
        errno(&v, unlisted386) == libc::EPERM as i64 && c(unlisted386)["ret"] == 0,
        || format!("{}", c(unlisted386)),
    )?;
    ensure(
        errno(&v, listed386) == 0 && c(listed386)["ret"].as_i64().unwrap_or(0) >= 1,
        || format!("{}", c(listed386)),
    )?;
    // Unbound, a ping takes the route's source, which no hook rewrites:
    // here the host's primary address, 192.0.2.10, which this jail does
    // not list. Refused too.
    let file = ctx.jail_named(
        "ping-second",
        "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.11\"]\n[limits]\npids = 32\n",
    );
    let unbound = "ping=0.0.0.0:0/192.0.2.12/500";
    let v = jailed(ctx, &net, &file, &[unbound])?;
    ensure(errno(&v, unbound) == libc::EPERM as i64, || {
        format!("{}", v["checks"][unbound])
    })?;
    ensure(v["checks"][unbound]["ret"] == 0, || format!("{}", v["checks"][unbound]))
}

fn host_mode_tcp_fast_open(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let file = ctx.jail(HOST_JAIL);
    let server = peer(&net, &["tcp-accept=192.0.2.12:7000/10000"])?;
    std::thread::sleep(Duration::from_millis(300));
    let v = jailed(ctx, &net, &file, &["tcp-fastopen=192.0.2.12:7000"])?;
    let seen = addr(&peer_report(server)?, "tcp-accept=192.0.2.12:7000/10000")?;
    ensure(seen.starts_with("192.0.2.10:"), || format!("the peer saw {seen}"))?;
    ensure(addr(&v, "tcp-fastopen=192.0.2.12:7000")? == seen, || {
        format!("{}", v["checks"])
    })
}

/// SOCK_PACKET makes a packet socket whatever the domain: refused like
/// AF_PACKET, on both ABIs and through socketcall, even in a private jail
/// that allows raw sockets (there jail root holds CAP_NET_RAW, and a packet
/// socket would send frames from any address, past the packet programs).
fn sock_packet_is_a_packet_socket(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    let file = ctx.jail_named(
        "sockpacket",
        "allow = [\"raw-sockets\"]\n[network]\nmode = \"private\"\nipv4 = [\"10.89.0.2/24\"]\ngateway = \"10.89.0.1\"\n[limits]\npids = 32\n",
    );
    let checks = [
        "socket-sock-packet",
        "i386-socket-sock-packet",
        "i386-socketcall-sock-packet",
        "socket-raw",
    ];
    let v = jailed(ctx, &net, &file, &checks)?;
    for check in &checks[..3] {
        ensure(errno(&v, check) == libc::EPROTONOSUPPORT as i64, || {
            format!("{check}: {}", v["checks"][check])
        })?;
    }
    // What raw-sockets allows still works.
    ensure(errno(&v, "socket-raw") == 0, || {
        format!("{}", v["checks"]["socket-raw"])
    })
}

const PRIVATE_JAIL: &str = "[network]\nmode = \"private\"\nipv4 = [\"10.89.0.2/24\", \"10.89.0.3/24\"]\ngateway = \"10.89.0.1\"\n[limits]\npids = 32\n";

fn private_mode_veth(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    let file = ctx.jail(PRIVATE_JAIL);
    let before = net.links();
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&file).args([
        "--",
        support::bin(),
        "probe",
        "tcp-listen=0.0.0.0:8080",
        "tcp-listen=10.89.0.3:8081",
        "tcp-listen=10.89.0.9:8082",
        "socket-inet6",
        "tcp-listen=0.0.0.0:9090/3000",
    ]);
    net.enter(&mut c)?;
    let jail = std::thread::spawn(move || run_bounded(c, Duration::from_secs(30)));
    // Seen from the host's side: the jail's first address answers.
    let reached = support::wait_for(Duration::from_secs(10), || {
        peer(&net, &["tcp-connect=10.89.0.2:9090"])
            .and_then(peer_report)
            .is_ok_and(|v| errno(&v, "tcp-connect=10.89.0.2:9090") == 0)
    });
    let other = peer(&net, &["tcp-connect=10.89.0.3:9090"]).and_then(peer_report)?;
    // Meanwhile the host holds exactly one more link, the veth's host end.
    let during = net.links();
    let v = report(jail.join().map_err(|_| "jail thread")?)?;
    ensure(reached, || "no peer reached 10.89.0.2:9090".into())?;
    ensure(
        errno(&other, "tcp-connect=10.89.0.3:9090") == libc::ECONNREFUSED as i64,
        || format!("10.89.0.3:9090: {}", other["checks"]),
    )?;
    let added: Vec<&String> = during.difference(&before).collect();
    ensure(added.len() == 1 && added[0].starts_with("sj"), || {
        format!("links added during the jail: {added:?}")
    })?;
    bound_as(
        &v,
        &[
            ("tcp-listen=0.0.0.0:8080", "10.89.0.2:8080"),
            ("tcp-listen=10.89.0.3:8081", "10.89.0.3:8081"),
            ("tcp-listen=10.89.0.9:8082", "10.89.0.2:8082"),
        ],
    )?;
    ensure(errno(&v, "socket-inet6") == libc::EAFNOSUPPORT as i64, || {
        format!("{}", v["checks"]["socket-inet6"])
    })?;
    // The jail's interfaces: loopback and eth0, and a default route out.
    ensure(v["facts"]["interfaces"] == serde_json::json!(["lo", "eth0"]), || {
        format!("interfaces {}", v["facts"]["interfaces"])
    })?;
    // A server on the host end's address, which exists while a jail runs;
    // the jail connects out to it after a moment.
    let mut c = ctx.sysjail(&["up"]);
    let cmd = format!("sleep 1; exec {} probe tcp-connect=10.89.0.1:7003", support::bin());
    c.arg(&file).args(["--", "/bin/sh", "-c", &cmd]);
    net.enter(&mut c)?;
    let jail = std::thread::spawn(move || run_bounded(c, Duration::from_secs(30)));
    let up = support::wait_for(Duration::from_secs(10), || net.links().len() > before.len());
    ensure(up, || "the jail's veth never appeared".into())?;
    let server = peer(&net, &["tcp-accept=10.89.0.1:7003/15000"])?;
    let out = report(jail.join().map_err(|_| "jail thread")?)?;
    let seen = addr(&peer_report(server)?, "tcp-accept=10.89.0.1:7003/15000")?;
    ensure(seen.starts_with("10.89.0.2:"), || format!("the host saw {seen}"))?;
    ensure(addr(&out, "tcp-connect=10.89.0.1:7003")? == seen, || {
        format!("{}", out["checks"])
    })?;
    // After the jail, the host end is gone.
    ensure(net.links() == before, || format!("links after: {:?}", net.links()))
}

fn private_mode_bind_race(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    // Loopback is unlisted but exists in the jail's namespace: a bind that
    // slipped through would succeed on it.
    let file = ctx.jail(PRIVATE_JAIL);
    let seen = race(ctx, &net, &file, "10.89.0.3", "127.0.0.1")?;
    let listed: BTreeSet<String> = ["10.89.0.2", "10.89.0.3"].map(String::from).into();
    ensure(seen.is_subset(&listed) && !seen.is_empty(), || {
        format!("sockets ended on {seen:?}")
    })
}

fn private_mode_loopback_only(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    let before = net.links();
    let file = ctx.jail("[network]\nmode = \"private\"\nipv4 = [\"127.0.0.1\"]\n[limits]\npids = 32\n");
    let v = jailed(
        ctx,
        &net,
        &file,
        &["tcp-listen=0.0.0.0:8080", "tcp-connect=127.0.0.1:9", "socket-inet6"],
    )?;
    ensure(v["facts"]["interfaces"] == serde_json::json!(["lo"]), || {
        format!("interfaces {}", v["facts"]["interfaces"])
    })?;
    ensure(addr(&v, "tcp-listen=0.0.0.0:8080")? == "127.0.0.1:8080", || {
        format!("{}", v["checks"])
    })?;
    ensure(
        errno(&v, "tcp-connect=127.0.0.1:9") == libc::ECONNREFUSED as i64,
        || format!("{}", v["checks"]),
    )?;
    // No veth: IPv6 too reaches the jail's own loopback alone, so it is allowed.
    ensure(errno(&v, "socket-inet6") == 0, || format!("{}", v["checks"]))?;
    ensure(net.links() == before, || format!("links: {:?}", net.links()))
}

fn private_mode_on_a_bridge(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    net.ip(&["link", "add", "br0", "type", "bridge"])?;
    net.ip(&["addr", "add", "10.90.0.1/24", "dev", "br0"])?;
    net.ip(&["link", "set", "br0", "up"])?;
    let file = ctx.jail(
        "[network]\nmode = \"private\"\nipv4 = [\"10.90.0.5/24\"]\nbridge = \"br0\"\ngateway = \"10.90.0.1\"\n[limits]\npids = 32\n",
    );
    let server = peer(&net, &["tcp-accept=10.90.0.1:7000/15000"])?;
    std::thread::sleep(Duration::from_millis(300));
    let v = jailed(ctx, &net, &file, &["tcp-connect=10.90.0.1:7000"])?;
    let seen = addr(&peer_report(server)?, "tcp-accept=10.90.0.1:7000/15000")?;
    ensure(seen.starts_with("10.90.0.5:"), || {
        format!("the bridge's host saw {seen}")
    })?;
    ensure(addr(&v, "tcp-connect=10.90.0.1:7000")? == seen, || {
        format!("{}", v["checks"])
    })
}

/// The network namespaces any process uses.
/// The network namespaces that processes hold now.
fn namespaces() -> BTreeSet<String> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_link(e.path().join("ns/net")).ok())
        .map(|p| p.display().to_string())
        .collect()
}

fn fifty_cycles(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    let file = ctx.jail(PRIVATE_JAIL);
    let links = net.links();
    // The jails' own namespaces, as they name them from inside. The kernel
    // reuses a freed namespace's number, so the test runs alone.
    let mut jails = BTreeSet::new();
    let mut own_namespace = |i: usize, out: &std::process::Output| {
        let ns = text(&out.stdout).trim().to_string();
        ensure(ns.starts_with("net:["), || format!("cycle {i}: namespace {ns:?}"))?;
        jails.insert(ns);
        Ok::<(), String>(())
    };
    let host = fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
    for i in 0..50 {
        if i % 2 == 0 {
            let mut c = ctx.sysjail(&["up"]);
            c.arg(&file).args(["--", "/bin/readlink", "/proc/self/ns/net"]);
            net.enter(&mut c)?;
            let out = run_bounded(c, Duration::from_secs(30));
            ensure(out.status.success(), || format!("cycle {i}: {}", text(&out.stderr)))?;
            own_namespace(i, &out)?;
        } else {
            let mut c = ctx.sysjail(&["up", "-b"]);
            c.arg(&file).args(["--", "/bin/sleep", "60"]);
            net.enter(&mut c)?;
            let out = run_bounded(c, Duration::from_secs(30));
            ensure(out.status.success(), || format!("cycle {i} up: {}", text(&out.stderr)))?;
            ensure(net.links().len() == links.len() + 1, || {
                format!("cycle {i}: the running jail has no veth: {:?}", net.links())
            })?;
            let out = run_bounded(
                ctx.sysjail(&["exec", &ctx.name, "--", "/bin/readlink", "/proc/self/ns/net"]),
                Duration::from_secs(30),
            );
            ensure(out.status.success(), || {
                format!("cycle {i} exec: {}", text(&out.stderr))
            })?;
            own_namespace(i, &out)?;
            let out = run_bounded(ctx.sysjail(&["down", &ctx.name]), Duration::from_secs(30));
            ensure(out.status.success(), || {
                format!("cycle {i} down: {}", text(&out.stderr))
            })?;
        }
        ensure(net.links() == links, || {
            format!("cycle {i}: links left {:?}", net.links())
        })?;
    }
    ensure(!jails.contains(&host.display().to_string()), || {
        "a jail ran in the host's network namespace".into()
    })?;
    // No process holds a jail's namespace any more. The kernel reaps a
    // jail's processes asynchronously after down returns: allow it a moment.
    let gone = support::wait_for(Duration::from_secs(5), || namespaces().is_disjoint(&jails));
    ensure(gone, || {
        format!(
            "namespaces left: {:?}",
            namespaces().intersection(&jails).collect::<Vec<_>>()
        )
    })
}

/// `sysjail up FILE -- probe CHECKS` as nobody, in `net`.
fn jailed_as_nobody(ctx: &Ctx, net: &Net, file: &std::path::Path, checks: &[&str]) -> Result<Value, String> {
    let mut c = ctx.as_nobody(&["up"]);
    c.arg(file).args(["--", support::bin(), "probe"]).args(checks);
    net.enter(&mut c)?;
    report(run_bounded(c, Duration::from_secs(60)))
}

const ROOTLESS_JAIL: &str = "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\", \"192.0.2.11\"]\n";

/// Without privilege no cgroup program can be loaded, and no supervisor can
/// confine the host's stack without a race (it would have to let the kernel
/// re-read the descriptor of every unix socket call): `up` refuses, before
/// anything is created, and says what works instead.
fn without_privilege_host_stack_is_refused(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, HOST4)?;
    let file = ctx.jail(ROOTLESS_JAIL);
    let mut c = ctx.as_nobody(&["up"]);
    c.arg(&file)
        .args(["--", support::bin(), "probe", "tcp-listen=0.0.0.0:8080"]);
    net.enter(&mut c)?;
    let out = run_bounded(c, Duration::from_secs(60));
    let stderr = text(&out.stderr);
    ensure(!out.status.success() && out.stdout.is_empty(), || {
        format!("exit {:?}, stdout {}", out.status.code(), text(&out.stdout))
    })?;
    ensure(
        stderr.contains("needs cgroup socket-address programs, and loading them takes root")
            && stderr.contains("mode = \"private\""),
        || stderr.clone(),
    )?;
    let ls = ctx.as_nobody(&["ls"]).output().map_err(|e| e.to_string())?;
    ensure(text(&ls.stdout).lines().count() <= 1, || {
        format!("a record was left: {}", text(&ls.stdout))
    })
}

fn without_privilege_no_veth(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &[])?;
    let file = ctx.jail("[network]\nmode = \"private\"\nipv4 = [\"10.89.0.2/24\"]\ngateway = \"10.89.0.1\"\n");
    let err = jailed_as_nobody(ctx, &net, &file, &[]).err().unwrap_or_default();
    ensure(
        err.contains("a private network with addresses beyond loopback needs root"),
        || err,
    )?;
    // Loopback only needs no veth and works. No program rewrites the
    // wildcard (`-d` says so), but the namespace is the jail's own: a
    // peer on the host's loopback does not reach the jail's listener.
    let file = ctx.jail_named("nobody-lo", "[network]\nmode = \"private\"\nipv4 = [\"127.0.0.1\"]\n");
    let mut c = ctx.as_nobody(&["-d", "up"]);
    c.arg(&file)
        .args(["--", support::bin(), "probe", "tcp-listen=0.0.0.0:8080/2000"]);
    net.enter(&mut c)?;
    let jail = std::thread::spawn(move || run_bounded(c, Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(800));
    let outside = peer_report(peer(&net, &["tcp-connect=127.0.0.1:8080"])?)?;
    let out = jail.join().map_err(|_| "jail thread")?;
    let warned = text(&out.stderr).contains("a bind to the wildcard or loopback is not rewritten");
    let v = report(out)?;
    ensure(
        addr(&v, "tcp-listen=0.0.0.0:8080/2000")? == "0.0.0.0:8080" && warned,
        || format!("warned: {warned}; {}", v["checks"]),
    )?;
    ensure(
        errno(&outside, "tcp-connect=127.0.0.1:8080") == libc::ECONNREFUSED as i64,
        || format!("the host's loopback reached the jail: {}", outside["checks"]),
    )
}

fn selftest_probes_the_address_rule(ctx: &Ctx) -> TestResult {
    let net = Net::new(ctx, &["192.0.2.10/24", "192.0.2.11/24", "2001:db8::10/64"])?;
    let host = ctx.jail_named(
        "st-host",
        "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.10\", \"192.0.2.11\"]\nipv6 = [\"2001:db8::10\"]\n[limits]\npids = 32\n",
    );
    let private = ctx.jail_named("st-private", PRIVATE_JAIL);
    for file in [host, private] {
        let mut c = ctx.sysjail(&["selftest"]);
        c.arg(&file);
        net.enter(&mut c)?;
        let out = run_bounded(c, Duration::from_secs(60));
        let stdout = text(&out.stdout);
        ensure(out.status.success() && stdout.contains(" 0 failed"), || {
            format!("{}: {stdout}{}", file.display(), text(&out.stderr))
        })?;
        ensure(
            stdout.contains("PASS a wildcard bind ends on the first address"),
            || stdout.clone(),
        )?;
    }
    // Outside the namespace holding its addresses the host-mode jail cannot
    // work, and selftest says so.
    let stray = ctx.jail_named(
        "st-stray",
        "[network]\nmode = \"host\"\nipv4 = [\"192.0.2.99\"]\n[limits]\npids = 32\n",
    );
    let mut c = ctx.sysjail(&["selftest"]);
    c.arg(&stray);
    net.enter(&mut c)?;
    let out = run_bounded(c, Duration::from_secs(60));
    let stdout = text(&out.stdout);
    ensure(
        !out.status.success()
            && stdout.contains("FAIL a wildcard bind ends on the first address: bind=0.0.0.0:0 = EADDRNOTAVAIL"),
        || stdout,
    )
}
