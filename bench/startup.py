#!/usr/bin/env python3
"""Start-up cost of a jail that runs /bin/true, against the tools a user would
pick instead, measured in one run and reported as ratios.

Each tool gets comparable isolation: new user, pid, mount, uts, ipc and net
namespaces, a fresh /proc, the host's / read-only as the root. sysjail also
pivots, builds /dev, masks /proc, drops capabilities, applies Landlock and
installs its seccomp filter, and (with limits) creates cgroups; it is measured
both with and without [limits] so that the cgroup cost shows.

Rounds alternate between the tools so that drift of the machine hits them all.
Memory is what each tool keeps resident while its jail runs: the proportional
set size (PSS) of the tool's own processes (supervisor, init, monitor; not the
jailed sleep).

    sudo bench/startup.py [ROUNDS]        # as root; ROUNDS defaults to 200
"""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=TOP, check=True)
    return os.path.join(TOP, "target", "release", "sysjail")


def tools(sysjail, work):
    with_limits = os.path.join(work, "limited.toml")
    without = os.path.join(work, "plain.toml")
    common = 'path = "/"\ncommand = ["/bin/true"]\n'
    with open(with_limits, "w") as f:
        f.write(f'name = "bench-limited"\n{common}[limits]\nmemory = "256M"\npids = 64\n')
    with open(without, "w") as f:
        f.write(f'name = "bench-plain"\n{common}')
    state = os.path.join(work, "state")
    out = {
        "sysjail up (no limits)": [sysjail, "--state-dir", state, "up", without],
        "sysjail up (with limits)": [sysjail, "--state-dir", state, "up", with_limits],
    }
    if shutil.which("bwrap"):
        out["bwrap --unshare-all"] = [
            "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
            "--dev", "/dev", "--tmpfs", "/tmp", "--die-with-parent", "/bin/true",
        ]
    if shutil.which("unshare"):
        out["unshare -Urpfmiun"] = [
            "unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount",
            "--uts", "--ipc", "--net", "--mount-proc", "/bin/true",
        ]
    out["/bin/true (no jail)"] = ["/bin/true"]
    return out


def tree(root):
    """Pids of root and its descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                parents[int(entry)] = int(stat[stat.rfind(")") + 2:].split()[1])
            except OSError:
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(p for p, pp in parents.items() if pp == pid)
    return out


def resident(cmd):
    """KiB (PSS) of a running jail's tool processes, the payload excluded."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    time.sleep(1)
    total = 0
    for pid in tree(p.pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "sleep":
                    continue
            # PSS: shared pages split between the processes that map them, so
            # forks of one binary are not counted twice.
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    p.wait()
    return total


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: sysjail maps a private id range and creates cgroups")
    sysjail = build()
    with tempfile.TemporaryDirectory() as work:
        commands = tools(sysjail, work)
        # Warm caches and check every tool works here.
        for name, cmd in commands.items():
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
            if r.returncode != 0:
                sys.exit(f"{name} failed: {r.stderr.decode()}")
        times = {name: [] for name in commands}
        for _ in range(ROUNDS):
            for name, cmd in commands.items():
                start = time.perf_counter()
                subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
                times[name].append(time.perf_counter() - start)
        rss = {}
        for name, cmd in commands.items():
            if name.startswith("/bin/true"):
                continue
            payload = ["/bin/sleep", "2"]
            rss[name] = resident(cmd + ["--"] + payload if name.startswith("sysjail") else cmd[:-1] + payload)
    base = statistics.median(times.get("bwrap --unshare-all", times["/bin/true (no jail)"]))
    print(f"start-up of /bin/true in a jail, {ROUNDS} rounds, kernel {os.uname().release}")
    bw_rss = rss.get("bwrap --unshare-all")
    print(f"{'tool':<28} {'median':>9} {'p90':>9} {'vs bwrap':>9} {'PSS':>10} {'vs bwrap':>9}")
    for name, t in times.items():
        t = sorted(t)
        med, p90 = statistics.median(t), t[int(len(t) * 0.9)]
        mem = f"{rss[name]:>7}KiB" if name in rss else f"{'-':>10}"
        mem_ratio = f"{rss[name] / bw_rss:>8.2f}x" if name in rss and bw_rss else f"{'-':>9}"
        print(f"{name:<28} {med * 1e3:>7.2f}ms {p90 * 1e3:>7.2f}ms {med / base:>8.2f}x {mem} {mem_ratio}")


if __name__ == "__main__":
    main()
