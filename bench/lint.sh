#!/usr/bin/env bash
# Lint throughput of `sysjail check`: files per second over a tree of
# generated definitions (valid ones, templates, and ones with errors), as a CI
# job linting a large repository of jails would see it. Best of 3 runs.
#
#   bench/lint.sh [N]        # N definitions (default 5000)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-5000}
cargo build --release --quiet --manifest-path "$top/Cargo.toml"
bin="$top/target/release/sysjail"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$top/examples/jails/base.toml" "$work/base.toml"
for i in $(seq 1 "$n"); do
  dir="$work/team$((i % 50))"
  mkdir -p "$dir"
  case $((i % 5)) in
    0) cat > "$dir/j$i.toml" <<TOML
extends = "../base.toml"
path = "/srv/jails/j$i"
hostname = "j$i.example.org"
command = ["/usr/sbin/nginx", "-g", "daemon off;"]
[network]
mode = "host"
ipv4 = ["192.0.2.$((i % 250 + 1))", "127.0.0.2"]
[[mount]]
source = "/srv/www/j$i"
target = "/var/www"
TOML
    ;;
    1) cat > "$dir/j$i.toml" <<TOML
path = "/"
command = ["/bin/sh", "-c", "make -j2"]
user = 1000
workdir = "/srv/build/j$i"
[limits]
memory = "2G"
pids = 512
cpu = 2.0
[[mount]]
type = "tmpfs"
target = "/tmp"
[[mount]]
source = "/srv/build/j$i"
target = "/srv/build/j$i"
read-only = false
TOML
    ;;
    2) cat > "$dir/j$i.toml" <<TOML
# an invalid one: three errors
path = "srv/j$i"
command = ["/bin/true"]
hostnme = "x"
[network]
mode = "host"
ipv4 = ["192.0.2.300"]
TOML
    ;;
    *) cat > "$dir/j$i.toml" <<TOML
extends = "../base.toml"
path = "/"
hostname = "api$i.internal"
user = "nobody"
command = ["/usr/bin/python3", "-m", "http.server", "8080"]
[network]
ipv4 = ["10.89.$((i % 200)).2/24"]
gateway = "10.89.$((i % 200)).1"
TOML
    ;;
  esac
done
files=$(find "$work" -name '*.toml' | wc -l)

best=""
for run in 1 2 3; do
  start=$(date +%s%N)
  "$bin" check --format json "$work" > /dev/null || true
  end=$(date +%s%N)
  ns=$((end - start))
  if [ -z "$best" ] || [ "$ns" -lt "$best" ]; then best=$ns; fi
done
ms=$((best / 1000000))
echo "sysjail check: $files files in ${ms} ms (best of 3): $((files * 1000000000 / best)) files/s"
