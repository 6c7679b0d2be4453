//! Freshness: the committed schema, the man page and the README say what the
//! code does.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sysjail::config::{MemFiles, load_text};
use sysjail::diag::{Code, SourceMap};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn committed_schema_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(&sysjail::schema()).unwrap() + "\n";
    assert!(
        read("schema/sysjail.schema.json") == generated,
        "schema/sysjail.schema.json is stale: run `cargo run -- schema > schema/sysjail.schema.json`"
    );
}

/// Every key of every table of the schema, as written in TOML.
fn schema_keys() -> BTreeSet<String> {
    let schema = sysjail::schema();
    let mut keys = BTreeSet::new();
    let mut tables = vec![schema.clone()];
    tables.extend(schema["$defs"].as_object().unwrap().values().cloned());
    for t in tables {
        if let Some(props) = t["properties"].as_object() {
            keys.extend(props.keys().cloned());
        }
    }
    keys
}

#[test]
fn the_man_page_documents_every_key() {
    let man = read("man/sysjail.toml.5");
    let missing: Vec<_> = schema_keys()
        .into_iter()
        .filter(|k| !man.contains(&format!(".It Ic {k} ")))
        .collect();
    assert!(
        missing.is_empty(),
        "man/sysjail.toml.5 has no `.It Ic KEY` entry for {missing:?}"
    );
    let allow = sysjail::config::Allow::WORDS;
    let undocumented: Vec<_> = allow.iter().filter(|w| !man.contains(&format!(".It Cm {w}"))).collect();
    assert!(
        undocumented.is_empty(),
        "allow entries without an entry: {undocumented:?}"
    );
}

/// Fragments of definitions are fine (a [network] table alone), so only the
/// problems a fragment cannot excuse count.
fn assert_block_decodes(origin: &str, text: &str) {
    let mut sources = SourceMap::new();
    let files = MemFiles::default().with("base.toml", "template = true\n");
    let loaded = load_text(Path::new("block.toml"), text, &mut sources, &files);
    let validated = sysjail::model::validate(&loaded);
    let excused = [
        Code::MissingKey,
        Code::NoLimits,
        Code::ExtendsMissing,
        Code::HostPathMissing,
    ];
    let problems: Vec<_> = loaded
        .diags
        .iter()
        .chain(&validated.diags)
        .filter(|d| !excused.contains(&d.code))
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect();
    assert!(
        problems.is_empty(),
        "a TOML block in {origin} does not check:\n{text}\n{problems:?}"
    );
}

#[test]
fn toml_blocks_of_the_readme_check() {
    let readme = read("README.md");
    let mut n = 0;
    for block in readme.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        assert_block_decodes("README.md", text);
        n += 1;
    }
    assert!(n >= 1, "README.md shows no TOML");
}

#[test]
fn toml_blocks_of_the_man_page_check() {
    let man = read("man/sysjail.toml.5");
    let mut n = 0;
    for block in man.split(".Bd -literal -offset indent\n").skip(1) {
        let text = block.split(".Ed\n").next().unwrap();
        assert_block_decodes("man/sysjail.toml.5", &text.replace("\\e", "\\").replace("\\&", ""));
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn every_example_names_the_schema() {
    for entry in fs::read_dir(root().join("examples/jails")).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#:schema ../../schema/sysjail.schema.json\n"),
            "{} does not start with the #:schema comment",
            path.display()
        );
    }
}

/// mandoc -Tlint's messages, but for cross-references between our own pages,
/// which cannot resolve before the pages are installed.
fn mandoc_lint(pages: &[&str]) -> Result<(), String> {
    let out = match Command::new("mandoc")
        .arg("-Tlint")
        .args(pages.iter().map(|p| root().join(p)))
        .output()
    {
        Ok(out) => out,
        Err(_) => return Err("SKIP".into()),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let ours = ["Xr sysjail 1", "Xr sysjail.toml 5"];
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !(l.contains("referenced manual not found") && ours.iter().any(|o| l.contains(o))))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn man_pages_are_lint_clean() {
    // CI installs mandoc (.ci/run); a machine without it fails here rather than
    // report a check it did not make.
    let pages = ["man/sysjail.1", "man/sysjail.toml.5"];
    match mandoc_lint(&pages) {
        Ok(()) => {}
        Err(e) if e == "SKIP" => panic!("mandoc is not installed: apt-get install mandoc"),
        Err(e) => panic!("mandoc -Tlint:\n{e}"),
    }
}
