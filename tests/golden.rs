//! Golden tests: the policy table of every example and the rendered diagnostics
//! of every invalid example are committed; a change to either shows in review.
//! Run with SYSJAIL_BLESS=1 to rewrite the files after an intended change.

use std::fs;
use std::path::{Path, PathBuf};

use sysjail::diag::{Format, render_all};
use sysjail::{load, policy};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Compares `actual` with the golden file, or rewrites it when blessing.
fn compare(golden: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("SYSJAIL_BLESS").is_some() {
        fs::write(golden, actual).unwrap();
        return Ok(());
    }
    let expected =
        fs::read_to_string(golden).map_err(|e| format!("{}: {e} (run with SYSJAIL_BLESS=1)", golden.display()))?;
    if expected == actual {
        return Ok(());
    }
    let first = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.lines().count().min(actual.lines().count()));
    Err(format!(
        "{} differs from what the code produces now, first at line {}:\n  golden: {:?}\n  actual: {:?}\n(if the change is intended, run with SYSJAIL_BLESS=1 and review the diff)",
        golden.display(),
        first + 1,
        expected.lines().nth(first).unwrap_or("<end>"),
        actual.lines().nth(first).unwrap_or("<end>"),
    ))
}

/// Paths in output are relative to the repository, as a user in it would see them.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(root()).unwrap().to_path_buf()
}

#[test]
fn policy_tables_of_every_example() {
    std::env::set_current_dir(root()).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in toml_files("examples/jails") {
        let def = match load::load(&relative(&file)) {
            Ok(def) => def,
            Err(rejected)
                if rejected
                    .diags
                    .iter()
                    .any(|d| d.code == sysjail::diag::Code::TemplateUsed) =>
            {
                continue;
            }
            Err(rejected) => panic!("{} is invalid: {:?}", file.display(), rejected.diags),
        };
        let p = policy::compile(&def.jail, &sysjail::facts::HostFacts::example()).expect("the example host runs it");
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let golden = root().join(format!("tests/golden/{stem}.policy.txt"));
        if let Err(e) = compare(&golden, &policy::render_text(&p)) {
            failures.push(e);
        }
        let golden = root().join(format!("tests/golden/{stem}.policy.json"));
        if let Err(e) = compare(&golden, &(serde_json::to_string_pretty(&p).unwrap() + "\n")) {
            failures.push(e);
        }
        checked += 1;
    }
    assert!(
        checked >= 4,
        "expected hello, web, build and api at least; found {checked}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn diagnostics_of_every_invalid_example() {
    std::env::set_current_dir(root()).unwrap();
    let mut failures = Vec::new();
    let files: Vec<PathBuf> = toml_files("examples/invalid").iter().map(|p| relative(p)).collect();
    assert!(files.len() >= 4);
    for file in files {
        let found = load::Found {
            path: file.clone(),
            listed: false,
        };
        let report = load::check(
            std::slice::from_ref(&found),
            false,
            std::path::Path::new("/nonexistent"),
        );
        let diags: Vec<_> = report.diags().cloned().collect();
        assert!(
            diags.iter().any(|d| d.is_error()),
            "{} should be invalid",
            file.display()
        );
        let text = render_all(&diags, &report.sources, Format::Human { color: false });
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        if let Err(e) = compare(&root().join(format!("tests/golden/invalid/{stem}.txt")), &text) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `sysjail up --dry-run` of every example, on the fixed host of
/// `HostFacts::example` and a fixed caller: the launch order in review.
#[test]
fn launch_plans_of_every_example() {
    use sysjail::launch::{self, Caller, Launch};
    std::env::set_current_dir(root()).unwrap();
    let state = std::env::temp_dir().join(format!("sysjail-golden-{}", std::process::id()));
    let registry = sysjail::state::Registry::open(&state).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in toml_files("examples/jails") {
        let Ok(def) = load::load(&relative(&file)) else {
            continue;
        };
        let launch = Launch {
            jail: def.jail,
            digest: def.digest,
            command: None,
            background: false,
            print_id: false,
            registry: registry.clone(),
            log_denials: None,
            no_idmap: false,
            config_dir: None,
            stdio: None,
        };
        let facts = sysjail::facts::HostFacts::example();
        let plan = launch::dry_run(&launch, &facts, &Caller::example()).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        if let Err(e) = compare(&root().join(format!("tests/golden/{stem}.plan.txt")), &plan) {
            failures.push(e);
        }
        checked += 1;
    }
    let _ = fs::remove_dir_all(&state);
    assert!(
        checked >= 4,
        "expected hello, web, build and api at least; found {checked}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
