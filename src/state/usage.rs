//! What a jail uses, read from its cgroups: memory now and at peak, processes,
//! CPU time. Works on the unified hierarchy and on v1 controllers alike.

use std::fs;
use std::path::Path;

use serde::Serialize;

use super::Limits;
use crate::model::Bytes;

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

/// What the jail's limits did, in words: "killed by the memory limit (512M)",
/// "the pids limit (32) refused 3 forks". Empty when no limit acted.
///
/// ```
/// use sysjail::state::{Limits, Usage, limit_events};
/// let usage = Usage { oom_kills: Some(1), ..Usage::default() };
/// let limits = Limits { memory: Some(512 << 20), ..Limits::default() };
/// assert_eq!(limit_events(&usage, &limits), ["killed by the memory limit (512M)"]);
/// ```
pub fn limit_events(u: &Usage, l: &Limits) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(n @ 1..), Some(limit)) = (u.oom_kills, l.memory) {
        let what = if n == 1 {
            "killed".to_string()
        } else {
            format!("{n} processes killed")
        };
        out.push(format!("{what} by the memory limit ({})", Bytes(limit)));
    }
    if let (Some(n @ 1..), Some(limit)) = (u.fork_refusals, l.pids) {
        let forks = if n == 1 { "fork" } else { "forks" };
        out.push(format!("the pids limit ({limit}) refused {n} {forks}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_the_limit_that_acted() {
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(32),
            cpu: None,
        };
        assert!(limit_events(&Usage::default(), &limits).is_empty());
        let u = Usage {
            oom_kills: Some(3),
            fork_refusals: Some(1),
            ..Usage::default()
        };
        assert_eq!(
            limit_events(&u, &limits),
            [
                "3 processes killed by the memory limit (64M)",
                "the pids limit (32) refused 1 fork"
            ]
        );
        // Counters without a limit of sysjail's (an ancestor's) say nothing.
        assert!(limit_events(&u, &Limits::default()).is_empty());
    }

    #[test]
    fn reads_v1_and_v2_files() {
        let dir = std::env::temp_dir().join(format!("sysjail-usage-{}", std::process::id()));
        let (v1, v2) = (dir.join("v1"), dir.join("v2"));
        fs::create_dir_all(&v1).unwrap();
        fs::create_dir_all(&v2).unwrap();
        fs::write(v1.join("memory.usage_in_bytes"), "4096\n").unwrap();
        fs::write(v1.join("memory.max_usage_in_bytes"), "8192\n").unwrap();
        fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        fs::write(v2.join("pids.current"), "5\n").unwrap();
        fs::write(v2.join("pids.events"), "max 7\n").unwrap();
        fs::write(v2.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        let u = read(&[&v1, &v2]);
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(
            u,
            Usage {
                memory: Some(4096),
                memory_peak: Some(8192),
                tasks: Some(5),
                tasks_peak: None,
                cpu_usec: Some(1500),
                oom_kills: Some(2),
                fork_refusals: Some(7),
            }
        );
    }
}
