//! A malformed file never panics: arbitrary bytes and arbitrary TOML documents
//! go through loading, validation and policy compilation.
//!
//! Two layers: property tests of generated documents, in every `cargo test`;
//! and a mutation fuzzer, [`mutated_definitions_and_command_lines`], that runs a
//! million mutants of the examples and of classic command lines and bounds the
//! time of each. It is ignored by default:
//!
//! ```text
//! cargo test --release --test fuzz -- --ignored --nocapture
//! SYSJAIL_FUZZ_COUNT=100000 SYSJAIL_FUZZ_SEED=7 cargo test --release --test fuzz -- --ignored
//! ```

use std::path::Path;

use proptest::prelude::*;
use sysjail::config::{MemFiles, load_text};
use sysjail::diag::{Format, SourceMap, render_all};

fn run(text: &str) {
    let files = MemFiles::default().with("base.toml", "template = true\n[limits]\npids = 8\n");
    run_with(text, &files);
}

/// Everything a definition goes through before a launch, `check`'s rendering
/// in every format included.
fn run_with(text: &str, files: &MemFiles) {
    let mut sources = SourceMap::new();
    let loaded = load_text(Path::new("fuzz.toml"), text, &mut sources, files);
    let validated = sysjail::model::validate(&loaded);
    let mut diags = loaded.diags.clone();
    diags.extend(validated.diags.iter().cloned());
    sysjail::diag::sort(&mut diags);
    sysjail::diag::cap(&mut diags);
    // Rendering must cope with every span the pipeline produced.
    for format in [Format::Json, Format::Github, Format::Human { color: false }] {
        let _ = render_all(&diags, &sources, format);
    }
    if let Some(jail) = validated.jail {
        for kind in sysjail::facts::HostKind::ALL {
            if let Ok(policy) = sysjail::policy::compile(&jail, &sysjail::facts::HostFacts::of_kind(kind)) {
                let _ = sysjail::policy::render_text(&policy);
            }
        }
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

/// Every key of the format with a value, so that mutations land on each numeric
/// conversion (sizes, counts, CPU, modes, durations, prefixes, ids) often.
const EVERY_KEY: &[&str] = &[
    r#"name = "all"
path = "/srv/jails/all"
read-only = false
hostname = "all.example.org"
command = ["/bin/sh", "-c", "true"]
workdir = "/tmp"
host-user = 1000
groups = [27, "adm"]
clean-env = true
allow = ["ipc", "chflags", "rlimit"]
stop-timeout = "1.5s"
stop-signal = "SIGINT"
log = "/var/log/all.log"
log-denials = "/var/log/all.denials"
[env]
TZ = "UTC"
[network]
mode = "private"
ipv4 = ["10.0.0.2/24", "10.0.0.3/32"]
ipv6 = ["fd00::2/64"]
gateway = "10.0.0.1"
interface = "eth0"
[limits]
memory = "1.5G"
pids = 4194304
cpu = 0.25
nofile = 1048576
nproc = 4096
core = "unlimited"
fsize = "16383P"
stack = "8M"
as = 17179869184
[[mount]]
type = "tmpfs"
target = "/tmp"
size = "64K"
mode = "1777"
[[mount]]
source = "/usr"
target = "/usr"
recursive = true
idmap = true
"#,
    r#"user = "0"
stop-timeout = 3600
[network]
mode = "host"
ipv4 = ["192.0.2.10", "127.0.0.2"]
ipv6 = ["2001:db8::1"]
[limits]
memory = 4194304
cpu = 1024
[[mount]]
type = "tmpfs"
target = "/run"
mode = 0o755
size = 4096
"#,
];

/// A small, fast, seedable generator (xorshift64*): the fuzzer needs speed and
/// reproducible runs, not statistical quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Words that reach the interesting paths: keys, tables, units, limits of
/// every numeric conversion, quoting, and text that is not ASCII.
const TOKENS: &[&str] = &[
    "\n",
    " = ",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\\",
    "\r\n",
    "\t",
    "[limits]\n",
    "[network]\n",
    "[[mount]]\n",
    "[env]\n",
    "name",
    "path",
    "hostname",
    "command",
    "user",
    "host-user",
    "groups",
    "allow",
    "extends",
    "template",
    "clean-env",
    "workdir",
    "stop-timeout",
    "stop-signal",
    "memory",
    "pids",
    "cpu",
    "nofile",
    "nproc",
    "core",
    "fsize",
    "stack",
    "address-space",
    "as",
    "log",
    "log-denials",
    "mode",
    "ipv4",
    "ipv6",
    "gateway",
    "bridge",
    "interface",
    "source",
    "target",
    "type",
    "size",
    "read-only",
    "recursive",
    "idmap",
    "tmpfs",
    "proc",
    "dev",
    "host",
    "private",
    "unlimited",
    "raw-sockets",
    "all-domains",
    "ipc",
    "chflags",
    "rlimit",
    "0",
    "-1",
    "1",
    "2",
    "4096",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e308",
    "1e309",
    "-0.0",
    "0.001",
    "1.5",
    "nan",
    "inf",
    "0o7777",
    "0o77777777777",
    "0x7fffffff",
    "\"99999999999999999999999h\"",
    "\"18446744073709551615s\"",
    "\"1e20s\"",
    "\"0.0000001ms\"",
    "\"99999999999P\"",
    "\"16383P\"",
    "\"16384P\"",
    "\"17179869183.9999999999G\"",
    "\"1.5G\"",
    "\"512M\"",
    "\"4K\"",
    "\"0\"",
    "\"7777\"",
    "\"77777777777\"",
    "\"0o1777\"",
    "\"10.0.0.2/24\"",
    "\"10.0.0.2/33\"",
    "\"10.0.0.2/255\"",
    "\"10.0.0.2/256\"",
    "\"fd00::2/129\"",
    "\"192.0.2.10\"",
    "\"::1\"",
    "\"0.0.0.0\"",
    "\"255.255.255.255\"",
    "\"/\"",
    "\"/srv/j\"",
    "\"a/../b\"",
    "\"/../..\"",
    "\"base.toml\"",
    "\"/dev/zero\"",
    "\"nope.toml\"",
    "\"fuzz.toml\"",
    "\"SIGKILL\"",
    "\"SIGINT\"",
    "\"www-data\"",
    "\"4294967295\"",
    "\"-1\"",
    "é",
    "\u{200b}",
    "\u{1F600}",
    "\u{0}",
    "\"\\u0000\"",
    "1979-05-27T07:32:00Z",
];

/// One mutation of `text`: a byte changed, a token inserted, a range deleted
/// or repeated, text spliced from another seed, or one very long line.
fn mutate(rng: &mut Rng, text: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let at = |rng: &mut Rng, text: &Vec<u8>| rng.below(text.len() + 1);
    match rng.below(10) {
        0 => {
            let i = at(rng, text);
            if i < text.len() {
                text[i] = rng.next() as u8;
            }
        }
        1..=3 => {
            let i = at(rng, text);
            let token = rng.pick(TOKENS);
            text.splice(i..i, token.bytes());
        }
        4 => {
            let i = at(rng, text);
            let j = (i + rng.below(64)).min(text.len());
            text.drain(i..j);
        }
        5 => {
            // Repeat a range: many lines, many keys, many problems.
            let i = at(rng, text);
            let j = (i + rng.below(40)).min(text.len());
            let piece = text[i..j].to_vec();
            let most = if rng.below(20) == 0 { 2000 } else { 8 };
            let times = 1 + rng.below(most);
            for _ in 0..times {
                text.splice(j..j, piece.iter().copied());
            }
        }
        6 => {
            let seed = rng.pick(seeds);
            let (a, b) = (rng.below(seed.len() + 1), rng.below(seed.len() + 1));
            let i = at(rng, text);
            text.splice(i..i, seed[a.min(b)..a.max(b)].iter().copied());
        }
        7 => {
            // A line longer than miette's column widths.
            let i = at(rng, text);
            let long = if rng.below(8) == 0 { 70_000 } else { 300 };
            let fill = *rng.pick(b"a1 #\"");
            text.splice(i..i, std::iter::repeat_n(fill, long));
        }
        8 => {
            let i = at(rng, text);
            let n = *rng.pick(&[0u64, 1, 255, 65_535, 65_536, u32::MAX as u64, u64::MAX]);
            let n = n.wrapping_add(rng.below(3) as u64).to_string();
            text.splice(i..i, n.bytes());
        }
        _ => {
            let i = at(rng, text);
            if i < text.len() {
                text[i] = *rng.pick(b"\n=\"'[]{},.#0123456789");
            }
        }
    }
}

/// A classic command line (`jail [-4 a] [-6 a] [-u u | -U u] [-l] [--allow-*]
/// path hostname command...`) made of tokens and mutated words.
fn classic(rng: &mut Rng, seeds: &[Vec<u8>]) -> sysjail::config::classic::Classic {
    let word = |rng: &mut Rng| -> String {
        let mut w = rng.pick(TOKENS).trim_matches('"').as_bytes().to_vec();
        for _ in 0..rng.below(3) {
            mutate(rng, &mut w, seeds);
        }
        if rng.below(50) == 0 {
            w.extend(std::iter::repeat_n(b'u', 70_000));
        }
        String::from_utf8_lossy(&w).into_owned()
    };
    let words = |rng: &mut Rng, n: usize| (0..rng.below(n)).map(|_| word(rng)).collect::<Vec<_>>();
    let allow = ["all-domains", "raw-sockets", "ipc", "chflags", "rlimit", "bogus"];
    sysjail::config::classic::Classic {
        ipv4: words(rng, 3),
        ipv6: words(rng, 3),
        host_user: (rng.below(3) == 0).then(|| word(rng)),
        user: (rng.below(3) == 0).then(|| word(rng)),
        clean_env: rng.below(2) == 0,
        allow: (0..rng.below(4)).map(|_| rng.pick(&allow).to_string()).collect(),
        positional: words(rng, 7),
    }
}

fn run_classic(c: &sysjail::config::classic::Classic) {
    let human = Format::Human { color: false };
    match sysjail::load::load_classic("sysjail jail", c) {
        Ok(def) => {
            for kind in sysjail::facts::HostKind::ALL {
                if let Ok(policy) = sysjail::policy::compile(&def.jail, &sysjail::facts::HostFacts::of_kind(kind)) {
                    let _ = sysjail::policy::render_text(&policy);
                }
            }
            let _ = render_all(&def.warnings, &def.sources, human);
        }
        Err(rejected) => {
            for format in [Format::Json, Format::Github, human] {
                let _ = render_all(&rejected.diags, &rejected.sources, format);
            }
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Mutants of every example (and of its base), and classic command lines: none
/// may panic, and none may take longer than a bound linear in its size. Each
/// failing input is written under target/tmp to be replayed.
#[test]
#[ignore = "long-running: cargo test --release --test fuzz -- --ignored --nocapture"]
fn mutated_definitions_and_command_lines() {
    let count: u64 = env_or("SYSJAIL_FUZZ_COUNT", 1_000_000);
    let seed: u64 = env_or("SYSJAIL_FUZZ_SEED", 1);
    // A fixed allowance, plus one per KiB, each far above what a linear pass takes.
    let base_ms: u64 = env_or("SYSJAIL_FUZZ_MAX_MS", 500);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in ["examples/jails", "examples/invalid"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            seeds.push(std::fs::read(p).unwrap());
        }
    }
    seeds.extend(EVERY_KEY.iter().map(|s| s.as_bytes().to_vec()));
    let base = std::fs::read_to_string(root.join("examples/jails/base.toml")).unwrap();
    // Each panic is reported below, with its input.
    std::panic::set_hook(Box::new(|_| {}));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let started = std::time::Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let job = Job {
                    seeds: &seeds,
                    base: &base,
                    count,
                    seed,
                    base_ms,
                    threads,
                };
                scope.spawn(move || job.run(t))
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let _ = std::panic::take_hook();
    println!(
        "fuzz: {count} inputs (a quarter of them classic command lines) in {:.1?} on {threads} threads, seed {seed}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What every fuzzing thread shares.
#[derive(Clone, Copy)]
struct Job<'a> {
    seeds: &'a [Vec<u8>],
    base: &'a str,
    count: u64,
    seed: u64,
    base_ms: u64,
    threads: u64,
}

impl Job<'_> {
    /// Runs inputs `t`, `t + threads`, ... below `count`; returns the failures.
    fn run(self, t: u64) -> Vec<String> {
        let mut failures = Vec::new();
        for i in (t..self.count).step_by(self.threads as usize) {
            // Each input is a function of (seed, i) alone, so that it can be replayed.
            let mut rng = Rng((self.seed ^ i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
            let started = std::time::Instant::now();
            let (input, outcome) = self.one(i, &mut rng);
            let took = started.elapsed();
            let limit = std::time::Duration::from_millis(self.base_ms + input.len() as u64 / 1024 * 20);
            let problem = match outcome {
                Err(panic) => Some(format!(
                    "panic: {}",
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                )),
                Ok(()) if took > limit => Some(format!("took {took:?} for {} bytes", input.len())),
                Ok(()) => None,
            };
            if let Some(problem) = problem {
                let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-failure-{}-{i}", self.seed));
                std::fs::write(&path, &input).unwrap();
                failures.push(format!("input {i}: {problem} ({})", path.display()));
                if failures.len() >= 20 {
                    break;
                }
            }
        }
        failures
    }

    /// Input `i`: every fourth a classic command line, the others a mutated
    /// definition over a base that is sometimes mutated too.
    fn one(&self, i: u64, rng: &mut Rng) -> (String, std::thread::Result<()>) {
        if i % 4 == 3 {
            let c = classic(rng, self.seeds);
            let shown = format!("{c:?}");
            return (shown, std::panic::catch_unwind(|| run_classic(&c)));
        }
        let mut text = rng.pick(self.seeds).clone();
        for _ in 0..1 + rng.below(8) {
            mutate(rng, &mut text, self.seeds);
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        let mut base = self.base.as_bytes().to_vec();
        if rng.below(4) == 0 {
            mutate(rng, &mut base, self.seeds);
        }
        let files = MemFiles::default().with("base.toml", &String::from_utf8_lossy(&base));
        let outcome = std::panic::catch_unwind(|| run_with(&text, &files));
        (text, outcome)
    }
}
