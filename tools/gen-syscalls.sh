#!/usr/bin/env bash
# Regenerates src/syscalls/generated.rs from Debian's UAPI headers for amd64,
# arm64 and armhf. Needs apt-get download (no root) and gcc.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for arch in amd64 arm64 armhf; do
  apt-get download "linux-libc-dev:$arch" >/dev/null
done
for deb in *.deb; do dpkg -x "$deb" root; done
python3 "$top/tools/gen-syscalls.py" "$work/root/usr/include" > "$top/src/syscalls/generated.rs"
rustfmt --edition 2024 "$top/src/syscalls/generated.rs"
