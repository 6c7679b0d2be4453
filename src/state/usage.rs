//! What a jail uses, read from its cgroups: memory now and at peak, processes,
//! CPU time. Works on the unified hierarchy and on v1 controllers alike.

use std::fs;
use std::path::Path;

use serde::Serialize;

/// Usage of one jail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Memory charged now, in bytes.
    pub memory: Option<u64>,
    /// Highest memory charged, in bytes.
    pub memory_peak: Option<u64>,
    /// Processes and threads now.
    pub tasks: Option<u64>,
    /// Highest number of tasks.
    pub tasks_peak: Option<u64>,
    /// CPU time used, in microseconds.
    pub cpu_usec: Option<u64>,
    /// Processes killed by the memory limit.
    pub oom_kills: Option<u64>,
    /// Forks refused by the pids limit.
    pub fork_refusals: Option<u64>,
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file such as memory.events.
fn keyed(path: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Reads the usage of the cgroups a jail's record lists.
pub fn read(cgroups: &[impl AsRef<Path>]) -> Usage {
    let mut u = Usage::default();
    for cg in cgroups {
        let cg = cg.as_ref();
        let first = |a: Option<u64>, b: Option<u64>| a.or(b);
        // Unified hierarchy names first, then v1's.
        u.memory = u.memory.or(first(
            read_u64(&cg.join("memory.current")),
            read_u64(&cg.join("memory.usage_in_bytes")),
        ));
        u.memory_peak = u.memory_peak.or(first(
            read_u64(&cg.join("memory.peak")),
            read_u64(&cg.join("memory.max_usage_in_bytes")),
        ));
        u.tasks = u.tasks.or(read_u64(&cg.join("pids.current")));
        u.tasks_peak = u.tasks_peak.or(read_u64(&cg.join("pids.peak")));
        u.cpu_usec = u.cpu_usec.or(first(
            keyed(&cg.join("cpu.stat"), "usage_usec"),
            read_u64(&cg.join("cpuacct.usage")).map(|ns| ns / 1000),
        ));
        u.oom_kills = u.oom_kills.or(first(
            keyed(&cg.join("memory.events"), "oom_kill"),
            keyed(&cg.join("memory.oom_control"), "oom_kill"),
        ));
        u.fork_refusals = u.fork_refusals.or(keyed(&cg.join("pids.events"), "max"));
    }
    if u.tasks.is_none() {
        // Without a pids controller, count the unified cgroup's processes.
        u.tasks = cgroups
            .iter()
            .find_map(|cg| fs::read_to_string(cg.as_ref().join("cgroup.threads")).ok())
            .map(|s| s.lines().count() as u64);
    }
    u
}
