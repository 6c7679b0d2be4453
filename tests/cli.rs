//! The command line as a user drives it: arguments in, exit status and output out.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sysjail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sysjail"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run sysjail")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sysjail-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_example_passes_check() {
    let out = sysjail(&["check", "examples/jails"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checked 5 files: 0 errors, 0 warnings"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn three_problems_three_diagnostics_with_line_and_column() {
    let out = sysjail(&["check", "--format", "json", "examples/invalid/three-problems.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let found: Vec<(String, u64, u64)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
            assert_eq!(v["file"], "examples/invalid/three-problems.toml");
            assert_eq!(v["severity"], "error");
            assert!(v["help"].is_string(), "every diagnostic says what would be valid");
            (
                v["code"].as_str().unwrap().to_string(),
                v["line"].as_u64().unwrap(),
                v["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("sysjail::path::relative".to_string(), 2, 8),
            ("sysjail::key::unknown".to_string(), 4, 1),
            ("sysjail::net::invalid-address".to_string(), 8, 9),
        ]
    );
}

#[test]
fn github_annotations() {
    let out = sysjail(&["check", "--format", "github", "examples/invalid/three-problems.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("::error file=examples/invalid/three-problems.toml,line=2,col=8,"),
        "{first}"
    );
    assert_eq!(stdout.lines().count(), 3);
}

#[test]
fn human_output_points_at_the_text() {
    let out = sysjail(&["check", "examples/invalid/three-problems.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[examples/invalid/three-problems.toml:4:1]"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `hostname`?"), "{stderr}");
    assert!(stderr.contains("checked 1 file: 3 errors, 0 warnings"), "{stderr}");
}

#[test]
fn warnings_fail_only_when_denied() {
    let dir = tempdir("warn");
    let file = dir.join("open.toml");
    fs::write(&file, "path = \"/\"\ncommand = [\"/bin/true\"]\n").unwrap();
    let file = file.to_str().unwrap();
    let out = sysjail(&["check", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("limits::none"));
    let out = sysjail(&["check", "--deny-warnings", file]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn directories_are_walked_for_toml_files() {
    let dir = tempdir("walk");
    fs::create_dir_all(dir.join("a/b")).unwrap();
    let jail = "path = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\npids = 8\n";
    fs::write(dir.join("a/one.toml"), jail).unwrap();
    fs::write(dir.join("a/b/two.toml"), jail).unwrap();
    fs::write(dir.join("a/notes.txt"), "not a jail").unwrap();
    let out = sysjail(&["check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("checked 2 files"), "{}", text(&out.stderr));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(sysjail(&["check"]).status.code(), Some(2));
    assert_eq!(
        sysjail(&["check", "--format", "xml", "examples/jails"]).status.code(),
        Some(2)
    );
    let out = sysjail(&["check", "no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.toml: no such file or directory"));
    let empty = tempdir("empty");
    assert_eq!(sysjail(&["check", empty.to_str().unwrap()]).status.code(), Some(2));
}

#[test]
fn policy_prints_valid_json() {
    let out = sysjail(&["policy", "examples/jails/hello.toml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["name"], "hello");
    assert_eq!(v["hostname"], "hello.jail");
    assert_eq!(v["mounts"][0]["target"], "/");
    assert_eq!(v["mounts"][0]["op"]["read_only"], true);
    assert!(v["syscalls"]["rules"].as_array().unwrap().len() > 300);
}

#[test]
fn policy_is_compiled_for_a_host() {
    // The address rule takes root and cgroup2: a private jail runs without
    // the rewrite elsewhere, and says so.
    let table = |host: &str| {
        let out = sysjail(&["policy", "examples/jails/api.toml", "--host", host]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert!(table("root-cgroup2").contains("rewrite: cgroup programs"));
    let v1 = table("root-cgroup1");
    assert!(v1.contains("degraded: the address rewrite is not enforced"), "{v1}");
    assert!(v1.contains("host: cgroup socket-address programs: this host has no unified cgroup hierarchy"));
    // A host that cannot keep a limit refuses the jail, saying why.
    let out = sysjail(&["policy", "examples/jails/web.toml", "--host", "rootless"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("an unprivileged user cannot create"),
        "{}",
        text(&out.stderr)
    );
    // The same from a file of facts.
    let facts = std::env::temp_dir().join(format!("sysjail-cli-facts-{}.json", std::process::id()));
    let mut example = serde_json::to_value(sysjail::facts::HostFacts::example()).unwrap();
    example["landlock_abi"] = serde_json::Value::Null;
    std::fs::write(&facts, example.to_string()).unwrap();
    let out = sysjail(&[
        "policy",
        "examples/jails/hello.toml",
        "--host-facts",
        facts.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("degraded: Landlock is not available"));
    std::fs::write(&facts, "{\"root\": true}").unwrap();
    let out = sysjail(&[
        "policy",
        "examples/jails/hello.toml",
        "--host-facts",
        facts.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not host facts"), "{}", text(&out.stderr));
    let _ = fs::remove_file(&facts);
}

#[test]
fn policy_refuses_invalid_files_and_templates() {
    let out = sysjail(&["policy", "examples/invalid/three-problems.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("sysjail::key::unknown"));
    let out = sysjail(&["policy", "examples/jails/base.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("template::not-a-jail"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn schema_is_printed() {
    let out = sysjail(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let committed = fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/sysjail.schema.json")).unwrap();
    assert_eq!(out.stdout, committed);
}

/// Runs sysjail with `secret` in its environment, killing it after `limit`:
/// hostile input must neither hang nor leak the caller's environment.
fn sysjail_bounded(args: &[&str], secret: &str, limit: std::time::Duration) -> Output {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sysjail"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("SYSJAIL_TEST_SECRET", secret)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sysjail");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("sysjail {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
    Output { status, stdout, stderr }
}

#[test]
fn extends_and_named_files_must_be_regular_files_of_at_most_1_mib() {
    let dir = tempdir("hostile");
    let fifo = dir.join("fifo.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let big = dir.join("big.toml");
    fs::write(&big, format!("name = \"big\"\n{}", "#".repeat(2 << 20))).unwrap();
    let secret = format!("sysjail-secret-{}", std::process::id());
    // Named as definitions are (a base must end in .toml), through links
    // where the thing itself has another name.
    let zero = dir.join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let sub = dir.join("sub.toml");
    fs::create_dir(&sub).unwrap();
    let environ = dir.join("environ.toml");
    std::os::unix::fs::symlink("/proc/self/environ", &environ).unwrap();
    let bases = [
        (zero.to_str().unwrap(), "a character device"),
        (fifo.to_str().unwrap(), "a FIFO"),
        (sub.to_str().unwrap(), "a directory"),
        (environ.to_str().unwrap(), "proc pseudo"),
        (big.to_str().unwrap(), "larger than 1 MiB"),
    ];
    for (i, (base, why)) in bases.iter().enumerate() {
        let file = dir.join(format!("extends-{i}.toml"));
        // `extends` reaches no link: a base that is one is refused as such.
        let name = Path::new(base).file_name().unwrap().to_str().unwrap();
        let linked = fs::symlink_metadata(base).unwrap().file_type().is_symlink();
        let why_extended = if linked { "symbolic link" } else { why };
        fs::write(
            &file,
            format!("path = \"/\"\ncommand = [\"/bin/true\"]\nextends = \"{name}\"\n"),
        )
        .unwrap();
        let limit = std::time::Duration::from_secs(10);
        for format in ["human", "json", "github"] {
            let out = sysjail_bounded(&["check", "--format", format, file.to_str().unwrap()], &secret, limit);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert_eq!(out.status.code(), Some(1), "{base}: {stdout}{stderr}");
            let all = format!("{stdout}{stderr}");
            assert!(all.contains(&format!("cannot read base file {base}")), "{all}");
            assert!(all.contains(why_extended), "{all}");
            assert!(!all.contains(&secret), "the environment leaked: {all}");
            let code = if linked {
                "sysjail::file::link"
            } else if base.ends_with("big.toml") {
                "sysjail::file::too-large"
            } else {
                "sysjail::file::not-regular"
            };
            // GitHub annotations escape the colons of the title.
            assert!(all.contains(code) || all.contains(&code.replace(':', "%3A")), "{all}");
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
                assert_eq!(v["file"], file.to_str().unwrap(), "the extending file is blamed");
                assert_eq!((v["line"].as_u64(), v["column"].as_u64()), (Some(3), Some(11)));
            }
        }
        // The same files named directly, to every command that reads a definition.
        for cmd in [vec!["check"], vec!["policy"], vec!["up", "--dry-run"]] {
            if cmd[0] == "check" && *why == "a directory" {
                continue; // check walks a directory for *.toml files
            }
            let mut args = cmd.clone();
            args.push(base);
            let out = sysjail_bounded(&args, &secret, limit);
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            // A launch that sysjail refuses exits 125, apart from the command's statuses.
            let status = if cmd[0] == "up" { 125 } else { 1 };
            assert_eq!(out.status.code(), Some(status), "{args:?}: {all}");
            assert!(all.contains(&format!("cannot read {base}: ")), "{args:?}: {all}");
            assert!(all.contains(why), "{args:?}: {all}");
            assert!(!all.contains(&secret), "the environment leaked: {all}");
        }
    }
    // A base that is no definition at all is refused unread, whatever it
    // holds: its lines would otherwise be quoted in the CI's log.
    for base in ["/etc/shadow", "/proc/self/environ", "../../root/.ssh/id_rsa"] {
        let file = dir.join("not-toml.toml");
        fs::write(
            &file,
            format!("path = \"/\"\ncommand = [\"/bin/true\"]\nextends = \"{base}\"\n"),
        )
        .unwrap();
        let out = sysjail_bounded(
            &["check", file.to_str().unwrap()],
            &secret,
            std::time::Duration::from_secs(10),
        );
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{base}: {all}");
        assert!(
            all.contains("sysjail::extends::not-toml") && !all.contains(&secret),
            "{base}: {all}"
        );
        assert!(!all.contains("root:"), "{base}: a line of it was quoted: {all}");
    }
}

#[test]
fn links_back_up_a_checked_directory_are_walked_once() {
    let dir = tempdir("loops");
    fs::write(
        dir.join("one.toml"),
        "path = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\npids = 8\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(".", dir.join("again")).unwrap();
    std::os::unix::fs::symlink(".", dir.join("and-again")).unwrap();
    let out = sysjail_bounded(
        &["check", dir.to_str().unwrap()],
        "",
        std::time::Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("checked 1 file:"), "{}", text(&out.stderr));
}

#[test]
fn a_huge_stop_timeout_is_a_diagnostic_not_a_panic() {
    let dir = tempdir("timeout");
    let file = dir.join("t.toml");
    fs::write(
        &file,
        "path = \"/\"\ncommand = [\"/bin/true\"]\nstop-timeout = \"99999999999999999999999h\"\n[limits]\npids = 8\n",
    )
    .unwrap();
    let out = sysjail(&["check", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["code"], "sysjail::duration::invalid");
    assert_eq!((v["line"].as_u64(), v["column"].as_u64()), (Some(3), Some(16)));
    assert!(v["message"].as_str().unwrap().contains("too large"), "{v}");
}

#[test]
fn an_error_at_the_end_of_a_100000_character_line_renders_with_its_column() {
    let dir = tempdir("long-line");
    let file = dir.join("long.toml");
    let line = format!("hostname = \"{}\" oops = 1", "a".repeat(100_000));
    fs::write(&file, format!("path = \"/\"\n{line}\n")).unwrap();
    let column = line.find("oops").unwrap() + 1;
    let out = sysjail(&["check", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2:{column}]", file.display())),
        "the header names line 2, column {column}: {}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        stderr.lines().all(|l| l.chars().count() < 400),
        "the line is cut around the error"
    );
    // The classic command line is rendered the same way.
    let user = "u".repeat(100_000);
    let out = sysjail(&["jail", "-u", &user, "/", "host", "/bin/true"]);
    assert_eq!(out.status.code(), Some(125), "{}", &text(&out.stderr)[..2000]);
    assert!(text(&out.stderr).contains("sysjail::user::invalid"));
}

#[test]
fn six_thousand_broken_lines_give_a_hundred_diagnostics_and_one_more_quickly() {
    let dir = tempdir("broken");
    let file = dir.join("broken.toml");
    let broken: String = (0..6000).map(|i| format!("a{}\n", i % 10)).collect();
    fs::write(&file, broken).unwrap();
    let file = file.to_str().unwrap();
    let start = std::time::Instant::now();
    let out = sysjail(&["check", file]);
    let took = start.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(took < std::time::Duration::from_secs(1), "human output took {took:?}");
    assert_eq!(stderr.matches("sysjail::toml::syntax").count(), 100, "{stderr}");
    assert!(stderr.contains("and 5900 more"), "{stderr}");
    assert!(stderr.contains("checked 1 file: 6000 errors, 0 warnings"), "{stderr}");
    let out = sysjail(&["check", "--format", "json", file]);
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 101);
    assert_eq!(lines[100]["code"], "sysjail::diag::more");
    assert_eq!(
        lines[100]["message"],
        "and 5900 more, from here on: 5900 errors, 0 warnings"
    );
    let out = sysjail(&["check", "--format", "github", file]);
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 101);
    assert!(stdout.lines().last().unwrap().contains("::and 5900 more"), "{stdout}");
}

#[test]
fn a_megabyte_of_mounts_and_addresses_checks_in_linear_time() {
    let dir = tempdir("many");
    let mounts: String = (0..15_000)
        .map(|i| format!("[[mount]]\ntype = \"tmpfs\"\ntarget = \"/m{i}\"\n"))
        .collect();
    let addresses: Vec<String> = (0..15_000)
        .map(|i| format!("\"10.{}.{}.{}/8\"", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let definition = format!(
        "path = \"/\"\ncommand = [\"/bin/true\"]\n[network]\nmode = \"private\"\nipv4 = [{}]\n[limits]\npids = 8\n{mounts}",
        addresses.join(", ")
    );
    assert!(definition.len() < 1 << 20);
    let file = dir.join("many.toml");
    fs::write(&file, definition).unwrap();
    let start = std::time::Instant::now();
    let out = sysjail_bounded(
        &["check", file.to_str().unwrap()],
        "",
        std::time::Duration::from_secs(30),
    );
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        took < std::time::Duration::from_secs(2),
        "15,000 mounts and addresses took {took:?}"
    );
}

/// A pipe whose reader is gone before the command writes: every write to it
/// fails with EPIPE, as at `sysjail policy --format json | head -1` once head
/// has exited.
fn closed_pipe() -> std::os::fd::OwnedFd {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    write
}

/// A state directory as sysjail accepts one: the user's own, mode 0700.
fn state_dir(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir(name).join("state");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn a_reader_that_went_away_ends_the_output_quietly() {
    let state_path = state_dir("epipe");
    let state = state_path.to_str().unwrap();
    let cases: [(&[&str], i32); 10] = [
        (&["policy", "--format", "json", "examples/jails/hello.toml"], 0),
        (&["policy", "examples/jails/hello.toml"], 0),
        (&["schema"], 0),
        (
            &["check", "--format", "json", "examples/invalid/three-problems.toml"],
            1,
        ),
        (&["check", "--format", "github", "examples/jails"], 0),
        (&["--state-dir", state, "ls"], 0),
        (&["--state-dir", state, "ls", "--json"], 0),
        (&["completions", "zsh"], 0),
        (&["__flags"], 0),
        (&["up", "--dry-run", "examples/jails/hello.toml"], 0),
    ];
    for (args, status) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_sysjail"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(closed_pipe())
            .output()
            .unwrap();
        // The command's own status, neither a panic (101) nor SIGPIPE.
        assert_eq!(out.status.code(), Some(status), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{args:?} said something about the pipe");
    }
    // Other write errors are reported, and fail.
    let full = fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sysjail"))
        .arg("schema")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("sysjail: writing to standard output: No space left on device"),
        "{}",
        text(&out.stderr)
    );
    fs::remove_dir_all(state_path.parent().unwrap()).unwrap();
}

/// `dir/NAME`, a link to sysjail: the binary called by another of its names.
fn link(dir: &std::path::Path, name: &str) -> Command {
    let path = dir.join(name);
    if !path.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sysjail"), &path).unwrap();
    }
    let mut c = Command::new(path);
    c.env("NO_COLOR", "1");
    c
}

#[test]
fn an_unknown_classic_option_is_a_usage_error_not_a_path() {
    let links = tempdir("classic-links");
    for option in ["--allow-foo", "-x"] {
        let args = [option, "/", "web", "/bin/true"];
        let by_link = link(&links, "jail").args(args).output().unwrap();
        let by_sub = sysjail(&[&["jail"][..], &args].concat());
        for out in [by_link, by_sub] {
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains(&format!("error: unexpected argument '{option}' found")),
                "{stderr}"
            );
            assert!(!stderr.contains(&format!("/{option}")), "taken as a path: {stderr}");
        }
    }
    fs::remove_dir_all(&links).unwrap();
}

#[test]
fn exec_without_dashes_hints_where_the_command_goes() {
    let out = sysjail(&["exec", "web", "id", "-u"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: unexpected argument"), "{stderr}");
    assert!(
        stderr.ends_with("hint: put the command after --: sysjail exec web -- id -u\n"),
        "{stderr}"
    );
    let out = sysjail(&["exec", "-u", "www", "web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("hint: put the command after --: sysjail exec -u www web -- CMD..."),
        "{}",
        text(&out.stderr)
    );
    // Other commands' errors get no such hint.
    let out = sysjail(&["down"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains("hint:"), "{}", text(&out.stderr));
}

#[test]
fn completions_for_every_shell_offer_the_visible_commands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = sysjail(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in [
            "check",
            "policy",
            "schema",
            "up",
            "ls",
            "exec",
            "down",
            "selftest",
            "doctor",
            "completions",
            "state-dir",
            "dry-run",
        ] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
        for hidden in ["__flags", "probe)", "\"probe\"", "'probe'", "probe:"] {
            assert!(!script.contains(hidden), "{shell} offers the hidden {hidden}");
        }
    }
    // The bash script is one that bash reads.
    let dir = tempdir("completions");
    let file = dir.join("sysjail.bash");
    fs::write(&file, sysjail(&["completions", "bash"]).stdout).unwrap();
    let out = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(sysjail(&["completions", "tcsh"]).status.code(), Some(2));
}

/// The words after `Fl` in the lines of `text`: the flags it names.
fn fl_words(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words
                .windows(2)
                .filter(|w| w[0] == "Fl" || w[0] == ".Fl")
                .map(|w| w[1].replace("\\-", "-"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether a flag is among the `Fl` words: `--long` as itself, `-x` as
/// itself or in a cluster such as `Fl bdhilv`.
fn names(words: &[String], flag: &str) -> bool {
    match flag.strip_prefix("--") {
        Some(long) => words.iter().any(|w| w.strip_prefix('-') == Some(long)),
        None => {
            let short = flag.trim_start_matches('-');
            words
                .iter()
                .any(|w| !w.starts_with('-') && w.chars().all(|c| c.is_ascii_alphanumeric()) && w.contains(short))
        }
    }
}

/// The SYNOPSIS lines of `program` (`sysjail`, `sysjail check`, `jail`, `jls`...).
fn synopsis(man: &str, program: &str) -> String {
    let section = man
        .split(".Sh SYNOPSIS")
        .nth(1)
        .unwrap()
        .split("\n.Sh ")
        .next()
        .unwrap();
    // Each form starts at `.Nm`, with `.Cm SUB` on the next line for a subcommand.
    let forms = section.split("\n.Nm").skip(1);
    let (name, sub) = program.split_once(' ').unwrap_or((program, ""));
    let wanted = |form: &&str| {
        let mut lines = form.lines();
        let first = lines.next().unwrap_or("").trim();
        let called = if first.is_empty() { "sysjail" } else { first };
        let cm = lines.next().and_then(|l| l.strip_prefix(".Cm ")).unwrap_or("");
        let cm = cm.split_whitespace().next().unwrap_or("");
        called == name && (cm == sub || sub.is_empty() && !form.contains("\n.Cm "))
    };
    // A command may have several forms (`check FILE...`, `check --bundle`).
    forms.filter(wanted).collect::<Vec<_>>().join("\n")
}

#[test]
fn every_flag_of_every_command_is_in_the_manual() {
    let man = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/sysjail.1")).unwrap();
    let described: Vec<String> = fl_words(
        &man.lines()
            .filter(|l| l.starts_with(".It "))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let out = sysjail(&["__flags"]);
    assert_eq!(out.status.code(), Some(0));
    let flags = text(&out.stdout);
    let mut missing = Vec::new();
    for line in flags.lines() {
        let mut fields = line.split('\t');
        let program = fields.next().unwrap();
        let forms: Vec<&str> = fields.collect();
        // `sysjail jail` is the classic command line, under `jail`'s synopsis.
        let program = if program == "sysjail jail" { "jail" } else { program };
        // The synopsis shows one form of each option; its entry, every form.
        let synopsis = fl_words(&synopsis(&man, program));
        if !forms.iter().any(|f| names(&synopsis, f)) {
            missing.push(format!("{} of {program}: not in its SYNOPSIS", forms.join(", ")));
        }
        for flag in forms.iter().filter(|f| !names(&described, f)) {
            missing.push(format!("{flag} of {program}: no .It entry"));
        }
    }
    assert!(flags.lines().count() > 40, "{flags}");
    assert!(missing.is_empty(), "sysjail(1) lacks:\n{}", missing.join("\n"));
}

#[test]
fn arguments_that_are_not_utf8_are_no_panic() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"\xffjail.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_sysjail"))
        .arg("check")
        .arg(bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("jail.toml: no such file or directory"),
        "{}",
        text(&out.stderr)
    );
    // Where a word must be text, clap says so.
    let out = Command::new(env!("CARGO_BIN_EXE_sysjail"))
        .args(["jail", "/"])
        .arg(bad)
        .arg("/bin/true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("invalid UTF-8"), "{}", text(&out.stderr));
}
