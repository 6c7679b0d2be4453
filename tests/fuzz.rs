//! A malformed file never panics: arbitrary bytes and arbitrary TOML documents
//! go through loading, validation and policy compilation.

use std::path::Path;

use proptest::prelude::*;
use sysjail::config::{MemFiles, load_text};
use sysjail::diag::{Format, SourceMap, render_all};

fn run(text: &str) {
    let files = MemFiles::default().with("base.toml", "template = true\n[limits]\npids = 8\n");
    let mut sources = SourceMap::new();
    let loaded = load_text(Path::new("fuzz.toml"), text, &mut sources, &files);
    let validated = sysjail::model::validate(&loaded);
    let mut diags = loaded.diags.clone();
    diags.extend(validated.diags.iter().cloned());
    // Rendering must cope with every span the pipeline produced.
    for format in [Format::Json, Format::Github, Format::Human { color: false }] {
        let _ = render_all(&diags, &sources, format);
    }
    if let Some(jail) = validated.jail {
        let policy = sysjail::policy::compile(&jail);
        let _ = sysjail::policy::render_text(&policy);
    }
}

/// Keys of the format and a few that are not, so that generated documents hit
/// both the known paths and the unknown-key paths.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name"),
        Just("path"),
        Just("hostname"),
        Just("command"),
        Just("user"),
        Just("host-user"),
        Just("groups"),
        Just("env"),
        Just("allow"),
        Just("extends"),
        Just("network"),
        Just("limits"),
        Just("mount"),
        Just("mode"),
        Just("ipv4"),
        Just("ipv6"),
        Just("memory"),
        Just("pids"),
        Just("cpu"),
        Just("nofile"),
        Just("source"),
        Just("target"),
        Just("type"),
        Just("size"),
        Just("read-only"),
        Just("stop-timeout"),
        Just("template"),
        Just("gateway"),
        Just("bridge"),
        Just("x"),
    ]
    .prop_map(String::from)
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_map(|f| format!("{f:?}"))
            .prop_filter("TOML float", |s| !s.contains("inf") && !s.contains("NaN")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,20}".prop_map(|s| format!("{s:?}")),
        prop_oneof![
            Just("\"/\""),
            Just("\"/srv/j\""),
            Just("\"192.0.2.1\""),
            Just("\"::1\""),
            Just("\"512M\""),
            Just("\"host\""),
            Just("\"private\""),
            Just("\"tmpfs\""),
            Just("\"ipc\""),
            Just("\"base.toml\""),
            Just("\"10s\""),
            Just("\"unlimited\""),
            Just("\"a/../b\""),
            Just("\"10.0.0.2/24\""),
        ]
        .prop_map(String::from),
    ]
}

fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..5).prop_map(|kv| {
                let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("\"{k}\" = {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), value()), 0..12)
        .prop_map(|entries| entries.into_iter().map(|(k, v)| format!("\"{k}\" = {v}\n")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        run(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_toml_never_panics(doc in document()) {
        run(&doc);
    }

    #[test]
    fn valid_looking_jails_never_panic(
        limits in prop::collection::vec((key(), scalar()), 0..6),
        mounts in prop::collection::vec(prop::collection::vec((key(), scalar()), 0..5), 0..4),
    ) {
        let mut doc = String::from("path = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\n");
        for (k, v) in limits { doc.push_str(&format!("\"{k}\" = {v}\n")); }
        for m in mounts {
            doc.push_str("[[mount]]\n");
            for (k, v) in m { doc.push_str(&format!("\"{k}\" = {v}\n")); }
        }
        run(&doc);
    }
}
