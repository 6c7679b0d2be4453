#!/usr/bin/env python3
"""What the denial log costs, measured in one run.

A jail's probe times a denied call (msgget, EPERM unless `allow ipc`) and an
allowed one (getppid) with and without `--log-denials`. Without the log, the
seccomp filter answers a denied call itself; with it, each denied call goes to
the supervisor, which writes one line and answers. Allowed calls never reach
the supervisor either way. Rounds alternate between the two modes.

    sudo bench/denials.py [ROUNDS]      # as root; ROUNDS defaults to 10
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSJAIL = os.path.join(TOP, "target", "release", "sysjail")
CHECKS = ["repeat=5000:ipc-msgget", "repeat=200000:getppid"]


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=TOP, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        jail = os.path.join(tmp, "bench.toml")
        with open(jail, "w") as f:
            f.write('name = "bench-denials"\npath = "/"\ncommand = ["/bin/true"]\n'
                    '[limits]\npids = 16\n')
        log = os.path.join(tmp, "denials.log")
        state = os.path.join(tmp, "state")
        times = {False: {c: [] for c in CHECKS}, True: {c: [] for c in CHECKS}}
        for r in range(ROUNDS):
            for logging in ([False, True] if r % 2 == 0 else [True, False]):
                cmd = [SYSJAIL, "--state-dir", state, "up"]
                if logging:
                    cmd += ["--log-denials", log]
                cmd += [jail, "--", SYSJAIL, "probe"] + CHECKS
                out = subprocess.run(cmd, capture_output=True, check=True, timeout=120)
                checks = json.loads(out.stdout)["checks"]
                for c in CHECKS:
                    times[logging][c].append(checks[c]["ret"])
        lines = sum(1 for _ in open(log))
    print(f"denial log overhead, ns per call, median of {ROUNDS} rounds")
    print(f"{'call':<28} {'log off':>10} {'log on':>10} {'ratio':>8}")
    for c in CHECKS:
        off = statistics.median(times[False][c])
        on = statistics.median(times[True][c])
        print(f"{c.split(':')[1]:<28} {off:>10.0f} {on:>10.0f} {on / off:>7.1f}x")
    print(f"({lines} lines logged)")


if __name__ == "__main__":
    main()
