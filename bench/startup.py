#!/usr/bin/env python3
"""Start-up cost of a jail that runs /bin/true, against the tools a user would
pick instead, measured in one run and reported as ratios.

Each tool gets comparable isolation: new user, pid, mount, uts, ipc and net
namespaces, a fresh /proc, the host's / read-only as the root. sysjail also
pivots, builds /dev, masks /proc, drops capabilities, applies Landlock and
installs its seccomp filter, and creates the jail's cgroups (for accounting
even without [limits]; limits only add writes to them). It is measured with
and without [limits].

Rounds alternate between the tools, in a shuffled order, so that drift of
the machine hits them all.

On a hybrid host (cgroup v1 controllers) a part of sysjail's start-up is the
kernel's: moving init into a v1 cgroup waits for an RCU grace period (cgroup
v2 has CLONE_INTO_CGROUP, v1 has no such path). The last row times that one
write by itself, so that it can be told apart; runc and crun pay it too,
bubblewrap and unshare create no cgroups.

Memory is what each tool keeps resident while its jail runs: the resident
set (RSS) and the proportional set size (PSS, shared pages split between the
processes that map them) of the tool's own processes (supervisor, janitor,
init, monitor; not the jailed sleep).

runc and crun, where installed, run the same jail as an OCI bundle that
`sysjail export oci` writes (its process is sysjail's own init, which
installs the jail's exact filter and Landlock); a runtime that cannot run
here (crun refuses some hybrid cgroup hosts) is left out with the reason.

--markdown also prints the table as Markdown, headed by the date and the
machine, for bench/README.md.

    sudo bench/startup.py [ROUNDS] [--guard] [--scale=N] [--markdown]  # as root; ROUNDS defaults to 200
"""
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
ROUNDS = int(ARGS[0]) if ARGS else 200
# --guard: exit 1, loudly, when sysjail's start-up (without limits) is
# slower than bubblewrap's in this same run (issue 13's regression guard;
# timings are compared within one run, never against a fixed number).
GUARD = "--guard" in sys.argv[1:]
# --scale=N: N jails held at once (each a sleep, started in the background,
# two launches in flight), the time to hold them all and to tear them down;
# bubblewrap holding N sleeps the same way, for comparison.
SCALE = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--scale=")), 0)
MARKDOWN = "--markdown" in sys.argv[1:]
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
    for engine in ("runc", "crun"):
        if shutil.which(engine):
            bundle = os.path.join(work, f"{engine}-bundle")
            subprocess.run([sysjail, "export", "oci", without, "--bundle", bundle, "--", "/bin/true"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            root = os.path.join(work, f"{engine}-root")
            out[f"{engine} (sysjail's bundle)"] = OciRun(engine, bundle, root)
    out["/bin/true (no jail)"] = ["/bin/true"]
    return out


class OciRun(list):
    """`ENGINE run` of a bundle under a fresh container id each time; as a list,
    the command for one run (the id changes after each use)."""

    def __init__(self, engine, bundle, root):
        self.engine, self.bundle, self.root, self.n = engine, bundle, root, 0
        super().__init__(self.command())

    def command(self, bundle=None):
        self.n += 1
        return [self.engine, "--root", self.root, "run", "--bundle", bundle or self.bundle,
                f"bench-{os.getpid()}-{self.n}"]

    def __iter__(self):
        cmd = self.command()
        self[:] = cmd
        return iter(cmd)


def v1_attach():
    """Seconds to move a process into a fresh v1 cgroup, or None without v1."""
    base = "/sys/fs/cgroup/cpuacct"
    if not os.path.exists(os.path.join(base, "cgroup.procs")):
        return None
    path = os.path.join(base, f"sysjail-bench-{os.getpid()}")
    os.mkdir(path)
    child = subprocess.Popen(["/bin/sleep", "10"])
    try:
        start = time.perf_counter()
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
        return time.perf_counter() - start
    finally:
        child.kill()
        child.wait()
        os.rmdir(path)


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
    """KiB (RSS, PSS) of a running jail's tool processes, the payload excluded."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    time.sleep(1)
    rss = pss = 0
    for pid in tree(p.pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "sleep":
                    continue
            # PSS: shared pages split between the processes that map them, so
            # forks of one binary are not counted twice; RSS counts them in each.
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            pass
    p.wait()
    return rss, pss


def in_flight(commands, width=2):
    """Runs `commands` with at most `width` at once; seconds for all."""
    from concurrent.futures import ThreadPoolExecutor
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=width) as pool:
        for r in pool.map(lambda c: subprocess.run(c, stdin=subprocess.DEVNULL, capture_output=True), commands):
            if r.returncode != 0:
                sys.exit(f"{' '.join(commands[0][:4])}...: {r.stderr.decode()}")
    return time.perf_counter() - start


def scale(sysjail, work, n):
    """Seconds to hold n jails and to tear them down, sysjail and bwrap."""
    state = os.path.join(work, "scale-state")
    files = []
    for i in range(n):
        path = os.path.join(work, f"s{i}.toml")
        with open(path, "w") as f:
            f.write(f'name = "bench-scale-{i}"\npath = "/"\ncommand = ["/bin/sleep", "600"]\n')
        files.append(path)
    # Held once each command runs (--wait 0s: no start window), as bwrap's
    # sandbox is once its shell says so.
    up = in_flight([[sysjail, "--state-dir", state, "up", "-b", "--wait", "0s", f] for f in files])
    down = in_flight([[sysjail, "--state-dir", state, "down", f"bench-scale-{i}"] for i in range(n)])
    out = {"sysjail up -b / down NAME": (up, down)}
    # The manager's way: one `up` of the directory, one `down --all`, which
    # asks every jail to stop before it waits for any.
    start = time.perf_counter()
    r = subprocess.run([sysjail, "--state-dir", state, "up", "--wait", "0s", *files],
                       stdin=subprocess.DEVNULL, capture_output=True)
    up_set = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"sysjail up of {n} files: {r.stderr.decode()}")
    start = time.perf_counter()
    r = subprocess.run([sysjail, "--state-dir", state, "down", "--all"],
                       stdin=subprocess.DEVNULL, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"sysjail down --all: {r.stderr.decode()}")
    out["sysjail up FILES / down --all"] = (up_set, time.perf_counter() - start)
    if shutil.which("bwrap"):
        # Held: the sandbox's command has said so; two launches in flight.
        def launch(_):
            p = subprocess.Popen(
                ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                 "--dev", "/dev", "/bin/sh", "-c", "echo ready; exec /bin/sleep 600"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
            p.stdout.readline()
            return p
        from concurrent.futures import ThreadPoolExecutor
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as pool:
            procs = list(pool.map(launch, range(n)))
        held = time.perf_counter() - start
        start = time.perf_counter()
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
            p.stdout.close()
        out["bwrap (--die-with-parent)"] = (held, time.perf_counter() - start)
    return out


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: sysjail maps a private id range and creates cgroups")
    sysjail = build()
    with tempfile.TemporaryDirectory() as work:
        # The OCI runtimes mount the bundle's root as the jail's root user,
        # which must be able to pass through the directories above it.
        os.chmod(work, 0o755)
        commands = tools(sysjail, work)
        # Warm caches and check every tool works here; a peer that cannot
        # run on this machine is left out, loudly; sysjail must run.
        for name, cmd in list(commands.items()):
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
            if r.returncode != 0:
                if name.startswith("sysjail"):
                    sys.exit(f"{name} failed: {r.stderr.decode()}")
                print(f"left out: {name}: {r.stderr.decode().strip()[:200]}")
                del commands[name]
        times = {name: [] for name in commands}
        attach = []
        order = list(commands.items())
        for _ in range(ROUNDS):
            # A fresh order each round: a tool that runs right after another
            # one's cgroup move would find the grace period passed.
            random.shuffle(order)
            for name, cmd in order:
                start = time.perf_counter()
                subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
                times[name].append(time.perf_counter() - start)

        # Alone, after a pause: a move shortly after another one (such as
        # sysjail's own) finds the grace period passed and costs nothing.
        for _ in range(min(ROUNDS, 20)):
            time.sleep(0.2)
            a = v1_attach()
            if a is not None:
                attach.append(a)
        held = scale(sysjail, work, SCALE) if SCALE else {}
        rss = {}
        for name, cmd in commands.items():
            if name.startswith("/bin/true"):
                continue
            payload = ["/bin/sleep", "2"]
            if isinstance(cmd, OciRun):
                sleeping = os.path.join(work, f"{cmd.engine}-sleep")
                subprocess.run([sysjail, "export", "oci", os.path.join(work, "plain.toml"), "--bundle", sleeping,
                                "--"] + payload, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                rss[name] = resident(cmd.command(sleeping))
            elif name.startswith("sysjail"):
                rss[name] = resident(cmd + ["--"] + payload)
            else:
                rss[name] = resident(cmd[:-1] + payload)
    base = statistics.median(times.get("bwrap --unshare-all", times["/bin/true (no jail)"]))
    print(f"start-up of /bin/true in a jail, {ROUNDS} rounds, kernel {os.uname().release}")
    bw = rss.get("bwrap --unshare-all")
    print(f"{'tool':<28} {'median':>9} {'p90':>9} {'vs bwrap':>9} {'RSS':>10} {'PSS':>10} {'PSS/bwrap':>10}")
    rows = []
    for name, t in times.items():
        t = sorted(t)
        med, p90 = statistics.median(t), t[int(len(t) * 0.9)]
        r, q = rss.get(name, (None, None))
        mem = f"{r:>7}KiB {q:>7}KiB" if r is not None else f"{'-':>10} {'-':>10}"
        mem_ratio = f"{q / bw[1]:>9.2f}x" if r is not None and bw else f"{'-':>10}"
        print(f"{name:<28} {med * 1e3:>7.2f}ms {p90 * 1e3:>7.2f}ms {med / base:>8.2f}x {mem} {mem_ratio}")
        rows.append((name, med, p90, r, q))
    if attach:
        attach.sort()
        med, p90 = statistics.median(attach), attach[int(len(attach) * 0.9)]
        print(f"{'(kernel: one v1 attach)':<28} {med * 1e3:>7.2f}ms {p90 * 1e3:>7.2f}ms {med / base:>8.2f}x")
    for name, (up, down) in held.items():
        print(f"{SCALE} jails, {name:<24} held in {up:.2f}s, gone in {down:.2f}s")
    if MARKDOWN:
        markdown(rows, base, bw, held)
    if GUARD and "bwrap --unshare-all" in times:
        ratio = statistics.median(times["sysjail up (no limits)"]) / base
        if ratio > 1.0:
            sys.exit(f"GUARD FAILED: sysjail up starts {ratio:.2f}x bubblewrap's time in this run (limit 1.00x)")
        print(f"guard: sysjail up at {ratio:.2f}x bubblewrap, within 1.00x")


def markdown(rows, base, bw, held):
    """The table for bench/README.md, headed by the date and the machine."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print()
    print(f"Measured {time.strftime('%Y-%m-%d')}, `bench/startup.py {ROUNDS}"
          f"{f' --scale={SCALE}' if SCALE else ''}` ({os.cpu_count()} cores, {cpu}, Linux {os.uname().release}):")
    print()
    print("| tool | median | p90 | vs bwrap | RSS | PSS | PSS vs bwrap |")
    print("|---|---|---|---|---|---|---|")
    for name, med, p90, r, q in rows:
        mem = f"{r} KiB | {q} KiB | {q / bw[1]:.2f}x" if r is not None and bw else "- | - | -"
        print(f"| {name} | {med * 1e3:.2f} ms | {p90 * 1e3:.2f} ms | {med / base:.2f}x | {mem} |")
    if held:
        print()
        print(f"| launcher | all {SCALE} held | all gone |")
        print("|---|---|---|")
        for name, (up, down) in held.items():
            print(f"| {name} | {up:.2f} s | {down:.2f} s |")


if __name__ == "__main__":
    main()
