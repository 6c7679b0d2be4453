#!/usr/bin/env python3
"""What the address rule costs a bind, measured in one run.

In a network namespace this script creates (192.0.2.10 and .11 on a veth),
the probe times socket + bind + getsockname + close, N times, three ways:

  plain       the probe outside any jail;
  programs    in a host-mode jail as root: the cgroup socket-address
              programs rewrite the address in the kernel;
  supervisor  the same jail launched by an unprivileged user: bind goes to
              the supervisor (seccomp user notification), which binds its
              own copy of the socket.

Rounds alternate between the three so that drift of the machine hits them
all. Both a wildcard bind (rewritten) and a bind to a listed address (kept)
are measured.

    sudo bench/network.py [ROUNDS]      # as root; ROUNDS defaults to 10
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
NETNS = f"sjbench{os.getpid()}"
CHECKS = ["repeat=2000:bind=0.0.0.0:0", "repeat=2000:bind=192.0.2.11:0"]


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def run(cmd):
    full = ["nsenter", f"--net=/run/netns/{NETNS}", *cmd]
    out = subprocess.run(full, capture_output=True, check=True, timeout=120)
    return json.loads(out.stdout)["checks"]


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=TOP, check=True)
    ip("netns", "add", NETNS)
    try:
        ip("-n", NETNS, "link", "set", "lo", "up")
        ip("-n", NETNS, "link", "add", "b0", "type", "veth", "peer", "name", "b1")
        for a in ("192.0.2.10/24", "192.0.2.11/24"):
            ip("-n", NETNS, "addr", "add", a, "dev", "b0")
        ip("-n", NETNS, "link", "set", "b0", "up")
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o755)
            jail = os.path.join(tmp, "bench.toml")
            with open(jail, "w") as f:
                f.write('name = "bench-network"\npath = "/"\ncommand = ["/bin/true"]\n'
                        '[network]\nmode = "host"\nipv4 = ["192.0.2.10", "192.0.2.11"]\n')
            os.chmod(jail, 0o644)
            state = os.path.join(tmp, "state")
            nobody_state = os.path.join(tmp, "state-nobody")
            os.makedirs(nobody_state)
            os.chown(nobody_state, 65534, 65534)
            ways = {
                "plain": [SYSJAIL, "probe", *CHECKS],
                "programs": [SYSJAIL, "--state-dir", state, "up", jail, "--", SYSJAIL, "probe", *CHECKS],
                "supervisor": ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SYSJAIL,
                               "--state-dir", nobody_state, "up", jail, "--", SYSJAIL, "probe", *CHECKS],
            }
            times = {w: {c: [] for c in CHECKS} for w in ways}
            names = list(ways)
            for r in range(ROUNDS):
                for w in names[r % 3:] + names[:r % 3]:
                    checks = run(ways[w])
                    for c in CHECKS:
                        times[w][c].append(checks[c]["ret"])
    finally:
        subprocess.run(["ip", "netns", "del", NETNS])
    print(f"bind cost, ns per socket+bind+getsockname+close, median of {ROUNDS} rounds of 2000")
    print(f"{'bind to':<16} {'plain':>8} {'programs':>10} {'supervisor':>12}")
    for c in CHECKS:
        med = {w: statistics.median(times[w][c]) for w in ways}
        target = c.split("bind=")[1]
        print(f"{target:<16} {med['plain']:>8.0f} {med['programs']:>10.0f} {med['supervisor']:>12.0f}"
              f"   (x{med['programs'] / med['plain']:.2f}, x{med['supervisor'] / med['plain']:.2f})")


if __name__ == "__main__":
    main()
