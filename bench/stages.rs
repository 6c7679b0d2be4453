//! What the pure stages cost a start, per example: loading the definition
//! (read, parse, validate), probing the host (and reading the facts a
//! probe cached in the state directory, which a launch uses), compiling the policy, and
//! building the plan (which assembles the seccomp filter and the address
//! programs). Medians of many runs, in microseconds; no root needed.
//!
//!     cargo bench --bench stages
//!
//! Issue 13's target for the pure stages together is 0.3 ms.

use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 300;

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e6
}

fn time<T>(mut f: impl FnMut() -> T) -> f64 {
    let times = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .collect();
    median(times)
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let probe = time(sysjail::facts);
    // What a launch pays for the facts: the copy cached in the state
    // directory, valid for this caller (the column `total` counts this).
    let dir = std::env::temp_dir().join(format!("sysjail-bench-stages-{}", std::process::id()));
    let registry = sysjail::state::Registry::open(&dir).expect("a state directory in the temporary directory");
    let cached = time(|| sysjail::launch::facts(&registry));
    let _ = std::fs::remove_dir_all(&dir);
    let facts = sysjail::facts();
    println!("pure stages, median of {RUNS} runs, microseconds");
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "example", "load", "probe", "cached", "policy", "plan", "total"
    );
    for name in ["hello", "web", "api", "build"] {
        let file = Path::new(root).join(format!("examples/jails/{name}.toml"));
        let load = time(|| sysjail::load::load(&file));
        let Ok(def) = sysjail::load::load(&file) else {
            println!("{name:<10} does not load");
            continue;
        };
        let compile = time(|| sysjail::compile(&def.jail, &facts));
        let Ok(policy) = sysjail::compile(&def.jail, &facts) else {
            println!("{name:<10} cannot run on this host");
            continue;
        };
        let options = sysjail::plan::Options {
            id_base: 0x7001_0000,
            veth: "sj1".into(),
            ..sysjail::plan::Options::default()
        };
        let plan = time(|| sysjail::plan::build(&policy, &facts, &options));
        println!(
            "{name:<10} {load:>8.0} {probe:>8.0} {cached:>8.0} {compile:>8.0} {plan:>8.0} {:>8.0}",
            load + cached + compile + plan
        );
    }
}
