//! Jails that real software runs in (issue 14): a private network without
//! addresses has its own working loopback, "disabled" has no inet socket at
//! all, the hostname resolves inside, a tmpfs keeps to its size, and the
//! shipped build example writes its project. They need root and run in CI;
//! elsewhere they are SKIP. Only the jails' own loopback and the host's
//! loopback are used.

mod support;

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Ctx, Need, Runner, TestResult, ensure, run_bounded, text};

fn main() {
    let mut r = Runner::new();
    use Need::*;
    r.test(
        "software_localhost_http_pair_in_a_build_style_jail",
        &[Root],
        localhost_http_pair,
    );
    r.test(
        "software_disabled_network_denies_inet_sockets",
        &[Root],
        disabled_denies_inet,
    );
    r.test(
        "software_loopback_jail_cannot_reach_the_hosts_loopback",
        &[Root],
        host_loopback_unreachable,
    );
    r.test("software_hostname_resolves_inside", &[Root], hostname_resolves);
    r.test("software_tmpfs_size_is_honoured", &[Root], tmpfs_size_is_honoured);
    r.test(
        "software_build_example_writes_its_project",
        &[Root, Memory, Pids, Cpu],
        build_example_writes_its_project,
    );
    r.run()
}

/// A private network, no addresses: what build and test jails use.
const LOOPBACK_ONLY: &str = "[network]\nmode = \"private\"\n[limits]\npids = 64\n";

/// A server on 127.0.0.1 and one on ::1, each answering a client in the
/// same jail: what test suites that talk to localhost do.
const HTTP_PAIR: &str = r#"
import http.server, socket, threading, urllib.request
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"answer from " + self.server.server_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
for family, host, url_host in ((socket.AF_INET, "127.0.0.1", "127.0.0.1"), (socket.AF_INET6, "::1", "[::1]")):
    class Server(http.server.ThreadingHTTPServer):
        address_family = family
    server = Server((host, 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://%s:%d/" % (url_host, server.server_address[1])
    print(urllib.request.urlopen(url, timeout=10).read().decode())
    server.shutdown()
"#;

fn python3() -> Result<&'static str, String> {
    let path = "/usr/bin/python3";
    ensure(Path::new(path).exists(), || {
        format!("{path} is not installed: this test runs a real server and client with it (CI has it)")
    })?;
    Ok(path)
}

fn localhost_http_pair(ctx: &Ctx) -> TestResult {
    let python = python3()?;
    let file = ctx.jail(LOOPBACK_ONLY);
    let out = ctx.up(&file, &[python, "-c", HTTP_PAIR]);
    let stdout = text(&out.stdout);
    ensure(out.status.success(), || {
        format!("exit {:?}: {stdout}{}", out.status.code(), text(&out.stderr))
    })?;
    let lines: Vec<&str> = stdout.lines().collect();
    ensure(lines == ["answer from 127.0.0.1", "answer from ::1"], || {
        format!("the client got {lines:?}")
    })
}

fn disabled_denies_inet(ctx: &Ctx) -> TestResult {
    let checks = ["socket-inet", "socket-inet6", "socket-inet-dgram", "socket-unix"];
    let denied = [
        ("socket-inet", libc::EAFNOSUPPORT),
        ("socket-inet6", libc::EAFNOSUPPORT),
        ("socket-inet-dgram", libc::EAFNOSUPPORT),
        ("socket-unix", 0),
    ];
    // Said explicitly, and by default without an address.
    for body in ["[network]\nmode = \"disabled\"\n", ""] {
        let file = ctx.jail(&format!("{body}[limits]\npids = 16\n"));
        ctx.probe(&file, &checks)?
            .expect(&denied)
            .map_err(|e| format!("{body:?}: {e}"))?;
    }
    // The classic command line without -4 or -6: no inet socket, as in the
    // old manual.
    let mut classic = ctx.sysjail(&["jail", "/", "classic-disabled", support::bin(), "probe"]);
    classic.args(checks);
    let out = run_bounded(classic, Duration::from_secs(60));
    ensure(out.status.success(), || {
        format!("classic jail exited {:?}: {}", out.status.code(), text(&out.stderr))
    })?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("classic probe output ({e}): {}", text(&out.stdout)))?;
    support::Probe(report)
        .expect(&denied)
        .map_err(|e| format!("classic: {e}"))
}

fn host_loopback_unreachable(ctx: &Ctx) -> TestResult {
    // A service on the host's loopback, which a jail on its own loopback
    // must not reach: there the port is closed.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("host listener: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let file = ctx.jail(LOOPBACK_ONLY);
    let connect = format!("tcp-connect=127.0.0.1:{port}");
    let probe = ctx.probe(&file, &[&connect, "socket-inet", "socket-inet6"])?;
    probe.expect(&[(&connect, libc::ECONNREFUSED), ("socket-inet", 0), ("socket-inet6", 0)])?;
    ensure(probe.fact("interfaces") == &serde_json::json!(["lo"]), || {
        format!("interfaces {}", probe.fact("interfaces"))
    })?;
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        Ok((_, from)) => Err(format!("the host's listener got a connection from {from}")),
        Err(e) => Err(format!("accept: {e}")),
    }
}

fn hostname_resolves(ctx: &Ctx) -> TestResult {
    let host_files = || [fs::read("/etc/hosts").ok(), fs::read("/etc/hostname").ok()];
    let before = host_files();
    let script = "getent hosts \"$(hostname)\"; getent hosts localhost; cat /etc/hostname; \
                  if echo 203.0.113.9 evil >> /etc/hosts; then echo writable; fi";
    for (mode, address) in [("private", "127.0.1.1"), ("disabled", "127.0.1.1")] {
        let file = ctx.jail(&format!(
            "hostname = \"resolve.example\"\n[network]\nmode = \"{mode}\"\n[limits]\npids = 16\n"
        ));
        let out = ctx.up(&file, &["/bin/sh", "-c", script]);
        let stdout = text(&out.stdout);
        let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
        ensure(out.status.success(), || {
            format!("{mode}: exit {:?}: {stdout}{}", out.status.code(), text(&out.stderr))
        })?;
        ensure(
            lines.first() == Some(&vec![address, "resolve.example", "resolve"]),
            || format!("{mode}: getent hosts $(hostname) gave {stdout:?}"),
        )?;
        ensure(lines.get(1).is_some_and(|l| l.contains(&"localhost")), || {
            format!("{mode}: localhost: {stdout:?}")
        })?;
        // Bound over the host's file; a tree without one gets none.
        let hostname = Path::new("/etc/hostname").exists().then(|| vec!["resolve.example"]);
        ensure(lines.get(2).cloned() == hostname, || {
            format!("{mode}: /etc/hostname: {stdout:?}")
        })?;
        ensure(!stdout.contains("writable"), || {
            format!("{mode}: /etc/hosts was writable")
        })?;
        ensure(text(&out.stderr).contains("Read-only file system"), || {
            format!("{mode}: appending to /etc/hosts: {}", text(&out.stderr))
        })?;
    }
    ensure(host_files() == before, || {
        "the host's /etc/hosts or /etc/hostname changed".to_string()
    })
}

fn tmpfs_size_is_honoured(ctx: &Ctx) -> TestResult {
    let file = ctx
        .jail("[limits]\npids = 16\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/tmp\"\nsize = \"1M\"\nmode = \"1777\"\n");
    let out = ctx.up(
        &file,
        &[
            "/bin/sh",
            "-c",
            "stat -f -c '%b %S' /tmp; if head -c 2000000 /dev/zero > /tmp/big; then echo fits; fi; stat -c %s /tmp/big",
        ],
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let size = lines
        .first()
        .and_then(|l| l.split_once(' '))
        .and_then(|(b, s)| Some(b.parse::<u64>().ok()? * s.parse::<u64>().ok()?));
    ensure(size == Some(1 << 20), || format!("statfs of /tmp: {stdout:?}"))?;
    ensure(!lines.contains(&"fits"), || "2 MB fit in a 1M tmpfs".to_string())?;
    ensure(
        lines.last().and_then(|l| l.parse::<u64>().ok()) <= Some(1 << 20),
        || format!("written: {stdout:?}"),
    )?;
    ensure(text(&out.stderr).contains("No space left on device"), || {
        format!("writing past the size: {}", text(&out.stderr))
    })
}

/// examples/jails/build.toml as shipped, with its project in a directory of
/// the test's and a user's Makefile there.
fn build_example_writes_its_project(ctx: &Ctx) -> TestResult {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let example = fs::read_to_string(root.join("examples/jails/build.toml")).map_err(|e| e.to_string())?;
    let project = ctx.dir.join("project");
    fs::create_dir(&project).map_err(|e| e.to_string())?;
    fs::write(
        project.join("Makefile"),
        "all: out.txt\nout.txt:\n\techo built by $$(id -u) > out.txt\n\tmkdir -p obj && touch obj/a.o\n",
    )
    .map_err(|e| e.to_string())?;
    // The developer's project: an unprivileged user's.
    for p in [project.clone(), project.join("Makefile")] {
        std::os::unix::fs::chown(&p, Some(1000), Some(1000)).map_err(|e| e.to_string())?;
    }
    let text_ = example
        .replace("/srv/build/project", &project.display().to_string())
        .replace("name = \"build\"", "name = \"software-build-example\"");
    // A base is read beneath the directory of the definition: a copy of the
    // example's, beside it.
    fs::copy(root.join("examples/jails/base.toml"), ctx.dir.join("base.toml")).map_err(|e| e.to_string())?;
    ensure(text_.contains(&project.display().to_string()), || {
        "the example moved".into()
    })?;
    let file = ctx.dir.join("software-build-example.toml");
    fs::write(&file, text_).map_err(|e| e.to_string())?;
    let out = run_bounded(
        {
            let mut c = ctx.sysjail(&["up"]);
            c.arg(&file);
            c
        },
        Duration::from_secs(120),
    );
    ensure(out.status.success(), || {
        format!(
            "make exited {:?}: {}{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        )
    })?;
    let built = fs::read_to_string(project.join("out.txt")).map_err(|e| format!("out.txt: {e}"))?;
    ensure(built == "built by 0\n", || format!("out.txt: {built:?}"))?;
    for p in [project.join("out.txt"), project.join("obj"), project.join("obj/a.o")] {
        let m = fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        ensure((m.uid(), m.gid()) == (1000, 1000), || {
            format!(
                "{} is owned by {}:{}, not the project's owner",
                p.display(),
                m.uid(),
                m.gid()
            )
        })?;
    }
    Ok(())
}
