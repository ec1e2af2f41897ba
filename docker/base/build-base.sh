#!/usr/bin/env bash
# Builds tierlab/base:TAG with no registry: debootstrap a minimal Debian
# bookworm with the packages in packages.txt, drop apt's caches, and import
# the tree as an image. Run by docker/images.sh, which picks TAG.
set -euo pipefail
tag=$1
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=$(grep -v '^#' "$here/packages.txt" | paste -sd, -)
root=$(mktemp -d /tmp/tierlab-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -20 "$root.log" >&2; echo "debootstrap failed; full log: $root.log" >&2; exit 1; }
rm -f "$root.log"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
tar --numeric-owner -C "$root" -c . \
  | docker import -c 'CMD ["/bin/bash"]' -m "tierlab base: debootstrap bookworm minbase" - "tierlab/base:$tag" >/dev/null
