//! The command line as a user drives it: arguments in, exit status and output out.

use std::fs;
use std::path::PathBuf;
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
        fs::write(
            &file,
            format!("path = \"/\"\ncommand = [\"/bin/true\"]\nextends = \"{base}\"\n"),
        )
        .unwrap();
        let limit = std::time::Duration::from_secs(10);
        for format in ["human", "json", "github"] {
            let out = sysjail_bounded(&["check", "--format", format, file.to_str().unwrap()], &secret, limit);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert_eq!(out.status.code(), Some(1), "{base}: {stdout}{stderr}");
            let all = format!("{stdout}{stderr}");
            assert!(all.contains(&format!("cannot read base file {base}")), "{all}");
            assert!(all.contains(why), "{all}");
            assert!(!all.contains(&secret), "the environment leaked: {all}");
            let code = if base.ends_with("big.toml") {
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
            assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
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
    assert_eq!(out.status.code(), Some(1), "{}", &text(&out.stderr)[..2000]);
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
