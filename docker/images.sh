#!/usr/bin/env bash
# `just images`: builds every Tierlab image on this machine, with no
# registry. tierlab/base is tagged with a hash of its recipe and rebuilt only
# when the recipe changes; the others are `docker build`s on top of it from
# the release binaries (the build cache makes an unchanged image a no-op).
# Prints what it built and what it found cached.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker >/dev/null || { echo "images: docker is not on PATH" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "images: no Docker engine answers" >&2; exit 1; }

base_tag=$(cat docker/base/packages.txt docker/base/build-base.sh | sha256sum | cut -c1-12)
base=tierlab/base:$base_tag
if docker image inspect "$base" >/dev/null 2>&1; then
  echo "images: $base cached"
else
  command -v debootstrap >/dev/null || { echo "images: debootstrap is not on PATH: apt-get install -y debootstrap" >&2; exit 1; }
  started=$SECONDS
  bash docker/base/build-base.sh "$base_tag"
  echo "images: $base built in $((SECONDS - started)) s"
fi
docker tag "$base" tierlab/base:latest

# Each image's build context is a scratch directory holding only what its
# Dockerfile copies, so builds never send target/ to the engine.
build() {
  local name=$1; shift
  local context; context=$(mktemp -d /tmp/tierlab-image.XXXXXX)
  cp "docker/$name/Dockerfile" "$context/"
  for file in "$@"; do cp -r "$file" "$context/"; done
  # Release binaries carry line tables for profiling; images don't need them.
  for file in "$context"/tierlab*; do
    [ -f "$file" ] && command -v strip >/dev/null && strip --strip-debug "$file"
  done
  local before; before=$(docker image inspect -f '{{.Id}}' "tierlab/$name:latest" 2>/dev/null || true)
  # The engine's legacy builder warns on every build; show its output only
  # when a build fails.
  if ! docker build -q --build-arg "BASE=$base" -t "tierlab/$name:latest" "$context" >"$context.log" 2>&1; then
    cat "$context.log" >&2; rm -rf "$context" "$context.log"
    echo "images: building tierlab/$name failed" >&2; exit 1
  fi
  rm -rf "$context" "$context.log"
  local after; after=$(docker image inspect -f '{{.Id}}' "tierlab/$name:latest")
  if [ "$before" = "$after" ]; then
    echo "images: tierlab/$name cached"
  else
    echo "images: tierlab/$name built (${after:7:12})"
    # The image it replaced, unless a container still uses it.
    [ -z "$before" ] || docker rmi "$before" >/dev/null 2>&1 || true
  fi
}
build server target/release/tierlab-server
build redis
build haproxy docker/haproxy/haproxy.cfg
build loadgen target/release/tierlab scenarios
