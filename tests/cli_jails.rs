//! The command line around real jails: exit statuses that keep sysjail's
//! failures apart from the command's, `-i` in the foreground, the NAME column
//! of `ls`, and the other names of the binary (`jls`, `sjls`, `sjtest`,
//! `jexec`, `jail`) called through links. They need root and run in CI;
//! elsewhere they are reported as SKIP.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Ctx, Need, Runner, TestResult, ensure, ls, run_bounded, text};

const LIMITS: &str = "[limits]\npids = 64\nmemory = \"256M\"\n";
const BOUND: Duration = Duration::from_secs(60);

fn main() {
    let mut r = Runner::new();
    r.test("cli_up_and_jail_statuses", &[Need::Root], cli_up_and_jail_statuses);
    r.test("cli_exec_statuses", &[Need::Root], cli_exec_statuses);
    r.test(
        "cli_print_id_first_in_the_foreground",
        &[Need::Root],
        cli_print_id_first_in_the_foreground,
    );
    r.test(
        "cli_other_names_of_the_binary",
        &[Need::Root],
        cli_other_names_of_the_binary,
    );
    r.test(
        "cli_the_command_gets_the_default_sigpipe",
        &[Need::Root],
        cli_the_command_gets_the_default_sigpipe,
    );
    r.run()
}

/// `(status, stdout, stderr)` of a bounded run.
fn run(c: Command) -> (Option<i32>, String, String) {
    let out = run_bounded(c, BOUND);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn expect(what: &str, got: (Option<i32>, String, String), status: i32, stderr_has: &str) -> TestResult {
    let (code, stdout, stderr) = got;
    ensure(code == Some(status) && stderr.contains(stderr_has), || {
        format!("{what}: exit {code:?}, wanted {status} and {stderr_has:?} on stderr\n{stdout}{stderr}")
    })
}

/// A file that exists but may not be executed, in a directory of its own
/// (the jail shares the host's root, read-only).
fn not_executable(ctx: &Ctx) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = ctx.dir.join("noexec");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("notexec");
    std::fs::write(&file, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    file
}

fn cli_up_and_jail_statuses(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let notexec = not_executable(ctx);
    let up = |cmd: &[&str]| {
        let mut c = ctx.sysjail(&["up"]);
        c.arg(&file).arg("--").args(cmd);
        c
    };
    expect("up: exit 7", run(up(&["/bin/sh", "-c", "exit 7"])), 7, "")?;
    expect(
        "up: killed by SIGUSR1",
        run(up(&["/bin/sh", "-c", "kill -USR1 $$"])),
        128 + libc::SIGUSR1,
        "",
    )?;
    expect(
        "up: not found",
        run(up(&["/no/such/program"])),
        127,
        "cannot start /no/such/program: execve: ENOENT",
    )?;
    expect(
        "up: not executable",
        run(up(&[notexec.to_str().unwrap()])),
        126,
        "execve: EACCES",
    )?;
    // Found by PATH but not executable: execvp's EACCES, though the search
    // goes on to directories where it is missing.
    let mut c = up(&["notexec"]);
    c.env("PATH", format!("{}:/bin", notexec.parent().unwrap().display()));
    expect(
        "up: not executable, by PATH",
        run(c),
        126,
        "cannot start notexec: execve: EACCES",
    )?;
    // sysjail's own failures: a refused definition, a user the jail lacks,
    // a working directory the command cannot enter.
    let bad = ctx.jail_named(&format!("{}-bad", ctx.name), "hostnam = \"x\"\n");
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&bad);
    expect("up: a refused definition", run(c), 125, "sysjail::key::unknown")?;
    let nouser = ctx.jail_named(
        &format!("{}-nouser", ctx.name),
        &format!("user = \"nosuchuser\"\n{LIMITS}"),
    );
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&nouser).args(["--", "/bin/true"]);
    expect("up: a user the jail lacks", run(c), 125, "nosuchuser")?;
    let nodir = ctx.jail_named(
        &format!("{}-nodir", ctx.name),
        &format!("workdir = \"/no/such/dir\"\n{LIMITS}"),
    );
    let mut c = ctx.sysjail(&["up"]);
    c.arg(&nodir).args(["--", "/bin/true"]);
    expect(
        "up: a working directory it cannot enter",
        run(c),
        125,
        "chdir to the working directory: ENOENT",
    )?;
    // The classic command line, likewise.
    let jail = |args: &[&str]| {
        let mut c = Command::new(support::bin());
        c.arg("jail").arg("-j").arg(&ctx.state).args(args).env("NO_COLOR", "1");
        c.stdin(Stdio::null());
        c
    };
    expect("jail: exit 3", run(jail(&["/", "h", "/bin/sh", "-c", "exit 3"])), 3, "")?;
    expect(
        "jail: not found",
        run(jail(&["/", "h", "/no/such"])),
        127,
        "execve: ENOENT",
    )?;
    expect(
        "jail: not executable",
        run(jail(&["/", "h", notexec.to_str().unwrap()])),
        126,
        "execve: EACCES",
    )?;
    expect(
        "jail: a missing root",
        run(jail(&["/no/such/root", "h", "/bin/true"])),
        125,
        "sysjail::host::path-missing",
    )?;
    // Words after the path are the jail's: the command keeps its options.
    let got = run(jail(&["/", "h", "/bin/echo", "-n", "hi"]));
    ensure(got.0 == Some(0) && got.1 == "hi", || {
        format!("jail ... echo -n hi: {got:?}")
    })
}

/// `up -b -i FILE -- CMD`; the JID.
fn up_background(ctx: &Ctx, file: &Path, cmd: &[&str]) -> Result<u64, String> {
    let mut c = ctx.sysjail(&["up", "-b", "-i"]);
    c.arg(file).arg("--").args(cmd);
    let (code, stdout, stderr) = run(c);
    ensure(code == Some(0), || format!("up -b: {stderr}"))?;
    stdout.trim().parse().map_err(|e| format!("jail id {stdout:?}: {e}"))
}

fn cli_exec_statuses(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let notexec = not_executable(ctx);
    up_background(ctx, &file, &["/bin/sleep", "300"])?;
    let exec = |cmd: &[&str]| {
        let mut c = ctx.sysjail(&["exec", &ctx.name, "--"]);
        c.args(cmd);
        c
    };
    let result = (|| {
        expect("exec: exit 3", run(exec(&["/bin/sh", "-c", "exit 3"])), 3, "")?;
        expect("exec: not found", run(exec(&["/no/such"])), 127, "execve: ENOENT")?;
        expect(
            "exec: not executable",
            run(exec(&[notexec.to_str().unwrap()])),
            126,
            "execve: EACCES",
        )?;
        let c = ctx.sysjail(&["exec", "-u", "nosuchuser", &ctx.name, "--", "/bin/true"]);
        expect(
            "exec: a user the jail lacks",
            run(c),
            125,
            "user nosuchuser is not in the jail's /etc/passwd",
        )?;
        let c = ctx.sysjail(&["exec", "no-such-jail", "--", "/bin/true"]);
        expect("exec: no such jail", run(c), 125, "no running jail")
    })();
    let down = run(ctx.sysjail(&["down", &ctx.name]));
    result?;
    ensure(down.0 == Some(0), || format!("down: {down:?}"))
}

fn cli_print_id_first_in_the_foreground(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(LIMITS);
    let mut c = ctx.sysjail(&["up", "-i"]);
    c.arg(&file).args(["--", "/bin/sh", "-c", "sleep 1; echo hello"]);
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().take(10) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(BOUND);
    // The jail runs its command now: the JID printed is the one ls shows.
    let jails = ls(ctx);
    let second = rx.recv_timeout(BOUND);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            _ if start.elapsed() > BOUND => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let jid: u64 = match &first {
        Ok(Ok(line)) => line.parse().map_err(|e| format!("first line {line:?}: {e}"))?,
        other => return Err(format!("no first line: {other:?}")),
    };
    ensure(
        jails.len() == 1 && jails[0]["id"] == jid && jails[0]["name"] == ctx.name.as_str(),
        || format!("printed {jid}, ls shows {jails:?}"),
    )?;
    ensure(matches!(&second, Ok(Ok(l)) if l == "hello"), || {
        format!("the command's output after the JID: {second:?}")
    })?;
    ensure(status.is_some_and(|s| s.success()), || format!("up -i: {status:?}"))?;
    // The classic -i, likewise: the JID, then the command's output.
    let mut c = Command::new(support::bin());
    c.arg("jail").arg("-i").arg("-j").arg(&ctx.state);
    c.args(["/", "h", "/bin/echo", "hello"]).stdin(Stdio::null());
    let (code, stdout, stderr) = run(c);
    let lines: Vec<&str> = stdout.lines().collect();
    ensure(
        code == Some(0) && lines.len() == 2 && lines[0].parse::<u64>().is_ok() && lines[1] == "hello",
        || format!("jail -i: exit {code:?}: {stdout}{stderr}"),
    )
}

/// `ctx.dir/bin/NAME`, a link to sysjail, run with the test's state directory.
fn named(ctx: &Ctx, name: &str, args: &[&str]) -> Command {
    let dir = ctx.dir.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(support::bin(), &link).unwrap();
    }
    let mut c = Command::new(link);
    c.arg("--state-dir").arg(&ctx.state).args(args);
    c.env("NO_COLOR", "1").stdin(Stdio::null());
    c
}

/// The words of line `n` of `table`.
fn row(table: &str, n: usize) -> Vec<String> {
    table
        .lines()
        .nth(n)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn cli_other_names_of_the_binary(ctx: &Ctx) -> TestResult {
    let file = ctx.jail(&format!("hostname = \"names.example\"\n{LIMITS}"));
    let jid = up_background(ctx, &file, &["/bin/sleep", "300"])?.to_string();
    let result = other_names(ctx, &jid);
    let down = run(ctx.sysjail(&["down", &ctx.name]));
    result?;
    ensure(down.0 == Some(0), || format!("down: {down:?}"))
}

fn other_names(ctx: &Ctx, jid: &str) -> TestResult {
    let name = ctx.name.as_str();
    // `sysjail ls`: the name that exec and down take.
    let (_, table, _) = run(ctx.sysjail(&["ls"]));
    ensure(row(&table, 0)[..2] == ["JID", "Name"], || table.clone())?;
    ensure(row(&table, 1) == [jid, name, "-", "names.example", "/"], || {
        table.clone()
    })?;
    // jls: jls(8)'s columns, and its options.
    let (code, table, stderr) = run(named(ctx, "jls", &[]));
    ensure(
        code == Some(0) && row(&table, 0) == ["JID", "IP", "Address", "Hostname", "Path"],
        || format!("jls: {table}{stderr}"),
    )?;
    ensure(row(&table, 1) == [jid, "-", "names.example", "/"], || table.clone())?;
    let (_, table, _) = run(named(ctx, "jls", &["-N"]));
    ensure(row(&table, 1) == [name, "-", "names.example", "/"], || {
        format!("jls -N: {table}")
    })?;
    let (_, params, _) = run(named(ctx, "jls", &["-n", "-q"]));
    let wanted = format!("jid={jid} name={name} host.hostname=names.example path=/ ip4.addr=\"\" ip6.addr=\"\"\n");
    ensure(params == wanted, || format!("jls -n -q: {params}"))?;
    let (_, verbose, _) = run(named(ctx, "jls", &["-v", "-j", name]));
    ensure(
        verbose.lines().count() >= 4 && verbose.contains(&format!("name {name}  state running")),
        || format!("jls -v -j: {verbose}"),
    )?;
    expect(
        "jls -j of no jail",
        run(named(ctx, "jls", &["-j", "no-such-jail"])),
        1,
        "jls: jail \"no-such-jail\" not found",
    )?;
    // sjls: ls -v.
    let (code, sjls, _) = run(named(ctx, "sjls", &[]));
    ensure(
        code == Some(0) && row(&sjls, 1)[..2] == [jid, name] && sjls.contains("processes 2 of 64"),
        || format!("sjls: {sjls}"),
    )?;
    // jexec: the command after the jail, no `--`; its options are its own.
    let (code, id, stderr) = run(named(ctx, "jexec", &[name, "/usr/bin/id", "-u"]));
    ensure(code == Some(0) && id == "0\n", || {
        format!("jexec id -u: {code:?} {id}{stderr}")
    })?;
    let (_, id, stderr) = run(named(ctx, "jexec", &["-U", "nobody", jid, "/usr/bin/id", "-u"]));
    ensure(id == "65534\n", || format!("jexec -U nobody: {id}{stderr}"))?;
    expect(
        "jexec exit 4",
        run(named(ctx, "jexec", &[name, "/bin/sh", "-c", "exit 4"])),
        4,
        "",
    )?;
    expect(
        "jexec not found",
        run(named(ctx, "jexec", &[name, "/no/such"])),
        127,
        "ENOENT",
    )?;
    // sjtest: selftest, on a jail of its own.
    let other = ctx.jail_named(&format!("{name}-t"), LIMITS);
    let (code, report, stderr) = run(named(ctx, "sjtest", &[other.to_str().unwrap()]));
    ensure(
        code == Some(0) && report.starts_with(&format!("selftest of jail {name}-t")) && report.ends_with(" 0 failed\n"),
        || format!("sjtest: {code:?} {report}{stderr}"),
    )
}

/// Whether signal `sig` is ignored, from a `SigIgn:` line of /proc/PID/status.
fn ignores(status: &str, sig: i32) -> Option<bool> {
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"))?.trim();
    let mask = u64::from_str_radix(mask, 16).ok()?;
    Some(mask & (1 << (sig - 1)) != 0)
}

fn cli_the_command_gets_the_default_sigpipe(ctx: &Ctx) -> TestResult {
    // Rust ignores SIGPIPE in sysjail itself; neither the jail's command nor
    // exec's inherits that.
    let file = ctx.jail(LIMITS);
    let (code, stdout, stderr) = run({
        let mut c = ctx.sysjail(&["up"]);
        c.arg(&file)
            .args(["--", "/bin/sh", "-c", "grep SigIgn /proc/self/status; yes | head -1"]);
        c
    });
    ensure(
        code == Some(0) && ignores(&stdout, libc::SIGPIPE) == Some(false),
        || format!("up: exit {code:?}: {stdout}{stderr}"),
    )?;
    ensure(!stderr.contains("Broken pipe"), || format!("yes | head -1: {stderr}"))?;
    up_background(ctx, &file, &["/bin/sleep", "300"])?;
    let got = run(ctx.sysjail(&["exec", &ctx.name, "--", "/bin/grep", "SigIgn", "/proc/self/status"]));
    let down = run(ctx.sysjail(&["down", &ctx.name]));
    ensure(
        got.0 == Some(0) && ignores(&got.1, libc::SIGPIPE) == Some(false),
        || format!("exec: {got:?}"),
    )?;
    ensure(down.0 == Some(0), || format!("down: {down:?}"))
}
