//! A definition under review (a pull request linted in CI) names host files
//! by `extends`, by links among its files and by linked directories: none
//! of them is read or quoted, in any output format, by any command that
//! loads definitions.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What the secret file holds; it must never be printed.
const SECRET: &str = "FAKE-untrusted-token-4c1d";

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sysjail-untrusted-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs sysjail with no terminal, killed after ten seconds.
fn sysjail(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_sysjail"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sysjail");
    let pid = child.id();
    let start = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("sysjail {args:?} still ran after 10s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    waiter.join().unwrap()
}

/// A tree with a secret outside of it: (the tree's parent, the secret's path).
fn layout(name: &str) -> (PathBuf, PathBuf) {
    let top = tempdir(name);
    fs::create_dir_all(top.join("secret")).unwrap();
    let secret = top.join("secret/credentials.toml");
    fs::write(&secret, format!("[registry]\ntoken = \"{SECRET}\"\n")).unwrap();
    (top, secret)
}

const JAIL: &str = "path = \"/\"\ncommand = [\"/bin/true\"]\n";

/// Checks `target` in every format: exit 1, `code` reported, nothing of the
/// secret (its value or its key) printed.
fn refused(target: &Path, code: &str) {
    let target = target.to_str().unwrap();
    for format in ["human", "json", "github"] {
        let out = sysjail(&["check", "--format", format, target]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "check {format} {target}: {all}");
        assert!(
            all.contains(code) || all.contains(&code.replace(':', "%3A")),
            "check {format} {target}: no {code}: {all}"
        );
        assert!(
            !all.contains(SECRET),
            "check {format} {target}: the secret leaked: {all}"
        );
        assert!(
            !all.contains("registry"),
            "check {format} {target}: a key leaked: {all}"
        );
    }
    for cmd in [vec!["policy"], vec!["up", "--dry-run"]] {
        if cmd[0] == "policy" && Path::new(target).is_dir() {
            continue; // policy takes one file
        }
        let mut args = cmd.clone();
        args.push(target);
        let out = sysjail(&args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{args:?}: {all}");
        assert!(all.contains(code), "{args:?}: no {code}: {all}");
        assert!(
            !all.contains(SECRET) && !all.contains("registry"),
            "{args:?}: leaked: {all}"
        );
    }
}

#[test]
fn untrusted_extends_of_a_linked_base_is_refused_unread() {
    let (top, secret) = layout("linked-base");
    let pr = top.join("pr");
    fs::create_dir(&pr).unwrap();
    symlink(&secret, pr.join("base.toml")).unwrap();
    fs::write(pr.join("a.toml"), format!("{JAIL}extends = \"base.toml\"\n")).unwrap();
    refused(&pr.join("a.toml"), "sysjail::file::link");
    // A linked directory on the way is a link too.
    symlink(top.join("secret"), pr.join("vendor")).unwrap();
    fs::write(
        pr.join("b.toml"),
        format!("{JAIL}extends = \"vendor/credentials.toml\"\n"),
    )
    .unwrap();
    refused(&pr.join("b.toml"), "sysjail::file::link");
    let out = sysjail(&["check", "--format", "json", pr.join("b.toml").to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!((v["line"].as_u64(), v["column"].as_u64()), (Some(3), Some(11)), "{v}");
    fs::remove_dir_all(&top).unwrap();
}

#[test]
fn untrusted_extends_outside_the_definitions_directory_is_refused_unread() {
    let (top, secret) = layout("outside");
    let pr = top.join("pr");
    fs::create_dir_all(pr.join("bases")).unwrap();
    for (i, base) in [
        secret.to_str().unwrap(),
        "../secret/credentials.toml",
        "bases/../../secret/credentials.toml",
    ]
    .iter()
    .enumerate()
    {
        let file = pr.join(format!("out-{i}.toml"));
        fs::write(&file, format!("{JAIL}extends = \"{base}\"\n")).unwrap();
        refused(&file, "sysjail::extends::outside");
    }
    // Within the directory, `..` still works.
    fs::write(pr.join("base.toml"), format!("{JAIL}[limits]\nmemory = \"64M\"\n")).unwrap();
    fs::write(pr.join("in.toml"), "extends = \"bases/../base.toml\"\n").unwrap();
    let out = sysjail(&["check", pr.join("in.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    fs::remove_dir_all(&top).unwrap();
}

#[test]
fn untrusted_directory_walks_follow_no_link() {
    let (top, secret) = layout("walk");
    // A linked definition in a directory given to check, up or down.
    let pr2 = top.join("pr2");
    fs::create_dir(&pr2).unwrap();
    symlink(&secret, pr2.join("zz.toml")).unwrap();
    refused(&pr2, "sysjail::file::link");
    let out = sysjail(&["down", pr2.to_str().unwrap()]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("sysjail::file::link") && !all.contains(SECRET),
        "down: {all}"
    );
    // A linked directory is not entered: the walk finds only ok.toml.
    let pr4 = top.join("pr4");
    fs::create_dir(&pr4).unwrap();
    symlink(top.join("secret"), pr4.join("vendor")).unwrap();
    fs::write(pr4.join("ok.toml"), format!("{JAIL}[limits]\nmemory = \"64M\"\n")).unwrap();
    for format in ["human", "json", "github"] {
        let out = sysjail(&["check", "--format", format, pr4.to_str().unwrap()]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert!(!all.contains(SECRET) && !all.contains("credentials"), "{format}: {all}");
    }
    let out = sysjail(&["check", pr4.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("checked 1 file"));
    fs::remove_dir_all(&top).unwrap();
}
