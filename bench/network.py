#!/usr/bin/env python3
"""What the address rule costs, measured in one run.

In a network namespace this script creates (192.0.2.10 and .11 on a veth),
the probe times, two ways:

  plain       the probe outside any jail;
  programs    in a host-mode jail as root: the cgroup socket-address
              programs rewrite a bind's address in the kernel, and the
              ingress and egress programs check every packet's local
              address.

The checks: socket + bind + getsockname + close, N times, to the wildcard
(rewritten) and to a listed address (kept); and N datagrams sent and
received over loopback-like local delivery (each crosses egress once and
ingress once). Rounds alternate so that drift of the machine hits both.
(Without root or cgroup2 a host-stack jail is refused: there is no third
way to measure.)

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
CHECKS = ["repeat=2000:bind=0.0.0.0:0", "repeat=2000:bind=192.0.2.11:0", "udp-loop=192.0.2.11:0/20000"]


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
            ways = {
                "plain": [SYSJAIL, "probe", *CHECKS],
                "programs": [SYSJAIL, "--state-dir", state, "up", jail, "--", SYSJAIL, "probe", *CHECKS],
            }
            times = {w: {c: [] for c in CHECKS} for w in ways}
            names = list(ways)
            for r in range(ROUNDS):
                for w in names[r % 2:] + names[:r % 2]:
                    checks = run(ways[w])
                    for c in CHECKS:
                        times[w][c].append(checks[c]["ret"])
    finally:
        subprocess.run(["ip", "netns", "del", NETNS])
    print(f"ns per operation, median of {ROUNDS} rounds")
    print(f"{'operation':<34} {'plain':>8} {'programs':>10}")
    for c in CHECKS:
        med = {w: statistics.median(times[w][c]) for w in ways}
        what = c.split(":", 1)[1] if c.startswith("repeat=") else c
        label = {"bind=0.0.0.0:0": "bind to the wildcard (rewritten)",
                 "bind=192.0.2.11:0": "bind to a listed address"}.get(what, "UDP datagram, sent and received")
        print(f"{label:<34} {med['plain']:>8.0f} {med['programs']:>10.0f}   (x{med['programs'] / med['plain']:.2f})")

if __name__ == "__main__":
    main()
